"""mypy run in a process of its own, leaving this one as it found it."""

from __future__ import annotations

import subprocess
import sys


def run_mypy(arguments: list[str]) -> tuple[str, str, int]:
    """``mypy.api.run``'s (stdout, stderr, exit status), from a child process: mypy run in
    this one would leave its caches behind (some 860,000 objects, which every later full
    garbage collection of the suite walks again) and its raised recursion limit (other
    tests count on the default, under which a 10,000-deep JSON page is a decode error)."""
    import mypy  # noqa: F401  # the callers decide whether a missing mypy skips or fails

    done = subprocess.run(
        [sys.executable, "-m", "mypy", *arguments],
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        check=False,
    )
    return done.stdout, done.stderr, done.returncode
