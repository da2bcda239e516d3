"""The benchmark scripts as modules, for the tests that check them (they live outside the
package, in ``benchmarks/``, and import each other by bare name)."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from typing import Any

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"


def import_benchmark(name: str) -> Any:
    """``benchmarks/<name>.py``, imported with that folder on the path only meanwhile."""
    sys.path.insert(0, str(BENCHMARKS))
    try:
        return importlib.import_module(name)
    finally:
        sys.path.remove(str(BENCHMARKS))
