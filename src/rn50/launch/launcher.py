"""Start the benchmark in child processes, bound and configured before any engine loads.

Binding is done by numactl (when the settings say so) or by sched_setaffinity
between fork and exec, so the engine's thread pools start on the right CPUs.
The child reports over a dedicated pipe as JSON lines; its stdout and stderr
(engine messages such as KMP_SETTINGS output) are passed to `on_output`.
A crash or kill of the child is reported as a WorkerError, never a hang.
"""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from typing import Callable, Mapping, Sequence

from .. import errors
from ..settings import Settings


@dataclass(frozen=True)
class LaunchPlan:
    """The exact command and environment of one child process."""

    argv: tuple[str, ...]
    env_overrides: dict[str, str]
    affinity: tuple[int, ...] | None

    def to_dict(self) -> dict:
        return {"argv": list(self.argv), "env": self.env_overrides,
                "sched_setaffinity": list(self.affinity) if self.affinity else None}


def plan_launch(settings: Settings, numactl: str | None, engine_env: dict[str, str] | None = None,
                python: str = sys.executable) -> LaunchPlan:
    """Pure: the child's command line, environment additions and affinity."""
    argv = [python, "-m", "rn50.launch.child"]
    affinity = None
    if settings.binding.value == "numactl":
        argv = [numactl or "numactl", *settings.numactl_args(), *argv]
    elif settings.binding.value == "sched_setaffinity":
        affinity = tuple(settings.cpus.value)
    return LaunchPlan(tuple(argv), {**(engine_env or {}), **settings.child_env()}, affinity)


def describe_exit(returncode: int) -> str:
    if returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = f"signal {-returncode}"
        hint = " (out of memory, or killed by the user?)" if name == "SIGKILL" else ""
        return f"was killed by {name}{hint}"
    return f"exited with code {returncode}"


@dataclass
class Outcome:
    """What became of one child: its result, or the error it died of (or both: partial)."""

    index: int
    result: dict | None = None
    error: errors.Rn50Error | None = None
    pid: int | None = None


class _Worker:
    """One child process: started bound, fed its job, read over its message pipe."""

    def __init__(self, index: int, plan: LaunchPlan, job: dict, environ: Mapping[str, str]):
        self.index, self.plan, self.job = index, plan, job
        self.env = dict(environ)
        self.env.update(plan.env_overrides)
        self.env["PYTHONUNBUFFERED"] = "1"
        src = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        self.env["PYTHONPATH"] = os.pathsep.join(p for p in (src, self.env.get("PYTHONPATH")) if p)
        self.proc: subprocess.Popen | None = None
        self.outcome = Outcome(index)
        self.ready = self.finished = self.released = False
        self.threads: list[threading.Thread] = []

    def start(self, events: "queue.Queue", on_output: Callable[[int, str], None]) -> None:
        read_fd, write_fd = os.pipe()
        affinity = self.plan.affinity

        def bind() -> None:  # runs in the child between fork and exec
            if affinity:
                os.sched_setaffinity(0, affinity)

        try:
            self.proc = subprocess.Popen(
                [*self.plan.argv, str(write_fd)], env=self.env, stdin=subprocess.PIPE,
                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, pass_fds=(write_fd,),
                preexec_fn=bind if affinity else None, text=True)
        except OSError as exc:
            os.close(read_fd)
            os.close(write_fd)
            raise errors.WorkerError(f"cannot start the benchmark process {self.plan.argv[0]}: "
                                     f"{exc.strerror or exc}") from exc
        os.close(write_fd)
        self.outcome.pid = self.proc.pid

        def forward() -> None:
            for line in self.proc.stdout:
                on_output(self.index, line.rstrip("\n"))

        def read() -> None:
            with os.fdopen(read_fd) as messages:
                for line in messages:
                    try:
                        events.put((self, json.loads(line)))
                    except ValueError:
                        on_output(self.index, line.rstrip("\n"))
            events.put((self, {"type": "_closed"}))

        self.threads = [threading.Thread(target=forward, daemon=True),
                        threading.Thread(target=read, daemon=True)]
        for thread in self.threads:
            thread.start()
        self.send(json.dumps(self.job))

    def send(self, line: str) -> None:
        try:
            self.proc.stdin.write(line + "\n")
            self.proc.stdin.flush()
        except (BrokenPipeError, ValueError, OSError):
            pass

    def close_input(self) -> None:
        try:
            self.proc.stdin.close()
        except (BrokenPipeError, OSError):
            pass

    def signal(self, signum: int) -> None:
        if self.proc and self.proc.poll() is None:
            try:
                self.proc.send_signal(signum)
            except OSError:
                pass

    def reap(self, killed_for: str | None = None) -> None:
        """The process has closed its pipe (or must die): wait for it, record how it ended."""
        if killed_for:
            self.signal(signal.SIGKILL)
        returncode = self.proc.wait()
        self.finished = True
        for thread in self.threads:
            thread.join(timeout=5)
        if killed_for and self.outcome.error is None:
            self.outcome.error = errors.WorkerError(f"the benchmark process (pid {self.proc.pid}) "
                                                    f"{killed_for}")
        elif self.outcome.result is None and self.outcome.error is None:
            self.outcome.error = errors.WorkerError(
                f"the benchmark process (pid {self.proc.pid}) {describe_exit(returncode)} "
                "before reporting a result")


def _error_from(message: dict) -> errors.Rn50Error:
    cls = getattr(errors, message.get("kind", ""), errors.EngineError)
    if not (isinstance(cls, type) and issubclass(cls, errors.Rn50Error)):
        cls = errors.EngineError
    return cls(message["message"])


INTERRUPT_GRACE_S = 20.0


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
    workers = [_Worker(i, plan, dict(job, barrier=barrier), environ)
               for i, (plan, job) in enumerate(zip(plans, jobs))]
    interrupted = False
    deadline = time.monotonic() + timeout if timeout else None
    try:
        for worker in workers:
            worker.start(events, on_output)
            if not barrier:
                worker.close_input()
    except BaseException:
        for worker in workers:
            if worker.proc:
                worker.reap(killed_for="was killed: another instance failed to start")
        raise

    def release_if_all_ready() -> None:
        alive = [w for w in workers if not w.finished and w.outcome.error is None]
        if barrier and alive and all(w.ready for w in alive):
            for w in alive:
                if not w.released:
                    w.released = True
                    w.send("go")
                    w.close_input()

    def expire() -> None:
        if interrupted:
            reason = f"did not stop within {INTERRUPT_GRACE_S:g} s of Ctrl-C and was killed"
        else:
            reason = f"was still running after --timeout {timeout:g} s and was killed"
        for w in workers:
            if not w.finished:
                w.reap(killed_for=reason)

    def handle(worker: _Worker, message: dict) -> None:
        kind = message.get("type")
        if kind == "result":
            worker.outcome.result = message["result"]
        elif kind == "error":
            worker.outcome.error = _error_from(message)
            if message.get("traceback"):
                on_message(worker.index, {"type": "traceback", "text": message["traceback"]})
            release_if_all_ready()
        elif kind == "ready":
            worker.ready = True
            release_if_all_ready()
        elif kind == "_closed":
            worker.reap()
            release_if_all_ready()
        else:
            on_message(worker.index, message)

    while not all(w.finished for w in workers):
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
            handle(worker, message)
        except KeyboardInterrupt:
            if interrupted:  # a second Ctrl-C: stop now
                for w in workers:
                    if not w.finished:
                        w.reap(killed_for="was killed by a second Ctrl-C")
                break
            interrupted = True
            deadline = time.monotonic() + INTERRUPT_GRACE_S
            for w in workers:
                if not w.finished:
                    if barrier and not w.released:
                        w.released = True
                        w.send("stop")
                        w.close_input()
                    w.signal(signal.SIGINT)
    return [w.outcome for w in workers], interrupted


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
