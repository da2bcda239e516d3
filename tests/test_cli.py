"""The ``sentry-async`` command: demo, export against the fake server, exit codes, secrecy."""

from __future__ import annotations

import errno
import io
import logging
import re
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from functools import partial
from pathlib import Path
from typing import Any

import anyio
import msgspec
import pytest

from sentry_async import SentryClient, __version__, _cli_run
from sentry_async.cli import main
from sentry_async.export import (
    CHECKPOINT_NAME,
    MANIFEST_NAME,
    Manifest,
    Progress,
    _runner,
    show_progress,
)
from sentry_async.testing import FakeSentry, Fault, SeedConfig

ORG = "org-0"
TOKEN = "sntrys_cli-test-token-5d41402abc4b2a76b9719d911017c592"
WRONG_TOKEN = "sntrys_wrong-token-7215ee9c7d9dc229d2921a40e899ec5f"
DATA = SeedConfig(
    orgs=1, projects_per_org=2, issues_per_project=8, events_per_issue=(1, 3), days=10
)
SINCE = datetime(2026, 5, 25, tzinfo=timezone.utc)
UNTIL = datetime(2026, 6, 1, 12, tzinfo=timezone.utc)
RANGE = ["--since", "2026-05-25", "--until", "2026-06-01T12:00:00Z"]

Factory = Callable[..., Awaitable[FakeSentry]]


@dataclass
class Run:
    code: int
    out: str
    err: str

    @property
    def error_lines(self) -> list[str]:
        return [line for line in self.err.splitlines() if line.startswith("sentry-async: error:")]


async def _main(argv: Sequence[str]) -> Run:
    """``main(argv)`` in a worker thread (it runs its own event loop), output captured."""
    out, err = io.StringIO(), io.StringIO()
    with anyio.fail_after(30):
        code = await anyio.to_thread.run_sync(partial(main, list(argv), stdout=out, stderr=err))
    return Run(code, out.getvalue(), err.getvalue())


def _names(directory: Path) -> list[str]:
    return sorted(path.name for path in directory.iterdir())


def _token_file(directory: Path, token: str = TOKEN) -> str:
    path = directory / "token"
    path.write_text(token + "\n")
    return str(path)


def _export_args(server: FakeSentry, out: Path, *extra: str) -> list[str]:
    return ["export", "events", "--org", ORG, "--output", str(out), *RANGE,
            "--base-url", server.url, *extra]  # fmt: skip


def _ids(directory: Path) -> list[str]:
    return [
        msgspec.json.decode(line)["id"]
        for path in sorted(directory.glob("*.jsonl"))
        for line in path.read_bytes().splitlines()
    ]


def _expected_ids(server: FakeSentry, *, discover: bool = False) -> list[str]:
    """Ids of the events the server holds in ``RANGE``: transactions in Discover only (a
    project's event list reads the errors dataset)."""
    return [
        event_id
        for slug in server.data.project_slugs(ORG)
        for event_id in server.data.event_ids(
            ORG,
            slug,
            start=SINCE.timestamp(),
            end=UNTIL.timestamp(),
            include_transactions=discover,
        )
    ]


@pytest.fixture
def no_env_token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SENTRY_AUTH_TOKEN", raising=False)
    monkeypatch.delenv("SENTRY_URL", raising=False)


async def test_export_with_token_file(
    fake_sentry_factory: Factory, tmp_path: Path, no_env_token: None
) -> None:
    server = await fake_sentry_factory(scale=DATA, token=TOKEN)
    out = tmp_path / "out"
    run = await _main(_export_args(server, out, "--token-file", _token_file(tmp_path)))
    assert run.code == 0, run.err
    manifest = msgspec.json.decode((out / MANIFEST_NAME).read_bytes(), type=Manifest)
    assert (manifest.start, manifest.end) == ("2026-05-25T00:00:00Z", "2026-06-01T12:00:00Z")
    expected = _expected_ids(server)
    assert sorted(_ids(out)) == sorted(expected) and len(expected) > 10
    assert run.out.startswith(f"events: {len(expected):,} items")
    assert str(out) in run.out and len(run.out.splitlines()) == 1
    assert TOKEN not in run.out + run.err


async def test_a_token_file_saved_with_a_byte_order_mark_is_read(
    fake_sentry_factory: Factory, tmp_path: Path, no_env_token: None
) -> None:
    """Windows Notepad saves UTF-8 with a BOM; the BOM is not part of the token."""
    server = await fake_sentry_factory(scale="small", token=TOKEN)
    token_file = tmp_path / "token"
    token_file.write_bytes(b"\xef\xbb\xbf" + TOKEN.encode() + b"\r\n")
    run = await _main(["query", "discover", "--org", ORG, "--field", "id", "--period", "1d",
                       "--base-url", server.url, "--token-file", str(token_file)])  # fmt: skip
    assert run.code == 0, run.err
    assert server.requests and all(r.sent_token(TOKEN) for r in server.requests)


async def test_token_from_the_environment(
    fake_sentry_factory: Factory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    server = await fake_sentry_factory(scale=DATA, token=TOKEN)
    monkeypatch.setenv("SENTRY_AUTH_TOKEN", TOKEN)
    out = tmp_path / "out"
    argv = ["export", "issues", "--org", ORG, "--output", str(out), *RANGE,
            "--gzip", "--base-url", server.url, "--quiet"]  # fmt: skip
    run = await _main(argv)
    assert run.code == 0, run.err
    assert run.out == "" and run.err == "", "--quiet prints nothing on success"
    names = sorted(p.name for p in out.iterdir())
    assert names == [MANIFEST_NAME] + [
        f"{slug}.jsonl.gz" for slug in server.data.project_slugs(ORG)
    ]
    manifest = msgspec.json.decode((out / MANIFEST_NAME).read_bytes(), type=Manifest)
    assert manifest.items > 0 and all(f.bytes for f in manifest.files)
    assert server.requests and all(r.sent_token(TOKEN) for r in server.requests)


async def test_missing_token_exits_2_with_one_line(tmp_path: Path, no_env_token: None) -> None:
    run = await _main(["export", "events", "--org", ORG, "--output", str(tmp_path / "out")])
    assert run.code == 2
    assert run.err.splitlines() == [
        "sentry-async: error: no auth token: pass --token-file PATH or set SENTRY_AUTH_TOKEN"
    ]
    assert run.out == ""
    empty = tmp_path / "empty"
    empty.write_text("\n")
    run = await _main(
        ["export", "events", "--org", ORG, "-o", str(tmp_path), "--token-file", str(empty)]
    )
    assert run.code == 2 and len(run.err.splitlines()) == 1 and "is empty" in run.err
    run = await _main(
        [
            "export",
            "events",
            "--org",
            ORG,
            "-o",
            str(tmp_path),
            "--token-file",
            str(tmp_path / "nope"),
        ]
    )
    assert run.code == 2 and len(run.err.splitlines()) == 1 and "cannot read" in run.err


async def test_wrong_token_exits_3_and_is_never_printed(
    fake_sentry_factory: Factory, tmp_path: Path, no_env_token: None
) -> None:
    server = await fake_sentry_factory(scale=DATA, token=TOKEN)
    token_file = _token_file(tmp_path, WRONG_TOKEN)
    for verbosity in ([], ["--verbose"]):
        out = tmp_path / f"out{len(verbosity)}"
        run = await _main(_export_args(server, out, "--token-file", token_file, *verbosity))
        assert run.code == 3, run.err
        assert len(run.error_lines) == 1 and "authentication failed" in run.error_lines[0]
        assert WRONG_TOKEN not in run.out + run.err
        assert TOKEN not in run.out + run.err
    assert "DEBUG" in run.err, "the verbose run logged its requests, still without the token"


async def test_unknown_org_or_project_exits_4(
    fake_sentry_factory: Factory, tmp_path: Path, no_env_token: None
) -> None:
    server = await fake_sentry_factory(scale=DATA, token=TOKEN)
    token = ["--token-file", _token_file(tmp_path)]
    cases = {
        "org": ["export", "events", "--org", "no-such-org", "-o", str(tmp_path / "a"),
                "--base-url", server.url, *token],
        "project": _export_args(server, tmp_path / "b", "--project", "no-such-project", *token),
        "issue": _export_args(server, tmp_path / "c", "--issue", "999999999", *token),
    }  # fmt: skip
    for name, argv in cases.items():
        run = await _main(argv)
        assert run.code == 4, (name, run.err)
        assert len(run.error_lines) == 1, name
        assert not (tmp_path / argv[argv.index("-o" if "-o" in argv else "--output") + 1]).exists(), (
            f"{name}: nothing exported, nothing left behind (no checkpoint to resume)"
        )
        assert {"org": "no-such-org", "project": "no-such-project", "issue": "999999999"}[
            name
        ] in run.error_lines[0]
    # Said as what was asked for, not as the URL of the request that found nothing.
    assert f"unknown issue(s) in organization {ORG!r}: 999999999" in run.error_lines[0]
    assert "http" not in run.error_lines[0]


async def test_bad_arguments_exit_2(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SENTRY_AUTH_TOKEN", TOKEN)
    base = ["export", "events", "--org", ORG, "-o", str(tmp_path / "out"),
            "--base-url", "http://127.0.0.1:9"]  # fmt: skip
    cases = {
        "--period abc": ["--period", "abc"],
        "--period 0d": ["--period", "0d"],
        "--since yesterday": ["--since", "yesterday"],
        "--since after --until": ["--since", "2026-05-02", "--until", "2026-05-01"],
        "--since and --period": ["--since", "2026-05-01", "--period", "3d"],
        "--window 5x": ["--window", "5x"],
        "--field for events": ["--field", "title"],
        "--issue and --project": ["--issue", "1", "--project", "p"],
    }
    for name, extra in cases.items():
        run = await _main([*base, *extra])
        assert run.code == 2, (name, run.err)
        assert len(run.err.splitlines()) == 1 and run.error_lines, (name, run.err)
        assert run.out == ""
    assert not (tmp_path / "out").exists(), "nothing is created for bad arguments"


def test_argparse_errors_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    for argv in (["export", "events"], ["export", "nothing", "--org", ORG, "-o", "x"], []):
        with pytest.raises(SystemExit) as caught:
            main(argv)
        assert caught.value.code == 2
    assert "usage: sentry-async" in capsys.readouterr().err


async def test_output_not_empty_or_other_arguments_exit_5(
    fake_sentry_factory: Factory, tmp_path: Path, no_env_token: None
) -> None:
    server = await fake_sentry_factory(scale=DATA, token=TOKEN)
    token = ["--token-file", _token_file(tmp_path)]
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "notes.txt").write_text("mine")
    run = await _main(_export_args(server, busy, *token))
    assert run.code == 5 and "not empty" in run.error_lines[0]
    done = tmp_path / "done"
    assert (await _main(_export_args(server, done, *token))).code == 0
    run = await _main(_export_args(server, done, *token))
    assert run.code == 5 and "--resume" in run.error_lines[0]
    run = await _main(_export_args(server, done, *token, "--resume", "--window", "2d"))
    assert run.code == 5 and "window_seconds" in run.error_lines[0]
    (done / CHECKPOINT_NAME).write_text("{")
    run = await _main(_export_args(server, done, *token, "--resume"))
    assert run.code == 5 and "not a valid checkpoint" in run.error_lines[0]


@pytest.mark.usefixtures("quick_default_retries")
async def test_resume_finishes_an_interrupted_export(
    fake_sentry_factory: Factory, tmp_path: Path, no_env_token: None
) -> None:
    server = await fake_sentry_factory(scale=DATA, token=TOKEN)
    server.faults.add(Fault("status", status=500, path="/events/", after=3, times=None))
    out = tmp_path / "out"
    token = ["--token-file", _token_file(tmp_path)]
    argv = _export_args(server, out, *token, "--window", "12h", "--concurrency", "1")
    run = await _main(argv)
    assert run.code == 1 and "500" in run.error_lines[0], run.err
    server.faults.clear()
    assert not (out / MANIFEST_NAME).exists()
    checkpoint = msgspec.json.decode((out / CHECKPOINT_NAME).read_bytes())
    assert sum(stream["pages"] for stream in checkpoint["streams"].values()) > 0
    run = await _main([*argv, "--resume"])
    assert run.code == 0, run.err
    ids = _ids(out)
    assert len(ids) == len(set(ids)), "nothing written twice"
    assert sorted(ids) == sorted(_expected_ids(server))
    manifest = msgspec.json.decode((out / MANIFEST_NAME).read_bytes(), type=Manifest)
    assert manifest.runs == 2
    run = await _main([*argv, "--resume"])
    assert run.code == 0 and run.out.startswith(f"events: {len(ids):,} items")


async def test_demo_exports_from_the_bundled_server(tmp_path: Path) -> None:
    run = await _main(["demo", "--scale", "small", "--output", str(tmp_path)])
    assert run.code == 0, run.err
    lines = run.out.splitlines()
    assert lines[0].startswith("demo: starting a fake Sentry (scale 'small')")
    assert lines[-1].startswith("demo: exported ") and str(tmp_path) in lines[-1]
    total = 0
    for kind in ("issues", "events"):
        manifest = msgspec.json.decode(
            (tmp_path / kind / MANIFEST_NAME).read_bytes(), type=Manifest
        )
        assert manifest.kind == kind and manifest.items > 0
        assert any(line.split()[:2] == [kind, f"{manifest.items:,}"] for line in lines)
        total += manifest.items
    assert f"exported {total:,} items" in lines[-1]


async def test_the_demo_runs_again_in_its_directory_and_resumes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Its server gets a new port every run: that is not another server for the export."""
    out = tmp_path / "demo"
    demo = ["demo", "--scale", "small", "--output", str(out)]
    first = await _main(demo)
    assert first.code == 0, first.err
    again = await _main(demo)
    assert again.code == 0 and again.error_lines == [], again.err
    assert "complete already" in again.out.splitlines()[-1]
    other = await _main(["demo", "--scale", "default", "--output", str(out)])
    assert other.code == 5 and "scale" in other.error_lines[0], other.err

    # A run stopped half-way (here by a full disk) is finished by the next one.
    stopped = tmp_path / "stopped"
    write_page = _runner.Exporter._write_page
    pages: list[int] = []

    async def failing(self: _runner.Exporter, *args: Any, **kwargs: Any) -> None:
        if self.spec.kind == "events" and len(pages) == 3:
            raise OSError(errno.ENOSPC, "No space left on device", str(stopped / "x.jsonl"))
        pages.append(1)
        await write_page(self, *args, **kwargs)

    monkeypatch.setattr(_runner.Exporter, "_write_page", failing)
    run = await _main(["demo", "--scale", "small", "--output", str(stopped)])
    assert run.code == 5 and (stopped / "events" / CHECKPOINT_NAME).exists(), run.err
    monkeypatch.setattr(_runner.Exporter, "_write_page", write_page)
    run = await _main(["demo", "--scale", "small", "--output", str(stopped)])
    assert run.code == 0, run.err
    manifest = msgspec.json.decode(
        (stopped / "events" / MANIFEST_NAME).read_bytes(), type=Manifest
    )
    reference = msgspec.json.decode((out / "events" / MANIFEST_NAME).read_bytes(), type=Manifest)
    assert manifest.runs == 2 and manifest.items == reference.items
    assert manifest.spec == reference.spec


async def test_demo_quiet_prints_nothing_and_ctrl_c_says_how_to_finish(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run = await _main(["demo", "--scale", "small", "--output", str(tmp_path / "q"), "--quiet"])
    assert (run.code, run.out, run.err) == (0, "", "")

    async def interrupted(*args: Any) -> int:
        raise KeyboardInterrupt

    monkeypatch.setattr(_cli_run, "run_demo", interrupted)
    run = await _main(["demo", "--output", str(tmp_path / "i")])
    assert run.code == 130 and "--resume" not in run.err
    assert f"sentry-async demo -o {tmp_path / 'i'}" in run.err


def test_version_as_a_subprocess() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "sentry_async", "--version"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"sentry-async {__version__}"


async def test_main_leaves_logging_as_it_found_it(tmp_path: Path, no_env_token: None) -> None:
    library = logging.getLogger("sentry_async")
    before = (list(library.handlers), library.level, library.propagate)
    await _main(["export", "events", "--org", ORG, "-o", str(tmp_path), "--verbose"])
    await _main(["demo", "--scale", "small", "-o", str(tmp_path / "demo")])
    assert (list(library.handlers), library.level, library.propagate) == before


def _assert_one_error_line(run: Run, *, naming: str, case: str) -> None:
    """Exit 2, one line on stderr (no traceback) that names the argument, nothing on stdout."""
    assert run.code == 2, (case, run.err)
    assert run.err.splitlines() == run.error_lines and len(run.error_lines) == 1, (case, run.err)
    assert naming in run.error_lines[0], (case, run.err)
    assert "Traceback" not in run.err and run.out == "", case


async def test_bad_base_url_exits_2_with_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SENTRY_AUTH_TOKEN", TOKEN)
    monkeypatch.delenv("SENTRY_URL", raising=False)
    out = tmp_path / "out"
    base = ["export", "issues", "--org", ORG, "-o", str(out)]
    for url in (
        "http://example.com",
        "ftp://x",
        "not a url",
        "https://",
        "http://[::1",
        "https://256.256.256.256",
        "https://exa mple.com",
        "https://.com",
    ):
        run = await _main([*base, "--base-url", url])
        _assert_one_error_line(run, naming="--base-url", case=url)
        assert TOKEN not in run.err
    assert "--allow-insecure-http" in (await _main([*base, "--base-url", "http://10.0.0.1"])).err
    monkeypatch.setenv("SENTRY_URL", "http://10.0.0.1")
    run = await _main(base)
    _assert_one_error_line(run, naming="$SENTRY_URL", case="$SENTRY_URL")
    assert "unencrypted" in run.err and "--allow-insecure-http" in run.err
    assert not out.exists(), "nothing is created for a bad URL"


async def test_a_token_with_spaces_exits_2_without_showing_it(
    tmp_path: Path, no_env_token: None
) -> None:
    spaced = tmp_path / "spaced"
    spaced.write_text("sntrys_secret part\n")
    argv = ["export", "issues", "--org", ORG, "-o", str(tmp_path / "out"),
            "--token-file", str(spaced)]  # fmt: skip
    run = await _main(argv)
    _assert_one_error_line(run, naming="--token-file", case="token with a space")
    assert "secret" not in run.err


async def test_allow_insecure_http_is_passed_to_the_client(
    fake_sentry_factory: Factory,
    tmp_path: Path,
    no_env_token: None,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The flag reaches the client; the client then talks to the fake server instead."""
    server = await fake_sentry_factory(scale=DATA, token=TOKEN)
    seen: list[dict[str, object]] = []

    def client(token: str, **kwargs: Any) -> SentryClient:
        seen.append(kwargs)
        return SentryClient(token, **{**kwargs, "base_url": server.url})

    monkeypatch.setattr(_cli_run, "SentryClient", client)
    argv = ["export", "issues", "--org", ORG, "-o", str(tmp_path / "out"), *RANGE,
            "--token-file", _token_file(tmp_path), "--base-url", "http://sentry.internal",
            "--allow-insecure-http", "--quiet"]  # fmt: skip
    run = await _main(argv)
    assert run.code == 0, run.err
    # hooks: the CLI's own, telling whether any request was started.
    passed = [{k: v for k, v in kwargs.items() if k != "hooks"} for kwargs in seen]
    assert passed == [{"base_url": "http://sentry.internal", "allow_insecure_http": True}]


async def test_unusable_time_ranges_exit_2_and_leave_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Empty, out-of-calendar or too finely windowed ranges: refused before any request.

    The base URL has no server behind it, so a range that got as far as planning would
    fail with a network error (exit 1) instead.
    """
    monkeypatch.setenv("SENTRY_AUTH_TOKEN", TOKEN)
    out = tmp_path / "out"
    base = ["export", "events", "--org", ORG, "-o", str(out), "--base-url", "http://127.0.0.1:9"]
    cases = {
        "--since": ["--since", "2099-01-01"],
        "--until": ["--until", "0001-01-01"],
        "--period": ["--period", "999999999999999d"],
        "--period 999999999d": ["--period", "999999999d"],
        "--window": ["--since", "0001-01-01", "--window", "1s"],
        "--window 1d": ["--since", "0001-01-01"],
        "--window 1h": ["--period", "100001h", "--window", "1h"],
    }
    for naming, extra in cases.items():
        started = time.monotonic()
        run = await _main([*base, *extra])
        _assert_one_error_line(run, naming=naming, case=naming)
        assert time.monotonic() - started < 10, f"{naming}: checked before planning"
        assert not out.exists(), f"{naming}: nothing is created"
    assert "larger window" in run.error_lines[0] and "100,000" in run.error_lines[0]


async def test_a_range_ending_in_the_future_exits_2_naming_until(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Refused before any request (no server behind the URL) and before anything is created."""
    monkeypatch.setenv("SENTRY_AUTH_TOKEN", TOKEN)
    out = tmp_path / "out"
    later = (datetime.now(timezone.utc) + timedelta(days=2)).date().isoformat()
    base = ["export", "events", "--org", ORG, "-o", str(out), "--base-url", "http://127.0.0.1:9"]
    for extra in (["--since", "2026-05-25", "--until", later], ["--period", "3d", "--until", later]):
        run = await _main([*base, *extra])
        _assert_one_error_line(run, naming=f"--until {later}", case=str(extra))
        assert "in the future" in run.error_lines[0]
        assert not out.exists(), extra


async def test_export_argument_errors_name_their_flag_and_leave_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Refused before any request (no server behind the URL): exit 2, or 5 for a path
    that cannot hold the state file; one line naming the flag; nothing created."""
    monkeypatch.setenv("SENTRY_AUTH_TOKEN", TOKEN)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "a-directory").mkdir()
    out = tmp_path / "out"
    base = ["-o", str(out), "--base-url", "http://127.0.0.1:9"]
    events = ["export", "events", "--org", ORG, *base]
    cases = {
        "--since": (2, [*events, "--since", "2026-05-02", "--until", "2026-05-01"]),
        "--org": (2, ["export", "events", "--org", "org 0", *base]),
        "--field": (2, ["export", "discover", "--org", ORG, "--field", "", *base]),
        "--field ": (2, ["export", "discover", "--org", ORG, "--field", "id", "--field", " ",
                         *base]),
        "--incremental": (2, [*events, "--incremental", ""]),
        "--incremental a-directory": (5, [*events, "--incremental", "a-directory"]),
        "--incremental nodir/state.json": (5, [*events, "--incremental", "nodir/state.json"]),
        "--overlap": (2, [*events, "--overlap", "2h"]),
        "--window": (2, ["export", "issues", "--org", ORG, "--window", "2d", *base]),
    }  # fmt: skip
    for naming, (code, argv) in cases.items():
        run = await _main(argv)
        assert run.code == code, (naming, run.err)
        assert run.err.splitlines() == run.error_lines and len(run.error_lines) == 1, run.err
        assert naming.strip() in run.error_lines[0], (naming, run.err)
        assert "Traceback" not in run.err and "remove it" not in run.err, run.err
        assert not out.exists(), f"{naming}: nothing is created"
    assert _names(tmp_path) == ["a-directory"] and _names(tmp_path / "a-directory") == []


def test_file_system_errors_exit_5_naming_the_path() -> None:
    """Exit 1 is for the API and the network; a disk that is full or refuses is the output's."""
    for code, text in ((errno.ENOSPC, "No space left on device"),
                       (errno.EACCES, "Permission denied"), (errno.EROFS, "Read-only file system"),
                       (errno.EMFILE, "Too many open files")):  # fmt: skip
        outcome = _cli_run.classify(OSError(code, text, "out/project-0.jsonl"))
        assert outcome.code == 5, text
        assert "out/project-0.jsonl" in outcome.message and text in outcome.message


async def test_a_refused_output_directory_exits_5_with_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SENTRY_AUTH_TOKEN", TOKEN)
    out = tmp_path / "out"

    async def refused(*args: Any, **kwargs: Any) -> Any:
        raise PermissionError(errno.EACCES, "Permission denied", str(out / ".lock"))

    monkeypatch.setattr(_cli_run, "export", refused)
    run = await _main(["export", "events", "--org", ORG, "-o", str(out), "--period", "1d",
                       "--base-url", "http://127.0.0.1:9"])  # fmt: skip
    assert run.code == 5, run.err
    assert run.err.splitlines() == run.error_lines and str(out / ".lock") in run.err


async def test_running_out_of_memory_exits_1_with_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SENTRY_AUTH_TOKEN", TOKEN)

    async def too_large(*args: Any, **kwargs: Any) -> Any:
        raise MemoryError

    monkeypatch.setattr(_cli_run, "export", too_large)
    run = await _main(["export", "events", "--org", ORG, "-o", str(tmp_path / "out"),
                       "--period", "1d", "--base-url", "http://127.0.0.1:9"])  # fmt: skip
    assert run.code == 1, run.err
    assert run.err.splitlines() == run.error_lines and "out of memory" in run.err
    assert "Traceback" not in run.err


async def test_failed_exports_print_only_the_error_line(
    fake_sentry_factory: Factory, tmp_path: Path, no_env_token: None
) -> None:
    """No closing progress line ("0 items ... streams 0/0") above the error."""
    server = await fake_sentry_factory(scale=DATA, token=TOKEN)
    good, wrong = ["--token-file", _token_file(tmp_path)], ["--token-file", str(tmp_path / "w")]
    (tmp_path / "w").write_text(WRONG_TOKEN)
    cases = {
        "bad token": (3, _export_args(server, tmp_path / "a", *wrong)),
        "bad token, issues": (3, _export_args(server, tmp_path / "b", "--issue", "1", *wrong)),
        "unknown org": (4, ["export", "issues", "--org", "no-such-org", "-o",
                            str(tmp_path / "c"), "--base-url", server.url, *good]),
        "unknown project": (4, _export_args(server, tmp_path / "d", "--project", "nope", *good)),
        "unknown issue": (4, _export_args(server, tmp_path / "e", "--issue", "999999999", *good)),
    }  # fmt: skip
    for name, (code, argv) in cases.items():
        run = await _main(argv)
        assert run.code == code, (name, run.err)
        assert run.err.splitlines() == run.error_lines and len(run.error_lines) == 1, (
            name,
            run.err,
        )
    run = await _main(_export_args(server, tmp_path / "ok", *good))
    assert run.code == 0, run.err
    (progress,) = run.err.splitlines()
    assert re.search(r"INFO .*events: .* streams (\d+)/\1,", progress), "a real run ends with it"


def _fail_under_rich_progress(progress: Progress, screen: io.StringIO, *, begin: bool) -> None:
    with show_progress(progress, mode="rich", stream=screen):
        if begin:
            progress.begin(streams_total=3)
        raise RuntimeError("the export failed")


def test_rich_progress_is_cleared_when_the_export_never_began() -> None:
    for begin in (False, True):
        screen = io.StringIO()
        progress = Progress("issues")
        with pytest.raises(RuntimeError):
            _fail_under_rich_progress(progress, screen, begin=begin)
        assert ("streams 0/3" in screen.getvalue()) is begin, screen.getvalue()
        assert "streams 0/0" not in screen.getvalue()


def test_quiet_is_described_as_it_behaves(capsys: pytest.CaptureFixture[str]) -> None:
    """--quiet keeps warnings (a skipped project, a retry): the help says so."""
    for argv in (["export", "--help"], ["demo", "--help"], ["query", "discover", "--help"]):
        with pytest.raises(SystemExit):
            main(argv)
        text = " ".join(capsys.readouterr().out.split())
        assert "warnings and errors only" in text, argv


async def test_ctrl_c_says_how_to_go_on(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SENTRY_AUTH_TOKEN", TOKEN)

    async def interrupted(*args: Any) -> int:
        raise KeyboardInterrupt

    monkeypatch.setattr(_cli_run, "run_export", interrupted)
    base = ["export", "events", "--org", ORG, "-o", str(tmp_path / "out")]
    run = await _main(base)
    assert run.code == 130 and "run again with --resume" in run.err
    run = await _main([*base, "--incremental", str(tmp_path / "state.json")])
    assert run.code == 130 and "--resume" not in run.err and "same command again" in run.err


async def test_export_discover_as_csv_and_formats_only_for_discover(
    fake_sentry_factory: Factory, tmp_path: Path, no_env_token: None
) -> None:
    import csv

    server = await fake_sentry_factory(scale=DATA, token=TOKEN)
    out = tmp_path / "out"
    token = ["--token-file", _token_file(tmp_path), "--quiet"]
    args = _export_args(server, out, "--format", "csv", "--field", "id", "--field", "title", *token)
    args[1] = "discover"
    run = await _main(args)
    assert run.code == 0, run.err
    files = sorted(out.glob("*.csv"))
    assert [path.name for path in files] == [
        f"{slug}.csv" for slug in server.data.project_slugs(ORG)
    ]
    ids = []
    for path in files:
        rows = list(csv.reader(path.read_text().splitlines()))
        assert rows[0] == ["id", "title", "project.name"], "Sentry adds project.name"
        ids += [row[0] for row in rows[1:]]
    assert sorted(ids) == sorted(_expected_ids(server, discover=True))
    refused = await _main(_export_args(server, tmp_path / "other", "--format", "csv", *token))
    assert refused.code == 2
    assert refused.error_lines == [
        "sentry-async: error: --format csv/parquet is for 'export discover'"
    ]


@pytest.mark.parametrize("argv", [["--help"], ["--version"], ["export", "--help"]])
def test_help_and_version_answer_without_importing_aiohttp(argv: list[str]) -> None:
    code = (
        "import sys\n"
        "from sentry_async.cli import main\n"
        "try:\n"
        f"    main({argv!r})\n"
        "except SystemExit as exc:\n"
        "    assert exc.code == 0, exc.code\n"
        "heavy = sorted(m for m in ('aiohttp', 'sentry_async.client', 'sentry_async.export')"
        " if m in sys.modules)\n"
        "assert not heavy, heavy\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    assert "sentry-async" in result.stdout
