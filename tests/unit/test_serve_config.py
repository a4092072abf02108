"""How many batches `rn50 serve` hands each engine worker at once, and why."""

import pytest

from rn50.config import RunConfig
from rn50.errors import ConfigError
from rn50.serve.config import ServeConfig


def test_by_default_a_worker_holds_what_its_engine_runs_in_parallel():
    config = ServeConfig(RunConfig())
    assert config.in_flight({"infer_requests": 3}) == (
        3, "the requests its engine runs in parallel")
    assert config.in_flight({}) == (1, "the requests its engine runs in parallel")


def test_the_flag_overrides_the_engine():
    assert ServeConfig(RunConfig(), batches_in_flight=2).in_flight({"infer_requests": 4}) == (
        2, "--batches-in-flight")


@pytest.mark.parametrize("value", [0, -1, 65])
def test_out_of_range_is_refused_naming_the_flag(value):
    with pytest.raises(ConfigError, match="--batches-in-flight"):
        ServeConfig(RunConfig(), batches_in_flight=value)
