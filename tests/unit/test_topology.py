"""--topology: recorded machines read from lscpu, lscpu -p and `rn50 info --json` files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rn50.errors import ConfigError
from rn50.platform import format_cpulist
from rn50.settings import UserFlags, plan_processes
from rn50.topology import load_topology

DATA = Path(__file__).resolve().parents[1] / "data"


def test_plain_lscpu_of_the_seed_server():
    p = load_topology(DATA / "lscpu_2x28_smt.txt")
    assert (len(p.sockets), p.physical_cores, len(p.cpus), p.threads_per_core) == (2, 56, 112, 2)
    assert p.numa_nodes[0] == tuple(range(28)) + tuple(range(56, 84))
    assert p.model_name.startswith("Intel(R) Xeon(R) Platinum 8180")
    assert p.max_mhz == 3800.0 and p.isa["avx512f"] and p.numactl == "numactl"
    assert any("Linux's usual numbering" in n for n in p.notes)
    # CPU 0 and 56 are siblings of core 0
    assert {c.cpu for c in p.cpus if c.core == 0} == {0, 56}


def test_lscpu_p_of_a_4_node_epyc():
    p = load_topology(DATA / "lscpu_p_epyc_nps4.txt")
    assert sorted(p.numa_nodes) == [0, 1, 2, 3] and p.physical_cores == 64
    plan = plan_processes(p, UserFlags(cores_per_instance=16), {})
    assert [format_cpulist(s.cpus.value) for s in plan.processes] == \
        ["0-15", "16-31", "32-47", "48-63"]


def test_both_outputs_concatenated_take_layout_from_lscpu_p(tmp_path):
    text = (DATA / "lscpu_2x28_smt.txt").read_text() + "\n" + \
        (DATA / "lscpu_p_epyc_nps4.txt").read_text()
    path = tmp_path / "both.txt"
    path.write_text(text)
    p = load_topology(path)
    assert len(p.numa_nodes) == 4 and p.model_name.startswith("Intel")
    assert p.sources == ("lscpu -p (recorded)",)


def test_rn50_info_json_round_trip(tmp_path):
    original = load_topology(DATA / "lscpu_2x28_smt.txt")
    path = tmp_path / "info.json"
    path.write_text(json.dumps({"platform": original.to_dict(), "settings": {}}))
    assert load_topology(path) == original


@pytest.mark.parametrize("content, message", [
    ("hello\n", "neither `lscpu`, `lscpu -p` output nor an `rn50 info --json` dump"),
    ("{\"cpus\": 3}", "not an `rn50 info --json` dump"),
    ("CPU(s): 8\nThread(s) per core: 2\nCore(s) per socket: 3\nSocket(s): 1\n",
     "lscpu counts disagree"),
    ("CPU(s): 8\n", "without a 'Thread(s) per core' line"),
])
def test_bad_topology_files(tmp_path, content, message):
    path = tmp_path / "t.txt"
    path.write_text(content)
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        load_topology(path)


def test_missing_topology_file(tmp_path):
    with pytest.raises(ConfigError, match="--topology .*nope.txt: cannot read it"):
        load_topology(tmp_path / "nope.txt")
