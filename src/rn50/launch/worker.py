"""EngineWorker: a pinned child process that loads a model once and answers requests.

The child (`rn50.launch.child`) is started bound and configured before any
engine loads (numactl or sched_setaffinity, the settings' environment), in a
process group of its own, so its decode workers and Python's helper processes
go with it. rn50 talks to it over a SOCK_SEQPACKET channel:

- `load` -> `loaded` (input, engine, metadata): once;
- `run` a registered scenario in the worker (the timed benchmark loop stays in
  the engine process, next to the engine) -> events, then `result` or `error`;
- `submit(array)` -> Future: the batch crosses in shared memory (a memfd mapped
  by both, one slot per request in flight), only a short message is sent, and
  the reply's output is copied out of the slot. Several requests in flight;
  usable from threads and, with `asyncio.wrap_future`, from asyncio.

A crash, kill or exit fails every pending future at once (the channel closes
when the process dies), with one line naming the instance and how it ended;
`close()` and `kill()` leave no process of the group behind.
"""

from __future__ import annotations

import mmap
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures import Future
from typing import Callable, Mapping

import numpy as np

from .. import errors
from .channel import Channel, Closed, pair
from .plan import LaunchPlan, describe_exit

STARTUP_TIMEOUT_S = 600.0
if sys.platform != "linux":  # memfd, SEQPACKET and process groups as used here are Linux's
    raise ImportError("rn50's engine worker needs Linux")


class EngineWorker:
    """One engine child process. `events` receives (worker, message) for everything but
    inference replies; by default the worker's own queue (see `next_event`)."""

    def __init__(self, plan: LaunchPlan, environ: Mapping[str, str], index: int = 0,
                 name: str | None = None, events: "queue.Queue | None" = None,
                 on_output: Callable[[int, str], None] | None = None) -> None:
        self.plan, self.index = plan, index
        self.name = name or f"instance {index + 1}"
        self.env = dict(environ)
        self.env.update(plan.env_overrides)
        self.env["PYTHONUNBUFFERED"] = "1"
        src = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        self.env["PYTHONPATH"] = os.pathsep.join(p for p in (src, self.env.get("PYTHONPATH")) if p)
        self.events = events if events is not None else queue.Queue()
        self.on_output = on_output or (lambda index, line: None)
        self.proc: subprocess.Popen | None = None
        self.channel: Channel | None = None
        self.loaded: dict | None = None
        self.exit_reason: str | None = None
        self._stream: _Stream | None = None
        self._threads: list[threading.Thread] = []
        self.closing = False

    # -- process ---------------------------------------------------------------------------
    def start(self) -> "EngineWorker":
        ours, theirs = pair()
        affinity = self.plan.affinity

        def bind() -> None:  # in the child, between fork and exec
            if affinity:
                os.sched_setaffinity(0, affinity)

        try:
            self.proc = subprocess.Popen(
                [*self.plan.argv, str(theirs.fileno())], env=self.env, stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, pass_fds=(theirs.fileno(),),
                preexec_fn=bind if affinity else None, start_new_session=True, text=True)
        except OSError as exc:
            ours.close()
            raise errors.WorkerError(f"cannot start the engine process {self.plan.argv[0]}: "
                                     f"{exc.strerror or exc}") from exc
        finally:
            theirs.close()
        self.channel = Channel(ours)
        self._threads = [threading.Thread(target=self._forward, daemon=True),
                         threading.Thread(target=self._read, daemon=True)]
        for thread in self._threads:
            thread.start()
        return self

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    def _forward(self) -> None:
        for line in self.proc.stdout:
            self.on_output(self.index, line.rstrip("\n"))

    def _read(self) -> None:
        while True:
            try:
                message, fds = self.channel.recv()
            except Closed:
                break
            for fd in fds:
                os.close(fd)
            if message.get("type") in ("done", "failed") and self._stream is not None:
                self._stream.reply(message)
            else:
                self.events.put((self, message))
        returncode = _wait_unreaped(self.proc.pid)  # reaped by kill(), after its group
        self.exit_reason = self.exit_reason or describe_exit(returncode)
        if self._stream is not None:
            self._stream.fail_all(self._failure())
        self.events.put((self, {"type": "_closed", "returncode": returncode}))

    def _failure(self) -> errors.WorkerError:
        cpus = f", CPUs {_cpus(self.plan)}" if _cpus(self.plan) else ""
        return errors.WorkerError(f"{self.name} (pid {self.pid}{cpus}) {self.exit_reason}")

    def send(self, message: dict, fds: tuple[int, ...] = ()) -> bool:
        """Send a message; False when the worker has gone."""
        try:
            self.channel.send(message, fds)
            return True
        except Closed:
            return False

    def signal(self, signum: int) -> None:
        if self.proc and self.proc.poll() is None:
            try:
                self.proc.send_signal(signum)
            except OSError:
                pass

    def kill(self, reason: str | None = None) -> int:
        """SIGKILL the worker's whole process group (it is not reaped before: its group id
        cannot have been reused), then reap it; its exit code."""
        if reason and not self.exit_reason:
            self.exit_reason = reason
        if self.proc is None:
            return 0
        _kill_group(self.proc.pid)
        returncode = self.proc.wait()
        for thread in self._threads:
            thread.join(timeout=5)
        if self.channel:
            self.channel.close()
        return returncode

    def close(self, timeout: float = 30.0) -> int:
        """Ask the worker to exit; kill its group if it has not within `timeout` seconds;
        then whatever it left in its group (decode workers) goes too."""
        if self.proc is None:
            return 0
        self.closing = True
        self.send({"op": "close"})
        if _wait_unreaped(self.proc.pid, timeout) is None:
            self.exit_reason = f"did not exit within {timeout:g} s of close and was killed"
        return self.kill()

    # -- request / reply ---------------------------------------------------------------------
    def next_event(self, timeout: float | None = None) -> dict:
        """The next event from the worker's own queue (a standalone worker)."""
        try:
            _, message = self.events.get(timeout=timeout)
        except queue.Empty:
            raise errors.WorkerError(f"{self.name}: no answer within {timeout:g} s") from None
        return message

    def load(self, job: dict, timeout: float = STARTUP_TIMEOUT_S,
             on_event: Callable[[dict], None] = lambda message: None) -> dict:
        """Load the model (`job`: backend, precision, model, settings); the `loaded` message."""
        self.send(dict(job, op="load", probe_output=True))
        while True:
            message = self.next_event(timeout)
            kind = message.get("type")
            if kind == "loaded":
                self.loaded = message
                return message
            if kind == "error":
                raise error_from(message)
            if kind == "_closed":
                raise self._failure()
            on_event(message)

    def open_stream(self, slots: int = 4) -> None:
        """Map `slots` shared-memory request slots: up to that many `submit`s in flight."""
        if self.loaded is None:
            raise errors.WorkerError(f"{self.name}: load a model before opening a stream")
        self._stream = _Stream(self, self.loaded, slots)
        self.send({"op": "shm", **self._stream.layout()}, (self._stream.fd,))
        os.close(self._stream.fd)

    def submit(self, array: np.ndarray, timeout: float | None = None,
               rows: list[int] | None = None) -> Future:
        """Run `array` (up to the compiled batch of images) — or, with `rows`, those rows of
        `array`, gathered straight into shared memory; a Future of the output rows."""
        if self._stream is None:
            self.open_stream()
        return self._stream.submit(array, timeout, rows)

    def __enter__(self) -> "EngineWorker":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class _Stream:
    """The shared-memory slots of one worker and the futures waiting on them."""

    def __init__(self, worker: EngineWorker, loaded: dict, slots: int) -> None:
        self.worker = worker
        self.shape = tuple(loaded["input"]["shape"])
        self.dtype = np.dtype(loaded["input"]["dtype"])
        self.out_shape = (self.shape[0], int(loaded["output_elements"]))
        self.in_bytes = int(np.prod(self.shape)) * self.dtype.itemsize
        self.out_bytes = int(np.prod(self.out_shape)) * 4
        self.slot_bytes = -(-(self.in_bytes + self.out_bytes) // 64) * 64
        self.slots = slots
        self.fd = os.memfd_create("rn50-engine-worker", os.MFD_CLOEXEC)
        os.ftruncate(self.fd, self.slot_bytes * slots)
        self.memory = mmap.mmap(self.fd, self.slot_bytes * slots)
        self.free: "queue.LifoQueue[int]" = queue.LifoQueue()  # the slot last used comes first
        for slot in range(slots):
            self.free.put(slot)
        self.pending: dict[int, tuple[Future, int, int]] = {}
        self.lock = threading.Lock()
        self.next_id = 0
        self.failure: errors.WorkerError | None = None

    def layout(self) -> dict:
        return {"slots": self.slots, "slot_bytes": self.slot_bytes, "in_bytes": self.in_bytes,
                "shape": list(self.shape), "dtype": self.dtype.name,
                "out_shape": list(self.out_shape)}

    def _views(self, slot: int) -> tuple[np.ndarray, np.ndarray]:
        base = slot * self.slot_bytes
        inputs = np.ndarray(self.shape, self.dtype, self.memory, base)
        outputs = np.ndarray(self.out_shape, np.float32, self.memory, base + self.in_bytes)
        return inputs, outputs

    def submit(self, array: np.ndarray, timeout: float | None,
               rows: list[int] | None = None) -> Future:
        array = np.asarray(array)
        count = len(rows) if rows is not None else array.shape[0]
        if array.shape[1:] != self.shape[1:] or not 1 <= count <= self.shape[0]:
            raise errors.ConfigError(f"{self.worker.name} takes up to {self.shape[0]} images of "
                                     f"{self.shape[1:]}, not {count} of {array.shape[1:]}")
        if array.dtype != self.dtype:
            raise errors.ConfigError(f"{self.worker.name} takes {self.dtype.name}, "
                                     f"not {array.dtype.name}")
        future: Future = Future()
        if self.failure is not None:
            future.set_exception(self.failure)
            return future
        try:
            slot = self.free.get(timeout=timeout)
        except queue.Empty:
            raise errors.WorkerError(f"{self.worker.name}: no free request slot within "
                                     f"{timeout:g} s") from None
        inputs, _ = self._views(slot)
        if rows is None:
            inputs[:count] = array
        else:
            np.take(array, rows, axis=0, out=inputs[:count])
        with self.lock:
            request = self.next_id
            self.next_id += 1
            self.pending[request] = (future, slot, count)
            failure = self.failure
        if failure is not None or not self.worker.send(
                {"op": "infer", "id": request, "slot": slot, "n": count}):
            self._finish(request)  # the reader fails it (or has already)
            future.set_exception(failure or self.worker._failure())
        return future

    def _finish(self, request: int) -> tuple[Future, int, int] | None:
        with self.lock:
            entry = self.pending.pop(request, None)
        if entry is not None:
            self.free.put(entry[1])
        return entry

    def reply(self, message: dict) -> None:
        with self.lock:
            entry = self.pending.get(message["id"])
        if entry is None:
            return
        future, slot, rows = entry
        if message["type"] == "done":
            result = self._views(slot)[1][:rows].copy()  # before the slot is reused
            self._finish(message["id"])
            future.set_result(result)
        else:
            self._finish(message["id"])
            future.set_exception(errors.EngineError(f"{self.worker.name}: {message['message']}"))

    def fail_all(self, failure: errors.WorkerError) -> None:
        with self.lock:
            self.failure = failure
            entries, self.pending = list(self.pending.values()), {}
        for future, slot, _ in entries:
            self.free.put(slot)
            if not future.done():
                future.set_exception(failure)


def error_from(message: dict) -> errors.Rn50Error:
    """The exception a worker's `error` message stands for (its kind, else EngineError)."""
    cls = getattr(errors, message.get("kind", ""), errors.EngineError)
    if not (isinstance(cls, type) and issubclass(cls, errors.Rn50Error)):
        cls = errors.EngineError
    return cls(message["message"])


def _cpus(plan: LaunchPlan) -> str:
    from ..platform import format_cpulist

    if plan.affinity:
        return format_cpulist(plan.affinity)
    for arg in plan.argv:
        if arg.startswith("--physcpubind="):
            return arg.split("=", 1)[1]
    return ""


def _wait_unreaped(pid: int, timeout: float | None = None) -> int | None:
    """Wait for `pid` to end without reaping it (WNOWAIT); its return code as Popen gives
    it (-signal when killed), or None if it is still running after `timeout` seconds."""
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        flags = os.WEXITED | os.WNOWAIT | (os.WNOHANG if deadline is not None else 0)
        try:
            info = os.waitid(os.P_PID, pid, flags)
        except ChildProcessError:  # already reaped
            return 0
        if info is not None and info.si_pid == pid:
            if info.si_code == os.CLD_EXITED:
                return info.si_status
            return -info.si_status
        if deadline is not None and time.monotonic() >= deadline:
            return None
        time.sleep(0.01)


def _kill_group(pid: int) -> None:
    """SIGKILL every process of the group `pid` leads (the worker and anything it started)."""
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


class WorkerPool:
    """EngineWorkers on disjoint core groups (one per instance), used as one: `submit` goes
    to the worker with the fewest requests in flight."""

    def __init__(self, workers: list[EngineWorker],
                 respawn: list[Callable[[], EngineWorker]] | None = None) -> None:
        self.workers = workers
        self.respawn = respawn  # per worker: start, load and open a replacement
        self.restarts = 0
        self._reviving = threading.Lock()

    def revive(self) -> list[str]:
        """Replace every worker that has died (with `respawn`); why each one died."""
        if not self.respawn or not self._reviving.acquire(blocking=False):
            return []
        try:
            died = []
            for index, worker in enumerate(self.workers):
                if worker.exit_reason is not None and not worker.closing:
                    died.append(f"{worker.name} (pid {worker.pid}) {worker.exit_reason}")
                    worker.kill()
                    self.workers[index] = self.respawn[index]()
                    self.restarts += 1
            return died
        finally:
            self._reviving.release()

    @classmethod
    def start(cls, plans: list[LaunchPlan], load_job: dict, environ: Mapping[str, str],
              slots: int = 4, on_output: Callable[[int, str], None] | None = None
              ) -> "WorkerPool":
        """Start, load and open every worker (started together, then loaded in turn)."""
        workers = [EngineWorker(plan, environ, i, on_output=on_output).start()
                   for i, plan in enumerate(plans)]
        pool = cls(workers)
        try:
            for worker in workers:
                worker.load(load_job)
                worker.open_stream(slots)
        except BaseException:
            pool.close()
            raise
        return pool

    def submit(self, array: np.ndarray, timeout: float | None = None,
               rows: list[int] | None = None) -> Future:
        alive = [w for w in self.workers if w.exit_reason is None] or self.workers
        worker = min(alive, key=lambda w: len(w._stream.pending) if w._stream else 0)
        return worker.submit(array, timeout, rows)

    def close(self) -> None:
        for worker in self.workers:
            worker.close()

    def __enter__(self) -> "WorkerPool":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


__all__ = ["EngineWorker", "WorkerPool"]
