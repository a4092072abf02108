#!/usr/bin/env python3
"""Model Zoo compatible entry point: `python launch_benchmark.py --model-name resnet50 ...`.

Works from a source checkout (without installing) and after `pip install`. Run by
an interpreter that lacks rn50's dependencies, it says so in one line, with the
command that fixes it.
"""

import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))


def _load_main():
    try:
        from rn50.launch_benchmark import main
    except ModuleNotFoundError as exc:
        if not (exc.name or "").startswith("rn50"):
            return _not_installed(exc)
        sys.path.insert(0, os.path.join(HERE, "src"))  # a checkout without installing
        try:
            from rn50.launch_benchmark import main
        except ModuleNotFoundError as exc2:
            return _not_installed(exc2)
    return main


def _not_installed(exc):
    venv = os.path.join(HERE, ".venv", "bin", "python")
    fix = (f"run it with {venv}, or activate that environment first (. .venv/bin/activate)"
           if os.path.exists(venv) else
           "install rn50 first: python3 -m venv .venv && . .venv/bin/activate && pip install .")
    sys.stderr.write(f"launch_benchmark.py: error: rn50 is not installed for {sys.executable} "
                     f"(no module named {exc.name!r}); {fix}\n")
    sys.exit(1)


if __name__ == "__main__":
    sys.exit(_load_main()())
