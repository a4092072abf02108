"""Faults the battery table cannot express: signals to real process groups, two runs on one
output, resumes, full disks (a small tmpfs, as root) and downloads that never end."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import pytest

from conftest import http_server
from crafted_files import jpeg
from test_battery import leftover

IMAGES = 240


@pytest.fixture(scope="module")
def photos(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("photos")
    for i in range(IMAGES):
        (folder / f"{i:03d}.jpg").write_bytes(jpeg((320, 240), seed=i))
    return folder


def start(argv, cwd: Path, model_cache: Path):
    marker = uuid.uuid4().hex
    env = dict(os.environ, RN50_CACHE_DIR=str(model_cache), RN50_BATTERY=marker)
    env.pop("COLUMNS", None)
    proc = subprocess.Popen([sys.executable, "-m", "rn50", *argv], cwd=cwd, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)  # its own group, as a shell job is
    return proc, marker


def wait_for(proc, text: str, timeout: float = 120) -> None:
    """Read stdout until `text` appears (the run is in its timed region)."""
    deadline = time.monotonic() + timeout
    for line in proc.stdout:
        if text in line or time.monotonic() > deadline:
            return


def wait_until(ready, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not ready():
        time.sleep(0.2)


def finish(proc, marker: str):
    out, err = proc.communicate(timeout=90)
    time.sleep(0.2)
    assert leftover(marker) == [], "processes of the run are still alive"
    assert "Traceback" not in out + err
    return out, err


@pytest.mark.parametrize("signum,code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
@pytest.mark.parametrize("instances", [1, 2])
def test_signal_to_the_group_keeps_the_figures_and_says_interrupted(signum, code, instances,
                                                                     model_cache, tmp_path):
    argv = ["bench", "--steps", "100000", "--json", str(tmp_path / "r.json")]
    if instances > 1:
        argv += ["--num-instances", str(instances)]
    proc, marker = start(argv, tmp_path, model_cache)
    wait_for(proc, "steps = ")
    time.sleep(1)
    os.killpg(proc.pid, signum)
    out, err = finish(proc, marker)
    assert proc.returncode == code
    name = "Ctrl-C (SIGINT)" if signum == signal.SIGINT else "SIGTERM"
    assert err.strip().splitlines()[-1].startswith(f"rn50: interrupted by {name}: the figures")
    result = json.loads((tmp_path / "r.json").read_text())
    assert result["status"] == "interrupted"
    assert result["interrupted_by"] == signal.Signals(signum).name
    assert result["summary"]["steps"] >= 1


def test_kill_9_of_rn50_takes_its_engine_and_decode_processes_with_it(photos, model_cache,
                                                                     tmp_path):
    proc, marker = start(["bench", "--data-location", str(photos), "--steps", "100000"],
                         tmp_path, model_cache)
    wait_for(proc, "steps = ")
    assert len(leftover(marker)) >= 3  # rn50, its engine process, a decode worker
    os.kill(proc.pid, signal.SIGKILL)
    proc.communicate(timeout=30)
    deadline = time.monotonic() + 3
    while leftover(marker) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert leftover(marker) == []


def test_timeout_with_real_data_leaves_no_process(photos, model_cache, tmp_path):
    proc, marker = start(["bench", "--data-location", str(photos), "--steps", "100000",
                          "--timeout", "8"], tmp_path, model_cache)
    _, err = finish(proc, marker)
    assert proc.returncode == 1 and "--timeout 8" in err.strip().splitlines()[-1]


def test_ctrl_c_on_classify_keeps_every_line_and_resumes_without_duplicates(
        photos, model_cache, tmp_path):
    output = tmp_path / "labels.csv"
    proc, marker = start(["classify", str(photos), "-o", str(output), "-b", "1"], tmp_path,
                         model_cache)
    wait_until(lambda: output.exists() and len(output.read_text().splitlines()) >= 20)
    os.killpg(proc.pid, signal.SIGINT)
    _, err = finish(proc, marker)
    assert proc.returncode == 130
    assert "images classified before it" in err.strip().splitlines()[-1]
    first = output.read_text().splitlines()
    assert 20 <= len(first) - 1 < IMAGES and output.read_text().endswith("\n")
    proc, marker = start(["classify", str(photos), "-o", str(output), "-b", "4"], tmp_path,
                         model_cache)
    _, err = finish(proc, marker)
    assert proc.returncode == 0 and f"Resuming: {len(first) - 1} image(s)" in err
    keys = [line.split(",")[0] for line in output.read_text().splitlines()[1:]]
    assert len(keys) == len(set(keys)) == IMAGES


def test_second_run_on_the_same_output_is_refused_while_the_first_writes(
        photos, model_cache, tmp_path):
    output = tmp_path / "labels.jsonl"
    first, marker = start(["classify", str(photos), "-o", str(output), "-b", "1"], tmp_path,
                          model_cache)
    wait_until(lambda: output.exists() and output.stat().st_size > 0)
    second, marker2 = start(["classify", str(photos), "-o", str(output)], tmp_path, model_cache)
    _, err = finish(second, marker2)
    assert second.returncode == 1
    assert err.strip().splitlines() == [
        f"rn50: error: --output {output} is being written by another rn50 run (it holds the "
        "file's lock): wait for it, or use another --output"]
    os.killpg(first.pid, signal.SIGTERM)
    finish(first, marker)
    keys = [json.loads(line)["key"] for line in output.read_text().splitlines()]
    assert len(keys) == len(set(keys))


@pytest.mark.parametrize("change,says", [
    (["-k", "3"], "top_k 3 now, 5 there"),
    (["--precision", "bfloat16"], "precision bfloat16 now, fp32 there"),
    (["--preprocessing", "inception"], "preprocessing"),
])
def test_resuming_another_kind_of_run_is_refused_unless_force_new(change, says, photos,
                                                                  model_cache, tmp_path):
    few = tmp_path / "few"
    few.mkdir()
    for name in sorted(os.listdir(photos))[:3]:
        shutil.copy(photos / name, few / name)
    output = tmp_path / "labels.csv"
    proc, marker = start(["classify", str(few), "-o", str(output)], tmp_path, model_cache)
    finish(proc, marker)
    before = output.read_text()
    proc, marker = start(["classify", str(few), "-o", str(output), *change], tmp_path,
                         model_cache)
    _, err = finish(proc, marker)
    assert proc.returncode == 1 and says in err.strip().splitlines()[-1]
    assert "--force-new" in err and output.read_text() == before
    proc, marker = start(["classify", str(few), "-o", str(output), "--force-new", *change],
                         tmp_path, model_cache)
    _, err = finish(proc, marker)
    assert proc.returncode == 0
    kept = [p for p in tmp_path.iterdir() if p.name.startswith("labels.previous-")
            and p.suffix == ".csv"]
    assert len(kept) == 1 and kept[0].read_text() == before
    assert len(output.read_text().splitlines()) == 4


@pytest.fixture
def tiny_disk(tmp_path):
    """A 32 KiB tmpfs (root only: mounting needs it)."""
    if os.geteuid() != 0:
        pytest.skip("a full disk is made with a small tmpfs, which only root may mount")
    mount = tmp_path / "disk"
    mount.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=32k", "tmpfs", str(mount)],
                      capture_output=True).returncode:
        pytest.skip("this machine does not allow mounting a tmpfs")
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=False)


def test_full_disk_during_classify_leaves_whole_lines_and_resumes(photos, tiny_disk,
                                                                    model_cache, tmp_path):
    output = tiny_disk / "labels.csv"
    proc, marker = start(["classify", str(photos), "-o", str(output), "-b", "8"], tmp_path,
                         model_cache)
    _, err = finish(proc, marker)
    assert proc.returncode == 1
    line = err.strip().splitlines()[-1]
    assert line.startswith(f"rn50: error: --output {output}: cannot write it (No space left")
    text = output.read_text()
    assert text.endswith("\n") and 1 < len(text.splitlines()) < IMAGES + 1
    moved = tmp_path / "labels.csv"
    shutil.copy(output, moved)
    shutil.copy(output.with_name("labels.csv.rn50.json"), tmp_path / "labels.csv.rn50.json")
    proc, marker = start(["classify", str(photos), "-o", str(moved), "-b", "8"], tmp_path,
                         model_cache)
    finish(proc, marker)
    keys = [ln.split(",")[0] for ln in moved.read_text().splitlines()[1:]]
    assert proc.returncode == 0 and len(keys) == len(set(keys)) == IMAGES


def test_full_disk_during_build_tfrecords_is_one_line_and_leaves_no_part(photos, tiny_disk,
                                                                         model_cache, tmp_path):
    tree = tmp_path / "tree"
    for index, cls in enumerate(("n01440764", "n01443537")):
        (tree / cls).mkdir(parents=True)
        for name in sorted(os.listdir(photos))[index * 20:(index + 1) * 20]:
            shutil.copy(photos / name, tree / cls / name)
    proc, marker = start(["build-tfrecords", "--validation-directory", str(tree),
                          "--output-directory", str(tiny_disk / "out")], tmp_path, model_cache)
    _, err = finish(proc, marker)
    assert proc.returncode == 1
    errors = [ln for ln in err.splitlines() if ln.startswith("rn50")]
    assert len(errors) == 1 and "No space left on device" in errors[0]
    assert not list((tiny_disk / "out").glob("*.part"))


class Endless(BaseHTTPRequestHandler):
    length: str | None = None  # the Content-Length to claim

    def do_GET(self):  # noqa: N802 - http.server API
        self.send_response(200)
        if Endless.length:
            self.send_header("Content-Length", Endless.length)
        self.end_headers()
        try:
            for _ in range(100_000):  # bounded: 6.5 GB at most, stopped by the client long before
                self.wfile.write(b"\0" * 65536)
        except OSError:
            pass

    def log_message(self, *args):
        pass


@pytest.fixture
def endless_server():
    with http_server(Endless, "/model.onnx") as url:
        yield url
    Endless.length = None


@pytest.mark.parametrize("length", [None, str(50 << 30)])
def test_download_that_never_ends_is_capped_and_its_part_deleted(length, endless_server,
                                                                  model_cache, tmp_path):
    Endless.length = length
    proc, marker = start(["fetch-model", "mirror", "--url", endless_server, "--dest",
                          str(tmp_path / "models"), "--max-bytes", str(4 << 20)], tmp_path,
                         model_cache)
    _, err = finish(proc, marker)
    assert proc.returncode == 1
    assert "over the 4.0 MiB expected at most" in err.strip().splitlines()[-1]
    assert list((tmp_path / "models").iterdir()) == []
