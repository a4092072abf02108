"""The built-in ResNet-50 v1.5, generated from a fixed seed so no download is needed.

Architecture (He et al. 2015, "v1.5" variant as in torchvision and MLPerf):
a 7x7/2 stem, a 3x3/2 max-pool, four stages of bottleneck blocks [3, 4, 6, 3]
with widths [64, 128, 256, 512] (expansion 4), the stride on the 3x3 convolution
of the first block of a stage (v1.5; v1 puts it on the first 1x1), global average
pooling and a 2048 -> 1000 fully connected layer. Input: NCHW float32 1x3x224x224.

Batch normalisation is folded into the convolutions' weights and biases, as every
inference engine does when it loads a trained model, so the compute is that of
the deployed network.

The weights are random (seeded): the model is for measuring speed only; its
predictions mean nothing. They are scaled so activations stay well inside the
normal float32 range (see `_block_weights`): a run never falls onto the slow
denormal path and the logits are finite and of order one.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

BUILDER_VERSION = 1
"""Bump when the generated graph or weights change: the cache key includes it."""

STAGES = ((3, 64), (4, 128), (6, 256), (3, 512))
EXPANSION = 4
NUM_CLASSES = 1000
IMAGE_SIZE = 224
INPUT_NAME = "input"
OUTPUT_NAME = "logits"

RESIDUAL_BRANCH_SCALE = 0.35
"""Scale on the last convolution of every residual branch.

With He-normal initialisation each branch roughly preserves the variance of its
input; adding it to the identity path multiplies the variance by about
(1 + scale**2) per block. With 16 blocks and 0.35 that is a factor of ~7
(std ~2.6), well-scaled, where an unscaled branch would grow it 65,000-fold.
"""


@dataclass(frozen=True)
class ConvSpec:
    name: str
    in_channels: int
    out_channels: int
    kernel: int
    stride: int
    in_size: int

    @property
    def out_size(self) -> int:
        pad = self.kernel // 2
        return (self.in_size + 2 * pad - self.kernel) // self.stride + 1

    @property
    def macs(self) -> int:
        return (self.out_channels * self.in_channels * self.kernel * self.kernel
                * self.out_size * self.out_size)


def _he_normal(rng: np.random.Generator, shape: tuple[int, ...], gain: float = 2.0) -> np.ndarray:
    fan_in = int(np.prod(shape[1:]))
    std = np.float32(np.sqrt(gain / fan_in))
    return rng.standard_normal(shape, dtype=np.float32) * std


def macs_per_image() -> int:
    """Multiply-accumulates of one 224x224 forward pass (convolutions + FC)."""
    total = 0
    size = IMAGE_SIZE
    stem = ConvSpec("stem", 3, 64, 7, 2, size)
    total += stem.macs
    size = (stem.out_size + 2 - 3) // 2 + 1  # max-pool 3x3/2 pad 1
    in_ch = 64
    for stage, (blocks, width) in enumerate(STAGES):
        for block in range(blocks):
            stride = 2 if (block == 0 and stage > 0) else 1
            convs = [ConvSpec("a", in_ch, width, 1, 1, size),
                     ConvSpec("b", width, width, 3, stride, size)]
            out_size = convs[1].out_size
            convs.append(ConvSpec("c", width, width * EXPANSION, 1, 1, out_size))
            if block == 0:
                convs.append(ConvSpec("down", in_ch, width * EXPANSION, 1, stride, size))
            total += sum(c.macs for c in convs)
            in_ch, size = width * EXPANSION, out_size
    return total + in_ch * NUM_CLASSES


def build_onnx(seed: int = 0):
    """Return an `onnx.ModelProto` of ResNet-50 v1.5 with seeded random weights."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(seed)
    nodes: list = []
    initializers: list = []

    def add_init(name: str, array: np.ndarray) -> str:
        initializers.append(numpy_helper.from_array(np.ascontiguousarray(array), name))
        return name

    def conv(x: str, name: str, in_ch: int, out_ch: int, kernel: int, stride: int,
             relu: bool, scale: float = 1.0, gain: float = 2.0) -> str:
        weight = _he_normal(rng, (out_ch, in_ch, kernel, kernel), gain) * np.float32(scale)
        bias = np.zeros(out_ch, dtype=np.float32)
        pad = kernel // 2
        out = f"{name}_out"
        nodes.append(helper.make_node(
            "Conv", [x, add_init(f"{name}.weight", weight), add_init(f"{name}.bias", bias)],
            [out], name=name, kernel_shape=[kernel, kernel], strides=[stride, stride],
            pads=[pad, pad, pad, pad]))
        if not relu:
            return out
        nodes.append(helper.make_node("Relu", [out], [f"{name}_relu"], name=f"{name}_relu"))
        return f"{name}_relu"

    x = conv(INPUT_NAME, "conv1", 3, 64, 7, 2, relu=True)
    nodes.append(helper.make_node("MaxPool", [x], ["pool1"], name="pool1",
                                  kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1]))
    x, in_ch = "pool1", 64
    for stage, (blocks, width) in enumerate(STAGES, start=1):
        for block in range(blocks):
            prefix = f"layer{stage}.{block}"
            stride = 2 if (block == 0 and stage > 1) else 1
            branch = conv(x, f"{prefix}.conv1", in_ch, width, 1, 1, relu=True)
            branch = conv(branch, f"{prefix}.conv2", width, width, 3, stride, relu=True)
            branch = conv(branch, f"{prefix}.conv3", width, width * EXPANSION, 1, 1,
                          relu=False, scale=RESIDUAL_BRANCH_SCALE)
            if block == 0:
                shortcut = conv(x, f"{prefix}.downsample", in_ch, width * EXPANSION, 1, stride,
                                relu=False, gain=1.0)
            else:
                shortcut = x
            nodes.append(helper.make_node("Add", [branch, shortcut], [f"{prefix}_sum"],
                                          name=f"{prefix}.add"))
            nodes.append(helper.make_node("Relu", [f"{prefix}_sum"], [f"{prefix}_out"],
                                          name=f"{prefix}.relu"))
            x, in_ch = f"{prefix}_out", width * EXPANSION

    nodes.append(helper.make_node("GlobalAveragePool", [x], ["avgpool"], name="avgpool"))
    nodes.append(helper.make_node("Flatten", ["avgpool"], ["flatten"], name="flatten", axis=1))
    fc_weight = rng.standard_normal((NUM_CLASSES, in_ch), dtype=np.float32) * np.float32(
        1.0 / np.sqrt(in_ch))
    nodes.append(helper.make_node(
        "Gemm", ["flatten", add_init("fc.weight", fc_weight),
                 add_init("fc.bias", np.zeros(NUM_CLASSES, dtype=np.float32))],
        [OUTPUT_NAME], name="fc", transB=1))

    graph = helper.make_graph(
        nodes, "resnet50_v1_5",
        [helper.make_tensor_value_info(INPUT_NAME, TensorProto.FLOAT,
                                       ["batch", 3, IMAGE_SIZE, IMAGE_SIZE])],
        [helper.make_tensor_value_info(OUTPUT_NAME, TensorProto.FLOAT, ["batch", NUM_CLASSES])],
        initializers)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)],
                              producer_name="rn50", producer_version=str(BUILDER_VERSION))
    model.ir_version = 8
    helper.set_model_props(model, {
        "rn50.builtin": "resnet50_v1.5",
        "rn50.seed": str(seed),
        "rn50.weights": "random (seeded): speed only, predictions are meaningless",
    })
    onnx.checker.check_model(model, full_check=False)
    return model
