"""The ResNet-50 v1.5 of `resnet50.py` as a frozen TensorFlow GraphDef (imports tensorflow).

Node names follow Intel Model Zoo's ResNet-50 graph: a float placeholder
``input`` (NHWC 224x224x3 by default) and a softmax ``predict``; the logits
are the node ``logits``. Padding is explicit (as in the ONNX graph), not TF's
asymmetric "SAME", so every engine computes the same numbers.
"""

from __future__ import annotations

from typing import Mapping

import numpy as np
import tensorflow as tf

from . import resnet50

INPUT_NODE = "input"
OUTPUT_NODE = "predict"
LOGITS_NODE = "logits"


def make_forward(weights: Mapping[str, np.ndarray], data_format: str = "NHWC"):
    """A tf.function image batch -> softmax probabilities, with these weights as constants."""
    if data_format not in ("NHWC", "NCHW"):
        raise ValueError(f"data format must be NHWC or NCHW, not {data_format}")
    nhwc = data_format == "NHWC"
    size = resnet50.IMAGE_SIZE
    shape = [None, size, size, 3] if nhwc else [None, 3, size, size]
    filters = {name: tf.constant(np.transpose(w, (2, 3, 1, 0)))  # OIHW -> HWIO
               for name, w in weights.items() if w.ndim == 4}
    biases = {name: tf.constant(w) for name, w in weights.items() if w.ndim == 1}
    spatial = (1, 2) if nhwc else (2, 3)

    def pad(x, p):
        if p == 0:
            return x
        paddings = [[0, 0], [p, p], [p, p], [0, 0]] if nhwc else [[0, 0], [0, 0], [p, p], [p, p]]
        return tf.pad(x, paddings)

    def conv(x, spec: resnet50.Conv, relu: bool):
        strides = [1, spec.stride, spec.stride, 1] if nhwc else [1, 1, spec.stride, spec.stride]
        y = tf.nn.conv2d(pad(x, spec.padding), filters[f"{spec.name}.weight"], strides, "VALID",
                         data_format=data_format)
        y = tf.nn.bias_add(y, biases[f"{spec.name}.bias"], data_format=data_format)
        return tf.nn.relu(y) if relu else y

    @tf.function(input_signature=[tf.TensorSpec(shape, tf.float32, name=INPUT_NODE)])
    def forward(x):
        y = conv(x, resnet50.STEM, relu=True)
        window = [1, 3, 3, 1] if nhwc else [1, 1, 3, 3]
        step = [1, 2, 2, 1] if nhwc else [1, 1, 2, 2]
        # zero padding equals -inf padding here: the input is post-ReLU (>= 0)
        y = tf.nn.max_pool2d(pad(y, 1), window, step, "VALID", data_format=data_format)
        for block in resnet50.blocks():
            branch = conv(y, block.conv1, True)
            branch = conv(branch, block.conv2, True)
            branch = conv(branch, block.conv3, False)
            shortcut = conv(y, block.downsample, False) if block.downsample else y
            y = tf.nn.relu(branch + shortcut)
        features = tf.reduce_mean(y, axis=spatial)
        logits = tf.identity(tf.matmul(features, tf.constant(weights["fc.weight"].T))
                             + biases["fc.bias"], name=LOGITS_NODE)
        return tf.nn.softmax(logits, name=OUTPUT_NODE)

    return forward


def build_graphdef(weights: Mapping[str, np.ndarray], data_format: str = "NHWC") -> bytes:
    """Serialized frozen GraphDef of ResNet-50 v1.5 with these weights."""
    from tensorflow.python.framework.convert_to_constants import (
        convert_variables_to_constants_v2)

    forward = make_forward(weights, data_format)
    frozen = convert_variables_to_constants_v2(forward.get_concrete_function())
    return frozen.graph.as_graph_def().SerializeToString()


def save_savedmodel(weights: Mapping[str, np.ndarray], folder: str, data_format: str = "NHWC") -> None:
    """A TF SavedModel whose serving signature maps ``input`` to ``predict``."""
    module = tf.Module()
    forward = make_forward(weights, data_format)

    @tf.function(input_signature=forward.input_signature)
    def serve(x):
        return {OUTPUT_NODE: forward(x)}

    module.serve = serve
    tf.saved_model.save(module, folder, signatures={"serving_default": serve})
