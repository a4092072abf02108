"""What `rn50 serve` was asked for: settled once, passed down as data."""

from __future__ import annotations

from dataclasses import dataclass

from ..config import RunConfig
from ..errors import ConfigError


@dataclass(frozen=True)
class ServeConfig:
    run: RunConfig  # model, engine, precision, settings flags (batch = --max-batch)
    host: str = "127.0.0.1"
    port: int = 8000
    max_batch: int = 16
    max_delay_ms: float = 5.0
    max_queue: int = 256  # images waiting; past it, 429
    max_body_mb: float = 64.0
    deadline_s: float = 30.0
    decode_workers: int = 2
    access_log: bool = False
    batches_in_flight: int | None = None  # per worker; None: its engine's parallel requests

    def __post_init__(self) -> None:
        for name, value, low in (("--max-batch", self.max_batch, 1),
                                 ("--max-queue", self.max_queue, 1),
                                 ("--decode-workers", self.decode_workers, 1)):
            if value < low:
                raise ConfigError(f"{name} must be at least {low} (got {value})")
        if self.batches_in_flight is not None and not 1 <= self.batches_in_flight <= 64:
            raise ConfigError(f"--batches-in-flight must be 1..64 (got "
                              f"{self.batches_in_flight})")
        if not 0 <= self.port <= 65535:
            raise ConfigError(f"--port must be 0..65535 (got {self.port})")

    def in_flight(self, engine: dict) -> tuple[int, str]:
        """Batches each worker holds at once, and why: a batch handed to a worker that cannot
        start it yet waits there and can no longer grow, so by default a worker holds only
        what its engine runs in parallel."""
        if self.batches_in_flight:
            return self.batches_in_flight, "--batches-in-flight"
        return max(1, int(engine.get("infer_requests") or 1)), \
            "the requests its engine runs in parallel"

    @property
    def max_body(self) -> int:
        return int(self.max_body_mb * (1 << 20))
