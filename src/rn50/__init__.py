"""rn50: fast ResNet-50 image recognition benchmarks on CPUs.

    import rn50
    settings = rn50.recommend()                      # the seed's settings for this CPU
    record = rn50.benchmark(rn50.RunConfig())        # runs in a pinned engine process
    result = rn50.load_result("rn50_logs/....json")  # any result file, typed

Names are imported on first use, so `import rn50.settings` (or an engine worker)
does not load the whole API.
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

_LAZY = {
    "benchmark": "rn50.api", "recommend": "rn50.api", "load_result": "rn50.results",
    "ModelConfig": "rn50.config", "RunConfig": "rn50.config",
    "detect_platform": "rn50.platform", "Settings": "rn50.settings", "UserFlags": "rn50.settings",
}
__all__ = ["__version__", *_LAZY]


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'rn50' has no attribute {name!r}")
