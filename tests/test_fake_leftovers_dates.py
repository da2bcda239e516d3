"""Date ranges as each endpoint reads and refuses them: ``timeframe``, Discover's ``range``,
repeated keys and the wording of a refusal.

Pinned against Sentry's server code (getsentry/sentry):

- ``src/sentry/api/utils.py`` ``get_date_range_from_params``: ``timeframe`` (``is not
  None``) replaces ``statsPeriod``; else ``timeframeStart``/``timeframeEnd`` (both, "timeframeStart
  and timeframeEnd are both required") replace ``statsPeriodStart``/``statsPeriodEnd``, after
  which ``get_date_range_from_stats_period`` reads ``statsPeriod`` first as ever. Discover and
  ``events-stats`` (``OrganizationEndpoint.get_filter_params``), an issue's events
  (``group_events.py``) and event details (``group_event_details.py``), a project's events
  (``project_events.py``) call it; the issue list calls ``get_date_range_from_stats_period``
  directly and reads no ``timeframe``, nor does ``stats_v2`` (``QueryDefinition.from_query_dict``
  passes ``statsPeriod``, ``start`` and ``end`` alone to ``get_constrained_date_range``).
- ``src/sentry/api/bases/organization.py`` ``get_filter_params``: a refusal is
  ``ParseError(f"Invalid date range: {e}")``. Its ``range`` alias assigns into the request's
  data (``data["statsPeriod"] = data["range"]``), which for a GET is ``request.GET``, an
  immutable ``QueryDict``: ``range`` without ``statsPeriod`` raises ``AttributeError``,
  Sentry's 500.
- ``tests/snuba/api/endpoints/test_project_events.py`` (getsentry/sentry#96658): a project's
  events answer any refused range "Invalid date range parameters provided".
- Django's ``QueryDict.get``/``__getitem__`` answer the last of a key's values: every
  ``request.GET.get(...)`` reads the last ``statsPeriod``, ``query``, ``per_page`` sent.
"""

from __future__ import annotations

from typing import Any

import aiohttp
import anyio
import msgspec
import pytest
from test_fake_followups_dates import ORG, _dated

from sentry_async.testing import FakeSentry, FakeSentryFactory

INTERNAL_ERROR = {"detail": "Internal Error", "errorId": "f" * 32}


async def _get(server: FakeSentry, path: str, params: list[tuple[str, str]]) -> tuple[int, Any]:
    """``GET /api/0/{path}`` with the fake's token."""
    with anyio.fail_after(10):
        async with (
            aiohttp.ClientSession() as http,
            http.get(
                f"{server.url}/api/0/{path}",
                params=params,
                headers={"Authorization": f"Bearer {server.token}"},
            ) as reply,
        ):
            return reply.status, msgspec.json.decode(await reply.read())


async def _discover(server: FakeSentry, params: list[tuple[str, str]]) -> tuple[int, Any]:
    return await _get(
        server, f"organizations/{ORG}/events/", [("field", "id"), ("project", "-1"), *params]
    )


async def _stats(server: FakeSentry, params: list[tuple[str, str]]) -> tuple[int, Any]:
    return await _get(
        server, f"organizations/{ORG}/events-stats/", [("project", "-1"), *params]
    )


async def _issue_list(server: FakeSentry, params: list[tuple[str, str]]) -> tuple[int, Any]:
    return await _get(
        server, f"organizations/{ORG}/issues/", [("query", ""), ("project", "-1"), *params]
    )


# -- timeframe, where get_date_range_from_params reads it ----------------------------------------

SELECTIONS = [
    ([("timeframe", "14d")], ["recent", "week"]),
    ([("statsPeriod", "2h"), ("timeframe", "14d")], ["recent", "week"]),
    ([("timeframeStart", "14d"), ("timeframeEnd", "7d")], ["week"]),
    ([("timeframeStart", "14d"), ("timeframeEnd", "7d"), ("start", "x")], ["week"]),
    ([("statsPeriod", "14d"), ("timeframeStart", "40d"), ("timeframeEnd", "20d")],
     ["recent", "week"]),
    ([("timeframeStart", ""), ("timeframeEnd", ""), ("statsPeriod", "2h")], ["recent"]),
    ([("statsPeriod", "2h"), ("statsPeriod", "14d")], ["recent", "week"]),
    ([("timeframe", "x"), ("timeframe", "2h")], ["recent"]),
]


@pytest.mark.parametrize(("params", "kept"), SELECTIONS)
async def test_the_events_endpoints_read_timeframe_as_sentry_does(
    fake_sentry_factory: FakeSentryFactory, params: list[tuple[str, str]], kept: list[str]
) -> None:
    server, issues = _dated(fake_sentry_factory)
    expected = sorted(issues[name].event_ids[0] for name in kept)
    status, body = await _discover(server, params)
    assert status == 200, body
    assert sorted(row["id"] for row in body["data"]) == expected
    status, body = await _stats(server, params)
    assert status == 200, body
    assert sum(point[1][0]["count"] for point in body["data"]) == len(kept)
    status, body = await _get(server, f"projects/{ORG}/backend/events/", params)
    assert status == 200, body
    assert sorted(row["eventID"] for row in body) == expected
    for name, issue in issues.items():
        status, body = await _get(server, f"organizations/{ORG}/issues/{issue.id}/events/", params)
        assert status == 200, body
        assert [row["eventID"] for row in body] == (issue.event_ids if name in kept else [])


async def test_stats_v2_reads_no_timeframe(fake_sentry_factory: FakeSentryFactory) -> None:
    """``QueryDefinition.from_query_dict`` hands ``statsPeriod``, ``start`` and ``end`` alone
    to ``get_constrained_date_range``: ``timeframe`` and its ends are never read."""
    server, _ = _dated(fake_sentry_factory)
    usage = [("field", "sum(quantity)"), ("category", "error"), ("interval", "1d")]
    for params, total in (
        ([], 3),
        ([("timeframe", "14d")], 3),
        ([("timeframeEnd", "1d")], 3),
        ([("statsPeriod", "2d")], 1),
    ):
        status, body = await _get(server, f"organizations/{ORG}/stats_v2/", [*usage, *params])
        assert status == 200, body
        assert body["groups"][0]["totals"]["sum(quantity)"] == total, params


@pytest.mark.parametrize(
    ("params", "kept"),
    [
        ([("timeframe", "2h")], ["recent", "week", "old"]),
        ([("timeframeStart", "14d")], ["recent", "week", "old"]),
        ([("statsPeriod", "2h"), ("statsPeriod", "14d")], ["recent", "week"]),
        ([("statsPeriod", "x"), ("statsPeriod", "")], None),
        ([("query", "is:resolved"), ("query", "")], ["recent", "week", "old"]),
        ([("per_page", "1"), ("per_page", "2"), ("limit", "1"), ("limit", "2")],
         ["recent", "week"]),
    ],
)
async def test_the_issue_list_reads_no_timeframe_and_the_last_value(
    fake_sentry_factory: FakeSentryFactory, params: list[tuple[str, str]], kept: list[str] | None
) -> None:
    server, issues = _dated(fake_sentry_factory)
    status, body = await _issue_list(server, params)
    if kept is None:
        assert (status, body) == (400, {"detail": "Invalid statsPeriod: ''"})
        return
    assert status == 200, body
    assert sorted(row["id"] for row in body) == sorted(issues[name].id for name in kept)


# -- how each endpoint words a refused range -----------------------------------------------------

REFUSED = [
    ([("start", "2026-05"), ("end", "2026-06-01")], "2026-05 is not a valid ISO8601 date query"),
    ([("statsPeriod", "bogus")], "Invalid statsPeriod: 'bogus'"),
    ([("start", "2026-01-01")], "start and end are both required"),
    ([("timeframeStart", "14d")], "timeframeStart and timeframeEnd are both required"),
    ([("timeframeStart", "14d"), ("timeframeEnd", "")],
     "timeframeStart and timeframeEnd are both required"),
    ([("timeframe", ""), ("statsPeriod", "14d")], "Invalid statsPeriod: ''"),
    ([("timeframeStart", "7d"), ("timeframeEnd", "14d")], "start must be before end"),
]


@pytest.mark.parametrize(("params", "message"), REFUSED)
async def test_each_endpoint_words_a_refused_range_as_sentry_does(
    fake_sentry_factory: FakeSentryFactory, params: list[tuple[str, str]], message: str
) -> None:
    server, issues = _dated(fake_sentry_factory)
    issue = issues["recent"]
    prefixed = {"detail": f"Invalid date range: {message}"}
    assert await _discover(server, params) == (400, prefixed)
    assert await _stats(server, params) == (400, prefixed)
    assert await _get(server, f"projects/{ORG}/backend/events/", params) == (
        400,
        {"detail": "Invalid date range parameters provided"},
    )
    assert await _get(server, f"organizations/{ORG}/issues/{issue.id}/events/", params) == (
        400,
        {"detail": message},
    )
    for key in ("latest", issue.event_ids[0]):
        path = f"organizations/{ORG}/issues/{issue.id}/events/{key}/"
        assert await _get(server, path, params) == (400, {"detail": "Invalid date range"})


# -- Discover's range -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("params", "kept"),
    [
        ([("range", "14d")], None),
        ([("range", "")], None),
        ([("range", "14d"), ("timeframe", "14d")], None),
        ([("range", "14d"), ("statsPeriod", "2h")], ["recent"]),
        ([("range", "bogus"), ("statsPeriod", "")], []),
    ],
)
async def test_discovers_range_in_a_query_string_is_sentrys_500(
    fake_sentry_factory: FakeSentryFactory, params: list[tuple[str, str]], kept: list[str] | None
) -> None:
    server, issues = _dated(fake_sentry_factory)
    if kept is None:
        assert await _discover(server, params) == (500, INTERNAL_ERROR)
        assert await _stats(server, params) == (500, INTERNAL_ERROR)
        # An issue's events do not alias it: ignored (a timeframe of 14 days is read).
        status, body = await _get(
            server, f"organizations/{ORG}/issues/{issues['old'].id}/events/", params
        )
        assert (status, len(body)) == (200, 0 if ("timeframe", "14d") in params else 1)
        return
    if not kept:
        status, body = await _discover(server, params)
        assert (status, body) == (400, {"detail": "Invalid date range: Invalid statsPeriod: ''"})
        return
    status, body = await _discover(server, params)
    assert status == 200, body
    assert sorted(row["id"] for row in body["data"]) == sorted(
        issues[name].event_ids[0] for name in kept
    )


async def test_a_repeated_key_reads_its_last_value(fake_sentry_factory: FakeSentryFactory) -> None:
    server, issues = _dated(fake_sentry_factory)
    status, body = await _get(
        server, f"projects/{ORG}/backend/events/", [("per_page", "1"), ("per_page", "3")]
    )
    assert (status, len(body)) == (200, 3)
    status, body = await _discover(
        server, [("query", "title:nothing"), ("query", "title:\"Error week\"")]
    )
    assert status == 200, body
    assert [row["id"] for row in body["data"]] == issues["week"].event_ids
    status, body = await _get(
        server,
        f"organizations/{ORG}/issues/{issues['week'].id}/events/",
        [("full", "true"), ("full", "0")],
    )
    assert status == 200 and "entries" not in body[0], body
