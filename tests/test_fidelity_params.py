"""Page sizes, every parameter the endpoints read, older servers, and usage at scale.

Pinned against Sentry's server code: ``Endpoint.get_per_page`` ("Invalid per_page value.
Cannot exceed 100."), Discover's ``max_per_page = 9999`` for ``logs``/``tracemetrics``,
the parameters each endpoint reads, and the multi-project refusals of servers before
September 2025 (getsentry/sentry #99074, #99233 removed them).
"""

from __future__ import annotations

import anyio
import pytest

from sentry_async import (
    BadRequest,
    MultiProjectRefused,
    RateLimited,
    RetryPolicy,
    SentryClient,
)
from sentry_async.testing import FakeSentry, Fault, RecordedRequest
from sentry_async.testing import _routes_stats as fake_stats

ORG = "org-0"  # has global-views
SINGLE = "org-1"  # does not
FAST = RetryPolicy(attempts=2, backoff_base=0.01, backoff_max=0.05)


def _to(server: FakeSentry, suffix: str) -> list[RecordedRequest]:
    return [r for r in server.requests if r.path.endswith(suffix)]


# -- page sizes -----------------------------------------------------------------------------


async def test_discover_page_sizes_by_dataset(
    fake_sentry: FakeSentry, client: SentryClient
) -> None:
    with anyio.fail_after(10):
        await client.discover.query(ORG, fields=["id"], dataset="logs", page_size=9999).collect()
        await client.discover.query(
            ORG, fields=["id"], dataset="tracemetrics", page_size=5000
        ).collect()
    assert [r.param("per_page") for r in _to(fake_sentry, "/events/")] == ["9999", "5000"]
    for dataset in (None, "errors", "transactions"):
        with pytest.raises(ValueError, match="from 1 to 100"):
            client.discover.query(ORG, fields=["id"], dataset=dataset, page_size=101)
    with pytest.raises(ValueError, match="from 1 to 9999"):
        client.discover.query(ORG, fields=["id"], dataset="logs", page_size=10_000)


async def test_the_fake_refuses_large_pages_in_sentrys_words(
    fake_sentry: FakeSentry, client: SentryClient
) -> None:
    """Current servers' message (``Endpoint.get_per_page``); older ones refused only values
    over 100, in other words. The client never sends such a size on any version."""
    with anyio.fail_after(10), pytest.raises(BadRequest) as caught:
        await client.request(
            "GET",
            "/organizations/{org}/events/",
            path_params={"org": ORG},
            params={"field": "id", "per_page": 101},
        )
    assert caught.value.detail == "Invalid per_page value. Cannot exceed 100."


# -- every parameter ------------------------------------------------------------------------


async def test_every_parameter_goes_out(fake_sentry: FakeSentry, client: SentryClient) -> None:
    issue_id = fake_sentry.data.issue_ids(ORG)[0]
    project = fake_sentry.data.project_slugs(ORG)[0]
    with anyio.fail_after(15):
        await client.issues.list(
            ORG, group_stats_period="auto", short_id_lookup=True, limit=1
        ).collect()
        await client.events.for_issue(ORG, issue_id, sample=True, limit=1).collect()
        await client.events.for_project(ORG, project, sample=True, limit=1).collect()
        await client.events.latest(ORG, issue_id, environment="production", query="failure")
        await client.events.oldest(ORG, issue_id, period="90d")
        await client.organizations.list(sort_by="members").collect()
        await client.projects.list(ORG, collapse="latestDeploys", all_projects=True).collect()
        # The fake does not evaluate aggregate conditions: a 400 naming the term, recorded.
        with pytest.raises(BadRequest, match=r"count\(\):>1"):
            await client.discover.query(
                ORG,
                fields=["title", "count()"],
                query="count():>1",
                allow_aggregate_conditions=True,
                no_pagination=True,
            ).collect()
        await client.stats.events(
            ORG, top_events=2, fields=["environment", "count()"], sort="-count()"
        )
        await client.stats.events(ORG, top_events=2, fields=["environment"])
        await client.stats.usage(
            ORG, group_by="category", field=["sum(quantity)", "sum(times_seen)"]
        )
    issues = _to(fake_sentry, "/issues/")[0]
    assert (issues.param("groupStatsPeriod"), issues.param("shortIdLookup")) == ("auto", "1")
    assert all(r.param("sample") == "1" for r in _to(fake_sentry, "/events/")[:2])
    latest = _to(fake_sentry, "/events/latest/")[0]
    assert latest.param("environment") == "production"
    assert latest.param("query") == "failure"
    assert _to(fake_sentry, "/events/oldest/")[0].param("statsPeriod") == "90d"
    assert _to(fake_sentry, "/api/0/organizations/")[-1].param("sortBy") == "members"
    listing = _to(fake_sentry, "/projects/")[-1]
    assert listing.param("collapse") == "latestDeploys" and listing.param("all_projects") == "1"
    discover = _to(fake_sentry, f"/{ORG}/events/")[-1]
    assert discover.param("allowAggregateConditions") == "1"
    assert discover.param("noPagination") == "1"
    top, unordered = _to(fake_sentry, "/events-stats/")
    assert top.param("sort") == "-count()" and top.param("orderby") is None
    assert unordered.param("sort") is None and unordered.param("orderby") is None
    assert _to(fake_sentry, "/stats_v2/")[0].params("field") == [
        "sum(quantity)",
        "sum(times_seen)",
    ]


async def test_tag_value_sorts_are_the_three_the_server_reads(client: SentryClient) -> None:
    """Anything but ``date``, ``age``, ``count`` silently orders by id on the server."""
    for sort in ("-date", "id", "-count"):
        with pytest.raises(ValueError, match="date, age, count"):
            client.issues.tag_values(ORG, 1, "level", sort=sort)
    for sort in ("date", "age", "count"):
        client.issues.tag_values(ORG, 1, "level", sort=sort)


async def test_latest_event_is_chosen_among_the_matching_ones(
    fake_sentry: FakeSentry, client: SentryClient
) -> None:
    data = fake_sentry.data
    record = next(
        data.issues_by_id[i]
        for i in data.issue_ids(ORG)
        if data.issues_by_id[i].events[0].environment == "production"
        and any(e.environment == "staging" for e in data.issues_by_id[i].events)
    )
    issue_id = record.id
    staging = [e for e in record.events if e.environment == "staging"]
    with anyio.fail_after(10):
        latest = await client.events.latest(ORG, issue_id, environment="staging")
    assert latest.event_id == staging[0].event_id


# -- older servers --------------------------------------------------------------------------


async def test_older_servers_refuse_several_projects_with_a_typed_error(
    fake_sentry_factory: object,
) -> None:
    """Pins servers before September 2025; current ones answer (see the next test)."""
    server: FakeSentry = await fake_sentry_factory(profile="older")  # type: ignore[operator]
    org = server.data.org(SINGLE)
    assert org is not None and "global-views" not in org.features
    one = org.projects[0].slug
    async with SentryClient(server.token, base_url=server.url, retry=FAST) as client:
        with anyio.fail_after(15):
            with pytest.raises(MultiProjectRefused, match="fan_out") as issues:
                await client.issues.list(SINGLE).collect()  # no project: every project
            with pytest.raises(MultiProjectRefused) as discover:
                await client.discover.query(
                    SINGLE, fields=["id"], project=[p.slug for p in org.projects[:2]]
                ).collect()
            # One project per request works; so does an org with global-views.
            assert await client.issues.list(SINGLE, project=one, query="").collect()
            assert await client.issues.list(ORG, limit=1).collect()
    assert issues.value.status == discover.value.status == 400
    assert str(discover.value.detail) == "You cannot view events from multiple projects."
    assert isinstance(issues.value, BadRequest)


async def test_current_servers_allow_several_projects(fake_sentry: FakeSentry) -> None:
    async with SentryClient(fake_sentry.token, base_url=fake_sentry.url) as client:
        with anyio.fail_after(10):
            assert await client.issues.list(SINGLE, query="").collect()


async def test_older_servers_rate_limit_body_and_headers(fake_sentry_factory: object) -> None:
    """Older 429 bodies were a bare JSON string; self-hosted sends no rate-limit headers."""
    server: FakeSentry = await fake_sentry_factory(profile="older")  # type: ignore[operator]
    server.faults.add(Fault("rate_limit", path=r"/organizations/$", times=None, reset_in=None))
    async with SentryClient(server.token, base_url=server.url, retry=FAST) as client:
        with anyio.fail_after(15):
            response = await client.send("GET", "/organizations/{org}/", path_params={"org": ORG})
            with pytest.raises(RateLimited) as caught:
                await client.request("GET", "/organizations/")
    assert response.status == 200
    assert not any(k.lower().startswith("x-sentry-rate-limit") for k in response.headers)
    assert isinstance(caught.value.data, str) and "too frequently" in caught.value.data
    assert caught.value.rate_limit is None or caught.value.rate_limit.limit is None


# -- usage at scale -------------------------------------------------------------------------


async def test_usage_by_project_runs_in_batches_and_merges(
    fake_sentry: FakeSentry, client: SentryClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Grouped by project, one request over many projects can lose rows."""
    with anyio.fail_after(10):
        whole = await client.stats.usage(ORG, group_by=["project", "category", "outcome"])
    expected = {tuple(sorted(g.by.items())): g.totals for g in whole.groups}
    assert len(expected) > 6
    monkeypatch.setattr(fake_stats, "STATS_ROW_LIMIT", 6)
    fake_sentry.reset_log()
    with anyio.fail_after(10):
        lossy = await client.stats.usage(
            ORG, group_by=["project", "category", "outcome"], project_batch=100
        )
        batched = await client.stats.usage(
            ORG, group_by=["project", "category", "outcome"], project_batch=1
        )
    assert len(lossy.groups) == 6
    assert {tuple(sorted(g.by.items())): g.totals for g in batched.groups} == expected
    sent = _to(fake_sentry, "/stats_v2/")[1:]
    assert sorted(p for r in sent for p in r.params("project")) == sorted(
        p.id
        for p in fake_sentry.data.org(ORG).projects  # type: ignore[union-attr]
    )
    assert all(len(r.params("project")) == 1 for r in sent)
