"""`rn50 classify` output: a table, CSV or JSON Lines, written as results arrive.

With a file, every batch's lines go out in one append and an fsync, so a crash
loses nothing already written; a partial last line (a crash mid-write) is cut
off on the next run, which then skips every image already in the file and
appends the rest (resume). Images that could not be read are written too, with
their error, and are not retried.
"""

from __future__ import annotations

import csv
import io
import json
import os
import sys
from pathlib import Path

from ..data.labels import class_name, class_synset
from ..errors import OutputError


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


class ClassifyWriter:
    """Appends results to a CSV or JSONL file; knows which images it already holds."""

    def __init__(self, path: str, fmt: str, k: int):
        self.path = Path(path)
        self.fmt = "csv" if fmt == "csv" or self.path.suffix == ".csv" else "jsonl"
        self.k = k
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._cut_partial_line()
            fresh = not self.path.exists() or self.path.stat().st_size == 0
            self.fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o666)
        except OSError as exc:
            raise OutputError(f"--output {path}: cannot write it ({exc.strerror or exc})") from None
        if fresh and self.fmt == "csv":
            self._append(",".join(_csv_header(k)) + "\n")

    def _cut_partial_line(self) -> None:
        if not self.path.exists():
            return
        data = self.path.read_bytes()
        if data and not data.endswith(b"\n"):
            with open(self.path, "r+b") as f:
                f.truncate(data.rfind(b"\n") + 1)

    def done_keys(self) -> set[str]:
        if not self.path.exists():
            return set()
        text = self.path.read_text()
        if self.fmt == "csv":
            rows = list(csv.reader(io.StringIO(text)))
            return {r[0] for r in rows[1:] if r}
        keys = set()
        for line in text.splitlines():
            try:
                keys.add(json.loads(line)["key"])
            except (ValueError, KeyError, TypeError):
                raise OutputError(f"--output {self.path}: line is not an rn50 classify result: "
                                  f"{line[:60]!r}") from None
        return keys

    def _append(self, text: str) -> None:
        os.write(self.fd, text.encode())
        os.fsync(self.fd)

    def write(self, message: dict) -> None:
        self._append(_lines(message, self.fmt, self.k))

    def close(self) -> None:
        os.close(self.fd)


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
