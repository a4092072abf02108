"""The one interface every inference engine implements. Imports no engine."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Callable, Protocol

import numpy as np

from ..data.preprocess import PreprocessSpec
from ..models import ModelSpec
from ..settings import Settings


@dataclass(frozen=True)
class Quantizer:
    """How an engine gets an INT8 model: the package that quantizes, its extra, the file."""

    module: str  # must be importable (e.g. nncf)
    extra: str  # pip install 'rn50[extra]'
    suffix: str  # of the INT8 file written


@dataclass(frozen=True)
class Capabilities:
    """What an engine can do, declared once in its backend module (imports no engine).

    Precision checks, format checks, CLI help, Model Zoo's --framework names, the
    quantize command and the engine's environment all derive from this.
    """

    name: str
    backend_class: str  # the Backend class in the same module
    engine_module: str | None  # importable when the engine is installed (None: nothing)
    install: str | None  # the command that installs it
    formats: tuple[str, ...]  # model files it runs (the built-in model runs everywhere)
    precisions: tuple[str, ...]  # what it can execute (CPU flags: precision.CPU_FLAGS)
    reads_back: str  # what the engine itself confirms after loading
    quantizer: Quantizer | None = None
    env: tuple[tuple[str, str], ...] = ()  # set before the engine is imported
    noise: tuple[str, ...] = ()  # regexes of start-up lines that go to the log only
    frameworks: tuple[str, ...] = ()  # launch_benchmark.py --framework names (default: name)
    streams: bool = False  # runs several batches in parallel streams (--streams applies)
    real: bool = True  # False for the harness-only null backend
    dynamic_batch: bool = False  # load(..., dynamic_batch=True): any batch up to the compiled
    profiling: str | None = None  # load(..., profiling=True): per-layer counters, from what


@dataclass(frozen=True)
class InputSpec:
    """The image tensor the loaded model expects (batch dimension included)."""

    name: str
    shape: tuple[int, int, int, int]
    layout: str  # NCHW | NHWC
    dtype: str = "float32"

    @property
    def image_size(self) -> int:
        """Height (= width) of the images it takes."""
        return self.shape[2] if self.layout == "NCHW" else self.shape[1]

    def to_dict(self) -> dict:
        return asdict(self)


class Session(Protocol):
    """A model loaded and compiled on an engine, ready to run batches.

    `concurrency` is how many batches the engine wants in flight (1 for a
    synchronous engine). The benchmark calls `wait_idle()`, reads its clock,
    then `submit(batch, on_done)`; `on_done(output)` is called when that batch
    is finished (from an engine thread for asynchronous engines), with a
    zero-argument function returning its output (valid only during the call:
    the engine reuses the memory), so a timing loop that ignores it pays nothing.
    """

    input_spec: InputSpec
    concurrency: int
    preprocessing_in_graph: str | None  # how the engine normalises uint8 crops, or None
    load_timings: dict[str, float]
    num_classes: int | None  # width of the output (1001: background class at 0)

    def run(self, batch: np.ndarray) -> np.ndarray: ...

    def wait_idle(self) -> None: ...

    def submit(self, batch: np.ndarray, on_done: Callable[[Callable], None]) -> None: ...

    def wait_all(self) -> None: ...

    def applied_settings(self) -> dict: ...


PlanPreprocessing = Callable[[InputSpec, "int | None"], "PreprocessSpec | None"]
"""Called by a backend that can normalise inside its graph, once it knows the model's input
and output width: the preprocessing to embed (then the session takes uint8 NHWC RGB
crops and says how in `preprocessing_in_graph`), or None."""


class Backend(Protocol):
    """An inference engine: loads a model under the given settings.

    Engines that cannot embed preprocessing ignore `preprocess`; their sessions
    have `preprocessing_in_graph = None` and take the float tensor.
    """

    name: str

    def versions(self) -> dict[str, str]: ...

    def load(self, model: ModelSpec, settings: Settings, precision: str,
             preprocess: PlanPreprocessing | None = None) -> Session: ...


def uint8_input(spec: InputSpec) -> InputSpec:
    """The input of a model that takes uint8 NHWC crops (preprocessing in its graph)."""
    n, h, w = (spec.shape[0], *spec.shape[2:4]) if spec.layout == "NCHW" else spec.shape[:3]
    return InputSpec(spec.name, (n, h, w, 3), "NHWC", "uint8")


class SyncSession:
    """Submit/wait on top of `run` for engines that run one batch at a time."""

    concurrency = 1
    preprocessing_in_graph: str | None = None

    def run(self, batch: np.ndarray) -> np.ndarray:  # pragma: no cover - overridden
        raise NotImplementedError

    def wait_idle(self) -> None:
        return None

    def submit(self, batch: np.ndarray, on_done: Callable[[Callable], None]) -> None:
        output = self.run(batch)
        on_done(lambda: output)

    def wait_all(self) -> None:
        return None


def image_layout(shape) -> str | None:
    """NCHW or NHWC for a rank-4 shape with 3 colour channels, else None."""
    if len(shape) != 4:
        return None
    if shape[1] == 3:
        return "NCHW"
    if shape[3] == 3:
        return "NHWC"
    return None


def batch_shape(dims, layout: str, batch: int, default_size: int = 224) -> tuple[int, int, int, int]:
    """The input shape for `batch` images: unknown (<= 0) height/width become `default_size`."""
    if layout == "NCHW":
        h, w = (d if d > 0 else default_size for d in dims[2:4])
        return (batch, 3, h, w)
    h, w = (d if d > 0 else default_size for d in dims[1:3])
    return (batch, h, w, 3)
