"""Backend registry: one module per engine, each declaring its `CAPABILITIES`.

Adding an engine = its module (a Backend class and CAPABILITIES) + one name in
BUILTIN (+ its extra in pyproject.toml). Another package can add one without
touching rn50: an entry point in the group `rn50.backends` (`name = package.module`).
Backend modules import no engine at module level, so reading capabilities is cheap;
the engine is imported when a backend is instantiated, in the engine process.
"""

from __future__ import annotations

import importlib
import importlib.util
import re
from functools import lru_cache

from ..errors import ConfigError, EngineError
from ._base import Backend, Capabilities, InputSpec, Session

BUILTIN = ("openvino", "onnxruntime", "tensorflow", "torch", "null")  # comparisons list in order
ENTRY_POINTS = "rn50.backends"


@lru_cache(maxsize=1)
def _modules() -> dict[str, str]:
    """Backend name -> module: the built-in ones, then any installed plugins."""
    from importlib.metadata import entry_points

    modules = {name: f"rn50.backends.{name}" for name in BUILTIN}
    for entry in entry_points(group=ENTRY_POINTS):
        modules.setdefault(entry.name, entry.value)
    return modules


def names() -> tuple[str, ...]:
    """Every registered backend, the null one included."""
    return tuple(_modules())


@lru_cache(maxsize=None)
def capabilities(name: str) -> Capabilities:
    """What backend `name` declares; ConfigError for an unknown name."""
    if name not in _modules():
        raise ConfigError(f"--backend {name}: unknown engine; available: {', '.join(names())}")
    return importlib.import_module(_modules()[name]).CAPABILITIES


def real_engines() -> tuple[str, ...]:
    """The real engines (not the null backend), in registry order."""
    return tuple(name for name in names() if capabilities(name).real)


ENGINES = tuple(name for name in BUILTIN if name != "null")
"""The built-in real engines, in the order comparisons list them (the first is the parity
reference); `real_engines()` adds plugins."""


def is_noise(name: str, line: str) -> bool:
    """Whether an engine's output line is start-up noise (the log keeps it)."""
    if name not in _modules():
        return False
    return any(re.search(pattern, line) for pattern in capabilities(name).noise)


def check_format(name: str, model_format: str, path: str) -> None:
    """Raise ConfigError when engine `name` cannot run a model file of `model_format`."""
    caps = capabilities(name)
    if caps.real and model_format not in caps.formats:
        able = [engine for engine in real_engines()
                if model_format in capabilities(engine).formats]
        raise ConfigError(f"--backend {name} cannot run {path} ({model_format}); "
                          f"engines that can: {', '.join(able) or 'none yet'}")


def engine_env(name: str) -> dict[str, str]:
    """Environment variables an engine needs before it is imported."""
    return dict(capabilities(name).env)


def check_installed(name: str) -> None:
    """Raise unless `name` is a known backend whose engine is installed (imports no engine)."""
    caps = capabilities(name)
    if caps.engine_module and importlib.util.find_spec(caps.engine_module) is None:
        raise EngineError(f"--backend {name}: the engine is not installed; install it with: "
                          f"{caps.install}")


def get_backend(name: str) -> Backend:
    """Instantiate a backend by name; a missing engine names its install command."""
    check_installed(name)
    caps = capabilities(name)
    module = importlib.import_module(_modules()[name])
    try:
        return getattr(module, caps.backend_class)()
    except ImportError as exc:
        raise EngineError(f"--backend {name}: the engine is not installed ({exc.name}); "
                          f"install it with: {caps.install}") from exc


__all__ = ["BUILTIN", "ENGINES", "Backend", "Capabilities", "InputSpec", "Session",
           "capabilities", "check_format", "check_installed", "engine_env", "get_backend",
           "is_noise", "names", "real_engines"]
