"""TensorFlow backend: a frozen GraphDef (or SavedModel/Keras) run in a tf.compat.v1 Session.

The settings become the seed's ConfigProto (intra/inter-op threads); oneDNN is
switched on through TF_ENABLE_ONEDNN_OPTS=1 in the child's environment (set by
the launcher before TensorFlow loads) and OMP_NUM_THREADS / KMP_* apply to its
OpenMP. The built-in model is converted once to a GraphDef in the seed's data
layout (NCHW, or --data-format) and cached beside its ONNX file.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np

from ..errors import EngineError, ModelError
from ..models import ModelSpec
from ..models.cache import get_or_build
from ..models.detect import GRAPHDEF, KERAS, ONNX, SAVEDMODEL
from ..settings import Settings
from ._base import InputSpec, SyncSession, image_layout

KNOWN_OUTPUTS = ("predict", "softmax_tensor", "probs", "logits")  # Model Zoo, MLPerf, others


def builtin_graphdef(model: ModelSpec, data_format: str, log=print) -> Path:
    """The built-in ONNX model as a cached GraphDef (same weights), in `data_format`."""
    from ..models.builtin import onnx_weights
    from ..models.tf_graph import build_graphdef

    path = Path(model.path).with_suffix(f".{data_format.lower()}.pb")
    path, _ = get_or_build(path, lambda: build_graphdef(onnx_weights(model.path), data_format),
                           {"from": model.path, "source_sha256": model.sha256,
                            "data_format": data_format}, log)
    return path


def _pick_nodes(graph_def, input_node: str | None, output_node: str | None, path: str):
    names = {n.name: n for n in graph_def.node}
    if input_node is None:
        placeholders = [n.name for n in graph_def.node if n.op == "Placeholder"]
        if len(placeholders) != 1:
            raise ModelError(f"model {path} has {len(placeholders)} inputs "
                             f"({', '.join(placeholders[:5]) or 'none'}); name one with --input-node")
        input_node = placeholders[0]
    if output_node is None:
        output_node = next((n for n in KNOWN_OUTPUTS if n in names), None)
        if output_node is None:
            consumed = {i.split(":")[0].lstrip("^") for n in graph_def.node for i in n.input}
            softmax = [n.name for n in graph_def.node if n.op == "Softmax"]
            leaves = [n.name for n in graph_def.node if n.name not in consumed
                      and n.op not in ("Const", "NoOp", "Placeholder")]
            candidates = softmax[-1:] or leaves
            if len(candidates) != 1:
                raise ModelError(f"model {path}: cannot tell the output node "
                                 f"(candidates: {', '.join(candidates[:5])}); name it with --output-node")
            output_node = candidates[0]
    for flag, name in (("--input-node", input_node), ("--output-node", output_node)):
        if name not in names:
            raise ModelError(f"model {path} has no node named {name!r} ({flag})")
    return input_node, output_node


class TensorFlowSession(SyncSession):
    def __init__(self, run, input_spec: InputSpec, load_timings: dict[str, float], applied: dict):
        self._run = run
        self.input_spec = input_spec
        self.load_timings = load_timings
        self._applied = applied

    def run(self, batch: np.ndarray) -> np.ndarray:
        return self._run(batch)

    def applied_settings(self) -> dict:
        return {"applied": self._applied, "execution_precision": "f32",
                "execution_precision_source": "TensorFlow runs an FP32 graph in FP32 unless "
                                              "auto-mixed precision is enabled (it is not)"}


class TensorFlowBackend:
    name = "tensorflow"
    formats = (GRAPHDEF, SAVEDMODEL, KERAS)

    def __init__(self) -> None:
        import tensorflow as tf

        self._tf = tf

    def versions(self) -> dict[str, str]:
        return {"tensorflow": self._tf.__version__}

    def load(self, model: ModelSpec, settings: Settings, precision: str) -> TensorFlowSession:
        tf = self._tf
        if precision != "fp32":
            raise EngineError(f"--precision {precision}: not supported by the tensorflow backend yet")
        intra, inter = int(settings.intra_threads.value), int(settings.inter_threads.value)
        config = tf.compat.v1.ConfigProto(intra_op_parallelism_threads=intra,
                                          inter_op_parallelism_threads=inter)
        start = time.perf_counter()
        path = model.path
        if model.format == ONNX and model.source == "builtin":
            path = str(builtin_graphdef(model, str(settings.data_layout.value)))
        elif model.format != GRAPHDEF:
            raise ModelError(f"model file {model.path} ({model.format}): the tensorflow backend "
                             "runs frozen GraphDef .pb files in this version")
        graph_def = tf.compat.v1.GraphDef()
        try:
            graph_def.ParseFromString(Path(path).read_bytes())
            input_node, output_node = _pick_nodes(graph_def, model.input_node, model.output_node, path)
            graph = tf.Graph()
            with graph.as_default():
                tf.compat.v1.import_graph_def(graph_def, name="")
        except ModelError:
            raise
        except Exception as exc:  # DecodeError, ValueError from import_graph_def
            raise ModelError(f"model file {path} is not a valid TensorFlow GraphDef "
                             f"({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''})"
                             ) from exc
        read_s = time.perf_counter() - start
        tensor = graph.get_tensor_by_name(f"{input_node}:0")
        dims = [-1 if d is None else d for d in tensor.shape.as_list()] if tensor.shape.rank else []
        layout = image_layout(dims)
        if layout is None:
            raise ModelError(f"model {path}: input {input_node!r} has shape {tensor.shape}, "
                             "not an image tensor (N,H,W,3 or N,3,H,W)")
        batch = int(settings.batch_size.value)
        if layout == "NHWC":
            shape = (batch, *(d if d > 0 else 224 for d in dims[1:3]), 3)
        else:
            shape = (batch, 3, *(d if d > 0 else 224 for d in dims[2:]))
        session = tf.compat.v1.Session(graph=graph, config=config)
        start = time.perf_counter()
        run = session.make_callable(f"{output_node}:0", feed_list=[f"{input_node}:0"])
        compile_s = time.perf_counter() - start
        applied = {"intra_op_parallelism_threads": str(config.intra_op_parallelism_threads),
                   "inter_op_parallelism_threads": str(config.inter_op_parallelism_threads),
                   "input_node": input_node, "output_node": output_node, "data_format": layout,
                   "TF_ENABLE_ONEDNN_OPTS": os.environ.get("TF_ENABLE_ONEDNN_OPTS", "unset"),
                   "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "unset")}
        return TensorFlowSession(run, InputSpec(input_node, shape, layout),
                                 {"read_s": read_s, "compile_s": compile_s}, applied)
