"""Bounded reads and the memory estimate (rn50.limits), and the environment checks."""

from __future__ import annotations

import os

import pytest

from rn50 import limits
from rn50.errors import DataError, ModelError
from rn50.settings import SEED_KMP_AFFINITY, _ENV_VALID


def test_read_bytes_refuses_what_it_cannot_bound(tmp_path):
    small = tmp_path / "a.jpg"
    small.write_bytes(b"x" * 10)
    assert limits.read_bytes(small, "image", 10) == b"x" * 10
    with pytest.raises(DataError, match=r"image .*a.jpg is 10 bytes, over the 9 bytes limit"):
        limits.read_bytes(small, "image", 9)
    with pytest.raises(DataError, match="/dev/zero is a device, not a regular file"):
        limits.read_bytes("/dev/zero", "image", 1 << 20)
    os.mkfifo(tmp_path / "pipe")
    with pytest.raises(ModelError, match="is a FIFO"):
        limits.check_file(tmp_path / "pipe", "model file", error=ModelError)
    with pytest.raises(DataError, match="does not exist"):
        limits.check_file(tmp_path / "none", "image")
    with pytest.raises(DataError, match="is a folder"):
        limits.check_file(tmp_path, "image")
    assert limits.check_file(tmp_path, "model file", folder_ok=True) == 0


def test_available_memory_takes_the_lower_of_meminfo_and_the_cgroup(tmp_path):
    (tmp_path / "meminfo").write_text("MemTotal: 100 kB\nMemAvailable:    2048 kB\n")
    cgroup = tmp_path / "cg"
    cgroup.mkdir()
    assert limits.available_memory(str(tmp_path / "meminfo"), str(cgroup)) == 2048 * 1024
    (cgroup / "memory.max").write_text("1048576\n")
    (cgroup / "memory.current").write_text("524288\n")
    assert limits.available_memory(str(tmp_path / "meminfo"), str(cgroup)) == 524288
    (cgroup / "memory.max").write_text("max\n")
    assert limits.available_memory(str(tmp_path / "meminfo"), str(cgroup)) == 2048 * 1024


def test_run_memory_grows_with_batch_requests_and_processes():
    one = limits.run_memory(1, 1, "fp32")
    assert limits.run_memory(64, 1, "fp32") > limits.run_memory(64, 1, "int8") > one
    assert limits.run_memory(64, 2, "fp32", processes=2) == \
        2 * limits.run_memory(64, 2, "fp32") == 2 * limits.run_memory(128, 1, "fp32")
    assert limits.check_run_memory(100, 1000, "-b 1", 9) == ""
    assert "most of it" in limits.check_run_memory(900, 1000, "-b 1", 9)
    with pytest.raises(limits.MemoryRefused, match="largest batch that fits is about 9"):
        limits.check_run_memory(2000, 1000, "-b 1", 9)


@pytest.mark.parametrize("name,value,ok", [
    ("KMP_AFFINITY", SEED_KMP_AFFINITY, True),
    ("KMP_AFFINITY", "granularity=core,scatter", True),
    ("KMP_AFFINITY", "proclist=[0,2,4],explicit", True),
    ("KMP_AFFINITY", "garbage", False),
    ("KMP_AFFINITY", "", False),
    ("KMP_BLOCKTIME", "0", True),
    ("KMP_BLOCKTIME", "infinite", True),
    ("KMP_BLOCKTIME", "1ms", False),
    ("KMP_SETTINGS", "TRUE", True),
    ("KMP_SETTINGS", "maybe", False),
])
def test_openmp_environment_values(name, value, ok):
    assert _ENV_VALID[name](value) is ok
