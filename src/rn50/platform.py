"""CPU topology and capabilities, read from /sys, /proc and `lscpu`.

Every reader takes a root directory and injectable command runners, so tests
feed it recorded files from other machines (a 2x28-core SMT server, a
cgroup-limited container). A missing source is skipped and recorded in
`Platform.sources`; detection never raises.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Mapping

ISA_FLAGS = {
    "avx2": ("avx2",),
    "fma": ("fma",),
    "avx512f": ("avx512f",),
    "avx512_vnni": ("avx512_vnni", "avx512vnni"),
    "avx512_bf16": ("avx512_bf16",),
    "amx_bf16": ("amx_bf16",),
    "amx_int8": ("amx_int8",),
    "avx_vnni": ("avx_vnni",),
}


@dataclass(frozen=True)
class LogicalCpu:
    """One logical CPU (hardware thread) and where it sits."""

    cpu: int
    core: int
    socket: int
    node: int


@dataclass(frozen=True)
class Platform:
    """What the benchmark can use on this machine, and where each fact came from."""

    cpus: tuple[LogicalCpu, ...]
    allowed_cpus: tuple[int, ...]
    model_name: str = "unknown"
    vendor: str = "unknown"
    max_mhz: float | None = None
    flags: frozenset[str] = frozenset()
    cgroup_cpu_quota: float | None = None
    numactl: str | None = None
    sources: tuple[str, ...] = ()
    notes: tuple[str, ...] = field(default=())

    # --- derived facts -------------------------------------------------
    @property
    def sockets(self) -> tuple[int, ...]:
        return tuple(sorted({c.socket for c in self.cpus}))

    @property
    def numa_nodes(self) -> dict[int, tuple[int, ...]]:
        nodes: dict[int, list[int]] = {}
        for c in self.cpus:
            nodes.setdefault(c.node, []).append(c.cpu)
        return {n: tuple(sorted(v)) for n, v in sorted(nodes.items())}

    @property
    def physical_cores(self) -> int:
        return len({(c.socket, c.core) for c in self.cpus})

    @property
    def cores_per_socket(self) -> int:
        return self.physical_cores // max(1, len(self.sockets))

    @property
    def threads_per_core(self) -> int:
        return max(1, len(self.cpus) // max(1, self.physical_cores))

    @property
    def smt_enabled(self) -> bool:
        return self.threads_per_core > 1

    @property
    def isa(self) -> dict[str, bool]:
        return {name: any(f in self.flags for f in aliases) for name, aliases in ISA_FLAGS.items()}

    @property
    def fp32_flops_per_cycle(self) -> int:
        """FP32 FLOPs per cycle per core, assuming two FMA units (server cores)."""
        isa = self.isa
        if isa["avx512f"]:
            return 64
        if isa["avx2"] and isa["fma"]:
            return 32
        return 8

    def ops_per_cycle(self, precision: str = "fp32") -> tuple[int, str]:
        """Multiply-add operations (2 per MAC) per cycle per core at `precision`, and the
        instructions that estimate assumes: each precision has its own peak."""
        isa, fp32 = self.isa, self.fp32_flops_per_cycle
        if precision == "bfloat16":
            if isa["amx_bf16"]:
                return 1024, "AMX-BF16 tiles"
            if isa["avx512_bf16"]:
                return 2 * fp32, "AVX512-BF16 dot products (2x FP32)"
        elif precision == "int8":
            if isa["amx_int8"]:
                return 2048, "AMX-INT8 tiles"
            if isa["avx512_vnni"] or isa["avx_vnni"]:
                return 4 * fp32, "VNNI dot products (4x FP32)"
            return 2 * fp32, "8-bit multiply-adds without VNNI (2x FP32)"
        return fp32, "FP32 FMA"

    def peak_gops(self, precision: str = "fp32", cores: int | None = None) -> float | None:
        """Estimated peak GOP/s of `cores` physical cores (all by default) at `precision`."""
        fp32 = self.peak_fp32_gflops(cores)
        if fp32 is None:
            return None
        return fp32 / self.fp32_flops_per_cycle * self.ops_per_cycle(precision)[0]

    def peak_fp32_gflops(self, cores: int | None = None) -> float | None:
        """Estimated FP32 peak of `cores` physical cores (all by default) at max clock."""
        if not self.max_mhz:
            return None
        cores = self.physical_cores if cores is None else cores
        return cores * self.max_mhz / 1000.0 * self.fp32_flops_per_cycle

    def usable_cores(self, socket: int | None = None) -> list[list[LogicalCpu]]:
        """Physical cores (each a list of its allowed SMT siblings), in core order.

        Only CPUs this process may run on count; a core none of whose siblings
        is allowed is left out.
        """
        allowed = set(self.allowed_cpus)
        cores: dict[tuple[int, int], list[LogicalCpu]] = {}
        for c in sorted(self.cpus, key=lambda c: (c.socket, c.core, c.cpu)):
            if c.cpu in allowed and (socket is None or c.socket == socket):
                cores.setdefault((c.socket, c.core), []).append(c)
        return list(cores.values())

    def to_dict(self) -> dict:
        data = asdict(self)
        data["flags"] = sorted(self.flags)
        data["derived"] = {
            "sockets": len(self.sockets),
            "physical_cores": self.physical_cores,
            "cores_per_socket": self.cores_per_socket,
            "threads_per_core": self.threads_per_core,
            "logical_cpus": len(self.cpus),
            "smt_enabled": self.smt_enabled,
            "numa_nodes": {str(k): list(v) for k, v in self.numa_nodes.items()},
            "isa": self.isa,
            "fp32_peak_gflops_estimate": self.peak_fp32_gflops(),
        }
        return data


# --- parsing of recorded text (pure) ----------------------------------------

def parse_cpulist(text: str) -> list[int]:
    """Parse a kernel CPU list such as ``0-3,8,10-11``."""
    cpus: list[int] = []
    for part in text.strip().split(","):
        part = part.strip()
        if not part:
            continue
        if "-" in part:
            lo, hi = part.split("-", 1)
            cpus.extend(range(int(lo), int(hi) + 1))
        else:
            cpus.append(int(part))
    return cpus


def format_cpulist(cpus) -> str:
    """Inverse of `parse_cpulist`: ``[0,1,2,5]`` -> ``0-2,5``."""
    cpus = sorted(set(cpus))
    parts, start = [], None
    for i, cpu in enumerate(cpus):
        if start is None:
            start = cpu
        if i + 1 == len(cpus) or cpus[i + 1] != cpu + 1:
            parts.append(str(start) if start == cpu else f"{start}-{cpu}")
            start = None
    return ",".join(parts)


def parse_lscpu_parseable(text: str) -> list[LogicalCpu]:
    """Parse ``lscpu -p=CPU,CORE,SOCKET,NODE`` output (comment lines start with #)."""
    cpus = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        fields = (line.split(",") + ["", "", "", ""])[:4]
        cpu, core, socket, node = (int(f) if f.strip() else 0 for f in fields)
        cpus.append(LogicalCpu(cpu, core, socket, node))
    return cpus


def parse_lscpu_summary(text: str) -> dict[str, str]:
    """Parse plain ``lscpu`` output into {field: value}."""
    info = {}
    for line in text.splitlines():
        if ":" in line:
            key, value = line.split(":", 1)
            info[key.strip()] = value.strip()
    return info


def parse_cpuinfo(text: str) -> dict[str, str]:
    """Fields of the first processor block of /proc/cpuinfo."""
    info: dict[str, str] = {}
    for line in text.splitlines():
        if not line.strip():
            if info:
                break
            continue
        if ":" in line:
            key, value = line.split(":", 1)
            info.setdefault(key.strip(), value.strip())
    return info


def parse_cgroup_quota(cpu_max: str | None, cfs_quota: str | None = None,
                       cfs_period: str | None = None) -> float | None:
    """CPU quota in CPUs from cgroup v2 ``cpu.max`` or v1 cfs files; None when unlimited."""
    if cpu_max:
        parts = cpu_max.split()
        if parts and parts[0] != "max":
            period = float(parts[1]) if len(parts) > 1 else 100000.0
            return float(parts[0]) / period
        return None
    if cfs_quota and cfs_period:
        quota = float(cfs_quota)
        if quota > 0:
            return quota / float(cfs_period)
    return None


def clock_mhz(lscpu: Mapping[str, str], cpuinfo: Mapping[str, str],
              sysfs_max_khz: str | None) -> float | None:
    """Best estimate of the maximum core clock, in MHz."""
    for value in (lscpu.get("CPU max MHz"),):
        if value:
            try:
                return float(value)
            except ValueError:
                pass
    if sysfs_max_khz:
        try:
            return float(sysfs_max_khz) / 1000.0
        except ValueError:
            pass
    name = cpuinfo.get("model name") or lscpu.get("Model name") or ""
    match = re.search(r"@\s*([\d.]+)\s*GHz", name)
    if match:
        return float(match.group(1)) * 1000.0
    for value in (cpuinfo.get("cpu MHz"), lscpu.get("CPU MHz")):
        if value:
            try:
                return float(value)
            except ValueError:
                pass
    return None


# --- reading a live (or recorded) machine ---------------------------------

def _read(path: Path) -> str | None:
    try:
        return path.read_text()
    except (OSError, UnicodeDecodeError):
        return None


def _run_lscpu(args: list[str]) -> str | None:
    exe = shutil.which("lscpu")
    if not exe:
        return None
    try:
        return subprocess.run([exe, *args], capture_output=True, text=True, timeout=10,
                              check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return None


def _sysfs_topology(root: Path) -> list[LogicalCpu] | None:
    cpu_dir = root / "sys/devices/system/cpu"
    online = _read(cpu_dir / "online")
    if online is None:
        return None
    node_of: dict[int, int] = {}
    node_dir = root / "sys/devices/system/node"
    if node_dir.is_dir():
        for entry in sorted(node_dir.glob("node[0-9]*")):
            cpulist = _read(entry / "cpulist")
            if cpulist is not None:
                for cpu in parse_cpulist(cpulist):
                    node_of[cpu] = int(entry.name[4:])
    cpus = []
    for cpu in parse_cpulist(online):
        topo = cpu_dir / f"cpu{cpu}" / "topology"
        core, socket = _read(topo / "core_id"), _read(topo / "physical_package_id")
        if core is None or socket is None:
            return None
        cpus.append(LogicalCpu(cpu, int(core), max(0, int(socket)), node_of.get(cpu, 0)))
    return cpus or None


def detect_platform(root: str | os.PathLike = "/",
                    lscpu: Callable[[list[str]], str | None] | None = _run_lscpu,
                    allowed_cpus: list[int] | None = None,
                    numactl: str | None | bool = True) -> Platform:
    """Read the platform; never raises. ``root`` other than / reads a recorded tree.

    ``allowed_cpus`` defaults to this process's affinity when reading the live
    machine, else to every online CPU. ``numactl=True`` looks it up on PATH.
    """
    root = Path(root)
    live = root == Path("/")
    sources, notes = [], []
    cpus = _topology(root, live, lscpu, sources, notes)
    cpuinfo_text = _read(root / "proc/cpuinfo")
    cpuinfo = parse_cpuinfo(cpuinfo_text) if cpuinfo_text else {}
    if cpuinfo:
        sources.append("/proc/cpuinfo")
    lscpu_text = lscpu([]) if lscpu else None
    summary = parse_lscpu_summary(lscpu_text) if lscpu_text else {}
    if summary:
        sources.append("lscpu")
    flags = frozenset((cpuinfo.get("flags") or summary.get("Flags") or "").split())
    max_khz = _read(root / "sys/devices/system/cpu/cpu0/cpufreq/cpuinfo_max_freq")

    cg = root / "sys/fs/cgroup"
    quota = parse_cgroup_quota(_read(cg / "cpu.max"), _read(cg / "cpu/cpu.cfs_quota_us"),
                               _read(cg / "cpu/cpu.cfs_period_us"))
    allowed = _allowed(cpus, allowed_cpus, live, cg, notes)
    if quota is not None:
        notes.append(f"cgroup CPU quota: {quota:g} CPUs")

    if numactl is True:
        numactl = shutil.which("numactl")
    return Platform(
        cpus=tuple(sorted(cpus, key=lambda c: c.cpu)),
        allowed_cpus=allowed,
        model_name=cpuinfo.get("model name") or summary.get("Model name") or "unknown",
        vendor=cpuinfo.get("vendor_id") or summary.get("Vendor ID") or "unknown",
        max_mhz=clock_mhz(summary, cpuinfo, max_khz),
        flags=flags,
        cgroup_cpu_quota=quota,
        numactl=numactl or None,
        sources=tuple(sources),
        notes=tuple(notes),
    )


def _topology(root: Path, live: bool, lscpu, sources: list[str], notes: list[str]
              ) -> list[LogicalCpu]:
    """CPUs with their core, socket and node: sysfs, else `lscpu -p`, else one core each."""
    cpus = _sysfs_topology(root)
    if cpus:
        sources.append("sysfs")
    lscpu_p = lscpu(["-p=CPU,CORE,SOCKET,NODE"]) if lscpu else None
    if not cpus and lscpu_p:
        cpus = parse_lscpu_parseable(lscpu_p)
        sources.append("lscpu -p")
    if not cpus:
        count = (os.cpu_count() or 1) if live else 1
        cpus = [LogicalCpu(i, i, 0, 0) for i in range(count)]
        notes.append("topology unknown (no sysfs, no lscpu): each CPU taken as one core")
    return cpus


def _allowed(cpus: list[LogicalCpu], allowed_cpus: list[int] | None, live: bool, cg: Path,
             notes: list[str]) -> tuple[int, ...]:
    """The CPUs this process may use: its affinity (live), else the cgroup's cpuset."""
    online = [c.cpu for c in cpus]
    if allowed_cpus is None:
        if live and hasattr(os, "sched_getaffinity"):
            allowed_cpus = sorted(os.sched_getaffinity(0))
        else:
            cpuset = _read(cg / "cpuset.cpus.effective")
            allowed_cpus = parse_cpulist(cpuset) if cpuset and cpuset.strip() else online
    allowed = tuple(c for c in sorted(allowed_cpus) if c in set(online))
    if len(allowed) < len(online):
        notes.append(f"this process may use {len(allowed)} of {len(online)} CPUs "
                     f"({format_cpulist(allowed)})")
    return allowed


def platform_from_dict(data: Mapping) -> Platform:
    """Rebuild a Platform from `Platform.to_dict()` output (e.g. `rn50 info --json`)."""
    return Platform(
        cpus=tuple(LogicalCpu(**c) for c in data["cpus"]),
        allowed_cpus=tuple(data["allowed_cpus"]),
        model_name=data.get("model_name", "unknown"),
        vendor=data.get("vendor", "unknown"),
        max_mhz=data.get("max_mhz"),
        flags=frozenset(data.get("flags", ())),
        cgroup_cpu_quota=data.get("cgroup_cpu_quota"),
        numactl=data.get("numactl"),
        sources=tuple(data.get("sources", ())),
        notes=tuple(data.get("notes", ())),
    )
