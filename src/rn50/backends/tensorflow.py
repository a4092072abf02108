"""TensorFlow backend: a frozen GraphDef (or SavedModel/Keras) run in a tf.compat.v1 Session.

The settings become the seed's ConfigProto (intra/inter-op threads); oneDNN is
switched on through TF_ENABLE_ONEDNN_OPTS=1 in the child's environment (set by
the launcher before TensorFlow loads) and OMP_NUM_THREADS / KMP_* apply to its
OpenMP. The built-in model is converted once to a GraphDef in the seed's data
layout (NCHW, or --data-format) and cached beside its ONNX file.

BF16 (`--precision bfloat16`, GraphDefs): grappler's oneDNN auto-mixed-precision
rewrite (RewriterConfig.auto_mixed_precision_onednn_bfloat16) turns the
convolutions and matrix products into BF16 with casts around them; one probe
run reads the rewritten partition graphs back, so the run reports the dtype the
convolutions really have, not only what was asked.
"""

from __future__ import annotations

import os
import time
from collections import Counter
from pathlib import Path

import numpy as np

from ..errors import EngineError, ModelError
from ..models import ModelSpec
from ..models.cache import get_or_build
from ..models.detect import GRAPHDEF, KERAS, ONNX, SAVEDMODEL
from ..models.tf_nodes import KNOWN_OUTPUTS, pick_nodes
from ..settings import Settings
from ._base import Capabilities, InputSpec, SyncSession, batch_shape, image_layout

# TensorFlow dtype names as rn50 reports executed precisions (OpenVINO's spelling)
CAPABILITIES = Capabilities(
    name="tensorflow", backend_class="TensorFlowBackend", engine_module="tensorflow",
    install="pip install 'rn50[tensorflow]'", formats=("tf-graphdef", "tf-savedmodel", "keras"),
    precisions=("fp32", "bfloat16"),
    reads_back="the session config as set (TensorFlow has no getter for its thread pools); "
               "the dtype of the convolutions in the partition graphs it ran (BF16)",
    env=(("TF_ENABLE_ONEDNN_OPTS", "1"), ("TF_CPP_MIN_LOG_LEVEL", "2")),
    noise=(r"^WARNING: All log messages before absl::InitializeLog",
           r"^I\d{4} .*port\.cc:\d+\] oneDNN custom operations are on",
           r"^I\d{4} .*cpu_feature_guard\.cc"))
REQUESTED_ONLY = ("session_intra_op_threads", "session_inter_op_threads")
DTYPE_NAMES = {"float32": "f32", "bfloat16": "bf16", "float16": "f16"}


def builtin_graphdef(model: ModelSpec, data_format: str, log=print) -> Path:
    """The built-in ONNX model as a cached GraphDef (same weights), in `data_format`."""
    from ..models.builtin import onnx_weights
    from ..models.tf_graph import build_graphdef

    path = Path(model.path).with_suffix(f".{data_format.lower()}.pb")
    path, _ = get_or_build(path, lambda: build_graphdef(onnx_weights(model.path), data_format),
                           {"from": model.path, "source_sha256": model.sha256,
                            "data_format": data_format}, log)
    return path


FP32_PRECISION = {"execution_precision": "f32",
                  "execution_precision_source": "TensorFlow runs an FP32 graph in FP32 unless "
                                                "auto-mixed precision is enabled (it is not)"}


def convolution_dtypes(session, input_name: str, output_name: str, example: np.ndarray) -> Counter:
    """Dtypes of the convolutions in the graphs TensorFlow really executes (after grappler)."""
    import tensorflow as tf

    options = tf.compat.v1.RunOptions(output_partition_graphs=True)
    metadata = tf.compat.v1.RunMetadata()
    session.run(f"{output_name}:0", {f"{input_name}:0": example}, options=options,
                run_metadata=metadata)
    dtypes = Counter()
    for graph in metadata.partition_graphs:
        for node in graph.node:
            if "Conv2D" in node.op and "T" in node.attr:
                name = tf.dtypes.as_dtype(node.attr["T"].type).name
                dtypes[DTYPE_NAMES.get(name, name)] += 1
    return dtypes


class TensorFlowSession(SyncSession):
    def __init__(self, run, input_spec: InputSpec, load_timings: dict[str, float], applied: dict,
                 num_classes: int | None, precision: dict = FP32_PRECISION):
        self._run = run
        self.num_classes = num_classes
        self.input_spec = input_spec
        self.load_timings = load_timings
        self._applied = applied
        self._precision = precision

    def run(self, batch: np.ndarray) -> np.ndarray:
        return self._run(batch)

    def applied_settings(self) -> dict:
        # a GraphDef session has no getter for its thread pools: those are "requested"
        requested = {k: v for k, v in self._applied.items() if k in REQUESTED_ONLY}
        applied = {k: v for k, v in self._applied.items() if k not in REQUESTED_ONLY}
        return {"requested": requested, "applied": applied, **self._precision}


class TensorFlowBackend:
    name = "tensorflow"
    formats = (GRAPHDEF, SAVEDMODEL, KERAS)

    def __init__(self) -> None:
        import tensorflow as tf

        self._tf = tf

    def versions(self) -> dict[str, str]:
        return {"tensorflow": self._tf.__version__}

    def load(self, model: ModelSpec, settings: Settings, precision: str,
             preprocess=None) -> TensorFlowSession:
        tf = self._tf
        if precision not in ("fp32", "bfloat16"):
            raise EngineError(f"--precision {precision}: the tensorflow backend runs fp32 and "
                              "bfloat16")
        intra, inter = int(settings.intra_threads.value), int(settings.inter_threads.value)
        config = tf.compat.v1.ConfigProto(intra_op_parallelism_threads=intra,
                                          inter_op_parallelism_threads=inter)
        if model.format in (SAVEDMODEL, KERAS):
            if precision != "fp32":
                raise EngineError(f"--precision {precision}: the tensorflow backend runs it on "
                                  f"frozen GraphDefs (.pb), not on {model.format} models like "
                                  f"{model.path}; use --backend openvino")
            return self._load_eager(model, settings, intra, inter)
        if precision == "bfloat16":
            from tensorflow.core.protobuf import rewriter_config_pb2

            config.graph_options.rewrite_options.auto_mixed_precision_onednn_bfloat16 = \
                rewriter_config_pb2.RewriterConfig.ON
        start = time.perf_counter()
        path, graph, input_node, output_node = self._read_graph(model, settings)
        read_s = time.perf_counter() - start
        tensor = graph.get_tensor_by_name(f"{input_node}:0")
        dims = [-1 if d is None else d for d in tensor.shape.as_list()] if tensor.shape.rank else []
        layout = image_layout(dims)
        if layout is None:
            raise ModelError(f"model {path}: input {input_node!r} has shape {tensor.shape}, "
                             "not an image tensor (N,H,W,3 or N,3,H,W)")
        shape = batch_shape(dims, layout, int(settings.batch_size.value), model.input_size())
        session = tf.compat.v1.Session(graph=graph, config=config)
        start = time.perf_counter()
        run = session.make_callable(f"{output_node}:0", feed_list=[f"{input_node}:0"])
        executed = FP32_PRECISION
        if precision == "bfloat16":
            probe_batch = dims[0] if dims and dims[0] > 0 else 1  # a fixed batch stays as is
            example = np.zeros(batch_shape(dims, layout, probe_batch, model.input_size()), np.float32)
            dtypes = convolution_dtypes(session, input_node, output_node, example)
            executed = {"execution_precision": ",".join(sorted(dtypes)) or "unknown",
                        "execution_precision_source": "read back from the partition graphs "
                        f"TensorFlow ran (convolutions: {dict(dtypes)})",
                        "convolution_precisions": dict(dtypes)}
        compile_s = time.perf_counter() - start
        applied = {"session_intra_op_threads": str(config.intra_op_parallelism_threads),
                   "session_inter_op_threads": str(config.inter_op_parallelism_threads),
                   "input_node": input_node, "output_node": output_node, "data_format": layout,
                   "TF_ENABLE_ONEDNN_OPTS": os.environ.get("TF_ENABLE_ONEDNN_OPTS", "unset"),
                   "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "unset"),
                   "auto_mixed_precision_onednn_bfloat16":
                   "ON" if precision == "bfloat16" else "default (off)"}
        out_shape = graph.get_tensor_by_name(f"{output_node}:0").shape
        classes = out_shape.as_list()[-1] if out_shape.rank else None
        return TensorFlowSession(run, InputSpec(input_node, shape, layout),
                                 {"read_s": read_s, "compile_s": compile_s}, applied, classes,
                                 executed)

    def _read_graph(self, model: ModelSpec, settings: Settings):
        """(path, tf.Graph, input node, output node) of a frozen GraphDef (the built-in model
        built as one, in the settings' layout)."""
        tf = self._tf
        path = model.path
        if model.format == ONNX and model.source == "builtin":
            path = str(builtin_graphdef(model, str(settings.data_layout.value)))
        elif model.format != GRAPHDEF:
            raise ModelError(f"model file {model.path} ({model.format}): the tensorflow backend "
                             "runs GraphDef, SavedModel and Keras files")
        graph_def = tf.compat.v1.GraphDef()
        try:
            graph_def.ParseFromString(Path(path).read_bytes())
            input_node, output_node = pick_nodes(graph_def, model.input_node, model.output_node,
                                                 path)
            graph = tf.Graph()
            with graph.as_default():
                tf.compat.v1.import_graph_def(graph_def, name="")
        except ModelError:
            raise
        except Exception as exc:  # DecodeError, ValueError from import_graph_def
            raise ModelError(f"model file {path} is not a valid TensorFlow GraphDef "
                             f"({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''})"
                             ) from exc
        return path, graph, input_node, output_node

    def _load_eager(self, model: ModelSpec, settings: Settings, intra: int,
                    inter: int) -> TensorFlowSession:
        """A SavedModel signature or a Keras model, run as a tf.function."""
        tf = self._tf
        tf.config.threading.set_intra_op_parallelism_threads(intra)
        tf.config.threading.set_inter_op_parallelism_threads(inter)
        start = time.perf_counter()
        try:
            if model.format == KERAS:
                keras_model = tf.keras.models.load_model(model.path, compile=False)
                spec = keras_model.inputs[0]
                input_name, dims = spec.name, list(spec.shape)
                fn = tf.function(lambda x: keras_model(x, training=False))
                output_name = "output"
                outputs = keras_model.outputs[0].shape
            else:
                loaded = tf.saved_model.load(model.path)
                signature = loaded.signatures["serving_default"]
                (input_name, spec), = signature.structured_input_signature[1].items()
                dims = spec.shape.as_list()
                keys = list(signature.structured_outputs)
                output_name = model.output_node or next(
                    (k for k in KNOWN_OUTPUTS if k in keys), keys[0])
                outputs = signature.structured_outputs[output_name].shape

                def fn(x, signature=signature, input_name=input_name, output_name=output_name):
                    return signature(**{input_name: x})[output_name]
        except (KeyError, ValueError) as exc:
            raise ModelError(f"model {model.path} has no usable serving signature ({exc})") from exc
        except Exception as exc:
            raise ModelError(f"model {model.path} could not be loaded by TensorFlow "
                             f"({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''})"
                             ) from exc
        read_s = time.perf_counter() - start
        dims = [-1 if d is None else d for d in dims]
        layout = image_layout(dims)
        if layout is None:
            raise ModelError(f"model {model.path}: input {input_name!r} has shape {dims}, "
                             "not an image tensor (N,H,W,3 or N,3,H,W)")
        shape = batch_shape(dims, layout, int(settings.batch_size.value), model.input_size())

        def run(x: np.ndarray) -> np.ndarray:
            return fn(tf.constant(x)).numpy()

        threading = tf.config.threading
        applied = {"intra_op_parallelism_threads": str(threading.get_intra_op_parallelism_threads()),
                   "inter_op_parallelism_threads": str(threading.get_inter_op_parallelism_threads()),
                   "input_node": input_name, "output_node": output_name, "data_format": layout,
                   "graph": "tf.function", "TF_ENABLE_ONEDNN_OPTS":
                   os.environ.get("TF_ENABLE_ONEDNN_OPTS", "unset")}
        classes = outputs[-1] if len(outputs) else None
        return TensorFlowSession(run, InputSpec(input_name, shape, layout),
                                 {"read_s": read_s, "compile_s": 0.0}, applied, classes)
