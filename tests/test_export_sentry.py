"""The exporter against Sentry's ways: aggregates in Discover, windows too deep to serve."""

from __future__ import annotations

import gzip
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import anyio
import msgspec
import pytest

from sentry_async import BadRequest, RetryPolicy, SentryClient, ServerError
from sentry_async._protocol.errors import build_api_error
from sentry_async.export import ExportSpec, Window, export
from sentry_async.export._spec import is_aggregate
from sentry_async.export._splitting import unservable_window
from sentry_async.export._windows import halve
from sentry_async.testing import FakeSentry, Fault, SeedConfig
from sentry_async.testing.pytest_plugin import FIXED_NOW

ORG = "org-0"
DATA = SeedConfig(
    orgs=1, projects_per_org=3, issues_per_project=12, events_per_issue=(1, 4), days=20
)
END = FIXED_NOW - timedelta(hours=5)
START = END - timedelta(days=14)
FAST_RETRY = RetryPolicy(backoff_base=0.01, backoff_max=0.05)

Factory = Callable[..., Awaitable[FakeSentry]]


def _client(server: FakeSentry, **kwargs: Any) -> SentryClient:
    kwargs.setdefault("retry", FAST_RETRY)
    return SentryClient(server.token, base_url=server.url, **kwargs)


def _rows(path: Path) -> list[dict[str, Any]]:
    data = path.read_bytes()
    if path.name.endswith(".gz"):
        data = gzip.decompress(data)
    return [msgspec.json.decode(line) for line in data.splitlines()]


def _in_range(server: FakeSentry, slug: str, *, discover: bool = False) -> list[str]:
    """The project's events in the range: transactions in Discover only (a project's event
    list reads the errors dataset)."""
    return server.data.event_ids(
        ORG, slug, start=START.timestamp(), end=END.timestamp(), include_transactions=discover
    )


async def test_discover_aggregates_are_one_query_over_the_whole_range(
    fake_sentry_factory: Factory, tmp_path: Path
) -> None:
    server = await fake_sentry_factory(scale=DATA)
    spec = ExportSpec(
        kind="discover",
        org=ORG,
        fields=("project", "count()"),
        start=START,
        end=END,
        window=timedelta(days=3),
    )
    with anyio.fail_after(20):
        async with _client(server) as client:
            manifest = await export(client, spec, tmp_path)
    slugs = server.data.project_slugs(ORG)
    rows = [row for file in manifest.files for row in _rows(tmp_path / file.path)]
    # One row per project, holding the count over the whole range: no partial counts.
    assert sorted(row["project"] for row in rows) == sorted(slugs)
    assert {row["project"]: row["count()"] for row in rows} == {
        slug: len(_in_range(server, slug, discover=True)) for slug in slugs
    }
    assert len(manifest.streams) == 1
    (stream,) = manifest.streams
    assert (stream.window_start, stream.window_end) == (manifest.start, manifest.end)
    assert [file.path for file in manifest.files] == ["aggregates.jsonl"]
    discover = [r for r in server.requests if r.path.endswith("/events/")]
    assert len({(r.param("start"), r.param("end")) for r in discover}) == 1


QUERY_TIMEOUT = {
    "detail": "Query timeout. Please try again. If the problem persists try a smaller date "
    "range or fewer projects."
}
TOO_DEEP = {"detail": "Pagination offset too large"}


def _window(start: str, end: str) -> str:
    """A fault's query regex for one window: ``start`` and ``end`` as ``MM-DDTHH``."""
    return f"start=2026-{start}[^&]*&end=2026-{end}"


def _events_spec(**kwargs: Any) -> ExportSpec:
    kwargs.setdefault("page_size", 2)
    return ExportSpec(
        kind="events", org=ORG, start=START, end=END, window=timedelta(days=3), **kwargs
    )


def _assert_exactly_once(server: FakeSentry, directory: Path, suffix: str = ".jsonl") -> None:
    for slug in server.data.project_slugs(ORG):
        ids = [row["id"] for row in _rows(directory / f"{slug}{suffix}")]
        assert len(ids) == len(set(ids)), f"{slug}: items written twice"
        assert sorted(ids) == sorted(_in_range(server, slug)), slug


async def test_a_window_that_times_out_is_split_until_it_passes(
    fake_sentry_factory: Factory, tmp_path: Path
) -> None:
    server = await fake_sentry_factory(scale=DATA)
    # The first window of project-0-1 times out, and so does its first half.
    for start, end in (("05-18T07", "05-21T07"), ("05-18T07", "05-19T19")):
        server.faults.add(
            Fault(
                "status",
                status=400,
                body=QUERY_TIMEOUT,
                path="project-0-1/events/",
                query=_window(start, end),
                times=None,
            )
        )
    with anyio.fail_after(30):
        async with _client(server) as client:
            manifest = await export(client, _events_spec(), tmp_path, concurrency=1)
    _assert_exactly_once(server, tmp_path)
    split = sorted(s.key for s in manifest.streams if s.split)
    assert split == [
        "project-0-1@2026-05-18T07:00:00Z",
        "project-0-1@2026-05-18T07:00:00Z..2026-05-19T19:00:00Z",
    ]
    halves = sorted(
        (s.window_start, s.window_end) for s in manifest.streams if ".." in s.key and not s.split
    )
    assert halves == [
        ("2026-05-18T07:00:00Z", "2026-05-19T01:00:00Z"),
        ("2026-05-19T01:00:00Z", "2026-05-19T19:00:00Z"),
        ("2026-05-19T19:00:00Z", "2026-05-21T07:00:00Z"),
    ]
    assert sum(s.items for s in manifest.streams if ".." in s.key) > 0
    assert not (tmp_path / "checkpoint.json").exists(), "complete: only the manifest stays"


@pytest.mark.parametrize(("gzip_", "concurrency"), [(False, 1), (True, 4)])
async def test_a_window_too_deep_splits_and_resumes_exactly(
    fake_sentry_factory: Factory, tmp_path: Path, gzip_: bool, concurrency: int
) -> None:
    server = await fake_sentry_factory(scale=DATA)
    deep = server.faults.add(
        Fault(
            "status",
            status=400,
            body=TOO_DEEP,
            path="project-0-0/events/",
            # The third page (0:2:0), asked one row early.
            query=f"(?=.*{_window('05-21T07', '05-24T07')})(?=.*cursor=0:1:0)",
            times=None,
        )
    )
    # The second half fails for good once: the run stops after the split was recorded.
    stop = server.faults.add(
        Fault(
            "status",
            status=503,
            path="project-0-0/events/",
            query=_window("05-22T19", "05-24T07"),
            times=None,
        )
    )
    spec = _events_spec(page_size=1, gzip=gzip_)
    with anyio.fail_after(30):
        async with _client(server) as client:
            with pytest.raises(ServerError):
                await export(client, spec, tmp_path, concurrency=concurrency)
            checkpoint = msgspec.json.decode((tmp_path / "checkpoint.json").read_bytes())
            parent = checkpoint["streams"]["project-0-0@2026-05-21T07:00:00Z"]
            assert parent["split"] and parent["pages"] == 2 and parent["items"] == 2
            second = checkpoint["streams"]["project-0-0@2026-05-22T19:00:00Z..2026-05-24T07:00:00Z"]
            assert not second["done"] and second["dedupe_from"] == parent["first_offset"]
            stop.times = stop.fired
            manifest = await export(client, spec, tmp_path, resume=True, concurrency=concurrency)
    assert deep.fired == 1, "the split is not asked again"
    _assert_exactly_once(server, tmp_path, ".jsonl.gz" if gzip_ else ".jsonl")
    parts = [
        s for s in manifest.streams if s.key.startswith("project-0-0@2026-05-2") and ".." in s.key
    ]
    assert len(parts) == 2
    # The parent's two items were asked for again by a half, and written once.
    assert sum(s.duplicates for s in parts) == 2
    assert manifest.duplicates == 2 and manifest.runs == 2


async def test_a_window_that_stays_unservable_stops_at_the_minimum_size(
    fake_sentry_factory: Factory, tmp_path: Path
) -> None:
    server = await fake_sentry_factory(scale=DATA)
    server.faults.add(
        Fault("status", status=400, body=QUERY_TIMEOUT, path="project-0-2/events/", times=None)
    )
    async with _client(server) as client:
        with anyio.fail_after(30), pytest.raises(BadRequest, match="Query timeout"):
            await export(
                client,
                _events_spec(projects=("project-0-2",)),
                tmp_path,
                concurrency=1,
                min_window=timedelta(days=1),
            )
    windows = {(r.param("start"), r.param("end")) for r in server.requests if "/events/" in r.path}
    # 3 days, then its first half of 1.5 days, whose halves (18 hours) are too short.
    assert windows == {
        ("2026-05-18T07:00:00", "2026-05-21T07:00:00"),
        ("2026-05-18T07:00:00", "2026-05-19T19:00:00"),
    }


def test_which_fields_are_aggregates_and_which_errors_split_a_window() -> None:
    assert [is_aggregate(f) for f in ("count()", "p95(transaction.duration)", "equation|a+b")] == [
        True,
        True,
        True,
    ]
    assert not any(is_aggregate(f) for f in ("title", "project", "event.type", "id"))
    url = "https://sentry.io/api/0/organizations/acme/events/"
    error = build_api_error(400, msgspec.json.encode(QUERY_TIMEOUT), method="GET", url=url)
    assert unservable_window(error)
    assert unservable_window(
        build_api_error(400, msgspec.json.encode(TOO_DEEP), method="GET", url=url)
    )
    other = build_api_error(400, b'{"detail": "Invalid query"}', method="GET", url=url)
    assert not unservable_window(other) and not unservable_window(ValueError("x"))
    start = datetime(2026, 1, 1, tzinfo=timezone.utc)
    halves = halve(Window(start, start + timedelta(hours=1, seconds=1)), timedelta(minutes=1))
    assert halves is not None
    assert [(h.start, h.end) for h in halves] == [
        (start, start + timedelta(minutes=30)),
        (start + timedelta(minutes=30), start + timedelta(hours=1, seconds=1)),
    ]
    assert halve(Window(start, start + timedelta(seconds=119)), timedelta(minutes=1)) is None
