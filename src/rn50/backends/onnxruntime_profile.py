"""Per-layer times of an ONNX Runtime session from its own profiler (enable_profiling).

ONNX Runtime writes one trace event per executed node (`<node>_kernel_time`, with its op
type and the shapes and element types of its inputs and outputs) and one `model_run` per
run; the nodes of each profiled run are those inside its `model_run` window. FLOPs come
from the shapes of the node as it ran (after ORT's fusions and layout changes).
"""

from __future__ import annotations

import json
import os
from collections import defaultdict
from math import prod
from typing import Callable

import numpy as np

from ..models.flops import CONV_TYPES, conv_flops, flops_of

TYPE_BYTES = {"float": 4, "float16": 2, "bfloat16": 2, "uint8": 1, "int8": 1, "int32": 4,
              "int64": 8, "double": 8}


def _shapes(typed: list) -> tuple[list[list[int]], int]:
    """Shapes of a node's tensors and their bytes (by each tensor's element type)."""
    shapes, size = [], 0
    for entry in typed or []:
        for dtype, shape in entry.items():
            shapes.append(list(shape))
            size += TYPE_BYTES.get(dtype, 4) * prod(shape)
    return shapes, size


def weight_shapes(path: str) -> dict[str, list[int]]:
    """Node name -> its rank-4 weight's shape, from the optimized graph ORT saved (a
    QLinearConv's prepacked weight is not in the profiler's shapes)."""
    import onnx

    graph = onnx.load(path, load_external_data=False).graph
    dims = {init.name: list(init.dims) for init in graph.initializer if len(init.dims) == 4}
    return {node.name: dims[name] for node in graph.node for name in node.input
            if name in dims}


def run_windows(events: list[dict], runs: int) -> list[tuple[int, int]]:
    """(start, end) of the last `runs` model_run events, in the trace's microseconds."""
    windows = [(e["ts"], e["ts"] + e["dur"]) for e in events if e.get("name") == "model_run"]
    return windows[-runs:]


def layer_sums(events: list[dict], windows: list[tuple[int, int]]) -> list[float]:
    """Per profiled run: its nodes' kernel times summed (ms)."""
    sums = [0.0] * len(windows)
    for e in events:
        if e.get("cat") == "Node" and e["name"].endswith("_kernel_time"):
            for i, (start, end) in enumerate(windows):
                if start <= e["ts"] <= end:
                    sums[i] += e["dur"] / 1000
    return sums


def node_times(events: list[dict], runs: int, weights: dict | None = None) -> dict:
    """Per-node mean time (ms) and facts over the last `runs` model_run windows."""
    windows = run_windows(events, runs)
    totals: dict[str, float] = defaultdict(float)
    facts: dict[str, dict] = {}
    for e in events:
        if e.get("cat") != "Node" or not e["name"].endswith("_kernel_time"):
            continue
        if not any(start <= e["ts"] <= end for start, end in windows):
            continue
        name = e["name"].removesuffix("_kernel_time")
        totals[name] += e["dur"] / 1000
        if name not in facts:
            args = e.get("args", {})
            inputs, in_bytes = _shapes(args.get("input_type_shape"))
            outputs, out_bytes = _shapes(args.get("output_type_shape"))
            op = args.get("op_name", "?")
            flops = flops_of(op, inputs, outputs)
            if not flops and op in CONV_TYPES and outputs and name in (weights or {}):
                flops = conv_flops(outputs[0], weights[name])
            facts[name] = {"type": op, "exec_type": args.get("provider", ""),
                           "flops": flops, "bytes": in_bytes + out_bytes}
    return {name: dict(facts[name], ms=totals[name] / max(len(windows), 1))
            for name in totals}


def profile(session, optimized: str, batch: np.ndarray, steps: int,
            clock: Callable[[], float], progress: Callable[[int], None]) -> dict:
    """Run `steps` inferences, then read the profiler's trace (it ends profiling)."""
    step_ms = []
    for step in range(steps):
        start = clock()
        session.run(batch)
        step_ms.append(1000 * (clock() - start))
        progress(step + 1)
    path = session._session.end_profiling()
    try:
        with open(path, encoding="utf-8") as f:
            events = json.load(f)
    finally:
        os.unlink(path)
    try:
        weights = weight_shapes(optimized)
        os.unlink(optimized)
    except (OSError, ValueError, ImportError):  # no saved graph: FLOPs from shapes alone
        weights = {}
    layers = [{"name": name, **facts}
              for name, facts in node_times(events, steps, weights).items()]
    runs = [e["dur"] / 1000 for e in events if e.get("name") == "model_run"][-steps:]
    return {"step_ms": step_ms, "layers": layers, "engine_step_ms": runs,
            "step_layer_ms": layer_sums(events, run_windows(events, steps)),
            "counter": "ONNX Runtime profiler (enable_profiling), node kernel time"}
