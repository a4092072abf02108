"""Time-based progress: when a line is due, how many steps a phase will take, and its ETA.

Pure helpers (a clock is passed in), shared by the benchmark, real-data,
accuracy, classify, build-tfrecords and quantize loops, so every long phase
says something at least every `PROGRESS_SECONDS`, with done/total and an ETA.
"""

from __future__ import annotations

import threading
import time
from contextlib import contextmanager
from typing import Callable, Iterator

PROGRESS_SECONDS = 5.0
PROGRESS_STEPS = 10  # the seed's cadence, when steps are quicker than PROGRESS_SECONDS
MAX_SIMULATED_STEPS = 1_000_000


class Ticker:
    """Says when a progress line is due: every `steps` completions or `seconds`, whichever first."""

    def __init__(self, clock: Callable[[], float], seconds: float = PROGRESS_SECONDS,
                 steps: int | None = PROGRESS_STEPS) -> None:
        self.clock, self.seconds, self.steps = clock, seconds, steps
        self.last_time = clock()
        self.last_count = 0

    def due(self, count: int, step_seconds: float = 0.0) -> bool:
        """True when `count` completions make a line due; the caller then calls `mark`.

        With steps of `step_seconds`, a line is due as soon as waiting for one more
        would leave the console silent for longer than `seconds`.
        """
        if count <= self.last_count:
            return False
        return ((self.steps is not None and count - self.last_count >= self.steps)
                or self.clock() - self.last_time + step_seconds >= self.seconds)

    def mark(self, count: int, now: float) -> None:
        """A line was printed at `now` for `count` completions: the next window starts."""
        self.last_count, self.last_time = count, now


def expected_total(done: Callable[[int, float], bool], count: int, elapsed: float,
                   step_seconds: float) -> tuple[int, float]:
    """(total steps, seconds left) for a phase that stops when `done(count, elapsed)`,
    if each further step takes `step_seconds` (the phase's own stop rule, which only turns
    true as steps and time grow: found by doubling, then bisection, in O(log n) calls)."""
    step_seconds = max(step_seconds, 1e-9)

    def stops(k: int) -> bool:
        return done(count + k, elapsed + k * step_seconds)

    if stops(0):
        return count, 0.0
    low, high = 0, 1  # stops(low) is False
    while not stops(high) and high < MAX_SIMULATED_STEPS:
        low, high = high, min(2 * high, MAX_SIMULATED_STEPS)
    while high - low > 1:
        middle = (low + high) // 2
        low, high = (low, middle) if stops(middle) else (middle, high)
    return count + high, high * step_seconds


def format_eta(seconds: float) -> str:
    seconds = max(0, int(round(seconds)))
    if seconds < 60:
        return f"{seconds} s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min {seconds:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


def count_line(what: str, done: int, total: int | None, elapsed: float, unit: str = "images"
               ) -> str:
    """`what: 120/1000 images (12%), 24.0 images/s, ETA 36 s` (no total: no % and no ETA)."""
    rate = done / elapsed if elapsed > 0 else 0.0
    if total:
        eta = (total - done) / rate if rate > 0 else float("nan")
        eta_text = format_eta(eta) if eta == eta else "unknown"
        return (f"{what}: {done}/{total} {unit} ({100 * done / total:.0f}%), "
                f"{rate:.1f} {unit}/s, ETA {eta_text}")
    return f"{what}: {done} {unit}, {rate:.1f} {unit}/s"


@contextmanager
def heartbeat(log: Callable[[str], None], what: str, seconds: float = PROGRESS_SECONDS
              ) -> Iterator[None]:
    """Log `what: N s elapsed` every `seconds` while an opaque step (a quantizer) runs."""
    stop = threading.Event()
    start = time.monotonic()

    def beat() -> None:
        while not stop.wait(seconds):
            log(f"{what}: {time.monotonic() - start:.0f} s elapsed")

    thread = threading.Thread(target=beat, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()
