"""`rn50 profile`: where the time of one step goes, layer by layer, against the CPU's peak.

One pinned engine worker (one stream, synchronous steps) runs the model with the engine's
own profiler on; each layer gets its time per step, FLOPs (from its shapes), attained
GFLOP/s, % of the peak of the precision that ran, arithmetic intensity (FLOPs per byte
moved, at least) and a verdict against the roofline (memory- or compute-bound).
"""

from __future__ import annotations

import os
import statistics
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from . import api
from .backends import capabilities, engine_env
from .config import ModelConfig, RunConfig
from .errors import ConfigError
from .launch.launcher import run_child
from .launch.plan import plan_launch
from .measure.bandwidth import copy_bandwidth
from .platform import Platform, detect_platform
from .report.files import SCENARIO_PREFIXES, Console, allocate_run_paths, write_json
from .scenarios.benchmark import BenchmarkPlan
from .settings import UserFlags

RECONCILE_WITHIN = 0.05
NO_FLOP_REASONS = {"Reorder": "layout reorder: moves data, no FLOPs",
                   "ReorderInput": "layout reorder into NCHWc blocks: moves data, no FLOPs",
                   "ReorderOutput": "layout reorder out of NCHWc blocks: moves data, no FLOPs",
                   "Transpose": "layout transpose: moves data, no FLOPs"}


@dataclass(frozen=True)
class ProfileConfig:
    backend: str = "openvino"
    precision: str = "fp32"
    batch_size: int = 1
    steps: int = 20
    warmup_steps: int = 5
    model: ModelConfig = field(default_factory=ModelConfig)
    output_dir: str = "rn50_logs"
    json_path: str | None = None
    top: int = 15  # layers shown on the console (all in the JSON)
    command_line: tuple[str, ...] = ()

    def run_config(self) -> RunConfig:
        return RunConfig(flags=UserFlags(batch_size=self.batch_size, streams=1),
                         model=self.model, backend=self.backend, precision=self.precision,
                         output_dir=self.output_dir, scenario="profile",
                         command_line=self.command_line)


def profile(config: ProfileConfig, platform: Platform | None = None) -> dict:
    """Profile; print the table; write and return the profile record (ProfileResult)."""
    if not capabilities(config.backend).profiling:
        able = [n for n in ("openvino", "onnxruntime") if capabilities(n).profiling]
        raise ConfigError(f"--backend {config.backend}: rn50 reads no per-layer counters from "
                          f"it; use --backend {' or '.join(able)}")
    if config.steps < 1 or config.warmup_steps < 0:
        raise ConfigError("--steps must be at least 1 and --warmup-steps 0 or more")
    environ, platform = dict(os.environ), platform or detect_platform()
    run = config.run_config()
    processes, user_model = api.validate_run(run, environ, platform)
    settings = processes.base
    started = datetime.now()
    paths = allocate_run_paths(config.output_dir, config.precision, started,
                               SCENARIO_PREFIXES["profile"])
    out = Console(paths.log)
    record: dict = {}
    try:
        model = api.prepare_model(run, record, out, environ, user_model)
        job = dict(api.scenario_job("profile", config.backend, config.precision, model,
                                    settings, BenchmarkPlan(config.warmup_steps, config.steps)),
                   profiling=True)
        launch = plan_launch(settings, platform.numactl, engine_env(config.backend))
        out.line(f"Profiling {config.steps} steps of batch {config.batch_size} after "
                 f"{config.warmup_steps} warm-up steps, one stream, "
                 f"{settings.intra_threads.value} threads on CPUs {settings.cpus.value}")
        result = run_child(launch, job, environ, lambda m: _progress(out, m), out.log_only)
        cores = len(settings.cpus.value)
        bandwidth = copy_bandwidth(threads=cores)
        profiled = analyse(result["profile"], platform, config.precision, cores, bandwidth)
        record = {"schema_version": 2, "kind": "profile", "status": "ok",
                  "backend": config.backend, "precision": config.precision,
                  "batch_size": config.batch_size, **profiled, "model": model.to_dict(),
                  "engine": result.get("engine"), "settings": settings.to_dict(),
                  "platform": platform.to_dict(), "command_line": list(config.command_line),
                  "started_at": started.isoformat(), "log_path": str(paths.log)}
        for line in table_lines(record, config.top):
            out.line(line)
        out.line(f"Profile JSON: {paths.json}")
    finally:
        out.close()
    write_json(paths.json, record)
    if config.json_path:
        write_json(Path(config.json_path), record)
    return record


def _progress(out: Console, message: dict) -> None:
    if message.get("type") == "profile_progress":
        out.line(f"profiled {message['steps']}/{message['of']} steps")


def analyse(raw: dict, platform: Platform, precision: str, cores: int, bandwidth: dict) -> dict:
    """Per-layer figures, per-type sums and the reconciliation with the measured step."""
    peak = platform.peak_gops(precision, cores)
    per_cycle, basis = platform.ops_per_cycle(precision)
    ridge = peak / bandwidth["gb_per_sec"] if peak else None  # FLOP per byte
    step_ms = statistics.mean(raw["step_ms"])
    layers = [_layer(layer, peak, ridge, step_ms) for layer in raw["layers"]]
    layers.sort(key=lambda layer: -layer["ms"])
    total = sum(layer["ms"] for layer in layers)
    gap = reconcile(raw["step_ms"], raw.get("step_layer_ms"), total)
    return {"layers": layers, "by_type": by_type(layers, step_ms), "step_ms": step_ms,
            "layer_sum_ms": total, "counter": raw.get("counter"),
            "step_ms_samples": raw["step_ms"],
            "step_layer_ms_samples": raw.get("step_layer_ms"), "peak_gflops": peak,
            "peak_basis": f"{basis}, {per_cycle} ops/cycle/core x {cores} cores",
            "bandwidth": bandwidth, "ridge_flop_per_byte": ridge,
            "reconciliation": {"layer_sum_ms": total, "step_ms": step_ms,
                               "unaccounted_percent": 100 * gap,
                               "within": abs(gap) <= RECONCILE_WITHIN,
                               "limit_percent": 100 * RECONCILE_WITHIN,
                               **_engine_step(raw, total, step_ms)}}


def reconcile(step_ms: list[float], layer_ms: list[float] | None, total: float) -> float:
    """The share of a step outside its layers: the median over steps of each step's own gap
    (a step the OS interrupted moves its wall time and its counters differently: one such
    step must not decide); from the means when the engine gives no per-step sums."""
    if layer_ms and len(layer_ms) == len(step_ms):
        return statistics.median((s - layer) / s for s, layer in zip(step_ms, layer_ms) if s)
    mean = statistics.mean(step_ms)
    return (mean - total) / mean if mean else 0.0


def _engine_step(raw: dict, total: float, step_ms: float) -> dict:
    """Where the engine times its own run (ONNX Runtime's model_run): the gap split into
    between the layers (the engine's scheduling) and outside the engine (the call itself,
    input and output handling)."""
    if not raw.get("engine_step_ms"):
        return {}
    engine = statistics.mean(raw["engine_step_ms"])
    return {"engine_step_ms": engine,
            "between_layers_percent": 100 * (engine - total) / step_ms,
            "outside_engine_percent": 100 * (step_ms - engine) / step_ms}


def _layer(layer: dict, peak: float | None, ridge: float | None, step_ms: float) -> dict:
    flops, seconds = layer.get("flops") or 0, layer["ms"] / 1000
    attained = flops / seconds / 1e9 if flops and seconds > 0 else None
    intensity = flops / layer["bytes"] if flops and layer.get("bytes") else None
    return dict(layer, gflop=flops / 1e9, gflops_per_sec=attained,
                percent_of_peak=100 * attained / peak if attained and peak else None,
                intensity=intensity, percent_of_step=100 * layer["ms"] / step_ms,
                why=verdict(layer, attained, peak, intensity, ridge))


def verdict(layer: dict, attained: float | None, peak: float | None,
            intensity: float | None, ridge: float | None) -> str:
    """Why a layer runs where it does on the roofline, in a few words."""
    if not layer.get("flops"):
        return NO_FLOP_REASONS.get(layer["type"], "no multiply-adds: memory-bound "
                                   "(pooling, element-wise, copies)")
    if intensity is not None and ridge and intensity < ridge:
        return (f"memory-bound: {intensity:.0f} FLOP/byte is below the ridge "
                f"({ridge:.0f} FLOP/byte)")
    share = attained / peak if attained and peak else 0
    if share >= 1.0:
        return "at or above the estimated peak (turbo above the reported clock)"
    if share >= 0.6:
        return "compute-bound, near peak"
    return ("compute-bound below peak: kernel efficiency (few channels, a small spatial "
            "size or padding leave vector lanes idle)")


def by_type(layers: list[dict], step_ms: float) -> list[dict]:
    groups: dict[str, dict] = {}
    for layer in layers:
        g = groups.setdefault(layer["type"], {"type": layer["type"], "layers": 0, "ms": 0.0,
                                              "flops": 0})
        g["layers"] += 1
        g["ms"] += layer["ms"]
        g["flops"] += layer.get("flops") or 0
    for g in groups.values():
        g["percent_of_step"] = 100 * g["ms"] / step_ms
        g["gflops_per_sec"] = g["flops"] / (g["ms"] / 1000) / 1e9 if g["ms"] else None
    return sorted(groups.values(), key=lambda g: -g["ms"])


def table_lines(record: dict, top: int) -> list[str]:
    rec = record["reconciliation"]
    lines = [f"Per-layer profile ({record['counter']}), {record['backend']} "
             f"{record['precision'].upper()}, batch {record['batch_size']}: step "
             f"{record['step_ms']:.2f} ms, layers sum {record['layer_sum_ms']:.2f} ms "
             f"(median step: {rec['unaccounted_percent']:+.1f}% outside layers: "
             f"{'within' if rec['within'] else 'NOT within'} {rec['limit_percent']:.0f}%"
             + (f": {rec['between_layers_percent']:.1f}% between layers, "
                f"{rec['outside_engine_percent']:.1f}% outside the engine's run"
                if "engine_step_ms" in rec else "") + ")",
             f"Peak {record['peak_gflops'] or 0:.0f} GFLOP/s (estimated: {record['peak_basis']} "
             f"at {record['platform'].get('max_mhz') or 0:.0f} MHz, the clock the OS reports; "
             "a turbo clock above it shows as over 100%); "
             f"memory {record['bandwidth']['gb_per_sec']:.1f} GB/s "
             f"({record['bandwidth']['method']}); ridge "
             f"{record['ridge_flop_per_byte'] or 0:.0f} FLOP/byte",
             f"{'layer':<42} {'type':<14} {'ms':>7} {'%step':>6} {'GFLOP':>7} "
             f"{'GFLOP/s':>8} {'%peak':>6}  why"]
    for layer in record["layers"][:top]:
        lines.append(f"{layer['name'][:42]:<42} {layer['type'][:14]:<14} {layer['ms']:>7.3f} "
                     f"{layer['percent_of_step']:>6.1f} {layer['gflop']:>7.3f} "
                     f"{_num(layer['gflops_per_sec']):>8} {_num(layer['percent_of_peak']):>6}"
                     f"  {layer['why']}")
    lines.append(f"By layer type ({len(record['layers'])} layers):")
    for g in record["by_type"]:
        lines.append(f"  {g['type']:<22} {g['layers']:>4} layers {g['ms']:>8.3f} ms "
                     f"{g['percent_of_step']:>5.1f}%  {_num(g['gflops_per_sec']):>8} GFLOP/s")
    return lines


def _num(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"
