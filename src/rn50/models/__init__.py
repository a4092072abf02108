"""Models: the built-in ResNet-50, the on-disk cache, and user model files."""

from .resolve import ModelSpec, resolve_model

__all__ = ["ModelSpec", "resolve_model"]
