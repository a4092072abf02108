#!/usr/bin/env python3
"""FP32 vs BF16 vs INT8 on the default engine, and OpenVINO's benchmark_app on the same files.

For each precision and batch (1: latency hint, 64: throughput hint), `rn50 bench
--precision P` and `benchmark_app` run back to back for the same duration: rn50
on the built-in model (INT8: the NNCF model it quantizes once and caches),
benchmark_app on the very file rn50 ran (`-infer_precision f32|bf16`; the INT8 IR
as is). Prints p50/p90 at batch 1, throughput at batch 64, ratios to FP32, and
rn50 / benchmark_app. Targets here: INT8 >= 3.5x and BF16 >= 1.8x FP32
throughput, and rn50 no slower than benchmark_app.

    python benchmarks/precision.py [--duration 10] [--batch 1,64] [--rounds 2]
        [--precision fp32,bfloat16,int8]
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

APP_PRECISION = {"fp32": "f32", "bfloat16": "bf16", "int8": None}


def run_rn50(precision: str, batch: int, duration: float, workdir: Path) -> dict:
    out = workdir / f"{precision}_b{batch}_{len(list(workdir.glob('*.json')))}.json"
    subprocess.run([sys.executable, "-m", "rn50", "bench", "--precision", precision,
                    "--batch-size", str(batch), "--duration", str(duration), "--steps", "1",
                    "--output-dir", str(workdir / "logs"), "--json", str(out)],
                   check=True, stdout=subprocess.DEVNULL)
    record = json.loads(out.read_text())
    s = record["summary"]
    return {"throughput": s["throughput_images_per_sec"], "p50": s["latency_ms"]["p50"],
            "p90": s["latency_ms"]["p90"], "model": record["model"]["path"],
            "executed": record["engine"]["execution_precision"]}


def run_app(model: str, precision: str, batch: int, duration: float) -> dict:
    exe = Path(sys.executable).with_name("benchmark_app")
    cmd = [str(exe), "-m", model, "-d", "CPU", "-b", str(batch), "-t", str(int(duration)),
           "-hint", "latency" if batch == 1 else "throughput"]
    if APP_PRECISION[precision]:
        cmd += ["-infer_precision", APP_PRECISION[precision]]
    text = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    p90 = re.search(r"90 percentile:\s+([\d.]+) ms", text)
    return {"throughput": float(re.search(r"Throughput:\s+([\d.]+) FPS", text).group(1)),
            "p50": float(re.search(r"Median:\s+([\d.]+) ms", text).group(1)),
            "p90": float(p90.group(1)) if p90 else float("nan")}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--batch", default="1,64")
    parser.add_argument("--precision", default="fp32,bfloat16,int8",
                        help="precisions to run (x FP32 needs fp32 among them)")
    parser.add_argument("--rounds", type=int, default=2,
                        help="alternating rounds (who runs first alternates); medians")
    args = parser.parse_args()
    batches = [int(b) for b in args.batch.split(",")]
    precisions = [p for p in ("fp32", "bfloat16", "int8") if p in args.precision.split(",")]
    runs: dict = {}
    with tempfile.TemporaryDirectory() as tmp:
        for round_ in range(args.rounds):
            for batch in batches:
                for precision in precisions:
                    if round_ % 2 == 0:
                        ours = run_rn50(precision, batch, args.duration, Path(tmp))
                        app = run_app(ours["model"], precision, batch, args.duration)
                    else:
                        model = runs[(precision, batch)][0][0]["model"]
                        app = run_app(model, precision, batch, args.duration)
                        ours = run_rn50(precision, batch, args.duration, Path(tmp))
                    entry = runs.setdefault((precision, batch), ([], []))
                    entry[0].append(ours)
                    entry[1].append(app)
                    print(f"round {round_ + 1} {precision:>8} b{batch}: rn50 "
                          f"{ours['throughput']:.2f} img/s ({ours['executed']}), benchmark_app "
                          f"{app['throughput']:.2f}", flush=True)
    results = {key: tuple({k: statistics.median(r[k] for r in rs) if k != "model" and
                           k != "executed" else rs[0][k] for k in rs[0]} for rs in pair)
               for key, pair in runs.items()}
    print("\nopenvino, built-in ResNet-50 v1.5; INT8 = NNCF on rn50's calibration; "
          f"{args.rounds} alternating round(s) of {args.duration:g} s, medians")
    print(f"{'precision':>9} {'batch':>5} {'rn50 img/s':>10} {'x FP32':>6} {'rn50 p50':>8} "
          f"{'rn50 p90':>8} {'app img/s':>9} {'app p50':>8} {'rn50/app':>8} {'paired':>6}")
    for batch in batches:
        base = results[("fp32", batch)][0]["throughput"] if "fp32" in precisions else None
        for precision in precisions:
            ours, app = results[(precision, batch)]
            # each round's rn50 run against the app run right beside it: slow spells
            # of the machine hit both sides of a pair alike
            paired = statistics.median(o["throughput"] / a["throughput"]
                                       for o, a in zip(*runs[(precision, batch)]))
            print(f"{precision:>9} {batch:>5} {ours['throughput']:>10.2f} "
                  f"{ours['throughput'] / base if base else float('nan'):>6.2f} {ours['p50']:>8.2f} {ours['p90']:>8.2f} "
                  f"{app['throughput']:>9.2f} {app['p50']:>8.2f} "
                  f"{ours['throughput'] / app['throughput']:>8.3f} {paired:>6.3f}")
    print("rn50/app: ratio of the medians; paired: median over rounds of rn50 / the app run "
          "beside it")
    print("targets: INT8 >= 3.5x and BF16 >= 1.8x FP32 throughput; rn50/app >= 1 (within noise)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
