"""Every resource through the public API against the bundled fake Sentry.

Expectations come from ``server.data`` (what the server holds), and the request log
(``server.requests``) shows what went over the wire: parameter names, repeated keys, UTC
datetimes, cursors.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import datetime, timedelta, timezone
from itertools import pairwise
from typing import Any
from urllib.parse import urlencode

import anyio
import msgspec
import pytest

from sentry_async import NotFound, RetryPolicy, SentryClient, Unauthorized
from sentry_async.testing import FakeSentry, RecordedRequest, SeedConfig
from sentry_async.testing._data import DEFAULT_PRIORITIES
from sentry_async.testing.pytest_plugin import FIXED_NOW

ORG = "org-0"
FAST_RETRY = RetryPolicy(attempts=2, backoff_base=0.01, backoff_max=0.05)


@pytest.fixture
async def client(fake_sentry: FakeSentry) -> AsyncIterator[SentryClient]:
    async with SentryClient(fake_sentry.token, base_url=fake_sentry.url, retry=FAST_RETRY) as sc:
        yield sc


def _project(server: FakeSentry, index: int = 0) -> str:
    return server.data.project_slugs(ORG)[index]


def _project_id(server: FakeSentry, slug: str) -> str:
    org = server.data.org(ORG)
    project = server.data.project(org, slug) if org else None
    assert project is not None
    return project.id


def _to(server: FakeSentry, suffix: str) -> list[RecordedRequest]:
    """The requests to one endpoint (slug lookups go to the projects list first)."""
    return [r for r in server.requests if r.path.endswith(suffix)]


def _unresolved_by_date(server: FakeSentry) -> list[str]:
    """The server's default listing: unresolved high and medium priority issues, most
    recently seen first (whole seconds, as Sentry's search scores them; ties by id)."""
    ids = server.data.issue_ids(ORG, status="unresolved", priority=DEFAULT_PRIORITIES)
    issues = [server.data.issues_by_id[i] for i in ids]
    issues.sort(key=lambda issue: (-int(issue.last_seen), -int(issue.id)))
    return [issue.id for issue in issues]


def _events_since(server: FakeSentry, project: str, days: int) -> list[str]:
    start = server.data.now_ts - days * 86400
    return server.data.event_ids(ORG, project, start=start)


# -- issues ---------------------------------------------------------------------------------


async def test_issue_list_walks_every_page_with_limit_param(
    fake_sentry: FakeSentry, client: SentryClient
) -> None:
    expected = _unresolved_by_date(fake_sentry)
    assert len(expected) > 30, "the dataset must span several pages for this test"
    with anyio.fail_after(10):
        issues = await client.issues.list(ORG, page_size=30).collect()
    assert [issue.id for issue in issues] == expected
    assert all(issue.status == "unresolved" for issue in issues)
    requests = fake_sentry.requests
    assert len(requests) == -(-len(expected) // 30)
    for request in requests:
        assert request.path == f"/api/0/organizations/{ORG}/issues/"
        assert request.param("limit") == "30"
        assert request.param("per_page") is None
        assert request.param("query") is None, "query=None leaves Sentry's default"
    assert requests[0].param("cursor") is None
    assert all(request.param("cursor") for request in requests[1:])


async def test_issue_list_empty_query_and_filters_are_sent(
    fake_sentry: FakeSentry, client: SentryClient
) -> None:
    project = _project(fake_sentry, 1)
    with anyio.fail_after(10):
        issues = await client.issues.list(
            ORG, query="", project=project, environment=["production", "staging"], sort="date"
        ).collect()
    assert sorted(issue.id for issue in issues) == sorted(
        fake_sentry.data.issue_ids(ORG, project=project)
    )
    assert {issue.status for issue in issues} >= {"resolved", "unresolved"}
    (request,) = _to(fake_sentry, "/issues/")
    assert request.param("query") == ""
    assert request.params("project") == [_project_id(fake_sentry, project)]
    assert request.params("environment") == ["production", "staging"]
    assert request.param("sort") == "date"


async def test_issue_list_time_range_goes_out_in_utc(
    fake_sentry: FakeSentry, client: SentryClient
) -> None:
    berlin = timezone(timedelta(hours=2))
    start = (FIXED_NOW - timedelta(days=10)).astimezone(berlin)
    end = (FIXED_NOW - timedelta(days=3)).astimezone(berlin)
    with anyio.fail_after(10):
        issues = await client.issues.list(ORG, query="", start=start, end=end).collect()
    (request,) = fake_sentry.requests
    assert request.param("start") == "2026-05-22T12:00:00"
    assert request.param("end") == "2026-05-29T12:00:00"
    assert request.param("statsPeriod") is None
    lo, hi = start.timestamp(), end.timestamp()
    expected = {
        issue.id
        for issue in fake_sentry.data.issues_by_id.values()
        if issue.project.org.slug == ORG and issue.last_seen >= lo and issue.first_seen <= hi
    }
    assert {issue.id for issue in issues} == expected
    assert 0 < len(expected) < len(fake_sentry.data.issue_ids(ORG))


async def test_issue_list_pages_report_hits(fake_sentry: FakeSentry, client: SentryClient) -> None:
    expected = _unresolved_by_date(fake_sentry)
    with anyio.fail_after(10):
        pages = [page async for page in client.issues.list(ORG, page_size=50).pages()]
    # Exact on the first page; after it Sentry sends an estimate.
    assert pages[0].hits == len(expected)
    assert all(page.hits is not None and page.hits >= len(expected) for page in pages[1:])
    assert all(page.max_hits == 1000 for page in pages)
    assert pages[0].cursor is None and pages[-1].next_cursor is None
    assert [page.cursor for page in pages[1:]] == [page.next_cursor for page in pages[:-1]]


async def test_issue_list_raw_yields_the_servers_json_bytes(
    fake_sentry: FakeSentry, client: SentryClient
) -> None:
    with anyio.fail_after(10):
        items = await client.issues.list(ORG, page_size=40, limit=60).raw().collect()
    expected = _unresolved_by_date(fake_sentry)[:60]
    assert all(isinstance(item, msgspec.Raw) for item in items)
    data = fake_sentry.data
    assert [bytes(item) for item in items] == [
        data.issue_bytes(data.issues_by_id[issue_id]) for issue_id in expected
    ]


async def test_issue_get_update_delete(fake_sentry: FakeSentry, client: SentryClient) -> None:
    issue_id = fake_sentry.data.issue_ids(ORG, status="unresolved")[0]
    record = fake_sentry.data.issues_by_id[issue_id]
    with anyio.fail_after(10):
        issue = await client.issues.get(ORG, issue_id)
        assert issue.id == issue_id
        assert issue.short_id == record.short_id
        assert issue.count_int == len(record.events)
        assert [tag.key for tag in issue.tags] == ["environment", "level"], "detail-only field"
        assert issue.activity, "detail-only field"

        updated = await client.issues.update(ORG, int(issue_id), status="resolved")
        assert updated is not None and updated.status == "resolved"
        assert record.status == "resolved"
        assert fake_sentry.requests[-1].method == "PUT"

        assert await client.issues.delete(ORG, issue_id) is None
        assert fake_sentry.requests[-1].method == "DELETE"
        assert fake_sentry.requests[-1].status == 202
        assert record.deleted
        with pytest.raises(NotFound):
            await client.issues.get(ORG, issue_id)


async def test_bulk_update_sends_repeated_ids_in_chunks_of_1000(
    fake_sentry: FakeSentry, client: SentryClient
) -> None:
    real = fake_sentry.data.issue_ids(ORG, status="unresolved")
    # Ids the org does not hold are ignored by Sentry; they make the list long enough.
    filler = [str(9_000_000 + n) for n in range(2500 - len(real))]
    ids = real + filler
    with anyio.fail_after(15):
        result = await client.issues.bulk_update(ORG, ids, status="resolved")
    requests = fake_sentry.requests
    assert {request.method for request in requests} == {"PUT"}
    # At most 1000 ids a call, and a request line under nginx's 8 KB: 7-digit ids make
    # calls of about 700.
    assert all(0 < len(request.params("id")) <= 1000 for request in requests)
    assert all(len(request.path) + len(urlencode(request.query)) < 8000 for request in requests)
    assert len(requests) > 3, "1000 seven-digit ids make a request line over 8 KB"
    assert [i for request in requests for i in request.params("id")] == ids
    assert all(request.path == f"/api/0/organizations/{ORG}/issues/" for request in requests)
    assert result.calls == len(requests) and result.ids == ids
    assert result.results[0] is not None and result.results[0].status == "resolved"
    assert result.results[-1] is None, "nothing matched: Sentry answers 204"
    assert fake_sentry.data.issue_ids(ORG, status="unresolved") == []


async def test_bulk_update_scopes_to_projects(
    fake_sentry: FakeSentry, client: SentryClient
) -> None:
    project = _project(fake_sentry)
    ids = fake_sentry.data.issue_ids(ORG, project=project)[:5]
    with anyio.fail_after(10):
        result = await client.issues.bulk_update(ORG, ids, project=project, is_bookmarked=True)
    (request,) = _to(fake_sentry, "/issues/")
    assert request.params("id") == ids
    assert request.params("project") == [_project_id(fake_sentry, project)]
    assert result.results[0] is not None and result.results[0].is_bookmarked is True


async def test_bulk_delete_deletes_exactly_the_given_ids(
    fake_sentry: FakeSentry, client: SentryClient
) -> None:
    before = fake_sentry.data.issue_ids(ORG)
    doomed = before[:3]
    with anyio.fail_after(10):
        result = await client.issues.bulk_delete(ORG, [int(i) for i in doomed])
    (request,) = fake_sentry.requests
    assert request.method == "DELETE" and request.params("id") == doomed
    assert result.calls == 1 and result.results == [None]
    assert fake_sentry.data.issue_ids(ORG) == before[3:]


@pytest.mark.anyio
@pytest.mark.parametrize("method", ["bulk_delete", "bulk_update"])
async def test_bulk_calls_refuse_an_empty_id_list(
    fake_sentry: FakeSentry, client: SentryClient, method: str
) -> None:
    before = fake_sentry.data.issue_ids(ORG)
    call: Callable[..., Any] = getattr(client.issues, method)
    kwargs = {"status": "resolved"} if method == "bulk_update" else {}
    with pytest.raises(ValueError, match="at least one issue id"):
        await call(ORG, [], **kwargs)
    with pytest.raises(ValueError, match="at least one issue id"):
        await call(ORG, iter(()), **kwargs)
    assert fake_sentry.requests == []
    assert fake_sentry.data.issue_ids(ORG) == before


async def test_hashes_group_the_issues_events(
    fake_sentry: FakeSentry, client: SentryClient
) -> None:
    issue_id = fake_sentry.data.issue_ids(ORG)[0]
    record = fake_sentry.data.issues_by_id[issue_id]
    with anyio.fail_after(10):
        hashes = await client.issues.hashes(ORG, issue_id, page_size=1).collect()
    assert len(hashes) == len({event.index % 3 for event in record.events})
    assert len({h.id for h in hashes}) == len(hashes)
    event_ids = set(fake_sentry.data.events_for_issue(issue_id))
    assert all(h.latest_event is not None and h.latest_event.id in event_ids for h in hashes)
    assert len(fake_sentry.requests) == len(hashes)
    assert all(request.param("per_page") == "1" for request in fake_sentry.requests)
    assert fake_sentry.requests[0].path.endswith(f"/issues/{issue_id}/hashes/")


async def test_tag_detail_and_values_count_the_issues_events(
    fake_sentry: FakeSentry, client: SentryClient
) -> None:
    issue_id = fake_sentry.data.issue_ids(ORG)[0]
    record = fake_sentry.data.issues_by_id[issue_id]
    expected = Counter(event.environment for event in record.events)
    with anyio.fail_after(10):
        detail = await client.issues.tag(ORG, issue_id, "environment")
        values = await client.issues.tag_values(
            ORG, issue_id, "environment", page_size=1, sort="count"
        ).collect()
    assert detail.key == "environment"
    assert detail.total_values == len(record.events)
    assert {v.value: v.count for v in detail.top_values} == dict(expected)
    assert {v.value: v.count for v in values} == dict(expected)
    value_requests = [r for r in fake_sentry.requests if r.path.endswith("/values/")]
    assert len(value_requests) == len(expected)
    assert all(r.param("sort") == "count" for r in value_requests)
    with anyio.fail_after(10):
        raw = await client.issues.tag_values(ORG, issue_id, "environment").raw().collect()
    assert all(isinstance(item, msgspec.Raw) for item in raw)
    assert {
        msgspec.json.decode(item)["value"]: msgspec.json.decode(item)["count"] for item in raw
    } == dict(expected)


# -- events ---------------------------------------------------------------------------------


async def test_issue_event_summaries_newest_first(
    fake_sentry: FakeSentry, client: SentryClient
) -> None:
    issue_id = max(
        fake_sentry.data.issue_ids(ORG),
        key=lambda i: len(fake_sentry.data.events_for_issue(i)),
    )
    expected = fake_sentry.data.events_for_issue(issue_id)
    with anyio.fail_after(10):
        events = await client.events.for_issue(
            ORG, issue_id, page_size=3, environment="production"
        ).collect()
    production = {
        e.event_id
        for e in fake_sentry.data.issues_by_id[issue_id].events
        if e.environment == "production"
    }
    assert [e.id for e in events] == [i for i in expected if i in production]
    assert all(e.group_id == issue_id for e in events)
    for request in fake_sentry.requests:
        assert request.path == f"/api/0/organizations/{ORG}/issues/{issue_id}/events/"
        assert request.param("per_page") == "3"
        assert request.params("environment") == ["production"]
        assert request.param("full") is None


async def test_project_events_full_pages_hold_at_most_ten(
    fake_sentry: FakeSentry, client: SentryClient
) -> None:
    project = _project(fake_sentry)
    expected = _events_since(fake_sentry, project, 14)
    assert len(expected) > 10
    paginator = client.events.for_project(ORG, project, full=True, period="14d")
    with anyio.fail_after(15):
        pages = [page async for page in paginator.pages()]
    assert all(len(page.items) <= 10 for page in pages)
    assert len(pages) == -(-len(expected) // 10)
    assert [event.id for page in pages for event in page.items] == expected
    assert all(event.entries for page in pages for event in page.items), "full payloads"
    for request in fake_sentry.requests:
        assert request.path == f"/api/0/projects/{ORG}/{project}/events/"
        assert request.param("full") in ("1", "true")
        assert request.param("per_page") == "100"
        assert request.param("statsPeriod") == "14d"


async def test_project_events_raw_are_the_payload_bytes(
    fake_sentry: FakeSentry, client: SentryClient
) -> None:
    project = _project(fake_sentry, 2)
    data = fake_sentry.data
    expected = _events_since(fake_sentry, project, 3)
    with anyio.fail_after(10):
        full = await client.events.for_project(ORG, project, full=True, period="3d").raw().collect()
        summaries = await client.events.for_project(ORG, project, period="3d").raw().collect()
    assert all(isinstance(item, msgspec.Raw) for item in full + summaries)
    assert [bytes(item) for item in full] == [
        data.event_bytes(data.events_by_id[i]) for i in expected
    ]
    assert [msgspec.json.decode(item)["id"] for item in summaries] == expected


async def test_issue_event_aliases_and_ids(fake_sentry: FakeSentry, client: SentryClient) -> None:
    issue_id = fake_sentry.data.issue_ids(ORG)[1]
    ids = fake_sentry.data.events_for_issue(issue_id)
    assert len(ids) >= 2
    with anyio.fail_after(10):
        latest = await client.events.latest(ORG, issue_id)
        oldest = await client.events.oldest(ORG, issue_id)
        recommended = await client.events.recommended(ORG, issue_id)
        dashed = f"{ids[1][:8]}-{ids[1][8:12]}-{ids[1][12:16]}-{ids[1][16:20]}-{ids[1][20:]}"
        second = await client.events.for_issue_event(ORG, issue_id, dashed.upper())
    assert latest.id == ids[0] and latest.previous_event_id == ids[1]
    assert oldest.id == ids[-1] and oldest.next_event_id == ids[-2]
    assert recommended.id in ids
    assert second.id == ids[1]
    paths = [request.path.rsplit("/", 2)[-2] for request in fake_sentry.requests]
    assert paths == ["latest", "oldest", "recommended", ids[1]]


async def test_project_event_get_and_get_raw(fake_sentry: FakeSentry, client: SentryClient) -> None:
    project = _project(fake_sentry)
    event_id = fake_sentry.data.event_ids(ORG, project, include_transactions=False)[0]
    record = fake_sentry.data.events_by_id[event_id]
    with anyio.fail_after(10):
        event = await client.events.get(ORG, project, event_id)
        raw = await client.events.get_raw(ORG, project, event_id)
    assert record.issue is not None
    assert event.id == event_id and event.group_id == record.issue.id
    assert raw == fake_sentry.data.event_bytes(record)
    assert fake_sentry.requests[0].path == f"/api/0/projects/{ORG}/{project}/events/{event_id}/"


async def test_event_id_resolves_to_project_and_issue(
    fake_sentry: FakeSentry, client: SentryClient
) -> None:
    project = _project(fake_sentry, 1)
    event_id = fake_sentry.data.event_ids(ORG, project, include_transactions=False)[3]
    record = fake_sentry.data.events_by_id[event_id]
    with anyio.fail_after(10):
        found = await client.events.resolve(ORG, event_id.upper())
    assert found.organization_slug == ORG
    assert found.project_slug == project
    assert record.issue is not None and found.group_id == record.issue.id
    assert found.event is not None and found.event.id == event_id
    assert fake_sentry.requests[0].path == f"/api/0/organizations/{ORG}/eventids/{event_id}/"


# -- discover -------------------------------------------------------------------------------


async def test_discover_rows_and_parameters(fake_sentry: FakeSentry, client: SentryClient) -> None:
    project = _project(fake_sentry)
    expected = _events_since(fake_sentry, project, 7)
    fields = ["id", "title", "timestamp", "project"]
    paginator = client.discover.query(
        ORG, fields=fields, project=project, period="7d", sort="-timestamp", page_size=40
    )
    with anyio.fail_after(15):
        pages = [page async for page in paginator.pages()]
    rows = [row for page in pages for row in page.items]
    assert sorted(row["id"] for row in rows) == sorted(expected)
    assert all(set(row) == set(fields) and row["project"] == project for row in rows)
    assert pages[0].meta is not None and pages[0].meta.fields["timestamp"] == "date"
    assert len(pages) == max(1, -(-len(expected) // 40))
    for request in _to(fake_sentry, "/events/"):
        assert request.path == f"/api/0/organizations/{ORG}/events/"
        assert request.params("field") == fields
        assert request.param("per_page") == "40"
        assert request.param("statsPeriod") == "7d"
        assert request.params("sort") == ["-timestamp"]
        assert request.params("project") == [_project_id(fake_sentry, project)]


async def test_discover_aggregates_with_utc_start_end(
    fake_sentry: FakeSentry, client: SentryClient
) -> None:
    project = _project(fake_sentry, 1)
    tokyo = timezone(timedelta(hours=9))
    start = datetime(2026, 5, 20, 21, 0, tzinfo=tokyo)
    end = datetime(2026, 5, 31, 9, 30, 15, tzinfo=tokyo)
    with anyio.fail_after(10):
        rows = await client.discover.query(
            ORG, fields=["environment", "count()"], project=project, start=start, end=end
        ).collect()
    (request,) = _to(fake_sentry, "/events/")
    assert request.param("start") == "2026-05-20T12:00:00"
    assert request.param("end") == "2026-05-31T00:30:15"
    assert request.params("field") == ["environment", "count()"]
    expected = Counter(
        fake_sentry.data.events_by_id[i].environment
        for i in fake_sentry.data.event_ids(
            ORG, project, start=start.timestamp(), end=end.timestamp()
        )
    )
    assert {row["environment"]: row["count()"] for row in rows} == dict(expected)


async def test_discover_raw_rows(fake_sentry: FakeSentry, client: SentryClient) -> None:
    project = _project(fake_sentry)
    with anyio.fail_after(10):
        typed = await client.discover.query(
            ORG, fields=["id", "level"], project=project, period="5d"
        ).collect()
        raw = (
            await client.discover.query(ORG, fields=["id", "level"], project=project, period="5d")
            .raw()
            .collect()
        )
    assert typed and all(isinstance(item, msgspec.Raw) for item in raw)
    assert [msgspec.json.decode(item) for item in raw] == typed


# -- stats ----------------------------------------------------------------------------------


def _env_counts(server: FakeSentry, project: str, days: int) -> Counter[str]:
    return Counter(
        server.data.events_by_id[i].environment for i in _events_since(server, project, days)
    )


async def test_events_stats_single_axis(fake_sentry: FakeSentry, client: SentryClient) -> None:
    project = _project(fake_sentry)
    with anyio.fail_after(10):
        stats = await client.stats.events(ORG, project=project, period="3d", interval="1h")
    (series,) = stats.series
    assert series.name == series.y_axis == "count()" and series.group is None
    assert series.total == len(_events_since(fake_sentry, project, 3))
    assert all(b - a == 3600 for a, b in pairwise(series.timestamps))
    (request,) = _to(fake_sentry, "/events-stats/")
    assert request.params("yAxis") == ["count()"]
    assert request.param("interval") == "1h"
    assert request.param("topEvents") is None


async def test_events_stats_multiple_axes(fake_sentry: FakeSentry, client: SentryClient) -> None:
    project = _project(fake_sentry)
    axes = ["count()", "count_unique(user)"]
    with anyio.fail_after(10):
        stats = await client.stats.events(ORG, y_axis=axes, project=project, period="3d")
    assert [s.name for s in stats.series] == axes
    assert [s.y_axis for s in stats.series] == axes
    assert stats.series[0].total == len(_events_since(fake_sentry, project, 3))
    assert _to(fake_sentry, "/events-stats/")[0].params("yAxis") == axes


async def test_events_stats_top_events(fake_sentry: FakeSentry, client: SentryClient) -> None:
    project = _project(fake_sentry)
    with anyio.fail_after(10):
        stats = await client.stats.events(
            ORG,
            project=project,
            period="3d",
            top_events=2,
            fields=["environment", "count()"],
            order_by="-count()",
        )
    expected = _env_counts(fake_sentry, project, 3)
    assert {s.group: s.total for s in stats.series} == dict(expected)
    assert all(s.y_axis == "count()" and s.name == s.group for s in stats.series)
    assert [s.order for s in stats.series] == list(range(len(stats.series)))
    (request,) = _to(fake_sentry, "/events-stats/")
    assert request.param("topEvents") == "2"
    assert request.params("field") == ["environment", "count()"]
    assert request.param("orderby") == "-count()"


async def test_events_stats_top_events_multiple_axes(
    fake_sentry: FakeSentry, client: SentryClient
) -> None:
    project = _project(fake_sentry)
    axes = ["count()", "count_unique(user)"]
    with anyio.fail_after(10):
        stats = await client.stats.events(
            ORG,
            y_axis=axes,
            project=project,
            period="3d",
            top_events=5,
            fields=["environment"],
            order_by="-count()",
        )
    expected = _env_counts(fake_sentry, project, 3)
    assert {(s.group, s.y_axis) for s in stats.series} == {
        (env, axis) for env in expected for axis in axes
    }
    counts = {s.group: s.total for s in stats.series if s.y_axis == "count()"}
    assert counts == dict(expected)


async def test_usage_grouped_by_project_has_no_intervals(
    fake_sentry: FakeSentry, client: SentryClient
) -> None:
    with anyio.fail_after(10):
        usage = await client.stats.usage(ORG, group_by="project", period="2d", interval="1d")
        by_outcome = await client.stats.usage(ORG, group_by=["outcome"], period="2d")
    assert usage.intervals == []
    assert all(group.series == {} for group in usage.groups)
    org = fake_sentry.data.org(ORG)
    assert org is not None
    # Sentry rounds the start down to the interval: count from the start it reports.
    assert usage.start is not None
    start = datetime.fromisoformat(usage.start.replace("Z", "+00:00")).timestamp()
    assert start <= fake_sentry.data.now_ts - 2 * 86400
    expected = {
        int(p.id): len(fake_sentry.data.event_ids(ORG, p.slug, start=start)) for p in org.projects
    }
    assert {group.by["project"]: group.totals["sum(quantity)"] for group in usage.groups} == {
        k: v for k, v in expected.items() if v
    }
    assert by_outcome.intervals and all(
        len(group.series["sum(quantity)"]) == len(by_outcome.intervals)
        for group in by_outcome.groups
    )
    first = _to(fake_sentry, "/stats_v2/")[0]
    assert first.path == f"/api/0/organizations/{ORG}/stats_v2/"
    assert first.params("groupBy") == ["project"]
    assert first.param("field") == "sum(quantity)"
    assert first.param("interval") == "1d"
    assert first.param("statsPeriod") == "2d"


# -- organizations, projects, and the generic entry points ------------------------------------


async def test_organizations_list_get_and_region(
    fake_sentry: FakeSentry, client: SentryClient
) -> None:
    with anyio.fail_after(10):
        orgs = await client.organizations.list(page_size=1).collect()
        raw = await client.organizations.list().raw().collect()
        org = await client.organizations.get(ORG)
        region = await client.organizations.use_region(ORG)
    assert [o.slug for o in orgs] == fake_sentry.data.org_slugs()
    assert [msgspec.json.decode(item)["slug"] for item in raw] == fake_sentry.data.org_slugs()
    assert org.slug == ORG and org.links is not None
    assert org.links.region_url == fake_sentry.url
    assert region == fake_sentry.url
    assert "global-views" in org.features
    listings = _to(fake_sentry, "/api/0/organizations/")[: len(orgs)]
    assert [r.param("per_page") for r in listings] == ["1"] * len(orgs)


async def test_projects_list_pages_by_page_number(
    fake_sentry: FakeSentry, client: SentryClient
) -> None:
    slugs = fake_sentry.data.project_slugs(ORG)
    with anyio.fail_after(10):
        projects = await client.projects.list(ORG, page_size=2).collect()
        one = await client.projects.get(ORG, slugs[1])
    assert sorted(p.slug for p in projects) == sorted(slugs)
    assert projects[0].is_bookmarked, "bookmarked projects come first"
    assert one.slug == slugs[1] and one.name is not None
    cursors = [r.param("cursor") for r in fake_sentry.requests if r.path.endswith("/projects/")]
    assert cursors[0] is None and cursors[1] == "2:1:0", "OffsetPaginator: limit:page:is_prev"


async def test_request_and_paginate_reach_unwrapped_endpoints(
    fake_sentry: FakeSentry, client: SentryClient
) -> None:
    org = fake_sentry.data.org(ORG)
    assert org is not None
    with anyio.fail_after(10):
        releases = await client.paginate(
            "/organizations/{org}/releases/", path_params={"org": ORG}, page_size=7
        ).collect()
        detail = await client.request("GET", "/organizations/{org}/", path_params={"org": ORG})
    assert len(releases) == 5 * len(org.projects)
    assert len({r["version"] for r in releases}) == len(releases)
    assert detail["slug"] == ORG
    release_requests = [r for r in fake_sentry.requests if r.path.endswith("/releases/")]
    assert len(release_requests) == -(-len(releases) // 7)
    assert all(r.param("per_page") == "7" for r in release_requests)


# -- errors ---------------------------------------------------------------------------------


async def test_unknown_resources_raise_not_found_with_detail(
    fake_sentry: FakeSentry, client: SentryClient
) -> None:
    calls: list[Callable[[], Awaitable[Any]]] = [
        lambda: client.organizations.get("no-such-org"),
        lambda: client.projects.get(ORG, "no-such-project"),
        lambda: client.issues.get(ORG, 1),
        lambda: client.issues.list("no-such-org").collect(),
        lambda: client.events.resolve(ORG, "0" * 32),
    ]
    with anyio.fail_after(10):
        for call in calls:
            with pytest.raises(NotFound) as caught:
                await call()
            assert caught.value.status == 404
            assert caught.value.detail == "The requested resource does not exist"
    assert len(fake_sentry.requests) == len(calls), "a 404 is not retried"


async def test_bad_token_is_unauthorized(fake_sentry: FakeSentry) -> None:
    async with SentryClient("wrong-token", base_url=fake_sentry.url, retry=FAST_RETRY) as sc:
        with anyio.fail_after(10), pytest.raises(Unauthorized) as caught:
            await sc.issues.list(ORG).collect()
    assert caught.value.status == 401
    assert caught.value.detail == "Invalid token"
    assert "wrong-token" not in str(caught.value)
    assert fake_sentry.requests[0].sent_token("wrong-token")
    assert not fake_sentry.requests[0].authenticated


_NAIVE = datetime(2026, 5, 1, 12, 0)
_AWARE = datetime(2026, 5, 1, 12, 0, tzinfo=timezone.utc)

INVALID_CALLS: dict[str, tuple[Callable[[SentryClient], Any], str]] = {
    "period typo": (lambda c: c.issues.list(ORG, period="14 days"), "period must look like"),
    "period zero": (
        lambda c: c.discover.query(ORG, fields=["id"], period="0d"),
        "period must look like",
    ),
    "naive start": (
        lambda c: c.events.for_project(ORG, "p", start=_NAIVE, end=_AWARE + timedelta(days=1)),
        "timezone-aware",
    ),
    "start without end": (lambda c: c.issues.list(ORG, start=_AWARE), "given together"),
    "period and start": (
        lambda c: c.stats.events(ORG, period="1d", start=_AWARE, end=_AWARE + timedelta(hours=1)),
        "either period or start/end",
    ),
    "per_page 0": (lambda c: c.issues.list(ORG, page_size=0), "from 1 to 100"),
    "per_page 101": (lambda c: c.events.for_issue(ORG, 1, page_size=101), "from 1 to 100"),
    "discover per_page 101": (
        lambda c: c.discover.query(ORG, fields=["id"], page_size=101),
        "from 1 to 100",
    ),
    "empty org": (lambda c: c.projects.list(""), "org must not be empty"),
    "blank org": (lambda c: c.organizations.get("  "), "org must not be empty"),
    "21 fields": (
        lambda c: c.discover.query(ORG, fields=[f"f{n}" for n in range(21)]),
        "1 to 20 field",
    ),
    "no fields": (lambda c: c.discover.query(ORG, fields=[]), "1 to 20 field"),
    "sort not selected": (
        lambda c: c.discover.query(ORG, fields=["id"], sort="-timestamp"),
        "must be one of the requested fields",
    ),
    "bad event id": (lambda c: c.events.get(ORG, "p", "not-an-id"), "event ids are 32 hex"),
    "malformed issue id": (
        lambda c: c.issues.get(ORG, "PROJ 1A"),
        "numeric id such as 4567 or a short id",
    ),
    "unknown update field": (
        lambda c: c.issues.update(ORG, 1, colour="red"),
        "unknown issue field 'colour'",
    ),
    "11 top events": (
        lambda c: c.stats.events(ORG, top_events=11, fields=["title"], order_by="-count()"),
        "from 1 to 10",
    ),
    "usage group": (lambda c: c.stats.usage(ORG, group_by="team"), "group_by must be among"),
}


@pytest.mark.anyio
@pytest.mark.parametrize("name", sorted(INVALID_CALLS))
async def test_invalid_input_fails_before_sending(fake_sentry: FakeSentry, name: str) -> None:
    async with SentryClient(fake_sentry.token, base_url=fake_sentry.url) as sc:
        call, message = INVALID_CALLS[name]
        with pytest.raises(ValueError, match=re.escape(message)):
            await _call_and_consume(call, sc)
    assert fake_sentry.requests == []


async def _call_and_consume(call: Callable[[SentryClient], Any], sc: SentryClient) -> None:
    """Await a coroutine or drain a paginator: validation may happen at either step."""
    result = call(sc)
    if hasattr(result, "__await__"):
        await result
    else:
        await result.collect()


# -- resuming -------------------------------------------------------------------------------


async def test_position_resumes_after_a_break_mid_page(
    fake_sentry: FakeSentry, client: SentryClient
) -> None:
    expected = _unresolved_by_date(fake_sentry)
    first: list[str] = []
    paginator = client.issues.list(ORG, page_size=20)
    with anyio.fail_after(10):
        async for issue in paginator:
            first.append(issue.id)
            if len(first) == 47:
                break
        position = paginator.position
        assert position.skip == 7 and not position.done
        rest = await client.issues.list(
            ORG, page_size=20, cursor=position.cursor, skip=position.skip
        ).collect()
    assert first + [issue.id for issue in rest] == expected


async def test_limit_leaves_a_cursor_that_resumes_without_duplicates(
    fake_sentry: FakeSentry, client: SentryClient
) -> None:
    project = _project(fake_sentry)
    expected = _events_since(fake_sentry, project, 30)
    assert len(expected) > 25
    capped = client.events.for_project(ORG, project, period="30d", page_size=10, limit=23)
    with anyio.fail_after(10):
        head = [event.id for event in await capped.collect()]
        position = capped.position
        assert len(head) == 23 and position.skip == 3 and not position.done
        sizes = [r.param("per_page") for r in fake_sentry.requests]
        assert sizes == ["10", "10", "10"], "the page size never changes mid-stream"
        tail = await client.events.for_project(
            ORG, project, period="30d", page_size=10, cursor=position.cursor, skip=position.skip
        ).collect()
    ids = head + [event.id for event in tail]
    assert ids == expected
    assert len(set(ids)) == len(ids)


@pytest.mark.parametrize("limit", [1, 3, 4, 5, 7])
async def test_limit_on_page_number_cursors_loses_and_repeats_nothing(
    fake_sentry_factory: Callable[..., Awaitable[FakeSentry]], limit: int
) -> None:
    # The projects list uses Sentry's OffsetPaginator: cursors are <size>:<page>:<prev> and
    # only valid for the page size they were made with.
    server = await fake_sentry_factory(
        scale=SeedConfig(orgs=1, projects_per_org=9, issues_per_project=1, events_per_issue=(1, 1))
    )
    expected = server.data.project_slugs(ORG)
    assert len(expected) == 9
    with anyio.fail_after(10):
        async with SentryClient(server.token, base_url=server.url) as client:
            capped = client.projects.list(ORG, page_size=4, limit=limit)
            head = [project.slug for project in await capped.collect()]
            position = capped.position
            tail = await client.projects.list(
                ORG, page_size=4, cursor=position.cursor, skip=position.skip
            ).collect()
    slugs = head + [project.slug for project in tail]
    assert len(head) == limit
    assert sorted(slugs) == sorted(expected) and len(set(slugs)) == len(slugs)


async def test_pages_position_resumes_at_page_boundary(
    fake_sentry: FakeSentry, client: SentryClient
) -> None:
    project = _project(fake_sentry, 1)
    fields = ["id", "timestamp"]
    expected = _events_since(fake_sentry, project, 30)
    paginator = client.discover.query(
        ORG, fields=fields, project=project, period="30d", sort="-timestamp", page_size=9
    )
    seen: list[str] = []
    with anyio.fail_after(10):
        async for page in paginator.pages():
            seen.extend(row["id"] for row in page.items)
            if len(seen) >= 18:
                break
        resume = paginator.position
        rest = await client.discover.query(
            ORG,
            fields=fields,
            project=project,
            period="30d",
            sort="-timestamp",
            page_size=9,
            cursor=resume.cursor,
        ).collect()
    assert resume.skip == 0
    ids = seen + [row["id"] for row in rest]
    assert sorted(ids) == sorted(expected) and len(set(ids)) == len(ids)
