"""Issues and events through the public API against the bundled fake Sentry.

Expectations come from ``server.data`` (what the server holds), and the request log
(``server.requests``) shows what went over the wire: parameter names, repeated keys, UTC
datetimes, cursors.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from datetime import timedelta, timezone
from typing import Any
from urllib.parse import urlencode

import anyio
import msgspec
import pytest
from resource_helpers import ORG, _events_since, _project, _project_id, _to, _unresolved_by_date

from sentry_async import NotFound, SentryClient
from sentry_async.testing import FakeSentry, FakeSentryFactory
from sentry_async.testing.pytest_plugin import FIXED_NOW

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
    fake_sentry_factory: FakeSentryFactory,
) -> None:
    server = fake_sentry_factory.start(scale="default")
    real = server.data.issue_ids(ORG)
    filler = [str(9_000_000 + n) for n in range(300)]
    ids = real + filler
    async with SentryClient(server.token, base_url=server.url) as client:
        with anyio.fail_after(15):
            result = await client.issues.bulk_update(ORG, ids, status="resolved")
    checks = [r for r in server.requests if r.method == "GET"]
    requests = [r for r in server.requests if r.method == "PUT"]
    assert [i for request in checks for i in request.params("group")] == ids
    # At most 1000 ids a call, and a request line under nginx's 8 KB: 7-digit ids with
    # their ``issue.id`` query make calls of a few hundred.
    assert all(0 < len(request.params("id")) <= 1000 for request in requests)
    assert all(
        len(request.path) + len(urlencode(request.query)) < 8000
        for request in server.requests
    )
    assert len(requests) > 2, "1000 ids and their query make a request line over 8 KB"
    assert [i for request in requests for i in request.params("id")] == real
    assert all(request.path == f"/api/0/organizations/{ORG}/issues/" for request in requests)
    assert result.calls == len(requests) and result.ids == real and result.missing == filler
    assert all(r is not None and r.status == "resolved" for r in result.results)
    assert server.data.issue_ids(ORG, status="unresolved") == []


async def test_bulk_update_scopes_to_projects(
    fake_sentry: FakeSentry, client: SentryClient
) -> None:
    project = _project(fake_sentry)
    ids = fake_sentry.data.issue_ids(ORG, project=project)[:5]
    with anyio.fail_after(10):
        result = await client.issues.bulk_update(ORG, ids, project=project, is_bookmarked=True)
    (request,) = [r for r in _to(fake_sentry, "/issues/") if r.method == "PUT"]
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
    expected = _events_since(fake_sentry, project, 14, listed=True)
    assert len(expected) > 10
    paginator = client.events.for_project(ORG, project, full=True, period="14d", page_size=100)
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
    expected = _events_since(fake_sentry, project, 3, listed=True)
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
    # The details carry the neighbours (wrap_event_response), which the lists do not.
    assert raw == fake_sentry.data.event_bytes(record, with_neighbours=True)
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
