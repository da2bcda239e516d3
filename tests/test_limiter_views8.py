"""Views of the public API whose Sentry endpoint declares ``rate_limits`` of its own, found
in Sentry's code after the first survey: the client's keys, a project's client keys and the
organization's, the public mobile-build views, and Seer's model list. Sentry counts each in a
counter of its own (``get_rate_limit_key`` names the view), so the client keeps a group for
it and the fake keys it by its view, or an answer of its counter overwrites the mirror of
the default window."""

from __future__ import annotations

import asyncio
import time

import anyio
import pytest
from _local_server import local_app
from aiohttp import web
from test_limiter_gaps import ONE_TRY, PROJECTS, _arrived, _headers

from sentry_async import SentryClient
from sentry_async._protocol.hosts import endpoint_group, rate_limit_group
from sentry_async.testing._limit_keys import sentry_counter

OWN_VIEWS = [
    # (method, a concrete path, its template, Sentry's view: the class the key names)
    ("GET", "/projects/acme/web/keys/", "/projects/{org}/{project}/keys/", "ProjectKeysEndpoint"),
    ("POST", "/projects/acme/web/keys/", "/projects/{org}/{project}/keys/", "ProjectKeysEndpoint"),
    (
        "GET",
        "/organizations/acme/project-keys/",
        "/organizations/{org}/project-keys/",
        "OrganizationProjectKeysEndpoint",
    ),
    (
        "GET",
        "/organizations/acme/preprodartifacts/12/install-details/",
        "/organizations/{org}/preprodartifacts/{artifact_id}/install-details/",
        "OrganizationPreprodArtifactPublicInstallDetailsEndpoint",
    ),
    (
        "GET",
        "/projects/acme/web/preprodartifacts/build-distribution/latest/",
        "/projects/{org}/{project}/preprodartifacts/build-distribution/latest/",
        "ProjectPreprodBuildDistributionLatestEndpoint",
    ),
    (
        "POST",
        "/projects/acme/web/preprodartifacts/snapshots/",
        "/projects/{org}/{project}/preprodartifacts/snapshots/",
        "ProjectPreprodSnapshotEndpoint",
    ),
    (
        "GET",
        "/projects/acme/web/preprod/size-analysis/status-check-rules/",
        "/projects/{org}/{project}/preprod/size-analysis/status-check-rules/",
        "ProjectPreprodSizeAnalysisStatusCheckRulesEndpoint",
    ),
    (
        "GET",
        "/projects/acme/web/preprod/snapshots/status-check-rules/",
        "/projects/{org}/{project}/preprod/snapshots/status-check-rules/",
        "ProjectPreprodSnapshotStatusCheckRulesEndpoint",
    ),
    (
        "POST",
        "/projects/acme/web/preprod/size-analysis/status-checks/skip/",
        "/projects/{org}/{project}/preprod/size-analysis/status-checks/skip/",
        "ProjectPreprodSizeAnalysisSkipStatusCheckEndpoint",
    ),
    (
        "POST",
        "/projects/acme/web/preprod/snapshots/status-checks/skip/",
        "/projects/{org}/{project}/preprod/snapshots/status-checks/skip/",
        "ProjectPreprodSnapshotSkipStatusCheckEndpoint",
    ),
    ("GET", "/seer/models/", "/seer/models/", "SeerModelsEndpoint"),
]


@pytest.mark.parametrize(("method", "path", "template", "view"), OWN_VIEWS)
def test_the_client_keeps_a_group_for_each_view_with_limits_of_its_own(
    method: str, path: str, template: str, view: str
) -> None:
    group = endpoint_group(method, path)
    assert group == f"{method} {template}"
    assert rate_limit_group(group) == group


@pytest.mark.parametrize(("method", "path", "template", "view"), OWN_VIEWS)
def test_the_fake_keys_each_by_its_view(method: str, path: str, template: str, view: str) -> None:
    """``<group>:<view>:<METHOD>``, as ``get_rate_limit_key`` keys a view whose config has
    limits of its own (the group is ``default``: none of them names another)."""
    assert sentry_counter(method, f"/api/0{template}") == f"default:{view}:{method}"


def test_the_two_skip_views_count_apart() -> None:
    """One base class, two views: Sentry's key names the view's class, so the size-analysis
    and the snapshot skips keep a counter each."""
    size = "POST /projects/{org}/{project}/preprod/size-analysis/status-checks/skip/"
    snapshots = "POST /projects/{org}/{project}/preprod/snapshots/status-checks/skip/"
    assert rate_limit_group(size) != rate_limit_group(snapshots)
    assert sentry_counter(*size.split(" ")) != sentry_counter(*snapshots.split(" "))


@pytest.mark.parametrize(
    ("own_path", "own_group"),
    [
        ("/projects/acme/web/keys/", "GET /projects/{org}/{project}/keys/"),
        ("/organizations/acme/project-keys/", "GET /organizations/{org}/project-keys/"),
    ],
)
async def test_a_keys_answer_does_not_reopen_the_spent_default_window(
    own_path: str, own_group: str
) -> None:
    """Sentry counts a client-keys list apart (its view declares 40 a second), the projects
    list in the default counter (5 here). A keys answer (39 left) arriving after the projects
    spent theirs must leave them spent, and keep its own window."""
    reset = time.time() + 30
    arrived, release = asyncio.Event(), asyncio.Event()
    counts = {"default": 0, "keys": 0}
    statuses: list[int] = []

    def counted(counter: str, limit: int) -> tuple[int, dict[str, str]]:
        counts[counter] += 1
        status = 429 if counts[counter] > limit else 200
        statuses.append(status)
        return status, _headers(limit, limit - counts[counter], reset)

    async def keys(request: web.Request) -> web.Response:
        status, headers = counted("keys", 40)
        arrived.set()
        await release.wait()
        return web.json_response([], status=status, headers=headers)

    async def projects(request: web.Request) -> web.Response:
        status, headers = counted("default", 5)
        return web.json_response([], status=status, headers=headers)

    app = web.Application()
    app.router.add_get(f"/api/0{own_path}", keys)
    app.router.add_get("/api/0/organizations/acme/projects/", projects)
    async with local_app(app) as url, SentryClient("t0ken", base_url=url, retry=ONE_TRY) as client:
        with anyio.fail_after(10):
            async with anyio.create_task_group() as tg:
                tg.start_soon(lambda: client.request("GET", own_path))
                await _arrived(arrived)
                for _ in range(5):
                    await client.request("GET", "/organizations/acme/projects/")
                release.set()
        spent = client.limiter.state(PROJECTS)
        assert spent.remaining == 0, spent
        assert client.limiter.pause_for(PROJECTS) > 20, "the keys answer reopened the window"
        assert client.limiter.state(own_group).remaining == 39
    assert statuses.count(429) == 0
