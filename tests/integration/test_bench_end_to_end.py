"""`rn50 bench` and `launch_benchmark.py` end to end on the real OpenVINO engine, few steps."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from conftest import REPO

pytest.importorskip("openvino")

QUICK = ("--warmup-steps", "1", "--steps", "3")


def seed_command(framework: str, batch: int, *extra: str) -> tuple[str, ...]:
    """The seed's launch_benchmark.py command line (Model Zoo flags)."""
    return (str(REPO / "launch_benchmark.py"), "--model-name", "resnet50", "--framework",
            framework, "--precision", "fp32", "--mode", "inference", "--batch-size", str(batch),
            "--benchmark-only", *extra)


def outputs(folder: Path) -> tuple[dict, str]:
    logs = sorted(folder.glob("benchmark_resnet50_inference_fp32_*.log"))
    assert len(logs) == 1, logs
    record = json.loads(logs[0].with_suffix(".json").read_text())
    return record, logs[0].read_text()


def test_bench_batch1_prints_seed_lines_and_saves_log_and_json(run_cli, tmp_path):
    out = tmp_path / "logs"
    proc = run_cli("-m", "rn50", "bench", *QUICK, "--output-dir", str(out),
                   "--json", str(tmp_path / "copy.json"))
    assert proc.returncode == 0, proc.stderr
    for line in ("[Running warmup steps...]", "[Running benchmark steps...]", "Batch size = 1",
                 "Latency: ", "Throughput: ", "Ran inference with batch size 1", "Log location: ",
                 "random weights"):
        assert line in proc.stdout
    record, log = outputs(out)
    assert "Throughput: " in log and "intra_op_threads" in log  # settings beside figures
    assert record["schema_version"] == 2 and record["status"] == "ok"
    assert record["settings"]["intra_op_threads"]["reason"]
    assert len(record["samples"]["step_ms"]) == 3
    assert record["summary"]["latency_ms"]["p50"] > 0
    assert record["engine"]["name"] == "openvino"
    assert record["engine"]["execution_precision"] == "f32"  # not silently BF16
    assert record["engine"]["applied"]["INFERENCE_PRECISION_HINT"] == "f32"
    assert record["model"]["random_weights"] is True
    assert json.loads((tmp_path / "copy.json").read_text())["summary"] == record["summary"]
    assert f"JSON copy (--json): {tmp_path / 'copy.json'}" in proc.stdout


def test_every_output_file_follows_the_umask(run_cli, tmp_path):
    # results, --json copies, the log and the model cache as `open()` would make them
    # (they were 0600 while logs were 0644); the shared cache is left alone: a new one
    import os
    import stat

    cache = tmp_path / "cache"
    proc = run_cli("-m", "rn50", "bench", *QUICK, "--output-dir", str(tmp_path / "o"),
                   "--json", str(tmp_path / "copy.json"), "--cache-dir", str(cache),
                   umask=0o027)
    assert proc.returncode == 0, proc.stderr
    files = [*(tmp_path / "o").iterdir(), tmp_path / "copy.json", *cache.glob("*.onnx*")]
    assert len(files) >= 5
    modes = {f.name: oct(stat.S_IMODE(os.stat(f).st_mode)) for f in files}
    assert set(modes.values()) == {oct(0o640)}, modes


def test_child_really_runs_with_the_planned_affinity_and_threads(run_cli, tmp_path):
    out = tmp_path / "logs"
    proc = run_cli("-m", "rn50", "bench", *QUICK, "--num-cores", "1", "--bind", "affinity",
                   "--output-dir", str(out))
    assert proc.returncode == 0, proc.stderr
    record, _ = outputs(out)
    observed = record["launch"]["observed"]
    assert observed["affinity"] == record["settings"]["cpus"]["value"]
    assert len(observed["affinity"]) == 1
    assert observed["env"]["OMP_NUM_THREADS"] == "1"
    assert observed["env"]["KMP_BLOCKTIME"] == "1"
    assert record["engine"]["applied"]["INFERENCE_NUM_THREADS"] == "1"
    assert not any("not the planned" in w for w in record["warnings"])


def test_throughput_batch_uses_engine_streams(run_cli, tmp_path):
    out = tmp_path / "logs"
    proc = run_cli("-m", "rn50", "bench", "--batch-size", "2", "--warmup-steps", "2",
                   "--steps", "4", "--output-dir", str(out))
    assert proc.returncode == 0, proc.stderr
    record, _ = outputs(out)
    assert record["summary"]["images"] == 8
    assert record["summary"]["concurrency"] == int(record["engine"]["applied"]["NUM_STREAMS"])
    assert "Latency: " not in proc.stdout  # the latency line is the batch-1 figure only


def test_env_variable_already_set_is_kept_and_reported(run_cli, tmp_path):
    out = tmp_path / "logs"
    proc = run_cli("-m", "rn50", "bench", *QUICK, "--output-dir", str(out),
                   env={"KMP_BLOCKTIME": "0"})
    assert proc.returncode == 0, proc.stderr
    record, _ = outputs(out)
    assert record["settings"]["env"]["KMP_BLOCKTIME"]["source"] == "environment"
    assert record["launch"]["observed"]["env"]["KMP_BLOCKTIME"] == "0"


def test_launch_benchmark_seed_command(run_cli, tmp_path):
    out = tmp_path / "logs"
    proc = run_cli(*seed_command("openvino", 1, "--output-dir", str(out),
                                 "--", "warmup_steps=1", "steps=2"))
    assert proc.returncode == 0, proc.stderr
    assert "Running with parameters:" in proc.stdout
    for field in ("USE_CASE: image_recognition", "FRAMEWORK: openvino", "MODEL_NAME: resnet50",
                  "MODE: inference", "PRECISION: fp32", "BATCH_SIZE: 1", "NUM_CORES: -1",
                  "SOCKET_ID: -1", "BENCHMARK_ONLY: True", "ACCURACY_ONLY: False",
                  "built-in ResNet-50"):
        assert field in proc.stdout
    assert "Latency: " in proc.stdout and "Ran inference with batch size 1" in proc.stdout
    record, _ = outputs(out)
    assert len(record["samples"]["step_ms"]) == 2
    assert record["command_line"][0] == "launch_benchmark.py"


def test_launch_benchmark_runs_a_given_model_file(run_cli, tmp_path, model_cache):
    model = next(model_cache.glob("*.onnx"))
    out = tmp_path / "logs"
    proc = run_cli(*seed_command("openvino", 1, "--in-graph", str(model), "--num-intra-threads",
                                 "1", "--output-dir", str(out), "--", "warmup_steps=1", "steps=2"))
    assert proc.returncode == 0, proc.stderr
    record, _ = outputs(out)
    assert record["model"]["source"] == "file"
    assert record["settings"]["intra_op_threads"]["source"] == "flag"


def test_null_backend_measures_the_harness(run_cli, tmp_path):
    out = tmp_path / "logs"
    proc = run_cli("-m", "rn50", "bench", "--backend", "null", "--steps", "200",
                   "--warmup-steps", "5", "--output-dir", str(out))
    assert proc.returncode == 0, proc.stderr
    record, _ = outputs(out)
    assert record["summary"]["steps"] == 200
    assert record["summary"]["latency_ms"]["p50"] < 5.0  # harness overhead per step


@pytest.mark.skipif(shutil.which("numactl") is None, reason="numactl is not installed")
def test_numactl_binding_of_one_socket_core(run_cli, tmp_path):
    out = tmp_path / "logs"
    proc = run_cli("-m", "rn50", "bench", *QUICK, "--bind", "numactl", "--socket-id", "0",
                   "--num-cores", "1", "--output-dir", str(out))
    assert proc.returncode == 0, proc.stderr
    record, _ = outputs(out)
    argv = record["launch"]["argv"]
    assert argv[0].endswith("numactl") and "--membind=0" in argv
    assert f"--physcpubind={record['settings']['cpus']['value'][0]}" in argv
    assert record["launch"]["observed"]["affinity"] == record["settings"]["cpus"]["value"]
    assert "Launch (numactl)" in proc.stdout


def test_onnxruntime_backend_applies_the_same_settings(run_cli, tmp_path):
    pytest.importorskip("onnxruntime")
    out = tmp_path / "logs"
    proc = run_cli("-m", "rn50", "bench", *QUICK, "--backend", "onnxruntime", "--num-cores", "1",
                   "--output-dir", str(out))
    assert proc.returncode == 0, proc.stderr
    record, _ = outputs(out)
    applied, requested = record["engine"]["applied"], record["engine"]["requested"]
    assert record["engine"]["name"] == "onnxruntime"
    # ONNX Runtime cannot say what it applied: the options are labelled requested
    assert requested["intra_op_num_threads"] == "1" and requested["inter_op_num_threads"] == "1"
    assert requested["execution_mode"] == "ORT_SEQUENTIAL"
    assert "intra_op_num_threads" not in applied
    assert applied["providers"] == "CPUExecutionProvider"
    assert "requested (the engine has no getter to confirm them): " in proc.stdout
    # one batch at a time: the settings say 1 stream, not OpenVINO's hint
    assert record["settings"]["streams"]["value"] == 1
    assert record["settings"]["streams"]["reason"] == "onnxruntime runs one batch at a time"
    assert record["launch"]["observed"]["affinity"] == record["settings"]["cpus"]["value"]
    assert "Latency: " in proc.stdout


def test_launch_benchmark_framework_onnxruntime(run_cli, tmp_path):
    pytest.importorskip("onnxruntime")
    out = tmp_path / "logs"
    proc = run_cli(*seed_command("onnxruntime", 2, "--output-dir", str(out),
                                 "--", "warmup_steps=1", "steps=2"))
    assert proc.returncode == 0, proc.stderr
    record, _ = outputs(out)
    assert record["engine"]["name"] == "onnxruntime" and record["summary"]["images"] == 4


def test_launch_benchmark_without_rn50_installed_says_so_in_one_line(tmp_path):
    # `python launch_benchmark.py` from an interpreter that lacks rn50's dependencies (-S:
    # no site-packages) used to end in a double traceback (No module named 'google')
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "-S", str(REPO / "launch_benchmark.py"),
                           "--model-name", "resnet50"], cwd=tmp_path, capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 1
    (line,) = proc.stderr.strip().splitlines()
    assert "rn50 is not installed for" in line and "Traceback" not in proc.stderr
    assert ".venv/bin/activate" in line


def test_readme_setup_activates_the_venv_so_bare_commands_work():
    # every later README command is written as `rn50 ...` / `python launch_benchmark.py`:
    # the set-up line must leave the venv active in the user's shell
    readme = (REPO / "README.md").read_text()
    setup = readme.split("```bash\n", 1)[1].split("\n```", 1)[0]
    assert setup.startswith("python3 -m venv .venv && . .venv/bin/activate && pip install .")
    assert setup.endswith("rn50 bench")


def test_console_fits_a_terminal_and_the_log_keeps_full_lines(run_cli, tmp_path):
    # 26 of 49 default lines were wider than 80 columns (widest 247)
    proc = run_cli("-m", "rn50", "bench", *QUICK, "--output-dir", str(tmp_path / "o"),
                   env={"COLUMNS": "80"})
    assert proc.returncode == 0, proc.stderr
    wide = [line for line in proc.stdout.splitlines()
            if len(line) > 80 and len(line.split()) > 1]  # only a lone path may be longer
    assert not wide, wide
    log = next((tmp_path / "o").glob("*.log")).read_text()
    assert max(len(line) for line in log.splitlines()) > 80  # nothing cut from the log
    assert "Step latency (ms, 3 steps" in log


@pytest.mark.parametrize("text, width, expected", [
    ("short", 80, ["short"]),
    ("word " * 20, 40, ["word word word word word word word word",
                        "    word word word word word word word", "    word word word word word"]),
    # a table row whose last column has room stays aligned under it
    ("  name   value  " + "why " * 12, 60, ["  name   value  " + "why " * 10 + "why",
                                           " " * 16 + "why"]),
    # ... or goes beneath the row when it would be squeezed
    ("  name   value  " + "why " * 12, 40, ["  name   value", "      why why why why why why why why",
                                           "      why why why why"]),
    ("/a/very/long/path/without/spaces/at/all", 20, ["/a/very/long/path/without/spaces/at/all"]),
])
def test_wrap_line(text, width, expected):
    from rn50.report.files import wrap_line

    assert wrap_line(text.rstrip(), width) == expected


def readme_commands() -> list[list[str]]:
    """Every `rn50 ...` line in README's shell blocks (continuations joined, comments cut)."""
    import shlex

    readme = (REPO / "README.md").read_text()
    commands = []
    for block in readme.split("```bash\n")[1:]:
        text = block.split("\n```", 1)[0].replace("\\\n", " ")
        for line in text.splitlines():
            line = line.split("  #", 1)[0].strip().rstrip("&").strip()
            if line.startswith("rn50 "):
                commands.append(shlex.split(line)[1:])
    return commands


def test_every_rn50_command_in_the_readme_parses():
    # a README command with a flag that does not exist (or a bad value) fails for every
    # newcomer who copies it; parsing checks every flag name and value type, runs nothing
    from rn50.cli import build_parser

    commands = readme_commands()
    assert len(commands) > 40
    for argv in commands:
        try:
            args = build_parser().parse_args(argv)
        except SystemExit as exc:
            raise AssertionError(f"README: rn50 {' '.join(argv)}: does not parse") from exc
        assert callable(args.func)
