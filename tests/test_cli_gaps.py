"""Gaps of ``sentry-async``: an issue or project named twice (``5`` and ``05``) exported
once, and a signal at the end of ``main`` leaving its exit code as it was."""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
from datetime import timedelta
from pathlib import Path
from types import FrameType
from typing import Any

import msgspec
import pytest
from test_cli_args import ORG, TOKEN, Factory, _run
from test_cli_signals import DATA, END, START, TIMEOUT

from sentry_async import __version__, _cli_run, cli
from sentry_async.export import MANIFEST_NAME, ExportSpec
from sentry_async.testing import FakeSentry, FakeSentryFactory
from sentry_async.testing.pytest_plugin import FIXED_NOW

RANGE = ["--since", (FIXED_NOW - timedelta(days=90)).isoformat(), "--until", FIXED_NOW.isoformat()]

# One issue, one project, named two ways.


@pytest.mark.parametrize(
    ("issues", "kept"),
    [
        (("5", "05"), ("5",)),
        (("05", "5"), ("05",)),
        ((" 5", "5 ", "005"), ("5",)),
        ((5, "5", "12", "012"), ("5", "12")),
    ],
)
def test_an_issue_named_two_ways_is_one_issue_of_the_spec(
    issues: tuple[Any, ...], kept: tuple[str, ...]
) -> None:
    """Sentry reads issue ids as integers: ``05`` is issue 5, which the spec made two
    streams of (its events written twice). The first spelling is kept, as the fingerprint
    of an export begun with ``05`` alone has it."""
    spec = ExportSpec(kind="events", org=ORG, issues=issues)
    assert spec.issues == kept
    assert spec.fingerprint() == ExportSpec(kind="events", org=ORG, issues=kept).fingerprint()


@pytest.mark.parametrize(
    ("projects", "kept"),
    [
        (("5", "05"), ("5",)),
        (("007",), ("7",)),
        (("backend", 5, " 05"), ("backend", "5")),
    ],
)
def test_a_project_id_is_read_as_sentry_reads_it(
    projects: tuple[Any, ...], kept: tuple[str, ...]
) -> None:
    """``05`` is project 5 to Sentry (and to ``query --project``); the export looked it up
    as written and found no such project."""
    assert ExportSpec(kind="events", org=ORG, projects=projects).projects == kept


@pytest.fixture
async def server(fake_sentry_factory: Factory, monkeypatch: pytest.MonkeyPatch) -> FakeSentry:
    monkeypatch.setenv("SENTRY_AUTH_TOKEN", TOKEN)
    monkeypatch.delenv("SENTRY_URL", raising=False)
    return await fake_sentry_factory(scale="small", token=TOKEN)


def _manifest(directory: Path) -> dict[str, Any]:
    return msgspec.json.decode((directory / MANIFEST_NAME).read_bytes())  # type: ignore[no-any-return]


def _ids(path: Path) -> list[str]:
    return [msgspec.json.decode(line)["id"] for line in path.read_bytes().splitlines()]


async def test_an_issue_given_twice_is_exported_once(server: FakeSentry, tmp_path: Path) -> None:
    org = server.data.org(ORG)
    assert org is not None
    issue = next(i for p in org.projects for i in p.issues if len(i.events) > 1)
    out = tmp_path / "out"
    run = await _run(["export", "events", "--org", ORG, "-o", str(out), "--base-url",
                      server.url, *RANGE, "--window", "none", "--issue", issue.id,
                      "--issue", f"0{issue.id}", "--issue", f" {issue.id}", "-q"])  # fmt: skip
    assert run.code == 0, run.err
    manifest = _manifest(out)
    assert [stream["file"] for stream in manifest["streams"]] == [f"issue-{issue.id}.jsonl"]
    ids = _ids(out / f"issue-{issue.id}.jsonl")
    assert sorted(ids) == sorted(server.data.events_for_issue(issue.id))
    assert manifest["items"] == len(ids)


async def test_a_project_given_by_slug_id_and_padded_id_is_exported_once(
    server: FakeSentry, tmp_path: Path
) -> None:
    org = server.data.org(ORG)
    assert org is not None
    project = org.projects[0]
    out = tmp_path / "out"
    run = await _run(["export", "events", "--org", ORG, "-o", str(out), "--base-url",
                      server.url, *RANGE, "--window", "none", "--project",
                      project.slug, "--project", project.id, "--project", f"00{project.id}",
                      "-q"])  # fmt: skip
    assert run.code == 0, run.err
    manifest = _manifest(out)
    assert [stream["file"] for stream in manifest["streams"]] == [f"{project.slug}.jsonl"]
    ids = _ids(out / f"{project.slug}.jsonl")
    assert len(ids) == len(set(ids)) == manifest["items"] > 0


# A signal at the end of main.


LATE = """
import runpy, signal, sys
from sentry_async import cli

signum = getattr(signal, sys.argv.pop(1))
restore = cli._Interrupts.restore


def restore_then_signal(self):
    restore(self)
    signal.raise_signal(signum)


cli._Interrupts.restore = restore_then_signal
runpy.run_module("sentry_async", run_name="__main__", alter_sys=True)
"""
"""``python -c LATE SIGNAL ARGV...``: ``python -m sentry_async ARGV...`` with ``SIGNAL``
raised the moment ``main`` has set the signal handlers as it leaves them."""


NO_TOKEN = "sentry-async: error: no auth token: pass --token-file PATH or set SENTRY_AUTH_TOKEN\n"


@pytest.mark.parametrize(
    ("name", "argv", "expected"),
    [
        ("SIGINT", ["--version"], (0, f"sentry-async {__version__}\n", "")),
        ("SIGTERM", ["export", "events", "--org", ORG, "-o", "out"], (2, "", NO_TOKEN)),
    ],
    ids=["ctrl-c-after-argparse-exits", "sigterm-after-main-returns"],
)
def test_a_signal_once_main_is_done_leaves_its_exit_code(
    tmp_path: Path, name: str, argv: list[str], expected: tuple[int, str, str]
) -> None:
    """The command's process exits with the code ``main`` computed (or argparse's): put
    back, Python's own handlers let a signal arriving before the process was gone kill it
    (SIGTERM) or end it with a traceback (Ctrl-C), its last line printed already."""
    env = {key: value for key, value in os.environ.items() if key != "SENTRY_AUTH_TOKEN"}
    result = subprocess.run(
        [sys.executable, "-c", LATE, name, *argv],
        capture_output=True,
        timeout=TIMEOUT,
        check=False,
        env=env,
        cwd=tmp_path,
    )
    assert (result.returncode, result.stdout.decode(), result.stderr.decode()) == expected


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_once_the_export_is_done_changes_nothing(
    fake_sentry_factory: FakeSentryFactory,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    signum: int,
) -> None:
    """``main`` in a program's main thread: a signal after the export is complete (while its
    summary is printed) neither ends it as interrupted ("run again with --resume") nor
    reaches the program's handlers, which are put back only as ``main`` returns."""
    server = fake_sentry_factory.start(scale=DATA)
    token_file = tmp_path / "token"
    token_file.write_text(server.token)
    out = tmp_path / "out"
    summary = _cli_run._summary
    sent: list[int] = []

    def signal_then_summary(*args: Any) -> str:
        sent.append(signum)
        signal.raise_signal(signum)
        return summary(*args)

    received: list[int] = []

    def program(number: int, frame: FrameType | None) -> None:
        received.append(number)

    monkeypatch.setattr(_cli_run, "_summary", signal_then_summary)
    before = {number: signal.getsignal(number) for number in (signal.SIGINT, signal.SIGTERM)}
    try:
        for number in before:
            signal.signal(number, program)
        err, stdout = io.StringIO(), io.StringIO()
        argv = ["export", "events", "--org", ORG, "--output", str(out), "--base-url", server.url,
                "--since", START.isoformat(), "--until", END.isoformat(), "--token-file",
                str(token_file)]  # fmt: skip
        code = cli.main(argv, stdout=stdout, stderr=err)
        after = {number: signal.getsignal(number) for number in before}
    finally:
        for number, handler in before.items():
            signal.signal(number, handler)
    assert sent == [signum]
    assert code == 0, err.getvalue()
    assert "interrupted" not in err.getvalue() and "terminated" not in err.getvalue()
    assert stdout.getvalue().startswith("events: "), stdout.getvalue()
    assert received == [], "the signal reached the program around main"
    assert after == {signal.SIGINT: program, signal.SIGTERM: program}
    assert _manifest(out)["items"] > 0


def test_the_console_script_is_the_command_as_a_process() -> None:
    """``sentry-async`` runs :func:`cli.run`, as ``python -m sentry_async`` does: ``main``
    would hand the signals back to Python's handlers before the process exits."""
    pyproject = (Path(__file__).parents[1] / "pyproject.toml").read_text().splitlines()
    assert 'sentry-async = "sentry_async.cli:run"' in pyproject
