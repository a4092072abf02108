"""FLOPs and bytes of a layer from its tensor shapes (pure), for per-layer profiles.

A multiply-add counts as 2 FLOPs (as the compute figure of `rn50 bench` does). Bytes are
what a layer must at least read and write once: input activations, weights and output at
the element size of the precision that ran — a lower bound that ignores caches and
reorders, enough to place a layer on a roofline.
"""

from __future__ import annotations

from math import prod
from typing import Sequence

ELEMENT_BYTES = {"fp32": 4, "bfloat16": 2, "int8": 1}
CONV_TYPES = ("Conv", "FusedConv", "QLinearConv", "ConvInteger", "Convolution",
              "GroupConvolution", "NhwcFusedConv")
GEMM_TYPES = ("Gemm", "FusedGemm", "MatMul", "QGemm", "MatMulInteger", "QLinearMatMul",
              "FullyConnected", "DynamicQuantizeMatMul", "MatMulIntegerToFloat")


def conv_flops(output: Sequence[int], weight: Sequence[int]) -> int:
    """2 x output elements x (input channels per group x kernel area): `weight` is
    [out, in/groups, kh, kw] (OIHW), as ONNX and OpenVINO both store it."""
    return 2 * prod(output) * prod(weight[1:])


def gemm_flops(a: Sequence[int], output: Sequence[int]) -> int:
    """2 x M x N x K for A [.., M, K] giving [.., M, N]: the output's elements times A's
    last dimension (so a weight packed away by the engine, and not listed, is not needed)."""
    return 2 * prod(output) * a[-1]


def layer_bytes(shapes: Sequence[Sequence[int]], precision: str) -> int:
    """The tensors a layer reads and writes, once each, at the precision's element size."""
    return ELEMENT_BYTES.get(precision, 4) * sum(prod(s) for s in shapes)


def flops_of(op_type: str, inputs: Sequence[Sequence[int]],
             outputs: Sequence[Sequence[int]]) -> int:
    """FLOPs of one node from its type and shapes (0 for what does no multiply-add: pooling,
    element-wise, reorders are memory work, not FLOPs). The activation is the first rank-4
    input, the weight the next rank-4 (QLinearConv's scales and zero points are skipped)."""
    if op_type in CONV_TYPES and outputs:
        ranked = [s for s in inputs if len(s) == 4]
        return conv_flops(outputs[0], ranked[1]) if len(ranked) >= 2 else 0
    if op_type in GEMM_TYPES and outputs:
        ranked = [s for s in inputs if len(s) >= 2]
        return gemm_flops(ranked[0], outputs[0]) if ranked else 0
    return 0
