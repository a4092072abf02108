"""Scenarios: what an engine worker does with its loaded model, one module each.

A scenario module defines `run(ctx: WorkerContext, job: dict) -> dict`: it runs
in the engine worker process, next to the engine (so timed loops pay no
inter-process hop), sends its events with `ctx.emit`, stops early when
`ctx.stop` is set, and returns its part of the result. Adding one = a module
here + a line in REGISTRY (imported only when chosen).
"""

from __future__ import annotations

import importlib
import threading
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Callable

from ..errors import ConfigError

REGISTRY = {
    "benchmark": "rn50.scenarios.benchmark",  # synthetic, or end-to-end with real images
    "accuracy": "rn50.scenarios.accuracy",
    "classify": "rn50.scenarios.classify",
    "outputs": "rn50.scenarios.outputs",
    "profile": "rn50.scenarios.profile",  # per-layer times from the engine's counters  # raw outputs on synthetic images (check-parity)
}


@dataclass
class WorkerContext:
    """What a scenario gets: the loaded model and the means to report."""

    session: Any  # backends.Session
    model: Any  # models.ModelSpec
    input_spec: Any  # backends.InputSpec
    metadata: dict  # classes, class offset, preprocessing (models.metadata.describe)
    engine: dict  # versions and read-back settings
    emit: Callable[[dict], None]
    stop: threading.Event
    wait_for_go: Callable[[], None]  # the multi-instance start barrier


ENTRY_POINTS = "rn50.scenarios"  # another package adds one: `name = package.module`


@lru_cache(maxsize=1)
def _modules() -> dict[str, str]:
    from importlib.metadata import entry_points

    modules = dict(REGISTRY)
    for entry in entry_points(group=ENTRY_POINTS):
        modules.setdefault(entry.name, entry.value)
    return modules


def get_scenario(name: str) -> Callable[[WorkerContext, dict], dict]:
    """The `run` function of a registered scenario."""
    if name not in _modules():
        raise ConfigError(f"unknown scenario {name!r}; known: {', '.join(_modules())}")
    return importlib.import_module(_modules()[name]).run
