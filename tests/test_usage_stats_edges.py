"""Usage (``stats_v2``) answers at their edges: a null ``reason``, projects created or
deleted between calls, a project named twice, an answer with no group, and what an
organization total covers.

Pinned against Sentry's server code: ``_outcomes_dataset`` and ``ReasonDimension`` in
``src/sentry/snuba/outcomes.py`` (below an hour the raw outcomes, whose ``reason`` is null
for an outcome without one, passed through as it is), ``OrganizationEndpoint.get_projects``
(a named id that is no accessible project refuses the whole query; ``-1`` is every
accessible project at query time; ``project`` read as a set) and
``OrganizationStatsEndpointV2._is_org_total_query`` (no project, or ``-1``, and the last
``groupBy`` not ``project``: no project condition at all).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Awaitable, Callable, Sequence
from functools import partial
from typing import Any

import anyio
import msgspec
import pyarrow as pa
import pytest
from _fake_http import org_get
from _local_server import local_app
from aiohttp import web

from sentry_async import SentryClient
from sentry_async.cli import main
from sentry_async.models import UsageStats
from sentry_async.testing import FakeSentry, RecordedRequest

ORG = "org-0"
TOKEN = "sntrys_usage-edges-token-0123456789abcdef0123456789abcdef"
Factory = Callable[..., Awaitable[FakeSentry]]


def _to(server: FakeSentry, suffix: str) -> list[RecordedRequest]:
    return [r for r in server.requests if r.path.endswith(suffix)]


# -- a null reason below an hour ---------------------------------------------------------


RAW_OUTCOMES = {
    "start": "2021-03-14T11:15:00Z",
    "end": "2021-03-14T11:45:00Z",
    "intervals": ["2021-03-14T11:15:00Z", "2021-03-14T11:30:00Z"],
    "groups": [
        {"by": {"outcome": "accepted", "reason": None},
         "totals": {"sum(quantity)": 6}, "series": {"sum(quantity)": [6, 0]}},
        {"by": {"outcome": "filtered", "reason": "browser-extensions"},
         "totals": {"sum(quantity)": 2}, "series": {"sum(quantity)": [0, 2]}},
    ],
}  # fmt: skip
"""Sentry's answer to ``groupBy=outcome&groupBy=reason&interval=15m``: ``outcomes_raw``
keeps ``reason`` null for an accepted outcome."""


async def test_a_null_reason_below_an_hour_decodes_as_none() -> None:
    async def stats(request: web.Request) -> web.Response:
        return web.json_response(RAW_OUTCOMES)

    app = web.Application()
    app.router.add_get("/api/0/organizations/{org}/stats_v2/", stats)
    async with local_app(app) as url, SentryClient("t", base_url=url) as sentry:
        with anyio.fail_after(10):
            usage = await sentry.stats.usage(
                "acme", group_by=["outcome", "reason"], category="error", period="1h",
                interval="15m",
            )  # fmt: skip
    assert [g.by for g in usage.groups] == [
        {"outcome": "accepted", "reason": None},
        {"outcome": "filtered", "reason": "browser-extensions"},
    ]
    reasons = usage.to_arrow().column("reason").to_pylist()
    assert reasons == [None, None, "browser-extensions", "browser-extensions"]


async def test_the_fake_answers_a_null_reason_below_an_hour_and_none_from_an_hour(
    fake_sentry: FakeSentry, client: SentryClient
) -> None:
    """Hourly and daily outcomes are written with ``ifNull(reason, 'none')``, the raw ones
    as they came: a ``reason=none`` filter then matches accepted outcomes from an hour up,
    and nothing below."""
    query = [("field", "sum(quantity)"), ("groupBy", "outcome"), ("groupBy", "reason"),
             ("category", "error"), ("statsPeriod", "1d")]  # fmt: skip

    async def reasons(interval: str, *extra: tuple[str, str]) -> dict[str, Any]:
        status, body, _ = await org_get(
            fake_sentry, "stats_v2/", [*query, ("interval", interval), *extra]
        )
        assert status == 200, body
        return {g["by"]["outcome"]: g["by"]["reason"] for g in body["groups"]}

    with anyio.fail_after(10):
        raw = await reasons("15m")
        hourly = await reasons("1h")
        none_raw = await reasons("15m", ("reason", "none"))
        none_hourly = await reasons("1h", ("reason", "none"))
        decoded = await client.stats.usage(
            ORG, group_by=["outcome", "reason"], category="error", period="1d", interval="15m"
        )
    assert raw["accepted"] is None
    assert hourly["accepted"] == "none"
    assert raw["filtered"] == hourly["filtered"] == "browser-extensions"
    assert none_raw == {}
    assert none_hourly == {"accepted": "none"}
    assert {g.by["outcome"]: g.by["reason"] for g in decoded.groups}["accepted"] is None


# -- projects created and deleted between calls ------------------------------------------


class _Org:
    """A Sentry with projects that come and go: ``stats_v2`` checks named ids as
    ``_get_projects_by_id`` does (one that is not an active project: 403 for the query)."""

    def __init__(self, projects: dict[str, str]) -> None:
        self.projects = projects
        self.usage = {"1": 10, "2": 20, "3": 30}
        self.sent: list[list[str]] = []
        self.lists = 0

    def app(self) -> web.Application:
        async def projects(request: web.Request) -> web.Response:
            self.lists += 1
            return web.json_response(
                [{"id": i, "slug": s, "hasAccess": True, "isMember": True}
                 for i, s in self.projects.items()]
            )  # fmt: skip

        async def stats(request: web.Request) -> web.Response:
            asked = request.query.getall("project", [])
            self.sent.append(asked)
            if asked in ([], ["-1"]):
                ids = list(self.projects)
            elif not set(asked) <= set(self.projects):
                return web.json_response(
                    {"detail": "You do not have permission to perform this action."}, status=403
                )
            else:
                ids = asked
            groups = [{"by": {"project": int(i)}, "totals": {"sum(quantity)": self.usage[i]}}
                      for i in ids]  # fmt: skip
            return web.json_response({"start": "2021-03-13T00:00:00Z", "groups": groups})

        app = web.Application()
        app.router.add_get("/api/0/organizations/{org}/projects/", projects)
        app.router.add_get("/api/0/organizations/{org}/stats_v2/", stats)
        return app


def _by_project(usage: UsageStats) -> dict[Any, Any]:
    return {g.by["project"]: g.totals["sum(quantity)"] for g in usage.groups}


@pytest.mark.parametrize("project", [None, -1])
async def test_usage_by_project_covers_the_projects_of_the_moment(project: int | None) -> None:
    """One request holds them all: ``-1``, so that Sentry picks the projects when it runs
    the query, not a list cached at the first call."""
    org = _Org({"1": "alpha", "2": "beta"})
    kw: dict[str, Any] = {"group_by": "project", "category": "error", "period": "1d"}
    async with local_app(org.app()) as url, SentryClient("t", base_url=url) as sentry:
        with anyio.fail_after(10):
            first = await sentry.stats.usage("acme", project=project, **kw)
            del org.projects["2"]
            org.projects["3"] = "gamma"
            second = await sentry.stats.usage("acme", project=project, **kw)
    assert _by_project(first) == {1: 10, 2: 20}
    assert _by_project(second) == {1: 10, 3: 30}
    assert org.sent == [["-1"], ["-1"]]
    assert org.lists == 1


async def test_batched_usage_by_project_reads_the_projects_list_again() -> None:
    """Named in batches, the ids come from the projects list as it is at this call: a
    deleted project is not named (Sentry would refuse the whole query), a new one is."""
    org = _Org({"1": "alpha", "2": "beta"})
    kw: dict[str, Any] = {
        "group_by": "project", "category": "error", "period": "1d", "project_batch": 1
    }  # fmt: skip
    async with local_app(org.app()) as url, SentryClient("t", base_url=url) as sentry:
        with anyio.fail_after(10):
            first = await sentry.stats.usage("acme", **kw)
            del org.projects["2"]
            org.projects["3"] = "gamma"
            second = await sentry.stats.usage("acme", **kw)
    assert _by_project(first) == {1: 10, 2: 20}
    assert _by_project(second) == {1: 10, 3: 30}
    assert sorted(org.sent[:2]) == [["1"], ["2"]]
    assert sorted(org.sent[2:]) == [["1"], ["3"]]
    assert org.lists == 2, "one walk of the projects list per call, none twice"


async def test_every_project_grouped_with_another_key_is_every_accessible_one(
    fake_sentry: FakeSentry, client: SentryClient
) -> None:
    """Sentry reads only the last ``groupBy`` to tell an organization total (no project
    condition: projects the user cannot access too) from a query over projects: ``-1`` goes
    with ``project`` last, whatever the order asked, and the table keeps that order."""
    org = fake_sentry.data.org(ORG)
    assert org is not None
    org.open_membership = False
    org.projects[-1].member = False
    mine = {int(p.id) for p in org.projects if p.member}
    with anyio.fail_after(10):
        usage = await client.stats.usage(ORG, group_by=["project", "category"], period="30d")
    assert {g.by["project"] for g in usage.groups} == mine
    (sent,) = _to(fake_sentry, "/stats_v2/")
    assert sent.params("project") == ["-1"]
    assert sent.params("groupBy") == ["category", "project"]
    assert usage.to_arrow().column_names[:2] == ["project", "category"]


# -- a project named twice ---------------------------------------------------------------


async def test_a_project_named_twice_is_counted_once_in_batches(
    fake_sentry: FakeSentry, client: SentryClient
) -> None:
    """Sentry reads ``project`` as a set: one request counts a project named by its slug
    and its id once, and so do batches."""
    org = fake_sentry.data.org(ORG)
    assert org is not None
    first, second = org.projects[0], org.projects[1]
    named = [first.slug, int(second.id), int(first.id), f"0{second.id}"]
    kw: dict[str, Any] = {"group_by": ["project"], "category": "error", "period": "14d"}
    with anyio.fail_after(10):
        one = await client.stats.usage(ORG, project=named, **kw)
        fake_sentry.reset_log()
        split = await client.stats.usage(ORG, project=named, project_batch=1, **kw)
    assert sorted(g.by["project"] for g in split.groups) == sorted(
        g.by["project"] for g in one.groups
    )
    assert _by_project(split) == _by_project(one)
    sent = [r.params("project") for r in _to(fake_sentry, "/stats_v2/")]
    assert sorted(sent) == sorted([[first.id], [second.id]])


# -- an answer with no group -------------------------------------------------------------


async def test_an_empty_answer_keeps_its_columns(
    fake_sentry: FakeSentry, client: SentryClient
) -> None:
    """No outcome matched: zero rows, the columns the query asked for."""
    kw: dict[str, Any] = {"group_by": ["outcome", "category"], "period": "2d", "interval": "1d"}
    with anyio.fail_after(10):
        empty = await client.stats.usage(ORG, category="replay", **kw)
        full = await client.stats.usage(ORG, category="error", **kw)
        projects = await client.stats.usage(
            ORG, group_by="project", category="replay", field=["sum(times_seen)"], period="2d"
        )
        batched = await client.stats.usage(
            ORG, group_by="project", category="replay", period="2d", project_batch=1
        )
    assert empty.groups == []
    table = empty.to_arrow()
    assert table.num_rows == 0
    assert table.column_names == ["outcome", "category", "interval", "sum(quantity)"]
    assert table.schema == full.to_arrow().schema
    assert pa.concat_tables([full.to_arrow(), table]).num_rows == full.to_arrow().num_rows
    assert projects.to_arrow().column_names == ["project", "sum(times_seen)"]
    assert batched.to_arrow().column_names == ["project", "sum(quantity)"]


def test_a_usage_body_decoded_by_hand_needs_no_query() -> None:
    """The query's keys and fields are the caller's, kept by ``usage()``; a body decoded
    by hand has none, and its table has the columns its groups and intervals show."""
    body = msgspec.json.encode({"intervals": ["2021-03-14T00:00:00Z"], "groups": []})
    usage = msgspec.json.decode(body, type=UsageStats)
    assert usage.group_by is None and usage.fields is None
    assert usage.to_arrow().column_names == ["interval"]
    grouped = msgspec.json.decode(msgspec.json.encode(RAW_OUTCOMES), type=UsageStats)
    assert grouped.to_arrow().column_names == ["outcome", "reason", "interval", "sum(quantity)"]


async def test_an_empty_usage_in_csv_is_its_header(
    fake_sentry_factory: Factory, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SENTRY_AUTH_TOKEN", TOKEN)
    server = await fake_sentry_factory(scale="small", token=TOKEN)
    argv: Sequence[str] = [
        "query", "usage", "--org", ORG, "--category", "replay", "--period", "2d",
        "--interval", "1d", "--format", "csv", "--base-url", server.url, "--quiet",
    ]  # fmt: skip
    out, err = io.StringIO(), io.StringIO()
    with anyio.fail_after(30):
        code = await anyio.to_thread.run_sync(partial(main, list(argv), stdout=out, stderr=err))
    assert code == 0, err.getvalue()
    assert list(csv.reader(io.StringIO(out.getvalue()))) == [
        ["outcome", "interval", "sum(quantity)"]
    ]


# -- what an organization total covers ---------------------------------------------------


async def test_an_organization_total_covers_projects_the_user_cannot_access(
    fake_sentry: FakeSentry, client: SentryClient
) -> None:
    """Without a project grouping, no project and ``-1`` are the whole organization's total
    (Sentry's ``test_user_org_total_all_accessible``), projects the user cannot access
    included; grouped by project, only those the user can access answer."""
    org = fake_sentry.data.org(ORG)
    assert org is not None
    org.open_membership = False
    theirs = org.projects[-1]
    theirs.member = False
    kw: dict[str, Any] = {"category": "error", "period": "30d", "interval": "1d"}
    with anyio.fail_after(10):
        unnamed = await client.stats.usage(ORG, **kw)
        every = await client.stats.usage(ORG, project=-1, **kw)
        by_project = await client.stats.usage(ORG, group_by="project", **kw)
    whole = unnamed.groups[0].totals["sum(quantity)"]
    assert every.groups[0].totals == unnamed.groups[0].totals
    accessible = sum(g.totals["sum(quantity)"] for g in by_project.groups)
    assert int(theirs.id) not in {g.by["project"] for g in by_project.groups}
    assert whole > accessible > 0
