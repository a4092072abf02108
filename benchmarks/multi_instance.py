#!/usr/bin/env python3
"""One process over all cores vs several pinned instances, side by side in one run.

For each batch size and instance count, `rn50 bench --num-instances N` runs the
built-in FP32 ResNet-50 (N = 1 is one plain process over all cores); the table
gives aggregate throughput (all images / wall span of the measured regions),
the merged p50/p90 step latency and the ratio to one instance. The order of the
runs alternates from round to round; figures are medians over rounds. Then it
shows, by dry run, what rn50 would start on the seed's 2 x 28-core SMT server
for latency and for throughput.

    python benchmarks/multi_instance.py [--backend openvino] [--batch 1,16]
        [--instances 1,2] [--duration 10] [--rounds 2]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SEED_SERVER = REPO / "tests" / "data" / "lscpu_2x28_smt.txt"


def run(backend: str, batch: int, instances: int, args, workdir: Path) -> dict:
    out = workdir / f"b{batch}_n{instances}_{len(list(workdir.glob('*.json')))}.json"
    argv = [sys.executable, "-m", "rn50", "bench", "--backend", backend, "--batch-size",
            str(batch), "--num-instances", str(instances), "--warmup-steps",
            str(args.warmup_steps), "--steps", "1", "--duration", str(args.duration),
            "--output-dir", str(workdir / "logs"), "--json", str(out)]
    proc = subprocess.run(argv, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"failed: {' '.join(argv)}\n{proc.stderr.strip()}")
    record = json.loads(out.read_text())
    summary = record["summary"]
    return {"throughput": summary["throughput_images_per_sec"],
            "p50": summary["latency_ms"]["p50"], "p90": summary["latency_ms"]["p90"],
            "skew_ms": summary.get("start_skew_ms", 0.0),
            "cpus": [e["settings"]["cpus"]["value"] for e in record.get("instances", [])]
            or [record["settings"]["cpus"]["value"]],
            "streams": record["engine"]["applied"].get("NUM_STREAMS", "-")}


def dry_run_choice(mode: str) -> list[str]:
    argv = [sys.executable, "-m", "rn50", "bench", "--dry-run", "--topology", str(SEED_SERVER),
            "--mode", mode]
    text = subprocess.run(argv, capture_output=True, text=True, check=True).stdout
    keep = ("Instances:", "instance ", "Launch (", "batch_size", "cpus ", "intra_op_threads")
    return [line for line in text.splitlines() if line.strip().startswith(keep)]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", default="openvino")
    parser.add_argument("--batch", default="1,16")
    parser.add_argument("--instances", default="1,2")
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--warmup-steps", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    batches = [int(b) for b in args.batch.split(",")]
    counts = [int(n) for n in args.instances.split(",")]
    cores = len(os.sched_getaffinity(0))
    results: dict[tuple[int, int], list[dict]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        order = [(b, n) for b in batches for n in counts]
        for round_ in range(args.rounds):
            for batch, count in (order if round_ % 2 == 0 else order[::-1]):
                r = run(args.backend, batch, count, args, Path(tmp))
                results.setdefault((batch, count), []).append(r)
                print(f"round {round_ + 1}: batch {batch:>3}, {count} instance(s): "
                      f"{r['throughput']:.2f} img/s, p90 {r['p90']:.1f} ms", flush=True)
    print(f"\n{args.backend}, FP32 built-in ResNet-50 v1.5, {cores} CPUs, {args.rounds} "
          f"alternating round(s) of {args.duration:g} s, medians")
    print(f"{'batch':>5} {'instances x cores':>17} {'img/s':>8} {'vs 1':>6} {'p50 ms':>8} "
          f"{'p90 ms':>8} {'skew ms':>7} {'streams':>7}")
    for batch in batches:
        base = statistics.median(r["throughput"] for r in results[(batch, counts[0])])
        for count in counts:
            rs = results[(batch, count)]
            med = {k: statistics.median(r[k] for r in rs) for k in ("throughput", "p50", "p90",
                                                                     "skew_ms")}
            shape = f"{count} x {len(rs[0]['cpus'][0])}"
            print(f"{batch:>5} {shape:>17} {med['throughput']:>8.2f} "
                  f"{med['throughput'] / base:>6.3f} {med['p50']:>8.1f} {med['p90']:>8.1f} "
                  f"{med['skew_ms']:>7.1f} {rs[0]['streams']!s:>7}")
    for mode in ("latency", "throughput"):
        print(f"\nWhat rn50 would run for {mode} on the seed's 2 x 28-core SMT server (dry run):")
        print("\n".join(dry_run_choice(mode)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
