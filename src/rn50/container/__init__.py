"""`launch_benchmark.py --docker-image IMAGE`: the same run inside a container, as Model Zoo does.

The container gets rn50's own source (mounted read-only, so the code that runs
is the code you have), the model's folder, the output folder and the model
cache, and the settings as environment variables read by `start.sh`, which
installs what the image lacks (unless NOINSTALL=True) and runs
`launch_benchmark.py` with them. `--debug` leaves you in a shell in the
container after the run, where `NOINSTALL=True BATCH_SIZE=128 ./start.sh`
re-runs with overrides.

`--privileged` is added only when the run binds memory (`--socket-id`,
multi-instance): Docker's default seccomp profile refuses the NUMA memory
policy calls numactl makes; CPU affinity alone needs no privilege.
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

from ..errors import ConfigError, EngineError

SRC_IN_CONTAINER = "/workspace/rn50-src"
START_IN_CONTAINER = "/workspace/start.sh"
PROXY_VARIABLES = ("http_proxy", "https_proxy", "no_proxy", "ftp_proxy",
                   "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "FTP_PROXY")
# What start.sh installs for each engine when the image lacks it: (import name, pip args)
ENGINE_PACKAGES = {
    "tensorflow": ("tensorflow", "tensorflow-cpu"),
    "onnxruntime": ("onnxruntime", "onnxruntime"),
    "torch": ("torch", "torch --index-url https://download.pytorch.org/whl/cpu"),
    "openvino": ("", ""),
}


@dataclass(frozen=True)
class ContainerRun:
    """What goes into the container: image, mounts (host -> container), environment."""

    image: str
    mounts: tuple[tuple[str, str, str], ...]  # (host path, container path, "ro" | "rw")
    env: tuple[tuple[str, str], ...]
    privileged: bool
    debug: bool

    def argv(self, docker: str = "docker") -> list[str]:
        """The exact `docker run` command line."""
        argv = [docker, "run", "--rm", "--init"]
        argv += ["-it"] if self.debug else []
        argv += ["--privileged"] if self.privileged else []
        for host, inside, mode in self.mounts:
            argv += ["--volume", f"{host}:{inside}:{mode}"]
        for name, value in self.env:
            argv += ["--env", f"{name}={value}"]
        argv += ["--workdir", "/workspace", self.image]
        if self.debug:  # run once, then stay in a shell where start.sh can re-run
            return argv + ["bash", "-c", f"cp {START_IN_CONTAINER} ./start.sh 2>/dev/null; "
                           f"bash {START_IN_CONTAINER}; echo 'Re-run: NOINSTALL=True "
                           "BATCH_SIZE=128 ./start.sh'; exec bash"]
        return argv + ["bash", START_IN_CONTAINER]


def rn50_source() -> Path:
    """The folder holding the `rn50` package (src/ of a checkout, or site-packages)."""
    return Path(__file__).resolve().parents[2]


def plan_container(settings: Mapping[str, object], backend: str, image: str, *,
                   in_graph: str | None, data_location: str | None, output_dir: str,
                   cache_dir: str | None, binds_memory: bool, debug: bool,
                   environ: Mapping[str, str], source: Path | None = None) -> ContainerRun:
    """Pure: the container run for these Model Zoo settings (NAME -> value; None = unset)."""
    source = source or rn50_source()
    mounts = [(str(source), SRC_IN_CONTAINER, "ro"),
              (str(source / "rn50" / "container" / "start.sh"), START_IN_CONTAINER, "ro")]
    env = {name: str(value) for name, value in settings.items() if value not in (None, "")}
    if in_graph:
        graph = Path(in_graph).expanduser().resolve()
        mounts.append((str(graph.parent), "/in_graph", "ro"))
        env["IN_GRAPH"] = f"/in_graph/{graph.name}"
    if data_location:
        mounts.append((str(Path(data_location).expanduser().resolve()), "/dataset", "ro"))
        env["DATASET_LOCATION"] = "/dataset"
    mounts.append((str(Path(output_dir).expanduser().resolve()), "/output", "rw"))
    env["OUTPUT_DIR"] = "/output"
    if cache_dir:
        mounts.append((str(Path(cache_dir).expanduser().resolve()), "/cache", "rw"))
        env["RN50_CACHE_DIR"] = "/cache"
    module, packages = ENGINE_PACKAGES.get(backend, ("", ""))
    if module:
        env["EXTRA_MODULES"], env["EXTRA_PACKAGES"] = module, packages
    env.setdefault("NOINSTALL", "False")
    for name in PROXY_VARIABLES:
        if environ.get(name):
            env[name] = environ[name]
    return ContainerRun(image, tuple(mounts), tuple(sorted(env.items())), binds_memory, debug)


def check_docker(environ: Mapping[str, str], timeout: float = 30.0) -> str:
    """Path of a `docker` that reaches an engine; raise one clear error otherwise."""
    docker = shutil.which("docker", path=environ.get("PATH"))
    if not docker:
        raise ConfigError("--docker-image: the `docker` command is not installed "
                          "(https://docs.docker.com/engine/install/)")
    try:
        probe = subprocess.run([docker, "info", "--format", "{{.ServerVersion}}"],
                               capture_output=True, text=True, timeout=timeout,
                               env=dict(environ))
    except subprocess.TimeoutExpired:
        raise EngineError(f"--docker-image: no Docker engine answered `docker info` within "
                          f"{timeout:g} s") from None
    if probe.returncode != 0:
        reason = (probe.stderr.strip().splitlines() or [f"exit code {probe.returncode}"])[-1]
        raise EngineError(f"--docker-image: no Docker engine is reachable ({reason})")
    return docker


def run_container(run: ContainerRun, docker: str, environ: Mapping[str, str]) -> int:
    """Run it with this terminal attached; the container's exit code."""
    Path(next(h for h, inside, _ in run.mounts if inside == "/output")).mkdir(parents=True,
                                                                             exist_ok=True)
    return subprocess.run(run.argv(docker), env=dict(environ)).returncode
