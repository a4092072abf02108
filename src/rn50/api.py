"""The Python API: the same objects the CLI builds.

    import rn50
    settings = rn50.recommend()                 # the seed's settings for this CPU
    record = rn50.benchmark(rn50.RunConfig())   # runs in a pinned child process
"""

from __future__ import annotations

import os
import platform as pyplatform
import sys
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Callable, Mapping, Sequence

import numpy as np

from . import __version__
from .backends import ENGINES, check_format, check_installed, engine_env
from .config import ModelConfig, RunConfig
from .errors import ConfigError, Rn50Error
from .launch.launcher import LaunchPlan, plan_launch, run_child
from .models import ModelSpec
from .models.resolve import builtin_model, file_model
from .parity import compare as compare_outputs
from .platform import Platform, detect_platform, format_cpulist
from .report import console as text
from .report.files import (SCHEMA_VERSION, Console, allocate_run_paths, check_writable_file,
                           write_json)
from .scenarios.benchmark import BenchmarkPlan
from .settings import Settings, UserFlags
from .settings import recommend as _recommend

RANDOM_WEIGHTS_WARNING = ("the built-in model has random weights: figures measure speed only; "
                          "its predictions are meaningless")


def recommend(platform: Platform | None = None, flags: UserFlags = UserFlags(),
              environ: Mapping[str, str] | None = None) -> Settings:
    """The recommended settings for this machine (or `platform`), with `flags` applied."""
    return _recommend(platform or detect_platform(), flags,
                      os.environ if environ is None else environ)


def check_engine(name: str, model: ModelSpec | None) -> None:
    """Raise unless engine `name` is installed and can run `model` (a user file)."""
    check_installed(name)
    if model is not None and model.source == "file":
        check_format(name, model.format, model.path)


def _job(scenario: str, backend: str, precision: str, model: ModelSpec, settings: Settings,
         plan: BenchmarkPlan) -> dict:
    """What the child process is asked to do (sent as JSON on its stdin)."""
    return {"scenario": scenario, "backend": backend, "precision": precision,
            "model": model.to_dict(), "settings": settings.to_dict(),
            "plan": {"warmup_steps": plan.warmup_steps, "steps": plan.steps,
                     "duration": plan.duration},
            "data_seed": 0}


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


def _compute(record: dict, model: ModelSpec, platform: Platform, settings: Settings) -> dict | None:
    if not model.macs_per_image:
        return None
    rate = record["summary"]["throughput_images_per_sec"]
    gflops = rate * 2 * model.macs_per_image / 1e9
    peak = platform.peak_fp32_gflops(len(settings.cpus.value))
    return {"gflop_per_image": 2 * model.macs_per_image / 1e9, "gflops_per_sec": gflops,
            "peak_gflops": peak, "percent_of_peak": 100 * gflops / peak if peak else None}


def benchmark(config: RunConfig, environ: Mapping[str, str] | None = None,
              platform: Platform | None = None, stream=None,
              header: Callable[[Console], None] | None = None) -> dict:
    """Run the benchmark described by `config`; return the result record (also saved as JSON).

    Raises an Rn50Error subclass for anything the user can fix.
    """
    environ = dict(os.environ if environ is None else environ)
    platform = platform or detect_platform()
    settings = _recommend(platform, config.flags, environ)
    user_model = file_model(config.model, environ) if config.model.path else None
    check_engine(config.backend, user_model)
    json_copy = check_writable_file(config.json_path, "--json") if config.json_path else None
    started = datetime.now()
    paths = allocate_run_paths(config.output_dir, config.precision, started)
    out = Console(paths.log, stream)
    record: dict = {
        "schema_version": SCHEMA_VERSION, "status": "running",
        "tool": {"name": "rn50", "version": __version__, "python": sys.version.split()[0],
                 "os": pyplatform.platform()},
        "command_line": list(config.command_line), "started_at": started.isoformat(),
        "platform": platform.to_dict(), "settings": settings.to_dict(),
        "precision": config.precision, "backend": config.backend,
        "log_path": str(paths.log), "warnings": [],
    }
    try:
        if header:
            header(out)
        out.line(f"rn50 {__version__}: ResNet-50 inference benchmark ({config.backend}, "
                 f"{config.precision.upper()})")
        model = user_model or builtin_model(config.model, environ, out.line)
        record["model"] = model.to_dict()
        out.line(f"Model: {model.name}: {model.path}")
        if model.random_weights:
            out.line(f"NOTE: {RANDOM_WEIGHTS_WARNING}")
        out.line("Settings:")
        for line in text.settings_table(settings):
            out.line(line)
        launch = plan_launch(settings, platform.numactl, engine_env(config.backend))
        plan = BenchmarkPlan(config.warmup_steps, config.steps, config.duration)
        record["launch"] = {"binding": settings.binding.value, **launch.to_dict()}
        record["plan"] = plan.to_dict()
        _print_launch(out, settings, launch, plan)
        result = _run(out, launch, settings, model, config, plan, environ, record)
        record.update(result)
        record["summary"]["compute"] = _compute(record, model, platform, settings)
        record["warnings"] = _warnings(record, settings, platform)
        record["status"] = "ok"
        for line in text.summary_lines(record):
            out.line(line)
        out.line(f"Ran inference with batch size {settings.batch_size.value}")
        out.line(f"Log location: {paths.log}")
        out.line(f"Results JSON: {paths.json}")
    except (Rn50Error, KeyboardInterrupt) as exc:
        record["status"] = "interrupted" if isinstance(exc, KeyboardInterrupt) else "error"
        record["error"] = str(exc) or type(exc).__name__
        out.log_only(f"rn50: error: {record['error']}" if isinstance(exc, Rn50Error)
                     else "rn50: interrupted")
        raise
    finally:
        record["finished_at"] = datetime.now().isoformat()
        out.close()
        write_json(paths.json, record)
        if json_copy:
            write_json(json_copy, record)
    return record


def _print_launch(out: Console, settings: Settings, launch: LaunchPlan, plan: BenchmarkPlan) -> None:
    how = settings.binding.value
    if how == "sched_setaffinity":
        how += f" to CPUs {format_cpulist(settings.cpus.value)}"
    out.line(f"Launch ({how}): " + " ".join(launch.argv))
    out.line("  environment: " + " ".join(f"{k}={v}" for k, v in sorted(launch.env_overrides.items())))
    out.line(f"Steps: {plan.describe()}")


def _run(out: Console, launch: LaunchPlan, settings: Settings, model: ModelSpec,
         config: RunConfig, plan: BenchmarkPlan, environ: dict, record: dict) -> dict:
    job = _job("benchmark", config.backend, config.precision, model, settings, plan)

    def on_message(message: dict) -> None:
        kind = message["type"]
        if kind == "started":
            record["launch"]["observed"] = {k: v for k, v in message.items() if k != "type"}
        elif kind == "loaded":
            t = message["load_timings"]
            out.line(f"Model read in {t['read_s']:.2f} s, compiled in {t['compile_s']:.2f} s; "
                     f"input {message['input']['name']} {message['input']['shape']} "
                     f"{message['input']['layout']}")
            _print_engine(out, message["engine"])
            meta = message["metadata"]
            out.line(f"Model output: {meta['num_classes']} classes"
                     + (" (background at 0: labels are offset by 1)" if meta["background_class"]
                        else "") + f"; preprocessing: {meta['preprocessing']['name']}")
        elif kind == "first_inference":
            out.line(f"First inference: {message['ms']:.1f} ms (not in the figures)")
        elif kind == "phase":
            out.line("[Running warmup steps...]" if message["phase"] == "warmup"
                     else "[Running benchmark steps...]")
        elif kind == "progress":
            out.line(text.progress_line(message))
        elif kind == "traceback" and config.verbose:
            out.line(message["text"].rstrip())

    return run_child(launch, job, environ, on_message, out.line, timeout=config.timeout)


def _print_engine(out: Console, engine: dict) -> None:
    version = engine["versions"].get(engine["name"], "")
    applied = " ".join(f"{k}={v}" for k, v in engine["applied"].items())
    out.line(f"Engine {engine['name']} {version} applied: {applied}")
    out.line(f"Execution precision: {engine['execution_precision']} "
             f"({engine['execution_precision_source']})")


def _warnings(record: dict, settings: Settings, platform: Platform) -> list[str]:
    warnings = list(record.get("warnings", []))
    expected = _expected_affinity(settings, platform)
    observed = record.get("launch", {}).get("observed", {}).get("affinity")
    if expected is not None and observed is not None and sorted(observed) != expected:
        warnings.append(f"the benchmark process ran on CPUs {format_cpulist(observed)}, "
                        f"not the planned {format_cpulist(expected)}")
    executed = record.get("engine", {}).get("execution_precision")
    if executed and record["precision"] == "fp32" and executed not in ("f32", "unknown"):
        warnings.append(f"asked for FP32 but the engine executed {executed}")
    return warnings


def installed_engines(model: ModelSpec | None = None) -> list[str]:
    """Real engines installed here (in registry order) that can run `model`."""
    names = []
    for name in ENGINES:
        try:
            check_engine(name, model)
        except Rn50Error:
            continue
        names.append(name)
    return names


def check_parity(model_config: ModelConfig, backends: Sequence[str] | None = None,
                 environ: Mapping[str, str] | None = None, platform: Platform | None = None,
                 batch_size: int = 2, log: Callable[[str], None] = print) -> dict:
    """Run the same images through each engine (each in its own pinned child) and compare.

    The first engine is the reference. Returns per-engine comparisons; an engine
    that fails is reported with its error and counts as disagreeing.
    """
    environ = dict(os.environ if environ is None else environ)
    platform = platform or detect_platform()
    settings = _recommend(platform, UserFlags(batch_size=batch_size, streams=1), environ)
    model = (file_model(model_config, environ) if model_config.path
             else builtin_model(model_config, environ, log))
    backends = list(backends) if backends else installed_engines(model)
    if len(backends) < 2:
        raise ConfigError(f"parity needs two engines; usable here: {', '.join(backends) or 'none'}")
    for name in backends:  # fail fast, before any engine runs
        check_engine(name, model)
    outputs, engines = {}, {}
    for name in backends:
        job = _job("outputs", name, "fp32", model, settings, BenchmarkPlan(0, 1))
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
                         "input": result["input"]}
    reference = backends[0]
    comparisons = {}
    for name in backends[1:]:
        if reference in outputs and name in outputs:
            comparisons[name] = compare_outputs(outputs[reference], outputs[name])
        else:
            comparisons[name] = {"agree": False, "error": engines[name].get("error")
                                 or engines[reference].get("error")}
    return {"schema_version": SCHEMA_VERSION, "model": model.to_dict(), "batch_size": batch_size,
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
    runs = {}
    for name in backends:
        try:
            runs[name] = benchmark(replace(config, backend=name, json_path=None), environ,
                                   platform, stream)
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
