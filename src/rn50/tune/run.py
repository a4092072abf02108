"""`rn50 tune`: the staged search run for real, each point an `rn50 bench` measurement.

Points are checkpointed to `DIR/points.jsonl` as they finish (one JSON line each, written
and flushed before the next starts), so `--resume` replays them without measuring again;
every point's own log and JSON (raw samples) are kept under `DIR/points/`.
"""

from __future__ import annotations

import json
import os
import shlex
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path

from .. import api
from ..config import PRECISIONS, ModelConfig, RunConfig
from ..errors import ConfigError, Rn50Error
from ..measure.progress import PROGRESS_SECONDS, format_eta
from ..models.resolve import file_model
from ..platform import Platform, detect_platform
from ..precision import check_precision
from ..backends import capabilities
from ..report.files import write_json
from ..settings import UserFlags
from .recommend import GOALS, choose, commands, front, snippet
from .search import Exhausted, Measurement, Point, Search, Space, estimate_points

CHECKPOINT = "points.jsonl"


@dataclass(frozen=True)
class TuneConfig:
    backends: tuple[str, ...] | None = None  # None: every installed engine
    precisions: tuple[str, ...] = PRECISIONS
    latency_target_ms: float | None = None
    budget_s: float = 600.0
    output_dir: str = "rn50_tune"
    resume: bool = False
    max_batch: int = 128
    point_seconds: float = 3.0  # timed seconds per point (at least 8 steps)
    model: ModelConfig = field(default_factory=ModelConfig)
    command_line: tuple[str, ...] = ()

    def identity(self) -> dict:
        """What a resumed run must share with the one it continues."""
        return {"model": self.model.path, "point_seconds": self.point_seconds,
                "max_batch": self.max_batch}


def combos(config: TuneConfig, platform: Platform, out) -> tuple[list, dict]:
    """(engine, precision) pairs to search, and those skipped with the reason."""
    model = file_model(config.model, os.environ) if config.model.path else None
    names = list(config.backends or api.installed_engines(model))
    if not names:
        raise ConfigError("tune: no engine that can run this model is installed")
    pairs, skipped = [], {}
    for backend in names:
        api.check_engine(backend, model)
        for precision in config.precisions:
            reason = _cannot(backend, precision, platform)
            if reason:
                skipped[f"{backend} {precision}"] = reason
                out(f"skip {backend} {precision}: {reason}")
            else:
                pairs.append((backend, precision))
    return pairs, skipped


def _cannot(backend: str, precision: str, platform: Platform) -> str | None:
    try:
        check_precision(precision, backend, platform)
    except ConfigError as exc:
        return str(exc).removeprefix(f"--precision {precision}: ")
    quantizer = capabilities(backend).quantizer
    if precision == "int8" and quantizer:
        import importlib.util

        if importlib.util.find_spec(quantizer.module) is None:
            return f"INT8 needs {quantizer.module}: pip install 'rn50[{quantizer.extra}]'"
    return None


class Checkpoint:
    """points.jsonl: a header line (what the run is), then one line per measured point."""

    def __init__(self, path: Path, identity: dict, resume: bool) -> None:
        self.path, self.done = path, {}
        if path.exists() and not resume:
            raise ConfigError(f"{path} exists: add --resume to continue that tune, or give "
                              "another --output-dir")
        if path.exists():
            self._read(identity)
        else:
            self._append({"tune": identity})

    def _read(self, identity: dict) -> None:
        lines = [json.loads(line) for line in self.path.read_text().splitlines() if line]
        if not lines or lines[0].get("tune") != identity:
            raise ConfigError(f"{self.path}: written by a tune with other settings "
                              f"({lines[0].get('tune') if lines else 'empty'}); give another "
                              "--output-dir")
        for row in lines[1:]:
            point = Point(**row["point"])
            self.done[point.key] = Measurement(point, row["throughput"], row["p99_ms"],
                                               row["p50_ms"], row.get("error"),
                                               row.get("extra") or {})

    def add(self, m: Measurement) -> None:
        self.done[m.point.key] = m
        self._append({"point": asdict(m.point), "throughput": m.throughput,
                      "p99_ms": m.p99_ms, "p50_ms": m.p50_ms, "error": m.error,
                      "extra": m.extra})

    def _append(self, row: dict) -> None:
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(json.dumps(row) + "\n")
            f.flush()
            os.fsync(f.fileno())


class Progress:
    """A file-like stream for a point's bench: everything to the tune log; the latest line
    to the terminal, prefixed, at most every few seconds, so a long point (or an INT8
    model being quantized) still says something without flooding."""

    def __init__(self, log, prefix: str = "", every: float = PROGRESS_SECONDS) -> None:
        self.log, self.prefix, self._buffer = log, prefix, ""
        self.every, self.last = every, time.monotonic()

    def write(self, text: str) -> int:
        self._buffer += text
        *lines, self._buffer = self._buffer.split("\n")
        for line in lines:
            self.log.write(line + "\n")
            if line.strip() and time.monotonic() - self.last >= self.every:
                self.last = time.monotonic()
                print(f"    {self.prefix}{line}", flush=True)
        return len(text)

    def flush(self) -> None:
        self.log.flush()

    def isatty(self) -> bool:
        return False


@dataclass
class Measurer:
    """Measures a point with `api.benchmark` within the budget (or replays the checkpoint)."""

    config: TuneConfig
    checkpoint: Checkpoint
    cores: int
    log: object
    planned: int
    started: float = field(default_factory=time.monotonic)
    walls: list = field(default_factory=list)

    def __call__(self, point: Point, stage: str) -> Measurement:
        if point.key in self.checkpoint.done:
            m = self.checkpoint.done[point.key]
            print(f"[tune] {point.key} ({stage}): resumed from {CHECKPOINT}: {_figures(m)}")
            return m
        left = self.config.budget_s - (time.monotonic() - self.started)
        if left <= 0 or (self.walls and self.walls_mean() > left):
            raise Exhausted()
        begun = time.monotonic()
        m = self.bench(point, stage)
        self.walls.append(time.monotonic() - begun)
        self.checkpoint.add(m)
        done = len(self.walls)
        eta = min(max(self.planned - len(self.checkpoint.done), 0) * self.walls_mean(),
                  self.config.budget_s - (time.monotonic() - self.started))
        print(f"[tune {len(self.checkpoint.done)}/<={self.planned}] {point.key} ({stage}): "
              f"{_figures(m)}  [{format_eta(time.monotonic() - self.started)} of "
              f"{format_eta(self.config.budget_s)} budget, ETA <= {format_eta(eta)}, "
              f"{done} measured now]", flush=True)
        return m

    def walls_mean(self) -> float:
        return sum(self.walls) / len(self.walls)

    def bench(self, point: Point, stage: str) -> Measurement:
        per_instance = self.cores // point.instances
        flags = UserFlags(batch_size=point.batch, streams=point.streams,
                          num_instances=point.instances if point.instances > 1 else None,
                          cores_per_instance=per_instance if point.instances > 1 else None)
        run = RunConfig(flags=flags, model=self.config.model, backend=point.backend,
                        precision=point.precision, steps=8, duration=self.config.point_seconds,
                        output_dir=str(Path(self.config.output_dir) / "points"),
                        timeout=max(120.0, 20 * self.config.point_seconds),
                        command_line=tuple(shlex.split(commands(
                            point, self.cores, self.config.model.path)["bench"])))
        extra = {"stage": stage, "cores_per_instance": per_instance}
        try:
            record = api.benchmark(run, stream=Progress(self.log, f"{point.key}: "))
        except Rn50Error as exc:
            return Measurement(point, error=str(exc), extra=extra)
        summary = record["summary"]
        extra["json"] = _relative(Path(record["log_path"]).with_suffix(".json"),
                                  self.config.output_dir)
        extra["warnings"] = record.get("warnings", [])
        return Measurement(point, summary["throughput_images_per_sec"],
                           summary["latency_ms"]["p99"], summary["latency_ms"]["p50"],
                           extra=extra)


def _figures(m: Measurement) -> str:
    if not m.ok:
        return f"failed: {m.error}"
    return f"{m.throughput:.1f} img/s, p99 {m.p99_ms:.2f} ms, p50 {m.p50_ms:.2f} ms"


def _relative(path, base: str) -> str | None:
    if not path:
        return None
    try:
        return str(Path(path).resolve().relative_to(Path(base).resolve()))
    except ValueError:
        return str(path)


def tune(config: TuneConfig, platform: Platform | None = None) -> dict:
    """Run the search; write and return the tune result (also when interrupted)."""
    platform = platform or detect_platform()
    out_dir = Path(config.output_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    settings = api.recommend(platform)
    cores = len(settings.cpus.value)
    pairs, skipped = combos(config, platform, lambda line: print(f"[tune] {line}"))
    if not pairs:
        raise ConfigError("tune: nothing to search: " + "; ".join(
            f"{k}: {v}" for k, v in skipped.items()))
    checkpoint = Checkpoint(out_dir / CHECKPOINT, config.identity(), config.resume)
    space = Space(pairs, cores, config.max_batch, lambda b: capabilities(b).streams,
                  config.latency_target_ms)
    started = datetime.now()
    with open(out_dir / "tune.log", "a", buffering=1, encoding="utf-8") as log:
        measurer = Measurer(config, checkpoint, cores, log, estimate_points(space))
        search = Search(space, measurer)
        _intro(config, space, platform, measurer.planned)
        status = "ok"
        try:
            search.run()
        except KeyboardInterrupt:
            status = "interrupted"
            raise
        finally:
            result = tune_result(config, search, skipped, platform, cores, started, status)
            write_json(out_dir / "tune.json", result)
    print_summary(result, out_dir)
    return result


def _intro(config: TuneConfig, space: Space, platform: Platform, planned: int) -> None:
    target = f", p99 target {config.latency_target_ms:g} ms" if config.latency_target_ms else ""
    print(f"[tune] {platform.model_name}: {space.cores} physical cores; searching "
          f"{', '.join(f'{b} {p}' for b, p in space.combos)}; batch 1..{space.max_batch}, "
          f"streams/instances up to {space.cores}{target}; budget "
          f"{format_eta(config.budget_s)}, {config.point_seconds:g} s per point; at most "
          f"{planned} points (pruned as it goes)", flush=True)


def tune_result(config: TuneConfig, search: Search, skipped: dict, platform: Platform,
                cores: int, started: datetime, status: str) -> dict:
    """The typed tune record (TuneResult): every point, the front, the recommendations."""
    measured = search.merged()
    on_front = {m.point.key for m in front(measured)}
    chosen = choose(measured, config.latency_target_ms)
    model = config.model.path
    recommendations = {}
    for goal in GOALS:
        pick = chosen[goal.name]
        recommendations[goal.name] = {"title": goal.title, "reason": pick} \
            if isinstance(pick, str) else {"title": goal.title, **point_row(pick, on_front),
                                           "commands": commands(pick.point, cores, model),
                                           "snippet": snippet(pick.point, cores, platform)}
    return {"schema_version": 2, "kind": "tune", "status": status,
            "started_at": started.isoformat(), "finished_at": datetime.now().isoformat(),
            "command_line": list(config.command_line), "platform": platform.to_dict(),
            "tune": {**config.identity(), "budget_s": config.budget_s, "cores": cores,
                     "latency_target_ms": config.latency_target_ms,
                     "backends": sorted({b for b, _ in search.space.combos}),
                     "precisions": list(config.precisions)},
            "points": [point_row(m, on_front) for m in measured],
            "front": [m.point.key for m in front(measured)],
            "recommendations": recommendations, "decisions": list(search.decisions),
            "skipped": skipped}


def point_row(m: Measurement, on_front: set) -> dict:
    point = asdict(m.point)
    point.pop("trial")
    return {"key": m.point.key, **point, "throughput": m.throughput,
            "p99_ms": m.p99_ms, "p50_ms": m.p50_ms, "error": m.error,
            "pareto": m.point.key in on_front, **m.extra}


def print_summary(result: dict, out_dir: Path) -> None:
    print()
    print("Pareto front (throughput vs p99; nothing else is better on both):")
    for row in result["points"]:
        if row["pareto"]:
            print(f"  {row['key']:<34} {row['throughput']:>9.1f} img/s  p99 "
                  f"{row['p99_ms']:>8.2f} ms")
    for goal, rec in result["recommendations"].items():
        print()
        if "commands" not in rec:
            print(f"{rec['title']}: none ({rec['reason']})")
            continue
        print(f"{rec['title']}: {rec['key']}: {rec['throughput']:.1f} img/s, p99 "
              f"{rec['p99_ms']:.2f} ms")
        for name, command in rec["commands"].items():
            print(f"  {name:<17} {command}")
    for line in result["decisions"]:
        print(f"  decision: {line}")
    print()
    print(f"Tune result: {out_dir / 'tune.json'} (points: {out_dir / CHECKPOINT}); "
          f"rn50 report {out_dir} -o report.html draws it")
