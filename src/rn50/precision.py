"""Which engine can run which precision, and whether this CPU has the instructions for it (pure)."""

from __future__ import annotations

from .backends import capabilities, real_engines
from .config import PRECISIONS
from .errors import ConfigError
from .platform import Platform

# Any one of these CPU flags makes the precision fast (and, for bf16, possible at all).
CPU_FLAGS = {
    "bfloat16": ("avx512_bf16", "amx_bf16"),
    "int8": ("avx512_vnni", "avx_vnni", "amx_int8"),
}


def engine_precisions(backend: str) -> tuple[str, ...]:
    """The precisions an engine declares it runs."""
    return capabilities(backend).precisions


def check_precision(precision: str, backend: str, platform: Platform) -> None:
    """Raise ConfigError naming the engines that can, or the CPU flag that is missing."""
    if precision not in PRECISIONS:
        raise ConfigError(f"--precision {precision}: unknown; choose {', '.join(PRECISIONS)}")
    supported = engine_precisions(backend)
    if precision not in supported:
        able = [name for name in real_engines() if precision in engine_precisions(name)]
        raise ConfigError(f"--precision {precision}: the {backend} backend runs "
                          f"{', '.join(supported)} only; use --backend {' or '.join(able)}")
    flags = CPU_FLAGS.get(precision)
    if flags and capabilities(backend).real and not any(f in platform.flags for f in flags):
        raise ConfigError(f"--precision {precision}: this CPU lacks {flags[0]} (nor has "
                          f"{' or '.join(flags[1:])}): {precision} would be slow or "
                          "unsupported here")
