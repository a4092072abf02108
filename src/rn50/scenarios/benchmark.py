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
from ..measure.progress import Ticker
from ..measure.stats import stability_warnings, summarize

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

    def measure_done(self, count: int, elapsed: float, in_flight: int = 1) -> bool:
        """Whether the timed region has run long enough.

        With several requests in flight the count is rounded up to a multiple of
        them (as benchmark_app does): the last round then ends on every stream
        together, instead of one stream finishing a step alone while the others
        sit idle inside the measured span.
        """
        if count % max(1, in_flight):
            return False
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
        return f"{warm}; {timed}; timed steps rounded up to a multiple of the requests in flight"

    def to_dict(self) -> dict:
        return dict(asdict(self), description=self.describe())


Emit = Callable[[dict], None]


def _run_phase(session: Session, batch: np.ndarray, done: Callable[[int, float], bool],
               clock: Callable[[], float], phase: str,
               emit: Emit) -> tuple[list[float], float, float]:
    """Run steps until `done(count, elapsed)`.

    Returns per-step latencies (s), and the clock at the start and at the last completion.
    """
    finishes: list[float] = []
    latencies: dict[int, float] = {}
    begin = clock()
    ticker = Ticker(clock)

    count = 0
    while not done(count, clock() - begin):
        session.wait_idle()
        start = clock()

        def on_done(output, index: int = count, start: float = start) -> None:
            finish = clock()
            latencies[index] = finish - start
            finishes.append(finish)

        session.submit(batch, on_done)
        count += 1
        completed = len(finishes)
        if completed and ticker.due(completed, (finishes[-1] - begin) / completed):
            emit(_progress(phase, completed, ticker, finishes, begin, batch.shape[0]))
            ticker.mark(completed, finishes[completed - 1])
    session.wait_all()
    end = max(finishes) if finishes else begin
    return [latencies[i] for i in range(count)], begin, end


def _progress(phase: str, completed: int, ticker: Ticker, finishes: list[float], begin: float,
                images: int) -> dict:
    """A progress message: the rate over the window since the last one, and the facts the
    console turns into steps expected and an ETA (outside the timed process)."""
    now = finishes[completed - 1]
    window = completed - ticker.last_count
    return {"type": "progress", "phase": phase, "steps": completed, "elapsed_s": now - begin,
            "images_per_sec": window * images / max(now - ticker.last_time, 1e-12)}


class Interrupted(Exception):
    """The run was stopped (Ctrl-C) before any timed step completed."""


def run_benchmark(session: Session, batch: np.ndarray, plan: BenchmarkPlan,
                  clock: Callable[[], float] = time.monotonic,
                  emit: Emit = lambda message: None,
                  should_stop: Callable[[], bool] = lambda: False,
                  before_timing: Callable[[], None] = lambda: None) -> dict:
    """Warm up, then time steps; return raw samples and summary figures.

    The first inference (often slower: lazy allocation, kernel selection) is the
    first warm-up step, reported apart and never part of the timed figures.
    `before_timing` runs between warm-up and the timed region (a barrier that
    starts several instances together). When `should_stop()` turns true the
    current phase ends after the step in flight; the result then says
    `interrupted` and holds the steps timed so far. `clock` must be one clock
    for every process of a run (the default, CLOCK_MONOTONIC, is): the region's
    start and end are reported on it so instances can be merged.
    """
    images = batch.shape[0]
    emit({"type": "phase", "phase": "warmup"})
    warmup, _, _ = _run_phase(session, batch,
                              lambda n, t: should_stop() or plan.warmup_done(n, t),
                              clock, "warmup", emit)
    if should_stop():
        raise Interrupted("stopped during warm-up: nothing was timed")
    if warmup:  # the first warm-up step is the first inference
        first_ms = warmup[0] * 1e3
    else:  # no warm-up asked for: still keep the first inference out of the figures
        start = clock()
        session.run(batch)
        first_ms = (clock() - start) * 1e3
    emit({"type": "first_inference", "ms": first_ms})
    before_timing()
    emit({"type": "phase", "phase": "benchmark"})
    steps, begin, end = _run_phase(session, batch,
                                   lambda n, t: (should_stop() and n > 0)
                                   or plan.measure_done(n, t, session.concurrency),
                                   clock, "benchmark", emit)
    span = end - begin

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
        "region": {"start": begin, "end": end, "clock": "CLOCK_MONOTONIC"},
        "interrupted": bool(should_stop()),
        "warnings": stability_warnings(latency),
    }


def merge_instances(results: list[dict]) -> dict:
    """One summary for instances that ran together.

    Throughput = all images over the wall span from the first instance's start
    to the last one's end (not a sum of rates: an instance that started late or
    ran slow lowers it). Latency percentiles come from the merged raw samples,
    never from averaging the instances' percentiles.
    """
    if not results:
        raise ValueError("no instance results to merge")
    start = min(r["region"]["start"] for r in results)
    end = max(r["region"]["end"] for r in results)
    span = end - start
    images = sum(r["summary"]["images"] for r in results)
    steps = [ms for r in results for ms in r["samples"]["step_ms"]]
    latency = summarize(steps)
    starts = [r["region"]["start"] for r in results]
    return {
        "instances": len(results),
        "steps": len(steps),
        "images": images,
        "measured_seconds": span,
        "throughput_images_per_sec": images / span if span > 0 else float("inf"),
        "sum_of_instance_throughputs": sum(r["summary"]["throughput_images_per_sec"]
                                           for r in results),
        "start_skew_ms": (max(starts) - min(starts)) * 1e3,
        "latency_ms": latency,
        "method": "throughput = total images / wall span of the measured regions (first start "
                  "to last end); latency percentiles over the merged per-step samples",
    }


def run(ctx, job: dict) -> dict:
    """The benchmark scenario in an engine worker: synthetic images, or with `data` the
    end-to-end run on real images; with `barrier`, timed together with other instances."""
    plan = BenchmarkPlan(**job["plan"])
    barrier = ctx.wait_for_go if job.get("barrier") else (lambda: None)
    try:
        if job.get("data"):
            from .images import open_images
            from .real_data import run_data_benchmark

            with open_images(ctx, job, repeat=True) as images:
                return dict(run_data_benchmark(ctx.session, images.batches(),
                                               ctx.input_spec.shape[0], plan, ctx.emit,
                                               ctx.stop.is_set, before_timing=barrier),
                            data=images.info)
        from ..data.synthetic import synthetic_batch

        spec = ctx.input_spec
        batch = synthetic_batch(spec.shape, spec.layout, ctx.model.mean, ctx.model.std,
                                seed=job.get("data_seed", 0))
        return run_benchmark(ctx.session, batch, plan, emit=ctx.emit,
                             should_stop=ctx.stop.is_set, before_timing=barrier)
    except Interrupted as exc:
        raise KeyboardInterrupt(str(exc)) from None
