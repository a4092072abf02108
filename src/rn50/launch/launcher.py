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
from .plan import LaunchPlan, describe_exit
from .worker import EngineWorker, _error_from


@dataclass
class Outcome:
    """What became of one child: its result, or the error it died of (or both: partial)."""

    index: int
    result: dict | None = None
    error: errors.Rn50Error | None = None
    pid: int | None = None


INTERRUPT_GRACE_S = 20.0
LOAD_KEYS = ("backend", "precision", "model", "settings")


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
                timeout: float | None = None, barrier: bool = False) -> tuple[list[Outcome], bool]:
    """Run one child per plan, together; return each one's outcome and whether Ctrl-C stopped them.

    With `barrier`, every child loads and warms up, reports `ready`, and waits;
    when all surviving children are ready they are released together (`go`), so
    their timed regions overlap. A child that dies is reported with why and the
    others go on. Ctrl-C (KeyboardInterrupt here) asks every child to stop
    (SIGINT: it finishes its current step and reports what it measured); children
    still waiting at the barrier are told to stop; any still running after
    INTERRUPT_GRACE_S are killed. With `timeout`, children still running then are
    killed and reported as hung.
    """
    events: queue.Queue = queue.Queue()
    runs = [_Run(EngineWorker(plan, environ, i, events=events, on_output=on_output))
            for i, plan in enumerate(plans)]
    interrupted = False
    deadline = time.monotonic() + timeout if timeout else None
    try:
        for run, job in zip(runs, jobs):
            run.worker.start()
            run.outcome.pid = run.worker.pid
            load, scenario = split_job(job, barrier)
            run.worker.send(dict(load, op="load"))
            run.worker.send(scenario)
            if not barrier:
                run.worker.send({"op": "close"})
    except BaseException:
        for run in runs:
            if run.worker.proc:
                run.reap(killed_for="was killed: another instance failed to start")
        raise
    def release_if_all_ready() -> None:
        alive = [w for w in runs if not w.finished and w.outcome.error is None]
        if barrier and alive and all(w.ready for w in alive):
            for w in alive:
                if not w.released:
                    w.released = True
                    w.worker.send({"op": "go"})
                    w.worker.send({"op": "close"})

    def expire() -> None:
        if interrupted:
            reason = f"did not stop within {INTERRUPT_GRACE_S:g} s of Ctrl-C and was killed"
        else:
            reason = f"was still running after --timeout {timeout:g} s and was killed"
        for w in runs:
            if not w.finished:
                w.reap(killed_for=reason)

    def handle(run: _Run, message: dict) -> None:
        kind = message.get("type")
        if kind == "result":
            run.outcome.result = message["result"]
        elif kind == "error":
            run.outcome.error = _error_from(message)
            if message.get("traceback"):
                on_message(run.worker.index, {"type": "traceback", "text": message["traceback"]})
            if barrier and not run.released:  # it will not reach the barrier
                run.released = True
                run.worker.send({"op": "close"})
            release_if_all_ready()
        elif kind == "ready":
            run.ready = True
            release_if_all_ready()
        elif kind == "_closed":
            run.reap()
            release_if_all_ready()
        else:
            on_message(run.worker.index, message)

    by_worker = {id(w.worker): w for w in runs}
    while not all(w.finished for w in runs):
        try:
            wait = 0.5
            if deadline is not None:
                wait = min(wait, max(0.0, deadline - time.monotonic()))
            try:
                worker, message = events.get(timeout=wait)
            except queue.Empty:
                if deadline is not None and time.monotonic() >= deadline:
                    expire()
                continue
            handle(by_worker[id(worker)], message)
        except KeyboardInterrupt:
            if interrupted:  # a second Ctrl-C: stop now
                for w in runs:
                    if not w.finished:
                        w.reap(killed_for="was killed by a second Ctrl-C")
                break
            interrupted = True
            deadline = time.monotonic() + INTERRUPT_GRACE_S
            for w in runs:
                if not w.finished:
                    if barrier and not w.released:
                        w.released = True
                        w.worker.send({"op": "stop"})
                        w.worker.send({"op": "close"})
                    w.worker.signal(signal.SIGINT)
    return [w.outcome for w in runs], interrupted


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
        raise KeyboardInterrupt
    if outcome.error is not None:
        raise outcome.error
    return outcome.result
