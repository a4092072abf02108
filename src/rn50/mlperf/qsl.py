"""The query sample library: images preprocessed once, held in memory, indexed as LoadGen asks.

Real images (`--data-location`) are decoded and preprocessed for the loaded
model exactly as `rn50 accuracy` does (the same pipeline and metadata);
without data, seeded synthetic images stand in (and the result says so).
Everything is loaded up front, so LoadGen's load/unload calls cost nothing
during the timed run; the memory this takes is checked before decoding.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from ..errors import ConfigError, DataError
from ..limits import available_memory, format_bytes


@dataclass
class SampleLibrary:
    images: np.ndarray  # [count, *image shape], the model's float32 input
    labels: list[int | None]  # ImageNet 1-based labels, None when unlabelled
    description: str
    synthetic: bool

    @property
    def count(self) -> int:
        return len(self.images)

    def batch(self, indices: list[int]) -> np.ndarray:
        return self.images[indices]


def _check_fits(count: int, shape: tuple[int, ...]) -> None:
    needed = count * int(np.prod(shape)) * 4
    available = available_memory()
    if available is not None and needed > 0.7 * available:
        raise ConfigError(f"holding {count} preprocessed images needs {format_bytes(needed)}; "
                          f"this machine has {format_bytes(available)} available: use "
                          "--max-images (or --performance-sample-count) to hold fewer")


def synthetic(count: int, shape: tuple[int, ...], seed: int = 0) -> SampleLibrary:
    """`count` seeded random images of `shape` (one image, no batch dimension)."""
    _check_fits(count, shape)
    rng = np.random.default_rng(seed)
    images = rng.normal(0.0, 1.0, (count, *shape)).astype(np.float32)
    return SampleLibrary(images, [None] * count, f"{count} synthetic images (seeded random)",
                         True)


def from_data(data: dict, metadata: dict, spec_shape: tuple[int, ...], layout: str,
              image_size: int, log: Callable[[str], None]) -> SampleLibrary:
    """Every image of the data job (at most its max_images), preprocessed for the model."""
    from ..data.pipeline import Pipeline
    from ..data.preprocess import spec_from_metadata
    from ..data.sources import open_source

    source = open_source(data["paths"], data.get("labels_file"))
    total = source.count()
    limit = data.get("max_images") or total
    if limit:
        _check_fits(min(limit, total or limit), spec_shape)
    prep = spec_from_metadata(metadata["preprocessing"], layout, crop=image_size)
    images, labels, skipped = [], [], 0
    with Pipeline(source, prep, 64, workers=data["workers"], shortcut=data["shortcut"],
                  strict=data["strict"], max_images=data.get("max_images")) as pipeline:
        for batch in pipeline.batches():
            skipped += len(batch.skipped)
            if batch.units:
                images.append(batch.array)
                labels += batch.labels
                log(f"Preprocessed {len(labels)} images into memory")
    if not images:
        raise DataError(f"{source.description}: none of its images could be used "
                        f"({skipped} skipped)")
    return SampleLibrary(np.concatenate(images), labels, f"{len(labels)} images from "
                         f"{source.description}" + (f" ({skipped} skipped)" if skipped else ""),
                         False)
