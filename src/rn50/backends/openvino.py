"""OpenVINO backend: the default engine.

The shared settings become OpenVINO's own knobs (`openvino_config`, a pure
function also used by `rn50 info --emit python`). After compiling, the backend
reads back what the engine really applied, including the precision its
convolutions execute in: on CPUs with avx512_bf16 or AMX, OpenVINO runs in
BF16 unless told INFERENCE_PRECISION_HINT=f32.
"""

from __future__ import annotations

import time
from collections import Counter
from typing import Any, Callable

import numpy as np

from ..errors import EngineError, ModelError, cause_line
from ..models import ModelSpec
from ..models.convert import onnx_for
from ..models.detect import STATE_DICT
from ..settings import Settings
from ..data.preprocess import PreprocessSpec
from ._base import (Capabilities, InputSpec, PlanPreprocessing, Quantizer, batch_shape,
                    image_layout, uint8_input)

CAPABILITIES = Capabilities(
    name="openvino", backend_class="OpenVINOBackend", engine_module="openvino",
    install="pip install openvino",
    formats=("onnx", "openvino-ir", "tf-graphdef", "tf-savedmodel", "torch-state-dict"),
    precisions=("fp32", "bfloat16", "int8"),
    reads_back="compiled-model properties (threads, streams, hint, pinning, precision hint) "
               "and the precision of every convolution in the runtime graph",
    quantizer=Quantizer("nncf", "int8", ".xml"), streams=True, dynamic_batch=True,
    profiling="OpenVINO performance counters (PERF_COUNT)")

# int8: the model itself is quantized (NNCF); other layers run in the engine's default
PRECISION_HINTS = {"fp32": "f32", "bfloat16": "bf16", "int8": None}
READ_BACK = ("INFERENCE_NUM_THREADS", "NUM_STREAMS", "PERFORMANCE_HINT", "ENABLE_CPU_PINNING",
             "ENABLE_HYPER_THREADING", "INFERENCE_PRECISION_HINT",
             "OPTIMAL_NUMBER_OF_INFER_REQUESTS")


def openvino_config(settings: Settings, precision: str = "fp32") -> dict[str, Any]:
    """OpenVINO CPU compile properties for these settings."""
    streams = settings.streams.value
    config: dict[str, Any] = {
        "INFERENCE_NUM_THREADS": int(settings.intra_threads.value),
        "ENABLE_CPU_PINNING": settings.binding.value != "none",
        "ENABLE_HYPER_THREADING": False,
    }
    if PRECISION_HINTS[precision]:
        config["INFERENCE_PRECISION_HINT"] = PRECISION_HINTS[precision]
    if streams == "auto":
        config["PERFORMANCE_HINT"] = "THROUGHPUT"
    elif int(streams) == 1:
        config.update(PERFORMANCE_HINT="LATENCY", NUM_STREAMS=1)
    else:
        config.update(PERFORMANCE_HINT="THROUGHPUT", NUM_STREAMS=int(streams))
    return config


def _image_input(model, batch_size: int, path: str, default_size: int = 224) -> InputSpec:
    inputs = model.inputs
    if len(inputs) != 1:
        raise ModelError(f"model {path} has {len(inputs)} inputs; an image classifier has one")
    port = inputs[0]
    pshape = port.get_partial_shape()
    if pshape.rank.is_dynamic or pshape.rank.get_length() != 4:
        raise ModelError(f"model {path}: input '{port.any_name}' has shape {pshape}, "
                         "not an image tensor (N,C,H,W or N,H,W,C)")
    dims = [d.get_length() if d.is_static else -1 for d in pshape]
    layout = image_layout(dims)
    if layout is None:
        raise ModelError(f"model {path}: input '{port.any_name}' has shape {pshape}; "
                         "expected 3 colour channels (N,3,H,W or N,H,W,3)")
    return InputSpec(port.any_name, batch_shape(dims, layout, batch_size, default_size), layout)


class OpenVINOSession:
    preprocessing_in_graph: str | None = None
    dynamic_batch: bool = False  # takes any batch of 1..input_spec.shape[0] images
    def __init__(self, compiled, input_spec: InputSpec, load_timings: dict[str, float],
                 requested: dict[str, Any]) -> None:
        import openvino as ov

        self._ov = ov
        self._compiled = compiled
        self.input_spec = input_spec
        self.load_timings = load_timings
        self._requested = requested
        self.concurrency = max(1, int(compiled.get_property("OPTIMAL_NUMBER_OF_INFER_REQUESTS")))
        width = compiled.outputs[0].get_partial_shape()[-1]
        self.num_classes = width.get_length() if width.is_static else None
        self._request = compiled.create_infer_request()
        self._bound: list[tuple | None] = [None] * self.concurrency
        self._queue = None
        self._idle = 0
        if self.concurrency > 1:
            self._queue = ov.AsyncInferQueue(compiled, self.concurrency)
            self._queue.set_callback(
                lambda request, on_done: on_done(lambda: request.get_output_tensor(0).data))

    def _bind(self, request, slot: int, batch: np.ndarray) -> None:
        # Zero-copy input: the request reads the caller's array in place (bound again only
        # for other memory or another shape: a partial batch of a dynamic-batch model).
        key = (batch.__array_interface__["data"][0], batch.shape)
        if self._bound[slot] != key:
            request.set_input_tensor(self._ov.Tensor(batch, shared_memory=True))
            self._bound[slot] = key

    def run(self, batch: np.ndarray) -> np.ndarray:
        self._bind(self._request, 0, batch)
        self._request.infer()
        return self._request.get_output_tensor(0).data

    def wait_idle(self) -> None:
        if self._queue is not None:
            self._idle = self._queue.get_idle_request_id()

    def submit(self, batch: np.ndarray, on_done: Callable[[Callable], None]) -> None:
        if self._queue is None:
            output = self.run(batch)
            on_done(lambda: output)
            return
        slot = self._idle
        self._bind(self._queue[slot], slot, batch)
        self._queue.start_async(userdata=on_done)

    def wait_all(self) -> None:
        if self._queue is not None:
            self._queue.wait_all()

    def execution_precision(self) -> dict[str, Any]:
        """Precision and kernel the convolutions really run in, from the runtime graph."""
        precisions, kernels = Counter(), Counter()
        for op in self._compiled.get_runtime_model().get_ordered_ops():
            info = op.get_rt_info()
            if "layerType" in info and info["layerType"].astype(str) == "Convolution":
                precisions[info["runtimePrecision"].astype(str)] += 1
                kernels[info["primitiveType"].astype(str)] += 1
        return {"convolutions": sum(precisions.values()), "precisions": dict(precisions),
                "kernels": dict(kernels)}

    def applied_settings(self) -> dict:
        applied = {}
        for key in READ_BACK:
            try:
                value = self._compiled.get_property(key)
                applied[key] = value.to_string() if hasattr(value, "to_string") else str(value)
            except RuntimeError:
                applied[key] = "unavailable"
        precision = self.execution_precision()
        executed = sorted(precision["precisions"])
        return {"requested": {k: str(v) for k, v in self._requested.items()},
                "applied": applied,
                "execution_precision": ",".join(executed) if executed else "unknown",
                "execution_precision_source": "confirmed by the engine's runtime graph "
                                              f"(convolutions: {precision['precisions']})",
                "convolution_precisions": precision["precisions"],
                "convolution_kernels": precision["kernels"],
                "infer_requests": self.concurrency}


class OpenVINOBackend:
    name = "openvino"

    def __init__(self) -> None:
        import openvino as ov

        self._ov = ov
        self._core = ov.Core()

    def versions(self) -> dict[str, str]:
        return {"openvino": self._ov.get_version(),
                "device": str(self._core.get_property("CPU", "FULL_DEVICE_NAME"))}

    def load(self, model: ModelSpec, settings: Settings, precision: str,
             preprocess: PlanPreprocessing | None = None,
             dynamic_batch: bool = False, profiling: bool = False) -> OpenVINOSession:
        """The compiled model; with `dynamic_batch`, compiled for 1..batch images, so a
        partial batch (a server's at low load) costs only its own images."""
        if precision not in PRECISION_HINTS:
            raise EngineError(f"--precision {precision}: not supported by the openvino backend yet")
        batch_size = int(settings.batch_size.value)
        path = onnx_for(model) if model.format == STATE_DICT else model.path
        start = time.perf_counter()
        try:
            ov_model = self._core.read_model(path)
        except RuntimeError as exc:
            raise ModelError(f"model file {model.path} could not be read by OpenVINO: "
                             f"{cause_line(exc) or type(exc).__name__}") from exc
        read_s = time.perf_counter() - start
        spec = _image_input(ov_model, batch_size, model.path, model.input_size())
        shape = self._ov.PartialShape([self._ov.Dimension(1, spec.shape[0]), *spec.shape[1:]]) \
            if dynamic_batch else list(spec.shape)
        try:
            ov_model.reshape({ov_model.inputs[0]: shape})
        except RuntimeError as exc:
            raise ModelError(f"model {model.path} cannot take input shape {spec.shape}") from exc
        embedded = preprocess(spec, _output_width(ov_model)) if preprocess else None
        if embedded is not None:
            ov_model, spec = with_uint8_input(ov_model, spec, embedded), uint8_input(spec)
        config = openvino_config(settings, precision)
        if profiling:
            config["PERF_COUNT"] = "YES"
        start = time.perf_counter()
        compiled = self._core.compile_model(ov_model, "CPU", config)
        compile_s = time.perf_counter() - start
        session = OpenVINOSession(compiled, spec, {"read_s": read_s, "compile_s": compile_s},
                                  config)
        session.preprocessing_in_graph = ("OpenVINO PrePostProcessor: uint8 NHWC RGB in"
                                          if embedded is not None else None)
        session.dynamic_batch = dynamic_batch
        if profiling:
            from functools import partial

            from .openvino_profile import profile

            session.profile = partial(profile, session, ov_model, precision)
        return session


def _output_width(ov_model) -> int | None:
    width = ov_model.outputs[0].get_partial_shape()[-1]
    return width.get_length() if width.is_static else None


def with_uint8_input(ov_model, spec: InputSpec, prep: PreprocessSpec):
    """The model taking uint8 NHWC RGB crops: type, layout, channel order, scale, mean and
    std done by OpenVINO's PrePostProcessor inside the compiled graph."""
    import openvino as ov
    from openvino.preprocess import ColorFormat, PrePostProcessor

    ppp = PrePostProcessor(ov_model)
    tensor, steps = ppp.input().tensor(), ppp.input().preprocess()
    tensor.set_element_type(ov.Type.u8).set_layout(ov.Layout("NHWC"))
    tensor.set_color_format(ColorFormat.RGB)
    ppp.input().model().set_layout(ov.Layout(spec.layout))
    steps.convert_element_type(ov.Type.f32)
    if prep.channel_order == "BGR":
        steps.convert_color(ColorFormat.BGR)
    factor = 255.0 if prep.scale == "0-1" else 1.0  # (v/255 - m)/s = (v - 255 m)/(255 s)
    steps.mean([factor * m for m in prep.mean]).scale([factor * s for s in prep.std])
    return ppp.build()


def quantize(model: ModelSpec, path: str, calib: list[np.ndarray], out) -> None:
    """INT8 by NNCF post-training quantization, saved as IR (written atomically)."""
    import os
    import tempfile
    from pathlib import Path

    import nncf
    import openvino as ov

    quantized = nncf.quantize(ov.Core().read_model(path), nncf.Dataset(calib),
                              subset_size=len(calib))
    with tempfile.TemporaryDirectory(dir=out.parent) as tmp:
        staged = Path(tmp) / out.name
        ov.save_model(quantized, str(staged), compress_to_fp16=False)
        os.replace(staged.with_suffix(".bin"), out.with_suffix(".bin"))
        os.replace(staged, out)
