#!/usr/bin/env python3
"""End-to-end (decode + preprocess + inference) vs compute-only, on ImageNet-sized JPEGs.

Writes `--images` photo-like 500x375 JPEGs (quality 90, ~60-110 KB like ImageNet's
validation set) into TFRecords, then runs `rn50 bench --data-location` at each
batch size with the default engine: end-to-end images/s with the decode workers
feeding the engine, and compute-only images/s on the same preprocessed batch.
It also times one worker's share of the work per image (read, decode,
resize+crop) and the per-batch normalisation in the engine process, to show
where the time goes.

    python benchmarks/real_data.py [--batch 1,64] [--steps 6] [--images 256]
"""

from __future__ import annotations

import argparse
import io
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from rn50.data.example import ExampleCodec
from rn50.data.preprocess import PreprocessSpec, crop_image, normalize, open_rgb
from rn50.data.tfrecord import write_records
from rn50.models.metadata import PREPROCESSING


def photo_jpeg(seed: int) -> bytes:
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:375, 0:500]
    fx, fy, phase = rng.uniform(4, 40, 3)
    texture = 60 * np.sin(x / fx + phase) * np.cos(y / fy) + rng.normal(0, 18, (375, 500))
    rgb = np.stack([x * 255 / 500 + texture, 128 + texture, y * 255 / 375 - texture], axis=-1)
    buf = io.BytesIO()
    Image.fromarray(np.clip(rgb, 0, 255).astype(np.uint8)).save(buf, "JPEG", quality=90)
    return buf.getvalue()


def where_time_goes(jpegs: list[bytes], batch: int) -> dict:
    spec = PreprocessSpec("torchvision", 256, 224, "0-1", tuple(PREPROCESSING["torchvision"]
                          ["mean"]), tuple(PREPROCESSING["torchvision"]["std"]), "NCHW")
    decode, crop, crops = [], [], []
    for data in jpegs[:64]:
        t0 = time.perf_counter()
        image = open_rgb(data, spec.resize)
        image.load()
        t1 = time.perf_counter()
        crops.append(crop_image(image, spec))
        t2 = time.perf_counter()
        decode.append(t1 - t0)
        crop.append(t2 - t1)
    t0 = time.perf_counter()
    normalize((crops * (batch // len(crops) + 1))[:batch], spec)
    norm = time.perf_counter() - t0
    return {"decode_ms": statistics.median(decode) * 1e3,
            "resize_crop_ms": statistics.median(crop) * 1e3,
            "normalize_ms_per_image": norm / batch * 1e3}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", default="1,64")
    parser.add_argument("--steps", type=int, default=6,
                        help="timed steps at the largest batch; small batches run more "
                        "(128 images at least)")
    parser.add_argument("--images", type=int, default=256)
    parser.add_argument("--backend", default="openvino")
    args = parser.parse_args()
    jpegs = [photo_jpeg(i) for i in range(args.images)]
    codec = ExampleCodec()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "imagenet"
        data.mkdir()
        half = len(jpegs) // 2
        for shard, part in enumerate((jpegs[:half], jpegs[half:])):
            write_records(data / f"validation-{shard:05d}-of-00002",
                          [codec.encode({"image/encoded": j, "image/class/label": 1 + i % 1000,
                                         "image/filename": f"{shard}_{i}.JPEG"})
                           for i, j in enumerate(part)])
        for batch in (int(b) for b in args.batch.split(",")):
            out = Path(tmp) / f"b{batch}.json"
            argv = [sys.executable, "-m", "rn50", "bench", "--backend", args.backend,
                    "--data-location", str(data), "--batch-size", str(batch),
                    "--warmup-steps", "2", "--steps", str(max(args.steps, 128 // batch)),
                    "--output-dir", str(Path(tmp) / "logs"), "--json", str(out)]
            subprocess.run(argv, check=True, stdout=subprocess.DEVNULL)
            record = json.loads(out.read_text())
            s = record["summary"]
            rows.append((batch, s, record["data_config"]["workers"]))
            print(json.dumps({"batch": batch, **{k: s[k] for k in (
                "end_to_end_images_per_sec", "compute_only_images_per_sec",
                "end_to_end_vs_compute_only", "data_wait_seconds", "measured_seconds")}}),
                flush=True)
    sizes = [len(j) for j in jpegs]
    cost = where_time_goes(jpegs, max(int(b) for b in args.batch.split(",")))
    print(f"\n{args.backend}, FP32 built-in ResNet-50 v1.5, {len(jpegs)} JPEGs 500x375 "
          f"(median {statistics.median(sizes) / 1024:.0f} KB) in 2 TFRecord shards, "
          f"{len(os.sched_getaffinity(0))} CPUs")
    print(f"{'batch':>5} {'workers':>7} {'end-to-end img/s':>16} {'compute-only img/s':>18} "
          f"{'ratio':>6} {'waited s':>8} {'timed s':>7}")
    for batch, s, workers in rows:
        print(f"{batch:>5} {workers:>7} {s['end_to_end_images_per_sec']:>16.2f} "
              f"{s['compute_only_images_per_sec']:>18.2f} {s['end_to_end_vs_compute_only']:>6.3f} "
              f"{s['data_wait_seconds']:>8.2f} {s['measured_seconds']:>7.1f}")
    engine_ms = 1e3 / max(s["compute_only_images_per_sec"] for _, s, _ in rows)
    per_image = cost["decode_ms"] + cost["resize_crop_ms"]
    print(f"\nWhere the time goes, per image: decode {cost['decode_ms']:.2f} ms + resize/crop "
          f"{cost['resize_crop_ms']:.2f} ms in a worker (one core) = {per_image:.2f} ms; "
          f"normalise {cost['normalize_ms_per_image']:.3f} ms in the engine process; the engine "
          f"{engine_ms:.1f} ms per image on all cores. Decoding on the same cores costs about "
          f"{per_image / (per_image + engine_ms * len(os.sched_getaffinity(0))):.1%} of the "
          f"CPU time.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
