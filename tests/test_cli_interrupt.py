"""Ctrl-C at any moment of the command: one line on stderr and exit 130, never a traceback."""

from __future__ import annotations

import io
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from sentry_async import _cli_run, cli

ORG = "org-0"
TOKEN = "sntrys_cli-test-token-5d41402abc4b2a76b9719d911017c592"


def _run(argv: list[str]) -> tuple[int, str]:
    """``main`` in this (the main) thread, where Ctrl-C is delivered; a KeyboardInterrupt
    that escapes it is a failure here, not the end of the test session."""
    err = io.StringIO()
    try:
        code = cli.main(argv, stdout=io.StringIO(), stderr=err)
    except KeyboardInterrupt:
        pytest.fail(f"Ctrl-C escaped main (a traceback for the user): {err.getvalue()!r}")
    return code, err.getvalue()


def test_ctrl_c_while_the_command_is_imported_prints_one_line() -> None:
    """What a console script does, with Ctrl-C landing inside an import of the command."""
    code = (
        "import sys\n"
        "class Interrupt:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name == 'sentry_async._query_command':\n"
        "            raise KeyboardInterrupt\n"
        "sys.meta_path.insert(0, Interrupt())\n"
        "from sentry_async.cli import main\n"
        "sys.exit(main(['--version']))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert (result.returncode, result.stderr) == (130, "sentry-async: interrupted\n")


def test_ctrl_c_before_the_command_runs_prints_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    def interrupted() -> Any:
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, "build_parser", interrupted)
    assert _run(["--version"]) == (130, "sentry-async: interrupted\n")


def test_a_second_ctrl_c_while_cleaning_up_changes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SENTRY_AUTH_TOKEN", TOKEN)

    async def interrupted(*args: Any) -> int:
        raise KeyboardInterrupt

    setup = cli._setup_logging

    def second_ctrl_c(*args: Any) -> Callable[[], None]:
        restore = setup(*args)

        def again() -> None:
            signal.raise_signal(signal.SIGINT)
            restore()

        return again

    monkeypatch.setattr(_cli_run, "run_export", interrupted)
    monkeypatch.setattr(cli, "_setup_logging", second_ctrl_c)
    before = signal.getsignal(signal.SIGINT)
    code, err = _run(["export", "events", "--org", ORG, "-o", str(tmp_path / "out")])
    assert code == 130
    assert err == "sentry-async: interrupted; the checkpoint is saved, run again with --resume\n"
    assert signal.getsignal(signal.SIGINT) is before, "Ctrl-C is handled as before afterwards"
