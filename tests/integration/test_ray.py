"""rn50 classify / accuracy --ray on a real local Ray cluster started by the tests
(`ray.cluster_utils.Cluster`: 2 nodes of 1 CPU each, loopback only)."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from test_real_data import photo, write_set

ray = pytest.importorskip("ray")
pytest.importorskip("openvino")


@pytest.fixture(scope="module")
def cluster():
    from ray.cluster_utils import Cluster

    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    node = {"num_cpus": 1, "object_store_memory": 150 * 1024 * 1024,
            "include_dashboard": False}
    cluster = Cluster(initialize_head=True, head_node_args=dict(node), connect=False)
    cluster.add_node(num_cpus=1, object_store_memory=150 * 1024 * 1024)
    cluster.wait_for_nodes()
    yield cluster.address
    cluster.shutdown()


@pytest.fixture(scope="module")
def images(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("imgs")
    for i in range(40):
        (folder / f"p{i:02d}.jpg").write_bytes(photo(320, 240, i))
    (folder / "broken.jpg").write_text("not an image")
    return folder


def rows(path: Path) -> dict[str, dict]:
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    keys = [r["key"] for r in lines]
    assert len(keys) == len(set(keys)), "duplicate rows"
    return {r["key"]: r for r in lines}


def classify(run_cli, tmp_path, folder, out, *extra):
    proc = run_cli("-m", "rn50", "classify", str(folder), "--batch-size", "4", "--output",
                   str(out), "--output-dir", str(tmp_path / "logs"), *extra, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


def popen(model_cache, tmp_path, *argv) -> subprocess.Popen:
    env = dict(os.environ, RN50_CACHE_DIR=str(model_cache))
    return subprocess.Popen([sys.executable, "-m", "rn50", *argv], cwd=tmp_path, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)


def wait_rows(path: Path, count: int, proc, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        if path.exists() and len(path.read_text().splitlines()) >= count:
            return
        time.sleep(0.2)
    raise AssertionError(f"{path}: fewer than {count} rows ({proc.poll()})")


def test_predictions_equal_local_classify_and_bad_images_are_recorded(
        cluster, images, run_cli, tmp_path):
    classify(run_cli, tmp_path, images, tmp_path / "local.jsonl", "--no-graph-preprocessing")
    proc = classify(run_cli, tmp_path, images, tmp_path / "ray.jsonl", "--ray", cluster)
    local, remote = rows(tmp_path / "local.jsonl"), rows(tmp_path / "ray.jsonl")
    assert set(local) == set(remote) and len(remote) == 41
    for key, row in local.items():
        if "error" in row:
            def same(error: str) -> str:
                return re.sub(r" at 0x[0-9a-f]+", "", error)

            assert same(remote[key]["error"]) == same(row["error"])  # as locally
            continue
        assert [t["label"] for t in remote[key]["top"]] == [t["label"] for t in row["top"]]
        for a, b in zip(remote[key]["top"], row["top"]):
            assert a["prob"] == pytest.approx(b["prob"], abs=1e-4)
    assert "Ray plan: 2 node(s), 2 CPUs; 2 engine actor(s)" in proc.stderr
    (record,) = [r for r in map(lambda p: json.loads(p.read_text()),
                                (tmp_path / "logs").glob("classify_*.json")) if "cluster" in r]
    assert record["classified"] == 40 and record["skipped_images"] == 1
    assert len(record["cluster"]["nodes"]) == 2 and len(record["per_node_images"]) == 2
    assert sum(record["per_node_images"].values()) == 40  # both nodes' actors did work
    assert all(a["images_per_sec"] > 0 for a in record["actors"].values())


def test_a_killed_actor_is_replaced_and_nothing_is_lost_or_duplicated(
        cluster, images, model_cache, tmp_path):
    out = tmp_path / "ray.jsonl"
    proc = popen(model_cache, tmp_path, "classify", str(images), "--batch-size", "2",
                 "--output", str(out), "--ray", cluster, "--output-dir", str(tmp_path / "l"))
    wait_rows(out, 4, proc)
    actors = subprocess.run(["pgrep", "-f", "EngineActor"], capture_output=True,
                            text=True).stdout.split()
    assert actors, "no engine actor process found"
    os.kill(int(actors[0]), signal.SIGKILL)
    _, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err[-3000:]
    assert len(rows(out)) == 41
    (record,) = [json.loads(p.read_text()) for p in (tmp_path / "l").glob("classify_*.json")]
    # the killed actor had answered, and a restarted one (another pid) finished the work
    assert actors[0] in record["actors"] and len(record["actors"]) >= 3


def test_resume_after_an_interrupt_writes_only_what_is_missing(
        cluster, images, model_cache, run_cli, tmp_path):
    out = tmp_path / "ray.jsonl"
    argv = ("classify", str(images), "--batch-size", "2", "--output", str(out), "--ray",
            cluster, "--output-dir", str(tmp_path / "l"))
    proc = popen(model_cache, tmp_path, *argv)
    wait_rows(out, 6, proc)
    os.killpg(proc.pid, signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err[-3000:]
    first = rows(out)
    assert 6 <= len(first) < 41
    again = run_cli("-m", "rn50", *argv, timeout=600)
    assert again.returncode == 0, again.stderr[-3000:]
    assert f"Resuming: {len(first)} image(s) already in" in again.stderr
    assert f"{41 - len(first)} image(s) to do" in again.stderr
    assert len(rows(out)) == 41


def test_sharded_output_holds_every_key_once_and_a_rerun_adds_nothing(
        cluster, images, run_cli, tmp_path):
    out = tmp_path / "parts"
    argv = ("-m", "rn50", "classify", str(images), "--batch-size", "4", "--output", f"{out}/",
            "--shard-rows", "10", "--ray", cluster, "--output-dir", str(tmp_path / "l"))
    proc = run_cli(*argv, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    parts = sorted(out.glob("part-*.jsonl"))
    assert len(parts) == 5
    keys = [json.loads(line)["key"] for p in parts for line in p.read_text().splitlines()]
    assert len(keys) == len(set(keys)) == 41
    assert [len(p.read_text().splitlines()) for p in parts] == [10, 10, 10, 10, 1]
    again = run_cli(*argv, timeout=600)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "Resuming: 41 image(s) already in" in again.stderr
    assert "0 image(s) to do" in again.stderr and sorted(out.glob("part-*.jsonl")) == parts


def test_accuracy_on_the_cluster_equals_local_accuracy(cluster, run_cli, tmp_path):
    labelled = write_set(tmp_path / "tf", [photo(300, 200, i) for i in range(12)],
                         [i % 5 + 1 for i in range(12)])
    base = ("-m", "rn50", "accuracy", "--data-location", str(labelled), "--batch-size", "4",
            "--output-dir", str(tmp_path / "logs"))
    local = run_cli(*base, "--no-graph-preprocessing", "--json", str(tmp_path / "a.json"))
    assert local.returncode == 0, local.stderr
    remote = run_cli(*base, "--ray", cluster, timeout=600)
    assert remote.returncode == 0, remote.stderr[-3000:]
    expected = json.loads((tmp_path / "a.json").read_text())["accuracy"]
    (record,) = [json.loads(p.read_text()) for p in (tmp_path / "logs").glob("accuracy_*.json")
                 if "cluster" in json.loads(p.read_text())]
    assert record["accuracy"]["images"] == expected["images"] == 12
    assert record["accuracy"]["top1"] == pytest.approx(expected["top1"])


def test_dry_run_prints_the_plan_for_a_cluster_spec(run_cli, images):
    proc = run_cli("-m", "rn50", "classify", str(images), "--ray", "--dry-run",
                   "--ray-cluster", "4x32", "--ray-actors-per-node", "2")
    assert proc.returncode == 0, proc.stderr
    assert "Ray plan: 4 node(s), 128 CPUs; 8 engine actor(s) of 15.75 CPU(s)" in proc.stdout
    assert "node1: 32 CPUs -> 2 actor(s) x 15.75 CPU(s), 16 engine thread(s) each; 0.5 " \
           "CPU(s) for decoding" in proc.stdout
