"""The fake's token scopes, pinned against Sentry's permission classes.

A token Sentry refuses for its scopes gets 403 before the endpoint looks anything up
(``ScopedPermission.has_permission``, ``api/permissions.py``, runs in DRF's ``initial()``,
before ``convert_args``): DRF's ``PermissionDenied`` body, and on current servers the
RFC 6750 challenge ``WWW-Authenticate: Bearer error="insufficient_scope", scope="..."``
naming the accepted scopes, sorted (``InsufficientScope``, ``api/exceptions.py``). Each
route accepts the scopes its endpoint's permission class lists for the method:

- ``OrganizationPermission`` (``api/bases/organization.py``): the organization itself,
  its list and projects, Discover, events-stats, stats_v2 and event-id look-ups;
- ``OrganizationEventPermission``: the organization's issue list and bulk calls;
- ``OrganizationReleasePermission``: releases; ``UserRegionEndpointPermissions``
  (``users/api/endpoints/user_regions.py``): ``org:read`` alone;
- ``GroupPermission`` (``api/bases/group.py``): an issue, its events, hashes and tags,
  and short-id look-ups (``ShortIdLookupEndpoint`` is a ``GroupEndpoint``);
- ``ProjectPermission`` (``api/bases/project.py``): a project's events and event;
  ``RelaxedProjectPermission`` (``project_details.py``): a project, whose ``PUT`` then
  answers 403 for settings a token without ``project:write`` sends;
- ``ProjectEventPermission``: a project's bulk issue calls.

``GroupValidator.validate_discard`` then wants ``event:admin`` for ``discard`` (a 400).
"""

from __future__ import annotations

from typing import Any

import aiohttp
import anyio
import msgspec
import pytest

from sentry_async import RetryPolicy, SentryClient
from sentry_async.errors import BadRequest, Forbidden
from sentry_async.testing import FakeSentry, FakeSentryFactory
from sentry_async.testing._app import ROUTE_GROUPS

ORG = "org-0"
PROJECT = "project-0-0"
FAST = RetryPolicy(attempts=1)
DENIED = {"detail": "You do not have permission to perform this action."}
ALL_SCOPES = frozenset({
    "org:read", "org:write", "org:admin", "org:integrations", "org:ci",
    "member:invite", "member:read", "member:write", "member:admin",
    "team:read", "team:write", "team:admin",
    "project:read", "project:write", "project:admin", "project:releases",
    "project:distribution",
    "event:read", "event:write", "event:admin",
    "alerts:read", "alerts:write",
    "openid", "profile", "email",
})
"""``SENTRY_SCOPES`` (``conf/server.py``)."""

_ORG_READ = ("org:read", "org:write", "org:admin")
_EVENT_READ = ("event:read", "event:write", "event:admin")
_EVENT_WRITE = ("event:write", "event:admin")
_EVENT_ADMIN = ("event:admin",)
_PROJECT_READ = ("project:read", "project:write", "project:admin")
_RELEASES = ("project:read", "project:write", "project:admin", "project:releases", "org:ci")

EXPECTED: dict[str, tuple[str, ...]] = {
    "GET /api/0/organizations/": _ORG_READ,
    "GET /api/0/users/me/regions/": ("org:read",),
    "GET /api/0/organizations/{org}/shortids/{short_id}/": _EVENT_READ,
    "GET /api/0/organizations/{org}/": _ORG_READ,
    "GET /api/0/organizations/{org}/projects/": _ORG_READ,
    "GET /api/0/organizations/{org}/releases/": _RELEASES,
    "GET /api/0/organizations/{org}/issues/": _EVENT_READ,
    "PUT /api/0/organizations/{org}/issues/": _EVENT_WRITE,
    "DELETE /api/0/organizations/{org}/issues/": _EVENT_ADMIN,
    "GET /api/0/organizations/{org}/issues/{issue_id}/": _EVENT_READ,
    "PUT /api/0/organizations/{org}/issues/{issue_id}/": _EVENT_WRITE,
    "DELETE /api/0/organizations/{org}/issues/{issue_id}/": _EVENT_ADMIN,
    "GET /api/0/organizations/{org}/issues/{issue_id}/events/": _EVENT_READ,
    "GET /api/0/organizations/{org}/issues/{issue_id}/events/{event_id}/": _EVENT_READ,
    "GET /api/0/organizations/{org}/issues/{issue_id}/hashes/": _EVENT_READ,
    "GET /api/0/organizations/{org}/issues/{issue_id}/tags/{key}/": _EVENT_READ,
    "GET /api/0/organizations/{org}/issues/{issue_id}/tags/{key}/values/": _EVENT_READ,
    "GET /api/0/organizations/{org}/eventids/{event_id}/": _ORG_READ,
    "GET /api/0/organizations/{org}/events/": _ORG_READ,
    "GET /api/0/organizations/{org}/events-stats/": _ORG_READ,
    "GET /api/0/organizations/{org}/stats_v2/": _ORG_READ,
    "GET /api/0/projects/{org}/{project}/": _PROJECT_READ,
    "PUT /api/0/projects/{org}/{project}/": _PROJECT_READ,
    "GET /api/0/projects/{org}/{project}/events/": _PROJECT_READ,
    "PUT /api/0/projects/{org}/{project}/issues/": _EVENT_WRITE,
    "DELETE /api/0/projects/{org}/{project}/issues/": _EVENT_ADMIN,
    "GET /api/0/projects/{org}/{project}/events/{event_id}/": _PROJECT_READ,
}
"""Route -> the scopes Sentry's permission class accepts for its method (any one will do)."""
EXPECTED.update({
    # ``create_group_urls`` under the organization as ``groups`` and at the top level: the
    # same ``GroupEndpoint`` views.
    group.replace("/organizations/{org}/issues/", f"/{prefix}/"): scopes
    for group, scopes in list(EXPECTED.items())
    if "/issues/{issue_id}/" in group
    for prefix in ("organizations/{org}/groups", "issues", "groups")
})

_FILL = {
    "{org}": ORG,
    "{project}": PROJECT,
    "{short_id}": "NOPE-1",
    "{issue_id}": "1",
    "{event_id}": "0" * 32,
    "{key}": "browser",
}


def _path(group: str) -> tuple[str, str]:
    method, _, path = group.partition(" ")
    for name, value in _FILL.items():
        path = path.replace(name, value)
    return method, path


async def _send(
    server: FakeSentry, token: str, method: str, path: str, body: Any = None
) -> tuple[int, Any, str | None]:
    """Status, decoded body and ``WWW-Authenticate`` of one plain request with ``token``."""
    async with (
        aiohttp.ClientSession() as http,
        http.request(
            method,
            f"{server.url}{path}",
            data=None if body is None else msgspec.json.encode(body),
            headers={
                "Authorization": f"Bearer {token}",
                **({} if body is None else {"Content-Type": "application/json"}),
            },
        ) as reply,
    ):
        raw = await reply.read()
        return (
            reply.status,
            msgspec.json.decode(raw) if raw else None,
            reply.headers.get("WWW-Authenticate"),
        )


def _client(server: FakeSentry, token: str) -> SentryClient:
    return server.client(token=token, retry=FAST)


def test_every_route_of_the_fake_has_its_scopes_pinned() -> None:
    assert set(EXPECTED) == set(ROUTE_GROUPS)


@pytest.mark.parametrize("group", sorted(EXPECTED))
async def test_each_route_refuses_a_token_without_its_scopes(
    fake_sentry_factory: FakeSentryFactory, group: str
) -> None:
    """403 with DRF's body and the challenge, before any look-up (the path's ids are
    made up); any one accepted scope passes the check."""
    server = await fake_sentry_factory()
    accepted = EXPECTED[group]
    server.add_token("without", scopes=sorted(ALL_SCOPES - set(accepted)))
    server.add_token("least", scopes=[accepted[0]])
    method, path = _path(group)
    body = {} if method == "PUT" else None
    with anyio.fail_after(10):
        status, answer, challenge = await _send(server, "without", method, path, body)
        passed, _, _ = await _send(server, "least", method, path, body)
    assert (status, answer) == (403, DENIED)
    assert challenge == f'Bearer error="insufficient_scope", scope="{" ".join(sorted(accepted))}"'
    assert passed != 403


async def test_listing_issues_without_event_read_is_forbidden(
    fake_sentry_factory: FakeSentryFactory,
) -> None:
    server = await fake_sentry_factory()
    token = server.add_token("sntrys_no-events-secret", scopes=["org:read", "project:read"])
    async with _client(server, token) as sentry:
        with anyio.fail_after(10), pytest.raises(Forbidden) as caught:
            await sentry.issues.list(ORG).collect()
        # What org:read and project:read do allow still answers.
        assert (await sentry.organizations.get(ORG)).slug == ORG
    assert caught.value.status == 403
    assert caught.value.detail == DENIED["detail"]
    for text in (str(caught.value), repr(caught.value), repr(caught.value.args)):
        assert "no-events-secret" not in text
    record = server.requests.last("GET", "/organizations/{org}/issues/")
    assert record.status == 403 and record.authenticated
    assert record.headers["authorization"] == "Bearer [Filtered]"


async def test_bulk_delete_needs_event_admin(fake_sentry_factory: FakeSentryFactory) -> None:
    server = await fake_sentry_factory()
    writer = server.add_token("writer", scopes=["org:read", "event:read", "event:write"])
    admin = server.add_token("admin", scopes=["org:read", "event:read", "event:admin"])
    ids = server.data.issue_ids(ORG)[:2]
    async with _client(server, writer) as sentry:
        with anyio.fail_after(10), pytest.raises(Forbidden):
            await sentry.issues.bulk_delete(ORG, ids)
        with anyio.fail_after(10), pytest.raises(Forbidden):
            await sentry.issues.delete(ORG, ids[0])
        # event:write is what a bulk update needs.
        result = await sentry.issues.bulk_update(ORG, ids, status="resolved")
        assert result.ids == ids
    assert set(ids) <= set(server.data.issue_ids(ORG))
    async with _client(server, admin) as sentry:
        with anyio.fail_after(10):
            await sentry.issues.bulk_delete(ORG, ids)
    assert not set(ids) & set(server.data.issue_ids(ORG))


async def test_bulk_update_needs_event_write(fake_sentry_factory: FakeSentryFactory) -> None:
    server = await fake_sentry_factory()
    reader = server.add_token("reader", scopes=["org:read", "event:read"])
    ids = server.data.issue_ids(ORG)[:2]
    async with _client(server, reader) as sentry:
        with anyio.fail_after(10), pytest.raises(Forbidden):
            await sentry.issues.bulk_update(ORG, ids, status="resolved")
        with anyio.fail_after(10), pytest.raises(Forbidden):
            await sentry.issues.update(ORG, ids[0], status="resolved")
    assert server.requests.last("PUT").status == 403


async def test_discard_needs_event_admin(fake_sentry_factory: FakeSentryFactory) -> None:
    """``validate_discard``: a field error, after the permission let the ``PUT`` through."""
    server = fake_sentry_factory.start(orgs=0)
    project = server.builder.add_organization("acme", features=["discard-groups"]).add_project(
        "backend"
    )
    issue = project.add_issue("KeyError: 'id'")
    writer = server.add_token("writer", scopes=["event:write"])
    admin = server.add_token("admin", scopes=["event:admin"])
    path = f"/api/0/organizations/acme/issues/{issue.id}/"
    with anyio.fail_after(10):
        refused = await _send(server, writer, "PUT", path, {"discard": True})
        ordered = await _send(server, writer, "PUT", path, {"discard": True, "status": "resolved"})
        kept = await _send(server, writer, "GET", path)
        done = await _send(server, admin, "PUT", path, {"discard": True})
    expected = (400, {"discard": ["You do not have permission to discard events"]}, None)
    assert refused == expected
    # Field validators run before ``validate()``'s "Other attributes" refusal.
    assert ordered == expected
    assert kept[0] == 200
    assert done == (204, None, None)
    async with _client(server, writer) as sentry:
        with anyio.fail_after(10), pytest.raises(BadRequest, match="discard events"):
            await sentry.issues.update("acme", project.add_issue("Error b").id, discard=True)


async def test_organization_lookups_need_org_read(fake_sentry_factory: FakeSentryFactory) -> None:
    server = await fake_sentry_factory()
    org_reader = server.add_token("org-reader", scopes=["org:read"])
    event_reader = server.add_token("event-reader", scopes=["event:read"])
    async with _client(server, org_reader) as sentry:
        with anyio.fail_after(10):
            assert (await sentry.organizations.get(ORG)).slug == ORG
            assert ORG in [org.slug async for org in sentry.organizations.list()]
            assert await sentry.projects.list(ORG).collect()
    async with _client(server, event_reader) as sentry:
        with anyio.fail_after(10), pytest.raises(Forbidden):
            await sentry.organizations.get(ORG)
        with anyio.fail_after(10), pytest.raises(Forbidden):
            await sentry.projects.list(ORG).collect()


async def test_project_endpoints_need_project_read(
    fake_sentry_factory: FakeSentryFactory,
) -> None:
    server = await fake_sentry_factory()
    reader = server.add_token("project-reader", scopes=["project:read"])
    writer = server.add_token("project-writer", scopes=["project:write"])
    org_only = server.add_token("org-only", scopes=["org:read", "event:read"])
    async with _client(server, reader) as sentry:
        with anyio.fail_after(10):
            assert (await sentry.projects.get(ORG, PROJECT)).slug == PROJECT
    async with _client(server, org_only) as sentry:
        with anyio.fail_after(10), pytest.raises(Forbidden):
            await sentry.projects.get(ORG, PROJECT)
    path = f"/api/0/projects/{ORG}/{PROJECT}/"
    with anyio.fail_after(10):
        events = await _send(server, reader, "GET", f"{path}events/")
        renamed = await _send(server, reader, "PUT", path, {"name": "Renamed"})
        bookmarked = await _send(server, reader, "PUT", path, {"isBookmarked": True})
        written = await _send(server, writer, "PUT", path, {"name": "Renamed"})
    assert events[0] == 200
    # RelaxedProjectPermission lets the PUT in; a setting without project:write is refused.
    assert renamed == (403, DENIED, None)
    assert bookmarked[0] == 200
    assert written[0] == 200 and written[1]["name"] == "Renamed"


async def test_the_default_token_holds_every_scope(fake_sentry: FakeSentry) -> None:
    """Nothing changes for the server's own token: every route passes the check."""
    issue_id = fake_sentry.data.issue_ids(ORG)[0]
    async with fake_sentry.client(retry=FAST) as sentry:
        with anyio.fail_after(10):
            assert await sentry.issues.list(ORG).collect()
            await sentry.issues.update(ORG, issue_id, status="resolved")
            await sentry.issues.delete(ORG, issue_id)
            assert (await sentry.projects.get(ORG, PROJECT)).slug == PROJECT
    assert all(r.status != 403 for r in fake_sentry.requests)
    with anyio.fail_after(30):
        for group in sorted(EXPECTED):
            method, path = _path(group)
            status, _, _ = await _send(
                fake_sentry, fake_sentry.token, method, path, {} if method == "PUT" else None
            )
            assert status != 403, group


async def test_a_method_no_permission_class_lists_is_refused_to_every_token(
    fake_sentry: FakeSentry,
) -> None:
    """The scope maps name no ``HEAD``: ``scope_map.get("HEAD", [])`` accepts no scope, so
    even a token holding them all is refused, with nothing to name in a challenge."""
    with anyio.fail_after(10):
        status, _, challenge = await _send(
            fake_sentry, fake_sentry.token, "HEAD", f"/api/0/organizations/{ORG}/"
        )
        unknown, _, _ = await _send(
            fake_sentry, fake_sentry.token, "HEAD", "/api/0/organizations/nope/"
        )
    assert (status, challenge, unknown) == (403, None, 403)


async def test_unknown_tokens_still_get_401(fake_sentry_factory: FakeSentryFactory) -> None:
    server = await fake_sentry_factory()
    server.add_token("known", scopes=["org:read"])
    with anyio.fail_after(10):
        unknown = await _send(server, "unknown", "GET", f"/api/0/organizations/{ORG}/")
    assert unknown == (401, {"detail": "Invalid token"}, None)
    assert not server.requests[-1].authenticated


async def test_the_older_profile_sends_no_challenge(
    fake_sentry_factory: FakeSentryFactory,
) -> None:
    """``InsufficientScope`` and its header are newer than the servers ``older`` plays."""
    server = await fake_sentry_factory(profile="older")
    server.add_token("reader", scopes=["org:read"])
    with anyio.fail_after(10):
        answer = await _send(server, "reader", "DELETE", f"/api/0/organizations/{ORG}/issues/")
    assert answer == (403, DENIED, None)


def test_add_token_refuses_what_sentry_would_not_issue() -> None:
    server = FakeSentry(scale="small")
    with pytest.raises(ValueError, match="event:delete"):
        server.add_token("t", scopes=["event:delete"])
    with pytest.raises(ValueError, match="already"):
        server.add_token(server.token, scopes=["org:read"])
    with pytest.raises(ValueError, match="token"):
        server.add_token("", scopes=["org:read"])
    with pytest.raises(ValueError, match="token"):
        server.add_token("two words", scopes=["org:read"])
    with pytest.raises(TypeError, match="scopes"):
        server.add_token("t", scopes="org:read")  # type: ignore[arg-type]
    assert server.add_token("t", scopes=[]) == "t"
