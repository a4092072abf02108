#!/usr/bin/env python3
"""What rn50's benchmark loop costs on top of each engine's bare call, measured in one process.

Each engine runs in its own pinned process with rn50's settings (one stream, the
seed's threads). Inside it, on the same loaded model and the same input, blocks
of rn50's timed loop (`run_benchmark`: submit, callbacks, timestamps, progress
messages) alternate with blocks of the engine's bare call in a `for` loop, each
block after one untimed step
(OpenVINO `request.infer()`, ONNX Runtime `session.run`, the frozen TorchScript
module, TensorFlow's session callable). Alternating short blocks in one process
cancels the machine's drift (turbo, neighbours), which across separate processes
on a shared VM is larger than the 2% being measured; what is left is the
wrapper. Ratios are rn50 / bare: throughput over all blocks and the median of
each rn50 block's throughput over its neighbouring bare block's ("paired";
higher is better), and median step latency (lower is better).

    python benchmarks/wrapper_overhead.py [--engines openvino,onnxruntime,tensorflow,torch]
        [--batch 1,64] [--seconds 20] [--precision fp32|bfloat16|int8] [--model FILE]

`--precision int8` needs an INT8 model (`--model`, e.g. the IR `rn50 quantize` writes or
the one `rn50 bench --precision int8` cached); bfloat16 runs on the built-in model.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

BLOCK_SECONDS = 1.0


def bare_step(engine: str, session, batch):
    """The engine's own call on rn50's loaded model (reaches into the session on purpose)."""
    if engine == "openvino":
        import openvino as ov

        request = session._request  # the same request rn50's loop uses
        request.set_input_tensor(ov.Tensor(batch, shared_memory=True))
        return request.infer
    if engine == "onnxruntime":
        feed = {session._input: batch}
        return lambda: session._session.run(None, feed)
    if engine == "torch":
        import torch

        tensor = torch.from_numpy(batch).to(session._dtype).contiguous(
            memory_format=torch.channels_last)

        def step():
            with torch.inference_mode():
                session._module(tensor)
        return step
    if engine == "tensorflow":
        return lambda: session._run(batch)
    raise SystemExit(f"no bare loop for {engine}")


def worker(engine: str, batch_size: int, seconds: float, precision: str, model_path: str) -> dict:
    from rn50.backends import get_backend
    from rn50.config import ModelConfig
    from rn50.data.synthetic import synthetic_batch
    from rn50.models.resolve import builtin_model, file_model
    from rn50.platform import detect_platform
    from rn50.scenarios.benchmark import BenchmarkPlan, run_benchmark
    from rn50.settings import UserFlags, recommend

    settings = recommend(detect_platform(), UserFlags(batch_size=batch_size, streams=1,
                                                      precision=precision), os.environ)
    model = (file_model(ModelConfig(path=model_path), os.environ) if model_path
             else builtin_model(ModelConfig(), os.environ, lambda line: None))
    session = get_backend(engine).load(model, settings, precision)
    spec = session.input_spec
    batch = synthetic_batch(spec.shape, spec.layout, model.mean, model.std)
    step = bare_step(engine, session, batch)
    for _ in range(3):
        step()
    start = time.perf_counter()
    step()
    per_step = time.perf_counter() - start
    k = max(1, round(BLOCK_SECONDS / per_step))
    ours = {"images": 0, "seconds": 0.0, "steps_ms": [], "blocks": []}
    bare = {"images": 0, "seconds": 0.0, "steps_ms": [], "blocks": []}
    rounds = max(2, round(seconds / (2 * k * per_step)))
    for i in range(rounds):
        for which in (("rn50", "bare") if i % 2 == 0 else ("bare", "rn50")):
            if which == "rn50":
                result = run_benchmark(session, batch, BenchmarkPlan(warmup_steps=0, steps=k))
                ours["images"] += result["summary"]["images"]
                ours["seconds"] += result["summary"]["measured_seconds"]
                ours["steps_ms"] += result["samples"]["step_ms"]
                ours["blocks"].append(result["summary"]["throughput_images_per_sec"])
            else:
                step()  # untimed, as run_benchmark's first inference when warm-up is 0
                begin = time.perf_counter()
                for _ in range(k):
                    t = time.perf_counter()
                    step()
                    bare["steps_ms"].append((time.perf_counter() - t) * 1e3)
                span = time.perf_counter() - begin
                bare["seconds"] += span
                bare["images"] += k * batch_size
                bare["blocks"].append(k * batch_size / span)
    return {"engine": engine, "batch": batch_size, "rounds": rounds, "block_steps": k,
            "threads": settings.intra_threads.value,
            "rn50_img_s": ours["images"] / ours["seconds"],
            "bare_img_s": bare["images"] / bare["seconds"],
            "rn50_p50_ms": statistics.median(ours["steps_ms"]),
            "bare_p50_ms": statistics.median(bare["steps_ms"]),
            # each rn50 block against the bare block next to it, then the median: drift cancels
            "paired_ratio": statistics.median(a / b for a, b in zip(ours["blocks"],
                                                                   bare["blocks"]))}


def run_worker(engine: str, batch: int, seconds: float, precision: str, model: str) -> dict:
    """The worker in its own process, bound and configured as rn50 binds its child."""
    from rn50.backends import engine_env
    from rn50.platform import detect_platform
    from rn50.settings import UserFlags, recommend

    settings = recommend(detect_platform(), UserFlags(batch_size=batch, streams=1), os.environ)
    env = dict(os.environ, **settings.child_env(), **engine_env(engine))
    cpus = set(settings.cpus.value)
    proc = subprocess.run([sys.executable, __file__, "--worker", engine, str(batch),
                           str(seconds), precision, model], env=env, capture_output=True, text=True,
                          preexec_fn=lambda: os.sched_setaffinity(0, cpus))
    if proc.returncode != 0:
        return {"engine": engine, "batch": batch, "error": proc.stderr.strip().splitlines()[-1]}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> int:
    if len(sys.argv) == 7 and sys.argv[1] == "--worker":
        print(json.dumps(worker(sys.argv[2], int(sys.argv[3]), float(sys.argv[4]), sys.argv[5],
                                sys.argv[6])))
        return 0
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--engines", default="openvino,onnxruntime,tensorflow,torch")
    parser.add_argument("--batch", default="1,64")
    parser.add_argument("--seconds", type=float, default=20.0,
                        help="timed seconds per engine and batch, both loops together")
    parser.add_argument("--precision", default="fp32", choices=("fp32", "bfloat16", "int8"))
    parser.add_argument("--model", default="", help="model file (default: the built-in one)")
    args = parser.parse_args()
    rows = []
    for batch in (int(b) for b in args.batch.split(",")):
        for engine in args.engines.split(","):
            row = run_worker(engine, batch, args.seconds, args.precision, args.model)
            rows.append(row)
            print(json.dumps(row), flush=True)
    print(f"\nrn50's timed loop vs the engine's bare call, same process and model, alternating "
          f"blocks of ~{BLOCK_SECONDS:g} s, {args.precision}, "
          f"{args.model or 'built-in ResNet-50 v1.5'}, one stream")
    print(f"{'engine':<12} {'batch':>5} {'rn50 img/s':>10} {'bare img/s':>10} {'ratio':>6} "
          f"{'paired':>6} {'rn50 p50 ms':>11} {'bare p50 ms':>11} {'ratio':>6}  blocks x steps")
    for r in rows:
        if "error" in r:
            print(f"{r['engine']:<12} {r['batch']:>5} failed: {r['error']}")
            continue
        print(f"{r['engine']:<12} {r['batch']:>5} {r['rn50_img_s']:>10.2f} {r['bare_img_s']:>10.2f} "
              f"{r['rn50_img_s'] / r['bare_img_s']:>6.3f} {r['paired_ratio']:>6.3f} "
              f"{r['rn50_p50_ms']:>11.2f} "
              f"{r['bare_p50_ms']:>11.2f} {r['rn50_p50_ms'] / r['bare_p50_ms']:>6.3f}  "
              f"{2 * r['rounds']} x {r['block_steps']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
