"""An export's range as Sentry serves it: the organization's retention, whole seconds."""

from __future__ import annotations

import gzip
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path

import anyio
import msgspec
import pytest

from sentry_async import BadRequest, RetryPolicy, SentryClient, ServerError, _cli_run
from sentry_async._protocol.errors import build_api_error
from sentry_async.export import ExportSpec, export
from sentry_async.export._manifest import Manifest
from sentry_async.export._splitting import outside_retention, unservable_window
from sentry_async.export._windows import parse_utc, resolve_range
from sentry_async.testing import FakeSentry, Fault, SeedConfig
from sentry_async.testing.pytest_plugin import FIXED_NOW

Factory = Callable[..., Awaitable[FakeSentry]]
FAST_RETRY = RetryPolicy(attempts=2, backoff_base=0.01, backoff_max=0.05)
EXPIRED = "Invalid date range. Please try a more recent date range."
URL = "https://sentry.io/api/0/organizations/acme/events/"
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


def test_only_the_retention_answer_counts_as_outside_retention() -> None:
    def error(status: int, detail: str) -> Exception:
        body = msgspec.json.encode({"detail": detail})
        return build_api_error(status, body, method="GET", url=URL)

    assert outside_retention(error(400, EXPIRED))
    assert not unservable_window(error(400, EXPIRED))
    for other in (
        error(400, "Invalid date range"),
        error(400, "start must be before end"),
        error(400, EXPIRED + " (and more)"),
        error(500, EXPIRED),
        error(400, "Query timeout. Please try again."),
        ValueError(EXPIRED),
    ):
        assert not outside_retention(other), other


@pytest.mark.parametrize("kind", ["discover", "events", "issue-events"])
async def test_a_range_reaching_past_retention_exports_what_is_kept_and_says_what_was_not(
    fake_sentry_factory: Factory,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    kind: str,
) -> None:
    ages = {
        "1d": timedelta(days=1),
        "80d": timedelta(days=80),
        # In the window that straddles the retention's start: its kept part is exported.
        "89d20h": timedelta(days=89, hours=20),
        "90d4h": timedelta(days=90, hours=4),
        "100d": timedelta(days=100),
    }
    server, ids, issue = await _acme(fake_sentry_factory, ages)
    assert server.data.retention_days == 90
    start = FIXED_NOW - timedelta(days=120, hours=12)
    if kind == "discover":
        spec = ExportSpec(kind=kind, org="acme", projects=("backend",), fields=DISCOVER, start=start)
    elif kind == "events":
        spec = ExportSpec(kind=kind, org="acme", projects=("backend",), start=start)
    else:
        spec = ExportSpec(kind="events", org="acme", issues=(issue,), start=start)
    caplog.set_level(logging.WARNING, "sentry_async.export")
    with anyio.fail_after(30):
        async with _client(server) as client:
            manifest = await export(client, spec, tmp_path, now=FIXED_NOW)
    got = _ids(tmp_path, manifest)
    assert sorted(got) == sorted(ids[name] for name in ("1d", "80d", "89d20h"))
    kept_from = FIXED_NOW - timedelta(days=90)
    skipped = [s for s in manifest.streams if s.outside_retention]
    # Every window wholly before the retention's start, and none of the others.
    assert {s.key for s in skipped} == {
        s.key for s in manifest.streams if parse_utc(s.window_end) < kept_from
    }
    assert len(skipped) == 30 and not any(s.items for s in skipped)
    assert manifest.outside_retention == max(s.window_end for s in skipped)
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("retention" in w and manifest.start in w for w in warnings), warnings
    summary = _cli_run._summary(manifest, tmp_path, 1.0)
    assert f"{manifest.start} .. {manifest.outside_retention} outside the organization's" in (
        summary
    )


async def test_a_resume_after_retention_moved_past_its_windows_finishes(
    fake_sentry_factory: Factory, tmp_path: Path
) -> None:
    ages = {"5d": timedelta(days=5), "40d": timedelta(days=40), "60d": timedelta(days=60)}
    server, ids, _ = await _acme(fake_sentry_factory, ages)
    spec = ExportSpec(
        kind="discover",
        org="acme",
        projects=("backend",),
        fields=DISCOVER,
        period=timedelta(days=70),
        window=timedelta(days=10),
    )
    # The first run stops at the third window (one at a time: the first two are done).
    server.faults.add(
        Fault(
            "status",
            status=503,
            path="/api/0/organizations/acme/events/",
            query=r"start=2026-04-12T12",
            times=2,
        )
    )
    with anyio.fail_after(30):
        async with _client(server) as client:
            with pytest.raises(ServerError):
                await export(client, spec, tmp_path, now=FIXED_NOW, concurrency=1)
    # Resumed once the retention has moved past all but the newest window.
    server.data.retention_days = 8
    with anyio.fail_after(30):
        async with _client(server) as client:
            manifest = await export(client, spec, tmp_path, resume=True, now=FIXED_NOW)
    assert sorted(_ids(tmp_path, manifest)) == sorted([ids["60d"], ids["5d"]])
    assert [s.outside_retention for s in manifest.streams] == [False] * 2 + [True] * 4 + [False]
    assert manifest.outside_retention == manifest.streams[-2].window_end


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
    first, last = (parse_utc(t).timestamp() for t in (manifest.start, manifest.end))
    expected = server.data.event_ids("acme", "backend", start=first, end=last)
    assert sorted(_ids(tmp_path, manifest)) == sorted(expected)
    assert (manifest.start, manifest.end) == (
        start.replace(microsecond=0).isoformat().replace("+00:00", "Z"),
        edge.isoformat().replace("+00:00", "Z"),
    )
    assert all(
        parse_utc(b).microsecond == 0
        for s in manifest.streams
        for b in (s.window_start, s.window_end)
    )
    assert len(manifest.streams) == 6


async def test_the_fake_answers_sentrys_precision_and_retention(
    fake_sentry_factory: Factory,
) -> None:
    ages = {"now-0.5s": timedelta(milliseconds=500), "95d": timedelta(days=95)}
    server, ids, issue = await _acme(fake_sentry_factory, ages)
    end = FIXED_NOW - timedelta(milliseconds=100)
    async with _client(server) as client:
        # ``end`` loses its fraction: the event half a second before it is not in range.
        rows = await client.discover.query(
            "acme", fields=["id"], start=FIXED_NOW - timedelta(hours=1), end=end
        ).collect()
        assert rows == []
        # Partly out of retention: the start moves up, and the kept part is served.
        rows = await client.discover.query(
            "acme", fields=["id"], start=FIXED_NOW - timedelta(days=200), end=FIXED_NOW
        ).collect()
        assert [r["id"].replace("-", "") for r in rows] == [ids["now-0.5s"]]
        old, expired_end = FIXED_NOW - timedelta(days=200), FIXED_NOW - timedelta(days=91)
        with pytest.raises(BadRequest) as caught:
            await client.discover.query(
                "acme", fields=["id"], start=old, end=expired_end
            ).collect()
        assert outside_retention(caught.value)
        # The project and issue events endpoints leave the refusal uncaught: a 500.
        for events in (
            client.events.for_project("acme", "backend", start=old, end=expired_end),
            client.events.for_issue("acme", issue, start=old, end=expired_end),
        ):
            with pytest.raises(ServerError) as failed:
                await events.collect()
            assert failed.value.status == 500
        server.data.retention_days = None
        rows = await client.discover.query(
            "acme",
            fields=["id"],
            start=FIXED_NOW - timedelta(days=200),
            end=FIXED_NOW - timedelta(days=91),
        ).collect()
        assert [r["id"].replace("-", "") for r in rows] == [ids["95d"]]


async def test_a_window_known_to_be_outside_retention_is_not_asked_for_again(
    fake_sentry_factory: Factory, tmp_path: Path
) -> None:
    server = await fake_sentry_factory(scale=SeedConfig(orgs=0))
    org = server.builder.add_organization("acme")
    for slug in ("backend", "frontend"):
        org.add_project(slug).add_issue("Recent", events=0).add_event(
            timestamp=FIXED_NOW - timedelta(days=1)
        )
    start = FIXED_NOW - timedelta(days=100)
    spec = ExportSpec(kind="events", org="acme", start=start, window=timedelta(days=5))
    with anyio.fail_after(30):
        async with _client(server) as client:
            manifest = await export(client, spec, tmp_path, now=FIXED_NOW, concurrency=1)
    assert manifest.items == 2
    skipped = [s for s in manifest.streams if s.outside_retention]
    # [-100d, -95d) for each project; [-95d, -90d) ends where the retention begins: served.
    assert len(skipped) == 2
    # Streams go window by window: the second project's old windows are known refused.
    asked = [r for r in server.requests if r.path.endswith("/events/") and "/projects/" in r.path]
    frontend_old = [
        r for r in asked
        if "frontend" in r.path
        and datetime.fromisoformat(r.param("end") + "+00:00") < FIXED_NOW - timedelta(days=90)
    ]
    assert frontend_old == []


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
