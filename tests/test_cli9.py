"""The command line's streams and inputs at their edges: a closed stderr, an events-stats
answer with no series, a summary stdout refuses, an over-long token, a blank ``-o`` and
the default table's one page."""

from __future__ import annotations

import csv
import errno
import io
import os
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import anyio
import pytest
from test_cli_query import _run

from sentry_async import _cli_run
from sentry_async.cli import main
from sentry_async.testing import FakeSentry

ORG = "org-0"
TOKEN = "sntrys_cli9-test-token-0123456789abcdef0123456789abcdef"
STATS_HEADER = ["series", "y_axis", "group", "order", "timestamp", "value", "comparison_value"]
Factory = Callable[..., Awaitable[FakeSentry]]


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


class _Refusing(io.StringIO):
    """A stdout every write to fails, as ``/dev/full``, a read-only fd or a gone reader do."""

    def __init__(self, code: int) -> None:
        super().__init__()
        self.code = code

    def write(self, text: str) -> int:
        if self.code == errno.EPIPE:
            raise BrokenPipeError(self.code, "Broken pipe")
        raise OSError(self.code, "refused")


@pytest.fixture
async def server(fake_sentry_factory: Factory, monkeypatch: pytest.MonkeyPatch) -> FakeSentry:
    monkeypatch.setenv("SENTRY_AUTH_TOKEN", TOKEN)
    monkeypatch.delenv("SENTRY_URL", raising=False)
    return await fake_sentry_factory(scale="small", token=TOKEN)


@pytest.mark.parametrize("stop", ["error", "interrupted"])
async def test_with_stderr_closed_no_error_line_goes_to_stdout(
    server: FakeSentry, monkeypatch: pytest.MonkeyPatch, stop: str
) -> None:
    """``2>&-``: Python has no ``sys.stderr``, and ``print(file=None)`` writes to stdout,
    among the data. The line is dropped; the exit code still tells."""

    async def interrupted(*args: Any) -> int:
        raise KeyboardInterrupt

    if stop == "interrupted":
        monkeypatch.setattr(_cli_run, "run_query_command", interrupted)
    stdout = io.StringIO()
    monkeypatch.setattr(sys, "stdout", stdout)
    monkeypatch.setattr(sys, "stderr", None)
    argv = ["query", "usage", "--org", ORG, "--project", "nope", "--period", "1d",
            "--base-url", server.url]  # fmt: skip
    with anyio.fail_after(30):
        code = await anyio.to_thread.run_sync(main, argv)
    assert (code, stdout.getvalue()) == ((4, "") if stop == "error" else (130, ""))


@pytest.mark.parametrize("fmt", ["csv", "table"])
async def test_stats_without_series_still_writes_its_header(server: FakeSentry, fmt: str) -> None:
    """Top events that match nothing: Sentry answers ``{}``; the CSV still has its header
    (a 0-byte file breaks every reader) and the table its header and rule."""
    argv = ["query", "stats", "--org", ORG, "--period", "1d", "--top-events", "2", "--field",
            "title", "--query", 'title:"no such thing"', "--base-url", server.url]  # fmt: skip
    code, out, err = await _run(argv, out=_Terminal() if fmt == "table" else None)
    assert code == 0, err
    if fmt == "csv":
        assert list(csv.reader(io.StringIO(out))) == [STATS_HEADER]
    else:
        header, rule = out.splitlines()
        assert header.split() == STATS_HEADER and set(rule) == {"-", " "}


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EBADF, errno.EPIPE])
@pytest.mark.parametrize("command", ["export", "demo"])
async def test_a_complete_export_whose_summary_stdout_refuses_exits_0(
    server: FakeSentry, tmp_path: Path, command: str, code: int
) -> None:
    """The export's output is its files: a stdout that takes no summary (full, read-only,
    its reader gone) is no output error (exit 5); the export is complete, as with ``>&-``."""
    out = tmp_path / "out"
    argv = {
        "export": ["export", "issues", "--org", ORG, "--period", "1d", "-o", str(out),
                   "--base-url", server.url],
        "demo": ["demo", "--scale", "small", "-o", str(out)],
    }[command]  # fmt: skip
    status, _, err = await _run(argv, out=_Refusing(code))
    assert status == 0, err
    assert "error" not in err, err
    assert list(out.rglob("manifest.json")), "the export was written"


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full")
async def test_an_export_to_a_full_stdout_exits_0_not_at_exit_either(
    server: FakeSentry, tmp_path: Path
) -> None:
    """The process's own stdout, buffered: the summary that failed must not be left in the
    buffer, whose flush at exit Python reports (``Exception ignored``) with exit 120."""
    out = tmp_path / "out"
    command = [sys.executable, "-m", "sentry_async", "export", "issues", "--org", ORG,
               "--period", "1d", "-o", str(out), "--base-url", server.url]  # fmt: skip
    environment = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}
    full = os.open("/dev/full", os.O_WRONLY)
    try:
        with anyio.fail_after(60):
            result = await anyio.run_process(command, stdout=full, check=False, env=environment)
    finally:
        os.close(full)
    lines = [line for line in result.stderr.decode().splitlines() if " INFO " not in line]
    assert (result.returncode, lines) == (0, [])
    assert list(out.rglob("manifest.json")), "the export was written"


@pytest.mark.parametrize(
    "source",
    [
        "file",
        pytest.param(
            "zero",
            marks=pytest.mark.skipif(not os.path.exists("/dev/zero"), reason="needs /dev/zero"),
        ),
        "env",
    ],
)
async def test_an_overlong_token_is_refused_unread_and_unshown(
    server: FakeSentry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, source: str
) -> None:
    """A base64 key given for a token file (13 KB) was sent whole, and a server quoting the
    over-long header showed part of it; ``/dev/zero`` was read until memory ran out. Read
    a bounded amount, refuse a longer one with one line that shows none of it, and the
    same for ``$SENTRY_AUTH_TOKEN``."""
    value = "7raTuIN2Lu3oxgk4p4zNQm" * 600
    argv = ["query", "usage", "--org", ORG, "--period", "1d", "--base-url", server.url]
    if source == "env":
        monkeypatch.setenv("SENTRY_AUTH_TOKEN", value)
    else:
        path = tmp_path / "token"
        path.write_text(value + "\n")
        argv += ["--token-file", "/dev/zero" if source == "zero" else str(path)]
    code, out, err = await _run(argv)
    assert (code, out) == (2, ""), err
    (line,) = err.splitlines()
    assert line.startswith("sentry-async: error: ") and "too long" in line, line
    assert value[:8] not in line, line
    assert server.requests == []


@pytest.mark.parametrize("blank", ["", "  "])
@pytest.mark.parametrize("command", ["export", "demo"])
async def test_a_blank_output_directory_is_refused(
    server: FakeSentry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, command: str, blank: str
) -> None:
    """``-o "$OUT"`` with ``$OUT`` unset exported into the current directory (and the demo
    into a temp dir): refused as a blank ``--incremental`` is."""
    monkeypatch.chdir(tmp_path)
    argv = {
        "export": ["export", "issues", "--org", ORG, "--period", "1d", "-o", blank,
                   "--base-url", server.url],
        "demo": ["demo", "--scale", "small", "-o", blank],
    }[command]  # fmt: skip
    code, out, err = await _run(argv)
    assert (code, out) == (2, ""), err
    assert err.splitlines() == ["sentry-async: error: --output: give the output directory"]
    assert os.listdir(tmp_path) == []
    assert server.requests == []


@pytest.mark.parametrize(
    ("period", "limit", "more"), [("30d", None, True), ("30d", "2", True), ("1d", None, False)]
)
async def test_the_table_asks_for_one_page_and_knows_from_its_link_whether_more_remain(
    server: FakeSentry, period: str, limit: str | None, more: bool
) -> None:
    """The default table (100 rows, Sentry's largest page) asked for 101 rows and so a
    second full page, to learn that row 101 exists; the first page's ``Link`` says so."""
    base = ["query", "discover", "--org", ORG, "--field", "id", "--period", period,
            "--base-url", server.url]  # fmt: skip
    code, out, err = await _run([*base, "--format", "csv"])
    total = len(out.splitlines()) - 1
    assert code == 0 and (total > 100) is more and total > 2, err
    server.requests.clear()
    argv = [*base, "--format", "table", *([] if limit is None else ["--limit", limit])]
    code, out, err = await _run(argv)
    assert code == 0, err
    assert len(out.splitlines()) - 2 == min(total, int(limit or 100))
    pages = [r for r in server.requests if r.path.endswith("/events/")]
    assert len(pages) == 1, [r.path for r in pages]
    assert ("more remain" in err) is more, err
