"""Signals and stdout's encoding: the command line as a subprocess (what users run), and
``main`` in this process for what a program around it sees.

From the first Ctrl-C or SIGTERM on, a second one (impatient users, a supervisor's stop
repeated) changes nothing: the checkpoint is saved, one line says so, exit 130 or 143.
``query`` writes CSV and JSON Lines as UTF-8 whatever the locale (Windows gives a
redirected stdout its ANSI code page), and a table escapes what the terminal cannot show.

A second signal "during the clean-up" is sent from inside the clean-up: the subprocess
runs the command with the exporter's page writer and commit wrapped (:data:`STOPPER`), the
first signal raised once a page is written, the second as the checkpoint is committed.
"""

from __future__ import annotations

import csv
import io
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import msgspec
import pytest

from sentry_async import cli
from sentry_async.export import CHECKPOINT_NAME, MANIFEST_NAME, _runner
from sentry_async.testing import FakeSentry, FakeSentryFactory, Fault, SeedConfig
from sentry_async.testing.pytest_plugin import FIXED_NOW

ORG = "org-0"
DATA = SeedConfig(
    orgs=1, projects_per_org=3, issues_per_project=12, events_per_issue=(1, 4), days=20
)
END = FIXED_NOW - timedelta(hours=5)
START = END - timedelta(days=14)
TITLE = "Ошибка: 表 не найден €"
"""Cyrillic and CJK (in no Windows ANSI code page together) and the euro sign (in cp1252,
not in latin-1 or ASCII)."""
TIMEOUT = 120
"""Seconds any one subprocess may take: generous, only there so a hang fails the test."""

STOPPER = """
import signal, sys
from sentry_async.cli import main
from sentry_async.export import _runner

first, second = (getattr(signal, name, None) for name in sys.argv[1:3])
sent = []
write_page, commit = _runner.Exporter._write_page, _runner.Exporter._commit


async def write_page_then_signal(self, *args, **kwargs):
    await write_page(self, *args, **kwargs)
    if not sent:
        sent.append(first)
        signal.raise_signal(first)


async def signal_again_then_commit(self):
    if len(sent) == 1 and second is not None:
        sent.append(second)
        signal.raise_signal(second)
    await commit(self)


_runner.Exporter._write_page = write_page_then_signal
_runner.Exporter._commit = signal_again_then_commit
sys.exit(main(sys.argv[3:]))
"""
"""``python -c STOPPER FIRST SECOND ARGV...``: the command, ``FIRST`` (a signal's name)
raised in the process once its first page is written, ``SECOND`` (or ``-``: none) at the
commit that saves the checkpoint on the way out."""


def _run(argv: list[str], **env: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        argv,
        capture_output=True,
        timeout=TIMEOUT,
        check=False,
        env={**os.environ, **env},
    )


def _stopped(first: str, second: str, argv: list[str]) -> subprocess.CompletedProcess[bytes]:
    return _run([sys.executable, "-c", STOPPER, first, second, *argv])


def _export_args(server: FakeSentry, out: Path, token_file: Path) -> list[str]:
    token_file.write_text(server.token)
    return ["export", "events", "--org", ORG, "--output", str(out), "--base-url", server.url,
            "--since", START.isoformat(), "--until", END.isoformat(), "--window", "7d",
            "--concurrency", "1", "--token-file", str(token_file), "--quiet"]  # fmt: skip


def _checkpoint(directory: Path) -> dict[str, Any]:
    return msgspec.json.decode((directory / CHECKPOINT_NAME).read_bytes())  # type: ignore[no-any-return]


def _assert_saved(directory: Path) -> None:
    """A checkpoint of an unfinished export that covers every byte on disk, no more."""
    checkpoint = _checkpoint(directory)
    assert not checkpoint["complete"]
    assert sum(stream["pages"] for stream in checkpoint["streams"].values()) > 0
    for name, state in checkpoint["files"].items():
        path = directory / name
        assert (path.stat().st_size if path.exists() else 0) == state["offset"], name


def _ids(path: Path) -> list[str]:
    return [msgspec.json.decode(line)["id"] for line in path.read_bytes().splitlines()]


STOPS = {
    "SIGINT": (130, "interrupted"),
    "SIGTERM": (143, "terminated (SIGTERM)"),
}


@pytest.mark.parametrize(
    ("first", "second"),
    [("SIGINT", "SIGINT"), ("SIGINT", "SIGTERM"), ("SIGTERM", "SIGINT"), ("SIGTERM", "SIGTERM")],
)
def test_a_second_signal_while_the_checkpoint_is_saved_changes_nothing(
    fake_sentry_factory: FakeSentryFactory, tmp_path: Path, first: str, second: str
) -> None:
    server = fake_sentry_factory.start(scale=DATA)
    out = tmp_path / "out"
    argv = _export_args(server, out, tmp_path / "token")
    result = _stopped(first, second, argv)
    code, said = STOPS[first]
    err = result.stderr.decode()
    assert result.returncode == code, err
    assert err == f"sentry-async: {said}; the checkpoint is saved, run again with --resume\n"
    _assert_saved(out)
    resumed = _run([sys.executable, "-m", "sentry_async", *argv, "--resume"])
    assert resumed.returncode == 0, resumed.stderr.decode()
    manifest = msgspec.json.decode((out / MANIFEST_NAME).read_bytes())
    assert manifest["runs"] == 2
    for slug in server.data.project_slugs(ORG):
        ids = _ids(out / f"{slug}.jsonl")
        expected = server.data.event_ids(
            ORG, slug, start=START.timestamp(), end=END.timestamp(),
            include_transactions=False,
        )
        assert len(ids) == len(set(ids)) and sorted(ids) == sorted(expected), slug


@pytest.mark.parametrize(("first", "second"), [("SIGTERM", "-"), ("SIGINT", "SIGTERM")])
def test_the_demo_saves_its_checkpoint_on_a_signal_and_finishes_when_run_again(
    tmp_path: Path, first: str, second: str
) -> None:
    out = tmp_path / "demo"
    argv = ["demo", "--scale", "small", "--output", str(out), "--quiet"]
    result = _stopped(first, second, argv)
    code, said = STOPS[first]
    err = result.stderr.decode()
    assert result.returncode == code, err
    assert err == f"sentry-async: {said}; run 'sentry-async demo -o {out}' again to finish it\n"
    _assert_saved(out / "issues")
    again = _run([sys.executable, "-m", "sentry_async", *argv])
    assert again.returncode == 0, again.stderr.decode()
    reference = tmp_path / "reference"
    whole = _run([sys.executable, "-m", "sentry_async", "demo", "--scale", "small",
                  "--output", str(reference), "--quiet"])  # fmt: skip
    assert whole.returncode == 0, whole.stderr.decode()
    for kind in ("issues", "events"):
        names = sorted(path.name for path in (reference / kind).glob("*.jsonl"))
        assert names == sorted(path.name for path in (out / kind).glob("*.jsonl")), kind
        for name in names:
            ids = _ids(out / kind / name)
            assert len(ids) == len(set(ids)), name
            assert sorted(ids) == sorted(_ids(reference / kind / name)), name


def test_sigterm_during_a_query_is_one_line_and_143(
    fake_sentry_factory: FakeSentryFactory, tmp_path: Path
) -> None:
    server = fake_sentry_factory.start(scale=DATA)
    # Slow enough that the answer cannot come before the signal; not waited for after it.
    server.faults.add(Fault("slow", path="/events/", delay=TIMEOUT / 2, times=None))
    token_file = tmp_path / "token"
    token_file.write_text(server.token)
    argv = [sys.executable, "-m", "sentry_async", "query", "discover", "--org", ORG,
            "--field", "title", "--since", START.isoformat(), "--until", END.isoformat(),
            "--base-url", server.url, "--token-file", str(token_file)]  # fmt: skip
    process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        asked = _wait_until(lambda: any("/events/" in r.path for r in server.requests))
        assert process.poll() is None and asked, "the query ended before it was stopped"
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=TIMEOUT)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert (process.returncode, err.decode()) == (143, "sentry-async: terminated (SIGTERM)\n")
    assert out == b""


def _wait_until(done: Callable[[], bool]) -> bool:
    """Whether ``done()`` became true within :data:`TIMEOUT` seconds (polled, bounded)."""
    for _ in range(TIMEOUT * 100):
        if done():
            return True
        time.sleep(0.01)
    return False


@pytest.fixture
def titled(fake_sentry: FakeSentry) -> FakeSentry:
    """The small fake, with one event of an issue titled :data:`TITLE` an hour before now."""
    project = fake_sentry.builder.organization(ORG).project("project-0-0")
    issue = project.add_issue(TITLE, events=0)
    issue.add_event(timestamp=FIXED_NOW - timedelta(hours=1))
    return fake_sentry


def _query(server: FakeSentry, *extra: str, encoding: str) -> subprocess.CompletedProcess[bytes]:
    argv = [sys.executable, "-m", "sentry_async", "query", "discover", "--org", ORG,
            "--field", "title", "--field", "id", "--since", "2026-05-31",
            "--until", FIXED_NOW.isoformat(), "--base-url", server.url, *extra]  # fmt: skip
    return _run(argv, SENTRY_AUTH_TOKEN=server.token, PYTHONIOENCODING=encoding)


@pytest.mark.parametrize("encoding", ["cp1252", "ascii", "latin-1"])
def test_csv_and_json_lines_are_utf_8_whatever_stdout_encoding(
    titled: FakeSentry, encoding: str
) -> None:
    written = _query(titled, encoding=encoding)
    assert written.returncode == 0, written.stderr.decode()
    rows = list(csv.DictReader(io.StringIO(written.stdout.decode("utf-8"))))
    assert TITLE in {row["title"] for row in rows}
    lines = _query(titled, "--format", "json", encoding=encoding)
    assert lines.returncode == 0, lines.stderr.decode()
    decoded = [json.loads(line) for line in lines.stdout.decode("utf-8").splitlines()]
    assert TITLE in {row["title"] for row in decoded}
    assert len(decoded) == len(rows)


def test_a_table_escapes_what_stdout_encoding_cannot_show_and_stays_aligned(
    titled: FakeSentry,
) -> None:
    shown = _query(titled, "--format", "table", "--limit", "1000", encoding="ascii")
    assert shown.returncode == 0, shown.stderr.decode()
    lines = shown.stdout.decode("ascii").splitlines()
    escaped = TITLE.encode("ascii", "backslashreplace").decode("ascii")
    row = next(line for line in lines if line.startswith(escaped))
    # The title column is as wide as its widest (escaped) text: the id column starts after.
    assert lines[1].index(" ") == len(escaped) and row[len(escaped) :].startswith("  ")
    assert "Traceback" not in shown.stderr.decode()


class _AsciiOnly(io.StringIO):
    """What a program around ``main`` may hand it: a stream that takes ASCII only and says
    nothing of its encoding."""

    def write(self, text: str) -> int:
        text.encode("ascii")
        return super().write(text)


@pytest.mark.parametrize("fmt", ["csv", "json", "table"])
def test_a_stream_that_cannot_take_the_answer_is_one_line_and_exit_5(
    titled: FakeSentry, monkeypatch: pytest.MonkeyPatch, fmt: str
) -> None:
    monkeypatch.setenv("SENTRY_AUTH_TOKEN", titled.token)
    err = io.StringIO()
    argv = ["query", "discover", "--org", ORG, "--field", "title", "--since", "2026-05-31",
            "--until", FIXED_NOW.isoformat(), "--base-url", titled.url, "--format", fmt,
            "--limit", "1000"]  # fmt: skip
    code = cli.main(argv, stdout=_AsciiOnly(), stderr=err)
    lines = err.getvalue().splitlines()
    assert code == 5, lines
    assert len(lines) == 1 and lines[0].startswith("sentry-async: error: output error:"), lines
    assert "\\u041e" in lines[0], "names what it could not write"


def test_signals_are_handled_as_before_once_main_returns(
    fake_sentry_factory: FakeSentryFactory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``main`` in a program's main thread: SIGTERM then Ctrl-C during the clean-up stop
    it once, and the program's own handlers are back afterwards."""
    server = fake_sentry_factory.start(scale=DATA)
    out = tmp_path / "out"
    write_page, commit = _runner.Exporter._write_page, _runner.Exporter._commit
    sent: list[int] = []

    async def write_page_then_sigterm(self: Any, *args: Any, **kwargs: Any) -> None:
        await write_page(self, *args, **kwargs)
        if not sent:
            sent.append(signal.SIGTERM)
            signal.raise_signal(signal.SIGTERM)

    async def ctrl_c_then_commit(self: Any) -> None:
        if len(sent) == 1:
            sent.append(signal.SIGINT)
            signal.raise_signal(signal.SIGINT)
        await commit(self)

    monkeypatch.setattr(_runner.Exporter, "_write_page", write_page_then_sigterm)
    monkeypatch.setattr(_runner.Exporter, "_commit", ctrl_c_then_commit)
    before = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)
    err = io.StringIO()
    try:
        code = cli.main(_export_args(server, out, tmp_path / "token"), stderr=err)
    except KeyboardInterrupt:
        pytest.fail(f"Ctrl-C escaped main (a traceback for the user): {err.getvalue()!r}")
    assert sent == [signal.SIGTERM, signal.SIGINT]
    assert (code, err.getvalue()) == (
        143,
        "sentry-async: terminated (SIGTERM); the checkpoint is saved, run again with --resume\n",
    )
    _assert_saved(out)
    assert (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)) == before
