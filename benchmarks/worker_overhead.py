#!/usr/bin/env python3
"""What an EngineWorker round trip costs over the engine's own call, side by side.

For each precision and batch: the same model and settings loaded twice — in
this process (the engine's bare synchronous call, this process pinned to the
same CPUs) and in an EngineWorker (submit -> shared memory -> reply -> output
copied back) — timed in alternating rounds of `--seconds` each, one request
at a time, so machine drift cancels in the paired ratio. Then the null
backend's round trips per second (the harness alone).

With `--harness-cores N` the engine (both copies) gets all physical cores but the
last N (`--num-cores` to match) and rn50's side of the worker (the caller and its
reply thread) runs on those N cores' CPUs, as on a machine with a core to spare for the harness;
without it, caller and engine share every CPU.

    python benchmarks/worker_overhead.py [--precision fp32,int8] [--batch 1,16]
                                        [--rounds 4] [--seconds 3] [--harness-cores N]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

import numpy as np

from rn50.api import recommend
from rn50.backends import get_backend
from rn50.config import CalibrationConfig, ModelConfig
from rn50.launch.plan import plan_launch
from rn50.launch.worker import EngineWorker
from rn50.models.resolve import builtin_model
from rn50.platform import detect_platform
from rn50.quantize import int8_model
from rn50.settings import UserFlags


def model_for(precision: str):
    model = builtin_model(ModelConfig(), os.environ, print)
    if precision == "int8":
        model, _ = int8_model(model, "openvino", CalibrationConfig(size=32, holdout=0),
                              __import__("pathlib").Path(model.cache_dir), print)
    return model


def timed(call, seconds: float) -> list[float]:
    """Latencies (ms) of back-to-back calls for `seconds`."""
    samples, end = [], time.perf_counter() + seconds
    while time.perf_counter() < end:
        start = time.perf_counter()
        call()
        samples.append((time.perf_counter() - start) * 1e3)
    return samples


HARNESS_CPUS: list[int] = []  # --harness-cores: where the caller runs during worker rounds
ENGINE_CORES: list[int] = []  # --harness-cores: how many cores the engine gets ([] = all)


def on(cpus) -> None:
    """Move this thread (the caller) to `cpus` (threads it starts inherit them)."""
    os.sched_setaffinity(0, cpus)


def measure(precision: str, batch: int, rounds: int, seconds: float) -> dict:
    model = model_for(precision)
    cores = ENGINE_CORES[0] if ENGINE_CORES else None
    settings = recommend(flags=UserFlags(batch_size=batch, streams=1, precision=precision,
                                         num_cores=cores))
    engine_cpus = settings.cpus.value
    harness = HARNESS_CPUS or engine_cpus
    on(engine_cpus)  # the same CPUs the worker is pinned to: the engine's threads start here
    session = get_backend("openvino").load(model, settings, precision)
    array = np.random.default_rng(0).normal(0, 1, session.input_spec.shape).astype(np.float32)
    job = {"backend": "openvino", "precision": precision, "model": model.to_dict(),
           "settings": settings.to_dict()}
    direct, worker_ms, ratios = [], [], []
    timed(lambda: session.run(array), 1.0)  # warm (and start) the in-process engine
    with EngineWorker(plan_launch(settings, None, {}), os.environ).start() as worker:
        for thread in worker._threads:  # its reply thread (started here) joins the caller
            os.sched_setaffinity(thread.native_id, harness)
        on(harness)
        worker.load(job)
        worker.open_stream(slots=2)
        timed(lambda: worker.submit(array).result(), 1.0)
        for _ in range(rounds):
            on(engine_cpus)
            a = timed(lambda: session.run(array), seconds)
            on(harness)
            b = timed(lambda: worker.submit(array).result(), seconds)
            direct += a
            worker_ms += b
            ratios.append(statistics.median(b) / statistics.median(a))
    return {"precision": precision, "batch": batch, "direct_p50": statistics.median(direct),
            "worker_p50": statistics.median(worker_ms), "paired": statistics.median(ratios),
            "overhead_ms": statistics.median(worker_ms) - statistics.median(direct)}


def null_round_trips(seconds: float) -> float:
    settings = recommend(flags=UserFlags(batch_size=1, streams=1))
    model = builtin_model(ModelConfig(), os.environ, print)
    job = {"backend": "null", "precision": "fp32", "model": model.to_dict(),
           "settings": settings.to_dict()}
    with EngineWorker(plan_launch(settings, None, {}), os.environ).start() as worker:
        worker.load(job)
        array = np.zeros(tuple(worker.loaded["input"]["shape"]), np.float32)
        timed(lambda: worker.submit(array).result(), 1.0)
        samples = timed(lambda: worker.submit(array).result(), seconds)
    return len(samples) / (sum(samples) / 1e3)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--precision", default="fp32,int8")
    parser.add_argument("--batch", default="1,16")
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--harness-cores", type=int, default=0,
                        help="keep the last N physical cores for rn50's side of the worker")
    args = parser.parse_args()
    cores = detect_platform().usable_cores()  # physical cores, each with its SMT siblings
    if args.harness_cores:
        if not 0 < args.harness_cores < len(cores):
            raise SystemExit(f"--harness-cores {args.harness_cores}: this machine has "
                             f"{len(cores)} cores")
        HARNESS_CPUS[:] = [c.cpu for core in cores[-args.harness_cores:] for c in core]
        ENGINE_CORES[:] = [len(cores) - args.harness_cores]
    rows = [measure(p, int(b), args.rounds, args.seconds)
            for p in args.precision.split(",") for b in args.batch.split(",")]
    where = (f"engine on {ENGINE_CORES[0]} cores, harness on CPUs "
             f"{HARNESS_CPUS}" if HARNESS_CPUS else f"{len(cores)} cores shared by engine "
             "and harness")
    print(f"\nOpenVINO, built-in ResNet-50 v1.5, {where}, one request at a time, "
          f"{args.rounds} alternating rounds of {args.seconds:g} s")
    print(f"{'precision':>9} {'batch':>5} {'engine call p50 ms':>18} {'worker p50 ms':>13} "
          f"{'overhead ms':>11} {'paired ratio':>12}")
    for r in rows:
        print(f"{r['precision']:>9} {r['batch']:>5} {r['direct_p50']:>18.3f} "
              f"{r['worker_p50']:>13.3f} {r['overhead_ms']:>11.3f} {r['paired']:>12.4f}")
    print(f"\nnull backend: {null_round_trips(args.seconds):.0f} EngineWorker round trips/s "
          "(batch 1, 150 KB in, 4 KB out, one at a time)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
