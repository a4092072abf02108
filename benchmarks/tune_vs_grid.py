#!/usr/bin/env python3
"""`rn50 tune --budget` against an exhaustive grid of the same space, on this machine.

The grid measures every engine x precision x batch (1..--max-batch, powers of two) x
{one stream, two streams (engines that run streams), two instances}; then `rn50 tune` runs
with a budget of --share (25%) of the grid's wall time. Both print the best configuration
for latency (lowest p99), throughput, and throughput with p99 within --target-ms, and the
ratios tune/grid (target: within 3%, in <= 25% of the grid's time). Each point is a real
`rn50 bench` run of --point-seconds, as tune measures it.

    python benchmarks/tune_vs_grid.py [--backends openvino,onnxruntime] [--max-batch 32]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from rn50 import api
from rn50.backends import capabilities
from rn50.config import PRECISIONS
from rn50.platform import detect_platform
from rn50.results import load_result
from rn50.tune.run import Checkpoint, Measurer, TuneConfig, combos
from rn50.tune.search import Point, Space


def grid(space: Space) -> list[Point]:
    points = []
    for backend, precision in space.combos:
        for batch in space.batches():
            points.append(Point(backend, precision, batch))
            if space.streams(backend):
                points.append(Point(backend, precision, batch, streams=2))
            if space.cores >= 2:
                points.append(Point(backend, precision, batch, instances=2))
    return points


def run_grid(args, folder: Path) -> tuple[list, float]:
    platform = detect_platform()
    config = TuneConfig(tuple(args.backends.split(",")), PRECISIONS, args.target_ms, 1e9,
                        str(folder), max_batch=args.max_batch, point_seconds=args.point_seconds)
    pairs, _ = combos(config, platform, print)
    cores = len(api.recommend(platform).cpus.value)
    space = Space(pairs, cores, args.max_batch, lambda b: capabilities(b).streams)
    points = grid(space)
    folder.mkdir(parents=True)
    start = time.monotonic()
    with open(folder / "grid.log", "w") as log:
        measure = Measurer(config, Checkpoint(folder / "points.jsonl", config.identity(), False),
                           cores, log, len(points))
        results = [measure(point, "grid") for point in points]
    return [m for m in results if m.ok], time.monotonic() - start


def best(rows: list[tuple[str, float, float]], target: float) -> dict:
    """goal -> (key, throughput, p99) from (key, throughput, p99) rows."""
    under = [r for r in rows if r[2] <= target]
    return {"latency": min(rows, key=lambda r: r[2]), "throughput": max(rows, key=lambda r: r[1]),
            "throughput under target": max(under, key=lambda r: r[1]) if under else None}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backends", default="openvino,onnxruntime")
    parser.add_argument("--max-batch", type=int, default=32)
    parser.add_argument("--point-seconds", type=float, default=1.5)
    parser.add_argument("--target-ms", type=float, default=25.0)
    parser.add_argument("--share", type=float, default=0.25)
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="rn50-tune-vs-grid-"))
    measured, grid_s = run_grid(args, folder / "grid")
    print(f"grid: {len(measured)} points in {grid_s:.0f} s")
    budget = args.share * grid_s
    tune_start = time.monotonic()
    subprocess.run([sys.executable, "-m", "rn50", "tune", "--backends", args.backends,
                    "--max-batch", str(args.max_batch), "--point-seconds",
                    str(args.point_seconds), "--latency-target-ms", str(args.target_ms),
                    "--budget", f"{budget:.0f}s", "--output-dir", str(folder / "tune")],
                   check=True, stdout=subprocess.DEVNULL)
    tune_s = time.monotonic() - tune_start
    tuned = load_result(folder / "tune" / "tune.json")
    tune_rows = [(p["key"], p["throughput"], p["p99_ms"]) for p in tuned.points if not p["error"]]
    grid_rows = [(m.point.key, m.throughput, m.p99_ms) for m in measured]
    report(best(grid_rows, args.target_ms), best(tune_rows, args.target_ms), grid_s, tune_s,
           len(grid_rows), len(tune_rows), args.target_ms)
    print(f"(points and logs kept in {folder})")
    return 0


def report(grid: dict, tune: dict, grid_s: float, tune_s: float, n_grid: int, n_tune: int,
           target: float) -> None:
    print(f"\n{'goal':<26} {'grid best':<28} {'tune best':<28} {'tune/grid':>9}  target")
    for goal in grid:
        g, t = grid[goal], tune[goal]
        if g is None or t is None:
            print(f"{goal:<26} {g and g[0] or '-':<28} {t and t[0] or '-':<28}")
            continue
        ratio = t[2] / g[2] if goal == "latency" else t[1] / g[1]
        bound = "<= 1.03" if goal == "latency" else ">= 0.97"
        figure = (lambda r: f"{r[0]} {r[2]:.1f}ms") if goal == "latency" else \
            (lambda r: f"{r[0]} {r[1]:.1f}/s")
        print(f"{goal:<26} {figure(g):<28} {figure(t):<28} {ratio:>9.3f}  {bound}")
    print(f"{'time':<26} {f'{grid_s:.0f} s ({n_grid} points)':<28} "
          f"{f'{tune_s:.0f} s ({n_tune} points)':<28} {tune_s / grid_s:>9.3f}  <= 0.25")
    print(f"(throughput under target: p99 <= {target:g} ms)")


if __name__ == "__main__":
    sys.exit(main())
