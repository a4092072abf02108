"""rn50 tune (null backend and a real engine, tiny budgets; resume after SIGINT) and
rn50 profile (OpenVINO and ONNX Runtime, FP32 and INT8) for real, in subprocesses."""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
import subprocess
import sys
import time

import pytest

from rn50.cli import build_parser
from rn50.measure.pareto import dominates
from rn50.results import ProfileResult, TuneResult, load_result

FLAGS = set(open("/proc/cpuinfo").read().split())
needs_vnni = pytest.mark.skipif(not {"avx512_vnni", "avx_vnni", "amx_int8"} & FLAGS,
                                reason="this CPU has no VNNI: int8 is refused here")
NULL = ("-m", "rn50", "tune", "--backends", "null", "--precisions", "fp32,int8",
        "--point-seconds", "0.05", "--max-batch", "8")


def points_written(path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()[1:]] \
        if path.exists() else []


def check_front(result: TuneResult) -> None:
    ok = [p for p in result.points if not p["error"]]
    axes = {p["key"]: (p["throughput"], p["p99_ms"]) for p in ok}
    expected = {k for k, a in axes.items() if not any(dominates(b, a) for b in axes.values())}
    assert set(result.front) == expected


def test_tune_on_the_null_backend_writes_points_front_and_recommendations(run_cli, tmp_path):
    proc = run_cli(*NULL, "--budget", "60s", "--latency-target-ms", "5",
                   "--output-dir", str(tmp_path / "t"))
    assert proc.returncode == 0, proc.stderr
    result = load_result(tmp_path / "t" / "tune.json")
    assert isinstance(result, TuneResult) and result.status == "ok"
    assert {p["batch"] for p in result.points} >= {1, 2, 4, 8}
    check_front(result)
    rows = points_written(tmp_path / "t" / "points.jsonl")
    configs = {json.dumps(dict(r["point"], trial=0), sort_keys=True) for r in rows}
    assert len(configs) == len(result.points)  # every point checkpointed...
    confirmed = [r for r in rows if r["point"]["trial"] == 1]
    assert 1 <= len(confirmed) <= 6  # ...and the goals' finalists measured twice
    for point in result.points:
        trials = point["trials"]
        assert point["throughput"] == pytest.approx(
            sum(t["throughput"] for t in trials) / len(trials))
    for point in result.points:  # each point's own bench JSON, raw samples kept
        bench = json.loads((tmp_path / "t" / point["trials"][0]["json"]).read_text())
        runs = bench["instances"] if point["instances"] > 1 else [bench]
        assert len(runs) == point["instances"] and bench["batch_size"] == point["batch"]
        for run in runs:
            assert len(run["samples"]["step_ms"]) == run["summary"]["steps"] >= 8
    for goal in ("latency", "throughput", "throughput_under_target"):
        rec = result.recommendations[goal]
        for key in ("bench", "serve", "emit"):
            build_parser().parse_args(shlex.split(rec["commands"][key])[1:])
        assert rec["commands"]["launch_benchmark"].startswith("python launch_benchmark.py")
        info = run_cli(*shlex.split(rec["commands"]["emit"].replace("rn50", "-m rn50", 1)))
        assert info.returncode == 0 and rec["snippet"] == info.stdout  # the same snippet
    assert "Pareto front" in proc.stdout and "highest throughput: null/" in proc.stdout


def test_tune_resumes_after_sigint_without_measuring_done_points(model_cache, tmp_path):
    env = dict(os.environ, RN50_CACHE_DIR=str(model_cache))
    out = tmp_path / "t"
    argv = [sys.executable, *NULL, "--budget", "120s", "--output-dir", str(out)]
    proc = subprocess.Popen(argv, cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    deadline = time.monotonic() + 90
    while len(points_written(out / "points.jsonl")) < 3 and time.monotonic() < deadline:
        time.sleep(0.1)
    os.killpg(proc.pid, signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130 and "Traceback" not in err, err
    assert json.loads((out / "tune.json").read_text())["status"] == "interrupted"
    done = points_written(out / "points.jsonl")
    assert len(done) >= 3

    refused = subprocess.run(argv, cwd=tmp_path, env=env, capture_output=True, text=True)
    assert refused.returncode == 2 and "add --resume" in refused.stderr

    again = subprocess.run([*argv, "--resume"], cwd=tmp_path, env=env, capture_output=True,
                           text=True, timeout=300)
    assert again.returncode == 0, again.stderr
    keys = [f"{r['point']['backend']}/{r['point']['precision']}/b{r['point']['batch']}/"
            f"s{r['point']['streams']}/i{r['point']['instances']}" for r in done]
    for key in keys:
        measured = re.compile(r"\[tune \d+/<=\d+\] " + re.escape(key) + " ")
        assert not measured.search(again.stdout)  # not measured again...
        assert re.search(r"\[tune\] " + re.escape(key) + r" \(\w+\): resumed from points.jsonl",
                         again.stdout)  # ...replayed from the checkpoint
    final = points_written(out / "points.jsonl")
    written = [json.dumps(r["point"], sort_keys=True) for r in final]
    assert len(written) == len(set(written))  # each point measured once, over both runs
    assert load_result(out / "tune.json").status == "ok"


def test_tune_on_a_real_engine_with_a_tiny_budget(run_cli, tmp_path):
    proc = run_cli("-m", "rn50", "tune", "--backends", "openvino", "--precisions", "fp32",
                   "--max-batch", "2", "--point-seconds", "0.3", "--budget", "40s",
                   "--output-dir", str(tmp_path / "t"))
    assert proc.returncode == 0, proc.stderr
    result = load_result(tmp_path / "t" / "tune.json")
    measured = {(p["batch"], p["streams"], p["instances"]) for p in result.points}
    assert (1, 1, 1) in measured and len(measured) >= 2
    assert all(p["throughput"] > 0 and p["p99_ms"] > 0 for p in result.points)
    check_front(result)
    best = result.recommendations["throughput"]
    assert best["throughput"] == max(p["throughput"] for p in result.points)
    assert f"--batch-size {best['batch']}" in best["commands"]["bench"]


def test_tune_explains_what_it_skips(run_cli, tmp_path):
    proc = run_cli("-m", "rn50", "tune", "--backends", "onnxruntime", "--precisions",
                   "bfloat16", "--output-dir", str(tmp_path / "t"))
    assert proc.returncode == 2
    assert "skip onnxruntime bfloat16: the onnxruntime backend runs fp32, int8 only" in \
        proc.stdout
    assert proc.stderr.strip().splitlines() == [
        "rn50: error: tune: nothing to search: onnxruntime bfloat16: the onnxruntime backend "
        "runs fp32, int8 only; use --backend openvino or tensorflow or torch"]


def profile(run_cli, tmp_path, backend: str, precision: str) -> ProfileResult:
    proc = run_cli("-m", "rn50", "profile", "--backend", backend, "--precision", precision,
                   "--batch-size", "2", "--steps", "10", "--output-dir", str(tmp_path / "o"),
                   timeout=600)
    assert proc.returncode == 0, proc.stderr
    assert "By layer type" in proc.stdout and "Per-layer profile" in proc.stdout
    (path,) = (tmp_path / "o").glob("profile_resnet50_*.json")
    return load_result(path)


@pytest.mark.parametrize("backend", ["openvino", "onnxruntime"])
@pytest.mark.parametrize("precision", ["fp32", pytest.param("int8", marks=needs_vnni)])
def test_profile_layers_add_up_to_the_model_and_the_step(run_cli, tmp_path, backend,
                                                         precision):
    result = profile(run_cli, tmp_path, backend, precision)
    convs = [layer for layer in result.layers if "Conv" in layer["type"]]
    assert len(convs) == 53  # ResNet-50's convolutions, each found in the engine's counters
    # FLOPs from the layers' shapes add up to ResNet-50's 4.09 G multiply-adds per image
    gflop = sum(layer["gflop"] for layer in result.layers)
    assert gflop == pytest.approx(2 * 2 * 4.089, rel=0.02)  # batch 2
    assert result.reconciliation["within"], result.reconciliation  # sum vs step within 5%
    assert result.peak_gflops > 0 and result.layer_sum_ms > 0
    for layer in convs:
        assert layer["gflops_per_sec"] > 0 and layer["why"]
    assert {g["type"] for g in result.by_type} >= {convs[0]["type"]}
