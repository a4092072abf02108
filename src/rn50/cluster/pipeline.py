"""What runs inside Ray: decode + preprocess tasks, and the engine actors.

Both are plain Python given to Ray Data's `map_batches` (a function for the tasks, a
class for the actor pool); neither imports ray, so both are tested without a cluster too.
Batches are dicts of NumPy arrays (Ray Data's "numpy" batch format).
"""

from __future__ import annotations

import os
import time

import numpy as np

from ..data.pipeline import decode_unit
from ..data.preprocess import PreprocessSpec, normalize

ERROR_KEY = "error"


def prep_spec(data: dict) -> PreprocessSpec:
    data = {k: v for k, v in data.items() if k != "filter"}
    return PreprocessSpec(**dict(data, mean=tuple(data["mean"]), std=tuple(data["std"])))


def decode_batch(batch: dict, spec: dict, shortcut: bool = True) -> dict:
    """Images (bytes or paths) -> uint8 crops; an image that cannot be used keeps its row
    with the error and a blank crop (the actor passes it through, never runs it)."""
    prep = prep_spec(spec)
    crops, errors = [], []
    blank = np.zeros((prep.crop, prep.crop, 3), np.uint8)
    for data, path in zip(batch["data"], batch["path"]):
        result = decode_unit(data or None, path or None, prep, shortcut)
        if isinstance(result, str):
            crops.append(blank)
            errors.append(result)
        else:
            crops.append(result)
            errors.append("")
    return {"key": batch["key"], "name": batch["name"], "label": batch["label"],
            "path": batch["path"], "crop": np.stack(crops),
            ERROR_KEY: np.asarray(errors, dtype=object)}


class EngineActor:
    """One engine, loaded once per actor process: crops -> top-k labels per image."""

    def __init__(self, job: dict) -> None:
        from ..backends import get_backend
        from ..models.resolve import model_spec_from_dict
        from ..settings import settings_from_dict

        self.job = job
        settings = settings_from_dict(job["settings"])
        self.session = get_backend(job["backend"]).load(
            model_spec_from_dict(job["model"]), settings, job["precision"])
        self.prep = prep_spec(job["preprocessing"])
        self.batch = self.session.input_spec.shape[0]
        self.pid = os.getpid()
        self.node = _node_id()
        self.images = 0
        self.busy_s = 0.0

    def __call__(self, batch: dict) -> dict:
        from ..scenarios.real_data import class_scores, top_labels

        errors = batch[ERROR_KEY]
        good = [i for i, e in enumerate(errors) if not e]
        k, offset = self.job["top_k"], self.job["class_offset"]
        labels = np.zeros((len(errors), k), np.int64)
        probs = np.zeros((len(errors), k), np.float64)
        start = time.perf_counter()
        for first in range(0, len(good), self.batch):
            rows = good[first:first + self.batch]
            inputs = normalize([batch["crop"][i] for i in rows], self.prep)
            padded = np.zeros(self.session.input_spec.shape, np.float32)
            padded[:len(rows)] = inputs
            logits = class_scores(np.asarray(self.session.run(padded)))[:len(rows)]
            labels[rows], probs[rows] = top_labels(logits, k, offset)
        self.busy_s += time.perf_counter() - start
        self.images += len(good)
        n = len(errors)
        return {"key": batch["key"], "name": batch["name"], "label": batch["label"],
                "path": batch["path"], "top_label": labels, "top_prob": probs, ERROR_KEY: errors,
                "pid": np.full(n, self.pid), "node": np.asarray([self.node] * n, dtype=object),
                "actor_images": np.full(n, self.images),
                "actor_busy_s": np.full(n, self.busy_s)}


def _node_id() -> str:
    try:
        import ray

        return ray.get_runtime_context().get_node_id()[:12]
    except Exception:  # noqa: BLE001 - outside Ray (a unit test): no node
        return "local"
