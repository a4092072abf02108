"""What a loaded model expects and returns: layout, classes, background offset, preprocessing.

Decided from what the engine reports (input shape, output width) and from the
model's origin; the figures are recorded with every result so a later accuracy
run cannot silently mis-read a 1001-class model.
"""

from __future__ import annotations

PREPROCESSING = {
    "torchvision": {"resize": 256, "crop": 224, "scale": "0-1", "mean": [0.485, 0.456, 0.406],
                    "std": [0.229, 0.224, 0.225], "channels": "RGB"},
    "modelzoo": {"resize": 256, "crop": 224, "scale": "0-255", "mean": [123.68, 116.78, 103.94],
                 "std": [1.0, 1.0, 1.0], "channels": "RGB"},
}


def describe(source: str, model_format: str, input_name: str, layout: str,
             num_classes: int | None, class_offset: int | None = None,
             preprocessing: str | None = None) -> dict:
    """Metadata of a loaded image classifier (pure); explicit overrides win and say so."""
    if class_offset is None:
        offset, offset_reason = (1, "1001 outputs: background class at 0") if num_classes == 1001 \
            else (0, f"{num_classes} outputs")
    else:
        offset, offset_reason = class_offset, "set by --class-offset"
    if preprocessing is None:
        tf_style = model_format in ("tf-graphdef", "tf-savedmodel") or (
            input_name.split(":")[0] in ("input", "input_tensor") and num_classes == 1001)
        style = "modelzoo" if (tf_style and source == "file") else "torchvision"
        reason = ("TensorFlow/MLPerf-style model: mean subtraction on 0-255" if style == "modelzoo"
                  else "torchvision-style normalisation (the built-in model's)")
    else:
        style, reason = preprocessing, "set by --preprocessing"
    return {
        "input_layout": layout,
        "num_classes": num_classes,
        "class_offset": offset,
        "class_offset_reason": offset_reason,
        "background_class": offset == 1,
        "preprocessing": dict(PREPROCESSING[style], name=style, reason=reason),
    }
