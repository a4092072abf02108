"""Preprocessing geometry against hand-computed values, TF's own resize, and the JPEG shortcut."""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from rn50.data.preprocess import (PreprocessSpec, centre_crop_box, crop_image, decode_and_crop,
                                  normalize, open_rgb, resized_size, spec_from_metadata,
                                  tf_legacy_bilinear)
from rn50.models.metadata import PRESETS, resolve_preprocessing
from rn50.scenarios.real_data import TopK, top_labels


def spec(name: str, layout: str = "NCHW", **overrides) -> PreprocessSpec:
    return spec_from_metadata(resolve_preprocessing((name, "test"), None, overrides), layout)


def photo(width: int, height: int) -> Image.Image:
    y, x = np.mgrid[0:height, 0:width]
    rgb = np.stack([x * 255 / width, y * 255 / height,
                    128 + 100 * np.sin(x / 37.0) * np.cos(y / 23.0)], axis=-1)
    return Image.fromarray(np.clip(rgb, 0, 255).astype(np.uint8))


@pytest.mark.parametrize("size, recipe, expected", [
    ((500, 375), "torchvision", (341, 256)),   # 500 * 256 / 375 = 341.33
    ((375, 500), "torchvision", (256, 341)),
    ((300, 451), "torchvision", (256, 384)),   # 384.85 truncated, as torchvision's Resize
    ((300, 451), "modelzoo", (256, 385)),      # rint, as TF-slim's _smallest_size_at_least
    ((256, 256), "modelzoo", (256, 256)),
])
def test_resized_size(size, recipe, expected):
    assert resized_size(*size, 256, recipe == "modelzoo") == expected


@pytest.mark.parametrize("size, recipe, expected", [
    ((341, 256), "torchvision", (58, 16, 282, 240)),   # round(58.5) = 58, Python rounding
    ((387, 256), "torchvision", (82, 16, 306, 240)),   # round(81.5) = 82
    ((387, 256), "modelzoo", (81, 16, 305, 240)),      # floor(81.5) = 81
])
def test_centre_crop_box(size, recipe, expected):
    assert centre_crop_box(*size, 224, recipe == "modelzoo") == expected


def test_crop_smaller_than_image_is_an_error():
    with pytest.raises(ValueError, match="smaller than the 224 crop"):
        centre_crop_box(200, 300, 224)


def test_tf_legacy_bilinear_by_hand():
    pixels = np.array([[[0], [10]], [[20], [30]]], dtype=np.uint8)  # 2x2, one channel
    out = tf_legacy_bilinear(pixels, 4, 4)
    # source coordinate of output i is i * 2 / 4 = i / 2; the last row/column clamps
    np.testing.assert_allclose(out[:, :, 0], [[0, 5, 10, 10], [10, 15, 20, 20],
                                              [20, 25, 30, 30], [20, 25, 30, 30]])


def test_tf_legacy_bilinear_matches_tensorflow():
    tf = pytest.importorskip("tensorflow")
    pixels = np.asarray(photo(500, 375))
    ours = tf_legacy_bilinear(pixels, 256, 341)
    theirs = tf.compat.v1.image.resize_bilinear(pixels[None].astype(np.float32), [256, 341],
                                                align_corners=False).numpy()[0]
    np.testing.assert_allclose(ours, theirs, atol=1e-3)


@pytest.mark.parametrize("size", [(500, 375), (375, 500), (640, 427), (257, 300), (1024, 999)])
@pytest.mark.parametrize("interpolation", ["bilinear", "bicubic"])
def test_torchvision_crop_is_the_resized_image_centre(size, interpolation):
    # torchvision: Resize(256) then CenterCrop(224); rn50 resamples only the crop's source
    # box, which must give the same pixels within rounding
    image = photo(*size)
    crop = crop_image(image, spec("torchvision", interpolation=interpolation))
    width, height = resized_size(*size, 256)
    box = centre_crop_box(width, height, 224)
    filters = {"bilinear": Image.BILINEAR, "bicubic": Image.BICUBIC}
    expected = np.asarray(image.resize((width, height), filters[interpolation]).crop(box))
    assert crop.shape == (224, 224, 3) and crop.dtype == np.uint8
    # PIL rounds between its two passes: 1 of 255 apart at most (2 for bicubic's overshoot)
    assert np.abs(crop.astype(int) - expected).max() <= (1 if interpolation == "bilinear" else 2)
    assert np.abs(crop.astype(int) - expected).mean() < 0.01


def test_modelzoo_crop_is_tf_resize_then_floor_centre():
    image = photo(500, 375)
    crop = crop_image(image, spec("modelzoo"))
    resized = tf_legacy_bilinear(np.asarray(image), 256, 341)
    np.testing.assert_array_equal(crop, np.rint(resized[16:240, 58:282]).astype(np.uint8))


def test_normalize_scales_subtracts_and_lays_out():
    crops = [np.full((224, 224, 3), 255, np.uint8), np.zeros((224, 224, 3), np.uint8)]
    tv = normalize(crops, spec("torchvision"))
    assert tv.shape == (2, 3, 224, 224) and tv.dtype == np.float32
    np.testing.assert_allclose(tv[0, :, 0, 0], (1 - np.array([0.485, 0.456, 0.406]))
                               / np.array([0.229, 0.224, 0.225]), rtol=1e-6)
    mz = normalize(crops, spec("modelzoo", "NHWC"))
    assert mz.shape == (2, 224, 224, 3)
    np.testing.assert_allclose(mz[1, 0, 0], [-123.68, -116.78, -103.94], rtol=1e-6)


def test_jpeg_dct_shortcut_is_used_and_stays_within_tolerance():
    big = io.BytesIO()
    photo(2400, 1800).save(big, format="JPEG", quality=92)
    data = big.getvalue()
    assert open_rgb(data, 256, shortcut=True).size == (600, 450)  # decoded at 1/4 scale
    assert open_rgb(data, 256, shortcut=False).size == (2400, 1800)
    for name in ("torchvision", "modelzoo"):
        fast = decode_and_crop(data, spec(name), shortcut=True).astype(np.float64)
        full = decode_and_crop(data, spec(name), shortcut=False).astype(np.float64)
        assert np.abs(fast - full).mean() < 2.0  # of 255


def test_small_jpeg_is_never_decoded_below_the_target():
    small = io.BytesIO()
    photo(500, 375).save(small, format="JPEG")
    assert open_rgb(small.getvalue(), 256, shortcut=True).size == (500, 375)


def _png_header_only(width: int, height: int) -> bytes:
    def chunk(kind: bytes, body: bytes) -> bytes:
        return (struct.pack(">I", len(body)) + kind + body
                + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IEND", b"")


@pytest.mark.parametrize("side", [10000, 20000])  # above our limit; above Pillow's own
def test_decompression_bomb_is_refused_before_decoding(side):
    with pytest.raises(ValueError, match="decompression bomb"):
        open_rgb(_png_header_only(side, side))


def test_modes_become_rgb():
    for mode in ("L", "CMYK", "RGBA", "P"):
        buf = io.BytesIO()
        photo(300, 300).convert(mode).save(buf, format="PNG" if mode in ("RGBA", "P") else "JPEG")
        assert open_rgb(buf.getvalue()).mode == "RGB"


def test_top_labels_for_1000_and_1001_class_models():
    logits = np.zeros((1, 1000))
    logits[0, 0], logits[0, 5] = 9.0, 8.0  # output 0 = tench = label 1
    labels, probs = top_labels(logits, 2, class_offset=0)
    assert labels.tolist() == [[1, 6]] and probs[0, 0] > probs[0, 1]
    logits = np.zeros((1, 1001))
    logits[0, 0], logits[0, 1], logits[0, 7] = 20.0, 9.0, 8.0  # background at 0 is the max
    labels, _ = top_labels(logits, 2, class_offset=1)
    assert labels.tolist() == [[1, 7]]  # background never reported; output 1 = label 1


def test_topk_counts():
    counter = TopK()
    counter.update(np.array([[3, 1, 2, 4, 5], [9, 8, 7, 6, 5], [1, 2, 3, 4, 6]]), [3, 5, 7])
    assert (counter.count, counter.top1, counter.top5) == (3, 1, 2)
    assert counter.rates() == (1 / 3, 2 / 3)


@pytest.mark.parametrize("preset, expected", [
    # a white pixel (255, 255, 255) and a pure-red one (255, 0, 0), by hand, per model channel
    ("torchvision", [[(1 - 0.485) / 0.229, (1 - 0.456) / 0.224, (1 - 0.406) / 0.225],
                     [(1 - 0.485) / 0.229, (0 - 0.456) / 0.224, (0 - 0.406) / 0.225]]),
    ("modelzoo", [[255 - 123.68, 255 - 116.78, 255 - 103.94], [255 - 123.68, -116.78, -103.94]]),
    # Keras caffe: BGR order, BGR means, no scaling: red lands in the last channel
    ("keras-caffe", [[255 - 103.939, 255 - 116.779, 255 - 123.68],
                     [-103.939, -116.779, 255 - 123.68]]),
    ("inception", [[1.0, 1.0, 1.0], [1.0, -1.0, -1.0]]),
])
def test_presets_equal_hand_computed_tensors(preset, expected):
    white = np.full((224, 224, 3), 255, np.uint8)
    red = np.zeros((224, 224, 3), np.uint8)
    red[..., 0] = 255
    for layout in ("NCHW", "NHWC"):
        batch = normalize([white, red], spec(preset, layout))
        pixel = batch[:, :, 5, 7] if layout == "NCHW" else batch[:, 5, 7, :]
        np.testing.assert_allclose(pixel, expected, rtol=1e-5, atol=1e-5)


def test_flags_override_the_preset_field_by_field_and_say_so():
    config = resolve_preprocessing(("torchvision", "origin"), {"mean": [0.5, 0.5, 0.5]},
                                   {"preset": "modelzoo", "std": [127.0, 128.0, 129.0],
                                    "input_size": 299, "crop_pct": 0.95})
    assert config["name"] == "modelzoo" and config["reason"] == "set by --preprocessing"
    assert config["scale"] == "0-255" and config["sources"]["scale"] == "preset modelzoo"
    assert config["mean"] == [0.5, 0.5, 0.5] and config["sources"]["mean"] == "model metadata"
    assert config["std"] == [127.0, 128.0, 129.0] and config["sources"]["std"] == "flag --std"
    assert (config["crop"], config["resize"]) == (299, 314)  # floor(299 / 0.95)
    assert config["sources"]["input_size"] == "flag --input-size"


def test_every_preset_defines_every_field():
    from rn50.models.metadata import FIELDS, INTERPOLATIONS

    for name, preset in PRESETS.items():
        assert set(FIELDS) <= set(preset), name
        assert preset["interpolation"] in INTERPOLATIONS
        assert resolve_preprocessing((name, "x"))["resize"] == 256  # 224 / 0.875


def test_bicubic_and_nearest_use_their_pil_filters():
    image = photo(500, 375)
    bicubic = crop_image(image, spec("torchvision", interpolation="bicubic"))
    expected = np.asarray(image.resize((341, 256), Image.BICUBIC).crop((58, 16, 282, 240)))
    assert np.abs(bicubic.astype(int) - expected).max() <= 2
    nearest = crop_image(image, spec("torchvision", interpolation="nearest"))
    assert not np.array_equal(nearest, bicubic)
