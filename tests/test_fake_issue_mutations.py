"""The fake's merges, discards and substatuses, pinned against Sentry's server code.

- ``handle_merge`` (``issues/merge.py``) refuses issues other than errors ("Only error
  issues can be merged.") and keeps ``sorted(group_list, key=lambda g: (g.times_seen,
  g.id), reverse=True)[0]``: on a tie of event counts the higher id.
- ``handle_discard`` (``api/helpers/group_index/update.py``) answers 400
  ``{"detail": ["You do not have that feature enabled"]}`` for a project without
  ``projects:discard-groups`` (``discard-groups`` among the features the fake gives the
  organization), then refuses issues other than errors ("Only error issues can be
  discarded."). DRF renders such a ``ValidationError`` as a bare list.
- ``handle_other_status_updates`` infers the substatus (``infer_substatus``,
  ``issues/status_change.py``): one issue unresolved after being resolved is
  ``regressed``, after being ignored ``new`` when first seen within seven days, else
  ``ongoing``; several issues are ``ongoing``; ignoring is ``archived_*``; a substatus
  that does not fit the status is inferred instead. Issues already in the new status are
  left as they are (``queryset.exclude(status=new_status).update(...)``).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import anyio
import pytest
from _fake_http import org_send

from sentry_async import BulkPartialError, SentryClient
from sentry_async.errors import BadRequest
from sentry_async.testing import FakeSentry, FakeSentryFactory
from sentry_async.testing._builder import ProjectBuilder

ORG = "acme"
PERFORMANCE = {
    "issueCategory": "performance",
    "issueType": "performance_n_plus_one_db_queries",
}


async def _call(
    server: FakeSentry, method: str, path: str, query: list[tuple[str, str]], body: Any
) -> tuple[int, Any]:
    return await org_send(server, method, path, query, body, org=ORG)


def _project(factory: FakeSentryFactory, features: list[str]) -> tuple[FakeSentry, ProjectBuilder]:
    server = factory.start(orgs=0)
    return server, server.builder.add_organization(ORG, features=features).add_project("backend")


# -- merge -------------------------------------------------------------------------------


@pytest.mark.parametrize("higher_first", [False, True])
async def test_merge_of_issues_with_as_many_events_keeps_the_higher_id(
    fake_sentry_factory: FakeSentryFactory, higher_first: bool
) -> None:
    server, project = _project(fake_sentry_factory, [])
    low, high = (project.add_issue(f"Error {n}", events=2).id for n in range(2))
    ids = [high, low] if higher_first else [low, high]
    with anyio.fail_after(10):
        status, body = await _call(server, "PUT", "issues/", [("id", i) for i in ids],
                                   {"merge": True})
    assert (status, body) == (200, {"merge": {"parent": high, "children": [low]}})
    assert server.data.merged == {low: high}


async def test_merge_keeps_the_issue_with_most_events_whatever_its_id(
    fake_sentry_factory: FakeSentryFactory,
) -> None:
    server, project = _project(fake_sentry_factory, [])
    busy = project.add_issue("Error busy", events=3).id
    quiet = project.add_issue("Error quiet", events=2).id
    with anyio.fail_after(10):
        status, body = await _call(server, "PUT", "issues/", [("id", quiet), ("id", busy)],
                                   {"merge": True})
    assert (status, body) == (200, {"merge": {"parent": busy, "children": [quiet]}})


@pytest.mark.parametrize("both_performance", [True, False])
async def test_merge_of_issues_other_than_errors_is_refused(
    fake_sentry_factory: FakeSentryFactory, both_performance: bool
) -> None:
    server, project = _project(fake_sentry_factory, [])
    first = project.add_issue("N+1 Query", payload=PERFORMANCE if both_performance else None)
    second = project.add_issue("Slow DB Query", payload=PERFORMANCE)
    ids = [first.id, second.id]
    with anyio.fail_after(10):
        status, body = await _call(server, "PUT", "issues/", [("id", i) for i in ids],
                                   {"merge": True})
    assert (status, body) == (400, ["Only error issues can be merged."])
    assert not first.record.deleted and not second.record.deleted
    assert server.data.merged == {}


async def test_client_merge_of_performance_issues_raises_sentrys_refusal(
    fake_sentry_factory: FakeSentryFactory,
) -> None:
    server, project = _project(fake_sentry_factory, [])
    ids = [project.add_issue(f"Slow {n}", payload=PERFORMANCE).id for n in range(2)]
    async with SentryClient(server.token, base_url=server.url) as client:
        with anyio.fail_after(10), pytest.raises(BulkPartialError) as caught:
            await client.issues.bulk_update(ORG, ids, merge=True)
    refusal = caught.value.error
    assert isinstance(refusal, BadRequest)
    assert refusal.detail == "Only error issues can be merged."
    # A 400 may follow part of a change (``update_groups``): the ids are uncertain.
    assert caught.value.uncertain == ids


# -- discard -----------------------------------------------------------------------------


async def test_discard_without_the_feature_is_refused(
    fake_sentry_factory: FakeSentryFactory,
) -> None:
    server, project = _project(fake_sentry_factory, ["discover-basic"])
    issue = project.add_issue("Error one")
    refusal = (400, {"detail": ["You do not have that feature enabled"]})
    with anyio.fail_after(10):
        assert await _call(server, "PUT", "issues/", [("id", issue.id)],
                           {"discard": True}) == refusal
        assert await _call(server, "PUT", f"issues/{issue.id}/", [],
                           {"discard": True}) == refusal
    assert not issue.record.deleted


async def test_client_discard_without_the_feature_raises_sentrys_refusal(
    fake_sentry_factory: FakeSentryFactory,
) -> None:
    server, project = _project(fake_sentry_factory, [])
    issue = project.add_issue("Error one")
    async with SentryClient(server.token, base_url=server.url) as client:
        with anyio.fail_after(10), pytest.raises(BulkPartialError) as caught:
            await client.issues.bulk_update(ORG, [issue.id], discard=True)
    assert isinstance(caught.value.error, BadRequest)
    assert "You do not have that feature enabled" in str(caught.value.error)
    assert not issue.record.deleted


async def test_discard_of_issues_other_than_errors_is_refused(
    fake_sentry_factory: FakeSentryFactory,
) -> None:
    server, project = _project(fake_sentry_factory, ["discard-groups"])
    error = project.add_issue("Error one")
    slow = project.add_issue("Slow DB Query", payload=PERFORMANCE)
    refusal = (400, ["Only error issues can be discarded."])
    with anyio.fail_after(10):
        assert await _call(server, "PUT", "issues/", [("id", error.id), ("id", slow.id)],
                           {"discard": True}) == refusal
        assert await _call(server, "PUT", f"issues/{slow.id}/", [],
                           {"discard": True}) == refusal
    assert not error.record.deleted and not slow.record.deleted


async def test_discard_with_the_feature_deletes_error_issues(
    fake_sentry_factory: FakeSentryFactory,
) -> None:
    server, project = _project(fake_sentry_factory, ["discard-groups"])
    issue = project.add_issue("Error one")
    async with SentryClient(server.token, base_url=server.url) as client:
        with anyio.fail_after(10):
            result = await client.issues.bulk_update(ORG, [issue.id], discard=True)
    assert result.results == [None] and issue.record.deleted


# -- substatus ---------------------------------------------------------------------------


async def _unresolve(server: FakeSentry, *ids: str, **extra: Any) -> None:
    with anyio.fail_after(10):
        if len(ids) == 1:
            status, _ = await _call(server, "PUT", f"issues/{ids[0]}/", [],
                                    {"status": "unresolved", **extra})
        else:
            status, _ = await _call(server, "PUT", "issues/", [("id", i) for i in ids],
                                    {"status": "unresolved", **extra})
    assert status == 200


async def test_one_resolved_issue_unresolved_is_regressed(
    fake_sentry_factory: FakeSentryFactory,
) -> None:
    server, project = _project(fake_sentry_factory, [])
    issue = project.add_issue("Error one", status="resolved")
    await _unresolve(server, issue.id)
    assert (issue.record.status, issue.record.substatus) == ("unresolved", "regressed")
    status, body = await _call(server, "GET", f"issues/{issue.id}/", [], None)
    assert status == 200 and body["substatus"] == "regressed"


async def test_one_new_ignored_issue_unresolved_is_new_an_old_one_ongoing(
    fake_sentry_factory: FakeSentryFactory,
) -> None:
    server, project = _project(fake_sentry_factory, [])
    fresh = project.add_issue("Error fresh", status="ignored")
    old = project.add_issue("Error old", status="ignored", events=0)
    old.add_event(timestamp=server.data.now - timedelta(days=8))
    await _unresolve(server, fresh.id)
    await _unresolve(server, old.id)
    assert (fresh.record.status, fresh.record.substatus) == ("unresolved", "new")
    assert (old.record.status, old.record.substatus) == ("unresolved", "ongoing")


async def test_several_issues_unresolved_are_ongoing(
    fake_sentry_factory: FakeSentryFactory,
) -> None:
    server, project = _project(fake_sentry_factory, [])
    resolved = project.add_issue("Error resolved", status="resolved")
    ignored = project.add_issue("Error ignored", status="ignored")
    await _unresolve(server, resolved.id, ignored.id)
    assert [(i.record.status, i.record.substatus) for i in (resolved, ignored)] == [
        ("unresolved", "ongoing"),
        ("unresolved", "ongoing"),
    ]


async def test_a_substatus_that_does_not_fit_the_status_is_inferred(
    fake_sentry_factory: FakeSentryFactory,
) -> None:
    server, project = _project(fake_sentry_factory, [])
    resolved = project.add_issue("Error resolved", status="resolved")
    unresolved = project.add_issue("Error unresolved")
    await _unresolve(server, resolved.id, substatus="archived_forever")
    assert resolved.record.substatus == "regressed"
    with anyio.fail_after(10):
        status, _ = await _call(server, "PUT", f"issues/{unresolved.id}/", [],
                                {"status": "ignored", "substatus": "ongoing"})
    assert status == 200
    assert (unresolved.record.status, unresolved.record.substatus) == (
        "ignored", "archived_forever"
    )


async def test_a_fitting_substatus_is_kept(fake_sentry_factory: FakeSentryFactory) -> None:
    server, project = _project(fake_sentry_factory, [])
    issue = project.add_issue("Error resolved", status="resolved")
    await _unresolve(server, issue.id, substatus="escalating")
    assert issue.record.substatus == "escalating"


async def test_issues_already_in_the_new_status_keep_their_substatus(
    fake_sentry_factory: FakeSentryFactory,
) -> None:
    server, project = _project(fake_sentry_factory, [])
    regressed = project.add_issue("Error resolved", status="resolved")
    ignored = project.add_issue("Error ignored", status="ignored")
    await _unresolve(server, regressed.id)
    await _unresolve(server, regressed.id, substatus="escalating")
    assert (regressed.record.status, regressed.record.substatus) == ("unresolved", "regressed")
    with anyio.fail_after(10):
        status, _ = await _call(server, "PUT", f"issues/{ignored.id}/", [],
                                {"status": "ignored", "substatus": "archived_until_escalating"})
    assert status == 200
    assert (ignored.record.status, ignored.record.substatus) == ("ignored", "archived_forever")


def test_a_built_issue_has_the_substatus_sentry_creates_it_with(fake_sentry: FakeSentry) -> None:
    project = fake_sentry.builder.add_organization(ORG).add_project("backend")
    assert project.add_issue("Error ignored", status="ignored").record.substatus == (
        "archived_forever"
    )
    assert project.add_issue("Error resolved", status="resolved").record.substatus is None
    assert project.add_issue("Error open").record.substatus == "new"
