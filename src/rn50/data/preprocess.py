"""Image preprocessing as pure functions, driven by the model's preprocessing config.

The config (see `models.metadata.PRESETS`) says: input size, resize (shorter
side = input size / crop_pct), interpolation, channel order, scale, mean, std.

- `bilinear`, `bicubic`, `nearest`: PIL's filters (antialiased when shrinking,
  as torchvision does on PIL images); the longer side truncated and the crop
  offset rounded, as torchvision's Resize/CenterCrop.
- `tf-bilinear` (Intel Model Zoo / TF-slim ResNet-50 eval): TensorFlow 1's
  `resize_bilinear` (align_corners=False, no half-pixel centres, no
  antialiasing — reimplemented below in NumPy, because PIL's antialiased filter
  gives different pixels); the longer side rounded half to even and the crop
  offset floored, as TF-slim does.

Workers do the geometric part (decode, resize, crop) and return uint8 HWC RGB
crops; `normalize` turns a stack of crops into the model's float32 batch in its
layout and channel order, once per batch — or the engine does it inside its
graph (uint8 in) where it can, and `stack_uint8` only stacks.

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


PIL_FILTERS = {"bilinear": Image.BILINEAR, "bicubic": Image.BICUBIC, "nearest": Image.NEAREST}


@dataclass(frozen=True)
class PreprocessSpec:
    """What to do to one image, from the model's preprocessing config."""

    name: str  # the preset the config started from
    resize: int  # shorter side after resizing
    crop: int  # square centre crop (the model's input size)
    scale: str  # "0-1" or "0-255"
    mean: tuple[float, float, float]  # in the model's channel order
    std: tuple[float, float, float]
    layout: str  # NCHW | NHWC
    interpolation: str = "bilinear"  # bilinear | bicubic | nearest | tf-bilinear
    channel_order: str = "RGB"  # RGB | BGR

    @property
    def tf_geometry(self) -> bool:
        """TF-slim's rounding (rint longer side, floored crop offset) with TF1's resize."""
        return self.interpolation == "tf-bilinear"

    def describe_interpolation(self) -> str:
        return ("TF1 resize_bilinear (no antialiasing)" if self.tf_geometry
                else f"PIL {self.interpolation} (antialiased)")

    def to_dict(self) -> dict:
        return {"name": self.name, "resize": self.resize, "crop": self.crop, "scale": self.scale,
                "mean": list(self.mean), "std": list(self.std), "layout": self.layout,
                "interpolation": self.interpolation, "channel_order": self.channel_order,
                "filter": self.describe_interpolation()}


def spec_from_metadata(preprocessing: dict, layout: str, crop: int | None = None
                       ) -> PreprocessSpec:
    """The resolved config of a model's metadata, for its input layout and size.

    `crop` is the model's own input size when it has a fixed one (the resize
    keeps the config's crop_pct); otherwise the config's input size is used.
    """
    crop = crop or preprocessing["crop"]
    resize = round(crop * preprocessing["resize"] / preprocessing["crop"])
    return PreprocessSpec(preprocessing["name"], resize, crop, preprocessing["scale"],
                          tuple(preprocessing["mean"]), tuple(preprocessing["std"]), layout,
                          preprocessing.get("interpolation", "bilinear"),
                          preprocessing.get("channel_order", "RGB"))


def resized_size(width: int, height: int, shorter: int, tf_geometry: bool = False
                 ) -> tuple[int, int]:
    """(width, height) with the shorter side = `shorter`, aspect ratio kept.

    The longer side is truncated as torchvision's Resize does, or rounded half
    to even (`rint`) as TF-slim's `_smallest_size_at_least` does (`tf_geometry`).
    """
    def longer(n_long: int, n_short: int) -> int:
        exact = n_long * shorter / n_short
        return max(1, int(np.rint(exact)) if tf_geometry else int(exact))

    if width <= height:
        return shorter, longer(height, width)
    return longer(width, height), shorter


def centre_crop_box(width: int, height: int, crop: int, tf_geometry: bool = False
                    ) -> tuple[int, int, int, int]:
    """(left, top, right, bottom) of the centred `crop` square.

    torchvision rounds the offset (`int(round(d / 2))`); TF-slim's `_central_crop`
    uses integer division (floor).
    """
    if width < crop or height < crop:
        raise ValueError(f"{width}x{height} image is smaller than the {crop} crop")
    if tf_geometry:
        left, top = (width - crop) // 2, (height - crop) // 2
    else:
        left, top = int(round((width - crop) / 2.0)), int(round((height - crop) / 2.0))
    return left, top, left + crop, top + crop


def tf_legacy_bilinear(pixels: np.ndarray, out_height: int, out_width: int,
                       window: tuple[int, int, int, int] | None = None) -> np.ndarray:
    """TF1 `resize_bilinear(align_corners=False, half_pixel_centers=False)` of an HWC array.

    Source coordinate of output pixel i is i * in/out; no antialiasing. With
    `window` (left, top, right, bottom) only those output pixels are computed:
    the same values as resizing everything and cropping.
    """
    in_h, in_w = pixels.shape[:2]
    left, top, right, bottom = window or (0, 0, out_width, out_height)

    def axis(n_in: int, n_out: int, start: int, stop: int):
        pos = np.arange(start, stop, dtype=np.float64) * (n_in / n_out)
        low = np.floor(pos).astype(np.int64)
        high = np.minimum(low + 1, n_in - 1)
        return low, high, (pos - low).astype(np.float32)

    y0, y1, wy = axis(in_h, out_height, top, bottom)
    x0, x1, wx = axis(in_w, out_width, left, right)
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
    new_w, new_h = resized_size(width, height, spec.resize, spec.tf_geometry)
    box = centre_crop_box(new_w, new_h, spec.crop, spec.tf_geometry)
    if spec.tf_geometry:  # rounded to uint8 for transport: at most 0.5 of 255 off
        crop = tf_legacy_bilinear(np.asarray(image), new_h, new_w, box)
        return np.clip(np.rint(crop), 0, 255).astype(np.uint8)
    # Only the crop is resampled: PIL resizes the matching source box (its filter still
    # reads the pixels around it), ~40% less work than resizing the whole image and
    # cropping, and equal to it within rounding (1 of 255 apart at most, 2 for bicubic;
    # tested).
    left, top, right, bottom = box
    sx, sy = width / new_w, height / new_h
    source = (left * sx, top * sy, right * sx, bottom * sy)
    if image.size != (width, height):  # decoded smaller (JPEG draft): its own coordinates
        fx, fy = image.size[0] / width, image.size[1] / height
        source = (source[0] * fx, source[1] * fy, source[2] * fx, source[3] * fy)
    resized = image.resize((spec.crop, spec.crop), PIL_FILTERS[spec.interpolation], box=source)
    return np.asarray(resized, dtype=np.uint8)


def decode_and_crop(data: bytes, spec: PreprocessSpec, shortcut: bool = True) -> np.ndarray:
    """Image bytes -> uint8 HWC crop (the work done in the decode workers)."""
    image = open_rgb(data, spec.resize, shortcut)
    return crop_image(image, spec)


def channel_tables(spec: PreprocessSpec) -> np.ndarray:
    """(3, 256): model channel c maps byte v of its source RGB channel to ((v/255 or v) - mean)/std."""
    values = np.arange(256, dtype=np.float32)
    if spec.scale == "0-1":
        values /= 255.0
    mean = np.asarray(spec.mean, dtype=np.float32)[:, None]
    std = np.asarray(spec.std, dtype=np.float32)[:, None]
    return (values[None, :] - mean) / std


def source_channels(spec: PreprocessSpec) -> tuple[int, int, int]:
    """The RGB crop channel each model channel reads (BGR models read them reversed)."""
    return (2, 1, 0) if spec.channel_order == "BGR" else (0, 1, 2)


def normalize(crops: Sequence[np.ndarray], spec: PreprocessSpec) -> np.ndarray:
    """uint8 HWC RGB crops -> the model's float32 batch (scale, mean, std, channel order,
    layout), each channel through a precomputed 256-entry table, written in place."""
    pixels = np.stack(crops)
    table = channel_tables(spec)
    n, h, w, _ = pixels.shape
    source = source_channels(spec)
    if spec.layout == "NCHW":
        out = np.empty((n, 3, h, w), dtype=np.float32)
        for c in range(3):
            np.take(table[c], pixels[..., source[c]], out=out[:, c])
    else:
        out = np.empty((n, h, w, 3), dtype=np.float32)
        for c in range(3):
            np.take(table[c], pixels[..., source[c]], out=out[..., c])
    return out


def stack_uint8(crops: Sequence[np.ndarray], spec: PreprocessSpec) -> np.ndarray:
    """uint8 NHWC RGB batch, for an engine that normalises inside its graph."""
    return np.stack(crops)
