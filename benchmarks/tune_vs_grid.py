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
import json
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
    parser.add_argument("--from", dest="again", metavar="DIR", help="print the comparison "
                        "again from a kept run's folder (measures nothing)")
    args = parser.parse_args()
    folder = Path(args.again or tempfile.mkdtemp(prefix="rn50-tune-vs-grid-"))
    if not args.again:
        measured, grid_s = run_grid(args, folder / "grid")
        (folder / "times.json").write_text(json.dumps({"grid_s": grid_s}))
        print(f"grid: {len(measured)} points in {grid_s:.0f} s")
        start = time.monotonic()
        subprocess.run([sys.executable, "-m", "rn50", "tune", "--backends", args.backends,
                        "--max-batch", str(args.max_batch), "--point-seconds",
                        str(args.point_seconds), "--latency-target-ms", str(args.target_ms),
                        "--budget", f"{args.share * grid_s:.0f}s", "--output-dir",
                        str(folder / "tune")], check=True, stdout=subprocess.DEVNULL)
        (folder / "times.json").write_text(json.dumps(
            {"grid_s": grid_s, "tune_s": time.monotonic() - start}))
    times = json.loads((folder / "times.json").read_text())
    tuned = load_result(folder / "tune" / "tune.json")
    tune_rows = [(p["key"], p["throughput"], p["p99_ms"]) for p in tuned.points if not p["error"]]
    grid_rows = [(r["point"], r["throughput"], r["p99_ms"]) for r in
                 map(json.loads, (folder / "grid" / "points.jsonl").read_text().splitlines()[1:])
                 if not r["error"]]
    grid_rows = [(key_of(p), t, l) for p, t, l in grid_rows]
    report(grid_rows, tune_rows, times, args.target_ms)
    print(f"(points and logs kept in {folder}; again: --from {folder})")
    return 0


def key_of(point: dict) -> str:
    return Point(**point).key


def report(grid_rows: list, tune_rows: list, times: dict, target: float) -> None:
    """For each goal: the grid's best; tune's choice as the grid measured that same
    configuration (the quality of the choice), and as tune measured it (with run-to-run
    noise)."""
    grid, tune = best(grid_rows, target), best(tune_rows, target)
    by_key = {key: (key, t, l) for key, t, l in grid_rows}
    print(f"\n{'goal':<24} {'grid best':<30} {'tune chose':<30} {'choice':>7} {'as tuned':>9}"
          "  target")
    for goal in grid:
        g, t = grid[goal], tune[goal]
        if g is None or t is None:
            print(f"{goal:<24} {g and g[0] or '-':<30} {t and t[0] or '-':<30}")
            continue
        same = by_key.get(t[0], t)
        latency = goal == "latency"
        ratio = (lambda r: r[2] / g[2]) if latency else (lambda r: r[1] / g[1])
        show = (lambda r: f"{r[0]} {r[2]:.1f}ms") if latency else \
            (lambda r: f"{r[0]} {r[1]:.0f}/s")
        print(f"{goal:<24} {show(g):<30} {show(same):<30} {ratio(same):>7.3f} "
              f"{ratio(t):>9.3f}  {'<= 1.03' if latency else '>= 0.97'}")
    grid_s, tune_s = times["grid_s"], times["tune_s"]
    print(f"{'time':<24} {f'{grid_s:.0f} s ({len(grid_rows)} points)':<30} "
          f"{f'{tune_s:.0f} s ({len(tune_rows)} configurations)':<30} "
          f"{tune_s / grid_s:>7.3f} {'':>9}  <= 0.25")
    print(f"(throughput under target: p99 <= {target:g} ms; 'choice': tune's pick as the grid "
          "measured it; 'as tuned': as tune measured it)")


if __name__ == "__main__":
    sys.exit(main())
