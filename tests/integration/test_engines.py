"""Every engine for real: the built-in model exported to each format, run, and compared."""

from __future__ import annotations

import json

import numpy as np
import pytest

from conftest import REPO
from rn50.api import check_parity, installed_engines
from rn50.backends import ENGINES
from rn50.config import ModelConfig
from rn50.models.detect import (GRAPHDEF, IR, KERAS, ONNX, SAVEDMODEL, STATE_DICT, TORCHSCRIPT,
                                detect_format)
from rn50.models.resnet50 import fold_torchvision, seeded_weights

QUICK = ("--warmup-steps", "1", "--steps", "2")


@pytest.fixture(scope="module")
def exported(model_cache, tmp_path_factory):
    """The built-in model written once in every export format."""
    from rn50.export import export

    folder = tmp_path_factory.mktemp("exported")
    env = {"RN50_CACHE_DIR": str(model_cache)}
    paths = {fmt: export(fmt, str(folder / f"model{suffix}"), ModelConfig(), env,
                         log=lambda line: None)
             for fmt, suffix in (("onnx", ".onnx"), ("openvino", ".xml"), ("pb", ".pb"),
                                 ("savedmodel", ""), ("torchscript", ".pt"))}
    return paths


def record_of(out):
    return json.loads(next(out.glob("benchmark_*.json")).read_text())


def test_all_four_engines_are_installed_for_the_tests():
    assert installed_engines() == list(ENGINES)


def test_builtin_model_agrees_across_all_engines(model_cache):
    report = check_parity(ModelConfig(cache_dir=str(model_cache)), batch_size=3,
                          log=lambda line: None)
    assert sorted(report["engines"]) == sorted(ENGINES)
    assert report["agree"], report["comparisons"]
    for comparison in report["comparisons"].values():
        assert comparison["max_abs_probability_diff"] < 1e-4


def test_formats_are_detected_by_content(exported, tmp_path):
    assert detect_format(exported["onnx"]) == ONNX
    assert detect_format(exported["openvino"]) == IR
    assert detect_format(exported["pb"]) == GRAPHDEF
    assert detect_format(exported["torchscript"]) == TORCHSCRIPT
    renamed = tmp_path / "graph.bin"  # the suffix does not decide
    renamed.write_bytes(exported["pb"].read_bytes()[:4096])
    assert detect_format(renamed) == GRAPHDEF
    assert detect_format(exported["savedmodel"]) == SAVEDMODEL


def test_seed_command_on_tensorflow_with_exported_pb(run_cli, exported, tmp_path):
    out = tmp_path / "logs"
    proc = run_cli(str(REPO / "launch_benchmark.py"), "--in-graph", str(exported["pb"]),
                   "--model-name", "resnet50", "--framework", "tensorflow", "--precision", "fp32",
                   "--mode", "inference", "--batch-size", "1", "--benchmark-only",
                   "--output-dir", str(out), "--", "warmup_steps=1", "steps=2")
    assert proc.returncode == 0, proc.stderr
    assert "Latency: " in proc.stdout and "Running with parameters:" in proc.stdout
    record = record_of(out)
    applied, requested = record["engine"]["applied"], record["engine"]["requested"]
    assert record["engine"]["name"] == "tensorflow"
    assert (applied["input_node"], applied["output_node"]) == ("input", "predict")
    # a GraphDef session cannot report its thread pools: labelled requested, not applied
    threads = str(record["settings"]["intra_op_threads"]["value"])
    assert requested["session_intra_op_threads"] == threads
    assert requested["session_inter_op_threads"] == "1"
    # the settings show the layout the exported graph really takes, not the seed's NCHW
    assert record["settings"]["data_layout"]["value"] == "NHWC"
    assert record["settings"]["data_layout"]["source"] == "model"
    assert applied["TF_ENABLE_ONEDNN_OPTS"] == "1"
    observed = record["launch"]["observed"]["env"]
    assert observed["KMP_BLOCKTIME"] == "1" and observed["KMP_SETTINGS"] == "1"
    assert record["input"]["layout"] == "NHWC"


def test_graphdef_agrees_across_tensorflow_openvino_and_onnxruntime(exported, model_cache):
    """ONNX Runtime gets the .pb through tf2onnx (converted once, cached)."""
    report = check_parity(ModelConfig(path=str(exported["pb"]), cache_dir=str(model_cache)),
                          ["tensorflow", "openvino", "onnxruntime"], batch_size=2,
                          log=lambda line: None)
    assert report["agree"], report["comparisons"]
    assert list((model_cache / "converted").glob("*.onnx"))


@pytest.mark.parametrize("fmt,backend", [("pb", "openvino"), ("openvino", "openvino"),
                                         ("onnx", "onnxruntime"), ("torchscript", "torch"),
                                         ("savedmodel", "tensorflow"), ("savedmodel", "openvino")])
def test_exported_formats_run_on_their_engines(run_cli, exported, tmp_path, fmt, backend):
    out = tmp_path / "logs"
    proc = run_cli("-m", "rn50", "bench", "--backend", backend, "--model", str(exported[fmt]),
                   *QUICK, "--output-dir", str(out))
    assert proc.returncode == 0, proc.stderr
    assert record_of(out)["engine"]["execution_precision"] == "f32"


def test_keras_model_runs_on_tensorflow(run_cli, tmp_path):
    import keras

    inputs = keras.Input((224, 224, 3))
    x = keras.layers.Conv2D(4, 3, strides=8)(inputs)
    outputs = keras.layers.Dense(10, activation="softmax")(keras.layers.GlobalAveragePooling2D()(x))
    path = tmp_path / "tiny.keras"
    keras.Model(inputs, outputs).save(path)
    assert detect_format(path) == KERAS
    out = tmp_path / "logs"
    proc = run_cli("-m", "rn50", "bench", "--backend", "tensorflow", "--model", str(path), *QUICK,
                   "--output-dir", str(out))
    assert proc.returncode == 0, proc.stderr
    record = record_of(out)
    assert record["model_metadata"]["num_classes"] == 10
    assert record["input"]["layout"] == "NHWC"


def test_builtin_runs_on_tensorflow_and_torch_with_settings_applied(run_cli, tmp_path):
    for backend, (part, key) in (("tensorflow", ("requested", "session_intra_op_threads")),
                                 ("torch", ("applied", "num_threads"))):
        out = tmp_path / backend
        proc = run_cli("-m", "rn50", "bench", "--backend", backend, "--num-cores", "1", *QUICK,
                       "--output-dir", str(out))
        assert proc.returncode == 0, proc.stderr
        assert record_of(out)["engine"][part][key] == "1"
        # TensorFlow's start-up lines (printed twice per run) stay in the log only
        assert "absl::InitializeLog" not in proc.stdout + proc.stderr
        if backend == "tensorflow":
            assert "absl::InitializeLog" in next(out.glob("*.log")).read_text()


def test_backend_list_prints_one_comparison_table(run_cli, tmp_path):
    out = tmp_path / "logs"
    proc = run_cli("-m", "rn50", "bench", "--backend", "openvino,onnxruntime,null", *QUICK,
                   "--output-dir", str(out))
    assert proc.returncode == 0, proc.stderr
    table = proc.stdout[proc.stdout.index("Side by side"):]
    for name in ("openvino", "onnxruntime", "null"):
        assert f"\n{name} " in table
    # the settings table once, not once per engine
    assert proc.stdout.count("intra_op_threads") == 1
    assert proc.stdout.count("Settings: the same as for openvino above") == 2
    summary = json.loads(next(out.glob("benchmark_resnet50_comparison_*.json")).read_text())
    assert sorted(summary["runs"]) == ["null", "onnxruntime", "openvino"]
    assert all(run["status"] == "ok" and run["peak_rss_mib"] > 0 for run in summary["runs"].values())


@pytest.mark.parametrize("fmt", ["onnx", "openvino", "pb", "savedmodel", "torchscript"])
def test_exported_files_keep_their_provenance(exported, fmt):
    # an exported built-in model ran as "random_weights": false, and its .pb as modelzoo
    from rn50.models.metadata import describe
    from rn50.models.resolve import file_model

    spec = file_model(ModelConfig(str(exported[fmt])), {})
    assert spec.random_weights is True
    assert spec.provenance["origin"] == "rn50 built-in ResNet-50 v1.5 (seed 0)"
    meta = describe(spec.source, spec.format, "input", "NHWC", 1000, provenance=spec.provenance)
    assert meta["preprocessing"]["name"] == "torchvision"
    assert meta["preprocessing"]["reason"] == "from the model's metadata"


def test_a_replaced_file_does_not_inherit_the_old_provenance(exported, tmp_path):
    import shutil

    from rn50.models.provenance import sidecar
    from rn50.models.resolve import file_model

    target = tmp_path / "model.pb"
    shutil.copy(exported["pb"], target)
    shutil.copy(sidecar(exported["pb"]), sidecar(target))
    assert file_model(ModelConfig(str(target)), {}).random_weights is True
    target.write_bytes(target.read_bytes() + b"\n")  # someone else's graph now
    spec = file_model(ModelConfig(str(target)), {})
    assert spec.random_weights is False and spec.provenance is None


def test_accuracy_on_an_exported_model_says_its_weights_are_random(run_cli, exported, tmp_path):
    from PIL import Image

    folder = tmp_path / "imgs" / "n01440764"
    folder.mkdir(parents=True)
    Image.new("RGB", (300, 260), (200, 30, 40)).save(folder / "a.jpg")
    proc = run_cli("-m", "rn50", "accuracy", "--model", str(exported["pb"]), "--backend",
                   "tensorflow", "--data-location", str(tmp_path / "imgs"), "--batch-size", "1",
                   "--output-dir", str(tmp_path / "o"))
    assert proc.returncode == 0, proc.stderr
    assert "model.pb (rn50 built-in ResNet-50 v1.5 (seed 0)) has random weights" in proc.stdout
    assert "(random weights: chance level expected)" in proc.stdout
    assert "preprocessing: torchvision" in proc.stdout


def test_backend_all_lists_the_engines_it_skips_and_why(run_cli, exported, tmp_path):
    proc = run_cli("-m", "rn50", "bench", "--backend", "all", "--model", str(exported["openvino"]),
                   *QUICK, "--output-dir", str(tmp_path / "o"))
    assert proc.returncode == 0, proc.stderr
    assert "Engines: openvino\n" in proc.stdout
    for name in ("onnxruntime", "tensorflow", "torch"):
        assert f"  skipped {name}: cannot run {exported['openvino']} (openvino-ir)" in proc.stdout


def torchvision_state_dict(weights, rng):
    """Unfold our weights into a torchvision-style state_dict (random BN statistics)."""
    import torch

    from rn50.models.resnet50 import _torchvision_bn_name, convolutions

    state = {}
    for conv in convolutions():
        conv_key, bn = _torchvision_bn_name(conv.name)
        gamma = rng.uniform(0.5, 1.5, conv.out_channels).astype(np.float32)
        var = rng.uniform(0.5, 2.0, conv.out_channels).astype(np.float32)
        mean = rng.normal(0, 0.1, conv.out_channels).astype(np.float32)
        scale = gamma / np.sqrt(var + 1e-5)
        state[conv_key] = torch.from_numpy(weights[f"{conv.name}.weight"] / scale[:, None, None, None])
        state[f"{bn}.weight"], state[f"{bn}.running_var"] = torch.from_numpy(gamma), torch.from_numpy(var)
        state[f"{bn}.running_mean"] = torch.from_numpy(mean)
        state[f"{bn}.bias"] = torch.from_numpy(weights[f"{conv.name}.bias"] + mean * scale)
        state[f"{bn}.num_batches_tracked"] = torch.tensor(0)
    state["fc.weight"], state["fc.bias"] = (torch.from_numpy(weights[k]) for k in ("fc.weight", "fc.bias"))
    return state


def test_torchvision_state_dict_folds_back_and_runs(run_cli, tmp_path):
    import torch

    weights = seeded_weights(3)
    state = torchvision_state_dict(weights, np.random.default_rng(0))
    folded = fold_torchvision({k: v.numpy() for k, v in state.items()})
    for name, value in weights.items():
        np.testing.assert_allclose(folded[name], value, rtol=1e-4, atol=1e-5)
    path = tmp_path / "resnet50-test.pth"
    torch.save(state, path)
    assert detect_format(path) == STATE_DICT
    proc = run_cli("-m", "rn50", "bench", "--backend", "torch", "--model", str(path), *QUICK,
                   "--output-dir", str(tmp_path / "logs"))
    assert proc.returncode == 0, proc.stderr
    onnx_path = tmp_path / "converted.onnx"
    proc = run_cli("-m", "rn50", "export", "--format", "onnx", "--model", str(path),
                   "--output", str(onnx_path))
    assert proc.returncode == 0, proc.stderr
    report = check_parity(ModelConfig(path=str(onnx_path)), ["openvino", "onnxruntime"],
                          batch_size=2, log=lambda line: None)
    assert report["agree"]
    # the checkpoint itself runs everywhere: converted once (cached) for OpenVINO and ORT
    report = check_parity(ModelConfig(path=str(path), cache_dir=str(tmp_path / "cache")),
                          ["torch", "openvino", "onnxruntime"], batch_size=2, log=lambda line: None)
    assert report["agree"], report["comparisons"]
    assert len(list((tmp_path / "cache" / "converted").glob("*.onnx"))) == 1


class Payload:
    def __reduce__(self):
        return (print, ("this would run on unpickling",))


def test_checkpoint_with_code_is_refused(run_cli, tmp_path):
    import torch

    path = tmp_path / "evil.pth"
    torch.save({"conv1.weight": torch.zeros(1), "payload": Payload()}, path)
    proc = run_cli("-m", "rn50", "bench", "--backend", "torch", "--model", str(path),
                   "--output-dir", str(tmp_path / "o"))
    assert proc.returncode == 1
    assert "this would run" not in proc.stdout + proc.stderr
    assert proc.stderr.strip().splitlines()[-1].endswith("refused (rn50 never unpickles code)")


def test_ir_with_mismatched_weights_is_one_line(run_cli, exported, tmp_path):
    xml = tmp_path / "model.xml"
    xml.write_bytes(exported["openvino"].read_bytes())
    xml.with_suffix(".bin").write_bytes(exported["openvino"].with_suffix(".bin").read_bytes()[:1000])
    proc = run_cli("-m", "rn50", "bench", "--model", str(xml), *QUICK,
                   "--output-dir", str(tmp_path / "o"))
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines()[-1].startswith(f"rn50: error: model file {xml}")
    assert "Traceback" not in proc.stderr


def test_graph_with_a_non_image_input_is_refused(run_cli, tmp_path):
    import onnx
    from onnx import TensorProto, helper

    graph = helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 10])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 10])])
    path = tmp_path / "vector.onnx"
    onnx.save(helper.make_model(graph), path)
    proc = run_cli("-m", "rn50", "bench", "--model", str(path), "--output-dir", str(tmp_path / "o"))
    assert proc.returncode == 1
    assert "not an image tensor" in proc.stderr.strip().splitlines()[-1]


@pytest.mark.parametrize("backend,message", [("tensorflow", "not a valid TensorFlow GraphDef"),
                                             ("openvino", "could not be read by OpenVINO")])
def test_truncated_graphdef_is_one_line(run_cli, exported, tmp_path, backend, message):
    cut = tmp_path / "cut.pb"
    cut.write_bytes(exported["pb"].read_bytes()[:1_000_000])
    proc = run_cli("-m", "rn50", "bench", "--backend", backend, "--model", str(cut),
                   "--output-dir", str(tmp_path / "o"))
    assert proc.returncode == 1
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith(f"rn50: error: model file {cut}") and message in last
    assert "Traceback" not in proc.stderr
