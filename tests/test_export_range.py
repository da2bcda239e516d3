"""An export's range as Sentry serves it: in whole seconds."""

from __future__ import annotations

import gzip
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path

import anyio
import msgspec
import pytest

from sentry_async import RetryPolicy, SentryClient
from sentry_async.export import ExportSpec, export
from sentry_async.export._manifest import Manifest
from sentry_async.export._windows import resolve_range
from sentry_async.testing import FakeSentry, SeedConfig
from sentry_async.testing.pytest_plugin import FIXED_NOW

Factory = Callable[..., Awaitable[FakeSentry]]
FAST_RETRY = RetryPolicy(attempts=2, backoff_base=0.01, backoff_max=0.05)
DISCOVER = ("id", "timestamp", "title")


def _client(server: FakeSentry) -> SentryClient:
    return SentryClient(server.token, base_url=server.url, retry=FAST_RETRY)


def _ids(directory: Path, manifest: Manifest) -> list[str]:
    ids = []
    for file in manifest.files:
        data = (directory / file.path).read_bytes()
        if file.path.endswith(".gz"):
            data = gzip.decompress(data)
        ids += [msgspec.json.decode(line)["id"].replace("-", "") for line in data.splitlines()]
    return ids


async def _acme(
    factory: Factory, ages: dict[str, timedelta]
) -> tuple[FakeSentry, dict[str, str], str]:
    """A fake with one project and issue whose events are ``ages`` old (name -> age): the
    server, name -> event id, and the issue's id."""
    server = await factory(scale=SeedConfig(orgs=0))
    project = server.builder.add_organization("acme").add_project("backend")
    issue = project.add_issue("Aged", events=0)
    ids = {name: issue.add_event(timestamp=FIXED_NOW - age) for name, age in ages.items()}
    return server, ids, issue.id


def test_the_range_is_pinned_to_whole_seconds() -> None:
    now = datetime(2026, 11, 28, 12, 0, 0, 900000, tzinfo=timezone.utc)
    start = datetime(2026, 11, 28, 0, 0, 0, 250000, tzinfo=timezone.utc)
    end = datetime(2026, 11, 28, 6, 0, 0, 750000, tzinfo=timezone.utc)
    assert resolve_range(start=start, end=end, period=None, now=now) == (
        start.replace(microsecond=0),
        end.replace(microsecond=0),
    )
    assert resolve_range(start=None, end=None, period=timedelta(hours=1), now=now) == (
        datetime(2026, 11, 28, 11, 0, tzinfo=timezone.utc),
        datetime(2026, 11, 28, 12, 0, tzinfo=timezone.utc),
    )
    with pytest.raises(ValueError, match="whole seconds"):
        resolve_range(start=start, end=start + timedelta(milliseconds=500), period=None, now=now)


@pytest.mark.parametrize("kind", ["discover", "events"])
async def test_every_event_of_the_recorded_range_is_exported_at_sentrys_precision(
    fake_sentry_factory: Factory, tmp_path: Path, kind: str
) -> None:
    start = FIXED_NOW - timedelta(hours=12) + timedelta(milliseconds=250)
    end = FIXED_NOW - timedelta(hours=6) + timedelta(milliseconds=750)
    server = await fake_sentry_factory(scale=SeedConfig(orgs=0))
    issue = server.builder.add_organization("acme").add_project("backend").add_issue(
        "Edges", events=0
    )
    edge = end.replace(microsecond=0)
    for moment in (
        start - timedelta(milliseconds=200),
        start,
        start + timedelta(hours=1),
        edge - timedelta(milliseconds=1),
        edge,
        edge + timedelta(milliseconds=500),
    ):
        issue.add_event(timestamp=moment)
    fields = DISCOVER if kind == "discover" else ()
    spec = ExportSpec(
        kind=kind, org="acme", projects=("backend",), start=start, end=end, fields=fields,
        window=timedelta(hours=1),
    )
    with anyio.fail_after(30):
        async with _client(server) as client:
            manifest = await export(client, spec, tmp_path, now=FIXED_NOW)
    first, last = (datetime.fromisoformat(t).timestamp() for t in (manifest.start, manifest.end))
    expected = server.data.event_ids("acme", "backend", start=first, end=last)
    assert sorted(_ids(tmp_path, manifest)) == sorted(expected)
    assert (manifest.start, manifest.end) == (
        start.replace(microsecond=0).isoformat().replace("+00:00", "Z"),
        edge.isoformat().replace("+00:00", "Z"),
    )
    assert all(
        datetime.fromisoformat(b).microsecond == 0
        for s in manifest.streams
        for b in (s.window_start, s.window_end)
    )
    assert len(manifest.streams) == 6


async def test_incremental_runs_with_a_sub_second_overlap_write_each_event_once(
    fake_sentry_factory: Factory, tmp_path: Path
) -> None:
    """A run's start is rounded down to the second, so it may look back a little further
    than the overlap; the ids kept reach back as far."""
    overlap = timedelta(minutes=10, milliseconds=500)
    first = FIXED_NOW - timedelta(hours=2)
    server, ids, _ = await _acme(
        fake_sentry_factory,
        {
            # Between the second below the overlap's start and the start itself.
            "edge": timedelta(hours=2, minutes=10, milliseconds=700),
            "inside": timedelta(hours=2, minutes=5),
            "later": timedelta(hours=1),
        },
    )
    spec = ExportSpec(kind="events", org="acme", projects=("backend",), period=timedelta(days=1))
    state, out = tmp_path / "state.json", tmp_path / "out"
    with anyio.fail_after(30):
        async with _client(server) as client:
            for now in (first, FIXED_NOW):
                await export(client, spec, out, incremental=state, now=now, overlap=overlap)
    written = [
        msgspec.json.decode(line)["id"]
        for run in sorted(out.glob("run-*"))
        for path in run.glob("*.jsonl")
        for line in path.read_bytes().splitlines()
    ]
    assert sorted(written) == sorted(ids.values())
