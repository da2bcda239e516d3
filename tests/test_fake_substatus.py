"""The fake's issue substatuses and their searches, pinned against Sentry's server code.

- A group is created ``new`` (``event_manager._create_group``); every minute
  ``schedule_auto_transition_to_ongoing`` (``tasks/auto_ongoing_issues.py``) moves the
  unresolved ``new`` groups first seen at least ``TRANSITION_AFTER_DAYS`` (7) days ago to
  ``ongoing``. The fake applies that move against its clock, whatever made the issue.
- ``is:<substatus>`` and ``substatus:`` are the same filter (``is_filter_translation``,
  ``value_converters`` in ``issues/issue_search.py``). Their names are
  ``SUBSTATUS_UPDATE_CHOICES`` (``types/group.py``); the deprecated ``until_escalating``,
  ``until_condition_met`` and ``forever`` were dropped from it (getsentry/sentry#75703),
  so Sentry refuses them. ``status:`` takes ``STATUS_QUERY_CHOICES``.
- ``expand_substatus_query_values``: a query with a substatus filter and no status filter
  gets ``status IN [the first substatus's status]`` (``NOT IN`` when the only substatus
  filters are negated), so ``!is:new`` lists no unresolved issue.
- ``parse_and_convert_issue_search_query`` answers ``InvalidSearchQuery`` as a 400
  ``Error parsing search query: ...``.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import anyio
import pytest
from _fake_http import org_get, org_send

from sentry_async.testing import FakeSentry, FakeSentryFactory
from sentry_async.testing._builder import ProjectBuilder

ORG = "acme"
WEEK = 7 * 86400
IS_VALUES = [
    "archived",
    "archived_forever",
    "archived_until_condition_met",
    "archived_until_escalating",
    "assigned",
    "escalating",
    "for_review",
    "ignored",
    "linked",
    "muted",
    "new",
    "ongoing",
    "regressed",
    "reprocessing",
    "resolved",
    "unassigned",
    "unlinked",
    "unresolved",
]
"""``sorted(is_filter_translation)``, as the refusal of an unknown ``is:`` value lists it."""


def _project(factory: FakeSentryFactory) -> tuple[FakeSentry, ProjectBuilder]:
    server = factory.start(orgs=0)
    return server, server.builder.add_organization(ORG).add_project("backend")


async def _search(server: FakeSentry, query: str, org: str = ORG) -> tuple[int, Any]:
    with anyio.fail_after(10):
        status, body, _ = await org_get(
            server, "issues/", [("query", query), ("project", "-1"), ("limit", "100")], org=org
        )
    return status, body


async def _ids(server: FakeSentry, query: str, org: str = ORG) -> list[str]:
    status, body = await _search(server, query, org)
    assert status == 200, body
    return sorted(row["id"] for row in body)


async def test_a_new_issue_is_new_until_a_week_after_its_first_event(
    fake_sentry_factory: FakeSentryFactory,
) -> None:
    server, project = _project(fake_sentry_factory)
    fresh = project.add_issue("Error fresh")
    old = project.add_issue("Error old", events=0)
    old.add_event(timestamp=server.now - timedelta(days=8))
    edge = project.add_issue("Error a week old", events=0)
    edge.add_event(timestamp=server.now - timedelta(days=7))
    with anyio.fail_after(10):
        shown = {
            issue.id: (await org_send(server, "GET", f"issues/{issue.id}/", [], org=ORG))[1]
            for issue in (fresh, old, edge)
        }
    assert {i: (body["status"], body["substatus"]) for i, body in shown.items()} == {
        fresh.id: ("unresolved", "new"),
        old.id: ("unresolved", "ongoing"),
        edge.id: ("unresolved", "ongoing"),
    }
    assert await _ids(server, "is:new") == [fresh.id]
    assert await _ids(server, "is:ongoing") == sorted([old.id, edge.id])
    assert await _ids(server, "substatus:new") == [fresh.id]


async def test_seeded_issues_are_new_when_first_seen_within_a_week(
    fake_sentry_factory: FakeSentryFactory,
) -> None:
    server = fake_sentry_factory.start(orgs=1, projects=1, issues=40, days=12)
    data = server.data
    issues = [i for i in data.orgs[0].projects[0].issues if i.status == "unresolved"]
    new = sorted(i.id for i in issues if i.first_seen > data.now_ts - WEEK)
    ongoing = sorted(i.id for i in issues if i.first_seen <= data.now_ts - WEEK)
    assert new and ongoing, "the seed makes both"
    assert await _ids(server, "is:new", "org-0") == new
    assert await _ids(server, "is:ongoing", "org-0") == ongoing
    assert await _ids(server, "substatus:[new, ongoing]", "org-0") == sorted(new + ongoing)


async def test_a_substatus_filter_alone_brings_its_status(
    fake_sentry_factory: FakeSentryFactory,
) -> None:
    server, project = _project(fake_sentry_factory)
    fresh = project.add_issue("Error fresh")
    old = project.add_issue("Error old", events=0)
    old.add_event(timestamp=server.now - timedelta(days=30))
    resolved = project.add_issue("Error resolved", status="resolved")
    ignored = project.add_issue("Error ignored", status="ignored")
    cases = {
        "!is:new": sorted([resolved.id, ignored.id]),
        "!substatus:ongoing": sorted([resolved.id, ignored.id]),
        "is:unresolved !is:new": [old.id],
        "!is:resolved !is:new": sorted([old.id, ignored.id]),
        "substatus:[archived_forever, new]": [ignored.id],
        "substatus:[new, archived_forever]": [fresh.id],
        "status:unresolved": sorted([fresh.id, old.id]),
        "status:[resolved, muted]": sorted([resolved.id, ignored.id]),
        "!status:unresolved is:archived_forever": [ignored.id],
    }
    found = {query: await _ids(server, query) for query in cases}
    assert found == cases


@pytest.mark.parametrize(
    ("query", "detail"),
    [
        ("is:until_escalating", f'Invalid value for "is" search, valid values are {IS_VALUES}'),
        ("is:forever", f'Invalid value for "is" search, valid values are {IS_VALUES}'),
        ("substatus:forever", "invalid substatus value of 'forever'"),
        ("substatus:until_condition_met", "invalid substatus value of 'until_condition_met'"),
        ("substatus:[new, until_escalating]", "invalid substatus value of 'until_escalating'"),
        ("substatus:New", "invalid substatus value of 'New'"),
        ("has:substatus", "invalid substatus value of ''"),
        ("status:open", "invalid status value of 'open'"),
        ("status:unresolved substatus:gone", "invalid substatus value of 'gone'"),
        ("issue.priority:urgent substatus:gone", "invalid substatus value of 'gone'"),
        ("level:fatal OR level:error",
         'Boolean statements containing "OR" or "AND" are not supported in this search'),
    ],
)
async def test_search_refusals_are_sentrys_400(
    fake_sentry_factory: FakeSentryFactory, query: str, detail: str
) -> None:
    server, project = _project(fake_sentry_factory)
    project.add_issue("Error fresh")
    assert await _search(server, query) == (400, {"detail": f"Error parsing search query: {detail}"})


async def test_a_bulk_update_by_search_takes_the_substatus_filter(
    fake_sentry_factory: FakeSentryFactory,
) -> None:
    server, project = _project(fake_sentry_factory)
    fresh = project.add_issue("Error fresh")
    old = project.add_issue("Error old", events=0)
    old.add_event(timestamp=server.now - timedelta(days=9))
    with anyio.fail_after(10):
        status, _ = await org_send(
            server, "PUT", "issues/", [("query", "is:new"), ("project", "-1")],
            {"status": "resolved"}, org=ORG,
        )
        refused = await org_send(
            server, "PUT", "issues/", [("query", "is:forever"), ("project", "-1")],
            {"status": "resolved"}, org=ORG,
        )
    assert status == 200
    assert (fresh.record.status, old.record.status) == ("resolved", "unresolved")
    # ``update_groups_with_search_fn`` words its search's ``ValidationError`` so.
    assert refused == (400, {"detail": "Invalid query. Error getting group ids and group list"})
