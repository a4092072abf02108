"""Bad input: one line naming the problem, non-zero exit, no traceback, earlier results kept."""

from __future__ import annotations

import json
import sys

import pytest

from conftest import REPO
from rn50.errors import WorkerError
from rn50.launch.launcher import run_child
from rn50.launch.plan import LaunchPlan
from rn50.report.files import allocate_run_paths

SEED = ("--model-name", "resnet50", "--framework", "openvino", "--precision", "fp32",
        "--mode", "inference", "--batch-size", "1", "--benchmark-only")


def assert_one_line_error(proc, *fragments):
    assert proc.returncode != 0
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout
    for fragment in fragments:
        assert fragment in lines[0]


@pytest.mark.parametrize("argv,fragments", [
    (("--socket-id", "3"), ("--socket-id 3", "socket")),
    (("--num-cores", "0"), ("--num-cores must be at least 1",)),
    (("--batch-size", "0"), ("--batch-size must be at least 1",)),
    (("--steps", "0"), ("--steps must be at least 1",)),
    (("--num-cores", "999"), ("--num-cores 999 exceeds",)),
    (("--batch-size", "x"), ("--batch-size", "invalid int value")),
    (("--no-such-flag",), ("unrecognized arguments: --no-such-flag",)),
    (("--model", "/does/not/exist.onnx"), ("/does/not/exist.onnx", "does not exist")),
    (("--backend", "mxnet"), ("--backend mxnet", "unknown engine")),
    (("--precision", "int8", "--backend", "tensorflow"),
     ("--precision int8", "the tensorflow backend runs fp32, bfloat16 only")),
])
def test_bench_rejects(run_cli, tmp_path, argv, fragments):
    out = tmp_path / "logs"
    out.mkdir()
    earlier = out / "benchmark_resnet50_inference_fp32_20200101_000000.json"
    earlier.write_text('{"earlier": true}')
    proc = run_cli("-m", "rn50", "bench", *argv, "--output-dir", str(out))
    assert_one_line_error(proc, *fragments)
    assert sorted(p.name for p in out.iterdir()) == [earlier.name]  # nothing new, nothing lost
    assert json.loads(earlier.read_text()) == {"earlier": True}


def test_not_a_model_file(run_cli, tmp_path):
    junk = tmp_path / "junk.onnx"
    junk.write_text("this is not a model")
    proc = run_cli("-m", "rn50", "bench", "--model", str(junk), "--output-dir", str(tmp_path / "o"))
    assert_one_line_error(proc, str(junk), "not a model rn50 can read")


def test_truncated_model_file(run_cli, tmp_path, model_cache):
    model = next(model_cache.glob("*.onnx"))
    cut = tmp_path / "cut.onnx"
    cut.write_bytes(model.read_bytes()[:3_000_000])
    proc = run_cli("-m", "rn50", "bench", "--model", str(cut), "--output-dir", str(tmp_path / "o"))
    assert_one_line_error(proc, str(cut), "not a valid ONNX model")


def test_model_the_engine_cannot_read_fails_in_the_child_with_one_line(run_cli, tmp_path):
    junk = tmp_path / "junk.pb"
    junk.write_bytes(b"\x0a\x05junk!")  # starts like a GraphDef, is not one
    proc = run_cli("-m", "rn50", "bench", "--model", str(junk), "--output-dir", str(tmp_path / "o"))
    assert_one_line_error(proc, str(junk), "could not be read by OpenVINO")
    record = json.loads(next((tmp_path / "o").glob("*.json")).read_text())
    assert record["status"] == "error" and "could not be read" in record["error"]


def test_engine_that_cannot_run_the_format_is_refused_in_one_line(run_cli, tmp_path):
    script = tmp_path / "model.pt"
    script.write_bytes(b"PK\x03\x04")  # a zip header: the archive check fails first
    proc = run_cli("-m", "rn50", "bench", "--backend", "onnxruntime", "--model", str(script),
                   "--output-dir", str(tmp_path / "o"))
    assert_one_line_error(proc, str(script), "damaged zip archive")
    graph = tmp_path / "model.pb"
    graph.write_bytes(b"\x0a\x00")
    proc = run_cli("-m", "rn50", "bench", "--backend", "torch", "--model", str(graph),
                   "--output-dir", str(tmp_path / "o"))
    assert_one_line_error(proc, "--backend torch cannot run", str(graph), "tf-graphdef",
                          "engines that can: openvino, onnxruntime, tensorflow")


def test_json_copy_that_cannot_be_written(run_cli, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    proc = run_cli("-m", "rn50", "bench", "--json", str(blocker / "r.json"),
                   "--output-dir", str(tmp_path / "o"))
    assert_one_line_error(proc, "--json", str(blocker / "r.json"))
    assert not (tmp_path / "o").exists()


def test_output_dir_that_cannot_be_created(run_cli, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    proc = run_cli("-m", "rn50", "bench", "--output-dir", str(blocker / "sub"))
    assert_one_line_error(proc, "--output-dir", str(blocker / "sub"))


def test_verbose_shows_the_traceback(run_cli, tmp_path):
    proc = run_cli("-m", "rn50", "bench", "--model", "/nope.onnx", "--verbose")
    assert proc.returncode != 0 and "Traceback" in proc.stderr


@pytest.mark.parametrize("argv,fragments", [
    (("--framework", "caffe"), ("--framework caffe", "unknown")),
    (("--data-location", "/nonexistent/imagenet"), ("/nonexistent/imagenet",
                                                     "no such file or folder")),
    (("--data-locations", "/nonexistent/x"), ("/nonexistent/x", "no such file or folder")),
    (("--accuracy-only",), ("--accuracy-only and --benchmark-only: choose one",)),
    (("--debug",), ("--debug", "give --docker-image too")),
    (("--num-instances", "0"), ("--num-instances must be at least 1",)),
    (("--numa-cores-per-instance", "many"), ("--numa-cores-per-instance", "'socket'")),
    (("--num-instances", "4096"), ("--num-instances 4096 exceeds the", "usable physical cores")),
    (("--precision", "int4"), ("--precision int4", "choose fp32, bfloat16, int8")),
    (("--mode", "training"), ("--mode training", "inference only")),
    (("--", "warmup_steps=x"), ("warmup_steps=x", "whole number")),
])
def test_launch_benchmark_rejects_flags_it_cannot_honour(run_cli, tmp_path, argv, fragments):
    base = list(SEED)
    for flag in ("--framework", "--precision", "--mode"):
        if flag in argv:
            i = base.index(flag)
            del base[i:i + 2]
    proc = run_cli(str(REPO / "launch_benchmark.py"), *base, *argv)
    assert_one_line_error(proc, *fragments)
    assert not (tmp_path / "rn50_logs").exists()


def test_killed_child_is_a_clear_error_not_a_hang():
    plan = LaunchPlan((sys.executable, "-c",
                       "import os, signal; os.kill(os.getpid(), signal.SIGKILL)"), {}, None)
    with pytest.raises(WorkerError, match="was killed by SIGKILL"):
        run_child(plan, {}, {}, lambda m: None, lambda line: None)


def test_child_exiting_without_a_result_is_reported():
    plan = LaunchPlan((sys.executable, "-c", "import sys; print('boom'); sys.exit(7)"), {}, None)
    output = []
    with pytest.raises(WorkerError, match="exited with code 7 before reporting a result"):
        run_child(plan, {}, {}, lambda m: None, output.append)
    assert "boom" in output


def test_hung_child_is_killed_at_the_timeout():
    plan = LaunchPlan((sys.executable, "-c", "import time; time.sleep(60)"), {}, None)
    with pytest.raises(WorkerError, match="still running after --timeout 1 s and was killed"):
        run_child(plan, {}, {}, lambda m: None, lambda line: None, timeout=1.0)


def test_timeout_flag_end_to_end(run_cli, tmp_path):
    proc = run_cli("-m", "rn50", "bench", "--duration", "30", "--timeout", "8",
                   "--output-dir", str(tmp_path / "o"))
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines()[-1].endswith("--timeout 8 s and was killed")
    record = json.loads(next((tmp_path / "o").glob("*.json")).read_text())
    assert record["status"] == "error" and "--timeout" in record["error"]


def test_runs_in_the_same_second_never_overwrite(tmp_path):
    from datetime import datetime

    now = datetime(2026, 11, 28, 13, 0, 0)
    first = allocate_run_paths(tmp_path, "fp32", now)
    second = allocate_run_paths(tmp_path, "fp32", now)
    assert first.log != second.log and first.json != second.json
    assert first.log.name == "benchmark_resnet50_inference_fp32_20261128_130000.log"
    assert second.log.name == "benchmark_resnet50_inference_fp32_20261128_130000_2.log"
