"""What a report shows, read from rn50 result files: one row per measured configuration,
plus the tune, loadtest, MLPerf and profile results as they are (pure data, no plotting).

Folders are searched for `*.json`; a file that is not an rn50 result is listed as skipped
with the reason. The same run reached twice (a tune's point and the point file itself) is
one row.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ..errors import ConfigError, Rn50Error
from ..results import (ComparisonResult, LoadtestResult, MlperfResult, ProfileResult,
                       RunResult, TuneResult, load_result)

MAX_FILES = 5000


@dataclass
class Row:
    """One measured configuration (a bench run, a tune point, an engine of a comparison)."""

    label: str
    backend: str
    precision: str
    batch: int | None
    streams: int | None
    instances: int
    threads: int | None
    throughput: float
    p50_ms: float
    p99_ms: float
    command: str
    source: str
    samples_ms: list = field(default_factory=list)  # raw step latencies, all instances
    warnings: list = field(default_factory=list)
    settings: dict = field(default_factory=dict)


@dataclass
class Collection:
    rows: list = field(default_factory=list)
    tunes: list = field(default_factory=list)  # (path, TuneResult)
    loadtests: list = field(default_factory=list)
    mlperf: list = field(default_factory=list)
    profiles: list = field(default_factory=list)
    platform: dict = field(default_factory=dict)
    skipped: dict = field(default_factory=dict)  # path -> why
    seen: set = field(default_factory=set)

    @property
    def latency_target_ms(self) -> float | None:
        targets = [t.tune.get("latency_target_ms") for _, t in self.tunes]
        return next((t for t in targets if t), None)


def result_files(paths: list[str]) -> list[Path]:
    files: list[Path] = []
    for text in paths:
        path = Path(text).expanduser()
        if path.is_dir():
            files += sorted(p for p in path.rglob("*.json") if not p.name.endswith(".rn50.json")
                            and not p.name.startswith("mlperf_log_"))  # LoadGen's own files
        elif path.is_file():
            files.append(path)
        else:
            raise ConfigError(f"{text}: no such file or folder (give rn50 result files or "
                              "folders holding them)")
    if len(files) > MAX_FILES:
        raise ConfigError(f"{len(files)} result files: more than {MAX_FILES}; give fewer")
    return files


def collect(paths: list[str]) -> Collection:
    found = Collection()
    loaded = []
    for path in result_files(paths):
        try:
            loaded.append((path, load_result(path)))
        except Rn50Error as exc:
            found.skipped[str(path)] = str(exc).removeprefix(f"{path}: ")
    # a tune first: its points' own files are then known as its points, not new rows
    for path, result in sorted(loaded, key=lambda pr: not isinstance(pr[1], TuneResult)):
        add(found, result, path)
    if not (found.rows or found.loadtests or found.mlperf or found.profiles):
        raise ConfigError(f"{', '.join(paths)}: no rn50 results with figures to report"
                          + (f" ({len(found.skipped)} file(s) skipped)" if found.skipped else ""))
    return found


def add(found: Collection, result, path: Path) -> None:
    if isinstance(result, RunResult):
        add_run(found, result, path)
    elif isinstance(result, ComparisonResult):
        for run in result.runs.values():
            if isinstance(run, RunResult):
                add_run(found, run, path)
    elif isinstance(result, TuneResult):
        found.tunes.append((str(path), result))
        found.platform = found.platform or result.platform
        for point in result.points:
            add_tune_point(found, point, path.parent)
    elif isinstance(result, LoadtestResult):
        found.loadtests.append((str(path), result))
    elif isinstance(result, MlperfResult):
        found.mlperf.append((str(path), result))
    elif isinstance(result, ProfileResult):
        found.profiles.append((str(path), result))
        found.platform = found.platform or result.platform


def add_tune_point(found: Collection, point: dict, folder: Path) -> None:
    """A tune point: its figures as tune reports them (the mean of its measurements), the
    raw samples of every measurement, the settings of the first."""
    runs = []
    for trial in point.get("trials") or [{"json": point.get("json")}]:
        path = folder / trial["json"] if trial.get("json") else None
        if path and path.is_file():
            run = load_result(path)
            if isinstance(run, RunResult) and run.summary is not None:
                runs.append((run, path))
                found.seen.add(run_key(run, path))
    if not runs or point.get("error"):
        return
    row = row_of(*runs[0])
    row.throughput, row.p50_ms, row.p99_ms = point["throughput"], point["p50_ms"], \
        point["p99_ms"]
    for run, path in runs[1:]:
        row.samples_ms += row_of(run, path).samples_ms
    found.platform = found.platform or runs[0][0].platform
    found.rows.append(row)


def run_key(run: RunResult, path: Path) -> tuple:
    return str(Path(run.extra.get("log_path") or path).resolve()), run.backend


def add_run(found: Collection, run: RunResult, path: Path) -> None:
    key = run_key(run, path)
    if key in found.seen or run.kind != "benchmark" or run.summary is None:
        if run.summary is None and key not in found.seen:
            found.skipped[str(path)] = f"{run.backend}: {run.status}, no figures"
        return
    found.seen.add(key)
    found.platform = found.platform or run.platform
    found.rows.append(row_of(run, path))


def row_of(run: RunResult, path: Path) -> Row:
    instances = len(run.instances) or 1
    streams = run.setting("streams")
    batch = run.extra.get("batch_size") or run.setting("batch_size")
    samples = list(run.samples.get("step_ms") or [])
    for inst in run.instances:
        samples += inst.extra.get("samples", {}).get("step_ms") or []
    latency = run.summary.latency_ms
    label = (f"{run.backend} {run.precision} b{batch}"
             + (f" s{streams}" if isinstance(streams, int) else "")
             + (f" x{instances}" if instances > 1 else ""))
    return Row(label, run.backend, run.precision, batch,
               streams if isinstance(streams, int) else None, instances,
               run.setting("intra_op_threads"), run.summary.throughput_images_per_sec,
               latency.p50, latency.p99, " ".join(run.command_line) or "", str(path),
               samples, list(run.warnings), run.settings)
