"""The seed's recommended runtime settings, as pure functions of (platform, user flags, environment).

Every value is a `Choice` that carries where it came from and why, so a run can
print "intra-op threads = 28 (seed table: physical cores of socket 0)". An
explicit flag beats an environment variable, which beats the table; an
override is reported, never silent (Model Zoo 1.0 overwrote user settings).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Any, Mapping

from .errors import ConfigError
from .instances import InstancePlan, plan_instances
from .platform import Platform, format_cpulist

LATENCY_BATCH = 1
THROUGHPUT_BATCH = 128
SEED_KMP_AFFINITY = "granularity=fine,verbose,compact,1,0"
SEED_KMP_BLOCKTIME = "1"
SEED_KMP_SETTINGS = "1"
BINDINGS = ("auto", "numactl", "affinity", "none")

USER, ENV, SEED, PLATFORM, RN50 = "flag", "environment", "seed table", "platform", "rn50"


@dataclass(frozen=True)
class Choice:
    """A setting's value, who decided it (`source`) and why (`reason`)."""

    value: Any
    source: str
    reason: str

    def to_dict(self) -> dict:
        value = list(self.value) if isinstance(self.value, tuple) else self.value
        return {"value": value, "source": self.source, "reason": self.reason}


@dataclass(frozen=True)
class UserFlags:
    """What the user asked for; None means "not set, recommend something"."""

    batch_size: int | None = None
    mode: str | None = None  # latency (default) | throughput: the batch when not given
    intra_threads: int | None = None
    inter_threads: int | None = None
    streams: int | None = None
    socket_id: int | None = None
    num_cores: int | None = None
    binding: str = "auto"
    data_format: str | None = None
    num_instances: int | None = None
    cores_per_instance: int | str | None = None  # a number, or "socket"
    smt: str = "exclude"  # SMT siblings of an instance's cores: exclude | include
    precision: str = "fp32"  # fp32 | bfloat16 | int8: picks the layout of graphs rn50 builds
    # what the run is, so each setting is shown as it will really apply (filled by the api):
    engine: str = "openvino"  # the engine's name, in reasons
    engine_streams: bool = True  # whether the engine runs parallel streams (OpenVINO)
    model_file: bool = False  # a user's model file keeps its own input layout
    scenario_batch: int | None = None  # the scenario's default batch (accuracy 64, classify 8)
    auto_instances: bool = True  # one instance per NUMA node at batch > 1 (benchmarks only)
    one_batch_at_a_time: bool = False  # the scenario waits for each batch (accuracy, classify)

    @property
    def multi_instance(self) -> bool:
        """Asked for several instances (`--num-instances 1` alone means one process)."""
        return self.num_instances not in (None, 1) or self.cores_per_instance is not None


@dataclass(frozen=True)
class Settings:
    """Everything the launcher and the backend apply, each with its reason."""

    batch_size: Choice
    intra_threads: Choice
    inter_threads: Choice
    streams: Choice
    data_layout: Choice
    cpus: Choice
    numa_nodes: Choice
    binding: Choice
    env: Mapping[str, Choice]
    advice: tuple[str, ...] = field(default=())
    instance: Choice | None = None  # {"index": i, "of": n} in a multi-instance run

    def child_env(self) -> dict[str, str]:
        """Environment variables to set in the benchmark process."""
        return {name: str(choice.value) for name, choice in self.env.items()}

    def numactl_args(self) -> list[str]:
        """numactl options for this binding (empty when numactl is not used)."""
        if self.binding.value != "numactl":
            return []
        cpus = format_cpulist(self.cpus.value)
        nodes = self.numa_nodes.value
        if self.instance is not None:  # memory on the node each instance runs on
            return [f"--physcpubind={cpus}", "--localalloc"]
        if nodes is None:
            return [f"--physcpubind={cpus}"]
        nodelist = ",".join(str(n) for n in nodes)
        if self.cpus.source == SEED:  # the whole socket: the seed's own form
            return [f"--cpunodebind={nodelist}", f"--membind={nodelist}"]
        return [f"--physcpubind={cpus}", f"--membind={nodelist}"]

    def items(self) -> list[tuple[str, Choice]]:
        rows = [("batch_size", self.batch_size), ("intra_op_threads", self.intra_threads),
                ("inter_op_threads", self.inter_threads), ("streams", self.streams),
                ("data_layout", self.data_layout), ("cpus", self.cpus),
                ("numa_nodes", self.numa_nodes), ("binding", self.binding)]
        if self.instance is not None:
            rows.insert(0, ("instance", self.instance))
        return rows + sorted(self.env.items())

    def to_dict(self) -> dict:
        data = {name: choice.to_dict() for name, choice in self.items()
                if name not in self.env}
        data["env"] = {name: choice.to_dict() for name, choice in sorted(self.env.items())}
        data["advice"] = list(self.advice)
        return data


def settings_from_dict(data: Mapping) -> Settings:
    """Rebuild Settings from `Settings.to_dict()` (how the child process receives them)."""
    def choice(d):
        value = d["value"]
        return Choice(tuple(value) if isinstance(value, list) else value, d["source"], d["reason"])
    return Settings(
        batch_size=choice(data["batch_size"]), intra_threads=choice(data["intra_op_threads"]),
        inter_threads=choice(data["inter_op_threads"]), streams=choice(data["streams"]),
        data_layout=choice(data["data_layout"]), cpus=choice(data["cpus"]),
        numa_nodes=choice(data["numa_nodes"]), binding=choice(data["binding"]),
        env={k: choice(v) for k, v in data["env"].items()}, advice=tuple(data["advice"]),
        instance=choice(data["instance"]) if data.get("instance") else None)


def _positive(name: str, value: int | None) -> None:
    if value is not None and value < 1:
        raise ConfigError(f"{name} must be at least 1 (got {value})")


def _validate(platform: Platform, flags: UserFlags) -> None:
    if flags.batch_size is not None and flags.batch_size != -1:
        _positive("--batch-size", flags.batch_size)
    if flags.mode not in (None, "latency", "throughput"):
        raise ConfigError(f"--mode must be latency or throughput (got {flags.mode!r})")
    _positive("--num-intra-threads", flags.intra_threads)
    _positive("--num-inter-threads", flags.inter_threads)
    _positive("--streams", flags.streams)
    if flags.num_cores is not None and flags.num_cores != -1:
        _positive("--num-cores", flags.num_cores)
    if flags.binding not in BINDINGS:
        raise ConfigError(f"--bind must be one of {', '.join(BINDINGS)} (got {flags.binding!r})")
    if flags.binding == "numactl" and not platform.numactl:
        raise ConfigError("--bind numactl: numactl is not installed "
                          "(install it, e.g. `apt-get install numactl`, or use --bind affinity)")
    if flags.socket_id is not None and flags.socket_id != -1:
        sockets = platform.sockets
        if flags.socket_id not in sockets:
            valid = ", ".join(str(s) for s in sockets)
            raise ConfigError(f"--socket-id {flags.socket_id}: this machine has "
                              f"{len(sockets)} socket(s) (valid: {valid})")


def _batch_size(flags: UserFlags) -> Choice:
    if flags.batch_size == -1:
        return Choice(THROUGHPUT_BATCH, USER,
                      "--batch-size -1 (Model Zoo): the recommended throughput batch")
    if flags.batch_size is not None:
        wins = {"latency": flags.batch_size != 1, "throughput": flags.batch_size == 1}
        return Choice(flags.batch_size, USER, "set by --batch-size" + (
            f" (it wins over --mode {flags.mode}'s batch "
            f"{LATENCY_BATCH if flags.mode == 'latency' else THROUGHPUT_BATCH})"
            if wins.get(flags.mode) else ""))
    if flags.scenario_batch is not None:
        return Choice(flags.scenario_batch, RN50, "this command's default batch "
                      "(--batch-size to change)")
    if flags.mode == "throughput":
        return Choice(THROUGHPUT_BATCH, SEED, "batch 128 for best throughput")
    return Choice(LATENCY_BATCH, SEED, "batch 1 for real-time latency")


def _cores(platform: Platform, flags: UserFlags) -> Choice:
    """Pick the physical cores to run on; one logical CPU per core (SMT siblings left idle)."""
    socket = flags.socket_id if flags.socket_id not in (None, -1) else None
    cores = platform.usable_cores(socket)
    where = f"socket {socket}" if socket is not None else "all sockets"
    if not cores:
        raise ConfigError(f"--socket-id {socket}: none of its CPUs is available to this process "
                          f"(allowed CPUs: {format_cpulist(platform.allowed_cpus)})")
    source, reason = SEED, f"the {len(cores)} physical cores of {where}"
    if flags.num_cores not in (None, -1):
        if flags.num_cores > len(cores):
            raise ConfigError(f"--num-cores {flags.num_cores} exceeds the {len(cores)} physical "
                              f"cores available on {where}")
        cores = cores[:flags.num_cores]
        source, reason = USER, f"set by --num-cores: the first {len(cores)} physical cores of {where}"
    elif platform.cgroup_cpu_quota is not None and platform.cgroup_cpu_quota < len(cores):
        limit = max(1, math.floor(platform.cgroup_cpu_quota))
        cores = cores[:limit]
        source, reason = PLATFORM, (f"cgroup quota of {platform.cgroup_cpu_quota:g} CPUs: "
                                    f"the first {limit} physical cores of {where}")
    if platform.smt_enabled:
        reason += " (one hardware thread per core, as KMP_AFFINITY compact,1,0 places them)"
    cpus = tuple(core[0].cpu for core in cores)
    return Choice(cpus, source, reason)


def _numa(platform: Platform, flags: UserFlags, cpus: tuple[int, ...]) -> Choice:
    if flags.socket_id in (None, -1):
        return Choice(None, SEED, "no --socket-id: no NUMA memory binding (as Model Zoo)")
    nodes = tuple(sorted({c.node for c in platform.cpus if c.cpu in set(cpus)}))
    return Choice(nodes, SEED, f"memory and CPUs of socket {flags.socket_id}'s "
                               f"NUMA node(s) {','.join(map(str, nodes))}")


def _binding(platform: Platform, flags: UserFlags, numa: Choice) -> Choice:
    if flags.binding == "none":
        return Choice("none", USER, "--bind none: the process is not pinned")
    if flags.binding == "affinity":
        return Choice("sched_setaffinity", USER, "--bind affinity")
    if flags.binding == "numactl":
        return Choice("numactl", USER, "--bind numactl")
    if platform.numactl:
        return Choice("numactl", RN50, f"numactl found at {platform.numactl}")
    reason = "numactl is not installed: CPU affinity set with sched_setaffinity"
    if numa.value is not None:
        reason += " (memory is not bound to the NUMA node; install numactl for that)"
    return Choice("sched_setaffinity", RN50, reason)


_KMP_AFFINITY_WORDS = {
    "compact", "scatter", "balanced", "explicit", "disabled", "none", "logical", "physical",
    "verbose", "noverbose", "warnings", "nowarnings", "respect", "norespect", "duplicates",
    "noduplicates", "dups", "nodups"}
_ENV_VALID = {
    "KMP_AFFINITY": lambda v: bool(v.strip()) and all(
        w.strip().isdigit() or w.strip().lower() in _KMP_AFFINITY_WORDS
        or w.strip().lower().startswith(("granularity=", "proclist=", "gran="))
        or w.strip().endswith("]") for w in v.split(",")),
    "KMP_BLOCKTIME": lambda v: v.strip().isdigit() or v.strip().lower() == "infinite",
    "KMP_SETTINGS": lambda v: v.strip().lower() in (
        "0", "1", "true", "false", "yes", "no", "on", "off", ".true.", ".false."),
}


def _env(name: str, seed_value: str, environ: Mapping[str, str], why: str,
         advice: list[str]) -> Choice:
    if name in environ:
        valid = _ENV_VALID.get(name, lambda value: True)
        if valid(environ[name]):
            return Choice(environ[name], ENV, f"kept as already set; {why}")
        advice.append(f"{name}={environ[name]!r} in the environment is not a valid value: "
                      f"ignored, {name}={seed_value} used instead")
        return Choice(seed_value, SEED, f"replaces the invalid {name}={environ[name]!r} "
                      f"from the environment; {why}")
    return Choice(seed_value, SEED, why)


def recommend(platform: Platform, flags: UserFlags = UserFlags(),
              environ: Mapping[str, str] | None = None) -> Settings:
    """The seed's recommended settings for this platform, with the user's choices applied.

    Raises ConfigError for flags that are invalid or do not fit the platform.
    """
    environ = dict(environ or {})
    _validate(platform, flags)
    batch = _batch_size(flags)
    cpus = _cores(platform, flags)
    advice: list[str] = []
    intra = _intra_threads(flags, environ, len(cpus.value), advice)
    inter = (Choice(flags.inter_threads, USER, "set by --num-inter-threads")
             if flags.inter_threads is not None
             else Choice(1, SEED, "one inter-op thread"))
    numa = _numa(platform, flags, cpus.value)
    if not platform.smt_enabled:
        advice.append("Hyperthreading is off (or not exposed): the seed recommends enabling it "
                      "in BIOS (requires a restart); rn50 uses one thread per physical core either way")
    return Settings(batch_size=batch, intra_threads=intra, inter_threads=inter,
                    streams=_streams(flags, batch.value, advice), data_layout=_layout(flags),
                    cpus=cpus, numa_nodes=numa, binding=_binding(platform, flags, numa),
                    env=_openmp_env(flags, environ, intra, advice), advice=tuple(advice))


def _intra_threads(flags: UserFlags, environ: Mapping[str, str], ncores: int,
                   advice: list[str]) -> Choice:
    if flags.intra_threads is not None:
        intra = Choice(flags.intra_threads, USER, "set by --num-intra-threads")
    elif "OMP_NUM_THREADS" in environ and environ["OMP_NUM_THREADS"].strip().isdigit() \
            and int(environ["OMP_NUM_THREADS"]) >= 1:
        intra = Choice(int(environ["OMP_NUM_THREADS"]), ENV,
                       "OMP_NUM_THREADS already set in the environment")
    else:
        intra = Choice(ncores, SEED, f"intra-op threads = physical cores used ({ncores})")
        if "OMP_NUM_THREADS" in environ and flags.intra_threads is None:
            advice.append(f"OMP_NUM_THREADS={environ['OMP_NUM_THREADS']!r} in the environment "
                          f"is not a positive whole number: ignored, {ncores} threads used")
    if intra.value > ncores:
        advice.append(f"intra-op threads ({intra.value}) exceed the {ncores} physical cores "
                      "bound: threads will share cores")
    return intra


def _streams(flags: UserFlags, batch: int, advice: list[str]) -> Choice:
    if not flags.engine_streams:
        if flags.streams not in (None, 1):
            advice.append(f"--streams {flags.streams} is not applied: {flags.engine} has no "
                          "parallel streams (OpenVINO has)")
        return Choice(1, RN50, f"{flags.engine} runs one batch at a time")
    if flags.streams is not None:
        return Choice(flags.streams, USER, "set by --streams")
    if batch == 1:
        return Choice(1, RN50, "batch 1 (latency): one stream runs each image on all threads")
    if flags.one_batch_at_a_time:
        return Choice(1, RN50, "this scenario waits for each batch before the next: one "
                               "stream runs it on all threads (parallel streams would leave "
                               "all but one idle)")
    return Choice("auto", RN50, "batch > 1 (throughput): the engine picks parallel streams "
                                "over the threads (OpenVINO THROUGHPUT hint), as its own "
                                "benchmark tool does; --streams 1 for the seed's single stream")


def _layout(flags: UserFlags) -> Choice:
    if flags.data_format is not None:
        if flags.data_format not in ("NCHW", "NHWC"):
            raise ConfigError(f"--data-format must be NCHW or NHWC (got {flags.data_format!r})")
        return Choice(flags.data_format, USER, "set by --data-format (used where the model "
                      "is built by rn50: the built-in model on TensorFlow)")
    if flags.model_file:
        return Choice("model's own", RN50, "a model file keeps its own input layout (read "
                      "back after loading)")
    if flags.precision == "bfloat16":
        return Choice("NHWC", RN50, "BF16: TensorFlow's oneDNN BF16 convolutions ran 2x faster "
                      "on NHWC than on NCHW graphs (TF 2.21, batch 16); used where rn50 builds "
                      "the graph (the built-in model on TensorFlow); --data-format NCHW for the "
                      "seed's layout")
    return Choice("NCHW", SEED, "NCHW for graphs rn50 builds; a model file keeps its own "
                  "input layout")


def _openmp_env(flags: UserFlags, environ: Mapping[str, str], intra: Choice,
                advice: list[str]) -> dict[str, Choice]:
    """OMP_NUM_THREADS and the seed's KMP_* variables, each with where it came from."""
    if "OMP_NUM_THREADS" in environ and flags.intra_threads is not None \
            and environ["OMP_NUM_THREADS"] != str(intra.value):
        omp = Choice(str(intra.value), USER, "= --num-intra-threads (overrides "
                     f"OMP_NUM_THREADS={environ['OMP_NUM_THREADS']} from the environment)")
    elif intra.source == ENV:
        omp = Choice(environ["OMP_NUM_THREADS"], ENV, "already set in the environment")
    else:
        omp = Choice(str(intra.value), intra.source, "OMP_NUM_THREADS = intra-op threads "
                     "(read by every OpenMP runtime, e.g. PyTorch's)")
    openmp = ("read by Intel OpenMP (libiomp, as in Intel-optimized TensorFlow/PyTorch builds); "
              "stock wheels (GNU OpenMP, Eigen threads) and OpenVINO (TBB) ignore it")
    return {
        "OMP_NUM_THREADS": omp,
        "KMP_AFFINITY": _env("KMP_AFFINITY", SEED_KMP_AFFINITY, environ, openmp, advice),
        "KMP_BLOCKTIME": _env("KMP_BLOCKTIME", SEED_KMP_BLOCKTIME, environ, openmp, advice),
        "KMP_SETTINGS": _env("KMP_SETTINGS", SEED_KMP_SETTINGS, environ, openmp, advice),
    }


@dataclass(frozen=True)
class ProcessPlan:
    """The benchmark processes to start: one Settings each (one process unless multi-instance)."""

    base: Settings
    processes: tuple[Settings, ...]
    instances: InstancePlan | None = None

    def to_dict(self) -> dict:
        return {"processes": len(self.processes),
                "instances": self.instances.to_dict() if self.instances else None}


def for_instance(base: Settings, plan: InstancePlan, index: int) -> Settings:
    """Settings of instance `index`: its own CPUs, threads, NUMA-local memory and OMP threads."""
    group = plan.groups[index]
    count = len(plan.groups)
    instance = Choice({"index": index, "of": count}, RN50,
                      f"instance {index + 1} of {count}: {plan.reason}")
    cpus = Choice(group.cpus, RN50, f"instance {index + 1}'s {group.physical_cores} physical "
                  f"core(s) on NUMA node {group.node} (socket {group.socket})")
    advice = list(base.advice)
    if base.intra_threads.source in (USER, ENV):
        intra = base.intra_threads
        if intra.value > len(group.cpus):
            advice.append(f"intra-op threads ({intra.value}) exceed instance {index + 1}'s "
                          f"{len(group.cpus)} CPUs: threads will share cores")
    else:
        intra = Choice(len(group.cpus), RN50, f"intra-op threads = this instance's "
                       f"{len(group.cpus)} CPU(s)")
    env = dict(base.env)
    if env["OMP_NUM_THREADS"].source not in (USER, ENV):
        env["OMP_NUM_THREADS"] = Choice(str(intra.value), intra.source,
                                        "OMP_NUM_THREADS = this instance's intra-op threads")
    numa = Choice((group.node,), RN50, "memory allocated on the instance's own NUMA node "
                  "(numactl --localalloc)" if base.binding.value == "numactl" else
                  "the instance's NUMA node (memory not bound: numactl is not used)")
    return Settings(batch_size=base.batch_size, intra_threads=intra,
                    inter_threads=base.inter_threads, streams=base.streams,
                    data_layout=base.data_layout, cpus=cpus, numa_nodes=numa,
                    binding=base.binding, env=env, advice=tuple(advice), instance=instance)


def plan_processes(platform: Platform, flags: UserFlags = UserFlags(),
                   environ: Mapping[str, str] | None = None) -> ProcessPlan:
    """The settings of every benchmark process: one, or one per instance group."""
    base = recommend(platform, flags, environ)
    nodes = {c.node for c in platform.cpus if c.cpu in set(base.cpus.value)}
    automatic = (flags.auto_instances and flags.num_instances is None
                 and flags.cores_per_instance is None
                 and flags.socket_id in (None, -1) and flags.num_cores in (None, -1)
                 and base.batch_size.value > 1 and len(nodes) > 1)
    if not (automatic or flags.multi_instance):
        return ProcessPlan(base, (base,))
    if automatic:  # throughput on several NUMA nodes: one instance per node, memory local
        plan = plan_instances(platform, base.cpus.value, len(nodes), None, flags.smt)
        plan = replace(plan, reason=f"throughput (batch {base.batch_size.value}) on {len(nodes)} "
                       f"NUMA nodes: one instance per node keeps each one's memory local "
                       f"(--num-instances 1 for one process over all nodes)")
    else:
        plan = plan_instances(platform, base.cpus.value, flags.num_instances,
                              flags.cores_per_instance, flags.smt)
    processes = tuple(for_instance(base, plan, i) for i in range(len(plan.groups)))
    return ProcessPlan(base, processes, plan)
