"""Synthetic input: seeded uniform pixels in 0..255, normalised as the model expects.

Not all zeros (Model Zoo's dummy data was): zeros can take faster paths in some
kernels and would flatter the figures.
"""

from __future__ import annotations

import numpy as np


def synthetic_batch(shape: tuple[int, ...], layout: str, mean, std, seed: int = 0) -> np.ndarray:
    """A float32 batch of random images of `shape` (NCHW or NHWC), normalised per channel.

    The images are the same whatever the layout (drawn as NCHW, then transposed),
    so engines with different input layouts see the same pixels.
    """
    rng = np.random.default_rng(seed)
    nchw = shape if layout == "NCHW" else (shape[0], shape[3], shape[1], shape[2])
    pixels = rng.uniform(0.0, 255.0, size=nchw).astype(np.float32)
    mean = np.asarray(mean, dtype=np.float32).reshape(1, 3, 1, 1)
    std = np.asarray(std, dtype=np.float32).reshape(1, 3, 1, 1)
    images = (pixels - mean) / std
    if layout == "NHWC":
        images = images.transpose(0, 2, 3, 1)
    return np.ascontiguousarray(images)
