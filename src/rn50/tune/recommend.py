"""From tune's measurements: the Pareto front and three recommendations, each as commands."""

from __future__ import annotations

import shlex
from dataclasses import dataclass

from ..backends import capabilities
from ..measure.pareto import pareto_front
from .search import Measurement, Point


@dataclass(frozen=True)
class Goal:
    name: str
    title: str


GOALS = (Goal("latency", "lowest latency (p99)"), Goal("throughput", "highest throughput"),
         Goal("throughput_under_target", "highest throughput with p99 within the target"))


def front(measurements: list[Measurement]) -> list[Measurement]:
    ok = [m for m in measurements if m.ok]
    return pareto_front(ok, lambda m: m.throughput, lambda m: m.p99_ms)


def choose(measurements: list[Measurement], target_ms: float | None) -> dict:
    """goal name -> the chosen Measurement (or a reason string when none qualifies)."""
    ok = [m for m in measurements if m.ok]
    if not ok:
        return {g.name: "nothing was measured" for g in GOALS}
    chosen: dict = {
        "latency": min(ok, key=lambda m: (m.p99_ms, -m.throughput)),
        "throughput": max(ok, key=lambda m: (m.throughput, -m.p99_ms)),
    }
    if target_ms is None:
        chosen["throughput_under_target"] = "no --latency-target-ms given"
    else:
        under = [m for m in ok if m.p99_ms <= target_ms]
        chosen["throughput_under_target"] = (
            max(under, key=lambda m: (m.throughput, -m.p99_ms)) if under else
            f"no configuration measured a p99 within {target_ms:g} ms "
            f"(the lowest was {min(m.p99_ms for m in ok):.2f} ms)")
    return chosen


def commands(point: Point, cores: int, model: str | None = None) -> dict[str, str]:
    """The same configuration as `rn50 bench`, `launch_benchmark.py`, `rn50 serve` and
    `rn50 info --emit python` commands."""
    model_flag = ["--model", model] if model else []
    parallel = _parallel_flags(point, cores)
    bench = ["rn50", "bench", "--backend", point.backend, "--precision", point.precision,
             *model_flag, "--batch-size", str(point.batch), *parallel]
    framework = (capabilities(point.backend).frameworks or (point.backend,))[0]
    zoo = ["python", "launch_benchmark.py", "--model-name", "resnet50", "--framework",
           framework, "--precision", point.precision, "--mode", "inference", "--batch-size",
           str(point.batch), "--benchmark-only"]
    if model:
        zoo += ["--in-graph", model]
    if point.instances > 1:
        zoo += ["--num-instances", str(point.instances),
                "--numa-cores-per-instance", str(cores // point.instances)]
    serve = ["rn50", "serve", "--backend", point.backend, "--precision", point.precision,
             *model_flag, "--max-batch", str(point.batch), *parallel]
    info = ["rn50", "info", "--emit", "python", "--batch-size", str(point.batch), *parallel]
    return {"bench": shlex.join(bench), "launch_benchmark": shlex.join(zoo),
            "serve": shlex.join(serve), "emit": shlex.join(info)}


def snippet(point: Point, cores: int, platform) -> str:
    """What `rn50 info --emit python` prints for this configuration: the settings as Python
    for the user's own code."""
    import os

    from ..emit import emit_python
    from ..settings import UserFlags, plan_processes

    multi = point.instances > 1
    flags = UserFlags(batch_size=point.batch, streams=point.streams, engine=point.backend,
                      num_instances=point.instances if multi else None,
                      cores_per_instance=cores // point.instances if multi else None)
    return emit_python(plan_processes(platform, flags, os.environ).base, platform)


def _parallel_flags(point: Point, cores: int) -> list[str]:
    flags = ["--streams", str(point.streams)]
    if point.instances > 1:
        flags += ["--num-instances", str(point.instances),
                  "--cores-per-instance", str(cores // point.instances)]
    return flags
