"""A deleted issue's events, before and after Sentry's deletion task has run.

Pinned against Sentry's and Snuba's server code:

- ``src/sentry/api/helpers/group_index/delete.py`` ``delete_group_list`` (every delete: one
  issue, the bulk calls, and ``discard`` through ``handle_discard`` in ``update.py``) marks
  the issues ``PENDING_DELETION``, calls ``eventstream.backend.start_delete_groups`` and
  schedules ``delete_groups`` (``countdown=3600`` when an error issue is among them).
- Snuba's ``snuba/replacers/errors_replacer.py`` ``ErrorsReplacer.process_message`` ignores
  ``start_delete_groups`` (``return None``): the events stay in every query until the task
  has deleted the groups and sent ``end_delete_groups`` (``src/sentry/deletions/tasks/
  groups.py``), whose ``DeleteGroupsReplacement`` excludes the groups (``ExcludeGroups``) and
  marks their rows deleted.
- The deleted events are gone from every events query then: a project's events
  (``eventstore.get_events``), Discover and ``events-stats``, the event-id look-up
  (``EventIdLookupEndpoint``) and a project's event (``get_event_by_id`` reads the group id
  from Snuba). The ``group=`` look-up finds no row. Outcomes (``stats_v2``) are never
  rewritten, so usage keeps counting them.

``server.data.finish_deletions()`` plays the task's end.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import anyio
import pytest
from _fake_http import org_get, org_send

from sentry_async.testing import FakeSentry, FakeSentryFactory
from sentry_async.testing._builder import IssueBuilder

ORG = "acme"
NOW = datetime(2026, 6, 1, 12, 0, tzinfo=timezone.utc)


def _server(factory: FakeSentryFactory) -> tuple[FakeSentry, IssueBuilder, IssueBuilder]:
    """``backend`` with issues ``kept`` and ``gone``, three events each, interleaved a
    minute apart over the last six minutes."""
    server = factory.start(orgs=0, now=NOW)
    acme = server.builder.add_organization(ORG, features=["discard-groups"])
    backend = acme.add_project("backend")
    kept = backend.add_issue("K: kept", events=0)
    gone = backend.add_issue("G: gone", events=0)
    for n in range(6):
        (kept, gone)[n % 2].add_event(timestamp=NOW - timedelta(minutes=n + 1))
    return server, kept, gone


async def _send(
    server: FakeSentry, method: str, path: str, params: list[tuple[str, str]], body: Any = None
) -> tuple[int, Any]:
    with anyio.fail_after(10):
        return await org_send(server, method, path, params, body, org=ORG)


async def _project_send(
    server: FakeSentry, method: str, path: str, params: list[tuple[str, str]]
) -> tuple[int, Any]:
    """``/api/0/projects/acme/backend/{path}`` through ``org_send``'s client."""
    return await _send(server, method, f"../../projects/{ORG}/backend/{path}", params)


async def _delete(server: FakeSentry, how: str, issue: IssueBuilder) -> None:
    if how == "one":
        status, _ = await _send(server, "DELETE", f"issues/{issue.id}/", [])
        assert status == 202
    elif how == "bulk":
        status, _ = await _send(server, "DELETE", "issues/", [("id", issue.id)])
        assert status == 204
    elif how == "project bulk":
        status, _ = await _project_send(server, "DELETE", "issues/", [("id", issue.id)])
        assert status == 204
    else:
        status, _ = await _send(server, "PUT", "issues/", [("id", issue.id)], {"discard": True})
        assert status == 204


_RANGE = [("statsPeriod", "1h")]


async def _seen(server: FakeSentry) -> dict[str, Any]:
    """What each events query answers about ``backend``'s events."""
    status, listed = await _project_send(server, "GET", "events/", _RANGE)
    assert status == 200, listed
    status, discover = await _send(
        server, "GET", "events/", [*_RANGE, ("field", "id"), ("field", "issue.id")]
    )
    assert status == 200, discover
    status, stats = await _send(
        server, "GET", "events-stats/", [*_RANGE, ("interval", "1h"), ("yAxis", "count()")]
    )
    assert status == 200, stats
    status, usage = await _send(
        server,
        "GET",
        "stats_v2/",
        [*_RANGE, ("interval", "1h"), ("field", "sum(quantity)"), ("category", "error")],
    )
    assert status == 200, usage
    return {
        "project": sorted(e["eventID"] for e in listed),
        "discover": sorted((row["id"], row["issue.id"]) for row in discover["data"]),
        "stats": sum(bucket[1][0]["count"] for bucket in stats["data"]),
        "usage": usage["groups"][0]["totals"]["sum(quantity)"],
    }


async def _found(server: FakeSentry, event_id: str) -> tuple[int, int]:
    """The statuses of the event-id look-up and of the project's event."""
    by_id, _ = await _send(server, "GET", f"eventids/{event_id}/", [])
    detail, _ = await _project_send(server, "GET", f"events/{event_id}/", [])
    return by_id, detail


@pytest.mark.parametrize("how", ["one", "bulk", "project bulk", "discard"])
async def test_deleted_events_stay_until_the_deletion_task_ends_then_leave_every_query(
    fake_sentry_factory: FakeSentryFactory, how: str
) -> None:
    server, kept, gone = _server(fake_sentry_factory)
    everything = await _seen(server)
    assert len(everything["project"]) == len(everything["discover"]) == everything["stats"] == 6
    await _delete(server, how, gone)

    # Pending deletion: Snuba ignores ``start_delete_groups``, every query answers as before.
    assert await _seen(server) == everything
    assert await _found(server, gone.event_ids[0]) == (200, 200)
    status, _ = await _send(server, "GET", f"issues/{gone.id}/events/", [])
    assert status == 404

    assert server.data.finish_deletions() == [gone.id]
    after = await _seen(server)
    assert after == {
        "project": sorted(kept.event_ids),
        "discover": sorted((e, int(kept.id)) for e in kept.event_ids),
        "stats": 3,
        "usage": everything["usage"],
    }
    assert await _found(server, gone.event_ids[0]) == (404, 404)
    assert await _found(server, kept.event_ids[0]) == (200, 200)
    assert server.data.event_ids(ORG, "backend") == kept.event_ids
    status, groups = await _send(server, "GET", "issues/", [("group", gone.id), ("group", kept.id)])
    assert status == 200
    assert [g["id"] for g in groups] == [kept.id]
    assert server.data.finish_deletions() == []


async def test_a_merge_is_no_deletion_and_an_event_after_the_delete_is_kept(
    fake_sentry_factory: FakeSentryFactory,
) -> None:
    server, kept, gone = _server(fake_sentry_factory)
    status, answer = await _send(
        server, "PUT", "issues/", [("id", kept.id), ("id", gone.id)], {"merge": True}
    )
    assert status == 200, answer
    assert server.data.finish_deletions() == []
    assert len((await _seen(server))["project"]) == 6

    again = _server(fake_sentry_factory)
    server, kept, gone = again
    await _delete(server, "one", gone)
    later = gone.add_event(timestamp=NOW - timedelta(seconds=30))
    assert server.data.finish_deletions() == [gone.id]
    seen = await _seen(server)
    assert seen["project"] == sorted([*kept.event_ids, later])
    assert await _found(server, later) == (200, 200)


async def test_rows_move_back_when_the_deletion_ends_between_two_pages(
    fake_sentry_factory: FakeSentryFactory,
) -> None:
    """The offset-paged list a long walk reads: ``gone``'s row on the first page leaves, so
    the second page starts one of ``kept``'s rows further on than the first page ended."""
    server, kept, gone = _server(fake_sentry_factory)
    await _delete(server, "bulk", gone)
    path = f"../../projects/{ORG}/backend/events/"
    with anyio.fail_after(10):
        status, first, headers = await org_get(server, path, [*_RANGE, ("per_page", "2")], org=ORG)
    assert status == 200
    assert [e["eventID"] for e in first] == [kept.event_ids[0], gone.event_ids[0]]
    cursor = next(
        link.split('cursor="')[1].split('"')[0]
        for link in headers["Link"].split(", ")
        if 'rel="next"' in link
    )
    server.data.finish_deletions()
    with anyio.fail_after(10):
        status, second, _ = await org_get(
            server, path, [*_RANGE, ("per_page", "2"), ("cursor", cursor)], org=ORG
        )
    assert status == 200
    assert [e["eventID"] for e in second] == [kept.event_ids[2]]
