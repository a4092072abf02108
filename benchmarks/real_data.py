#!/usr/bin/env python3
"""End-to-end (decode + preprocess + inference) vs compute-only, on ImageNet-sized JPEGs.

Writes `--images` photo-like 500x375 JPEGs (quality 90, ~60-110 KB like ImageNet's
validation set) into TFRecords, then runs `rn50 bench --data-location` at each
batch size with the default engine: end-to-end images/s with the decode workers
feeding the engine, and compute-only images/s on the same preprocessed batch.
Each point runs twice, side by side: normalisation inside the engine graph
(uint8 crops in, the default on OpenVINO and ONNX Runtime) and in NumPy in the
engine process (`--no-graph-preprocessing`), so the saving is measured, not
assumed. It also times one worker's share of the work per image (read, decode,
resize+crop) and the per-batch NumPy normalisation, to show where the time goes.

    python benchmarks/real_data.py [--precision fp32,int8] [--batch 16] [--steps 6]
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
from rn50.data.preprocess import crop_image, normalize, open_rgb, spec_from_metadata
from rn50.data.tfrecord import write_records
from rn50.models.metadata import resolve_preprocessing


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
    spec = spec_from_metadata(resolve_preprocessing(("torchvision", "benchmark")), "NCHW")
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


def write_shards(jpegs: list[bytes], data: Path) -> None:
    codec = ExampleCodec()
    data.mkdir()
    half = len(jpegs) // 2
    for shard, part in enumerate((jpegs[:half], jpegs[half:])):
        write_records(data / f"validation-{shard:05d}-of-00002",
                      [codec.encode({"image/encoded": j, "image/class/label": 1 + i % 1000,
                                     "image/filename": f"{shard}_{i}.JPEG"})
                       for i, j in enumerate(part)])


def run_point(args, data: Path, tmp: Path, precision: str, batch: int, graph: bool) -> dict:
    out = tmp / f"{precision}_b{batch}_{'graph' if graph else 'numpy'}.json"
    argv = [sys.executable, "-m", "rn50", "bench", "--backend", args.backend, "--precision",
            precision, "--data-location", str(data), "--batch-size", str(batch),
            "--warmup-steps", "2", "--steps", str(max(args.steps, 128 // batch)),
            "--output-dir", str(tmp / "logs"), "--json", str(out)]
    if not graph:
        argv.append("--no-graph-preprocessing")
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL)
    record = json.loads(out.read_text())
    return dict(record["summary"], workers=record["data_config"]["workers"],
                normalised=record["data"]["normalised"])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", default="16")
    parser.add_argument("--precision", default="fp32,int8")
    parser.add_argument("--steps", type=int, default=6,
                        help="timed steps at the largest batch; small batches run more "
                        "(128 images at least)")
    parser.add_argument("--images", type=int, default=256)
    parser.add_argument("--backend", default="openvino")
    args = parser.parse_args()
    jpegs = [photo_jpeg(i) for i in range(args.images)]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "imagenet"
        write_shards(jpegs, data)
        for precision in args.precision.split(","):
            for batch in (int(b) for b in args.batch.split(",")):
                for graph in (True, False):  # side by side
                    s = run_point(args, data, Path(tmp), precision, batch, graph)
                    rows.append((precision, batch, graph, s))
                    print(json.dumps({"precision": precision, "batch": batch, "graph": graph,
                                      **{k: s[k] for k in (
                                          "end_to_end_images_per_sec",
                                          "compute_only_images_per_sec",
                                          "end_to_end_vs_compute_only", "data_wait_seconds")}}),
                          flush=True)
    report(args, jpegs, rows)
    return 0


def report(args, jpegs: list[bytes], rows: list) -> None:
    sizes = [len(j) for j in jpegs]
    print(f"\n{args.backend}, built-in ResNet-50 v1.5, {len(jpegs)} JPEGs 500x375 "
          f"(median {statistics.median(sizes) / 1024:.0f} KB) in 2 TFRecord shards, "
          f"{len(os.sched_getaffinity(0))} CPUs")
    print(f"{'precision':>9} {'batch':>5} {'normalised':>10} {'end-to-end img/s':>16} "
          f"{'compute-only img/s':>18} {'ratio':>6} {'waited s':>8}")
    for precision, batch, graph, s in rows:
        print(f"{precision:>9} {batch:>5} {'in graph' if graph else 'NumPy':>10} "
              f"{s['end_to_end_images_per_sec']:>16.2f} {s['compute_only_images_per_sec']:>18.2f} "
              f"{s['end_to_end_vs_compute_only']:>6.3f} {s['data_wait_seconds']:>8.2f}")
    for precision, batch, graph, s in rows:
        if graph:
            numpy = next(r[3] for r in rows if r[:2] == (precision, batch) and not r[2])
            print(f"{precision} batch {batch}: in-graph normalisation end-to-end "
                  f"{s['end_to_end_images_per_sec'] / numpy['end_to_end_images_per_sec']:.3f}x "
                  f"the NumPy path ({s['normalised']})")
    cost = where_time_goes(jpegs, max(int(b) for b in args.batch.split(",")))
    engine_ms = 1e3 / max(r[3]["compute_only_images_per_sec"] for r in rows)
    per_image = cost["decode_ms"] + cost["resize_crop_ms"]
    print(f"\nWhere the time goes, per image: decode {cost['decode_ms']:.2f} ms + resize/crop "
          f"{cost['resize_crop_ms']:.2f} ms in a worker (one core) = {per_image:.2f} ms; "
          f"NumPy normalisation {cost['normalize_ms_per_image']:.3f} ms in the engine process "
          f"(none with in-graph normalisation); the engine {engine_ms:.1f} ms per image on all "
          f"cores at its fastest.")


if __name__ == "__main__":
    sys.exit(main())
