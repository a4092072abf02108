"""Real images for a scenario: the source, its preprocessing and the decode pipeline."""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from typing import Iterator

from ..errors import DataError


@dataclass
class Images:
    """An open pipeline and what to record about it."""

    pipeline: object  # data.pipeline.Pipeline
    total: int | None  # images the run will see, when known up front
    offset: int  # the model's class offset
    info: dict  # description, kind, labels, preprocessing and where it happens

    def batches(self):
        return self.pipeline.batches()


@contextmanager
def open_images(ctx, job: dict, repeat: bool = False) -> Iterator[Images]:
    """The job's images, decoded in worker processes, for the loaded model."""
    from ..data.pipeline import Pipeline
    from ..data.preprocess import spec_from_metadata
    from ..data.sources import open_source

    data, spec = job["data"], ctx.input_spec
    prep = spec_from_metadata(ctx.metadata["preprocessing"], spec.layout, crop=spec.image_size)
    source = open_source(data["paths"], data.get("labels_file"))
    if job["scenario"] == "accuracy" and not source.labelled:
        raise DataError(f"{source.description}: no labels, and accuracy needs them "
                        "(TFRecords with image/class/label, class folders, or val_map.txt)")
    in_graph = getattr(ctx.session, "preprocessing_in_graph", None)
    normalised = f"in the engine graph ({in_graph})" if in_graph else \
        "in the engine process (NumPy tables)"
    described = dict(prep.to_dict(), sources=ctx.metadata["preprocessing"]["sources"])
    ctx.emit({"type": "data", "description": source.description, "labelled": source.labelled,
              "label_note": source.label_note, "preprocessing": described,
              "normalised": normalised, "workers": data["workers"],
              "shortcut": data["shortcut"]})
    pipeline = Pipeline(source, prep, spec.shape[0], workers=data["workers"],
                        shortcut=data["shortcut"], strict=data["strict"],
                        max_images=data.get("max_images"), repeat=repeat,
                        skip_keys=frozenset(data.get("skip_keys", ())), uint8=bool(in_graph))
    total = source.count(pipeline.skip_keys)
    if data.get("max_images"):
        total = min(total, data["max_images"]) if total is not None else data["max_images"]
    info = {"description": source.description, "kind": source.kind,
            "label_note": source.label_note, "normalised": normalised,
            "preprocessing": described}
    with pipeline:
        yield Images(pipeline, total, ctx.metadata["class_offset"], info)
