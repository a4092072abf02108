"""rn50: fast ResNet-50 image recognition benchmarks on CPUs."""

__version__ = "0.1.0"

from .api import benchmark, recommend  # noqa: E402
from .config import ModelConfig, RunConfig  # noqa: E402
from .platform import detect_platform  # noqa: E402
from .settings import Settings, UserFlags  # noqa: E402

__all__ = ["__version__", "benchmark", "recommend", "detect_platform", "ModelConfig", "RunConfig",
           "Settings", "UserFlags"]
