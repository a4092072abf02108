"""`rn50 serve`: plan and load the engine workers, warm them up, then serve HTTP (uvicorn).

The socket is bound only once the model is loaded and warm, so "listening" means
ready. SIGTERM or Ctrl-C: uvicorn stops accepting, in-flight requests finish
(their batches drain), the workers are closed, exit 0.
"""

from __future__ import annotations

import os
import socket
from dataclasses import replace
from datetime import datetime
from typing import Mapping

import numpy as np

from ..api import check_memory, prepare_model, start_pool, validate_run
from ..errors import ConfigError, EngineError
from ..platform import detect_platform
from ..report import console as text
from ..report.files import SCENARIO_PREFIXES, Console, allocate_run_paths
from .config import ServeConfig


def bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise ConfigError(f"--host {host} --port {port}: cannot listen there "
                          f"({exc.strerror or exc})") from None
    sock.listen(2048)  # connections wait in the backlog until the app is ready
    return sock


def serve(config: ServeConfig, environ: Mapping[str, str] | None = None) -> int:
    try:
        import uvicorn
        from .app import ServeState, build_app
    except ImportError as exc:
        raise EngineError(f"rn50 serve needs Starlette, uvicorn and prometheus-client "
                          f"({exc.name} is missing): pip install 'rn50[serve]'") from None
    environ = dict(os.environ if environ is None else environ)
    run = replace(config.run, scenario="serve", flags=replace(
        config.run.flags, batch_size=config.max_batch, scenario_batch=None))
    platform = detect_platform()
    processes, user_model = validate_run(run, environ, platform)
    check_memory(run, processes, user_model)
    paths = allocate_run_paths(run.output_dir, run.precision, datetime.now(),
                               SCENARIO_PREFIXES["serve"])
    out = Console(paths.log)
    model = prepare_model(run, {}, out, environ, user_model)
    for line in ["Settings:", *text.settings_table(processes.base)]:
        out.line(line)
    pool = start_pool(processes, platform, model, run, environ, out.log_only,
                      slots=max(4, config.batches_in_flight or 0), dynamic_batch=True)
    try:
        loaded = pool.workers[0].loaded
        warm = np.zeros(tuple(loaded["input"]["shape"]), np.float32)
        for _ in range(3):
            pool.submit(warm).result()
        state = ServeState(pool, loaded, config)
        sock = bind(config.host, config.port)
        host, port = sock.getsockname()[:2]

        in_flight, why = config.in_flight(loaded["engine"])

        def announce() -> None:
            out.line(f"Serving ResNet-50 ({run.backend}, {run.precision.upper()}, "
                     f"{len(pool.workers)} worker(s), batches up to {config.max_batch}, "
                     f"filled for up to {config.max_delay_ms:g} ms while another runs) on "
                     f"http://{host}:{port}")
            out.line(f"  {in_flight} batch(es) in flight per worker ({why})")
            out.line(f"  KServe v2: POST /v2/models/resnet50/infer; curl: POST /v1/classify "
                     f"(image body); /metrics; log: {paths.log}")

        server = uvicorn.Server(uvicorn.Config(
            build_app(state, announce, out.line), log_level="warning",
            access_log=config.access_log,
            timeout_graceful_shutdown=int(config.deadline_s) + 1))
        try:
            server.run(sockets=[sock])
        except KeyboardInterrupt:  # uvicorn re-raises the SIGTERM/Ctrl-C it handled
            pass
        out.line("Stopped: in-flight requests were answered")
        return 0
    finally:
        pool.close()
        out.close()
