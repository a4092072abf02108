"""The on-disk cache of generated models: validated on every use, rebuilt when corrupt."""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Callable, Mapping

from ..errors import OutputError


def default_cache_dir(environ: Mapping[str, str]) -> Path:
    """RN50_CACHE_DIR, else $XDG_CACHE_HOME/rn50, else ~/.cache/rn50."""
    if environ.get("RN50_CACHE_DIR"):
        return Path(environ["RN50_CACHE_DIR"]).expanduser()
    base = environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "rn50"


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def umask_mode(mode: int = 0o666) -> int:
    """`mode` less the process umask: what `open()` would give a new file."""
    try:  # Linux says it without changing it (os.umask would, for every thread)
        with open("/proc/self/status") as f:
            mask = next(int(line.split()[1], 8) for line in f if line.startswith("Umask:"))
    except (OSError, StopIteration, ValueError, IndexError):
        mask = os.umask(0o022)
        os.umask(mask)
    return mode & ~mask


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write to a temporary file in the same folder, then rename over `path`.

    The file gets the mode a plain `open()` would (0666 less the umask), not
    mkstemp's private 0600.
    """
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, umask_mode())
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def validate(path: Path) -> str | None:
    """None when `path` and its `.json` record agree (size and sha256), else what is wrong."""
    record_path = path.with_name(path.name + ".json")
    if not path.exists():
        return "missing"
    try:
        record = json.loads(record_path.read_text())
        size, digest = int(record["size"]), str(record["sha256"])
    except (OSError, ValueError, KeyError, TypeError):
        return "its checksum record is missing or unreadable"
    if path.stat().st_size != size:
        return f"size {path.stat().st_size} bytes, expected {size}"
    if sha256_file(path) != digest:
        return "sha256 mismatch"
    return None


def get_or_build(path: Path, build: Callable[[], bytes], describe: dict,
                 log: Callable[[str], None]) -> tuple[Path, str]:
    """Return (path, sha256) of a valid cached file, building it when absent or corrupt."""
    problem = validate(path)
    if problem is None:
        return path, json.loads(path.with_name(path.name + ".json").read_text())["sha256"]
    if problem != "missing":
        log(f"Cached model {path} failed validation ({problem}): rebuilding it")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        data = build()
        atomic_write_bytes(path, data)
        digest = hashlib.sha256(data).hexdigest()
        record = dict(describe, size=len(data), sha256=digest)
        atomic_write_bytes(path.with_name(path.name + ".json"),
                           json.dumps(record, indent=2).encode())
    except OSError as exc:
        raise OutputError(f"cannot write the model cache {path.parent}: {exc.strerror or exc} "
                          "(set --cache-dir or RN50_CACHE_DIR to a writable folder)") from exc
    return path, digest
