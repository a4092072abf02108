#!/usr/bin/env python3
"""`rn50 classify --ray` against local `rn50 classify` on the same images and cores.

One folder of --images JPEGs (made here), classified twice with the same engine, precision
and batch: locally (one pinned engine process + decode workers), then on a Ray cluster
started on this machine (`--ray local`: Ray Data decode tasks + engine actors on the same
cores). Prints both rates and the ratio (target: Ray >= 0.85 x local): over each run as
rn50 records it (local: engine start to last image; Ray: listing to last image, actor
start-up in), and over the whole command (Ray's cluster start-up in).

    python benchmarks/ray_scaling.py [--images 600] [--precision fp32] [--batch 8]
"""

from __future__ import annotations

import argparse
import io
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image


def make_images(folder: Path, count: int) -> None:
    rng = np.random.default_rng(0)
    for i in range(count):
        pixels = (rng.random((375, 500, 3)) * 255).astype(np.uint8)
        buf = io.BytesIO()
        Image.fromarray(pixels).save(buf, format="JPEG", quality=90)
        (folder / f"img{i:05d}.jpg").write_bytes(buf.getvalue())


def classify(folder: Path, out: Path, logs: Path, args, *extra: str) -> tuple[dict, float]:
    start = time.monotonic()
    subprocess.run([sys.executable, "-m", "rn50", "classify", str(folder), "--precision",
                    args.precision, "--batch-size", str(args.batch), "--output", str(out),
                    "--output-dir", str(logs), *extra], check=True, stdout=subprocess.DEVNULL)
    wall = time.monotonic() - start
    record = json.loads(max(logs.glob("classify_*.json"), key=lambda p: p.stat().st_mtime)
                        .read_text())
    return record, wall


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=600)
    parser.add_argument("--precision", default="fp32")
    parser.add_argument("--batch", type=int, default=8)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="rn50-ray-scaling-"))
    folder = tmp / "images"
    folder.mkdir()
    make_images(folder, args.images)
    local, local_wall = classify(folder, tmp / "local.jsonl", tmp / "local", args)
    remote, ray_wall = classify(folder, tmp / "ray.jsonl", tmp / "ray", args, "--ray", "local")
    local_rate = local_run_rate(local)
    ray_rate = remote["images_per_sec"]
    print(f"{'':<40} {'local':>8} {'Ray':>8} {'Ray/local':>10}  target")
    print(f"{'images/s (the run, model loaded)':<40} {local_rate:>8.1f} {ray_rate:>8.1f} "
          f"{ray_rate / local_rate:>10.3f}  >= 0.85")
    print(f"{'images/s (whole command, start-up in)':<40} {args.images / local_wall:>8.1f} "
          f"{args.images / ray_wall:>8.1f} {local_wall / ray_wall:>10.3f}")
    print(f"(plan: {json.dumps(remote['cluster']['actors'])}; files in {tmp})")
    return 0


def local_run_rate(record: dict) -> float:
    """Local classify: images over its run (started_at to finished_at: the engine process
    started, the model loaded, every image classified)."""
    from datetime import datetime

    seconds = (datetime.fromisoformat(record["finished_at"])
               - datetime.fromisoformat(record["started_at"])).total_seconds()
    return record["classified"] / seconds


if __name__ == "__main__":
    sys.exit(main())
