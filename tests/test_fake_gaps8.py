"""The fake at the top-level issue paths, its event-details 404s, and events added to an
issue merged away, as Sentry answers them.

Pinned against Sentry's server code:

- ``src/sentry/api/urls.py``: ``create_group_urls`` is included at ``(?:issues|groups)/`` as
  well as at ``organizations/<org>/(?:issues|groups)/``, so every issue view is served
  without an organization too. ``GroupEndpoint.convert_args``
  (``src/sentry/issues/endpoints/bases/group.py``) then has no organization:
  ``get_group_with_redirect`` (``src/sentry/models/group.py``) finds a numeric id in any
  organization, or through the ``GroupRedirect`` a merge left, and refuses a short id
  (``if not short_id or not organization: raise Group.DoesNotExist``); ``GroupPermission``
  checks the issue's project (403), and only then is an issue being deleted the 404. The
  rate limiter keys a request by the view (``get_rate_limit_key``), whichever URL reached it.
- ``src/sentry/issues/endpoints/group_event_details.py``: a missing event is "Event not
  found. The event ID may be incorrect, or its age exceeded the retention period.", no
  latest/oldest/recommended event "No matching event found. Try changing the environments,
  date range, or query." (getsentry/sentry#82490).
- ``merge_groups`` (``src/sentry/tasks/merge.py``) points the merged issue's ``GroupHash``
  rows at the issue it went into, so ``event_manager`` files a later event of that
  fingerprint under that issue.
"""

from __future__ import annotations

from typing import Any

import anyio
import pytest
from _fake_http import api_send as _send

from sentry_async.testing import FakeSentry, FakeSentryFactory, RateLimitPolicy
from sentry_async.testing._builder import IssueBuilder

ORG = "acme"
DENIED = {"detail": "You do not have permission to perform this action."}
NOT_FOUND = {"detail": "The requested resource does not exist"}
MISSING_EVENT = {
    "detail": "Event not found. The event ID may be incorrect, or its age exceeded the "
    "retention period."
}
NO_MATCH = {
    "detail": "No matching event found. Try changing the environments, date range, or query."
}


def _acme(factory: FakeSentryFactory, **options: Any) -> tuple[FakeSentry, list[IssueBuilder]]:
    """``acme/backend``: ``BACKEND-1`` with three events, ``BACKEND-2`` and ``BACKEND-3``
    with one each."""
    server = factory.start(orgs=0, **options)
    backend = server.builder.add_organization(ORG).add_project("backend")
    issues = [backend.add_issue(f"E{n}: boom", events=3 if n == 1 else 1) for n in (1, 2, 3)]
    return server, issues


# -- every issue path at the top level ---------------------------------------------------------


@pytest.mark.parametrize("prefix", ["issues", "groups"])
async def test_every_issue_path_answers_at_the_top_level_as_under_the_organization(
    fake_sentry_factory: FakeSentryFactory, prefix: str
) -> None:
    server, issues = _acme(fake_sentry_factory)
    issue = issues[0]
    tails = [
        "",
        "events/",
        "events/latest/",
        f"events/{issue.event_ids[1]}/",
        "hashes/",
        "tags/environment/",
        "tags/environment/values/",
    ]
    with anyio.fail_after(20):
        for tail in tails:
            under_org = await _send(server, "GET", f"organizations/{ORG}/issues/{issue.id}/{tail}")
            top = await _send(server, "GET", f"{prefix}/{issue.id}/{tail}")
            assert under_org[0] == 200, (tail, under_org)
            assert top == under_org, tail
        status, body = await _send(
            server, "PUT", f"{prefix}/{issue.id}/", body={"status": "ignored"}
        )
        assert (status, body["status"]) == (200, "ignored")
        status, _ = await _send(server, "DELETE", f"{prefix}/{issues[1].id}/")
        assert status == 202
        assert await _send(server, "GET", f"organizations/{ORG}/issues/{issues[1].id}/") == (
            404,
            NOT_FOUND,
        )


async def test_the_top_level_looks_the_issue_up_and_checks_access_as_groupendpoint_does(
    fake_sentry_factory: FakeSentryFactory,
) -> None:
    server, issues = _acme(fake_sentry_factory)
    acme = server.builder.organization(ORG)
    acme.record.open_membership = False
    hidden = acme.add_project("not-mine", member=False).add_issue("H: boom")
    other = server.builder.add_organization("other").add_project("web").add_issue("O: boom")
    with anyio.fail_after(20):
        merged = await _send(
            server,
            "PUT",
            f"organizations/{ORG}/issues/",
            [("id", issues[0].id), ("id", issues[1].id)],
            {"merge": True},
        )
        assert merged[0] == 200 and merged[1]["merge"]["parent"] == issues[0].id
        deleted, _ = await _send(server, "DELETE", f"issues/{issues[2].id}/")
        assert deleted == 202
        answers = {
            "hidden": await _send(server, "GET", f"issues/{hidden.id}/"),
            "hidden's events": await _send(server, "GET", f"groups/{hidden.id}/events/"),
            "short id": await _send(server, "GET", f"issues/{issues[0].short_id}/"),
            "unknown": await _send(server, "GET", "issues/987654321/"),
            "deleted": await _send(server, "GET", f"issues/{issues[2].id}/"),
            "merged away": await _send(server, "GET", f"issues/{issues[1].id}/"),
            "other org": await _send(server, "GET", f"groups/{other.id}/"),
        }
    statuses = {case: status for case, (status, _) in answers.items()}
    assert statuses == {
        "hidden": 403,
        "hidden's events": 403,
        "short id": 404,
        "unknown": 404,
        "deleted": 404,
        "merged away": 200,
        "other org": 200,
    }
    assert answers["hidden"][1] == DENIED
    assert answers["short id"][1] == answers["deleted"][1] == NOT_FOUND
    assert answers["merged away"][1]["id"] == issues[0].id
    assert answers["other org"][1]["id"] == other.id


async def test_the_top_level_finds_an_issue_in_its_own_region_only(
    fake_sentry_factory: FakeSentryFactory,
) -> None:
    server = fake_sentry_factory.start(orgs=0, regions=("us", "de"))
    org = server.builder.add_organization(ORG, region="de")
    issue = org.add_project("backend").add_issue("E: boom")
    us, de = server.data.region_urls["us"], server.data.region_urls["de"]
    with anyio.fail_after(10):
        in_us = await _send(server, "GET", f"issues/{issue.id}/", base=us)
        in_de = await _send(server, "GET", f"issues/{issue.id}/", base=de)
    assert in_us == (404, NOT_FOUND)
    assert in_de[0] == 200 and in_de[1]["id"] == issue.id


@pytest.mark.parametrize(
    "per_group",
    [{}, {"GET /issues/{issue_id}/": (2, 3600.0, None)}],
    ids=["views-own-limits", "per-group"],
)
async def test_every_spelling_of_an_issue_counts_in_one_window(
    fake_sentry_factory: FakeSentryFactory, per_group: dict[str, tuple[int, float, int | None]]
) -> None:
    """``GroupDetailsEndpoint`` has limits of its own: its counter is the view's, whichever
    of its four spellings a request takes; a ``per_group`` limit on one spelling is the
    view's limit. The organization's own window is another."""
    policy = RateLimitPolicy(
        limit=2, window=3600.0, concurrent_limit=None, enforce=True, per_group=per_group
    )
    server, issues = _acme(fake_sentry_factory, rate_limits=policy)
    issue = issues[0].id
    with anyio.fail_after(10):
        first = await _send(server, "GET", f"organizations/{ORG}/issues/{issue}/")
        second = await _send(server, "GET", f"issues/{issue}/")
        third = await _send(server, "GET", f"groups/{issue}/")
        elsewhere = await _send(server, "GET", f"organizations/{ORG}/")
    assert (first[0], second[0], third[0], elsewhere[0]) == (200, 200, 429, 200)


# -- an issue's event: Sentry's 404s -----------------------------------------------------------


@pytest.mark.parametrize("prefix", [f"organizations/{ORG}/issues", "issues"])
async def test_an_issues_missing_event_is_sentrys_404(
    fake_sentry_factory: FakeSentryFactory, prefix: str
) -> None:
    server, issues = _acme(fake_sentry_factory)
    path = f"{prefix}/{issues[0].id}/events"
    with anyio.fail_after(10):
        missing = await _send(server, "GET", f"{path}/{'a' * 32}/")
        elsewhere = await _send(server, "GET", f"{path}/{issues[1].event_ids[0]}/")
        latest = await _send(server, "GET", f"{path}/latest/", [("query", "level:fatal")])
    assert missing == elsewhere == (404, MISSING_EVENT)
    assert latest == (404, NO_MATCH)


# -- an event added to an issue merged away ----------------------------------------------------


async def test_an_event_added_to_an_issue_merged_away_is_filed_under_the_issue_it_went_into(
    fake_sentry_factory: FakeSentryFactory,
) -> None:
    server, issues = _acme(fake_sentry_factory)
    busy, quiet = issues[0], issues[1]
    with anyio.fail_after(10):
        status, answer = await _send(
            server,
            "PUT",
            f"organizations/{ORG}/issues/",
            [("id", busy.id), ("id", quiet.id)],
            {"merge": True},
        )
        assert (status, answer["merge"]["parent"]) == (200, busy.id)
        event_id = quiet.add_event()
        listed = await _send(server, "GET", f"organizations/{ORG}/issues/{busy.id}/events/")
        looked_up = await _send(server, "GET", f"organizations/{ORG}/eventids/{event_id}/")
        issue = await _send(server, "GET", f"organizations/{ORG}/issues/{busy.id}/")
    assert event_id in busy.event_ids and quiet.event_ids == []
    assert event_id in {row["eventID"] for row in listed[1]}
    assert looked_up[1]["groupId"] == busy.id
    # The event is the merged-away issue's kind: its own title, in the other issue.
    assert looked_up[1]["event"]["title"] == quiet.title
    assert issue[1]["count"] == "5"
