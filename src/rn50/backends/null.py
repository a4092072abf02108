"""A backend that does no work: measures the harness's own overhead."""

from __future__ import annotations

import numpy as np

from ..models import ModelSpec
from ..settings import Settings
from ._base import Capabilities, InputSpec, SyncSession

NUM_CLASSES = 1000
CAPABILITIES = Capabilities(
    name="null", backend_class="NullBackend", engine_module=None, install=None, formats=(),
    precisions=("fp32", "bfloat16", "int8"), reads_back="nothing: no engine", real=False)


class NullSession(SyncSession):
    def __init__(self, batch_size: int) -> None:
        self.input_spec = InputSpec("input", (batch_size, 3, 224, 224), "NCHW")
        self.load_timings = {"read_s": 0.0, "compile_s": 0.0}
        self.num_classes = NUM_CLASSES
        self._logits = np.zeros((batch_size, NUM_CLASSES), dtype=np.float32)

    def run(self, batch: np.ndarray) -> np.ndarray:
        return self._logits

    def applied_settings(self) -> dict:
        return {"applied": {"work": "none: returns zeros instantly; figures are harness overhead"},
                "execution_precision": "none",
                "execution_precision_source": "the null backend computes nothing"}


class NullBackend:
    name = "null"

    def versions(self) -> dict[str, str]:
        return {"null": "1"}

    def load(self, model: ModelSpec, settings: Settings, precision: str,
             preprocess=None) -> NullSession:
        return NullSession(int(settings.batch_size.value))
