"""The ResNet-50 v1.5 architecture of `resnet50.py` as a PyTorch module (imports torch)."""

from __future__ import annotations

from typing import Mapping

import numpy as np
import torch
from torch import nn

from . import resnet50


def _conv(spec: resnet50.Conv, weights: Mapping[str, np.ndarray]) -> nn.Conv2d:
    conv = nn.Conv2d(spec.in_channels, spec.out_channels, spec.kernel, spec.stride,
                     spec.padding, bias=True)
    conv.weight.data = torch.from_numpy(np.array(weights[f"{spec.name}.weight"], dtype=np.float32))
    conv.bias.data = torch.from_numpy(np.array(weights[f"{spec.name}.bias"], dtype=np.float32))
    return conv


class Bottleneck(nn.Module):
    def __init__(self, block: resnet50.Block, weights: Mapping[str, np.ndarray]) -> None:
        super().__init__()
        self.conv1 = _conv(block.conv1, weights)
        self.conv2 = _conv(block.conv2, weights)
        self.conv3 = _conv(block.conv3, weights)
        self.downsample = _conv(block.downsample, weights) if block.downsample else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.relu(self.conv1(x))
        out = torch.relu(self.conv2(out))
        return torch.relu(self.conv3(out) + self.downsample(x))


class ResNet50(nn.Module):
    """NCHW float input, 1000 logits out; batch norm already folded into the convolutions."""

    def __init__(self, weights: Mapping[str, np.ndarray]) -> None:
        super().__init__()
        self.conv1 = _conv(resnet50.STEM, weights)
        self.pool = nn.MaxPool2d(3, 2, 1)
        self.blocks = nn.Sequential(*(Bottleneck(b, weights) for b in resnet50.blocks()))
        self.fc = nn.Linear(resnet50.FEATURES, resnet50.NUM_CLASSES)
        self.fc.weight.data = torch.from_numpy(np.array(weights["fc.weight"], dtype=np.float32))
        self.fc.bias.data = torch.from_numpy(np.array(weights["fc.bias"], dtype=np.float32))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool(torch.relu(self.conv1(x)))
        x = self.blocks(x)
        return self.fc(torch.flatten(torch.mean(x, dim=(2, 3)), 1))


def to_torchscript(weights: Mapping[str, np.ndarray]) -> torch.jit.ScriptModule:
    """A TorchScript module (traced, eval mode) with these weights."""
    model = ResNet50(weights).eval()
    with torch.inference_mode():
        example = torch.zeros(1, 3, resnet50.IMAGE_SIZE, resnet50.IMAGE_SIZE)
        return torch.jit.trace(model, example)
