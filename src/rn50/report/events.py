"""The engine workers' events as console lines, in the seed's format.

One handler per event kind (`_<kind>`); in a multi-instance run instance 1 speaks
for the progress of all, and each instance says when it has loaded.
"""

from __future__ import annotations

from typing import Callable

from ..measure.progress import count_line
from .console import data_source_lines, progress_line


def engine_lines(engine: dict) -> list[str]:
    """What the engine applied (read back), what it was only asked, what it executed."""
    version = engine["versions"].get(engine["name"], "")
    applied = " ".join(f"{k}={v}" for k, v in engine["applied"].items())
    lines = [f"Engine {engine['name']} {version} applied: {applied}"]
    if engine.get("requested") and engine["name"] != "openvino":  # OpenVINO's are read back
        requested = " ".join(f"{k}={v}" for k, v in engine["requested"].items())
        lines.append(f"  requested (the engine has no getter to confirm them): {requested}")
    lines.append(f"Execution precision: {engine['execution_precision']} "
                 f"({engine['execution_precision_source']})")
    note = float_layers_note(engine)
    if note:
        lines.append(f"NOTE: {note}")
    return lines


def float_layers_note(engine: dict) -> str | None:
    """What precision the layers an INT8 model leaves in float run in, when it is not f32."""
    hint = engine.get("applied", {}).get("INFERENCE_PRECISION_HINT")
    if engine.get("requested", {}).get("INFERENCE_PRECISION_HINT") or hint in (None, "f32"):
        return None
    return (f"layers the INT8 model keeps in float run in {hint} (INFERENCE_PRECISION_HINT="
            f"{hint}: OpenVINO's default on this CPU; rn50 leaves it for INT8 runs)")


class EventPrinter:
    def __init__(self, line: Callable[[str], None], instances: int, verbose: bool,
                 plan=None) -> None:
        self.line, self.instances, self.verbose = line, instances, verbose
        self.multi = instances > 1
        self.plan = plan  # scenarios.benchmark.BenchmarkPlan: steps expected, ETA
        self.in_flight = 1

    def __call__(self, index: int, message: dict) -> None:
        handler = getattr(self, f"_{message['type'].replace('-', '_')}", None)
        if handler is not None:
            handler(index, message)

    def _loaded(self, index: int, message: dict) -> None:
        t = message["load_timings"]
        self.in_flight = int(message["engine"].get("infer_requests") or 1)
        if self.multi and index:
            self.line(f"Instance {index + 1} loaded (read {t['read_s']:.2f} s, "
                      f"compiled {t['compile_s']:.2f} s)")
            return
        spec, meta = message["input"], message["metadata"]
        self.line(f"{'Instance 1: ' if self.multi else ''}Model read in {t['read_s']:.2f} s, "
                  f"compiled in {t['compile_s']:.2f} s; input {spec['name']} {spec['shape']} "
                  f"{spec['layout']}")
        for text in engine_lines(message["engine"]):
            self.line(text)
        self.line(f"Model output: {meta['num_classes']} classes"
                  + (" (background at 0: labels are offset by 1)" if meta["background_class"]
                     else "") + f"; preprocessing: {meta['preprocessing']['name']}")

    def _first_inference(self, index: int, message: dict) -> None:
        if not index:
            self.line(f"First inference: {message['ms']:.1f} ms (not in the figures)")

    def _phase(self, index: int, message: dict) -> None:
        if index:
            return
        if message["phase"] == "warmup":
            self.line("[Running warmup steps...]")
        elif message["phase"] == "compute-only":
            self.line("[Running compute-only steps: the same batch again, no decoding...]")
        else:
            self.line("[Running benchmark steps...]" if not self.multi else
                      f"[Running benchmark steps: all {self.instances} instances started "
                      "together]")

    def _progress(self, index: int, message: dict) -> None:
        if index:
            return
        done = None
        if self.plan is not None:
            plan, in_flight = self.plan, self.in_flight
            done = ((lambda n, t: plan.warmup_done(n, t)) if message["phase"] == "warmup"
                    else (lambda n, t: plan.measure_done(n, t, in_flight)))
        self.line(("instance 1: " if self.multi else "") + progress_line(message, done))

    def _data(self, index: int, message: dict) -> None:
        if not index:
            for text in data_source_lines(message):
                self.line(text)

    def _accuracy(self, index: int, message: dict) -> None:
        self.line(f"Processed {message['images']} images. (Top1 accuracy, Top5 accuracy) = "
                  f"({message['top1']:.4f}, {message['top5']:.4f})")
        self.line("  " + count_line("progress", message["images"], message["total"],
                                    message["elapsed_s"]))

    def _count(self, index: int, message: dict) -> None:
        self.line(count_line(message["what"], message["done"], message["total"],
                             message["elapsed_s"]))

    def _traceback(self, index: int, message: dict) -> None:
        if self.verbose:
            self.line(message["text"].rstrip())
