#!/usr/bin/env python3
"""`rn50 serve` under load, beside `rn50 bench` on the same batch, precision and CPUs.

For each precision: `rn50 bench` throughput at --batch and batch-1 latency; then one
server (`--max-batch` = --batch) measured with `rn50 loadtest` (in this process):
saturated throughput with single-image tensor requests and with JPEG requests (closed
loop), p99 at 50% of that load (open loop), 2x overload (429s, how fast, server RSS),
and the curve p99 vs offered QPS. By default client, server and engine share this
machine's CPUs; `--client-cores N` keeps the last N cores for the load generator (this
process) and runs `rn50 bench` and the server (its event loop included) on the others
with `--num-cores` set to match, so neither takes CPU from the other.

    python benchmarks/serve.py [--precision fp32,int8] [--batch 8] [--seconds 10]
                               [--client-cores N] [--server-args '--batches-in-flight 2']
"""

from __future__ import annotations

import argparse
import io
import json
import os
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

from rn50.platform import detect_platform, format_cpulist
from rn50.serve.loadtest import LoadConfig, client_line, run_loadtest


SERVER_CORES: list = []  # physical cores for bench and the server ([] = all of them)
SERVER_ARGS: list[str] = []  # more `rn50 serve` flags (--server-args)


def server_cpus() -> list[int]:
    return [c.cpu for core in SERVER_CORES for c in core]


def cores_flags() -> list[str]:
    return ["--num-cores", str(len(SERVER_CORES))] if SERVER_CORES else []


def on_server_cpus() -> None:  # in the child, before exec
    if SERVER_CORES:
        os.sched_setaffinity(0, server_cpus())


def bench(precision: str, batch: int, seconds: float, folder: Path) -> dict:
    out = folder / f"bench_{precision}_{batch}.json"
    subprocess.run([sys.executable, "-m", "rn50", "bench", "--precision", precision, "-b",
                    str(batch), "--duration", str(seconds), "--steps", "1", "--json", str(out),
                    "--output-dir", str(folder / "logs"), *cores_flags()], check=True,
                   capture_output=True, preexec_fn=on_server_cpus)
    return json.loads(out.read_text())["summary"]


def start_server(precision: str, batch: int, folder: Path):
    proc = subprocess.Popen([sys.executable, "-m", "rn50", "serve", "--port", "0",
                             "--precision", precision, "--max-batch", str(batch),
                             "--max-delay-ms", "5", "--max-queue", str(16 * batch),
                             "--output-dir", str(folder / "logs"), *cores_flags(),
                             *SERVER_ARGS],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True, preexec_fn=on_server_cpus)
    for line in proc.stdout:
        if "Serving ResNet-50" in line:
            return proc, line.rsplit(" on ", 1)[1].strip()
    raise SystemExit("the server did not start")


def rss_mib(pid: int) -> float:
    text = Path(f"/proc/{pid}/status").read_text()
    return int(next(ln for ln in text.splitlines() if ln.startswith("VmRSS:")).split()[1]) / 1024


def jpegs(folder: Path, count: int = 16) -> str:
    images = folder / "jpeg"
    images.mkdir(exist_ok=True)
    rng = np.random.default_rng(0)
    for i in range(count):  # ImageNet-sized photographs' shape (500 x 375)
        out = io.BytesIO()
        Image.fromarray((rng.random((375, 500, 3)) * 255).astype(np.uint8)).save(out, "JPEG")
        (images / f"{i}.jpg").write_bytes(out.getvalue())
    return str(images)


def quiet(line: str) -> None:
    pass


def measure(url: str, seconds: float, **kw) -> dict:
    return run_loadtest(LoadConfig(url, duration=seconds, **kw), log=quiet)


def one_precision(precision: str, batch: int, seconds: float, folder: Path, images: str) -> None:
    base, single = bench(precision, batch, seconds, folder), bench(precision, 1, seconds, folder)
    latency_b1 = single["latency_ms"]["p50"]
    proc, url = start_server(precision, batch, folder)
    try:
        tensor = measure(url, seconds, concurrency=4 * batch)
        jpeg = measure(url, seconds, concurrency=4 * batch, images=images)
        peak = tensor["achieved_qps"]
        half = measure(url, seconds, rate=0.5 * peak)
        rss_before = rss_mib(proc.pid)
        over = measure(url, seconds, rate=2 * peak)
        rss_after = rss_mib(proc.pid)
        curve = [(f, measure(url, seconds / 2, rate=f * peak)) for f in (0.25, 0.5, 0.75, 0.9, 1.0)]
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(60)
    bench_ips = base["throughput_images_per_sec"]
    limit = 2 * latency_b1 + 5
    print(f"\n{precision}, batch {batch}: rn50 bench {bench_ips:.1f} img/s, batch-1 p50 "
          f"{latency_b1:.2f} ms")
    print(f"  saturated, 1-image tensor requests: {peak:.1f} req/s = "
          f"{peak / bench_ips:.3f} x bench (target >= 0.90)")
    print(f"  saturated, JPEG requests (500x375): {jpeg['achieved_qps']:.1f} req/s = "
          f"{jpeg['achieved_qps'] / bench_ips:.3f} x bench (target >= 0.80)")
    print(f"  p99 at 50% load ({0.5 * peak:.1f} req/s): {half['latency_ms']['p99']:.2f} ms "
          f"(target <= 2 x batch-1 + max-delay = {limit:.2f} ms)")
    print(f"  2x overload ({2 * peak:.1f} req/s offered): {over['statuses'].get('429', 0)} of "
          f"{over['requests']} refused (429), refusal p99 "
          f"{over.get('refused_p99_ms', float('nan')):.2f} ms from schedule, "
          f"{over.get('refused_from_send_p99_ms', float('nan')):.2f} ms from send "
          f"(target < 5), accepted p99 "
          f"{over['latency_ms'].get('p99', float('nan')):.1f} ms, server RSS {rss_before:.0f} -> "
          f"{rss_after:.0f} MiB")
    for name, result in (("saturated tensor", tensor), ("saturated JPEG", jpeg),
                         ("50% load", half), ("2x overload", over)):
        print(f"    client at {name}: {client_line(result['client'])}")
    print("  p99 vs offered load: " + "; ".join(
        f"{r['offered_qps']:.0f} req/s -> {r['latency_ms'].get('p99', float('nan')):.1f} ms"
        for _, r in curve))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--precision", default="fp32,int8")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--client-cores", type=int, default=0,
                        help="keep the last N physical cores for the load generator")
    parser.add_argument("--server-args", default="", help="more rn50 serve flags, e.g. "
                        "'--batches-in-flight 2'")
    args = parser.parse_args()
    SERVER_ARGS[:] = args.server_args.split()
    folder = Path(tempfile.mkdtemp(prefix="rn50-serve-bench-"))
    images = jpegs(folder)
    cores = detect_platform().usable_cores()  # physical cores, each with its SMT siblings
    if args.client_cores:
        if not 0 < args.client_cores < len(cores):
            raise SystemExit(f"--client-cores {args.client_cores}: this machine has "
                             f"{len(cores)} cores")
        SERVER_CORES[:] = cores[:-args.client_cores]  # what rn50's --num-cores picks first
        client = [c.cpu for core in cores[-args.client_cores:] for c in core]
        os.sched_setaffinity(0, client)
        print(f"load generator on CPUs {format_cpulist(client)}; rn50 bench and the server "
              f"(--num-cores {len(SERVER_CORES)}) on CPUs {format_cpulist(server_cpus())}")
    else:
        print(f"{len(cores)} cores shared by the load generator, the server and its engine")
    for precision in args.precision.split(","):
        one_precision(precision, args.batch, args.seconds, folder, images)
    return 0


if __name__ == "__main__":
    sys.exit(main())
