"""Which engine can run which precision, and whether this CPU has the instructions for it (pure)."""

from __future__ import annotations

from .config import PRECISIONS
from .errors import ConfigError
from .platform import Platform

ENGINE_PRECISIONS = {
    "openvino": ("fp32", "bfloat16", "int8"),  # bf16 by precision hint; int8 from NNCF
    "onnxruntime": ("fp32", "int8"),  # int8: QDQ model from onnxruntime.quantization
    "tensorflow": ("fp32", "bfloat16"),  # bf16: grappler's oneDNN auto-mixed precision
    "torch": ("fp32", "bfloat16", "int8"),  # bf16: weights and input cast; int8: FX PTQ, x86
    "null": PRECISIONS,
}
# Any one of these CPU flags makes the precision fast (and, for bf16, possible at all).
CPU_FLAGS = {
    "bfloat16": ("avx512_bf16", "amx_bf16"),
    "int8": ("avx512_vnni", "avx_vnni", "amx_int8"),
}


def check_precision(precision: str, backend: str, platform: Platform) -> None:
    """Raise ConfigError naming the engines that can, or the CPU flag that is missing."""
    if precision not in PRECISIONS:
        raise ConfigError(f"--precision {precision}: unknown; choose {', '.join(PRECISIONS)}")
    supported = ENGINE_PRECISIONS.get(backend, ("fp32",))
    if precision not in supported:
        able = [name for name, precs in ENGINE_PRECISIONS.items()
                if precision in precs and name != "null"]
        raise ConfigError(f"--precision {precision}: the {backend} backend runs "
                          f"{', '.join(supported)} only; use --backend {' or '.join(able)}")
    flags = CPU_FLAGS.get(precision)
    if flags and backend != "null" and not any(f in platform.flags for f in flags):
        raise ConfigError(f"--precision {precision}: this CPU lacks {flags[0]} (nor has "
                          f"{' or '.join(flags[1:])}): {precision} would be slow or "
                          "unsupported here")
