"""The benchmark scenario: warm-up, then timed steps, every sample kept.

One step is one batch through the engine. With an asynchronous engine several
steps are in flight; each step's latency runs from its submission (once a
request is free) to its completion, and throughput is images completed over
the wall span of the timed region.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from typing import Callable

import numpy as np

from ..backends import Session
from ..measure.stats import stability_warnings, summarize

PROGRESS_EVERY = 10
AUTO_WARMUP = (10, 5.0)  # steps, seconds: stop at whichever comes first (at least 1 step)
AUTO_MEASURE = (50, 30.0, 5)  # steps, seconds, minimum steps


@dataclass(frozen=True)
class BenchmarkPlan:
    """When warm-up and the timed region stop. None means "automatic"."""

    warmup_steps: int | None = None
    steps: int | None = None
    duration: float | None = None

    def warmup_done(self, count: int, elapsed: float) -> bool:
        if self.warmup_steps is not None:
            return count >= self.warmup_steps
        steps, seconds = AUTO_WARMUP
        return count >= 1 and (count >= steps or elapsed >= seconds)

    def measure_done(self, count: int, elapsed: float) -> bool:
        if self.steps is None and self.duration is None:
            steps, seconds, minimum = AUTO_MEASURE
            return count >= minimum and (count >= steps or elapsed >= seconds)
        return ((self.steps is None or count >= self.steps)
                and (self.duration is None or elapsed >= self.duration))

    def describe(self) -> str:
        warm = (f"{self.warmup_steps} warm-up steps" if self.warmup_steps is not None
                else f"warm-up: {AUTO_WARMUP[0]} steps or {AUTO_WARMUP[1]:g} s, whichever first")
        if self.steps is None and self.duration is None:
            timed = (f"timed: {AUTO_MEASURE[0]} steps or {AUTO_MEASURE[1]:g} s, whichever first "
                     f"(at least {AUTO_MEASURE[2]})")
        else:
            parts = [f"{self.steps} steps" if self.steps else None,
                     f"{self.duration:g} s" if self.duration else None]
            timed = "timed: " + " and ".join(p for p in parts if p) + " (whichever ends later)"
        return f"{warm}; {timed}"

    def to_dict(self) -> dict:
        return dict(asdict(self), description=self.describe())


Emit = Callable[[dict], None]


def _run_phase(session: Session, batch: np.ndarray, done: Callable[[int, float], bool],
               clock: Callable[[], float], phase: str, emit: Emit) -> tuple[list[float], float]:
    """Run steps until `done(count, elapsed)`; return per-step latencies (s) and wall span (s)."""
    images = batch.shape[0]
    finishes: list[float] = []
    latencies: dict[int, float] = {}
    reported = 0
    window_start = begin = clock()

    count = 0
    while not done(count, clock() - begin):
        session.wait_idle()
        start = clock()

        def on_done(index: int = count, start: float = start) -> None:
            finish = clock()
            latencies[index] = finish - start
            finishes.append(finish)

        session.submit(batch, on_done)
        count += 1
        completed = len(finishes)
        if completed - reported >= PROGRESS_EVERY:
            now = finishes[completed - 1]
            steps = completed - reported
            emit({"type": "progress", "phase": phase, "steps": completed,
                  "images_per_sec": steps * images / max(now - window_start, 1e-12)})
            reported, window_start = completed, now
    session.wait_all()
    span = (max(finishes) - begin) if finishes else 0.0
    return [latencies[i] for i in range(count)], span


def run_benchmark(session: Session, batch: np.ndarray, plan: BenchmarkPlan,
                  clock: Callable[[], float] = time.perf_counter,
                  emit: Emit = lambda message: None) -> dict:
    """Warm up, then time steps; return raw samples and summary figures.

    The first inference (often slower: lazy allocation, kernel selection) is the
    first warm-up step, reported apart and never part of the timed figures.
    """
    images = batch.shape[0]
    emit({"type": "phase", "phase": "warmup"})
    warmup, _ = _run_phase(session, batch, plan.warmup_done, clock, "warmup", emit)
    if warmup:  # the first warm-up step is the first inference
        first_ms = warmup[0] * 1e3
    else:  # no warm-up asked for: still keep the first inference out of the figures
        start = clock()
        session.run(batch)
        first_ms = (clock() - start) * 1e3
    emit({"type": "first_inference", "ms": first_ms})
    emit({"type": "phase", "phase": "benchmark"})
    steps, span = _run_phase(session, batch, plan.measure_done, clock, "benchmark", emit)

    step_ms = [s * 1e3 for s in steps]
    latency = summarize(step_ms)
    throughput = len(steps) * images / span if span > 0 else float("inf")
    return {
        "batch_size": images,
        "first_inference_ms": first_ms,
        "samples": {"warmup_step_ms": [s * 1e3 for s in warmup], "step_ms": step_ms},
        "summary": {
            "steps": len(steps),
            "images": len(steps) * images,
            "measured_seconds": span,
            "throughput_images_per_sec": throughput,
            "latency_ms": latency,
            "concurrency": session.concurrency,
        },
        "warnings": stability_warnings(latency),
    }
