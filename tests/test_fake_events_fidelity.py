"""The fake's event routes where they followed an older or a partial reading of Sentry.

Pinned against Sentry's server code: ``OrganizationEventsEndpointBase.get_snuba_params``
(``src/sentry/api/bases/organization_events.py``: ``quantize_date_params`` is on by default,
and ``OrganizationEventsEndpoint.get`` keeps the default, so ``/events/`` rounds a
``statsPeriod`` range as ``events-stats`` does), ``ProjectEventsEndpoint.get``
(``src/sentry/issues/endpoints/project_events.py``: ``sample`` on for ``1`` or ``true`` only,
events read with ``eventstore.backend.get_events``, whose default dataset is
``Dataset.Events``: no transactions), and ``wrap_event_response``
(``src/sentry/issues/endpoints/project_event_details.py``: the neighbours are read with the
request's query conditions, environments and ``start``/``end``, by
``get_adjacent_event_ids_snql`` or ``get_adjacent_event_ids`` in
``src/sentry/services/eventstore/snuba/backend.py``).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import aiohttp
import anyio
import msgspec
from _fake_http import org_get

from sentry_async import SentryClient
from sentry_async.testing import FakeSentry

ORG = "acme"
PROJECT = "web"


async def _get(server: FakeSentry, path: str, params: list[tuple[str, str]]) -> tuple[int, Any]:
    async with (
        aiohttp.ClientSession() as http,
        http.get(
            f"{server.url}/api/0/{path}",
            params=params,
            headers={"Authorization": f"Bearer {server.token}"},
        ) as reply,
    ):
        raw = await reply.read()
        return reply.status, msgspec.json.decode(raw) if raw else None


# -- Discover's range -------------------------------------------------------------------------


async def test_discover_rounds_a_stats_period_out_as_sentry_does(fake_sentry: FakeSentry) -> None:
    """``quantize_date_params``: a ``statsPeriod`` over an hour starts at the minute window
    (keyed by the organization's id) strictly before ``now - period``, so an event a second
    older than the period is in, one 61 seconds older is not; ``start``/``end`` and a period
    of an hour or less are left as they are."""
    org = fake_sentry.builder.add_organization(ORG)
    project = org.add_project(PROJECT)
    issue = project.add_issue("KeyError: 'x'", events=0)
    now = fake_sentry.now
    inside = issue.add_event(timestamp=now - timedelta(days=1, seconds=1))
    outside = issue.add_event(timestamp=now - timedelta(days=1, seconds=61))
    hour = issue.add_event(timestamp=now - timedelta(hours=1, seconds=1))

    async def ids(params: list[tuple[str, str]]) -> set[str]:
        status, body, _ = await org_get(
            fake_sentry,
            "events/",
            [("project", project.id), ("field", "id"), *params],
            org=ORG,
        )
        assert status == 200, body
        return {row["id"] for row in body["data"]}

    pinned = [
        ("start", (now - timedelta(days=1)).isoformat()),
        ("end", now.isoformat()),
    ]
    with anyio.fail_after(10):
        period = await ids([("statsPeriod", "24h")])
        fixed = await ids(pinned)
        short = await ids([("statsPeriod", "1h")])
    assert inside in period and outside not in period
    assert inside not in fixed and outside not in fixed
    assert hour not in short


# -- project events: sample -------------------------------------------------------------------


async def test_project_events_sample_is_on_for_1_or_true_only(fake_sentry: FakeSentry) -> None:
    """``sample = request.GET.get("sample") in ("1", "true")``: "0" (or "yes") keeps the
    newest first; "1" and "true" order by event id."""
    issue = fake_sentry.builder.add_organization(ORG).add_project(PROJECT).add_issue(
        "KeyError: 'x'", events=20
    )
    path = f"projects/{ORG}/{PROJECT}/events/"

    async def ids(sample: str | None) -> list[str]:
        params = [("sample", sample)] if sample is not None else []
        status, body = await _get(fake_sentry, path, params)
        assert status == 200, body
        return [row["eventID"] for row in body]

    with anyio.fail_after(10):
        answers = {value: await ids(value) for value in (None, "0", "yes", "1", "true")}
    newest = issue.event_ids
    assert newest != sorted(newest)
    assert answers[None] == answers["0"] == answers["yes"] == newest
    assert answers["1"] == answers["true"] == sorted(newest)


# -- neighbours -------------------------------------------------------------------------------


def _three_events(server: FakeSentry) -> tuple[str, dict[str, str]]:
    issue = (
        server.builder.add_organization(ORG)
        .add_project(PROJECT)
        .add_issue("KeyError: 'x'", events=0)
    )
    now = server.now
    events = {
        "new": issue.add_event(timestamp=now - timedelta(minutes=1), tags={"region": "us"}),
        "mid": issue.add_event(timestamp=now - timedelta(minutes=2), tags={"region": "de"}),
        "old": issue.add_event(timestamp=now - timedelta(minutes=3), tags={"region": "us"}),
    }
    return issue.id, events


async def test_neighbours_follow_the_query_and_the_time_range(
    fake_sentry: FakeSentry, client: SentryClient
) -> None:
    """The next and previous events are the nearest ones matching the query, environments
    and ``start``/``end`` (an unbounded search when no range is sent), on both detail
    endpoints; the event itself need not match."""
    issue_id, events = _three_events(fake_sentry)
    names = {v: k for k, v in events.items()}
    now = fake_sentry.now
    project_path = f"projects/{ORG}/{PROJECT}/events/{{}}/"

    def pair(next_id: str | None, previous_id: str | None) -> tuple[str | None, str | None]:
        return names.get(next_id or ""), names.get(previous_id or "")

    with anyio.fail_after(10):
        plain = await client.events.for_issue_event(ORG, issue_id, events["old"])
        us = await client.events.for_issue_event(ORG, issue_id, events["old"], query="region:us")
        from_mid = await client.events.for_issue_event(
            ORG, issue_id, events["mid"], query="region:us"
        )
        ranged = await client.events.for_issue_event(
            ORG,
            issue_id,
            events["mid"],
            start=now - timedelta(minutes=2, seconds=30),
            end=now - timedelta(seconds=90),
        )
        _, project_us = await _get(
            fake_sentry, project_path.format(events["old"]), [("query", "region:us")]
        )
        _, project_ranged = await _get(
            fake_sentry,
            project_path.format(events["mid"]),
            [("statsPeriod", "150s")],
        )
    assert pair(plain.next_event_id, plain.previous_event_id) == ("mid", None)
    assert pair(us.next_event_id, us.previous_event_id) == ("new", None)
    assert pair(from_mid.next_event_id, from_mid.previous_event_id) == ("new", "old")
    assert pair(ranged.next_event_id, ranged.previous_event_id) == (None, None)
    assert pair(project_us["nextEventID"], project_us["previousEventID"]) == ("new", None)
    assert pair(project_ranged["nextEventID"], project_ranged["previousEventID"]) == (
        "new",
        None,
    )


# -- project events: no transactions ----------------------------------------------------------


async def test_project_events_leave_transactions_out(
    fake_sentry: FakeSentry, client: SentryClient
) -> None:
    """``eventstore.backend.get_events`` reads ``Dataset.Events`` unless told otherwise: a
    project's event list holds its errors and default events, never its transactions."""
    data = fake_sentry.data
    org = data.org("org-0")
    assert org is not None
    project = next(p for p in org.projects if any(e.kind == "transaction" for e in p.events))
    transactions = {e.event_id for e in project.events if e.kind == "transaction"}
    with anyio.fail_after(30):
        listed = await client.events.for_project("org-0", project.slug, period="90d").collect()
    ids = {e.id for e in listed}
    assert ids and not ids & transactions
    assert ids == {e.event_id for e in project.events if e.kind != "transaction"}


async def test_the_detail_endpoints_read_a_bad_query_or_range_as_sentry_does(
    fake_sentry: FakeSentry,
) -> None:
    """A bad date range is ``ParseError("Invalid date range")`` on both; a query that does
    not parse is a 400 for an issue's event but dropped by ``ProjectEventDetailsEndpoint``
    (``capture_exception``), while a term the fake cannot evaluate stays a 400 there too.
    Both read it as the issue search does, which refuses ``OR`` outright: dropped."""
    issue_id, events = _three_events(fake_sentry)
    names = {v: k for k, v in events.items()}
    project_path = f"projects/{ORG}/{PROJECT}/events/{events['old']}/"
    issue_path = f"organizations/{ORG}/issues/{issue_id}/events/{events['old']}/"
    bad_quote = [("query", 'region:a"b')]
    with anyio.fail_after(10):
        for path in (project_path, issue_path):
            for params in ([("start", fake_sentry.now.isoformat())], [("statsPeriod", "x")]):
                status, body = await _get(fake_sentry, path, params)
                assert (status, body) == (400, {"detail": "Invalid date range"}), (path, params)
        dropped_status, dropped = await _get(fake_sentry, project_path, bad_quote)
        refused, _ = await _get(fake_sentry, issue_path, bad_quote)
        unevaluated, _ = await _get(fake_sentry, project_path, [("query", "error.handled:1")])
        either_status, either = await _get(fake_sentry, project_path, [("query", "region:us OR a")])
    assert dropped_status == 200 and names.get(dropped["nextEventID"]) == "mid"
    assert refused == 400 and unevaluated == 400
    assert either_status == 200 and names.get(either["nextEventID"]) == "mid"


async def test_exception_values_carry_the_raw_fields_sentry_always_sends(
    fake_sentry: FakeSentry,
) -> None:
    """``SingleException.get_api_context`` (``src/sentry/interfaces/exception.py``) always
    sends ``rawValue``, ``rawModule`` and ``rawType`` beside ``rawStacktrace``, null when the
    event was not processed (no source map, no ProGuard): the fake's events hold the same
    keys, so a model that drops or mistypes them shows in a test."""
    org, project = "org-0", "project-0-0"
    event_id = fake_sentry.data.event_ids(org, project, include_transactions=False)[0]
    async with SentryClient(fake_sentry.token, base_url=fake_sentry.url) as client:
        raw = await client.events.get_raw(org, project, event_id)
    entries = msgspec.json.decode(raw)["entries"]
    values = next(e for e in entries if e["type"] == "exception")["data"]["values"]
    assert values
    for value in values:
        for key in ("rawStacktrace", "rawValue", "rawModule", "rawType"):
            assert key in value and value[key] is None
