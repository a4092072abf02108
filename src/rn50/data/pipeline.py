"""Decode and preprocess in worker processes, overlapped with inference, in a fixed order.

Worker processes (spawned, so none inherits the engine's threads) read or get
each image's bytes, decode and crop it to uint8; the engine process keeps a
bounded window of images in flight (`prefetch` batches), assembles batches in
source order and normalises them once per batch. A bad image never stops the
run: it is skipped and listed (`strict=True` makes it fatal).
"""

from __future__ import annotations

import multiprocessing
import signal
from collections import deque
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field
from typing import Iterator

import numpy as np

from ..errors import DataError
from ..limits import IMAGE_MAX_BYTES, read_bytes
from .preprocess import PreprocessSpec, decode_and_crop, normalize, stack_uint8
from .sources import DataSource, Skipped, Unit


def decode_unit(data: bytes | None, path: str | None, spec: PreprocessSpec,
            shortcut: bool) -> np.ndarray | str:
    """In a worker: the uint8 crop, or why the image could not be used (a string)."""
    try:
        raw = data if data is not None else read_bytes(path, "image", IMAGE_MAX_BYTES)
        return decode_and_crop(raw, spec, shortcut)
    except Exception as exc:  # noqa: BLE001 - any decode failure is a skipped image
        return f"{type(exc).__name__}: {exc}".splitlines()[0]


def _ignore_interrupts() -> None:
    """In a decode worker: Ctrl-C is for the engine process, which stops the pipeline."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


@dataclass
class Batch:
    units: list[Unit]
    array: np.ndarray
    skipped: list[Skipped] = field(default_factory=list)

    @property
    def labels(self) -> list[int | None]:
        return [u.label for u in self.units]


class Pipeline:
    """Batches of preprocessed images from a DataSource; a context manager (stops workers)."""

    def __init__(self, source: DataSource, spec: PreprocessSpec, batch_size: int,
                 workers: int = 2, prefetch: int = 2, shortcut: bool = True,
                 strict: bool = False, max_images: int | None = None, repeat: bool = False,
                 skip_keys: frozenset[str] = frozenset(), uint8: bool = False):
        self.source, self.spec, self.batch_size = source, spec, batch_size
        self.shortcut, self.strict = shortcut, strict
        self.max_images, self.repeat, self.skip_keys = max_images, repeat, skip_keys
        self.window = max(1, prefetch) * batch_size
        # uint8 NHWC crops for an engine that normalises in its graph, else the float batch
        self.assemble = stack_uint8 if uint8 else normalize
        self.workers = workers
        self.pass_size, self.bad_run, self.first_bad = 0, 0, ""
        self.executor = (ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context(
            "spawn"), initializer=_ignore_interrupts) if workers > 0 else None)

    def __enter__(self) -> "Pipeline":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        if self.executor is not None:
            self.executor.shutdown(wait=True, cancel_futures=True)
            self.executor = None

    def _units(self) -> Iterator[Unit | Skipped]:
        while True:
            produced = 0
            for unit in self.source.units():
                if isinstance(unit, Unit) and unit.key in self.skip_keys:
                    continue
                produced += 1
                yield unit
            self.pass_size = self.pass_size or produced
            if not (self.repeat and produced):
                return

    def _check_progress(self, skipped: Skipped) -> None:
        """Repeating a source none of whose images can be used would never end: refuse it
        once a whole pass in a row was skipped."""
        self.bad_run += 1
        self.first_bad = self.first_bad or skipped.reason
        if self.repeat and self.pass_size and self.bad_run >= self.pass_size:
            raise DataError(f"{self.source.description}: none of its {self.pass_size} images "
                            f"could be used (first: {self.first_bad})")

    def _submit(self, unit: Unit) -> Future | np.ndarray | str:
        if self.executor is None:
            return decode_unit(unit.data, unit.path, self.spec, self.shortcut)
        return self.executor.submit(decode_unit, unit.data, unit.path, self.spec, self.shortcut)

    def crops(self) -> Iterator[tuple[Unit, np.ndarray] | Skipped]:
        """(unit, crop) in source order, or Skipped; at most `max_images` good images."""
        pending: deque = deque()
        units = self._units()
        taken = 0
        exhausted = False
        while True:
            while not exhausted and len(pending) < self.window:
                unit = next(units, None)
                if unit is None:
                    exhausted = True
                elif isinstance(unit, Skipped):
                    pending.append((unit, None))
                else:
                    pending.append((unit, self._submit(unit)))
            if not pending:
                return
            unit, work = pending.popleft()
            if isinstance(unit, Skipped):
                if self.strict:
                    raise DataError(unit.reason)
                self._check_progress(unit)
                yield unit
                continue
            result = work.result() if isinstance(work, Future) else work
            if isinstance(result, str):
                skipped = Skipped(unit.key, f"{unit.path or unit.key}: {result}")
                if self.strict:
                    raise DataError(skipped.reason)
                self._check_progress(skipped)
                yield skipped
                continue
            self.bad_run = 0
            yield unit, result
            taken += 1
            if self.max_images is not None and taken >= self.max_images:
                for _, work in pending:
                    if isinstance(work, Future):
                        work.cancel()
                return

    def batches(self) -> Iterator[Batch]:
        """Full batches (the last one may be short unless repeating)."""
        units, crops, skipped = [], [], []
        for item in self.crops():
            if isinstance(item, Skipped):
                skipped.append(item)
                continue
            units.append(item[0])
            crops.append(item[1])
            if len(units) == self.batch_size:
                yield Batch(units, self.assemble(crops, self.spec), skipped)
                units, crops, skipped = [], [], []
        if units:
            yield Batch(units, self.assemble(crops, self.spec), skipped)
        elif skipped:
            yield Batch([], np.empty((0,)), skipped)
