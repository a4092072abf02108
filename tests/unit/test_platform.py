"""Platform detection from recorded /sys, /proc and lscpu outputs of other machines."""

from __future__ import annotations

from pathlib import Path

import pytest

from rn50.platform import (detect_platform, format_cpulist, parse_cgroup_quota, parse_cpulist,
                           parse_lscpu_parseable, platform_from_dict)

THIS_MACHINE_FLAGS = ("fpu sse sse2 avx avx2 fma avx512f avx512dq avx512_vnni avx512_bf16 "
                      "amx_bf16 amx_tile amx_int8 avx_vnni")


def write_tree(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def sysfs(cpus: list[tuple[int, int, int, int]]) -> dict[str, str]:
    """Files of /sys for (cpu, core, socket, node) tuples."""
    files = {"sys/devices/system/cpu/online": format_cpulist([c[0] for c in cpus]) + "\n"}
    nodes: dict[int, list[int]] = {}
    for cpu, core, socket, node in cpus:
        files[f"sys/devices/system/cpu/cpu{cpu}/topology/core_id"] = f"{core}\n"
        files[f"sys/devices/system/cpu/cpu{cpu}/topology/physical_package_id"] = f"{socket}\n"
        nodes.setdefault(node, []).append(cpu)
    for node, members in nodes.items():
        files[f"sys/devices/system/node/node{node}/cpulist"] = format_cpulist(members) + "\n"
    return files


def cpuinfo(model: str, flags: str, mhz: str) -> str:
    return (f"processor\t: 0\nvendor_id\t: GenuineIntel\nmodel name\t: {model}\n"
            f"cpu MHz\t\t: {mhz}\nflags\t\t: {flags}\n\nprocessor\t: 1\n")


def server_2x28_lscpu() -> str:
    """`lscpu -p` of a 2-socket x 28-core server with SMT on (Linux numbering)."""
    lines = ["# The following is the parsable format", "# CPU,Core,Socket,Node"]
    for cpu in range(112):
        core = cpu % 56
        socket = core // 28
        lines.append(f"{cpu},{core},{socket},{socket}")
    return "\n".join(lines) + "\n"


def no_lscpu(args):
    return None


def test_this_machine_from_sysfs(tmp_path):
    files = sysfs([(0, 0, 0, 0), (1, 1, 0, 0)])
    files["proc/cpuinfo"] = cpuinfo("Intel(R) Xeon(R) Processor", THIS_MACHINE_FLAGS, "2100.000")
    p = detect_platform(write_tree(tmp_path, files), lscpu=no_lscpu, numactl=None)
    assert (len(p.sockets), p.physical_cores, len(p.cpus), p.smt_enabled) == (1, 2, 2, False)
    assert p.numa_nodes == {0: (0, 1)}
    assert p.allowed_cpus == (0, 1)
    assert p.isa["avx512_bf16"] and p.isa["avx512_vnni"] and p.isa["amx_int8"]
    assert p.max_mhz == 2100.0
    assert p.peak_fp32_gflops() == pytest.approx(2 * 2.1 * 64)
    assert p.sources == ("sysfs", "/proc/cpuinfo")


def test_server_2x28_smt_from_lscpu_only(tmp_path):
    def lscpu(args):
        if args == ["-p=CPU,CORE,SOCKET,NODE"]:
            return server_2x28_lscpu()
        return ("Model name: Intel(R) Xeon(R) Platinum 8180 CPU @ 2.50GHz\n"
                "CPU max MHz: 3800.0000\nFlags: avx2 fma avx512f avx512cd\n")

    p = detect_platform(tmp_path, lscpu=lscpu, numactl="/usr/bin/numactl")
    assert (len(p.sockets), p.physical_cores, p.cores_per_socket, len(p.cpus)) == (2, 56, 28, 112)
    assert p.smt_enabled and p.threads_per_core == 2
    assert p.numa_nodes[1] == tuple(range(28, 56)) + tuple(range(84, 112))
    assert p.model_name.startswith("Intel(R) Xeon(R) Platinum 8180")
    assert p.max_mhz == 3800.0
    assert not p.isa["avx512_vnni"]
    cores = p.usable_cores(socket=1)
    assert len(cores) == 28 and [c.cpu for c in cores[0]] == [28, 84]


def test_cgroup_limited_container(tmp_path):
    files = sysfs([(i, i, 0, 0) for i in range(8)])
    files["sys/fs/cgroup/cpu.max"] = "300000 100000\n"
    files["sys/fs/cgroup/cpuset.cpus.effective"] = "0-3\n"
    p = detect_platform(write_tree(tmp_path, files), lscpu=no_lscpu, numactl=None)
    assert p.cgroup_cpu_quota == 3.0
    assert p.allowed_cpus == (0, 1, 2, 3)
    assert len(p.usable_cores()) == 4
    assert any("4 of 8 CPUs" in note for note in p.notes)


def test_missing_sources_do_not_crash(tmp_path):
    p = detect_platform(tmp_path, lscpu=None, numactl=None)
    assert len(p.cpus) == 1 and p.model_name == "unknown" and p.max_mhz is None
    assert p.peak_fp32_gflops() is None
    assert p.notes and "topology unknown" in p.notes[0]


def test_live_machine_is_consistent():
    p = detect_platform()
    assert p.physical_cores >= 1
    assert set(p.allowed_cpus) <= {c.cpu for c in p.cpus}


@pytest.mark.parametrize("text,cpus", [("0-3,8,10-11", [0, 1, 2, 3, 8, 10, 11]), ("5", [5]),
                                       ("0-1\n", [0, 1])])
def test_cpulist_round_trip(text, cpus):
    assert parse_cpulist(text) == cpus
    assert parse_cpulist(format_cpulist(cpus)) == cpus


@pytest.mark.parametrize("cpu_max,v1,expected", [
    ("max 100000", None, None), ("250000 100000", None, 2.5),
    (None, ("-1", "100000"), None), (None, ("400000", "100000"), 4.0)])
def test_cgroup_quota(cpu_max, v1, expected):
    assert parse_cgroup_quota(cpu_max, *(v1 or (None, None))) == expected


def test_lscpu_parseable_tolerates_missing_node():
    cpus = parse_lscpu_parseable("# CPU,Core,Socket,Node\n0,0,0,\n1,1,0,\n")
    assert [(c.cpu, c.node) for c in cpus] == [(0, 0), (1, 0)]


def test_json_round_trip(tmp_path):
    files = sysfs([(0, 0, 0, 0), (1, 1, 0, 0)])
    p = detect_platform(write_tree(tmp_path, files), lscpu=no_lscpu, numactl=None)
    assert platform_from_dict(p.to_dict()) == p


@pytest.mark.parametrize("flags, precision, per_cycle", [
    ("avx2 fma avx512f", "fp32", 64),
    ("avx2 fma avx512f avx512_vnni avx512_bf16", "int8", 256),     # AMD Zen 4: VNNI, no AMX
    ("avx2 fma avx512f avx512_vnni avx512_bf16", "bfloat16", 128),
    ("avx2 fma avx512f avx512_vnni amx_int8 amx_bf16", "int8", 2048),  # Sapphire Rapids
    ("avx2 fma avx512f avx512_vnni amx_int8 amx_bf16", "bfloat16", 1024),
    ("avx2 fma avx_vnni", "int8", 128),
    ("avx2 fma", "int8", 64),
])
def test_each_precision_has_its_own_peak(tmp_path, flags, precision, per_cycle):
    # an INT8 run was compared with the FP32 peak ("201% of the estimated FP32 peak")
    files = sysfs([(0, 0, 0, 0), (1, 1, 0, 0)])
    files["proc/cpuinfo"] = cpuinfo("Some CPU", flags, "2000.000")
    p = detect_platform(write_tree(tmp_path, files), lscpu=no_lscpu, numactl=None)
    assert p.ops_per_cycle(precision)[0] == per_cycle
    assert p.peak_gops(precision, 1) == pytest.approx(2.0 * per_cycle)
