"""Turn a ModelConfig into a ModelSpec: a file on disk plus what is known about it."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Mapping

from ..config import ModelConfig
from ..errors import ModelError
from ..limits import PROTOBUF_MAX_BYTES, available_memory, check_file
from . import builtin, provenance
from .cache import default_cache_dir, get_or_build
from .detect import GRAPHDEF, IR, ONNX, STATE_DICT, detect_format


@dataclass(frozen=True)
class ModelSpec:
    """A model file and its metadata, as handed to a backend."""

    path: str
    name: str
    source: str  # "builtin" | "file"
    random_weights: bool
    format: str = ONNX
    cache_dir: str | None = None
    input_node: str | None = None
    output_node: str | None = None
    class_offset: int | None = None
    preprocessing: dict | None = None  # the user's overrides (flags)
    macs_per_image: int | None = None
    sha256: str | None = None
    mean: tuple[float, float, float] = (123.675, 116.28, 103.53)
    std: tuple[float, float, float] = (58.395, 57.12, 57.375)
    provenance: dict | None = None  # what the file says about itself (see models.provenance)

    def to_dict(self) -> dict:
        return asdict(self)

    def input_size(self) -> int:
        """Height/width for a model whose input size is not fixed: flag, metadata, else 224."""
        for layer in (self.preprocessing, (self.provenance or {}).get("preprocessing")):
            if layer and layer.get("input_size"):
                return int(layer["input_size"])
        return 224


def model_spec_from_dict(data: Mapping) -> ModelSpec:
    return ModelSpec(**{k: tuple(v) if isinstance(v, list) else v for k, v in data.items()})


def cache_folder(config: ModelConfig, environ: Mapping[str, str]) -> Path:
    return Path(config.cache_dir).expanduser() if config.cache_dir else default_cache_dir(environ)


def builtin_model(config: ModelConfig, environ: Mapping[str, str],
                  log: Callable[[str], None]) -> ModelSpec:
    """The built-in ResNet-50 v1.5, built once into the cache and validated on each use."""
    cache = cache_folder(config, environ)
    path = cache / f"resnet50_v1.5_seed{config.seed}_b{builtin.BUILDER_VERSION}.onnx"

    def build() -> bytes:
        log(f"Building the built-in ResNet-50 v1.5 (seed {config.seed}) into {path} ...")
        return builtin.build_onnx(config.seed).SerializeToString()

    path, digest = get_or_build(path, build, {"builder_version": builtin.BUILDER_VERSION,
                                              "seed": config.seed}, log)
    return ModelSpec(path=str(path), name="resnet50_v1.5 (built-in)", source="builtin",
                     random_weights=True, macs_per_image=builtin.macs_per_image(), sha256=digest,
                     cache_dir=str(cache), class_offset=config.class_offset,
                     preprocessing=config.preprocessing,
                     provenance=provenance.builtin(config.seed))


def _check_onnx(path: Path) -> dict | None:
    """Parse the ONNX protobuf (weights left on disk): catches non-models and truncation early.

    Returns the provenance the file carries, if any."""
    import onnx

    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as exc:  # protobuf raises DecodeError and friends
        raise ModelError(f"model file {path} is not a valid ONNX model ({type(exc).__name__}: "
                         f"{str(exc).splitlines()[0] if str(exc) else 'unreadable'})") from exc
    if not model.graph.node or not model.graph.input:
        raise ModelError(f"model file {path} is not a valid ONNX model (no graph)")
    return provenance.from_onnx(model)


def _check_size(path: Path, fmt: str) -> None:
    """Refuse a model file no engine could hold: over protobuf's 2 GiB for ONNX and
    GraphDef, over the memory this machine has for the rest (an engine reads it whole)."""
    if path.is_dir():
        return
    if fmt == IR:
        weights = path.with_suffix(".bin")
        if not weights.exists():
            raise ModelError(f"model file {path}: its weights {weights} are missing")
        path = weights
    if fmt in (ONNX, GRAPHDEF):
        check_file(path, "model file", PROTOBUF_MAX_BYTES, "protobuf (ONNX, GraphDef) files "
                   "cannot be larger, so this one is damaged or not a model", ModelError)
        return
    memory = available_memory()
    check_file(path, "model file", memory, "more than this machine's available memory; an "
               "engine reads the whole file", ModelError)


def file_model(config: ModelConfig, environ: Mapping[str, str]) -> ModelSpec:
    """A user's model file: its format detected from content and checked where cheap."""
    path = Path(config.path).expanduser()
    check_file(path, "model file", error=ModelError, folder_ok=True)  # exists, may be read
    fmt = detect_format(path)
    _check_size(path, fmt)
    about = (_check_onnx(path) if fmt == ONNX else None) or provenance.read_sidecar(path)
    if about is None and fmt == STATE_DICT:
        about = provenance.torchvision_checkpoint(str(path))
    return ModelSpec(path=str(path.resolve()), name=path.name, source="file",
                     random_weights=bool((about or {}).get("random_weights")),
                     macs_per_image=None, format=fmt,
                     cache_dir=str(cache_folder(config, environ)),
                     input_node=config.input_node, output_node=config.output_node,
                     class_offset=config.class_offset, preprocessing=config.preprocessing,
                     provenance=about)
