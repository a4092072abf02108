"""Run output files: unique names (never overwriting an earlier run), atomic JSON."""

from __future__ import annotations

import json
import os
import sys
import textwrap
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TextIO

from ..errors import OutputError
from ..models.cache import atomic_write_bytes



@dataclass(frozen=True)
class RunPaths:
    log: Path
    json: Path


SCENARIO_PREFIXES = {"benchmark": "benchmark_resnet50_inference",
                     "accuracy": "accuracy_resnet50_inference",
                     "classify": "classify_resnet50_inference",
                     "mlperf": "mlperf_resnet50", "serve": "serve_resnet50",
                     "profile": "profile_resnet50"}


def allocate_run_paths(output_dir: str | os.PathLike, precision: str, now: datetime,
                       prefix: str = SCENARIO_PREFIXES["benchmark"]) -> RunPaths:
    """Create the run's log file exclusively; a clash gets a _2, _3... suffix.

    Raises OutputError (one line) when the folder cannot be created or written.
    """
    folder = Path(output_dir).expanduser()
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"--output-dir {folder}: cannot create it ({exc.strerror or exc})") from exc
    stem = f"{prefix}_{precision}_{now:%Y%m%d_%H%M%S}"
    for n in range(1, 1000):
        name = stem if n == 1 else f"{stem}_{n}"
        log, result = folder / f"{name}.log", folder / f"{name}.json"
        if result.exists():
            continue
        try:
            fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        except FileExistsError:
            continue
        except OSError as exc:
            raise OutputError(f"--output-dir {folder}: cannot write there "
                              f"({exc.strerror or exc})") from exc
        os.close(fd)
        return RunPaths(log.resolve(), result.resolve())
    raise OutputError(f"--output-dir {folder}: too many runs named {stem}")


def check_writable_file(path: str | os.PathLike, flag: str, suffix: str = ".json") -> Path:
    """Fail early (before any run) when `path` could not be written later, or its name says
    another format than the `suffix` written to it."""
    path = Path(path).expanduser().absolute()
    if path.suffix.lower() != suffix:
        raise OutputError(f"{flag} {path}: it is written as {suffix[1:].upper()}: name it "
                          f"*{suffix}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"{flag} {path}: cannot create its folder ({exc.strerror or exc})") from exc
    if path.is_dir() or not os.access(path.parent, os.W_OK):
        raise OutputError(f"{flag} {path}: cannot write a file there")
    return path


def write_json(path: str | os.PathLike, data: dict) -> None:
    """Write JSON atomically (temporary file + rename)."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(path, (json.dumps(data, indent=2, default=str) + "\n").encode())
    except OSError as exc:
        raise OutputError(f"cannot write results to {path}: {exc.strerror or exc}") from exc


def terminal_width(stream: TextIO, environ=os.environ) -> int | None:
    """Columns to wrap console lines at: $COLUMNS, else the terminal's; None (no wrapping)
    for a pipe or a file, which keep full lines as the log does."""
    if environ.get("COLUMNS", "").isdigit():
        return max(40, int(environ["COLUMNS"]))
    try:
        return os.get_terminal_size(stream.fileno()).columns if stream.isatty() else None
    except (AttributeError, OSError, ValueError):
        return None


def wrap_line(text: str, width: int | None) -> list[str]:
    """A long line as several, words (paths) never split. An indented table row keeps its
    last column (a `why`) aligned, or moves it beneath the row when under 40 columns are
    left for it; other lines continue 4 columns in."""
    if width is None or len(text) <= width:
        return [text]
    lead = len(text) - len(text.lstrip(" "))
    column = text.rstrip().rfind("  ", lead) + 2  # 1 when there is no column
    under = lead + 4

    def wrap(part: str, first: str, rest: str) -> list[str]:
        return textwrap.wrap(part, width, initial_indent=first, subsequent_indent=rest,
                             break_long_words=False, break_on_hyphens=False) or [part]

    if lead >= 2 and column > lead + 2:
        if column <= width - 40:
            return wrap(text, "", " " * column)
        head = text[:column].rstrip()
        return wrap(head, "", " " * under) + wrap(text[column:], " " * under, " " * under)
    return wrap(text, "", " " * min(under, width // 2))


class Console:
    """Prints lines to the terminal (wrapped to its width) and appends them in full to the
    run's log file."""

    def __init__(self, log_path: Path | None = None, stream: TextIO | None = None) -> None:
        self._stream = stream or sys.stdout
        self._width = terminal_width(self._stream)
        self._log = open(log_path, "a", buffering=1) if log_path else None

    def line(self, text: str = "") -> None:
        print("\n".join(wrap_line(text, self._width)), file=self._stream, flush=True)
        if self._log:
            self._log.write(text + "\n")

    def log_only(self, text: str) -> None:
        """Record a line in the log without printing it (the CLI prints errors itself)."""
        if self._log:
            self._log.write(text + "\n")

    def close(self) -> None:
        if self._log:
            self._log.close()
            self._log = None
