"""Shared fixtures: one built-in model per test session, built into a temporary cache."""

from __future__ import annotations

import contextlib
import os
import subprocess
import threading
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def model_cache(tmp_path_factory) -> Path:
    """A cache folder holding the built-in model (built once for the whole session)."""
    from rn50.config import ModelConfig
    from rn50.models.resolve import builtin_model

    cache = tmp_path_factory.mktemp("rn50-cache")
    builtin_model(ModelConfig(cache_dir=str(cache)), {}, lambda line: None)
    return cache


@pytest.fixture
def run_cli(model_cache, tmp_path):
    """Run a command line in a real subprocess, with the shared model cache."""

    def run(*argv: str, env: dict | None = None, timeout: float = 300,
            umask: int | None = None) -> subprocess.CompletedProcess:
        full_env = dict(os.environ, RN50_CACHE_DIR=str(model_cache))
        full_env.pop("COLUMNS", None)  # full lines, as in a pipe, unless a test asks
        full_env.update(env or {})
        return subprocess.run([sys.executable, *argv], cwd=tmp_path, env=full_env,
                              capture_output=True, text=True, timeout=timeout, umask=umask or -1)

    return run


@contextlib.contextmanager
def http_server(handler, path: str = "/model"):
    """A real HTTP server on 127.0.0.1 (a free port) serving `handler`; yields its URL."""
    from http.server import ThreadingHTTPServer

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}{path}"
    finally:
        httpd.shutdown()
        httpd.server_close()
