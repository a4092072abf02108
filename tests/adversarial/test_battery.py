"""The bad-input battery: models, data, flags, environment, disks, signals and downloads.

Each case runs the real `rn50` command in a child process under an 8 GiB
address-space limit and asserts what a user relies on: the exit code, one line
naming the problem, no traceback, memory bounded (peak RSS of every process the
run started), and no process of the run left behind (found by a marker in their
environment). Cases that need more (a lock, a resume, a full disk, a signal)
are their own tests below the table.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from crafted_files import make_all

ERROR_LINE = re.compile(r"^rn50( [a-z-]+)?: (error|internal error|interrupted)")
ADDRESS_SPACE = 8 << 30
RSS_CAP_MIB = 3072
WRAPPER = """
import os, resource, subprocess, sys
resource.setrlimit(resource.RLIMIT_AS, ({cap}, {cap}))
code = subprocess.run([sys.executable, "-m", "rn50", *sys.argv[2:]]).returncode
with open(sys.argv[1], "w") as f:
    f.write(str(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss // 1024))
sys.exit(code)
"""


@dataclass(frozen=True)
class Case:
    id: str
    argv: tuple[str, ...]  # {name}: a crafted file (files.make_all), {tmp}: the case's folder
    code: int
    says: tuple[str, ...] = ()  # in the one `rn50...: error` line (or on stdout when code 0)
    env: dict = field(default_factory=dict)


CASES = [
    # models
    Case("model-missing", ("bench", "--model", "{tmp}/nope.onnx"), 1, ("nope.onnx", "does not exist")),
    Case("model-empty", ("bench", "--model", "{empty_model}"), 1, ("empty.onnx", "is empty")),
    Case("model-junk", ("bench", "--model", "{junk_model}"), 1, ("junk.onnx", "not a model rn50 can read")),
    Case("model-20GiB-onnx-header", ("bench", "--model", "{huge_onnx}"), 1, ("huge.onnx", "20.0 GiB", "2.0 GiB limit")),
    Case("model-fifo", ("bench", "--model", "{fifo_model}"), 1, ("fifo.onnx", "FIFO")),
    Case("model-device", ("bench", "--model", "/dev/zero"), 1, ("/dev/zero", "a device")),
    Case("model-folder", ("bench", "--model", "{not_saved_model}"), 1, ("folder_model", "not a TensorFlow SavedModel")),
    Case("model-ir-without-bin", ("bench", "--model", "{ir_no_bin}"), 1, ("lonely.bin", "missing")),
    Case("model-truncated-onnx", ("bench", "--model", "{truncated_onnx}"), 1, ("truncated.onnx", "not a valid ONNX model")),
    Case("model-not-a-classifier", ("classify", "--model", "{segmenter}", "{good_images}/0.jpg"), 1,
         ("[8, 8, 222, 222]", "not ImageNet class scores")),
    Case("model-int64-input", ("bench", "--model", "{int64_input}", "--steps", "2"), 1, ("i64",)),
    # data
    Case("image-is-dev-zero", ("classify", "{zero_image}"), 1, ("none of the 1 images", "a device")),
    Case("bench-no-image-decodes", ("bench", "--data-location", "{junk_images}", "--steps", "3"), 1,
         ("none of its 2 images could be used",)),
    Case("accuracy-no-image-decodes", ("accuracy", "--data-location", "{junk_classes}"), 1,
         ("none of the 2 images could be used",)),
    Case("decompression-bomb", ("classify", "{bomb}"), 1, ("decompression bomb",)),
    Case("data-missing", ("bench", "--data-location", "{tmp}/none"), 2, ("none", "no such file")),
    Case("labels-file-device", ("accuracy", "--data-location", "{junk_classes}", "--labels-file", "/dev/zero"), 2,
         ("--labels-file /dev/zero", "a device")),
    Case("labels-file-100MiB", ("accuracy", "--data-location", "{junk_classes}", "--labels-file", "{big_labels}"), 2,
         ("--labels-file", "over the 64.0 MiB limit")),
    Case("image-list-of-missing-files", ("classify", "{missing_list}"), 1, ("none of the 2 images", "does not exist")),
    # flags
    Case("batch-needs-too-much-memory", ("bench", "-b", "100000"), 2, ("--batch-size 100000", "needs about", "largest batch")),
    Case("duration-inf", ("bench", "--duration", "inf"), 2, ("--duration", "seconds above 0")),
    Case("timeout-nan", ("bench", "--timeout", "nan"), 2, ("--timeout", "seconds above 0")),
    Case("timeout-negative", ("classify", "--timeout", "-1", "x.jpg"), 2, ("--timeout",)),
    Case("strict-without-data", ("bench", "--strict"), 2, ("--strict", "--data-location")),
    Case("accuracy-drop-500", ("bench", "--max-accuracy-drop", "500"), 2, ("--max-accuracy-drop", "0..100")),
    Case("json-named-csv", ("bench", "--json", "{tmp}/result.csv"), 1, ("--json", "name it *.json")),
    Case("streams-zero", ("bench", "--streams", "0"), 2, ("--streams must be at least 1",)),
    Case("batch-negative", ("bench", "-b", "-5"), 2, ("--batch-size must be at least 1",)),
    Case("classify-output-txt", ("classify", "x.jpg", "--output", "{tmp}/r.txt"), 1, ("name it .csv or .jsonl",)),
    Case("classify-output-contradicts-format", ("classify", "x.jpg", "--output", "{tmp}/r.csv", "--format", "jsonl"), 1,
         ("csv file name", "--format is jsonl")),
    Case("force-new-without-output", ("classify", "x.jpg", "--force-new"), 2, ("--force-new", "--output")),
    Case("mode-latency-with-batch-64-explained", ("bench", "--mode", "latency", "-b", "64", "--dry-run"), 0,
         ("wins over --mode latency's batch 1",)),
    Case("quantize-output-wrong-suffix", ("quantize", "--output", "{tmp}/int8.csv"), 1,
         ("--output", "written as .xml", "name it *.xml")),
    Case("build-tfrecords-missing-folder", ("build-tfrecords", "--validation-directory", "{tmp}/no",
                                            "--output-directory", "{tmp}/out"), 2,
         ("--validation-directory", "no such folder")),
    Case("fetch-url-is-a-path", ("fetch-model", "x", "--url", "/etc/passwd"), 2, ("--url /etc/passwd", "http")),
    Case("fetch-max-bytes-zero", ("fetch-model", "torchvision-v1", "--max-bytes", "0"), 2, ("--max-bytes",)),
    # environment
    Case("env-omp-threads-garbage", ("bench", "--dry-run"), 0, ("OMP_NUM_THREADS='abc'", "ignored"),
         {"OMP_NUM_THREADS": "abc"}),
    Case("env-omp-threads-zero", ("bench", "--dry-run"), 0, ("OMP_NUM_THREADS='0'", "ignored"),
         {"OMP_NUM_THREADS": "0"}),
    Case("env-kmp-affinity-garbage", ("bench", "--dry-run"), 0, ("KMP_AFFINITY='garbage'", "ignored"),
         {"KMP_AFFINITY": "garbage"}),
    Case("env-kmp-blocktime-garbage", ("bench", "--dry-run"), 0, ("KMP_BLOCKTIME='forever'",),
         {"KMP_BLOCKTIME": "forever"}),
    Case("env-cache-dir-is-a-file", ("bench", "--steps", "1"), 1, ("RN50_CACHE_DIR",),
         {"RN50_CACHE_DIR": "/etc/hostname"}),
]


@pytest.fixture(scope="module")
def crafted(tmp_path_factory, model_cache) -> dict[str, Path]:
    builtin = next(model_cache.glob("*.onnx"))
    return make_all(tmp_path_factory.mktemp("crafted"), builtin)


def leftover(marker: str) -> list[int]:
    """Processes whose environment holds `marker` (this case's), still alive."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and int(entry.name) != os.getpid():
            try:
                if marker.encode() in (entry / "environ").read_bytes():
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


def run_rn50(argv, env, cwd: Path, model_cache: Path, timeout: float = 120):
    """`python -m rn50 ARGV` under the address-space limit; (process, peak RSS MiB, marker)."""
    marker = f"RN50_BATTERY={uuid.uuid4().hex}"
    full = dict(os.environ, RN50_CACHE_DIR=str(model_cache), RN50_BATTERY=marker.split("=")[1])
    full.pop("COLUMNS", None)
    full.update(env)
    rss = cwd / "peak_rss_mib"
    proc = subprocess.run([sys.executable, "-c", WRAPPER.format(cap=ADDRESS_SPACE), str(rss),
                           *argv], cwd=cwd, env=full, capture_output=True, text=True,
                          timeout=timeout)
    return proc, int(rss.read_text() or 0), marker


def assert_clean(proc, code: int, says, peak: int, marker: str) -> None:
    assert proc.returncode == code, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert "Traceback" not in proc.stdout + proc.stderr
    if code:
        errors = [ln for ln in proc.stderr.splitlines() if ERROR_LINE.match(ln)]
        assert len(errors) == 1, proc.stderr
        for fragment in says:
            assert fragment in errors[0], errors[0]
    else:
        for fragment in says:
            assert fragment in proc.stdout + proc.stderr
    assert peak < RSS_CAP_MIB, f"peak RSS {peak} MiB"
    time.sleep(0.1)
    assert leftover(marker) == [], "processes of the run are still alive"


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input(case: Case, crafted, model_cache, tmp_path):
    argv = [a.format(tmp=tmp_path, **crafted) for a in case.argv]
    proc, peak, marker = run_rn50(argv, case.env, tmp_path, model_cache)
    assert_clean(proc, case.code, case.says, peak, marker)


def accuracy_of(data: Path, model_cache: Path, tmp_path: Path) -> dict:
    """`rn50 accuracy` over `data`, checked clean; its result JSON."""
    proc, peak, marker = run_rn50(["accuracy", "--data-location", str(data), "--json",
                                   str(tmp_path / "acc.json")], {}, tmp_path, model_cache)
    assert_clean(proc, 0, (), peak, marker)
    return json.loads((tmp_path / "acc.json").read_text())


def test_out_of_range_labels_are_skipped_and_counted(crafted, model_cache, tmp_path):
    result = accuracy_of(crafted["bad_labels"], model_cache, tmp_path)
    assert result["accuracy"]["images"] == 3
    reasons = result["skipped"]
    assert len(reasons) == 3 and all("outside ImageNet's 1..1000" in r for r in reasons)
    assert {"label 5000", "label -1", "label 0"} <= {r.split(": ")[1].split(" is")[0]
                                                     for r in reasons}


def test_a_record_claiming_a_terabyte_is_a_bad_record_not_an_allocation(crafted, model_cache,
                                                                          tmp_path):
    result = accuracy_of(crafted["huge_record"], model_cache, tmp_path)
    assert result["accuracy"]["images"] == 1
    assert any("over the" in r and "corrupt" in r for r in result["skipped"])


def test_unreadable_model_file(model_cache, tmp_path):
    """As a user who may not read the file (root reads everything, so as nobody)."""
    model = tmp_path / "secret.onnx"
    model.write_bytes(next(model_cache.glob("*.onnx")).read_bytes()[:4096])
    model.chmod(0)
    argv = [sys.executable, "-m", "rn50", "bench", "--model", str(model)]
    if os.geteuid() == 0:
        if subprocess.run(["setpriv", "--version"], capture_output=True).returncode:
            pytest.skip("running as root without setpriv: no user who cannot read the file")
        os.chmod(tmp_path, 0o755)
        argv = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", *argv]
    env = dict(os.environ, HOME=str(tmp_path), PYTHONPATH=str(Path(__file__).parents[2] / "src"))
    proc = subprocess.run(argv, cwd="/", env=env, capture_output=True, text=True, timeout=120)
    if "No module named" in proc.stderr:
        pytest.skip("the installed rn50 is not readable by the unprivileged user here")
    assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert proc.stderr.strip().splitlines()[-1] == \
        f"rn50: error: model file {model} cannot be read: permission denied"


def test_verbose_shows_the_traceback_of_a_bad_input(crafted, model_cache, tmp_path):
    proc, _, _ = run_rn50(["bench", "--model", str(crafted["junk_model"]), "--verbose"], {},
                          tmp_path, model_cache)
    assert proc.returncode == 1 and "Traceback" in proc.stderr
