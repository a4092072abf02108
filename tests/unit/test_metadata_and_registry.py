"""Model metadata decisions and the engine registry's messages (no engine needed)."""

from __future__ import annotations

import pytest

from rn50 import backends
from rn50.errors import ConfigError, EngineError
from rn50.models.metadata import describe
from rn50.models.tf_nodes import pick_nodes


@pytest.mark.parametrize("source,fmt,name,classes,offset,style", [
    ("file", "tf-graphdef", "input", 1001, 1, "modelzoo"),         # Model Zoo frozen graph
    ("file", "onnx", "input_tensor:0", 1001, 1, "modelzoo"),       # MLPerf resnet50_v1.onnx
    ("file", "torch-state-dict", "input", 1000, 0, "torchvision"),
    ("builtin", "onnx", "input", 1000, 0, "torchvision"),
])
def test_metadata_is_detected_from_origin_and_output_width(source, fmt, name, classes, offset,
                                                           style):
    meta = describe(source, fmt, name, "NHWC", classes)
    assert meta["class_offset"] == offset and meta["background_class"] is (offset == 1)
    assert meta["preprocessing"]["name"] == style


def test_metadata_overrides_win_and_say_so():
    meta = describe("file", "tf-graphdef", "input", "NHWC", 1001, class_offset=0,
                    preprocessing={"preset": "torchvision"})
    assert meta["class_offset"] == 0 and meta["class_offset_reason"] == "set by --class-offset"
    assert meta["preprocessing"]["reason"] == "set by --preprocessing"
    assert meta["preprocessing"]["name"] == "torchvision"


def test_missing_engine_names_its_install_command(monkeypatch):
    # The one engine this machine cannot lack is simulated by pointing its capabilities at a
    # module that does not exist: the real lookup (importlib.util.find_spec) then runs.
    from dataclasses import replace

    real = backends.capabilities("tensorflow")
    monkeypatch.setattr(backends, "capabilities",
                        lambda name: replace(real, engine_module="rn50_no_such_engine"))
    with pytest.raises(EngineError, match=r"install it with: pip install 'rn50\[tensorflow\]'"):
        backends.check_installed("tensorflow")


def test_unknown_engine_lists_the_known_ones():
    with pytest.raises(ConfigError, match="available: openvino, onnxruntime, tensorflow, torch"):
        backends.check_installed("mxnet")


class Node:
    def __init__(self, name, op, inputs=()):
        self.name, self.op, self.input = name, op, list(inputs)


class Graph:
    def __init__(self, *nodes):
        self.node = list(nodes)


def test_nodes_found_by_known_names_then_by_shape():
    mlperf = Graph(Node("input_tensor", "Placeholder"), Node("conv", "Conv2D", ["input_tensor"]),
                   Node("softmax_tensor", "Softmax", ["conv"]), Node("ArgMax", "ArgMax", ["softmax_tensor"]))
    assert pick_nodes(mlperf, None, None, "m.pb") == ("input_tensor", "softmax_tensor")
    other = Graph(Node("images", "Placeholder"), Node("net/out", "MatMul", ["images"]),
                  Node("net/prob", "Softmax", ["net/out"]))
    assert pick_nodes(other, None, None, "o.pb") == ("images", "net/prob")
    assert pick_nodes(other, "images", "net/out", "o.pb") == ("images", "net/out")
    with pytest.raises(Exception, match="no node named 'nope' \\(--output-node\\)"):
        pick_nodes(other, None, "nope", "o.pb")
