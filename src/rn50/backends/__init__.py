"""Backend registry: names to import paths, imported only when chosen."""

from __future__ import annotations

import importlib
import importlib.util

from ..errors import ConfigError, EngineError
from ._base import Backend, InputSpec, Session

REGISTRY = {  # name: (class path, engine module, install command)
    "openvino": ("rn50.backends.openvino:OpenVINOBackend", "openvino", "pip install openvino"),
    "onnxruntime": ("rn50.backends.onnxruntime:OnnxRuntimeBackend", "onnxruntime",
                    "pip install 'rn50[onnxruntime]'"),
    "null": ("rn50.backends.null:NullBackend", None, None),
}
PLANNED = ("tensorflow", "torch")


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


__all__ = ["Backend", "InputSpec", "Session", "check_installed", "get_backend", "REGISTRY"]
