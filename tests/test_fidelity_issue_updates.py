"""What the fake does with an issue update body, pinned against Sentry's server code.

``update_groups`` (``api/helpers/group_index/update.py``) validates with ``GroupValidator``
and ``StatusDetailsValidator``, then: ``handle_discard`` (delete, 204),
``handle_resolve_in_release`` (stored as resolved, ``statusDetails`` rebuilt),
``handle_other_status_updates`` (``infer_substatus``, ``handle_ignored``) and
``prepare_response`` (assignee as ``ActorSerializer`` output, ``merge`` under the group
with most events, the higher id on a tie, one project only).
"""

from __future__ import annotations

from typing import Any

import pytest
from _fake_http import org_send

from sentry_async import SentryClient
from sentry_async.testing import FakeSentry

ORG = "org-0"


def _unresolved(server: FakeSentry, project: int = 0, n: int = 1) -> list[Any]:
    issues = server.data.orgs[0].projects[project].issues
    return [i for i in issues if i.status == "unresolved" and not i.deleted][:n]


async def test_discard_deletes_and_answers_204(fake_sentry: FakeSentry) -> None:
    """With ``projects:discard-groups``: without it, see test_fake_issue_mutations.py."""
    fake_sentry.data.orgs[0].features.append("discard-groups")
    a, b = _unresolved(fake_sentry, n=2)
    status, _ = await org_send(fake_sentry, "PUT", "issues/", [("id", a.id)], {"discard": True})
    assert status == 204 and a.deleted
    status, _ = await org_send(fake_sentry, "PUT", f"issues/{b.id}/", [], {"discard": True})
    assert status == 204 and b.deleted


async def test_discard_with_another_field_is_refused(fake_sentry: FakeSentry) -> None:
    (a,) = _unresolved(fake_sentry)
    status, body = await org_send(
        fake_sentry, "PUT", "issues/", [("id", a.id)], {"discard": True, "status": "resolved"}
    )
    assert status == 400
    assert body == {"non_field_errors": ["Other attributes cannot be updated when discarding"]}
    assert not a.deleted and a.status == "unresolved"


async def test_merge_keeps_the_issue_with_most_events_and_redirects_the_rest(
    fake_sentry: FakeSentry, client: SentryClient
) -> None:
    issues = _unresolved(fake_sentry, n=3)
    parent, *children = sorted(issues, key=lambda i: (len(i.events), int(i.id)), reverse=True)
    result = await client.issues.bulk_update(ORG, [i.id for i in issues], merge=True)
    (answer,) = result.results
    assert answer is not None
    assert answer.merge == {"parent": parent.id, "children": [c.id for c in children]}
    assert all(c.deleted for c in children) and not parent.deleted
    assert (await client.issues.get(ORG, children[0].id)).id == parent.id


async def test_merge_across_projects_is_refused(fake_sentry: FakeSentry) -> None:
    ids = [_unresolved(fake_sentry, 0)[0].id, _unresolved(fake_sentry, 1)[0].id]
    status, body = await org_send(
        fake_sentry, "PUT", "issues/", [("id", i) for i in ids], {"merge": True}
    )
    assert (status, body) == (400, {"detail": "Merging across multiple projects is not supported"})


async def test_a_merge_of_one_issue_echoes_the_boolean(fake_sentry: FakeSentry) -> None:
    (a,) = _unresolved(fake_sentry)
    status, body = await org_send(fake_sentry, "PUT", "issues/", [("id", a.id)], {"merge": True})
    assert (status, body) == (200, {"merge": True})


async def test_resolved_in_next_release_is_stored_as_resolved(
    fake_sentry: FakeSentry, client: SentryClient
) -> None:
    (a,) = _unresolved(fake_sentry)
    result = await client.issues.bulk_update(ORG, [a.id], status="resolvedInNextRelease")
    (answer,) = result.results
    assert answer is not None and answer.status == "resolved"
    assert answer.status_details is not None and answer.status_details["inNextRelease"] is True
    assert "actor" in answer.status_details
    assert answer.activity and answer.activity[0]["type"] == "set_resolved_in_release"
    assert a.status == "resolved"
    listed = await client.issues.list(ORG, query="is:resolved", limit=1000).collect()
    assert a.id in {i.id for i in listed}


@pytest.mark.parametrize(
    ("details", "substatus", "shown"),
    [
        ({"ignoreDuration": 30, "bogus": 1}, "archived_until_condition_met", "ignoreUntil"),
        ({"ignoreCount": 5, "ignoreWindow": 60}, "archived_until_condition_met", "ignoreCount"),
        ({}, "archived_forever", None),
    ],
)
async def test_ignoring_builds_sentrys_status_details(
    fake_sentry: FakeSentry, details: dict[str, Any], substatus: str, shown: str | None
) -> None:
    (a,) = _unresolved(fake_sentry)
    status, body = await org_send(
        fake_sentry, "PUT", "issues/", [("id", a.id)],
        {"status": "muted", "statusDetails": details},
    )
    assert status == 200 and body["status"] == "muted"
    assert "bogus" not in body["statusDetails"]
    if shown is None:
        assert body["statusDetails"] == {}
    else:
        assert body["statusDetails"][shown] is not None and "actor" in body["statusDetails"]
    assert a.status == "ignored" and a.substatus == substatus


async def test_a_team_assignee_comes_back_as_a_team(fake_sentry: FakeSentry) -> None:
    (a,) = _unresolved(fake_sentry)
    team = fake_sentry.data.teams(fake_sentry.data.orgs[0])[0]
    status, body = await org_send(
        fake_sentry, "PUT", "issues/", [("id", a.id)], {"assignedTo": f"team:{team['id']}"}
    )
    assert status == 200
    assert body["assignedTo"] == {"type": "team", "id": team["id"], "name": team["slug"]}


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"priority": "urgent"}, "priority"),
        ({"substatus": "whatever"}, "substatus"),
        ({"isBookmarked": "maybe"}, "isBookmarked"),
        ({"status": "ignored", "statusDetails": {"ignoreWindow": 99999, "ignoreCount": 5}},
         "statusDetails"),
        ({"status": "resolved", "statusDetails": {"inRelease": "no-such-release"}},
         "statusDetails"),
        ({"assignedTo": "nobody@nowhere.invalid"}, "assignedTo"),
        ({"assignedTo": None}, "assignedTo"),
        ({"assignedTo": "user:999999"}, "assignedTo"),
    ],
)
async def test_what_sentry_refuses_is_refused(
    fake_sentry: FakeSentry, body: dict[str, Any], field: str
) -> None:
    (a,) = _unresolved(fake_sentry)
    before = (a.status, dict(a.extra))
    status, answer = await org_send(fake_sentry, "PUT", "issues/", [("id", a.id)], body)
    assert status == 400 and field in answer, answer
    status, answer = await org_send(fake_sentry, "PUT", f"issues/{a.id}/", [], body)
    assert status == 400 and field in answer, answer
    assert (a.status, a.extra) == before


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        ({"status": "resolvedInNextRelease"}, "Cannot set resolved in next release for multiple projects."),
        ({"status": "resolved", "statusDetails": {"inNextRelease": True}},
         "Cannot set resolved in next release for multiple projects."),
    ],
)
async def test_release_resolutions_across_projects_are_refused(
    fake_sentry: FakeSentry, body: dict[str, Any], detail: str
) -> None:
    ids = [_unresolved(fake_sentry, 0)[0].id, _unresolved(fake_sentry, 1)[0].id]
    status, answer = await org_send(fake_sentry, "PUT", "issues/", [("id", i) for i in ids], body)
    assert (status, answer) == (400, {"detail": detail})


async def test_release_resolution_names_a_known_release(fake_sentry: FakeSentry) -> None:
    (a,) = _unresolved(fake_sentry)
    version = f"{a.project.slug}@1.4.2"
    # ``validate_request`` checks the release in every project the request names.
    status, body = await org_send(
        fake_sentry, "PUT", "issues/", [("id", a.id), ("project", a.project.id)],
        {"status": "resolved", "statusDetails": {"inRelease": version}},
    )
    assert status == 200 and body["statusDetails"]["inRelease"] == version
    assert a.status == "resolved"


async def test_ids_are_matched_within_the_requested_project(fake_sentry: FakeSentry) -> None:
    (a,) = _unresolved(fake_sentry, 1)
    other = fake_sentry.data.orgs[0].projects[0].id
    status, _ = await org_send(
        fake_sentry, "DELETE", "issues/", [("id", a.id), ("project", other)], None
    )
    assert status == 204 and not a.deleted


async def test_what_sentry_accepts_is_accepted(fake_sentry: FakeSentry) -> None:
    """Unknown fields are ignored (DRF), ``{}`` changes nothing, and the ids are looked up
    before the body is read: unmatched ids with a confined search answer 204 whatever
    the body holds."""
    (a,) = _unresolved(fake_sentry)
    status, body = await org_send(fake_sentry, "PUT", "issues/", [("id", a.id)], {})
    assert (status, body) == (200, {})
    status, body = await org_send(
        fake_sentry, "PUT", "issues/", [("id", a.id)], {"hasSeen": True, "colour": "red"}
    )
    assert (status, body) == (200, {"hasSeen": True})
    status, _ = await org_send(
        fake_sentry, "PUT", "issues/",
        [("id", "999999999"), ("query", "issue.id:[999999999]")], {"priority": "urgent"},
    )
    assert status == 204


async def test_unassigning_sends_an_empty_string(
    fake_sentry: FakeSentry, client: SentryClient
) -> None:
    (a,) = _unresolved(fake_sentry)
    issue = await client.issues.update(ORG, a.id, assigned_to=None)
    assert issue is not None and issue.assigned_to is None
    (put,) = [r for r in fake_sentry.requests if r.method == "PUT"]
    assert put.json() == {"assignedTo": ""}


async def test_inbox_moves_issues_in_and_out(fake_sentry: FakeSentry, client: SentryClient) -> None:
    """``update_inbox``: true adds (reason MANUAL), false marks reviewed; the answer echoes it."""
    (a,) = _unresolved(fake_sentry)
    result = await client.issues.bulk_update(ORG, [a.id], inbox=True)
    assert result.results[0] is not None and result.results[0].inbox is True
    issue = await client.issues.get(ORG, a.id, expand="inbox")
    assert issue.inbox is not None and issue.inbox.reason == 3
    await client.issues.bulk_update(ORG, [a.id], inbox=False)
    assert (await client.issues.get(ORG, a.id, expand="inbox")).inbox is None
