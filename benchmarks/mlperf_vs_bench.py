#!/usr/bin/env python3
"""`rn50 mlperf` beside `rn50 bench`: the LoadGen harness against rn50's own timed loop.

Alternating rounds, the same model, engine, precision, batch and instances:

- Offline samples/s vs `rn50 bench` images/s at the same batch (target: >= 0.97);
- SingleStream p90 vs `rn50 bench -b 1` p90 (target: <= 1.03);
- Server find-peak: the highest QPS with p99 within 15 ms, per precision, and what limits it.

LoadGen runs here are shorter than the rules (--duration, --count 1), so they are INVALID
for submission; the ratios are what this script is for.

    python benchmarks/mlperf_vs_bench.py [--precision fp32,bfloat16,int8] [--batch 16]
                                         [--rounds 2] [--seconds 20] [--no-server]
                                         [--engine-cores N]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path


ENGINE_FLAGS: list[str] = []  # --engine-cores N: --num-cores N for both bench and mlperf


def rn50(*argv: str, folder: Path) -> dict:
    """Run rn50; its result JSON."""
    out = folder / f"r{len(list(folder.glob('r*.json')))}.json"
    extra = ["--json", str(out)] if argv[0] == "bench" else []
    proc = subprocess.run([sys.executable, "-m", "rn50", *argv, *extra, *ENGINE_FLAGS,
                           "--output-dir", str(folder / "logs")], capture_output=True, text=True)
    if proc.returncode:
        raise SystemExit(f"rn50 {' '.join(argv)} failed: {proc.stderr.strip()[-500:]}")
    if argv[0] == "mlperf":
        line = next(ln for ln in proc.stdout.splitlines() if ln.startswith("Results JSON: "))
        return json.loads(Path(line.split(": ", 1)[1]).read_text())
    return json.loads(out.read_text())


def offline_round(precision: str, batch: int, seconds: float, folder: Path) -> tuple:
    common = ("--precision", precision, "-b", str(batch))
    bench = rn50("bench", *common, "--duration", str(seconds), "--steps", "1", folder=folder)
    mlperf = rn50("mlperf", "--scenario", "Offline", *common, "--duration", str(seconds),
                  "--count", "1", "--performance-sample-count", "256", folder=folder)
    return mlperf["metric"]["value"], bench["summary"]["throughput_images_per_sec"]


def single_stream_round(precision: str, seconds: float, folder: Path) -> tuple:
    bench = rn50("bench", "--precision", precision, "-b", "1", "--duration", str(seconds),
                 "--steps", "1", folder=folder)
    mlperf = rn50("mlperf", "--scenario", "SingleStream", "--precision", precision,
                  "--duration", str(seconds), "--count", "1", "--performance-sample-count",
                  "256", folder=folder)
    return mlperf["metric"]["value"], bench["summary"]["latency_ms"]["p90"]


def server_peak(precision: str, seconds: float, folder: Path) -> dict:
    return rn50("mlperf", "--scenario", "Server", "--mode", "find-peak", "--precision",
                precision, "--duration", str(seconds), "--count", "1",
                "--performance-sample-count", "256", folder=folder)


def server_line(precision: str, peak: dict, p90_b1: float) -> str:
    """The peak QPS, its p99, and what limits it."""
    p99 = peak["latency_ms"].get("99.00", float("nan"))
    if not peak["peak_qps"]:
        why = (f"none: one image takes {p90_b1:.1f} ms (bench p90, batch 1), about the 15 ms "
               "target or more, so queueing alone breaks it")
    elif peak.get("peak_confirmed"):
        why = (f"p99 {p99:.2f} ms at the confirmation run; limited by queueing on one "
               f"worker: at {p90_b1:.1f} ms a query, the tail reaches 15 ms well below "
               f"{1000 / p90_b1:.0f} QPS (the engine's own rate)")
    else:
        why = f"not confirmed: p99 {p99:.2f} ms at the confirmation run (short runs are noisy)"
    return f"{precision:>9} {'Server peak QPS, p99 <= 15 ms':<34} {peak['peak_qps']:>10.1f}  {why}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--precision", default="fp32,bfloat16,int8")
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--no-server", action="store_true")
    parser.add_argument("--engine-cores", type=int, help="engine on this many cores (bench "
                        "and mlperf alike), leaving the rest to LoadGen and rn50's harness")
    args = parser.parse_args()
    if args.engine_cores:
        ENGINE_FLAGS[:] = ["--num-cores", str(args.engine_cores)]
        print(f"engine on {args.engine_cores} core(s) for bench and mlperf alike")
    folder = Path(tempfile.mkdtemp(prefix="rn50-mlperf-vs-bench-"))
    print(f"{'precision':>9} {'figure':<34} {'mlperf':>10} {'bench':>10} {'ratio':>7}  target")
    for precision in args.precision.split(","):
        offline = [offline_round(precision, args.batch, args.seconds, folder)
                   for _ in range(args.rounds)]
        single = [single_stream_round(precision, args.seconds, folder)
                  for _ in range(args.rounds)]
        for name, pairs, target in ((f"Offline img/s, batch {args.batch}", offline, ">= 0.97"),
                                    ("SingleStream p90 ms, batch 1", single, "<= 1.03")):
            ratio = statistics.median(m / b for m, b in pairs)
            print(f"{precision:>9} {name:<34} {statistics.median(m for m, _ in pairs):>10.2f} "
                  f"{statistics.median(b for _, b in pairs):>10.2f} {ratio:>7.3f}  {target}",
                  flush=True)
        if not args.no_server:
            print(server_line(precision, server_peak(precision, args.seconds, folder),
                              statistics.median(b for _, b in single)), flush=True)
    print(f"\nruns and LoadGen logs: {folder}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
