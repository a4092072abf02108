"""rn50 report from real results (tune, bench, profile, loadtest, MLPerf), opened in a real
headless Chromium (Debian's, driven by Playwright) with the network off; PNG and CSV."""

from __future__ import annotations

import csv
import json
import os
import shutil
from pathlib import Path

import pytest

from rn50.measure.pareto import dominates

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
ARTIFACTS = Path(os.environ.get("RN50_TEST_ARTIFACTS",
                                Path(__file__).resolve().parents[2] / "test-artifacts"))
needs_browser = pytest.mark.skipif(
    not CHROMIUM and os.environ.get("CI") != "true",
    reason="no chromium here (apt-get install chromium; .ci/run installs it, and in CI this "
           "test fails instead of skipping)")


def run_ok(run_cli, *argv, timeout=600):
    proc = run_cli("-m", "rn50", *argv, timeout=timeout)
    assert proc.returncode == 0, proc.stderr
    return proc


@pytest.fixture(scope="module")
def results(model_cache, tmp_path_factory):
    """A folder of real results: a tune (null engine), an OpenVINO bench, a profile, a
    load-test sweep against a real server and an MLPerf smoke run."""
    import subprocess
    import sys

    from test_serve import start_server, stop

    folder = tmp_path_factory.mktemp("results")
    env = dict(os.environ, RN50_CACHE_DIR=str(model_cache))

    def run_cli(*argv, timeout=600):
        return subprocess.run([sys.executable, *argv], cwd=folder, env=env,
                              capture_output=True, text=True, timeout=timeout)

    run_ok(run_cli, "tune", "--backends", "null", "--precisions", "fp32,int8",
           "--point-seconds", "0.05", "--max-batch", "8", "--latency-target-ms", "1",
           "--output-dir", str(folder / "tune"))
    run_ok(run_cli, "bench", "--backend", "openvino", "--steps", "5", "--output-dir",
           str(folder / "bench"))
    run_ok(run_cli, "profile", "--steps", "3", "--output-dir", str(folder / "profile"))
    run_ok(run_cli, "mlperf", "--scenario", "Offline", "--backend", "null", "--smoke",
           "--output-dir", str(folder / "mlperf"))
    proc, url = start_server(model_cache, tmp_path_factory.mktemp("srv"), "--backend", "null")
    try:
        run_ok(run_cli, "loadtest", url, "--sweep", "--p99-target-ms", "200", "--duration",
               "0.5", "--json", str(folder / "loadtest.json"))
    finally:
        stop(proc)
    (folder / "notes.json").write_text('{"not": "a result"}')
    return folder


@pytest.fixture(scope="module")
def report(results, tmp_path_factory, model_cache):
    import subprocess
    import sys

    out = tmp_path_factory.mktemp("report")
    proc = subprocess.run([sys.executable, "-m", "rn50", "report", str(results), "-o",
                           str(out / "report.html"), "--png", str(out / "png"), "--csv",
                           str(out / "table.csv")], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "1 file(s) skipped" in proc.stdout
    return out


def csv_rows(report) -> list[dict]:
    with open(report / "table.csv", newline="") as f:
        return list(csv.DictReader(f))


def expected_front(rows: list[dict]) -> set[str]:
    axes = {r["source"]: (float(r["throughput"]), float(r["p99_ms"])) for r in rows}
    return {k for k, a in axes.items() if not any(dominates(b, a) for b in axes.values())}


def test_csv_lists_every_configuration_and_marks_exactly_the_front(results, report):
    rows = csv_rows(report)
    tune = json.loads((results / "tune" / "tune.json").read_text())
    assert len(rows) == len(tune["points"]) + 1  # every tune point, and the OpenVINO bench
    assert {r["source"] for r in rows if r["pareto"] == "True"} == expected_front(rows)
    assert any(r["backend"] == "openvino" for r in rows)
    assert all(r["command"].startswith("rn50 bench") for r in rows if r["backend"] == "null")


def test_png_charts_are_written(report):
    pngs = sorted((report / "png").glob("*.png"))
    names = {p.stem for p in pngs}
    assert {"pareto", "batch", "cdf", "histogram", "scaling", "engines-throughput",
            "loadtest", "profile-layers-0", "profile-roofline-0"} <= names
    for png in pngs:
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000


@needs_browser
def test_the_report_renders_offline_in_a_real_browser(report):
    from playwright.sync_api import sync_playwright

    html = report / "report.html"
    shots = ARTIFACTS / "report"
    shots.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking",
            "--disable-component-update", "--disable-sync", "--no-first-run"])
        context = browser.new_context(offline=True, viewport={"width": 1280, "height": 900})
        page = context.new_page()
        errors, fetched = [], []
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.on("request", lambda r: fetched.append(r.url))
        page.goto(html.as_uri())
        plots = page.locator(".plotly-graph-div")
        count = plots.count()
        page.wait_for_function(f"document.querySelectorAll('.plotly-graph-div .main-svg')"
                               f".length >= {count}", timeout=30_000)
        assert count == len(list((report / "png").glob("*.png")))
        for i in range(count):
            plot = plots.nth(i)
            assert plot.locator("svg.main-svg").count() >= 1
            assert plot.locator(".g-xtitle text").text_content().strip()
            assert plot.locator(".g-ytitle text").text_content().strip()
            assert plot.locator(".gtitle").text_content().strip()
            assert plot.locator(".point, .bars path, .scatterlayer .trace path").count() > 0
            plot.screenshot(path=str(shots / f"{plot.get_attribute('id')}.png"))
        front = page.locator("#pareto-table tbody tr td:first-child").all_inner_texts()
        rows = csv_rows(report)
        labels = {r["source"]: r["label"] for r in rows}
        assert sorted(front) == sorted(labels[s] for s in expected_front(rows))
        assert page.locator("#recommendations tbody tr").count() == 3
        browser.close()
    assert errors == []
    assert all(url.startswith("file://") for url in fetched)  # nothing from the network


def test_report_errors_are_one_line(run_cli, tmp_path):
    (tmp_path / "x.json").write_text("[]")
    for argv, code, says in [
            (["nowhere"], 2, "nowhere: no such file or folder"),
            ([str(tmp_path)], 2, "no rn50 results with figures to report (1 file(s) skipped)"),
            ([str(tmp_path), "-o", "r.pdf"], 1, "name it *.html")]:  # as --json's (output)
        proc = run_cli("-m", "rn50", "report", *argv)
        assert proc.returncode == code and len(proc.stderr.strip().splitlines()) == 1, \
            proc.stderr
        assert says in proc.stderr


def test_bench_report_writes_html_beside_the_json(run_cli, tmp_path):
    proc = run_cli("-m", "rn50", "bench", "--backend", "null", "--steps", "20", "--report",
                   "--output-dir", str(tmp_path / "o"))
    assert proc.returncode == 0, proc.stderr
    (json_path,) = (tmp_path / "o").glob("*.json")
    html = json_path.with_suffix(".html")
    assert f"Report: {html}" in proc.stdout
    text = html.read_text()
    assert "plotly" in text and "id='pareto-table'" in text and "<script src=" not in text


def test_report_of_an_engine_comparison_has_a_row_per_engine(run_cli, tmp_path):
    proc = run_cli("-m", "rn50", "bench", "--backend", "null,openvino", "--steps", "5",
                   "--report", "--output-dir", str(tmp_path / "o"))
    assert proc.returncode == 0, proc.stderr
    comparison = Path(proc.stdout.split("Comparison JSON: ")[1].split()[0])
    assert f"Report: {comparison.with_suffix('.html')}" in proc.stdout
    report = run_cli("-m", "rn50", "report", str(comparison), "-o", str(tmp_path / "r.html"),
                     "--csv", str(tmp_path / "r.csv"))
    assert report.returncode == 0, report.stderr
    with open(tmp_path / "r.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert sorted(r["backend"] for r in rows) == ["null", "openvino"]
