"""Backend registry: names to import paths, imported only when chosen."""

from __future__ import annotations

import importlib
import importlib.util
import re

from ..errors import ConfigError, EngineError
from ._base import Backend, InputSpec, Session

REGISTRY = {  # name: (class path, engine module, install command)
    "openvino": ("rn50.backends.openvino:OpenVINOBackend", "openvino", "pip install openvino"),
    "onnxruntime": ("rn50.backends.onnxruntime:OnnxRuntimeBackend", "onnxruntime",
                    "pip install 'rn50[onnxruntime]'"),
    "tensorflow": ("rn50.backends.tensorflow:TensorFlowBackend", "tensorflow",
                   "pip install 'rn50[tensorflow]'"),
    "torch": ("rn50.backends.torch:TorchBackend", "torch", "pip install 'rn50[torch]'"),
    "null": ("rn50.backends.null:NullBackend", None, None),
}
PLANNED: tuple[str, ...] = ()
ENGINES = ("openvino", "onnxruntime", "tensorflow", "torch")
"""The real engines, in the order comparisons list them (the first is the parity reference)."""
MODEL_FORMATS = {  # formats each engine runs from a file (the built-in model runs everywhere)
    # converted once and cached: a GraphDef to ONNX (tf2onnx), a torchvision state_dict to ONNX
    "openvino": ("onnx", "openvino-ir", "tf-graphdef", "tf-savedmodel", "torch-state-dict"),
    "onnxruntime": ("onnx", "tf-graphdef", "torch-state-dict"),
    "tensorflow": ("tf-graphdef", "tf-savedmodel", "keras"),
    "torch": ("torchscript", "torch-state-dict"),
}
ENGINE_ENV = {  # set in the benchmark process before the engine loads
    "tensorflow": {"TF_ENABLE_ONEDNN_OPTS": "1", "TF_CPP_MIN_LOG_LEVEL": "2"},
}


ENGINE_NOISE = {  # engine start-up lines that say nothing about this run: kept in the log only
    "tensorflow": (re.compile(r"^WARNING: All log messages before absl::InitializeLog"),
                   re.compile(r"^I\d{4} .*port\.cc:\d+\] oneDNN custom operations are on"),
                   re.compile(r"^I\d{4} .*cpu_feature_guard\.cc")),
}


def is_noise(name: str, line: str) -> bool:
    """Whether an engine's output line is start-up noise (the log keeps it)."""
    return any(pattern.search(line) for pattern in ENGINE_NOISE.get(name, ()))


def check_format(name: str, model_format: str, path: str) -> None:
    """Raise ConfigError when engine `name` cannot run a model file of `model_format`."""
    formats = MODEL_FORMATS.get(name)
    if formats is not None and model_format not in formats:
        able = [engine for engine, fmts in MODEL_FORMATS.items() if model_format in fmts]
        raise ConfigError(f"--backend {name} cannot run {path} ({model_format}); "
                          f"engines that can: {', '.join(able) or 'none yet'}")


def engine_env(name: str) -> dict[str, str]:
    """Environment variables an engine needs before it is imported."""
    return dict(ENGINE_ENV.get(name, {}))


def check_installed(name: str) -> None:
    """Raise unless `name` is a known backend whose engine is installed (imports nothing)."""
    if name not in REGISTRY:
        if name in PLANNED:
            raise ConfigError(f"--backend {name}: not implemented yet (coming with the engines "
                              f"work); available: {', '.join(REGISTRY)}")
        raise ConfigError(f"--backend {name}: unknown engine; available: {', '.join(REGISTRY)}")
    _, module, install = REGISTRY[name]
    if module and importlib.util.find_spec(module) is None:
        raise EngineError(f"--backend {name}: the engine is not installed; install it with: {install}")


def get_backend(name: str) -> Backend:
    """Instantiate a backend by name; a missing engine names its install command."""
    check_installed(name)
    target, _, install = REGISTRY[name]
    module_name, class_name = target.split(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise EngineError(f"--backend {name}: the engine is not installed ({exc.name}); "
                          f"install it with: {install}") from exc
    return getattr(module, class_name)()


__all__ = ["ENGINES", "Backend", "InputSpec", "Session", "check_format", "check_installed",
           "engine_env", "get_backend", "is_noise", "REGISTRY"]
