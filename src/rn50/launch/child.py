"""The engine worker process: loads a model once, then answers requests until closed.

Started by `launch.worker.EngineWorker` with its environment and CPU binding
already in place; talks over the SOCK_SEQPACKET channel named on its command
line (see `launch.channel`). Requests (`op`):

- `load`: backend, precision, model, settings -> `started`, then `loaded`
  (input, engine read-back, metadata, load timings) or `error` (and exit);
- `run`: a scenario from `scenarios.REGISTRY`, run here, next to the engine ->
  its events (`phase`, `progress`, ...), then `result` or `error`. With
  `barrier`, the scenario says `ready` after warm-up and waits for `go`;
- `shm` (+ a memfd): map the request slots; `infer`: run the batch in a slot,
  reply `done` (output written to the slot) or `failed`;
- `close`: exit.

Ctrl-C (SIGINT) or SIGTERM ends a running scenario after the step in flight;
its result then holds the steps timed so far, marked `interrupted`.
"""

from __future__ import annotations

import mmap
import os
import signal
import socket
import sys
import threading
import time
import traceback

import numpy as np

from ..errors import Rn50Error, cause_line
from .channel import Channel, Closed


def _observed(env_names) -> dict:
    affinity = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
    return {"pid": os.getpid(), "affinity": affinity,
            "env": {name: os.environ.get(name) for name in env_names}}


def peak_rss_mib() -> float:
    """Peak resident memory of this process so far, in MiB (Linux reports KiB)."""
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def input_preprocessing(model, spec, num_classes):
    """The preprocessing of a model whose input is `spec` (before any is embedded)."""
    from ..data.preprocess import spec_from_metadata
    from ..models.metadata import describe

    meta = describe(model.source, model.format, spec.name, spec.layout, num_classes,
                    model.class_offset, model.preprocessing, model.provenance)
    return spec_from_metadata(meta["preprocessing"], spec.layout, crop=spec.image_size)


def check_input_size(model, spec) -> None:
    """--input-size must agree with a model whose input size is fixed."""
    from ..errors import ConfigError

    asked = (model.preprocessing or {}).get("input_size")
    size = spec.image_size
    if asked and asked != size:
        raise ConfigError(f"--input-size {asked}: model {model.path} takes {size}x{size} images")


def _error(exc: BaseException) -> dict:
    """The `error` message for an exception: Rn50Errors by kind, engine failures with the
    engine's meaningful line and the traceback (shown with --verbose)."""
    if isinstance(exc, KeyboardInterrupt):
        return {"type": "error", "kind": "WorkerError",
                "message": f"interrupted: {exc}" if str(exc) else "interrupted"}
    if isinstance(exc, Rn50Error):
        return {"type": "error", "kind": type(exc).__name__, "message": str(exc)}
    return {"type": "error", "kind": "EngineError", "message": engine_line(exc),
            "traceback": traceback.format_exc()}


def engine_line(exc: BaseException) -> str:
    """`Type: the informative line` of an engine exception (not its 'Exception from file:line'
    header, which hides the cause)."""
    return f"{type(exc).__name__}: {cause_line(exc)}".rstrip(": ")


class WorkerProcess:
    """The request loop of one engine worker."""

    def __init__(self, channel: Channel, stop: threading.Event) -> None:
        self.channel, self.stop = channel, stop
        self.context = None  # scenarios.WorkerContext once loaded
        self.slots: list[tuple[np.ndarray, np.ndarray]] = []
        self.memory: mmap.mmap | None = None

    def emit(self, message: dict) -> None:
        self.channel.send(message)

    def serve(self) -> int:
        while True:
            try:
                message, fds = self.channel.recv()
            except Closed:
                return 0
            op = message.get("op")
            if op == "close":
                return 0
            try:
                if op == "load":
                    self.load(message)
                elif op == "run":
                    self.run(message)
                elif op == "shm":
                    self.map_slots(message, fds[0])
                elif op == "infer":
                    self.infer(message)
            except BaseException as exc:  # reported, never a traceback on the console
                if isinstance(exc, Closed):
                    return 3
                if op == "infer":  # that request fails; the worker serves the next one
                    self.emit({"type": "failed", "id": message.get("id"),
                               "message": _error(exc)["message"]})
                    continue
                self.emit(_error(exc))
                if op == "load":
                    return 3

    def load(self, job: dict) -> None:
        # Engine imports happen here, after the binding and environment are in place.
        from ..backends import capabilities, get_backend
        from ..models.metadata import describe
        from ..models.resolve import model_spec_from_dict
        from ..scenarios import WorkerContext
        from ..settings import settings_from_dict

        self.emit({"type": "started", **_observed(job["settings"]["env"].keys())})
        model = model_spec_from_dict(job["model"])
        backend = get_backend(job["backend"])
        plan = (lambda spec, classes: input_preprocessing(model, spec, classes)) \
            if job.get("graph_preprocessing") else None
        declared = capabilities(job["backend"])
        dynamic = {"dynamic_batch": True} if job.get("dynamic_batch") and \
            declared.dynamic_batch else {}
        if job.get("profiling") and declared.profiling:
            dynamic["profiling"] = True
        session = backend.load(model, settings_from_dict(job["settings"]), job["precision"],
                               preprocess=plan, **dynamic)
        engine = {"name": backend.name, "versions": backend.versions(),
                  **session.applied_settings()}
        spec = session.input_spec
        metadata = describe(model.source, model.format, spec.name, spec.layout,
                            session.num_classes, model.class_offset, model.preprocessing,
                            model.provenance)
        check_input_size(model, spec)
        self.context = WorkerContext(session, model, spec, metadata, engine, self.emit,
                                     self.stop, self.wait_for_go)
        loaded = {"type": "loaded", "input": spec.to_dict(), "load_timings": session.load_timings,
                  "engine": engine, "metadata": metadata}
        if job.get("probe_output"):
            probe = np.asarray(session.run(np.zeros(spec.shape, spec.dtype)))
            loaded["output_elements"] = int(probe.size // spec.shape[0])
        self.emit(loaded)

    def wait_for_go(self) -> None:
        """The barrier: say we are warm, then wait until rn50 releases every instance."""
        from ..errors import WorkerError

        self.emit({"type": "ready"})
        message, _ = self.channel.recv()
        if message.get("op") != "go" or self.stop.is_set():
            raise WorkerError("stopped before the timed region (another instance failed, "
                              "or Ctrl-C)")

    def run(self, job: dict) -> None:
        from ..scenarios import get_scenario

        if self.context is None:
            raise Rn50Error("no model loaded")
        self.stop.clear()
        result = get_scenario(job["scenario"])(self.context, job)
        self.emit({"type": "result", "result": dict(
            result, engine=self.context.engine, input=self.context.input_spec.to_dict(),
            load_timings=self.context.session.load_timings,
            model_metadata=self.context.metadata, peak_rss_mib=peak_rss_mib())})

    def map_slots(self, layout: dict, fd: int) -> None:
        self.memory = mmap.mmap(fd, layout["slots"] * layout["slot_bytes"])
        os.close(fd)
        shape, dtype = tuple(layout["shape"]), np.dtype(layout["dtype"])
        self.slots = []
        for slot in range(layout["slots"]):
            base = slot * layout["slot_bytes"]
            self.slots.append((np.ndarray(shape, dtype, self.memory, base),
                               np.ndarray(tuple(layout["out_shape"]), np.float32, self.memory,
                                          base + layout["in_bytes"])))

    def infer(self, request: dict) -> None:
        inputs, outputs = self.slots[request["slot"]]
        rows = request["n"]
        session = self.context.session
        if getattr(session, "dynamic_batch", False):
            inputs = inputs[:rows]  # only the images sent (the engine takes 1..batch)

        def on_done(output) -> None:
            try:
                result = np.asarray(output())
                outputs[:rows] = result.reshape(result.shape[0], -1)[:rows]
                self.channel.send({"type": "done", "id": request["id"]})
            except Closed:
                pass
            except Exception as exc:  # noqa: BLE001 - the request fails, the worker lives
                self.channel.send({"type": "failed", "id": request["id"],
                                   "message": engine_line(exc)})

        session.wait_idle()
        try:
            session.submit(inputs, on_done)
        except Exception as exc:  # noqa: BLE001 - an engine failure on this batch
            self.channel.send({"type": "failed", "id": request["id"],
                               "message": engine_line(exc)})


def watch_parent(interval: float = 0.5) -> None:
    """If rn50 dies (even by SIGKILL), end this worker and everything in its process group
    (decode workers, Python's resource tracker) within `interval` seconds: nothing is left
    running re-parented to init."""
    parent = os.getppid()

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(interval)
        os.killpg(0, signal.SIGKILL)

    threading.Thread(target=watch, name="rn50-parent-watch", daemon=True).start()


def main(argv: list[str]) -> int:
    channel = Channel(socket.socket(fileno=int(argv[1])))
    stop = threading.Event()
    watch_parent()

    def request_stop(signum, frame) -> None:  # Ctrl-C: finish the step in flight, report
        stop.set()

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    try:
        return WorkerProcess(channel, stop).serve()
    finally:
        channel.close()


if __name__ == "__main__":
    sys.exit(main(sys.argv))
