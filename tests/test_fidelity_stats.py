"""Usage (``stats_v2``), ``events-stats`` and Discover: defaults, limits and filter values.

Pinned against Sentry's server code: ``get_constrained_date_range`` in
``src/sentry/snuba/sessions_v2.py`` (``MAX_POINTS = 1000``, interval ``1h`` by default, the
range aligned by ``to_intervals``), ``QueryDefinition`` in ``src/sentry/snuba/outcomes.py``
(category required, filter values parsed), ``get_date_range_from_params`` in
``src/sentry/api/utils.py`` (90 days when nothing is given) and ``get_interval_from_range``
in ``src/sentry/utils/dates.py`` (the default ``events-stats`` interval).
"""

from __future__ import annotations

import itertools
from datetime import datetime, timedelta, timezone
from typing import Any

import anyio
import pytest
from _fake_http import org_get
from _local_server import local_app
from aiohttp import web

from sentry_async import Forbidden, SentryClient
from sentry_async.testing import FakeSentry, FakeSentryFactory, Fault, RecordedRequest
from sentry_async.testing._data import OrgRecord

ORG = "org-0"
TOO_MANY = (
    "Your interval and date range would create too many results. "
    "Use a larger interval, or a smaller date range."
)


def _to(server: FakeSentry, suffix: str) -> list[RecordedRequest]:
    return [r for r in server.requests if r.path.endswith(suffix)]


def _usage(*extra: tuple[str, str]) -> list[tuple[str, str]]:
    return [("field", "sum(quantity)"), *extra]


async def _answer(server: FakeSentry, params: list[tuple[str, str]]) -> Any:
    """The body of a ``stats_v2`` answer that must be a 200."""
    status, body, _ = await org_get(server, "stats_v2/", params)
    assert status == 200, body
    return body


def _with_a_non_member_project(server: FakeSentry) -> OrgRecord:
    """``org-0`` with its last project on none of the user's teams."""
    org = server.data.org(ORG)
    assert org is not None
    org.projects[-1].member = False
    return org


# -- stats_v2: points ------------------------------------------------------------------------


async def test_usage_refuses_more_than_a_thousand_points(fake_sentry: FakeSentry) -> None:
    # sessions_v2.get_constrained_date_range: range / interval > MAX_POINTS (1000) -> 400.
    with anyio.fail_after(10):
        refused = [
            await org_get(fake_sentry, "stats_v2/", _usage(("groupBy", "category"), *extra))
            for extra in (
                [("statsPeriod", "90d"), ("interval", "1h")],
                [("statsPeriod", "42d")],
                [],  # 90 days at 1h: the defaults alone are too many
            )
        ]
        status, body, _ = await org_get(
            fake_sentry, "stats_v2/", _usage(("groupBy", "category"), ("statsPeriod", "41d"))
        )
    assert [(status, body) for status, body, _ in refused] == [(400, {"detail": TOO_MANY})] * 3
    assert status == 200 and len(body["intervals"]) == 41 * 24


async def test_usage_defaults_to_ninety_days_aligned_to_the_interval(
    fake_sentry: FakeSentry,
) -> None:
    # get_date_range_from_params (90 days) and to_intervals: start aligned down, end up,
    # one interval per point in [start, end).
    with anyio.fail_after(10):
        status, body, _ = await org_get(
            fake_sentry, "stats_v2/", _usage(("groupBy", "category"), ("interval", "1d"))
        )
    now = fake_sentry.data.now
    assert status == 200
    assert body["start"] == (now - timedelta(days=90)).strftime("%Y-%m-%dT00:00:00Z")
    assert body["end"] == (now + timedelta(days=1)).strftime("%Y-%m-%dT00:00:00Z")
    assert len(body["intervals"]) == 91
    assert body["intervals"][0] == body["start"]


async def test_usage_picks_an_interval_the_server_accepts(
    fake_sentry: FakeSentry, client: SentryClient
) -> None:
    """With no interval the client asks the smallest usual one that stays within 1000 points
    (Sentry's own default, 1h, is too fine for its own default range of 90 days)."""
    start = datetime(2026, 3, 1, tzinfo=fake_sentry.data.now.tzinfo)
    with anyio.fail_after(10):
        default = await client.stats.usage(ORG, group_by="category")
        month = await client.stats.usage(ORG, group_by="category", period="30d")
        two_months = await client.stats.usage(ORG, group_by="category", period="60d")
        absolute = await client.stats.usage(
            ORG, group_by="category", start=start, end=start + timedelta(days=20)
        )
        chosen = await client.stats.usage(ORG, group_by="category", period="2d", interval="1d")
    sent = [r.param("interval") for r in _to(fake_sentry, "/stats_v2/")]
    assert sent == ["4h", "1h", "2h", "1h", "1d"]
    assert default.groups and len(default.intervals or []) <= 1000
    assert len(month.intervals or []) == 720
    assert two_months.groups and absolute.intervals and chosen.intervals
    with pytest.raises(ValueError, match="1000"):
        await client.stats.usage(ORG, group_by="category", period="90d", interval="1h")
    assert len(_to(fake_sentry, "/stats_v2/")) == 5


async def test_usage_counts_points_over_the_range_aligned_to_the_interval(
    fake_sentry_factory: FakeSentryFactory,
) -> None:
    """Sentry counts the range after ``to_intervals`` aligns it outwards: a range that does
    not start on an interval boundary spans one interval more. A period ends at the
    server's clock, unknown to the client, so it may; ``start``/``end`` are counted."""
    server = fake_sentry_factory.start(
        scale="small", now=datetime(2026, 6, 1, 12, 30, tzinfo=timezone.utc)
    )
    hour = datetime(2026, 3, 1, tzinfo=timezone.utc)
    async with server.client() as client:
        with anyio.fail_after(10):
            fits = await client.stats.usage(
                ORG, group_by="category", period="999h", interval="1h"
            )
            aligned = await client.stats.usage(
                ORG,
                group_by="category",
                start=hour,
                end=hour + timedelta(hours=1000),
                interval="1h",
            )
        assert len(fits.intervals) == 1000 and len(aligned.intervals) == 1000
        late = hour + timedelta(minutes=30)
        for refused in (
            {"period": "1000h"},
            {"start": late, "end": late + timedelta(hours=1000)},
        ):
            with pytest.raises(ValueError, match="1000"):
                await client.stats.usage(ORG, group_by="category", interval="1h", **refused)
    assert len(_to(server, "/stats_v2/")) == 2, "refused before sending"


async def test_usage_accepts_minute_intervals_and_refuses_in_sentrys_words(
    fake_sentry: FakeSentry,
) -> None:
    # outcomes.QueryDefinition: allow_minute_resolution=True, so get_constrained_date_range
    # takes any multiple of a minute that is at most a day and divides it (a shorter one
    # reads the raw outcomes table); an interval that does not parse counts as 1h.
    def query(interval: str) -> list[tuple[str, str]]:
        return _usage(("groupBy", "category"), ("statsPeriod", "3h"), ("interval", interval))

    with anyio.fail_after(10):
        accepted = {
            i: await org_get(fake_sentry, "stats_v2/", query(i))
            for i in ("5m", "1800s", "90m", "bogus")
        }
        refused = {
            i: await org_get(fake_sentry, "stats_v2/", query(i))
            for i in ("90s", "30s", "0", "2d", "7m")
        }
        no_field = await org_get(
            fake_sentry, "stats_v2/", [("groupBy", "category"), ("statsPeriod", "3h")]
        )
    steps = {}
    for interval, (status, body, _) in accepted.items():
        assert status == 200, (interval, body)
        stamps = [datetime.fromisoformat(s.replace("Z", "+00:00")) for s in body["intervals"]]
        steps[interval] = {int((b - a).total_seconds()) for a, b in itertools.pairwise(stamps)}
    assert steps == {"5m": {300}, "1800s": {1800}, "90m": {5400}, "bogus": {3600}}
    assert len(accepted["5m"][1]["intervals"]) == 36
    minimum = "The interval has to be a multiple of the minimum interval of one minute."
    assert {i: (status, body) for i, (status, body, _) in refused.items()} == {
        "90s": (400, {"detail": minimum}),
        "30s": (400, {"detail": minimum}),
        "0": (400, {"detail": minimum}),
        "2d": (400, {"detail": "The interval has to be less than one day."}),
        "7m": (400, {"detail": "The interval should divide one day without a remainder."}),
    }
    assert no_field[:2] == (400, {"detail": 'At least one "field" is required.'})


async def test_usage_without_projects_counts_the_whole_organization(
    fake_sentry: FakeSentry,
) -> None:
    # OrganizationStatsEndpointV2._is_org_total_query: no project ids (or -1) and "project"
    # not in groupBy -> no project condition, whatever projects the user is a member of.
    org = _with_a_non_member_project(fake_sentry)
    query = _usage(("groupBy", "category"), ("category", "error"), ("statsPeriod", "14d"))

    async def errors(*projects: str) -> int:
        body = await _answer(fake_sentry, [*query, *(("project", p) for p in projects)])
        return sum(g["totals"]["sum(quantity)"] for g in body["groups"])

    with anyio.fail_after(10):
        whole = await errors(*(p.id for p in org.projects))
        members = await errors(*(p.id for p in org.projects if p.member))
        unnamed = await errors()
        every = await errors("-1")
    assert whole > members
    assert unnamed == every == whole


async def test_usage_reads_the_last_group_by_for_an_organization_total(
    fake_sentry: FakeSentry,
) -> None:
    # _is_org_total_query tests `"project" not in request.GET.get("groupBy")`: the last
    # groupBy value only. Grouped by project last, no ids mean the member projects.
    org = _with_a_non_member_project(fake_sentry)

    async def projects(*group_by: str) -> set[int]:
        params = _usage(*(("groupBy", g) for g in group_by), ("statsPeriod", "30d"))
        return {g["by"]["project"] for g in (await _answer(fake_sentry, params))["groups"]}

    with anyio.fail_after(10):
        project_last = await projects("category", "project")
        project_first = await projects("project", "category")
    assert project_last == {int(p.id) for p in org.projects if p.member}
    assert project_first == {int(p.id) for p in org.projects}


# -- stats_v2: projects the user can access ---------------------------------------------------


def _close_membership(server: FakeSentry) -> tuple[list[str], str]:
    """``org-0`` without open membership, its last project on none of the user's teams:
    the ids the user can access, and the one it cannot."""
    org = _with_a_non_member_project(server)
    org.open_membership = False
    return [p.id for p in org.projects[:-1]], org.projects[-1].id


async def test_fake_refuses_projects_the_user_cannot_access(fake_sentry: FakeSentry) -> None:
    # OrganizationEndpoint._get_projects_by_id: explicit ids are kept if
    # access.has_project_access (a team member, or any project with open membership,
    # `allow_joinleave`), else PermissionDenied; -1 alone is every accessible project.
    mine, theirs = _close_membership(fake_sentry)
    by_project = _usage(("groupBy", "category"), ("groupBy", "project"), ("statsPeriod", "30d"))
    with anyio.fail_after(10):
        refused = [
            await org_get(fake_sentry, "stats_v2/", [*by_project, *extra])
            for extra in (
                [("project", theirs)],
                [("project", mine[0]), ("project", theirs)],
                [("project", "-1"), ("project", mine[0])],
            )
        ]
        every = await _answer(fake_sentry, [*by_project, ("project", "-1")])
        listed = await org_get(fake_sentry, "projects/", [])
        _with_a_non_member_project(fake_sentry).open_membership = True
        opened = await _answer(fake_sentry, [*by_project, ("project", theirs)])
    denied = (403, {"detail": "You do not have permission to perform this action."})
    assert [(status, body) for status, body, _ in refused] == [denied] * 3
    assert {g["by"]["project"] for g in every["groups"]} == {int(p) for p in mine}
    assert {p["id"]: (p["hasAccess"], p["isMember"]) for p in listed[1]} == {
        **dict.fromkeys(mine, (True, True)),
        theirs: (False, False),
    }
    assert {g["by"]["project"] for g in opened["groups"]} == {int(theirs)}


async def test_usage_by_project_asks_only_for_projects_the_user_can_access(
    fake_sentry: FakeSentry, client: SentryClient
) -> None:
    """Every project "of the org" for a project grouping means every one the user can
    access: ``-1`` in one request (Sentry picks them), and in batches the ids the projects
    list marks ``hasAccess``; naming another is a 403."""
    mine, _ = _close_membership(fake_sentry)
    with anyio.fail_after(10):
        unnamed = await client.stats.usage(ORG, group_by=["project", "category"], period="30d")
        every = await client.stats.usage(
            ORG, group_by=["project", "category"], period="30d", project=-1
        )
        batched = await client.stats.usage(
            ORG, group_by="project", category="error", period="30d", project_batch=1
        )
    for usage in (unnamed, every, batched):
        assert {g.by["project"] for g in usage.groups} == {int(p) for p in mine}
    sent = [r.params("project") for r in _to(fake_sentry, "/stats_v2/")]
    assert sent[:2] == [["-1"], ["-1"]]
    assert sorted(sent[2:]) == sorted([p] for p in mine)


async def test_usage_by_project_lets_sentry_pick_when_the_list_does_not_say() -> None:
    """A projects list without ``hasAccess`` cannot tell which projects the user may name:
    ``-1`` (every accessible project) lets Sentry pick them when one request holds them
    all; past ``project_batch`` they are named, as the batches need."""
    sent: list[list[str]] = []

    async def projects(request: web.Request) -> web.Response:
        return web.json_response([{"id": "11", "slug": "api"}, {"id": "12", "slug": "web"}])

    async def stats(request: web.Request) -> web.Response:
        sent.append(request.query.getall("project", []))
        return web.json_response({"groups": []})

    app = web.Application()
    app.router.add_get("/api/0/organizations/{org}/projects/", projects)
    app.router.add_get("/api/0/organizations/{org}/stats_v2/", stats)
    async with local_app(app) as url, SentryClient("t", base_url=url) as sentry:
        with anyio.fail_after(10):
            await sentry.stats.usage("acme", group_by="project", category="error", period="1d")
            await sentry.stats.usage(
                "acme", group_by="project", category="error", period="1d", project_batch=1
            )
    assert sent[0] == ["-1"]
    assert sorted(sent[1:]) == [["11"], ["12"]]


# -- stats_v2: category and filter values ---------------------------------------------------


async def test_usage_needs_a_category_filter_or_group(
    fake_sentry: FakeSentry, client: SentryClient
) -> None:
    # outcomes.QueryDefinition: no category filter and no category groupBy -> InvalidQuery.
    with anyio.fail_after(10):
        status, body, _ = await org_get(
            fake_sentry, "stats_v2/", _usage(("groupBy", "outcome"), ("statsPeriod", "14d"))
        )
    assert (status, body) == (400, {"detail": "Query must have category as groupby or filter"})
    with pytest.raises(ValueError, match=r"category=.*group_by"):
        await client.stats.usage(ORG, group_by="outcome", period="14d")
    assert len(_to(fake_sentry, "/stats_v2/")) == 1, "refused before sending"
    with anyio.fail_after(10):
        errors = await client.stats.usage(ORG, group_by="outcome", category="error", period="14d")
    assert errors.groups and all(set(g.by) == {"outcome"} for g in errors.groups)


async def test_usage_without_group_by_is_one_group(
    fake_sentry: FakeSentry, client: SentryClient
) -> None:
    # outcomes.QueryDefinition: `group_by or []`, only a category (filter or group) is
    # required; massage_sessions_result then answers one group with `by: {}`.
    with anyio.fail_after(10):
        status, body, _ = await org_get(
            fake_sentry, "stats_v2/", _usage(("category", "error"), ("statsPeriod", "14d"))
        )
        refused = await org_get(fake_sentry, "stats_v2/", _usage(("statsPeriod", "14d")))
        total = await client.stats.usage(ORG, category="error", period="14d", interval="1d")
        empty = await client.stats.usage(ORG, group_by=[], category="error", period="14d")
        by_outcome = await client.stats.usage(
            ORG, group_by="outcome", category="error", period="14d", interval="1d"
        )
    assert status == 200, body
    assert [g["by"] for g in body["groups"]] == [{}]
    assert refused[:2] == (400, {"detail": "Query must have category as groupby or filter"})
    assert [g.by for g in total.groups] == [{}] == [g.by for g in empty.groups]
    (group,) = total.groups
    assert group.totals["sum(quantity)"] == sum(
        g.totals["sum(quantity)"] for g in by_outcome.groups
    ) > 0
    assert len(group.series["sum(quantity)"]) == len(total.intervals)
    assert _to(fake_sentry, "/stats_v2/")[2].params("groupBy") == []
    with pytest.raises(ValueError, match=r"category=.*group_by"):
        await client.stats.usage(ORG, period="14d")


async def test_usage_filter_values_are_checked(fake_sentry: FakeSentry) -> None:
    # outcomes.CategoryDimension / OutcomeDimension.resolve_filter.
    cases = {
        "category=errors": (
            [("groupBy", "outcome"), ("category", "errors")],
            'Invalid category: "errors"',
        ),
        "outcome=dropped": (
            [("groupBy", "category"), ("outcome", "dropped")],
            'Invalid outcome: "dropped"',
        ),
        "attachment with another": (
            [("groupBy", "outcome"), ("category", "attachment"), ("category", "error")],
            "if filtering by attachment no other category may be present",
        ),
    }
    with anyio.fail_after(10):
        for name, (params, detail) in cases.items():
            status, body, _ = await org_get(
                fake_sentry, "stats_v2/", _usage(*params, ("statsPeriod", "14d"))
            )
            assert (status, body) == (400, {"detail": detail}), name
        status, body, _ = await org_get(
            fake_sentry,
            "stats_v2/",
            _usage(("groupBy", "category"), ("outcome", "Rate_Limited"), ("statsPeriod", "30d")),
        )
    assert status == 200 and body["groups"]
    assert {g["by"]["category"] for g in body["groups"]} == {"error"}


async def test_usage_reads_one_reason(fake_sentry: FakeSentry, client: SentryClient) -> None:
    # outcomes.QueryDefinition.from_query_dict: reason=query.get("reason"), the last value.
    group = [("groupBy", "category"), ("groupBy", "reason"), ("statsPeriod", "30d")]
    with anyio.fail_after(10):
        both = await org_get(
            fake_sentry,
            "stats_v2/",
            _usage(*group, ("reason", "key_quota"), ("reason", "browser-extensions")),
        )
        last = await org_get(fake_sentry, "stats_v2/", _usage(*group, ("reason", "browser-extensions")))
    assert both[0] == 200 and both[1]["groups"] == last[1]["groups"] != []
    with pytest.raises(ValueError, match="one reason"):
        await client.stats.usage(ORG, group_by="category", reason=["key_quota", "other"])
    with anyio.fail_after(10):
        await client.stats.usage(ORG, group_by="category", reason=["key_quota"], period="1d")
    assert _to(fake_sentry, "/stats_v2/")[-1].params("reason") == ["key_quota"]


# -- events-stats and Discover --------------------------------------------------------------


@pytest.mark.parametrize(
    ("period", "step"),
    [
        ("60d", 86400),
        ("59d", 4 * 3600),
        ("30d", 4 * 3600),
        ("14d", 3600),
        ("25h", 3600),
        # quantize_date_params rounds 24h out to 24h and a minute: over a day.
        ("24h", 3600),
        ("23h", 300),
        ("2h", 300),
        ("1h", 900),
        (None, 86400),
    ],
)
async def test_events_stats_default_interval_follows_the_range(
    fake_sentry: FakeSentry, period: str | None, step: int
) -> None:
    # utils/dates.get_interval_from_range(date_range, high_fidelity=False), over the range
    # quantize_date_params rounded out (a minute more; 15 minutes from 30 days up).
    params = [("statsPeriod", period)] if period else []
    with anyio.fail_after(10):
        status, body, _ = await org_get(fake_sentry, "events-stats/", params)
    assert status == 200
    stamps = [point[0] for point in body["data"]]
    assert {b - a for a, b in itertools.pairwise(stamps)} == {step}


async def test_events_stats_and_discover_default_to_ninety_days(
    fake_sentry: FakeSentry, client: SentryClient
) -> None:
    # OrganizationEndpoint.get_filter_params -> get_date_range_from_params(optional=False).
    now = fake_sentry.data.now_ts
    with anyio.fail_after(10):
        stats = await org_get(fake_sentry, "events-stats/", [])
        rows = await client.discover.query(
            ORG, fields=["timestamp"], sort="timestamp", limit=1
        ).collect()
    assert stats[0] == 200
    assert stats[1]["start"] == int(now - 90 * 86400) // 86400 * 86400
    oldest = datetime.fromisoformat(rows[0]["timestamp"]).timestamp()
    assert now - 90 * 86400 <= oldest < now - 14 * 86400


async def test_a_failed_batch_of_a_usage_by_project_raises_its_own_error(
    fake_sentry: FakeSentry, client: SentryClient
) -> None:
    """A usage by project sent in several batches raises the error of a batch that failed
    as one batch would (a typed ``SentryError``), not an ``ExceptionGroup`` around it."""
    fake_sentry.faults.add(
        Fault("status", status=403, path="stats_v2", times=1, body={"detail": "No permission"})
    )
    with pytest.raises(Forbidden, match="No permission"):
        await client.stats.usage(
            ORG,
            group_by=["project"],
            field="sum(quantity)",
            category="error",
            period="1d",
            project_batch=1,
        )
