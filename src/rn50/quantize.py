"""INT8 post-training quantization with the engines' own quantizers, cached, with an accuracy guard.

- OpenVINO: NNCF (`nncf.quantize`) on the model read by OpenVINO -> an INT8 IR.
- ONNX Runtime: `onnxruntime.quantization.quantize_static` -> a QDQ ONNX model
  (activations uint8, weights int8 per channel, as recommended for x86).
- PyTorch: FX graph-mode post-training quantization with the `x86` qconfig
  (`torch.ao.quantization`) on the built-in model or a torchvision state_dict
  -> a traced TorchScript file of quantized ops (uint8 activations, int8 weights).

Calibration images are real images preprocessed exactly as for inference (the
model's own recipe), or, when none are given, synthetic images — with a loud
warning that the accuracy of the result is then unknown. The result is cached
under the model cache, keyed by the model's SHA-256, the engine and its
version, the quantizer's version and the calibration set; a JSON beside it says
how it was made. The guard compares INT8 with FP32 on held-out images (not used
for calibration): top-1 on labels when there are labels, else top-1 agreement;
with `max_accuracy_drop` a model that loses more is refused.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
from dataclasses import replace
from pathlib import Path
from typing import Callable

import numpy as np

from .config import CalibrationConfig
from .errors import ConfigError, EngineError, ModelError
from .models import ModelSpec
from .models.cache import atomic_write_bytes, sha256_file
from .models.detect import IR, ONNX, TORCHSCRIPT
from .measure.progress import heartbeat
from .models.metadata import describe

# engine: (module that quantizes, extra that installs it, suffix of the INT8 model)
def quantizers() -> dict:
    """Engine -> its Quantizer (package, extra, file suffix), as the backends declare."""
    from .backends import capabilities, names

    return {name: capabilities(name).quantizer for name in names()
            if capabilities(name).quantizer is not None}

SYNTHETIC_WARNING = ("WARNING: calibrating on synthetic images: the INT8 model's accuracy on "
                     "real images is UNKNOWN (give --calibration-data with real images)")


def _input_of(model: ModelSpec, path: str) -> tuple[str, str, tuple[int, ...], int | None]:
    """Input name, layout, batch-1 shape and class count, as OpenVINO reads the model."""
    import openvino as ov

    from .backends._base import batch_shape, image_layout

    ov_model = ov.Core().read_model(path)
    port = ov_model.inputs[0]
    dims = [d.get_length() if d.is_static else -1 for d in port.get_partial_shape()]
    layout = image_layout(dims)
    if layout is None:
        raise ModelError(f"model {model.path}: input shape {dims} is not an image tensor")
    width = ov_model.outputs[0].get_partial_shape()[-1]
    return port.any_name, layout, batch_shape(dims, layout, 1, model.input_size()), (
        width.get_length() if width.is_static else None)


def calibration_images(model: ModelSpec, path: str, cal: CalibrationConfig,
                       log: Callable[[str], None]) -> tuple[list[np.ndarray],
                                                             list[tuple[np.ndarray, int | None]],
                                                             dict]:
    """(calibration inputs, held-out (input, label) pairs, description), batch 1 each."""
    from .data.pipeline import Pipeline
    from .data.preprocess import spec_from_metadata
    from .data.sources import open_source
    from .data.synthetic import synthetic_batch

    name, layout, shape, classes = _input_of(model, path)
    meta = describe(model.source, model.format, name, layout, classes, model.class_offset,
                    model.preprocessing, model.provenance)
    if cal.data is None:
        log(SYNTHETIC_WARNING)
        calib = [synthetic_batch(shape, layout, model.mean, model.std, seed=i)
                 for i in range(cal.size)]
        held = [(synthetic_batch(shape, layout, model.mean, model.std, seed=cal.size + i), None)
                for i in range(cal.holdout)]
        return calib, held, {"kind": "synthetic", "images": cal.size, "metadata": meta}
    size = shape[2] if layout == "NCHW" else shape[1]
    prep = spec_from_metadata(meta["preprocessing"], layout, crop=size)
    source = open_source(cal.data.paths, cal.data.labels_file)
    images: list[tuple[np.ndarray, int | None]] = []
    with Pipeline(source, prep, 1, workers=cal.data.to_job(os.cpu_count() or 1)["workers"],
                  max_images=cal.size + cal.holdout) as pipeline:
        for batch in pipeline.batches():
            images += [(batch.array[i:i + 1], u.label) for i, u in enumerate(batch.units)]
    if len(images) <= cal.holdout:
        raise ConfigError(f"--calibration-data: {len(images)} usable images; need more than the "
                          f"{cal.holdout} held out for the accuracy check (--holdout "
                          f"{cal.holdout}: lower it, or give more images)")
    calib = [x for x, _ in images[:len(images) - cal.holdout]][:cal.size]
    held = images[len(calib):]
    log(f"Calibrating on {len(calib)} real image(s) from {source.description}; "
        f"{len(held)} held out for the accuracy check")
    return calib, held, {"kind": "images", "description": source.description,
                         "images": len(calib), "holdout": len(held), "metadata": meta}


def _predict(backend: str, path: str, inputs: list[np.ndarray], int8_hint: bool) -> np.ndarray:
    """Top-1 output index of each input (batch 1), in this process."""
    if backend == "torch" and int8_hint:
        import torch

        torch.backends.quantized.engine = "x86"
        module = torch.jit.load(path, map_location="cpu")
        with torch.inference_mode():
            return np.array([int(module(torch.from_numpy(x)).argmax()) for x in inputs])
    if backend in ("openvino", "torch"):  # torch's FP32 reference: the same model, on OpenVINO
        import openvino as ov

        config = {"INFERENCE_PRECISION_HINT": "f32"} if not int8_hint else {}
        request = ov.Core().compile_model(path, "CPU", config).create_infer_request()
        return np.array([int(np.argmax(request.infer({0: x})[0])) for x in inputs])
    import onnxruntime as ort

    session = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    return np.array([int(np.argmax(session.run(None, {name: x})[0])) for x in inputs])


def accuracy_guard(backend: str, fp32_path: str, int8_path: str,
                   held: list[tuple[np.ndarray, int | None]], class_offset: int) -> dict:
    """FP32 vs INT8 on held-out images: top-1 on labels, or top-1 agreement."""
    if not held:
        return {"images": 0}
    inputs = [x for x, _ in held]
    fp32 = _predict(backend, fp32_path, inputs, False)
    int8 = _predict(backend, int8_path, inputs, True)
    result = {"images": len(held), "top1_agreement": float(np.mean(fp32 == int8))}
    labels = [label for _, label in held]
    if all(label is not None for label in labels):
        truth = np.array(labels) + class_offset - 1  # output index of each label
        result["fp32_top1"] = float(np.mean(fp32 == truth))
        result["int8_top1"] = float(np.mean(int8 == truth))
        result["drop_points"] = 100 * (result["fp32_top1"] - result["int8_top1"])
    return result


def int8_model(model: ModelSpec, backend: str, cal: CalibrationConfig, cache_dir: Path,
               log: Callable[[str], None]) -> tuple[ModelSpec, dict]:
    """The INT8 version of `model` for `backend`: from the cache, or quantized now."""
    from .models.convert import onnx_for

    known = quantizers()
    if backend not in known:
        raise ConfigError(f"--precision int8: no quantizer for {backend}; use --backend "
                          f"{' or '.join(known)}")
    quantizer = known[backend]
    if importlib.util.find_spec(quantizer.module) is None:
        raise ConfigError(f"--precision int8 on {backend} needs {quantizer.module}: "
                          f"pip install 'rn50[{quantizer.extra}]'")
    if model.format == TORCHSCRIPT:
        if backend == "torch" and is_quantized(model.path):
            log(f"{model.path} is already quantized (INT8): used as it is")
            return _as_int8(model, Path(model.path), backend), {"already_quantized": True,
                                                                "path": model.path}
        raise ConfigError(f"--precision int8: {model.path} is a TorchScript file; quantize the "
                          "built-in model or a torchvision state_dict instead")
    source_path = model.path if model.format in (ONNX, IR) else onnx_for(model, log)
    if backend == "onnxruntime" and model.format == IR:
        raise ConfigError(f"--precision int8 on onnxruntime needs an ONNX model, not the "
                          f"OpenVINO IR {model.path}")
    if backend == "torch" and model.format == IR:
        raise ConfigError(f"--precision int8 on torch needs the built-in model or a torchvision "
                          f"state_dict, not the OpenVINO IR {model.path}")
    if is_quantized(source_path):  # a ready INT8 model is used as it is
        log(f"{model.path} is already quantized (INT8): used as it is")
        return _as_int8(model, Path(source_path), backend), {"already_quantized": True,
                                                              "path": source_path}
    versions = _versions(backend)
    digest = model.sha256 or sha256_file(Path(source_path))
    key = hashlib.sha256(json.dumps([digest, backend, versions, cal.identity()]).encode())
    out = (cache_dir / "int8" /
           f"{Path(source_path).stem}_{backend}_{key.hexdigest()[:16]}{quantizer.suffix}")
    info_path = out.with_name(out.name + ".int8.json")
    if out.exists() and info_path.exists():
        info = json.loads(info_path.read_text())
        log(f"INT8 model from the cache: {out} (made {info['created']})")
        _enforce(info["guard"], cal.max_accuracy_drop, out)
        return _as_int8(model, out, backend), dict(info, cached=True)
    info = _quantize_now(model, backend, source_path, cal, out, log)
    info.update(model_sha256=digest, versions=versions)
    atomic_write_bytes(info_path, json.dumps(info, indent=2).encode())
    _report_guard(info["guard"], log)
    _enforce(info["guard"], cal.max_accuracy_drop, out)
    return _as_int8(model, out, backend), dict(info, cached=False)


def _quantize_now(model: ModelSpec, backend: str, source_path: str, cal: CalibrationConfig,
                  out: Path, log: Callable[[str], None]) -> dict:
    """Calibrate, quantize with the engine's own quantizer, check against FP32: how it went."""
    from datetime import datetime

    out.parent.mkdir(parents=True, exist_ok=True)
    log(f"Quantizing {model.name} to INT8 for {backend} ...")
    calib, held, calibration = calibration_images(model, source_path, cal, log)
    try:
        with heartbeat(log, f"Quantizing ({len(calib)} calibration images)"):
            engine_module(backend).quantize(model, source_path, calib, out)
    except (ConfigError, ModelError):
        raise
    except Exception as exc:  # the quantizer's own failure
        raise EngineError(f"INT8 quantization failed: {type(exc).__name__}: "
                          f"{str(exc).splitlines()[0] if str(exc) else ''}") from exc
    with heartbeat(log, f"Comparing INT8 with FP32 on {len(held)} held-out images"):
        guard = accuracy_guard(backend, source_path, str(out), held,
                               calibration["metadata"]["class_offset"])
    return {"model": model.path, "backend": backend,
            "calibration": {k: v for k, v in calibration.items() if k != "metadata"},
            "guard": guard, "created": datetime.now().isoformat(timespec="seconds"),
            "path": str(out)}


def engine_module(backend: str):
    """The backend module that holds the engine's own `quantize(model, path, calib, out)`."""
    import importlib

    from .backends import _modules

    return importlib.import_module(_modules()[backend])


def is_quantized(path: str) -> bool:
    """True for an INT8 model: OpenVINO FakeQuantize nodes, ONNX QuantizeLinear nodes, or
    quantized ops in a TorchScript file."""
    if path.endswith(".xml"):
        with open(path, encoding="utf-8", errors="replace") as f:
            return 'type="FakeQuantize"' in f.read()
    if path.endswith((".pt", ".pth", ".ts")):
        return quantized_convolutions_in(path) > 0
    import onnx

    graph = onnx.load(path, load_external_data=False).graph
    return any(node.op_type in ("QuantizeLinear", "QLinearConv", "ConvInteger")
               for node in graph.node)


def _report_guard(guard: dict, log: Callable[[str], None]) -> None:
    if not guard.get("images"):
        log("No held-out images: INT8 accuracy not checked")
        return
    line = (f"INT8 vs FP32 on {guard['images']} held-out image(s): top-1 agreement "
            f"{guard['top1_agreement']:.1%}")
    if "drop_points" in guard:
        line += (f"; top-1 FP32 {guard['fp32_top1']:.2%}, INT8 {guard['int8_top1']:.2%} "
                 f"(drop {guard['drop_points']:.2f} points)")
    log(line)


def _enforce(guard: dict, max_drop: float | None, path: Path) -> None:
    if max_drop is None:
        return
    if "drop_points" not in guard:
        raise ConfigError("--max-accuracy-drop needs labelled held-out images (give "
                          "--calibration-data with labels)")
    if guard["drop_points"] > max_drop:
        raise ModelError(f"INT8 model {path} loses {guard['drop_points']:.2f} points of top-1 "
                         f"(FP32 {guard['fp32_top1']:.2%} -> INT8 {guard['int8_top1']:.2%}), "
                         f"more than --max-accuracy-drop {max_drop:g}: refused")


def quantized_convolutions_in(path: str) -> int:
    """How many quantized convolutions a TorchScript file's graph holds."""
    import torch

    from .backends.torch import quantized_convolutions

    try:
        module = torch.jit.load(path, map_location="cpu")
    except Exception:  # not TorchScript (a state_dict): not a quantized model
        return 0
    return quantized_convolutions(module)


def _as_int8(model: ModelSpec, path: Path, backend: str) -> ModelSpec:
    formats = {"openvino": IR, "onnxruntime": ONNX, "torch": TORCHSCRIPT}
    return replace(model, path=str(path), format=formats[backend], name=f"{model.name} INT8",
                   sha256=None)


def _versions(backend: str) -> dict[str, str]:
    from importlib.metadata import version

    if backend == "openvino":
        return {"openvino": version("openvino"), "nncf": version("nncf")}
    if backend == "torch":
        return {"torch": version("torch"), "quantizer": "torch.ao FX, x86 qconfig"}
    return {"onnxruntime": version("onnxruntime")}


def copy_model(source: Path, dest: Path, force: bool = False) -> None:
    """Copy a model file (and an IR's .bin) atomically; never over a file without `force`."""
    from .errors import OutputError

    pairs = [(source, dest)]
    if source.suffix == ".xml":
        pairs.append((source.with_suffix(".bin"), dest.with_suffix(".bin")))
    for _, target in pairs:
        if target.exists() and not force:
            raise OutputError(f"--output {target} exists (add --force to replace it)")
    dest.parent.mkdir(parents=True, exist_ok=True)
    for src, target in pairs:
        atomic_write_bytes(target, src.read_bytes())
