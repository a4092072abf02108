"""Multi-instance plans: split the usable physical cores into disjoint groups, one process each.

Pure functions of (platform, flags, the cores the settings chose). Rules:
- a group never spans NUMA nodes (with `socket` groups, never spans sockets);
- SMT siblings of a core stay together in its group (`smt="include"`) or are
  left idle (`smt="exclude"`, the default: one thread per physical core, as the
  seed's KMP_AFFINITY compact,1,0 places them);
- `--num-instances N` alone: the largest group size that fits N groups;
  `--cores-per-instance C` alone: as many groups of C as fit; both: N groups of C;
- groups are taken in turn from each node (so 2 instances on 2 sockets get one
  socket each), then listed in CPU order;
- cores that do not fill a group are reported as left idle, never dropped silently.
"""

from __future__ import annotations

from dataclasses import dataclass

from .errors import ConfigError
from .platform import LogicalCpu, Platform, format_cpulist

SMT_CHOICES = ("exclude", "include")


@dataclass(frozen=True)
class InstanceGroup:
    """The CPUs one instance runs on."""

    index: int
    cpus: tuple[int, ...]  # logical CPUs the process is bound to
    physical_cores: int
    node: int
    socket: int

    def to_dict(self) -> dict:
        return {"index": self.index, "cpus": list(self.cpus), "cpulist": format_cpulist(self.cpus),
                "physical_cores": self.physical_cores, "numa_node": self.node,
                "socket": self.socket}


@dataclass(frozen=True)
class InstancePlan:
    """Instances, their CPU groups, and the cores left idle (with why)."""

    groups: tuple[InstanceGroup, ...]
    cores_per_instance: int
    smt: str
    idle_cpus: tuple[int, ...]
    reason: str
    idle_reason: str = ""

    def to_dict(self) -> dict:
        return {"instances": len(self.groups), "cores_per_instance": self.cores_per_instance,
                "smt": self.smt, "groups": [g.to_dict() for g in self.groups],
                "idle_cpus": list(self.idle_cpus), "reason": self.reason,
                "idle_reason": self.idle_reason}


def _positive(flag: str, value: int | None) -> None:
    if value is not None and value < 1:
        raise ConfigError(f"{flag} must be at least 1 (got {value})")


def _domains(cores: list[list[LogicalCpu]], by_socket: bool) -> list[list[list[LogicalCpu]]]:
    """Cores grouped by NUMA node (or socket), in core order."""
    domains: dict[int, list[list[LogicalCpu]]] = {}
    for core in cores:
        key = core[0].socket if by_socket else core[0].node
        domains.setdefault(key, []).append(core)
    return [domains[key] for key in sorted(domains)]


def _fitting_size(sizes: list[int], instances: int) -> int:
    """The largest group size c such that the domains hold `instances` groups of c."""
    for size in range(sum(sizes) // instances, 0, -1):
        if sum(n // size for n in sizes) >= instances:
            return size
    return 0


def plan_instances(platform: Platform, pool_cpus: tuple[int, ...], num_instances: int | None,
                   cores_per_instance: int | str | None, smt: str = "exclude") -> InstancePlan:
    """Split the physical cores whose first thread is in `pool_cpus` into instance groups.

    `cores_per_instance` may be "socket" (Model Zoo's --numa-cores-per-instance
    socket): one instance per socket with all its cores.
    """
    _check_flags(num_instances, cores_per_instance, smt)
    by_socket = cores_per_instance == "socket"
    pool = set(pool_cpus)
    cores = [core for core in platform.usable_cores() if core[0].cpu in pool]
    if not cores:
        raise ConfigError("no usable physical cores to split into instances")
    domains = _domains(cores, by_socket)
    unit = "socket" if by_socket else "NUMA node"
    size, reason = _group_size([len(d) for d in domains], num_instances, cores_per_instance,
                               unit)
    chosen = _choose_groups(domains, size, num_instances, unit)
    result, used = [], set()
    for index, group in enumerate(chosen):
        cpus = [c.cpu for core in group for c in (core if smt == "include" else core[:1])]
        used.update(c.cpu for core in group for c in core)
        result.append(InstanceGroup(index, tuple(sorted(cpus)), len(group), group[0][0].node,
                                    group[0][0].socket))
    idle = tuple(sorted(c.cpu for core in cores for c in core[:1] if c.cpu not in used))
    if smt == "include" and platform.smt_enabled:
        reason += "; SMT siblings included (one thread per logical CPU)"
    elif platform.smt_enabled:
        reason += "; SMT siblings left idle (one thread per physical core)"
    return InstancePlan(tuple(result), size, smt, idle, reason,
                        _idle_reason(idle, size, num_instances, len(cores), unit))


def _check_flags(num_instances: int | None, cores_per_instance: int | str | None,
                 smt: str) -> None:
    if smt not in SMT_CHOICES:
        raise ConfigError(f"--smt must be one of {', '.join(SMT_CHOICES)} (got {smt!r})")
    _positive("--num-instances", num_instances)
    if cores_per_instance != "socket":
        if isinstance(cores_per_instance, str):
            raise ConfigError(f"--cores-per-instance must be a whole number or 'socket' "
                              f"(got {cores_per_instance!r})")
        _positive("--cores-per-instance", cores_per_instance)


def _group_size(sizes: list[int], num_instances: int | None,
                cores_per_instance: int | str | None, unit: str) -> tuple[int, str]:
    """Cores per instance, and why."""
    total = sum(sizes)
    if cores_per_instance == "socket":
        if min(sizes) != max(sizes):
            raise ConfigError("--cores-per-instance socket: the sockets have different numbers "
                              f"of usable cores ({', '.join(map(str, sizes))}); give a number")
        return min(sizes), f"one instance per socket, {min(sizes)} physical cores each"
    if cores_per_instance is not None:
        if cores_per_instance > max(sizes):
            raise ConfigError(f"--cores-per-instance {cores_per_instance}: no {unit} has that "
                              f"many usable physical cores (largest: {max(sizes)}); an "
                              f"instance never spans {unit}s")
        return cores_per_instance, f"{cores_per_instance} physical core(s) per instance, as asked"
    if num_instances is not None:
        if num_instances > total:
            raise ConfigError(f"--num-instances {num_instances} exceeds the {total} usable "
                              "physical cores")
        size = _fitting_size(sizes, num_instances)
        return size, (f"{total} physical cores over {num_instances} instance(s): {size} each "
                      f"(the most that fits without spanning a {unit})")
    raise ConfigError("a multi-instance plan needs --num-instances or --cores-per-instance")


def _choose_groups(domains: list, size: int, wanted: int | None, unit: str) -> list:
    """Groups of `size` consecutive cores inside each domain, taken in turn from each one,
    then in CPU order."""
    per_domain = [[d[i:i + size] for i in range(0, len(d) - size + 1, size)] for d in domains]
    available = sum(len(g) for g in per_domain)
    if wanted is not None and wanted > available:
        sizes = [len(d) for d in domains]
        raise ConfigError(f"--num-instances {wanted} x {size} core(s) each needs "
                          f"{wanted * size} physical cores in whole {unit}s; "
                          f"only {available} such group(s) fit ({sum(sizes)} cores, "
                          f"{', '.join(map(str, sizes))} per {unit})")
    chosen: list = []
    depth = 0
    while len(chosen) < (wanted or available):
        for groups in per_domain:
            if depth < len(groups) and len(chosen) < (wanted or available):
                chosen.append(groups[depth])
        depth += 1
    return sorted(chosen, key=lambda g: g[0][0].cpu)


def _idle_reason(idle: tuple[int, ...], size: int, wanted: int | None, total: int,
                 unit: str) -> str:
    if not idle:
        return ""
    if wanted is None:
        return (f"{len(idle)} physical core(s) left idle (CPUs {format_cpulist(idle)}): "
                f"they do not make a whole group of {size} inside one {unit}")
    return (f"{len(idle)} physical core(s) left idle (CPUs {format_cpulist(idle)}): "
            f"{wanted} instance(s) x {size} core(s) use {wanted * size} of {total}")
