#!/usr/bin/env python3
"""rn50 bench vs OpenVINO's own benchmark_app, side by side on the same built-in model.

For each case (batch 1 latency, batch 16 and 64 throughput) both tools run
alternately, `--rounds` times, for the same duration, FP32 on the same cores;
the median of each tool's figures and their ratio are printed. The target is
an invisible harness: throughput ratio >= 0.98 and batch-1 latency ratio <= 1.03.

    python benchmarks/vs_benchmark_app.py [--duration 15] [--rounds 2]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from rn50.config import ModelConfig
from rn50.models.resolve import builtin_model

CASES = (  # batch, the benchmark_app hint matching rn50's default settings for that batch
    (1, "latency"),
    (16, "throughput"),
    (64, "throughput"),
)


def run_rn50(model: str, batch: int, duration: float, workdir: Path) -> dict:
    out = workdir / f"rn50_b{batch}_{len(list(workdir.iterdir()))}.json"
    cmd = [sys.executable, "-m", "rn50", "bench", "--model", model, "--batch-size", str(batch),
           "--duration", str(duration), "--steps", "1", "--output-dir", str(workdir / "logs"),
           "--json", str(out)]
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    record = json.loads(out.read_text())
    return {"throughput": record["summary"]["throughput_images_per_sec"],
            "p50_ms": record["summary"]["latency_ms"]["p50"],
            "streams": record["engine"]["applied"]["NUM_STREAMS"]}


def run_benchmark_app(model: str, batch: int, hint: str, duration: float) -> dict:
    exe = Path(sys.executable).with_name("benchmark_app")
    cmd = [str(exe), "-m", model, "-d", "CPU", "-b", str(batch), "-hint", hint,
           "-infer_precision", "f32", "-t", str(int(duration))]
    text = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    throughput = float(re.search(r"Throughput:\s+([\d.]+) FPS", text).group(1))
    median = float(re.search(r"Median:\s+([\d.]+) ms", text).group(1))
    streams = re.search(r"NUM_STREAMS: (\d+)", text)
    return {"throughput": throughput, "p50_ms": median,
            "streams": streams.group(1) if streams else "?"}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=15.0)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()

    model = builtin_model(ModelConfig(), os.environ, print).path
    threads = len(os.sched_getaffinity(0))
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        for batch, hint in CASES:
            ours, theirs = [], []
            for _ in range(args.rounds):
                ours.append(run_rn50(model, batch, args.duration, workdir))
                theirs.append(run_benchmark_app(model, batch, hint, args.duration))
            row = {"batch": batch, "streams": f"{ours[0]['streams']}/{theirs[0]['streams']}"}
            for key in ("throughput", "p50_ms"):
                row[f"rn50_{key}"] = statistics.median(r[key] for r in ours)
                row[f"app_{key}"] = statistics.median(r[key] for r in theirs)
            rows.append(row)
            print(f"batch {batch}: rn50 {[round(r['throughput'], 2) for r in ours]} img/s, "
                  f"benchmark_app {[round(r['throughput'], 2) for r in theirs]} img/s", flush=True)

    print(f"\nFP32, built-in ResNet-50 v1.5, {threads} threads, {args.rounds} alternating rounds "
          f"of {args.duration:g} s, medians")
    print(f"{'batch':>5}  {'streams rn50/app':>16}  {'rn50 img/s':>10}  {'app img/s':>9}  "
          f"{'ratio':>6}  {'rn50 p50 ms':>11}  {'app p50 ms':>10}  {'ratio':>6}")
    for r in rows:
        print(f"{r['batch']:>5}  {r['streams']:>16}  {r['rn50_throughput']:>10.2f}  "
              f"{r['app_throughput']:>9.2f}  {r['rn50_throughput'] / r['app_throughput']:>6.3f}  "
              f"{r['rn50_p50_ms']:>11.2f}  {r['app_p50_ms']:>10.2f}  "
              f"{r['rn50_p50_ms'] / r['app_p50_ms']:>6.3f}")
    print("targets: throughput ratio >= 0.98; batch-1 latency ratio <= 1.03")
    return 0


if __name__ == "__main__":
    sys.exit(main())
