#!/usr/bin/env python3
"""Model Zoo compatible entry point: `python launch_benchmark.py --model-name resnet50 ...`.

Works from a source checkout (without installing) and after `pip install`.
"""

import os
import sys

try:
    from rn50.launch_benchmark import main
except ImportError:  # running from a checkout without installing
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "src"))
    from rn50.launch_benchmark import main

if __name__ == "__main__":
    sys.exit(main())
