"""`rn50 export`: write the built-in ResNet-50 (or a torchvision checkpoint) in an engine's format.

Same weights in every format, so the seed's `--in-graph model.pb` path, ONNX
Runtime, OpenVINO and PyTorch can all be exercised without a download. Files
are written atomically and never over an existing file unless `force`.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Callable, Mapping

import numpy as np

from .backends import engine_env
from .config import ModelConfig
from .errors import ConfigError, OutputError
from .models.builtin import build_onnx, onnx_weights
from .models import provenance
from .models.detect import STATE_DICT
from .models.resolve import builtin_model, file_model

FORMATS = {"onnx": ".onnx", "openvino": ".xml", "pb": ".pb", "savedmodel": "",
           "torchscript": ".pt"}


def _weights(model: ModelConfig, environ: Mapping[str, str],
             log: Callable[[str], None]) -> tuple[dict[str, np.ndarray], dict]:
    """The weights to write, and the provenance to record beside them."""
    if model.path is None:
        spec = builtin_model(model, environ, log)
        return onnx_weights(spec.path), spec.provenance
    spec = file_model(model, environ)
    if spec.format != STATE_DICT:
        raise ConfigError(f"--model {spec.path} ({spec.format}): export converts the built-in model "
                          "or a torchvision ResNet-50 state_dict")
    from .models.state_dict import load_state_dict_weights

    return load_state_dict_weights(spec.path), spec.provenance


def _sidecar(target: Path) -> Path | None:
    return target.with_suffix(".bin") if target.suffix == ".xml" else None


def _check_free(target: Path, force: bool) -> None:
    for path in (target, _sidecar(target)):
        if path is not None and path.exists() and not force:
            raise OutputError(f"{path} already exists (use --force to replace it)")


def _write(target: Path, write: Callable[[Path], None]) -> None:
    """Write through a temporary folder beside the target, then move into place."""
    sidecar = _sidecar(target)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=target.parent, prefix=".rn50-export-") as tmp:
            staged = Path(tmp) / target.name
            write(staged)
            if sidecar is not None:
                os.replace(staged.with_suffix(".bin"), sidecar)
            if target.is_dir():  # a SavedModel folder being replaced (--force)
                shutil.rmtree(target)
            os.replace(staged, target)
    except OSError as exc:
        raise OutputError(f"cannot write {target}: {exc.strerror or exc}") from exc


def export(fmt: str, output: str | None, model: ModelConfig, environ: Mapping[str, str],
           data_format: str = "NHWC", force: bool = False,
           log: Callable[[str], None] = print) -> Path:
    """Write the model in `fmt` (onnx | openvino | pb | torchscript); return the path written."""
    if fmt not in FORMATS:
        raise ConfigError(f"--format {fmt}: choose one of {', '.join(FORMATS)}")
    stem = (f"resnet50_v1.5_builtin_seed{model.seed}" if model.path is None
            else Path(model.path).stem)
    target = Path(output or f"{stem}{FORMATS[fmt]}").expanduser().absolute()
    if FORMATS[fmt] and target.suffix != FORMATS[fmt]:
        raise ConfigError(f"--output {target}: a {fmt} file must end in {FORMATS[fmt]}")
    _check_free(target, force)
    weights, about = _weights(model, environ, log)

    def write(path: Path) -> None:
        if fmt == "onnx":
            proto = build_onnx(model.seed, weights)
            provenance.embed_onnx(proto, about)
            path.write_bytes(proto.SerializeToString())
        elif fmt == "openvino":
            import openvino as ov

            onnx_path = path.with_suffix(".onnx")
            onnx_path.write_bytes(build_onnx(model.seed, weights).SerializeToString())
            ov.save_model(ov.Core().read_model(str(onnx_path)), str(path), compress_to_fp16=False)
            onnx_path.unlink()
        elif fmt in ("pb", "savedmodel"):
            for key, value in engine_env("tensorflow").items():  # before TensorFlow loads
                os.environ.setdefault(key, value)
            from .models.tf_graph import build_graphdef, save_savedmodel

            if fmt == "pb":
                path.write_bytes(build_graphdef(weights, data_format))
            else:
                save_savedmodel(weights, str(path), data_format)
        else:
            from .models.torch_net import to_torchscript

            to_torchscript(weights).save(str(path))

    tf_format = fmt in ("pb", "savedmodel")
    log(f"Writing {fmt} ({data_format if tf_format else 'NCHW'} input) to {target} ...")
    _write(target, write)
    if fmt != "onnx":  # formats without a metadata field of their own
        try:
            provenance.write_sidecar(target, about)
        except OSError as exc:
            raise OutputError(f"cannot write {provenance.sidecar(target)}: "
                              f"{exc.strerror or exc}") from exc
    if model.path is None:
        log("NOTE: the built-in model has random weights: for speed measurements only")
    return target


__all__ = ["FORMATS", "export"]
