"""Waits a hostile or confused server announces are capped, and the limiter recovers.

Each test runs a small aiohttp server on 127.0.0.1 whose answers the test scripts.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from email.utils import formatdate
from typing import Any

import anyio
import pytest
from _local_server import local_app
from aiohttp import web

from sentry_async import RateLimited, RetryPolicy, SentryClient

pytestmark = pytest.mark.anyio

YEAR = 365 * 24 * 3600.0
PATH = "/organizations/acme/"
GROUP = "GET /organizations/{org}/"  # the route template, never the slug

Respond = Callable[[web.Request, int], web.Response]


@asynccontextmanager
async def hostile(respond: Respond) -> AsyncIterator[tuple[str, list[float]]]:
    """Serve ``respond(request, n)`` (``n`` counts requests from 0); yields the base URL and
    the monotonic time of each request."""
    seen: list[float] = []

    async def handle(request: web.Request) -> web.Response:
        seen.append(time.monotonic())
        return respond(request, len(seen) - 1)

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handle)
    async with local_app(app) as url:
        yield url, seen


def ok(**headers: str) -> web.Response:
    return web.Response(body=b'{"slug": "acme"}', content_type="application/json", headers=headers)


def limits(remaining: int, reset: float, limit: int = 40, **extra: str) -> dict[str, str]:
    return {
        "X-Sentry-Rate-Limit-Limit": str(limit),
        "X-Sentry-Rate-Limit-Remaining": str(remaining),
        "X-Sentry-Rate-Limit-Reset": f"{reset:.0f}",
        **extra,
    }


async def get(client: SentryClient) -> Any:
    return await client.request("GET", PATH)


# 1. Every announced wait is capped.


@pytest.mark.parametrize(
    "reset",
    [
        pytest.param(lambda: time.time() + YEAR, id="a-year-away"),
        pytest.param(lambda: time.time() * 1000, id="epoch-milliseconds"),
    ],
)
async def test_far_reset_after_a_200_fails_fast_then_recovers(
    reset: Callable[[], float], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="sentry_async")

    def respond(request: web.Request, n: int) -> web.Response:
        if n == 0:
            return ok(**limits(0, reset()))
        return ok(**limits(39, time.time() + 1))

    policy = RetryPolicy(attempts=2, max_wait=0.5)
    async with hostile(respond) as (url, seen), SentryClient("t", base_url=url, retry=policy) as c:
        with anyio.fail_after(10):
            assert (await get(c))["slug"] == "acme"
            for _ in range(3):
                with pytest.raises(RateLimited) as caught:
                    await get(c)
                assert caught.value.retry_after is not None
                assert caught.value.retry_after > 1000
                assert "the server asked to wait" in str(caught.value)
            assert len(seen) == 1, "nothing is sent into the announced window"
            await anyio.sleep(0.6)
            assert (await get(c))["slug"] == "acme", "the wait is honoured for max_wait only"
    assert len(seen) == 2
    logged = [r for r in caplog.records if "asked to wait" in r.getMessage()]
    assert len(logged) == 1, "a long wait is logged once"


@pytest.mark.parametrize(
    "retry_after",
    [
        pytest.param(lambda: "1000000000", id="seconds"),
        pytest.param(lambda: "Thu, 01 Jan 2099 00:00:00 GMT", id="date-2099"),
        pytest.param(lambda: None, id="reset-a-year-away"),
    ],
)
async def test_absurd_wait_after_a_429_fails_fast_then_recovers(
    retry_after: Callable[[], str | None], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="sentry_async")

    def respond(request: web.Request, n: int) -> web.Response:
        if n == 0:
            value = retry_after()
            headers = limits(0, time.time() + YEAR)
            if value is not None:
                headers["Retry-After"] = value
            return web.json_response({"detail": "slow down"}, status=429, headers=headers)
        return ok()

    policy = RetryPolicy(attempts=3, max_wait=0.5)
    async with hostile(respond) as (url, seen), SentryClient("t", base_url=url, retry=policy) as c:
        with anyio.fail_after(10):
            with pytest.raises(RateLimited) as caught:
                await get(c)
            assert caught.value.retry_after is not None and caught.value.retry_after > 1e6
            assert f"{caught.value.retry_after:.0f}s" in str(caught.value)
            with pytest.raises(RateLimited) as again:
                await get(c)
            assert again.value.retry_after is not None and again.value.retry_after > 1e6
            assert len(seen) == 1
            await anyio.sleep(0.6)
            assert (await get(c))["slug"] == "acme", "the endpoint is not blocked for good"
    assert len(seen) == 2
    logged = [r for r in caplog.records if "asked to wait" in r.getMessage()]
    assert len(logged) == 1, "a long wait is logged once"


# 2. The limiter recovers.


async def test_one_long_window_does_not_throttle_for_good() -> None:
    """One answer announcing an hour-long window, then normal one-second windows."""

    def respond(request: web.Request, n: int) -> web.Response:
        if n == 0:
            return ok(**limits(4, time.time() + 3600, limit=5))
        return ok(**limits(4, time.time() + 1, limit=5))

    async with hostile(respond) as (url, seen), SentryClient("t", base_url=url) as client:
        with anyio.fail_after(15):
            for _ in range(8):
                await get(client)
        state = client.limiter.state(GROUP)
    assert state.rate is not None and state.rate >= 2.5
    assert len(seen) == 8


async def test_a_reset_in_milliseconds_with_requests_left_does_not_throttle() -> None:
    """Every answer has requests left and a ``Reset`` in epoch milliseconds."""

    def respond(request: web.Request, n: int) -> web.Response:
        return ok(**limits(4, time.time() * 1000 + 1000, limit=5))

    async with hostile(respond) as (url, seen), SentryClient("t", base_url=url) as client:
        with anyio.fail_after(15):
            for _ in range(12):
                await get(client)
        state = client.limiter.state(GROUP)
    assert state.rate is not None and state.rate >= 2.5
    assert len(seen) == 12


async def test_a_client_clock_minutes_off_does_not_change_the_pacing() -> None:
    """The server's clock is ten minutes ahead: its Reset is one second after its Date."""
    skew = 600.0

    def respond(request: web.Request, n: int) -> web.Response:
        server_now = time.time() + skew
        reset = int(server_now) + 2
        headers = limits(0 if n == 0 else 10, reset, Date=formatdate(server_now, usegmt=True))
        return ok(**headers)

    async with hostile(respond) as (url, seen), SentryClient("t", base_url=url) as client:
        with anyio.fail_after(10):
            await get(client)
            await get(client)
    assert len(seen) == 2
    assert seen[1] - seen[0] >= 0.9, "the closed window is still waited out"
