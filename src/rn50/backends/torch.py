"""PyTorch backend: TorchScript, a torchvision-style ResNet-50 state_dict, or the built-in model.

Settings become torch.set_num_threads (intra) and set_num_interop_threads
(inter); the model runs in inference mode, channels-last, frozen with
torch.jit.freeze + optimize_for_inference (oneDNN kernels). Checkpoints are
read with torch.load(weights_only=True): no pickled code is ever run.

BF16 (`--precision bfloat16`): the module's weights and its input are cast to
bfloat16 before freezing, so every convolution runs oneDNN's BF16 kernels
(avx512_bf16 / AMX); logits come back as float32. The run reports the dtype of
the convolution weights in the frozen graph it executes.

INT8 (`--precision int8`): a TorchScript file of quantized ops (what
`rn50 quantize --backend torch` writes: FX post-training quantization, x86
qconfig) runs on PyTorch's x86 quantized engine; the run counts the quantized
convolutions in the frozen graph.
"""

from __future__ import annotations

import time
from collections import Counter

import numpy as np

from ..errors import EngineError, ModelError
from ..models import ModelSpec
from ..models.detect import ONNX, STATE_DICT, TORCHSCRIPT
from ..models.state_dict import load_state_dict_weights
from ..settings import Settings
from ._base import Capabilities, InputSpec, Quantizer, SyncSession

CAPABILITIES = Capabilities(
    name="torch", backend_class="TorchBackend", engine_module="torch",
    install="pip install 'rn50[torch]'", formats=("torchscript", "torch-state-dict"),
    precisions=("fp32", "bfloat16", "int8"),
    reads_back="torch's thread counts (get_num_threads) and the dtype of the convolution "
               "weights, or the quantized convolutions, in the frozen graph",
    quantizer=Quantizer("torch", "torch", ".pt"), frameworks=("pytorch",))
DTYPES = {"torch.float32": "f32", "torch.bfloat16": "bf16", "torch.float16": "f16"}


def _weight_dtype(convolution) -> str | None:
    weight = list(convolution.inputs())[1]
    source = weight.node()  # a constant once frozen; oneDNN-packed ones hold it as attribute t
    if source.hasAttribute("value") and source.kindOf("value") == "t":
        return str(source.t("value").dtype)
    value = weight.toIValue()
    return str(value.dtype) if hasattr(value, "dtype") else None


def quantized_convolutions(module) -> int:
    """How many quantized convolutions a TorchScript module's graph holds (0: a float model)."""
    return sum(1 for node in module.inlined_graph.nodes()
               if node.kind().startswith("quantized::conv"))


def convolution_dtypes(module) -> Counter:
    """Dtypes of the convolution weights in a frozen TorchScript graph."""
    dtypes = Counter()
    for node in module.graph.nodes():
        if "conv" in node.kind() and (name := _weight_dtype(node)):
            dtypes[DTYPES.get(name, name)] += 1
    return dtypes


class TorchSession(SyncSession):
    def __init__(self, module, input_spec: InputSpec, load_timings: dict[str, float],
                 applied: dict, num_classes: int | None, dtype, precision: dict) -> None:
        import torch

        self._torch = torch
        self._module = module
        self._dtype = dtype
        self.input_spec = input_spec
        self.load_timings = load_timings
        self._applied = applied
        self._precision = precision
        self._bound: tuple[int, object] | None = None
        self.num_classes = num_classes

    def run(self, batch: np.ndarray) -> np.ndarray:
        torch = self._torch
        if self._bound is None or self._bound[0] != id(batch):
            tensor = torch.from_numpy(batch).to(self._dtype).contiguous(
                memory_format=torch.channels_last)
            self._bound = (id(batch), tensor)
        with torch.inference_mode():
            return self._module(self._bound[1]).float().numpy()

    def applied_settings(self) -> dict:
        return {"applied": self._applied, **self._precision}


class TorchBackend:
    name = "torch"
    formats = (TORCHSCRIPT, STATE_DICT)

    def __init__(self) -> None:
        import torch

        self._torch = torch

    def versions(self) -> dict[str, str]:
        return {"torch": self._torch.__version__}

    def load(self, model: ModelSpec, settings: Settings, precision: str,
             preprocess=None) -> TorchSession:
        torch = self._torch
        if precision not in ("fp32", "bfloat16", "int8"):
            raise EngineError(f"--precision {precision}: the torch backend runs fp32, bfloat16 "
                              "and int8")
        dtype = torch.bfloat16 if precision == "bfloat16" else torch.float32
        int8 = precision == "int8"
        if int8:
            torch.backends.quantized.engine = "x86"
        torch.set_num_threads(int(settings.intra_threads.value))
        try:
            torch.set_num_interop_threads(int(settings.inter_threads.value))
        except RuntimeError:  # only settable before the first parallel work
            pass
        start = time.perf_counter()
        module = _read_module(torch, model)
        read_s = time.perf_counter() - start
        quantized = quantized_convolutions(module) if isinstance(module, torch.jit.ScriptModule) \
            else 0
        if int8 != bool(quantized):
            raise EngineError(f"--precision {precision}: {model.path} is "
                              f"{'an INT8' if quantized else 'not an INT8'} model "
                              f"({quantized} quantized convolutions)")
        batch, size = int(settings.batch_size.value), model.input_size()
        example = torch.zeros(batch, 3, size, size, dtype=dtype).contiguous(
            memory_format=torch.channels_last)
        start = time.perf_counter()
        module = module.eval() if int8 else module.eval().to(dtype=dtype,
                                                             memory_format=torch.channels_last)
        with torch.inference_mode():
            scripted = module if isinstance(module, torch.jit.ScriptModule) \
                else torch.jit.trace(module, example)
            frozen = torch.jit.freeze(scripted.eval())
            if not int8:  # oneDNN float rewrites; quantized ops stay as they are
                frozen = torch.jit.optimize_for_inference(frozen)
            try:
                probe = frozen(example)
            except Exception as exc:
                raise ModelError(f"model {model.path} does not take a {tuple(example.shape)} "
                                 f"image batch ({type(exc).__name__})") from exc
        compile_s = time.perf_counter() - start
        applied, executed = _as_run(torch, frozen, dtype, quantized)
        return TorchSession(frozen, InputSpec("input", (batch, 3, size, size), "NCHW"),
                            {"read_s": read_s, "compile_s": compile_s}, applied,
                            int(probe.shape[-1]) if probe.dim() == 2 else None, dtype, executed)


def _read_module(torch, model: ModelSpec):
    """The module to run: the built-in model or a state_dict as ResNet50, or a TorchScript."""
    from ..models.torch_net import ResNet50

    if model.format == ONNX and model.source == "builtin":
        from ..models.builtin import onnx_weights
        return ResNet50(onnx_weights(model.path))
    if model.format == STATE_DICT:
        return ResNet50(load_state_dict_weights(model.path))
    if model.format == TORCHSCRIPT:
        try:
            return torch.jit.load(model.path, map_location="cpu")
        except Exception as exc:
            raise ModelError(f"model file {model.path} is not a loadable TorchScript archive "
                             f"({type(exc).__name__})") from exc
    raise ModelError(f"model file {model.path} ({model.format}): the torch backend runs "
                     "TorchScript files and torchvision ResNet-50 state_dicts")


def _as_run(torch, frozen, dtype, quantized: int) -> tuple[dict, dict]:
    """What torch applied (read back) and the precision the frozen graph executes."""
    applied = {"num_threads": str(torch.get_num_threads()),
               "num_interop_threads": str(torch.get_num_interop_threads()),
               "memory_format": "channels_last", "graph": "torch.jit.freeze + "
               "optimize_for_inference", "mkldnn": str(torch.backends.mkldnn.is_available()),
               "dtype": str(dtype).removeprefix("torch.")}
    if quantized:
        applied.update(graph="torch.jit.freeze (quantized ops)",
                       quantized_engine=torch.backends.quantized.engine, dtype="quint8/qint8")
        return applied, {"execution_precision": "i8,u8",
                         "execution_precision_source": f"{quantized} quantized convolutions "
                         "(int8 weights, uint8 activations) in the graph that runs",
                         "convolution_precisions": {"i8,u8": quantized}}
    dtypes = convolution_dtypes(frozen)
    return applied, {"execution_precision": ",".join(sorted(dtypes)) or "unknown",
                     "execution_precision_source": "dtype of the convolution weights in the "
                     f"frozen graph that runs (convolutions: {dict(dtypes)})",
                     "convolution_precisions": dict(dtypes)}


def float_module(model: ModelSpec):
    """The FP32 PyTorch module of the built-in model or a torchvision state_dict."""
    from ..errors import ConfigError
    from ..models.builtin import onnx_weights
    from ..models.torch_net import ResNet50

    if model.format == STATE_DICT:
        return ResNet50(load_state_dict_weights(model.path)).eval()
    if model.source == "builtin":
        return ResNet50(onnx_weights(model.path)).eval()
    raise ConfigError(f"--precision int8 on torch quantizes the built-in model or a torchvision "
                      f"state_dict, not {model.path}; use --backend openvino or onnxruntime")


def quantize(model: ModelSpec, path: str, calib: list[np.ndarray], out) -> None:
    """INT8 by FX graph-mode post-training quantization (x86 qconfig), saved as TorchScript."""
    import os
    import tempfile
    from pathlib import Path

    import torch
    from torch.ao.quantization import get_default_qconfig_mapping
    from torch.ao.quantization.quantize_fx import convert_fx, prepare_fx

    torch.backends.quantized.engine = "x86"
    example = torch.from_numpy(calib[0])
    prepared = prepare_fx(float_module(model), get_default_qconfig_mapping("x86"), (example,))
    with torch.inference_mode():
        for x in calib:
            prepared(torch.from_numpy(x))
        traced = torch.jit.trace(convert_fx(prepared), example)
    with tempfile.TemporaryDirectory(dir=out.parent) as tmp:
        staged = Path(tmp) / out.name
        torch.jit.save(traced, str(staged))
        os.replace(staged, out)
