"""Bulk and single issue mutations, pinned against Sentry's server code.

``update_groups`` looks the ids up first (``project__in=projects``) and, when none
matches, falls back to a search of up to 1000 issues (``BULK_MUTATION_LIMIT``): the
client confirms the ids with ``GET ...?group=`` (which skips the search) and confines any
fallback with ``query=issue.id:[...]``. Without ``project`` Sentry scopes a call to the
projects the user is a member of; ``project=-1`` means every accessible project.
"""

from __future__ import annotations

import aiohttp
import anyio
import msgspec
import pytest
from _fake_http import org_send
from _local_server import local_app
from aiohttp import web

from sentry_async import BulkPartialError, DecodeError, IssuesNotFound, SentryClient
from sentry_async.models import IssueUpdateResult
from sentry_async.testing import FakeSentry, FakeSentryFactory

ORG = "org-0"


def _statuses(server: FakeSentry) -> dict[str, str]:
    return {i: r.status for i, r in server.data.issues_by_id.items() if not r.deleted}


# -- ids that match nothing -----------------------------------------------------------------


async def test_fake_falls_back_to_the_search_when_no_id_matches(fake_sentry: FakeSentry) -> None:
    """As ``update_groups``: unmatched ids are no guard; the default query's issues change."""
    before = _statuses(fake_sentry)
    status, body = await org_send(
        fake_sentry, "PUT", "issues/", [("id", "999999999")], {"status": "resolved"}
    )
    assert status == 200 and body["status"] == "resolved"
    changed = [i for i, s in _statuses(fake_sentry).items() if s != before[i]]
    assert changed and "999999999" not in changed


async def test_fake_confines_the_fallback_to_an_issue_id_query(fake_sentry: FakeSentry) -> None:
    before = _statuses(fake_sentry)
    status, _ = await org_send(
        fake_sentry, "PUT", "issues/",
        [("id", "999999999"), ("query", "issue.id:[999999999]")],
        {"status": "resolved"},
    )
    assert status == 204
    assert _statuses(fake_sentry) == before


async def test_bulk_update_refuses_ids_that_match_nothing(
    fake_sentry: FakeSentry, client: SentryClient
) -> None:
    before = _statuses(fake_sentry)
    with anyio.fail_after(10), pytest.raises(IssuesNotFound) as caught:
        await client.issues.bulk_update(ORG, ["999999999", "999999998"], status="resolved")
    assert caught.value.missing == ["999999999", "999999998"]
    assert "999999999" in str(caught.value)
    assert [r.method for r in fake_sentry.requests] == ["GET"]
    assert _statuses(fake_sentry) == before


async def test_bulk_update_sends_only_ids_that_exist_and_reports_the_rest(
    fake_sentry: FakeSentry, client: SentryClient
) -> None:
    real = fake_sentry.data.issue_ids(ORG, status="unresolved")[:2]
    before = _statuses(fake_sentry)
    with anyio.fail_after(10):
        result = await client.issues.bulk_update(
            ORG, [real[0], "999999999", real[1]], status="resolved"
        )
    assert result.ids == real and result.missing == ["999999999"]
    (check,) = [r for r in fake_sentry.requests if r.method == "GET"]
    assert check.params("group") == [real[0], "999999999", real[1]]
    assert check.params("project") == ["-1"]
    (put,) = [r for r in fake_sentry.requests if r.method == "PUT"]
    assert put.params("id") == real
    assert put.param("query") == f"issue.id:[{real[0]},{real[1]}]"
    projects = [fake_sentry.data.issues_by_id[i].project.id for i in real]
    assert put.params("project") == list(dict.fromkeys(projects)), "the issues' projects"
    after = _statuses(fake_sentry)
    assert [i for i in after if after[i] != before[i]] == sorted(real, key=list(after).index)


async def test_bulk_calls_reach_projects_the_user_is_not_a_member_of(
    fake_sentry: FakeSentry, client: SentryClient
) -> None:
    """Without ``project`` Sentry acts only on member projects; the client looks the ids up
    and deletes with ``-1``, and an update names the issue's own project."""
    org = fake_sentry.data.orgs[0]
    other = org.projects[-1]
    other.member = False
    issue = next(i for i in other.issues if i.status == "unresolved")
    doomed = next(i for i in other.issues if i is not issue)
    before = _statuses(fake_sentry)
    with anyio.fail_after(10):
        await client.issues.bulk_update(ORG, [issue.id], status="resolved")
        await client.issues.bulk_delete(ORG, [doomed.id])
    assert issue.status == "resolved" and doomed.deleted
    after = _statuses(fake_sentry)
    assert [i for i in after if after[i] != before[i]] == [issue.id]
    assert [r.params("project") for r in fake_sentry.requests] == [["-1"], [other.id], ["-1"]]


async def test_fake_scopes_a_call_without_project_to_member_projects(
    fake_sentry: FakeSentry,
) -> None:
    other = fake_sentry.data.orgs[0].projects[-1]
    other.member = False
    issue = other.issues[0]
    async with (
        aiohttp.ClientSession() as http,
        http.delete(
            f"{fake_sentry.url}/api/0/organizations/{ORG}/issues/",
            params=[("id", issue.id)],
            headers={"Authorization": f"Bearer {fake_sentry.token}"},
        ) as reply,
    ):
        assert reply.status == 204
    assert not issue.deleted


# -- merge ----------------------------------------------------------------------------------


async def test_merge_that_needs_several_calls_is_refused(
    fake_sentry: FakeSentry, client: SentryClient
) -> None:
    """``handle_merge`` picks one parent per request: split, it would make several."""
    ids = [str(5_000_000 + n) for n in range(1200)]
    with anyio.fail_after(10), pytest.raises(ValueError, match="one call"):
        await client.issues.bulk_update(ORG, ids, merge=True)
    assert fake_sentry.requests == []


def _scripted(answers: list[tuple[int, bytes]], sent: list[str] | None = None) -> web.Application:
    """Answers the group check with every id asked, then each PUT with the next answer."""

    async def check(request: web.Request) -> web.Response:
        if request.method == "GET":
            ids = request.query.getall("group")
            rows = [{"id": i, "status": "unresolved", "project": {"id": "1"}} for i in ids]
            return web.json_response(rows)
        if sent is not None:
            sent.extend(request.query.getall("id"))
        status, body = answers.pop(0)
        return web.Response(status=status, body=body, content_type="application/json")

    app = web.Application()
    app.router.add_route("*", "/api/0/organizations/{org}/issues/", check)
    return app


@pytest.mark.parametrize("merge", [True, False])
async def test_merge_echoed_as_a_boolean_is_read(merge: bool) -> None:
    """``prepare_response`` echoes ``merge`` as sent unless it merged more than one group."""
    body = msgspec.json.encode({"merge": merge, "isSubscribed": True,
                                "subscriptionDetails": {"reason": "unknown"}})
    async with local_app(_scripted([(200, body)])) as url, SentryClient("t", base_url=url) as c:
        with anyio.fail_after(10):
            result = await c.issues.bulk_update(ORG, ["11"], merge=merge, is_subscribed=True)
    (answer,) = result.results
    assert isinstance(answer, IssueUpdateResult)
    assert answer.merge is merge
    assert answer.subscription_details == {"reason": "unknown"}


async def test_a_later_answer_that_cannot_be_read_is_a_partial_failure() -> None:
    ids = [str(5_000_000_000 + n) for n in range(800)]
    answers = [(200, b'{"status": "resolved"}'), (200, b'{"status": 5}')]
    sent: list[str] = []
    async with local_app(_scripted(answers, sent)) as url, SentryClient("t", base_url=url) as c:
        with anyio.fail_after(10), pytest.raises(BulkPartialError) as caught:
            await c.issues.bulk_update(ORG, ids, status="resolved")
    error = caught.value
    assert isinstance(error.error, DecodeError)
    assert error.done == sent, "the call whose answer was unreadable was still acted on"
    assert error.done + error.not_done == ids and error.not_done


# -- the project-scoped bulk calls ------------------------------------------------------------


async def test_fake_serves_the_project_bulk_calls_as_sentry_does(
    fake_sentry: FakeSentry, client: SentryClient
) -> None:
    """``ProjectGroupIndexEndpoint``: ids within the path's project; when none matches,
    the default search of that project changes instead."""
    org = fake_sentry.data.orgs[0]
    here, there = org.projects[0], org.projects[1]
    mine = next(i for i in here.issues if i.status == "unresolved")
    theirs = next(i for i in there.issues if i.status == "unresolved")
    with anyio.fail_after(10):
        await client.events.bulk_update_issues(ORG, here.slug, id=[int(mine.id)], is_public=True)
        assert mine.extra.get("isPublic") is True
        before = _statuses(fake_sentry)
        await client.events.bulk_update_issues(ORG, here.slug, id=[int(theirs.id)],
                                               status="resolved")
        changed = {i for i, s in _statuses(fake_sentry).items() if s != before[i]}
        assert changed and theirs.id not in changed
        assert {fake_sentry.data.issues_by_id[i].project.id for i in changed} == {here.id}
        await client.events.bulk_delete_issues(ORG, here.slug, id=[int(theirs.id)])
        assert not theirs.deleted
        await client.events.bulk_delete_issues(ORG, here.slug, id=[int(mine.id)])
        assert mine.deleted


async def test_a_built_project_can_be_one_the_user_is_not_a_member_of(
    fake_sentry_factory: FakeSentryFactory,
) -> None:
    server = fake_sentry_factory.start(orgs=0)
    acme = server.builder.add_organization("acme")
    mine = acme.add_project("mine").add_issue("KeyError: 'a'")
    theirs = acme.add_project("theirs", member=False).add_issue("KeyError: 'b'")
    async with server.client() as sentry:
        listed = {i.id async for i in sentry.issues.list("acme", query="")}
        every = {i.id async for i in sentry.issues.list("acme", query="", project=-1)}
    assert listed == {mine.id} and every == {mine.id, theirs.id}


async def test_merge_is_checked_again_once_short_ids_are_resolved() -> None:
    """Short ids shorter than their numeric ids fit one call; the numeric ids do not."""
    methods: list[str] = []

    async def short_id(request: web.Request) -> web.Response:
        methods.append(request.method)
        short = request.match_info["short_id"]
        number = int(short.split("-")[1])
        return web.json_response(
            {"groupId": str(9_000_000_000_000_000_000 + number), "shortId": short}
        )

    async def issues(request: web.Request) -> web.Response:
        methods.append(request.method)
        ids = request.query.getall("group", [])
        rows = [{"id": i, "status": "unresolved", "project": {"id": "1"}} for i in ids]
        return web.json_response(rows)

    app = web.Application()
    app.router.add_get("/api/0/organizations/{org}/shortids/{short_id}/", short_id)
    app.router.add_route("*", "/api/0/organizations/{org}/issues/", issues)
    shorts = [f"P-{n}" for n in range(300)]
    async with local_app(app) as url, SentryClient("t", base_url=url) as c:
        with anyio.fail_after(10), pytest.raises(ValueError, match="one call"):
            await c.issues.bulk_update(ORG, shorts, merge=True)
    assert "PUT" not in methods and "GET" in methods


async def test_issues_being_deleted_or_merged_count_as_missing() -> None:
    """The group list serializes them with their status; a bulk update leaves them out."""
    statuses = {"1": "unresolved", "2": "pending_deletion", "3": "pending_merge"}
    sent: list[str] = []

    async def issues(request: web.Request) -> web.Response:
        if request.method == "GET":
            ids = request.query.getall("group")
            rows = [{"id": i, "status": statuses[i], "project": {"id": "1"}} for i in ids]
            return web.json_response(rows)
        sent.extend(request.query.getall("id"))
        return web.json_response({"status": "resolved"})

    app = web.Application()
    app.router.add_route("*", "/api/0/organizations/{org}/issues/", issues)
    async with local_app(app) as url, SentryClient("t", base_url=url) as c:
        with anyio.fail_after(10):
            result = await c.issues.bulk_update(ORG, ["1", "2", "3"], status="resolved")
    assert sent == ["1"] and result.missing == ["2", "3"]
