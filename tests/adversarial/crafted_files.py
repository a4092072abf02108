"""Bad files for the battery, made here: crafted models, images, TFRecords, label files."""

from __future__ import annotations

import io
import os
import struct
from pathlib import Path

import numpy as np
from PIL import Image

from rn50.data.example import ExampleCodec
from rn50.data.tfrecord import masked_crc, write_records


def jpeg(size=(96, 80), seed=0) -> bytes:
    pixels = (np.random.default_rng(seed).random((size[1], size[0], 3)) * 255).astype(np.uint8)
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, format="JPEG")
    return out.getvalue()


def onnx_model(path: Path, kind: str) -> Path:
    """'segmenter': output [1, 8, 222, 222]; 'int64': an int64 image input."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    if kind == "segmenter":
        nodes = [helper.make_node("Conv", ["x", "w"], ["y"])]
        inputs = [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 224, 224])]
        outputs = [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 8, 222, 222])]
        weights = [numpy_helper.from_array(rng.normal(0, .1, (8, 3, 3, 3)).astype(np.float32),
                                           "w")]
    else:
        nodes = [helper.make_node("Cast", ["x"], ["f"], to=TensorProto.FLOAT),
                 helper.make_node("GlobalAveragePool", ["f"], ["p"]),
                 helper.make_node("Flatten", ["p"], ["q"]),
                 helper.make_node("MatMul", ["q", "w"], ["y"])]
        inputs = [helper.make_tensor_value_info("x", TensorProto.INT64, [1, 3, 224, 224])]
        outputs = [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 1000])]
        weights = [numpy_helper.from_array(np.ones((3, 1000), np.float32), "w")]
    graph = helper.make_graph(nodes, kind, inputs, outputs, weights)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path


def example(label: int, data: bytes) -> bytes:
    return ExampleCodec().encode({"image/encoded": data, "image/class/label": label,
                                  "image/format": b"JPEG"})


def tfrecords_with_bad_labels(path: Path) -> Path:
    """3 good records (labels 1, 2, 3) and 3 with labels no ImageNet image has."""
    labels = [1, 5000, 2, -1, 0, 3]
    write_records(path, [example(label, jpeg(seed=i)) for i, label in enumerate(labels)])
    return path


def tfrecord_with_huge_length(path: Path) -> Path:
    """One good record, then a header claiming 2**40 bytes with a valid CRC."""
    write_records(path, [example(1, jpeg())])
    length = struct.pack("<Q", 1 << 40)
    with open(path, "ab") as f:
        f.write(length + struct.pack("<I", masked_crc(length)) + b"x" * 64)
    return path


def sparse(path: Path, head: bytes, size: int) -> Path:
    """A file of `size` bytes that takes no disk: `head`, then a hole."""
    with open(path, "wb") as f:
        f.write(head)
        f.truncate(size)
    return path


def bomb_png(path: Path) -> Path:
    """A 12000 x 12000 PNG (a few hundred KB; 432 MB decoded)."""
    Image.new("1", (12000, 12000)).save(path)
    return path


def make_all(root: Path, builtin_onnx: Path) -> dict[str, Path]:
    """Every crafted file, by name."""
    root.mkdir(parents=True, exist_ok=True)
    f: dict[str, Path] = {}
    data = builtin_onnx.read_bytes()
    f["truncated_onnx"] = root / "truncated.onnx"
    f["truncated_onnx"].write_bytes(data[:len(data) // 2])
    f["huge_onnx"] = sparse(root / "huge.onnx", data[:4096], 20 << 30)
    f["empty_model"] = root / "empty.onnx"
    f["empty_model"].write_bytes(b"")
    f["junk_model"] = root / "junk.onnx"
    f["junk_model"].write_text("this is not a model\n")
    f["fifo_model"] = root / "fifo.onnx"
    os.mkfifo(f["fifo_model"])
    f["ir_no_bin"] = root / "lonely.xml"
    f["ir_no_bin"].write_text("<?xml version='1.0'?>\n<net name='x' version='11'></net>\n")
    f["not_saved_model"] = root / "folder_model"
    f["not_saved_model"].mkdir()
    f["segmenter"] = onnx_model(root / "segmenter.onnx", "segmenter")
    f["int64_input"] = onnx_model(root / "int64.onnx", "int64")
    f["junk_images"] = root / "junk_images"
    f["junk_images"].mkdir()
    for name in ("a.jpg", "b.jpg"):
        (f["junk_images"] / name).write_text("not an image")
    f["good_images"] = root / "good_images"
    f["good_images"].mkdir()
    for i in range(6):
        (f["good_images"] / f"{i}.jpg").write_bytes(jpeg(seed=i))
    f["zero_image"] = root / "zero.jpg"
    f["zero_image"].symlink_to("/dev/zero")
    f["bomb"] = bomb_png(root / "bomb.png")
    f["junk_classes"] = root / "junk_classes"
    for cls in ("n01440764", "n01443537"):
        (f["junk_classes"] / cls).mkdir(parents=True)
        (f["junk_classes"] / cls / "x.jpg").write_text("not an image")
    f["bad_labels"] = tfrecords_with_bad_labels(root / "bad_labels.tfrecord")
    f["huge_record"] = tfrecord_with_huge_length(root / "huge_record.tfrecord")
    f["big_labels"] = sparse(root / "labels.txt", b"n01440764\n", 100 << 20)
    f["missing_list"] = root / "list.txt"
    f["missing_list"].write_text("nowhere/1.jpg\nnowhere/2.jpg\n")
    return f
