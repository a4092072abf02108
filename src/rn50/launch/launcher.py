"""Start the benchmark in a child process, bound and configured before any engine loads.

Binding is done by numactl (when the settings say so) or by sched_setaffinity
between fork and exec, so the engine's thread pools start on the right CPUs.
The child reports over a dedicated pipe as JSON lines; its stdout and stderr
(engine messages such as KMP_SETTINGS output) are passed to `on_output`.
A crash or kill of the child is reported as a WorkerError, never a hang.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from dataclasses import dataclass
from typing import Callable, Mapping

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


def run_child(plan: LaunchPlan, job: dict, environ: Mapping[str, str],
              on_message: Callable[[dict], None], on_output: Callable[[str], None],
              timeout: float | None = None) -> dict:
    """Run the job in a child process; return its result or raise the error it reported.

    With `timeout` (seconds), a child still running then (a hung engine) is killed
    and reported as such.
    """
    env = dict(environ)
    env.update(plan.env_overrides)
    env["PYTHONUNBUFFERED"] = "1"
    src = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    env["PYTHONPATH"] = os.pathsep.join(p for p in (src, env.get("PYTHONPATH")) if p)
    read_fd, write_fd = os.pipe()
    affinity = plan.affinity

    def bind() -> None:  # runs in the child between fork and exec
        if affinity:
            os.sched_setaffinity(0, affinity)

    try:
        proc = subprocess.Popen([*plan.argv, str(write_fd)], env=env, stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                pass_fds=(write_fd,), preexec_fn=bind if affinity else None,
                                text=True)
    except OSError as exc:
        os.close(read_fd)
        os.close(write_fd)
        raise errors.WorkerError(f"cannot start the benchmark process {plan.argv[0]}: "
                                 f"{exc.strerror or exc}") from exc
    os.close(write_fd)

    def forward() -> None:
        for line in proc.stdout:
            on_output(line.rstrip("\n"))

    forwarder = threading.Thread(target=forward, daemon=True)
    forwarder.start()
    timed_out = threading.Event()

    def expire() -> None:
        timed_out.set()
        proc.kill()

    watchdog = threading.Timer(timeout, expire) if timeout else None
    if watchdog:
        watchdog.daemon = True
        watchdog.start()
    result, error = None, None
    try:
        proc.stdin.write(json.dumps(job))
        proc.stdin.close()
    except BrokenPipeError:
        pass
    try:
        with os.fdopen(read_fd) as messages:
            for line in messages:
                message = json.loads(line)
                kind = message.get("type")
                if kind == "result":
                    result = message["result"]
                elif kind == "error":
                    error = message
                else:
                    on_message(message)
        returncode = proc.wait()
    except BaseException:
        proc.kill()
        proc.wait()
        raise
    finally:
        if watchdog:
            watchdog.cancel()
        forwarder.join(timeout=5)
    if timed_out.is_set():
        raise errors.WorkerError(f"the benchmark process (pid {proc.pid}) was still running after "
                                 f"--timeout {timeout:g} s and was killed")
    if error is not None:
        if error.get("traceback"):
            on_message({"type": "traceback", "text": error["traceback"]})
        cls = getattr(errors, error.get("kind", ""), errors.EngineError)
        if not (isinstance(cls, type) and issubclass(cls, errors.Rn50Error)):
            cls = errors.EngineError
        raise cls(error["message"])
    if result is None:
        raise errors.WorkerError(f"the benchmark process (pid {proc.pid}) {describe_exit(returncode)} "
                                 "before reporting a result")
    return result
