"""Which engine runs which precision, and the CPU flags each needs (simulated CPUs)."""

from __future__ import annotations

import pytest

from rn50.errors import ConfigError
from rn50.platform import LogicalCpu, Platform
from rn50.precision import check_precision


def cpu(*flags: str) -> Platform:
    return Platform(cpus=(LogicalCpu(0, 0, 0, 0),), allowed_cpus=(0,),
                    flags=frozenset({"avx2", "fma", "avx512f", *flags}))


THIS_CPU = cpu("avx512_vnni", "avx512_bf16", "amx_bf16", "amx_int8")


@pytest.mark.parametrize("precision, backend", [
    ("fp32", "openvino"), ("fp32", "torch"), ("bfloat16", "openvino"), ("int8", "openvino"),
    ("int8", "onnxruntime"), ("int8", "null"), ("bfloat16", "torch"), ("bfloat16", "tensorflow"),
    ("int8", "torch"),
])
def test_supported_combinations(precision, backend):
    check_precision(precision, backend, THIS_CPU)


@pytest.mark.parametrize("precision, backend, message", [
    ("int8", "tensorflow", "the tensorflow backend runs fp32, bfloat16 only; use --backend "
                           "openvino or onnxruntime or torch"),
    ("bfloat16", "onnxruntime", "runs fp32, int8 only; use --backend openvino or tensorflow or "
                                "torch"),
    ("int4", "openvino", "unknown"),
])
def test_unsupported_engine_names_the_engines_that_can(precision, backend, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(")):
        check_precision(precision, backend, THIS_CPU)


def test_missing_cpu_flags_are_named():
    with pytest.raises(ConfigError, match="--precision bfloat16: this CPU lacks avx512_bf16"):
        check_precision("bfloat16", "openvino", cpu("avx512_vnni"))
    with pytest.raises(ConfigError, match="--precision int8: this CPU lacks avx512_vnni"):
        check_precision("int8", "openvino", cpu())
    check_precision("int8", "openvino", cpu("avx_vnni"))  # AVX-VNNI is enough
    check_precision("bfloat16", "openvino", cpu("amx_bf16"))
