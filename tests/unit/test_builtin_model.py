"""The built-in ResNet-50 v1.5: architecture, well-scaled weights, validated cache."""

from __future__ import annotations

import json

import numpy as np
import pytest
from onnx import numpy_helper

from rn50.config import ModelConfig
from rn50.models import builtin
from rn50.models.cache import sha256_file
from rn50.models.resolve import builtin_model

# torchvision's resnet50 has 25,557,032 parameters: minus the FC layer (2,049,000) and the
# batch-norm scales and shifts (2 x 26,560) leaves 23,454,912 convolution weights.
RESNET50_CONV_WEIGHTS = 23_454_912


@pytest.fixture(scope="module")
def graph():
    return builtin.build_onnx(seed=0).graph


def test_architecture_is_resnet50_v1_5(graph):
    convs = [n for n in graph.node if n.op_type == "Conv"]
    assert len(convs) == 53  # 1 stem + 16 blocks x 3 + 4 projections
    weights = {i.name: numpy_helper.to_array(i) for i in graph.initializer}
    conv_params = sum(weights[n.input[1]].size for n in convs)
    assert conv_params == RESNET50_CONV_WEIGHTS
    assert weights["fc.weight"].shape == (1000, 2048)
    strides = {n.name: list(next(a.ints for a in n.attribute if a.name == "strides")) for n in convs}
    # v1.5: the stride of a downsampling block sits on its 3x3 convolution
    assert strides["layer2.0.conv1"] == [1, 1] and strides["layer2.0.conv2"] == [2, 2]
    assert strides["layer3.0.downsample"] == [2, 2]
    assert builtin.macs_per_image() == pytest.approx(4.09e9, rel=0.01)


def test_same_seed_same_weights_other_seed_different():
    a = numpy_helper.to_array(builtin.build_onnx(0).graph.initializer[0])
    b = numpy_helper.to_array(builtin.build_onnx(0).graph.initializer[0])
    c = numpy_helper.to_array(builtin.build_onnx(1).graph.initializer[0])
    assert np.array_equal(a, b) and not np.array_equal(a, c)


def test_logits_are_well_scaled_on_a_real_engine(tmp_path):
    ov = pytest.importorskip("openvino")
    model = builtin.build_onnx(0)
    path = tmp_path / "m.onnx"
    path.write_bytes(model.SerializeToString())
    compiled = ov.Core().compile_model(str(path), "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
    rng = np.random.default_rng(0)
    x = ((rng.uniform(0, 255, (2, 3, 224, 224)) - 120) / 58).astype(np.float32)
    logits = compiled(x)[0]
    assert np.isfinite(logits).all()
    assert 0.1 < float(logits.std()) < 100.0
    tiny = np.finfo(np.float32).tiny
    assert not ((logits != 0) & (np.abs(logits) < tiny)).any()  # no denormals


def test_cache_builds_once_and_rebuilds_when_corrupt(tmp_path):
    lines = []
    config = ModelConfig(cache_dir=str(tmp_path))
    spec = builtin_model(config, {}, lines.append)
    assert spec.random_weights and spec.source == "builtin"
    assert any("Building" in line for line in lines)
    assert sha256_file(tmp_path / spec.path.split("/")[-1]) == spec.sha256

    lines.clear()
    again = builtin_model(config, {}, lines.append)
    assert again.path == spec.path and lines == []  # cache hit, nothing rebuilt

    with open(spec.path, "r+b") as f:  # flip one byte of the weights
        f.seek(1_000_000)
        byte = f.read(1)
        f.seek(1_000_000)
        f.write(bytes([byte[0] ^ 0xFF]))
    lines.clear()
    rebuilt = builtin_model(config, {}, lines.append)
    assert any("failed validation (sha256 mismatch)" in line for line in lines)
    assert sha256_file(rebuilt.path) == spec.sha256


def test_cache_without_checksum_record_is_not_trusted(tmp_path):
    config = ModelConfig(cache_dir=str(tmp_path))
    spec = builtin_model(config, {}, lambda line: None)
    record = tmp_path / (spec.path.split("/")[-1] + ".json")
    record.write_text("{not json")
    lines = []
    builtin_model(config, {}, lines.append)
    assert any("checksum record is missing or unreadable" in line for line in lines)
    assert json.loads(record.read_text())["sha256"] == spec.sha256


def test_cache_dir_from_environment(tmp_path):
    spec = builtin_model(ModelConfig(), {"RN50_CACHE_DIR": str(tmp_path / "c")}, lambda line: None)
    assert spec.path.startswith(str(tmp_path / "c"))
