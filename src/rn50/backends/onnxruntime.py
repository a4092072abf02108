"""ONNX Runtime backend (CPU execution provider).

The shared settings become SessionOptions (`onnxruntime_options`, a pure
function also used by `rn50 info --emit python`): intra/inter-op threads,
sequential execution for one inter-op thread, all graph optimisations, and
worker spinning on (the analogue of the seed's short KMP_BLOCKTIME: threads
stay hot between operators instead of sleeping).
"""

from __future__ import annotations

import os
import time
from typing import Any

import numpy as np

from ..errors import EngineError, ModelError
from ..models import ModelSpec
from ..models.convert import onnx_for
from ..settings import Settings
from ..data.preprocess import PreprocessSpec
from ._base import (Capabilities, InputSpec, Quantizer, SyncSession, batch_shape, image_layout,
                    uint8_input)

PROVIDER = "CPUExecutionProvider"
CAPABILITIES = Capabilities(
    name="onnxruntime", backend_class="OnnxRuntimeBackend", engine_module="onnxruntime",
    install="pip install 'rn50[onnxruntime]'",
    formats=("onnx", "tf-graphdef", "torch-state-dict"), precisions=("fp32", "int8"),
    reads_back="session options as set (ONNX Runtime has no getter for thread counts); the "
               "QDQ nodes of an INT8 model",
    quantizer=Quantizer("onnxruntime", "onnxruntime", ".onnx"),
    profiling="ONNX Runtime's profiler (enable_profiling)")


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


IN_GRAPH = "Cast/Sub/Mul/Transpose nodes before the model: uint8 NHWC RGB in"


class OnnxRuntimeSession(SyncSession):
    def __init__(self, session, input_spec: InputSpec, load_timings: dict[str, float],
                 options: dict[str, Any], streams_note: str, quantize_nodes: int = 0,
                 preprocessing_in_graph: str | None = None) -> None:
        self._session = session
        self.preprocessing_in_graph = preprocessing_in_graph
        self._quantize_nodes = quantize_nodes
        self._input = session.get_inputs()[0].name  # `<name>_uint8` with preprocessing
        self.input_spec = input_spec
        self.load_timings = load_timings
        self._options = options
        self._streams_note = streams_note
        width = session.get_outputs()[0].shape[-1]
        self.num_classes = width if isinstance(width, int) else None

    def run(self, batch: np.ndarray) -> np.ndarray:
        return self._session.run(None, {self._input: batch})[0]

    def applied_settings(self) -> dict:
        # ONNX Runtime has no getter for what a session applied: the options are "requested"
        return {"requested": {**{k: str(v) for k, v in self._options.items()
                                 if k != "config_entries"}, **self._options["config_entries"]},
                "applied": {"providers": ",".join(self._session.get_providers()),
                            "streams": self._streams_note},
                **({"execution_precision": "u8,i8",
                    "execution_precision_source": f"QDQ model: {self._quantize_nodes} "
                    "QuantizeLinear nodes, fused by ONNX Runtime into integer kernels"}
                   if self._quantize_nodes else
                   {"execution_precision": "f32",
                    "execution_precision_source": "ONNX Runtime's CPU provider runs an FP32 "
                    "model in FP32 (no automatic down-conversion)"}),
                "infer_requests": 1}


def session_options(ort, options: dict[str, Any], profiling: bool = False):
    """SessionOptions for these options; with `profiling`, ORT's profiler on and the graph
    as run saved beside its trace (its weights' shapes give the FLOPs of fused layers)."""
    so = ort.SessionOptions()
    so.intra_op_num_threads = options["intra_op_num_threads"]
    so.inter_op_num_threads = options["inter_op_num_threads"]
    so.execution_mode = getattr(ort.ExecutionMode, options["execution_mode"])
    so.graph_optimization_level = getattr(ort.GraphOptimizationLevel,
                                          options["graph_optimization_level"])
    for key, value in options["config_entries"].items():
        so.add_session_config_entry(key, value)
    if profiling:
        import tempfile

        base = os.path.join(tempfile.gettempdir(), f"rn50-{os.getpid()}")
        so.enable_profiling = True
        so.profile_file_prefix = base
        so.optimized_model_filepath = base + "-optimized.onnx"
    return so


class OnnxRuntimeBackend:
    name = "onnxruntime"

    def __init__(self) -> None:
        import onnxruntime as ort

        self._ort = ort

    def versions(self) -> dict[str, str]:
        return {"onnxruntime": self._ort.__version__}

    def load(self, model: ModelSpec, settings: Settings, precision: str,
             preprocess=None, profiling: bool = False) -> OnnxRuntimeSession:
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
        so = session_options(ort, options, profiling)
        embedded, source = None, path
        if preprocess is not None:
            spec, classes = _float_input(path, int(settings.batch_size.value), model)
            embedded = preprocess(spec, classes)
            if embedded is not None:
                source = with_uint8_input(path, spec, embedded)
        start = time.perf_counter()
        try:
            session = ort.InferenceSession(source, so, providers=[PROVIDER])
        except Exception as exc:  # ORT raises its own Fail/InvalidGraph types
            raise ModelError(f"model file {model.path} could not be loaded by ONNX Runtime: "
                             f"{str(exc).splitlines()[0] if str(exc) else type(exc).__name__}") from exc
        load_s = time.perf_counter() - start
        inputs = session.get_inputs()
        if len(inputs) != 1:
            raise ModelError(f"model {model.path} has {len(inputs)} inputs; an image classifier has one")
        dims = [d if isinstance(d, int) and d > 0 else -1 for d in inputs[0].shape]
        layout = image_layout(dims)
        if embedded is not None:
            return OnnxRuntimeSession(session, uint8_input(spec), {"read_s": 0.0,
                                      "compile_s": load_s}, options, _streams_note(settings),
                                      quantize_nodes, IN_GRAPH)
        if layout is None or inputs[0].type != "tensor(float)":
            raise ModelError(f"model {model.path}: input '{inputs[0].name}' is {inputs[0].type} "
                             f"{inputs[0].shape}, not a float image tensor (N,3,H,W or N,H,W,3)")
        shape = batch_shape(dims, layout, int(settings.batch_size.value), model.input_size())
        loaded = OnnxRuntimeSession(session, InputSpec(inputs[0].name, shape, layout),
                                    {"read_s": 0.0, "compile_s": load_s}, options,
                                    _streams_note(settings), quantize_nodes)
        if profiling:
            from functools import partial

            from .onnxruntime_profile import profile

            loaded.profile = partial(profile, loaded, so.optimized_model_filepath)
        return loaded


def _streams_note(settings: Settings) -> str:
    note = "1 (one batch at a time)"
    if settings.streams.value not in (1, "auto"):
        note += f"; --streams {settings.streams.value} is an OpenVINO setting, not applied here"
    return note


def _float_input(path: str, batch: int, model: ModelSpec) -> tuple[InputSpec, int | None]:
    """The model's image input and output width, read from the ONNX graph (weights not loaded)."""
    import onnx

    graph = onnx.load(path, load_external_data=False).graph
    initializers = {init.name for init in graph.initializer}
    inputs = [i for i in graph.input if i.name not in initializers]
    if len(inputs) != 1:
        raise ModelError(f"model {model.path} has {len(inputs)} inputs; an image classifier has one")
    dims = [d.dim_value if d.dim_value > 0 else -1 for d in inputs[0].type.tensor_type.shape.dim]
    layout = image_layout(dims)
    if layout is None or inputs[0].type.tensor_type.elem_type != onnx.TensorProto.FLOAT:
        raise ModelError(f"model {model.path}: input '{inputs[0].name}' is not a float image "
                         "tensor (N,3,H,W or N,H,W,3)")
    out = graph.output[0].type.tensor_type.shape.dim
    classes = out[-1].dim_value if out and out[-1].dim_value > 0 else None
    return InputSpec(inputs[0].name, batch_shape(dims, layout, batch, model.input_size()),
                     layout), classes


def with_uint8_input(path: str, spec: InputSpec, prep: PreprocessSpec) -> bytes:
    """The ONNX model taking uint8 NHWC RGB crops: Cast, channel order, (v - 255 m) * 1/(255 s)
    (or on 0-255) and the transpose to the model's layout as nodes before its first one."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    model = onnx.load(path)
    graph = model.graph
    name = spec.name
    n, h, w = (spec.shape[0], *spec.shape[2:4]) if spec.layout == "NCHW" else spec.shape[:3]
    factor = 255.0 if prep.scale == "0-1" else 1.0
    mean = np.asarray([factor * m for m in prep.mean], np.float32)
    inv_std = np.asarray([1.0 / (factor * s) for s in prep.std], np.float32)
    consts = {"rn50_pre_mean": mean, "rn50_pre_inv_std": inv_std,
              "rn50_pre_bgr": np.asarray([2, 1, 0], np.int64)}
    graph.initializer.extend(numpy_helper.from_array(v, k) for k, v in consts.items())
    steps = [("Cast", [], {"to": TensorProto.FLOAT})]
    if prep.channel_order == "BGR":
        steps.append(("Gather", ["rn50_pre_bgr"], {"axis": 3}))
    steps += [("Sub", ["rn50_pre_mean"], {}), ("Mul", ["rn50_pre_inv_std"], {})]
    if spec.layout == "NCHW":
        steps.append(("Transpose", [], {"perm": [0, 3, 1, 2]}))
    nodes, current = [], f"{name}_uint8"
    for index, (op, extra, attrs) in enumerate(steps):
        out = name if index == len(steps) - 1 else f"rn50_pre_{index}"
        nodes.append(helper.make_node(op, [current, *extra], [out], name=f"rn50_pre_{op}_{index}",
                                      **attrs))
        current = out
    original = next(i for i in graph.input if i.name == name)
    graph.input.remove(original)
    graph.input.insert(0, helper.make_tensor_value_info(f"{name}_uint8", TensorProto.UINT8,
                                                        [n, h, w, 3]))
    for position, node in enumerate(nodes):
        graph.node.insert(position, node)
    return model.SerializeToString()


def quantize(model: ModelSpec, path: str, calib: list[np.ndarray], out) -> None:
    """INT8 as a QDQ ONNX model (onnxruntime.quantization: uint8 activations, per-channel
    int8 weights), written atomically."""
    import os
    import tempfile
    from pathlib import Path

    import onnx
    from onnxruntime.quantization import (CalibrationDataReader, QuantFormat, QuantType,
                                          quantize_static)

    graph = onnx.load(path, load_external_data=False).graph
    weights = {init.name for init in graph.initializer}
    input_name = next(i.name for i in graph.input if i.name not in weights)

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self.items = iter(calib)

        def get_next(self):
            x = next(self.items, None)
            return None if x is None else {input_name: x}

    with tempfile.TemporaryDirectory(dir=out.parent) as tmp:
        staged = Path(tmp) / out.name
        quantize_static(path, str(staged), Reader(), quant_format=QuantFormat.QDQ,
                        activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                        per_channel=True)
        os.replace(staged, out)
