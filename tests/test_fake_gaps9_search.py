"""The fake's issue search, bulk changes, ``events-stats`` and ``stats_v2`` where they still
answered otherwise than Sentry.

Pinned against Sentry's server code:

- ``inbox_search`` (``src/sentry/issues/endpoints/organization_group_index.py``): the range
  starts a week back at most and ends no earlier; one that leaves nothing is an empty page
  (``Paginator(Group.objects.none()).get_result()``: no hits counted) before the terms are
  looked at.
- Bulk ``PUT``/``DELETE`` without ids search with ``build_query_params_from_request``
  (``src/sentry/api/helpers/group_index/index.py``: ``limit`` read, then replaced by
  ``BULK_MUTATION_LIMIT``, ``cursor``, the query) and no date range. Its refusals:
  ``update_groups_with_search_fn`` (``update.py``) answers a ``ValidationError`` "Invalid
  query. Error getting group ids and group list", ``schedule_tasks_to_delete_groups``
  (``delete.py``) its message, and the deletes answer anything else raised (the cursor's
  ``ParseError``) "Error deleting groups", a 500.
- ``prep_search`` (``index.py``): a project's bulk search reads one ``environment`` (the
  last); one the organization does not have is an empty result, so nothing changes (204).
- ``get_event_stats_data`` (``src/sentry/api/bases/organization_events.py``): events-stats
  calls ``get_snuba_params(check_global_views=False)``, and refuses a ``comparisonDelta``
  whose period starts before the retention ("Comparison period is outside retention
  window", ``organization_events_stats.py``).
- ``QueryDefinition.from_query_dict`` (``src/sentry/snuba/outcomes.py``): the range is
  ``start``, ``end``, ``statsPeriod`` and ``interval`` only; ``KeyDimension`` refuses a
  ``key_id`` ``int()`` cannot read.
"""

from __future__ import annotations

from typing import Any

import anyio
import pytest
from _fake_http import api_send as _call
from _fake_http import org_get

from sentry_async.testing import FakeSentry, FakeSentryFactory

ORG = "org-0"
INVALID_QUERY = {"detail": "Invalid query. Error getting group ids and group list"}
DELETE_FAILED = {"detail": "Error deleting groups"}
INTERNAL_ERROR = {"detail": "Internal Error", "errorId": "f" * 32}
BAD_QUERY = "level:[a,,b]"


def _states(server: FakeSentry) -> dict[str, tuple[str, bool]]:
    """Every issue's status and whether it is deleted."""
    return {i.id: (i.status, i.deleted) for i in server.data.issues_by_id.values()}


# -- the inbox sort ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "range_params",
    [
        [("statsPeriodStart", "30d"), ("statsPeriodEnd", "7d")],
        [("start", "2020-01-01T00:00:00"), ("end", "2020-01-02T00:00:00")],
    ],
    ids=["ends-a-week-back", "long-ago"],
)
async def test_an_inbox_search_over_a_range_ending_a_week_back_is_an_empty_page(
    fake_sentry: FakeSentry, range_params: list[tuple[str, str]]
) -> None:
    params = [*range_params, ("sort", "inbox"), ("query", "level:error")]
    with anyio.fail_after(10):
        status, body, headers = await org_get(fake_sentry, "issues/", params)
        recent, _, _ = await org_get(fake_sentry, "issues/", [("statsPeriod", "14d"), *params[-2:]])
    assert (status, body) == (200, [])
    assert "X-Hits" not in headers and "X-Max-Hits" not in headers
    links = headers["Link"]
    assert 'rel="previous"; results="false"; cursor="0:0:1"' in links
    assert 'rel="next"; results="false"; cursor="0:0:0"' in links
    # A range reaching into the last week still has its terms checked.
    assert recent == 400


# -- bulk changes without ids ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "params", "expected"),
    [
        ("PUT", [("limit", "ten")], (400, INVALID_QUERY)),
        ("PUT", [("query", BAD_QUERY)], (400, INVALID_QUERY)),
        ("PUT", [("cursor", "bad")], (400, {"detail": "Invalid cursor parameter."})),
        ("DELETE", [("limit", "ten")], (400, {"detail": "invalid limit"})),
        ("DELETE", [("cursor", "bad")], (500, DELETE_FAILED)),
    ],
    ids=["put-limit", "put-query", "put-cursor", "delete-limit", "delete-cursor"],
)
@pytest.mark.parametrize("scope", ["organization", "project"])
async def test_a_bulk_search_refuses_in_its_endpoints_words(
    fake_sentry: FakeSentry,
    scope: str,
    method: str,
    params: list[tuple[str, str]],
    expected: tuple[int, Any],
) -> None:
    project = fake_sentry.data.project_slugs(ORG)[0]
    if scope == "organization":
        path, params = f"organizations/{ORG}/issues/", [("project", "-1"), *params]
    else:
        path = f"projects/{ORG}/{project}/issues/"
    body = {"status": "resolved"} if method == "PUT" else None
    before = _states(fake_sentry)
    with anyio.fail_after(10):
        answer = await _call(fake_sentry, method, path, params, body)
    assert answer == expected
    assert _states(fake_sentry) == before


@pytest.mark.parametrize(
    ("method", "expected"), [("PUT", (500, INTERNAL_ERROR)), ("DELETE", (500, DELETE_FAILED))]
)
async def test_a_bulk_search_sorted_by_inbox_refuses_its_terms_uncaught(
    fake_sentry: FakeSentry, method: str, expected: tuple[int, Any]
) -> None:
    """The organization's ``_search`` hands an ``inbox`` sort to ``inbox_search``, whose
    ``InvalidSearchQuery`` neither bulk helper catches: Sentry's 500 for an update, the
    deletes' own."""
    params = [("project", "-1"), ("sort", "inbox"), ("query", "level:error")]
    body = {"status": "resolved"} if method == "PUT" else None
    before = _states(fake_sentry)
    with anyio.fail_after(10):
        answer = await _call(fake_sentry, method, f"organizations/{ORG}/issues/", params, body)
    assert answer == expected
    assert _states(fake_sentry) == before


async def test_a_bulk_delete_names_the_query_that_does_not_parse(fake_sentry: FakeSentry) -> None:
    with anyio.fail_after(10):
        status, body = await _call(
            fake_sentry,
            "DELETE",
            f"organizations/{ORG}/issues/",
            [("project", "-1"), ("query", BAD_QUERY)],
        )
    assert status == 400 and body["detail"].startswith("Error parsing search query: ")


async def test_a_bulk_search_pages_with_the_cursor_and_reads_no_date_range(
    fake_sentry_factory: FakeSentryFactory,
) -> None:
    """The search's first 1000 from the cursor on, whatever ``limit`` says; ``statsPeriod``
    is not read, so even one that does not parse changes nothing."""
    server = fake_sentry_factory.start(orgs=0)
    backend = server.builder.add_organization("acme").add_project("backend")
    issues = [backend.add_issue(f"E{n}: boom").id for n in range(3)]
    # Sorted by date, ties newest id first: a cursor above every score, one row on.
    params = [("query", ""), ("cursor", "99999999999999999:1:0"), ("limit", "1")]
    with anyio.fail_after(10):
        changed = await _call(
            server,
            "PUT",
            "organizations/acme/issues/",
            [*params, ("statsPeriod", "bogus")],
            {"status": "resolved"},
        )
    assert changed[0] == 200 and changed[1]["status"] == "resolved"
    statuses = [_states(server)[issue][0] for issue in issues]
    assert statuses == ["resolved", "resolved", "unresolved"]


# -- a project's bulk change and its environment --------------------------------------------------


@pytest.mark.parametrize("method", ["PUT", "DELETE"])
async def test_a_project_bulk_search_in_an_unknown_environment_changes_nothing(
    fake_sentry: FakeSentry, method: str
) -> None:
    project = fake_sentry.data.project_slugs(ORG)[0]
    body = {"status": "resolved"} if method == "PUT" else None
    before = _states(fake_sentry)
    path = f"projects/{ORG}/{project}/issues/"
    with anyio.fail_after(10):
        unknown = await _call(
            fake_sentry, method, path, [("environment", "nope"), ("query", "")], body
        )
        # Only the last environment is read: this one is unknown too.
        last = await _call(
            fake_sentry,
            method,
            path,
            [("environment", "production"), ("environment", "nope"), ("query", "")],
            body,
        )
    assert unknown == last == (204, None)
    assert _states(fake_sentry) == before


async def test_a_project_bulk_change_by_id_never_reads_the_environment(
    fake_sentry_factory: FakeSentryFactory,
) -> None:
    server = fake_sentry_factory.start(orgs=0)
    backend = server.builder.add_organization("acme").add_project("backend")
    issue = backend.add_issue("E: boom").id
    path = "projects/acme/backend/issues/"
    params = [("id", issue), ("environment", "nope")]
    with anyio.fail_after(10):
        changed = await _call(server, "PUT", path, params, {"status": "resolved"})
        deleted = await _call(server, "DELETE", path, params)
    assert changed[0] == 200 and changed[1]["status"] == "resolved"
    assert deleted == (204, None)
    assert _states(server)[issue] == ("resolved", True)


# -- events-stats ---------------------------------------------------------------------------------


async def test_events_stats_on_an_older_server_takes_several_projects(
    fake_sentry_factory: FakeSentryFactory,
) -> None:
    """``check_global_views=False``: no ``global-views`` needed, unlike Discover."""
    server = fake_sentry_factory.start(orgs=0, profile="older")
    org = server.builder.add_organization("acme", features=["discover-basic"])
    projects = [org.add_project(slug).id for slug in ("web", "api")]
    params = [("statsPeriod", "24h"), *(("project", p) for p in projects)]
    with anyio.fail_after(10):
        stats = await org_get(server, "events-stats/", params, org="acme")
        discover = await org_get(server, "events/", [*params, ("field", "id")], org="acme")
    assert stats[0] == 200 and "data" in stats[1]
    assert discover[:2] == (400, {"detail": "You cannot view events from multiple projects."})


@pytest.mark.parametrize(
    ("period", "delta", "status"),
    [("100d", "0", 400), ("89d", str(2 * 86400), 400), ("24h", "86400", 200)],
)
async def test_events_stats_refuses_a_comparison_starting_before_the_retention(
    fake_sentry: FakeSentry, period: str, delta: str, status: int
) -> None:
    params = [("statsPeriod", period), ("comparisonDelta", delta)]
    with anyio.fail_after(10):
        answer, body, _ = await org_get(fake_sentry, "events-stats/", params)
    assert answer == status
    if status == 400:
        assert body == {"detail": "Comparison period is outside retention window"}


# -- stats_v2 -------------------------------------------------------------------------------------

_USAGE = [("field", "sum(quantity)"), ("category", "error"), ("interval", "1d")]


@pytest.mark.parametrize(
    "ignored",
    [
        [("timeframe", "bogus")],
        [("timeframeStart", "2d")],
        [("statsPeriodStart", "2d"), ("statsPeriodEnd", "1d")],
    ],
    ids=["timeframe", "timeframe-start", "stats-period-start-end"],
)
async def test_stats_v2_reads_no_timeframe_nor_relative_range(
    fake_sentry: FakeSentry, ignored: list[tuple[str, str]]
) -> None:
    with anyio.fail_after(10):
        plain = await org_get(fake_sentry, "stats_v2/", _USAGE)
        answer = await org_get(fake_sentry, "stats_v2/", [*_USAGE, *ignored])
    assert plain[0] == 200
    assert answer[:2] == plain[:2]


@pytest.mark.parametrize(
    ("key_id", "expected"),
    [
        ("abc", (400, {"detail": 'Invalid key: "abc"'})),
        ("1.5", (400, {"detail": 'Invalid key: "1.5"'})),
        ("", None),
        ("7", None),
    ],
)
async def test_stats_v2_refuses_a_key_id_that_is_no_integer(
    fake_sentry: FakeSentry, key_id: str, expected: tuple[int, Any] | None
) -> None:
    with anyio.fail_after(10):
        status, body, _ = await org_get(fake_sentry, "stats_v2/", [*_USAGE, ("key_id", key_id)])
        outcome_first = await org_get(
            fake_sentry, "stats_v2/", [*_USAGE, ("key_id", "abc"), ("outcome", "nope")]
        )
    if expected is None:
        assert status == 200
    else:
        assert (status, body) == expected
    assert outcome_first[:2] == (400, {"detail": 'Invalid outcome: "nope"'})
