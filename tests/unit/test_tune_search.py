"""rn50 tune's staged search and pruning rules, on synthetic measurements (no engine)."""

from __future__ import annotations

import pytest

from rn50.measure.pareto import dominated_by_margin, dominates, pareto_front
from rn50.tune.recommend import choose, commands, front
from rn50.tune.search import Exhausted, Measurement, Point, Search, Space


def model(point: Point, saturate_at: int = 16, speed: float = 100.0) -> Measurement:
    """A made-up engine: throughput grows with the batch until `saturate_at`, then flat;
    latency = batch / throughput; instances add 40% once."""
    b = min(point.batch, saturate_at)
    rate = speed * (b / (b + 1)) * (1.4 if point.instances > 1 else 1.0)
    return Measurement(point, rate, 1000 * point.batch / rate * point.instances,
                       1000 * point.batch / rate)


def run(space: Space, engine=model) -> tuple[Search, list[Point]]:
    asked: list[Point] = []

    def measure(point: Point, stage: str) -> Measurement:
        asked.append(point)
        return engine(point)

    search = Search(space, measure)
    search.run()
    return search, asked


def test_batch_growth_stops_when_throughput_gains_less_than_two_percent():
    search, asked = run(Space([("ov", "fp32")], cores=1, max_batch=128),
                        lambda p: model(p, saturate_at=8))
    batches = [p.batch for p in asked if p.instances == 1 and not p.trial]
    # 8 saturates: 16 gains 0% -> stop; 32..128 never measured
    assert batches == [1, 2, 4, 8, 16]
    assert any("b16" in d and "stopped growing" in d and "< 2%" in d for d in search.decisions)


def test_a_combo_beaten_on_both_axes_by_more_than_the_margin_is_dropped():
    def engine(p: Point) -> Measurement:
        m = model(p, saturate_at=4, speed=100.0 if p.backend == "fast" else 50.0)
        return m if p.backend == "fast" else Measurement(p, m.throughput, m.p99_ms * 3, m.p50_ms)

    search, asked = run(Space([("fast", "fp32"), ("slow", "fp32")], cores=2), engine)
    assert any(d.startswith("slow fp32: dropped") for d in search.decisions)
    assert not any(p.backend == "slow" and p.instances > 1 for p in asked)  # no later stage
    assert any(p.backend == "fast" and p.instances == 2 for p in asked)


def test_no_combo_is_dropped_within_the_noise_margin():
    def engine(p: Point) -> Measurement:
        m = model(p)
        return m if p.backend == "a" else Measurement(p, m.throughput * 0.97, m.p99_ms * 1.03,
                                                     m.p50_ms)

    search, _ = run(Space([("a", "fp32"), ("b", "fp32")], cores=1), engine)
    assert not any("dropped" in d for d in search.decisions)


def test_a_failed_point_stops_that_branch_and_says_why():
    def engine(p: Point) -> Measurement:
        if p.batch >= 8:
            return Measurement(p, error="needs 30 GiB; batch 4 fits")
        return model(p)

    search, asked = run(Space([("ov", "fp32")], cores=1), engine)
    assert max(p.batch for p in asked) == 8
    assert any("needs 30 GiB" in d for d in search.decisions)


def test_streams_only_for_engines_that_run_them_and_instances_divide_the_cores():
    space = Space([("ov", "fp32"), ("ort", "fp32")], cores=4, max_batch=4,
                  streams=lambda b: b == "ov")
    _, asked = run(space)
    assert {p.streams for p in asked if p.backend == "ort"} == {1}
    assert {p.streams for p in asked if p.backend == "ov"} > {1}
    assert {p.instances for p in asked} <= {1, 2, 4}
    assert Space([], cores=6).parallel() == [2, 6]  # 3 is not a power of two nor all cores


def test_target_stage_measures_the_batch_between_the_two_around_the_target():
    space = Space([("ov", "fp32")], cores=1, max_batch=64, latency_target_ms=200.0)
    _, asked = run(space, lambda p: model(p, saturate_at=64))
    # latency ~ 10 ms * (b + 1): 16 -> 170 ms, 32 -> 330 ms; the target stage tries 24
    assert Point("ov", "fp32", 24) in asked


def test_the_finalists_are_measured_twice_and_their_figures_are_the_mean():
    calls: dict = {}

    def engine(p: Point) -> Measurement:
        calls[p] = calls.get(p, 0) + 1
        m = model(p)
        # the second measurement of every configuration is 10% slower
        return Measurement(p, m.throughput * (0.9 if p.trial else 1.0), m.p99_ms, m.p50_ms)

    search = Search(Space([("ov", "fp32")], cores=1, max_batch=64, latency_target_ms=200.0),
                    lambda p, stage: engine(p))
    merged = {m.point: m for m in search.run()}
    confirmed = [p for p in calls if p.trial == 1]
    assert 2 <= len(confirmed) <= 6 and all(n == 1 for n in calls.values())
    assert Point("ov", "fp32", 1, trial=1) in confirmed  # the lowest p99
    for p in confirmed:
        assert merged[p.config].throughput == pytest.approx(model(p.config).throughput * 0.95)
        assert len(merged[p.config].extra["trials"]) == 2


def test_budget_exhausted_ends_the_search_with_what_it_has():
    count = 0

    def engine(p: Point) -> Measurement:
        nonlocal count
        count += 1
        if count > 3:
            raise Exhausted()
        return model(p)

    search, asked = run(Space([("ov", "fp32")], cores=2), engine)
    assert len(search.results) == 3 and len(search.merged()) == 3
    assert search.decisions[-1].startswith("budget spent")


def test_pareto_front_is_exactly_the_non_dominated_points():
    pts = [(10, 5), (20, 10), (15, 12), (30, 30), (5, 4), (30, 40), (20, 10)]
    got = pareto_front(pts, lambda p: p[0], lambda p: p[1])
    assert got == [(5, 4), (10, 5), (20, 10), (20, 10), (30, 30)]
    for p in pts:
        assert (p in got) == (not any(dominates(q, p) for q in pts))
    assert dominated_by_margin([(10, 10)], [(11, 9)], 0.05)
    assert not dominated_by_margin([(10, 10)], [(10.4, 9)], 0.05)


def test_recommendations_and_their_commands():
    ms = [Measurement(Point("openvino", "int8", 1), 80, 13, 12),
          Measurement(Point("openvino", "int8", 16), 120, 140, 130),
          Measurement(Point("openvino", "int8", 8, instances=2), 130, 200, 150),
          Measurement(Point("onnxruntime", "fp32", 1), error="failed")]
    chosen = choose(ms, target_ms=150)
    assert chosen["latency"].point.batch == 1
    assert chosen["throughput"].point.instances == 2
    assert chosen["throughput_under_target"].point.batch == 16
    assert "within 5 ms" in choose(ms, target_ms=5)["throughput_under_target"]
    assert [m.point.batch for m in front(ms)] == [1, 16, 8]
    cmd = commands(Point("openvino", "int8", 8, instances=2), cores=4, model="m.xml")
    assert cmd["bench"] == ("rn50 bench --backend openvino --precision int8 --model m.xml "
                            "--batch-size 8 --streams 1 --num-instances 2 "
                            "--cores-per-instance 2")
    assert "--num-instances 2 --numa-cores-per-instance 2" in cmd["launch_benchmark"]
    assert cmd["serve"].startswith("rn50 serve --backend openvino --precision int8")
    assert "--max-batch 8" in cmd["serve"]
    assert commands(Point("torch", "fp32", 1), 2)["launch_benchmark"].count("--framework pytorch")


@pytest.mark.parametrize("key", ["bench", "serve", "emit"])
def test_recommended_rn50_commands_parse(key):
    import shlex

    from rn50.cli import build_parser

    cmd = commands(Point("openvino", "bfloat16", 32, streams=2, instances=2), cores=2)
    build_parser().parse_args(shlex.split(cmd[key])[1:])
