"""How an engine process is started: its exact command, environment and CPU binding (pure)."""

from __future__ import annotations

import signal
import sys
from dataclasses import dataclass

from ..settings import Settings


@dataclass(frozen=True)
class LaunchPlan:
    """The exact command and environment of one child process."""

    argv: tuple[str, ...]
    env_overrides: dict[str, str]
    affinity: tuple[int, ...] | None

    def to_dict(self) -> dict:
        return {"argv": list(self.argv), "env": self.env_overrides,
                "sched_setaffinity": list(self.affinity) if self.affinity else None}


def plan_launch(settings: Settings, numactl: str | None, engine_env: dict[str, str] | None = None,
                python: str = sys.executable) -> LaunchPlan:
    """Pure: the child's command line, environment additions and affinity."""
    argv = [python, "-m", "rn50.launch.child"]
    affinity = None
    if settings.binding.value == "numactl":
        argv = [numactl or "numactl", *settings.numactl_args(), *argv]
    elif settings.binding.value == "sched_setaffinity":
        affinity = tuple(settings.cpus.value)
    return LaunchPlan(tuple(argv), {**(engine_env or {}), **settings.child_env()}, affinity)


def describe_exit(returncode: int) -> str:
    if returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = f"signal {-returncode}"
        hint = " (out of memory, or killed by the user?)" if name == "SIGKILL" else ""
        return f"was killed by {name}{hint}"
    return f"exited with code {returncode}"
