"""Synthetic input: seeded uniform pixels in 0..255, normalised as the model expects.

Not all zeros (Model Zoo's dummy data was): zeros can take faster paths in some
kernels and would flatter the figures.
"""

from __future__ import annotations

import numpy as np


def synthetic_batch(shape: tuple[int, ...], layout: str, mean, std, seed: int = 0) -> np.ndarray:
    """A float32 batch of random images of `shape` (NCHW or NHWC), normalised per channel."""
    rng = np.random.default_rng(seed)
    pixels = rng.uniform(0.0, 255.0, size=shape).astype(np.float32)
    channel_axis = 1 if layout == "NCHW" else 3
    view = [1, 1, 1, 1]
    view[channel_axis] = 3
    mean = np.asarray(mean, dtype=np.float32).reshape(view)
    std = np.asarray(std, dtype=np.float32).reshape(view)
    return np.ascontiguousarray((pixels - mean) / std)
