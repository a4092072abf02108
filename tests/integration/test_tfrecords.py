"""TFRecords: `rn50 build-tfrecords` from real image files, read back by us and by TensorFlow,
files TensorFlow writes read by us, and damaged files reported record by record."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from rn50.data.example import ExampleCodec
from rn50.data.tfrecord import BadRecord, Record, iter_records, write_records

SYNSETS = ("n01440764", "n01443537")


def photo(width: int, height: int, seed: int) -> Image.Image:
    """A smooth, photo-like RGB image (gradients and a disc), not noise."""
    y, x = np.mgrid[0:height, 0:width]
    rng = np.random.default_rng(seed)
    cx, cy, r = rng.uniform(0.3, 0.7) * width, rng.uniform(0.3, 0.7) * height, height / 4
    disc = ((x - cx) ** 2 + (y - cy) ** 2 < r ** 2) * 120
    rgb = np.stack([x * 255 / width, y * 255 / height, disc + 60], axis=-1)
    return Image.fromarray(np.clip(rgb, 0, 255).astype(np.uint8))


@pytest.fixture
def image_tree(tmp_path) -> tuple[Path, Path, dict[str, tuple[str, tuple[int, int]]]]:
    """DIR/<synset>/<files> in every mode the script must handle, plus a labels file."""
    root = tmp_path / "raw"
    expected = {}  # filename -> (synset, (width, height)) for every real image
    for i, synset in enumerate(SYNSETS):
        folder = root / synset
        folder.mkdir(parents=True)
        photo(500, 375, i).save(folder / f"rgb_{i}.JPEG", quality=90)
        photo(333, 500, i + 10).save(folder / f"png_{i}.png")
        photo(200, 150, i + 20).convert("RGBA").save(folder / f"rgba_{i}.png")
        photo(320, 240, i + 30).convert("L").save(folder / f"gray_{i}.jpg")
        photo(256, 256, i + 40).convert("CMYK").save(folder / f"cmyk_{i}.jpg")
        for name, size in ((f"rgb_{i}.JPEG", (500, 375)), (f"png_{i}.png", (333, 500)),
                           (f"rgba_{i}.png", (200, 150)), (f"gray_{i}.jpg", (320, 240)),
                           (f"cmyk_{i}.jpg", (256, 256))):
            expected[name] = (synset, size)
    (root / SYNSETS[0] / "notes.txt").write_text("not an image")
    good = (root / SYNSETS[1] / "rgb_1.JPEG").read_bytes()
    (root / SYNSETS[1] / "truncated.jpg").write_bytes(good[: len(good) // 2])
    labels = tmp_path / "labels.txt"
    labels.write_text("\n".join(SYNSETS) + "\n")
    return root, labels, expected


def build(run_cli, root, labels, out, *extra):
    return run_cli("-m", "rn50", "build-tfrecords", "--train_directory", str(root),
                   "--output_directory", str(out), "--labels_file", str(labels),
                   "--train_shards", "2", "--num_threads", "2", *extra)


def read_all(paths) -> list[dict]:
    codec = ExampleCodec()
    examples = []
    for path in paths:
        for record in iter_records(path):
            assert isinstance(record, Record), record
            examples.append(codec.decode(record.data))
    return examples


def test_build_tfrecords_like_build_image_data(run_cli, image_tree, tmp_path):
    root, labels, expected = image_tree
    out = tmp_path / "tfrecords"
    proc = build(run_cli, root, labels, out)
    assert proc.returncode == 0, proc.stderr
    assert sorted(p.name for p in out.iterdir()) == ["train-00000-of-00002",
                                                     "train-00001-of-00002"]
    assert "train: 10 images in 2 shard(s)" in proc.stdout
    assert "skipped 2 file(s)" in proc.stdout
    assert "notes.txt: not a readable image" in proc.stdout
    assert "truncated.jpg: not a readable image" in proc.stdout
    assert "train: 12/12 images (100%)" in proc.stderr  # progress
    examples = read_all(sorted(out.iterdir()))
    assert len(examples) == 10
    seen = set()
    for ex in examples:
        name = ex["image/filename"][0].decode()
        synset, (width, height) = expected[name]
        assert ex["image/class/label"] == [SYNSETS.index(synset) + 1]  # 0 = background
        assert ex["image/class/text"] == [synset.encode()]
        assert (ex["image/width"], ex["image/height"]) == ([width], [height])
        assert ex["image/format"] == [b"JPEG"] and ex["image/colorspace"] == [b"RGB"]
        with Image.open(io.BytesIO(ex["image/encoded"][0])) as image:
            assert (image.format, image.mode, image.size) == ("JPEG", "RGB", (width, height))
        seen.add(name)
    assert seen == set(expected)
    # an RGB JPEG is stored byte for byte
    rgb = next(ex for ex in examples if ex["image/filename"] == [b"rgb_0.JPEG"])
    assert rgb["image/encoded"][0] == (root / SYNSETS[0] / "rgb_0.JPEG").read_bytes()


def test_shuffled_with_the_scripts_seed_and_reproducible(run_cli, image_tree, tmp_path):
    root, labels, _ = image_tree
    build(run_cli, root, labels, tmp_path / "a")
    build(run_cli, root, labels, tmp_path / "b")
    names = [[e["image/filename"][0] for e in read_all(sorted((tmp_path / d).iterdir()))]
             for d in "ab"]
    assert names[0] == names[1]
    assert names[0] != sorted(names[0])  # shuffled, not in folder order


@pytest.mark.parametrize("extra, message", [
    (("--strict",), ": not a readable image"),
    (("--train_shards", "3"), "--num-threads 2 must divide --train-shards 3"),
])
def test_build_errors_are_one_line(run_cli, image_tree, tmp_path, extra, message):
    root, labels, _ = image_tree
    proc = build(run_cli, root, labels, tmp_path / "o", *extra)
    assert proc.returncode != 0
    assert message in proc.stderr.strip().splitlines()[-1]


def test_labels_file_naming_a_missing_folder(run_cli, image_tree, tmp_path):
    root, labels, _ = image_tree
    labels.write_text("n01440764\nn99999999\n")
    proc = build(run_cli, root, labels, tmp_path / "o")
    assert proc.returncode == 2
    assert "n99999999" in proc.stderr and "no such folder" in proc.stderr


def test_tensorflow_reads_what_we_write(run_cli, image_tree, tmp_path):
    tf = pytest.importorskip("tensorflow")
    root, labels, expected = image_tree
    out = tmp_path / "tfrecords"
    assert build(run_cli, root, labels, out).returncode == 0
    spec = {"image/encoded": tf.io.FixedLenFeature([], tf.string),
            "image/class/label": tf.io.FixedLenFeature([], tf.int64),
            "image/filename": tf.io.FixedLenFeature([], tf.string),
            "image/height": tf.io.FixedLenFeature([], tf.int64),
            "image/width": tf.io.FixedLenFeature([], tf.int64)}
    files = [str(p) for p in sorted(out.iterdir())]
    count = 0
    for raw in tf.data.TFRecordDataset(files):
        ex = tf.io.parse_single_example(raw, spec)
        image = tf.io.decode_jpeg(ex["image/encoded"], channels=3)
        name = ex["image/filename"].numpy().decode()
        synset, (width, height) = expected[name]
        assert tuple(image.shape) == (height, width, 3)
        assert int(ex["image/class/label"]) == SYNSETS.index(synset) + 1
        count += 1
    assert count == 10
    # GZIP, as TFRecordDataset(compression_type="GZIP") reads it
    gz = tmp_path / "payloads.gz.tfrecord"
    write_records(gz, [b"first", b"second" * 1000], compression="GZIP")
    got = [r.numpy() for r in tf.data.TFRecordDataset(str(gz), compression_type="GZIP")]
    assert got == [b"first", b"second" * 1000]


def test_we_read_what_tensorflow_writes(tmp_path):
    tf = pytest.importorskip("tensorflow")
    payloads = []
    for i in range(5):
        example = tf.train.Example(features=tf.train.Features(feature={
            "image/encoded": tf.train.Feature(bytes_list=tf.train.BytesList(value=[b"x" * i])),
            "image/class/label": tf.train.Feature(int64_list=tf.train.Int64List(value=[i])),
            "image/object/bbox/xmin": tf.train.Feature(
                float_list=tf.train.FloatList(value=[0.25, 0.5]))}))
        payloads.append(example.SerializeToString())
    for compression in ("", "GZIP"):
        path = tmp_path / f"tf_{compression or 'plain'}.tfrecord"
        with tf.io.TFRecordWriter(str(path), options=tf.io.TFRecordOptions(
                compression_type=compression)) as writer:
            for p in payloads:
                writer.write(p)
        records = list(iter_records(path))
        assert [r.data for r in records] == payloads
        decoded = ExampleCodec().decode(records[3].data)
        assert decoded["image/class/label"] == [3]
        assert decoded["image/encoded"] == [b"xxx"]
        assert decoded["image/object/bbox/xmin"] == [0.25, 0.5]


def test_damaged_files_are_reported_record_by_record(tmp_path):
    path = tmp_path / "f.tfrecord"
    write_records(path, [b"a" * 100, b"b" * 100, b"c" * 100])
    data = bytearray(path.read_bytes())
    data[116 + 12 + 5] ^= 0xFF  # a byte inside record 1's payload
    damaged = tmp_path / "crc.tfrecord"
    damaged.write_bytes(bytes(data))
    got = list(iter_records(damaged))
    assert [type(r) for r in got] == [Record, BadRecord, Record]
    assert got[1].reason == "data CRC mismatch" and not got[1].fatal
    assert "record 1 at byte 116" in got[1].describe()
    assert got[2].data == b"c" * 100  # the run goes on after a bad record

    truncated = tmp_path / "short.tfrecord"
    truncated.write_bytes(path.read_bytes()[:-30])
    got = list(iter_records(truncated))
    assert [type(r) for r in got] == [Record, Record, BadRecord]
    assert got[2].fatal and "truncated record" in got[2].reason

    bad_length = bytearray(path.read_bytes())
    bad_length[116] ^= 0x01
    (tmp_path / "len.tfrecord").write_bytes(bytes(bad_length))
    got = list(iter_records(tmp_path / "len.tfrecord"))
    assert isinstance(got[1], BadRecord) and "length CRC mismatch" in got[1].reason
    assert len(got) == 2


def test_writer_is_atomic(tmp_path):
    path = tmp_path / "out.tfrecord"

    def failing():
        yield b"one"
        raise RuntimeError("source broke")

    with pytest.raises(RuntimeError):
        write_records(path, failing())
    assert not path.exists() and not list(tmp_path.iterdir())


def test_codec_rejects_bytes_that_are_not_an_example():
    from rn50.errors import DataError

    with pytest.raises(DataError, match="not a tf.train.Example"):
        ExampleCodec().decode(b"\xff\xff\xff\xff")
