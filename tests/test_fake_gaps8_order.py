"""Which fault the fake answers when a request has two: the one Sentry checks first.

Pinned against Sentry's server code, in the order each endpoint validates:

- issues list (``OrganizationGroupIndexEndpoint.get``,
  ``src/sentry/issues/endpoints/organization_group_index.py``): date range, stats period,
  environments, projects, direct hits, ``group`` ids, then ``_search``:
  ``build_query_params_from_request`` (``src/sentry/api/helpers/group_index/index.py``) reads
  ``limit`` ("invalid limit"), then ``cursor``, then parses the query, and only then does
  ``inbox_search`` check an ``inbox`` sort's terms.
- bulk update and delete (``put``/``delete`` there): the projects, then the environments.
- Discover (``OrganizationEventsEndpoint.get``): ``get_snuba_params`` (at most 20 fields,
  then ``get_filter_params``: date range, projects, ``NoProjects`` answered at once,
  environments), then the dataset, then ``paginate`` (``per_page``, the cursor), then the
  query (``discover.query``: "No columns selected", then the builder's ``resolve_query``:
  conditions, the retention in ``resolve_params``, the columns, the sort).
- ``events-stats`` (``OrganizationEventsStatsEndpoint.get``): ``topEvents``,
  ``comparisonDelta`` and the dataset first, then ``get_snuba_params`` (``NoProjects`` is
  ``{"data": []}``), then ``timestamp`` among the top events' fields, then the query.
"""

from __future__ import annotations

from typing import Any

import anyio
import pytest
from _fake_http import org_get, org_send

from sentry_async.testing import FakeSentry

ORG = "org-0"
DENIED = {"detail": "You do not have permission to perform this action."}
NOT_FOUND = {"detail": "The requested resource does not exist"}
OUTSIDE_RETENTION = {"detail": "Invalid date range. Please try a more recent date range."}
NO_ISSUE = {"detail": "Issue IDs do not exist: ['NOPE-1']"}
OLD_RANGE = [("statsPeriodStart", "120d"), ("statsPeriodEnd", "100d")]
"""A range that ends before the fake's 90 days of retention."""


async def _get(server: FakeSentry, path: str, params: list[tuple[str, str]]) -> tuple[int, Any]:
    with anyio.fail_after(10):
        status, body, _ = await org_get(server, path, params, org=ORG)
    return status, body


def _detail(answer: tuple[int, Any]) -> tuple[int, str]:
    status, body = answer
    return status, body.get("detail", "") if isinstance(body, dict) else ""


# -- issues --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("params", "status", "starts"),
    [
        (
            [("limit", "ten"), ("sort", "inbox"), ("query", "is:unresolved level:error")],
            400,
            "invalid limit",
        ),
        ([("cursor", "bad"), ("query", "level:[a,,b]")], 400, "Invalid cursor parameter."),
        (
            [("sort", "inbox"), ("query", "is:unresolved level:[a,,b]")],
            400,
            "Error parsing search query:",
        ),
        ([("limit", ""), ("query", "")], 200, ""),
    ],
    ids=["limit-before-inbox", "cursor-before-query", "query-before-inbox", "empty-limit-is-none"],
)
async def test_the_issue_search_reads_limit_cursor_and_query_before_the_inbox_terms(
    fake_sentry: FakeSentry, params: list[tuple[str, str]], status: int, starts: str
) -> None:
    answer = _detail(await _get(fake_sentry, "issues/", params))
    assert answer[0] == status and answer[1].startswith(starts), answer
    if starts == "invalid limit":
        assert answer[1] == "invalid limit"


@pytest.mark.parametrize("method", ["PUT", "DELETE"])
async def test_a_bulk_change_checks_the_projects_before_the_environments(
    fake_sentry: FakeSentry, method: str
) -> None:
    org = fake_sentry.builder.organization(ORG)
    org.record.open_membership = False
    hidden = org.add_project("not-mine", member=False)
    params = [("project", hidden.id), ("environment", "no-such-environment")]
    body = {"status": "resolved"} if method == "PUT" else None
    with anyio.fail_after(10):
        answer = await org_send(fake_sentry, method, "issues/", params, body, org=ORG)
    assert answer == (403, DENIED)


# -- Discover ------------------------------------------------------------------------------------


async def test_discover_checks_in_sentrys_order(fake_sentry: FakeSentry) -> None:
    lonely = fake_sentry.builder.add_organization("lonely")
    lonely.add_project("not-mine", member=False)
    period = [("statsPeriod", "14d")]
    answers = {
        "date range before no columns": _detail(
            await _get(fake_sentry, "events/", [("statsPeriod", "bogus")])
        ),
        "environment before a field": await _get(
            fake_sentry, "events/", [*period, ("field", "bad field!"), ("environment", "nope")]
        ),
        "cursor before the query": await _get(
            fake_sentry,
            "events/",
            [*period, ("field", "id"), ("cursor", "bad"), ("query", "issue:NOPE-1")],
        ),
        "query before the retention": await _get(
            fake_sentry, "events/", [*OLD_RANGE, ("field", "id"), ("query", "issue:NOPE-1")]
        ),
        "retention before a field": await _get(
            fake_sentry, "events/", [*OLD_RANGE, ("field", "bad field!")]
        ),
    }
    with anyio.fail_after(10):
        status, body, _ = await org_get(fake_sentry, "events/", period, org="lonely")
    assert answers == {
        "date range before no columns": (400, "Invalid date range: Invalid statsPeriod: 'bogus'"),
        "environment before a field": (404, NOT_FOUND),
        "cursor before the query": (400, {"detail": "Invalid cursor parameter."}),
        "query before the retention": (400, NO_ISSUE),
        "retention before a field": (400, OUTSIDE_RETENTION),
    }
    # No project to query: answered before the missing columns are.
    assert (status, body) == (
        200,
        {"data": [], "meta": {"tips": {"query": "Need at least one valid project to query."}}},
    )


# -- events-stats --------------------------------------------------------------------------------


async def test_events_stats_checks_in_sentrys_order(fake_sentry: FakeSentry) -> None:
    lonely = fake_sentry.builder.add_organization("lonely")
    lonely.add_project("not-mine", member=False)
    period = [("statsPeriod", "24h")]
    answers = {
        "dataset before the date range": _detail(
            await _get(fake_sentry, "events-stats/", [("dataset", "bogus"), ("statsPeriod", "x")])
        ),
        "twenty fields at most": await _get(
            fake_sentry, "events-stats/", [*period, *[("field", "id")] * 21]
        ),
        "environment before the y-axis": await _get(
            fake_sentry, "events-stats/", [*period, ("yAxis", "nope()"), ("environment", "nope")]
        ),
        "timestamp before the query": await _get(
            fake_sentry,
            "events-stats/",
            [
                *period,
                ("topEvents", "5"),
                ("field", "timestamp"),
                ("field", "count()"),
                ("query", "issue:NOPE-1"),
            ],
        ),
        "query before the retention": await _get(
            fake_sentry, "events-stats/", [*OLD_RANGE, ("query", "issue:NOPE-1")]
        ),
    }
    with anyio.fail_after(10):
        status, body, _ = await org_get(fake_sentry, "events-stats/", period, org="lonely")
    assert answers["dataset before the date range"][0] == 400
    assert answers["dataset before the date range"][1].startswith("dataset must be one of: ")
    assert answers["twenty fields at most"] == (
        400,
        {"detail": "You can view up to 20 fields at a time. Please delete some and try again."},
    )
    assert answers["environment before the y-axis"] == (404, NOT_FOUND)
    assert answers["timestamp before the query"] == (400, {"detail": "Cannot group by timestamp"})
    assert answers["query before the retention"] == (400, NO_ISSUE)
    assert (status, body) == (200, {"data": []})
