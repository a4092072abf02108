"""Conversions an engine needs, cached by the source file's checksum and reused."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Callable

from ..errors import EngineError, ModelError
from .cache import get_or_build, sha256_file
from .detect import GRAPHDEF, STATE_DICT
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


def state_dict_to_onnx(model: ModelSpec, log: Callable[[str], None] = print) -> Path:
    """A torchvision ResNet-50 state_dict as ONNX (BN folded), cached by the file's sha256."""
    from .builtin import build_onnx

    digest = sha256_file(Path(model.path))
    target = Path(model.cache_dir or ".") / "converted" / f"{digest}.onnx"

    def build() -> bytes:
        if importlib.util.find_spec("torch") is None:
            raise EngineError(f"reading {model.path} needs PyTorch: pip install 'rn50[torch]'")
        from .state_dict import load_state_dict_weights

        log(f"Converting {model.path} to ONNX (batch norm folded), cached at {target} ...")
        return build_onnx(weights=load_state_dict_weights(model.path)).SerializeToString()

    path, _ = get_or_build(target, build, {"from": model.path, "source_sha256": digest,
                                           "converter": "rn50 fold_torchvision"}, log)
    return path


def onnx_for(model: ModelSpec, log: Callable[[str], None] = print) -> str:
    """The path an ONNX-reading engine should open for `model` (converting when needed)."""
    if model.format == GRAPHDEF:
        return str(graphdef_to_onnx(model, log))
    if model.format == STATE_DICT:
        return str(state_dict_to_onnx(model, log))
    return model.path
