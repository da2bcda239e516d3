"""Bodies that trickle, never end, or inflate: every attempt has a deadline and a size cap.

Each test runs a small aiohttp server on 127.0.0.1 whose answers the test scripts; every
server loop is bounded in count and every test in time.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import anyio
import pytest
from aiohttp import web

from sentry_async import RequestTimeout, RetryPolicy, SentryClient, Timeouts, fan_out

pytestmark = pytest.mark.anyio

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@asynccontextmanager
async def hostile(handle: Handler) -> AsyncIterator[tuple[str, list[str]]]:
    """Serve ``handle`` on 127.0.0.1; yields the base URL and the paths requested."""
    paths: list[str] = []

    async def record(request: web.Request) -> web.StreamResponse:
        paths.append(request.path)
        return await handle(request)

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", record)
    runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=0.1)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield f"http://127.0.0.1:{port}", paths
    finally:
        await runner.cleanup()


async def trickle(request: web.Request) -> web.StreamResponse:
    """A JSON list that arrives one byte every 0.05 s (for at most 10 s)."""
    response = web.StreamResponse(headers={"Content-Type": "application/json"})
    response.content_length = 1000
    await response.prepare(request)
    with contextlib.suppress(ConnectionError):
        await response.write(b"[")
        for _ in range(200):
            await anyio.sleep(0.05)
            await response.write(b" ")
    return response


ONE_TRY = RetryPolicy(attempts=2, backoff_base=0.01, backoff_max=0.02)


# 3. Every attempt has a deadline.


def test_every_attempt_has_a_deadline_by_default() -> None:
    timeouts = SentryClient("t", base_url="http://127.0.0.1:9").timeouts
    assert timeouts.total is not None and timeouts.pool is not None
    aio = timeouts.to_aiohttp()
    assert aio.total == timeouts.total
    assert aio.connect == timeouts.pool
    assert SentryClient("t", base_url="http://127.0.0.1:9", timeout=30).timeouts.total == 300
    unbounded = Timeouts(total=None, pool=None).to_aiohttp()
    assert unbounded.total is None and unbounded.connect is None
    with pytest.raises(ValueError, match="total"):
        Timeouts(total=0)


@pytest.mark.parametrize("how", ["request", "paginate", "fan_out"])
async def test_a_trickling_body_cannot_hold_a_call(how: str) -> None:
    """Bytes keep coming (so the read timeout never fires); the attempt's deadline does."""
    timeouts = Timeouts(read=5.0, total=0.4)
    async with (
        hostile(trickle) as (url, paths),
        SentryClient("t", base_url=url, timeout=timeouts, retry=ONE_TRY) as client,
    ):

        async def call() -> None:
            if how == "request":
                await client.request("GET", "/things/")
            elif how == "paginate":
                await client.paginate("/things/").collect()
            else:
                streams = {"a": lambda: client.paginate("/things/")}
                async with fan_out(streams) as merged:
                    async for _ in merged:
                        pass

        with anyio.fail_after(10), pytest.raises(RequestTimeout) as caught:
            await call()
    assert "/api/0/things/" in caught.value.url
    assert len(paths) == ONE_TRY.attempts


async def test_the_wait_for_a_pooled_connection_is_bounded() -> None:
    """One connection, held by a trickling body: the next call gives up after ``pool``."""

    holding = anyio.Event()

    async def handle(request: web.Request) -> web.StreamResponse:
        if request.path.endswith("/slow/"):
            holding.set()
            return await trickle(request)
        return web.json_response([])

    timeouts = Timeouts(read=5.0, total=None, pool=0.3)
    async with (
        hostile(handle) as (url, paths),
        SentryClient(
            "t", base_url=url, timeout=timeouts, retry=RetryPolicy(attempts=1), max_connections=1
        ) as client,
    ):
        with anyio.fail_after(8):
            async with anyio.create_task_group() as tg:
                tg.start_soon(client.request, "GET", "/slow/")
                await holding.wait()
                with pytest.raises(RequestTimeout):
                    await client.request("GET", "/fast/")
                tg.cancel_scope.cancel()
    assert paths == ["/api/0/slow/"]
