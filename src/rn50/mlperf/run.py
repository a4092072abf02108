"""`rn50 mlperf`: one MLPerf LoadGen run (or a Server peak search) on pinned engine workers.

plan (the same settings, instances and model as `bench`) -> start and load the
workers -> preprocess the sample library into memory -> warm up -> LoadGen with
the official mlperf.conf, then the user's choices -> read LoadGen's own logs
back into rn50's result. LoadGen's files stay in the run's folder.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import Mapping

from .. import __version__
from ..api import check_memory, prepare_model, start_pool, validate_run
from ..config import RunConfig
from ..errors import ConfigError, DataError, EngineError, Rn50Error
from ..interrupts import Interrupted, signal_of
from ..launch.worker import WorkerPool
from ..platform import detect_platform
from ..report import console as text
from ..report.files import SCENARIO_PREFIXES, Console, allocate_run_paths, write_json
from ..results import SCHEMA_VERSION
from . import logs, qsl
from .rules import ACCURACY_TARGET, MODEL, SCENARIOS
from .sut import PoolSUT, warm_up

MODES = ("performance", "accuracy", "find-peak")
DEFAULT_BATCH = {"SingleStream": 1, "MultiStream": 8, "Server": 1, "Offline": 32}
SMOKE = {"min_duration_ms": 1000, "max_duration_ms": 10_000, "min_query_count": 16}
PROGRESS_S = 5.0
TRACE = True  # LoadGen's per-query trace (mlperf_log_trace.json)
CONFIRM_ATTEMPTS = 5  # find-peak: confirmation runs, each 15% lower than the last
LATENCY_NOT_MET = logs.CHECKS[0][1]  # "performance constraints (latency) not met"
_UNFINISHED: list = []  # an interrupted LoadGen test's SUT and QSL, kept alive until exit


@dataclass(frozen=True)
class MlperfConfig:
    run: RunConfig  # model, engine, precision, settings flags, data, output folder
    scenario: str
    mode: str = "performance"
    target_qps: float | None = None  # Server (and Offline's expected QPS)
    target_latency_ms: float | None = None  # Server; mlperf.conf says 15
    samples_per_query: int | None = None  # MultiStream; mlperf.conf says 8
    duration: float | None = None  # seconds at least; mlperf.conf says 600
    count: int | None = None  # queries at least (LoadGen's min_query_count)
    performance_samples: int | None = None  # images held in memory; mlperf.conf says 1024
    user_conf: str | None = None  # LoadGen's own user.conf format, applied last
    smoke: bool = False

    def __post_init__(self) -> None:
        if self.scenario not in SCENARIOS:
            raise ConfigError(f"--scenario must be one of {', '.join(SCENARIOS)} "
                              f"(got {self.scenario!r})")
        if self.mode not in MODES:
            raise ConfigError(f"--mode must be one of {', '.join(MODES)} (got {self.mode!r})")
        if self.mode == "find-peak" and self.scenario != "Server":
            raise ConfigError("--mode find-peak searches the Server scenario's peak QPS: "
                              "use it with --scenario Server")
        if self.mode == "accuracy" and self.run.data is None:
            raise ConfigError("--mode accuracy needs labelled images: --data-location")
        if self.user_conf and not Path(self.user_conf).is_file():
            raise ConfigError(f"--user-conf {self.user_conf}: no such file")


def loadgen():
    """The mlperf_loadgen module, or one line on how to install it."""
    try:
        import mlperf_loadgen
    except ImportError:
        raise EngineError("rn50 mlperf needs MLPerf LoadGen: pip install 'rn50[mlperf]' "
                          "(the mlcommons-loadgen wheel)") from None
    return mlperf_loadgen


def batch_for(config: MlperfConfig) -> int:
    """The batch each scenario's SUT compiles: SingleStream 1, MultiStream a query's samples,
    Server and Offline --batch-size (default 1 and 32)."""
    asked = config.run.flags.batch_size
    if config.scenario == "SingleStream" and asked not in (None, 1):
        raise ConfigError(f"--batch-size {asked}: SingleStream sends one image per query "
                          "(batch 1 by the rules)")
    if config.scenario == "MultiStream":
        per_query = config.samples_per_query or DEFAULT_BATCH["MultiStream"]
        if asked not in (None, per_query):
            raise ConfigError(f"--batch-size {asked}: MultiStream runs each query's "
                              f"{per_query} samples as one batch (--samples-per-query)")
        return per_query
    return asked or DEFAULT_BATCH[config.scenario]


def loadgen_settings(lg, config: MlperfConfig, expected_qps: float, batch_latency_s: float,
                  count: int, target_qps: float | None = None):
    """LoadGen's settings: mlperf.conf for ResNet-50 first, then rn50's, then --user-conf."""
    settings = lg.TestSettings()
    settings.FromConfig("", MODEL, config.scenario, 0)  # the official rules
    settings.scenario = getattr(lg.TestScenario, config.scenario)
    settings.mode = (lg.TestMode.AccuracyOnly if config.mode == "accuracy"
                     else lg.TestMode.PerformanceOnly)
    settings.offline_expected_qps = config.target_qps or expected_qps
    settings.server_target_qps = target_qps or config.target_qps or 0.5 * expected_qps
    settings.single_stream_expected_latency_ns = int(batch_latency_s * 1e9)
    settings.multi_stream_expected_latency_ns = int(batch_latency_s * 1e9)
    if config.target_latency_ms:
        settings.server_target_latency_ns = int(config.target_latency_ms * 1e6)
    if config.samples_per_query:
        settings.multi_stream_samples_per_query = config.samples_per_query
    settings.performance_sample_count_override = count
    if config.smoke:
        for name, value in SMOKE.items():
            setattr(settings, name, value)
    if config.duration:
        settings.min_duration_ms = int(config.duration * 1000)
        settings.max_duration_ms = max(settings.max_duration_ms, 2 * settings.min_duration_ms)
    if config.count:
        settings.min_query_count = config.count
    if config.user_conf:
        settings.FromConfig(config.user_conf, MODEL, config.scenario, 1)
    return settings


def run_loadgen(lg, sut: PoolSUT, library: qsl.SampleLibrary, settings, folder: Path,
                out: Console) -> None:
    """One LoadGen test, in a thread so Ctrl-C reaches this one; progress every few s."""
    folder.mkdir(parents=True, exist_ok=True)
    log_settings = lg.LogSettings()
    log_settings.log_output.outdir = str(folder)
    log_settings.log_output.copy_summary_to_stdout = False
    log_settings.enable_trace = TRACE
    lg_sut = lg.ConstructSUT(sut.issue_queries, sut.flush_queries)
    lg_qsl = lg.ConstructQSL(library.count, library.count, lambda s: None, lambda s: None)
    done = threading.Event()  # (not Thread.is_alive: wrong after a join Ctrl-C interrupted)

    def test() -> None:
        try:
            lg.StartTestWithLogSettings(lg_sut, lg_qsl, settings, log_settings)
        finally:
            done.set()

    start = time.monotonic()
    threading.Thread(target=test, name="loadgen", daemon=True).start()
    try:
        while not done.wait(PROGRESS_S):
            out.line(f"LoadGen: {sut.completed} samples answered, "
                     f"{time.monotonic() - start:.0f} s")
    except KeyboardInterrupt:
        sut.stop()
        done.wait(2.0)
        raise
    finally:
        if not done.is_set():  # LoadGen still holds them: never free them under it
            _UNFINISHED.append((lg_sut, lg_qsl, sut, done))
        else:  # freed here, not by the interpreter at exit (which crashes LoadGen)
            lg.DestroyQSL(lg_qsl)
            lg.DestroySUT(lg_sut)
    if sut.failure:
        raise EngineError(f"the engine failed during the LoadGen run: {sut.failure}")


def loadgen_thread_alive() -> bool:
    """True while an interrupted LoadGen test still runs (it has no abort): the command
    line then ends the process at once after saving, rather than wait up to 600 s."""
    return any(not done.is_set() for *_, done in _UNFINISHED)


def run_mlperf(config: MlperfConfig, environ: Mapping[str, str] | None = None,
               stream=None) -> dict:
    """Plan, start, run LoadGen, read its logs back; the result record (saved as JSON)."""
    lg = loadgen()
    environ = dict(os.environ if environ is None else environ)
    run = replace(config.run, scenario="mlperf", flags=replace(
        config.run.flags, batch_size=batch_for(config), scenario_batch=None))
    platform = detect_platform()
    processes, user_model = validate_run(run, environ, platform)
    memory_note = check_memory(run, processes, user_model)
    started = datetime.now()
    paths = allocate_run_paths(run.output_dir, run.precision, started,
                               f"{SCENARIO_PREFIXES['mlperf']}_{config.scenario}_{config.mode}")
    folder = paths.json.with_suffix("")
    out = Console(paths.log, stream)
    record = _new_record(config, run, processes, platform, started, folder)
    pool = None
    try:
        if memory_note:
            out.line(f"NOTE: {memory_note}")
        model = prepare_model(run, record, out, environ, user_model)
        out.line("Settings:")
        for line in text.settings_table(processes.base):
            out.line(line)
        pool = start_pool(processes, platform, model, run, environ, out.log_only)
        _measure(lg, config, run, pool, record, folder, out)
        record["status"] = "ok"
        for line in result_lines(record, paths.json):
            out.line(line)
    except KeyboardInterrupt as exc:
        signum = signal_of(exc)
        record.update(status="interrupted", interrupted_by=signal.Signals(signum).name,
                      error=f"interrupted: LoadGen's files so far are kept in {folder}")
        raise Interrupted(signum, f"LoadGen's files so far are kept in {folder}; "
                          f"saved in {paths.json}") from None
    except Rn50Error as exc:
        record.update(status="error", error=str(exc))
        raise
    finally:
        if pool is not None and not loadgen_thread_alive():
            pool.close()
        record["finished_at"] = datetime.now().isoformat()
        write_json(paths.json, record)
        out.close()
    return record


def _new_record(config: MlperfConfig, run: RunConfig, processes, platform, started: datetime,
                folder: Path) -> dict:
    return {"schema_version": SCHEMA_VERSION, "kind": "mlperf", "status": "running",
            "tool": {"name": "rn50", "version": __version__},
            "scenario": config.scenario, "mode": config.mode, "smoke": config.smoke,
            "backend": run.backend, "precision": run.precision,
            "command_line": list(run.command_line), "started_at": started.isoformat(),
            "platform": platform.to_dict(), "settings": processes.base.to_dict(),
            "instances": len(processes.processes), "loadgen_dir": str(folder),
            "warnings": []}


def _measure(lg, config: MlperfConfig, run: RunConfig, pool: WorkerPool, record: dict,
             folder: Path, out: Console) -> None:
    """Sample library, warm-up, then the LoadGen test (or the peak search)."""
    loaded = pool.workers[0].loaded
    library = _library(config, run, loaded, out)
    record["data"] = {"description": library.description, "synthetic": library.synthetic}
    batch = loaded["input"]["shape"][0]
    per_second = warm_up(pool, library, batch)
    out.line(f"Warm-up: {per_second * batch:.1f} images/s at batch {batch} "
             f"({len(pool.workers)} worker(s))")
    offset = loaded["metadata"]["class_offset"]
    sut = PoolSUT(lg, pool, library, batch, offset,
                  inline=config.scenario in ("SingleStream", "MultiStream"))
    try:
        if config.mode == "find-peak":
            record.update(find_peak(lg, config, sut, library, per_second * batch, folder, out))
            return
        settings = loadgen_settings(lg, config, per_second * batch, 1 / per_second, library.count)
        run_loadgen(lg, sut, library, settings, folder, out)
    finally:
        sut.close()
    record.update(judged(lg, logs.result_from_logs(folder, config.scenario), config.scenario))
    if config.mode == "accuracy":
        record["accuracy"] = accuracy(folder / "mlperf_log_accuracy.json", library)


def _library(config: MlperfConfig, run: RunConfig, loaded: dict, out: Console
             ) -> qsl.SampleLibrary:
    shape = tuple(loaded["input"]["shape"][1:])
    if run.data is None:
        count = config.performance_samples or (64 if config.smoke else 1024)
        return qsl.synthetic(count, shape)
    data = run.data.to_job(os.cpu_count() or 1)
    if config.performance_samples:
        data["max_images"] = min(data.get("max_images") or config.performance_samples,
                                 config.performance_samples)
    size = loaded["input"]["shape"][2 if loaded["input"]["layout"] == "NCHW" else 1]
    library = qsl.from_data(data, loaded["metadata"], shape, loaded["input"]["layout"], size,
                            out.line)
    if config.mode == "accuracy" and None in library.labels:
        raise DataError(f"--mode accuracy: {library.description} are not all labelled")
    return library


def accuracy(path: Path, library: qsl.SampleLibrary) -> dict:
    """Top-1 from LoadGen's accuracy log against the library's labels."""
    predicted = logs.accuracy_predictions(path)
    scored = [(index, label) for index, label in predicted.items()
              if library.labels[index] is not None]
    if not scored:
        raise DataError("the LoadGen accuracy log holds no labelled sample")
    correct = sum(label == library.labels[index] for index, label in scored)
    top1 = correct / len(scored)
    return {"images": len(scored), "top1": top1, "top1_correct": correct,
            "target_top1": ACCURACY_TARGET / 100, "meets_target": top1 >= ACCURACY_TARGET / 100}


def find_peak(lg, config: MlperfConfig, sut: PoolSUT, library: qsl.SampleLibrary,
              capacity: float, folder: Path, out: Console) -> dict:
    """The highest Server QPS whose p99 stays within the latency target: short runs
    (doubling, then bisecting between the last that met it and the first that did not),
    then confirmation runs of the asked length, 15% lower each time the tail is over."""
    low, steps = _search(lg, config, sut, library, capacity, folder, out)
    if low == 0:
        last = steps[-1]
        found = judged(lg, logs.result_from_logs(Path(last["folder"]), "Server"), "Server")
        return dict(found, peak_qps=0.0, search=steps, reasons=found["reasons"] + [
            f"no QPS tried met the latency target (lowest {last['qps']:.1f} QPS: p99 "
            f"{last['p99_ms'] or 0:.1f} ms): one batch takes about as long as the target"])
    confirmed = False
    for attempt in range(CONFIRM_ATTEMPTS):
        confirm_dir = folder if attempt == 0 else folder / f"confirm-{attempt + 1}"
        run_loadgen(lg, sut, library, loadgen_settings(lg, config, capacity, 1 / capacity,
                                                    library.count, target_qps=low),
                    confirm_dir, out)
        found = judged(lg, logs.result_from_logs(confirm_dir, "Server"), "Server")
        confirmed = LATENCY_NOT_MET not in found["reasons"]
        if confirmed:
            break
        out.line(f"Peak search: the confirmation run at {low:.1f} QPS was over the target "
                 f"(p99 {found['latency_ms'].get('99.00', 0):.2f} ms); trying {0.85 * low:.1f}")
        low *= 0.85
    return dict(found, peak_qps=found["effective"].get("target_qps", low), search=steps,
                peak_confirmed=confirmed, loadgen_dir=str(confirm_dir))


def _search(lg, config: MlperfConfig, sut: PoolSUT, library: qsl.SampleLibrary,
            capacity: float, folder: Path, out: Console) -> tuple[float, list[dict]]:
    """Short runs: (the highest QPS that met the target, 0 if none; every step)."""
    seconds = 2.0 if config.smoke else min(10.0, max(2.0, (config.duration or 600) / 5))
    short = replace(config, duration=seconds, count=64, smoke=False, user_conf=None)
    low, high, qps, steps = 0.0, None, max(1.0, 0.25 * capacity), []
    for step in range(10):
        step_dir = folder / f"search-{step + 1:02d}-{qps:.1f}qps"
        run_loadgen(lg, sut, library, loadgen_settings(lg, short, capacity, 1 / capacity,
                                                    library.count, target_qps=qps),
                    step_dir, out)
        found = logs.result_from_logs(step_dir, "Server")
        met = LATENCY_NOT_MET not in found["reasons"]
        steps.append({"qps": qps, "latency_met": met, "folder": str(step_dir),
                      "p99_ms": found["latency_ms"].get("99.00")})
        out.line(f"Peak search: {qps:.1f} QPS -> p99 {steps[-1]['p99_ms'] or 0:.2f} ms "
                 f"({'within' if met else 'over'} the target)")
        low, high = (qps, high) if met else (low, qps)
        if high is None and qps >= 2 * capacity:  # (more than the warm-up rate: enough)
            break
        if high is not None and (high - low <= max(0.5, 0.05 * high) or qps < 0.5):
            break
        qps = min(2 * qps, 2 * capacity) if high is None else (low + high) / 2
    return low, steps


def result_lines(record: dict, json_path: Path) -> list[str]:
    """The console summary: validity, the scenario's figure, latencies, why INVALID."""
    metric, latency = record.get("metric") or {}, record.get("latency_ms") or {}
    lines = [f"MLPerf ResNet-50 {record['scenario']} ({record['mode']}): "
             f"{record.get('validity', '?')}"
             + (f" (LoadGen, by the settings it was given: {record['loadgen_validity']})"
                if record.get("loadgen_validity") not in (None, record.get("validity")) else "")
             + (" [--smoke]" if record.get("smoke") else "")]
    if metric.get("value") is not None:
        lines.append(f"  {metric['name']}: {metric['value']:.2f} {metric['unit']}"
                     + (f" (peak target QPS: {record['peak_qps']:.1f}, "
                        + ("p99 within the target at the confirmation run)"
                           if record.get("peak_confirmed") else
                           "not confirmed: the p99 stayed over the target)")
                        if "peak_qps" in record else ""))
    if latency:
        lines.append("  latency ms: " + "  ".join(
            f"p{float(k):g} {v:.2f}" for k, v in latency.items() if k in ("50.00", "90.00",
                                                                         "99.00"))
            + f"  ({record.get('queries')} queries)")
    if record.get("reasons"):
        lines.append("  INVALID because: " + "; ".join(record["reasons"]))
    if "accuracy" in record:
        acc = record["accuracy"]
        lines.append(f"  accuracy: top-1 {acc['top1']:.2%} over {acc['images']} images "
                     f"(target {acc['target_top1']:.3%}: "
                     f"{'met' if acc['meets_target'] else 'not met'})"
                     + ("; random weights: meaningless" if (record.get("model") or {})
                        .get("random_weights") else ""))
    lines.append(f"LoadGen files: {record['loadgen_dir']}")
    lines.append(f"Results JSON: {json_path}")
    return lines


def judged(lg, result: dict, scenario: str) -> dict:
    """LoadGen judges a run by the settings it was given; rn50 also holds it to the
    official ones: a run shorter or looser than mlperf.conf is INVALID, saying why."""
    official = lg.TestSettings()
    official.FromConfig("", MODEL, scenario, 0)
    ran = result["effective"]
    checks = [("min_duration_ms", official.min_duration_ms, "minimum duration (ms)"),
              ("min_sample_count" if scenario == "Offline" else "min_query_count",
               official.min_query_count, "minimum " + ("samples" if scenario == "Offline"
                                                      else "queries")),
              ("performance_sample_count", official.performance_sample_count_override,
               "performance samples")]
    short = [f"{what} {ran.get(key)} is below the rules' {rule}" for key, rule, what in checks
             if ran.get(key) is not None and ran[key] < rule]
    target = official.server_target_latency_ns
    if scenario == "Server" and ran.get("target_latency_ns", 0) > target:
        short.append(f"latency target {ran['target_latency_ns'] / 1e6:g} ms is looser than the "
                     f"rules' {target / 1e6:g} ms")
    if not short:
        return dict(result, loadgen_validity=result["validity"])
    return dict(result, loadgen_validity=result["validity"], validity="INVALID",
                reasons=result["reasons"] + [f"not the rules: {s}" for s in short])


def effective_rules(lg) -> dict[str, dict]:
    """What LoadGen's embedded mlperf.conf sets for ResNet-50, per scenario."""
    shown = {"min_duration_ms": "min duration ms", "min_query_count": "min queries",
             "performance_sample_count_override": "performance samples"}
    extra = {"SingleStream": {"single_stream_target_latency_percentile": "percentile"},
             "MultiStream": {"multi_stream_samples_per_query": "samples per query",
                             "multi_stream_target_latency_percentile": "percentile"},
             "Server": {"server_target_latency_ns": "latency target ns",
                        "server_target_latency_percentile": "percentile"},
             "Offline": {}}
    found = {}
    for name in SCENARIOS:
        settings = lg.TestSettings()
        settings.FromConfig("", MODEL, name, 0)
        found[name] = {label: getattr(settings, attr)
                       for attr, label in {**shown, **extra[name]}.items()}
    return found
