"""Memory bandwidth this process can draw, measured (for the roofline's ridge point)."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np

CHUNK_BYTES = 64 << 20  # per thread: well past the caches


def copy_bandwidth(threads: int = 1, repeats: int = 3) -> dict:
    """GB/s of large array copies (read + write counted) on `threads` threads at once, the
    best of `repeats`: NumPy releases the GIL for the copy, so the threads run together."""
    threads = max(1, threads)
    sources = [np.ones(CHUNK_BYTES // 8) for _ in range(threads)]
    targets = [np.empty_like(s) for s in sources]
    best = float("inf")
    with ThreadPoolExecutor(threads) as pool:
        for _ in range(repeats):
            start = time.perf_counter()
            list(pool.map(np.copyto, targets, sources))
            best = min(best, time.perf_counter() - start)
    moved = 2 * CHUNK_BYTES * threads
    return {"gb_per_sec": moved / best / 1e9, "method": f"NumPy copy of {threads} x "
            f"{CHUNK_BYTES >> 20} MiB on {threads} thread(s), read + write, best of {repeats}"}
