"""A new engine and a new scenario, each added as one module + one registry line.

The registry lines here are entry points of a small package the test writes (what
a third-party package would ship); inside rn50 the line is a name in
`backends.BUILTIN` or `scenarios.REGISTRY`. Everything else — the CLI, the
precision and format checks, the engine worker — picks them up from there.
"""

from __future__ import annotations

import json
import os
import textwrap

import numpy as np
import pytest

TOY_BACKEND = '''
import numpy as np
from rn50.backends._base import Capabilities, InputSpec, SyncSession

CAPABILITIES = Capabilities(
    name="toy", backend_class="ToyBackend", engine_module=None, install=None,
    formats=("onnx",), precisions=("fp32",), reads_back="its own constant")


class ToySession(SyncSession):
    def __init__(self, batch):
        self.input_spec = InputSpec("input", (batch, 3, 224, 224), "NCHW")
        self.load_timings = {"read_s": 0.0, "compile_s": 0.0}
        self.num_classes = 1000

    def run(self, batch):  # class i scores the mean pixel times i
        return batch.reshape(batch.shape[0], -1).mean(axis=1)[:, None] * np.arange(1000.0)

    def applied_settings(self):
        return {"applied": {"toy": "yes"}, "execution_precision": "f32",
                "execution_precision_source": "toy"}


class ToyBackend:
    name = "toy"

    def versions(self):
        return {"toy": "0.1"}

    def load(self, model, settings, precision, preprocess=None):
        return ToySession(int(settings.batch_size.value))
'''

TOY_SCENARIO = '''
def run(ctx, job):
    return {"toy": {"input_shape": list(ctx.input_spec.shape), "word": job.get("word")}}
'''

ENTRY_POINTS = '''
[rn50.backends]
toy = rn50_toy.backend

[rn50.scenarios]
toy = rn50_toy.scenario
'''


@pytest.fixture
def plugin(tmp_path, monkeypatch):
    package = tmp_path / "site" / "rn50_toy"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "backend.py").write_text(textwrap.dedent(TOY_BACKEND))  # one file
    (package / "scenario.py").write_text(textwrap.dedent(TOY_SCENARIO))  # one file
    info = tmp_path / "site" / "rn50_toy-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: rn50-toy\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(ENTRY_POINTS)  # a line each
    site = str(tmp_path / "site")
    monkeypatch.syspath_prepend(site)
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [site,
                                                                    os.environ.get("PYTHONPATH")])))
    import rn50.backends as backends
    import rn50.scenarios as scenarios

    for cached in (backends._modules, backends.capabilities, scenarios._modules):
        cached.cache_clear()
    yield site
    for cached in (backends._modules, backends.capabilities, scenarios._modules):
        cached.cache_clear()


def test_a_new_backend_runs_from_the_cli(plugin, run_cli, tmp_path):
    proc = run_cli("-m", "rn50", "bench", "--backend", "toy", "--warmup-steps", "1", "--steps",
                   "3", "--output-dir", str(tmp_path / "o"))
    assert proc.returncode == 0, proc.stderr
    record = json.loads(next((tmp_path / "o").glob("*.json")).read_text())
    assert record["engine"]["name"] == "toy" and record["engine"]["applied"] == {"toy": "yes"}
    assert record["summary"]["steps"] == 3
    # its declared capabilities drive the checks: it runs fp32 only
    refused = run_cli("-m", "rn50", "bench", "--backend", "toy", "--precision", "bfloat16")
    assert refused.returncode == 2
    assert "the toy backend runs fp32 only" in refused.stderr
    assert "toy [fp32]" in run_cli("-m", "rn50", "bench", "--help").stdout


def test_a_new_scenario_runs_in_an_engine_worker(plugin):
    from rn50.api import recommend
    from rn50.launch.plan import plan_launch
    from rn50.launch.worker import EngineWorker
    from rn50.scenarios import get_scenario
    from rn50.settings import UserFlags

    assert get_scenario("toy").__module__ == "rn50_toy.scenario"
    settings = recommend(flags=UserFlags(batch_size=2))
    job = {"backend": "toy", "precision": "fp32", "model": {"path": "-", "name": "toy",
                                                            "source": "builtin",
                                                            "random_weights": True},
           "settings": settings.to_dict()}
    with EngineWorker(plan_launch(settings, None, {}), os.environ).start() as worker:
        worker.load(job)
        worker.send({"op": "run", "scenario": "toy", "word": "hello"})
        result = worker.next_event(60)
        assert result["type"] == "result", result
        assert result["result"]["toy"] == {"input_shape": [2, 3, 224, 224], "word": "hello"}
        out = worker.submit(np.full((1, 3, 224, 224), 2.0, np.float32)).result(30)
    np.testing.assert_allclose(out[0, :3], [0.0, 2.0, 4.0])
