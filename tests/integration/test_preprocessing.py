"""Preprocessing for any ImageNet classifier: presets and flags, and normalisation inside the
engine's graph (uint8 in) against the float path, on real engines."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from rn50.data.preprocess import normalize, spec_from_metadata, stack_uint8
from rn50.models.metadata import PRESETS, resolve_preprocessing
from rn50.settings import UserFlags

pytest.importorskip("openvino")


def crops(count: int = 2, size: int = 224) -> list[np.ndarray]:
    rng = np.random.default_rng(7)
    return [rng.integers(0, 256, (size, size, 3), dtype=np.uint8) for _ in range(count)]


def load(backend_name: str, model, preprocess=None):
    from rn50.api import recommend
    from rn50.backends import get_backend

    settings = recommend(flags=UserFlags(batch_size=2, streams=1))
    return get_backend(backend_name).load(model, settings, "fp32", preprocess=preprocess)


@pytest.fixture(scope="module")
def builtin(model_cache):
    from rn50.config import ModelConfig
    from rn50.models.resolve import builtin_model

    return builtin_model(ModelConfig(cache_dir=str(model_cache)), {}, lambda line: None)


@pytest.mark.parametrize("backend", ["openvino", "onnxruntime"])
@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_uint8_graph_equals_float_preprocessing(builtin, backend, preset):
    pytest.importorskip(backend)
    spec = spec_from_metadata(resolve_preprocessing((preset, "test")), "NCHW")
    images = crops()
    float_session = load(backend, builtin)
    assert float_session.preprocessing_in_graph is None
    expected = np.asarray(float_session.run(normalize(images, spec)))
    graph_session = load(backend, builtin, lambda input_spec, classes: spec)
    assert graph_session.preprocessing_in_graph
    assert graph_session.input_spec.dtype == "uint8"
    assert graph_session.input_spec.shape == (2, 224, 224, 3)
    got = np.asarray(graph_session.run(stack_uint8(images, spec)))
    scale = np.abs(expected).max()
    assert np.abs(got - expected).max() <= 1e-5 * scale


def caffe_wrapped_model(builtin_path: str, path) -> None:
    """The built-in model behind a Keras-caffe front: it takes BGR 0-255 minus the BGR means,
    and turns that back into what the built-in model expects (torchvision RGB)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    model = onnx.load(builtin_path)
    graph = model.graph
    caffe = PRESETS["keras-caffe"]
    tv = PRESETS["torchvision"]
    # x_rgb = reverse(x_bgr + mean_bgr); y = (x_rgb / 255 - m) / s
    add = np.asarray(caffe["mean"], np.float32).reshape(1, 3, 1, 1)
    mul = (1.0 / (255.0 * np.asarray(tv["std"], np.float32))).reshape(1, 3, 1, 1)
    sub = (np.asarray(tv["mean"], np.float32) / np.asarray(tv["std"], np.float32)).reshape(
        1, 3, 1, 1)
    graph.initializer.extend([numpy_helper.from_array(add, "caffe_add"),
                              numpy_helper.from_array(mul, "caffe_mul"),
                              numpy_helper.from_array(sub, "caffe_sub"),
                              numpy_helper.from_array(np.asarray([2, 1, 0], np.int64), "bgr")])
    nodes = [helper.make_node("Add", ["caffe_in", "caffe_add"], ["c1"]),
             helper.make_node("Gather", ["c1", "bgr"], ["c2"], axis=1),
             helper.make_node("Mul", ["c2", "caffe_mul"], ["c3"]),
             helper.make_node("Sub", ["c3", "caffe_sub"], ["input"])]
    graph.input.remove(graph.input[0])
    graph.input.insert(0, helper.make_tensor_value_info("caffe_in", TensorProto.FLOAT,
                                                        [None, 3, 224, 224]))
    for position, node in enumerate(nodes):
        graph.node.insert(position, node)
    path.write_bytes(model.SerializeToString())


def top5(run_cli, tmp_path, name, *args):
    out = tmp_path / f"{name}.jsonl"
    proc = run_cli("-m", "rn50", "classify", str(tmp_path / "imgs"), "--format", "jsonl",
                   "--output", str(out), "--output-dir", str(tmp_path / "logs"), *args)
    assert proc.returncode == 0, proc.stderr
    return {row["key"]: [(t["label"], t["prob"]) for t in row["top"]]
            for row in map(json.loads, out.read_text().splitlines())}


def test_a_models_preprocessing_matches_only_with_the_right_flags(run_cli, builtin, tmp_path):
    (tmp_path / "imgs").mkdir()
    rng = np.random.default_rng(3)
    for i in range(3):
        Image.fromarray(rng.integers(0, 256, (260 + 20 * i, 300, 3), dtype=np.uint8)).save(
            tmp_path / "imgs" / f"{i}.png")
    wrapped = tmp_path / "caffe_front.onnx"
    caffe_wrapped_model(builtin.path, wrapped)
    reference = top5(run_cli, tmp_path, "ref", "--model", builtin.path)
    for backend in ("openvino", "onnxruntime"):  # both normalise in their graph
        right = top5(run_cli, tmp_path, f"right-{backend}", "--model", str(wrapped),
                     "--backend", backend, "--preprocessing", "keras-caffe")
        wrong = top5(run_cli, tmp_path, f"wrong-{backend}", "--model", str(wrapped),
                     "--backend", backend)
        for key, ref in reference.items():
            assert [label for label, _ in right[key]] == [label for label, _ in ref]
            np.testing.assert_allclose([p for _, p in right[key]], [p for _, p in ref],
                                       atol=1e-5)
        assert any([label for label, _ in wrong[k]] != [label for label, _ in reference[k]]
                   for k in reference)
    # the same, field by field: --channel-order/--scale/--mean/--std instead of the preset
    by_fields = top5(run_cli, tmp_path, "fields", "--model", str(wrapped), "--channel-order",
                     "BGR", "--scale", "0-255", "--mean", "103.939,116.779,123.68", "--std", "1")
    assert {k: [lab for lab, _ in v] for k, v in by_fields.items()} == \
        {k: [lab for lab, _ in v] for k, v in reference.items()}


def test_preprocessing_flags_are_printed_with_their_sources_and_recorded(run_cli, tmp_path):
    (tmp_path / "imgs").mkdir()
    Image.new("RGB", (300, 280), (10, 200, 30)).save(tmp_path / "imgs" / "a.png")
    proc = run_cli("-m", "rn50", "classify", str(tmp_path / "imgs"), "--preprocessing",
                   "inception", "--std", "0.25", "--interpolation", "bicubic",
                   "--output-dir", str(tmp_path / "logs"))
    assert proc.returncode == 0, proc.stderr
    assert "Preprocessing (inception): shorter side to 256 with PIL bicubic" in proc.stderr
    assert "flag --std: std" in proc.stderr and "flag --interpolation: interpolation" in proc.stderr
    record = json.loads(next((tmp_path / "logs").glob("classify_*.json")).read_text())
    prep = record["data"]["preprocessing"]
    assert prep["std"] == [0.25, 0.25, 0.25] and prep["mean"] == [0.5, 0.5, 0.5]
    assert prep["sources"]["mean"] == "preset inception"
    assert record["data"]["normalised"].startswith("in the engine graph (OpenVINO")


@pytest.mark.parametrize("flag, value, message", [
    ("--mean", "1,2", "expected 3 finite numbers"),
    ("--std", "0.2,0,0.2", "every value must be above 0"),
    ("--crop-pct", "1.5", "expected a fraction in 0.1..1"),
    ("--input-size", "7", "expected 32..1024 pixels"),
    ("--preprocessing", "caffe", "invalid choice"),
])
def test_bad_preprocessing_flags_are_one_line(run_cli, tmp_path, flag, value, message):
    proc = run_cli("-m", "rn50", "classify", str(tmp_path), flag, value)
    assert proc.returncode == 2
    (line,) = proc.stderr.strip().splitlines()
    assert flag in line and message in line


def test_input_size_must_match_a_fixed_size_model(run_cli, tmp_path):
    Image.new("RGB", (300, 280)).save(tmp_path / "a.png")
    proc = run_cli("-m", "rn50", "classify", str(tmp_path / "a.png"), "--input-size", "299",
                   "--output-dir", str(tmp_path / "logs"))
    assert proc.returncode == 2
    assert "--input-size 299: model" in proc.stderr and "takes 224x224 images" in proc.stderr
