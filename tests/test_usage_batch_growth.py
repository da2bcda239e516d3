"""Usage grouped by project over every project when the organization grew past
``project_batch`` since the client read its projects list.

Pinned against Sentry's server code: ``OrganizationEndpoint._get_projects_by_id`` reads
``project=-1`` alone as every project the user can access (``has_project_access``, so in a
closed-membership organization a member's own) and refuses nothing for it: no 403, and no
cap on how many projects one request covers. What a request over too many projects risks
is the outcomes totals query's row limit (``run_outcomes_query_totals``,
``Limit(10000)``): the groups past it are left out without a word, which the fake copies
with ``STATS_ROW_LIMIT``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import anyio
import pytest
from _fake_http import org_get
from test_usage_stats_edges import ORG, _to

import sentry_async.testing._routes_stats as fake_stats
from sentry_async import SentryClient
from sentry_async.models import UsageStats
from sentry_async.testing import FakeSentry
from sentry_async.testing._records import OrgRecord, ProjectRecord

KW: dict[str, Any] = {"category": "error", "period": "30d"}
Rows = dict[tuple[tuple[str, Any], ...], Any]


def _closed(server: FakeSentry) -> OrgRecord:
    """``org-0`` without open membership and its last project on none of the user's teams:
    ``-1`` covers the others only, and naming that one is a 403."""
    org = server.data.org(ORG)
    assert org is not None
    org.open_membership = False
    org.projects[-1].member = False
    return org


def _grow(org: OrgRecord, count: int, *, used: bool) -> list[str]:
    """``count`` new projects on the user's teams, each with the events of the first one
    (``used``) or with none: the ids."""
    template = org.projects[0]
    top = max(int(p.id) for p in org.projects)
    added = []
    for n in range(1, count + 1):
        project = ProjectRecord(
            index=len(org.projects), id=str(top + n), slug=f"grown-{n}", name=f"Grown {n}",
            platform=template.platform, org=org, created=template.created,
        )  # fmt: skip
        if used:
            project.events = [replace(e, project=project, issue=None) for e in template.events]
        org.projects.append(project)
        added.append(project.id)
    return added


async def _truth(server: FakeSentry, group_by: Sequence[str] = ("project",)) -> Rows:
    """Every accessible project's errors as one ``-1`` request answers them below the row
    limit, ``project`` last in ``groupBy`` as the client sends it."""
    keys = [*(g for g in group_by if g != "project"), "project"]
    status, body, _ = await org_get(
        server, "stats_v2/",
        [("field", "sum(quantity)"), *(("groupBy", g) for g in keys), ("category", "error"),
         ("statsPeriod", "30d"), ("interval", "1h"), ("project", "-1")],
    )  # fmt: skip
    assert status == 200, body
    return {_key(g["by"]): g["totals"]["sum(quantity)"] for g in body["groups"]}


def _key(by: dict[str, Any]) -> tuple[tuple[str, Any], ...]:
    return tuple(sorted(by.items()))


def _rows(usage: UsageStats) -> Rows:
    return {_key(g.by): g.totals["sum(quantity)"] for g in usage.groups}


@pytest.mark.parametrize("project", [None, -1])
@pytest.mark.parametrize("group_by", [["project"], ["project", "outcome"]])
async def test_an_organization_grown_past_the_batch_is_asked_in_batches(
    fake_sentry: FakeSentry,
    client: SentryClient,
    monkeypatch: pytest.MonkeyPatch,
    project: int | None,
    group_by: list[str],
) -> None:
    """The first call reads the projects list: its accessible ones fit in one request,
    ``-1``. Projects created since make more than ``project_batch``: the next call's ``-1``
    answer names more projects than a batch holds (rows lost past the row limit), so the
    list is read again and every accessible project, the new ones too, asked in batches."""
    org = _closed(fake_sentry)
    mine = [p.id for p in org.projects if p.member]
    batch = len(mine)
    kw: dict[str, Any] = {**KW, "group_by": group_by, "project": project, "project_batch": batch}
    with anyio.fail_after(10):
        first = await client.stats.usage(ORG, **kw)
        added = _grow(org, batch + 1, used=True)
        truth = await _truth(fake_sentry, group_by)
        widest = max(Counter(dict(k)["project"] for k in truth).values())
        # A batch's rows fit under the limit, every accessible project's do not.
        monkeypatch.setattr(fake_stats, "STATS_ROW_LIMIT", batch * widest + 1)
        fake_sentry.reset_log()
        second = await client.stats.usage(ORG, **kw)
    assert {dict(k)["project"] for k in _rows(first)} == {int(p) for p in mine}
    assert {dict(k)["project"] for k in truth} == {int(p) for p in [*mine, *added]}
    assert len(truth) > fake_stats.STATS_ROW_LIMIT
    assert _rows(second) == truth
    sent = [r.params("project") for r in _to(fake_sentry, "/stats_v2/")]
    assert sent[0] == ["-1"]
    assert len(_to(fake_sentry, "/projects/")) == 1, "the list read again, once"
    assert all(len(ids) <= batch for ids in sent[1:])
    assert sorted(p for ids in sent[1:] for p in ids) == sorted([*mine, *added])
    with anyio.fail_after(10):
        again = await client.stats.usage(ORG, **kw)
    assert _rows(again) == truth


async def test_a_small_organization_costs_what_it_did(
    fake_sentry: FakeSentry, client: SentryClient
) -> None:
    """Two requests at the first call (the projects list, then ``-1``), one at each later
    one, also once projects without usage have grown the organization past the batch:
    the ``-1`` answer then names no more projects than a batch holds, and lost none."""
    org = _closed(fake_sentry)
    batch = sum(p.member for p in org.projects)
    kw: dict[str, Any] = {**KW, "group_by": "project", "project_batch": batch}
    counts = []
    with anyio.fail_after(10):
        for grow in (False, False, True):
            if grow:
                _grow(org, batch + 1, used=False)
            fake_sentry.reset_log()
            usage = await client.stats.usage(ORG, **kw)
            sent = [r.params("project") for r in _to(fake_sentry, "/stats_v2/")]
            counts.append((len(_to(fake_sentry, "/projects/")), sent))
        truth = await _truth(fake_sentry)
    assert counts == [(1, [["-1"]]), (0, [["-1"]]), (0, [["-1"]])]
    assert _rows(usage) == truth
