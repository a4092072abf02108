"""Per-layer times of an OpenVINO model from its own performance counters (PERF_COUNT).

Each executed node of the compiled (runtime) graph is a layer; its FLOPs are those of the
original layers OpenVINO fused into it (`originalLayersNames`), computed from the shapes of
the model as read (before compilation), so a Convolution with its bias, ReLU and the
quantize/dequantize around it counts once.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Callable

import numpy as np

from ..models.flops import flops_of, layer_bytes


def _figures(op, kind: str, precision: str) -> tuple[int, int] | None:
    """(FLOPs, bytes) of a node from its static shapes; None when it does no multiply-add."""
    try:
        inputs = [list(op.input(i).get_shape()) for i in range(op.get_input_size())]
        outputs = [list(op.output(i).get_shape()) for i in range(op.get_output_size())]
    except RuntimeError:  # a dynamic shape: no figure
        return None
    flops = flops_of(kind, inputs, outputs)
    return (flops, layer_bytes(inputs + outputs, precision)) if flops else None


def original_flops(ov_model, precision: str) -> dict[str, tuple[int, int]]:
    """Original layer name -> (FLOPs, bytes) for the layers that multiply-add."""
    table = {}
    for op in ov_model.get_ordered_ops():
        figures = _figures(op, op.get_type_name(), precision)
        if figures:
            table[op.get_friendly_name()] = figures
    return table


def runtime_nodes(compiled, precision: str) -> dict[str, tuple[list[str], tuple | None]]:
    """Runtime node name -> (the original layers fused into it, its own (FLOPs, bytes) from
    the runtime graph's shapes: used when the fused names carry no multiply-add, as when a
    MatMul is folded into a FullyConnected named after its bias)."""
    nodes = {}
    for op in compiled.get_runtime_model().get_ordered_ops():
        info = op.get_rt_info()
        original = info["originalLayersNames"].astype(str) if "originalLayersNames" in info \
            else ""
        kind = info["layerType"].astype(str) if "layerType" in info else op.get_type_name()
        nodes[op.get_friendly_name()] = ([n for n in original.split(",") if n],
                                         _figures(op, kind, precision))
    return nodes


def profile(session, ov_model, precision: str, batch: np.ndarray, steps: int,
            clock: Callable[[], float], progress: Callable[[int], None]) -> dict:
    """Run `steps` synchronous inferences; mean per-step time of each executed node."""
    request = session._compiled.create_infer_request()
    request.set_input_tensor(session._ov.Tensor(batch, shared_memory=True))
    request.infer()  # a new request's first inference allocates: not profiled
    totals: dict[str, float] = defaultdict(float)
    kinds: dict[str, tuple[str, str]] = {}
    step_ms, layer_ms = [], []
    for step in range(steps):
        start = clock()
        request.infer()
        step_ms.append(1000 * (clock() - start))
        layer_ms.append(0.0)
        for info in request.profiling_info:
            if info.status.name == "EXECUTED":
                ms = info.real_time.total_seconds() * 1000
                totals[info.node_name] += ms
                layer_ms[-1] += ms
                kinds[info.node_name] = (info.node_type, info.exec_type)
        progress(step + 1)
    table = original_flops(ov_model, precision)
    nodes = runtime_nodes(session._compiled, precision)
    layers = []
    for name, total in totals.items():
        fused, own = nodes.get(name, ([], None))
        parts = [table[n] for n in fused or [name] if n in table] or ([own] if own else [])
        layers.append({"name": name, "type": kinds[name][0], "exec_type": kinds[name][1],
                       "ms": total / steps, "flops": sum(p[0] for p in parts),
                       "bytes": sum(p[1] for p in parts), "fused": fused})
    return {"step_ms": step_ms, "step_layer_ms": layer_ms, "layers": layers,
            "counter": "OpenVINO PERF_COUNT real_time"}
