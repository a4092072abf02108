"""The system under test: LoadGen's queries, batched, on a pool of pinned engine workers.

`issue_queries` only queues the samples (LoadGen's issuing thread never
waits) — except one query at a time (SingleStream, MultiStream), which goes to
a worker at once, saving a thread hop. One dispatcher thread forms batches —
whatever has arrived, up to the compiled batch — and submits them to the least
busy worker, waiting for a free request slot when all are busy (back-pressure).
Each batch's answer, the top-1 label as an int32, goes back with
`QuerySamplesComplete` from the worker's reply thread. After `stop()` (Ctrl-C)
queries are answered at once, empty, so LoadGen can finish.
"""

from __future__ import annotations

import queue
import threading
import time
from concurrent.futures import Future

import numpy as np

from .qsl import SampleLibrary


class PoolSUT:
    def __init__(self, lg, pool, library: SampleLibrary, batch: int, class_offset: int,
                 inline: bool = False) -> None:
        self.lg, self.pool, self.library = lg, pool, library
        self.batch, self.class_offset = batch, class_offset
        self.inline = inline  # one query at a time (Single/MultiStream): no dispatcher hop
        self.pending: "queue.Queue[list | None]" = queue.Queue()
        self.completed = 0
        self.failure: str | None = None
        self.stopped = threading.Event()
        self._lock = threading.Lock()
        self._dispatcher = threading.Thread(target=self._dispatch, name="rn50-sut", daemon=True)
        self._dispatcher.start()

    # -- LoadGen's callbacks -----------------------------------------------------------------
    def issue_queries(self, samples) -> None:
        chunk = [(s.id, s.index) for s in samples]
        if self.inline and len(chunk) <= self.batch:
            self._run(chunk)
        else:
            self.pending.put(chunk)

    def flush_queries(self) -> None:
        pass

    # -- batching ------------------------------------------------------------------------------
    def _dispatch(self) -> None:
        waiting: list = []
        while True:
            if not waiting:
                item = self.pending.get()
                if item is None:
                    return
                waiting = item
            while len(waiting) < self.batch:  # whatever else has arrived joins this batch
                try:
                    item = self.pending.get_nowait()
                except queue.Empty:
                    break
                if item is None:
                    self._run(waiting)
                    return
                waiting += item
            chunk, waiting = waiting[:self.batch], waiting[self.batch:]
            self._run(chunk)

    def _run(self, chunk: list) -> None:
        if self.stopped.is_set() or self.failure:
            self._complete(chunk, None)
            return
        try:
            future = self.pool.submit(self.library.images,
                                      rows=[index for _, index in chunk])
        except Exception as exc:  # noqa: BLE001 - reported after the run; LoadGen must go on
            self.failure = self.failure or str(exc)
            self._complete(chunk, None)
            return
        future.add_done_callback(lambda done: self._answered(chunk, done))

    def _answered(self, chunk: list, future: Future) -> None:
        if future.exception() is not None:
            self.failure = self.failure or str(future.exception())
            self._complete(chunk, None)
            return
        logits = future.result()
        labels = logits.reshape(len(logits), -1)[:len(chunk)].argmax(axis=1)
        self._complete(chunk, (labels - self.class_offset + 1).astype(np.int32))

    def _complete(self, chunk: list, labels: np.ndarray | None) -> None:
        """Tell LoadGen; each answer is its label (4 bytes), kept alive during the call."""
        data = labels if labels is not None else np.zeros(len(chunk), np.int32)
        base, size = data.ctypes.data, data.itemsize
        self.lg.QuerySamplesComplete([self.lg.QuerySampleResponse(qid, base + i * size, size)
                                      for i, (qid, _) in enumerate(chunk)])
        with self._lock:
            self.completed += len(chunk)

    def stop(self) -> None:
        """Answer everything from now on at once (Ctrl-C), so LoadGen can finish."""
        self.stopped.set()

    def close(self, timeout: float = 5.0) -> None:
        self.pending.put(None)
        self._dispatcher.join(timeout)


def warm_up(pool, library: SampleLibrary, batch: int, seconds: float = 2.0) -> float:
    """Run batches for about `seconds` (at least 3) before LoadGen starts, as MLPerf allows;
    the batches per second seen, for LoadGen's expected QPS."""
    indices = list(range(min(batch, library.count)))
    images = library.batch(indices + indices[:batch - len(indices)])
    start, done = time.monotonic(), 0
    while done < 3 or time.monotonic() - start < seconds:
        pool.submit(images).result()
        done += 1
    return done / (time.monotonic() - start)
