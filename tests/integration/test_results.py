"""Typed results: every kind of result file reads back with `rn50.load_result`, schema 1 and 2."""

from __future__ import annotations

import json

import pytest
from PIL import Image

import rn50
from rn50.errors import DataError
from rn50.results import ComparisonResult, ParityResult, RunResult

pytest.importorskip("openvino")

QUICK = ("--warmup-steps", "1", "--steps", "3")


def only(folder, pattern):
    (path,) = folder.glob(pattern)
    return path


def round_trips(path):
    """load_result -> to_dict gives back the file's JSON exactly."""
    result = rn50.load_result(path)
    assert result.to_dict() == json.loads(path.read_text())
    return result


@pytest.fixture(scope="module")
def results(tmp_path_factory, model_cache):
    import os
    import subprocess
    import sys

    folder = tmp_path_factory.mktemp("results")
    images = folder / "imgs" / "n01440764"
    images.mkdir(parents=True)
    for i in range(3):
        Image.new("RGB", (300, 260 + i), (30 * i, 90, 200)).save(images / f"{i}.jpg")
    env = dict(os.environ, RN50_CACHE_DIR=str(model_cache))
    commands = {
        "bench": ["bench", *QUICK],
        "multi": ["bench", *QUICK, "--num-instances", "2", "--output-dir", str(folder / "m")],
        "accuracy": ["accuracy", "-d", str(folder / "imgs"), "-b", "2"],
        "classify": ["classify", str(folder / "imgs"), "-b", "2"],
        "comparison": ["bench", *QUICK, "--backend", "openvino,null", "--output-dir",
                       str(folder / "c")],
        "parity": ["check-parity", "--backend", "openvino,onnxruntime", "--batch-size", "2",
                   "--json", str(folder / "parity.json")],
    }
    for name, argv in commands.items():
        if "--output-dir" not in argv and name != "parity":
            argv += ["--output-dir", str(folder / "o")]
        proc = subprocess.run([sys.executable, "-m", "rn50", *argv], env=env, cwd=folder,
                              capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, (name, proc.stderr)
    return folder


def test_benchmark_result(results):
    result = round_trips(only(results / "o", "benchmark_*.json"))
    assert isinstance(result, RunResult) and result.kind == "benchmark"
    assert result.schema_version == 2 and result.status == "ok"
    assert result.summary.steps == 3 and result.summary.latency_ms.count == 3
    assert result.throughput == result.summary.throughput_images_per_sec > 0
    assert result.engine.name == "openvino" and result.engine.execution_precision == "f32"
    assert result.setting("batch_size") == 1 and len(result.samples["step_ms"]) == 3


def test_multi_instance_result(results):
    result = round_trips(only(results / "m", "benchmark_*.json"))
    assert [i.status for i in result.instances] == ["ok", "ok"]
    assert result.summary.steps == sum(i.summary.steps for i in result.instances) == 6


def test_accuracy_and_classify_results(results):
    accuracy = round_trips(only(results / "o", "accuracy_*.json"))
    assert accuracy.kind == "accuracy" and accuracy.accuracy["images"] == 3
    classify = round_trips(only(results / "o", "classify_*.json"))
    assert classify.kind == "classify" and classify.extra["classified"] == 3


def test_comparison_and_parity_results(results):
    comparison = round_trips(only(results / "c", "benchmark_resnet50_comparison_*.json"))
    assert isinstance(comparison, ComparisonResult)
    assert comparison.backends == ("openvino", "null")
    assert all(isinstance(run, RunResult) and run.status == "ok"
               for run in comparison.runs.values())
    parity = round_trips(results / "parity.json")
    assert isinstance(parity, ParityResult) and parity.agree and parity.reference == "openvino"


def test_a_schema_1_file_reads_back(results, tmp_path):
    record = json.loads(only(results / "o", "benchmark_*.json").read_text())
    record["schema_version"] = 1
    del record["kind"]  # schema 1 had only "scenario"
    old = tmp_path / "v1.json"
    old.write_text(json.dumps(record))
    result = rn50.load_result(old)
    assert result.kind == "benchmark" and result.schema_version == 1
    assert result.summary.throughput_images_per_sec == record["summary"][
        "throughput_images_per_sec"]


@pytest.mark.parametrize("content, message", [
    ("{not json", "not JSON"),
    ('{"schema_version": 7}', r"not an rn50 result \(schema_version 7\)"),
    ('{"schema_version": 2, "kind": "benchmark"}', "not an rn50 result"),
])
def test_a_file_that_is_no_result_is_one_clear_error(tmp_path, content, message):
    path = tmp_path / "x.json"
    path.write_text(content)
    with pytest.raises(DataError, match=message) as error:
        rn50.load_result(path)
    assert str(error.value).startswith(f"{path}: ")  # names the file
