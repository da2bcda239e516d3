"""The limiter against what Sentry really answers: a late answer from an earlier window,
endpoints that keep counters of their own (and Sentry's "CLI" group), the fake's own copy
of those keys, and the concurrent slots another user of the same token holds."""

from __future__ import annotations

import asyncio
import time

import anyio
import pytest
from _local_server import local_app
from aiohttp import ClientSession, web

from sentry_async import RateLimited, RateLimiter, RateLimitInfo, RetryPolicy, SentryClient
from sentry_async._protocol.hosts import endpoint_group, rate_limit_group
from sentry_async.testing import FakeSentry, RateLimitPolicy
from sentry_async.testing._app import ROUTE_GROUPS

TEAMS = "GET /organizations/{org}/teams/"
PROJECTS = "GET /organizations/{org}/projects/"
RELEASES = "GET /organizations/{org}/releases/"
ONE_TRY = RetryPolicy(attempts=1)


def _headers(limit: int, remaining: int, reset: float) -> dict[str, str]:
    return {
        "X-Sentry-Rate-Limit-Limit": str(limit),
        "X-Sentry-Rate-Limit-Remaining": str(max(0, remaining)),
        "X-Sentry-Rate-Limit-Reset": str(int(reset)),
    }


async def _arrived(event: asyncio.Event) -> None:
    with anyio.fail_after(10):
        await event.wait()


# -- a late answer from an earlier window ---------------------------------------------------


def test_a_late_answer_from_an_earlier_window_leaves_the_spent_one_alone() -> None:
    """The current window is spent (``Remaining: 0`` until its ``Reset``); then the answer
    to a request counted in the window before arrives, its ``Reset`` already past. It says
    nothing of the current window: the group stays closed until the recorded reset, at the
    same pace."""
    mono, wall = [1000.0], [1_800_000_000.0]
    limiter = RateLimiter(clock=lambda: mono[0], wall_clock=lambda: wall[0])
    current_reset = wall[0] + 2
    limiter.observe(TEAMS, RateLimitInfo(limit=5, remaining=0, reset=current_reset))
    before = limiter.state(TEAMS)
    mono[0] += 0.25
    wall[0] += 0.25
    limiter.observe(TEAMS, RateLimitInfo(limit=5, remaining=3, reset=current_reset - 2))
    after = limiter.state(TEAMS)
    assert after.remaining == 0, "the late answer reopened the spent window"
    assert after.reset_in == pytest.approx(1.75)
    assert after.rate == before.rate == 2.5, "the late answer changed the window's length"
    assert limiter.pause_for(TEAMS) == pytest.approx(1.75)


def test_an_earlier_reset_counts_again_once_the_recorded_window_is_over() -> None:
    """The recorded window only outranks older ones while it lasts: once its reset is past,
    whatever comes next is taken (a server whose windows got shorter is followed)."""
    mono, wall = [1000.0], [1_800_000_000.0]
    limiter = RateLimiter(clock=lambda: mono[0], wall_clock=lambda: wall[0])
    limiter.observe(TEAMS, RateLimitInfo(limit=5, remaining=2, reset=wall[0] + 60))
    mono[0] += 61
    wall[0] += 61
    limiter.observe(TEAMS, RateLimitInfo(limit=5, remaining=0, reset=wall[0] + 1))
    assert limiter.state(TEAMS).remaining == 0
    assert limiter.pause_for(TEAMS) == pytest.approx(1.0)


async def test_a_slow_answer_does_not_reopen_a_window_the_fast_ones_spent() -> None:
    """Over HTTP, as in Sentry: a slow request counted in an earlier window answers after
    five fast ones spent the current one (``Remaining: 0``). The client must still hold
    the window closed: nothing may be sent into it."""
    current_reset = time.time() + 30
    arrived, release = asyncio.Event(), asyncio.Event()
    counted: list[int] = []
    statuses: list[int] = []

    async def teams(request: web.Request) -> web.Response:
        if request.query.get("slow"):
            arrived.set()
            await release.wait()
            # Counted in the window before the current one: its reset is past.
            headers = _headers(5, 4, current_reset - 31)
            statuses.append(200)
            return web.json_response([], headers=headers)
        counted.append(1)
        status = 429 if len(counted) > 5 else 200
        statuses.append(status)
        headers = _headers(5, 5 - len(counted), current_reset)
        body = [] if status == 200 else {"detail": "too many"}
        return web.json_response(body, status=status, headers=headers)

    app = web.Application()
    app.router.add_get("/api/0/organizations/acme/teams/", teams)
    async with local_app(app) as url, SentryClient("t0ken", base_url=url, retry=ONE_TRY) as client:
        with anyio.fail_after(10):
            async with anyio.create_task_group() as tg:
                slow = {"slow": "1"}
                tg.start_soon(lambda: client.request("GET", "/organizations/acme/teams/", params=slow))
                await _arrived(arrived)
                for _ in range(5):
                    await client.request("GET", "/organizations/acme/teams/")
                assert client.limiter.state(TEAMS).remaining == 0
                release.set()
        state = client.limiter.state(TEAMS)
        assert state.remaining is not None and state.remaining <= 0, state
        assert client.limiter.pause_for(TEAMS) > 20, "the spent window was reopened"
    assert statuses.count(429) == 0


# -- endpoints with counters of their own ----------------------------------------------------

OWN_COUNTERS = (
    # Views that declare ``rate_limits`` (Sentry's key then names the view), every method.
    "GET /organizations/{org}/releases/",
    "POST /organizations/{org}/releases/",
    "GET /organizations/{org}/releases/{version}/files/",
    "GET /organizations/{org}/replay-count/",
    "POST /organizations/{org}/issues/{issue_id}/autofix/",
    "GET /organizations/{org}/repos/",
    "GET /projects/{org}/{project}/issues/",
    "PUT /projects/{org}/{project}/issues/",
    "GET /projects/{org}/{project}/releases/",
    "GET /projects/{org}/{project}/releases/{version}/files/",
    "GET /projects/{org}/{project}/stats/",
    "GET /projects/{org}/{project}/tags/{key}/values/",
    "GET /projects/{org}/{project}/users/",
)


@pytest.mark.parametrize("group", OWN_COUNTERS)
def test_views_with_limits_of_their_own_keep_a_group_of_their_own(group: str) -> None:
    assert rate_limit_group(group) == group


@pytest.mark.parametrize(
    ("method", "path", "template"),
    [
        ("GET", "/organizations/acme/chunk-upload/", "/organizations/{org}/chunk-upload/"),
        ("POST", "/organizations/acme/chunk-upload/", "/organizations/{org}/chunk-upload/"),
        (
            "GET",
            "/organizations/acme/releases/1.0/previous-with-commits/",
            "/organizations/{org}/releases/{version}/previous-with-commits/",
        ),
    ],
)
def test_the_cli_groups_views_share_its_counter(method: str, path: str, template: str) -> None:
    """``RateLimitConfig(group="CLI")`` with no limits of its own: Sentry keys the request
    ``user:CLI:<METHOD>:<id>``, one counter for the group's views, not the default one."""
    group = endpoint_group(method, path)
    assert group == f"{method} {template}"
    assert rate_limit_group(group) == f"{method} CLI"


async def test_an_answer_of_another_counter_does_not_reopen_the_default_window() -> None:
    """Sentry counts the releases list apart (``OrganizationReleasesEndpoint`` declares its
    limits: 40 a window), the projects list in the default counter (5 here). A releases
    answer (39 left) arriving after the projects spent theirs must leave them spent."""
    reset = time.time() + 30
    arrived, release = asyncio.Event(), asyncio.Event()
    counts = {"default": 0, "releases": 0}
    statuses: list[int] = []

    def counted(counter: str, limit: int) -> tuple[int, dict[str, str]]:
        counts[counter] += 1
        status = 429 if counts[counter] > limit else 200
        statuses.append(status)
        return status, _headers(limit, limit - counts[counter], reset)

    async def releases(request: web.Request) -> web.Response:
        status, headers = counted("releases", 40)
        arrived.set()
        await release.wait()
        return web.json_response([], status=status, headers=headers)

    async def projects(request: web.Request) -> web.Response:
        status, headers = counted("default", 5)
        return web.json_response([], status=status, headers=headers)

    app = web.Application()
    app.router.add_get("/api/0/organizations/acme/releases/", releases)
    app.router.add_get("/api/0/organizations/acme/projects/", projects)
    async with local_app(app) as url, SentryClient("t0ken", base_url=url, retry=ONE_TRY) as client:
        with anyio.fail_after(10):
            async with anyio.create_task_group() as tg:
                tg.start_soon(lambda: client.request("GET", "/organizations/acme/releases/"))
                await _arrived(arrived)
                for _ in range(5):
                    await client.request("GET", "/organizations/acme/projects/")
                release.set()
        projects_state = client.limiter.state(PROJECTS)
        assert projects_state.remaining == 0, projects_state
        assert client.limiter.pause_for(PROJECTS) > 20
        assert client.limiter.state(RELEASES).remaining == 39
    assert statuses.count(429) == 0


# -- the fake's own keys ---------------------------------------------------------------------


def _fake_counter(group: str) -> str:
    from sentry_async.testing._limit_keys import sentry_counter

    method, _, path = group.partition(" ")
    return sentry_counter(method, path.removeprefix("/api/0"))


def _client_group(group: str) -> str:
    method, _, path = group.partition(" ")
    return rate_limit_group(f"{method} {path.removeprefix('/api/0')}")


def _same_partition(routes: set[str]) -> None:
    """Two routes share a client group exactly when they share a counter in the fake."""
    by_client: dict[str, set[str]] = {}
    by_fake: dict[str, set[str]] = {}
    for route in routes:
        by_client.setdefault(_client_group(route), set()).add(_fake_counter(route))
        by_fake.setdefault(_fake_counter(route), set()).add(_client_group(route))
    split = {group: counters for group, counters in by_client.items() if len(counters) > 1}
    merged = {counter: groups for counter, groups in by_fake.items() if len(groups) > 1}
    assert not split, f"one client group over several of Sentry's counters: {split}"
    assert not merged, f"one of Sentry's counters over several client groups: {merged}"


def test_the_fake_and_the_client_agree_on_sentrys_counters_for_every_served_route() -> None:
    _same_partition(set(ROUTE_GROUPS))


def test_the_fake_and_the_client_agree_on_sentrys_counters_for_every_known_route() -> None:
    """Over the client's whole route list too (every method each template could take)."""
    from sentry_async._protocol.hosts import _routes

    templates, _, _ = _routes()
    methods = ("GET", "POST", "PUT", "DELETE")
    _same_partition({f"{m} /api/0{t}" for t in templates for m in methods})


async def test_the_fakes_releases_list_spends_a_window_of_its_own() -> None:
    """On Sentry five calls to the releases list spend its own counter only: the projects
    list after them is answered, with the default window's Remaining untouched."""
    policy = RateLimitPolicy(limit=5, window=3600.0, concurrent_limit=None, enforce=True)
    async with FakeSentry(rate_limits=policy) as fake:
        org = fake.data.org_slugs()[0]
        seen: list[tuple[str, int, str | None]] = []
        auth = {"Authorization": f"Bearer {fake.token}"}
        async with ClientSession(headers=auth) as session:
            for name in ("releases",) * 5 + ("projects",):
                async with session.get(f"{fake.url}/api/0/organizations/{org}/{name}/") as answer:
                    remaining = answer.headers.get("X-Sentry-Rate-Limit-Remaining")
                    seen.append((name, answer.status, remaining))
    assert seen[-2] == ("releases", 200, "0")
    assert seen[-1] == ("projects", 200, "4")


# -- concurrent slots held by another user of the token ---------------------------------------


async def _answered(
    limiter: RateLimiter, group: str, free: int | None, *, limit: int | None = 4, held: int = 0
) -> None:
    """One request of ``group`` sent while ``held`` others of the client's are in flight,
    answered with ``ConcurrentLimit: limit`` and ``ConcurrentRemaining: free``."""
    holders = [await limiter.slot(group).__aenter__() for _ in range(held)]
    slot = await limiter.slot(group).__aenter__()
    await slot.__aexit__(None, None, None)
    info = RateLimitInfo(concurrent_limit=limit, concurrent_remaining=free)
    limiter.observe(group, info, sent=slot.sent)
    for holder in holders:
        await holder.__aexit__(None, None, None)


async def test_free_concurrent_slots_follow_concurrent_remaining() -> None:
    """``ConcurrentRemaining`` counts the slots of Sentry's counter left once this request
    took its own: the client may hold that many more than it had in flight, never less than
    one, and gets them back as answers report them free."""
    limiter = RateLimiter(max_concurrency=8)
    group = "GET /organizations/{org}/"
    with anyio.fail_after(5):
        await _answered(limiter, group, 0, held=1)
        assert limiter.state(group).concurrency == 2, "two of the four were the client's"
        await _answered(limiter, group, 0)
        assert limiter.state(group).concurrency == 1, "three slots were another user's"
        await _answered(limiter, group, 2)
        assert limiter.state(group).concurrency == 3
        await _answered(limiter, group, 3)
        assert limiter.state(group).concurrency == 4
        await _answered(limiter, group, 30, limit=50)
        assert limiter.state(group).concurrency == 8, "never above max_concurrency"
        await _answered(limiter, group, None, limit=3)
        assert limiter.state(group).concurrency == 3, "a limit with no count: the limit"
        async with limiter.slot(group):
            pass


async def test_concurrent_remaining_without_a_send_of_its_own_changes_nothing() -> None:
    """An answer ``observe`` cannot tie to one of the group's sends (no ``sent=``) says how
    many slots are free, not how many of them are the client's: only the limit is taken."""
    limiter = RateLimiter(max_concurrency=8)
    limiter.observe("g", RateLimitInfo(concurrent_limit=4, concurrent_remaining=0))
    assert limiter.state("g").concurrency == 4


def _concurrent_app(
    limit: int, others: list[int], statuses: list[int], peak: list[int]
) -> web.Application:
    """Sentry's concurrent limiter for one key: ``others[0]`` requests of another user of
    the token in flight beside the client's; a request over the limit is refused (429,
    ``ConcurrentRemaining: 0``) and not counted, as ``ConcurrentRateLimiter`` does."""
    mine = [0]
    reset = time.time() + 30

    async def org(request: web.Request) -> web.Response:
        executions = others[0] + mine[0] + 1
        headers = {
            **_headers(1000, 999, reset),
            "X-Sentry-Rate-Limit-ConcurrentLimit": str(limit),
            "X-Sentry-Rate-Limit-ConcurrentRemaining": str(max(0, limit - executions)),
        }
        if executions > limit:
            statuses.append(429)
            body = {"detail": "You are attempting to go above the allowed concurrency"}
            return web.json_response(body, status=429, headers=headers)
        mine[0] += 1
        peak[0] = max(peak[0], mine[0])
        try:
            await asyncio.sleep(0.02)
        finally:
            mine[0] -= 1
        statuses.append(200)
        return web.json_response({"id": "1", "slug": "acme"}, headers=headers)

    app = web.Application()
    app.router.add_get("/api/0/organizations/acme/", org)
    return app


async def test_slots_another_user_holds_are_not_sent_into() -> None:
    """Another user of the token holds three of Sentry's four concurrent slots: the client
    learns it from the first answer and sends one request at a time, drawing no 429; once
    the other user lets go, the next answer gives the client its four slots back."""
    others, statuses, peak = [3], [], [0]
    app = _concurrent_app(4, others, statuses, peak)
    group = "GET /organizations/{org}/"
    async with local_app(app) as url, SentryClient("t0ken", base_url=url, retry=ONE_TRY) as client:

        async def call() -> None:
            await client.request("GET", "/organizations/{org}/", path_params={"org": "acme"})

        with anyio.fail_after(10):
            await call()
            peak[0] = 0
            results = await asyncio.gather(*(call() for _ in range(4)), return_exceptions=True)
            assert not [r for r in results if isinstance(r, RateLimited)], statuses
            assert peak[0] == 1
            assert client.limiter.state(group).concurrency == 1
            others[0] = 0
            await call()
        assert client.limiter.state(group).concurrency == 4
    assert statuses.count(429) == 0

