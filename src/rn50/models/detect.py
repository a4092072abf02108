"""What kind of model a path holds, decided by its content (the suffix is only a hint)."""

from __future__ import annotations

import zipfile
from pathlib import Path

from ..errors import ModelError
from ..limits import check_file, read_header

ONNX, IR, GRAPHDEF, SAVEDMODEL, KERAS, TORCHSCRIPT, STATE_DICT = (
    "onnx", "openvino-ir", "tf-graphdef", "tf-savedmodel", "keras", "torchscript",
    "torch-state-dict")
FORMATS = (ONNX, IR, GRAPHDEF, SAVEDMODEL, KERAS, TORCHSCRIPT, STATE_DICT)


def detect_format(path: Path) -> str:
    """One of FORMATS, or ModelError naming the file when it is no model rn50 knows."""
    if path.is_dir():
        if (path / "saved_model.pb").exists() or (path / "saved_model.pbtxt").exists():
            return SAVEDMODEL
        raise ModelError(f"model path {path} is a folder but not a TensorFlow SavedModel "
                         "(no saved_model.pb)")
    check_file(path, "model file", error=ModelError)
    head = read_header(path, "model file", ModelError)
    if not head:
        raise ModelError(f"model file {path} is empty")
    if head.startswith(b"PK\x03\x04"):
        return _zip_format(path)
    if head.lstrip().startswith((b"<?xml", b"<net")):
        return IR
    if head[0] == 0x80 and path.suffix.lower() in (".pth", ".pt", ".bin"):
        return STATE_DICT  # legacy torch.save format: still read with weights_only=True
    # Both ONNX and GraphDef are protobuf: ONNX starts with ir_version (field 1, varint:
    # tag 0x08); a GraphDef with its first NodeDef (field 1, length-delimited: tag 0x0a).
    if head[0] == 0x08:
        return ONNX
    if head[0] == 0x0A:
        return GRAPHDEF
    raise ModelError(f"model file {path} is not a model rn50 can read (unrecognised content; "
                     "expected ONNX, OpenVINO IR, TF GraphDef/SavedModel/Keras, TorchScript "
                     "or a PyTorch state_dict)")


def _zip_format(path: Path) -> str:
    try:
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
    except zipfile.BadZipFile as exc:
        raise ModelError(f"model file {path} is a damaged zip archive ({exc})") from exc
    if "config.json" in names and any(n.endswith(".weights.h5") for n in names):
        return KERAS
    if any("/code/" in n for n in names):
        return TORCHSCRIPT
    if any(n.endswith("data.pkl") for n in names):
        return STATE_DICT
    raise ModelError(f"model file {path} is a zip archive but not a Keras, TorchScript or "
                     "PyTorch model")
