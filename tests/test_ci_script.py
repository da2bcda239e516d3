"""The CI script: a failing test run must fail it."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CI = ROOT / ".ci" / "run"


@pytest.mark.skipif(not CI.is_file() or shutil.which("bash") is None, reason="needs .ci/run")
def test_a_failing_step_of_the_test_command_stops_ci(tmp_path: Path) -> None:
    """Under ``set -e`` a failure inside an ``a && b && c`` list does not stop a script:
    the README's test command, run as such a list, let CI go on (and end green) after a
    failing test. Its first step fails here; nothing after it may run."""
    lines = CI.read_text().splitlines()
    command = next(line for line in lines if "coverage run -m pytest" in line)
    fake = tmp_path / "bin"
    fake.mkdir()
    python = fake / "python3"
    python.write_text("#!/bin/sh\nexit 3\n")
    python.chmod(0o755)
    result = subprocess.run(
        ["bash", "-c", "\n".join(["set -euo pipefail", command, "echo reached"])],
        cwd=tmp_path,
        env={**os.environ, "PATH": f"{fake}{os.pathsep}{os.environ['PATH']}"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert "reached" not in result.stdout
