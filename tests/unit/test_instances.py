"""Golden multi-instance plans on recorded topologies: exact CPU groups, threads and commands."""

from __future__ import annotations

import pytest

from rn50.errors import ConfigError
from rn50.instances import plan_instances
from rn50.launch.plan import plan_launch
from rn50.platform import LogicalCpu, Platform, format_cpulist
from rn50.settings import UserFlags, plan_processes

from test_settings import container, server_2x28, this_machine


def epyc_4_nodes() -> Platform:
    """1 socket x 64 cores, SMT on, NPS4: 4 NUMA nodes of 16 cores (Linux numbering)."""
    cpus = tuple(LogicalCpu(cpu, cpu % 64, 0, (cpu % 64) // 16) for cpu in range(128))
    return Platform(cpus=cpus, allowed_cpus=tuple(range(128)), numactl="/usr/bin/numactl")


def odd_cores(count=7) -> Platform:
    cpus = tuple(LogicalCpu(i, i, 0, 0) for i in range(count))
    return Platform(cpus=cpus, allowed_cpus=tuple(range(count)), numactl="/usr/bin/numactl")


def cpulists(process_plan) -> list[str]:
    return [format_cpulist(s.cpus.value) for s in process_plan.processes]


def test_this_machine_two_instances_of_one_core():
    p = plan_processes(this_machine(), UserFlags(num_instances=2), {})
    assert cpulists(p) == ["0", "1"]
    assert [s.intra_threads.value for s in p.processes] == [1, 1]
    assert [s.child_env()["OMP_NUM_THREADS"] for s in p.processes] == ["1", "1"]
    assert [s.instance.value for s in p.processes] == [{"index": 0, "of": 2},
                                                         {"index": 1, "of": 2}]
    assert p.instances.idle_cpus == ()
    # numactl absent here: each child gets sched_setaffinity to its own core
    launches = [plan_launch(s, None) for s in p.processes]
    assert [lp.affinity for lp in launches] == [(0,), (1,)]


def test_num_instances_1_is_one_plain_process():
    p = plan_processes(this_machine(), UserFlags(num_instances=1), {})
    assert p.instances is None and cpulists(p) == ["0-1"]
    assert p.processes[0].intra_threads.value == 2 and p.processes[0].instance is None


def test_throughput_on_two_sockets_runs_one_instance_per_node_unless_told_otherwise():
    p = plan_processes(server_2x28(), UserFlags(mode="throughput"), {})
    assert cpulists(p) == ["0-27", "28-55"]
    assert "one instance per node" in p.instances.reason
    assert "--num-instances 1" in p.instances.reason  # how to opt out is printed
    one = plan_processes(server_2x28(), UserFlags(mode="throughput", num_instances=1), {})
    assert one.instances is None and cpulists(one) == ["0-55"]
    latency = plan_processes(server_2x28(), UserFlags(), {})  # batch 1: one process
    assert latency.instances is None
    single_node = plan_processes(this_machine(), UserFlags(mode="throughput"), {})
    assert single_node.instances is None


def test_server_2x28_two_instances_get_one_socket_each():
    p = plan_processes(server_2x28(), UserFlags(num_instances=2), {})
    assert cpulists(p) == ["0-27", "28-55"]
    assert [s.numa_nodes.value for s in p.processes] == [(0,), (1,)]
    assert [s.intra_threads.value for s in p.processes] == [28, 28]
    argv = plan_launch(p.processes[1], "/usr/bin/numactl").argv
    assert argv[:3] == ("/usr/bin/numactl", "--physcpubind=28-55", "--localalloc")


def test_server_2x28_cores_per_instance_4_fills_both_sockets():
    p = plan_processes(server_2x28(), UserFlags(cores_per_instance=4), {})
    assert len(p.processes) == 14
    assert cpulists(p)[:2] == ["0-3", "4-7"] and cpulists(p)[-1] == "52-55"
    assert p.instances.idle_cpus == ()


def test_server_2x28_three_instances_never_span_sockets_and_report_idle_cores():
    p = plan_processes(server_2x28(), UserFlags(num_instances=3), {})
    # 18 cores each would span the sockets; 14 fits 2 per socket: 3 taken, one group idle
    assert cpulists(p) == ["0-13", "14-27", "28-41"]
    assert p.instances.idle_cpus == tuple(range(42, 56))
    assert "14 physical core(s) left idle (CPUs 42-55)" in p.instances.idle_reason


def test_server_2x28_smt_include_keeps_siblings_together():
    p = plan_processes(server_2x28(), UserFlags(cores_per_instance=2, num_instances=2,
                                                smt="include"), {})
    assert cpulists(p) == ["0-1,56-57", "28-29,84-85"]
    assert [s.intra_threads.value for s in p.processes] == [4, 4]


def test_server_2x28_socket_instances_like_model_zoo():
    p = plan_processes(server_2x28(), UserFlags(cores_per_instance="socket"), {})
    assert cpulists(p) == ["0-27", "28-55"]


def test_socket_id_limits_the_pool():
    p = plan_processes(server_2x28(), UserFlags(socket_id=1, cores_per_instance=7), {})
    assert cpulists(p) == ["28-34", "35-41", "42-48", "49-55"]


def test_epyc_4_nodes_groups_stay_inside_nodes():
    p = plan_processes(epyc_4_nodes(), UserFlags(cores_per_instance=12), {})
    assert cpulists(p) == ["0-11", "16-27", "32-43", "48-59"]
    assert p.instances.idle_cpus == (12, 13, 14, 15, 28, 29, 30, 31, 44, 45, 46, 47,
                                     60, 61, 62, 63)
    with pytest.raises(ConfigError, match="no NUMA node has that many usable physical cores "
                                          r"\(largest: 16\)"):
        plan_processes(epyc_4_nodes(), UserFlags(cores_per_instance=20), {})


def test_odd_core_count_reports_the_remainder():
    p = plan_processes(odd_cores(7), UserFlags(cores_per_instance=2), {})
    assert cpulists(p) == ["0-1", "2-3", "4-5"]
    assert p.instances.idle_cpus == (6,)
    assert "do not make a whole group of 2" in p.instances.idle_reason
    p = plan_processes(odd_cores(7), UserFlags(num_instances=2), {})
    assert cpulists(p) == ["0-2", "3-5"] and p.instances.idle_cpus == (6,)


def test_cgroup_quota_of_3_cpus():
    p = plan_processes(container(quota=3.0), UserFlags(num_instances=3), {})
    assert cpulists(p) == ["0", "1", "2"]
    with pytest.raises(ConfigError, match="--num-instances 4 exceeds the 3 usable physical cores"):
        plan_processes(container(quota=3.0), UserFlags(num_instances=4), {})


def test_user_threads_apply_to_every_instance_with_advice():
    p = plan_processes(this_machine(), UserFlags(num_instances=2, intra_threads=2), {})
    assert [s.intra_threads.value for s in p.processes] == [2, 2]
    assert any("exceed instance 1's 1 CPUs" in a for a in p.processes[0].advice)


@pytest.mark.parametrize("flags, message", [
    (UserFlags(num_instances=0), "--num-instances must be at least 1"),
    (UserFlags(cores_per_instance=0), "--cores-per-instance must be at least 1"),
    (UserFlags(num_instances=3, cores_per_instance=1), "--num-instances 3 x 1 core"),
    (UserFlags(cores_per_instance="sockets"), "must be a whole number or 'socket'"),
])
def test_bad_instance_flags(flags, message):
    with pytest.raises(ConfigError, match=message):
        plan_processes(this_machine(), flags, {})


def test_settings_round_trip_keeps_the_instance():
    from rn50.settings import settings_from_dict

    s = plan_processes(server_2x28(), UserFlags(num_instances=2), {}).processes[1]
    again = settings_from_dict(s.to_dict())
    assert again == s and again.numactl_args() == ["--physcpubind=28-55", "--localalloc"]


def test_planner_alone_on_a_pool():
    plan = plan_instances(server_2x28(), tuple(range(8)), None, 3)
    assert [format_cpulist(g.cpus) for g in plan.groups] == ["0-2", "3-5"]
    assert plan.idle_cpus == (6, 7)
