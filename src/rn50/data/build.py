"""`rn50 build-tfrecords`: the seed's `build_image_data.py`, without TensorFlow.

From `DIR/<label>/<image>` and a labels file (one folder name per line), write
sharded TFRecords of `tf.train.Example`s as that script does:
- label indices start at 1 (0 is left for the background class), in labels-file
  order; without a labels file, the sorted sub-folder names;
- files shuffled with that script's seed (12345) before sharding;
- shards `train-00000-of-00002`, `validation-00000-of-00002`, ... ; `--num-threads`
  workers each write a contiguous range of shards (shards must divide evenly);
- features `image/encoded`, `image/format` (JPEG), `image/filename`,
  `image/class/label`, `image/class/text`, `image/class/synset` (the folder name),
  `image/height`, `image/width`, `image/colorspace` (RGB), `image/channels` (3);
- RGB JPEGs are stored byte for byte; anything else Pillow opens (PNG, CMYK or
  grayscale JPEG, RGBA, ...) is converted to RGB and re-encoded as JPEG (quality 95);
- a file that is not an image, or a decompression bomb, is skipped, counted and
  listed (`strict=True` makes it fatal).
Each shard is written atomically.
"""

from __future__ import annotations

import io
import random
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from PIL import Image, UnidentifiedImageError

from ..errors import ConfigError, DataError
from ..limits import IMAGE_MAX_BYTES, read_bytes, read_text
from ..measure.progress import count_line
from .example import ExampleCodec
from .preprocess import MAX_PIXELS
from .tfrecord import write_records

SHUFFLE_SEED = 12345
JPEG_QUALITY = 95


@dataclass(frozen=True)
class ImageEntry:
    path: Path
    label: int
    text: str


def read_labels(labels_file: str | None, data_dir: Path) -> list[str]:
    """Folder names in label order: from the labels file, else the sorted sub-folders."""
    if labels_file is None:
        names = sorted(p.name for p in data_dir.iterdir() if p.is_dir())
        if not names:
            raise ConfigError(f"{data_dir}: no class sub-folders (expected DIR/<label>/<image>)")
        return names
    lines = read_text(labels_file, "--labels-file", error=ConfigError).splitlines()
    names = [line.strip() for line in lines if line.strip()]
    if not names:
        raise ConfigError(f"--labels-file {labels_file}: no labels in it")
    return names


def find_images(data_dir: str | Path, labels: list[str]) -> list[ImageEntry]:
    """Every file under DIR/<label>/, labelled 1.., shuffled with the script's seed."""
    data_dir = Path(data_dir)
    if not data_dir.is_dir():
        raise ConfigError(f"{data_dir}: not a folder")
    entries = []
    for index, text in enumerate(labels, start=1):
        folder = data_dir / text
        if not folder.is_dir():
            raise ConfigError(f"{folder}: the labels file names {text!r} but there is no such "
                              "folder")
        entries += [ImageEntry(path, index, text) for path in sorted(folder.iterdir())
                    if path.is_file()]
    random.Random(SHUFFLE_SEED).shuffle(entries)
    return entries


def jpeg_bytes(path: Path) -> tuple[bytes, int, int]:
    """RGB JPEG bytes of an image file, and its height and width; DataError if not an image."""
    try:
        raw = read_bytes(path, "image", IMAGE_MAX_BYTES)
        with Image.open(io.BytesIO(raw)) as image:
            width, height = image.size
            if width * height > MAX_PIXELS:
                raise DataError(f"{path}: {width}x{height} pixels: refused as a possible "
                                "decompression bomb")
            image.load()  # decodes it all: a truncated or corrupt file fails here
            if image.format == "JPEG" and image.mode == "RGB":
                return raw, height, width
            rgb = image.convert("RGBA") if "transparency" in image.info else image
            rgb = rgb.convert("RGB")
            out = io.BytesIO()
            rgb.save(out, format="JPEG", quality=JPEG_QUALITY)
            return out.getvalue(), height, width
    except DataError:
        raise
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError,
            Image.DecompressionBombError) as exc:
        raise DataError(f"{path}: not a readable image ({exc})") from None


def example_for(entry: ImageEntry, codec: ExampleCodec) -> bytes:
    data, height, width = jpeg_bytes(entry.path)
    return codec.encode({
        "image/height": height, "image/width": width, "image/colorspace": b"RGB",
        "image/channels": 3, "image/class/label": entry.label,
        "image/class/text": entry.text, "image/class/synset": entry.text,
        "image/format": b"JPEG", "image/filename": entry.path.name, "image/encoded": data,
    })


class _Progress:
    def __init__(self, name: str, total: int, log: Callable[[str], None]):
        self.name, self.total, self.log = name, total, log
        self.done = 0
        self.lock = threading.Lock()
        self.begin = self.last = time.monotonic()

    def step(self) -> None:
        with self.lock:
            self.done += 1
            now = time.monotonic()
            if self.done == self.total or now - self.last >= 2.0:
                self.last = now
                self.log(count_line(self.name, self.done, max(1, self.total), now - self.begin))


def build_split(name: str, entries: list[ImageEntry], shards: int, threads: int,
                output_dir: Path, strict: bool, log: Callable[[str], None]) -> dict:
    """Write one split's shards; return counts, the files and the skipped images."""
    if shards < 1 or threads < 1:
        raise ConfigError(f"--{name}-shards and --num-threads must be at least 1")
    if shards % threads:
        raise ConfigError(f"--num-threads {threads} must divide --{name}-shards {shards} "
                          "(each thread writes a whole range of shards)")
    if not entries:
        raise ConfigError(f"{name}: no image files found")
    progress = _Progress(name, len(entries), log)
    skipped: list[str] = []
    lock = threading.Lock()
    bounds = [round(i * len(entries) / shards) for i in range(shards + 1)]

    def write_shard(shard: int) -> Path:
        codec = ExampleCodec()
        path = output_dir / f"{name}-{shard:05d}-of-{shards:05d}"

        def payloads():
            for entry in entries[bounds[shard]:bounds[shard + 1]]:
                try:
                    yield example_for(entry, codec)
                except DataError as exc:
                    if strict:
                        raise
                    with lock:
                        skipped.append(str(exc))
                finally:
                    progress.step()

        write_records(path, payloads())
        return path

    per_thread = shards // threads

    def write_range(thread: int) -> list[Path]:
        return [write_shard(s) for s in range(thread * per_thread, (thread + 1) * per_thread)]

    with ThreadPoolExecutor(max_workers=threads) as pool:
        files = [p for paths in pool.map(write_range, range(threads)) for p in paths]
    return {"images": len(entries) - len(skipped), "skipped": sorted(skipped),
            "files": [str(f) for f in files]}


def build_tfrecords(output_dir: str, labels_file: str | None = None,
                    train_dir: str | None = None, validation_dir: str | None = None,
                    train_shards: int = 2, validation_shards: int = 2, threads: int = 2,
                    strict: bool = False, log: Callable[[str], None] = print) -> dict:
    """Both splits (whichever folders are given); a summary per split."""
    if not train_dir and not validation_dir:
        raise ConfigError("give --train-directory and/or --validation-directory")
    for flag, folder in (("--train-directory", train_dir), ("--validation-directory",
                                                            validation_dir)):
        if folder and not Path(folder).is_dir():
            raise ConfigError(f"{flag} {folder}: no such folder")
    out = Path(output_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"--output-directory {output_dir}: cannot create it "
                          f"({exc.strerror or exc})") from None
    summary = {}
    for name, folder, shards in (("validation", validation_dir, validation_shards),
                                 ("train", train_dir, train_shards)):
        if folder:
            labels = read_labels(labels_file, Path(folder))
            summary[name] = build_split(name, find_images(folder, labels), shards, threads,
                                        out, strict, log)
    return summary
