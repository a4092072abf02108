"""Models: the built-in ResNet-50, the on-disk cache, and user model files."""

from .resolve import ModelSpec

__all__ = ["ModelSpec"]
