"""The protocol's decisions against small hostile servers on 127.0.0.1: huge error bodies, a
page without ``Link`` in the middle of a stream, gzip bodies of several members, and
``Retry-After`` dates already past.

Each server is an aiohttp app whose answers the test scripts; every loop is bounded and
every test bounded in time.
"""

from __future__ import annotations

import gzip
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import anyio
import pytest
from _local_server import local_app
from aiohttp import web

from sentry_async import (
    ConnectionFailed,
    NotFound,
    RetryPolicy,
    SentryClient,
)
from sentry_async.hooks import HookEvent, Hooks
from sentry_async.sansio import MAX_ERROR_BODY

pytestmark = pytest.mark.anyio

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
FAST = RetryPolicy(attempts=3, backoff_base=0.01, backoff_max=0.02)
MiB = 1024 * 1024


@asynccontextmanager
async def hostile(handle: Handler) -> AsyncIterator[tuple[str, list[str]]]:
    """Serve ``handle`` on 127.0.0.1; yields the base URL and the requests' path and query."""
    seen: list[str] = []

    async def record(request: web.Request) -> web.StreamResponse:
        seen.append(request.path_qs)
        return await handle(request)

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", record)
    async with local_app(app) as url:
        yield url, seen


# Bug: a 60 MiB error body was decoded whole and kept on the exception.


async def test_a_huge_error_body_is_kept_cut_and_not_decoded() -> None:
    """A 404 whose body is 3 MiB of ``[{},{},...]``: the error holds the body's first
    ``MAX_ERROR_BODY`` bytes and no decoded data, and says the body was cut."""
    huge = b"[" + b"{}," * MiB + b"{}]"

    async def handle(request: web.Request) -> web.StreamResponse:
        if request.path.endswith("/small/"):
            gone = {"detail": "The requested resource does not exist"}
            return web.json_response(gone, status=404)
        return web.Response(body=huge, status=404, content_type="application/json")

    async with (
        hostile(handle) as (url, seen),
        SentryClient("t", base_url=url, retry=FAST) as client,
    ):
        with anyio.fail_after(20), pytest.raises(NotFound) as caught:
            await client.request("GET", "/huge/")
        with anyio.fail_after(20), pytest.raises(NotFound) as small:
            await client.request("GET", "/small/")
    error = caught.value
    assert error.data is None
    assert len(error.body) == MAX_ERROR_BODY and huge.startswith(error.body)
    assert f"{len(huge):,} bytes" in str(error) and "cut" in str(error)
    assert small.value.detail == "The requested resource does not exist"
    assert small.value.data == {"detail": "The requested resource does not exist"}
    assert len(seen) == 2, "a 404 is not retried"


# Bug: a gzip body of several members was cut after the first.

A = b"A" * 1000 + b"\n"
B = b"B" * 1000 + b"\n"


async def _members(request: web.Request) -> web.StreamResponse:
    if request.path.endswith("/file/"):
        body = gzip.compress(A) + gzip.compress(B)
        encoding = "gzip"
    elif request.path.endswith("/json/"):
        body = gzip.compress(b'[{"id":"1"},') + gzip.compress(b'{"id":"2"}]')
        encoding = "gzip"
    else:
        body = zlib.compress(b'[{"id":"1"}]') + b"trailing"
        encoding = "deflate"
    return web.Response(body=body, headers={"Content-Encoding": encoding})


async def test_every_member_of_a_gzip_body_arrives() -> None:
    async with (
        hostile(_members) as (url, seen),
        SentryClient("t", base_url=url, retry=FAST) as client,
    ):
        got = bytearray()

        async def sink(chunk: bytes) -> None:
            got.extend(chunk)

        with anyio.fail_after(20):
            size = await client.download("/file/", sink)
            listed = await client.request("GET", "/json/")
            with pytest.raises(ConnectionFailed, match="after the end"):
                await client.request("GET", "/deflate/")
    assert size == len(got) == 2002 and bytes(got) == A + B
    assert listed == [{"id": "1"}, {"id": "2"}]
    assert seen.count("/api/0/deflate/") == FAST.attempts, "a mangled body is retried"


# Bug: a Retry-After date in the past retried at once, with no backoff.


class Waits(Hooks):
    def __init__(self) -> None:
        self.waits: list[float] = []

    def on_retry(self, event: HookEvent) -> None:
        self.waits.append(event.wait)


@pytest.mark.parametrize("value", ["Thu, 01 Jan 1970 00:00:00 GMT", "0"], ids=["past", "zero"])
async def test_a_retry_after_in_the_past_backs_off(value: str) -> None:
    """Two 429s whose ``Retry-After`` is already past, then a 200: the retries wait the
    policy's backoff, where they went at once (15 requests in 0.8 s)."""

    async def handle(request: web.Request) -> web.StreamResponse:
        if len(seen) <= 2:
            return web.json_response(
                {"detail": "slow down"}, status=429, headers={"Retry-After": value}
            )
        return web.json_response([])

    policy = RetryPolicy(attempts=3, backoff_base=0.02, backoff_max=1.0, jitter=0.0)
    waits = Waits()
    async with (
        hostile(handle) as (url, seen),
        SentryClient("t", base_url=url, retry=policy, hooks=waits) as client,
    ):
        with anyio.fail_after(20):
            assert await client.request("GET", "/x/") == []
    assert len(seen) == 3
    assert waits.waits == [0.02, 0.04]
