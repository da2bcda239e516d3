"""A merge's events, an issue event's query, access to an issue's project and the ``issue:``
prefix of a short id, as Sentry answers them.

Pinned against Sentry's server code (getsentry/sentry unless said):

- ``src/sentry/tasks/merge.py`` ``merge_groups`` and Snuba's ``MergeReplacement``
  (getsentry/snuba ``snuba/replacers/errors_replacer.py``): a merge rewrites the ``group_id``
  of every event of the issues merged away to the issue they went into, and excludes the old
  ids from queries; the issue kept gets ``first_seen = min(...)``, ``last_seen = max(...)``
  and ``times_seen`` summed, its users counted over all the events. The events keep their own
  data (title, level, exception): only the group id changes. So an event of a merged-away
  issue reports ``groupID`` of the issue kept, everywhere.
- ``src/sentry/issues/endpoints/group_event_details.py``: the ``query`` goes through
  ``issue_search_query_to_conditions``, which parses it as the issue search does
  (``parse_and_convert_issue_search_query``: ``is:`` is valid) and drops the filters
  ``GroupSerializerSnuba.skip_snuba_fields`` names (``status``, ``substatus``,
  ``for_review``, ``unassigned``, ``linked``, ``issue.priority``, ...; ``src/sentry/api/
  serializers/models/group.py``). A query that does not parse is a ``ValidationError``:
  ``ParseError("Invalid event query")``; any other failure ``"Unable to parse query"``.
  The project's event details read the query the same way and drop it when it fails.
- ``src/sentry/issues/endpoints/bases/group.py``: ``GroupEndpoint.convert_args`` finds the
  issue (404), then ``check_object_permissions``: ``GroupPermission.has_object_permission``
  is ``ProjectPermission``'s on the issue's project, a 403 for a project the user cannot
  access (closed membership, not on its team); only then the pending-deletion 404. A short id
  is looked up with ``project__slug``/``short_id`` whatever the status
  (``get_group_with_redirect``, ``src/sentry/models/group.py``). ``ShortIdLookupEndpoint``
  (``organization_shortid.py``) is such an endpoint.
- ``src/sentry/models/group.py``: ``_short_id_re = r"^(?:issue+:)?(.*?)(?:[\\s_-])
  ([A-Za-z0-9]+)$"``: a short id may carry an ``issue:`` prefix (getsentry/sentry#70247, May
  2024, took any ``word:``). Older servers do not take one, and the fake's older profile
  neither.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import anyio
import pytest
from _fake_http import api_send

from sentry_async.testing import FakeSentry, FakeSentryFactory
from sentry_async.testing._builder import IssueBuilder

ORG = "acme"
NOT_FOUND = {"detail": "The requested resource does not exist"}
DENIED = {"detail": "You do not have permission to perform this action."}


async def _send(
    server: FakeSentry,
    path: str,
    params: list[tuple[str, str]] | None = None,
    *,
    method: str = "GET",
    body: Any = None,
) -> tuple[int, Any]:
    """``method /api/0/{path}`` with the fake's token: the status and the decoded answer."""
    with anyio.fail_after(10):
        return await api_send(server, method, path, params, body)


# -- a merge moves the events -------------------------------------------------------------------


def _merged_pair(factory: FakeSentryFactory) -> tuple[FakeSentry, IssueBuilder, IssueBuilder]:
    """``busy`` (three events, users a, b, c) and ``quiet`` (two events, users c and d, one
    older than all of busy's, one between busy's), merged: busy stays."""
    server = factory.start(orgs=0)
    backend = server.builder.add_organization(ORG).add_project("backend")
    now = server.now
    busy = backend.add_issue("KeyError: busy", level="error", events=0)
    for minutes, user in ((1, "a"), (3, "b"), (5, "c")):
        busy.add_event(timestamp=now - timedelta(minutes=minutes), user=user)
    quiet = backend.add_issue("ValueError: quiet", level="warning", events=0)
    quiet.add_event(timestamp=now - timedelta(minutes=2), user="c", environment="staging")
    quiet.add_event(timestamp=now - timedelta(minutes=9), user="d")
    return server, busy, quiet


async def _merge(server: FakeSentry, *issues: IssueBuilder) -> None:
    status, body = await _send(
        server,
        f"organizations/{ORG}/issues/",
        [("id", i.id) for i in issues],
        method="PUT",
        body={"merge": True},
    )
    assert status == 200 and body["merge"]["parent"] == issues[0].id, body


async def test_a_merge_moves_the_merged_issues_events_to_the_issue_kept(
    fake_sentry_factory: FakeSentryFactory,
) -> None:
    server, busy, quiet = _merged_pair(fake_sentry_factory)
    every = sorted([*busy.event_ids, *quiet.event_ids])
    moved, oldest = quiet.event_ids
    first_seen = datetime.fromtimestamp(quiet.record.events[-1].timestamp, timezone.utc)
    await _merge(server, busy, quiet)
    # The issue kept: its events, its counts, its first event the merged issue's.
    for key in (busy.id, quiet.id):
        status, rows = await _send(server, f"organizations/{ORG}/issues/{key}/events/")
        assert status == 200, rows
        assert sorted(row["eventID"] for row in rows) == every
        assert {row["groupID"] for row in rows} == {busy.id}
    status, issue = await _send(server, f"organizations/{ORG}/issues/{busy.id}/")
    assert status == 200, issue
    assert (issue["count"], issue["userCount"]) == ("5", 4)
    assert issue["firstSeen"] == first_seen.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    status, first = await _send(server, f"organizations/{ORG}/issues/{busy.id}/events/oldest/")
    assert (status, first["eventID"]) == (200, oldest)
    # An event of the merged issue: the kept issue's, its own title and level.
    status, event = await _send(server, f"projects/{ORG}/backend/events/{moved}/")
    assert status == 200, event
    assert (event["groupID"], event["title"]) == (busy.id, "ValueError: quiet")
    assert {"key": "level", "value": "warning"} in event["tags"]
    # Its neighbours are the kept issue's events, newest first: 1, 2 (it), 3 minutes ago.
    assert (event["nextEventID"], event["previousEventID"]) == (
        busy.record.events[0].event_id,
        busy.record.events[2].event_id,
    )
    status, found = await _send(server, f"organizations/{ORG}/eventids/{moved}/")
    assert (status, found["groupId"]) == (200, busy.id)
    status, rows = await _send(
        server,
        f"organizations/{ORG}/events/",
        [("field", "id"), ("field", "issue"), ("field", "title"), ("project", "-1"),
         ("query", "issue:BACKEND-1")],
    )
    assert status == 200, rows
    assert sorted(row["id"] for row in rows["data"]) == every
    assert {row["issue"] for row in rows["data"]} == {"BACKEND-1"}
    assert {row["title"] for row in rows["data"]} == {"KeyError: busy", "ValueError: quiet"}


async def test_the_merged_away_issues_events_are_listed_once(
    fake_sentry_factory: FakeSentryFactory,
) -> None:
    """Twice merged: the events of the first merge's issue follow to the last one."""
    server, busy, quiet = _merged_pair(fake_sentry_factory)
    third = server.builder.organization(ORG).project("backend").add_issue("E: third", events=9)
    await _merge(server, busy, quiet)
    await _merge(server, third, busy)
    status, rows = await _send(server, f"organizations/{ORG}/issues/{quiet.id}/events/")
    assert status == 200, rows
    assert len(rows) == 14 and {row["groupID"] for row in rows} == {third.id}
    status, rows = await _send(server, f"projects/{ORG}/backend/events/")
    assert status == 200 and len(rows) == 14, rows
    assert {row["groupID"] for row in rows} == {third.id}


# -- an issue event's query is the issue search's ------------------------------------------------


def _environments(factory: FakeSentryFactory) -> tuple[FakeSentry, IssueBuilder, list[str]]:
    """One issue, five events a minute apart: production, staging, production, staging,
    production (newest first)."""
    server = factory.start(orgs=0)
    issue = server.builder.add_organization(ORG).add_project("backend").add_issue(
        "KeyError: boom", events=0
    )
    for n in range(5):
        issue.add_event(
            timestamp=server.now - timedelta(minutes=n + 1),
            environment=("production", "staging")[n % 2],
        )
    return server, issue, issue.event_ids


@pytest.mark.parametrize(
    ("key", "query", "expected"),
    [
        ("latest", "is:unresolved", 0),
        ("latest", "is:for_review environment:staging", 1),
        ("oldest", "is:new !environment:production", 3),
        ("recommended", "is:unassigned is:unlinked environment:staging", 1),
        ("latest", "issue.priority:high is:ongoing", 0),
        ("latest", "is:resolved", 0),
    ],
)
async def test_an_issue_event_takes_the_issue_searchs_is(
    fake_sentry_factory: FakeSentryFactory, key: str, query: str, expected: int
) -> None:
    server, issue, ids = _environments(fake_sentry_factory)
    status, body = await _send(
        server, f"organizations/{ORG}/issues/{issue.id}/events/{key}/", [("query", query)]
    )
    assert status == 200, body
    assert body["eventID"] == ids[expected]


@pytest.mark.parametrize(
    ("query", "detail"),
    [
        ("is:bogus", "Invalid event query"),
        ("level:", "Invalid event query"),
        ("is:[unresolved]", "Invalid event query"),
        ("boom OR bang", "Invalid event query"),
        ("substatus:bogus", "Invalid event query"),
        ("issue.priority:urgent", "Invalid event query"),
        ("issue:BACKEND-Z", "Unable to parse query"),
    ],
)
async def test_an_issue_event_refuses_a_query_as_sentry_words_it(
    fake_sentry_factory: FakeSentryFactory, query: str, detail: str
) -> None:
    server, issue, ids = _environments(fake_sentry_factory)
    for key in ("latest", ids[2]):
        status, body = await _send(
            server, f"organizations/{ORG}/issues/{issue.id}/events/{key}/", [("query", query)]
        )
        assert (status, body) == (400, {"detail": detail}), key


@pytest.mark.parametrize(
    ("query", "neighbours"),
    [
        ("is:unresolved environment:staging", (1, 3)),
        ("is:for_review !environment:staging", (0, 4)),
        # A query that does not parse is dropped: every event is a neighbour.
        ("is:bogus environment:staging", (1, 3)),
    ],
)
async def test_an_events_neighbours_take_the_issue_searchs_is(
    fake_sentry_factory: FakeSentryFactory, query: str, neighbours: tuple[int, int]
) -> None:
    server, issue, ids = _environments(fake_sentry_factory)
    for path in (
        f"organizations/{ORG}/issues/{issue.id}/events/{ids[2]}/",
        f"projects/{ORG}/backend/events/{ids[2]}/",
    ):
        status, body = await _send(server, path, [("query", query)])
        if path.startswith("organizations") and "bogus" in query:
            assert (status, body) == (400, {"detail": "Invalid event query"})
            continue
        assert status == 200, body
        assert (body["nextEventID"], body["previousEventID"]) == (
            ids[neighbours[0]],
            ids[neighbours[1]],
        ), path


# -- an issue of a project the user cannot access ------------------------------------------------


def _closed(factory: FakeSentryFactory) -> tuple[FakeSentry, IssueBuilder, IssueBuilder]:
    """Closed membership: ``mine`` (member) and ``theirs`` (not), an issue each."""
    server = factory.start(orgs=0)
    acme = server.builder.add_organization(ORG)
    acme.record.open_membership = False
    mine = acme.add_project("mine").add_issue("KeyError: mine")
    theirs = acme.add_project("theirs", member=False).add_issue("KeyError: theirs")
    return server, mine, theirs


ISSUE_PATHS = [
    ("GET", "issues/{key}/"),
    ("PUT", "issues/{key}/"),
    ("DELETE", "issues/{key}/"),
    ("GET", "issues/{key}/events/"),
    ("GET", "issues/{key}/events/latest/"),
    ("GET", "issues/{key}/hashes/"),
    ("GET", "issues/{key}/tags/environment/"),
    ("GET", "issues/{key}/tags/environment/values/"),
    ("GET", "shortids/{key}/"),
]


@pytest.mark.parametrize(("method", "template"), ISSUE_PATHS)
async def test_an_issue_of_a_project_the_user_cannot_access_is_a_403(
    fake_sentry_factory: FakeSentryFactory, method: str, template: str
) -> None:
    server, mine, theirs = _closed(fake_sentry_factory)
    body = {"status": "resolved"} if method == "PUT" else None
    for key in (theirs.id, theirs.short_id, f"issue:{theirs.short_id}"):
        path = f"organizations/{ORG}/{template.format(key=key)}"
        assert await _send(server, path, method=method, body=body) == (403, DENIED), path
    assert not theirs.record.deleted and theirs.record.status == "unresolved"
    status, _ = await _send(
        server, f"organizations/{ORG}/{template.format(key=mine.id)}", method=method, body=body
    )
    assert status in (200, 202), template
    for key in ("99999999", "THEIRS-9"):
        path = f"organizations/{ORG}/{template.format(key=key)}"
        assert await _send(server, path, method=method, body=body) == (404, NOT_FOUND), path


async def test_access_is_checked_before_an_issue_being_deleted_is_a_404(
    fake_sentry_factory: FakeSentryFactory,
) -> None:
    server, mine, theirs = _closed(fake_sentry_factory)
    for issue in (mine, theirs):
        issue.record.deleted = True
    for key in (theirs.id, theirs.short_id):
        assert await _send(server, f"organizations/{ORG}/issues/{key}/") == (403, DENIED)
    for key in (mine.id, mine.short_id):
        assert await _send(server, f"organizations/{ORG}/issues/{key}/") == (404, NOT_FOUND)


# -- the issue: prefix of a short id -------------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "found"),
    [
        ("issue:BACKEND-1", True),
        ("issue:backend_1", True),
        ("issueee:BACKEND-1", True),
        (" issue:BACKEND-1 ", True),
        ("ISSUE:BACKEND-1", False),
        ("issues:BACKEND-1", False),
        ("project:BACKEND-1", False),
        ("issue:", False),
    ],
)
async def test_a_short_id_may_carry_the_issue_prefix(
    fake_sentry_factory: FakeSentryFactory, given: str, found: bool
) -> None:
    for profile in ("current", "older"):
        server = fake_sentry_factory.start(orgs=0, profile=profile)
        issue = server.builder.add_organization(ORG).add_project("backend").add_issue("E: boom")
        accepted = found and profile == "current"
        for path in (f"shortids/{given}/", f"issues/{given}/"):
            status, body = await _send(server, f"organizations/{ORG}/{path}")
            if accepted:
                assert status == 200, (profile, path, body)
                assert body.get("groupId", body.get("id")) == issue.id
            else:
                assert (status, body) == (404, NOT_FOUND), (profile, path)
        status, rows = await _send(
            server,
            f"organizations/{ORG}/issues/",
            [("query", given), ("shortIdLookup", "1"), ("project", "-1")],
        )
        if accepted:
            assert status == 200 and [row["id"] for row in rows] == [issue.id], rows
        status, rows = await _send(
            server,
            f"organizations/{ORG}/events/",
            [("field", "id"), ("project", "-1"), ("query", f"issue:{given.strip()}")],
        )
        if accepted:
            assert (status, [row["id"] for row in rows["data"]]) == (200, issue.event_ids)
        else:
            assert status == 400, rows
