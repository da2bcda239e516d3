"""The shared limiter: pacing, server-announced windows, 429 blocks, in-flight caps."""

from __future__ import annotations

import itertools
import math
import time
from email.utils import formatdate

import anyio
import pytest
from _local_server import local_app
from aiohttp import web

from sentry_async import RateLimiter, RateLimitInfo, SentryClient


async def _times(limiter: RateLimiter, group: str, count: int) -> list[float]:
    stamps: list[float] = []

    async def one() -> None:
        async with limiter.slot(group):
            stamps.append(time.monotonic())

    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            for _ in range(count):
                tg.start_soon(one)
    return sorted(stamps)


async def test_unlimited_by_default() -> None:
    limiter = RateLimiter()
    start = time.monotonic()
    stamps = await _times(limiter, "g", 50)
    assert stamps[-1] - start < 0.2


async def test_local_rate_paces_requests() -> None:
    limiter = RateLimiter(rate=20, burst=1)
    stamps = await _times(limiter, "g", 6)
    # burst 1 then 20/s: five more tokens take about 0.25 s
    assert stamps[-1] - stamps[0] >= 0.22
    gaps = [b - a for a, b in itertools.pairwise(stamps)]
    assert min(gaps) >= 0.04


async def test_a_rate_below_one_a_second_still_sends() -> None:
    """``rate=0.5`` without ``burst``: the bucket still holds the one token a request takes."""
    limiter = RateLimiter(rate=0.5)
    with anyio.fail_after(10):
        async with limiter.slot("g"):
            pass
    state = limiter.state("g")
    assert state.rate == 0.5
    assert state.tokens is not None and state.tokens < 1.0, "the first request took the token"


async def test_server_window_exhausted_waits_for_reset() -> None:
    limiter = RateLimiter()
    limiter.observe("g", RateLimitInfo(limit=40, remaining=0, reset=time.time() + 0.4))
    start = time.monotonic()
    (stamp,) = await _times(limiter, "g", 1)
    assert stamp - start >= 0.35
    other_start = time.monotonic()
    await _times(limiter, "other", 1)
    assert time.monotonic() - other_start < 0.1, "groups are independent"


async def test_remaining_budget_is_spent_then_waits() -> None:
    limiter = RateLimiter()
    limiter.observe("g", RateLimitInfo(limit=100, remaining=3, reset=time.time() + 0.5))
    start = time.monotonic()
    stamps = await _times(limiter, "g", 5)
    assert sum(1 for s in stamps if s - start < 0.1) <= 3
    assert stamps[-1] - start >= 0.45


async def test_reset_in_the_past_does_not_block() -> None:
    limiter = RateLimiter()
    limiter.observe("g", RateLimitInfo(limit=40, remaining=0, reset=time.time() - 5))
    start = time.monotonic()
    await _times(limiter, "g", 3)
    assert time.monotonic() - start < 0.1


async def test_block_holds_every_task() -> None:
    limiter = RateLimiter()
    limiter.block("g", 0.3)
    start = time.monotonic()
    stamps = await _times(limiter, "g", 10)
    assert stamps[0] - start >= 0.29
    assert limiter.state("g").blocked_for == 0.0


async def test_concurrency_cap_follows_server() -> None:
    limiter = RateLimiter(max_concurrency=8)
    limiter.observe("g", RateLimitInfo(concurrent_limit=3, concurrent_remaining=2))
    assert limiter.state("g").concurrency == 3
    peak = 0
    current = 0

    async def one() -> None:
        nonlocal peak, current
        async with limiter.slot("g"):
            current += 1
            peak = max(peak, current)
            await anyio.sleep(0.02)
            current -= 1

    with anyio.fail_after(5):
        async with anyio.create_task_group() as tg:
            for _ in range(20):
                tg.start_soon(one)
    assert peak == 3
    limiter.observe("g", RateLimitInfo(concurrent_limit=100))
    assert limiter.state("g").concurrency == 8, "the server can only lower the configured cap"


async def test_announced_limit_shapes_bucket() -> None:
    limiter = RateLimiter()
    limiter.observe("g", RateLimitInfo(limit=10, remaining=10, reset=time.time() + 1))
    state = limiter.state("g")
    assert state.rate == pytest.approx(10.0)
    assert state.remaining == 10


async def test_a_reset_beyond_max_wait_does_not_slow_the_pace() -> None:
    """A ``Reset`` in epoch milliseconds with requests left announces no wait: the pace
    stays the limit per second, and once the window it names is spent calls fail fast."""
    limiter = RateLimiter()
    reset = time.time() * 1000
    limiter.observe("g", RateLimitInfo(limit=5, remaining=2, reset=reset), max_wait=300)
    assert limiter.state("g").rate == pytest.approx(5.0)
    with anyio.fail_after(10):
        for _ in range(2):
            async with limiter.slot("g"):
                pass
    assert limiter.pause_for("g") > 300


async def test_cancelled_waiter_releases_its_slot() -> None:
    limiter = RateLimiter(max_concurrency=1)
    limiter.block("g", 5)
    with anyio.move_on_after(0.1):
        async with limiter.slot("g"):
            pytest.fail("must not get a slot while blocked")
    assert limiter.state("g").in_flight == 0
    limiter2 = RateLimiter(max_concurrency=1)
    async with limiter2.slot("g"):
        pass
    async with limiter2.slot("g"):
        pass


def test_bad_configuration() -> None:
    with pytest.raises(ValueError, match="rate"):
        RateLimiter(rate=0)
    with pytest.raises(ValueError, match="max_concurrency"):
        RateLimiter(max_concurrency=0)
    with pytest.raises(ValueError, match="burst"):
        RateLimiter(burst=0)


async def test_requests_sent_after_a_response_count_against_its_remaining() -> None:
    """``Remaining: 3`` answers the first of five requests in flight: the four sent after it
    will spend the window's last three and one more, so the next must wait for the reset."""
    limiter = RateLimiter(max_concurrency=10)
    slots = []
    for _ in range(5):
        slot = limiter.slot("g")
        slots.append(await slot.__aenter__())
    first = slots[0]
    reset = time.time() + 30
    limiter.observe("g", RateLimitInfo(limit=40, remaining=3, reset=reset), sent=first.sent)
    for slot in slots:
        await slot.__aexit__(None, None, None)
    assert limiter.state("g").remaining == -1
    with anyio.move_on_after(0.2) as waited:
        async with limiter.slot("g"):
            pass
    assert waited.cancelled_caught, "no request goes out before the window resets"


async def test_remaining_without_a_send_count_is_taken_as_is() -> None:
    limiter = RateLimiter()
    async with limiter.slot("g"):
        pass
    limiter.observe("g", RateLimitInfo(limit=40, remaining=3, reset=time.time() + 30))
    assert limiter.state("g").remaining == 3


def test_endpoints_without_limits_of_their_own_share_sentrys_window() -> None:
    """Sentry keys its counter by view only for endpoints with their own ``rate_limits``:
    the others share one window, one 429 pause and one in-flight cap per method."""
    limiter = RateLimiter(max_concurrency=25)
    projects = "GET /organizations/{org}/projects/"
    limiter.observe(
        projects,
        RateLimitInfo(limit=40, remaining=0, reset=time.time() + 30, concurrent_limit=5),
    )
    for shared in ("GET /organizations/{org}/", "GET /organizations/{org}/issues/"):
        assert limiter.pause_for(shared) > 20, f"{shared} sends into the spent window"
        assert limiter.state(shared).concurrency == 5
        assert limiter.state(shared).group == "GET default"
    for own in ("GET /organizations/{org}/events/", "PUT /organizations/{org}/issues/"):
        assert limiter.pause_for(own) == 0.0, f"{own} is another of Sentry's counters"
    limiter.block("PUT /organizations/{org}/issues/", 30)
    assert limiter.blocked_for("PUT /organizations/{project_id}/teams/") > 20
    assert limiter.blocked_for("GET /organizations/{org}/") == 0.0, "each method its own"
    assert limiter.state("GET /organizations/{org}/issues/{issue_id}/").group == (
        "GET /organizations/{org}/issues/{issue_id}/"
    ), "GroupDetailsEndpoint declares its own limits"
    assert {"GET default", "PUT default"} <= set(limiter.groups)
    assert not any("/organizations/{org}/projects/" in group for group in limiter.groups)


SHARED_ROUTES = (
    "/organizations/{org}/",
    "/organizations/{org}/projects/",
    "/organizations/{org}/teams/",
    "/organizations/{org}/issues/",
    "/organizations/{org}/tags/",
    "/projects/{org}/{project}/",
)
"""Endpoints that declare no ``rate_limits`` on Sentry: one ``GET`` counter for them all."""


def _sentry_like(
    limit: int, routes: tuple[str, ...], *, skew: float = 0.0
) -> tuple[web.Application, list[int]]:
    """An app counting every route in one fixed 1 s window as Sentry does for endpoints
    without limits of their own (no ``Retry-After``), on a clock ``skew`` seconds ahead of
    the client's (its ``Date`` too); the statuses it answered go to the list."""
    windows: dict[int, int] = {}
    statuses: list[int] = []

    async def handle(request: web.Request) -> web.Response:
        now = time.time() + skew
        second = math.floor(now)
        windows[second] = count = windows.get(second, 0) + 1
        headers = {
            "X-Sentry-Rate-Limit-Limit": str(limit),
            "X-Sentry-Rate-Limit-Remaining": str(max(0, limit - count)),
            "X-Sentry-Rate-Limit-Reset": str(second + 1),
            "Date": formatdate(now, usegmt=True),
        }
        statuses.append(429 if count > limit else 200)
        if count > limit:
            return web.json_response({"detail": "too frequently"}, status=429, headers=headers)
        return web.json_response({"id": "1", "slug": "acme"}, headers=headers)

    app = web.Application()
    for route in routes:
        app.router.add_get("/api/0" + route, handle)
    return app, statuses


async def _calls(client: SentryClient, routes: tuple[str, ...]) -> None:
    params = {"org": "acme", "project": "web"}

    async def one(route: str) -> None:
        await client.request("GET", route, path_params=params)

    with anyio.fail_after(30):
        async with anyio.create_task_group() as tg:
            for route in routes:
                tg.start_soon(one, route)


async def test_endpoints_sharing_sentrys_window_draw_no_flood_of_429s() -> None:
    """Six endpoints against one Sentry-like 20/s window: once one answer has shown the
    window, the calls spread over the six wait for it together instead of each sending into
    it as if it were theirs."""
    app, statuses = _sentry_like(20, SHARED_ROUTES)
    async with local_app(app) as url, SentryClient("t0ken", base_url=url) as client:
        await _calls(client, SHARED_ROUTES[:1])
        statuses.clear()
        await _calls(client, SHARED_ROUTES * 8)
    assert len(statuses) - statuses.count(429) == len(SHARED_ROUTES) * 8
    assert statuses.count(429) <= 2, f"{statuses.count(429)} 429s in {len(statuses)} requests"


@pytest.mark.parametrize("skew", [0.5, 1.5, -0.5, -1.5])
async def test_a_clock_skew_below_a_couple_of_seconds_neither_slows_nor_floods(
    skew: float,
) -> None:
    """The server's clock ``skew`` seconds ahead of the client's (behind, when negative):
    its windows are still taken as 1 s long (not 2 or 3, at a half or a third of the pace)
    and none is sent into once spent."""
    limit = 10
    route = SHARED_ROUTES[0]
    app, statuses = _sentry_like(limit, (route,), skew=skew)
    async with local_app(app) as url, SentryClient("t0ken", base_url=url) as client:
        await _calls(client, (route,))
        await anyio.sleep(1.1)
        statuses.clear()
        await _calls(client, (route,) * 30)
        state = client.limiter.state("GET " + route)
    assert statuses.count(429) == 0, f"{statuses.count(429)} 429s in {len(statuses)} requests"
    assert state.rate == limit, "the window taken as longer than its second"


@pytest.mark.parametrize("skew", [1.5, 1.0, -1.0, -1.5])
async def test_the_wait_after_a_429_reads_reset_by_the_servers_clock(skew: float) -> None:
    """A 429 whose window another client spent, from a server whose clock is ``skew``
    seconds off the client's (less than the couple of seconds past which ``Date`` stands
    in for the clock): the wait is the window's rest by the server's clock, as the answers
    before it placed that clock, not the rest by the client's, a second or more too long
    (or too short, and backed off instead)."""
    from _hooks_recorder import Recorder

    from sentry_async import RetryPolicy

    route = SHARED_ROUTES[0]
    spent: list[float] = []
    """The server's clock at the 429, and the reset it announced."""

    async def handle(request: web.Request) -> web.Response:
        now = time.time() + skew
        headers = {
            "X-Sentry-Rate-Limit-Limit": "40",
            "X-Sentry-Rate-Limit-Remaining": "39",
            "X-Sentry-Rate-Limit-Reset": str(math.floor(now) + 1),
            "Date": formatdate(now, usegmt=True),
        }
        if request.query.get("spent") == "1" and not spent:
            reset = math.floor(now) + 2
            spent.extend((now, reset))
            headers["X-Sentry-Rate-Limit-Remaining"] = "0"
            headers["X-Sentry-Rate-Limit-Reset"] = str(reset)
            return web.json_response({"detail": "too frequently"}, status=429, headers=headers)
        return web.json_response({"id": "1", "slug": "acme"}, headers=headers)

    app = web.Application()
    app.router.add_get("/api/0" + route.replace("{org}", "acme"), handle)
    recorder = Recorder()
    retry = RetryPolicy(jitter=0.0)
    async with local_app(app) as url, SentryClient(
        "t0ken", base_url=url, hooks=recorder, retry=retry
    ) as client:
        with anyio.fail_after(30):
            for _ in range(6):
                # Answers at several phases of the server's second place its clock.
                await client.request("GET", route, path_params={"org": "acme"})
                await anyio.sleep(0.17)
            await client.request(
                "GET", route, path_params={"org": "acme"}, params={"spent": "1"}
            )
    (retried,) = recorder.of("retry")
    now, reset = spent
    assert retried.wait is not None
    assert reset - now - 0.25 <= retried.wait <= reset - now + 0.6, (
        f"waited {retried.wait:.2f}s for a window the server closes in {reset - now:.2f}s"
    )
