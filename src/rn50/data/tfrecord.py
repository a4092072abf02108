"""TFRecord files, read and written without TensorFlow, CRCs checked.

Each record: uint64 length (little-endian), uint32 masked CRC-32C of those 8
bytes, the data, uint32 masked CRC-32C of the data. GZIP-compressed files
(TensorFlow's `compression_type="GZIP"`) are recognised by their magic bytes.

Reading never stops a long run on the first bad record: `iter_records` yields a
`BadRecord` (what is wrong, where) for a data CRC mismatch and goes on; a
corrupt length or a truncated file ends that file with a `BadRecord`, since
nothing after it can be found reliably.
"""

from __future__ import annotations

import gzip
import os
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Iterable, Iterator, Union

import google_crc32c

from ..errors import OutputError
from ..limits import IMAGE_MAX_BYTES, MiB

_MASK_DELTA = 0xA282EAD8
GZIP_MAGIC = b"\x1f\x8b"
RECORD_MAX_BYTES = IMAGE_MAX_BYTES + MiB  # an image and its features; a longer length is corrupt


def masked_crc(data: bytes) -> int:
    """TFRecord's masked CRC-32C (Castagnoli) of `data`."""
    crc = google_crc32c.value(data)
    return ((((crc >> 15) | (crc << 17)) & 0xFFFFFFFF) + _MASK_DELTA) & 0xFFFFFFFF


@dataclass(frozen=True)
class Record:
    """One good record: its number in the file, byte offset, payload."""

    path: str
    index: int
    offset: int
    data: bytes


@dataclass(frozen=True)
class BadRecord:
    """A record that could not be read, and why (`fatal`: nothing after it in the file)."""

    path: str
    index: int
    offset: int
    reason: str
    fatal: bool

    def describe(self) -> str:
        return f"{self.path}: record {self.index} at byte {self.offset}: {self.reason}"


def _open(path: Path) -> BinaryIO:
    with open(path, "rb") as probe:
        magic = probe.read(2)
    return gzip.open(path, "rb") if magic == GZIP_MAGIC else open(path, "rb")


def count_records(path: Union[str, os.PathLike]) -> int | None:
    """Records in a plain TFRecord file, by hopping from header to header (no data read);
    None for a GZIP file or one whose headers do not chain up to its end."""
    path = Path(path)
    try:
        size = path.stat().st_size
        with open(path, "rb") as f:
            if f.read(2) == GZIP_MAGIC:
                return None
            count = offset = 0
            while offset < size:
                f.seek(offset)
                header = f.read(8)
                if len(header) < 8:
                    return None
                offset += 16 + struct.unpack("<Q", header)[0]
                count += 1
    except OSError:
        return None
    return count if offset == size else None


def iter_records(path: Union[str, os.PathLike], verify: bool = True
                 ) -> Iterator[Union[Record, BadRecord]]:
    """Records of one TFRecord file (plain or GZIP), in order; see the module notes."""
    path = Path(path)
    name = str(path)
    index = offset = 0
    try:
        stream = _open(path)
    except OSError as exc:
        yield BadRecord(name, 0, 0, f"cannot open: {exc.strerror or exc}", True)
        return
    with stream:
        while True:
            try:
                header = stream.read(12)
                if not header:
                    return
                if len(header) < 12:
                    yield BadRecord(name, index, offset, "truncated record header", True)
                    return
                length_bytes, length_crc = header[:8], struct.unpack("<I", header[8:])[0]
                if verify and masked_crc(length_bytes) != length_crc:
                    yield BadRecord(name, index, offset, "length CRC mismatch (corrupt file)",
                                    True)
                    return
                (length,) = struct.unpack("<Q", length_bytes)
                if length > RECORD_MAX_BYTES:
                    yield BadRecord(name, index, offset, f"record length {length} is over the "
                                    f"{RECORD_MAX_BYTES >> 20} MiB limit (corrupt file)", True)
                    return
                data = stream.read(length)
                footer = stream.read(4)
            except (OSError, EOFError, gzip.BadGzipFile) as exc:
                yield BadRecord(name, index, offset, f"unreadable ({exc})", True)
                return
            if len(data) < length or len(footer) < 4:
                yield BadRecord(name, index, offset, f"truncated record (expected {length} "
                                f"bytes, file ends after {len(data)})", True)
                return
            if verify and masked_crc(data) != struct.unpack("<I", footer)[0]:
                yield BadRecord(name, index, offset, "data CRC mismatch", False)
            else:
                yield Record(name, index, offset, data)
            offset += 16 + length
            index += 1


def encode_record(data: bytes) -> bytes:
    """One record's bytes, framed and CRC'd."""
    length = struct.pack("<Q", len(data))
    return (length + struct.pack("<I", masked_crc(length)) + data
            + struct.pack("<I", masked_crc(data)))


def write_records(path: Union[str, os.PathLike], payloads: Iterable[bytes],
                  compression: str | None = None) -> int:
    """Write a TFRecord file atomically (a `.part` file renamed at the end); the record count.

    `compression="GZIP"` writes what `tf.data.TFRecordDataset(..., compression_type="GZIP")`
    reads.
    """
    path = Path(path)
    part = path.with_name(path.name + ".part")
    count = 0
    opener = (lambda p: gzip.open(p, "wb")) if compression == "GZIP" else (lambda p: open(p, "wb"))
    try:
        with opener(part) as out:
            for data in payloads:
                out.write(encode_record(data))
                count += 1
        os.replace(part, path)
    except OSError as exc:
        part.unlink(missing_ok=True)
        raise OutputError(f"{path}: cannot write it ({exc.strerror or exc}); nothing of this "
                          "file was kept") from None
    except BaseException:
        part.unlink(missing_ok=True)
        raise
    return count
