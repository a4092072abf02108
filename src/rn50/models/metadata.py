"""What a loaded model expects and returns: layout, classes, background offset, preprocessing.

Decided from what the engine reports (input shape, output width), from the
provenance a file carries (rn50 writes it into every export) and from the
model's origin; the figures are recorded with every result so a later accuracy
run cannot silently mis-read a 1001-class model.

Preprocessing is a data config, as timm's: each field comes from a preset, the
model's own metadata or a flag (in that order of precedence, lowest first) and
says which.
"""

from __future__ import annotations

import math

IMAGENET_MEAN, IMAGENET_STD = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]

PRESETS = {  # mean/std are in the model's channel order, on the given scale
    "torchvision": {"input_size": 224, "crop_pct": 0.875, "interpolation": "bilinear",
                    "channel_order": "RGB", "scale": "0-1", "mean": IMAGENET_MEAN,
                    "std": IMAGENET_STD,
                    "about": "torchvision/timm ImageNet eval: 0-1, ImageNet mean/std"},
    "modelzoo": {"input_size": 224, "crop_pct": 0.875, "interpolation": "tf-bilinear",
                 "channel_order": "RGB", "scale": "0-255", "mean": [123.68, 116.78, 103.94],
                 "std": [1.0, 1.0, 1.0],
                 "about": "Intel Model Zoo / TF-slim / MLPerf: 0-255 minus the channel means, "
                          "TF1 resize_bilinear"},
    "keras-caffe": {"input_size": 224, "crop_pct": 0.875, "interpolation": "bilinear",
                    "channel_order": "BGR", "scale": "0-255", "mean": [103.939, 116.779, 123.68],
                    "std": [1.0, 1.0, 1.0],
                    "about": "Keras applications ResNet50 (caffe mode): BGR, 0-255 minus the "
                             "channel means, no scaling"},
    "inception": {"input_size": 224, "crop_pct": 0.875, "interpolation": "bilinear",
                  "channel_order": "RGB", "scale": "0-1", "mean": [0.5, 0.5, 0.5],
                  "std": [0.5, 0.5, 0.5],
                  "about": "Inception / TF-slim v2 style: -1..1"},
}
FIELDS = ("input_size", "crop_pct", "interpolation", "channel_order", "scale", "mean", "std")
INTERPOLATIONS = ("bilinear", "bicubic", "nearest", "tf-bilinear")
FLAG_NAMES = {"input_size": "--input-size", "crop_pct": "--crop-pct",
              "interpolation": "--interpolation", "channel_order": "--channel-order",
              "scale": "--scale", "mean": "--mean", "std": "--std"}


def resize_for(input_size: int, crop_pct: float) -> int:
    """The shorter side to resize to before a centre crop of `input_size` (timm's rule)."""
    return int(math.floor(input_size / crop_pct + 1e-6))


def origin_preset(source: str, model_format: str, input_name: str,
                  num_classes: int | None) -> tuple[str, str]:
    """The preset a model's origin implies, and why."""
    tf_style = model_format in ("tf-graphdef", "tf-savedmodel") or (
        input_name.split(":")[0] in ("input", "input_tensor") and num_classes == 1001)
    if tf_style and source == "file":
        return "modelzoo", "TensorFlow/MLPerf-style model: mean subtraction on 0-255"
    return "torchvision", "torchvision-style normalisation (the built-in model's)"


def resolve_preprocessing(origin: tuple[str, str], embedded: dict | None = None,
                          overrides: dict | None = None) -> dict:
    """The preprocessing config: preset < the model's own metadata < flags, field by field.

    `origin` is (preset, reason) from the model's origin; `embedded` what the file
    says about itself; `overrides` the user's flags (`preset` for --preprocessing).
    Each field's source is kept under `sources`.
    """
    embedded, overrides = embedded or {}, overrides or {}
    if overrides.get("preset"):
        name, reason = overrides["preset"], "set by --preprocessing"
    elif embedded.get("preset") in PRESETS:
        name, reason = embedded["preset"], "from the model's metadata"
    else:
        name, reason = origin
    config = {field: PRESETS[name][field] for field in FIELDS}
    sources = {field: f"preset {name}" for field in FIELDS}
    for layer, label in ((embedded, "model metadata"), (overrides, None)):
        for field in FIELDS:
            if layer.get(field) is not None:
                config[field] = layer[field]
                sources[field] = label or f"flag {FLAG_NAMES[field]}"
    config["mean"], config["std"] = list(config["mean"]), list(config["std"])
    return dict(config, name=name, reason=reason, sources=sources,
                crop=config["input_size"], resize=resize_for(config["input_size"],
                                                            config["crop_pct"]))


def describe(source: str, model_format: str, input_name: str, layout: str,
             num_classes: int | None, class_offset: int | None = None,
             preprocessing: dict | None = None, provenance: dict | None = None) -> dict:
    """Metadata of a loaded image classifier (pure); explicit overrides win and say so."""
    provenance = provenance or {}
    if class_offset is not None:
        offset, offset_reason = class_offset, "set by --class-offset"
    elif provenance.get("class_offset") is not None:
        offset, offset_reason = provenance["class_offset"], "from the model's metadata"
    else:
        offset, offset_reason = (1, "1001 outputs: background class at 0") \
            if num_classes == 1001 else (0, f"{num_classes} outputs")
    origin = origin_preset(source, model_format, input_name, num_classes)
    return {
        "input_layout": layout,
        "num_classes": num_classes,
        "class_offset": offset,
        "class_offset_reason": offset_reason,
        "background_class": offset == 1,
        "preprocessing": resolve_preprocessing(origin, provenance.get("preprocessing"),
                                               preprocessing),
    }
