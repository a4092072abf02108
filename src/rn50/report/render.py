"""Charts drawn: plotly figures for the HTML report, matplotlib PNG files on request."""

from __future__ import annotations

from pathlib import Path

from ..errors import ConfigError
from .charts import Chart

INSTALL = "pip install 'rn50[report]'"


def need(module: str) -> None:
    import importlib.util

    if importlib.util.find_spec(module) is None:
        raise ConfigError(f"rn50 report needs {module}: {INSTALL}")


def plotly_figure(chart: Chart):
    import plotly.graph_objects as go

    fig = go.Figure()
    for s in chart.series:
        if s.kind == "bar":
            fig.add_trace(go.Bar(name=s.name, x=s.x, y=s.y, hovertext=s.text or None))
        elif s.kind == "histogram":
            fig.add_trace(go.Histogram(name=s.name, x=s.x, opacity=0.6))
        else:
            fig.add_trace(go.Scatter(name=s.name, x=s.x, y=s.y, mode=s.kind,
                                     hovertext=s.text or None))
    for x, label in chart.vlines:
        fig.add_vline(x=x, line_dash="dash", annotation_text=label)
    for y, label in chart.hlines:
        fig.add_hline(y=y, line_dash="dot", annotation_text=label)
    fig.update_layout(title=chart.title, barmode="overlay" if _histogram(chart) else "group",
                      template="plotly_white", height=460, margin={"t": 60, "b": 60})
    fig.update_xaxes(title_text=chart.x_title, type="log" if chart.x_log else None)
    fig.update_yaxes(title_text=chart.y_title, type="log" if chart.y_log else None)
    return fig


def _histogram(chart: Chart) -> bool:
    return any(s.kind == "histogram" for s in chart.series)


def write_png(chart: Chart, folder: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(9, 5), dpi=100)
    try:
        _draw(ax, chart)
        ax.set_title(chart.title, fontsize=10)
        ax.set_xlabel(chart.x_title)
        ax.set_ylabel(chart.y_title)
        if chart.x_log:
            ax.set_xscale("log")
        if chart.y_log:
            ax.set_yscale("log")
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=7, loc="best")
        fig.tight_layout()
        path = folder / f"{chart.id}.png"
        fig.savefig(path)
        return path
    finally:
        plt.close(fig)


def _draw(ax, chart: Chart) -> None:
    bars = [s for s in chart.series if s.kind == "bar"]
    width = 0.8 / max(len(bars), 1)
    for index, s in enumerate(bars):
        positions = [i + index * width for i in range(len(s.x))]
        ax.bar(positions, s.y, width=width, label=s.name)
        ax.set_xticks([i + width * (len(bars) - 1) / 2 for i in range(len(s.x))])
        ax.set_xticklabels([str(x)[:24] for x in s.x], rotation=45, ha="right", fontsize=7)
    for s in chart.series:
        if s.kind == "histogram":
            ax.hist(s.x, bins=40, alpha=0.5, label=s.name)
        elif s.kind != "bar":
            style = {"markers": "o", "lines": "-", "lines+markers": "o-"}[s.kind]
            ax.plot(s.x, s.y, style, label=s.name, markersize=4)
    for x, label in chart.vlines:
        ax.axvline(x, linestyle="--", color="grey", label=label)
    for y, label in chart.hlines:
        ax.axhline(y, linestyle=":", color="grey", label=label)
