"""When `rn50 loadtest` says its own figures may describe the client rather than the server."""

from rn50.serve.loadtest import client_warnings, client_line


def client(cpu=0.1, lag_p99=0.5):
    return {"cpu_share": cpu, "send_lag_ms": {"p50": lag_p99 / 2, "p99": lag_p99}}


def test_a_quiet_punctual_client_raises_no_warning():
    assert client_warnings(client(0.3, 0.8), {"p99": 10.0}) == []


def test_a_busy_client_is_named():
    [warning] = client_warnings(client(cpu=0.95), {"p99": 10.0})
    assert "95% of a CPU" in warning and "--cpus" in warning


def test_late_sends_are_reported_only_when_they_matter_to_the_latency():
    [warning] = client_warnings(client(lag_p99=3.0), {"p99": 10.0})
    assert "3.0 ms (p99) after their scheduled time" in warning
    assert client_warnings(client(lag_p99=3.0), {"p99": 100.0}) == []  # 3% of the p99
    assert client_warnings(client(lag_p99=1.5), {"p99": 5.0}) == []  # timer resolution


def test_the_client_line_says_where_it_ran():
    line = client_line(dict(client(0.42, 1.0), cpus="3", pinned=True,
                            latency_from_send_ms={"p50": 4.0, "p99": 6.0}))
    assert line.startswith("load generator: pinned to CPUs 3, 42% of a CPU; requests sent p50 "
                           "0.50 / p99 1.00 ms after schedule")
    assert "latency from the send: p50 4.00 / p99 6.00 ms" in line


def test_a_run_with_no_answered_request_still_prints_its_statuses():
    from rn50.serve.loadtest import _Tally, result_lines, summary

    tally = _Tally()
    tally.statuses, tally.refused, tally.refused_sent = {"429": 3}, [0.004] * 3, [0.003] * 3
    tally.lags, tally.elapsed = [0.0] * 3, 1.0
    record = dict(summary(tally, 10.0), url="http://x", mode="open loop", inputs="t")
    assert record["latency_ms"] == {} and record["ok"] == 0
    lines = result_lines(record)
    assert "  requests by status: 429: 3" in lines
    assert any("refused (429) p99 4.00 ms from the scheduled time, 3.00 ms" in ln for ln in lines)
