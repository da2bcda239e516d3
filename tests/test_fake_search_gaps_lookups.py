"""Discover's ``issue:`` filter, a merged issue's short id and the ``start``/``end`` dates, as
Sentry reads them.

Pinned against Sentry's server code:

- ``_issue_filter_converter`` (``src/sentry/search/events/datasets/discover.py``): the
  short ids of an ``issue:`` filter are looked up with ``Group.objects.
  by_qualified_short_id_bulk`` (``src/sentry/models/group.py``: ``parse_short_id`` lower-cases
  the slug, any of the organization's projects, none being deleted or merged away) and the
  filter becomes one on ``issue.id``; ``unknown`` (or an empty value, ``has:issue``) is "no
  issue". A short id that names no issue fails the query with a 400: ``InvalidIssueSearchQuery``
  "Issue IDs do not exist: [...]" (getsentry/sentry#105541, 2026), before it the
  ``InvalidSearchQuery`` "Invalid value '[...]' for 'issue:' filter".
- ``get_group_with_redirect`` (``src/sentry/models/group.py``), which an issue path takes: a
  short id naming no live issue is looked up in ``GroupRedirect`` by ``previous_short_id`` and
  ``previous_project_slug``, which ``GroupRedirect.create_for_group``
  (``src/sentry/models/groupredirect.py``) records when an issue is merged away, so it reaches
  the issue it went into (its own data, no redirect answered). ``shortIdLookup=1`` uses
  ``by_qualified_short_id`` (``get_by_short_id``, ``src/sentry/api/helpers/group_index/
  index.py``), which does not.
- ``get_date_range_from_stats_period`` (``src/sentry/api/utils.py``) reads ``start`` and
  ``end`` with ``parse_datetime_string`` (``src/sentry/search/utils.py``):
  ``datetime.fromisoformat(value.replace("Z", "+00:00"))`` first (Python 3.11+: the basic
  ``20260501`` form, week dates, any offset, converted to UTC), then
  ``datetime.utcfromtimestamp(float(value))``, else ``InvalidQuery("<value> is not a valid
  ISO8601 date query")``, a 400 (Discover's after "Invalid date range: ",
  ``OrganizationEndpoint.get_filter_params`` in ``src/sentry/api/bases/organization.py``).
"""

from __future__ import annotations

import sys
from datetime import datetime, timedelta, timezone
from typing import Any

import anyio
import pytest
from _fake_http import org_get, org_send

from sentry_async.testing import FakeSentry, FakeSentryFactory
from sentry_async.testing._builder import IssueBuilder

ORG = "acme"


async def _discover(
    server: FakeSentry, params: list[tuple[str, str]]
) -> tuple[int, Any]:
    with anyio.fail_after(10):
        status, body, _ = await org_get(
            server, "events/", [("field", "id"), ("project", "-1"), *params], org=ORG
        )
    return status, body


def _rows(body: Any) -> list[str]:
    return sorted(row["id"] for row in body["data"])


# -- Discover's issue: filter -----------------------------------------------------------------


def _issues(
    factory: FakeSentryFactory, profile: str = "current"
) -> tuple[FakeSentry, list[IssueBuilder], IssueBuilder]:
    """Seventeen issues of ``backend`` (``BACKEND-1`` to ``BACKEND-H``), one event each, and
    one of ``web``."""
    server = factory.start(orgs=0, profile=profile)
    acme = server.builder.add_organization(ORG)
    backend = acme.add_project("backend")
    issues = [backend.add_issue(f"E{n}: boom") for n in range(1, 18)]
    return server, issues, acme.add_project("web").add_issue("W: boom")


@pytest.mark.parametrize(
    ("query", "picked"),
    [
        ("issue:BACKEND-G", [15]),
        ("issue:backend-g", [15]),
        ("issue:Backend-G", [15]),
        ("issue:[BACKEND-1, backend-h]", [0, 16]),
        ("!issue:BACKEND-1", [*range(1, 17), -1]),
        ("issue:WEB-1", [-1]),
        ("issue:unknown", []),
        ("has:issue", [*range(17), -1]),
        ("!has:issue", []),
    ],
)
async def test_the_issue_filter_is_the_issue_its_short_id_names(
    fake_sentry_factory: FakeSentryFactory, query: str, picked: list[int]
) -> None:
    server, issues, web = _issues(fake_sentry_factory)
    everything = [*issues, web]
    status, body = await _discover(server, [("query", query)])
    assert status == 200, body
    assert _rows(body) == sorted(everything[n].event_ids[0] for n in picked)


@pytest.mark.parametrize(
    ("profile", "query", "detail"),
    [
        ("current", "issue:BACKEND-Z", "Issue IDs do not exist: ['BACKEND-Z']"),
        ("current", "issue:[BACKEND-1, NOPE-1]", "Issue IDs do not exist: ['BACKEND-1', 'NOPE-1']"),
        ("current", "!issue:BACKEND", "Issue IDs do not exist: ['BACKEND']"),
        ("older", "issue:BACKEND-Z", "Invalid value '['BACKEND-Z']' for 'issue:' filter"),
    ],
)
async def test_an_issue_filter_naming_no_issue_is_a_400(
    fake_sentry_factory: FakeSentryFactory, profile: str, query: str, detail: str
) -> None:
    server, _, _ = _issues(fake_sentry_factory, profile)
    assert await _discover(server, [("query", query)]) == (400, {"detail": detail})


async def test_an_issue_filter_skips_an_issue_merged_away(
    fake_sentry_factory: FakeSentryFactory,
) -> None:
    server, issues, _ = _issues(fake_sentry_factory)
    busy, quiet = issues[0], issues[1]
    busy.add_event()
    await _merge(server, busy, quiet)
    status, body = await _discover(server, [("query", "issue:BACKEND-2")])
    assert (status, body) == (400, {"detail": "Issue IDs do not exist: ['BACKEND-2']"})


# -- a merged issue's short id ----------------------------------------------------------------


async def _merge(server: FakeSentry, *issues: IssueBuilder) -> None:
    with anyio.fail_after(10):
        status, body = await org_send(
            server, "PUT", "issues/", [("id", i.id) for i in issues], {"merge": True}, org=ORG
        )
    assert status == 200 and body["merge"]["parent"] == issues[0].id, body


async def _get(server: FakeSentry, path: str, params: list[tuple[str, str]]) -> tuple[int, Any]:
    with anyio.fail_after(10):
        return await org_send(server, "GET", path, params, org=ORG)


async def test_a_merged_issues_short_id_reaches_the_issue_it_went_into(
    fake_sentry_factory: FakeSentryFactory,
) -> None:
    server, issues, _ = _issues(fake_sentry_factory)
    busy, quiet = issues[0], issues[1]
    busy.add_event()
    await _merge(server, busy, quiet)
    for given in ("BACKEND-2", "backend-2", "BACKEND_2"):
        status, body = await _get(server, f"issues/{given}/", [])
        assert (status, body["id"], body["shortId"]) == (200, busy.id, "BACKEND-1"), given
    status, latest = await _get(server, "issues/BACKEND-2/events/latest/", [])
    assert (status, latest["eventID"]) == (200, busy.event_ids[0])
    # shortIdLookup takes live issues only: no direct hit, the search runs instead.
    with anyio.fail_after(10):
        status, body, headers = await org_get(
            server, "issues/", [("query", "BACKEND-2"), ("shortIdLookup", "1")], org=ORG
        )
    assert (status, body) == (200, []) and "X-Sentry-Direct-Hit" not in headers


async def test_a_merged_issues_short_id_keeps_the_slug_it_had(
    fake_sentry_factory: FakeSentryFactory,
) -> None:
    """The redirect holds the project slug of the merge: after a rename the old short id
    still reaches the issue, the new one names nothing."""
    server, issues, _ = _issues(fake_sentry_factory)
    busy, quiet = issues[0], issues[1]
    busy.add_event()
    await _merge(server, busy, quiet)
    server.data.rename_project(ORG, "backend", "api")
    old = await _get(server, "issues/BACKEND-2/", [])
    assert (old[0], old[1]["id"], old[1]["shortId"]) == (200, busy.id, "API-1")
    assert (await _get(server, "issues/API-2/", []))[0] == 404
    assert (await _get(server, "issues/API-1/", []))[1]["id"] == busy.id


async def test_an_issue_deleted_or_never_merged_is_still_a_404(
    fake_sentry_factory: FakeSentryFactory,
) -> None:
    server, issues, _ = _issues(fake_sentry_factory)
    with anyio.fail_after(10):
        status, _ = await org_send(server, "DELETE", f"issues/{issues[2].id}/", [], org=ORG)
    assert status == 202
    assert (await _get(server, "issues/BACKEND-3/", []))[0] == 404
    assert (await _get(server, "issues/BACKEND-Z/", []))[0] == 404


# -- start and end ------------------------------------------------------------------------------

MAY_1 = datetime(2026, 5, 1, tzinfo=timezone.utc)
EVENTS = {
    "early": MAY_1 + timedelta(hours=9, minutes=30),
    "late": MAY_1 + timedelta(hours=10, minutes=30),
    "next": MAY_1 + timedelta(days=1, hours=10, minutes=30),
}


def _dated(factory: FakeSentryFactory) -> tuple[FakeSentry, dict[str, str]]:
    server = factory.start(orgs=0)
    issue = server.builder.add_organization(ORG).add_project("backend").add_issue(
        "Error dated", events=0
    )
    return server, {name: issue.add_event(timestamp=at) for name, at in EVENTS.items()}


@pytest.mark.parametrize(
    ("start", "end", "kept"),
    [
        ("20260501", "20260502", ["early", "late"]),
        ("2026-05-01T12:00:00+02:00", "2026-05-03", ["late", "next"]),
        ("2026-05-01T05:00:00-05:00", "2026-05-01T11:00:00Z", ["late"]),
        ("20260501T100000Z", "20260501T110000Z", ["late"]),
        ("2026-W18-5", "2026-05-01 10:00", ["early"]),
        ("2026-05-01Z", "20260501T10", ["early"]),
        ("2026-05-01T10", "2026-05-02T10:00:00.000000+00:00", ["late"]),
        ("2026-05-01T10:00:00,5", "2026-05-01T1100", ["late"]),
        (str(int((MAY_1 + timedelta(hours=10)).timestamp())), "1777723200.5", ["late", "next"]),
    ],
)
async def test_dates_are_read_as_sentry_reads_them(
    fake_sentry_factory: FakeSentryFactory, start: str, end: str, kept: list[str]
) -> None:
    server, events = _dated(fake_sentry_factory)
    status, body = await _discover(server, [("start", start), ("end", end)])
    assert status == 200, body
    assert _rows(body) == sorted(events[name] for name in kept)


@pytest.mark.parametrize(
    "value",
    [
        " 2026-05-01",
        "2026-05-01 ",
        "2026-05",
        "2026-05-01T",
        "2026-05-01T24:00:00",
        "2026-05-01T10:00+24:00",
        "2026-13-01",
        "0000-05-01",
        "9999-12-31T23:59:59-01:00",
        "2026-05-01T10:00+5",
    ],
)
async def test_a_date_sentry_cannot_read_is_its_400(
    fake_sentry_factory: FakeSentryFactory, value: str
) -> None:
    """Discover answers it after ``get_filter_params``' "Invalid date range: "."""
    server, _ = _dated(fake_sentry_factory)
    status, body = await _discover(server, [("start", value), ("end", "2026-06-01")])
    detail = f"Invalid date range: {value} is not a valid ISO8601 date query"
    assert (status, body) == (400, {"detail": detail})


ISO_CORPUS = [
    "2026-05-01", "20260501", "2026-05-01T10", "2026-05-01T1000", "2026-05-01T10:00",
    "2026-05-01T10:00:00", "2026-05-01T100000", "2026-05-01T10:00:00.5",
    "2026-05-01T10:00:00,123", "2026-05-01T10:00:00.1234567", "2026-05-01T10:00:00.123456x",
    "2026-05-01T10.5", "2026-05-01T10:30.5", "2026-05-01T10:00:00:00", "2026-05-01T10:0",
    "2026-05-01T1", "2026-05-01T", "2026-05-01 10:00", "2026-05-01x10:00", "2026-05-01\u00e910:00",
    "2026-05-01T10:00+02:00", "2026-05-01T10:00-0530", "2026-05-01T10:00+05",
    "2026-05-01T10:00+05:30:15.5", "2026-05-01T10:00+5", "2026-05-01T10:00+05:3",
    "2026-05-01T10:00:00.123456x+01:00", "2026-05-01T123+01:00", "2026-05-01T10:00+",
    "2026-05-01T10:00+24:00", "2026-05-01T10:00-23:59:59.999999", "2026-05-01T24:00",
    "2026-W18", "2026W18", "2026-W18-5", "2026W185", "2026W18T10", "2026-W18-5T10:00",
    "2026-W18-10:00", "2026W1851000", "2026W185100000", "2026-W53", "2020-W53-7", "2026-W00",
    "2026-W18-8", "2026-W18-", "2026-W1", "2026W1", "2026-0501", "202605-01", "2026-5-01",
    "2026-05", "202605", "2026", "20260501112", "2026050101200", "1777629600", "17010101123.5",
    "0001-01-01", "9999-12-31T23:59:59", "0000-01-01", "2026-02-29", "2024-02-29",
    "\u0662\u0660\u0662\u0666-05-01", "2026-05-01T10:00:00+00:00", "+2026-05-01",
]
"""Strings ``datetime.fromisoformat`` reads, and some it does not."""


@pytest.mark.skipif(sys.version_info < (3, 11), reason="fromisoformat reads ISO 8601 from 3.11")
@pytest.mark.parametrize("text", ISO_CORPUS)
def test_the_fakes_iso_reader_is_pythons(text: str) -> None:
    """Sentry reads dates with Python 3.11+'s ``datetime.fromisoformat``; the fake reads them
    the same way on every Python it runs on."""
    from sentry_async.testing._lookups import _iso_datetime

    try:
        expected: datetime | None = datetime.fromisoformat(text)
    except ValueError:
        expected = None
    try:
        got: datetime | None = _iso_datetime(text)
    except ValueError:
        got = None
    assert got == expected
    if got is not None and expected is not None:
        assert got.utcoffset() == expected.utcoffset()
