"""The `rn50` command line: thin; builds configs, calls the API, maps errors to exit codes."""

from __future__ import annotations

import argparse
import json
import os
import sys
import traceback
from typing import Callable, Sequence

from . import __version__
from .api import benchmark
from .config import PRECISIONS, ModelConfig, RunConfig
from .emit import emit_env, emit_python
from .errors import Rn50Error
from .platform import detect_platform
from .report.console import platform_lines, settings_table
from .settings import BINDINGS, UserFlags, recommend


class OneLineParser(argparse.ArgumentParser):
    """argparse that reports a usage error as one line and exit code 2."""

    def error(self, message: str):  # noqa: D102 - argparse API
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def add_settings_flags(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("runtime settings (default: the seed's recommendations)")
    group.add_argument("--batch-size", "-b", type=int, help="images per step; -1 = 128 "
                       "(default: 1 for --mode latency, 128 for --mode throughput)")
    group.add_argument("--mode", choices=("latency", "throughput"), default="latency",
                       help="what to optimise when --batch-size is not given (default: latency)")
    group.add_argument("--num-intra-threads", type=int, help="intra-op threads "
                       "(default: physical cores used)")
    group.add_argument("--num-inter-threads", type=int, help="inter-op threads (default: 1)")
    group.add_argument("--streams", type=int, help="parallel inference streams in the engine "
                       "(default: 1 at batch 1, engine's choice above)")
    group.add_argument("--socket-id", type=int, help="run on this socket's cores and memory "
                       "(NUMA-bound with numactl when installed)")
    group.add_argument("--num-cores", type=int, help="use only this many physical cores")
    group.add_argument("--data-format", choices=("NCHW", "NHWC"),
                       help="data layout of graphs rn50 builds (default: NCHW, the seed's)")
    group.add_argument("--bind", choices=BINDINGS, default="auto",
                       help="how to pin the benchmark process (default: numactl if installed, "
                       "else sched_setaffinity)")


def user_flags(args: argparse.Namespace) -> UserFlags:
    return UserFlags(batch_size=args.batch_size, mode=args.mode, intra_threads=args.num_intra_threads,
                     inter_threads=args.num_inter_threads, streams=args.streams,
                     socket_id=args.socket_id, num_cores=args.num_cores, binding=args.bind,
                     data_format=args.data_format)


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(prog="rn50", description="Fast ResNet-50 inference on CPUs: "
                           "benchmarks with the recommended runtime settings applied.")
    parser.add_argument("--version", action="version", version=f"rn50 {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=OneLineParser)

    bench = sub.add_parser("bench", help="benchmark ResNet-50 (synthetic data)",
                           description="Benchmark ResNet-50 inference on synthetic data in a "
                           "pinned child process, printing the settings beside the figures.")
    bench.add_argument("--model", "-m", help="model file (.onnx, OpenVINO .xml, TF .pb); "
                       "default: the built-in ResNet-50 v1.5 with random weights")
    bench.add_argument("--backend", default="openvino", help="inference engine: openvino "
                       "(default), onnxruntime, tensorflow, torch (pip install 'rn50[NAME]'), "
                       "null (no engine: harness overhead)")
    bench.add_argument("--input-node", help="input tensor name of a TF graph (default: detected)")
    bench.add_argument("--output-node", help="output tensor name of a TF graph (default: detected)")
    bench.add_argument("--precision", default="fp32", choices=PRECISIONS + ("bfloat16", "int8"),
                       help="numeric precision (default: fp32)")
    bench.add_argument("--warmup-steps", type=int, help="untimed steps first "
                       "(default: 10 steps or 5 s, whichever first)")
    bench.add_argument("--steps", type=int, help="timed steps (default: 50 steps or 30 s, "
                       "whichever first)")
    bench.add_argument("--duration", type=float, help="timed seconds at least; with --steps, "
                       "whichever ends later")
    bench.add_argument("--output-dir", default="rn50_logs", help="where the log and JSON go "
                       "(default: ./rn50_logs)")
    bench.add_argument("--json", dest="json_path", help="also write the JSON result here")
    bench.add_argument("--cache-dir", help="model cache (default: $RN50_CACHE_DIR or ~/.cache/rn50)")
    bench.add_argument("--verbose", "-v", action="store_true", help="tracebacks on errors")
    add_settings_flags(bench)
    bench.set_defaults(func=cmd_bench)

    info = sub.add_parser("info", help="show this CPU and the recommended settings",
                          description="Show the platform and the recommended settings with "
                          "the reason for each; --emit prints them as a snippet for your code.")
    info.add_argument("--json", action="store_true", help="print platform and settings as JSON")
    info.add_argument("--emit", choices=("env", "python"),
                      help="print the settings as shell exports or as Python for each engine")
    info.add_argument("--verbose", "-v", action="store_true", help="tracebacks on errors")
    add_settings_flags(info)
    info.set_defaults(func=cmd_info)
    return parser


def cmd_bench(args: argparse.Namespace) -> int:
    config = RunConfig(flags=user_flags(args),
                       model=ModelConfig(args.model, args.cache_dir, input_node=args.input_node,
                                         output_node=args.output_node),
                       backend=args.backend, precision=args.precision,
                       warmup_steps=args.warmup_steps, steps=args.steps, duration=args.duration,
                       output_dir=args.output_dir, json_path=args.json_path, verbose=args.verbose,
                       command_line=tuple(sys.argv))
    benchmark(config)
    return 0


def cmd_info(args: argparse.Namespace) -> int:
    platform = detect_platform()
    settings = recommend(platform, user_flags(args), os.environ)
    if args.emit == "env":
        sys.stdout.write(emit_env(settings, platform))
    elif args.emit == "python":
        sys.stdout.write(emit_python(settings, platform))
    elif args.json:
        print(json.dumps({"platform": platform.to_dict(), "settings": settings.to_dict()}, indent=2))
    else:
        print("Platform:")
        print("\n".join(platform_lines(platform)))
        print("Recommended settings:")
        print("\n".join(settings_table(settings)))
    return 0


def run_command(func: Callable[[argparse.Namespace], int], args: argparse.Namespace,
                prog: str = "rn50") -> int:
    """Run a command; an Rn50Error becomes one line on stderr and its exit code."""
    try:
        return func(args)
    except Rn50Error as exc:
        if getattr(args, "verbose", False):
            traceback.print_exc()
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return 130


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return run_command(args.func, args)
