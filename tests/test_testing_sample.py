"""The sample application's tests, run by pytest in a subprocess under each async test style.

``examples/testing-sample`` is a stand-alone project (its own ``pytest.ini``) whose tests
use the fake Sentry's fixtures, build their own data and assert on recorded requests. The
same fixtures must serve pytest-asyncio in auto and strict mode and anyio's plugin, where
trio being installed must not add trio runs of tests that use the fake.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "examples" / "testing-sample"
DEADLINE = 120.0
"""Seconds for all runs together (they run at once; each takes a few seconds when the
machine is not shared, mostly pytest's start-up)."""

MODES: dict[str, list[str]] = {
    "asyncio-auto": ["-o", "asyncio_mode=auto", "test_triage.py", "test_marked_asyncio.py"],
    "asyncio-strict": ["-o", "asyncio_mode=strict", "test_marked_asyncio.py"],
    "anyio-marked": ["test_marked_anyio.py"],
    "anyio-auto": ["-o", "anyio_mode=auto", "test_triage.py"],
    "readme": ["-o", "asyncio_mode=auto", "test_readme.py"],
}
PASSED = {"asyncio-auto": 7, "asyncio-strict": 2, "anyio-marked": 2, "anyio-auto": 5, "readme": 2}


def _readme_example(directory: Path) -> Path:
    """The README's example tests, as a project of their own."""
    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index("## A fake Sentry for your tests") :]
    code = re.search(r"```python\n(.*?)```", section, re.S)
    assert code is not None, "the README's testing section has an example"
    (directory / "pytest.ini").write_bytes((SAMPLE / "pytest.ini").read_bytes())
    (directory / "test_readme.py").write_text(code.group(1))
    return directory


def _trio_installed() -> bool:
    try:
        import trio  # noqa: F401
    except ImportError:
        return False
    return True


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[int, str]]:
    """Every mode's (exit code, output), the runs started together and bounded in time."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("PYTEST_ADDOPTS", "PYTEST_PLUGINS", "PYTEST_DISABLE_PLUGIN_AUTOLOAD")
    }
    # hypothesis's plugin is left out: the sample does not use it, and importing it is
    # most of a run's start-up.
    base = [sys.executable, "-m", "pytest", "-v", "--color=no"]
    base += ["-p", "no:cacheprovider", "-p", "no:hypothesispytest"]
    readme = _readme_example(tmp_path_factory.mktemp("readme"))
    procs = {
        mode: subprocess.Popen(
            [*base, *args],
            cwd=readme if mode == "readme" else SAMPLE,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
        for mode, args in MODES.items()
    }
    deadline = time.monotonic() + DEADLINE
    out: dict[str, tuple[int, str]] = {}
    try:
        for mode, proc in procs.items():
            stdout, _ = proc.communicate(timeout=max(0.1, deadline - time.monotonic()))
            out[mode] = (proc.returncode, stdout.decode(errors="replace"))
    finally:
        for proc in procs.values():
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    return out


@pytest.mark.slow
@pytest.mark.timeout(DEADLINE + 30)
@pytest.mark.parametrize("mode", list(MODES))
def test_sample_project_passes(runs: dict[str, tuple[int, str]], mode: str) -> None:
    code, output = runs[mode]
    assert code == 0, output
    summary = output.strip().splitlines()[-1]
    assert re.search(rf"\b{PASSED[mode]} passed\b", summary), output
    assert not re.search(r"\b(failed|error|errors|skipped)\b", summary), output
    assert "[trio]" not in output, output


@pytest.mark.slow
@pytest.mark.timeout(DEADLINE + 30)
@pytest.mark.parametrize("mode", ["anyio-marked", "anyio-auto"])
def test_anyio_runs_pin_tests_using_the_fake_to_asyncio(
    runs: dict[str, tuple[int, str]], mode: str
) -> None:
    _, output = runs[mode]
    ran = re.findall(r"::(test_\w+)\[(\w+)\] PASSED", output)
    assert len(ran) == PASSED[mode], output
    assert {backend for _, backend in ran} == {"asyncio"}, output
    if _trio_installed():
        assert f"{PASSED[mode]} deselected" in output.strip().splitlines()[-1], output
