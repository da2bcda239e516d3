"""Bulk issue calls and the issue list against Sentry's own rules.

``update_groups`` validates the change (``GroupValidator``: a release in ``statusDetails``,
``assignedTo`` in a closed organization) against every project the request names before it
narrows them to the issues' projects, and changes nothing before that validation;
``build_query_params_from_request`` applies an issue view only with ``savedSearch=0`` and no
query; ``/shortids/`` follows a merge to the issue it went into.
"""

from __future__ import annotations

from typing import Any

import anyio
import pytest
from _fake_http import org_get, org_send

from sentry_async import (
    BulkPartialError,
    IssuesNotFound,
    NotFound,
    RetryPolicy,
    SentryClient,
)
from sentry_async._protocol import params
from sentry_async.errors import BadRequest, ServerError
from sentry_async.resources.issues import _may_have_acted
from sentry_async.testing import FakeSentry, FakeSentryFactory
from sentry_async.testing._builder import IssueBuilder, OrganizationBuilder

ORG = "acme"
NO_RELEASE = {"inRelease": ["Unable to find a release with the given version."]}
QUICK = RetryPolicy(attempts=2, backoff_base=0.01, backoff_max=0.05)


def _org(factory: FakeSentryFactory) -> tuple[FakeSentry, OrganizationBuilder]:
    server = factory.start(orgs=0)
    return server, server.builder.add_organization(ORG)


def _client(server: FakeSentry) -> SentryClient:
    return SentryClient(server.token, base_url=server.url, retry=QUICK)


# -- 1. each call names its own issues' projects ------------------------------------------


async def test_fake_validates_a_change_against_every_project_the_request_names(
    fake_sentry_factory: FakeSentryFactory,
) -> None:
    """``validate_request`` runs before the projects are narrowed: ``-1`` reaches ``beta``,
    which has no ``alpha@1.4.0``; naming ``alpha`` alone is accepted."""
    server, org = _org(fake_sentry_factory)
    alpha = org.add_project("alpha")
    org.add_project("beta")
    issue = alpha.add_issue("KeyError: a")
    body = {"status": "resolved", "statusDetails": {"inRelease": "alpha@1.4.0"}}
    with anyio.fail_after(10):
        status, answer = await org_send(
            server, "PUT", "issues/", [("id", issue.id), ("project", "-1")], body, org=ORG
        )
        assert (status, answer) == (400, {"statusDetails": NO_RELEASE})
        assert server.data.issues_by_id[issue.id].status == "unresolved"
        status, answer = await org_send(
            server, "PUT", "issues/", [("id", issue.id), ("project", alpha.id)], body, org=ORG
        )
    assert status == 200 and answer["statusDetails"]["inRelease"] == "alpha@1.4.0"


async def test_fake_refuses_a_team_without_access_to_a_named_project(
    fake_sentry_factory: FakeSentryFactory,
) -> None:
    """In a closed organization ``validate_assignedTo`` wants the team on every project the
    request names (the fake's teams are one per project)."""
    server, org = _org(fake_sentry_factory)
    org.record.open_membership = False
    alpha = org.add_project("alpha")
    org.add_project("beta")
    issue = alpha.add_issue("KeyError: a")
    (team,) = [t["id"] for t in server.data.teams(org.record) if t["slug"] == "alpha-team"]
    body = {"assignedTo": f"team:{team}"}
    with anyio.fail_after(10):
        status, answer = await org_send(
            server, "PUT", "issues/", [("id", issue.id), ("project", "-1")], body, org=ORG
        )
        assert (status, answer) == (
            400, {"assignedTo": ["Cannot assign to a team without access to the project"]}
        )
        status, answer = await org_send(
            server, "PUT", "issues/", [("id", issue.id), ("project", alpha.id)], body, org=ORG
        )
    assert status == 200 and answer["assignedTo"]["id"] == team


async def test_bulk_update_names_the_projects_of_each_calls_issues(
    fake_sentry_factory: FakeSentryFactory,
) -> None:
    server, org = _org(fake_sentry_factory)
    alpha, beta = org.add_project("alpha"), org.add_project("beta")
    gamma = org.add_project("gamma")
    a, b = alpha.add_issue("KeyError: a"), beta.add_issue("KeyError: b")
    async with _client(server) as sentry:
        with anyio.fail_after(10):
            result = await sentry.issues.bulk_update(
                ORG, [a.id], status="resolved", status_details={"inRelease": "alpha@1.4.0"}
            )
            assert result.results[0] is not None
            assert result.results[0].status_details["inRelease"] == "alpha@1.4.0"
            await sentry.issues.bulk_update(
                ORG, [b.id, a.id], project=["gamma", "beta", "alpha"], has_seen=True
            )
    lookups = server.requests.matching("GET", "/organizations/{org}/issues/")
    assert [r.params("project") for r in lookups] == [["-1"], [gamma.id, beta.id, alpha.id]]
    puts = server.requests.matching("PUT", "/organizations/{org}/issues/")
    assert [r.params("project") for r in puts] == [[alpha.id], [beta.id, alpha.id]]
    assert server.data.issues_by_id[a.id].status == "resolved"


def test_calls_are_split_with_their_projects_counted() -> None:
    """Each call's URL holds its ids and, once each, its ids' projects."""
    projects = {"1": "10", "2": "10", "3": "20", "4": "30"}
    cost = len("&id=1")
    budget = 2 * cost + len("&project=10")  # two ids of one project
    chunks = params.scoped_id_chunks(["1", "2", "3", "4"], projects, base_length=0, budget=budget)
    assert chunks == [(["1", "2"], ["10"]), (["3"], ["20"]), (["4"], ["30"])]
    assert params.scoped_id_chunks(["1", "2", "3"], projects, base_length=0, limit=2) == [
        (["1", "2"], ["10"]),
        (["3"], ["20"]),
    ]
    with pytest.raises(ValueError, match="alone does not fit"):
        params.scoped_id_chunks(["1"], projects, base_length=0, budget=cost)


def _error(status: int, data: Any) -> BadRequest | ServerError:
    kind = BadRequest if status == 400 else ServerError
    return kind(status, method="PUT", url="u", data=data)


@pytest.mark.parametrize(
    ("data", "acted"),
    [
        ({"statusDetails": NO_RELEASE}, False),
        ({"assignedTo": ["Cannot assign to non-team member"]}, False),
        ({"non_field_errors": ["Other attributes cannot be updated when discarding"]}, False),
        # After the priority is set; after every other change (handle_merge).
        ({"detail": "Cannot set resolved in release for multiple projects."}, True),
        (["Only error issues can be merged."], True),
        (None, True),
    ],
)
def test_a_validation_400_changed_nothing(data: Any, acted: bool) -> None:
    assert _may_have_acted(_error(400, data)) is acted


async def test_a_first_call_refused_by_validation_raises_its_own_error(
    fake_sentry_factory: FakeSentryFactory,
) -> None:
    """``validate_request`` comes before any change: nothing is uncertain."""
    server, org = _org(fake_sentry_factory)
    issue = org.add_project("alpha").add_issue("KeyError: a")
    org.add_project("beta")
    async with _client(server) as sentry:
        with anyio.fail_after(10), pytest.raises(BadRequest) as caught:
            await sentry.issues.bulk_update(
                ORG, [issue.id], status="resolved", status_details={"inRelease": "beta@1.4.0"}
            )
    assert not isinstance(caught.value, BulkPartialError)
    assert caught.value.data == {"statusDetails": NO_RELEASE}
    assert server.data.issues_by_id[issue.id].status == "unresolved"


# -- 2. view_id -----------------------------------------------------------------------------


async def test_list_with_a_view_asks_for_it_as_sentry_reads_it(
    fake_sentry_factory: FakeSentryFactory,
) -> None:
    """``viewId`` is read only with ``savedSearch=0`` and no query; the fake holds no views
    and says so rather than search something else."""
    server, org = _org(fake_sentry_factory)
    org.add_project("alpha").add_issue("KeyError: a")
    async with _client(server) as sentry:
        with anyio.fail_after(10), pytest.raises(BadRequest, match="holds no issue views"):
            await sentry.issues.list(ORG, view_id=42, limit=1).collect()
    (listing,) = server.requests.matching("GET", "/organizations/{org}/issues/")
    assert (listing.param("savedSearch"), listing.param("viewId")) == ("0", "42")
    assert listing.param("query") is None and listing.param("sort") is None


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"view_id": 4, "query": "is:unresolved"}, "view_id"),
        ({"view_id": 4, "query": ""}, "view_id"),
        ({"view_id": 4, "sort": "freq"}, "view_id"),
        ({"view_id": "4a"}, "view_id"),
        ({"view_id": True}, "view_id"),
        ({"view_id": 0}, "view_id"),
    ],
)
def test_list_refuses_a_view_it_cannot_apply(kwargs: dict[str, Any], message: str) -> None:
    sentry = SentryClient("t", base_url="http://127.0.0.1:9", allow_insecure_http=True)
    with pytest.raises(ValueError, match=message):
        sentry.issues.list(ORG, **kwargs)


@pytest.mark.parametrize(
    ("params", "status"),
    [
        ([("viewId", "42")], 200),  # no savedSearch=0: Sentry never reads viewId
        ([("savedSearch", "0"), ("viewId", "42"), ("query", "is:unresolved")], 200),
        ([("savedSearch", "0")], 200),  # the user's first view: the fake's user has none
        ([("savedSearch", "0"), ("viewId", "4x")], 500),  # int(viewId)
        ([("savedSearch", "0"), ("viewId", "42")], 400),
        ([("savedSearch", "0"), ("viewId", "42"), ("query", "")], 400),  # has_query is falsy
    ],
)
async def test_fake_reads_a_view_where_sentry_does(
    fake_sentry: FakeSentry, params: list[tuple[str, str]], status: int
) -> None:
    with anyio.fail_after(10):
        got, body, _ = await org_get(fake_sentry, "issues/", [("limit", "1"), *params])
    assert got == status
    if status == 400:
        assert "holds no issue views" in body["detail"]


# -- 3. missing ids as given ----------------------------------------------------------------


async def test_missing_names_a_short_id_as_given(fake_sentry_factory: FakeSentryFactory) -> None:
    server, org = _org(fake_sentry_factory)
    a = org.add_project("alpha").add_issue("KeyError: a")
    b = org.add_project("beta").add_issue("KeyError: b")
    async with _client(server) as sentry:
        with anyio.fail_after(10):
            result = await sentry.issues.bulk_update(
                ORG, [a.id, b.short_id.lower(), "NOPE-1"], project="alpha", status="resolved"
            )
            assert result.ids == [a.id]
            assert result.missing == [b.short_id.lower(), "NOPE-1"]
            with pytest.raises(IssuesNotFound) as caught:
                await sentry.issues.bulk_update(
                    ORG, [b.short_id], project="alpha", status="resolved"
                )
    assert caught.value.missing == [b.short_id]


# -- 4. a merged-away issue's short id ------------------------------------------------------


async def _merged(
    factory: FakeSentryFactory,
) -> tuple[FakeSentry, IssueBuilder, IssueBuilder, IssueBuilder]:
    server, org = _org(factory)
    web = org.add_project("web")
    parent = web.add_issue("KeyError: a", events=3)
    child = web.add_issue("KeyError: b", events=1)
    bystander = web.add_issue("ValueError: c", events=1)
    async with _client(server) as sentry:
        with anyio.fail_after(10):
            result = await sentry.issues.bulk_update(ORG, [parent.id, child.id], merge=True)
    assert result.results[0] is not None and result.results[0].merge is not None
    server.requests.clear()
    return server, parent, child, bystander


async def test_a_merged_issues_short_id_is_missing_as_its_id_is(
    fake_sentry_factory: FakeSentryFactory,
) -> None:
    server, parent, child, bystander = await _merged(fake_sentry_factory)
    async with _client(server) as sentry:
        with anyio.fail_after(10):
            by_id = await sentry.issues.bulk_update(ORG, [child.id, bystander.id], status="ignored")
            by_short = await sentry.issues.bulk_update(
                ORG, [child.short_id.lower(), bystander.id], status="ignored"
            )
    assert (by_id.ids, by_id.missing) == ([bystander.id], [child.id])
    assert (by_short.ids, by_short.missing) == ([bystander.id], [child.short_id.lower()])
    assert server.data.issues_by_id[parent.id].status == "unresolved"


async def test_bulk_delete_of_a_merged_issues_short_id_deletes_nothing(
    fake_sentry_factory: FakeSentryFactory,
) -> None:
    server, parent, child, bystander = await _merged(fake_sentry_factory)
    async with _client(server) as sentry:
        with anyio.fail_after(10), pytest.raises(NotFound, match=child.short_id):
            await sentry.issues.bulk_delete(ORG, [bystander.id, child.short_id])
    assert not server.data.issues_by_id[parent.id].deleted
    assert not server.data.issues_by_id[bystander.id].deleted
    assert all(r.method == "GET" for r in server.requests)


async def test_a_live_short_id_however_spelled_is_itself(
    fake_sentry_factory: FakeSentryFactory,
) -> None:
    """``parse_short_id`` reads the slug in any case and the counter in base 32 (any case,
    ``O`` for 0, leading zeros): those spellings name the issue itself, not a redirect."""
    server, org = _org(fake_sentry_factory)
    issue = org.add_project("web").add_issue("KeyError: a")
    slug, _, counter = issue.short_id.rpartition("-")
    spelled = f"{slug.lower()}-O0{counter.lower()}"
    async with _client(server) as sentry:
        with anyio.fail_after(10):
            result = await sentry.issues.bulk_update(ORG, [spelled], status="resolved")
            await sentry.issues.bulk_delete(ORG, [spelled])
    assert result.ids == [issue.id] and result.missing == []
    assert server.data.issues_by_id[issue.id].deleted


@pytest.mark.parametrize(
    ("asked", "answered", "same"),
    [
        ("WEB-2", "WEB-2", True),
        ("web-2", "WEB-2", True),
        ("WEB-002", "WEB-2", True),
        ("WEB-1O", "WEB-10", True),
        ("WEB-iL", "WEB-11", True),
        ("MY_WEB-A", "MY_WEB-A", True),
        ("WEB-3", "WEB-2", False),
        ("API-2", "WEB-2", False),
        ("WEB-2", "", False),
    ],
)
def test_same_short_id(asked: str, answered: str, same: bool) -> None:
    assert params.same_short_id(asked, answered) is same
