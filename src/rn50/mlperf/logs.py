"""Read LoadGen's own files back: the detail log (`:::MLLOG {json}` lines), the summary,
and the accuracy log; rn50's result is built from them, never from its own clock."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np

from ..errors import DataError
from ..limits import TEXT_MAX_BYTES, read_text
from .rules import SCENARIOS

PERCENTILE = re.compile(r"^result_(\d+\.\d+)_percentile_(?:per_query_)?latency_ns$")
ACCURACY_LOG_MAX_BYTES = 1 << 30
CHECKS = (("result_perf_constraints_met", "performance constraints (latency) not met"),
          ("result_min_duration_met", "minimum duration not met"),
          ("result_min_queries_met", "minimum query count not met"),
          ("early_stopping_met", "early stopping not satisfied"))


def read_detail(path: Path) -> dict:
    """Every key of the detail log (the last value of each), and its errors and warnings."""
    values: dict = {"_errors": [], "_warnings": []}
    for line in read_text(path, "LoadGen detail log", 16 * TEXT_MAX_BYTES).splitlines():
        if not line.startswith(":::MLLOG "):
            continue
        try:
            entry = json.loads(line[len(":::MLLOG "):])
        except ValueError:
            continue
        values[entry.get("key")] = entry.get("value")
        meta = entry.get("metadata") or {}
        if meta.get("is_error"):
            values["_errors"].append(str(entry.get("value")))
        elif meta.get("is_warning"):
            values["_warnings"].append(str(entry.get("value")))
    return values


def read_summary(path: Path) -> dict[str, str]:
    """`key : value` lines of mlperf_log_summary.txt (spaces in keys kept, trimmed)."""
    out = {}
    for line in read_text(path, "LoadGen summary").splitlines():
        if ":" in line and not line.startswith(("=", " *")):
            key, _, value = line.partition(":")
            out.setdefault(key.strip(), value.strip())
    return out


def result_from_logs(folder: Path, scenario: str) -> dict:
    """The figures of a LoadGen run from its detail log: validity and why, the scenario's
    metric, latency percentiles (ms), queries and samples, the settings LoadGen applied."""
    detail = read_detail(folder / "mlperf_log_detail.txt")
    spec = SCENARIOS[scenario]
    key = next((k for k in spec.keys if detail.get(k) is not None), None)
    value = detail.get(key) if key else None
    if value is not None and spec.unit == "ms":
        value = value / 1e6
    return {
        "validity": detail.get("result_validity", "UNKNOWN"),
        "reasons": invalid_reasons(detail),
        "metric": {"name": spec.metric, "value": value, "unit": spec.unit, "key": key},
        "latency_ms": percentiles(detail, per_query=scenario == "MultiStream"),
        "queries": detail.get("result_query_count"),
        "samples_per_query": detail.get("effective_samples_per_query"),
        "early_stopping": (detail.get("early_stopping_result") or "").strip(),
        "loadgen_version": detail.get("loadgen_version"),
        "effective": {k[len("effective_"):]: v for k, v in detail.items()
                      if str(k).startswith("effective_")},
        "errors": detail["_errors"], "warnings": detail["_warnings"],
    }


def percentiles(detail: dict, per_query: bool) -> dict[str, float]:
    """{'50.00': ms, '90.00': ms, ...}: per sample, or per query (MultiStream's metric)."""
    found = {}
    for key, value in detail.items():
        match = PERCENTILE.match(str(key))
        if match and ("per_query" in key) == per_query:
            found[match.group(1)] = value / 1e6
    return found


def invalid_reasons(detail: dict) -> list[str]:
    """Why LoadGen said INVALID, in its words where it gives them."""
    reasons = [text for key, text in CHECKS if detail.get(key) is False]
    if detail.get("result_invalid_reason"):
        reasons.append(str(detail["result_invalid_reason"]).strip())
    return reasons


def accuracy_predictions(path: Path) -> dict[int, int]:
    """qsl index -> the label rn50's SUT answered (an int32 in each entry's hex data)."""
    text = read_text(path, "LoadGen accuracy log", ACCURACY_LOG_MAX_BYTES)
    try:
        entries = json.loads(text)
    except ValueError as exc:
        raise DataError(f"LoadGen accuracy log {path} is not JSON ({exc})") from None
    return {int(e["qsl_idx"]): int(np.frombuffer(bytes.fromhex(e["data"]), np.int32)[0])
            for e in entries if e.get("data")}
