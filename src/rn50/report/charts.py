"""The report's charts as data: titles, axes and series, drawn by plotly (HTML) and by
matplotlib (PNG) alike, so both show the same figures. Each builder returns None when the
results hold nothing for it."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

from ..measure.pareto import pareto_front
from .collect import Collection, Row

MAX_DISTRIBUTIONS = 8  # runs drawn in the latency CDF and histogram


@dataclass
class Series:
    name: str
    x: list
    y: list
    kind: str = "markers"  # markers | lines | lines+markers | bar | histogram
    text: list = field(default_factory=list)  # hover text per point


@dataclass
class Chart:
    id: str
    title: str
    x_title: str
    y_title: str
    series: list
    x_log: bool = False
    y_log: bool = False
    vlines: list = field(default_factory=list)  # (x, label)
    hlines: list = field(default_factory=list)  # (y, label)
    note: str = ""


def group(rows: list[Row]) -> dict[str, list[Row]]:
    groups: dict[str, list[Row]] = defaultdict(list)
    for row in rows:
        groups[f"{row.backend} {row.precision}"].append(row)
    return dict(groups)


def front_rows(rows: list[Row]) -> list[Row]:
    return pareto_front(rows, lambda r: r.throughput, lambda r: r.p99_ms)


def pareto_chart(found: Collection) -> Chart | None:
    if not found.rows:
        return None
    series = [Series(name, [r.p99_ms for r in rows], [r.throughput for r in rows],
                     text=[r.label for r in rows]) for name, rows in group(found.rows).items()]
    front = front_rows(found.rows)
    series.append(Series("Pareto front", [r.p99_ms for r in front],
                         [r.throughput for r in front], "lines+markers",
                         [r.label for r in front]))
    target = found.latency_target_ms
    return Chart("pareto", "Throughput vs p99 latency (Pareto front: nothing better on both)",
                 "p99 latency (ms)", "throughput (images/s)", series,
                 vlines=[(target, f"target {target:g} ms")] if target else [])


def batch_chart(found: Collection) -> Chart | None:
    series = []
    for name, rows in group(found.rows).items():
        plain = sorted((r for r in rows if r.instances == 1 and (r.streams or 1) == 1
                        and r.batch), key=lambda r: r.batch)
        if len({r.batch for r in plain}) >= 2:
            series.append(Series(name, [r.batch for r in plain], [r.throughput for r in plain],
                                 "lines+markers", [r.label for r in plain]))
    if not series:
        return None
    return Chart("batch", "Throughput vs batch size (one stream, one instance)",
                 "batch size", "throughput (images/s)", series, x_log=True)


def distribution_rows(found: Collection) -> list[Row]:
    """The runs whose latency distribution is drawn: the front first, then the rest."""
    with_samples = [r for r in found.rows if r.samples_ms]
    front = front_rows(with_samples)
    rest = [r for r in with_samples if r not in front]
    return (front + rest)[:MAX_DISTRIBUTIONS]


def cdf_chart(found: Collection) -> Chart | None:
    rows = distribution_rows(found)
    if not rows:
        return None
    series = []
    for row in rows:
        values = sorted(row.samples_ms)
        n = len(values)
        series.append(Series(row.label, values, [100 * (i + 1) / n for i in range(n)], "lines"))
    return Chart("cdf", "Step latency distribution (CDF of the raw samples)", "latency (ms)",
                 "% of steps at or below", series, hlines=[(99, "p99")],
                 note=f"{len(rows)} run(s): the Pareto front first")


def histogram_chart(found: Collection) -> Chart | None:
    rows = distribution_rows(found)[:4]
    if not rows:
        return None
    return Chart("histogram", "Step latency histogram", "latency (ms)", "steps",
                 [Series(r.label, list(r.samples_ms), [], "histogram") for r in rows])


def scaling_chart(found: Collection) -> Chart | None:
    series = []
    by_config: dict[str, list[Row]] = defaultdict(list)
    for row in found.rows:
        by_config[f"{row.backend} {row.precision} b{row.batch}"].append(row)
    for name, rows in by_config.items():
        rows = sorted(rows, key=lambda r: r.instances)
        if len({r.instances for r in rows}) >= 2:
            series.append(Series(name, [r.instances for r in rows],
                                 [r.throughput for r in rows], "lines+markers"))
    if not series:
        return None
    return Chart("scaling", "Instance scaling (throughput vs instances)", "instances",
                 "throughput (images/s)", series)


def engines_charts(found: Collection) -> list[Chart]:
    groups = group(found.rows)
    if not groups:
        return []
    names = list(groups)
    best = [max(groups[n], key=lambda r: r.throughput) for n in names]
    fastest = [min(groups[n], key=lambda r: r.p99_ms) for n in names]
    return [Chart("engines-throughput", "Engines side by side: best throughput",
                  "engine and precision", "throughput (images/s)",
                  [Series("best throughput", names, [r.throughput for r in best], "bar",
                          [r.label for r in best])]),
            Chart("engines-latency", "Engines side by side: lowest p99 latency",
                  "engine and precision", "p99 latency (ms)",
                  [Series("lowest p99", names, [r.p99_ms for r in fastest], "bar",
                          [r.label for r in fastest])])]


def loadtest_chart(found: Collection) -> Chart | None:
    series, target = [], None
    for path, result in found.loadtests:
        steps = result.extra.get("sweep") or []
        if not steps:
            continue
        steps = sorted(steps, key=lambda s: s.get("offered_qps") or 0)
        name = result.url
        series.append(Series(f"p99 {name}", [s.get("offered_qps") for s in steps],
                             [(s.get("latency_ms") or {}).get("p99") for s in steps],
                             "lines+markers"))
        target = target or result.extra.get("p99_target_ms")
    if not series:
        return None
    return Chart("loadtest", "Server p99 latency vs offered load (rn50 loadtest --sweep)",
                 "offered load (requests/s)", "p99 latency (ms)", series,
                 hlines=[(target, f"target {target:g} ms")] if target else [])


def profile_charts(found: Collection) -> list[Chart]:
    charts = []
    for index, (path, prof) in enumerate(found.profiles):
        name = f"{prof.backend} {prof.precision} b{prof.batch_size}"
        top = prof.layers[:20]
        charts.append(Chart(f"profile-layers-{index}", f"Per-layer time: {name} (top 20)",
                            "layer", "ms per step",
                            [Series("ms per step", [layer["name"] for layer in top],
                                    [layer["ms"] for layer in top], "bar",
                                    [layer["why"] for layer in top])]))
        points = [layer for layer in prof.layers if layer.get("intensity")]
        if points and prof.peak_gflops:
            charts.append(roofline(index, name, prof, points))
    return charts


def roofline(index: int, name: str, prof, points: list[dict]) -> Chart:
    bandwidth = prof.extra.get("bandwidth", {}).get("gb_per_sec")
    lo = min(p["intensity"] for p in points) / 2
    hi = max(p["intensity"] for p in points) * 2
    series = [Series("layers", [p["intensity"] for p in points],
                     [p["gflops_per_sec"] for p in points],
                     text=[f"{p['name']}: {p['why']}" for p in points])]
    if bandwidth:
        ridge = prof.peak_gflops / bandwidth
        xs = [lo, ridge, hi] if lo < ridge < hi else [lo, hi]
        series.append(Series("roofline (measured bandwidth, estimated peak)", xs,
                             [min(prof.peak_gflops, bandwidth * x) for x in xs], "lines"))
    return Chart(f"profile-roofline-{index}", f"Roofline: {name}",
                 "arithmetic intensity (FLOP/byte)", "attained GFLOP/s", series,
                 x_log=True, y_log=True, hlines=[(prof.peak_gflops, "estimated peak")])


def all_charts(found: Collection) -> list[Chart]:
    charts = [pareto_chart(found), batch_chart(found), cdf_chart(found),
              histogram_chart(found), scaling_chart(found), *engines_charts(found),
              loadtest_chart(found), *profile_charts(found)]
    return [c for c in charts if c is not None]
