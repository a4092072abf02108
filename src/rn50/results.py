"""Typed results: what a run measured, under which settings, read back from any result file.

Every rn50 JSON result is one of these kinds, each a dataclass built from the
record in one place (`RunResult.from_dict`) and written back by `to_dict`:

- `RunResult` (`kind` benchmark | accuracy | classify): one run, maybe several instances;
- `ComparisonResult` (`kind` comparison): `rn50 bench --backend a,b`, a RunResult per engine;
- `ParityResult` (`kind` parity): `rn50 check-parity`;
- `MlperfResult` (`kind` mlperf): `rn50 mlperf`, LoadGen's figures and verdict;
- `LoadtestResult` (`kind` loadtest): `rn50 loadtest`, a server under load;
- `TuneResult` (`kind` tune): `rn50 tune`, its points, Pareto front and recommendations;
- `ProfileResult` (`kind` profile): `rn50 profile`, per-layer times, FLOPs and roofline.

Schema 2 is schema 1 plus `kind` (and `schema_version: 2`); `load_result` reads both. The raw
samples stay in every result, so percentiles can be recomputed (never averaged) when
results are merged or compared. Fields a reader does not model are kept in `extra` and
written back unchanged.
"""

from __future__ import annotations

import json
import os
from dataclasses import MISSING, dataclass, field, fields
from pathlib import Path
from typing import Any, Union

from .errors import DataError

SCHEMA_VERSION = 2
MAX_RESULT_BYTES = 256 << 20


@dataclass(frozen=True)
class Latency:
    """Percentiles of per-step latencies, in ms (from the raw samples)."""

    count: int
    p50: float
    p90: float
    p99: float
    mean: float
    min: float
    max: float
    stdev: float
    cv: float = 0.0


@dataclass(frozen=True)
class Summary:
    """The figures of a timed region (merged over instances when there are several)."""

    throughput_images_per_sec: float
    steps: int
    images: int
    measured_seconds: float
    latency_ms: Latency
    concurrency: int | None = None
    extra: dict = field(default_factory=dict)  # compute, end-to-end figures, merge method...

    @classmethod
    def from_dict(cls, data: dict | None) -> "Summary | None":
        if not data or "throughput_images_per_sec" not in data:
            return None
        known = _split(cls, data)
        known["latency_ms"] = Latency(**data["latency_ms"])
        return cls(**known)


@dataclass(frozen=True)
class EngineInfo:
    """The engine as it ran: versions, what it confirmed (applied) or was only asked."""

    name: str
    versions: dict
    applied: dict
    requested: dict = field(default_factory=dict)
    execution_precision: str | None = None
    execution_precision_source: str | None = None
    extra: dict = field(default_factory=dict)

    @classmethod
    def from_dict(cls, data: dict | None) -> "EngineInfo | None":
        return cls(**_split(cls, data)) if data else None


@dataclass(frozen=True)
class InstanceResult:
    index: int
    status: str
    summary: Summary | None
    error: str | None = None
    extra: dict = field(default_factory=dict)  # settings, launch, samples, pid...

    @classmethod
    def from_dict(cls, data: dict) -> "InstanceResult":
        known = _split(cls, data)
        known["summary"] = Summary.from_dict(data.get("summary"))
        known.setdefault("status", "ok" if known["summary"] else "error")
        return cls(**known)


@dataclass(frozen=True)
class RunResult:
    """One run of a scenario: its settings, engine, figures, raw samples and warnings."""

    kind: str  # benchmark | accuracy | classify
    status: str  # ok | error | interrupted | running
    backend: str
    precision: str
    settings: dict  # name -> {value, source, reason}
    platform: dict
    model: dict = field(default_factory=dict)
    engine: EngineInfo | None = None
    summary: Summary | None = None
    samples: dict = field(default_factory=dict)
    accuracy: dict | None = None
    instances: tuple[InstanceResult, ...] = ()
    warnings: tuple[str, ...] = ()
    error: str | None = None
    command_line: tuple[str, ...] = ()
    started_at: str | None = None
    finished_at: str | None = None
    schema_version: int = SCHEMA_VERSION
    extra: dict = field(default_factory=dict)  # tool, plan, launch, data, skipped...

    @classmethod
    def from_dict(cls, data: dict) -> "RunResult":
        known = _split(cls, data, renamed={"scenario": "kind"})
        known.setdefault("kind", "benchmark")
        known["engine"] = EngineInfo.from_dict(data.get("engine"))
        known["summary"] = Summary.from_dict(data.get("summary"))
        known["instances"] = tuple(InstanceResult.from_dict(i)
                                   for i in data.get("instances") or ())
        known["warnings"] = tuple(data.get("warnings") or ())
        known["command_line"] = tuple(data.get("command_line") or ())
        return cls(**known)

    def to_dict(self) -> dict:
        out = _fields_dict(self)
        out["scenario"] = out["kind"]  # schema 1 readers look here
        return out

    @property
    def throughput(self) -> float | None:
        return self.summary.throughput_images_per_sec if self.summary else None

    def setting(self, name: str) -> Any:
        """A setting's value as the run used it."""
        return (self.settings.get(name) or {}).get("value")


@dataclass(frozen=True)
class ComparisonResult:
    """The same settings on several engines (`rn50 bench --backend a,b`)."""

    backends: tuple[str, ...]
    runs: dict  # engine -> RunResult, or {"status": "error", "error": ...}
    kind: str = "comparison"
    command_line: tuple[str, ...] = ()
    started_at: str | None = None
    schema_version: int = SCHEMA_VERSION
    extra: dict = field(default_factory=dict)

    @classmethod
    def from_dict(cls, data: dict) -> "ComparisonResult":
        known = _split(cls, data)
        known["backends"] = tuple(data.get("backends") or ())
        known["command_line"] = tuple(data.get("command_line") or ())
        known["runs"] = {name: RunResult.from_dict(run) if "settings" in run else run
                         for name, run in (data.get("runs") or {}).items()}
        return cls(**known)

    def to_dict(self) -> dict:
        return _fields_dict(self)


class _Plain:
    """from_dict / to_dict for a result whose fields need no conversion."""

    @classmethod
    def from_dict(cls, data: dict):
        return cls(**_split(cls, data))

    def to_dict(self) -> dict:
        return _fields_dict(self)


@dataclass(frozen=True)
class ParityResult(_Plain):
    """The same images through several engines (`rn50 check-parity`)."""

    reference: str
    agree: bool
    comparisons: dict
    engines: dict
    precision: str = "fp32"
    kind: str = "parity"
    schema_version: int = SCHEMA_VERSION
    extra: dict = field(default_factory=dict)


@dataclass(frozen=True)
class MlperfResult:
    """One `rn50 mlperf` run: LoadGen's verdict and figures, read back from its own logs
    (`validity` is rn50's: INVALID also when the run was shorter or looser than the rules;
    `loadgen_validity` is LoadGen's, by the settings it was given)."""

    scenario: str
    mode: str
    status: str
    kind: str = "mlperf"
    schema_version: int = SCHEMA_VERSION
    validity: str | None = None
    loadgen_validity: str | None = None
    metric: dict = field(default_factory=dict)  # name, value, unit, the detail-log key
    latency_ms: dict = field(default_factory=dict)  # "50.00" -> ms, ...
    reasons: tuple[str, ...] = ()
    queries: int | None = None
    accuracy: dict | None = None
    peak_qps: float | None = None
    loadgen_dir: str | None = None
    settings: dict = field(default_factory=dict)
    extra: dict = field(default_factory=dict)

    @classmethod
    def from_dict(cls, data: dict) -> "MlperfResult":
        return cls(**dict(_split(cls, data), reasons=tuple(data.get("reasons") or ())))

    def to_dict(self) -> dict:
        return _fields_dict(self)


@dataclass(frozen=True)
class LoadtestResult(_Plain):
    """`rn50 loadtest`: a server measured under load (open or closed loop, or a sweep)."""

    url: str
    mode: str  # open loop | closed loop | sweep
    status: str
    kind: str = "loadtest"
    schema_version: int = SCHEMA_VERSION
    achieved_qps: float | None = None
    offered_qps: float | None = None
    latency_ms: dict = field(default_factory=dict)  # p50, p90, p99, max
    statuses: dict = field(default_factory=dict)  # HTTP status (or error) -> requests
    best_qps: float | None = None  # sweep: the highest rate meeting the p99 target
    client: dict = field(default_factory=dict)  # the load generator: CPUs, CPU share, send lag
    warnings: list = field(default_factory=list)  # when the client may be what was measured
    extra: dict = field(default_factory=dict)


@dataclass(frozen=True)
class TuneResult(_Plain):
    """`rn50 tune`: every point measured (one `rn50 bench` each), the Pareto front of
    throughput vs p99 and the three recommendations with their commands."""

    status: str
    points: list  # rows: key, backend, precision, batch, streams, instances, throughput...
    front: list  # keys of the non-dominated points
    recommendations: dict  # goal -> row + commands, or {title, reason}
    kind: str = "tune"
    schema_version: int = SCHEMA_VERSION
    tune: dict = field(default_factory=dict)  # budget, cores, target, what was searched
    decisions: list = field(default_factory=list)  # why growth stopped, what was dropped
    skipped: dict = field(default_factory=dict)  # "engine precision" -> why not searched
    platform: dict = field(default_factory=dict)
    extra: dict = field(default_factory=dict)


@dataclass(frozen=True)
class ProfileResult(_Plain):
    """`rn50 profile`: per-layer times from the engine's own counters, with FLOPs, attained
    GFLOP/s and % of peak per layer, and how the per-layer sum reconciles with the step."""

    backend: str
    precision: str
    batch_size: int
    status: str
    layers: list  # name, type, exec_type, ms per step, gflop, gflops_per_sec, % peak ...
    by_type: list  # the same summed per layer type
    step_ms: float  # measured step time (profiled run)
    layer_sum_ms: float  # per-layer times summed, per step
    kind: str = "profile"
    schema_version: int = SCHEMA_VERSION
    peak_gflops: float | None = None
    peak_basis: str | None = None
    reconciliation: dict = field(default_factory=dict)
    settings: dict = field(default_factory=dict)
    platform: dict = field(default_factory=dict)
    extra: dict = field(default_factory=dict)


Result = Union[RunResult, ComparisonResult, ParityResult, MlperfResult, LoadtestResult,
               TuneResult, ProfileResult]


def result_from_dict(data: dict) -> Result:
    """The typed result of a JSON record, schema 1 or 2."""
    if not isinstance(data, dict) or data.get("schema_version") not in (1, 2):
        raise DataError(f"not an rn50 result (schema_version "
                        f"{data.get('schema_version') if isinstance(data, dict) else '?'})")
    kind = data.get("kind") or ("parity" if "comparisons" in data else
                                "comparison" if "runs" in data else data.get("scenario"))
    if kind == "comparison":
        return ComparisonResult.from_dict(data)
    if kind == "parity":
        return ParityResult.from_dict(data)
    if kind == "mlperf":
        return MlperfResult.from_dict(data)
    if kind in _PLAIN:
        return _PLAIN[kind].from_dict(data)
    return RunResult.from_dict(data)


_PLAIN = {"loadtest": LoadtestResult, "tune": TuneResult, "profile": ProfileResult}


def load_result(path: str | os.PathLike) -> Result:
    """Read any rn50 result file (schema 1 or 2) back as its typed result."""
    path = Path(path).expanduser()
    try:
        if path.stat().st_size > MAX_RESULT_BYTES:
            raise DataError(f"{path}: {path.stat().st_size} bytes is too large for an rn50 result")
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise DataError(f"{path}: cannot read it ({exc.strerror or exc})") from exc
    except ValueError as exc:
        raise DataError(f"{path}: not JSON ({exc})") from exc
    try:
        return result_from_dict(data)
    except (TypeError, KeyError) as exc:
        raise DataError(f"{path}: not an rn50 result ({type(exc).__name__}: {exc})") from exc
    except DataError as exc:
        raise DataError(f"{path}: {exc}") from exc


def _split(cls, data: dict, renamed: dict | None = None) -> dict:
    """The fields `cls` models (renamed where the JSON says otherwise); the rest as extra."""
    names = {f.name for f in fields(cls)} - {"extra"}
    renamed = renamed or {}
    known, extra = {}, {}
    for key, value in data.items():
        target = renamed.get(key, key)
        if target in names and target not in known:
            known[target] = value
        elif key != "scenario" or "kind" not in data:
            extra[key] = value
    if "extra" in {f.name for f in fields(cls)}:
        known["extra"] = extra
    return known


def _as_dict(obj) -> Any:
    """A typed result as JSON data (each part through its own `to_dict` where it has one)."""
    if hasattr(obj, "__dataclass_fields__"):
        return obj.to_dict() if hasattr(obj, "to_dict") else _fields_dict(obj)
    if isinstance(obj, dict):
        return {k: _as_dict(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_as_dict(v) for v in obj]
    return obj


def _fields_dict(obj) -> dict:
    """A dataclass's fields, then its `extra` merged back at the same level; optional parts
    the run did not have are left out, as the writer left them out."""
    out = {}
    for f in fields(obj):
        value = getattr(obj, f.name)
        optional = f.default is not MISSING or f.default_factory is not MISSING
        if optional and value in (None, (), {}) and f.name not in ("extra", "warnings"):
            continue
        if f.name == "extra":
            out.update({k: _as_dict(v) for k, v in value.items() if k not in out})
        else:
            out[f.name] = _as_dict(value)
    return out
