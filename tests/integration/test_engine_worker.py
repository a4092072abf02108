"""EngineWorker: a pinned engine process answering a stream of requests, on real engines."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from pathlib import Path

import numpy as np
import pytest

from rn50.api import recommend
from rn50.errors import WorkerError
from rn50.launch.plan import plan_launch
from rn50.launch.worker import EngineWorker, WorkerPool
from rn50.settings import UserFlags

pytest.importorskip("openvino")


def tiny_classifier(path: Path) -> Path:
    """A small real ONNX image classifier (conv, relu, global pool, 1000-way FC)."""
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    weights = {"w": rng.normal(0, 0.2, (8, 3, 3, 3)).astype(np.float32),
               "b": rng.normal(0, 0.1, 8).astype(np.float32),
               "fc": rng.normal(0, 0.3, (8, 1000)).astype(np.float32)}
    nodes = [helper.make_node("Conv", ["input", "w", "b"], ["c"], pads=[1, 1, 1, 1],
                              strides=[4, 4]),
             helper.make_node("Relu", ["c"], ["r"]),
             helper.make_node("GlobalAveragePool", ["r"], ["p"]),
             helper.make_node("Flatten", ["p"], ["f"]),
             helper.make_node("MatMul", ["f", "fc"], ["logits"])]
    graph = helper.make_graph(
        nodes, "tiny", [helper.make_tensor_value_info("input", TensorProto.FLOAT,
                                                      [None, 3, 224, 224])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [None, 1000])],
        [numpy_helper.from_array(v, k) for k, v in weights.items()])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    path.write_bytes(model.SerializeToString())
    return path


def load_job(model_path: str, backend: str, batch: int, streams: int | None = None):
    from rn50.config import ModelConfig
    from rn50.models.resolve import file_model

    settings = recommend(flags=UserFlags(batch_size=batch, streams=streams))
    model = file_model(ModelConfig(model_path), {})
    job = {"backend": backend, "precision": "fp32", "model": model.to_dict(),
           "settings": settings.to_dict()}
    return job, plan_launch(settings, None, {}), model, settings


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    return tiny_classifier(tmp_path_factory.mktemp("tiny") / "tiny.onnx")


@pytest.mark.parametrize("backend, streams", [("openvino", None), ("onnxruntime", 1)])
def test_a_thousand_requests_four_in_flight_equal_a_direct_run(tiny, backend, streams):
    pytest.importorskip(backend)
    from rn50.backends import get_backend

    job, plan, model, settings = load_job(str(tiny), backend, batch=2, streams=streams)
    direct = get_backend(backend).load(model, settings, "fp32")
    rng = np.random.default_rng(1)
    inputs = [rng.normal(0, 1, (1 + i % 2, 3, 224, 224)).astype(np.float32) for i in range(1000)]
    with EngineWorker(plan, os.environ).start() as worker:
        loaded = worker.load(job)
        assert loaded["input"]["shape"] == [2, 3, 224, 224]
        worker.open_stream(slots=4)
        pending, answers = [], {}
        for i, array in enumerate(inputs):
            pending.append((i, worker.submit(array)))
            if len(pending) == 4:  # four in flight at a time
                j, future = pending.pop(0)
                answers[j] = future.result(timeout=30)
        answers.update((j, f.result(timeout=30)) for j, f in pending)
    for i, array in enumerate(inputs):
        padded = np.zeros((2, 3, 224, 224), np.float32)
        padded[:len(array)] = array
        expected = np.asarray(direct.run(padded))[:len(array)]
        np.testing.assert_allclose(answers[i], expected, rtol=1e-5, atol=1e-5)


def test_usable_from_asyncio(tiny):
    job, plan, _, _ = load_job(str(tiny), "openvino", batch=1)

    async def main(worker):
        arrays = [np.full((1, 3, 224, 224), v, np.float32) for v in (0.0, 1.0, 2.0)]
        return await asyncio.gather(*(asyncio.wrap_future(worker.submit(a)) for a in arrays))

    with EngineWorker(plan, os.environ).start() as worker:
        worker.load(job)
        results = asyncio.run(main(worker))
    assert [r.shape for r in results] == [(1, 1000)] * 3
    assert not np.allclose(results[0], results[2])


def group_members(pgid: int) -> list[int]:
    members = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[2]) == pgid and fields[0] != "Z":
                members.append(int(entry.name))
    return members


def test_kill_9_fails_pending_futures_within_a_second_and_leaves_nothing(model_cache):
    from rn50.config import ModelConfig
    from rn50.models.resolve import builtin_model

    model = builtin_model(ModelConfig(cache_dir=str(model_cache)), {}, lambda line: None)
    settings = recommend(flags=UserFlags(batch_size=4, streams=1))
    job = {"backend": "openvino", "precision": "fp32", "model": model.to_dict(),
           "settings": settings.to_dict()}
    worker = EngineWorker(plan_launch(settings, None, {}), os.environ, name="instance 1").start()
    worker.load(job)
    worker.open_stream(slots=4)
    batch = np.zeros((4, 3, 224, 224), np.float32)
    futures = [worker.submit(batch) for _ in range(4)]  # ~0.3 s of work queued
    pid = worker.pid
    assert group_members(pid) == [pid]
    os.kill(pid, signal.SIGKILL)
    killed = time.monotonic()
    for future in futures:
        with pytest.raises(WorkerError, match=r"instance 1 \(pid \d+.*was killed by SIGKILL"):
            future.result(timeout=1.0)
    assert time.monotonic() - killed < 1.0
    with pytest.raises(WorkerError, match="was killed by SIGKILL"):  # later ones fail at once
        worker.submit(batch).result(timeout=1.0)
    worker.close()
    assert group_members(pid) == []
    assert not Path(f"/proc/{pid}").exists()


def test_pool_spreads_requests_over_instances(tiny):
    job, plan, _, settings = load_job(str(tiny), "openvino", batch=1)
    with WorkerPool.start([plan, plan], job, os.environ, slots=2) as pool:
        futures = [pool.submit(np.ones((1, 3, 224, 224), np.float32)) for _ in range(8)]
        results = [f.result(timeout=30) for f in futures]
        pids = {w.pid for w in pool.workers}
    assert len(pids) == 2 and all(np.allclose(r, results[0], atol=1e-5) for r in results)


def test_a_bad_request_is_refused_before_it_reaches_the_worker(tiny):
    from rn50.errors import ConfigError

    job, plan, _, _ = load_job(str(tiny), "openvino", batch=2)
    with EngineWorker(plan, os.environ).start() as worker:
        worker.load(job)
        with pytest.raises(ConfigError, match=r"takes up to 2 images of \(3, 224, 224\)"):
            worker.submit(np.zeros((3, 3, 224, 224), np.float32))
        with pytest.raises(ConfigError, match="takes float32, not float64"):
            worker.submit(np.zeros((1, 3, 224, 224)))
        assert worker.submit(np.zeros((1, 3, 224, 224), np.float32)).result(30).shape == (1, 1000)


def test_channel_delivers_the_last_words_of_a_peer_that_died_with_requests_unread():
    # a worker that fails to load sends its error and exits with rn50's next requests
    # unread; Linux then reports a reset before the error: the error must still arrive
    from rn50.launch.channel import Channel, Closed, pair

    ours, theirs = pair()
    parent, child = Channel(ours), Channel(theirs)
    parent.send({"op": "load"})
    parent.send({"op": "run"})
    child.recv()
    child.send({"type": "error", "message": "x" * 100_000})  # several packets
    theirs.close()  # a crash: no drain
    message, _ = parent.recv()
    assert message == {"type": "error", "message": "x" * 100_000}
    with pytest.raises(Closed):
        parent.recv()


def python_processes() -> dict[int, str]:
    found = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                found[int(entry.name)] = (entry / "cmdline").read_bytes().replace(b"\0", b" ") \
                    .decode(errors="replace")
            except OSError:
                continue
    return found


def marker_in(pid: int, marker: str) -> bool:
    try:
        return marker.encode() in Path(f"/proc/{pid}/environ").read_bytes()
    except OSError:
        return False


def test_timeout_kill_leaves_no_decode_worker_or_helper_behind(run_cli, tmp_path):
    # a hung engine killed by --timeout used to leave its decode workers and Python's
    # resource tracker running, re-parented to init
    from test_real_data import photo, write_set

    data = write_set(tmp_path / "d", [photo(320, 240, i) for i in range(6)], [1] * 6)
    marker = f"rn50-test-{os.getpid()}-{time.monotonic_ns()}"  # only this run's processes
    proc = run_cli("-m", "rn50", "bench", "--data-location", str(data), "--data-workers", "1",
                   "--duration", "120", "--timeout", "6", "--output-dir", str(tmp_path / "o"),
                   env={"RN50_TEST_MARKER": marker})
    assert proc.returncode == 1 and "--timeout 6 s and was killed" in proc.stderr
    time.sleep(0.5)
    left = {pid: cmd for pid, cmd in python_processes().items() if marker_in(pid, marker)}
    assert not left, left
