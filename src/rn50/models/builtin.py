"""The built-in ResNet-50 v1.5 as an ONNX graph, from weights (seeded by default).

Architecture in `resnet50.py` (He et al. 2015, "v1.5" as in torchvision and
MLPerf): stride on the 3x3 convolution, batch norm folded into the
convolutions as every inference engine does when it loads a trained model.
Input: NCHW float32 Nx3x224x224; output: 1000 logits.

With seeded weights the model is for measuring speed only: its predictions
mean nothing. The same builder turns a torchvision checkpoint (BN folded by
`resnet50.fold_torchvision`) into ONNX.
"""

from __future__ import annotations

from typing import Mapping

import numpy as np

from . import resnet50
from .resnet50 import IMAGE_SIZE, NUM_CLASSES, macs_per_image  # noqa: F401 - re-exported

BUILDER_VERSION = 2
"""Bump when the generated graph or weights change: the cache key includes it."""

INPUT_NAME = "input"
OUTPUT_NAME = "logits"


def build_onnx(seed: int = 0, weights: Mapping[str, np.ndarray] | None = None):
    """An `onnx.ModelProto` of ResNet-50 v1.5 with `weights` (default: seeded random)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    weights = resnet50.seeded_weights(seed) if weights is None else weights
    nodes: list = []
    initializers = [numpy_helper.from_array(np.ascontiguousarray(array), name)
                    for name, array in weights.items()]

    def conv(x: str, spec: resnet50.Conv, relu: bool) -> str:
        p = spec.padding
        out = f"{spec.name}_out"
        nodes.append(helper.make_node(
            "Conv", [x, f"{spec.name}.weight", f"{spec.name}.bias"], [out], name=spec.name,
            kernel_shape=[spec.kernel, spec.kernel], strides=[spec.stride, spec.stride],
            pads=[p, p, p, p]))
        if not relu:
            return out
        nodes.append(helper.make_node("Relu", [out], [f"{spec.name}_relu"], name=f"{spec.name}_relu"))
        return f"{spec.name}_relu"

    x = conv(INPUT_NAME, resnet50.STEM, relu=True)
    nodes.append(helper.make_node("MaxPool", [x], ["pool1"], name="pool1",
                                  kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1]))
    x = "pool1"
    for block in resnet50.blocks():
        branch = conv(x, block.conv1, relu=True)
        branch = conv(branch, block.conv2, relu=True)
        branch = conv(branch, block.conv3, relu=False)
        shortcut = conv(x, block.downsample, relu=False) if block.downsample else x
        nodes.append(helper.make_node("Add", [branch, shortcut], [f"{block.prefix}_sum"],
                                      name=f"{block.prefix}.add"))
        nodes.append(helper.make_node("Relu", [f"{block.prefix}_sum"], [f"{block.prefix}_out"],
                                      name=f"{block.prefix}.relu"))
        x = f"{block.prefix}_out"

    nodes.append(helper.make_node("GlobalAveragePool", [x], ["avgpool"], name="avgpool"))
    nodes.append(helper.make_node("Flatten", ["avgpool"], ["flatten"], name="flatten", axis=1))
    nodes.append(helper.make_node("Gemm", ["flatten", "fc.weight", "fc.bias"], [OUTPUT_NAME],
                                  name="fc", transB=1))
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


def onnx_weights(path: str) -> dict[str, np.ndarray]:
    """The weights of a built-in-architecture ONNX file, by name (for the other engines)."""
    import onnx
    from onnx import numpy_helper

    model = onnx.load(path)
    return {init.name: numpy_helper.to_array(init) for init in model.graph.initializer}
