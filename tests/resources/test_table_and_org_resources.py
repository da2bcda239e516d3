"""Discover, stats, organizations and projects through the public API against the fake.

Expectations come from ``server.data`` (what the server holds), and the request log
(``server.requests``) shows what went over the wire: parameter names, repeated keys, UTC
datetimes, cursors.
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta, timezone
from itertools import pairwise

import anyio
import msgspec
from resource_helpers import ORG, _events_since, _project, _project_id, _to

from sentry_async import SentryClient
from sentry_async.testing import FakeSentry

# -- discover -------------------------------------------------------------------------------


async def test_discover_rows_and_parameters(fake_sentry: FakeSentry, client: SentryClient) -> None:
    project = _project(fake_sentry)
    expected = _events_since(fake_sentry, project, 7)
    fields = ["id", "title", "timestamp", "project"]
    paginator = client.discover.query(
        ORG, fields=fields, project=project, period="7d", sort="-timestamp", page_size=40
    )
    with anyio.fail_after(15):
        pages = [page async for page in paginator.pages()]
    rows = [row for page in pages for row in page.items]
    assert sorted(row["id"] for row in rows) == sorted(expected)
    # Sentry adds project.name beside an id it serves (the project's slug, as "project").
    assert all(
        list(row) == [*fields, "project.name"] and row["project"] == row["project.name"] == project
        for row in rows
    )
    assert pages[0].meta is not None and pages[0].meta.fields["timestamp"] == "date"
    assert len(pages) == max(1, -(-len(expected) // 40))
    for request in _to(fake_sentry, "/events/"):
        assert request.path == f"/api/0/organizations/{ORG}/events/"
        assert request.params("field") == fields
        assert request.param("per_page") == "40"
        assert request.param("statsPeriod") == "7d"
        assert request.params("sort") == ["-timestamp"]
        assert request.params("project") == [_project_id(fake_sentry, project)]


async def test_discover_aggregates_with_utc_start_end(
    fake_sentry: FakeSentry, client: SentryClient
) -> None:
    project = _project(fake_sentry, 1)
    tokyo = timezone(timedelta(hours=9))
    start = datetime(2026, 5, 20, 21, 0, tzinfo=tokyo)
    end = datetime(2026, 5, 31, 9, 30, 15, tzinfo=tokyo)
    with anyio.fail_after(10):
        rows = await client.discover.query(
            ORG, fields=["environment", "count()"], project=project, start=start, end=end
        ).collect()
    (request,) = _to(fake_sentry, "/events/")
    assert request.param("start") == "2026-05-20T12:00:00"
    assert request.param("end") == "2026-05-31T00:30:15"
    assert request.params("field") == ["environment", "count()"]
    expected = Counter(
        fake_sentry.data.events_by_id[i].environment
        for i in fake_sentry.data.event_ids(
            ORG, project, start=start.timestamp(), end=end.timestamp()
        )
    )
    assert {row["environment"]: row["count()"] for row in rows} == dict(expected)


async def test_discover_raw_rows(fake_sentry: FakeSentry, client: SentryClient) -> None:
    project = _project(fake_sentry)
    with anyio.fail_after(10):
        typed = await client.discover.query(
            ORG, fields=["id", "level"], project=project, period="5d"
        ).collect()
        raw = (
            await client.discover.query(ORG, fields=["id", "level"], project=project, period="5d")
            .raw()
            .collect()
        )
    assert typed and all(isinstance(item, msgspec.Raw) for item in raw)
    assert [msgspec.json.decode(item) for item in raw] == typed


# -- stats ----------------------------------------------------------------------------------


def _env_counts(server: FakeSentry, project: str, days: int) -> Counter[str]:
    return Counter(
        server.data.events_by_id[i].environment for i in _events_since(server, project, days)
    )


async def test_events_stats_single_axis(fake_sentry: FakeSentry, client: SentryClient) -> None:
    project = _project(fake_sentry)
    with anyio.fail_after(10):
        stats = await client.stats.events(ORG, project=project, period="3d", interval="1h")
    (series,) = stats.series
    assert series.name == series.y_axis == "count()" and series.group is None
    assert series.total == len(_events_since(fake_sentry, project, 3))
    assert all(b - a == 3600 for a, b in pairwise(series.timestamps))
    (request,) = _to(fake_sentry, "/events-stats/")
    assert request.params("yAxis") == ["count()"]
    assert request.param("interval") == "1h"
    assert request.param("topEvents") is None


async def test_events_stats_multiple_axes(fake_sentry: FakeSentry, client: SentryClient) -> None:
    project = _project(fake_sentry)
    axes = ["count()", "count_unique(user)"]
    with anyio.fail_after(10):
        stats = await client.stats.events(ORG, y_axis=axes, project=project, period="3d")
    assert [s.name for s in stats.series] == axes
    assert [s.y_axis for s in stats.series] == axes
    assert stats.series[0].total == len(_events_since(fake_sentry, project, 3))
    assert _to(fake_sentry, "/events-stats/")[0].params("yAxis") == axes


async def test_events_stats_top_events(fake_sentry: FakeSentry, client: SentryClient) -> None:
    project = _project(fake_sentry)
    with anyio.fail_after(10):
        stats = await client.stats.events(
            ORG,
            project=project,
            period="3d",
            top_events=2,
            fields=["environment", "count()"],
            order_by="-count()",
        )
    expected = _env_counts(fake_sentry, project, 3)
    assert {s.group: s.total for s in stats.series} == dict(expected)
    assert all(s.y_axis == "count()" and s.name == s.group for s in stats.series)
    assert [s.order for s in stats.series] == list(range(len(stats.series)))
    (request,) = _to(fake_sentry, "/events-stats/")
    assert request.param("topEvents") == "2"
    assert request.params("field") == ["environment", "count()"]
    assert request.param("orderby") == "-count()"


async def test_events_stats_top_events_multiple_axes(
    fake_sentry: FakeSentry, client: SentryClient
) -> None:
    project = _project(fake_sentry)
    axes = ["count()", "count_unique(user)"]
    with anyio.fail_after(10):
        stats = await client.stats.events(
            ORG,
            y_axis=axes,
            project=project,
            period="3d",
            top_events=5,
            fields=["environment", "count()"],
            order_by="-count()",
        )
    expected = _env_counts(fake_sentry, project, 3)
    assert {(s.group, s.y_axis) for s in stats.series} == {
        (env, axis) for env in expected for axis in axes
    }
    counts = {s.group: s.total for s in stats.series if s.y_axis == "count()"}
    assert counts == dict(expected)


async def test_usage_grouped_by_project_has_no_intervals(
    fake_sentry: FakeSentry, client: SentryClient
) -> None:
    with anyio.fail_after(10):
        every = ["error", "transaction"]
        usage = await client.stats.usage(
            ORG, group_by="project", category=every, period="2d", interval="1d"
        )
        by_outcome = await client.stats.usage(
            ORG, group_by=["outcome"], category=every, period="2d"
        )
    assert usage.intervals == []
    assert all(group.series == {} for group in usage.groups)
    org = fake_sentry.data.org(ORG)
    assert org is not None
    # Sentry rounds the start down to the interval: count from the start it reports.
    assert usage.start is not None
    start = datetime.fromisoformat(usage.start.replace("Z", "+00:00")).timestamp()
    assert start <= fake_sentry.data.now_ts - 2 * 86400
    expected = {
        int(p.id): len(fake_sentry.data.event_ids(ORG, p.slug, start=start)) for p in org.projects
    }
    assert {group.by["project"]: group.totals["sum(quantity)"] for group in usage.groups} == {
        k: v for k, v in expected.items() if v
    }
    assert by_outcome.intervals and all(
        len(group.series["sum(quantity)"]) == len(by_outcome.intervals)
        for group in by_outcome.groups
    )
    first = _to(fake_sentry, "/stats_v2/")[0]
    assert first.path == f"/api/0/organizations/{ORG}/stats_v2/"
    assert first.params("groupBy") == ["project"]
    assert first.param("field") == "sum(quantity)"
    assert first.param("interval") == "1d"
    assert first.param("statsPeriod") == "2d"


# -- organizations, projects, and the generic entry points ------------------------------------


async def test_organizations_list_get_and_region(
    fake_sentry: FakeSentry, client: SentryClient
) -> None:
    with anyio.fail_after(10):
        orgs = await client.organizations.list(page_size=1).collect()
        raw = await client.organizations.list().raw().collect()
        org = await client.organizations.get(ORG)
        region = await client.organizations.use_region(ORG)
    assert [o.slug for o in orgs] == fake_sentry.data.org_slugs()
    assert [msgspec.json.decode(item)["slug"] for item in raw] == fake_sentry.data.org_slugs()
    assert org.slug == ORG and org.links is not None
    assert org.links.region_url == fake_sentry.url
    assert region == fake_sentry.url
    assert "global-views" in org.features
    listings = _to(fake_sentry, "/api/0/organizations/")[: len(orgs)]
    assert [r.param("per_page") for r in listings] == ["1"] * len(orgs)


async def test_projects_list_pages_by_page_number(
    fake_sentry: FakeSentry, client: SentryClient
) -> None:
    slugs = fake_sentry.data.project_slugs(ORG)
    with anyio.fail_after(10):
        projects = await client.projects.list(ORG, page_size=2).collect()
        one = await client.projects.get(ORG, slugs[1])
    assert sorted(p.slug for p in projects) == sorted(slugs)
    assert projects[0].is_bookmarked, "bookmarked projects come first"
    assert one.slug == slugs[1] and one.name is not None
    cursors = [r.param("cursor") for r in fake_sentry.requests if r.path.endswith("/projects/")]
    assert cursors[0] is None and cursors[1] == "2:1:0", "OffsetPaginator: limit:page:is_prev"


async def test_request_and_paginate_reach_unwrapped_endpoints(
    fake_sentry: FakeSentry, client: SentryClient
) -> None:
    org = fake_sentry.data.org(ORG)
    assert org is not None
    with anyio.fail_after(10):
        releases = await client.paginate(
            "/organizations/{org}/releases/", path_params={"org": ORG}, page_size=7
        ).collect()
        detail = await client.request("GET", "/organizations/{org}/", path_params={"org": ORG})
    assert len(releases) == 5 * len(org.projects)
    assert len({r["version"] for r in releases}) == len(releases)
    assert detail["slug"] == ORG
    release_requests = [r for r in fake_sentry.requests if r.path.endswith("/releases/")]
    assert len(release_requests) == -(-len(releases) // 7)
    assert all(r.param("per_page") == "7" for r in release_requests)
