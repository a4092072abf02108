"""Model Zoo's `launch_benchmark.py` flags, translated into a RunConfig.

    python launch_benchmark.py --in-graph ~/intel-resnet50.pb --model-name resnet50 \\
        --framework openvino --precision fp32 --mode inference --batch-size 1 --benchmark-only

Flags this version cannot honour yet fail with one line naming the flag:
nothing is silently ignored.
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
from typing import Sequence

from .api import benchmark
from .backends import capabilities, real_engines
from .cli import OneLineParser, cores_per_instance, run_command
from .config import PRECISIONS, DataConfig, ModelConfig, RunConfig
from .container import check_docker, plan_container, run_container
from .models.cache import default_cache_dir
from .models.resolve import file_model
from .errors import ConfigError
from .report.files import Console
from .settings import UserFlags

PROG = "launch_benchmark.py"
MODEL_NAMES = ("resnet50", "resnet50v1_5")
FRAMEWORKS = {framework: name for name in real_engines()
              for framework in capabilities(name).frameworks or (name,)}
"""Model Zoo's --framework names -> rn50's engines, as the backends declare them."""


def build_parser() -> argparse.ArgumentParser:
    p = OneLineParser(prog=PROG, description="Model Zoo compatible launcher: runs the rn50 "
                      "benchmark with the same flags as IntelAI/models' launch_benchmark.py.")
    p.add_argument("--model-name", required=True, help="resnet50 (or resnet50v1_5)")
    p.add_argument("--framework", "-f", required=True,
                   help="engine: tensorflow, openvino, onnxruntime or pytorch")
    p.add_argument("--backend", help="run the model on this engine instead of --framework's")
    p.add_argument("--data-format", choices=("NCHW", "NHWC"))
    p.add_argument("--input-node")
    p.add_argument("--output-node")
    p.add_argument("--precision", "-p", required=True, help="fp32, bfloat16 or int8 (int8 "
                   "quantizes the model once on synthetic images, cached)")
    p.add_argument("--mode", required=True, help="inference")
    p.add_argument("--batch-size", "-b", type=int, default=-1, help="-1 = 128 (default)")
    p.add_argument("--in-graph", "-g", help="model file (.pb, .onnx, .xml); default: built-in")
    p.add_argument("--data-location", "--data-locations", "-d", dest="data_location")
    p.add_argument("--checkpoint", "-c")
    p.add_argument("--model-source-dir", "-s")
    p.add_argument("--socket-id", "-i", type=int, default=-1)
    p.add_argument("--num-cores", "-n", type=int, default=-1)
    p.add_argument("--num-instances", type=int, default=1,
                   help="benchmark processes run together, each on its own core group")
    p.add_argument("--numa-cores-per-instance", type=cores_per_instance, metavar="N|socket",
                   help="physical cores per instance, inside one NUMA node ('socket': all "
                   "cores of a socket)")
    p.add_argument("--num-intra-threads", "-a", type=int)
    p.add_argument("--num-inter-threads", "-e", type=int)
    p.add_argument("--data-num-intra-threads", type=int,
                   help="decode worker processes for --data-location")
    p.add_argument("--data-num-inter-threads", type=int)
    p.add_argument("--benchmark-only", action="store_true")
    p.add_argument("--accuracy-only", action="store_true")
    p.add_argument("--output-results", action="store_true")
    p.add_argument("--output-dir", default="rn50_logs")
    p.add_argument("--docker-image", help="run the same command inside this Docker image")
    p.add_argument("--debug", action="store_true", help="with --docker-image: stay in a shell "
                   "in the container after the run (re-run there with ./start.sh)")
    p.add_argument("--disable-tcmalloc", action="store_true")
    p.add_argument("--mpi_num_processes", type=int)
    p.add_argument("--verbose", action="store_true")
    p.add_argument("model_args", nargs="*", help="after --: warmup_steps=W steps=S")
    return p


def _not_yet(flag: str, what: str) -> ConfigError:
    return ConfigError(f"{flag}: {what} is not implemented in this version of rn50")


def parse_model_args(items: Sequence[str]) -> dict[str, int]:
    """Model Zoo custom args after `--`: warmup_steps=W steps=S."""
    known = {"warmup_steps", "steps"}
    values = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or key not in known:
            raise ConfigError(f"model argument {item!r}: expected warmup_steps=N or steps=N")
        try:
            values[key] = int(value)
        except ValueError:
            raise ConfigError(f"model argument {item!r}: {value!r} is not a whole number") from None
    return values


def to_run_config(args: argparse.Namespace, argv: Sequence[str]) -> RunConfig:
    """Validate Model Zoo flags and translate them into rn50's RunConfig."""
    if args.model_name not in MODEL_NAMES:
        raise ConfigError(f"--model-name {args.model_name}: rn50 runs {' or '.join(MODEL_NAMES)}")
    if args.mode != "inference":
        raise ConfigError(f"--mode {args.mode}: rn50 benchmarks inference only")
    if args.framework not in FRAMEWORKS:
        raise ConfigError(f"--framework {args.framework}: unknown; available: {', '.join(FRAMEWORKS)}")
    if args.precision not in PRECISIONS:
        raise ConfigError(f"--precision {args.precision}: choose {', '.join(PRECISIONS)}")
    unsupported = [
        (args.output_results, "--output-results", "per-image results"),
        (args.mpi_num_processes, "--mpi_num_processes", "MPI runs"),
        (args.checkpoint, "--checkpoint", "checkpoint loading (give a frozen graph with --in-graph)"),
        (args.model_source_dir, "--model-source-dir", "external model sources"),
    ]
    for given, flag, what in unsupported:
        if given:
            raise _not_yet(flag, what)
    if args.accuracy_only and args.benchmark_only:
        raise ConfigError("--accuracy-only and --benchmark-only: choose one")
    if args.accuracy_only and not args.data_location:
        raise ConfigError("--accuracy-only needs --data-location (labelled ImageNet TFRecords "
                          "or image folders)")
    if args.debug and not args.docker_image:
        raise ConfigError("--debug opens a shell in the Docker container: give --docker-image too")
    if args.num_instances < 1:
        raise ConfigError(f"--num-instances must be at least 1 (got {args.num_instances})")
    extra = parse_model_args(args.model_args)
    flags = UserFlags(batch_size=args.batch_size, intra_threads=args.num_intra_threads,
                      inter_threads=args.num_inter_threads,
                      socket_id=None if args.socket_id == -1 else args.socket_id,
                      num_cores=None if args.num_cores == -1 else args.num_cores,
                      data_format=args.data_format,
                      num_instances=args.num_instances if args.num_instances > 1 else None,
                      cores_per_instance=args.numa_cores_per_instance)
    return RunConfig(flags=flags, model=ModelConfig(path=args.in_graph, input_node=args.input_node,
                                                    output_node=args.output_node),
                     backend=args.backend or FRAMEWORKS[args.framework], precision=args.precision,
                     warmup_steps=extra.get("warmup_steps"), steps=extra.get("steps"),
                     output_dir=args.output_dir, verbose=args.verbose,
                     command_line=(PROG, *argv),
                     data=DataConfig((args.data_location,), workers=args.data_num_intra_threads)
                     if args.data_location else None,
                     scenario="accuracy" if args.accuracy_only else "benchmark")


def parameters_block(args: argparse.Namespace, config: RunConfig, batch_size: int) -> list[str]:
    """The `Running with parameters:` block Model Zoo's start.sh prints."""
    rows = [
        ("USE_CASE", "image_recognition"), ("FRAMEWORK", args.framework),
        ("IN_GRAPH", args.in_graph or "(built-in ResNet-50 v1.5, random weights)"),
        ("DATASET_LOCATION", args.data_location or "None (synthetic data)"),
        ("SOCKET_ID", args.socket_id), ("MODEL_NAME", args.model_name), ("MODE", args.mode),
        ("PRECISION", args.precision), ("BATCH_SIZE", batch_size),
        ("NUM_CORES", args.num_cores), ("NUM_INSTANCES", args.num_instances),
        ("NUMA_CORES_PER_INSTANCE", args.numa_cores_per_instance),
        ("NUM_INTRA_THREADS", args.num_intra_threads),
        ("NUM_INTER_THREADS", args.num_inter_threads),
        ("BENCHMARK_ONLY", not args.accuracy_only), ("ACCURACY_ONLY", args.accuracy_only),
        ("OUTPUT_DIR", args.output_dir), ("VERBOSE", args.verbose),
        ("WARMUP_STEPS", config.warmup_steps), ("STEPS", config.steps),
    ]
    return ["Running with parameters:"] + [f"    {name}: {value}" for name, value in rows]


def container_settings(args: argparse.Namespace, config: RunConfig) -> dict[str, object]:
    """The flags as the environment variables start.sh reads in the container."""
    return {
        "MODEL_NAME": args.model_name, "FRAMEWORK": args.framework, "BACKEND": args.backend,
        "PRECISION": args.precision, "MODE": args.mode, "BATCH_SIZE": args.batch_size,
        "SOCKET_ID": args.socket_id, "NUM_CORES": args.num_cores,
        "NUM_INSTANCES": args.num_instances,
        "NUMA_CORES_PER_INSTANCE": args.numa_cores_per_instance,
        "NUM_INTRA_THREADS": args.num_intra_threads, "NUM_INTER_THREADS": args.num_inter_threads,
        "DATA_FORMAT": args.data_format, "INPUT_NODE": args.input_node,
        "OUTPUT_NODE": args.output_node, "BENCHMARK_ONLY": str(bool(args.benchmark_only)),
        "ACCURACY_ONLY": str(bool(args.accuracy_only)), "VERBOSE": str(bool(args.verbose)),
        "WARMUP_STEPS": config.warmup_steps, "STEPS": config.steps,
    }


def run_in_docker(args: argparse.Namespace, config: RunConfig) -> int:
    """The same run inside `--docker-image`; its exit code."""
    environ = dict(os.environ)
    if config.model.path:
        file_model(config.model, environ)  # a bad model file fails here, not in the container
    run = plan_container(container_settings(args, config), config.backend, args.docker_image,
                         in_graph=args.in_graph, data_location=args.data_location,
                         output_dir=args.output_dir,
                         cache_dir=str(default_cache_dir(environ)),
                         binds_memory=args.socket_id != -1 or config.flags.multi_instance,
                         debug=args.debug, environ=environ)
    docker = check_docker(environ)
    print("Running in Docker image " + args.docker_image + ":")
    print("  " + shlex.join(run.argv(docker)))
    for host, inside, mode in run.mounts:
        print(f"  {host} mounted on: {inside} ({mode})")
    return run_container(run, docker, environ)


def run(args: argparse.Namespace, argv: Sequence[str]) -> int:
    config = to_run_config(args, argv)
    if args.docker_image:
        return run_in_docker(args, config)

    def header(out: Console) -> None:
        batch = 128 if args.batch_size == -1 else args.batch_size
        for line in parameters_block(args, config, batch):
            out.line(line)
        if not args.benchmark_only and not args.accuracy_only:
            out.line("NOTE: neither --benchmark-only nor --accuracy-only given: running the benchmark")
        if args.data_num_inter_threads:
            out.line("NOTE: --data-num-inter-threads has no equivalent: rn50 decodes in "
                     "--data-num-intra-threads worker processes")
        if args.disable_tcmalloc:
            out.line("NOTE: --disable-tcmalloc has no effect: rn50 never preloads tcmalloc")

    benchmark(config, header=header)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    return run_command(lambda a: run(a, argv), args, prog=PROG)


if __name__ == "__main__":
    sys.exit(main())
