"""ImageNet-1k class names, shipped with the package (`imagenet_classes.tsv`), never downloaded.

Index i (0..999) is the model's output i for a 1000-class model, output i + 1
for a 1001-class model (background at 0), and TFRecord label i + 1.
"""

from __future__ import annotations

from functools import lru_cache
from importlib import resources


@lru_cache(maxsize=1)
def _classes() -> tuple[tuple[str, str], ...]:
    text = resources.files("rn50.data").joinpath("imagenet_classes.tsv").read_text()
    rows = [line.split("\t", 1) for line in text.splitlines()
            if line and not line.startswith("#")]
    return tuple((synset, name) for synset, name in rows)


def imagenet_synsets() -> list[str]:
    """The 1000 WordNet synsets in class-index order."""
    return [synset for synset, _ in _classes()]


def class_name(label: int) -> str:
    """Human-readable name of 1-based ImageNet `label` (1 = tench), or `class N`."""
    classes = _classes()
    if 1 <= label <= len(classes):
        return classes[label - 1][1]
    return "background" if label == 0 else f"class {label}"


def class_synset(label: int) -> str:
    classes = _classes()
    return classes[label - 1][0] if 1 <= label <= len(classes) else ""
