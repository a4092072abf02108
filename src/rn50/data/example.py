"""`tf.train.Example` records without TensorFlow: the real protobuf messages, built at run time.

The message types (Example, Features, Feature, BytesList, FloatList, Int64List)
are declared once as a FileDescriptorProto in a private descriptor pool and
turned into classes by protobuf itself, so encoding and decoding are
protobuf's own (wire-compatible with TensorFlow's `example.proto`), not a
hand-written parser, and never clash with TensorFlow's classes when both load.
"""

from __future__ import annotations

from typing import Iterable, Mapping, Union

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from google.protobuf.message import DecodeError

from ..errors import DataError

FeatureValue = Union[bytes, str, int, float, Iterable]

_F = descriptor_pb2.FieldDescriptorProto


def _file_descriptor() -> descriptor_pb2.FileDescriptorProto:
    proto = descriptor_pb2.FileDescriptorProto(name="rn50/tensorflow_example.proto",
                                               package="tensorflow", syntax="proto3")

    def message(name: str, *fields: tuple) -> descriptor_pb2.DescriptorProto:
        msg = proto.message_type.add(name=name)
        for field_name, number, kind, label, type_name, oneof in fields:
            field = msg.field.add(name=field_name, number=number, type=kind, label=label)
            if type_name:
                field.type_name = type_name
            if oneof is not None:
                field.oneof_index = oneof
        return msg

    repeated, optional = _F.LABEL_REPEATED, _F.LABEL_OPTIONAL
    message("BytesList", ("value", 1, _F.TYPE_BYTES, repeated, None, None))
    floats = message("FloatList", ("value", 1, _F.TYPE_FLOAT, repeated, None, None))
    floats.field[0].options.packed = True
    ints = message("Int64List", ("value", 1, _F.TYPE_INT64, repeated, None, None))
    ints.field[0].options.packed = True
    feature = message("Feature",
                      ("bytes_list", 1, _F.TYPE_MESSAGE, optional, ".tensorflow.BytesList", 0),
                      ("float_list", 2, _F.TYPE_MESSAGE, optional, ".tensorflow.FloatList", 0),
                      ("int64_list", 3, _F.TYPE_MESSAGE, optional, ".tensorflow.Int64List", 0))
    feature.oneof_decl.add(name="kind")
    features = message("Features", ("feature", 1, _F.TYPE_MESSAGE, repeated,
                                    ".tensorflow.Features.FeatureEntry", None))
    entry = features.nested_type.add(name="FeatureEntry")
    entry.options.map_entry = True
    entry.field.add(name="key", number=1, type=_F.TYPE_STRING, label=optional)
    entry.field.add(name="value", number=2, type=_F.TYPE_MESSAGE, label=optional,
                    type_name=".tensorflow.Feature")
    message("Example", ("features", 1, _F.TYPE_MESSAGE, optional, ".tensorflow.Features", None))
    return proto


class ExampleCodec:
    """Encodes and decodes `tf.train.Example` bytes (one instance per reader or writer)."""

    def __init__(self) -> None:
        pool = descriptor_pool.DescriptorPool()
        pool.Add(_file_descriptor())
        self._example = message_factory.GetMessageClass(
            pool.FindMessageTypeByName("tensorflow.Example"))

    def encode(self, features: Mapping[str, FeatureValue]) -> bytes:
        """bytes/str -> bytes_list, int -> int64_list, float -> float_list (or lists of them)."""
        example = self._example()
        for name, value in features.items():
            values = list(value) if isinstance(value, (list, tuple)) else [value]
            feature = example.features.feature[name]
            if all(isinstance(v, (bytes, str)) for v in values) and values:
                feature.bytes_list.value.extend(v.encode() if isinstance(v, str) else v
                                                for v in values)
            elif all(isinstance(v, int) for v in values) and values:
                feature.int64_list.value.extend(values)
            elif all(isinstance(v, (int, float)) for v in values) and values:
                feature.float_list.value.extend(float(v) for v in values)
            else:
                raise TypeError(f"feature {name!r}: cannot store {value!r}")
        return example.SerializeToString()

    def decode(self, data: bytes) -> dict[str, list]:
        """{feature name: list of values}; DataError if the bytes are not an Example."""
        example = self._example()
        try:
            example.ParseFromString(data)
        except DecodeError as exc:
            raise DataError(f"not a tf.train.Example ({exc})") from None
        decoded = {}
        for name, feature in example.features.feature.items():
            kind = feature.WhichOneof("kind")
            decoded[name] = list(getattr(feature, kind).value) if kind else []
        return decoded
