"""The seed's recommended settings for recorded machines: exact values, sources and reasons."""

from __future__ import annotations

from dataclasses import replace

import pytest

from rn50.errors import ConfigError
from rn50.platform import LogicalCpu, Platform
from rn50.settings import (SEED_KMP_AFFINITY, UserFlags, recommend, settings_from_dict)


def this_machine(numactl=None) -> Platform:
    cpus = (LogicalCpu(0, 0, 0, 0), LogicalCpu(1, 1, 0, 0))
    return Platform(cpus=cpus, allowed_cpus=(0, 1), max_mhz=2100.0,
                    flags=frozenset({"avx2", "fma", "avx512f"}), numactl=numactl)


def server_2x28(numactl="/usr/bin/numactl") -> Platform:
    cpus = tuple(LogicalCpu(cpu, cpu % 56, (cpu % 56) // 28, (cpu % 56) // 28)
                 for cpu in range(112))
    return Platform(cpus=cpus, allowed_cpus=tuple(range(112)), max_mhz=3800.0, numactl=numactl)


def container(quota=3.0) -> Platform:
    cpus = tuple(LogicalCpu(i, i, 0, 0) for i in range(8))
    return Platform(cpus=cpus, allowed_cpus=tuple(range(8)), cgroup_cpu_quota=quota)


def test_this_machine_defaults():
    s = recommend(this_machine(), UserFlags(), {})
    assert s.batch_size.value == 1 and s.batch_size.source == "seed table"
    assert (s.intra_threads.value, s.inter_threads.value, s.streams.value) == (2, 1, 1)
    assert s.cpus.value == (0, 1)
    assert s.binding.value == "sched_setaffinity" and "numactl is not installed" in s.binding.reason
    assert s.child_env() == {"OMP_NUM_THREADS": "2", "KMP_AFFINITY": SEED_KMP_AFFINITY,
                             "KMP_BLOCKTIME": "1", "KMP_SETTINGS": "1"}
    assert s.data_layout.value == "NCHW"
    assert s.numactl_args() == []
    assert any("Hyperthreading is off" in a and "BIOS" in a for a in s.advice)


def test_server_whole_machine():
    s = recommend(server_2x28(), UserFlags(mode="throughput"), {})
    assert s.batch_size.value == 128
    assert s.intra_threads.value == 56
    assert s.cpus.value == tuple(range(56))  # one hardware thread per core, siblings idle
    assert s.binding.value == "numactl"
    assert s.numactl_args() == ["--physcpubind=0-55"]
    assert s.streams.value == "auto"
    assert not any("Hyperthreading" in a for a in s.advice)


def test_scenarios_that_wait_for_each_batch_run_one_stream():
    """classify and accuracy send one batch and wait for it: two OpenVINO streams of one
    thread each would leave a core idle (measured: classify 26.8 -> 44.8 images/s on 2 cores
    with one stream); a benchmark keeps several in flight and lets the engine choose."""
    from rn50.api import run_flags
    from rn50.config import DataConfig, RunConfig

    for scenario, expected in (("classify", 1), ("accuracy", 1), ("benchmark", "auto")):
        config = RunConfig(flags=UserFlags(batch_size=8), scenario=scenario,
                           data=DataConfig(("x",)) if scenario != "benchmark" else None)
        s = recommend(server_2x28(), run_flags(config), {})
        assert s.streams.value == expected, scenario
    s = recommend(server_2x28(), replace(run_flags(config), one_batch_at_a_time=True,
                                         streams=4), {})
    assert s.streams.value == 4  # --streams still wins


def test_server_socket_1_uses_seed_numa_binding():
    s = recommend(server_2x28(), UserFlags(socket_id=1), {})
    assert s.intra_threads.value == 28
    assert s.cpus.value == tuple(range(28, 56))
    assert s.numa_nodes.value == (1,)
    assert s.numactl_args() == ["--cpunodebind=1", "--membind=1"]
    assert s.env["OMP_NUM_THREADS"].value == "28"


def test_server_socket_and_num_cores():
    s = recommend(server_2x28(), UserFlags(socket_id=1, num_cores=4), {})
    assert s.cpus.value == (28, 29, 30, 31) and s.cpus.source == "flag"
    assert s.intra_threads.value == 4
    assert s.numactl_args() == ["--physcpubind=28-31", "--membind=1"]


def test_socket_without_numactl_falls_back_to_affinity_and_says_memory_is_unbound():
    s = recommend(server_2x28(numactl=None), UserFlags(socket_id=0), {})
    assert s.binding.value == "sched_setaffinity"
    assert "memory is not bound" in s.binding.reason


def test_cgroup_quota_limits_cores():
    s = recommend(container(3.0), UserFlags(), {})
    assert s.cpus.value == (0, 1, 2) and s.cpus.source == "platform"
    assert s.intra_threads.value == 3


def test_batch_size_minus_one_means_128():
    s = recommend(this_machine(), UserFlags(batch_size=-1), {})
    assert s.batch_size.value == 128 and "Model Zoo" in s.batch_size.reason


def test_environment_wins_over_table_and_is_reported():
    env = {"OMP_NUM_THREADS": "1", "KMP_BLOCKTIME": "0"}
    s = recommend(this_machine(), UserFlags(), env)
    assert s.intra_threads.value == 1 and s.intra_threads.source == "environment"
    assert s.env["KMP_BLOCKTIME"].value == "0" and s.env["KMP_BLOCKTIME"].source == "environment"
    assert s.env["KMP_AFFINITY"].source == "seed table"


def test_flag_wins_over_environment_and_says_so():
    s = recommend(this_machine(), UserFlags(intra_threads=2), {"OMP_NUM_THREADS": "1"})
    assert s.intra_threads.value == 2 and s.intra_threads.source == "flag"
    omp = s.env["OMP_NUM_THREADS"]
    assert omp.value == "2" and "overrides OMP_NUM_THREADS=1" in omp.reason


def test_oversubscription_is_advised():
    s = recommend(this_machine(), UserFlags(intra_threads=8), {})
    assert any("exceed" in a for a in s.advice)


@pytest.mark.parametrize("flags,message", [
    (UserFlags(socket_id=3), "--socket-id 3: this machine has 1 socket(s) (valid: 0)"),
    (UserFlags(num_cores=0), "--num-cores must be at least 1 (got 0)"),
    (UserFlags(num_cores=3), "--num-cores 3 exceeds the 2 physical cores available on all sockets"),
    (UserFlags(batch_size=0), "--batch-size must be at least 1 (got 0)"),
    (UserFlags(intra_threads=0), "--num-intra-threads must be at least 1 (got 0)"),
    (UserFlags(streams=-2), "--streams must be at least 1 (got -2)"),
    (UserFlags(binding="numactl"), "--bind numactl: numactl is not installed"),
])
def test_invalid_flags(flags, message):
    with pytest.raises(ConfigError) as err:
        recommend(this_machine(), flags, {})
    assert str(err.value).startswith(message)


def test_num_cores_over_socket_uses_model_zoo_style_message():
    with pytest.raises(ConfigError, match="--num-cores 30 exceeds the 28 physical cores available "
                                          "on socket 0"):
        recommend(server_2x28(), UserFlags(socket_id=0, num_cores=30), {})


def test_settings_round_trip_through_json():
    s = recommend(server_2x28(), UserFlags(socket_id=1, num_cores=4), {"KMP_BLOCKTIME": "0"})
    assert settings_from_dict(s.to_dict()) == s


def test_bfloat16_builds_nhwc_graphs_unless_the_user_says_otherwise():
    bf16 = recommend(this_machine(), UserFlags(precision="bfloat16"), {})
    assert bf16.data_layout.value == "NHWC" and "BF16" in bf16.data_layout.reason
    kept = recommend(this_machine(), UserFlags(precision="bfloat16", data_format="NCHW"), {})
    assert (kept.data_layout.value, kept.data_layout.source) == ("NCHW", "flag")
    assert recommend(this_machine(), UserFlags(precision="int8"), {}).data_layout.value == "NCHW"


def test_the_run_precision_reaches_the_settings():
    from rn50.config import RunConfig

    config = RunConfig(flags=UserFlags(batch_size=4), precision="bfloat16")
    assert config.flags.precision == "bfloat16"
    assert recommend(this_machine(), config.flags, {}).data_layout.value == "NHWC"


def test_accuracy_and_classify_on_a_two_node_machine_run_in_one_process():
    # bug: instances were switched on (batch > 1, 2 NUMA nodes) without knowing the scenario,
    # and accuracy/classify then refused to run ("accuracy runs in one process")
    from rn50.api import benchmark
    from rn50.config import DataConfig, RunConfig
    from rn50.settings import plan_processes

    flags = UserFlags(batch_size=64)
    assert plan_processes(server_2x28(), flags, {}).instances is not None  # benchmarks: per node
    assert plan_processes(server_2x28(), UserFlags(batch_size=64, auto_instances=False),
                          {}).instances is None
    for scenario in ("accuracy", "classify"):
        config = RunConfig(flags=UserFlags(scenario_batch=64), scenario=scenario,
                           data=DataConfig(("/no/such/images",)))
        with pytest.raises(ConfigError) as error:
            benchmark(config, environ={}, platform=server_2x28())
        assert "runs in one process" not in str(error.value)
        assert "/no/such/images: no such file or folder" in str(error.value)


def test_settings_say_what_the_run_really_uses():
    # a command's default batch is not "set by --batch-size"; an engine without streams runs
    # one batch at a time; a model file keeps its own layout
    settings = recommend(this_machine(), UserFlags(scenario_batch=8, engine="tensorflow",
                                                   engine_streams=False, model_file=True), {})
    assert (settings.batch_size.value, settings.batch_size.source) == (8, "rn50")
    assert "default batch" in settings.batch_size.reason
    assert settings.streams.value == 1
    assert settings.streams.reason == "tensorflow runs one batch at a time"
    assert settings.data_layout.value == "model's own"
    ignored = recommend(this_machine(), UserFlags(batch_size=8, streams=2, engine="torch",
                                                  engine_streams=False), {})
    assert any("--streams 2 is not applied: torch has no parallel streams" in a
               for a in ignored.advice)
    openvino = recommend(this_machine(), UserFlags(batch_size=8), {})
    assert openvino.streams.value == "auto" and openvino.data_layout.value == "NCHW"
