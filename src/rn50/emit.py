"""The recommended settings as copy/paste snippets for the user's own application (the seed's)."""

from __future__ import annotations

import shlex

from .platform import Platform
from .settings import Settings


def _header(settings: Settings, platform: Platform, comment: str) -> list[str]:
    return [f"{comment} rn50 recommended settings for {platform.model_name}: "
            f"{settings.intra_threads.value} intra-op threads, {settings.inter_threads.value} "
            f"inter-op thread(s), batch {settings.batch_size.value}"]


def emit_env(settings: Settings, platform: Platform) -> str:
    lines = _header(settings, platform, "#")
    for name, choice in sorted(settings.env.items()):
        lines.append(f"export {name}={shlex.quote(str(choice.value))}   # {choice.reason}")
    numactl = settings.numactl_args()
    if numactl:
        lines.append(f"# run your program under: numactl {' '.join(numactl)} python your_app.py")
    elif settings.binding.value == "sched_setaffinity":
        cpus = ",".join(str(c) for c in settings.cpus.value)
        lines.append(f"# pin your program to the chosen cores: taskset -c {cpus} python your_app.py")
    return "\n".join(lines) + "\n"


def emit_python(settings: Settings, platform: Platform) -> str:
    from .backends.onnxruntime import onnxruntime_options  # pure; imports no engine
    from .backends.openvino import openvino_config

    intra, inter = settings.intra_threads.value, settings.inter_threads.value
    ov_config = openvino_config(settings)
    ort_options = onnxruntime_options(settings)
    lines = _header(settings, platform, "#")
    lines += ["import os", ""]
    for name, choice in sorted(settings.env.items()):
        lines.append(f"os.environ[{name!r}] = {str(choice.value)!r}")
    if settings.binding.value != "none":
        lines.append(f"os.sched_setaffinity(0, {set(settings.cpus.value)!r})  # pin to the chosen cores")
    lines += [
        "",
        "# TensorFlow 2.x",
        "import tensorflow as tf",
        f"tf.config.threading.set_intra_op_parallelism_threads({intra})",
        f"tf.config.threading.set_inter_op_parallelism_threads({inter})",
        "# TensorFlow 1.x, as in the seed",
        f"config = tf.compat.v1.ConfigProto(intra_op_parallelism_threads={intra}, "
        f"inter_op_parallelism_threads={inter})",
        "session = tf.compat.v1.Session(config=config)",
        "",
        "# ONNX Runtime",
        "import onnxruntime as ort",
        "options = ort.SessionOptions()",
        f"options.intra_op_num_threads = {ort_options['intra_op_num_threads']}",
        f"options.inter_op_num_threads = {ort_options['inter_op_num_threads']}",
        f"options.execution_mode = ort.ExecutionMode.{ort_options['execution_mode']}",
        "options.graph_optimization_level = ort.GraphOptimizationLevel."
        f"{ort_options['graph_optimization_level']}",
        *(f"options.add_session_config_entry({key!r}, {value!r})"
          for key, value in ort_options["config_entries"].items()),
        "ort_session = ort.InferenceSession('model.onnx', options, providers=['CPUExecutionProvider'])",
        "",
        "# OpenVINO",
        "import openvino as ov",
        "core = ov.Core()",
        f"compiled = core.compile_model('model.xml', 'CPU', {ov_config!r})",
        "",
        "# PyTorch",
        "import torch",
        f"torch.set_num_threads({intra})",
        f"torch.set_num_interop_threads({inter})",
    ]
    return "\n".join(lines) + "\n"
