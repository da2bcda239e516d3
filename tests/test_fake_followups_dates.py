"""An empty ``start``/``end`` and the ``statsPeriodStart``/``statsPeriodEnd`` pair, read as
Sentry reads them.

Pinned against Sentry's server code: ``get_date_range_from_stats_period``
(``src/sentry/api/utils.py``), which ``get_date_range_from_params`` ends in, and which the
issue list (``organization_group_index.py``), an issue's events (``group_events.py``), its
event details (``group_event_details.py``), Discover (``OrganizationEndpoint.
get_filter_params``) and ``stats_v2`` (``get_constrained_date_range``) all call:

- ``statsPeriod`` (``is not None``: even empty) comes first; then ``statsPeriodStart`` or
  ``statsPeriodEnd`` (``if stats_period_start or stats_period_end``: an empty one is none),
  both required ("statsPeriodStart and statsPeriodEnd are both required"), each a period back
  from now read by ``get_datetime_from_stats_period`` ("Invalid statsPeriod: '...'"); then
  ``start``/``end`` (``params.get("start") or params.get("end")``: an empty one is none), both
  required ("start and end are both required"); else the default range, or none at all with
  ``optional=True``.
- Whatever was read: ``if start >= end: raise InvalidParams("start must be before end")``,
  so ``statsPeriod=0`` is refused too.

The issue list and an issue's events answer ``ParseError(detail=str(e))``; an issue's event
details ``ParseError("Invalid date range")``.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import anyio
import pytest
from _fake_http import org_get, org_send

from sentry_async.testing import FakeSentry, FakeSentryFactory
from sentry_async.testing._builder import IssueBuilder

ORG = "acme"
AGES = {"recent": timedelta(hours=1), "week": timedelta(days=10), "old": timedelta(days=30)}


def _dated(factory: FakeSentryFactory) -> tuple[FakeSentry, dict[str, IssueBuilder]]:
    """One issue per age of ``AGES``, each with one event that old."""
    server = factory.start(orgs=0)
    project = server.builder.add_organization(ORG).add_project("backend")
    issues = {}
    for name, age in AGES.items():
        issues[name] = project.add_issue(f"Error {name}", events=0)
        issues[name].add_event(timestamp=server.now - age)
    return server, issues


def _iso(server: FakeSentry, ago: timedelta) -> str:
    return (server.now - ago).strftime("%Y-%m-%dT%H:%M:%S")


async def _issue_list(server: FakeSentry, params: list[tuple[str, str]]) -> tuple[int, Any]:
    with anyio.fail_after(10):
        status, body, _ = await org_get(
            server, "issues/", [("query", ""), ("project", "-1"), *params], org=ORG
        )
    return status, body


@pytest.mark.parametrize(
    ("params", "kept"),
    [
        ([], ["recent", "week", "old"]),
        ([("start", ""), ("end", "")], ["recent", "week", "old"]),
        ([("statsPeriodStart", "14d"), ("statsPeriodEnd", "7d")], ["week"]),
        ([("statsPeriodStart", "3w"), ("statsPeriodEnd", "48h"), ("end", "")], ["week"]),
        ([("statsPeriod", "14d"), ("statsPeriodStart", "40d"), ("statsPeriodEnd", "20d")],
         ["recent", "week"]),
        ([("statsPeriodStart", "40d"), ("statsPeriodEnd", "20d"), ("start", "x"), ("end", "y")],
         ["old"]),
        ([("statsPeriodStart", ""), ("statsPeriodEnd", ""), ("start", "OLD"), ("end", "WEEK")],
         ["old", "week"]),
    ],
)
async def test_the_issue_list_reads_the_range_sentry_reads(
    fake_sentry_factory: FakeSentryFactory, params: list[tuple[str, str]], kept: list[str]
) -> None:
    server, issues = _dated(fake_sentry_factory)
    marks = {"OLD": _iso(server, timedelta(days=31)), "WEEK": _iso(server, timedelta(days=9))}
    status, body = await _issue_list(server, [(k, marks.get(v, v)) for k, v in params])
    assert status == 200, body
    assert sorted(row["id"] for row in body) == sorted(issues[name].id for name in kept)


@pytest.mark.parametrize(
    ("params", "detail"),
    [
        ([("start", ""), ("end", "2026-01-01")], "start and end are both required"),
        ([("start", "2026-01-01"), ("end", "")], "start and end are both required"),
        ([("statsPeriodStart", "14d")], "statsPeriodStart and statsPeriodEnd are both required"),
        ([("statsPeriodStart", ""), ("statsPeriodEnd", "7d"), ("start", "2026-01-01")],
         "statsPeriodStart and statsPeriodEnd are both required"),
        ([("statsPeriodStart", "7d"), ("statsPeriodEnd", "14d")], "start must be before end"),
        ([("statsPeriodStart", "1d"), ("statsPeriodEnd", "24h")], "start must be before end"),
        ([("statsPeriodStart", "14d"), ("statsPeriodEnd", "7x")], "Invalid statsPeriod: '7x'"),
        ([("statsPeriodStart", " 14d"), ("statsPeriodEnd", "7d")],
         "Invalid statsPeriod: ' 14d'"),
        ([("statsPeriod", "0")], "start must be before end"),
        ([("statsPeriod", "0d"), ("start", "2026-01-01"), ("end", "2026-02-01")],
         "start must be before end"),
    ],
)
async def test_the_issue_list_refuses_the_range_sentry_refuses(
    fake_sentry_factory: FakeSentryFactory, params: list[tuple[str, str]], detail: str
) -> None:
    server, _ = _dated(fake_sentry_factory)
    assert await _issue_list(server, params) == (400, {"detail": detail})


@pytest.mark.parametrize(
    ("params", "kept"),
    [
        ([("start", ""), ("end", "")], ["recent", "week", "old"]),
        ([("statsPeriodStart", "2h"), ("statsPeriodEnd", "30m")], ["recent"]),
        ([("statsPeriodStart", "2w"), ("statsPeriodEnd", "1w"), ("start", "")], ["week"]),
    ],
)
async def test_discover_and_an_issues_events_read_the_range_sentry_reads(
    fake_sentry_factory: FakeSentryFactory, params: list[tuple[str, str]], kept: list[str]
) -> None:
    server, issues = _dated(fake_sentry_factory)
    expected = sorted(issues[name].event_ids[0] for name in kept)
    with anyio.fail_after(10):
        status, body, _ = await org_get(
            server, "events/", [("field", "id"), ("project", "-1"), *params], org=ORG
        )
    assert status == 200, body
    assert sorted(row["id"] for row in body["data"]) == expected
    for name, issue in issues.items():
        with anyio.fail_after(10):
            status, body = await org_send(
                server, "GET", f"issues/{issue.id}/events/", params, org=ORG
            )
        assert status == 200, body
        assert [row["eventID"] for row in body] == (issue.event_ids if name in kept else [])


async def test_an_issues_events_refuse_half_a_range_as_sentry_does(
    fake_sentry_factory: FakeSentryFactory,
) -> None:
    server, issues = _dated(fake_sentry_factory)
    with anyio.fail_after(10):
        status, body = await org_send(
            server,
            "GET",
            f"issues/{issues['recent'].id}/events/",
            [("statsPeriodEnd", "1d"), ("start", "2026-01-01"), ("end", "2026-02-01")],
            org=ORG,
        )
    assert (status, body) == (
        400,
        {"detail": "statsPeriodStart and statsPeriodEnd are both required"},
    )


@pytest.mark.parametrize(
    ("params", "neighbours"),
    [
        ([("start", ""), ("end", "")], (0, 2)),
        ([("statsPeriodStart", ""), ("statsPeriodEnd", "")], (0, 2)),
        ([("statsPeriodStart", "90m"), ("statsPeriodEnd", "0m")], (0, None)),
        ([("statsPeriodStart", "90m"), ("statsPeriodEnd", "3h")], "Invalid date range"),
        ([("statsPeriodStart", "90m")], "Invalid date range"),
    ],
)
async def test_an_events_neighbours_read_the_range_sentry_reads(
    fake_sentry_factory: FakeSentryFactory, params: list[tuple[str, str]], neighbours: Any
) -> None:
    server = fake_sentry_factory.start(orgs=0)
    issue = server.builder.add_organization(ORG).add_project("backend").add_issue(
        "Error spread", events=0
    )
    for age in (timedelta(minutes=1), timedelta(hours=1), timedelta(hours=2)):
        issue.add_event(timestamp=server.now - age)
    ids = issue.event_ids
    with anyio.fail_after(10):
        status, body = await org_send(
            server, "GET", f"issues/{issue.id}/events/{ids[1]}/", params, org=ORG
        )
    if isinstance(neighbours, str):
        assert (status, body) == (400, {"detail": neighbours})
        return
    assert status == 200, body
    newer, older = neighbours
    assert (body["nextEventID"], body["previousEventID"]) == (
        None if newer is None else ids[newer],
        None if older is None else ids[older],
    )
