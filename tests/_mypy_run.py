"""mypy run in this process, leaving the process as it found it."""

from __future__ import annotations

import sys


def run_mypy(arguments: list[str]) -> tuple[str, str, int]:
    """``mypy.api.run``, with the recursion limit it raises (to 16,384, and leaves so) put
    back: other tests count on the default, under which a 10,000-deep JSON page is a decode
    error."""
    from mypy import api  # the callers decide whether a missing mypy skips or fails

    limit = sys.getrecursionlimit()
    try:
        return api.run(arguments)
    finally:
        sys.setrecursionlimit(limit)
