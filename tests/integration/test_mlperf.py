"""`rn50 mlperf`: the official LoadGen, short runs of every scenario, read back exactly."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

lg = pytest.importorskip("mlperf_loadgen", reason="needs pip install 'rn50[mlperf]'")

import rn50  # noqa: E402
from rn50.mlperf import logs  # noqa: E402
from rn50.mlperf.rules import SCENARIOS  # noqa: E402

SUMMARY_METRIC = {"SingleStream": "90.0th percentile latency (ns)",
                  "MultiStream": "99.0th percentile latency (ns)",
                  "Server": "Scheduled samples per second", "Offline": "Samples per second"}


def result_of(proc, folder: Path) -> dict:
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    line = next(ln for ln in proc.stdout.splitlines() if ln.startswith("Results JSON: "))
    return json.loads(Path(line.split(": ", 1)[1]).read_text())


def assert_matches_loadgen(result: dict, scenario: str) -> None:
    """The parsed figures are LoadGen's own, to the digit of its summary."""
    folder = Path(result["loadgen_dir"])
    for name in ("mlperf_log_summary.txt", "mlperf_log_detail.txt", "mlperf_log_accuracy.json"):
        assert (folder / name).is_file(), name
    summary = logs.read_summary(folder / "mlperf_log_summary.txt")
    value = float(summary[SUMMARY_METRIC[scenario]])
    metric = result["metric"]["value"] * (1e6 if SCENARIOS[scenario].unit == "ms" else 1)
    assert metric == pytest.approx(value, rel=1e-4)
    if scenario != "MultiStream":  # (MultiStream's summary lists per-query percentiles)
        for pct in ("50.00", "90.00", "99.00"):
            expected = float(summary[f"{pct} percentile latency (ns)"])
            assert result["latency_ms"][pct] * 1e6 == pytest.approx(expected)
    assert result["loadgen_validity"] == summary["Result is"]


@pytest.mark.parametrize("scenario", list(SCENARIOS))
def test_every_scenario_on_the_null_backend(scenario, run_cli, tmp_path):
    proc = run_cli("-m", "rn50", "mlperf", "--scenario", scenario, "--smoke", "--backend",
                   "null", "--output-dir", str(tmp_path / "o"))
    result = result_of(proc, tmp_path)
    assert_matches_loadgen(result, scenario)
    assert result["kind"] == "mlperf" and result["status"] == "ok"
    path = next(ln for ln in proc.stdout.splitlines() if ln.startswith("Results JSON: "))
    typed = rn50.load_result(path.split(": ", 1)[1])  # reads back, field for field
    assert typed.to_dict() == result and typed.scenario == scenario
    # a --smoke run is shorter than the rules: rn50 says INVALID, and why
    assert result["validity"] == "INVALID"
    assert any("minimum duration (ms) 1000 is below the rules' 600000" in r
               for r in result["reasons"])
    assert "INVALID because: " in proc.stdout


@pytest.mark.parametrize("scenario", ["SingleStream", "Offline"])
def test_a_real_engine(scenario, run_cli, tmp_path):
    proc = run_cli("-m", "rn50", "mlperf", "--scenario", scenario, "--smoke",
                   "--output-dir", str(tmp_path / "o"), "-b", "1" if scenario != "Offline"
                   else "4")
    result = result_of(proc, tmp_path)
    assert_matches_loadgen(result, scenario)
    assert result["backend"] == "openvino" and result["queries"] >= 1


def labelled_tfrecords(run_cli, tmp_path: Path) -> Path:
    tree = tmp_path / "tree"
    rng = np.random.default_rng(0)
    for synset in ("n01440764", "n01443537"):
        (tree / synset).mkdir(parents=True)
        for i in range(6):
            out = io.BytesIO()
            Image.fromarray((rng.random((120, 160, 3)) * 255).astype(np.uint8)).save(out, "JPEG")
            (tree / synset / f"{i}.jpg").write_bytes(out.getvalue())
    records = tmp_path / "records"
    proc = run_cli("-m", "rn50", "build-tfrecords", "--validation-directory", str(tree),
                   "--output-directory", str(records), "--validation-shards", "1",
                   "--num-threads", "1")
    assert proc.returncode == 0, proc.stderr
    return records


def test_accuracy_mode_agrees_with_rn50_accuracy_and_classify(run_cli, tmp_path):
    records = labelled_tfrecords(run_cli, tmp_path)
    proc = run_cli("-m", "rn50", "mlperf", "--scenario", "Offline", "--mode", "accuracy",
                   "--data-location", str(records), "--smoke", "-b", "4", "--output-dir",
                   str(tmp_path / "o"))
    result = result_of(proc, tmp_path)
    assert "accuracy: top-1" in proc.stdout and "random weights: meaningless" in proc.stdout
    predicted = logs.accuracy_predictions(Path(result["loadgen_dir"]) / "mlperf_log_accuracy.json")
    assert sorted(predicted) == list(range(12))
    proc = run_cli("-m", "rn50", "classify", str(records), "--format", "jsonl", "-k", "1",
                   "--output-dir", str(tmp_path / "c"))
    rows = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    assert [predicted[i] for i in range(12)] == [row["top"][0]["label"] for row in rows]
    proc = run_cli("-m", "rn50", "accuracy", "--data-location", str(records), "--json",
                   str(tmp_path / "acc.json"), "--output-dir", str(tmp_path / "a"))
    expected = json.loads((tmp_path / "acc.json").read_text())["accuracy"]
    assert result["accuracy"]["images"] == expected["images"] == 12
    assert result["accuracy"]["top1"] == pytest.approx(expected["top1"])


def test_server_line_is_read_in_either_spelling(tmp_path):
    line = ':::MLLOG {"key": "%s", "value": %s, "metadata": {}}\n'
    (tmp_path / "mlperf_log_detail.txt").write_text(
        line % ("result_validity", '"VALID"') + line % ("result_completed_samples_per_sec", 12.5))
    result = logs.result_from_logs(tmp_path, "Server")
    assert result["metric"]["value"] == 12.5 and result["validity"] == "VALID"


def test_ctrl_c_keeps_loadgen_files_and_marks_the_result_interrupted(model_cache, tmp_path):
    env = dict(os.environ, RN50_CACHE_DIR=str(model_cache))
    proc = subprocess.Popen([sys.executable, "-m", "rn50", "mlperf", "--scenario",
                             "SingleStream", "--backend", "null", "--duration", "120",
                             "--output-dir", str(tmp_path / "o")], cwd=tmp_path, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    for line in proc.stdout:
        if line.startswith("LoadGen: "):
            break
    time.sleep(0.5)
    os.killpg(proc.pid, signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130 and "Traceback" not in err
    assert err.strip().splitlines()[-1].startswith("rn50: interrupted by Ctrl-C (SIGINT): "
                                                   "LoadGen's files so far are kept in")
    (result_path,) = (tmp_path / "o").glob("*.json")
    result = json.loads(result_path.read_text())
    assert result["status"] == "interrupted" and result["interrupted_by"] == "SIGINT"
    assert (Path(result["loadgen_dir"]) / "mlperf_log_detail.txt").is_file()


def test_rules_as_data(run_cli):
    proc = run_cli("-m", "rn50", "mlperf", "--rules")
    assert proc.returncode == 0
    for scenario in SCENARIOS:
        assert proc.stdout.count(f"{scenario}: ") == 1
    assert "75.695%" in proc.stdout and "latency target ns 15000000" in proc.stdout
    assert "min queries 24576" in proc.stdout


def test_find_peak_searches_then_confirms(run_cli, tmp_path):
    proc = run_cli("-m", "rn50", "mlperf", "--scenario", "Server", "--mode", "find-peak",
                   "--smoke", "--backend", "null", "--output-dir", str(tmp_path / "o"))
    result = result_of(proc, tmp_path)
    steps = result["search"]
    assert len(steps) >= 2 and result["peak_qps"] > 0
    met = [s["qps"] for s in steps if s["latency_met"]]
    assert met and result["peak_qps"] <= max(met) * 1.001  # (LoadGen rounds it)
    assert "Peak search: " in proc.stdout and "peak target QPS" in proc.stdout
    assert Path(result["loadgen_dir"], "mlperf_log_detail.txt").is_file()
