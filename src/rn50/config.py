"""Run configuration: frozen dataclasses built by the CLI (or by API users), validated once."""

from __future__ import annotations

from dataclasses import dataclass, field

from .errors import ConfigError
from .settings import UserFlags

PRECISIONS = ("fp32",)


@dataclass(frozen=True)
class ModelConfig:
    """Which model to run: a file, or the built-in ResNet-50 when `path` is None."""

    path: str | None = None
    cache_dir: str | None = None
    seed: int = 0
    input_node: str | None = None
    output_node: str | None = None
    class_offset: int | None = None  # None: detected (1 for 1001-class models)
    preprocessing: str | None = None  # None: detected from the model's origin


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

    def __post_init__(self) -> None:
        if self.warmup_steps is not None and self.warmup_steps < 0:
            raise ConfigError(f"--warmup-steps must be 0 or more (got {self.warmup_steps})")
        if self.steps is not None and self.steps < 1:
            raise ConfigError(f"--steps must be at least 1 (got {self.steps})")
        if self.duration is not None and not self.duration > 0:
            raise ConfigError(f"--duration must be a positive number of seconds (got {self.duration})")
        if self.timeout is not None and not self.timeout > 0:
            raise ConfigError(f"--timeout must be a positive number of seconds (got {self.timeout})")
        if self.precision not in PRECISIONS:
            raise ConfigError(f"--precision {self.precision}: not implemented yet; "
                              f"available: {', '.join(PRECISIONS)}")
