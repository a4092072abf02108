"""`rn50 loadtest`: measure a KServe v2 server (rn50's, OpenVINO Model Server, Triton...).

Open loop (`rate`): Poisson arrivals; each request's latency runs from the time it
was *scheduled* to be sent, so a server that falls behind is charged for the
queue it causes (no coordinated omission). Closed loop (`concurrency`): N clients,
each sending its next request when the last is answered. Both are bounded in
time and in requests in flight. `sweep` finds the highest rate whose p99 meets
a target: doubling, then bisecting.
"""

from __future__ import annotations

import asyncio
import base64
import json
import random
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import ConfigError, DataError
from ..limits import IMAGE_MAX_BYTES, read_bytes

MAX_IN_FLIGHT = 4096  # the client's own bound: past it a send counts as "client overloaded"


@dataclass(frozen=True)
class LoadConfig:
    url: str
    model: str = "resnet50"
    rate: float | None = None  # open loop, requests/s
    concurrency: int | None = None  # closed loop
    duration: float = 10.0
    images: str | None = None  # a folder of images (else synthetic FP32 tensors)
    timeout: float = 30.0
    sweep: bool = False
    p99_target_ms: float | None = None

    def __post_init__(self) -> None:
        if not self.url.startswith(("http://", "https://")):
            raise ConfigError(f"{self.url}: give the server's http:// address")
        if (self.rate is None) == (self.concurrency is None) and not self.sweep:
            raise ConfigError("give --rate Q (open loop) or --concurrency N (closed loop)")
        if self.sweep and not self.p99_target_ms:
            raise ConfigError("--sweep finds the highest rate meeting --p99-target-ms: give it")


def payloads(client_meta: dict, images: str | None, model: str) -> list[tuple[bytes, dict]]:
    """Request bodies and headers: each image as a BYTES input, or one synthetic FP32 tensor
    of the model's input shape (batch 1) with the binary-data extension."""
    if images:
        folder = Path(images)
        files = sorted(p for p in folder.iterdir() if p.is_file())[:256] if folder.is_dir() \
            else [folder]
        if not files:
            raise DataError(f"--images {images}: no files in it")
        return [(json.dumps({"inputs": [{"name": "images", "shape": [1], "datatype": "BYTES",
                                         "data": [base64.b64encode(read_bytes(
                                             f, "image", IMAGE_MAX_BYTES)).decode()]}],
                             "parameters": {"top_k": 1}}).encode(),
                 {"content-type": "application/json"}) for f in files]
    spec = client_meta["inputs"][0]
    shape = [1 if d == -1 else d for d in spec["shape"]]
    tensor = np.random.default_rng(0).normal(0, 1, shape).astype(np.float32)
    head = json.dumps({"inputs": [{"name": spec["name"], "shape": shape, "datatype": "FP32",
                                   "parameters": {"binary_data_size": tensor.nbytes}}],
                       "outputs": [{"name": "top_k"}]}).encode()
    return [(head + tensor.tobytes(), {"inference-header-content-length": str(len(head)),
                                       "content-type": "application/octet-stream"})]


class _Tally:
    def __init__(self) -> None:
        self.latencies: list[float] = []  # answered (200)
        self.refused: list[float] = []  # refused for overload (429): how fast
        self.statuses: dict[str, int] = {}
        self.in_flight = 0
        self.elapsed = 0.0  # seconds from the first send to the last answer

    async def send(self, client, path: str, payload: tuple[bytes, dict], since: float) -> None:
        self.in_flight += 1
        try:
            response = await client.post(path, content=payload[0], headers=payload[1])
            status = str(response.status_code)
        except Exception as exc:  # noqa: BLE001 - a failed request is counted, not fatal
            status = type(exc).__name__
        finally:
            self.in_flight -= 1
        self.statuses[status] = self.statuses.get(status, 0) + 1
        if status == "200":
            self.latencies.append(time.perf_counter() - since)
        elif status == "429":
            self.refused.append(time.perf_counter() - since)


async def open_loop(client, path: str, bodies: list, rate: float, duration: float) -> _Tally:
    tally, tasks, rng = _Tally(), [], random.Random(0)
    start = time.perf_counter()
    scheduled = start
    while True:
        scheduled += rng.expovariate(rate)
        if scheduled - start > duration:
            break
        await asyncio.sleep(max(0.0, scheduled - time.perf_counter()))
        if tally.in_flight >= MAX_IN_FLIGHT:
            tally.statuses["client overloaded"] = tally.statuses.get("client overloaded", 0) + 1
            continue
        tasks.append(asyncio.ensure_future(tally.send(client, path, bodies[len(tasks) % len(
            bodies)], scheduled)))
    await asyncio.gather(*tasks)
    tally.elapsed = time.perf_counter() - start
    return tally


async def closed_loop(client, path: str, bodies: list, clients: int, duration: float) -> _Tally:
    tally = _Tally()
    start = time.perf_counter()

    async def one(index: int) -> None:
        sent = 0
        while time.perf_counter() - start < duration:
            await tally.send(client, path, bodies[(index + sent) % len(bodies)],
                             time.perf_counter())
            sent += 1

    await asyncio.gather(*(one(i) for i in range(clients)))
    tally.elapsed = time.perf_counter() - start
    return tally


def summary(tally: _Tally, offered: float | None) -> dict:
    ok = np.asarray(tally.latencies) * 1e3
    pct = {f"p{p}": float(np.percentile(ok, p)) for p in (50, 90, 99)} if len(ok) else {}
    return {**({"offered_qps": offered} if offered else {}),
            "achieved_qps": len(ok) / tally.elapsed,
            "requests": sum(tally.statuses.values()), "ok": len(ok),
            "statuses": dict(sorted(tally.statuses.items())),
            "latency_ms": dict(pct, max=float(ok.max()) if len(ok) else None),
            **({"refused_p99_ms": float(np.percentile(np.asarray(tally.refused) * 1e3, 99))}
               if tally.refused else {}),
            "seconds": tally.elapsed}


async def _measure(config: LoadConfig, log) -> dict:
    import httpx

    limits = httpx.Limits(max_connections=1024, max_keepalive_connections=256)
    async with httpx.AsyncClient(base_url=config.url, timeout=config.timeout,
                                 limits=limits) as client:
        try:
            meta = (await client.get(f"/v2/models/{config.model}")).json()
        except (httpx.HTTPError, ValueError) as exc:
            raise DataError(f"{config.url}: no KServe v2 model {config.model!r} there "
                            f"({type(exc).__name__}: {exc})") from None
        bodies = payloads(meta, config.images, config.model)
        path = f"/v2/models/{config.model}/infer"
        await closed_loop(client, path, bodies, 1, min(1.0, config.duration))  # warm-up
        if config.sweep:
            return await _sweep(client, path, bodies, config, log)
        if config.rate:
            return summary(await open_loop(client, path, bodies, config.rate, config.duration),
                           config.rate)
        return summary(await closed_loop(client, path, bodies, config.concurrency,
                                         config.duration), None)


async def _sweep(client, path: str, bodies: list, config: LoadConfig, log) -> dict:
    """Double the rate until the p99 misses the target (or requests fail), then bisect."""
    def meets(result: dict) -> bool:
        return (result["ok"] == result["requests"] and
                (result["latency_ms"].get("p99") or 1e9) <= config.p99_target_ms)

    rate, low, high, steps = config.rate or 4.0, None, None, []
    for _ in range(12):
        result = summary(await open_loop(client, path, bodies, rate, config.duration), rate)
        steps.append(result)
        log(f"  {rate:.1f} req/s offered: {result['achieved_qps']:.1f} achieved, p99 "
            f"{result['latency_ms'].get('p99') or float('nan'):.1f} ms, "
            f"{result['requests'] - result['ok']} failed")
        if meets(result):
            low = result
        else:
            high = result
        if high is not None and low is not None and \
                high["offered_qps"] - low["offered_qps"] <= 0.1 * high["offered_qps"]:
            break
        rate = rate * 2 if high is None else (rate / 2 if low is None else
                                              (low["offered_qps"] + high["offered_qps"]) / 2)
        if rate < 0.5:
            break
    best = low or {"offered_qps": 0.0}
    return dict(best, sweep=steps, p99_target_ms=config.p99_target_ms,
                best_qps=best["offered_qps"])


def run_loadtest(config: LoadConfig, log=print) -> dict:
    """The measured figures (and, with sweep, every step), as a result record."""
    started = time.time()
    result = asyncio.run(_measure(config, log))
    mode = "sweep" if config.sweep else "open loop" if config.rate else "closed loop"
    return dict(result, schema_version=2, kind="loadtest", status="ok", url=config.url,
                model=config.model, mode=mode, **({"concurrency": config.concurrency}
                                                  if config.concurrency else {}),
                duration_s=config.duration, inputs="images" if config.images else
                "synthetic FP32 tensor (binary data)", started_at=started)


def result_lines(record: dict) -> list[str]:
    latency = record.get("latency_ms") or {}
    lines = [f"Load test of {record['url']} ({record['mode']}, {record['inputs']}):"]
    if record["mode"] == "sweep":
        lines.append(f"  highest rate with p99 <= {record['p99_target_ms']:g} ms and no "
                     f"errors: {record['best_qps']:.1f} req/s")
    if latency:
        lines.append(f"  achieved {record['achieved_qps']:.1f} req/s"
                     + (f" of {record['offered_qps']:.1f} offered" if record.get("offered_qps")
                        else f" with {record['concurrency']} clients")
                     + f"; latency ms p50 {latency['p50']:.2f}  p90 {latency['p90']:.2f}  "
                       f"p99 {latency['p99']:.2f}  max {latency['max']:.2f}")
    lines.append("  requests by status: " + ", ".join(f"{k}: {v}" for k, v in
                                                      (record.get("statuses") or {}).items()))
    return lines
