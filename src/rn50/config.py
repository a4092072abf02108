"""Run configuration: frozen dataclasses built by the CLI (or by API users), validated once."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from .errors import ConfigError
from .settings import UserFlags

PRECISIONS = ("fp32", "bfloat16", "int8")


@dataclass(frozen=True)
class ModelConfig:
    """Which model to run: a file, or the built-in ResNet-50 when `path` is None."""

    path: str | None = None
    cache_dir: str | None = None
    seed: int = 0
    input_node: str | None = None
    output_node: str | None = None
    class_offset: int | None = None  # None: detected (1 for 1001-class models)
    # flags over the model's own preprocessing: {"preset": ..., "mean": [...], ...}; None:
    # from the model's metadata or origin (see models.metadata.resolve_preprocessing)
    preprocessing: dict | None = None


@dataclass(frozen=True)
class DataConfig:
    """Real images: where they are and how the decode pipeline runs."""

    paths: tuple[str, ...]
    labels_file: str | None = None
    workers: int | None = None  # decode processes; None: one per 8 cores, at least 1
    shortcut: bool = True  # JPEG DCT-domain downscaling where it cannot change the crop much
    strict: bool = False  # stop at the first bad record instead of skipping it
    max_images: int | None = None
    top_k: int = 5
    skip_keys: tuple[str, ...] = ()  # already classified (resume)
    graph_preprocessing: bool = True  # normalise inside the engine graph where it can

    def __post_init__(self) -> None:
        if self.workers is not None and self.workers < 0:
            raise ConfigError(f"--data-workers must be 0 or more (got {self.workers})")
        if self.max_images is not None and self.max_images < 1:
            raise ConfigError(f"--max-images must be at least 1 (got {self.max_images})")
        if not 1 <= self.top_k <= 1000:
            raise ConfigError(f"--top-k must be between 1 and 1000 (got {self.top_k})")

    def to_job(self, physical_cores: int) -> dict:
        workers = self.workers if self.workers is not None else max(1, min(8, physical_cores // 8))
        return {"paths": list(self.paths), "labels_file": self.labels_file, "workers": workers,
                "shortcut": self.shortcut, "strict": self.strict, "max_images": self.max_images,
                "top_k": self.top_k, "skip_keys": list(self.skip_keys),
                "graph_preprocessing": self.graph_preprocessing}


@dataclass(frozen=True)
class CalibrationConfig:
    """How an INT8 model is calibrated and checked (see rn50.quantize)."""

    data: DataConfig | None = None  # None: synthetic images, accuracy unknown
    size: int = 300
    holdout: int = 100  # images after the calibration ones, for the accuracy guard
    max_accuracy_drop: float | None = None  # percentage points of top-1

    def __post_init__(self) -> None:
        if self.size < 1:
            raise ConfigError(f"--calibration-size must be at least 1 (got {self.size})")
        if self.holdout < 0:
            raise ConfigError(f"--holdout must be 0 or more (got {self.holdout})")

    def identity(self) -> str:
        """What the calibration set is, for the INT8 cache key."""
        import hashlib
        from pathlib import Path

        if self.data is None:
            return f"synthetic:seed0:{self.size}:{self.holdout}"
        parts = []
        for p in sorted(self.data.paths):
            path = Path(p).expanduser().resolve()
            files = sorted(path.rglob("*")) if path.is_dir() else [path]
            parts += [f"{f}:{f.stat().st_size}:{f.stat().st_mtime_ns}" for f in files
                      if f.is_file()]
        return f"{self.size}:{self.holdout}:" + hashlib.sha256("\n".join(parts).encode()).hexdigest()


SCENARIOS = ("benchmark", "accuracy", "classify", "mlperf", "serve", "profile")


@dataclass(frozen=True)
class RunConfig:
    """Everything one benchmark run needs; None means "not set by the user"."""

    flags: UserFlags = field(default_factory=UserFlags)
    model: ModelConfig = field(default_factory=ModelConfig)
    backend: str = "openvino"
    precision: str = "fp32"
    warmup_steps: int | None = None
    steps: int | None = None
    duration: float | None = None
    output_dir: str = "rn50_logs"
    json_path: str | None = None
    verbose: bool = False
    timeout: float | None = None
    command_line: tuple[str, ...] = ()
    data: DataConfig | None = None  # None: synthetic images
    scenario: str = "benchmark"  # benchmark | accuracy | classify
    calibration: CalibrationConfig = field(default_factory=CalibrationConfig)  # for int8

    def __post_init__(self) -> None:
        if self.flags.precision != self.precision:  # one source: the run's precision
            object.__setattr__(self, "flags", replace(self.flags, precision=self.precision))
        if self.warmup_steps is not None and self.warmup_steps < 0:
            raise ConfigError(f"--warmup-steps must be 0 or more (got {self.warmup_steps})")
        if self.steps is not None and self.steps < 1:
            raise ConfigError(f"--steps must be at least 1 (got {self.steps})")
        if self.duration is not None and not self.duration > 0:
            raise ConfigError(f"--duration must be a positive number of seconds (got {self.duration})")
        if self.timeout is not None and not self.timeout > 0:
            raise ConfigError(f"--timeout must be a positive number of seconds (got {self.timeout})")
        if self.scenario not in SCENARIOS:
            raise ConfigError(f"unknown scenario {self.scenario!r}")
        if self.scenario in ("accuracy", "classify") and self.data is None:
            raise ConfigError(f"{self.scenario} needs real images: give --data-location")
        if self.precision not in PRECISIONS:
            raise ConfigError(f"--precision {self.precision}: unknown; "
                              f"choose {', '.join(PRECISIONS)}")
