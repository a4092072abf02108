"""ResNet-50 v1.5 as data: the layer list, seeded weights, and torchvision BN folding.

One description of the architecture that every engine's builder walks (ONNX,
TensorFlow GraphDef, PyTorch module), so the built-in model is the same
network with the same weights in every engine. No framework is imported here.

Weight names follow torchvision with batch norm folded away: ``conv1.weight``,
``conv1.bias``, ``layer2.0.conv2.weight``, ``layer2.0.downsample.weight``,
``fc.weight`` (1000 x 2048), ``fc.bias``. Convolution weights are OIHW.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator, Mapping

import numpy as np

STAGES = ((3, 64), (4, 128), (6, 256), (3, 512))
EXPANSION = 4
NUM_CLASSES = 1000
IMAGE_SIZE = 224
BN_EPS = 1e-5

RESIDUAL_BRANCH_SCALE = 0.35
"""Scale on the last convolution of every residual branch of the seeded weights.

With He-normal initialisation each branch roughly preserves the variance of its
input; adding it to the identity path multiplies the variance by about
(1 + scale**2) per block. With 16 blocks and 0.35 that is a factor of ~7
(std ~2.6), well-scaled, where an unscaled branch would grow it 65,000-fold.
"""


@dataclass(frozen=True)
class Conv:
    """One convolution (batch norm folded in, so it has a bias)."""

    name: str
    in_channels: int
    out_channels: int
    kernel: int
    stride: int
    in_size: int

    @property
    def padding(self) -> int:
        return self.kernel // 2

    @property
    def out_size(self) -> int:
        return (self.in_size + 2 * self.padding - self.kernel) // self.stride + 1

    @property
    def macs(self) -> int:
        return (self.out_channels * self.in_channels * self.kernel * self.kernel
                * self.out_size * self.out_size)


@dataclass(frozen=True)
class Block:
    """A bottleneck block: conv1 1x1, conv2 3x3 (carries the stride: v1.5), conv3 1x1."""

    prefix: str
    conv1: Conv
    conv2: Conv
    conv3: Conv
    downsample: Conv | None


STEM = Conv("conv1", 3, 64, 7, 2, IMAGE_SIZE)
POOLED_SIZE = (STEM.out_size + 2 - 3) // 2 + 1  # max-pool 3x3 / 2, padding 1


def blocks() -> list[Block]:
    """The 16 bottleneck blocks, in order."""
    result = []
    in_ch, size = STEM.out_channels, POOLED_SIZE
    for stage, (count, width) in enumerate(STAGES, start=1):
        for index in range(count):
            prefix = f"layer{stage}.{index}"
            stride = 2 if (index == 0 and stage > 1) else 1
            c1 = Conv(f"{prefix}.conv1", in_ch, width, 1, 1, size)
            c2 = Conv(f"{prefix}.conv2", width, width, 3, stride, size)
            c3 = Conv(f"{prefix}.conv3", width, width * EXPANSION, 1, 1, c2.out_size)
            down = (Conv(f"{prefix}.downsample", in_ch, width * EXPANSION, 1, stride, size)
                    if index == 0 else None)
            result.append(Block(prefix, c1, c2, c3, down))
            in_ch, size = width * EXPANSION, c2.out_size
    return result


def convolutions() -> Iterator[Conv]:
    yield STEM
    for block in blocks():
        yield from (block.conv1, block.conv2, block.conv3)
        if block.downsample:
            yield block.downsample


FEATURES = blocks()[-1].conv3.out_channels


def macs_per_image() -> int:
    """Multiply-accumulates of one 224x224 forward pass (convolutions + FC)."""
    return sum(c.macs for c in convolutions()) + FEATURES * NUM_CLASSES


def seeded_weights(seed: int) -> dict[str, np.ndarray]:
    """Random weights, well-scaled (see RESIDUAL_BRANCH_SCALE); the same for the same seed."""
    rng = np.random.default_rng(seed)
    last_in_branch = {b.conv3.name for b in blocks()}
    shortcuts = {b.downsample.name for b in blocks() if b.downsample}
    weights = {}
    for conv in convolutions():
        shape = (conv.out_channels, conv.in_channels, conv.kernel, conv.kernel)
        gain = 1.0 if conv.name in shortcuts else 2.0  # no ReLU after a projection
        std = np.sqrt(gain / (conv.in_channels * conv.kernel * conv.kernel))
        if conv.name in last_in_branch:
            std *= RESIDUAL_BRANCH_SCALE
        weights[f"{conv.name}.weight"] = rng.standard_normal(shape, dtype=np.float32) * np.float32(std)
        weights[f"{conv.name}.bias"] = np.zeros(conv.out_channels, dtype=np.float32)
    weights["fc.weight"] = (rng.standard_normal((NUM_CLASSES, FEATURES), dtype=np.float32)
                            * np.float32(1.0 / np.sqrt(FEATURES)))
    weights["fc.bias"] = np.zeros(NUM_CLASSES, dtype=np.float32)
    return weights


def _torchvision_bn_name(conv_name: str) -> tuple[str, str]:
    """(conv weight key, bn prefix) in a torchvision state_dict for one of our convs."""
    if conv_name == "conv1":
        return "conv1.weight", "bn1"
    prefix, _, leaf = conv_name.rpartition(".")
    if leaf == "downsample":
        return f"{prefix}.downsample.0.weight", f"{prefix}.downsample.1"
    return f"{conv_name}.weight", f"{prefix}.bn{leaf[-1]}"


def fold_torchvision(state: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Fold the batch norms of a torchvision resnet50 state_dict into conv weights and biases.

    Raises KeyError naming the first missing tensor and ValueError for a wrong shape.
    """
    weights = {}
    for conv in convolutions():
        conv_key, bn = _torchvision_bn_name(conv.name)
        w = np.asarray(state[conv_key], dtype=np.float32)
        expected = (conv.out_channels, conv.in_channels, conv.kernel, conv.kernel)
        if w.shape != expected:
            raise ValueError(f"{conv_key} has shape {w.shape}, expected {expected}")
        gamma, beta = (np.asarray(state[f"{bn}.{k}"], dtype=np.float32) for k in ("weight", "bias"))
        mean, var = (np.asarray(state[f"{bn}.{k}"], dtype=np.float32)
                     for k in ("running_mean", "running_var"))
        scale = gamma / np.sqrt(var + BN_EPS)
        weights[f"{conv.name}.weight"] = w * scale[:, None, None, None]
        weights[f"{conv.name}.bias"] = beta - mean * scale
    fc_w = np.asarray(state["fc.weight"], dtype=np.float32)
    if fc_w.shape != (NUM_CLASSES, FEATURES):
        raise ValueError(f"fc.weight has shape {fc_w.shape}, expected {(NUM_CLASSES, FEATURES)}")
    weights["fc.weight"] = fc_w
    weights["fc.bias"] = np.asarray(state["fc.bias"], dtype=np.float32)
    return weights
