#!/usr/bin/env python3
"""rn50 bench vs each engine's own minimal loop, side by side on the built-in model.

The minimal loop is the least a user could write: the engine configured with the
same properties rn50 applies (one stream, FP32, the same threads), the same
CPUs, a synchronous `infer`/`run` loop timed with perf_counter. Who runs first
alternates from round to round. The TensorFlow
loop reads the NCHW GraphDef rn50 caches beside the built-in model (run rn50 on
TensorFlow once first; the script does, alternating); the PyTorch loop builds
the same module rn50 does (frozen, channels-last). Both run
alternately `--rounds` times; medians and ratios are printed. rn50's wrapper
should cost under 2%.

    python benchmarks/vs_engine_loops.py [--duration 12] [--rounds 2] [--batch 1]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from rn50.config import ModelConfig
from rn50.models.resolve import builtin_model

LOOP = r"""
import json, os, sys, time
import numpy as np
engine, model = sys.argv[1], sys.argv[2]
batch, duration, threads = int(sys.argv[3]), float(sys.argv[4]), int(sys.argv[5])
x = np.random.default_rng(0).standard_normal((batch, 3, 224, 224)).astype(np.float32)
if engine == "openvino":
    import openvino as ov
    core = ov.Core()
    m = core.read_model(model); m.reshape([batch, 3, 224, 224])
    compiled = core.compile_model(m, "CPU", {"INFERENCE_NUM_THREADS": threads, "NUM_STREAMS": 1,
        "PERFORMANCE_HINT": "LATENCY", "INFERENCE_PRECISION_HINT": "f32", "ENABLE_CPU_PINNING": True})
    req = compiled.create_infer_request(); req.set_input_tensor(ov.Tensor(x, shared_memory=True))
    step = req.infer
elif engine == "tensorflow":
    import tensorflow as tf
    graph_def = tf.compat.v1.GraphDef()
    graph_def.ParseFromString(open(model[:-len(".onnx")] + ".nchw.pb", "rb").read())
    graph = tf.Graph()
    with graph.as_default():
        tf.compat.v1.import_graph_def(graph_def, name="")
    config = tf.compat.v1.ConfigProto(intra_op_parallelism_threads=threads,
                                      inter_op_parallelism_threads=1)
    session = tf.compat.v1.Session(graph=graph, config=config)
    step = lambda: session.run("predict:0", {"input:0": x})
elif engine == "torch":
    import torch
    from rn50.models.builtin import onnx_weights
    from rn50.models.torch_net import ResNet50
    torch.set_num_threads(threads)
    net = ResNet50(onnx_weights(model)).eval().to(memory_format=torch.channels_last)
    xt = torch.from_numpy(x).contiguous(memory_format=torch.channels_last)
    with torch.inference_mode():
        net = torch.jit.optimize_for_inference(torch.jit.freeze(torch.jit.trace(net, xt)))
    def step():
        with torch.inference_mode():
            net(xt)
else:
    import onnxruntime as ort
    so = ort.SessionOptions(); so.intra_op_num_threads = threads; so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.add_session_config_entry("session.intra_op.allow_spinning", "1")
    s = ort.InferenceSession(model, so, providers=["CPUExecutionProvider"])
    name = s.get_inputs()[0].name
    step = lambda: s.run(None, {name: x})
for _ in range(5):
    step()
times = []
begin = time.perf_counter()
while time.perf_counter() - begin < duration:
    t = time.perf_counter(); step(); times.append(time.perf_counter() - t)
span = time.perf_counter() - begin
print(json.dumps({"p50_ms": float(np.median(times)) * 1e3, "throughput": len(times) * batch / span}))
"""


def run_rn50(engine: str, batch: int, duration: float, workdir: Path, bind: str) -> dict:
    out = workdir / f"{engine}_{len(list(workdir.iterdir()))}.json"
    # The built-in model (no --model): the same file and weights the loop below uses.
    subprocess.run([sys.executable, "-m", "rn50", "bench", "--backend", engine,
                    "--batch-size", str(batch), "--streams", "1", "--warmup-steps", "5",
                    "--steps", "1", "--duration", str(duration), "--bind", bind,
                    "--output-dir", str(workdir / "logs"), "--json", str(out)],
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    record = json.loads(out.read_text())
    return {"p50_ms": record["summary"]["latency_ms"]["p50"],
            "throughput": record["summary"]["throughput_images_per_sec"]}


def run_loop(engine: str, model: str, batch: int, duration: float, cpus: set[int],
             bind: str) -> dict:
    """The engine's own loop, bound the same way rn50 binds its child."""
    env = dict(os.environ, TF_ENABLE_ONEDNN_OPTS="1", TF_CPP_MIN_LOG_LEVEL="2",
               OMP_NUM_THREADS=str(len(cpus)))
    argv = [sys.executable, "-c", LOOP, engine, model, str(batch), str(duration), str(len(cpus))]
    if bind == "numactl":
        argv = ["numactl", f"--physcpubind={','.join(map(str, sorted(cpus)))}", *argv]
    text = subprocess.run(argv, check=True, capture_output=True, text=True, env=env,
                          preexec_fn=(lambda: os.sched_setaffinity(0, cpus))
                          if bind == "affinity" else None).stdout
    return json.loads(text.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=12.0)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--engines", default="openvino,onnxruntime,tensorflow,torch")
    parser.add_argument("--bind", choices=("affinity", "numactl"), default="affinity",
                        help="how both rn50 and the loop are pinned (default: affinity)")
    args = parser.parse_args()

    model = builtin_model(ModelConfig(), os.environ, print).path
    cpus = os.sched_getaffinity(0)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for engine in args.engines.split(","):
            ours, loop = [], []
            for round_ in range(args.rounds):  # alternate who goes first, against order bias
                runs = [lambda: ours.append(run_rn50(engine, args.batch, args.duration, Path(tmp),
                                                     args.bind)),
                        lambda: loop.append(run_loop(engine, model, args.batch, args.duration,
                                                     cpus, args.bind))]
                for run in runs if round_ % 2 == 0 else runs[::-1]:
                    run()
            med = {k: (statistics.median(r[k] for r in ours), statistics.median(r[k] for r in loop))
                   for k in ("p50_ms", "throughput")}
            rows.append((engine, med))
            print(f"{engine}: rn50 {[round(r['throughput'], 2) for r in ours]} img/s, "
                  f"own loop {[round(r['throughput'], 2) for r in loop]} img/s", flush=True)
    print(f"\nFP32 built-in ResNet-50 v1.5, batch {args.batch}, {len(cpus)} threads, one stream, "
          f"bound by {args.bind}, "
          f"{args.rounds} alternating rounds of {args.duration:g} s, medians")
    print(f"{'engine':<12} {'rn50 img/s':>10} {'loop img/s':>10} {'ratio':>6} "
          f"{'rn50 p50 ms':>11} {'loop p50 ms':>11} {'ratio':>6}")
    for engine, med in rows:
        (rt, lt), (rp, lp) = med["throughput"], med["p50_ms"]
        print(f"{engine:<12} {rt:>10.2f} {lt:>10.2f} {rt / lt:>6.3f} {rp:>11.2f} {lp:>11.2f} "
              f"{rp / lp:>6.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
