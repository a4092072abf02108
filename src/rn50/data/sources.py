"""Where images come from: TFRecords, class folders, flat folders, file lists.

`open_source(paths)` looks at what it is given and returns a `DataSource` whose
`units()` yields, in a fixed order, either a `Unit` (an image to decode: its
bytes when they come out of a TFRecord, else its path for a worker to read) or
a `Skipped` (a bad record: why, where). Labels are ImageNet's 1-based labels
(1..1000, 0 = background) as in the TFRecords TensorFlow's scripts write:

- TFRecords: `image/class/label` (files named `validation-*` are preferred in a
  folder that also holds `train-*`); any `tf.train.Example` with `image/encoded`
  serves, labels or not;
- DIR/<class>/<image>: the class is the folder's ImageNet synset (n01440764 -> 1),
  or its line in `labels_file`, or else its position among the sorted folders;
- a flat folder or image files: no labels, unless the folder holds a
  `val_map.txt` (MLPerf: `ILSVRC2012_val_00000001.JPEG 65`, 0-based labels);
- a text file listing image paths, one per line, optionally followed by a 0-based label.
"""

from __future__ import annotations

import gzip
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, Sequence, Union

from ..errors import ConfigError, DataError
from ..limits import read_text
from .example import ExampleCodec
from .labels import imagenet_synsets
from .tfrecord import GZIP_MAGIC, BadRecord, count_records, iter_records, masked_crc

NUM_CLASSES = 1000  # labels are ImageNet's 1..1000 (a 1001-class model's 0 is background)
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm"}


@dataclass(frozen=True)
class Unit:
    """One image: a stable key (for resuming), a display name, its label, its bytes or path."""

    key: str
    name: str
    label: int | None
    data: bytes | None = None
    path: str | None = None


@dataclass(frozen=True)
class Skipped:
    key: str
    reason: str


@dataclass
class DataSource:
    """An ordered collection of images, with what it is and whether it has labels."""

    kind: str  # tfrecord | folders | files
    description: str
    labelled: bool
    tfrecords: list[Path] = field(default_factory=list)
    entries: list[tuple[Path, int | None]] = field(default_factory=list)
    label_note: str = ""

    def count(self, skip_keys: frozenset[str] = frozenset()) -> int | None:
        """How many images a run will see (None when a TFRecord file cannot tell cheaply)."""
        if self.kind == "tfrecord":
            counts = [count_records(path) for path in self.tfrecords]
            return None if None in counts else sum(counts)
        return sum(1 for path, _ in self.entries if str(path.resolve()) not in skip_keys)

    def units(self) -> Iterator[Union[Unit, Skipped]]:
        """Every image in order; one whose label is outside 1..NUM_CLASSES is a Skipped."""
        for unit in self._units():
            if isinstance(unit, Unit) and unit.label is not None \
                    and not 1 <= unit.label <= NUM_CLASSES:
                yield Skipped(unit.key, f"{unit.name}: label {unit.label} is outside ImageNet's "
                              f"1..{NUM_CLASSES} (bad record)")
            else:
                yield unit

    def _units(self) -> Iterator[Union[Unit, Skipped]]:
        if self.kind != "tfrecord":
            for path, label in self.entries:
                yield Unit(str(path.resolve()), path.name, label, path=str(path))
            return
        codec = ExampleCodec()
        for path in self.tfrecords:
            resolved = path.resolve()
            for record in iter_records(path):
                key = f"{resolved}#{record.index}"
                if isinstance(record, BadRecord):
                    yield Skipped(key, record.describe())
                    continue
                try:
                    features = codec.decode(record.data)
                except DataError as exc:
                    yield Skipped(key, f"{path}: record {record.index}: {exc}")
                    continue
                encoded = features.get("image/encoded")
                if not encoded:
                    yield Skipped(key, f"{path}: record {record.index}: no image/encoded")
                    continue
                label = features.get("image/class/label")
                name = features.get("image/filename")
                yield Unit(key, name[0].decode(errors="replace") if name else key,
                           int(label[0]) if label else None, data=encoded[0])


def is_tfrecord(path: Path) -> bool:
    """True if the file starts with a valid TFRecord header (plain or GZIP)."""
    try:
        with open(path, "rb") as f:
            head = f.read(12)
        if head[:2] == GZIP_MAGIC:
            with gzip.open(path, "rb") as f:
                head = f.read(12)
    except (OSError, EOFError, gzip.BadGzipFile):
        return False
    return len(head) == 12 and masked_crc(head[:8]) == struct.unpack("<I", head[8:])[0]


def _is_image(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_SUFFIXES


def _tfrecords_in(folder: Path) -> list[Path]:
    files = sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith("."))
    validation = [p for p in files if p.name.startswith("validation-")]
    candidates = validation or files
    return [p for p in candidates if not _is_image(p) and is_tfrecord(p)]


def _class_folders(folder: Path, labels_file: str | None) -> DataSource:
    classes = sorted(p for p in folder.iterdir() if p.is_dir())
    synsets = imagenet_synsets()
    index = {s: i + 1 for i, s in enumerate(synsets)}
    if labels_file:
        lines = [ln.strip() for ln in read_text(labels_file, "--labels-file", error=ConfigError)
                 .splitlines() if ln.strip()]
        mapping, note = {n: i + 1 for i, n in enumerate(lines)}, f"labels from {labels_file}"
    elif all(c.name in index for c in classes):
        mapping, note = index, "folder names are ImageNet synsets"
    else:
        mapping = {c.name: i + 1 for i, c in enumerate(classes)}
        note = ("folder names are not ImageNet synsets: labels are their sorted positions "
                "(give --labels-file for the real mapping)")
    entries = []
    for cls in classes:
        if cls.name not in mapping:
            raise ConfigError(f"{cls}: folder not named in {labels_file}")
        entries += [(p, mapping[cls.name]) for p in sorted(cls.iterdir())
                    if p.is_file() and not p.name.startswith(".")]
    return DataSource("folders", f"{len(entries)} images in {len(classes)} class folders "
                      f"of {folder}", True, entries=entries, label_note=note)


def _val_map(path: Path) -> dict[str, int]:
    labels = {}
    for line in read_text(path, "label map").splitlines():
        parts = line.split()
        if len(parts) >= 2 and parts[1].lstrip("-").isdigit():
            labels[parts[0]] = int(parts[1]) + 1  # MLPerf's val_map is 0-based
    return labels


def _file_list(path: Path) -> list[tuple[Path, int | None]]:
    entries = []
    for line in read_text(path, "image list").splitlines():
        parts = line.split()
        if not parts or parts[0].startswith("#"):
            continue
        image = (path.parent / parts[0]) if not Path(parts[0]).is_absolute() else Path(parts[0])
        label = int(parts[1]) + 1 if len(parts) > 1 and parts[1].isdigit() else None
        entries.append((image, label))
    return entries


def open_source(paths: Sequence[str], labels_file: str | None = None) -> DataSource:
    """What the given paths hold (see the module notes); ConfigError if nothing usable."""
    if not paths:
        raise ConfigError("no data given")
    resolved = [Path(p).expanduser() for p in paths]
    for p in resolved:
        if not p.exists():
            raise ConfigError(f"{p}: no such file or folder")
    if len(resolved) == 1 and resolved[0].is_dir():
        folder = resolved[0]
        records = _tfrecords_in(folder)
        if records:
            return _tfrecord_source(records, f"{len(records)} TFRecord file(s) in {folder}")
        if any(p.is_dir() for p in folder.iterdir()):
            return _class_folders(folder, labels_file)
        images = sorted(p for p in folder.iterdir() if p.is_file() and _is_image(p))
        if not images:
            raise ConfigError(f"{folder}: no TFRecords, class folders or images in it")
        val_map = folder / "val_map.txt"
        labels = _val_map(val_map) if val_map.is_file() else {}
        entries = [(p, labels.get(p.name)) for p in images]
        labelled = bool(labels) and all(label is not None for _, label in entries)
        return DataSource("files", f"{len(images)} images in {folder}", labelled,
                          entries=entries, label_note="labels from val_map.txt (0-based)"
                          if labelled else "")
    tfrecords = [p for p in resolved if p.is_file() and not _is_image(p) and is_tfrecord(p)]
    if tfrecords and len(tfrecords) == len(resolved):
        return _tfrecord_source(tfrecords, f"{len(tfrecords)} TFRecord file(s)")
    entries: list[tuple[Path, int | None]] = []
    for p in resolved:
        if p.is_dir():
            entries += [(q, None) for q in sorted(p.rglob("*")) if q.is_file() and _is_image(q)]
        elif _is_image(p):
            entries.append((p, None))
        elif p.suffix.lower() in (".txt", ".lst", ".list"):
            entries += _file_list(p)
        else:
            entries.append((p, None))  # decoded by content; a non-image is skipped then
    labelled = bool(entries) and all(label is not None for _, label in entries)
    return DataSource("files", f"{len(entries)} image file(s)", labelled, entries=entries)


def _tfrecord_source(files: list[Path], description: str) -> DataSource:
    codec = ExampleCodec()
    labelled = False
    for record in iter_records(files[0]):
        if not isinstance(record, BadRecord):
            try:
                labelled = "image/class/label" in codec.decode(record.data)
            except DataError:
                pass
            break
    return DataSource("tfrecord", description, labelled, tfrecords=files,
                      label_note="labels from image/class/label" if labelled else "")
