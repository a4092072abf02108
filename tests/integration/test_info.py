"""`rn50 info`: platform and settings as a table, JSON, and copy/paste snippets."""

from __future__ import annotations

import ast
import json

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
