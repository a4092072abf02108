"""`rn50 loadtest`: measure a KServe v2 server (rn50's, OpenVINO Model Server, Triton...).

Open loop (`rate`): Poisson arrivals; each request's latency runs from the time it
was *scheduled* to be sent, so a server that falls behind is charged for the
queue it causes (no coordinated omission). Closed loop (`concurrency`): N clients,
each sending its next request when the last is answered. Both are bounded in
time and in requests in flight. `sweep` finds the highest rate whose p99 meets
a target: doubling, then bisecting.

The client checks itself, as wrk2 or k6 do: its CPU time per second of load and
how late each request left against its schedule are part of the result, and a
client that was busy or behind says so (its figures then describe the client as
much as the server). `cpus` pins it apart from the server.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import random
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import ConfigError, DataError
from ..limits import IMAGE_MAX_BYTES, read_bytes
from ..platform import format_cpulist

MAX_IN_FLIGHT = 4096  # the client's own bound: past it a send counts as "client overloaded"
BUSY_CPU = 0.8  # of one CPU: the client's one event loop is close to its limit
# send lag p99 past both (ms, share of latency p99) = behind; below ~1 ms is the event loop's
# timer resolution (epoll waits in whole milliseconds), not the client falling behind
LATE_MS, LATE_SHARE = 2.0, 0.1


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
    cpus: tuple[int, ...] | None = None  # pin the client to these CPUs

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
        self.latencies: list[float] = []  # answered (200), from the scheduled time
        self.served: list[float] = []  # answered (200), from the moment each was sent
        self.refused: list[float] = []  # refused for overload (429): how fast, from schedule
        self.refused_sent: list[float] = []  # ... and from the moment it was sent
        self.lags: list[float] = []  # how late each request left against its schedule
        self.statuses: dict[str, int] = {}
        self.in_flight = 0
        self.elapsed = 0.0  # seconds from the first send to the last answer
        self.cpu = 0.0  # the client's CPU seconds meanwhile
        self._clock = (0.0, 0.0)

    def begin(self) -> float:
        self._clock = (time.perf_counter(), time.process_time())
        return self._clock[0]

    def end(self) -> "_Tally":
        self.elapsed = time.perf_counter() - self._clock[0]
        self.cpu = time.process_time() - self._clock[1]
        return self

    async def send(self, client, path: str, payload: tuple[bytes, dict], since: float) -> None:
        self.in_flight += 1
        sent = time.perf_counter()
        self.lags.append(sent - since)
        try:
            response = await client.post(path, content=payload[0], headers=payload[1])
            status = str(response.status_code)
        except Exception as exc:  # noqa: BLE001 - a failed request is counted, not fatal
            status = type(exc).__name__
        finally:
            self.in_flight -= 1
        done = time.perf_counter()
        self.statuses[status] = self.statuses.get(status, 0) + 1
        if status == "200":
            self.latencies.append(done - since)
            self.served.append(done - sent)
        elif status == "429":
            self.refused.append(done - since)
            self.refused_sent.append(done - sent)


async def open_loop(client, path: str, bodies: list, rate: float, duration: float) -> _Tally:
    tally, tasks, rng = _Tally(), [], random.Random(0)
    start = scheduled = tally.begin()
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
    return tally.end()


async def closed_loop(client, path: str, bodies: list, clients: int, duration: float) -> _Tally:
    tally = _Tally()
    start = tally.begin()

    async def one(index: int) -> None:
        sent = 0
        while time.perf_counter() - start < duration:
            await tally.send(client, path, bodies[(index + sent) % len(bodies)],
                             time.perf_counter())
            sent += 1

    await asyncio.gather(*(one(i) for i in range(clients)))
    return tally.end()


def _percentiles_ms(seconds: list[float], which: tuple[int, ...] = (50, 99)) -> dict:
    """p<which> and max of `seconds`, in ms; {} when there are none."""
    if not seconds:
        return {}
    values = np.asarray(seconds) * 1e3
    return dict({f"p{p}": float(np.percentile(values, p)) for p in which},
                max=float(values.max()))


def summary(tally: _Tally, offered: float | None) -> dict:
    client = {"cpu_share": tally.cpu / tally.elapsed if tally.elapsed else 0.0,
              "send_lag_ms": _percentiles_ms(tally.lags),
              "latency_from_send_ms": _percentiles_ms(tally.served)}
    latency = _percentiles_ms(tally.latencies, (50, 90, 99))
    return {**({"offered_qps": offered} if offered else {}),
            "achieved_qps": len(tally.latencies) / tally.elapsed,
            "requests": sum(tally.statuses.values()), "ok": len(tally.latencies),
            "statuses": dict(sorted(tally.statuses.items())),
            "latency_ms": latency,
            **({"refused_p99_ms": _percentiles_ms(tally.refused)["p99"],
                "refused_from_send_p99_ms": _percentiles_ms(tally.refused_sent)["p99"]}
               if tally.refused else {}),
            "seconds": tally.elapsed, "client": client,
            "warnings": client_warnings(client, latency)}


def client_warnings(client: dict, latency: dict) -> list[str]:
    """What the user must know when the client, not the server, may be what was measured."""
    warnings = []
    if client["cpu_share"] >= BUSY_CPU:
        warnings.append(f"the load generator used {client['cpu_share']:.0%} of a CPU (one "
                        "event loop): it may be what limits these figures; pin it apart from "
                        "the server (--cpus) or run it on another machine")
    lag = (client.get("send_lag_ms") or {}).get("p99")
    if lag is not None and lag > LATE_MS and lag > LATE_SHARE * (latency.get("p99") or 0):
        warnings.append(f"requests left up to {lag:.1f} ms (p99) after their scheduled time "
                        "(the load generator's own delay: its timer, its CPU); the latencies, "
                        "counted from the schedule, include it: see the latency from the send")
    return warnings


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
            f"{result['requests'] - result['ok']} failed"
            + ("; the client was busy or behind" if result["warnings"] else ""))
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
    warnings = [f"at {step['offered_qps']:.1f} req/s: {warning}" for step in steps
                for warning in step["warnings"]]
    return dict(best, sweep=steps, p99_target_ms=config.p99_target_ms,
                best_qps=best["offered_qps"], warnings=warnings)


def pin_client(cpus: tuple[int, ...] | None) -> list[int]:
    """Pin this process (the load generator) to `cpus`; the CPUs it runs on, read back."""
    if cpus:
        allowed = os.sched_getaffinity(0)
        if not set(cpus) <= allowed:
            raise ConfigError(f"--cpus {format_cpulist(cpus)}: this process may run only on "
                              f"CPUs {format_cpulist(allowed)}")
        os.sched_setaffinity(0, cpus)
    return sorted(os.sched_getaffinity(0))


def run_loadtest(config: LoadConfig, log=print) -> dict:
    """The measured figures (and, with sweep, every step), as a result record."""
    started = time.time()
    cpus = pin_client(config.cpus)
    result = asyncio.run(_measure(config, log))
    result["client"] = dict(result.get("client") or {}, cpus=format_cpulist(cpus),
                            pinned=bool(config.cpus))
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
    if record.get("refused_p99_ms") is not None:
        lines.append(f"  refused (429) p99 {record['refused_p99_ms']:.2f} ms from the scheduled "
                     f"time, {record.get('refused_from_send_p99_ms', float('nan')):.2f} ms "
                     "from the send")
    lines.append("  " + client_line(record.get("client") or {}))
    lines += [f"  warning: {warning}" for warning in record.get("warnings") or []]
    return lines


def client_line(client: dict) -> str:
    """The load generator's own figures: where it ran, its CPU, how late it sent."""
    where = f"pinned to CPUs {client['cpus']}" if client.get("pinned") else \
        f"on CPUs {client.get('cpus', '?')}"
    line = f"load generator: {where}"
    if "cpu_share" in client:
        line += f", {client['cpu_share']:.0%} of a CPU"
    lag = client.get("send_lag_ms") or {}
    if lag:
        line += f"; requests sent p50 {lag['p50']:.2f} / p99 {lag['p99']:.2f} ms after schedule"
    served = client.get("latency_from_send_ms") or {}
    if served:
        line += f" (latency from the send: p50 {served['p50']:.2f} / p99 {served['p99']:.2f} ms)"
    return line
