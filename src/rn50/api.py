"""The Python API: the same objects the CLI builds.

    import rn50
    settings = rn50.recommend()                 # the seed's settings for this CPU
    record = rn50.benchmark(rn50.RunConfig())   # runs in a pinned child process
"""

from __future__ import annotations

import os
import platform as pyplatform
import signal
import sys
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Callable, Mapping, Sequence

import numpy as np

from . import __version__, limits
from .backends import (capabilities, check_format, check_installed, engine_env, is_noise,
                       real_engines)
from .config import ModelConfig, RunConfig
from .data.sources import open_source
from .errors import ConfigError, DataError, Rn50Error, WorkerError
from .interrupts import Interrupted, describe, signal_of
from .launch.launcher import Outcome, run_child, run_workers
from .launch.plan import LaunchPlan, plan_launch
from .launch.worker import EngineWorker, WorkerPool
from .models import ModelSpec
from .models.resolve import builtin_model, file_model
from .parity import PARITY_TOLERANCE
from .parity import compare as compare_outputs
from .precision import check_precision, engine_precisions
from .quantize import int8_model
from .platform import Platform, detect_platform, format_cpulist
from .report import console as text
from .report.events import EventPrinter
from .report.files import (SCENARIO_PREFIXES, Console, allocate_run_paths, check_writable_file,
                           write_json)
from .results import SCHEMA_VERSION, RunResult
from .scenarios.benchmark import BenchmarkPlan, merge_instances
from .settings import ProcessPlan, Settings, UserFlags, plan_processes
from .settings import recommend as _recommend


def random_weights_note(model: ModelSpec) -> str:
    what = ("the built-in model" if model.source == "builtin" else
            f"{model.name} ({(model.provenance or {}).get('origin', 'by its metadata')})")
    return (f"{what} has random weights: figures measure speed only; its predictions "
            "(and any accuracy) are meaningless")


def recommend(platform: Platform | None = None, flags: UserFlags = UserFlags(),
              environ: Mapping[str, str] | None = None) -> Settings:
    """The recommended settings for this machine (or `platform`), with `flags` applied."""
    return _recommend(platform or detect_platform(), flags,
                      os.environ if environ is None else environ)


def run_flags(config: RunConfig) -> UserFlags:
    """The user's flags plus what the run is (engine, model file, scenario), so the settings
    are resolved as they will really apply."""
    return replace(config.flags, engine=config.backend,
                   engine_streams=capabilities(config.backend).streams,
                   model_file=config.model.path is not None,
                   auto_instances=config.scenario in ("benchmark", "mlperf", "serve"),
                   one_batch_at_a_time=config.scenario in ("accuracy", "classify"))


def check_engine(name: str, model: ModelSpec | None) -> None:
    """Raise unless engine `name` is installed and can run `model` (a user file)."""
    check_installed(name)
    if model is not None and model.source == "file":
        check_format(name, model.format, model.path)


def scenario_job(scenario: str, backend: str, precision: str, model: ModelSpec,
                 settings: Settings, plan: BenchmarkPlan, data: dict | None = None) -> dict:
    """What the child process is asked to do (sent as JSON on its stdin)."""
    return {"scenario": scenario, "backend": backend, "precision": precision,
            "model": model.to_dict(), "settings": settings.to_dict(),
            "plan": {"warmup_steps": plan.warmup_steps, "steps": plan.steps,
                     "duration": plan.duration},
            "data_seed": 0, "data": data}


def _expected_affinity(settings: Settings, platform: Platform) -> list[int] | None:
    """The CPUs the child should find itself on, or None when it is not bound."""
    if settings.binding.value == "none":
        return None
    args = settings.numactl_args()
    if args and args[0].startswith("--cpunodebind"):
        nodes = set(settings.numa_nodes.value)
        allowed = set(platform.allowed_cpus)
        return sorted(c.cpu for c in platform.cpus if c.node in nodes and c.cpu in allowed)
    return sorted(settings.cpus.value)


def _compute(record: dict, model: ModelSpec, platform: Platform, settings: Settings,
             precision: str, cores: int | None = None) -> dict | None:
    """Operations per second, against the estimated peak of the precision that ran."""
    if not model.macs_per_image:
        return None
    rate = record["summary"]["throughput_images_per_sec"]
    gops = rate * 2 * model.macs_per_image / 1e9
    cores = cores or len(settings.cpus.value)
    peak = platform.peak_gops(precision, cores)
    per_cycle, basis = platform.ops_per_cycle(precision)
    return {"gflop_per_image": 2 * model.macs_per_image / 1e9, "gflops_per_sec": gops,
            "peak_gflops": peak, "percent_of_peak": 100 * gops / peak if peak else None,
            "peak_precision": precision, "peak_basis": f"{basis}, {per_cycle} ops/cycle/core"}


def benchmark(config: RunConfig, environ: Mapping[str, str] | None = None,
              platform: Platform | None = None, stream=None,
              header: Callable[[Console], None] | None = None,
              on_rows: Callable[[dict], None] | None = None,
              settings_shown_for: str | None = None) -> dict:
    """Run the benchmark described by `config`; return the result record (also saved as JSON).

    One pinned engine worker, or with --num-instances/--cores-per-instance one per
    core group, started together. Raises an Rn50Error subclass for anything the
    user can fix, and for a failed instance (after saving what the others measured);
    KeyboardInterrupt after saving what was measured before Ctrl-C. With
    `settings_shown_for` (an engine run just before with the same settings) the
    settings table goes to the log only.
    """
    environ = dict(os.environ if environ is None else environ)
    platform = platform or detect_platform()
    processes, user_model = validate_run(config, environ, platform)
    memory_note = check_memory(config, processes, user_model)
    json_copy = check_writable_file(config.json_path, "--json") if config.json_path else None
    started = datetime.now()
    paths = allocate_run_paths(config.output_dir, config.precision, started,
                               SCENARIO_PREFIXES[config.scenario])
    out = Console(paths.log, stream)
    record = _new_record(config, platform, processes.base, started, paths.log)
    try:
        if header:
            header(out)
        if memory_note:
            out.line(f"NOTE: {memory_note}")
            record["warnings"].append(memory_note)
        model = prepare_model(config, record, out, environ, user_model)
        if config.data:
            record["data_config"] = config.data.to_job(platform.physical_cores)
            record["data_config"].pop("skip_keys")
        _print_settings(out, processes.base, processes, settings_shown_for)
        launches, plan = _plan_launches(config, record, out, processes, platform)
        data = config.data.to_job(platform.physical_cores) if config.data else None
        outcomes, interrupted, observed = _run(out, launches, processes, model, config, plan,
                                               environ, data, on_rows)
        _collect(record, outcomes, observed, processes, model, platform, config.precision)
        _report(out, record, processes.base, paths, json_copy)
        if interrupted or any(o.result and o.result.get("interrupted") for o in outcomes):
            raise interrupted or Interrupted()  # (a worker signalled directly: as Ctrl-C)
        failed = [o for o in outcomes if o.error is not None]
        if failed:
            raise _failure(failed, processes, paths.json)
        record["status"] = "ok"
    except KeyboardInterrupt as exc:
        raise _record_interrupt(record, out, exc, paths.json) from None
    except Rn50Error as exc:
        _record_error(record, out, exc)
        raise
    finally:
        record["finished_at"] = datetime.now().isoformat()
        out.close()
        write_json(paths.json, record)
        if json_copy:
            write_json(json_copy, record)
    return record


def validate_run(config: RunConfig, environ: dict, platform: Platform
              ) -> tuple[ProcessPlan, ModelSpec | None]:
    """Everything that can be refused before anything is written: settings, precision,
    engine, model file and data paths."""
    processes = plan_processes(platform, run_flags(config), environ)
    if processes.instances and config.scenario not in ("benchmark", "mlperf", "serve"):
        raise ConfigError(f"{config.scenario} runs in one process: --num-instances and "
                          "--cores-per-instance are for benchmarks")
    check_precision(config.precision, config.backend, platform)
    user_model = file_model(config.model, environ) if config.model.path else None
    check_engine(config.backend, user_model)
    if config.data:
        source = open_source(config.data.paths, config.data.labels_file)
        if config.scenario == "accuracy" and not source.labelled:
            raise DataError(f"{source.description}: no labels, and accuracy needs them "
                            "(TFRecords with image/class/label, class folders, or val_map.txt)")
    return processes, user_model


def check_memory(config: RunConfig, processes: ProcessPlan, user_model: ModelSpec | None
                  ) -> str:
    """Refuse, before anything starts, a run that cannot fit in this machine's memory (a
    note when it takes most of it)."""
    settings, count = processes.base, len(processes.processes)
    batch, streams = settings.batch_size.value, settings.streams.value
    in_flight = streams if isinstance(streams, int) else max(1, len(settings.cpus.value) // 4)
    model_bytes = _model_bytes(user_model)

    def needed(images: int) -> int:
        return limits.run_memory(images, in_flight, config.precision, count, model_bytes,
                                 real_data=bool(config.data))

    available = limits.available_memory()
    largest = max(0, ((available or 0) - needed(0)) // max(1, needed(1) - needed(0)))
    what = f"--batch-size {batch} ({config.precision}, {in_flight} in flight" + (
        f", {count} processes)" if count > 1 else ")")
    return limits.check_run_memory(needed(batch), available, what, largest)


def _model_bytes(model: ModelSpec | None) -> int:
    """Bytes an engine reads for the model (an IR's weights too; ~100 MB for the built-in)."""
    if model is None or not os.path.isfile(model.path):
        return 100 * limits.MiB
    weights = Path(model.path).with_suffix(".bin") if model.path.endswith(".xml") else None
    return os.path.getsize(model.path) + (os.path.getsize(weights) if weights and
                                          weights.is_file() else 0)


def _new_record(config: RunConfig, platform: Platform, settings: Settings, started: datetime,
                log: Path) -> dict:
    """The result record as it starts: what runs, where, with which settings."""
    return {
        "schema_version": SCHEMA_VERSION, "status": "running",
        "tool": {"name": "rn50", "version": __version__, "python": sys.version.split()[0],
                 "os": pyplatform.platform()},
        "command_line": list(config.command_line), "started_at": started.isoformat(),
        "platform": platform.to_dict(), "settings": settings.to_dict(),
        "precision": config.precision, "backend": config.backend, "kind": config.scenario,
        "scenario": config.scenario, "log_path": str(log), "warnings": [],
    }


SCENARIO_TITLES = {"benchmark": "inference benchmark", "accuracy": "accuracy",
                   "classify": "classification", "mlperf": "MLPerf LoadGen run",
                   "serve": "server", "profile": "per-layer profile"}


def prepare_model(config: RunConfig, record: dict, out: Console, environ: dict,
                   user_model: ModelSpec | None) -> ModelSpec:
    """The model to run (quantized to INT8 when asked), announced and recorded."""
    out.line(f"rn50 {__version__}: ResNet-50 {SCENARIO_TITLES[config.scenario]} "
             f"({config.backend}, {config.precision.upper()}, "
             f"{'real images' if config.data else 'synthetic images'})")
    model = user_model or builtin_model(config.model, environ, out.line)
    if config.precision == "int8" and config.backend != "null":
        record["fp32_model"] = model.to_dict()
        model, record["int8"] = int8_model(model, config.backend, config.calibration,
                                           Path(model.cache_dir), out.line)
    record["model"] = model.to_dict()
    out.line(f"Model: {model.name}: {model.path}")
    if model.random_weights:
        out.line(f"NOTE: {random_weights_note(model)}")
    return model


def _plan_launches(config: RunConfig, record: dict, out: Console, processes: ProcessPlan,
                   platform: Platform) -> tuple[list[LaunchPlan], BenchmarkPlan]:
    """Each process's exact launch, printed and recorded, and the steps to run."""
    launches = launch_plans(processes, platform, config.backend)
    plan = BenchmarkPlan(config.warmup_steps, config.steps, config.duration)
    record["plan"] = plan.to_dict()
    if processes.instances:
        record["instance_plan"] = processes.instances.to_dict()
        record["instances"] = [{"index": i, "settings": s.to_dict(),
                                "launch": {"binding": s.binding.value, **lp.to_dict()}}
                               for i, (s, lp) in enumerate(zip(processes.processes, launches))]
        for line in text.instance_plan_lines(processes, launches):
            out.line(line)
        out.line(f"Steps (every instance): {plan.describe()}")
    else:
        settings = processes.base
        record["launch"] = {"binding": settings.binding.value, **launches[0].to_dict()}
        _print_launch(out, settings, launches[0],
                      plan if config.scenario == "benchmark" else None)
    return launches, plan


def _report(out: Console, record: dict, settings: Settings, paths, json_copy) -> None:
    """The figures, in the seed's format, and where everything was written: read from the
    typed result, as any reporter does."""
    result = RunResult.from_dict(record)
    for line in text.data_lines(result):
        out.line(line)
    if result.summary:
        for line in text.summary_lines(result):
            out.line(line)
    if result.summary or result.accuracy or "classified" in result.extra:
        out.line(f"Ran inference with batch size {settings.batch_size.value}")
    out.line(f"Log location: {paths.log}")
    out.line(f"Results JSON: {paths.json}")
    if json_copy:
        out.line(f"JSON copy (--json): {json_copy}")


def _record_error(record: dict, out: Console, exc: Rn50Error) -> None:
    """An error: say so in the record (what was measured stays) and the log."""
    record["status"], record["error"] = "error", str(exc)
    out.log_only(f"rn50: error: {record['error']}")


def _record_interrupt(record: dict, out: Console, exc: KeyboardInterrupt, saved: Path
                      ) -> Interrupted:
    """Ctrl-C or SIGTERM: the record says so and what it still holds; the Interrupted the
    command line reports in one line."""
    signum = signal_of(exc)
    if record.get("summary"):
        kept = "the figures cover the steps timed before it"
    elif "classified" in record:
        kept = f"{record['classified']} images classified before it"
    elif record.get("accuracy"):
        kept = f"accuracy over the {record['accuracy']['images']} images evaluated before it"
    else:
        kept = "nothing had been measured yet"
    record.update(status="interrupted", interrupted_by=signal.Signals(signum).name,
                  error=f"interrupted by {describe(signum)}: {kept}")
    out.log_only(f"rn50: {record['error']}")
    return Interrupted(signum, f"{kept}; saved in {saved}")


def _print_settings(out: Console, settings: Settings, processes: ProcessPlan,
                    shown_for: str | None) -> None:
    title = ("Settings:" if not processes.instances else
             "Settings (of the whole pool; each instance's CPUs and threads below):")
    if shown_for:
        out.line(f"Settings: the same as for {shown_for} above (the table is in the log)")
    (out.log_only if shown_for else out.line)(title)
    for line in text.settings_table(settings):
        (out.log_only if shown_for else out.line)(line)


def dry_run(config: RunConfig, platform: Platform,
            environ: Mapping[str, str] | None = None) -> list[str]:
    """What `benchmark(config)` would start on `platform`, as text; runs and writes nothing."""
    environ = dict(os.environ if environ is None else environ)
    processes = plan_processes(platform, run_flags(config), environ)
    launches = launch_plans(processes, platform, config.backend)
    plan = BenchmarkPlan(config.warmup_steps, config.steps, config.duration)
    lines = [f"Dry run: nothing is started. Platform: {platform.model_name}, "
             f"{len(platform.sockets)} socket(s), {platform.physical_cores} physical cores, "
             f"{len(platform.cpus)} logical CPUs, NUMA nodes "
             + "; ".join(f"{n}: {format_cpulist(c)}" for n, c in platform.numa_nodes.items())]
    lines += [f"  note: {n}" for n in platform.notes]
    lines.append(f"Backend: {config.backend}; model: {config.model.path or 'built-in ResNet-50'}")
    lines.append("Settings:" if not processes.instances else
                 "Settings (of the whole pool; each instance's CPUs and threads below):")
    lines += text.settings_table(processes.base)
    if processes.instances:
        lines += text.instance_plan_lines(processes, launches)
    else:
        lines += text.launch_lines(processes.base, launches[0])
        lines.append("  command: " + text.command_line(launches[0]))
    lines.append(f"Steps: {plan.describe()}")
    return lines


def launch_plans(processes: ProcessPlan, platform: Platform, backend: str) -> list[LaunchPlan]:
    """The exact command, environment and binding of each benchmark process."""
    return [plan_launch(s, platform.numactl, engine_env(backend)) for s in processes.processes]


def start_pool(processes: ProcessPlan, platform: Platform, model: ModelSpec, config: RunConfig,
               environ: Mapping[str, str], on_output: Callable[[str], None],
               slots: int = 4, dynamic_batch: bool = False) -> WorkerPool:
    """One pinned engine worker per process of the plan, loaded, each with `slots` request
    slots: what `rn50 mlperf` and `rn50 serve` run on. `pool.revive()` replaces a worker
    that died with a new one, pinned and loaded the same way. With `dynamic_batch`, engines
    that can take any batch up to the compiled one do (a partial batch costs less)."""
    plans = launch_plans(processes, platform, config.backend)
    jobs = [{"backend": config.backend, "precision": config.precision, "model": model.to_dict(),
             "settings": settings.to_dict(), "dynamic_batch": dynamic_batch}
            for settings in processes.processes]

    def started(index: int) -> EngineWorker:
        return EngineWorker(plans[index], environ, index,
                            on_output=lambda i, line: on_output(line)).start()

    def ready(worker: EngineWorker) -> EngineWorker:
        worker.load(jobs[worker.index])
        worker.open_stream(slots)
        return worker

    pool = WorkerPool([started(i) for i in range(len(plans))],
                      respawn=[lambda i=i: ready(started(i)) for i in range(len(plans))])
    try:
        for worker in pool.workers:
            ready(worker)
    except BaseException:
        pool.close()
        raise
    return pool


def _failure(failed: list[Outcome], processes: ProcessPlan, json_path) -> Rn50Error:
    if processes.instances is None:
        return failed[0].error
    count = len(processes.processes)
    parts = []
    for outcome in failed:
        cpus = format_cpulist(processes.processes[outcome.index].cpus.value)
        parts.append(f"instance {outcome.index + 1} (CPUs {cpus}): {outcome.error}")
    kept = count - len(failed)
    others = "the other instance's result is" if kept == 1 else f"the other {kept} instances' results are"
    return WorkerError(f"{len(failed)} of {count} instances failed: " + "; ".join(parts)
                       + (f" ({others} in {json_path})" if kept else ""))


def _print_launch(out: Console, settings: Settings, launch: LaunchPlan,
                  plan: BenchmarkPlan | None) -> None:
    for line in text.launch_lines(settings, launch):
        out.line(line)
    if plan is not None:
        out.line(f"Steps: {plan.describe()}")


def _run(out: Console, launches: list[LaunchPlan], processes: ProcessPlan, model: ModelSpec,
         config: RunConfig, plan: BenchmarkPlan, environ: dict, data: dict | None,
         on_rows: Callable[[dict], None] | None
         ) -> tuple[list[Outcome], Interrupted | None, dict[int, dict]]:
    multi = processes.instances is not None
    jobs = [scenario_job(config.scenario, config.backend, config.precision, model, s, plan,
                         data) for s in processes.processes]
    observed: dict[int, dict] = {}  # what each child found itself bound to

    def on_output(index: int, line: str) -> None:
        text = f"[instance {index + 1}] {line}" if multi else line
        (out.log_only if is_noise(config.backend, line) else out.line)(text)

    printer = EventPrinter(out.line, len(launches), config.verbose, plan)

    def on_message(index: int, message: dict) -> None:
        if message["type"] == "started":
            observed[index] = {k: v for k, v in message.items() if k != "type"}
        elif message["type"] in ("predictions", "skipped"):
            if on_rows:
                on_rows(message)
        else:
            printer(index, message)

    outcomes, interrupted = run_workers(launches, jobs, environ, on_message, on_output,
                                        timeout=config.timeout, barrier=multi)
    return outcomes, interrupted, observed


def _collect(record: dict, outcomes: list[Outcome], observed: dict[int, dict],
             processes: ProcessPlan, model: ModelSpec, platform: Platform, precision: str) -> None:
    """Put each process's result (or error) into the record, and the summary over them."""
    if processes.instances is None:
        outcome = outcomes[0]
        if observed.get(0):
            record["launch"]["observed"] = observed[0]
        if outcome.result is not None:
            record.update(outcome.result)
            if "summary" in record:
                record["summary"]["compute"] = _compute(record, model, platform, processes.base,
                                                        precision)
        record["warnings"] = _warnings(record, processes.base, platform, precision)
        _layout_as_run(record, record.get("input"))
        return
    ok = []
    for outcome, entry in zip(outcomes, record["instances"]):
        settings = processes.processes[outcome.index]
        entry["pid"] = outcome.pid
        if observed.get(outcome.index):
            entry["launch"]["observed"] = observed[outcome.index]
        if outcome.result is not None:
            entry.update(outcome.result)
            entry["warnings"] = _warnings(entry, settings, platform, precision)
            ok.append(entry)
        entry["status"] = "ok" if outcome.error is None else "error"
        if outcome.error is not None:
            entry["error"] = str(outcome.error)
    if not ok:
        return
    record["summary"] = merge_instances(ok)
    record["summary"]["concurrency"] = sum(e["summary"]["concurrency"] for e in ok)
    record["engine"] = ok[0]["engine"]
    record["batch_size"] = ok[0]["batch_size"]
    _layout_as_run(record, ok[0].get("input"))
    record["load_timings"] = {key: max(e["load_timings"][key] for e in ok)  # the slowest
                              for key in ok[0]["load_timings"]}
    record["peak_rss_mib"] = sum(e["peak_rss_mib"] for e in ok)  # all instances together
    cores = sum(len(processes.processes[e["index"]].cpus.value) for e in ok)
    record["summary"]["compute"] = _compute(record, model, platform, processes.base,
                                            precision, cores)
    record["warnings"] = [f"instance {e['index'] + 1}: {w}" for e in ok for w in e["warnings"]]
    if processes.instances.idle_reason:
        record["warnings"].append(processes.instances.idle_reason)


def _layout_as_run(record: dict, input_spec: dict | None) -> None:
    """A model file's layout is known once loaded: record the one the engine really took."""
    if input_spec and record["settings"]["data_layout"]["value"] == "model's own":
        record["settings"]["data_layout"] = {
            "value": input_spec["layout"], "source": "model",
            "reason": f"the input layout the loaded model takes ({input_spec['dtype']})"}


def _warnings(record: dict, settings: Settings, platform: Platform, precision: str) -> list[str]:
    warnings = list(record.get("warnings", []))
    expected = _expected_affinity(settings, platform)
    observed = record.get("launch", {}).get("observed", {}).get("affinity")
    if expected is not None and observed is not None and sorted(observed) != expected:
        warnings.append(f"the benchmark process ran on CPUs {format_cpulist(observed)}, "
                        f"not the planned {format_cpulist(expected)}")
    executed = record.get("engine", {}).get("execution_precision")
    expected = {"fp32": lambda e: e == "f32", "bfloat16": lambda e: e == "bf16",
                "int8": lambda e: "i8" in e or "u8" in e}[precision]
    if executed and executed not in ("unknown", "none") and not expected(executed):
        warnings.append(f"asked for {precision} but the engine executed {executed}")
    return warnings


def unavailable_engines(model: ModelSpec | None = None) -> dict[str, str]:
    """Real engines that cannot run `model` here, each with why (not installed, format)."""
    reasons = {}
    for name in real_engines():
        try:
            check_engine(name, model)
        except Rn50Error as exc:
            reasons[name] = str(exc)
    return reasons


def installed_engines(model: ModelSpec | None = None) -> list[str]:
    """Real engines installed here (in registry order) that can run `model`."""
    names = []
    for name in real_engines():
        try:
            check_engine(name, model)
        except Rn50Error:
            continue
        names.append(name)
    return names


def check_parity(model_config: ModelConfig, backends: Sequence[str] | None = None,
                 environ: Mapping[str, str] | None = None, platform: Platform | None = None,
                 batch_size: int = 2, log: Callable[[str], None] = print,
                 precision: str = "fp32") -> dict:
    """Run the same images through each engine (each in its own pinned child) and compare.

    The first engine is the reference; every engine runs `precision` (fp32 or
    bfloat16; BF16 outputs are held to BF16 rounding, `PARITY_TOLERANCE`).
    Returns per-engine comparisons; an engine that fails is reported with its
    error and counts as disagreeing.
    """
    environ = dict(os.environ if environ is None else environ)
    platform = platform or detect_platform()
    if precision not in PARITY_TOLERANCE:
        raise ConfigError(f"--precision {precision}: parity compares "
                          f"{' or '.join(PARITY_TOLERANCE)} outputs")
    settings = _recommend(platform, UserFlags(batch_size=batch_size, streams=1,
                                              precision=precision), environ)
    model = (file_model(model_config, environ) if model_config.path
             else builtin_model(model_config, environ, log))
    backends = list(backends) if backends else [
        name for name in installed_engines(model) if precision in engine_precisions(name)]
    if len(backends) < 2:
        raise ConfigError(f"parity needs two engines; usable here: {', '.join(backends) or 'none'}")
    for name in backends:  # fail fast, before any engine runs
        check_engine(name, model)
        check_precision(precision, name, platform)
    outputs, engines = {}, {}
    for name in backends:
        job = scenario_job("outputs", name, precision, model, settings, BenchmarkPlan(0, 1))
        launch = plan_launch(settings, platform.numactl, engine_env(name))
        log(f"running {batch_size} images through {name} ...")
        try:
            result = run_child(launch, job, environ, lambda message: None, lambda line: None)
        except Rn50Error as exc:
            engines[name] = {"error": str(exc)}
            continue
        outputs[name] = np.asarray(result["outputs"])
        engines[name] = {"versions": result["engine"]["versions"],
                         "output_shape": list(outputs[name].shape),
                         "input": result["input"],
                         "execution_precision": result["engine"].get("execution_precision")}
    reference = backends[0]
    comparisons = {}
    for name in backends[1:]:
        if reference in outputs and name in outputs:
            comparisons[name] = compare_outputs(outputs[reference], outputs[name],
                                                PARITY_TOLERANCE[precision])
        else:
            comparisons[name] = {"agree": False, "error": engines[name].get("error")
                                 or engines[reference].get("error")}
    return {"schema_version": SCHEMA_VERSION, "kind": "parity", "model": model.to_dict(),
            "batch_size": batch_size,
            "precision": precision, "tolerance": PARITY_TOLERANCE[precision],
            "reference": reference, "engines": engines, "comparisons": comparisons,
            "agree": all(c["agree"] for c in comparisons.values())}


def parse_backends(text: str, model: ModelSpec | None = None) -> list[str]:
    """`all` (every installed engine that can run the model) or a comma-separated list."""
    if text == "all":
        return installed_engines(model)
    names = [name.strip() for name in text.split(",") if name.strip()]
    if not names:
        raise ConfigError("--backend: no engine named")
    return names


def benchmark_engines(config: RunConfig, backends: Sequence[str],
                      environ: Mapping[str, str] | None = None, platform: Platform | None = None,
                      stream=None) -> dict:
    """Benchmark each engine in its own child process with the same settings; one summary.

    Each engine's run keeps its own log and JSON; the summary JSON lists them all.
    An engine that fails is reported and the others still run.
    """
    environ = dict(os.environ if environ is None else environ)
    platform = platform or detect_platform()
    for name in backends:  # fail fast on names, before anything runs
        check_installed(name)
    if config.json_path:
        check_writable_file(config.json_path, "--json")
    runs = {}
    for index, name in enumerate(backends):
        try:
            runs[name] = benchmark(replace(config, backend=name, json_path=None), environ,
                                   platform, stream,
                                   settings_shown_for=backends[0] if index else None)
        except Rn50Error as exc:
            runs[name] = {"status": "error", "error": str(exc), "backend": name}
    started = datetime.now()
    summary = {"schema_version": SCHEMA_VERSION, "kind": "comparison",
               "command_line": list(config.command_line), "started_at": started.isoformat(),
               "backends": list(backends), "runs": runs}
    path = Path(config.output_dir).expanduser() / (
        f"benchmark_resnet50_comparison_{config.precision}_{started:%Y%m%d_%H%M%S_%f}.json")
    write_json(path, summary)
    if config.json_path:
        write_json(config.json_path, summary)
    summary["path"] = str(path)
    return summary
