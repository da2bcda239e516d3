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
from pathlib import Path

import anyio
import pytest
from _local_server import local_app
from aiohttp import web

from sentry_async import (
    ConnectionFailed,
    NotFound,
    PaginationError,
    Position,
    RetryPolicy,
    SentryClient,
)
from sentry_async.export import MANIFEST_NAME, ExportSpec, export
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


# Bug: a page without Link after one that said results="true" ended the stream as done.

LINK = (
    '<{url}/x/>; rel="previous"; results="false"; cursor="0:0:1", '
    '<{url}/x/>; rel="next"; results="true"; cursor="0:100:0"'
)


def _empty_second_page(url: list[str]) -> Handler:
    """Page one holds two issues and promises more; the page after it is a ``200`` with an
    empty list and no ``Link`` (a misbehaving proxy or load balancer)."""

    async def handle(request: web.Request) -> web.StreamResponse:
        if "/projects/" in request.path:
            return web.json_response([{"id": "1", "slug": "p", "name": "p"}])
        if "cursor" not in request.query:
            return web.json_response(
                [{"id": "1"}, {"id": "2"}], headers={"Link": LINK.format(url=url[0])}
            )
        return web.json_response([])

    return handle


async def test_a_page_without_link_in_the_middle_of_a_stream_is_an_error() -> None:
    base: list[str] = []
    async with (
        hostile(_empty_second_page(base)) as (url, seen),
        SentryClient("t", base_url=url, retry=FAST) as client,
    ):
        base.append(url)
        paginator = client.paginate("/things/", page_size=2)
        items: list[object] = []

        async def walk() -> None:
            async for item in paginator:
                items.append(item)

        with anyio.fail_after(20), pytest.raises(PaginationError, match="'0:100:0'") as caught:
            await walk()
        # Answered in one response on purpose: the Link is not followed, nor needed.
        whole = await client.paginate("/things/", unpaginated=True).collect()
    assert items == [{"id": "1"}, {"id": "2"}]
    assert caught.value.position == Position("0:100:0")
    assert paginator.position == Position("0:100:0")
    assert whole == [{"id": "1"}, {"id": "2"}]
    assert [s.split("?")[0] for s in seen] == ["/api/0/things/"] * 3


async def test_an_export_meeting_a_page_without_link_is_not_complete(tmp_path: Path) -> None:
    """The exporter wrote its manifest ("complete") with the first page only."""
    base: list[str] = []
    out = tmp_path / "out"
    async with (
        hostile(_empty_second_page(base)) as (url, _),
        SentryClient("t", base_url=url, retry=FAST) as client,
    ):
        base.append(url)
        with anyio.fail_after(30), pytest.raises(PaginationError, match="'0:100:0'"):
            await export(client, ExportSpec(kind="issues", org="acme", query=""), out)
    assert not (out / MANIFEST_NAME).exists()


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
