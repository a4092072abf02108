"""Image preprocessing as pure functions, driven by the model's metadata.

Two recipes, each reproducing what its models were trained with:

- `torchvision` (torchvision's ImageNet eval transform): resize the shorter side
  to 256 with PIL's bilinear filter (antialiased when shrinking, as torchvision
  does on PIL images), centre-crop 224, scale to 0-1, subtract mean and divide by
  std per channel.
- `modelzoo` (Intel Model Zoo / TF-slim ResNet-50 eval): aspect-preserving
  resize of the shorter side to 256 with TensorFlow 1's `resize_bilinear`
  (align_corners=False, no half-pixel centres, no antialiasing — reimplemented
  below in NumPy, because PIL's antialiased filter gives different pixels),
  centre-crop 224, keep 0-255 and subtract the channel means [123.68, 116.78, 103.94].

Workers do the geometric part (decode, resize, crop) and return uint8 HWC
crops; `normalize` turns a stack of crops into the model's float32 batch in its
layout, once per batch.

JPEG decode shortcut: with `shortcut=True` a JPEG much larger than needed is
decoded at 1/2, 1/4 or 1/8 scale in the DCT domain (`Image.draft`), never below
the resize target, before the same resize; the difference this makes is tested
against a full decode. `shortcut=False` turns it off.
"""

from __future__ import annotations

import io
import math
import warnings
from dataclasses import dataclass
from typing import Sequence

import numpy as np
from PIL import Image

MAX_PIXELS = 89_478_485  # Pillow's own decompression-bomb threshold


@dataclass(frozen=True)
class PreprocessSpec:
    """What to do to one image, from the model's metadata."""

    name: str  # torchvision | modelzoo
    resize: int  # shorter side after resizing
    crop: int  # square centre crop
    scale: str  # "0-1" or "0-255"
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    layout: str  # NCHW | NHWC

    @property
    def interpolation(self) -> str:
        return ("TF1 resize_bilinear (no antialiasing)" if self.name == "modelzoo"
                else "PIL bilinear (antialiased)")

    def to_dict(self) -> dict:
        return {"name": self.name, "resize": self.resize, "crop": self.crop, "scale": self.scale,
                "mean": list(self.mean), "std": list(self.std), "layout": self.layout,
                "interpolation": self.interpolation}


def spec_from_metadata(preprocessing: dict, layout: str, crop: int = 224) -> PreprocessSpec:
    """The recipe named in a model's metadata, for its input layout and size."""
    resize = round(crop * preprocessing["resize"] / preprocessing["crop"])
    return PreprocessSpec(preprocessing["name"], resize, crop, preprocessing["scale"],
                          tuple(preprocessing["mean"]), tuple(preprocessing["std"]), layout)


def resized_size(width: int, height: int, shorter: int, recipe: str = "torchvision"
                 ) -> tuple[int, int]:
    """(width, height) with the shorter side = `shorter`, aspect ratio kept.

    The longer side is truncated as torchvision's Resize does, or rounded half
    to even (`rint`) as TF-slim's `_smallest_size_at_least` does for `modelzoo`.
    """
    def longer(n_long: int, n_short: int) -> int:
        exact = n_long * shorter / n_short
        return max(1, int(np.rint(exact)) if recipe == "modelzoo" else int(exact))

    if width <= height:
        return shorter, longer(height, width)
    return longer(width, height), shorter


def centre_crop_box(width: int, height: int, crop: int, recipe: str = "torchvision"
                    ) -> tuple[int, int, int, int]:
    """(left, top, right, bottom) of the centred `crop` square.

    torchvision rounds the offset (`int(round(d / 2))`); TF-slim's `_central_crop`
    uses integer division (floor).
    """
    if width < crop or height < crop:
        raise ValueError(f"{width}x{height} image is smaller than the {crop} crop")
    if recipe == "modelzoo":
        left, top = (width - crop) // 2, (height - crop) // 2
    else:
        left, top = int(round((width - crop) / 2.0)), int(round((height - crop) / 2.0))
    return left, top, left + crop, top + crop


def tf_legacy_bilinear(pixels: np.ndarray, out_height: int, out_width: int) -> np.ndarray:
    """TF1 `resize_bilinear(align_corners=False, half_pixel_centers=False)` of an HWC array.

    Source coordinate of output pixel i is i * in/out; no antialiasing.
    """
    in_h, in_w = pixels.shape[:2]

    def axis(n_in: int, n_out: int):
        pos = np.arange(n_out, dtype=np.float64) * (n_in / n_out)
        low = np.floor(pos).astype(np.int64)
        high = np.minimum(low + 1, n_in - 1)
        return low, high, (pos - low).astype(np.float32)

    y0, y1, wy = axis(in_h, out_height)
    x0, x1, wx = axis(in_w, out_width)
    src = pixels.astype(np.float32)
    top = src[y0][:, x0] * (1 - wx)[None, :, None] + src[y0][:, x1] * wx[None, :, None]
    bottom = src[y1][:, x0] * (1 - wx)[None, :, None] + src[y1][:, x1] * wx[None, :, None]
    return top * (1 - wy)[:, None, None] + bottom * wy[:, None, None]


def open_rgb(data: bytes, target_shorter: int | None = None, shortcut: bool = True
             ) -> Image.Image:
    """Decode image bytes to RGB; raise ValueError for non-images and decompression bombs."""
    try:
        with warnings.catch_warnings():  # our own limit below says it, as an error
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
    except Image.DecompressionBombError as exc:
        raise ValueError(f"refused as a possible decompression bomb ({exc})") from None
    width, height = image.size
    if width * height > MAX_PIXELS:
        raise ValueError(f"{width}x{height} pixels: refused as a possible decompression bomb")
    if shortcut and target_shorter and image.format == "JPEG":
        scale = min(width, height) / target_shorter
        if scale >= 2:  # DCT-domain downscale by 1/2..1/8, never below the target
            image.draft("RGB", (math.ceil(width / scale), math.ceil(height / scale)))
    return image.convert("RGB")  # as torchvision's loader does (alpha dropped, CMYK/L to RGB)


def crop_image(image: Image.Image, spec: PreprocessSpec,
               original_size: tuple[int, int] | None = None) -> np.ndarray:
    """Resize + centre crop an RGB image; uint8 HWC `crop x crop x 3`."""
    width, height = original_size or image.size
    new_w, new_h = resized_size(width, height, spec.resize, spec.name)
    box = centre_crop_box(new_w, new_h, spec.crop, spec.name)
    if spec.name == "modelzoo":  # rounded to uint8 for transport: at most 0.5 of 255 off
        left, top, right, bottom = box
        resized = tf_legacy_bilinear(np.asarray(image), new_h, new_w)
        return np.clip(np.rint(resized[top:bottom, left:right]), 0, 255).astype(np.uint8)
    resized = image.resize((new_w, new_h), Image.BILINEAR)
    return np.asarray(resized.crop(box), dtype=np.uint8)


def decode_and_crop(data: bytes, spec: PreprocessSpec, shortcut: bool = True) -> np.ndarray:
    """Image bytes -> uint8 HWC crop (the work done in the decode workers)."""
    image = open_rgb(data, spec.resize, shortcut)
    return crop_image(image, spec)


def normalize(crops: Sequence[np.ndarray], spec: PreprocessSpec) -> np.ndarray:
    """uint8 HWC crops -> the model's float32 batch (scale, mean, std, layout).

    Each channel maps its 256 possible byte values through a precomputed table
    ((v / 255 or v) - mean) / std, written straight into the output layout.
    """
    pixels = np.stack(crops)
    values = np.arange(256, dtype=np.float32)
    if spec.scale == "0-1":
        values /= 255.0
    mean = np.asarray(spec.mean, dtype=np.float32)[:, None]
    std = np.asarray(spec.std, dtype=np.float32)[:, None]
    table = (values[None, :] - mean) / std  # (3, 256)
    n, h, w, _ = pixels.shape
    if spec.layout == "NCHW":
        out = np.empty((n, 3, h, w), dtype=np.float32)
        for c in range(3):
            np.take(table[c], pixels[..., c], out=out[:, c])
    else:
        out = np.empty((n, h, w, 3), dtype=np.float32)
        for c in range(3):
            np.take(table[c], pixels[..., c], out=out[..., c])
    return out
