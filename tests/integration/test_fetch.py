"""`rn50 fetch-model` against a real HTTP server on 127.0.0.1 (no outside network here)."""

from __future__ import annotations

import hashlib
from http.server import BaseHTTPRequestHandler

import pytest

from conftest import http_server
from rn50.fetch import FetchError, fetch_model

PAYLOAD = bytes(range(256)) * 4096  # 1 MiB
DIGEST = hashlib.sha256(PAYLOAD).hexdigest()


class Handler(BaseHTTPRequestHandler):
    cut_after: int | None = None  # drop the connection after this many bytes (once)
    requests: list = []

    def do_GET(self):  # noqa: N802 - http.server API
        start = 0
        header = self.headers.get("Range")
        Handler.requests.append(header)
        if header:
            start = int(header.split("=")[1].split("-")[0])
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(PAYLOAD) - 1}/{len(PAYLOAD)}")
        else:
            self.send_response(200)
        body = PAYLOAD[start:]
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if Handler.cut_after is not None:
            self.wfile.write(body[:Handler.cut_after])
            Handler.cut_after = None
            self.wfile.flush()
            self.connection.close()
            return
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    Handler.cut_after, Handler.requests = None, []
    with http_server(Handler, "/resnet50.pth") as url:
        yield url


def test_download_with_good_checksum(server, tmp_path):
    path = fetch_model("mirror", tmp_path, url=server, sha256=DIGEST, log=lambda line: None)
    assert path.read_bytes() == PAYLOAD
    assert not list(tmp_path.glob("*.part"))
    again = []
    fetch_model("mirror", tmp_path, url=server, sha256=DIGEST, log=again.append)
    assert "already present" in again[0] and len(Handler.requests) == 1


def test_bad_checksum_is_refused_and_deleted(server, tmp_path):
    with pytest.raises(FetchError, match="checksum mismatch"):
        fetch_model("mirror", tmp_path, url=server, sha256="0" * 64, log=lambda line: None)
    assert list(tmp_path.iterdir()) == []


def test_interrupted_transfer_resumes(server, tmp_path):
    Handler.cut_after = 300_000
    with pytest.raises(FetchError, match="interrupted"):
        fetch_model("mirror", tmp_path, url=server, sha256=DIGEST, log=lambda line: None)
    part = tmp_path / "resnet50.pth.part"
    assert part.stat().st_size == 300_000
    path = fetch_model("mirror", tmp_path, url=server, sha256=DIGEST, log=lambda line: None)
    assert path.read_bytes() == PAYLOAD
    assert Handler.requests[-1] == "bytes=300000-"


def test_unknown_checksum_prints_the_digest(server, tmp_path):
    lines = []
    fetch_model("mirror", tmp_path, url=server, log=lines.append)
    assert any(DIGEST in line and "WARNING" in line for line in lines)


def test_no_network_is_one_clear_line(run_cli, tmp_path):
    proc = run_cli("-m", "rn50", "fetch-model", "mlperf-onnx", "--dest", str(tmp_path),
                   "--url", "http://127.0.0.1:9/resnet50_v1.onnx")
    assert proc.returncode == 1
    lines = proc.stderr.strip().splitlines()
    assert lines[-1].startswith("rn50: error: cannot reach 127.0.0.1:9")
    assert "Traceback" not in proc.stderr


def test_unknown_name(run_cli):
    proc = run_cli("-m", "rn50", "fetch-model", "resnet51")
    assert proc.returncode == 2 and "unknown model 'resnet51'" in proc.stderr
