"""`rn50 fetch-model`: download well-known pretrained ResNet-50 files, resumable and verified.

A download goes to `NAME.part` (resumed with an HTTP Range request after an
interruption), is checked against its checksum, then renamed into place; a
file that fails the check is deleted, never used. Where rn50 holds no
published checksum the computed SHA-256 is printed for the user to compare.
"""

from __future__ import annotations

import hashlib
import os
import sys
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Callable
from urllib.parse import urlparse

from .errors import ConfigError, Rn50Error
from .limits import GiB, MiB, format_bytes


class FetchError(Rn50Error):
    """A download failed, was interrupted or did not verify."""


@dataclass(frozen=True)
class KnownModel:
    url: str
    filename: str
    description: str
    sha256: str | None = None  # full digest, or a published prefix (torchvision: 8 hex digits)
    max_bytes: int = 120 * MiB  # each is about 100 MB: anything longer is not this file


KNOWN_MODELS = {
    "torchvision-v1": KnownModel(
        "https://download.pytorch.org/models/resnet50-0676ba61.pth", "resnet50-0676ba61.pth",
        "torchvision ResNet50_Weights.IMAGENET1K_V1 (76.13% top-1), state_dict", "0676ba61"),
    "torchvision-v2": KnownModel(
        "https://download.pytorch.org/models/resnet50-11ad3fa6.pth", "resnet50-11ad3fa6.pth",
        "torchvision ResNet50_Weights.IMAGENET1K_V2 (80.86% top-1), state_dict", "11ad3fa6"),
    "mlperf-onnx": KnownModel(
        "https://zenodo.org/record/2592612/files/resnet50_v1.onnx", "resnet50_v1.onnx",
        "MLPerf inference ResNet-50 v1.5 ONNX (76.46% top-1)"),
    "modelzoo-fp32-pb": KnownModel(
        "https://storage.googleapis.com/intel-optimized-tensorflow/models/v1_6/"
        "resnet50_fp32_pretrained_model.pb", "resnet50_fp32_pretrained_model.pb",
        "Intel Model Zoo ResNet-50 FP32 frozen graph (input -> predict, 1001 classes)"),
}

CHUNK = 1 << 16
URL_MAX_BYTES = 1 * GiB  # --url default cap (--max-bytes to change): a ResNet-50 is ~100 MB


def _check_digest(path: Path, expected: str | None) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    actual = digest.hexdigest()
    if expected and not actual.startswith(expected.lower()):
        path.unlink()
        raise FetchError(f"{path.name}: checksum mismatch (expected sha256 {expected}, got "
                         f"{actual}); the download was deleted")
    return actual


def check_url(url: str) -> None:
    """Only http(s) addresses are downloaded."""
    if urlparse(url).scheme not in ("http", "https") or not urlparse(url).netloc:
        raise ConfigError(f"--url {url}: not an http:// or https:// address (for a file on "
                          "this machine, pass it to --model directly)")


def _too_large(target: Path, part: Path, size: int, max_bytes: int) -> FetchError:
    part.unlink(missing_ok=True)
    return FetchError(f"download of {target.name} stopped: {format_bytes(size)} is over the "
                      f"{format_bytes(max_bytes)} expected at most (--max-bytes to allow more); "
                      "the partial file was deleted")


def download(url: str, target: Path, sha256: str | None, timeout: float = 30.0,
             progress: Callable[[int, int | None], None] = lambda done, total: None,
             max_bytes: int = URL_MAX_BYTES) -> str:
    """Download `url` to `target` (resuming `target.part`), verify, rename; return the sha256.
    Never more than `max_bytes`: a longer answer is stopped and its partial file deleted."""
    check_url(url)
    part = target.with_name(target.name + ".part")
    have = part.stat().st_size if part.exists() else 0
    request = urllib.request.Request(url, headers={"User-Agent": "rn50"})
    if have:
        request.add_header("Range", f"bytes={have}-")
    host = urlparse(url).netloc or url
    try:
        response = urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and have:  # nothing left to fetch: the part file is complete
            response = None
        else:
            raise FetchError(f"cannot download {url}: HTTP {exc.code} {exc.reason}") from exc
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise FetchError(f"cannot reach {host} to download {target.name} ({reason}); without "
                         "network access, fetch the file elsewhere and pass it with --model") from exc
    if response is not None:
        with response:
            resumed = response.status == 206
            if not resumed:
                have = 0
            length = response.headers.get("Content-Length")
            total = have + int(length) if length is not None and length.isdigit() else None
            if total is not None and total > max_bytes:
                raise _too_large(target, part, total, max_bytes)
            try:
                with open(part, "ab" if resumed else "wb") as out:
                    done = have
                    while True:
                        block = response.read(CHUNK)
                        if not block:
                            break
                        done += len(block)
                        if done > max_bytes:
                            out.close()
                            raise _too_large(target, part, done, max_bytes)
                        out.write(block)
                        progress(done, total)
            except (OSError, urllib.error.URLError) as exc:
                raise FetchError(f"download of {target.name} interrupted ({exc}); run the same "
                                 "command again to resume") from exc
            if total is not None and done < total:
                raise FetchError(f"download of {target.name} interrupted after {done} of {total} "
                                 "bytes; run the same command again to resume")
    digest = _check_digest(part, sha256)
    os.replace(part, target)
    return digest


def fetch_model(name: str, dest: str | os.PathLike, url: str | None = None,
                sha256: str | None = None, log: Callable[[str], None] = print,
                max_bytes: int | None = None) -> Path:
    """Fetch a known model (or `url`) into `dest`; return its path."""
    if url is not None:
        check_url(url)
    if max_bytes is not None and max_bytes < 1:
        raise ConfigError(f"--max-bytes must be at least 1 (got {max_bytes})")
    if name not in KNOWN_MODELS and url is None:
        raise ConfigError(f"unknown model {name!r}; known: {', '.join(KNOWN_MODELS)} "
                          "(or give --url)")
    known = KNOWN_MODELS.get(name)
    source = url or known.url
    expected = sha256 or (known.sha256 if known else None)
    filename = known.filename if known else (Path(urlparse(source).path).name or name)
    folder = Path(dest).expanduser()
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"--dest {folder}: cannot create it ({exc.strerror or exc})") from exc
    target = folder / filename
    if target.exists():
        digest = _check_digest(target, expected)
        log(f"{target} already present (sha256 {digest})")
        return target
    log(f"Downloading {source} -> {target}")
    last = [-1]

    def progress(done: int, total: int | None) -> None:
        if total:
            percent = int(100 * done / total)
            if percent >= last[0] + 5 or done == total:
                last[0] = percent
                sys.stderr.write(f"\r  {done / 1e6:.1f} / {total / 1e6:.1f} MB ({percent}%)")
                sys.stderr.flush()

    cap = max_bytes or (known.max_bytes if known else URL_MAX_BYTES)
    digest = download(source, target, expected, progress=progress, max_bytes=cap)
    sys.stderr.write("\n")
    if expected:
        log(f"Verified sha256 {digest}")
    else:
        log(f"WARNING: rn50 holds no published checksum for {name}: compare sha256 {digest} "
            "with the publisher's, or pass --sha256 next time")
    return target
