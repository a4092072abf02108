"""Dynamic batching on the event loop: requests wait in a bounded queue and leave together.

A batch leaves when it holds `max_batch` images or its first request has waited
`max_delay` - the latter only while another batch is running: an idle engine gets
what is queued at once (as Triton's dynamic batcher with no queue delay). It goes
to the least busy engine worker without blocking the loop (a thread hands it
over), and the next batch forms while it runs. Batches form only while a worker
can take one (`in_flight` per worker), so waiting requests stay in the bounded
queue, and a full queue refuses at once (`Overloaded` -> 429) instead of growing.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field

import numpy as np


class Overloaded(Exception):
    """The queue is full: the caller should retry later (429)."""


class Unavailable(Exception):
    """No engine worker can answer (503)."""


@dataclass
class _Item:
    images: np.ndarray
    future: asyncio.Future
    queued: float = field(default_factory=time.monotonic)


class Batcher:
    def __init__(self, pool, max_batch: int, max_delay_s: float, max_queue: int,
                 metrics=None, in_flight: int = 2) -> None:
        self.pool, self.max_batch, self.max_delay = pool, max_batch, max_delay_s
        self.queue: asyncio.Queue = asyncio.Queue(maxsize=max_queue)
        # batches formed only while a worker can take one: the queue is the only backlog
        self.capacity = asyncio.Semaphore(in_flight)
        self.metrics = metrics
        self.task: asyncio.Task | None = None
        self.in_flight = 0

    def start(self) -> None:
        self.task = asyncio.get_running_loop().create_task(self._run())

    async def infer(self, images: np.ndarray, timeout: float) -> np.ndarray:
        """Logits of `images` (at most max_batch of them); Overloaded when the queue is full,
        TimeoutError past `timeout` seconds."""
        item = _Item(images, asyncio.get_running_loop().create_future())
        try:
            self.queue.put_nowait(item)
        except asyncio.QueueFull:
            raise Overloaded from None
        return await asyncio.wait_for(item.future, timeout)

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await self.capacity.acquire()
            items = [await self.queue.get()]
            rows = len(items[0].images)
            closes = self._closes(items[0])
            while rows < self.max_batch:
                item = await self._next(closes)
                if item is None:
                    break
                if rows + len(item.images) > self.max_batch:
                    self._launch(loop, items)
                    await self.capacity.acquire()
                    items, rows, closes = [], 0, self._closes(item)
                items.append(item)
                rows += len(item.images)
            items = [i for i in items if not i.future.done()]  # (timed out while waiting)
            if items:
                self._launch(loop, items)
            else:
                self.capacity.release()

    def _closes(self, first: _Item) -> float:
        """When a batch starting with `first` must leave: after the delay while another batch
        runs; at once (with whatever is queued) when the engine is idle — holding a request
        back then only leaves the engine idle and adds the delay to every latency."""
        return first.queued + self.max_delay if self.in_flight else 0.0

    def _launch(self, loop, items: list[_Item]) -> None:
        self.in_flight += 1  # counted now: the next batch knows one is running
        loop.create_task(self._dispatch(items))

    async def _next(self, closes: float) -> _Item | None:
        """The next waiting request: at once if one is queued (under load the first request
        has often waited past the delay already, and the batch must still fill), else the
        first to arrive before `closes`; None when none does."""
        try:
            return self.queue.get_nowait()
        except asyncio.QueueEmpty:
            pass
        remaining = closes - time.monotonic()
        if remaining <= 0:
            return None
        try:
            return await asyncio.wait_for(self.queue.get(), remaining)
        except asyncio.TimeoutError:
            return None

    async def _dispatch(self, items: list[_Item]) -> None:
        batch = np.concatenate([i.images for i in items])
        start = time.monotonic()
        if self.metrics:
            self.metrics.batch(len(batch), [start - i.queued for i in items])
        try:
            submitted = await asyncio.get_running_loop().run_in_executor(
                None, self.pool.submit, batch)
            logits = await asyncio.wrap_future(submitted)
        except Exception as exc:  # noqa: BLE001 - every request of the batch gets it
            for item in items:
                if not item.future.done():
                    item.future.set_exception(Unavailable(str(exc)))
            return
        finally:
            self.in_flight -= 1
            self.capacity.release()
        if self.metrics:
            self.metrics.inference(time.monotonic() - start)
        offset = 0
        for item in items:
            count = len(item.images)
            if not item.future.done():
                item.future.set_result(logits[offset:offset + count])
            offset += count

    async def drain(self, timeout: float) -> None:
        """Wait until queued and in-flight batches are answered (at most `timeout` s)."""
        deadline = time.monotonic() + timeout
        while (not self.queue.empty() or self.in_flight) and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
