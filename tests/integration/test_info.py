"""`rn50 info`: platform and settings as a table, JSON, and copy/paste snippets."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import rn50
from rn50.emit import emit_env, emit_python
from rn50.platform import LogicalCpu, Platform
from rn50.settings import UserFlags


def test_info_json_matches_the_python_api(run_cli):
    proc = run_cli("-m", "rn50", "info", "--json")
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert data["platform"]["derived"]["physical_cores"] >= 1
    assert data["settings"] == rn50.recommend().to_dict()


def test_info_table_shows_reasons(run_cli):
    proc = run_cli("-m", "rn50", "info", "--num-intra-threads", "1")
    assert proc.returncode == 0, proc.stderr
    assert "physical cores" in proc.stdout and "FP32 peak" in proc.stdout
    assert any("intra_op_threads" in line and "set by --num-intra-threads" in line
               for line in proc.stdout.splitlines())


def test_info_rejects_bad_flags_in_one_line(run_cli):
    proc = run_cli("-m", "rn50", "info", "--socket-id", "7")
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [proc.stderr.strip()]


def server() -> Platform:
    cpus = tuple(LogicalCpu(c, c % 56, (c % 56) // 28, (c % 56) // 28) for c in range(112))
    return Platform(cpus=cpus, allowed_cpus=tuple(range(112)), model_name="Xeon 8180",
                    numactl="/usr/bin/numactl")


def test_emit_env_is_valid_shell_with_the_seed_exports(tmp_path):
    text = emit_env(rn50.recommend(server(), UserFlags(socket_id=0), {}), server())
    assert "export OMP_NUM_THREADS=28" in text
    assert "export KMP_AFFINITY=granularity=fine,verbose,compact,1,0" in text
    assert "export KMP_BLOCKTIME=1" in text and "export KMP_SETTINGS=1" in text
    assert "numactl --cpunodebind=0 --membind=0" in text
    script = tmp_path / "env.sh"
    script.write_text(text + 'echo "$OMP_NUM_THREADS $KMP_BLOCKTIME"\n')
    import subprocess
    out = subprocess.run(["bash", str(script)], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "28 1"


def test_emit_python_is_valid_python_for_every_engine():
    settings = rn50.recommend(server(), UserFlags(socket_id=1), {})
    text = emit_python(settings, server())
    ast.parse(text)
    for expected in ("tf.config.threading.set_intra_op_parallelism_threads(28)",
                     "inter_op_parallelism_threads=1", "options.intra_op_num_threads = 28",
                     "'INFERENCE_NUM_THREADS': 28", "'INFERENCE_PRECISION_HINT': 'f32'",
                     "torch.set_num_threads(28)", "os.environ['KMP_BLOCKTIME'] = '1'"):
        assert expected in text


SEED_SERVER = str(Path(__file__).resolve().parents[1] / "data" / "lscpu_2x28_smt.txt")


def test_dry_run_on_the_seed_server_prints_each_instance_command_and_runs_nothing(run_cli,
                                                                                 tmp_path):
    proc = run_cli("-m", "rn50", "bench", "--dry-run", "--topology", SEED_SERVER,
                   "--num-instances", "4", "--output-dir", str(tmp_path / "o"))
    assert proc.returncode == 0, proc.stderr
    commands = [line.strip() for line in proc.stdout.splitlines()
                if line.strip().startswith("env ")]
    assert len(commands) == 4
    assert "OMP_NUM_THREADS=14 numactl --physcpubind=0-13 --localalloc" in commands[0]
    assert "OMP_NUM_THREADS=14 numactl --physcpubind=42-55 --localalloc" in commands[3]
    assert "Intel(R) Xeon(R) Platinum 8180" in proc.stdout and "Dry run" in proc.stdout
    assert not (tmp_path / "o").exists()


def test_recorded_topology_cannot_run_for_real(run_cli, tmp_path):
    proc = run_cli("-m", "rn50", "bench", "--topology", SEED_SERVER)
    assert proc.returncode == 2
    assert proc.stderr.strip().endswith("add --dry-run to see what would run there")


def test_info_on_a_recorded_topology_with_an_instance_plan(run_cli):
    proc = run_cli("-m", "rn50", "info", "--json", "--topology", SEED_SERVER,
                   "--cores-per-instance", "socket")
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert data["platform"]["derived"]["physical_cores"] == 56
    plan = data["instance_plan"]
    assert [g["cpulist"] for g in plan["groups"]] == ["0-27", "28-55"]
