"""Summary statistics computed from raw samples (never from other summaries)."""

from __future__ import annotations

import math
from typing import Sequence

UNSTABLE_CV = 0.10
"""Relative standard deviation above which a run is flagged as unstable (as pyperf does)."""


def percentile(samples: Sequence[float], q: float) -> float:
    """Linear-interpolated percentile (numpy's default method), q in [0, 100]."""
    if not samples:
        raise ValueError("percentile of no samples")
    ordered = sorted(samples)
    rank = (len(ordered) - 1) * q / 100.0
    lo, hi = math.floor(rank), math.ceil(rank)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (rank - lo)


def summarize(samples: Sequence[float]) -> dict[str, float]:
    """p50/p90/p99/mean/min/max/stdev (sample) and the coefficient of variation."""
    n = len(samples)
    mean = sum(samples) / n
    stdev = math.sqrt(sum((s - mean) ** 2 for s in samples) / (n - 1)) if n > 1 else 0.0
    return {
        "count": n,
        "p50": percentile(samples, 50), "p90": percentile(samples, 90),
        "p99": percentile(samples, 99), "mean": mean,
        "min": min(samples), "max": max(samples),
        "stdev": stdev, "cv": stdev / mean if mean else 0.0,
    }


def stability_warnings(summary: dict[str, float], what: str = "step latency") -> list[str]:
    """Warnings when the samples spread too much to trust one figure."""
    warnings = []
    if summary["count"] < 5:
        warnings.append(f"only {summary['count']} timed steps: percentiles are rough; "
                        "use --steps or --duration for more")
    if summary["cv"] > UNSTABLE_CV:
        warnings.append(f"unstable: {what} standard deviation is {summary['cv']:.0%} of the mean "
                        "(other load on the machine, frequency scaling or too few steps?)")
    if summary["mean"] and summary["max"] > 2 * summary["p50"] and summary["count"] >= 5:
        warnings.append(f"{what} max ({summary['max']:.1f}) is over twice the median "
                        f"({summary['p50']:.1f}): outliers present")
    return warnings
