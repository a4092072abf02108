"""The HTTP application (Starlette): KServe v2 endpoints, /v1/classify, /metrics.

Every request is answered: 400 for a malformed one (a JSON error naming the
problem), 413 past the body cap, 429 with Retry-After when the queue is full,
503 when not ready or no engine can answer, 504 past the request deadline,
500 (JSON, logged) for anything unexpected. Images are decoded in worker
processes, never on the event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field

import numpy as np
from starlette.applications import Starlette
from starlette.requests import Request as HttpRequest
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from .. import __version__
from . import protocol
from .batcher import Batcher, Overloaded, Unavailable
from .decode import decode_images, ignore_stop_signals, normalise_pixels, ready
from .config import ServeConfig
from .metrics import Metrics

MODEL = "resnet50"


@dataclass
class ServeState:
    """The running server: its workers, what they loaded, its settings, its parts."""

    pool: object  # launch.worker.WorkerPool
    loaded: dict  # the first worker's `loaded` message
    config: ServeConfig
    metrics: Metrics = field(default_factory=Metrics)
    batcher: Batcher | None = None
    decoder: ProcessPoolExecutor | None = None
    ready: bool = False

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.loaded["input"]["shape"])


class HttpError(Exception):
    def __init__(self, status: int, message: str, headers: dict | None = None) -> None:
        super().__init__(message)
        self.status, self.headers = status, headers or {}


async def read_body(request: HttpRequest, cap: int) -> bytes:
    """The body, refused (413) as soon as it passes `cap` bytes."""
    length = request.headers.get("content-length")
    if length and length.isdigit() and int(length) > cap:
        raise HttpError(413, f"request body of {length} bytes is over the {cap}-byte limit")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > cap:
            raise HttpError(413, f"request body is over the {cap}-byte limit")
        chunks.append(chunk)
    return b"".join(chunks)


async def refuse_when_full(state: ServeState, request: HttpRequest) -> None:
    """429 before the request is parsed or decoded when the queue is already full: under
    overload a refusal costs the server only reading the body (under the same cap, then
    dropped, so the connection stays usable), and comes back at once."""
    if state.batcher is not None and state.batcher.queue.full():
        await read_body(request, state.config.max_body)
        state.metrics.rejected()
        raise HttpError(429, "the server is at capacity: retry shortly", {"Retry-After": "1"})


async def model_input(state: ServeState, parsed: protocol.Request) -> np.ndarray:
    """The float batch for the engine: as sent, or normalised / decoded in worker processes."""
    loop = asyncio.get_running_loop()
    prep = state.loaded["metadata"]["preprocessing"]
    layout = state.loaded["input"]["layout"]
    if parsed.kind == "tensor":
        return np.ascontiguousarray(parsed.tensor, np.float32)
    job = (normalise_pixels, parsed.tensor) if parsed.kind == "pixels" else \
        (decode_images, parsed.images)
    result = await loop.run_in_executor(state.decoder, job[0], job[1], prep, layout,
                                        state.input_shape)
    if isinstance(result, str):
        raise protocol.BadRequest(result)
    return result


async def classify(state: ServeState, parsed: protocol.Request) -> dict:
    if not state.ready:
        raise HttpError(503, "the model is not ready yet")
    images = await model_input(state, parsed)
    try:
        logits = await state.batcher.infer(images, state.config.deadline_s)
    except Overloaded:
        state.metrics.rejected()
        raise HttpError(429, "the server is at capacity: retry shortly",
                        {"Retry-After": "1"}) from None
    except asyncio.TimeoutError:
        raise HttpError(504, f"no answer within the {state.config.deadline_s:g} s "
                        "deadline") from None
    except Unavailable as exc:
        raise HttpError(503, f"no engine could answer: {exc}") from None
    return scores(state, parsed, logits)


def scores(state: ServeState, parsed: protocol.Request, logits: np.ndarray) -> dict:
    from ..data.labels import class_name
    from ..scenarios.real_data import class_scores, ranked

    labels, top, probabilities = ranked(class_scores(np.asarray(logits)), parsed.top_k,
                                        state.loaded["metadata"]["class_offset"])
    probabilities = probabilities.astype(np.float32)
    names = [[class_name(int(label)) for label in row] for row in labels]
    return protocol.response(MODEL, parsed, probabilities, labels, top, names)


async def infer(request: HttpRequest) -> Response:
    state: ServeState = request.app.state.serve
    await refuse_when_full(state, request)
    body = await read_body(request, state.config.max_body)
    try:
        parsed = protocol.parse(body, request.headers.get("inference-header-content-length"),
                                state.input_shape, state.config.max_batch)
    except protocol.BadRequest as exc:
        raise HttpError(400, str(exc)) from None
    return JSONResponse(await classify(state, parsed))


async def classify_v1(request: HttpRequest) -> Response:
    """curl --data-binary @photo.jpg http://127.0.0.1:8000/v1/classify?top_k=3"""
    state: ServeState = request.app.state.serve
    await refuse_when_full(state, request)
    body = await read_body(request, state.config.max_body)
    top_k = request.query_params.get("top_k", "5")
    if not top_k.isdigit() or not 1 <= int(top_k) <= 1000:
        raise HttpError(400, "top_k must be a whole number 1..1000")
    if not body:
        raise HttpError(400, "send the image as the request body")
    parsed = protocol.Request("images", None, [body], int(top_k), {"top_k"}, None)
    answer = await classify(state, parsed)
    top = [dict(zip(("prob", "label", "name"), s.split(":", 2)))
           for s in answer["outputs"][0]["data"]]
    return JSONResponse({"top": [{"label": int(t["label"]), "name": t["name"],
                                  "prob": float(t["prob"])} for t in top]})


async def model_metadata(request: HttpRequest) -> Response:
    state: ServeState = request.app.state.serve
    shape = [-1, *state.input_shape[1:]]
    return JSONResponse({
        "name": MODEL, "versions": ["1"], "platform": f"rn50/{state.loaded['engine']['name']}",
        "inputs": [{"name": state.loaded["input"]["name"], "datatype": "FP32", "shape": shape}],
        "outputs": [{"name": "probabilities", "datatype": "FP32", "shape": [-1, 1000]},
                    {"name": "top_k", "datatype": "BYTES", "shape": [-1, -1]}],
        "parameters": {"max_batch": state.config.max_batch, "also_accepts": [
            "UINT8 [N, H, W, 3] RGB pixels", "BYTES encoded images (JPEG, PNG...)"],
            "preprocessing": state.loaded["metadata"]["preprocessing"]}})


def ready_response(request: HttpRequest) -> Response:
    ready = request.app.state.serve.ready
    return JSONResponse({"ready": ready}, status_code=200 if ready else 503)


async def server_metadata(request: HttpRequest) -> Response:
    return JSONResponse({"name": "rn50", "version": __version__,
                         "extensions": ["binary_tensor_data", "classification"]})


async def metrics(request: HttpRequest) -> Response:
    return Response(request.app.state.serve.metrics.render(), media_type=Metrics.CONTENT_TYPE)


def _counted(handler, endpoint: str):
    """Each request counted by outcome and timed; an HttpError becomes its JSON answer."""
    async def wrapped(request: HttpRequest) -> Response:
        state: ServeState = request.app.state.serve
        start = time.monotonic()
        state.metrics.started()
        try:
            response = await handler(request)
        except HttpError as exc:
            response = JSONResponse({"error": str(exc)}, exc.status, exc.headers)
        except protocol.BadRequest as exc:
            response = JSONResponse({"error": str(exc)}, 400)
        except Exception as exc:  # noqa: BLE001 - the server never dies from a request
            response = JSONResponse({"error": f"internal error: {type(exc).__name__}: {exc}"},
                                    500)
        state.metrics.finished(endpoint, response.status_code, time.monotonic() - start)
        return response
    return wrapped


async def supervise(state: ServeState, log, every: float = 0.5) -> None:
    """Restart any engine worker that died (its requests got 503), pinned and loaded as
    before; the server goes on with the others meanwhile."""
    loop = asyncio.get_running_loop()
    while True:
        await asyncio.sleep(every)
        for line in await loop.run_in_executor(None, state.pool.revive):
            state.metrics.restarted()
            log(f"Restarted an engine worker: {line}")


def build_app(state: ServeState, on_ready=lambda: None, log=print) -> Starlette:
    """The application; `on_ready()` once the decode processes run and batching has started
    (the server says it is serving only then); `log` for what happens while serving."""
    @contextlib.asynccontextmanager
    async def lifespan(app):
        import multiprocessing

        config = state.config
        state.decoder = ProcessPoolExecutor(config.decode_workers, mp_context=(
            multiprocessing.get_context("spawn")), initializer=ignore_stop_signals)
        per_worker, _ = config.in_flight(state.loaded["engine"])
        state.batcher = Batcher(state.pool, config.max_batch, config.max_delay_ms / 1000,
                                config.max_queue, state.metrics,
                                in_flight=per_worker * len(state.pool.workers))
        await asyncio.gather(*(asyncio.get_running_loop().run_in_executor(state.decoder, ready)
                               for _ in range(2 * config.decode_workers)))  # all started
        state.batcher.start()
        supervisor = asyncio.get_running_loop().create_task(supervise(state, log))
        state.ready = True
        on_ready()
        yield
        state.ready = False
        supervisor.cancel()
        await state.batcher.drain(state.config.deadline_s)
        state.batcher.task.cancel()
        state.decoder.shutdown(cancel_futures=True)

    base = f"/v2/models/{MODEL}"
    routes = [
        Route("/v2/health/live", lambda r: JSONResponse({"live": True})),
        Route("/v2/health/ready", ready_response),
        Route("/v2", server_metadata),
        Route(base, model_metadata), Route(f"{base}/versions/1", model_metadata),
        Route(f"{base}/ready", ready_response),
        Route(f"{base}/infer", _counted(infer, "infer"), methods=["POST"]),
        Route(f"{base}/versions/1/infer", _counted(infer, "infer"), methods=["POST"]),
        Route("/v1/classify", _counted(classify_v1, "classify"), methods=["POST"]),
        Route("/metrics", metrics),
    ]
    app = Starlette(routes=routes, lifespan=lifespan)
    app.state.serve = state
    return app
