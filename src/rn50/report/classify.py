"""`rn50 classify` output: a table, CSV or JSON Lines, written as results arrive.

With a file, every batch's lines go out in one append and an fsync, so a crash
loses nothing already written; a partial last line (a crash mid-write) is cut
off on the next run, which then skips every image already in the file and
appends the rest (resume). Images that could not be read are written too, with
their error, and are not retried.
"""

from __future__ import annotations

import csv
import fcntl
import io
import json
import os
import sys
import time
from pathlib import Path

from ..data.labels import class_name, class_synset
from ..errors import OutputError
from .files import write_json


def _top(row: dict) -> list[dict]:
    return [{"label": label, "synset": class_synset(label), "name": class_name(label),
             "prob": round(prob, 6)} for label, prob in row["top"]]


def _csv_header(k: int) -> list[str]:
    cols = ["key", "name", "label"]
    for i in range(1, k + 1):
        cols += [f"top{i}_label", f"top{i}_synset", f"top{i}_name", f"top{i}_prob"]
    return cols + ["error"]


def _csv_line(row: dict, k: int, error: str = "") -> str:
    cells = [row["key"], row.get("name", ""), row.get("label") or ""]
    top = _top(row) if "top" in row else []
    for i in range(k):
        t = top[i] if i < len(top) else {}
        cells += [t.get("label", ""), t.get("synset", ""), t.get("name", ""),
                  t.get("prob", "")]
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerow(cells + [error])
    return out.getvalue()


def _jsonl_line(row: dict, error: str = "") -> str:
    data = {"key": row["key"], "name": row.get("name"), "label": row.get("label")}
    if "top" in row:
        data["top"] = _top(row)
    if error:
        data["error"] = error
    return json.dumps(data) + "\n"


def _lines(message: dict, fmt: str, k: int) -> str:
    if message["type"] == "skipped":
        rows = [({"key": r["key"]}, r["reason"]) for r in message["rows"]]
    else:
        rows = [(r, "") for r in message["rows"]]
    if fmt == "csv":
        return "".join(_csv_line(r, k, e) for r, e in rows)
    return "".join(_jsonl_line(r, e) for r, e in rows)


OUTPUT_FORMATS = {".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "jsonl"}


def output_format(path: str, fmt: str) -> str:
    """csv or jsonl, from the file's suffix; OutputError when it is neither or contradicts
    --format."""
    suffix = Path(path).suffix.lower()
    if suffix not in OUTPUT_FORMATS:
        raise OutputError(f"--output {path}: name it .csv or .jsonl (the suffix says the format)")
    if fmt in ("csv", "jsonl") and fmt != OUTPUT_FORMATS[suffix]:
        raise OutputError(f"--output {path} is a {OUTPUT_FORMATS[suffix]} file name, but "
                          f"--format is {fmt}")
    return OUTPUT_FORMATS[suffix]


class ClassifyWriter:
    """Appends results to a CSV or JSONL file that this run holds locked; knows which images
    it already holds, and refuses to resume a file written by a different run.

    The run's identity (model hash, precision, preprocessing, top-k, format) is kept beside
    the file in `FILE.rn50.json`; `force_new` sets an existing file (and its identity) aside
    as `NAME.previous-<time>.csv` (or .jsonl) and starts again: nothing is deleted.
    """

    def __init__(self, path: str, fmt: str, k: int, identity: dict | None = None,
                 force_new: bool = False):
        self.path = Path(path)
        self.fmt, self.k = output_format(path, fmt), k
        self.identity = dict(identity or {}, top_k=k, format=self.fmt)
        self.sidecar = self.path.with_name(self.path.name + ".rn50.json")
        self.set_aside: Path | None = None
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.fd = self._open_locked()
            if force_new and os.fstat(self.fd).st_size:
                self._set_aside()
            self._cut_partial_line()
        except OSError as exc:
            raise OutputError(f"--output {path}: cannot write it ({exc.strerror or exc})") from None
        self._check_identity()

    def _open_locked(self) -> int:
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise OutputError(f"--output {self.path} is being written by another rn50 run "
                              "(it holds the file's lock): wait for it, or use another "
                              "--output") from None
        return fd

    def _set_aside(self) -> None:
        stamp = time.strftime("%Y%m%d-%H%M%S")
        self.set_aside = self.path.with_name(f"{self.path.stem}.previous-{stamp}"
                                             f"{self.path.suffix}")
        os.rename(self.path, self.set_aside)
        if self.sidecar.exists():
            os.rename(self.sidecar, self.set_aside.with_name(self.set_aside.name + ".rn50.json"))
        old, self.fd = self.fd, self._open_locked()
        os.close(old)

    def _cut_partial_line(self) -> None:
        size = os.fstat(self.fd).st_size
        if not size:
            return
        tail = os.pread(self.fd, min(size, 1 << 16), max(0, size - (1 << 16)))
        if tail.endswith(b"\n"):
            return
        with open(self.path, "rb") as f:  # find the last complete line
            end = 0
            for line in f:
                if line.endswith(b"\n"):
                    end += len(line)
        os.ftruncate(self.fd, end)

    def _check_identity(self) -> None:
        size = os.fstat(self.fd).st_size
        before = _read_identity(self.sidecar)
        if size and before is None and self.fmt == "csv":
            header = self._first_line()
            before = dict(self.identity) if header == ",".join(_csv_header(self.k)) else \
                {"top_k": f"another (CSV header: {header[:40]!r}...)"}
        if size and before is not None and before != self.identity:
            raise OutputError(f"--output {self.path} holds results of a different run ("
                              f"{_differences(before, self.identity)}): resuming would mix "
                              "them; use another --output, or --force-new to set the old file "
                              "aside and start again")
        if not size and self.fmt == "csv":
            self._append(",".join(_csv_header(self.k)) + "\n")
        if before is None or not size:
            write_json(self.sidecar, self.identity)

    def _first_line(self) -> str:
        with open(self.path, encoding="utf-8", errors="replace") as f:
            return f.readline().rstrip("\n")

    def done_keys(self) -> set[str]:
        """Keys of the images already in the file (read line by line)."""
        keys: set[str] = set()
        with open(self.path, encoding="utf-8", errors="replace", newline="") as f:
            if self.fmt == "csv":
                rows = csv.reader(f)
                next(rows, None)
                return {r[0] for r in rows if r}
            for line in f:
                try:
                    keys.add(json.loads(line)["key"])
                except (ValueError, KeyError, TypeError):
                    raise OutputError(f"--output {self.path}: line is not an rn50 classify "
                                      f"result: {line[:60]!r}") from None
        return keys

    def _append(self, text: str) -> None:
        size = os.fstat(self.fd).st_size
        try:
            data = text.encode()
            while data:  # a short write (a nearly full disk) goes on, or fails below
                data = data[os.write(self.fd, data):]
            os.fsync(self.fd)
        except OSError as exc:
            try:  # no partial line left behind
                os.ftruncate(self.fd, size)
            except OSError:
                pass
            raise OutputError(f"--output {self.path}: cannot write it ({exc.strerror or exc}); "
                              "every complete line already written is kept, and running the "
                              "same command again resumes after them") from None

    def write(self, message: dict) -> None:
        self._append(_lines(message, self.fmt, self.k))

    def close(self) -> None:
        os.close(self.fd)  # and the lock with it


def _read_identity(path: Path) -> dict | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _differences(before: dict, now: dict) -> str:
    names = sorted(set(before) | set(now))
    return "; ".join(f"{name} {now.get(name)!s:.20} now, {before.get(name)!s:.20} there"
                     for name in names if before.get(name) != now.get(name))


class ClassifyPrinter:
    """Prints results to stdout as they come."""

    def __init__(self, fmt: str, k: int):
        self.fmt, self.k = fmt, k
        if fmt == "csv":
            sys.stdout.write(",".join(_csv_header(k)) + "\n")

    def done_keys(self) -> set[str]:
        return set()

    def write(self, message: dict) -> None:
        if self.fmt != "table":
            sys.stdout.write(_lines(message, self.fmt, self.k))
        elif message["type"] == "skipped":
            for r in message["rows"]:
                sys.stdout.write(f"{r['key']}: skipped: {r['reason']}\n")
        else:
            for r in message["rows"]:
                tops = "; ".join(f"{t['name'].split(',')[0]} ({t['prob']:.1%})" for t in _top(r))
                sys.stdout.write(f"{r['name']}: {tops}\n")
        sys.stdout.flush()

    def close(self) -> None:
        sys.stdout.flush()


class ShardedWriter:
    """`--output DIR/` (with --ray): the results as part files, `part-00000.jsonl` (or .csv),
    each at most `rows` rows, each a ClassifyWriter (locked, identity sidecar, one append +
    fsync per batch). A re-run reads the keys of every part and writes new parts only: no
    file is ever rewritten, so the parts already there stay as they were."""

    def __init__(self, folder: str, fmt: str, k: int, identity: dict | None = None,
                 rows: int = 100_000) -> None:
        if rows < 1:
            raise OutputError(f"--shard-rows must be at least 1 (got {rows})")
        self.folder, self.k, self.identity, self.rows = Path(folder), k, identity, rows
        self.fmt = fmt if fmt in ("csv", "jsonl") else "jsonl"
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise OutputError(f"--output {folder}: cannot create it ({exc.strerror or exc})") \
                from None
        parts = sorted(self.folder.glob(f"part-*.{self.fmt}"))
        self.done: set[str] = set()
        for part in parts:
            reader = ClassifyWriter(str(part), self.fmt, k, identity)
            self.done |= reader.done_keys()
            reader.close()
        self.index = 1 + max((int(p.stem.split("-")[1]) for p in parts
                              if p.stem.split("-")[1].isdigit()), default=-1)
        self.current: ClassifyWriter | None = None
        self.count = 0

    def done_keys(self) -> set[str]:
        return set(self.done)

    def write(self, message: dict) -> None:
        rows = message["rows"]
        while rows:
            if self.current is None or self.count >= self.rows:
                self._next_part()
            take = rows[:self.rows - self.count]
            self.current.write(dict(message, rows=take))
            self.count += len(take)
            rows = rows[len(take):]

    def _next_part(self) -> None:
        if self.current is not None:
            self.current.close()
        name = self.folder / f"part-{self.index:05d}.{self.fmt}"
        self.current = ClassifyWriter(str(name), self.fmt, self.k, self.identity)
        self.count, self.index = 0, self.index + 1

    def close(self) -> None:
        if self.current is not None:
            self.current.close()
