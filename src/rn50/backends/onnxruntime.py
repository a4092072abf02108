"""ONNX Runtime backend (CPU execution provider).

The shared settings become SessionOptions (`onnxruntime_options`, a pure
function also used by `rn50 info --emit python`): intra/inter-op threads,
sequential execution for one inter-op thread, all graph optimisations, and
worker spinning on (the analogue of the seed's short KMP_BLOCKTIME: threads
stay hot between operators instead of sleeping).
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from ..errors import EngineError, ModelError
from ..models import ModelSpec
from ..models.convert import onnx_for
from ..settings import Settings
from ._base import InputSpec, SyncSession, batch_shape, image_layout

PROVIDER = "CPUExecutionProvider"


def onnxruntime_options(settings: Settings) -> dict[str, Any]:
    """ONNX Runtime SessionOptions fields and session config entries for these settings."""
    inter = int(settings.inter_threads.value)
    return {
        "intra_op_num_threads": int(settings.intra_threads.value),
        "inter_op_num_threads": inter,
        "execution_mode": "ORT_SEQUENTIAL" if inter == 1 else "ORT_PARALLEL",
        "graph_optimization_level": "ORT_ENABLE_ALL",
        "config_entries": {"session.intra_op.allow_spinning": "1",
                           "session.inter_op.allow_spinning": "1"},
    }


def _count_ops(path: str, op_type: str) -> int:
    """How many nodes of `op_type` the ONNX graph has (weights not loaded)."""
    import onnx

    graph = onnx.load(path, load_external_data=False).graph
    return sum(node.op_type == op_type for node in graph.node)


class OnnxRuntimeSession(SyncSession):
    def __init__(self, session, input_spec: InputSpec, load_timings: dict[str, float],
                 options: dict[str, Any], streams_note: str, quantize_nodes: int = 0) -> None:
        self._session = session
        self._quantize_nodes = quantize_nodes
        self._input = input_spec.name
        self.input_spec = input_spec
        self.load_timings = load_timings
        self._options = options
        self._streams_note = streams_note
        width = session.get_outputs()[0].shape[-1]
        self.num_classes = width if isinstance(width, int) else None

    def run(self, batch: np.ndarray) -> np.ndarray:
        return self._session.run(None, {self._input: batch})[0]

    def applied_settings(self) -> dict:
        return {"applied": {**{k: str(v) for k, v in self._options.items()
                               if k != "config_entries"},
                            **self._options["config_entries"],
                            "providers": ",".join(self._session.get_providers()),
                            "streams": self._streams_note},
                **({"execution_precision": "u8,i8",
                    "execution_precision_source": f"QDQ model: {self._quantize_nodes} "
                    "QuantizeLinear nodes, fused by ONNX Runtime into integer kernels"}
                   if self._quantize_nodes else
                   {"execution_precision": "f32",
                    "execution_precision_source": "ONNX Runtime's CPU provider runs an FP32 "
                    "model in FP32 (no automatic down-conversion)"}),
                "infer_requests": 1}


class OnnxRuntimeBackend:
    name = "onnxruntime"

    def __init__(self) -> None:
        import onnxruntime as ort

        self._ort = ort

    def versions(self) -> dict[str, str]:
        return {"onnxruntime": self._ort.__version__}

    def load(self, model: ModelSpec, settings: Settings, precision: str) -> OnnxRuntimeSession:
        ort = self._ort
        if precision not in ("fp32", "int8"):
            raise EngineError(f"--precision {precision}: the onnxruntime backend runs fp32 "
                              "and int8 (a QDQ model) only")
        path = onnx_for(model)
        quantize_nodes = _count_ops(path, "QuantizeLinear")
        if (precision == "int8") != bool(quantize_nodes):
            raise EngineError(f"--precision {precision}: {path} is "
                              f"{'a quantized' if quantize_nodes else 'not a quantized'} model")
        options = onnxruntime_options(settings)
        so = ort.SessionOptions()
        so.intra_op_num_threads = options["intra_op_num_threads"]
        so.inter_op_num_threads = options["inter_op_num_threads"]
        so.execution_mode = getattr(ort.ExecutionMode, options["execution_mode"])
        so.graph_optimization_level = getattr(ort.GraphOptimizationLevel,
                                              options["graph_optimization_level"])
        for key, value in options["config_entries"].items():
            so.add_session_config_entry(key, value)
        start = time.perf_counter()
        try:
            session = ort.InferenceSession(path, so, providers=[PROVIDER])
        except Exception as exc:  # ORT raises its own Fail/InvalidGraph types
            raise ModelError(f"model file {model.path} could not be loaded by ONNX Runtime: "
                             f"{str(exc).splitlines()[0] if str(exc) else type(exc).__name__}") from exc
        load_s = time.perf_counter() - start
        inputs = session.get_inputs()
        if len(inputs) != 1:
            raise ModelError(f"model {model.path} has {len(inputs)} inputs; an image classifier has one")
        dims = [d if isinstance(d, int) and d > 0 else -1 for d in inputs[0].shape]
        layout = image_layout(dims)
        if layout is None or inputs[0].type != "tensor(float)":
            raise ModelError(f"model {model.path}: input '{inputs[0].name}' is {inputs[0].type} "
                             f"{inputs[0].shape}, not a float image tensor (N,3,H,W or N,H,W,3)")
        shape = batch_shape(dims, layout, int(settings.batch_size.value), model.input_size())
        note = "1 (one batch at a time)"
        if settings.streams.value not in (1, "auto"):
            note += f"; --streams {settings.streams.value} is an OpenVINO setting, not applied here"
        return OnnxRuntimeSession(session, InputSpec(inputs[0].name, shape, layout),
                                  {"read_s": 0.0, "compile_s": load_s}, options, note,
                                  quantize_nodes)
