"""`launch_benchmark.py --docker-image`: the exact `docker run`, and start.sh run for real.

No Docker engine runs on these machines, so the `docker` executable here is a
fake placed first on PATH by the test: it records its argv and answers
`docker info`. Everything on our side of that boundary is real.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO

SEED = ("--model-name", "resnet50", "--framework", "tensorflow", "--precision", "fp32",
        "--mode", "inference", "--batch-size", "1", "--benchmark-only")
IMAGE = "intel/intel-optimized-tensorflow:latest"
FAKE_DOCKER = """#!{python}
import json, os, sys
if sys.argv[1:2] == ["info"]:
    if os.environ.get("FAKE_DOCKER_DOWN"):
        sys.stderr.write("Cannot connect to the Docker daemon at unix:///var/run/docker.sock. "
                         "Is the docker daemon running?\\n")
        sys.exit(1)
    print("27.3.1")
    sys.exit(0)
with open(os.environ["FAKE_DOCKER_LOG"], "a") as log:
    log.write(json.dumps(sys.argv[1:]) + "\\n")
sys.exit(int(os.environ.get("FAKE_DOCKER_EXIT", "0")))
"""


@pytest.fixture
def fake_docker(tmp_path):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    docker = bin_dir / "docker"
    docker.write_text(FAKE_DOCKER.format(python=sys.executable))
    docker.chmod(docker.stat().st_mode | stat.S_IEXEC)
    return bin_dir


def launch(tmp_path, *argv, env=None):
    full_env = dict(os.environ, FAKE_DOCKER_LOG=str(tmp_path / "docker.log"),
                    RN50_CACHE_DIR=str(tmp_path / "cache"))
    full_env.update(env or {})
    return subprocess.run([sys.executable, str(REPO / "launch_benchmark.py"), *argv], cwd=tmp_path,
                          env=full_env, capture_output=True, text=True, timeout=120)


def recorded(tmp_path) -> list[list[str]]:
    return [json.loads(line) for line in (tmp_path / "docker.log").read_text().splitlines()]


def test_exact_docker_run_for_the_seed_command(fake_docker, model_cache, tmp_path):
    graph = tmp_path / "models" / "resnet50_v1.onnx"
    graph.parent.mkdir()
    graph.write_bytes(next(model_cache.glob("*.onnx")).read_bytes())
    env = {"PATH": f"{fake_docker}:{os.environ['PATH']}", "https_proxy": "http://proxy:3128",
           "no_proxy": "localhost"}
    seed = [x if x != "tensorflow" else "onnxruntime" for x in SEED]
    proc = launch(tmp_path, *seed, "--in-graph", str(graph), "--socket-id", "0",
                  "--output-dir", str(tmp_path / "out"), "--docker-image", IMAGE, env=env)
    assert proc.returncode == 0, proc.stderr
    (argv,) = recorded(tmp_path)
    src = REPO / "src"
    cache = tmp_path / "cache"
    expected_env = {
        "ACCURACY_ONLY": "False", "BATCH_SIZE": "1", "BENCHMARK_ONLY": "True",
        "EXTRA_MODULES": "onnxruntime", "EXTRA_PACKAGES": "onnxruntime",
        "FRAMEWORK": "onnxruntime", "IN_GRAPH": "/in_graph/resnet50_v1.onnx",
        "MODE": "inference", "MODEL_NAME": "resnet50", "NOINSTALL": "False",
        "NUM_CORES": "-1", "NUM_INSTANCES": "1", "OUTPUT_DIR": "/output",
        "PRECISION": "fp32", "RN50_CACHE_DIR": "/cache", "SOCKET_ID": "0", "VERBOSE": "False",
        "https_proxy": "http://proxy:3128", "no_proxy": "localhost",
    }
    assert argv == [
        "run", "--rm", "--init", "--privileged",  # --socket-id binds memory: numactl needs it
        "--volume", f"{src}:/workspace/rn50-src:ro",
        "--volume", f"{src}/rn50/container/start.sh:/workspace/start.sh:ro",
        "--volume", f"{graph.parent}:/in_graph:ro",
        "--volume", f"{tmp_path / 'out'}:/output:rw",
        "--volume", f"{cache}:/cache:rw",
        *[x for name, value in sorted(expected_env.items()) for x in ("--env", f"{name}={value}")],
        "--workdir", "/workspace", IMAGE, "bash", "/workspace/start.sh"]
    assert "mounted on: /in_graph" in proc.stdout


def test_debug_stays_in_a_shell_and_no_privilege_without_memory_binding(fake_docker, tmp_path):
    env = {"PATH": f"{fake_docker}:{os.environ['PATH']}"}
    proc = launch(tmp_path, *SEED, "--docker-image", IMAGE, "--debug", env=env)
    assert proc.returncode == 0, proc.stderr
    (argv,) = recorded(tmp_path)
    assert "-it" in argv and "--privileged" not in argv
    assert argv[-3:-1] == ["bash", "-c"] and argv[-1].endswith("exec bash")
    assert "./start.sh" in argv[-1]


def test_container_exit_code_is_passed_on(fake_docker, tmp_path):
    env = {"PATH": f"{fake_docker}:{os.environ['PATH']}", "FAKE_DOCKER_EXIT": "3"}
    assert launch(tmp_path, *SEED, "--docker-image", IMAGE, env=env).returncode == 3


def test_no_reachable_engine_is_one_clear_line(fake_docker, tmp_path):
    env = {"PATH": f"{fake_docker}:{os.environ['PATH']}", "FAKE_DOCKER_DOWN": "1"}
    proc = launch(tmp_path, *SEED, "--docker-image", IMAGE, env=env)
    assert proc.returncode != 0
    (line,) = proc.stderr.strip().splitlines()
    assert "--docker-image: no Docker engine is reachable (Cannot connect" in line
    assert not (tmp_path / "docker.log").exists()


def test_no_docker_command_is_one_clear_line(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    proc = launch(tmp_path, *SEED, "--docker-image", IMAGE,
                  env={"PATH": f"{empty}:{Path(sys.executable).parent}"})
    assert proc.returncode == 2
    (line,) = proc.stderr.strip().splitlines()
    assert "--docker-image: the `docker` command is not installed" in line


def test_start_sh_reruns_with_environment_overrides(model_cache, tmp_path):
    """start.sh itself, run for real (outside a container) as `NOINSTALL=True ... ./start.sh`."""
    pytest.importorskip("openvino")
    env = dict(os.environ, NOINSTALL="True", RN50_SRC=str(REPO / "src"), PYTHON=sys.executable,
               FRAMEWORK="openvino", BATCH_SIZE="2", WARMUP_STEPS="1", STEPS="2",
               OUTPUT_DIR=str(tmp_path / "out"), RN50_CACHE_DIR=str(model_cache))
    proc = subprocess.run(["bash", str(REPO / "src/rn50/container/start.sh")], env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "BATCH_SIZE: 2" in proc.stdout and "Batch size = 2" in proc.stdout
    (path,) = (tmp_path / "out").glob("*.json")
    assert json.loads(path.read_text())["summary"]["steps"] == 2
