"""Short ids after a merge, an issue's events filtered by ``issue:``, and ``inbox: true`` on an
issue already in the inbox, as Sentry answers them.

Pinned against Sentry's server code:

- ``src/sentry/issues/endpoints/organization_shortid.py``: ``ShortIdLookupEndpoint`` is a
  ``GroupEndpoint`` (getsentry/sentry#83502), so ``shortids/{issue_id}/`` is looked up as
  every issue path is (``GroupEndpoint.convert_args``, ``src/sentry/issues/endpoints/bases/
  group.py``: ``get_group_with_redirect``, ``src/sentry/models/group.py``): a numeric id or a
  short id, and one a merge sent away (``GroupRedirect``) reaches the issue it went into. The
  answer is that issue's (``organizationSlug``, ``projectSlug``, ``groupId``, ``shortId`` and
  ``group`` all from ``group``); no such issue is ``ResourceDoesNotExist``, the generic 404.
- ``src/sentry/api/helpers/events.py`` ``get_query_builder_for_group``: an issue's events
  are a Discover query ``issue:<its short id> <query>``, so an ``issue`` filter is looked up
  by ``_issue_filter_converter`` (``src/sentry/search/events/datasets/discover.py``), and a
  short id naming no issue is the 400 ``GroupEventsEndpoint`` answers for it
  (``src/sentry/issues/endpoints/group_events.py``). The latest/oldest/recommended event and
  an event's neighbours take the query through ``issue_search_query_to_conditions``
  (``src/sentry/issues/endpoints/group_event_details.py``), whose ``format_search_filter``
  (``src/sentry/search/events/filter.py``) looks the short ids up the same way:
  ``GroupEventDetailsEndpoint`` answers a failed lookup ``ParseError("Unable to parse
  query")``, ``ProjectEventDetailsEndpoint`` (``project_event_details.py``) drops the query.
- ``src/sentry/models/groupinbox.py`` ``add_group_to_inbox``: ``GroupInbox.objects.
  get_or_create``, so ``inbox: true`` (``update_inbox``, ``src/sentry/issues/update_inbox.py``)
  leaves an issue already in the inbox with the row it had (reason and date).
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import aiohttp
import anyio
import msgspec
import pytest
from _fake_http import org_send

from sentry_async.testing import FakeSentry, FakeSentryFactory
from sentry_async.testing._builder import IssueBuilder

ORG = "acme"
NOT_FOUND = {"detail": "The requested resource does not exist"}


def _issues(
    factory: FakeSentryFactory, profile: str = "current"
) -> tuple[FakeSentry, list[IssueBuilder], IssueBuilder]:
    """Three issues of ``backend`` (``BACKEND-1`` with three events, the others one), one of
    ``web``, and an organization ``other`` with an issue of its own."""
    server = factory.start(orgs=0, profile=profile)
    acme = server.builder.add_organization(ORG)
    backend = acme.add_project("backend")
    issues = [backend.add_issue(f"E{n}: boom", events=3 if n == 1 else 1) for n in (1, 2, 3)]
    web = acme.add_project("web").add_issue("W: boom")
    server.builder.add_organization("other").add_project("backend").add_issue("O: boom")
    return server, issues, web


async def _get(
    server: FakeSentry, path: str, params: list[tuple[str, str]] | None = None, org: str = ORG
) -> tuple[int, Any]:
    with anyio.fail_after(10):
        return await org_send(server, "GET", path, params or [], org=org)


async def _put(server: FakeSentry, issues: list[IssueBuilder], body: dict[str, Any]) -> Any:
    with anyio.fail_after(10):
        status, answer = await org_send(
            server, "PUT", "issues/", [("id", i.id) for i in issues], body, org=ORG
        )
    assert status == 200, answer
    return answer


async def _merge(server: FakeSentry, *issues: IssueBuilder) -> None:
    answer = await _put(server, list(issues), {"merge": True})
    assert answer["merge"]["parent"] == issues[0].id, answer


# -- shortids/ follows merges ------------------------------------------------------------------


async def test_shortids_reaches_the_issue_a_merge_sent_the_short_id_to(
    fake_sentry_factory: FakeSentryFactory,
) -> None:
    server, issues, _ = _issues(fake_sentry_factory)
    busy, quiet = issues[0], issues[1]
    await _merge(server, busy, quiet)
    server.data.rename_project(ORG, "backend", "api")
    for given in ("BACKEND-2", "backend-2", "BACKEND_2", quiet.id, "API-1", busy.id):
        status, body = await _get(server, f"shortids/{given}/")
        assert status == 200, (given, body)
        group = body.pop("group")
        assert body == {
            "organizationSlug": ORG,
            "projectSlug": "api",
            "groupId": busy.id,
            "shortId": "API-1",
        }, given
        assert (group["id"], group["shortId"], group["project"]["slug"]) == (
            busy.id,
            "API-1",
            "api",
        )


@pytest.mark.parametrize("given", ["BACKEND-Z", "BACKEND", "API-2", "OTHER", "deleted", "other"])
async def test_shortids_naming_no_issue_is_the_generic_404(
    fake_sentry_factory: FakeSentryFactory, given: str
) -> None:
    server, issues, _ = _issues(fake_sentry_factory)
    with anyio.fail_after(10):
        status, _ = await org_send(server, "DELETE", f"issues/{issues[2].id}/", [], org=ORG)
    assert status == 202
    key = {
        "deleted": issues[2].short_id,
        "other": server.data.orgs[-1].projects[0].issues[0].id,
    }.get(given, given)
    assert await _get(server, f"shortids/{key}/") == (404, NOT_FOUND)


# -- an issue's events: issue: is looked up ------------------------------------------------------


def _picked(issue: IssueBuilder, picked: bool) -> list[str]:
    return sorted(issue.event_ids) if picked else []


@pytest.mark.parametrize(
    ("query", "picked"),
    [
        ("issue:BACKEND-1", True),
        ("issue:backend-1", True),
        ("issue:Backend_1", True),
        ("issue:[BACKEND-2, backend-1]", True),
        ("!issue:backend-1", False),
        ("!issue:BACKEND-2", True),
        ("issue:BACKEND-2", False),
        ("issue:WEB-1", False),
        ("issue:unknown", False),
        ("has:issue", True),
        ("!has:issue", False),
    ],
)
async def test_an_issues_events_read_issue_as_discover_does(
    fake_sentry_factory: FakeSentryFactory, query: str, picked: bool
) -> None:
    server, issues, _ = _issues(fake_sentry_factory)
    status, body = await _get(server, f"issues/{issues[0].id}/events/", [("query", query)])
    assert status == 200, body
    assert sorted(row["eventID"] for row in body) == _picked(issues[0], picked)


@pytest.mark.parametrize(
    ("profile", "query", "detail"),
    [
        ("current", "issue:BACKEND-Z", "Issue IDs do not exist: ['BACKEND-Z']"),
        ("current", "!issue:[backend-1, NOPE-1]", "Issue IDs do not exist: ['backend-1', 'NOPE-1']"),
        ("current", "issue:OTHER-1", "Issue IDs do not exist: ['OTHER-1']"),
        ("older", "issue:BACKEND-Z", "Invalid value '['BACKEND-Z']' for 'issue:' filter"),
    ],
)
async def test_an_issues_events_refuse_a_short_id_naming_no_issue(
    fake_sentry_factory: FakeSentryFactory, profile: str, query: str, detail: str
) -> None:
    server, issues, _ = _issues(fake_sentry_factory, profile)
    status, body = await _get(server, f"issues/{issues[0].id}/events/", [("query", query)])
    assert (status, body) == (400, {"detail": detail})


async def test_an_issues_events_refuse_the_short_id_of_an_issue_merged_away(
    fake_sentry_factory: FakeSentryFactory,
) -> None:
    server, issues, _ = _issues(fake_sentry_factory)
    await _merge(server, issues[0], issues[1])
    status, body = await _get(
        server, f"issues/{issues[0].id}/events/", [("query", "issue:BACKEND-2")]
    )
    assert (status, body) == (400, {"detail": "Issue IDs do not exist: ['BACKEND-2']"})


NO_MATCH = {
    "detail": "No matching event found. Try changing the environments, date range, or query."
}


@pytest.mark.parametrize(
    ("key", "query", "expected"),
    [
        ("latest", "issue:backend-1", "newest"),
        ("oldest", "issue:[backend-1]", "oldest"),
        ("recommended", "!issue:backend-2", "newest"),
        ("latest", "!issue:backend-1", 404),
        ("latest", "issue:BACKEND-Z", 400),
        ("middle", "issue:BACKEND-Z", 400),
    ],
)
async def test_an_issues_event_reads_issue_as_the_issue_search_does(
    fake_sentry_factory: FakeSentryFactory, key: str, query: str, expected: Any
) -> None:
    server, issues, _ = _issues(fake_sentry_factory)
    ids = issues[0].event_ids
    path = f"issues/{issues[0].id}/events/{ids[1] if key == 'middle' else key}/"
    status, body = await _get(server, path, [("query", query)])
    if expected == 400:
        assert (status, body) == (400, {"detail": "Unable to parse query"})
    elif expected == 404:
        assert (status, body) == (404, NO_MATCH)
    else:
        assert status == 200, body
        assert body["eventID"] == (ids[0] if expected == "newest" else ids[-1])


@pytest.mark.parametrize(
    ("where", "query", "neighbours"),
    [
        ("issues", "issue:backend-1", (0, 2)),
        ("issues", "!issue:backend-1", (None, None)),
        ("projects", "issue:backend-1", (0, 2)),
        ("projects", "!issue:backend-1", (None, None)),
        # The project's event endpoint drops a query it cannot convert.
        ("projects", "!issue:BACKEND-Z", (0, 2)),
    ],
)
async def test_an_events_neighbours_read_issue_as_the_issue_search_does(
    fake_sentry_factory: FakeSentryFactory,
    where: str,
    query: str,
    neighbours: tuple[int | None, int | None],
) -> None:
    server, issues, _ = _issues(fake_sentry_factory)
    ids = issues[0].event_ids
    if where == "issues":
        path = f"{server.url}/api/0/organizations/{ORG}/issues/{issues[0].id}/events/{ids[1]}/"
    else:
        path = f"{server.url}/api/0/projects/{ORG}/backend/events/{ids[1]}/"
    with anyio.fail_after(10):
        async with (
            aiohttp.ClientSession() as http,
            http.get(
                path,
                params=[("query", query)],
                headers={"Authorization": f"Bearer {server.token}"},
            ) as reply,
        ):
            status, body = reply.status, msgspec.json.decode(await reply.read())
    assert status == 200, body
    newer, older = neighbours
    assert (body["nextEventID"], body["previousEventID"]) == (
        None if newer is None else ids[newer],
        None if older is None else ids[older],
    )


# -- inbox: true keeps the row an issue has -------------------------------------------------------


def _iso(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


async def test_inbox_true_keeps_the_row_an_issue_already_has(
    fake_sentry_factory: FakeSentryFactory,
) -> None:
    server = fake_sentry_factory.start(orgs=0)
    now = server.now
    project = server.builder.add_organization(ORG).add_project("backend")
    fresh = project.add_issue("Error fresh")
    regressed = project.add_issue(
        "Error regressed", substatus="regressed", substatus_since=now - timedelta(days=2)
    )
    aged = project.add_issue(
        "Error aged", substatus="regressed", substatus_since=now - timedelta(days=8)
    )
    ongoing = project.add_issue("Error ongoing", substatus="ongoing")
    first = datetime.fromtimestamp(fresh.record.first_seen, timezone.utc)
    expected = {
        fresh.id: {"reason": 0, "reason_details": None, "date_added": _iso(first)},
        regressed.id: {
            "reason": 2, "reason_details": None, "date_added": _iso(now - timedelta(days=2))
        },
        aged.id: {"reason": 3, "reason_details": None, "date_added": _iso(now)},
        ongoing.id: {"reason": 3, "reason_details": None, "date_added": _iso(now)},
    }
    issues = [fresh, regressed, aged, ongoing]
    for _ in range(2):
        answer = await _put(server, issues, {"inbox": True})
        assert answer == {"inbox": True}
        rows = {}
        for issue in issues:
            status, body = await _get(server, f"issues/{issue.id}/", [("expand", "inbox")])
            assert status == 200, body
            rows[issue.id] = body["inbox"]
        assert rows == expected
