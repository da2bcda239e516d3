"""Regressed and escalating issues age, and ``is:for_review`` is the inbox, as on Sentry.

Pinned against Sentry's server code:

- ``src/sentry/tasks/auto_ongoing_issues.py``: every minute
  ``schedule_auto_transition_to_ongoing`` moves to ``ongoing`` the unresolved ``new``
  groups first seen ``TRANSITION_AFTER_DAYS`` or more ago, and the ``regressed`` /
  ``escalating`` ones whose latest ``GroupHistory`` row of that status was added that long
  ago (``recent_regressed_history__lte``); ``TRANSITION_AFTER_DAYS = 7`` and
  ``bulk_transition_group_to_ongoing`` removes the groups from the inbox
  (``src/sentry/issues/ongoing.py``). ``record_group_history_from_activity_type``
  (``src/sentry/models/grouphistory.py``) writes that row whenever the substatus is set, a
  request's change included, so a substatus set by a request starts its week then.
- ``src/sentry/search/snuba/backend.py`` ``inbox_filter``: ``is:for_review`` is "has a
  ``GroupInbox`` row". ``process_inbox_adds`` (``src/sentry/tasks/post_process.py``) adds
  one when a group is new (``GroupInboxReason.NEW``, 0) or regresses (``REGRESSION``, 2),
  an escalation adds ``ESCALATING`` (5), ``inbox: true`` adds ``MANUAL`` (3)
  (``src/sentry/models/groupinbox.py``); resolving, ignoring and marking reviewed remove it
  (``src/sentry/api/helpers/group_index/update.py``), a request unresolving or unignoring
  adds none (``handle_status_update``, ``src/sentry/issues/status_change.py``), and
  ``auto_remove_inbox`` (``src/sentry/tasks/auto_remove_inbox.py``) deletes rows older
  than 7 days. ``expand=inbox`` shows the row (``get_inbox_details``): ``reason``,
  ``reason_details``, ``date_added``.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import anyio
import pytest
from _fake_http import org_get, org_send

from sentry_async.testing import FakeSentry, FakeSentryFactory
from sentry_async.testing._builder import IssueBuilder, ProjectBuilder

ORG = "acme"
WEEK = timedelta(days=7)


def _project(factory: FakeSentryFactory) -> tuple[FakeSentry, ProjectBuilder]:
    server = factory.start(orgs=0)
    return server, server.builder.add_organization(ORG).add_project("backend")


async def _ids(server: FakeSentry, query: str, org: str = ORG) -> list[str]:
    with anyio.fail_after(10):
        status, body, _ = await org_get(
            server, "issues/", [("query", query), ("project", "-1"), ("limit", "100")], org=org
        )
    assert status == 200, body
    return sorted(row["id"] for row in body)


async def _detail(server: FakeSentry, issue: IssueBuilder) -> dict[str, Any]:
    with anyio.fail_after(10):
        status, body = await org_send(
            server, "GET", f"issues/{issue.id}/", [("expand", "inbox")], org=ORG
        )
    assert status == 200, body
    assert isinstance(body, dict)
    return body


async def _put(server: FakeSentry, issue: IssueBuilder, body: dict[str, Any]) -> None:
    with anyio.fail_after(10):
        status, answer = await org_send(server, "PUT", "issues/", [("id", issue.id)], body, org=ORG)
    assert status == 200, answer


def _iso(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


# -- regressed and escalating issues age ------------------------------------------------------


@pytest.mark.parametrize("substatus", ["regressed", "escalating"])
async def test_a_regressed_or_escalating_issue_turns_ongoing_a_week_later(
    fake_sentry_factory: FakeSentryFactory, substatus: str
) -> None:
    server, project = _project(fake_sentry_factory)
    since = {"fresh": timedelta(days=6, hours=23), "edge": WEEK, "old": timedelta(days=30)}
    issues = {
        name: project.add_issue(
            f"Error {name}", substatus=substatus, substatus_since=server.now - ago
        )
        for name, ago in since.items()
    }
    shown = {name: (await _detail(server, issue))["substatus"] for name, issue in issues.items()}
    assert shown == {"fresh": substatus, "edge": "ongoing", "old": "ongoing"}
    assert await _ids(server, f"is:{substatus}") == [issues["fresh"].id]
    assert await _ids(server, f"substatus:{substatus}") == [issues["fresh"].id]
    assert await _ids(server, "is:ongoing") == sorted([issues["edge"].id, issues["old"].id])


async def test_a_substatus_a_request_sets_starts_its_week_then(
    fake_sentry_factory: FakeSentryFactory,
) -> None:
    """Resolving, then unresolving the one issue makes it ``regressed`` again
    (``infer_substatus``): that regression is now, whatever the first one's age."""
    server, project = _project(fake_sentry_factory)
    issue = project.add_issue(
        "Error old regression", substatus="regressed", substatus_since=server.now - 3 * WEEK
    )
    assert (await _detail(server, issue))["substatus"] == "ongoing"
    await _put(server, issue, {"status": "resolved"})
    await _put(server, issue, {"status": "unresolved"})
    assert (await _detail(server, issue))["substatus"] == "regressed"
    assert await _ids(server, "is:regressed") == [issue.id]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"status": "resolved", "substatus": "regressed"}, "substatus must be one of"),
        ({"substatus": "archived_forever"}, "substatus must be one of"),
        ({"status": "ignored", "substatus": "new"}, "substatus must be one of"),
        ({"substatus": "forever"}, "substatus must be one of"),
        ({"substatus": "new", "substatus_since": datetime(2026, 1, 1, tzinfo=timezone.utc)},
         "substatus_since"),
        ({"substatus": "regressed", "substatus_since": datetime(2026, 1, 1)}, "timezone-aware"),
    ],
)
async def test_the_builder_refuses_a_substatus_sentry_cannot_hold(
    fake_sentry_factory: FakeSentryFactory, kwargs: dict[str, Any], message: str
) -> None:
    """``GROUP_SUBSTATUS_TO_STATUS_MAP`` (``src/sentry/models/group.py``): each substatus
    belongs to one status, and a resolved group has none."""
    _, project = _project(fake_sentry_factory)
    with pytest.raises(ValueError, match=message):
        project.add_issue("Error", **kwargs)


# -- is:for_review is the inbox ---------------------------------------------------------------


async def test_for_review_lists_the_seeded_issues_still_new(
    fake_sentry_factory: FakeSentryFactory,
) -> None:
    """A seeded issue was added to the inbox by its first event and left it a week later."""
    server = fake_sentry_factory.start(orgs=1, projects=1, issues=40, days=12)
    data = server.data
    issues = data.orgs[0].projects[0].issues
    new = sorted(
        i.id for i in issues if i.status == "unresolved" and i.first_seen > data.now_ts - 7 * 86400
    )
    others = sorted(i.id for i in issues if i.id not in new)
    assert new and others, "the seed makes both"
    assert await _ids(server, "is:for_review", "org-0") == new
    assert await _ids(server, "!is:for_review", "org-0") == others


async def test_the_inbox_holds_what_sentry_put_there_and_not_what_left_it(
    fake_sentry_factory: FakeSentryFactory,
) -> None:
    server, project = _project(fake_sentry_factory)
    now = server.now
    fresh = project.add_issue("Error fresh")
    regressed = project.add_issue(
        "Error regressed", substatus="regressed", substatus_since=now - timedelta(days=2)
    )
    escalating = project.add_issue(
        "Error escalating", substatus="escalating", substatus_since=now - timedelta(days=1)
    )
    aged = project.add_issue("Error aged", substatus="regressed", substatus_since=now - 2 * WEEK)
    ongoing = project.add_issue("Error ongoing", substatus="ongoing")
    old = project.add_issue("Error old", events=0)
    old.add_event(timestamp=now - 2 * WEEK)
    ignored = project.add_issue("Error ignored", status="ignored")
    resolved = project.add_issue("Error resolved", status="resolved")
    reviewed = project.add_issue("Error reviewed")
    back = project.add_issue("Error resolved by hand")
    marked = project.add_issue("Error marked", substatus="ongoing")

    await _put(server, reviewed, {"inbox": False})
    await _put(server, back, {"status": "resolved"})
    await _put(server, back, {"status": "unresolved"})
    await _put(server, ignored, {"status": "unresolved"})
    await _put(server, resolved, {"status": "unresolved"})
    await _put(server, marked, {"inbox": True})

    inbox = {
        issue.id: (await _detail(server, issue))["inbox"]
        for issue in (
            fresh, regressed, escalating, aged, ongoing, old, ignored, resolved, reviewed, back,
            marked,
        )
    }
    first_event = fresh.record.first_seen
    assert inbox == {
        fresh.id: {
            "reason": 0,
            "reason_details": None,
            "date_added": _iso(datetime.fromtimestamp(first_event, timezone.utc)),
        },
        regressed.id: {
            "reason": 2, "reason_details": None, "date_added": _iso(now - timedelta(days=2))
        },
        escalating.id: {
            "reason": 5, "reason_details": None, "date_added": _iso(now - timedelta(days=1))
        },
        aged.id: None,
        ongoing.id: None,
        old.id: None,
        ignored.id: None,
        resolved.id: None,
        reviewed.id: None,
        back.id: None,
        marked.id: {"reason": 3, "reason_details": None, "date_added": _iso(now)},
    }
    expected = sorted([fresh.id, regressed.id, escalating.id, marked.id])
    assert await _ids(server, "is:for_review") == expected
    assert await _ids(server, "is:unresolved is:for_review") == expected
    with anyio.fail_after(10):
        status, body, _ = await org_get(
            server,
            "issues/",
            [("query", "is:unresolved is:for_review"), ("sort", "inbox"), ("project", "-1")],
            org=ORG,
        )
    assert status == 200 and sorted(row["id"] for row in body) == expected
