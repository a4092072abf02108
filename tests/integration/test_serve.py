"""`rn50 serve`: a real server on 127.0.0.1 (a free port) and a real HTTP client (httpx).

Every request loop here is bounded in count and time; traffic stays on loopback.
"""

from __future__ import annotations

import base64
import io
import json
import os
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

httpx = pytest.importorskip("httpx", reason="needs pip install 'rn50[serve]' and httpx")
pytest.importorskip("starlette", reason="needs pip install 'rn50[serve]'")

INFER = "/v2/models/resnet50/infer"


def jpeg(seed: int, size=(200, 160)) -> bytes:
    pixels = (np.random.default_rng(seed).random((size[1], size[0], 3)) * 255).astype(np.uint8)
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, format="JPEG")
    return out.getvalue()


def start_server(model_cache: Path, tmp: Path, *flags: str):
    env = dict(os.environ, RN50_CACHE_DIR=str(model_cache))
    proc = subprocess.Popen([sys.executable, "-m", "rn50", "serve", "--port", "0",
                             "--output-dir", str(tmp), *flags], env=env, cwd=tmp,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    deadline = time.monotonic() + 120
    for line in proc.stdout:
        if "Serving ResNet-50" in line:
            return proc, line.rsplit(" on ", 1)[1].strip()
        if time.monotonic() > deadline:
            break
    proc.kill()
    raise AssertionError(f"the server did not start: {proc.stderr.read()[-2000:]}")


def stop(proc) -> int:
    os.killpg(proc.pid, signal.SIGTERM)
    return proc.wait(timeout=60)


@pytest.fixture(scope="module")
def server(model_cache, tmp_path_factory):
    proc, url = start_server(model_cache, tmp_path_factory.mktemp("serve"), "--max-batch", "4",
                             "--max-delay-ms", "20", "--max-queue", "6", "--max-body-mb", "4",
                             "--deadline", "20")
    with httpx.Client(base_url=url, timeout=30) as client:
        yield proc, client
    assert stop(proc) == 0


def v2_images(*images: bytes, top_k: int = 3) -> dict:
    return {"inputs": [{"name": "images", "shape": [len(images)], "datatype": "BYTES",
                        "data": [base64.b64encode(i).decode() for i in images]}],
            "parameters": {"top_k": top_k}}


def top_labels(answer: dict) -> list[list[int]]:
    (top,) = [o for o in answer["outputs"] if o["name"] == "top_k"]
    k = top["shape"][1]
    labels = [int(s.split(":")[1]) for s in top["data"]]
    return [labels[i:i + k] for i in range(0, len(labels), k)]


def test_health_metadata_and_metrics(server):
    _, client = server
    assert client.get("/v2/health/live").json() == {"live": True}
    assert client.get("/v2/health/ready").status_code == 200
    assert client.get("/v2/models/resnet50/ready").json() == {"ready": True}
    meta = client.get("/v2/models/resnet50").json()
    assert meta["inputs"][0]["shape"] == [-1, 3, 224, 224] and meta["parameters"]["max_batch"] == 4
    assert "preprocessing" in meta["parameters"]
    assert "binary_tensor_data" in client.get("/v2").json()["extensions"]
    assert "rn50_batch_size_bucket" in client.get("/metrics").text


def test_jpeg_and_tensor_inputs_agree_with_rn50_classify(server, run_cli, tmp_path):
    _, client = server
    images = [jpeg(i) for i in range(3)]
    for i, data in enumerate(images):
        (tmp_path / f"{i}.jpg").write_bytes(data)
    proc = run_cli("-m", "rn50", "classify", *(str(tmp_path / f"{i}.jpg") for i in range(3)),
                   "--format", "jsonl", "-k", "3", "--output-dir", str(tmp_path / "o"))
    expected = [[t["label"] for t in json.loads(line)["top"]]
                for line in proc.stdout.splitlines() if line.startswith("{")]
    assert top_labels(client.post(INFER, json=v2_images(*images)).json()) == expected
    curl = [[t["label"] for t in client.post("/v1/classify?top_k=3", content=i).json()["top"]]
            for i in images]
    assert curl == expected
    # the same images as an FP32 tensor, preprocessed by the model's own rules, as binary data
    from rn50.serve.decode import decode_images

    meta = client.get("/v2/models/resnet50").json()
    tensor = decode_images(images, meta["parameters"]["preprocessing"], "NCHW", (3, 3, 224, 224))
    head = json.dumps({"inputs": [{"name": "input", "shape": list(tensor.shape),
                                   "datatype": "FP32",
                                   "parameters": {"binary_data_size": tensor.nbytes}}],
                       "parameters": {"top_k": 3}}).encode()
    answer = client.post(INFER, content=head + tensor.tobytes(),
                         headers={"Inference-Header-Content-Length": str(len(head))}).json()
    assert top_labels(answer) == expected
    probabilities = next(o for o in answer["outputs"] if o["name"] == "probabilities")
    assert probabilities["shape"] == [3, 1000]


def test_concurrent_requests_are_batched(server):
    _, client = server
    before = batches(client)
    with ThreadPoolExecutor(6) as pool:
        codes = list(pool.map(lambda i: client.post("/v1/classify", content=jpeg(i)).status_code,
                              range(12)))
    assert codes.count(200) + codes.count(429) == 12 and codes.count(200) >= 6
    count, total = batches(client)
    # batches fill under load (they used to leave with one image once the first request had
    # waited past the delay for a free worker); an idle engine takes a lone request at once,
    # so the mean depends on how the requests overlapped, but some batches hold several
    assert (total - before[1]) / (count - before[0]) > 1


def test_an_idle_engine_is_not_kept_waiting_for_a_batch_to_fill(model_cache, tmp_path):
    """--max-delay-ms is how long a batch may wait to fill while another batch runs: a lone
    request to an idle engine leaves at once, not after the delay (3 s here)."""
    proc, url = start_server(model_cache, tmp_path, "--backend", "null", "--max-batch", "8",
                             "--max-delay-ms", "3000", "--batches-in-flight", "1")
    try:
        said = [proc.stdout.readline() for _ in range(2)]
        assert "  1 batch(es) in flight per worker (--batches-in-flight)\n" in said, said
        with httpx.Client(base_url=url, timeout=30) as client:
            for i in range(3):
                start = time.perf_counter()
                assert client.post("/v1/classify", content=jpeg(i)).status_code == 200
                assert time.perf_counter() - start < 1.5
    finally:
        assert stop(proc) == 0


def batches(client) -> tuple[float, float]:
    text = client.get("/metrics").text
    value = {line.split()[0]: float(line.split()[1]) for line in text.splitlines()
             if line.startswith("rn50_batch_size_")}
    return value.get("rn50_batch_size_count", 0.0), value.get("rn50_batch_size_sum", 0.0)


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def test_overload_is_refused_fast_with_retry_after_and_memory_stays_flat(server):
    proc, client = server
    tensor = np.zeros((4, 3, 224, 224), np.float32)
    head = json.dumps({"inputs": [{"name": "input", "shape": [4, 3, 224, 224],
                                   "datatype": "FP32",
                                   "parameters": {"binary_data_size": tensor.nbytes}}]}).encode()
    body = head + tensor.tobytes()
    headers = {"Inference-Header-Content-Length": str(len(head))}
    start_rss = rss_mib(proc.pid)

    def send(i):
        if i % 4 == 3:  # malformed: refused unread while the queue is full, else 400
            response = client.post(INFER, content=b"{nope" + bytes(10 ** 5))
        else:
            response = client.post(INFER, content=body, headers=headers)
        return response.status_code, response.headers.get("retry-after")

    with ThreadPoolExecutor(24) as pool:
        results = list(pool.map(send, range(96)))
    codes = [code for i, (code, _) in enumerate(results) if i % 4 != 3]
    assert set(codes) <= {200, 429} and 429 in codes and 200 in codes
    assert all(retry == "1" for code, retry in results if code == 429)
    # the queue being full is decided before the body is parsed: a refusal costs nothing
    malformed = [code for i, (code, _) in enumerate(results) if i % 4 == 3]
    assert set(malformed) <= {400, 429} and 429 in malformed
    assert rss_mib(proc.pid) < start_rss + 300
    assert client.get("/v2/health/ready").status_code == 200


BINARY_HEAD = json.dumps({"inputs": [{"name": "x", "shape": [1, 3, 224, 224], "datatype": "FP32",
                                      "parameters": {"binary_data_size": 10 ** 6}}]}).encode()
BAD = [
    ("not JSON", b"{nope", {}, 400, "not JSON"),
    ("no inputs", b'{"outputs": []}', {}, 400, "'inputs' must be"),
    ("two inputs", json.dumps({"inputs": [{}, {}]}).encode(), {}, 400, "one tensor"),
    ("wrong dtype", json.dumps({"inputs": [{"name": "x", "shape": [1], "datatype": "INT64",
                                            "data": [1]}]}).encode(), {}, 400, "INT64"),
    ("wrong shape", json.dumps({"inputs": [{"name": "x", "shape": [1, 3], "datatype": "FP32",
                                            "data": [1, 2, 3]}]}).encode(), {}, 400,
     "takes [N, 3, 224, 224]"),
    ("data count", json.dumps({"inputs": [{"name": "x", "shape": [1, 3, 224, 224],
                                           "datatype": "FP32", "data": [1]}]}).encode(), {},
     400, "needs 150528"),
    ("shape not ints", json.dumps({"inputs": [{"name": "x", "shape": "big",
                                               "datatype": "FP32"}]}).encode(), {}, 400,
     "'shape' must be"),
    ("bad base64", json.dumps({"inputs": [{"name": "x", "shape": [1], "datatype": "BYTES",
                                           "data": ["***"]}]}).encode(), {}, 400, "base64"),
    ("truncated JPEG", json.dumps(v2_images(jpeg(1)[:300])).encode(), {}, 400, "image 0"),
    ("not an image", json.dumps(v2_images(b"hello")).encode(), {}, 400, "not an image"),
    ("too many images", json.dumps(v2_images(*[jpeg(i) for i in range(5)])).encode(), {},
     400, "1..4"),
    ("top_k 0", json.dumps(dict(v2_images(jpeg(1)), parameters={"top_k": 0})).encode(), {},
     400, "top_k"),
    ("header length past body", b'{"inputs": []}', {"Inference-Header-Content-Length": "999"},
     400, "Inference-Header-Content-Length"),
    ("binary size past data", BINARY_HEAD + b"\0" * 16,
     {"Inference-Header-Content-Length": str(len(BINARY_HEAD))}, 400, "binary_data_size"),
    ("oversize body", b"x" * (5 << 20), {}, 413, "limit"),
]


@pytest.mark.parametrize("name,body,headers,status,says", BAD, ids=[b[0] for b in BAD])
def test_bad_requests_get_4xx_and_the_server_lives(name, body, headers, status, says, server):
    _, client = server
    response = client.post(INFER, content=body, headers=headers)
    assert response.status_code == status, response.text
    assert says in response.json()["error"]
    assert client.get("/v2/health/ready").status_code == 200


def test_curl_endpoint_bad_input(server):
    _, client = server
    assert client.post("/v1/classify", content=b"").status_code == 400
    assert client.post("/v1/classify?top_k=abc", content=jpeg(1)).status_code == 400
    assert client.post("/v1/classify", content=jpeg(1)[:200]).status_code == 400
    assert client.get(INFER).status_code == 405


def test_a_slow_client_does_not_hold_up_others(server):
    proc, client = server
    url = str(client.base_url)
    host, port = url.split("//")[1].rstrip("/").split(":")
    import socket

    slow = socket.create_connection((host, int(port)), timeout=10)
    slow.sendall(b"POST /v1/classify HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\nab")
    try:
        start = time.monotonic()
        assert client.post("/v1/classify", content=jpeg(3)).status_code == 200
        assert time.monotonic() - start < 10
    finally:
        slow.close()


def test_sigterm_answers_in_flight_requests_then_exits_0(model_cache, tmp_path):
    proc, url = start_server(model_cache, tmp_path, "--max-batch", "2", "--max-delay-ms", "50")
    results: list[int] = []

    def ask(i):
        with httpx.Client(base_url=url, timeout=60) as client:
            results.append(client.post("/v1/classify", content=jpeg(i)).status_code)

    threads = [threading.Thread(target=ask, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    time.sleep(0.3)  # the requests are in
    assert stop(proc) == 0
    for thread in threads:
        thread.join(60)
    assert results == [200] * 4


def engine_workers(server_pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                status = (entry / "status").read_text()
                cmdline = (entry / "cmdline").read_bytes()
            except OSError:
                continue
            if f"PPid:\t{server_pid}\n" in status and b"rn50.launch.child" in cmdline:
                found.append(int(entry.name))
    return found


def test_a_killed_worker_fails_its_requests_with_503_then_is_restarted(model_cache, tmp_path):
    proc, url = start_server(model_cache, tmp_path, "--max-batch", "2")
    try:
        with httpx.Client(base_url=url, timeout=30) as client:
            assert client.post("/v1/classify", content=jpeg(1)).status_code == 200
            (worker,) = engine_workers(proc.pid)
            os.kill(worker, signal.SIGKILL)
            codes, deadline = [], time.monotonic() + 60
            while time.monotonic() < deadline and codes[-1:] != [200]:
                codes.append(client.post("/v1/classify", content=jpeg(2)).status_code)
                time.sleep(0.1)
            assert codes[-1] == 200 and set(codes) == {200, 503}  # 503s, then served again
            assert engine_workers(proc.pid) not in ([], [worker])
            assert "rn50_worker_restarts_total 1.0" in client.get("/metrics").text
    finally:
        assert stop(proc) == 0


@pytest.fixture(scope="module")
def null_server(model_cache, tmp_path_factory):
    """The harness alone (no engine): load tests of seconds, not minutes."""
    proc, url = start_server(model_cache, tmp_path_factory.mktemp("null"), "--backend", "null",
                             "--max-batch", "8")
    yield url
    assert stop(proc) == 0


def loadtest(run_cli, tmp_path, *argv) -> dict:
    out = tmp_path / f"lt{len(list(tmp_path.glob('lt*.json')))}.json"
    proc = run_cli("-m", "rn50", "loadtest", *argv, "--json", str(out), timeout=200)
    assert proc.returncode == 0, proc.stderr
    result = rn50_load(out)
    assert "requests by status: 200:" in proc.stdout
    return result


def rn50_load(path: Path) -> dict:
    import rn50

    typed = rn50.load_result(path)
    assert typed.to_dict() == json.loads(path.read_text())  # a typed result, field for field
    return typed.to_dict()


def test_loadtest_open_loop_holds_the_offered_rate(null_server, run_cli, tmp_path):
    result = loadtest(run_cli, tmp_path, null_server, "--rate", "40", "--duration", "3")
    assert result["mode"] == "open loop" and set(result["statuses"]) == {"200"}
    assert 0.75 * 40 <= result["achieved_qps"] <= 1.25 * 40
    lat = result["latency_ms"]
    assert 0 < lat["p50"] <= lat["p90"] <= lat["p99"] <= lat["max"]
    # the client's own figures: each request's latency (from its schedule) is its send lag
    # plus its latency from the send, so each percentile bounds theirs
    client = result["client"]
    assert client["pinned"] is False and 0 < client["cpu_share"] < len(os.sched_getaffinity(0))
    lag, served = client["send_lag_ms"], client["latency_from_send_ms"]
    assert 0 <= lag["p50"] <= lag["p99"] <= lat["max"]
    assert 0 < served["p50"] <= lat["p50"] and served["p99"] <= lat["p99"]


def test_loadtest_pins_itself_with_cpus(null_server, run_cli, tmp_path):
    cpu = max(os.sched_getaffinity(0))
    proc = run_cli("-m", "rn50", "loadtest", null_server, "--concurrency", "1", "--duration",
                   "0.5", "--cpus", str(cpu), "--json", str(tmp_path / "pinned.json"))
    assert proc.returncode == 0, proc.stderr
    assert f"load generator: pinned to CPUs {cpu}," in proc.stdout
    client = rn50_load(tmp_path / "pinned.json")["client"]
    assert client["cpus"] == str(cpu) and client["pinned"] is True  # read back after pinning
    outside = run_cli("-m", "rn50", "loadtest", null_server, "--rate", "5", "--cpus", "4095")
    assert outside.returncode == 2 and "Traceback" not in outside.stderr
    assert outside.stderr.strip().splitlines()[-1].startswith("rn50: error: --cpus 4095: ")


def test_an_overdriven_load_generator_says_so(null_server, run_cli, tmp_path):
    """5000 req/s from one Python event loop: the client, not the server, is the limit, and
    the result says so instead of passing its own lag off as the server's latency."""
    result = loadtest(run_cli, tmp_path, null_server, "--rate", "5000", "--duration", "0.2")
    assert result["warnings"], result["client"]
    assert any("load generator" in w for w in result["warnings"])


def test_loadtest_closed_loop_with_images(null_server, run_cli, tmp_path):
    for i in range(3):
        (tmp_path / f"{i}.jpg").write_bytes(jpeg(i))
    result = loadtest(run_cli, tmp_path, null_server, "--concurrency", "3", "--duration", "2",
                      "--images", str(tmp_path))
    assert result["mode"] == "closed loop" and result["inputs"] == "images"
    assert result["statuses"] == {"200": result["ok"]} and result["ok"] > 10


def test_loadtest_sweep_finds_a_rate_meeting_the_p99_target(null_server, run_cli, tmp_path):
    result = loadtest(run_cli, tmp_path, null_server, "--sweep", "--p99-target-ms", "200",
                      "--duration", "1")
    assert result["best_qps"] > 0 and len(result["sweep"]) >= 2
    met = [s for s in result["sweep"] if s["ok"] == s["requests"]
           and s["latency_ms"]["p99"] <= 200]
    assert result["best_qps"] == max(s["offered_qps"] for s in met)


def test_loadtest_against_nothing_is_one_line(run_cli):
    proc = run_cli("-m", "rn50", "loadtest", "http://127.0.0.1:9", "--rate", "5",
                   "--duration", "1")
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines() == [
        proc.stderr.strip().splitlines()[-1]] and "no KServe v2 model" in proc.stderr


def test_uint8_crops_are_normalised_by_the_server(server):
    _, client = server
    from rn50.data.preprocess import decode_and_crop, spec_from_metadata

    meta = client.get("/v2/models/resnet50").json()
    spec = spec_from_metadata(meta["parameters"]["preprocessing"], "NCHW", crop=224)
    images = [jpeg(i) for i in range(2)]
    crops = np.stack([decode_and_crop(i, spec) for i in images])  # uint8 [2, 224, 224, 3]
    pixels = {"inputs": [{"name": "pixels", "shape": list(crops.shape), "datatype": "UINT8",
                          "data": crops.ravel().tolist()}], "parameters": {"top_k": 3}}
    assert top_labels(client.post(INFER, json=pixels).json()) == \
        top_labels(client.post(INFER, json=v2_images(*images)).json())
    wrong = dict(pixels, inputs=[dict(pixels["inputs"][0], shape=[1, 100, 100, 3],
                                      data=[0] * 30000)])
    response = client.post(INFER, json=wrong)
    assert response.status_code == 400 and "224x224" in response.json()["error"]
