"""What one input may cost: every file rn50 reads is checked before it is read.

A file is read only when it is a regular file (not a device, FIFO or folder),
readable, and no larger than the limit for its kind; the check names the file,
the flag it came from and what is wrong, in one line. `available_memory()` is
what a run may use (MemAvailable, lowered by a cgroup limit), so a run that
cannot fit is refused before it starts instead of swapping or being killed.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Type

from .errors import DataError, Rn50Error

MiB, GiB = 1 << 20, 1 << 30
PROTOBUF_MAX_BYTES = 2 * GiB  # protobuf cannot parse a message over 2 GiB (ONNX, GraphDef)
IMAGE_MAX_BYTES = 256 * MiB  # a 100-megapixel JPEG is ~50 MB
IMAGE_MAX_PIXELS = 100_000_000  # decoded, an image this large is 300 MB of RGB
TEXT_MAX_BYTES = 64 * MiB  # labels files, val_map.txt, file lists, JSON records
HEADER_BYTES = 64


def format_bytes(size: float) -> str:
    for unit, scale in (("TiB", 1 << 40), ("GiB", GiB), ("MiB", MiB), ("KiB", 1 << 10)):
        if size >= scale:
            return f"{size / scale:.1f} {unit}"
    return f"{int(size)} bytes"


def check_file(path: str | os.PathLike, what: str, limit: int | None = None,
               why: str = "", error: Type[Rn50Error] = DataError,
               folder_ok: bool = False) -> int:
    """The size of `path` if it is a readable regular file within `limit` bytes (or, with
    `folder_ok`, a folder: 0); else `error` with one line: '{what} {path} ...' and what is
    wrong."""
    path = Path(path)
    try:
        info = os.stat(path)
        if stat.S_ISREG(info.st_mode):
            os.close(os.open(path, os.O_RDONLY))  # permission, as this user
    except FileNotFoundError:
        raise error(f"{what} {path} does not exist") from None
    except PermissionError:
        raise error(f"{what} {path} cannot be read: permission denied") from None
    except OSError as exc:
        raise error(f"{what} {path} cannot be read: {exc.strerror or exc}") from None
    if stat.S_ISDIR(info.st_mode):
        if folder_ok:
            return 0
        raise error(f"{what} {path} is a folder, not a file")
    if not stat.S_ISREG(info.st_mode):
        raise error(f"{what} {path} is {_kind(info.st_mode)}, not a regular file")
    if limit is not None and info.st_size > limit:
        raise error(f"{what} {path} is {format_bytes(info.st_size)}, over the "
                    f"{format_bytes(limit)} limit{': ' + why if why else ''}")
    return info.st_size


def read_bytes(path: str | os.PathLike, what: str, limit: int, why: str = "",
               error: Type[Rn50Error] = DataError) -> bytes:
    """The whole file, checked first (`check_file`); never more than `limit` bytes read,
    even if the file grows meanwhile."""
    check_file(path, what, limit, why, error)
    try:
        with open(path, "rb") as f:
            data = f.read(limit + 1)
    except OSError as exc:
        raise error(f"{what} {path} cannot be read: {exc.strerror or exc}") from None
    if len(data) > limit:
        raise error(f"{what} {path} is over the {format_bytes(limit)} limit"
                    f"{': ' + why if why else ''}")
    return data


def read_text(path: str | os.PathLike, what: str, limit: int = TEXT_MAX_BYTES,
              error: Type[Rn50Error] = DataError) -> str:
    """A text file (UTF-8, undecodable bytes replaced), within `limit` bytes."""
    return read_bytes(path, what, limit, "a text file this large is not what rn50 expects",
                      error).decode("utf-8", errors="replace")


def read_header(path: str | os.PathLike, what: str, error: Type[Rn50Error] = DataError,
                size: int = HEADER_BYTES) -> bytes:
    """The first `size` bytes of a file that passed `check_file`."""
    try:
        with open(path, "rb") as f:
            return f.read(size)
    except OSError as exc:
        raise error(f"{what} {path} cannot be read: {exc.strerror or exc}") from None


def _kind(mode: int) -> str:
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISFIFO(mode):
        return "a FIFO (pipe)"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a file"


def available_memory(meminfo: str = "/proc/meminfo",
                     cgroup: str = "/sys/fs/cgroup") -> int | None:
    """Bytes a new run may use: MemAvailable, or less when this cgroup's limit is lower
    (None when neither can be read)."""
    found = None
    try:
        with open(meminfo) as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    found = int(line.split()[1]) * 1024
                    break
    except (OSError, ValueError, IndexError):
        pass
    try:
        limit = Path(cgroup, "memory.max").read_text().strip()
        used = int(Path(cgroup, "memory.current").read_text().strip())
        if limit != "max":
            room = max(0, int(limit) - used)
            found = room if found is None else min(found, room)
    except (OSError, ValueError):
        pass
    return found


# Peak resident memory of one engine process, measured with OpenVINO and ONNX Runtime on
# ResNet-50 (peak_rss_mib in the result JSON at batch 1..128): about 400 MiB plus the model,
# plus this much per image in flight (activations and the input batch).
BASE_BYTES = 400 * MiB
PER_IMAGE_BYTES = {"fp32": 14 * MiB, "bfloat16": 7 * MiB, "int8": 3 * MiB}
DECODE_PER_IMAGE_BYTES = 1 * MiB  # real data: decoded crops in flight and the float batch


def run_memory(batch: int, in_flight: int, precision: str, processes: int = 1,
               model_bytes: int = 0, real_data: bool = False) -> int:
    """Estimated peak memory of a run (bytes, all its processes together)."""
    per_image = PER_IMAGE_BYTES.get(precision, PER_IMAGE_BYTES["fp32"])
    per_image += DECODE_PER_IMAGE_BYTES if real_data else 0
    return processes * (BASE_BYTES + model_bytes + batch * max(1, in_flight) * per_image)


def check_run_memory(needed: int, available: int | None, what: str, largest: int) -> str:
    """'' if `needed` fits; a note when it takes most of the memory; MemoryRefused past it."""
    if available is None or needed <= 0.8 * available:
        return ""
    message = (f"{what} needs about {format_bytes(needed)} of memory; this machine has "
               f"{format_bytes(available)} available")
    if needed > available:
        raise MemoryRefused(f"{message}: the largest batch that fits is about {largest}")
    return f"{message} (most of it): the run may be slowed by swapping"


class MemoryRefused(Rn50Error):
    """A run would need more memory than the machine has."""

    exit_code = 2
