"""Work done in the server's decode processes (picklable functions): encoded images or raw
pixels to the model's float batch, with the model's own preprocessing. A failure comes
back as a one-line string (the request gets 400), never as an exception."""

from __future__ import annotations

import numpy as np

from ..limits import IMAGE_MAX_BYTES


def ignore_stop_signals() -> None:
    """In a decode process: Ctrl-C and SIGTERM are for the server, which drains its requests
    (these processes included) and then shuts them down."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)


def ready() -> None:
    """Started, signals set (the server waits for every decode process before serving)."""
    import time

    time.sleep(0.05)


def _spec(preprocessing: dict, layout: str, input_shape: tuple[int, ...]):
    from ..data.preprocess import spec_from_metadata

    size = input_shape[2] if layout == "NCHW" else input_shape[1]
    return spec_from_metadata(preprocessing, layout, crop=size)


def decode_images(images: list[bytes], preprocessing: dict, layout: str,
                  input_shape: tuple[int, ...]) -> np.ndarray | str:
    from ..data.preprocess import decode_and_crop, normalize

    spec = _spec(preprocessing, layout, input_shape)
    crops = []
    for index, data in enumerate(images):
        if len(data) > IMAGE_MAX_BYTES:
            return (f"image {index}: {len(data)} bytes is over the {IMAGE_MAX_BYTES >> 20} MiB "
                    "limit")
        try:
            crops.append(decode_and_crop(data, spec, True))
        except Exception as exc:  # noqa: BLE001 - any undecodable image is a bad request
            reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            if "cannot identify image file" in reason:
                reason = "not an image rn50 can decode (JPEG, PNG, BMP, GIF, TIFF, WebP)"
            return f"image {index}: {reason}"
    return normalize(crops, spec)


def normalise_pixels(pixels: np.ndarray, preprocessing: dict, layout: str,
                     input_shape: tuple[int, ...]) -> np.ndarray | str:
    from ..data.preprocess import normalize

    spec = _spec(preprocessing, layout, input_shape)
    if pixels.shape[1:3] != (spec.crop, spec.crop):
        return (f"UINT8 pixels of {pixels.shape[1]}x{pixels.shape[2]}: this model takes "
                f"{spec.crop}x{spec.crop} crops (or send encoded images as BYTES)")
    return normalize(list(pixels), spec)
