"""The KServe v2 inference protocol: requests parsed and checked, responses built.

Inputs: one tensor, either FP32 in the model's own input shape ([N, 3, 224, 224]
or NHWC), UINT8 RGB pixels [N, H, W, 3] (normalised here with the model's
preprocessing), or BYTES: encoded images (JPEG, PNG...) decoded and
preprocessed server-side. Data come as JSON `data` (BYTES elements as base64
strings, or {"b64": ...}) or with the binary-data extension
(`Inference-Header-Content-Length`; BYTES elements each prefixed by a 4-byte
little-endian length). Outputs: `probabilities` [N, classes] and `top_k` in
the classification extension's "score:index:label" strings.
"""

from __future__ import annotations

import base64
import json
import struct
from dataclasses import dataclass

import numpy as np

DTYPES = {"FP32": np.float32, "UINT8": np.uint8}


class BadRequest(Exception):
    """A request the server cannot serve: 400 with this message."""


@dataclass
class Request:
    kind: str  # tensor | pixels | images
    tensor: np.ndarray | None  # FP32 input or UINT8 pixels
    images: list[bytes]  # encoded images
    top_k: int
    want: set[str]  # outputs asked for
    request_id: str | None


def parse(body: bytes, header_length: str | None, input_shape: tuple[int, ...],
          max_batch: int) -> Request:
    """A KServe v2 infer request (JSON, or JSON + binary data)."""
    if header_length is not None:
        if not header_length.isdigit() or int(header_length) > len(body):
            raise BadRequest("Inference-Header-Content-Length is not a length within the body")
        head, binary = body[:int(header_length)], body[int(header_length):]
    else:
        head, binary = body, b""
    try:
        request = json.loads(head)
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadRequest(f"the request is not JSON ({exc})") from None
    if not isinstance(request, dict) or not isinstance(request.get("inputs"), list) \
            or len(request["inputs"]) != 1 or not isinstance(request["inputs"][0], dict):
        raise BadRequest("'inputs' must be a list of one tensor")
    spec = request["inputs"][0]
    parameters = request.get("parameters") or {}
    top_k = parameters.get("top_k", 5) if isinstance(parameters, dict) else 5
    if not isinstance(top_k, int) or not 1 <= top_k <= 1000:
        raise BadRequest("parameters.top_k must be a whole number 1..1000")
    outputs = request.get("outputs") or [{"name": "probabilities"}, {"name": "top_k"}]
    want = {o.get("name") for o in outputs if isinstance(o, dict)}
    kind, payload = _input(spec, binary, input_shape)
    count = len(payload)
    if not 1 <= count <= max_batch:
        raise BadRequest(f"{count} images in one request; this server takes 1..{max_batch}")
    tensor = None if kind == "images" else payload
    return Request(kind, tensor, payload if kind == "images" else [], top_k, want,
                   request.get("id"))


def _input(spec: dict, binary: bytes, input_shape: tuple[int, ...]):
    """(kind, payload) of the one input tensor."""
    dtype, shape = spec.get("datatype"), spec.get("shape")
    if not isinstance(shape, list) or not all(isinstance(d, int) and d >= 0 for d in shape):
        raise BadRequest("input 'shape' must be a list of whole numbers")
    size = (spec.get("parameters") or {}).get("binary_data_size")
    raw = binary[:size] if isinstance(size, int) and size <= len(binary) else None
    if size is not None and raw is None:
        raise BadRequest("binary_data_size is larger than the binary data sent")
    if dtype == "BYTES":
        return "images", _bytes_elements(spec, raw, shape)
    if dtype not in DTYPES:
        raise BadRequest(f"datatype {dtype!r}: this model takes FP32 tensors, UINT8 pixels "
                         "or BYTES (encoded images)")
    array = _tensor(spec, raw, shape, DTYPES[dtype])
    if dtype == "FP32":
        if tuple(array.shape[1:]) != tuple(input_shape[1:]):
            raise BadRequest(f"FP32 input shape {list(array.shape)}: the model takes "
                             f"[N, {', '.join(map(str, input_shape[1:]))}]")
        return "tensor", array
    if array.ndim != 4 or array.shape[3] != 3:
        raise BadRequest(f"UINT8 input shape {list(array.shape)}: pixels are [N, H, W, 3] RGB")
    return "pixels", array


def _tensor(spec: dict, raw: bytes | None, shape: list[int], dtype) -> np.ndarray:
    count = int(np.prod(shape)) if shape else 0
    if raw is not None:
        if len(raw) != count * np.dtype(dtype).itemsize:
            raise BadRequest(f"binary data of {len(raw)} bytes does not hold shape {shape} "
                             f"of {np.dtype(dtype).name}")
        return np.frombuffer(raw, dtype).reshape(shape)
    data = spec.get("data")
    try:
        array = np.asarray(data, dtype=dtype)
    except (TypeError, ValueError, OverflowError):
        raise BadRequest("input 'data' is not a list of numbers") from None
    if array.size != count:
        raise BadRequest(f"input 'data' has {array.size} values; shape {shape} needs {count}")
    return array.reshape(shape)


def _bytes_elements(spec: dict, raw: bytes | None, shape: list[int]) -> list[bytes]:
    if raw is not None:
        items, offset = [], 0
        while offset < len(raw):
            if offset + 4 > len(raw):
                raise BadRequest("BYTES binary data ends inside an element's length")
            (length,) = struct.unpack_from("<I", raw, offset)
            items.append(raw[offset + 4:offset + 4 + length])
            offset += 4 + length
        if offset != len(raw):
            raise BadRequest("BYTES binary data ends inside an element")
    else:
        data = spec.get("data")
        if not isinstance(data, list):
            raise BadRequest("BYTES input 'data' must be a list of base64 strings")
        try:
            items = [base64.b64decode(d["b64"] if isinstance(d, dict) else d, validate=True)
                     for d in data]
        except (TypeError, KeyError, ValueError):
            raise BadRequest("BYTES input 'data' must hold base64 strings (or {\"b64\": ...})") \
                from None
    if shape and int(np.prod(shape)) != len(items):
        raise BadRequest(f"BYTES input has {len(items)} elements; shape {shape} says "
                         f"{int(np.prod(shape))}")
    return items


def response(model: str, request: Request, probabilities: np.ndarray,
             labels: np.ndarray, top: np.ndarray, names: list[list[str]]) -> dict:
    """The v2 response: probabilities and/or top-k ("score:index:label")."""
    outputs = []
    if "probabilities" in request.want:
        outputs.append({"name": "probabilities", "datatype": "FP32",
                        "shape": list(probabilities.shape),
                        "data": probabilities.ravel().round(7).tolist()})
    if "top_k" in request.want:
        strings = [f"{p:.6f}:{int(label)}:{name}" for row_p, row_l, row_n in
                   zip(top, labels, names) for p, label, name in zip(row_p, row_l, row_n)]
        outputs.append({"name": "top_k", "datatype": "BYTES",
                        "shape": [len(labels), labels.shape[1]], "data": strings})
    body = {"model_name": model, "outputs": outputs}
    if request.request_id is not None:
        body["id"] = request.request_id
    return body
