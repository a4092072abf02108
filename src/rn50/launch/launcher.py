"""Run one scenario on N engine workers together: the one-shot runs (bench, accuracy, ...).

Each worker (`launch.worker.EngineWorker`) is started bound and configured
before its engine loads, loads the model, runs the scenario and is closed;
its process group goes with it. With `barrier`, every worker warms up, says
`ready` and waits; all are released together so their timed regions overlap.
A crash or kill of a worker is reported as a WorkerError naming it, never a
hang; the others go on.
"""

from __future__ import annotations

import queue
import signal
import time
from dataclasses import dataclass
from typing import Callable, Mapping, Sequence

from .. import errors
from ..interrupts import Interrupted, describe, signal_of
from .plan import LaunchPlan, describe_exit
from .worker import EngineWorker, error_from


@dataclass
class Outcome:
    """What became of one child: its result, or the error it died of (or both: partial)."""

    index: int
    result: dict | None = None
    error: errors.Rn50Error | None = None
    pid: int | None = None


INTERRUPT_GRACE_S = 20.0
LOAD_KEYS = ("backend", "precision", "model", "settings", "profiling")


def split_job(job: dict, barrier: bool) -> tuple[dict, dict]:
    """A one-shot job as the worker's `load` and `run` requests."""
    load = {key: job.get(key) for key in LOAD_KEYS}
    load["graph_preprocessing"] = bool((job.get("data") or {}).get("graph_preprocessing"))
    run = {key: value for key, value in job.items() if key not in LOAD_KEYS}
    return load, dict(run, op="run", barrier=barrier)


class _Run:
    """The state of one worker in a one-shot run."""

    def __init__(self, worker: EngineWorker) -> None:
        self.worker = worker
        self.outcome = Outcome(worker.index)
        self.ready = self.finished = self.released = False

    def reap(self, killed_for: str | None = None) -> None:
        """The worker has gone (or must): kill its group, record how it ended."""
        returncode = self.worker.kill(killed_for)
        self.finished = True
        self.outcome.pid = self.worker.pid
        if killed_for and self.outcome.error is None:
            self.outcome.error = errors.WorkerError(
                f"the benchmark process (pid {self.worker.pid}) {killed_for}")
        elif self.outcome.result is None and self.outcome.error is None:
            self.outcome.error = errors.WorkerError(
                f"the benchmark process (pid {self.worker.pid}) {describe_exit(returncode)} "
                "before reporting a result")


def run_workers(plans: Sequence[LaunchPlan], jobs: Sequence[dict], environ: Mapping[str, str],
                on_message: Callable[[int, dict], None], on_output: Callable[[int, str], None],
                timeout: float | None = None, barrier: bool = False
                ) -> tuple[list[Outcome], Interrupted | None]:
    """Run one child per plan, together; each one's outcome, and the Interrupted that
    stopped them (Ctrl-C or SIGTERM), if one did.

    With `barrier`, every child loads and warms up, reports `ready`, and waits;
    when all surviving children are ready they are released together (`go`), so
    their timed regions overlap. A child that dies is reported with why and the
    others go on. Ctrl-C (KeyboardInterrupt here) asks every child to stop
    (SIGINT: it finishes its current step and reports what it measured); children
    still waiting at the barrier are told to stop; any still running after
    INTERRUPT_GRACE_S are killed. With `timeout`, children still running then are
    killed and reported as hung.
    """
    group = _OneShot(plans, environ, on_message, on_output, timeout, barrier)
    group.start(jobs)
    group.wait()
    return [run.outcome for run in group.runs], group.interrupted


class _OneShot:
    """The workers of one one-shot run, and the loop that follows their events."""

    def __init__(self, plans, environ, on_message, on_output, timeout, barrier) -> None:
        self.events: queue.Queue = queue.Queue()
        self.runs = [_Run(EngineWorker(plan, environ, i, events=self.events,
                                       on_output=on_output)) for i, plan in enumerate(plans)]
        self.by_worker = {id(run.worker): run for run in self.runs}
        self.on_message, self.timeout, self.barrier = on_message, timeout, barrier
        self.interrupted: Interrupted | None = None
        self.deadline = time.monotonic() + timeout if timeout else None

    def start(self, jobs: Sequence[dict]) -> None:
        try:
            for run, job in zip(self.runs, jobs):
                run.worker.start()
                run.outcome.pid = run.worker.pid
                load, scenario = split_job(job, self.barrier)
                run.worker.send(dict(load, op="load"))
                run.worker.send(scenario)
                if not self.barrier:
                    run.worker.send({"op": "close"})
        except BaseException:
            for run in self.runs:
                if run.worker.proc:
                    run.reap(killed_for="was killed: another instance failed to start")
            raise

    def wait(self) -> None:
        while not all(run.finished for run in self.runs):
            try:
                self._next()
            except KeyboardInterrupt as exc:
                if self.interrupted:  # a second Ctrl-C: stop now
                    self._reap_all(f"was killed by a second {describe(signal_of(exc))}")
                    return
                self._interrupt(exc)
            except BaseException:  # rn50 itself failed (its output cannot be written)
                self._reap_all("was stopped: rn50 could not go on")
                raise

    def _next(self) -> None:
        wait = 0.5
        if self.deadline is not None:
            wait = min(wait, max(0.0, self.deadline - time.monotonic()))
        try:
            worker, message = self.events.get(timeout=wait)
        except queue.Empty:
            if self.deadline is not None and time.monotonic() >= self.deadline:
                self._reap_all(
                    f"did not stop within {INTERRUPT_GRACE_S:g} s of Ctrl-C and was killed"
                    if self.interrupted else
                    f"was still running after --timeout {self.timeout:g} s and was killed")
            return
        self._handle(self.by_worker[id(worker)], message)

    def _handle(self, run: _Run, message: dict) -> None:
        kind = message.get("type")
        if kind == "result":
            run.outcome.result = message["result"]
        elif kind == "error":
            run.outcome.error = error_from(message)
            if message.get("traceback"):
                self.on_message(run.worker.index, {"type": "traceback",
                                                   "text": message["traceback"]})
            if self.barrier and not run.released:  # it will not reach the barrier
                self._release(run, "close")
            self._release_if_all_ready()
        elif kind == "ready":
            run.ready = True
            self._release_if_all_ready()
        elif kind == "_closed":
            run.reap()
            self._release_if_all_ready()
        else:
            self.on_message(run.worker.index, message)

    def _release(self, run: _Run, word: str) -> None:
        """Let a worker past the barrier (`go`), or stop it there (`stop`), then close it."""
        run.released = True
        if word != "close":
            run.worker.send({"op": word})
        run.worker.send({"op": "close"})

    def _release_if_all_ready(self) -> None:
        alive = [run for run in self.runs if not run.finished and run.outcome.error is None]
        if self.barrier and alive and all(run.ready for run in alive):
            for run in alive:
                if not run.released:
                    self._release(run, "go")

    def _interrupt(self, exc: KeyboardInterrupt) -> None:
        """Ctrl-C or SIGTERM: every worker finishes its step in flight and reports (asked
        with SIGINT); any still running after INTERRUPT_GRACE_S is killed."""
        self.interrupted = exc if isinstance(exc, Interrupted) else Interrupted(signal_of(exc))
        self.deadline = time.monotonic() + INTERRUPT_GRACE_S
        for run in self.runs:
            if not run.finished:
                if self.barrier and not run.released:
                    self._release(run, "stop")
                run.worker.signal(signal.SIGINT)

    def _reap_all(self, reason: str) -> None:
        for run in self.runs:
            if not run.finished:
                run.reap(killed_for=reason)


def run_child(plan: LaunchPlan, job: dict, environ: Mapping[str, str],
              on_message: Callable[[dict], None], on_output: Callable[[str], None],
              timeout: float | None = None) -> dict:
    """Run the job in one child process; return its result or raise the error it reported.

    With `timeout` (seconds), a child still running then (a hung engine) is killed
    and reported as such.
    """
    (outcome,), interrupted = run_workers([plan], [job], environ,
                                          lambda index, message: on_message(message),
                                          lambda index, line: on_output(line), timeout=timeout)
    if interrupted:
        raise interrupted
    if outcome.error is not None:
        raise outcome.error
    return outcome.result
