"""`rn50 report`: one self-contained HTML file (plotly.js embedded: no network needed to open
it) from any rn50 results, the same charts as PNG and the table as CSV on request."""

from __future__ import annotations

import csv
import os
from datetime import datetime
from html import escape
from pathlib import Path

from ..measure.pareto import pareto_front
from .charts import Chart, all_charts
from .collect import Collection, Row, collect
from .files import atomic_write_bytes
from .render import need, plotly_figure, write_png

COLUMNS = ("label", "backend", "precision", "batch", "streams", "instances", "threads",
           "throughput", "p50_ms", "p99_ms", "pareto", "command", "source", "warnings")
STYLE = """body{font-family:system-ui,sans-serif;margin:24px;color:#222}
table{border-collapse:collapse;margin:8px 0 24px;font-size:13px}
td,th{border:1px solid #ccc;padding:3px 6px;text-align:left;vertical-align:top}
th{background:#f3f3f3} code{font-size:12px} .num{text-align:right}
section.chart{margin:12px 0 28px} .note{color:#666;font-size:13px}"""


def write_report(paths: list[str], out: str, png_dir: str | None = None,
                 csv_path: str | None = None) -> dict:
    """Write the report (and PNGs, CSV); return what was written."""
    need("plotly")
    if png_dir:
        need("matplotlib")
    found = collect(paths)
    charts = all_charts(found)
    page = render_page(found, charts, paths)
    atomic_write_bytes(Path(out), page.encode("utf-8"))
    written = {"html": out, "charts": [c.id for c in charts], "rows": len(found.rows),
               "skipped": found.skipped}
    if png_dir:
        folder = Path(png_dir)
        folder.mkdir(parents=True, exist_ok=True)
        written["png"] = [str(write_png(c, folder)) for c in charts]
    if csv_path:
        write_csv(found, Path(csv_path))
        written["csv"] = csv_path
    return written


def row_values(row: Row, front: set) -> dict:
    return {"label": row.label, "backend": row.backend, "precision": row.precision,
            "batch": row.batch, "streams": row.streams, "instances": row.instances,
            "threads": row.threads, "throughput": row.throughput,
            "p50_ms": row.p50_ms, "p99_ms": row.p99_ms,
            "pareto": id(row) in front, "command": row.command, "source": row.source,
            "warnings": " | ".join(row.warnings)}


def front_ids(found: Collection) -> set:
    return {id(r) for r in pareto_front(found.rows, lambda r: r.throughput,
                                        lambda r: r.p99_ms)}


def write_csv(found: Collection, path: Path) -> None:
    front = front_ids(found)
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=COLUMNS)
        writer.writeheader()
        for row in found.rows:
            writer.writerow(row_values(row, front))
    os.replace(tmp, path)


def render_page(found: Collection, charts: list[Chart], paths: list[str]) -> str:
    from plotly.offline import get_plotlyjs

    body = [f"<h1>rn50 report</h1><p class='note'>{escape(', '.join(paths))}: "
            f"{len(found.rows)} configuration(s); generated {datetime.now():%Y-%m-%d %H:%M}"
            "</p>", platform_html(found.platform), *tune_html(found)]
    for chart in charts:
        figure = plotly_figure(chart).to_html(full_html=False, include_plotlyjs=False,
                                              div_id=f"plot-{chart.id}",
                                              config={"displaylogo": False})
        note = f"<p class='note'>{escape(chart.note)}</p>" if chart.note else ""
        body.append(f"<section class='chart' id='chart-{chart.id}'>{figure}{note}</section>")
    body += [pareto_html(found), configurations_html(found), *results_html(found),
             skipped_html(found)]
    return ("<!DOCTYPE html><html><head><meta charset='utf-8'><title>rn50 report</title>"
            f"<style>{STYLE}</style><script>{get_plotlyjs()}</script></head><body>"
            + "\n".join(body) + "</body></html>")


def table(id_: str, header: list[str], rows: list[list]) -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{cell}</td>" for cell in row) + "</tr>"
                   for row in rows)
    return f"<table id='{id_}'><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def platform_html(platform: dict) -> str:
    if not platform:
        return ""
    flags = set(platform.get("flags") or [])
    isa = [f for f in ("avx2", "avx512f", "avx512_vnni", "avx512_bf16", "amx_bf16", "amx_int8")
           if f in flags]
    derived = platform.get("derived") or {}
    return ("<h2>Platform</h2>" + table("platform", ["field", "value"], [
        ["CPU", escape(str(platform.get("model_name")))],
        ["physical cores", escape(str(derived.get("physical_cores", "?")))],
        ["clock (MHz, as the OS reports)", escape(str(platform.get("max_mhz")))],
        ["instruction sets", escape(", ".join(isa) or "none of note")]]))


def _fmt(value, digits: int = 2) -> str:
    return "-" if value is None else f"{value:.{digits}f}" if isinstance(value, float) \
        else escape(str(value))


def tune_html(found: Collection) -> list[str]:
    parts = []
    for path, tune in found.tunes:
        rows = []
        for goal in tune.recommendations.values():
            if "commands" not in goal:
                rows.append([escape(goal["title"]), "-", "-", "-", escape(goal["reason"])])
                continue
            commands = "<br>".join(f"{escape(k)}: <code>{escape(v)}</code>"
                                   for k, v in goal["commands"].items())
            if goal.get("snippet"):
                commands += (f"<details><summary>settings for your code (rn50 info --emit "
                             f"python)</summary><pre>{escape(goal['snippet'])}</pre></details>")
            rows.append([escape(goal["title"]), escape(goal["key"]),
                         _fmt(goal["throughput"], 1), _fmt(goal["p99_ms"]), commands])
        target = tune.tune.get("latency_target_ms")
        parts.append(f"<h2>Recommendations (rn50 tune, {escape(path)}, status "
                     f"{escape(tune.status)}{f', p99 target {target:g} ms' if target else ''})"
                     "</h2>" + table("recommendations", ["goal", "configuration", "images/s",
                                                         "p99 ms", "commands"], rows))
        decisions = "".join(f"<li>{escape(d)}</li>" for d in tune.decisions)
        skipped = "".join(f"<li>skipped {escape(k)}: {escape(v)}</li>"
                          for k, v in tune.skipped.items())
        if decisions or skipped:
            parts.append(f"<details><summary>How the search went</summary><ul>{skipped}"
                         f"{decisions}</ul></details>")
    return parts


def pareto_html(found: Collection) -> str:
    if not found.rows:
        return ""
    front = pareto_front(found.rows, lambda r: r.throughput, lambda r: r.p99_ms)
    rows = [[escape(r.label), _fmt(r.throughput, 1), _fmt(r.p99_ms), f"<code>"
             f"{escape(r.command)}</code>"] for r in front]
    return ("<h2>Pareto front</h2><p class='note'>The configurations no other beats on both "
            "throughput and p99 latency.</p>"
            + table("pareto-table", ["configuration", "images/s", "p99 ms", "command"], rows))


def configurations_html(found: Collection) -> str:
    if not found.rows:
        return ""
    front = front_ids(found)
    rows = []
    for row in sorted(found.rows, key=lambda r: -r.throughput):
        values = row_values(row, front)
        settings = "".join(
            f"<li>{escape(name)} = {escape(str(choice.get('value')))} "
            f"<i>({escape(str(choice.get('source')))})</i></li>"
            for name, choice in row.settings.items() if isinstance(choice, dict))
        rows.append([escape(row.label), _fmt(row.throughput, 1), _fmt(row.p50_ms),
                     _fmt(row.p99_ms), "yes" if values["pareto"] else "",
                     f"<code>{escape(row.command)}</code>",
                     f"<details><summary>settings</summary><ul>{settings}</ul></details>",
                     escape(values["warnings"]), escape(row.source)])
    return ("<h2>All configurations</h2>" + table(
        "all-configurations", ["configuration", "images/s", "p50 ms", "p99 ms", "Pareto",
                               "command", "settings (source)", "warnings", "result file"],
        rows))


def results_html(found: Collection) -> list[str]:
    parts = []
    if found.mlperf:
        rows = [[escape(m.scenario), escape(m.mode), escape(str(m.validity)),
                 escape(str(m.metric.get("name"))), _fmt(m.metric.get("value")),
                 escape(str(m.metric.get("unit", ""))), escape("; ".join(m.reasons)),
                 escape(p)] for p, m in found.mlperf]
        parts.append("<h2>MLPerf LoadGen runs</h2>" + table(
            "mlperf", ["scenario", "mode", "validity", "metric", "value", "unit", "reasons",
                       "file"], rows))
    if found.loadtests:
        rows = [[escape(t.url), escape(t.mode), _fmt(t.achieved_qps, 1),
                 _fmt(t.latency_ms.get("p50")), _fmt(t.latency_ms.get("p99")),
                 _fmt(t.best_qps, 1), _fmt(t.client.get("cpu_share")),
                 _fmt((t.client.get("send_lag_ms") or {}).get("p99")),
                 escape("; ".join(t.warnings)), escape(p)] for p, t in found.loadtests]
        parts.append("<h2>Load tests</h2>" + table(
            "loadtests", ["server", "mode", "achieved req/s", "p50 ms", "p99 ms",
                          "best req/s (sweep)", "client CPU share", "client send lag p99 ms",
                          "warnings", "file"], rows))
    for path, prof in found.profiles:
        rec = prof.reconciliation
        rows = [[escape(g["type"]), str(g["layers"]), _fmt(g["ms"], 3),
                 _fmt(g["percent_of_step"], 1), _fmt(g.get("gflops_per_sec"), 1)]
                for g in prof.by_type]
        parts.append(f"<h2>Profile: {escape(prof.backend)} {escape(prof.precision)} batch "
                     f"{prof.batch_size}</h2><p class='note'>step {prof.step_ms:.2f} ms, "
                     f"layers sum {prof.layer_sum_ms:.2f} ms "
                     f"({rec.get('unaccounted_percent', 0):+.1f}% outside layers); peak "
                     f"{prof.peak_gflops or 0:.0f} GFLOP/s ({escape(str(prof.peak_basis))})"
                     "</p>" + table("profile-types", ["layer type", "layers", "ms", "% of step",
                                                      "GFLOP/s"], rows))
    return parts


def skipped_html(found: Collection) -> str:
    if not found.skipped:
        return ""
    items = "".join(f"<li>{escape(p)}: {escape(why)}</li>" for p, why in found.skipped.items())
    return f"<details><summary>{len(found.skipped)} file(s) skipped</summary><ul>{items}</ul>" \
           "</details>"
