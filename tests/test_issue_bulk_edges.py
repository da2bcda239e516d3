"""Bulk issue calls at their edges: a call that failed after it may have acted, ids with
leading zeros, issues being deleted or merged, short ids that match nothing.

Sentry reads issue ids as integers everywhere (``int(id)`` in
``OrganizationGroupIndexEndpoint.put``, ``set(map(int, ...))`` for ``?group=``, Django's
``id__in`` for deletes), and deleting or merging an issue only marks it
``PENDING_DELETION`` / ``PENDING_MERGE``: ``?group=`` and ``update_groups`` still find it.
"""

from __future__ import annotations

import pickle
from typing import Any

import anyio
import pytest
from _fake_http import org_send
from _local_server import local_app
from aiohttp import web
from test_issue_mutations import _statuses

from sentry_async import (
    BulkPartialError,
    ConnectionFailed,
    Forbidden,
    IssuesNotFound,
    NotFound,
    RateLimited,
    RetryPolicy,
    SentryClient,
    ServerError,
)
from sentry_async._protocol.params import issue_id
from sentry_async.errors import (
    BadRequest,
    ClientClosed,
    TransportError,
    WrongEventLoop,
)
from sentry_async.resources.issues import _may_have_acted
from sentry_async.testing import FakeSentry, FakeSentryFactory, Fault

ORG = "org-0"
QUICK = RetryPolicy(attempts=2, backoff_base=0.01, backoff_max=0.05)


# -- a failed call that may have acted ------------------------------------------------------


def _many_issues(factory: FakeSentryFactory, count: int) -> tuple[FakeSentry, list[str]]:
    server = factory.start(orgs=0)
    project = server.builder.add_organization(ORG).add_project("backend")
    return server, [project.add_issue(f"Error {n}", events=1).id for n in range(count)]


async def test_a_call_whose_answer_broke_off_is_uncertain_not_undone(
    fake_sentry_factory: FakeSentryFactory,
) -> None:
    """The fake applies the change, then cuts the answer off: those ids were changed."""
    server, ids = _many_issues(fake_sentry_factory, 600)
    server.faults.add(
        Fault("drop_mid_body", method="PUT", path=r"/issues/$", after=1, times=None)
    )
    async with SentryClient(server.token, base_url=server.url, retry=QUICK) as client:
        with anyio.fail_after(30), pytest.raises(BulkPartialError) as caught:
            await client.issues.bulk_update(ORG, ids, status="resolved")
    error = caught.value
    puts = [r for r in server.requests if r.method == "PUT"]
    first, second = puts[0].params("id"), puts[1].params("id")
    assert len(first) + len(second) == len(ids), "two calls: the URL limit splits 600 ids"
    assert isinstance(error.error, ConnectionFailed) and error.error.maybe_sent
    assert error.done == first
    assert error.uncertain == second and error.not_done == []
    assert all(server.data.issues_by_id[i].status == "resolved" for i in error.uncertain)
    assert f"uncertain: {len(second)}" in str(error) and "not changed: 0" in str(error)


async def test_a_call_refused_with_429_is_not_done(
    fake_sentry_factory: FakeSentryFactory,
) -> None:
    """A 429 is the rate limiter's, before Sentry's handler runs: nothing changed."""
    server, ids = _many_issues(fake_sentry_factory, 600)
    server.faults.add(Fault("status", status=429, method="PUT", path=r"/issues/$", after=1,
                            times=None))
    async with SentryClient(server.token, base_url=server.url, retry=QUICK) as client:
        with anyio.fail_after(30), pytest.raises(BulkPartialError) as caught:
            await client.issues.bulk_update(ORG, ids, status="resolved")
    error = caught.value
    assert isinstance(error.error, RateLimited)
    first = next(r for r in server.requests if r.method == "PUT").params("id")
    assert error.done == first and error.uncertain == []
    assert error.not_done == ids[len(first) :]
    assert all(server.data.issues_by_id[i].status == "unresolved" for i in error.not_done)


async def test_a_failed_first_call_of_several_says_which_ids_may_have_changed(
    fake_sentry_factory: FakeSentryFactory,
) -> None:
    """Was: the first call's own ``ServerError``, no id lists, while a later call's failure
    said which ids had changed."""
    server, ids = _many_issues(fake_sentry_factory, 600)
    server.faults.add(Fault("status", status=503, method="PUT", path=r"/issues/$", times=None))
    async with SentryClient(server.token, base_url=server.url, retry=QUICK) as client:
        with anyio.fail_after(30), pytest.raises(BulkPartialError) as caught:
            await client.issues.bulk_update(ORG, ids, status="resolved")
    error = caught.value
    first = next(r for r in server.requests if r.method == "PUT").params("id")
    assert 0 < len(first) < len(ids), "the URL limit splits 600 ids"
    assert isinstance(error.error, ServerError) and error.__cause__ is error.error
    # A 5xx may be a proxy's while Sentry carries on: the failed call is uncertain.
    assert error.done == [] and error.uncertain == first
    assert error.not_done == ids[len(first) :]
    assert "stopped after 0 of 600" in str(error)
    assert all(server.data.issues_by_id[i].status == "unresolved" for i in ids)


async def test_a_first_call_refused_with_429_raises_its_own_error_and_changes_nothing(
    fake_sentry_factory: FakeSentryFactory,
) -> None:
    """Refused before Sentry's handler ran, the first call changed nothing: its own error
    says so (any error but ``BulkPartialError`` means nothing changed), and a caller's
    ``except RateLimited`` or ``except Forbidden`` still holds."""
    server, ids = _many_issues(fake_sentry_factory, 600)
    server.faults.add(Fault("status", status=429, method="DELETE", path=r"/issues/$",
                            times=None))
    async with SentryClient(server.token, base_url=server.url, retry=QUICK) as client:
        with anyio.fail_after(30), pytest.raises(RateLimited):
            await client.issues.bulk_delete(ORG, ids)
    assert not any(server.data.issues_by_id[i].deleted for i in ids)


@pytest.mark.parametrize("method", ["PUT", "DELETE"])
async def test_a_bulk_call_of_one_request_fails_as_one_of_several_would(
    fake_sentry: FakeSentry, method: str
) -> None:
    """How many calls the ids need is the client's business (1000 ids, 8 KB of URL, short
    ids resolved): a caller learns from ``BulkPartialError`` which ids may have changed,
    whatever the count. An error of its own type means nothing changed."""
    ids = fake_sentry.data.issue_ids(ORG, status="unresolved")[:3]
    fake_sentry.faults.add(Fault("status", status=500, method=method, path=r"/issues/$",
                                 times=None))
    async with SentryClient(fake_sentry.token, base_url=fake_sentry.url, retry=QUICK) as c:
        call = (
            c.issues.bulk_update(ORG, ids, status="resolved")
            if method == "PUT"
            else c.issues.bulk_delete(ORG, ids)
        )
        with anyio.fail_after(30), pytest.raises(BulkPartialError) as caught:
            await call
    error = caught.value
    assert isinstance(error.error, ServerError) and error.__cause__ is error.error
    assert (error.done, error.uncertain, error.not_done) == ([], ids, [])


async def test_a_failed_first_call_never_shows_the_token() -> None:
    """The server echoes the request's headers in its 502: the partial failure, its
    error and that error's message are blanked of the token."""
    token = "sntryu_" + "c" * 64

    async def echo(request: web.Request) -> web.Response:
        body = {"detail": f"upstream refused {request.headers['Authorization']}"}
        return web.json_response(body, status=502)

    app = web.Application()
    app.router.add_route("*", "/api/0/organizations/{org}/issues/", echo)
    ids = [str(5_000_000_000 + n) for n in range(1500)]
    async with local_app(app) as url, SentryClient(token, base_url=url, retry=QUICK) as c:
        with anyio.fail_after(30), pytest.raises(BulkPartialError) as caught:
            await c.issues.bulk_delete(ORG, ids)
    error = caught.value
    assert error.done == [] and 0 < len(error.uncertain) < len(ids)
    assert error.uncertain + error.not_done == ids
    shown = f"{error} {error!r} {error.error} {error.error!r} {error.__cause__}"
    shown += repr(pickle.loads(pickle.dumps(error)).error)
    assert "upstream refused" in shown
    assert token not in shown and token[len("sntryu_") :] not in shown


def test_which_failures_may_have_acted() -> None:
    def transport(**kwargs: Any) -> TransportError:
        return ConnectionFailed("broke", method="PUT", url="u", **kwargs)

    assert not _may_have_acted(transport(maybe_sent=False))
    assert _may_have_acted(transport())
    assert _may_have_acted(transport(status=200))
    assert not _may_have_acted(RateLimited(429, method="PUT", url="u"))
    assert not _may_have_acted(Forbidden(403, method="PUT", url="u"))
    # ``update_groups`` sets a priority before refusing a release resolution for several
    # projects; a proxy's 502/504 may come while Sentry carries on.
    assert _may_have_acted(BadRequest(400, method="PUT", url="u"))
    assert _may_have_acted(ServerError(504, method="PUT", url="u"))
    assert _may_have_acted(ClientClosed("closed while the call was in flight"))
    assert not _may_have_acted(WrongEventLoop("another loop"))


def test_bulk_partial_error_keeps_uncertain_ids() -> None:
    cause = ServerError(504, method="PUT", url="u", detail="gateway timeout")
    error = BulkPartialError(cause, done=["1"], uncertain=["2"], not_done=["3", "4"])
    assert "1 of 4" in str(error)
    assert "ids changed: 1, uncertain: 1, not changed: 2" in str(error)
    copy = pickle.loads(pickle.dumps(error))
    assert (copy.done, copy.uncertain, copy.not_done) == (["1"], ["2"], ["3", "4"])
    assert BulkPartialError(cause, done=["1"], not_done=["2"]).uncertain == []


# -- numeric ids as Sentry reads them -------------------------------------------------------


def test_numeric_ids_are_read_as_integers() -> None:
    assert issue_id("05000002") == "5000002"
    assert issue_id(" 007 ") == "7"
    assert issue_id("PROJ-012") == "PROJ-012"
    for zero in ("0", "000"):
        with pytest.raises(ValueError, match="positive"):
            issue_id(zero)


async def test_bulk_update_finds_ids_written_with_leading_zeros(
    fake_sentry: FakeSentry, client: SentryClient
) -> None:
    first, second = fake_sentry.data.issue_ids(ORG, status="unresolved")[:2]
    with anyio.fail_after(10):
        result = await client.issues.bulk_update(ORG, ["0" + first, second], status="resolved")
    assert result.ids == [first, second] and result.missing == []
    (put,) = [r for r in fake_sentry.requests if r.method == "PUT"]
    assert put.params("id") == [first, second]
    assert {fake_sentry.data.issues_by_id[i].status for i in (first, second)} == {"resolved"}


async def test_bulk_delete_sends_ids_written_with_leading_zeros_as_integers(
    fake_sentry: FakeSentry, client: SentryClient
) -> None:
    doomed = fake_sentry.data.issue_ids(ORG)[0]
    with anyio.fail_after(10):
        result = await client.issues.bulk_delete(ORG, ["00" + doomed])
    assert result.ids == [doomed]
    (delete,) = [r for r in fake_sentry.requests if r.method == "DELETE"]
    assert delete.params("id") == [doomed]
    assert fake_sentry.data.issues_by_id[doomed].deleted


async def test_fake_reads_bulk_ids_as_integers(fake_sentry: FakeSentry) -> None:
    """``int(id)`` on PUT, ``id__in`` on DELETE: ``05`` names issue 5, no search runs."""
    target, doomed = fake_sentry.data.issue_ids(ORG, status="unresolved")[:2]
    before = _statuses(fake_sentry)
    status, body = await org_send(
        fake_sentry,
        "PUT",
        "issues/",
        [("id", "0" + target), ("project", "-1")],
        {"status": "resolved"},
    )
    assert status == 200 and body["status"] == "resolved"
    after = _statuses(fake_sentry)
    assert [i for i in after if after[i] != before[i]] == [target]
    status, _ = await org_send(
        fake_sentry, "DELETE", "issues/", [("id", "0" + doomed), ("project", "-1")]
    )
    assert status == 204 and fake_sentry.data.issues_by_id[doomed].deleted


async def test_fake_fails_on_ids_that_are_not_integers(fake_sentry: FakeSentry) -> None:
    """Sentry's ``int(id)`` (PUT) and Django's cast (DELETE) raise: a 500, no search."""
    before = _statuses(fake_sentry)
    status, body = await org_send(
        fake_sentry, "PUT", "issues/", [("id", "PROJECT-0-0-2"), ("project", "-1")], {"status": "resolved"}
    )
    assert status == 500 and body["detail"] == "Internal Error"
    status, body = await org_send(
        fake_sentry, "DELETE", "issues/", [("id", "abc"), ("project", "-1")]
    )
    assert status == 500 and body["detail"] == "Error deleting groups"
    assert _statuses(fake_sentry) == before


# -- issues being deleted or merged ---------------------------------------------------------


async def test_fake_keeps_a_deleted_issue_for_id_lookups(
    fake_sentry: FakeSentry, client: SentryClient
) -> None:
    """``delete_group_list`` marks the group ``PENDING_DELETION``; ``?group=`` and
    ``update_groups`` do not filter on status, the search and the detail endpoint do."""
    doomed = fake_sentry.data.issue_ids(ORG, status="unresolved")[0]
    with anyio.fail_after(10):
        await client.issues.delete(ORG, doomed)
    status, rows = await org_send(
        fake_sentry, "GET", "issues/", [("group", doomed), ("project", "-1")]
    )
    assert status == 200
    assert [(r["id"], r["status"], r["substatus"]) for r in rows] == [
        (doomed, "pending_deletion", None)
    ]
    before = _statuses(fake_sentry)
    status, _ = await org_send(
        fake_sentry, "PUT", "issues/", [("id", doomed), ("project", "-1")], {"status": "resolved"}
    )
    assert status == 200, "the id names a group: no search"
    assert _statuses(fake_sentry) == before
    with anyio.fail_after(10):
        listed = {i.id async for i in client.issues.list(ORG, query="", project=-1)}
        with pytest.raises(NotFound):
            await client.issues.get(ORG, doomed)
    assert doomed not in listed


async def test_fake_shows_a_merged_issue_as_pending_merge(
    fake_sentry: FakeSentry, client: SentryClient
) -> None:
    org = fake_sentry.data.orgs[0]
    pair = [i.id for i in org.projects[0].issues[:2]]
    with anyio.fail_after(10):
        result = await client.issues.bulk_update(ORG, pair, merge=True)
    (answer,) = result.results
    assert answer is not None and isinstance(answer.merge, dict)
    (child,) = answer.merge["children"]
    status, rows = await org_send(
        fake_sentry, "GET", "issues/", [("group", child), ("project", "-1")]
    )
    assert status == 200
    assert [(r["id"], r["status"], r["substatus"]) for r in rows] == [
        (child, "pending_merge", None)
    ]


async def test_bulk_update_counts_issues_being_deleted_as_missing(
    fake_sentry: FakeSentry, client: SentryClient
) -> None:
    doomed, live = fake_sentry.data.issue_ids(ORG, status="unresolved")[:2]
    with anyio.fail_after(10):
        await client.issues.bulk_delete(ORG, [doomed])
        result = await client.issues.bulk_update(ORG, [doomed, live], status="resolved")
    assert result.ids == [live] and result.missing == [doomed]
    (put,) = [r for r in fake_sentry.requests if r.method == "PUT"]
    assert put.params("id") == [live]
    fake_sentry.requests.clear()
    with anyio.fail_after(10), pytest.raises(IssuesNotFound) as caught:
        await client.issues.bulk_update(ORG, [doomed], status="resolved")
    assert caught.value.missing == [doomed]
    assert [r.method for r in fake_sentry.requests] == ["GET"]


# -- short ids that match nothing -----------------------------------------------------------


async def test_bulk_update_lists_unknown_short_ids_as_missing(
    fake_sentry: FakeSentry, client: SentryClient
) -> None:
    first, second = fake_sentry.data.issue_ids(ORG, status="unresolved")[:2]
    short = fake_sentry.data.issues_by_id[first].short_id
    with anyio.fail_after(10):
        result = await client.issues.bulk_update(
            ORG, [short, "NOPE-ZZZ", second, "99999999"], status="resolved"
        )
    assert result.ids == [first, second]
    assert result.missing == ["NOPE-ZZZ", "99999999"]
    (check,) = [r for r in fake_sentry.requests if r.params("group")]
    assert check.params("group") == [first, second, "99999999"]
    assert {fake_sentry.data.issues_by_id[i].status for i in (first, second)} == {"resolved"}


async def test_bulk_update_of_only_unknown_short_ids_sends_nothing(
    fake_sentry: FakeSentry, client: SentryClient
) -> None:
    with anyio.fail_after(10), pytest.raises(IssuesNotFound) as caught:
        await client.issues.bulk_update(ORG, ["NOPE-ZZZ"], status="resolved")
    assert caught.value.missing == ["NOPE-ZZZ"]
    assert all(r.method == "GET" for r in fake_sentry.requests)


async def test_a_short_id_lookup_that_fails_otherwise_still_raises() -> None:
    async def short_id(request: web.Request) -> web.Response:
        return web.json_response({"detail": "no access"}, status=403)

    async def issues(request: web.Request) -> web.Response:
        raise AssertionError("nothing is sent after a refused lookup")

    app = web.Application()
    app.router.add_get("/api/0/organizations/{org}/shortids/{short_id}/", short_id)
    app.router.add_route("*", "/api/0/organizations/{org}/issues/", issues)
    async with local_app(app) as url, SentryClient("t", base_url=url, retry=QUICK) as c:
        with anyio.fail_after(10), pytest.raises(Forbidden):
            await c.issues.bulk_update(ORG, ["P-1", "12"], status="resolved")


async def test_bulk_delete_of_an_unknown_short_id_raises_before_deleting(
    fake_sentry: FakeSentry, client: SentryClient
) -> None:
    """A delete checks no id; one it cannot even name is refused before anything goes."""
    live = fake_sentry.data.issue_ids(ORG)[0]
    with anyio.fail_after(10), pytest.raises(NotFound):
        await client.issues.bulk_delete(ORG, [live, "NOPE-ZZZ"])
    assert not fake_sentry.data.issues_by_id[live].deleted
    assert all(r.method == "GET" for r in fake_sentry.requests)
