"""The `rn50` command line: thin; builds configs, calls the API, maps errors to exit codes."""

from __future__ import annotations

import argparse
import importlib.util
from dataclasses import replace
from pathlib import Path
import json
import math
import os
import sys
import traceback
from typing import Callable, Sequence

from . import __version__, interrupts
from .api import (benchmark, benchmark_engines, check_parity, dry_run, launch_plans, parse_backends,
                  unavailable_engines)
from .backends import capabilities, real_engines
from .backends import names as backend_names
from .data.build import build_tfrecords
from .config import PRECISIONS, CalibrationConfig, DataConfig, ModelConfig, RunConfig
from .report.classify import ClassifyPrinter, ClassifyWriter, ShardedWriter
from .emit import emit_env, emit_python
from .errors import ConfigError, OutputError, Rn50Error
from .export import FORMATS, export
from .fetch import KNOWN_MODELS, fetch_model
from .models.detect import STATE_DICT, detect_format
from .models.resolve import file_model
from .instances import SMT_CHOICES
from .models.metadata import INTERPOLATIONS, PRESETS
from .models.provenance import write_sidecar
from .platform import detect_platform, parse_cpulist
from .quantize import quantizers
from .report.console import (comparison_table, instance_plan_lines, platform_lines, preset_lines,
                             settings_table)
from .report.files import check_writable_file, write_json
from .results import ComparisonResult
from .settings import BINDINGS, UserFlags, plan_processes
from .topology import load_topology


class OneLineParser(argparse.ArgumentParser):
    """argparse that reports a usage error as one line and exit code 2."""

    def error(self, message: str):  # noqa: D102 - argparse API
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def add_settings_flags(parser: argparse.ArgumentParser, mode: bool = True) -> None:
    group = parser.add_argument_group("runtime settings (default: the seed's recommendations)")
    group.add_argument("--batch-size", "-b", type=int, help="images per step; -1 = 128 "
                       "(default: 1 for --mode latency, 128 for --mode throughput)")
    if mode:
        group.add_argument("--mode", choices=("latency", "throughput"),
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
    group.add_argument("--num-instances", type=int, help="run this many benchmark processes "
                       "together, each on its own group of physical cores (never spanning a "
                       "NUMA node); throughput is aggregated")
    group.add_argument("--cores-per-instance", type=cores_per_instance, metavar="N|socket",
                       help="physical cores per instance (as many instances as fit, or "
                       "--num-instances of them); 'socket' = one instance per socket")
    group.add_argument("--smt", choices=SMT_CHOICES, default="exclude",
                       help="SMT siblings of an instance's cores: exclude (default: one thread "
                       "per physical core) or include (one thread per logical CPU)")
    group.add_argument("--topology", metavar="FILE",
                       help="plan for a recorded machine instead of this one: `lscpu`, "
                       "`lscpu -p` output or `rn50 info --json` (with bench: --dry-run only)")


def add_data_flags(parser: argparse.ArgumentParser, location: bool = True) -> None:
    group = parser.add_argument_group("real images")
    if location:
        group.add_argument("--data-location", "-d", action="append", metavar="PATH",
                           help="TFRecords (a folder or files), class folders DIR/<label>/, "
                           "a folder of images (+ val_map.txt), or a file list; repeatable")
    group.add_argument("--labels-file", help="class folder names in label order, one per line")
    group.add_argument("--data-workers", type=int, help="decode processes (default: one per "
                       "8 cores, at least 1; 0 decodes in the engine process)")
    group.add_argument("--no-decode-shortcut", action="store_true",
                       help="always decode JPEGs at full size (no DCT-domain downscaling)")
    group.add_argument("--strict", action="store_true",
                       help="stop at the first bad image or record instead of skipping it")
    group.add_argument("--max-images", type=int, help="use at most this many images")
    group.add_argument("--no-graph-preprocessing", action="store_true",
                       help="normalise in NumPy in the engine process, not inside the engine's "
                       "graph (OpenVINO, ONNX Runtime take uint8 crops by default)")


def add_calibration_flags(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("INT8 calibration (with --precision int8)")
    group.add_argument("--calibration-data", action="append", metavar="PATH",
                       help="real images to calibrate on, preprocessed as for inference "
                       "(default: synthetic images, with a warning that accuracy is unknown)")
    group.add_argument("--calibration-size", type=int, default=300,
                       help="calibration images (default 300)")
    group.add_argument("--holdout", type=int, default=100, help="further images, not used "
                       "for calibration, on which INT8 is compared with FP32 (default 100)")
    group.add_argument("--max-accuracy-drop", type=points, metavar="POINTS",
                       help="refuse an INT8 model that loses more top-1 points than this on "
                       "the labelled held-out images")


def calibration_config(args: argparse.Namespace) -> CalibrationConfig:
    data = (DataConfig(tuple(args.calibration_data), labels_file=args.labels_file
                       if hasattr(args, "labels_file") else None)
            if args.calibration_data else None)
    return CalibrationConfig(data, args.calibration_size, args.holdout, args.max_accuracy_drop)


def data_config(args: argparse.Namespace, paths=None, **extra) -> DataConfig | None:
    paths = paths if paths is not None else getattr(args, "data_location", None)
    if not paths:
        if getattr(args, "strict", False):
            raise ConfigError("--strict stops at the first bad image of real data: it needs "
                              "--data-location")
        return None
    return DataConfig(tuple(paths), labels_file=args.labels_file, workers=args.data_workers,
                      shortcut=not args.no_decode_shortcut, strict=args.strict,
                      max_images=args.max_images,
                      graph_preprocessing=not args.no_graph_preprocessing, **extra)


def cores_per_instance(text: str) -> int | str:
    if text == "socket":
        return text
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of cores or 'socket' "
                                         f"(got {text!r})") from None


def platform_for(args: argparse.Namespace):
    """This machine, or the recorded one named by --topology."""
    return load_topology(args.topology) if args.topology else detect_platform()


def user_flags(args: argparse.Namespace) -> UserFlags:
    return UserFlags(batch_size=args.batch_size, mode=getattr(args, "mode", None),
                     intra_threads=args.num_intra_threads,
                     inter_threads=args.num_inter_threads, streams=args.streams,
                     socket_id=args.socket_id, num_cores=args.num_cores, binding=args.bind,
                     data_format=args.data_format, num_instances=args.num_instances,
                     cores_per_instance=args.cores_per_instance, smt=args.smt,
                     precision=getattr(args, "precision", None) or "fp32")


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(prog="rn50", description="Fast ResNet-50 inference on CPUs: "
                           "benchmarks with the recommended runtime settings applied.")
    parser.add_argument("--version", action="version", version=f"rn50 {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=OneLineParser)
    common = argparse.ArgumentParser(add_help=False)  # flags every command takes
    common.add_argument("--verbose", "-v", action="store_true",
                        help="show tracebacks on errors")
    _bench_parser(sub, common)
    _check_parity_parser(sub, common)
    _export_parser(sub, common)
    _fetch_model_parser(sub, common)
    _accuracy_parser(sub, common)
    _classify_parser(sub, common)
    _quantize_parser(sub, common)
    _build_tfrecords_parser(sub, common)
    _mlperf_parser(sub, common)
    _serve_parser(sub, common)
    _loadtest_parser(sub, common)
    _tune_parser(sub, common)
    _report_parser(sub, common)
    _profile_parser(sub, common)
    _info_parser(sub, common)
    return parser


def _bench_parser(sub, common: argparse.ArgumentParser) -> None:
    bench = sub.add_parser("bench", parents=[common],
                            help="benchmark ResNet-50 (synthetic or real images)",
                           description="Benchmark ResNet-50 inference on synthetic images "
                           "(or real ones with --data-location) in pinned child process(es), "
                           "printing the settings beside the figures.")
    add_model_flags(bench, backend_help=engines_help() + ", null (no engine: harness "
                    "overhead); a comma-separated list or 'all' runs each and prints one "
                    "comparison table")
    bench.add_argument("--warmup-steps", type=int, help="untimed steps first "
                       "(default: 10 steps or 5 s, whichever first)")
    bench.add_argument("--steps", type=int, help="timed steps (default: 50 steps or 30 s, "
                       "whichever first)")
    bench.add_argument("--duration", type=seconds, help="timed seconds at least; with --steps, "
                       "whichever ends later")
    bench.add_argument("--output-dir", default="rn50_logs", help="where the log and JSON go "
                       "(default: ./rn50_logs)")
    bench.add_argument("--json", dest="json_path", help="also write the JSON result here")
    bench.add_argument("--timeout", type=seconds, help="kill the benchmark process if it runs "
                       "longer than this many seconds (a hung engine); default: no limit")
    add_data_flags(bench)
    bench.add_argument("--report", action="store_true", help="also write an HTML report of the "
                       "run (plots, settings) beside its JSON (needs 'rn50[report]')")
    bench.add_argument("--dry-run", action="store_true", help="print the settings and the exact "
                       "command and environment of each process, and run nothing")
    add_settings_flags(bench)
    bench.set_defaults(func=cmd_bench)


def _check_parity_parser(sub, common: argparse.ArgumentParser) -> None:
    parity = sub.add_parser("check-parity", parents=[common],
                             help="compare engines' outputs on the same images",
                            description="Run the same synthetic images through every installed "
                            "engine (each in its own pinned process) and compare the outputs.")
    parity.add_argument("--model", "-m", help="model file (default: the built-in ResNet-50)")
    parity.add_argument("--backend", help="comma-separated engines (default: all installed that "
                        "can run the model; the first is the reference)")
    parity.add_argument("--batch-size", type=int, default=4, help="images compared (default 4)")
    parity.add_argument("--precision", choices=("fp32", "bfloat16"), default="fp32",
                        help="what every engine runs (default fp32); bfloat16 is held to BF16 "
                        "rounding")
    parity.add_argument("--json", dest="json_path", help="write the comparison here")
    parity.add_argument("--cache-dir", help="model cache")
    parity.add_argument("--input-node")
    parity.add_argument("--output-node")
    parity.set_defaults(func=cmd_parity)


def _export_parser(sub, common: argparse.ArgumentParser) -> None:
    exp = sub.add_parser("export", parents=[common],
                          help="write the built-in ResNet-50 as ONNX, OpenVINO IR, "
                         "TF .pb or SavedModel, or TorchScript",
                         description="Write the built-in ResNet-50 (same weights in every "
                         "format; the .pb uses Model Zoo's node names input -> predict), or "
                         "convert a torchvision ResNet-50 state_dict.")
    exp.add_argument("--format", "-f", required=True, choices=sorted(FORMATS))
    exp.add_argument("--output", "-o", help="file to write (default: in the current folder)")
    exp.add_argument("--model", "-m", help="a torchvision ResNet-50 state_dict to convert instead")
    exp.add_argument("--data-format", choices=("NHWC", "NCHW"), default="NHWC",
                     help="input layout of a .pb (default NHWC, as Model Zoo's graph)")
    exp.add_argument("--seed", type=int, default=0, help="seed of the built-in weights")
    exp.add_argument("--cache-dir", help="model cache")
    exp.add_argument("--force", action="store_true", help="replace an existing file")
    exp.set_defaults(func=cmd_export)


def _fetch_model_parser(sub, common: argparse.ArgumentParser) -> None:
    fetch = sub.add_parser("fetch-model", parents=[common],
                            help="download a pretrained ResNet-50 (verified)",
                           description="Download a well-known pretrained ResNet-50, resuming "
                           "an interrupted transfer and verifying its checksum.")
    fetch.add_argument("name", nargs="?", help=f"one of: {', '.join(KNOWN_MODELS)}")
    fetch.add_argument("--list", action="store_true", help="list the known models")
    fetch.add_argument("--dest", default="models", help="folder to write to (default ./models)")
    fetch.add_argument("--url", help="download from this address instead (a mirror)")
    fetch.add_argument("--sha256", help="expected SHA-256 (or a prefix of it)")
    fetch.add_argument("--max-bytes", type=int, help="stop (and delete the partial file) past "
                       "this size (default: 120 MiB for a known model, 1 GiB for --url)")
    fetch.set_defaults(func=cmd_fetch)


def _accuracy_parser(sub, common: argparse.ArgumentParser) -> None:
    acc = sub.add_parser("accuracy", parents=[common],
                          help="top-1/top-5 accuracy on labelled images",
                         description="Top-1 and top-5 accuracy over labelled images (ImageNet "
                         "TFRecords, class folders, or images + val_map.txt), printing Model "
                         "Zoo's 'Processed N images' lines as it goes.")
    add_model_flags(acc)
    add_data_flags(acc)
    acc.add_argument("--output-dir", default="rn50_logs")
    acc.add_argument("--json", dest="json_path")
    acc.add_argument("--timeout", type=seconds)
    add_ray_flags(acc)
    add_settings_flags(acc)
    acc.set_defaults(func=cmd_accuracy, batch_default=64)


def add_ray_flags(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("on a Ray cluster (pip install 'rn50[ray]')")
    group.add_argument("--ray", nargs="?", const="auto", metavar="ADDRESS",
                       help="run with Ray Data: auto (the running cluster, default), local "
                       "(start one in this command) or HOST:PORT")
    group.add_argument("--ray-actors-per-node", type=int, default=1,
                       help="engine actors per node (default 1)")
    group.add_argument("--ray-decode-cpus", type=number_in(0, 1024, "CPUs above 0",
                                                           open_low=True), default=0.5,
                       help="CPUs Ray reserves per node (and per task) for decoding "
                       "(default 0.5)")
    group.add_argument("--shard-rows", type=int, default=100_000, help="with --ray and "
                       "--output DIR/: rows per part file (default 100000)")
    group.add_argument("--ray-cluster", metavar="NODESxCPUS", help="with --dry-run: plan for "
                       "this cluster (e.g. 4x32 or 2x16,1x8) instead of a running one")
    group.add_argument("--dry-run", action="store_true", help="with --ray: print the plan "
                       "(actors per node, CPUs and threads per actor, batch) and run nothing")


def ray_config(args: argparse.Namespace, scenario: str, data: DataConfig):
    from .cluster.run import RayConfig

    if args.ray_actors_per_node < 1:
        raise ConfigError(f"--ray-actors-per-node must be at least 1 "
                          f"(got {args.ray_actors_per_node})")
    return RayConfig(scenario_config(args, scenario, data), args.ray,
                     args.ray_actors_per_node, args.ray_decode_cpus, data.top_k)


def ray_dry_run(args: argparse.Namespace, scenario: str, data: DataConfig) -> int:
    from .cluster.run import dry_run

    if not args.ray:
        raise ConfigError("--dry-run plans a Ray run: add --ray (and --ray-cluster NODESxCPUS "
                          "to plan for a cluster that is not running)")
    print("\n".join(dry_run(ray_config(args, scenario, data), args.ray_cluster)))
    return 0


def _classify_parser(sub, common: argparse.ArgumentParser) -> None:
    cls = sub.add_parser("classify", parents=[common],
                          help="top-k ImageNet labels of images",
                         description="Classify image files, folders or TFRecords: the top-k "
                         "ImageNet classes with their names. With --output the results are "
                         "written as they come; re-running resumes where it stopped.")
    cls.add_argument("paths", nargs="+", metavar="PATH")
    add_model_flags(cls)
    add_data_flags(cls, location=False)
    cls.add_argument("--top-k", "-k", type=int, default=5)
    cls.add_argument("--format", choices=("table", "csv", "jsonl"), default="table")
    cls.add_argument("--output", "-o", help="write here (.csv or .jsonl), appending and "
                     "resuming; locked while a run writes it")
    cls.add_argument("--force-new", action="store_true", help="--output holds another run's "
                     "results: set that file aside (renamed, not deleted) and start again")
    cls.add_argument("--output-dir", default="rn50_logs")
    cls.add_argument("--timeout", type=seconds)
    add_ray_flags(cls)
    add_settings_flags(cls)
    cls.set_defaults(func=cmd_classify, batch_default=8)


def _quantize_parser(sub, common: argparse.ArgumentParser) -> None:
    quant = sub.add_parser("quantize", parents=[common],
                            help="write an INT8 model (NNCF for OpenVINO, "
                           "onnxruntime.quantization for ONNX Runtime, torch.ao FX for PyTorch)",
                           description="Post-training INT8 quantization, calibrated on real "
                           "images preprocessed as for inference; compares INT8 with FP32 on "
                           "held-out images. The result is cached and also copied to --output.")
    quant.add_argument("--model", "-m", help="model file (default: the built-in ResNet-50)")
    quant.add_argument("--backend", default="openvino", choices=tuple(quantizers()))
    quant.add_argument("--output", "-o", help="copy the INT8 model here (" + ", ".join(
                       f"{q.suffix} for {name}" for name, q in quantizers().items()) + ")")
    quant.add_argument("--labels-file")
    quant.add_argument("--cache-dir")
    quant.add_argument("--force", action="store_true", help="replace an existing --output")
    add_preprocessing_flags(quant)
    add_calibration_flags(quant)
    quant.set_defaults(func=cmd_quantize)


def _build_tfrecords_parser(sub, common: argparse.ArgumentParser) -> None:
    build = sub.add_parser("build-tfrecords", parents=[common],
                            help="turn DIR/<label>/<image> folders into "
                           "sharded ImageNet-style TFRecords (the seed's build_image_data.py)",
                           description="Write sharded TFRecords of tf.train.Example from "
                           "DIR/<label>/<image> folders, as TensorFlow's build_image_data.py "
                           "does (labels from 1, shuffled, RGB JPEG). No TensorFlow needed.")
    build.add_argument("--train-directory", "--train_directory", dest="train_directory")
    build.add_argument("--validation-directory", "--validation_directory",
                       dest="validation_directory")
    build.add_argument("--output-directory", "--output_directory", dest="output_directory",
                       required=True)
    build.add_argument("--labels-file", "--labels_file", dest="labels_file",
                       help="one folder name per line, in label order (default: the sorted "
                       "sub-folders)")
    build.add_argument("--train-shards", "--train_shards", dest="train_shards", type=int,
                       default=2)
    build.add_argument("--validation-shards", "--validation_shards", dest="validation_shards",
                       type=int, default=2)
    build.add_argument("--num-threads", "--num_threads", dest="num_threads", type=int,
                       default=2)
    build.add_argument("--strict", action="store_true",
                       help="stop at the first file that is not a readable image")
    build.set_defaults(func=cmd_build_tfrecords)


def _mlperf_parser(sub, common: argparse.ArgumentParser) -> None:
    mlp = sub.add_parser("mlperf", parents=[common],
                         help="MLPerf Inference scenarios through the official LoadGen",
                         description="Run ResNet-50 under MLPerf LoadGen (SingleStream, "
                         "MultiStream, Server, Offline) by the official mlperf.conf rules, on "
                         "pinned engine workers; LoadGen's own logs are kept and read back. "
                         "Needs pip install 'rn50[mlperf]'.")
    mlp.add_argument("--scenario", choices=("SingleStream", "MultiStream", "Server", "Offline"))
    mlp.add_argument("--mode", dest="mlperf_mode", default="performance",
                     choices=("performance", "accuracy", "find-peak"),
                     help="performance (default), accuracy (top-1 from LoadGen's accuracy "
                     "log), or find-peak (Server: the highest QPS within the latency target)")
    mlp.add_argument("--rules", action="store_true", help="print the ResNet-50 rules and exit")
    add_model_flags(mlp)
    add_data_flags(mlp)
    mlp.add_argument("--target-qps", type=number_in(0, 1e9, "QPS above 0", open_low=True),
                     help="Server's target (default: half the warm-up throughput); Offline's "
                     "expected QPS")
    mlp.add_argument("--target-latency-ms", type=number_in(0, 1e6, "ms above 0", open_low=True),
                     help="Server's p99 latency target (default: mlperf.conf's 15 ms)")
    mlp.add_argument("--samples-per-query", type=int, help="MultiStream (default 8)")
    mlp.add_argument("--duration", type=seconds, help="minimum seconds (default: the rules' 600)")
    mlp.add_argument("--count", type=int, help="minimum queries (default: the rules')")
    mlp.add_argument("--performance-sample-count", type=int, dest="performance_samples",
                     help="images held in memory (default: the rules' 1024, or every image "
                     "given with --data-location)")
    mlp.add_argument("--user-conf", help="a LoadGen user.conf, applied last")
    mlp.add_argument("--smoke", action="store_true", help="a run of about a second: LoadGen "
                     "says INVALID (too short), and rn50 labels it so")
    mlp.add_argument("--output-dir", default="rn50_logs")
    add_settings_flags(mlp, mode=False)
    mlp.set_defaults(func=cmd_mlperf)


def _serve_parser(sub, common: argparse.ArgumentParser) -> None:
    srv = sub.add_parser("serve", parents=[common], help="an HTTP image-recognition server "
                         "(KServe v2 protocol) with dynamic batching",
                         description="Serve ResNet-50 over HTTP: KServe v2 inference protocol "
                         "(tensors or encoded images), POST /v1/classify for curl, Prometheus "
                         "/metrics; requests are batched dynamically onto pinned engine "
                         "workers. Needs pip install 'rn50[serve]'.")
    add_model_flags(srv)
    srv.add_argument("--host", default="127.0.0.1", help="address to listen on (default "
                     "127.0.0.1: this machine only)")
    srv.add_argument("--port", type=int, default=8000, help="0 picks a free port")
    srv.add_argument("--max-batch", type=int, default=16, help="images per engine batch")
    srv.add_argument("--max-delay-ms", type=number_in(0, 1e4, "ms 0..10000"), default=5.0,
                     help="how long a batch waits to fill (default 5)")
    srv.add_argument("--max-queue", type=int, default=256, help="requests waiting at most; "
                     "past it 429 with Retry-After")
    srv.add_argument("--max-body-mb", type=number_in(0, 4096, "MB above 0", open_low=True),
                     default=64.0, help="request body cap (413 past it)")
    srv.add_argument("--deadline", type=seconds, default=30.0, help="seconds a request may "
                     "take (504 past it)")
    srv.add_argument("--decode-workers", type=int, default=2, help="image decode processes")
    srv.add_argument("--batches-in-flight", type=int, help="batches each engine worker holds "
                     "at once (default: the requests its engine runs in parallel, e.g. "
                     "OpenVINO's streams; more keeps it busier, fewer lets batches fill)")
    srv.add_argument("--access-log", action="store_true", help="one line per request")
    srv.add_argument("--output-dir", default="rn50_logs")
    add_settings_flags(srv, mode=False)
    srv.set_defaults(func=cmd_serve)


def _loadtest_parser(sub, common: argparse.ArgumentParser) -> None:
    about = ("Send inference requests to a KServe v2 server (rn50 serve, OpenVINO Model "
             "Server, Triton) and report achieved QPS and latency percentiles; open-loop "
             "latency counts from each request's scheduled time. Needs 'rn50[serve]'.")
    lt = sub.add_parser("loadtest", parents=[common], description=about, help="measure a "
                        "KServe v2 server under load (open or closed loop, or a p99 sweep)")
    lt.add_argument("url", help="the server, e.g. http://127.0.0.1:8000")
    lt.add_argument("--model", default="resnet50", help="model name on the server")
    lt.add_argument("--rate", type=number_in(0, 1e6, "requests/s above 0", open_low=True),
                    help="open loop: Poisson arrivals at this rate")
    lt.add_argument("--concurrency", type=int, help="closed loop: this many clients")
    lt.add_argument("--duration", type=seconds, default=10.0, help="seconds per measurement")
    lt.add_argument("--images", help="a folder of images to send (default: synthetic tensors)")
    lt.add_argument("--sweep", action="store_true", help="find the highest rate meeting "
                    "--p99-target-ms")
    lt.add_argument("--p99-target-ms", type=number_in(0, 1e6, "ms above 0", open_low=True))
    lt.add_argument("--cpus", type=cpu_list, help="pin the load generator to these CPUs "
                    "(e.g. 14-15: cores the server does not use), so it does not take CPU "
                    "from the engine")
    lt.add_argument("--json", dest="json_path", help="write the result here")
    lt.set_defaults(func=cmd_loadtest)


def _tune_parser(sub, common: argparse.ArgumentParser) -> None:
    tune = sub.add_parser("tune", parents=[common], help="search engine x precision x batch x "
                          "streams x instances for the best latency and throughput here",
                          description="A staged, pruned search of real `rn50 bench` runs "
                          "(checkpointed, resumable); prints the Pareto front of throughput vs "
                          "p99 latency and three recommendations as commands.")
    tune.add_argument("--backends", help="engines to search, comma-separated (default: every "
                      "installed engine)")
    tune.add_argument("--precisions", default=",".join(PRECISIONS),
                      help=f"precisions to search (default: {','.join(PRECISIONS)})")
    tune.add_argument("--model", help="a model file (default: the built-in ResNet-50)")
    tune.add_argument("--latency-target-ms", type=number_in(0, 1e6, "ms above 0",
                                                             open_low=True),
                      help="recommend the highest throughput with p99 within this")
    tune.add_argument("--budget", type=duration, default=600.0,
                      help="time for the whole search, e.g. 90s, 10m, 1h (default 10m)")
    tune.add_argument("--point-seconds", type=seconds, default=3.0,
                      help="timed seconds per point, at least 8 steps (default 3)")
    tune.add_argument("--max-batch", type=int, default=128, help="largest batch (default 128)")
    tune.add_argument("--output-dir", default="rn50_tune", help="points, logs and tune.json "
                      "(default ./rn50_tune)")
    tune.add_argument("--resume", action="store_true", help="continue the tune in --output-dir "
                      "without measuring its points again")
    tune.set_defaults(func=cmd_tune)


def cmd_tune(args: argparse.Namespace) -> int:
    from .tune.run import TuneConfig, tune

    precisions = tuple(p.strip() for p in args.precisions.split(",") if p.strip())
    unknown = [p for p in precisions if p not in PRECISIONS]
    if unknown or not precisions:
        raise ConfigError(f"--precisions {args.precisions}: choose from {', '.join(PRECISIONS)}")
    if args.max_batch < 1:
        raise ConfigError(f"--max-batch must be at least 1 (got {args.max_batch})")
    backends = parse_backends(args.backends) if args.backends else None
    tune(TuneConfig(tuple(backends) if backends else None, precisions, args.latency_target_ms,
                    args.budget, args.output_dir, args.resume, args.max_batch,
                    args.point_seconds, ModelConfig(args.model), tuple(sys.argv)))
    return 0


def _report_parser(sub, common: argparse.ArgumentParser) -> None:
    rep = sub.add_parser("report", parents=[common], help="one self-contained HTML report "
                         "(plots, Pareto front, every configuration) from rn50 results",
                         description="Read rn50 result files or folders (bench, bench --backend "
                         "all, tune, mlperf, loadtest, profile) and write one HTML file that "
                         "opens without a network (plotly.js embedded); --png writes the same "
                         "charts as PNG, --csv the table. Needs pip install 'rn50[report]'.")
    rep.add_argument("results", nargs="+", metavar="RESULT_OR_DIR")
    rep.add_argument("-o", "--output", default="report.html", help="default report.html")
    rep.add_argument("--png", metavar="DIR", help="also write each chart as PNG here")
    rep.add_argument("--csv", metavar="FILE", help="also write the configurations as CSV")
    rep.set_defaults(func=cmd_report)


def cmd_report(args: argparse.Namespace) -> int:
    from .report.html import write_report

    check_writable_file(args.output, "--output", ".html")
    if args.csv:
        check_writable_file(args.csv, "--csv", ".csv")
    written = write_report(args.results, args.output, args.png, args.csv)
    skipped = len(written["skipped"])
    print(f"Report: {written['html']} ({len(written['charts'])} charts, {written['rows']} "
          f"configurations{f', {skipped} file(s) skipped' if skipped else ''})")
    for path in written.get("png", []):
        print(f"PNG: {path}")
    if written.get("csv"):
        print(f"CSV: {written['csv']}")
    return 0


def _profile_parser(sub, common: argparse.ArgumentParser) -> None:
    prof = sub.add_parser("profile", parents=[common], help="per-layer times from the engine's "
                          "own counters, FLOPs and % of the CPU's peak per layer",
                          description="Run the model on one pinned worker with the engine's "
                          "profiler on (OpenVINO performance counters, ONNX Runtime's profiler) "
                          "and say where the step's time goes: per layer and per layer type, "
                          "attained GFLOP/s against the precision's peak, and a roofline "
                          "verdict (memory- or compute-bound).")
    prof.add_argument("--backend", default="openvino", choices=("openvino", "onnxruntime"),
                      help="the engine (default openvino; not torch: its frozen graph's "
                      "oneDNN-prepacked convolutions emit no profiler events)")
    prof.add_argument("--precision", default="fp32", choices=PRECISIONS)
    prof.add_argument("--model", help="a model file (default: the built-in ResNet-50)")
    prof.add_argument("--batch-size", "-b", type=int, default=1, help="default 1")
    prof.add_argument("--steps", type=int, default=20, help="profiled steps (default 20)")
    prof.add_argument("--warmup-steps", type=int, default=5, help="default 5")
    prof.add_argument("--top", type=int, default=15, help="layers shown (all in the JSON)")
    prof.add_argument("--output-dir", default="rn50_logs")
    prof.add_argument("--json", dest="json_path", help="also write the JSON result here")
    prof.set_defaults(func=cmd_profile)


def cmd_profile(args: argparse.Namespace) -> int:
    from .profiling import ProfileConfig, profile

    if args.batch_size < 1:
        raise ConfigError(f"--batch-size must be at least 1 (got {args.batch_size})")
    if args.json_path:
        check_writable_file(args.json_path, "--json")
    profile(ProfileConfig(args.backend, args.precision, args.batch_size, args.steps,
                          args.warmup_steps, ModelConfig(args.model), args.output_dir,
                          args.json_path, args.top, tuple(sys.argv)))
    return 0


def _info_parser(sub, common: argparse.ArgumentParser) -> None:
    info = sub.add_parser("info", parents=[common],
                           help="show this CPU and the recommended settings",
                          description="Show the platform and the recommended settings with "
                          "the reason for each; --emit prints them as a snippet for your code.")
    info.add_argument("--json", action="store_true", help="print platform and settings as JSON")
    info.add_argument("--emit", choices=("env", "python"),
                      help="print the settings as shell exports or as Python for each engine")
    info.add_argument("--preprocessing", action="store_true", dest="list_preprocessing",
                      help="list the preprocessing presets and their fields")
    add_settings_flags(info)
    info.set_defaults(func=cmd_info)


def cmd_bench(args: argparse.Namespace) -> int:
    config = RunConfig(flags=user_flags(args), model=model_config(args),
                       backend=args.backend, precision=args.precision,
                       warmup_steps=args.warmup_steps, steps=args.steps, duration=args.duration,
                       output_dir=args.output_dir, json_path=args.json_path, verbose=args.verbose,
                       timeout=args.timeout, data=data_config(args),
                       calibration=calibration_config(args), command_line=tuple(sys.argv))
    if args.dry_run:
        print("\n".join(dry_run(config, platform_for(args))))
        return 0
    if args.topology:
        raise ConfigError(f"--topology {args.topology}: a recorded machine cannot run a "
                          "benchmark here; add --dry-run to see what would run there")
    if args.report:
        from .report.render import need

        need("plotly")
    if args.backend in backend_names():
        record = benchmark(config)
        if args.report:
            _bench_report(Path(record["log_path"]).with_suffix(".json"))
        return 0
    model = file_model(config.model, os.environ) if args.model else None
    backends = parse_backends(args.backend, model)
    if not backends:
        raise ConfigError("--backend all: no engine that can run this model is installed")
    if args.backend == "all":
        skipped = unavailable_engines(model)
        print(f"Engines: {', '.join(backends)}" + "".join(
            f"\n  skipped {name}: {reason.replace(f'--backend {name}: ', '').replace(f'--backend {name} ', '')}"
            for name, reason in skipped.items()))
    summary = benchmark_engines(config, backends)
    print()
    print(f"Side by side (same settings, each engine in its own process), batch "
          f"{config.flags.batch_size or 'default'}:")
    print("\n".join(comparison_table(ComparisonResult.from_dict(summary).runs)))
    print(f"Comparison JSON: {summary['path']}")
    if args.report:
        _bench_report(Path(summary["path"]))
    failed = [name for name, run in summary["runs"].items() if run.get("status") != "ok"]
    if failed:
        print(f"rn50: error: engine(s) failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


def _bench_report(json_path: Path) -> None:
    from .report.html import write_report

    html = json_path.with_suffix(".html")
    written = write_report([str(json_path)], str(html))
    print(f"Report: {html} ({len(written['charts'])} charts)")


def cmd_parity(args: argparse.Namespace) -> int:
    model = ModelConfig(args.model, args.cache_dir, input_node=args.input_node,
                        output_node=args.output_node)
    backends = parse_backends(args.backend) if args.backend else None
    if args.json_path:
        check_writable_file(args.json_path, "--json")
    report = check_parity(model, backends, batch_size=args.batch_size, precision=args.precision)
    print(f"Parity on {args.batch_size} synthetic images, {args.precision} on every engine, "
          f"reference {report['reference']} (agree: same top-1 and every probability within "
          f"{report['tolerance']:g}):")
    print(f"{'engine':<12} {'max |dp|':>10} {'max rel dp':>10} {'max |dlogit|':>12} "
          f"{'top-1 agree':>11}  verdict")
    for name, c in report["comparisons"].items():
        if "error" in c:
            print(f"{name:<12} failed: {c['error']}")
            continue
        logit = "-" if c["logits_max_abs_diff"] is None else f"{c['logits_max_abs_diff']:.2e}"
        print(f"{name:<12} {c['max_abs_probability_diff']:>10.2e} "
              f"{c['max_rel_probability_diff']:>10.2e} {logit:>12} "
              f"{c['top1_agreement']:>11.0%}  {'agree' if c['agree'] else 'DIFFER'}")
    if args.json_path:
        write_json(args.json_path, report)
    if not report["agree"]:
        print("rn50: error: engines disagree (see above)", file=sys.stderr)
        return 1
    return 0


def cmd_fetch(args: argparse.Namespace) -> int:
    if args.list or not args.name:
        for name, known in KNOWN_MODELS.items():
            print(f"{name:<18} {known.description}\n{'':<18} {known.url}")
        return 0 if args.list else 2
    path = fetch_model(args.name, args.dest, url=args.url, sha256=args.sha256,
                       max_bytes=args.max_bytes)
    print(f"Model ready: {path}  (run: rn50 bench --model {path})")
    if detect_format(path) == STATE_DICT:  # a torchvision checkpoint: ONNX for the other engines
        onnx_path = path.with_suffix(".onnx")
        if importlib.util.find_spec("torch") is None:
            print(f"For OpenVINO/ONNX Runtime, convert it: rn50 export --model {path} --format onnx "
                  "(needs pip install 'rn50[torch]')")
        elif not onnx_path.exists():
            export("onnx", str(onnx_path), ModelConfig(str(path)), os.environ)
            print(f"Converted for OpenVINO/ONNX Runtime: {onnx_path}")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    path = export(args.format, args.output, ModelConfig(args.model, args.cache_dir, seed=args.seed),
                  os.environ, data_format=args.data_format, force=args.force)
    print(f"Wrote {path}")
    return 0


def engines_help() -> str:
    """The engines and what each runs, from their declared capabilities."""
    parts = [f"{name}{' (default)' if name == 'openvino' else ''} "
             f"[{', '.join(capabilities(name).precisions)}]" for name in real_engines()]
    return "inference engine: " + ", ".join(parts) + " (pip install 'rn50[NAME]')"


def add_model_flags(parser: argparse.ArgumentParser, backend_help: str | None = None) -> None:
    """The model, engine and precision flags of bench, accuracy and classify."""
    backend_help = backend_help or engines_help()
    parser.add_argument("--model", "-m", help="model file (.onnx, OpenVINO .xml, TF .pb, "
                        "SavedModel, .keras, TorchScript, torchvision .pth); default: the "
                        "built-in ResNet-50 v1.5 with random weights")
    parser.add_argument("--backend", default="openvino", help=backend_help)
    parser.add_argument("--input-node", help="input tensor name of a TF graph (default: detected)")
    parser.add_argument("--output-node", help="output tensor name of a TF graph "
                        "(default: detected)")
    parser.add_argument("--class-offset", type=int, choices=(0, 1),
                        help="index of the first ImageNet class in the output (default: 1 for "
                        "1001-class models, else 0)")
    parser.add_argument("--precision", default="fp32", choices=PRECISIONS,
                        help="numeric precision (default: fp32); bfloat16 needs avx512_bf16 or "
                        "AMX; int8 quantizes the model once, cached (" + ", ".join(
                            f"{name} with {q.module}" for name, q in quantizers().items()) + ")")
    parser.add_argument("--cache-dir", help="model cache (default: $RN50_CACHE_DIR or "
                        "~/.cache/rn50)")
    add_preprocessing_flags(parser)
    add_calibration_flags(parser)


def channel_values(text: str) -> list[float]:
    """--mean/--std: three comma-separated numbers, or one for every channel."""
    try:
        values = [float(v) for v in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected 3 numbers like 0.485,0.456,0.406 "
                                         f"(got {text!r})") from None
    if len(values) == 1:
        values *= 3
    if len(values) != 3 or not all(math.isfinite(v) for v in values):
        raise argparse.ArgumentTypeError(f"expected 3 finite numbers (got {text!r})")
    return values


def number_in(low: float, high: float, expected: str, open_low: bool = False):
    """An argparse type: a finite float in low..high (above `low` with `open_low`)."""
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            value = float("nan")
        if not (low < value <= high if open_low else low <= value <= high):
            raise argparse.ArgumentTypeError(f"expected {expected} (got {text!r})")
        return value
    return parse


def cpu_list(text: str) -> tuple[int, ...]:
    """A kernel CPU list such as 0-3,8 (at least one CPU)."""
    try:
        cpus = tuple(sorted(set(parse_cpulist(text))))
    except ValueError:
        cpus = ()
    if not cpus or cpus[0] < 0:
        raise argparse.ArgumentTypeError(f"expected CPUs like 2,3 or 0-3 (got {text!r})")
    return cpus


seconds = number_in(0, 1e9, "a number of seconds above 0", open_low=True)  # --duration, --timeout


def duration(text: str) -> float:
    """90, 90s, 10m, 1.5h -> seconds (above 0)."""
    units = {"s": 1, "m": 60, "h": 3600}
    scale = units.get(text[-1:].lower(), 1)
    try:
        value = float(text[:-1] if text[-1:].lower() in units else text) * scale
    except ValueError:
        value = math.nan
    if not value > 0 or math.isinf(value):
        raise argparse.ArgumentTypeError(f"expected a duration like 90s, 10m or 1h (got {text!r})")
    return value


points = number_in(0, 100, "percentage points 0..100")  # --max-accuracy-drop
crop_pct = number_in(0.1, 1.0, "a fraction in 0.1..1")


def positive_values(text: str) -> list[float]:
    values = channel_values(text)
    if min(values) <= 0:
        raise argparse.ArgumentTypeError(f"every value must be above 0 (got {text!r})")
    return values


def input_size(text: str) -> int:
    if not text.isdigit() or not 32 <= int(text) <= 1024:
        raise argparse.ArgumentTypeError(f"expected 32..1024 pixels (got {text!r})")
    return int(text)


def add_preprocessing_flags(parser: argparse.ArgumentParser) -> None:
    """The model's expected preprocessing: a preset, then any field overridden."""
    group = parser.add_argument_group(
        "preprocessing (default: the model's own metadata, else its origin; "
        "rn50 info --preprocessing lists the presets)")
    group.add_argument("--preprocessing", choices=tuple(PRESETS), help="preset to start from")
    group.add_argument("--mean", type=channel_values, help="per-channel mean, in the model's "
                       "channel order and on its --scale (e.g. 0.485,0.456,0.406 or 127.5)")
    group.add_argument("--std", type=positive_values, help="per-channel std (e.g. 128)")
    group.add_argument("--scale", choices=("0-1", "0-255"), help="pixel values before mean/std")
    group.add_argument("--channel-order", choices=("RGB", "BGR"))
    group.add_argument("--input-size", type=input_size, help="crop size in pixels (for models "
                       "whose input size is not fixed)")
    group.add_argument("--crop-pct", type=crop_pct, help="centre crop / resized shorter side "
                       "(0.875: resize to 256, crop 224)")
    group.add_argument("--interpolation", choices=INTERPOLATIONS)


def preprocessing_overrides(args: argparse.Namespace) -> dict | None:
    """The preprocessing flags given, as the overrides the model's metadata yields to."""
    given = {"preset": args.preprocessing, "mean": args.mean, "std": args.std,
             "scale": args.scale, "channel_order": args.channel_order,
             "input_size": args.input_size, "crop_pct": args.crop_pct,
             "interpolation": args.interpolation}
    return {k: v for k, v in given.items() if v is not None} or None


def model_config(args: argparse.Namespace) -> ModelConfig:
    """The model flags of bench, accuracy, classify and quantize."""
    return ModelConfig(args.model, args.cache_dir, input_node=getattr(args, "input_node", None),
                       output_node=getattr(args, "output_node", None),
                       class_offset=getattr(args, "class_offset", None),
                       preprocessing=preprocessing_overrides(args))


def scenario_config(args: argparse.Namespace, scenario: str, data: DataConfig) -> RunConfig:
    flags = replace(user_flags(args), scenario_batch=args.batch_default)
    return RunConfig(flags=flags, model=model_config(args),
                     backend=args.backend, precision=args.precision, warmup_steps=0,
                     output_dir=args.output_dir, json_path=getattr(args, "json_path", None),
                     verbose=args.verbose, timeout=args.timeout, command_line=tuple(sys.argv),
                     data=data, scenario=scenario, calibration=calibration_config(args))


def cmd_accuracy(args: argparse.Namespace) -> int:
    data = data_config(args)
    if data is None:
        raise ConfigError("--data-location: required (labelled images to measure accuracy on)")
    if args.dry_run:
        return ray_dry_run(args, "accuracy", data)
    if args.ray:
        from .cluster.run import run_ray

        run_ray(ray_config(args, "accuracy", data), stream=sys.stdout)
        return 0
    benchmark(scenario_config(args, "accuracy", data))
    return 0


def classify_identity(args: argparse.Namespace) -> dict:
    """What makes two classify runs' results the same kind (so one may resume the other)."""
    from .models.cache import sha256_file

    if args.model:
        model = file_model(model_config(args), os.environ)
        digest = sha256_file(Path(model.path)) if os.path.isfile(model.path) else model.path
    else:
        digest = "built-in ResNet-50 v1.5 (seed 0)"
    return {"model": digest, "precision": args.precision, "class_offset": args.class_offset,
            "preprocessing": preprocessing_overrides(args) or "the model's own"}


def classify_writer(args: argparse.Namespace):
    """The table on stdout; a file (--output F.csv|.jsonl); or with --ray, part files in a
    folder (--output DIR/, or an existing folder)."""
    if not args.output:
        return ClassifyPrinter(args.format, args.top_k)
    if args.output.endswith("/") or os.path.isdir(args.output):
        if not args.ray:
            raise ConfigError(f"--output {args.output} is a folder: part files are written "
                              "with --ray; give a .csv or .jsonl file")
        if args.force_new:
            raise ConfigError("--force-new sets one file aside: with --output DIR/, use "
                              "another folder")
        return ShardedWriter(args.output, args.format, args.top_k, classify_identity(args),
                             args.shard_rows)
    return ClassifyWriter(args.output, args.format, args.top_k, classify_identity(args),
                          args.force_new)


def cmd_classify(args: argparse.Namespace) -> int:
    if args.dry_run:
        return ray_dry_run(args, "classify", data_config(args, paths=args.paths,
                                                         top_k=args.top_k))
    if args.force_new and not args.output:
        raise ConfigError("--force-new sets an existing --output file aside: give --output")
    writer = classify_writer(args)
    if getattr(writer, "set_aside", None):
        print(f"--force-new: the previous results are kept as {writer.set_aside}",
              file=sys.stderr)
    done = writer.done_keys()
    if done:
        print(f"Resuming: {len(done)} image(s) already in {args.output}", file=sys.stderr)
    data = data_config(args, paths=args.paths, top_k=args.top_k, skip_keys=tuple(sorted(done)))
    try:
        if args.ray:
            from .cluster.run import run_ray

            record = run_ray(ray_config(args, "classify", data), writer.write, frozenset(done))
        else:
            record = benchmark(scenario_config(args, "classify", data), stream=sys.stderr,
                               on_rows=writer.write)
    finally:
        writer.close()
    return 1 if record.get("skipped") and args.strict else 0


def cmd_quantize(args: argparse.Namespace) -> int:
    from .quantize import copy_model, int8_model, quantizers
    from .models.resolve import builtin_model, cache_folder

    suffix = quantizers()[args.backend].suffix
    if args.output and Path(args.output).suffix.lower() != suffix:
        raise OutputError(f"--output {args.output}: the {args.backend} INT8 model is written "
                          f"as {suffix}: name it *{suffix}")
    config = model_config(args)
    model = (file_model(config, os.environ) if args.model
             else builtin_model(config, os.environ, print))
    int8, info = int8_model(model, args.backend, calibration_config(args),
                            cache_folder(config, os.environ), print)
    if args.output:
        copy_model(Path(int8.path), Path(args.output), force=args.force)
        write_json(Path(args.output).with_suffix(".int8.json"), info)
        if int8.provenance:  # random weights and preprocessing travel with the copy
            write_sidecar(args.output, int8.provenance)
        print(f"Wrote {args.output} (and how it was made: "
              f"{Path(args.output).with_suffix('.int8.json')})")
    else:
        print(f"INT8 model: {int8.path}")
    return 0


def cmd_build_tfrecords(args: argparse.Namespace) -> int:
    summary = build_tfrecords(args.output_directory, args.labels_file, args.train_directory,
                              args.validation_directory, args.train_shards,
                              args.validation_shards, args.num_threads, args.strict,
                              log=lambda line: print(line, file=sys.stderr, flush=True))
    for name, split in summary.items():
        print(f"{name}: {split['images']} images in {len(split['files'])} shard(s) in "
              f"{args.output_directory}")
        if split["skipped"]:
            print(f"{name}: skipped {len(split['skipped'])} file(s):")
            for reason in split["skipped"]:
                print(f"  {reason}")
    return 0


def cmd_mlperf(args: argparse.Namespace) -> int:
    from .mlperf import run as mlperf
    from .mlperf.rules import rules_lines

    if args.rules:
        print("\n".join(rules_lines(mlperf.effective_rules(mlperf.loadgen()))))
        return 0
    if not args.scenario:
        raise ConfigError("--scenario is required (SingleStream, MultiStream, Server or "
                          "Offline), or --rules")
    run = RunConfig(flags=user_flags(args), model=model_config(args), backend=args.backend,
                    precision=args.precision, output_dir=args.output_dir,
                    verbose=args.verbose, data=data_config(args),
                    calibration=calibration_config(args), command_line=tuple(sys.argv))
    config = mlperf.MlperfConfig(
        run, args.scenario, args.mlperf_mode, args.target_qps, args.target_latency_ms,
        args.samples_per_query, args.duration, args.count, args.performance_samples,
        args.user_conf, args.smoke)
    try:
        mlperf.run_mlperf(config)
    except KeyboardInterrupt as exc:
        if mlperf.loadgen_thread_alive():  # LoadGen cannot be stopped: end the process now
            signum = interrupts.signal_of(exc)
            print(f"rn50: interrupted by {interrupts.describe(signum)}: "
                  f"{getattr(exc, 'detail', '')}", file=sys.stderr, flush=True)
            sys.stdout.flush()
            os._exit(128 + signum)
        raise
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    from .serve.config import ServeConfig
    from .serve.server import serve

    run = RunConfig(flags=user_flags(args), model=model_config(args), backend=args.backend,
                    precision=args.precision, output_dir=args.output_dir,
                    verbose=args.verbose, calibration=calibration_config(args),
                    command_line=tuple(sys.argv))
    return serve(ServeConfig(run, args.host, args.port, args.max_batch, args.max_delay_ms,
                             args.max_queue, args.max_body_mb, args.deadline,
                             args.decode_workers, args.access_log, args.batches_in_flight))


def cmd_loadtest(args: argparse.Namespace) -> int:
    if importlib.util.find_spec("httpx") is None:
        raise ConfigError("rn50 loadtest needs httpx: pip install 'rn50[serve]'")
    from .serve.loadtest import LoadConfig, result_lines, run_loadtest

    if args.concurrency is not None and args.concurrency < 1:
        raise ConfigError(f"--concurrency must be at least 1 (got {args.concurrency})")
    if args.json_path:
        check_writable_file(args.json_path, "--json")
    config = LoadConfig(args.url, args.model, args.rate, args.concurrency, args.duration,
                        args.images, sweep=args.sweep, p99_target_ms=args.p99_target_ms,
                        cpus=args.cpus)
    record = run_loadtest(config)
    print("\n".join(result_lines(record)))
    if args.json_path:
        write_json(args.json_path, record)
        print(f"Results JSON: {args.json_path}")
    return 0


def cmd_info(args: argparse.Namespace) -> int:
    if args.list_preprocessing:
        print("\n".join(preset_lines()))
        return 0
    platform = platform_for(args)
    processes = plan_processes(platform, user_flags(args), os.environ)
    settings = processes.base
    if args.emit == "env":
        sys.stdout.write(emit_env(settings, platform))
    elif args.emit == "python":
        sys.stdout.write(emit_python(settings, platform))
    elif args.json:
        data = {"platform": platform.to_dict(), "settings": settings.to_dict()}
        if processes.instances:
            data["instance_plan"] = processes.instances.to_dict()
        print(json.dumps(data, indent=2))
    else:
        print("Platform:")
        print("\n".join(platform_lines(platform)))
        print("Recommended settings:")
        print("\n".join(settings_table(settings)))
        if processes.instances:
            print("\n".join(instance_plan_lines(processes, launch_plans(processes, platform,
                                                                          "openvino"))))
    return 0


def run_command(func: Callable[[argparse.Namespace], int], args: argparse.Namespace,
                prog: str = "rn50") -> int:
    """Run a command; an Rn50Error becomes one line on stderr and its exit code; Ctrl-C or
    SIGTERM one line and 130 / 143; anything else one line naming it as a bug (the
    traceback with --verbose)."""
    verbose = getattr(args, "verbose", False)
    try:
        with interrupts.handled():
            return func(args)
    except Rn50Error as exc:
        if verbose:
            traceback.print_exc()
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt as exc:
        signum = interrupts.signal_of(exc)
        detail = getattr(exc, "detail", "")
        print(f"{prog}: interrupted by {interrupts.describe(signum)}"
              f"{': ' + detail if detail else ''}", file=sys.stderr)
        return 128 + signum
    except OSError as exc:  # a disk or system failure no command turned into an Rn50Error
        if verbose:
            traceback.print_exc()
        where = f": {exc.filename}" if exc.filename else ""
        print(f"{prog}: error: {exc.strerror or exc}{where}", file=sys.stderr)
        return 1
    except Exception as exc:  # noqa: BLE001 - a bug: one line, the traceback on request
        if verbose:
            traceback.print_exc()
        print(f"{prog}: internal error: {type(exc).__name__}: {exc} (a bug in rn50; "
              "--verbose shows the traceback)", file=sys.stderr)
        return 70


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return run_command(args.func, args)
