"""Scenarios on real images: accuracy, classification, and the end-to-end benchmark.

Class indices: a model's output i is ImageNet label i - class_offset + 1 (1-based,
as TFRecords store them): a 1000-class model's output 0 is label 1 (tench); a
1001-class model's output 1 is label 1 and its output 0 is the background.
"""

from __future__ import annotations

import time
from collections import deque
from typing import Callable, Iterator

import numpy as np

from ..backends import Session
from ..data.pipeline import Batch
from ..errors import DataError, ModelError
from ..measure.progress import Ticker
from ..measure.stats import stability_warnings, summarize
from .benchmark import BenchmarkPlan, Interrupted, run_benchmark

Emit = Callable[[dict], None]


def padded(batch: Batch, batch_size: int) -> np.ndarray:
    """The batch's array, padded with zeros to the compiled batch size."""
    array = batch.array
    if array.shape[0] == batch_size:
        return array
    pad = np.zeros((batch_size - array.shape[0], *array.shape[1:]), dtype=array.dtype)
    return np.concatenate([array, pad])


def top_labels(logits: np.ndarray, k: int, class_offset: int) -> tuple[np.ndarray, np.ndarray]:
    """(labels, probabilities) of the k best classes per row, best first; labels 1-based.

    The background output of a 1001-class model is never reported as a class.
    """
    labels, top, _ = ranked(logits, k, class_offset)
    return labels, top


def ranked(logits: np.ndarray, k: int, class_offset: int
           ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """`top_labels`, plus every class's probability (softmax over the classes after the
    offset), computed once."""
    logits = np.asarray(logits, dtype=np.float64).reshape(logits.shape[0], -1)
    if class_offset:
        logits = logits[:, class_offset:]
    shifted = logits - logits.max(axis=1, keepdims=True)
    probs = np.exp(shifted)
    probs /= probs.sum(axis=1, keepdims=True)
    order = np.argsort(-logits, axis=1, kind="stable")[:, :k]
    return order + 1, np.take_along_axis(probs, order, axis=1), probs


class TopK:
    """Running top-1 / top-5 counts."""

    def __init__(self) -> None:
        self.count = self.top1 = self.top5 = 0

    def update(self, predicted: np.ndarray, labels: list[int]) -> None:
        for row, label in zip(predicted, labels):
            self.count += 1
            self.top1 += int(row[0] == label)
            self.top5 += int(label in row[:5])

    def rates(self) -> tuple[float, float]:
        return (self.top1 / self.count, self.top5 / self.count) if self.count else (0.0, 0.0)


IMAGENET_OUTPUTS = (1000, 1001)  # 1001: TF-slim's background class first


def class_scores(logits: np.ndarray) -> np.ndarray:
    """`logits` as [N, 1000|1001] class scores ([N, C, 1, 1] is squeezed); ModelError for
    any other output (a detector, a segmenter, a feature extractor): reading it as class
    scores would print confident nonsense."""
    shape = logits.shape
    if logits.ndim > 2 and all(d == 1 for d in shape[2:]):
        logits = logits.reshape(shape[0], -1)
    if logits.ndim != 2 or logits.shape[1] not in IMAGENET_OUTPUTS:
        raise ModelError(f"the model's output is {list(shape)}, not ImageNet class scores "
                         "[N, 1000] or [N, 1001]: classify and accuracy need an ImageNet "
                         "classifier")
    return logits


def _outputs(session: Session, batch: Batch, batch_size: int) -> np.ndarray:
    logits = class_scores(np.asarray(session.run(padded(batch, batch_size))))
    return logits[:len(batch.units)]


class Counting:
    """Images done so far, reported at least every PROGRESS_SECONDS (and at the end)."""

    def __init__(self, total: int | None, clock: Callable[[], float] = time.monotonic) -> None:
        self.total, self.clock = total, clock
        self.begin = clock()
        self.ticker = Ticker(clock, steps=None)

    def due(self, done: int, batch_size: int) -> bool:
        """Whether to report `done` images now (batches of `batch_size` keep coming)."""
        per_batch = (self.clock() - self.begin) / max(done, 1) * batch_size
        if self.ticker.due(done, per_batch) or (self.total and done >= self.total):
            self.ticker.mark(done, self.clock())
            return True
        return False

    def fields(self) -> dict:
        return {"total": self.total, "elapsed_s": self.clock() - self.begin}


def run_accuracy(session: Session, batches: Iterator[Batch], batch_size: int,
                 class_offset: int, emit: Emit, should_stop: Callable[[], bool],
                 total: int | None = None) -> dict:
    """Top-1 / top-5 over every labelled image the batches hold."""
    counter, skipped = TopK(), []
    counting = Counting(total)

    def report() -> None:
        top1, top5 = counter.rates()
        emit({"type": "accuracy", "images": counter.count, "top1": top1, "top5": top5,
              "skipped": len(skipped), **counting.fields()})

    for batch in batches:
        skipped += [s.reason for s in batch.skipped]
        if not batch.units:
            continue
        if any(label is None for label in batch.labels):
            missing = next(u for u in batch.units if u.label is None)
            raise DataError(f"{missing.key}: no label: accuracy needs labelled images")
        predicted, _ = top_labels(_outputs(session, batch, batch_size), 5, class_offset)
        counter.update(predicted, batch.labels)
        if counting.due(counter.count, batch_size):
            report()
        if should_stop():
            break
    if counter.count and counting.ticker.last_count != counter.count:
        report()  # Model Zoo's last line always has the final figures
    if not counter.count and not should_stop():
        raise DataError(_none_usable(skipped))
    top1, top5 = counter.rates()
    return {"accuracy": {"images": counter.count, "top1": top1, "top5": top5,
                         "top1_correct": counter.top1, "top5_correct": counter.top5},
            "skipped": skipped, "interrupted": bool(should_stop())}


def run_classify(session: Session, batches: Iterator[Batch], batch_size: int,
                 class_offset: int, k: int, emit: Emit, should_stop: Callable[[], bool],
                 total: int | None = None) -> dict:
    """Top-k labels per image, sent batch by batch (`predictions` messages)."""
    count, skipped = 0, []
    counting = Counting(total)
    for batch in batches:
        if batch.skipped:
            skipped += [s.reason for s in batch.skipped]
            emit({"type": "skipped", "rows": [{"key": s.key, "reason": s.reason}
                                              for s in batch.skipped]})
        if not batch.units:
            continue
        labels, probs = top_labels(_outputs(session, batch, batch_size), k, class_offset)
        rows = [{"key": u.key, "name": u.name, "label": u.label,
                 "top": [[int(lab), float(p)] for lab, p in zip(row_l, row_p)]}
                for u, row_l, row_p in zip(batch.units, labels, probs)]
        count += len(rows)
        emit({"type": "predictions", "rows": rows})
        if counting.due(count, batch_size):
            emit({"type": "count", "what": "Classified", "done": count, **counting.fields()})
        if should_stop():
            break
    if not count and skipped and not should_stop():
        raise DataError(_none_usable(skipped))
    return {"classified": count, "skipped": skipped, "interrupted": bool(should_stop())}


def _none_usable(skipped: list[str]) -> str:
    if not skipped:
        return "no images to use"
    return (f"none of the {len(skipped)} images could be used (each is listed as skipped; "
            f"first: {skipped[0]})")


def _feed(session: Session, batches: Iterator[Batch], batch_size: int,
          done: Callable[[int, float], bool], clock: Callable[[], float], emit: Emit,
          phase: str) -> dict:
    """Run batches from the pipeline through the engine until `done(steps, elapsed)`.

    Uses the engine's asynchronous requests when it has several, so real data
    gets the same parallelism as the compute-only run.
    """
    steps, images, skipped, wait_ms, step_ms = 0, 0, [], [], []
    # arrays a request may still be reading (engines bind inputs without copying)
    in_flight: deque = deque(maxlen=session.concurrency + 1)
    last = None
    begin = clock()
    ticker = Ticker(clock)
    finishes: list[float] = []
    while not done(steps, clock() - begin):
        t0 = clock()
        batch = next(batches, None)
        if batch is None:
            break
        wait_ms.append((clock() - t0) * 1e3)
        skipped += [s.reason for s in batch.skipped]
        if not batch.units:
            continue
        last = batch
        session.wait_idle()
        start = clock()

        def on_done(output, start: float = start) -> None:
            finish = clock()
            step_ms.append((finish - start) * 1e3)
            finishes.append(finish)

        array = padded(batch, batch_size)
        in_flight.append(array)
        session.submit(array, on_done)
        steps += 1
        images += len(batch.units)
        if phase == "benchmark" and ticker.due(steps, (clock() - begin) / steps):
            now = clock()
            emit({"type": "progress", "phase": phase, "steps": steps, "elapsed_s": now - begin,
                  "images_per_sec": images / max(now - begin, 1e-12)})
            ticker.mark(steps, now)
    session.wait_all()
    end = max(finishes) if finishes else clock()
    return {"steps": steps, "images": images, "skipped": skipped, "wait_ms": wait_ms,
            "step_ms": step_ms, "begin": begin, "end": end, "last": last}


def run_data_benchmark(session: Session, batches: Iterator[Batch], batch_size: int,
                       plan: BenchmarkPlan, emit: Emit, should_stop: Callable[[], bool],
                       clock: Callable[[], float] = time.monotonic,
                       before_timing: Callable[[], None] = lambda: None) -> dict:
    """End-to-end (decode + preprocess + inference) vs compute-only throughput.

    End-to-end: images / wall time of the timed region with the pipeline feeding
    the engine (decoding on the same CPUs, any wait for images included).
    Compute-only: the same session and plan on one already-preprocessed batch
    (what the engine does when data is free), measured right after.
    """
    emit({"type": "phase", "phase": "warmup"})
    warm = _feed(session, batches, batch_size,
                 lambda n, t: should_stop() or plan.warmup_done(n, t), clock, emit, "warmup")
    if warm["last"] is None:
        raise DataError("no usable images in the data")
    if should_stop():
        raise Interrupted("stopped during warm-up: nothing was timed")
    first_ms = warm["step_ms"][0] if warm["step_ms"] else None
    if first_ms is not None:
        emit({"type": "first_inference", "ms": first_ms})
    before_timing()  # several instances start their timed regions together
    emit({"type": "phase", "phase": "benchmark"})
    timed = _feed(session, batches, batch_size,
                  lambda n, t: (should_stop() and n > 0)
                  or plan.measure_done(n, t, session.concurrency),
                  clock, emit, "benchmark")
    if not timed["steps"]:
        raise DataError("the data ran out before any timed step")
    span = timed["end"] - timed["begin"]
    emit({"type": "phase", "phase": "compute-only"})
    compute = run_benchmark(session, padded(timed["last"], batch_size), plan, clock=clock,
                            should_stop=should_stop)
    e2e = timed["images"] / span if span > 0 else float("inf")
    compute_rate = compute["summary"]["throughput_images_per_sec"]
    latency = summarize(timed["step_ms"])
    warnings = stability_warnings(latency, "end-to-end step latency") + [
        f"compute-only: {w}" for w in compute["warnings"]]
    return {
        "batch_size": batch_size,
        "first_inference_ms": first_ms,
        "samples": {"step_ms": timed["step_ms"], "data_wait_ms": timed["wait_ms"],
                    "compute_only_step_ms": compute["samples"]["step_ms"]},
        "summary": {
            "steps": timed["steps"], "images": timed["images"], "measured_seconds": span,
            "throughput_images_per_sec": e2e,
            "end_to_end_images_per_sec": e2e,
            "compute_only_images_per_sec": compute_rate,
            "end_to_end_vs_compute_only": e2e / compute_rate,
            "data_wait_seconds": sum(timed["wait_ms"]) / 1e3,
            "latency_ms": latency,
            "compute_only_latency_ms": compute["summary"]["latency_ms"],
            "concurrency": session.concurrency,
        },
        "region": {"start": timed["begin"], "end": timed["end"], "clock": "CLOCK_MONOTONIC"},
        "skipped": warm["skipped"] + timed["skipped"],
        "interrupted": bool(should_stop()),
        "warnings": warnings,
    }
