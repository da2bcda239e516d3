"""Environments and date ranges.

Pinned against Sentry's server code: ``get_environments`` in
``src/sentry/api/helpers/environments.py`` (a name the org does not have is a 404, except
on an issue's events, where ``group_events.py`` answers ``[]``) and
``get_date_range_from_stats_period`` in ``src/sentry/api/utils.py`` (``statsPeriod``
first, 90 days when nothing is given).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import aiohttp
import anyio
import msgspec
import pytest

from sentry_async import NotFound, SentryClient
from sentry_async.testing import FakeSentry

ORG = "org-0"
MISSING = {"detail": "The requested resource does not exist"}


async def _call(
    server: FakeSentry,
    path: str,
    params: list[tuple[str, str]],
    method: str = "GET",
    body: dict[str, Any] | None = None,
) -> tuple[int, Any, dict[str, str]]:
    async with (
        aiohttp.ClientSession() as http,
        http.request(
            method,
            f"{server.url}/api/0/organizations/{ORG}/{path}",
            params=params,
            json=body,
            headers={"Authorization": f"Bearer {server.token}"},
        ) as reply,
    ):
        raw = await reply.read()
        return reply.status, msgspec.json.decode(raw) if raw else None, dict(reply.headers)


# -- environments ---------------------------------------------------------------------------


async def test_an_unknown_environment_is_a_404(fake_sentry: FakeSentry) -> None:
    # api/helpers/environments.get_environments raises ResourceDoesNotExist when a requested
    # name is not one of the org's environments (issues list, bulk calls, Discover,
    # events-stats through OrganizationEndpoint.get_environments / get_filter_params).
    env = [("environment", "production"), ("environment", "prod")]
    issue_id = fake_sentry.data.issue_ids(ORG)[0]
    with anyio.fail_after(10):
        answers = [
            await _call(fake_sentry, "issues/", env),
            await _call(fake_sentry, "issues/", [*env, ("id", issue_id)], "PUT", {"hasSeen": True}),
            await _call(fake_sentry, "issues/", [*env, ("id", issue_id)], "DELETE"),
            await _call(fake_sentry, "events/", [*env, ("field", "id")]),
            await _call(fake_sentry, "events-stats/", env),
        ]
        known = await _call(fake_sentry, "events/", [("environment", "staging"), ("field", "id")])
    assert [(status, body) for status, body, _ in answers] == [(404, MISSING)] * 5
    assert not fake_sentry.data.issues_by_id[issue_id].deleted
    assert "hasSeen" not in fake_sentry.data.issues_by_id[issue_id].extra
    assert known[0] == 200 and known[1]["data"]


async def test_an_issues_events_answer_nothing_for_an_unknown_environment(
    fake_sentry: FakeSentry, client: SentryClient
) -> None:
    # issues/endpoints/group_events.py catches ResourceDoesNotExist and answers [].
    issue_id = fake_sentry.data.issue_ids(ORG)[0]
    with anyio.fail_after(10):
        events = await client.events.for_issue(ORG, issue_id, environment="prod").collect()
        with pytest.raises(NotFound):
            await client.issues.list(ORG, environment="prod").collect()
    assert events == []


# -- date ranges ----------------------------------------------------------------------------


async def test_stats_period_wins_over_start_and_end(fake_sentry: FakeSentry) -> None:
    # api/utils.get_date_range_from_stats_period reads statsPeriod before start/end.
    now = fake_sentry.data.now
    old = [
        ("start", (now - timedelta(days=80)).strftime("%Y-%m-%dT%H:%M:%S")),
        ("end", (now - timedelta(days=70)).strftime("%Y-%m-%dT%H:%M:%S")),
    ]
    with anyio.fail_after(10):
        stats = await _call(
            fake_sentry, "events-stats/", [("statsPeriod", "1d"), ("interval", "5m"), *old]
        )
        issues = await _call(fake_sentry, "issues/", [("query", ""), ("statsPeriod", "2d"), *old])
    assert stats[0] == 200
    assert stats[1]["start"] >= fake_sentry.data.now_ts - 86400 - 300
    recent = {
        i.id
        for i in fake_sentry.data.issues_by_id.values()
        if i.project.org.slug == ORG and i.last_seen >= fake_sentry.data.now_ts - 2 * 86400
    }
    assert issues[0] == 200 and recent
    assert {i["id"] for i in issues[1]} == recent


@pytest.mark.parametrize("path", ["issues/", "events/", "events-stats/", "stats_v2/"])
async def test_an_empty_stats_period_is_refused(fake_sentry: FakeSentry, path: str) -> None:
    # api/utils.get_datetime_from_stats_period: parse_stats_period("") is None -> InvalidParams.
    params = [("statsPeriod", ""), ("field", "id" if path == "events/" else "sum(quantity)")]
    if path == "stats_v2/":
        params.append(("groupBy", "category"))
    with anyio.fail_after(10):
        status, body, _ = await _call(fake_sentry, path, params)
    assert status == 400 and "Invalid statsPeriod: ''" in body["detail"]


async def test_the_issue_list_searches_ninety_days_by_default(fake_sentry: FakeSentry) -> None:
    # organization_group_index.get: date_from from get_date_range_from_stats_period (90 days).
    data = fake_sentry.data
    project = data.org(ORG).projects[0]  # type: ignore[union-attr]
    stale = project.issues[0]
    for event in stale.events:
        event.timestamp -= 200 * 86400
    stale.first_seen, stale.last_seen = stale.events[-1].timestamp, stale.events[0].timestamp
    data.invalidate_issue(stale)
    with anyio.fail_after(10):
        mine = [("query", ""), ("project", project.id)]
        status, body, _ = await _call(fake_sentry, "issues/", mine)
        older = await _call(fake_sentry, "issues/", [*mine, ("statsPeriod", "300d")])
    assert status == 200 and stale.id not in {i["id"] for i in body}
    assert stale.id in {i["id"] for i in older[1]}
