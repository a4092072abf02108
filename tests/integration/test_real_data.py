"""Real images end to end: accuracy known by construction, classify with resume, bad records,
the end-to-end benchmark and the seed's real-data commands."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import REPO
from rn50.data.example import ExampleCodec
from rn50.data.sources import open_source
from rn50.data.tfrecord import write_records

pytest.importorskip("openvino")


def photo(width: int, height: int, seed: int) -> bytes:
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width]
    fx, fy = rng.uniform(5, 60, 2)
    rgb = np.stack([x * 255 / width, 128 + 120 * np.sin(x / fx) * np.cos(y / fy),
                    y * 255 / height], axis=-1) * rng.uniform(0.5, 1.0, 3)
    buf = io.BytesIO()
    Image.fromarray(np.clip(rgb, 0, 255).astype(np.uint8)).save(buf, format="JPEG", quality=90)
    return buf.getvalue()


def example(codec: ExampleCodec, jpeg: bytes, label: int | None, name: str) -> bytes:
    features = {"image/encoded": jpeg, "image/filename": name, "image/format": b"JPEG"}
    if label is not None:
        features["image/class/label"] = label
    return codec.encode(features)


def write_set(folder: Path, images: list[bytes], labels: list[int | None]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    codec = ExampleCodec()
    write_records(folder / "validation-00000-of-00001",
                  [example(codec, img, lab, f"img{i}.JPEG")
                   for i, (img, lab) in enumerate(zip(images, labels))])
    return folder


def test_accuracy_on_a_set_whose_answers_are_known_by_construction(run_cli, tmp_path):
    images = [photo(500, 375, i) for i in range(6)]
    unlabelled = write_set(tmp_path / "raw", images, [None] * 6)
    preds = tmp_path / "preds.jsonl"
    proc = run_cli("-m", "rn50", "classify", str(unlabelled), "-k", "10", "--batch-size", "4",
                   "--output", str(preds), "--output-dir", str(tmp_path / "logs"))
    assert proc.returncode == 0, proc.stderr
    rows = [json.loads(line) for line in preds.read_text().splitlines()]
    top = {int(r["key"].rsplit("#", 1)[1]): [t["label"] for t in r["top"]] for r in rows}
    assert sorted(top) == list(range(6)) and all(len(t) == 10 for t in top.values())
    # 2 labels = the model's top-1, 2 = its second choice, 2 = a class outside its top 10
    labels = [top[0][0], top[1][0], top[2][1], top[3][1],
              next(c for c in range(1, 1001) if c not in top[4]),
              next(c for c in range(1, 1001) if c not in top[5])]
    labelled = write_set(tmp_path / "labelled", images, labels)
    proc = run_cli("-m", "rn50", "accuracy", "--data-location", str(labelled), "--batch-size",
                   "4", "--data-workers", "2", "--output-dir", str(tmp_path / "logs"))
    assert proc.returncode == 0, proc.stderr
    assert "Processed 6 images. (Top1 accuracy, Top5 accuracy) = (0.3333, 0.6667)" in proc.stdout
    assert "progress: 6/6 images (100%)" in proc.stdout  # done/total, rate and ETA
    # named by scenario: the classify run above wrote classify_..., this one accuracy_...
    (path,) = (tmp_path / "logs").glob("accuracy_resnet50_inference_fp32_*.json")
    assert len(list((tmp_path / "logs").glob("classify_resnet50_inference_fp32_*.json"))) == 1
    record = json.loads(path.read_text())
    assert record["accuracy"]["top1_correct"] == 2 and record["accuracy"]["top5_correct"] == 4
    assert record["data"]["preprocessing"]["name"] == "torchvision"


def test_bad_records_are_skipped_counted_and_listed(run_cli, tmp_path):
    codec = ExampleCodec()
    good = example(codec, photo(400, 300, 1), 1, "good.JPEG")
    payloads = [good, good.replace(b"good", b"gooe"),
                example(codec, b"\xff\xd8\xff not really a jpeg", 2, "broken.JPEG"),
                b"\x0a\x05garbage", good]
    folder = tmp_path / "data"
    folder.mkdir()
    path = folder / "validation-00000-of-00001"
    write_records(path, payloads)
    raw = bytearray(path.read_bytes())
    second = 16 + len(good)  # record 1 starts here; flip a byte of its payload: CRC mismatch
    raw[second + 12 + 3] ^= 0xFF
    path.write_bytes(bytes(raw))
    proc = run_cli("-m", "rn50", "accuracy", "--data-location", str(folder), "--batch-size", "2",
                   "--output-dir", str(tmp_path / "logs"))
    assert proc.returncode == 0, proc.stderr
    assert "Processed 2 images." in proc.stdout
    assert "Skipped 3 bad image(s)/record(s):" in proc.stdout
    assert "record 1 at byte" in proc.stdout and "data CRC mismatch" in proc.stdout
    record = json.loads(sorted((tmp_path / "logs").glob("*.json"))[-1].read_text())
    assert len(record["skipped"]) == 3 and record["accuracy"]["images"] == 2
    strict = run_cli("-m", "rn50", "accuracy", "--data-location", str(folder), "--strict",
                     "--batch-size", "2", "--output-dir", str(tmp_path / "logs2"))
    assert strict.returncode != 0
    assert "data CRC mismatch" in strict.stderr.strip().splitlines()[-1]


def test_accuracy_without_labels_is_a_clear_error(run_cli, tmp_path):
    folder = tmp_path / "flat"
    folder.mkdir()
    (folder / "a.jpg").write_bytes(photo(300, 300, 3))
    proc = run_cli("-m", "rn50", "accuracy", "--data-location", str(folder),
                   "--output-dir", str(tmp_path / "logs"))
    assert proc.returncode != 0
    (line,) = proc.stderr.strip().splitlines()
    assert "no labels, and accuracy needs them" in line
    assert not (tmp_path / "logs").exists()


def test_classify_resumes_after_a_crash_without_duplicates(run_cli, tmp_path):
    folder = tmp_path / "imgs"
    folder.mkdir()
    for i in range(5):
        (folder / f"p{i}.jpg").write_bytes(photo(320, 240, i))
    (folder / "notes.jpg").write_text("not an image")
    out = tmp_path / "out.jsonl"
    args = ("-m", "rn50", "classify", str(folder), "--batch-size", "2", "--output", str(out),
            "--output-dir", str(tmp_path / "logs"))
    assert run_cli(*args).returncode == 0
    lines = out.read_text().splitlines()
    assert len(lines) == 6  # 5 images and the unreadable one, with its error
    assert sum("error" in json.loads(line) for line in lines) == 1
    first = next(r for r in map(json.loads, lines) if "top" in r)
    assert first["top"][0]["name"] and first["top"][0]["synset"].startswith("n")
    # a crash: the last two results lost, the one before cut mid-line
    out.write_text("\n".join(lines[:3]) + "\n" + lines[3][:25])
    proc = run_cli(*args)
    assert proc.returncode == 0, proc.stderr
    assert "Resuming: 3 image(s) already in" in proc.stderr
    again = [json.loads(line) for line in out.read_text().splitlines()]
    assert sorted(r["key"] for r in again) == sorted(json.loads(x)["key"] for x in lines)


def test_classify_csv_to_stdout_with_class_names(run_cli, tmp_path):
    image = tmp_path / "one.png"
    Image.open(io.BytesIO(photo(300, 200, 7))).save(image)
    proc = run_cli("-m", "rn50", "classify", str(image), "--format", "csv", "-k", "3",
                   "--output-dir", str(tmp_path / "logs"))
    assert proc.returncode == 0, proc.stderr
    header, row = proc.stdout.strip().splitlines()
    assert header.startswith("key,name,label,top1_label,top1_synset,top1_name,top1_prob")
    assert row.split(",")[1] == "one.png"


def test_bench_on_real_data_reports_end_to_end_and_compute_only(run_cli, tmp_path):
    data = write_set(tmp_path / "data", [photo(500, 375, i) for i in range(5)], [1] * 5)
    proc = run_cli("-m", "rn50", "bench", "--data-location", str(data), "--batch-size", "2",
                   "--warmup-steps", "1", "--steps", "3", "--output-dir", str(tmp_path / "o"))
    assert proc.returncode == 0, proc.stderr
    assert "End-to-end (decode + preprocess + inference): " in proc.stdout
    summary = json.loads(next((tmp_path / "o").glob("*.json")).read_text())["summary"]
    # 3 steps asked, rounded up to a multiple of the requests in flight; the 5 images cycled
    in_flight = summary["concurrency"]
    steps = -(-3 // in_flight) * in_flight
    assert summary["steps"] == steps and summary["images"] == 2 * steps
    assert summary["end_to_end_images_per_sec"] > 0 and summary["compute_only_images_per_sec"] > 0
    assert summary["end_to_end_vs_compute_only"] == pytest.approx(
        summary["end_to_end_images_per_sec"] / summary["compute_only_images_per_sec"])


def test_seed_real_data_commands(run_cli, model_cache, tmp_path):
    data = write_set(tmp_path / "imagenet", [photo(500, 375, i) for i in range(4)], [1, 2, 3, 4])
    graph = next(model_cache.glob("*.onnx"))
    seed = (str(REPO / "launch_benchmark.py"), "--in-graph", str(graph), "--model-name",
            "resnet50", "--framework", "openvino", "--precision", "fp32", "--mode", "inference",
            "--data-location", str(data), "--output-dir", str(tmp_path / "o"))
    acc = run_cli(*seed, "--batch-size", "2", "--accuracy-only")
    assert acc.returncode == 0, acc.stderr
    assert "Processed 4 images. (Top1 accuracy, Top5 accuracy) = (" in acc.stdout
    assert "ACCURACY_ONLY: True" in acc.stdout
    bench = run_cli(*seed, "--batch-size", "2", "--benchmark-only", "--", "warmup_steps=1",
                    "steps=2")
    assert bench.returncode == 0, bench.stderr
    assert "End-to-end" in bench.stdout and "Throughput:" in bench.stdout


def test_sources_map_labels(tmp_path):
    classes = tmp_path / "classes"
    for synset in ("n01443537", "n01440764"):
        (classes / synset).mkdir(parents=True)
        (classes / synset / "x.jpg").write_bytes(b"")
    source = open_source([str(classes)])
    assert source.kind == "folders" and source.labelled
    assert [label for _, label in source.entries] == [1, 2]  # ImageNet index + 1, by synset
    flat = tmp_path / "flat"
    flat.mkdir()
    for name in ("ILSVRC2012_val_00000001.JPEG", "ILSVRC2012_val_00000002.JPEG"):
        (flat / name).write_bytes(b"")
    (flat / "val_map.txt").write_text("ILSVRC2012_val_00000001.JPEG 65\n"
                                      "ILSVRC2012_val_00000002.JPEG 970\n")
    source = open_source([str(flat)])
    assert source.labelled and [lab for _, lab in source.entries] == [66, 971]  # 0-based + 1


def test_pipeline_order_max_images_and_repeat(tmp_path):
    from rn50.data.pipeline import Pipeline
    from rn50.data.preprocess import spec_from_metadata
    from rn50.models.metadata import resolve_preprocessing

    data = write_set(tmp_path / "d", [photo(300, 260, i) for i in range(5)], [1, 2, 3, 4, 5])
    spec = spec_from_metadata(resolve_preprocessing(("torchvision", "test")), "NCHW")
    source = open_source([str(data)])
    with Pipeline(source, spec, batch_size=2, workers=2, max_images=3) as pipeline:
        batches = list(pipeline.batches())
    assert [b.labels for b in batches] == [[1, 2], [3]]  # source order, stops at 3
    assert batches[0].array.shape == (2, 3, 224, 224)
    with Pipeline(source, spec, batch_size=2, workers=0, repeat=True) as pipeline:
        stream = pipeline.batches()
        labels = [next(stream).labels for _ in range(4)]
    assert labels == [[1, 2], [3, 4], [5, 1], [2, 3]]  # cycles for benchmarks


def test_real_photographs_shipped_by_scikit_image(run_cli, tmp_path):
    import importlib.util

    found = importlib.util.find_spec("skimage")
    if found is None:
        pytest.skip("scikit-image (which ships sample photographs) is not installed")
    shipped = Path(found.submodule_search_locations[0]) / "data"
    photos = {"n02123045": ("chelsea.png", (451, 300)),      # a cat, RGB PNG
              "n07920052": ("coffee.png", (600, 400)),       # a cup of coffee, RGB PNG
              "n03976467": ("camera.png", (512, 512))}       # a cameraman, grayscale PNG
    raw = tmp_path / "raw"
    for synset, (name, _) in photos.items():
        (raw / synset).mkdir(parents=True)
        (raw / synset / name).write_bytes((shipped / name).read_bytes())
    out = tmp_path / "records"
    proc = run_cli("-m", "rn50", "build-tfrecords", "--validation-directory", str(raw),
                   "--output-directory", str(out), "--validation-shards", "1",
                   "--num-threads", "1")
    assert proc.returncode == 0, proc.stderr
    codec = ExampleCodec()
    from rn50.data.tfrecord import iter_records

    sizes = {}
    for record in iter_records(out / "validation-00000-of-00001"):
        ex = codec.decode(record.data)
        sizes[ex["image/filename"][0].decode()] = (ex["image/width"][0], ex["image/height"][0])
        assert Image.open(io.BytesIO(ex["image/encoded"][0])).mode == "RGB"
    assert sizes == {name: size for name, size in photos.values()}
    preds = tmp_path / "preds.jsonl"
    proc = run_cli("-m", "rn50", "classify", str(out), "--output", str(preds), "-k", "5",
                   "--output-dir", str(tmp_path / "logs"))
    assert proc.returncode == 0, proc.stderr
    rows = [json.loads(line) for line in preds.read_text().splitlines()]
    assert sorted(r["name"] for r in rows) == sorted(n for n, _ in photos.values())
    assert all(len(r["top"]) == 5 and "error" not in r for r in rows)
