"""Conversions an engine needs, cached by the source file's checksum and reused."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from ..errors import EngineError, ModelError
from .cache import get_or_build, sha256_file
from .resolve import ModelSpec
from .tf_nodes import pick_nodes

ONNX_OPSET = 17


def graphdef_to_onnx(model: ModelSpec, log: Callable[[str], None] = print) -> Path:
    """A TF frozen GraphDef as ONNX (tf2onnx), cached as <cache>/converted/<sha256>.onnx."""
    digest = sha256_file(Path(model.path))
    target = Path(model.cache_dir or ".") / "converted" / f"{digest}.onnx"

    def build() -> bytes:
        try:
            import tensorflow as tf
            import tf2onnx
        except ImportError as exc:
            raise EngineError(f"converting {model.path} to ONNX needs TensorFlow and tf2onnx: "
                              "pip install 'rn50[tensorflow]' tf2onnx") from exc
        graph_def = tf.compat.v1.GraphDef()
        try:
            graph_def.ParseFromString(Path(model.path).read_bytes())
        except Exception as exc:
            raise ModelError(f"model file {model.path} is not a valid TensorFlow GraphDef") from exc
        inputs, outputs = pick_nodes(graph_def, model.input_node, model.output_node, model.path)
        log(f"Converting {model.path} to ONNX with tf2onnx {tf2onnx.__version__} "
            f"({inputs} -> {outputs}), cached at {target} ...")
        proto, _ = tf2onnx.convert.from_graph_def(graph_def, input_names=[f"{inputs}:0"],
                                                   output_names=[f"{outputs}:0"], opset=ONNX_OPSET)
        return proto.SerializeToString()

    path, _ = get_or_build(target, build, {"from": model.path, "source_sha256": digest,
                                           "converter": "tf2onnx", "opset": ONNX_OPSET}, log)
    return path
