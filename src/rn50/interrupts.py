"""One rule for Ctrl-C and SIGTERM, everywhere in rn50.

Both become `Interrupted` (a KeyboardInterrupt) in the main thread: the run
asks its engine workers to stop after the step in flight, keeps what was
measured or written, records `"status": "interrupted"`, says so in one line,
and exits 128 + the signal (130 for Ctrl-C, 143 for SIGTERM). A second signal
while stopping stops at once.
"""

from __future__ import annotations

import signal
import threading
from contextlib import contextmanager
from typing import Iterator

HANDLED = (signal.SIGINT, signal.SIGTERM)


class Interrupted(KeyboardInterrupt):
    """Stopped by a signal; `detail` says what was kept."""

    def __init__(self, signum: int = signal.SIGINT, detail: str = "") -> None:
        super().__init__(detail or describe(signum))
        self.signum, self.detail = signum, detail

    @property
    def exit_code(self) -> int:
        return 128 + self.signum


def describe(signum: int) -> str:
    return "Ctrl-C (SIGINT)" if signum == signal.SIGINT else signal.Signals(signum).name


def signal_of(exc: BaseException) -> int:
    """The signal behind a KeyboardInterrupt (SIGINT for Python's own)."""
    return getattr(exc, "signum", signal.SIGINT)


@contextmanager
def handled() -> Iterator[None]:
    """Within: SIGINT and SIGTERM raise Interrupted in the main thread (even when the shell
    started rn50 with SIGINT ignored, as it does for a background job: `kill -INT` must
    still stop it cleanly). Outside the main thread: nothing changes."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def raise_interrupted(signum, frame) -> None:
        raise Interrupted(signum)

    previous = {signum: signal.signal(signum, raise_interrupted) for signum in HANDLED}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
