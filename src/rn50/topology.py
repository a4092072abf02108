"""Recorded topologies: a machine you do not have, read from a file (`--topology FILE`).

Accepted, detected by content:
- a JSON dump of `rn50 info --json` (or just its "platform" object);
- `lscpu -p` output (columns CPU,Core,Socket,Node as its header says);
- plain `lscpu` output; the per-CPU layout is then derived from its counts and
  NUMA lists with Linux's usual numbering (the first thread of every core, then
  the second: CPU c and c + physical cores are SMT siblings), which is stated in
  the platform's notes;
- both concatenated (`lscpu; lscpu -p`): the layout from -p, the rest from lscpu.

A recorded machine is assumed to have numactl (the seed's setup), so plans show
the numactl commands it would get.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from .errors import ConfigError
from .platform import (LogicalCpu, Platform, clock_mhz, parse_cpulist, parse_lscpu_summary,
                       platform_from_dict)

_PARSEABLE_ROW = re.compile(r"^\d+(,[^,\s]*)+$")
_COLUMNS = ("CPU", "CORE", "SOCKET", "NODE")


def parse_lscpu_rows(text: str) -> list[LogicalCpu]:
    """`lscpu -p` rows, using its `# CPU,Core,...` header to find the columns."""
    order = list(_COLUMNS)
    cpus = []
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("#"):
            names = [n.strip().upper() for n in line.lstrip("#").split(",")]
            if "CPU" in names and "CORE" in names:
                order = names
            continue
        if not _PARSEABLE_ROW.match(line):
            continue
        fields = dict(zip(order, line.split(",")))
        value = {name: int(fields[name]) if fields.get(name, "").strip() else 0
                 for name in _COLUMNS}
        cpus.append(LogicalCpu(value["CPU"], value["CORE"], value["SOCKET"], value["NODE"]))
    return cpus


def _count(summary: dict[str, str], key: str, path: Path) -> int:
    try:
        return int(summary[key].split()[0])
    except (KeyError, ValueError, IndexError):
        raise ConfigError(f"--topology {path}: lscpu output without a {key!r} line") from None


def cpus_from_lscpu_summary(summary: dict[str, str], path: Path) -> list[LogicalCpu]:
    """Derive per-CPU topology from plain lscpu counts (Linux's usual CPU numbering)."""
    total = _count(summary, "CPU(s)", path)
    threads = _count(summary, "Thread(s) per core", path)
    per_socket = _count(summary, "Core(s) per socket", path)
    sockets = _count(summary, "Socket(s)", path)
    physical = per_socket * sockets
    if physical * threads != total:
        raise ConfigError(f"--topology {path}: lscpu counts disagree ({sockets} socket(s) x "
                          f"{per_socket} cores x {threads} threads != {total} CPUs)")
    node_of = {}
    for key, value in summary.items():
        match = re.fullmatch(r"NUMA node(\d+) CPU\(s\)", key)
        if match and value.strip():
            for cpu in parse_cpulist(value):
                node_of[cpu] = int(match.group(1))
    cpus = []
    for cpu in range(total):
        core = cpu % physical
        socket = core // per_socket
        cpus.append(LogicalCpu(cpu, core, socket, node_of.get(cpu, socket)))
    return cpus


def load_topology(path: str | Path) -> Platform:
    """Read a recorded machine; raise ConfigError naming the file when it cannot."""
    path = Path(path).expanduser()
    try:
        text = path.read_text()
    except OSError as exc:
        raise ConfigError(f"--topology {path}: cannot read it ({exc.strerror or exc})") from None
    except UnicodeDecodeError:
        raise ConfigError(f"--topology {path}: not a text file") from None
    if text.lstrip().startswith("{"):
        try:
            data = json.loads(text)
            return platform_from_dict(data.get("platform", data))
        except (ValueError, KeyError, TypeError) as exc:
            raise ConfigError(f"--topology {path}: not an `rn50 info --json` dump "
                              f"({type(exc).__name__}: {exc})") from None
    rows = parse_lscpu_rows(text)
    summary = parse_lscpu_summary("\n".join(line for line in text.splitlines()
                                            if not line.lstrip().startswith("#")
                                            and not _PARSEABLE_ROW.match(line.strip())))
    notes = [f"recorded topology read from {path}", "numactl assumed installed there"]
    if rows:
        cpus, source = rows, "lscpu -p (recorded)"
    elif "CPU(s)" in summary:
        cpus, source = cpus_from_lscpu_summary(summary, path), "lscpu (recorded)"
        notes.append("per-CPU layout derived from lscpu counts with Linux's usual numbering "
                     "(CPU c and c + physical cores are SMT siblings)")
    else:
        raise ConfigError(f"--topology {path}: neither `lscpu`, `lscpu -p` output nor an "
                          "`rn50 info --json` dump")
    return Platform(
        cpus=tuple(sorted(cpus, key=lambda c: c.cpu)),
        allowed_cpus=tuple(sorted(c.cpu for c in cpus)),
        model_name=summary.get("Model name", "unknown"),
        vendor=summary.get("Vendor ID", "unknown"),
        max_mhz=clock_mhz(summary, {}, None),
        flags=frozenset(summary.get("Flags", "").split()),
        numactl="numactl",
        sources=(source,),
        notes=tuple(notes),
    )
