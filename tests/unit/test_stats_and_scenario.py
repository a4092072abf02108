"""Statistics from raw samples, and the benchmark loop timed with a fake clock."""

from __future__ import annotations

import numpy as np
import pytest

from rn50.backends._base import InputSpec, SyncSession
from rn50.measure.stats import percentile, stability_warnings, summarize
from rn50.scenarios.benchmark import BenchmarkPlan, run_benchmark


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class ClockedSession(SyncSession):
    """A session whose steps take scripted durations on a fake clock (the engine boundary)."""

    def __init__(self, clock: FakeClock, durations: list[float], batch: int) -> None:
        self.clock, self.durations = clock, list(durations)
        self.input_spec = InputSpec("input", (batch, 3, 224, 224), "NCHW")
        self.load_timings = {}
        self.calls = 0

    def run(self, batch):
        self.clock.now += self.durations[self.calls]
        self.calls += 1
        return np.zeros((batch.shape[0], 1000), np.float32)

    def applied_settings(self):
        return {}


class TwoStreamSession:
    """Two requests in flight on a fake clock, each step taking `step` seconds (the engine boundary)."""

    concurrency = 2

    def __init__(self, clock: FakeClock, step: float, batch: int) -> None:
        self.clock, self.step = clock, step
        self.input_spec = InputSpec("input", (batch, 3, 224, 224), "NCHW")
        self.in_flight: list[tuple[float, object]] = []

    def _complete_next(self) -> None:
        self.in_flight.sort(key=lambda item: item[0])
        finish, on_done = self.in_flight.pop(0)
        self.clock.now = max(self.clock.now, finish)
        on_done(lambda: None)

    def wait_idle(self) -> None:
        if len(self.in_flight) == self.concurrency:
            self._complete_next()

    def submit(self, batch, on_done) -> None:
        self.in_flight.append((self.clock.now + self.step, on_done))

    def wait_all(self) -> None:
        while self.in_flight:
            self._complete_next()

    def run(self, batch):
        self.clock.now += self.step
        return np.zeros((batch.shape[0], 1000), np.float32)


@pytest.mark.parametrize("q", [0, 10, 50, 90, 99, 100])
def test_percentile_matches_numpy(q):
    samples = [5.0, 1.0, 9.0, 3.0, 7.0, 2.0, 8.5]
    assert percentile(samples, q) == pytest.approx(np.percentile(samples, q))


def test_summary_and_warnings():
    s = summarize([10.0] * 9 + [30.0])
    assert (s["p50"], s["min"], s["max"], s["mean"]) == (10.0, 10.0, 30.0, 12.0)
    warnings = stability_warnings(s)
    assert any("unstable" in w for w in warnings)
    assert any("outliers" in w for w in warnings)
    assert stability_warnings(summarize([10.0, 10.1, 9.9, 10.0, 10.0])) == []


def test_benchmark_figures_are_exact_with_a_fake_clock():
    clock = FakeClock()
    # 2 warm-up steps (the first is the first inference), then 4 timed steps of 10..40 ms
    durations = [0.5, 0.2, 0.010, 0.020, 0.030, 0.040]
    session = ClockedSession(clock, durations, batch=4)
    messages = []
    result = run_benchmark(session, np.zeros((4, 3, 224, 224), np.float32),
                           BenchmarkPlan(warmup_steps=2, steps=4), clock=clock,
                           emit=messages.append)
    assert result["first_inference_ms"] == pytest.approx(500.0)
    assert result["samples"]["warmup_step_ms"] == pytest.approx([500.0, 200.0])
    assert result["samples"]["step_ms"] == pytest.approx([10.0, 20.0, 30.0, 40.0])
    summary = result["summary"]
    assert summary["images"] == 16
    assert summary["throughput_images_per_sec"] == pytest.approx(16 / 0.1)
    assert summary["latency_ms"]["p50"] == pytest.approx(25.0)
    assert summary["latency_ms"]["p90"] == pytest.approx(37.0)
    assert [m["phase"] for m in messages if m["type"] == "phase"] == ["warmup", "benchmark"]


def test_progress_every_ten_steps_reports_window_rate():
    clock = FakeClock()
    session = ClockedSession(clock, [0.1] + [0.05] * 25, batch=2)
    messages = []
    run_benchmark(session, np.zeros((2, 3, 224, 224), np.float32),
                  BenchmarkPlan(warmup_steps=0, steps=25), clock=clock, emit=messages.append)
    progress = [m for m in messages if m["type"] == "progress"]
    assert [m["steps"] for m in progress] == [10, 20]
    assert all(m["images_per_sec"] == pytest.approx(40.0) for m in progress)
    assert [m["elapsed_s"] for m in progress] == [pytest.approx(0.5), pytest.approx(1.0)]
    # the console turns them into steps expected and an ETA with the phase's own stop rule
    from rn50.report.console import progress_line

    plan = BenchmarkPlan(warmup_steps=0, steps=25)
    assert progress_line(progress[0], plan.measure_done) == \
        "steps = 10, 40.000 images/sec (10/25 steps, ETA 1 s)"


def test_slow_steps_report_at_least_every_five_seconds_with_total_and_eta():
    # the seed's throughput run: 6 steps of batch 128 at 4 s each, nothing at 10 steps
    clock = FakeClock()
    session = ClockedSession(clock, [4.0] * 6, batch=128)
    messages = []
    run_benchmark(session, np.zeros((128, 3, 224, 224), np.float32),
                  BenchmarkPlan(warmup_steps=1, steps=5), clock=clock, emit=messages.append)
    progress = [m for m in messages if m["type"] == "progress" and m["phase"] == "benchmark"]
    assert [m["steps"] for m in progress] == [1, 2, 3, 4, 5]  # every 4 s, never 8 s silent
    assert progress[0]["images_per_sec"] == pytest.approx(32.0)
    from rn50.report.console import progress_line

    lines = [progress_line(m, BenchmarkPlan(warmup_steps=1, steps=5).measure_done)
             for m in progress]
    assert [line.split("(")[1] for line in lines] == [
        "1/5 steps, ETA 16 s)", "2/5 steps, ETA 12 s)", "3/5 steps, ETA 8 s)",
        "4/5 steps, ETA 4 s)", "5/5 steps, ETA 0 s)"]


@pytest.mark.parametrize("plan, count, elapsed, step, total", [
    (BenchmarkPlan(steps=50), 10, 1.0, 0.1, 50),
    (BenchmarkPlan(), 10, 3.0, 0.3, 50),            # automatic: 50 steps come before 30 s
    (BenchmarkPlan(), 10, 20.0, 2.0, 15),           # automatic: 30 s come first
    (BenchmarkPlan(), 1, 10.0, 10.0, 5),            # ... but at least 5 steps
    (BenchmarkPlan(duration=10.0), 2, 2.0, 1.0, 10),
])
def test_expected_total_follows_the_plans_stop_rule(plan, count, elapsed, step, total):
    from rn50.measure.progress import expected_total

    got, left = expected_total(plan.measure_done, count, elapsed, step)
    assert got == total
    assert left == pytest.approx((total - count) * step)


@pytest.mark.parametrize("done, total, elapsed, expected", [
    (30, 120, 10.0, "x: 30/120 images (25%), 3.0 images/s, ETA 30 s"),
    (30, None, 10.0, "x: 30 images, 3.0 images/s"),
    (1, 1000, 10.0, "x: 1/1000 images (0%), 0.1 images/s, ETA 2 h 46 min"),
])
def test_count_line(done, total, elapsed, expected):
    from rn50.measure.progress import count_line

    assert count_line("x", done, total, elapsed) == expected


@pytest.mark.parametrize("plan,count,elapsed,done", [
    (BenchmarkPlan(steps=10), 9, 100.0, False),
    (BenchmarkPlan(steps=10), 10, 0.1, True),
    (BenchmarkPlan(steps=10, duration=5.0), 10, 1.0, False),   # whichever ends later
    (BenchmarkPlan(steps=10, duration=5.0), 10, 5.0, True),
    (BenchmarkPlan(duration=5.0), 1, 5.0, True),
    (BenchmarkPlan(), 4, 100.0, False),   # automatic: at least 5 steps
    (BenchmarkPlan(), 5, 30.0, True),     # ... then 30 s
    (BenchmarkPlan(), 50, 1.0, True),     # ... or 50 steps
])
def test_measure_stop_rule(plan, count, elapsed, done):
    assert plan.measure_done(count, elapsed) is done


@pytest.mark.parametrize("plan,count,elapsed,done", [
    (BenchmarkPlan(steps=3), 3, 0.1, False),          # 3 steps on 2 requests: one more
    (BenchmarkPlan(steps=3), 4, 0.1, True),
    (BenchmarkPlan(duration=5.0), 7, 6.0, False),
    (BenchmarkPlan(duration=5.0), 8, 6.0, True),
    (BenchmarkPlan(), 5, 30.0, False),                # automatic minimum 5, rounded to 6
    (BenchmarkPlan(), 6, 30.0, True),
])
def test_timed_steps_are_a_multiple_of_the_requests_in_flight(plan, count, elapsed, done):
    assert plan.measure_done(count, elapsed, in_flight=2) is done


def test_with_two_streams_no_stream_idles_at_the_end_of_the_region():
    # 3 steps asked on 2 streams of 0.5 s: an odd last step would run alone for
    # 0.5 s inside the region (3 x 64 images / 1.0 s = 192/s although the engine
    # does 256/s); rounded to 4 steps both streams end together.
    clock = FakeClock()
    session = TwoStreamSession(clock, step=0.5, batch=64)
    result = run_benchmark(session, np.zeros((64, 3, 224, 224), np.float32),
                           BenchmarkPlan(warmup_steps=2, steps=3), clock=clock)
    assert result["summary"]["steps"] == 4
    assert result["summary"]["measured_seconds"] == pytest.approx(1.0)
    assert result["summary"]["throughput_images_per_sec"] == pytest.approx(256.0)
    assert result["samples"]["step_ms"] == pytest.approx([500.0] * 4)


def test_without_warmup_the_first_inference_still_stays_out_of_the_figures():
    clock = FakeClock()
    session = ClockedSession(clock, [0.9, 0.01, 0.01], batch=1)
    result = run_benchmark(session, np.zeros((1, 3, 224, 224), np.float32),
                           BenchmarkPlan(warmup_steps=0, steps=2), clock=clock)
    assert result["first_inference_ms"] == pytest.approx(900.0)
    assert result["samples"]["step_ms"] == pytest.approx([10.0, 10.0])


def test_auto_warmup_runs_at_least_one_step():
    plan = BenchmarkPlan()
    assert not plan.warmup_done(0, 100.0)
    assert plan.warmup_done(1, 5.0)
    assert plan.warmup_done(10, 0.1)
    assert BenchmarkPlan(warmup_steps=0).warmup_done(0, 0.0)


def test_real_data_stability_is_judged_on_the_end_to_end_steps_printed():
    # end-to-end steps swing 50-150 ms (what the user sees), compute-only is steady: the
    # warning must come from the end-to-end samples, and the first inference is reported
    from rn50.data.pipeline import Batch
    from rn50.data.sources import Unit
    from rn50.scenarios.real_data import run_data_benchmark

    clock = FakeClock()
    swinging = [0.05, 0.15] * 5
    session = ClockedSession(clock, [0.7] + swinging + [0.1] * 11, batch=2)
    array = np.zeros((2, 3, 224, 224), np.float32)
    batches = iter([Batch([Unit(str(i), str(i), 1), Unit(f"{i}b", str(i), 1)], array)
                    for i in range(11)])
    messages = []
    result = run_data_benchmark(session, batches, 2, BenchmarkPlan(warmup_steps=1, steps=10),
                                messages.append, lambda: False, clock=clock)
    assert any(w.startswith("unstable: end-to-end step latency") for w in result["warnings"])
    assert not any(w.startswith("compute-only: unstable") for w in result["warnings"])
    assert result["first_inference_ms"] == pytest.approx(700.0)
    assert {"type": "first_inference", "ms": pytest.approx(700.0)} in messages


def test_real_data_instances_wait_at_the_barrier_between_warm_up_and_timing():
    # bug: the start barrier ran only on the synthetic path, so real-data instances were
    # timed unsynchronised while their regions are merged as if they overlapped
    from rn50.data.pipeline import Batch
    from rn50.data.sources import Unit
    from rn50.scenarios.real_data import run_data_benchmark

    clock = FakeClock()
    session = ClockedSession(clock, [0.1] * 20, batch=1)
    batches = iter([Batch([Unit(str(i), str(i), 1)], np.zeros((1, 3, 224, 224), np.float32))
                    for i in range(10)])
    events = []
    run_data_benchmark(session, batches, 1, BenchmarkPlan(warmup_steps=2, steps=3),
                       events.append, lambda: False, clock=clock,
                       before_timing=lambda: events.append({"type": "barrier",
                                                            "calls": session.calls}))
    kinds = [e["type"] if e["type"] != "phase" else e["phase"] for e in events
             if e["type"] in ("phase", "barrier", "first_inference")]
    assert kinds == ["warmup", "first_inference", "barrier", "benchmark", "compute-only"]
    assert next(e for e in events if e["type"] == "barrier")["calls"] == 2  # after warm-up
