"""The command line's log lines: drawn through the live progress display when one runs,
and a retry warning that names its request once."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator

import pytest

from sentry_async import RetryPolicy
from sentry_async._progress_display import show_progress
from sentry_async.cli import _setup_logging
from sentry_async.export import Progress
from sentry_async.testing import FakeSentry, Fault


class Terminal(io.StringIO):
    """What a terminal's stderr looks like to rich."""

    def isatty(self) -> bool:
        return True


@pytest.fixture
def terminal(monkeypatch: pytest.MonkeyPatch) -> Iterator[Terminal]:
    monkeypatch.setenv("TERM", "xterm-256color")
    for name in ("TTY_INTERACTIVE", "NO_COLOR", "FORCE_COLOR", "COLUMNS", "LINES"):
        monkeypatch.delenv(name, raising=False)
    out = Terminal()
    restore = _setup_logging(quiet=False, verbose=False, stream=out)
    try:
        yield out
    finally:
        restore()


def test_log_lines_go_above_the_live_progress_line(terminal: Terminal) -> None:
    pytest.importorskip("rich")
    progress = Progress("issues")
    log = logging.getLogger("sentry_async")
    with show_progress(progress, mode="rich", stream=terminal):
        log.warning("first record")
        log.warning("second record")
    text = terminal.getvalue()
    first, second = text.index("first record"), text.index("second record")
    # each record is printed through the display, which draws its line again below it
    assert first < text.index("issues", first) < second
    for line in text.splitlines():
        assert not ("record" in line and "ETA" in line), line  # never glued to the bar


async def test_a_retry_warning_names_its_request_once(
    fake_sentry: FakeSentry, caplog: pytest.LogCaptureFixture
) -> None:
    fake_sentry.faults.add(Fault("status", status=503, times=1))
    retry = RetryPolicy(attempts=2, backoff_base=0.01, backoff_max=0.02)
    with caplog.at_level(logging.WARNING, logger="sentry_async"):
        async with fake_sentry.client(retry=retry) as client:
            await client.request("GET", "/organizations/", params={"query": "a"})
    (warning,) = [r.getMessage() for r in caplog.records if "retrying" in r.getMessage()]
    url = f"{fake_sentry.url}/api/0/organizations/?query=a"
    assert warning.count(url) == 1, warning
    assert warning.startswith(f"retrying GET {url} in ") and warning.endswith(
        f"(attempt 2 of 2): 503: Internal Error (error id {'f' * 32})"
    )
