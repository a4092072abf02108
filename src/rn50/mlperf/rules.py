"""MLPerf Inference's ResNet-50 rules, as data.

LoadGen carries the official `mlperf.conf` (durations, query counts, latency
targets and percentiles); rn50 loads it first (`TestSettings.FromConfig(...,
conf_type=0)`) so a run is judged by the same numbers as a submission. This
module says what each scenario's figure of merit is and how rn50 reads it back
from LoadGen's detail log.
"""

from __future__ import annotations

from dataclasses import dataclass

MODEL = "resnet50"  # the name mlperf.conf uses
REFERENCE_TOP1 = 76.46  # % top-1 of the reference FP32 ResNet-50 v1.5
ACCURACY_TARGET = 0.99 * REFERENCE_TOP1  # closed division: 99% of the reference


@dataclass(frozen=True)
class Scenario:
    name: str
    metric: str  # what is reported
    unit: str
    keys: tuple[str, ...]  # detail-log keys holding it, first found wins
    higher_is_better: bool
    batching: str  # how rn50's SUT batches its queries
    rule: str  # the constraint, in words


SCENARIOS = {
    "SingleStream": Scenario(
        "SingleStream", "90th percentile latency", "ms",
        ("result_90.00_percentile_latency_ns",), False,
        "batch 1: one query of one image at a time",
        "one query of 1 sample at a time, the next when it is answered; the p90 latency "
        "(LoadGen's early-stopping estimate)"),
    "MultiStream": Scenario(
        "MultiStream", "99th percentile latency of 8-sample queries", "ms",
        ("result_99.00_percentile_per_query_latency_ns",), False,
        "each query's 8 images as one batch",
        "one query of 8 samples at a time, the next when it is answered; the p99 "
        "query latency"),
    "Server": Scenario(
        "Server", "queries per second", "queries/s",
        ("result_scheduled_samples_per_sec", "result_completed_samples_per_sec"), True,
        "dynamic: whatever has arrived, up to --batch-size, goes as one batch",
        "Poisson arrivals at the target QPS; VALID when the p99 latency is within the "
        "target (15 ms)"),
    "Offline": Scenario(
        "Offline", "samples per second", "samples/s",
        ("result_samples_per_second",), True,
        "all samples at once, in batches of --batch-size over every instance",
        "one query holding every sample (at least 24,576); the throughput"),
}


def rules_lines(effective: dict[str, dict]) -> list[str]:
    """`rn50 mlperf --rules`: each scenario's figure, constraint and LoadGen's settings
    (`effective`: scenario -> the mlperf.conf values LoadGen applies)."""
    lines = [f"MLPerf Inference ResNet-50 (closed division), as LoadGen's mlperf.conf applies "
             f"them. Accuracy: top-1 at least 99% of {REFERENCE_TOP1}% = "
             f"{ACCURACY_TARGET:.3f}%."]
    for name, scenario in SCENARIOS.items():
        conf = effective.get(name, {})
        lines.append(f"{name}: {scenario.metric} ({scenario.unit}); {scenario.rule}")
        lines.append("  mlperf.conf: " + ", ".join(f"{k} {v:g}" if isinstance(v, float) else
                                                   f"{k} {v}" for k, v in conf.items()))
        lines.append(f"  rn50's SUT: {scenario.batching}")
    lines.append("Runs shorter than the rules (--smoke, --duration, --count) are reported "
                 "INVALID by LoadGen and labelled so by rn50.")
    return lines
