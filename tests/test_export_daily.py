"""Exports run every day: starting over, failed starts, what a finished export leaves."""

from __future__ import annotations

import io
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime, timedelta, timezone
from functools import partial
from pathlib import Path
from typing import Any

import anyio
import msgspec
import pytest

from sentry_async import RetryPolicy, SentryClient, ServerError, _cli_run, cli
from sentry_async.cli import main
from sentry_async.export import (
    CHECKPOINT_NAME,
    MANIFEST_NAME,
    ExportSpec,
    OutputNotEmptyError,
    export,
)
from sentry_async.testing import FakeSentry, Fault, SeedConfig
from sentry_async.testing.pytest_plugin import FIXED_NOW

ORG = "org-0"
DATA = SeedConfig(
    orgs=1, projects_per_org=3, issues_per_project=10, events_per_issue=(1, 4), days=20
)
END = FIXED_NOW - timedelta(hours=5)
START = END - timedelta(days=14)
FAST_RETRY = RetryPolicy(backoff_base=0.01, backoff_max=0.05)

Factory = Callable[..., Awaitable[FakeSentry]]


def _client(server: FakeSentry) -> SentryClient:
    return SentryClient(server.token, base_url=server.url, retry=FAST_RETRY)


def _spec(**kwargs: Any) -> ExportSpec:
    kwargs.setdefault("window", timedelta(days=7))
    kwargs.setdefault("page_size", 3)
    return ExportSpec(kind="events", org=ORG, start=START, end=END, **kwargs)


def _ids(path: Path) -> list[str]:
    return [msgspec.json.decode(line)["id"] for line in path.read_bytes().splitlines()]


def _listing(directory: Path) -> list[str]:
    return sorted(path.name for path in directory.iterdir())


async def _cli(argv: Sequence[str]) -> tuple[int, str]:
    out, err = io.StringIO(), io.StringIO()
    with anyio.fail_after(30):
        code = await anyio.to_thread.run_sync(partial(main, list(argv), stdout=out, stderr=err))
    return code, err.getvalue()


async def test_restart_starts_over_where_a_failed_or_stale_export_is(
    fake_sentry_factory: Factory, tmp_path: Path
) -> None:
    server = await fake_sentry_factory(scale=DATA)
    slugs = server.data.project_slugs(ORG)
    # A first run with a typo (another query) that fails half-way.
    fault = server.faults.add(Fault("status", status=500, path="/events/", after=2, times=None))
    async with _client(server) as client:
        with pytest.raises(ServerError):
            await export(client, _spec(query="levle:error"), tmp_path, concurrency=1)
        fault.times = fault.fired
        assert (tmp_path / CHECKPOINT_NAME).exists()
        with pytest.raises(OutputNotEmptyError, match="--restart"):
            await export(client, _spec(), tmp_path)
        manifest = await export(client, _spec(), tmp_path, restart=True)
        assert manifest.runs == 1
        assert _listing(tmp_path) == [MANIFEST_NAME] + [f"{slug}.jsonl" for slug in slugs]
        for slug in slugs:
            expected = server.data.event_ids(
                ORG, slug, start=START.timestamp(), end=END.timestamp(), include_transactions=False
            )
            assert sorted(_ids(tmp_path / f"{slug}.jsonl")) == sorted(expected), slug
        # A finished export started over with other arguments: only its files are replaced.
        narrower = await export(
            client, _spec(projects=("project-0-1",), gzip=True), tmp_path, restart=True
        )
        assert _listing(tmp_path) == [MANIFEST_NAME, "project-0-1.jsonl.gz"]
        assert narrower.items == len(
            server.data.event_ids(
                ORG,
                "project-0-1",
                start=START.timestamp(),
                end=END.timestamp(),
                include_transactions=False,
            )
        )
        # Files the export does not own are never removed.
        (tmp_path / "notes.txt").write_text("mine")
        with pytest.raises(OutputNotEmptyError, match=r"notes\.txt"):
            await export(client, _spec(), tmp_path, restart=True)
    assert (tmp_path / "notes.txt").read_text() == "mine"


async def test_a_failed_start_leaves_nothing_and_a_finished_export_only_its_files(
    fake_sentry_factory: Factory, tmp_path: Path
) -> None:
    server = await fake_sentry_factory(scale=DATA)
    token = tmp_path / "token"
    token.write_text(server.token)
    argv = ["export", "events", "--base-url", server.url, "--token-file", str(token),
            "--since", START.isoformat(), "--until", END.isoformat(), "--quiet"]  # fmt: skip
    typo = tmp_path / "typo"
    code, err = await _cli([*argv, "--org", "org-9", "-o", str(typo)])
    assert code == 4, err
    assert not typo.exists(), "a failed start leaves nothing behind"
    code, err = await _cli([*argv, "--org", ORG, "-o", str(typo)])
    assert code == 0, err
    assert CHECKPOINT_NAME not in _listing(typo) and ".lock" not in _listing(typo)
    assert MANIFEST_NAME in _listing(typo)
    server.reset_log()
    code, err = await _cli([*argv, "--org", ORG, "-o", str(typo), "--resume"])
    assert code == 0 and server.requests == [], "a finished export is not fetched again"
    code, err = await _cli([*argv, "--org", ORG, "-o", str(typo), "--resume", "--gzip"])
    assert code == 5 and "gzip" in err, err


def test_the_python_api_takes_the_command_lines_strings_and_default_range() -> None:
    parser = cli.build_parser()

    def from_cli(*extra: str) -> ExportSpec:
        args = parser.parse_args(["export", "events", "--org", ORG, "-o", "out", *extra])
        return _cli_run._spec_from_args(args)

    assert ExportSpec(kind="events", org=ORG, period="14d") == ExportSpec(
        kind="events", org=ORG, period=timedelta(days=14)
    )
    default = ExportSpec(kind="events", org=ORG)
    assert default.period == timedelta(days=30)
    assert default.fingerprint() == from_cli().fingerprint()
    written = ExportSpec(
        kind="events", org=ORG, start="2026-01-01", end="2026-01-02T12:00:00Z", window="none"
    )
    assert (
        written.fingerprint()
        == from_cli(
            "--since", "2026-01-01", "--until", "2026-01-02T12:00:00Z", "--window", "none"
        ).fingerprint()
    )
    assert written.start == datetime(2026, 1, 1, tzinfo=timezone.utc) and written.window is None
    assert ExportSpec(kind="events", org=ORG, window="12h").window == timedelta(hours=12)
    with pytest.raises(ValueError, match="period: expected a duration"):
        ExportSpec(kind="events", org=ORG, period="14 days")
    with pytest.raises(ValueError, match="start: expected a date"):
        ExportSpec(kind="events", org=ORG, start="yesterday")
