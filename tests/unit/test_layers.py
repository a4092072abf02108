"""Layers import only downward (ARCHITECTURE.md): checked on every import in src/, lazy ones too."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src" / "rn50"

LAYERS = {  # top-level module or package of rn50 -> its layer (higher may import lower)
    **dict.fromkeys(("errors", "limits", "interrupts", "config", "platform", "topology",
                     "instances", "settings",
                     "models", "data", "measure", "results"), 0),
    "backends": 1,
    **dict.fromkeys(("scenarios", "precision"), 2),
    "launch": 3,
    "report": 4,
    **dict.fromkeys(("api", "quantize", "export", "parity", "fetch", "emit", "container",
                     "mlperf", "serve", "tune", "profiling", "cluster"), 5),
    **dict.fromkeys(("cli", "launch_benchmark", "__main__", "__init__"), 6),
}


def top(path: Path) -> str:
    return path.relative_to(SRC).parts[0].removesuffix(".py")


def imported(path: Path) -> list[tuple[int, str]]:
    """(line, rn50 top-level name) of every relative or rn50 import in a module."""
    package = path.relative_to(SRC).parent.parts
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[:len(package) - (node.level - 1)] if node.level > 1 else package
                parts = [*base, *(node.module.split(".") if node.module else [])]
                names = parts[:1] or [alias.name for alias in node.names]
            elif node.module and node.module.split(".")[0] == "rn50":
                names = node.module.split(".")[1:2] or [a.name for a in node.names]
            else:
                continue
            found += [(node.lineno, name) for name in names]
    return found


@pytest.mark.parametrize("path", sorted(SRC.rglob("*.py")), ids=lambda p: str(p.relative_to(SRC)))
def test_no_module_imports_a_higher_layer(path):
    layer = LAYERS[top(path)]
    upward = [f"line {line}: {name} (layer {LAYERS[name]})" for line, name in imported(path)
              if name in LAYERS and LAYERS[name] > layer]
    assert not upward, f"{path.relative_to(SRC)} (layer {layer}) imports upward: {upward}"


def test_every_module_has_a_layer():
    assert {top(p) for p in SRC.rglob("*.py")} <= set(LAYERS)
