"""Multi-instance runs on this 2-core machine: real pinned processes, real OpenVINO, real failures."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from rn50.config import ModelConfig
from rn50.errors import WorkerError
from rn50.launch.launcher import run_workers
from rn50.launch.plan import plan_launch
from rn50.measure.stats import summarize
from rn50.models.resolve import builtin_model
from rn50.platform import detect_platform
from rn50.scenarios.benchmark import BenchmarkPlan
from rn50.settings import UserFlags, plan_processes

pytest.importorskip("openvino")

if len(os.sched_getaffinity(0)) < 2:
    pytest.skip("needs 2 CPUs", allow_module_level=True)

QUICK = ("--warmup-steps", "1", "--steps", "3")


def only_json(folder: Path) -> dict:
    (path,) = sorted(folder.glob("benchmark_resnet50_inference_fp32_*.json"))
    return json.loads(path.read_text())


def test_two_instances_of_one_core_each_run_pinned_and_merge(run_cli, tmp_path):
    proc = run_cli("-m", "rn50", "bench", *QUICK, "--num-instances", "2", "--bind", "affinity",
                   "--output-dir", str(tmp_path / "o"))
    assert proc.returncode == 0, proc.stderr
    assert "all 2 instances started together" in proc.stdout
    record = only_json(tmp_path / "o")
    assert record["status"] == "ok" and len(record["instances"]) == 2
    for i, entry in enumerate(record["instances"]):
        observed = entry["launch"]["observed"]
        assert observed["affinity"] == [i]  # seen from inside the child
        assert observed["env"]["OMP_NUM_THREADS"] == "1"
        assert entry["engine"]["applied"]["INFERENCE_NUM_THREADS"] == "1"
        assert entry["status"] == "ok" and len(entry["samples"]["step_ms"]) == 3
    summary = record["summary"]
    merged = [ms for e in record["instances"] for ms in e["samples"]["step_ms"]]
    assert summary["latency_ms"] == summarize(merged)  # percentiles of merged raw samples
    start = min(e["region"]["start"] for e in record["instances"])
    end = max(e["region"]["end"] for e in record["instances"])
    assert summary["images"] == 6
    assert summary["throughput_images_per_sec"] == pytest.approx(6 / (end - start))
    assert record["instance_plan"]["idle_cpus"] == []


def test_one_instance_of_two_cores(run_cli, tmp_path):
    proc = run_cli("-m", "rn50", "bench", *QUICK, "--num-instances", "1", "--bind", "affinity",
                   "--output-dir", str(tmp_path / "o"))
    assert proc.returncode == 0, proc.stderr
    record = only_json(tmp_path / "o")
    assert "instances" not in record  # one instance is one plain process
    assert record["launch"]["observed"]["affinity"] == [0, 1]
    assert record["engine"]["applied"]["INFERENCE_NUM_THREADS"] == "2"


def start_bench(model_cache, tmp_path, *argv) -> subprocess.Popen:
    env = dict(os.environ, RN50_CACHE_DIR=str(model_cache), PYTHONUNBUFFERED="1")
    return subprocess.Popen([sys.executable, "-m", "rn50", "bench", *argv,
                             "--output-dir", str(tmp_path / "o")], cwd=tmp_path, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)


def wait_for_line(proc: subprocess.Popen, fragment: str) -> None:
    for line in proc.stdout:
        if fragment in line:
            return
    raise AssertionError(f"{fragment!r} never printed; stderr: {proc.stderr.read()}")


def benchmark_children(parent: int) -> dict[int, int]:
    """{cpu: pid} of the parent's benchmark child processes, read from /proc."""
    children = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        if ppid == parent and b"rn50.launch.child" in cmdline:
            (cpu,) = os.sched_getaffinity(int(entry.name))
            children[cpu] = int(entry.name)
    return children


def test_killed_instance_is_named_and_the_other_result_kept(model_cache, tmp_path):
    proc = start_bench(model_cache, tmp_path, "--num-instances", "2", "--bind", "affinity",
                       "--warmup-steps", "1", "--duration", "5")
    wait_for_line(proc, "[Running benchmark steps")
    children = benchmark_children(proc.pid)
    assert sorted(children) == [0, 1]
    os.kill(children[1], signal.SIGKILL)  # instance 2 dies mid-run (as an OOM kill would)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == WorkerError.exit_code, err
    (line,) = err.strip().splitlines()
    assert "1 of 2 instances failed: instance 2 (CPUs 1" in line and "SIGKILL" in line
    record = only_json(tmp_path / "o")
    assert record["status"] == "error"
    first, second = record["instances"]
    assert first["status"] == "ok" and first["summary"]["images"] > 0
    assert second["status"] == "error" and "SIGKILL" in second["error"]
    assert record["summary"]["instances"] == 1  # the aggregate covers the survivor only


def test_ctrl_c_of_a_single_process_run_keeps_what_was_measured(model_cache, tmp_path):
    proc = start_bench(model_cache, tmp_path, "--warmup-steps", "1", "--duration", "60")
    for line in proc.stdout:
        if "steps = 10" in line and "images/sec" in line:
            break
    os.killpg(proc.pid, signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    record = only_json(tmp_path / "o")
    assert record["status"] == "interrupted" and record["interrupted"] is True
    assert record["summary"]["steps"] >= 1 and "Throughput:" in out


def test_ctrl_c_stops_every_instance_and_keeps_what_was_measured(model_cache, tmp_path):
    proc = start_bench(model_cache, tmp_path, "--num-instances", "2", "--bind", "affinity",
                       "--warmup-steps", "1", "--duration", "60")
    wait_for_line(proc, "[Running benchmark steps")
    for line in proc.stdout:  # let some timed steps complete
        if "steps = 10" in line:
            break
    os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C in a terminal does
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert not benchmark_children(proc.pid)
    record = only_json(tmp_path / "o")
    assert record["status"] == "interrupted"
    assert [e["status"] for e in record["instances"]] == ["ok", "ok"]
    assert all(e["interrupted"] and e["summary"]["images"] >= 1 for e in record["instances"])
    assert record["summary"]["images"] == sum(e["summary"]["images"] for e in record["instances"])


def test_an_instance_that_fails_to_load_does_not_hold_the_others(tmp_path):
    platform = detect_platform()
    processes = plan_processes(platform, UserFlags(num_instances=2, binding="affinity"), {})
    good = builtin_model(ModelConfig(cache_dir=str(tmp_path)), {}, lambda line: None)
    broken = tmp_path / "broken.onnx"
    broken.write_bytes(Path(good.path).read_bytes()[:5000])  # a truncated model
    from dataclasses import replace

    from rn50.api import scenario_job

    jobs = [scenario_job("benchmark", "openvino", "fp32", model, s, BenchmarkPlan(1, 2))
            for model, s in zip((good, replace(good, path=str(broken))), processes.processes)]
    launches = [plan_launch(s, None) for s in processes.processes]
    outcomes, interrupted = run_workers(launches, jobs, dict(os.environ), lambda i, m: None,
                                        lambda i, line: None, timeout=120, barrier=True)
    assert not interrupted
    assert outcomes[0].error is None and outcomes[0].result["summary"]["steps"] == 2
    assert outcomes[1].result is None and outcomes[1].error is not None


def test_real_data_instances_start_their_timed_regions_together(run_cli, tmp_path):
    from test_real_data import photo, write_set

    data = write_set(tmp_path / "d", [photo(320, 240, i) for i in range(8)], [1] * 8)
    proc = run_cli("-m", "rn50", "bench", "--data-location", str(data), "--num-instances", "2",
                   "--batch-size", "2", *QUICK, "--output-dir", str(tmp_path / "o"))
    assert proc.returncode == 0, proc.stderr
    record = only_json(tmp_path / "o")
    assert [e["status"] for e in record["instances"]] == ["ok", "ok"]
    # both waited at the barrier after warm-up: their timed regions start together
    assert record["summary"]["start_skew_ms"] < 50, record["summary"]["start_skew_ms"]
