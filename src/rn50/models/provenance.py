"""What a model file says about itself: origin, random weights, preprocessing, classes.

rn50 writes this into every file it exports — ONNX `metadata_props` (key
`rn50.provenance`), or a `<file>.rn50.json` beside formats without a place for
it (TF .pb, SavedModel, OpenVINO IR, TorchScript) — and reads it back, so an
exported built-in model is still known to have random weights and torchvision
preprocessing whatever format it travels in.
"""

from __future__ import annotations

import json
from pathlib import Path

ONNX_KEY = "rn50.provenance"
SIDECAR_SUFFIX = ".rn50.json"
MAX_SIDECAR_BYTES = 1 << 20


def builtin(seed: int) -> dict:
    return {"origin": f"rn50 built-in ResNet-50 v1.5 (seed {seed})", "random_weights": True,
            "num_classes": 1000, "class_offset": 0, "preprocessing": {"preset": "torchvision"}}


def torchvision_checkpoint(path: str) -> dict:
    return {"origin": f"torchvision ResNet-50 state_dict {Path(path).name}",
            "random_weights": False, "num_classes": 1000, "class_offset": 0,
            "preprocessing": {"preset": "torchvision"}}


def sidecar(path: str | Path) -> Path:
    path = Path(path)
    return path.with_name(path.name + SIDECAR_SUFFIX)


def embed_onnx(model, provenance: dict) -> None:
    """Record `provenance` in an `onnx.ModelProto`'s metadata_props (replacing an old one)."""
    for prop in list(model.metadata_props):
        if prop.key == ONNX_KEY:
            model.metadata_props.remove(prop)
    entry = model.metadata_props.add()
    entry.key, entry.value = ONNX_KEY, json.dumps(provenance, sort_keys=True)


def from_onnx(model) -> dict | None:
    for prop in model.metadata_props:
        if prop.key == ONNX_KEY:
            return _parse(prop.value)
    return None


def write_sidecar(path: str | Path, provenance: dict) -> Path:
    """Write `provenance` beside `path`, with the file's size so a replaced file is noticed."""
    from .cache import atomic_write_bytes

    target = sidecar(path)
    record = dict(provenance, file_size=_size(Path(path)))
    atomic_write_bytes(target, (json.dumps(record, indent=2, sort_keys=True) + "\n").encode())
    return target


def read_sidecar(path: str | Path) -> dict | None:
    """The provenance beside a file, if any and if it is still about that file (same size);
    a damaged, oversized or stale one is ignored."""
    target = sidecar(path)
    try:
        if not target.is_file() or target.stat().st_size > MAX_SIDECAR_BYTES:
            return None
        data = _parse(target.read_text(encoding="utf-8", errors="replace"))
        if data is None or data.pop("file_size", None) != _size(Path(path)):
            return None
        return data
    except OSError:
        return None


def _size(path: Path) -> int | None:
    """A file's size; None for a folder (a SavedModel)."""
    return None if path.is_dir() else path.stat().st_size


def _parse(text: str) -> dict | None:
    try:
        data = json.loads(text)
    except ValueError:
        return None
    return data if isinstance(data, dict) else None
