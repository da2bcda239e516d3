"""The transport's time bounds, statuses and connections against raw hostile servers on
127.0.0.1: downloads that never begin, redirect chains that trickle, empty success bodies,
``101`` answers, and servers that close every connection after answering.

Each server is a raw asyncio socket server whose bytes the test scripts; every loop is
bounded, and every test is bounded in time by an outer limit that only a hang reaches.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any, cast

import anyio
import pytest

from sentry_async import (
    APIError,
    ConnectionFailed,
    DecodeError,
    RequestTimeout,
    RetryPolicy,
    SentryClient,
    Timeouts,
)
from sentry_async._deadlines import SHARED_DEADLINES
from sentry_async.hooks import HookEvent, Hooks
from sentry_async.models import Issue

pytestmark = pytest.mark.anyio

Answer = Callable[[str, int, asyncio.StreamWriter], Awaitable[bool]]
"""Answers one request (its target, and how many came before it on its connection); returns
whether to keep the connection open for another."""

ONCE = RetryPolicy(attempts=1)
FAST = RetryPolicy(attempts=3, backoff_base=0.01, backoff_max=0.02)
TIGHT = Timeouts(connect=2, read=1, total=1.5, pool=2)
HANG = 20
"""An outer bound only a hang reaches: every call here ends in a few seconds or fails."""
OWN_TIMER = pytest.mark.skipif(
    not SHARED_DEADLINES,
    reason="on Python 3.10 aiohttp's own timers bound each hop, and a download by read alone",
)


@asynccontextmanager
async def raw_server(answer: Answer) -> AsyncIterator[tuple[str, list[str]]]:
    """Serve ``answer`` on 127.0.0.1; yields the base URL and the request targets."""
    targets: list[str] = []

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            for before in range(100):
                head = await reader.readuntil(b"\r\n\r\n")
                target = head.split(b" ", 2)[1].decode()
                targets.append(target)
                if not await answer(target, before, writer):
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    try:
        yield f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}", targets
    finally:
        server.close()
        await server.wait_closed()


def head(status: str, *headers: str, length: int | None = 0) -> bytes:
    lines = [f"HTTP/1.1 {status}", "Content-Type: application/json", *headers]
    if length is not None:
        lines.append(f"Content-Length: {length}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


async def trickle(writer: asyncio.StreamWriter, pieces: list[bytes], every: float) -> None:
    for piece in pieces:
        writer.write(piece)
        await writer.drain()
        await asyncio.sleep(every)


async def sink(chunk: bytes) -> None:
    await asyncio.sleep(0)


async def fetch(client: SentryClient, how: str) -> None:
    """A GET's body through ``download()`` or ``stream()``, thrown away."""
    if how == "download":
        await client.download("/x/", sink)
        return
    async with client.stream("/x/") as chunks:
        async for _ in chunks:
            pass


# Bug: a download had no time bound until its response began, nor while an error body was
# read; only a 2xx body streamed to its sink is exempt from ``total``.


async def _error_body_trickles(target: str, n: int, writer: asyncio.StreamWriter) -> bool:
    writer.write(head("500 Boom", "Transfer-Encoding: chunked", length=None))
    await trickle(writer, [b"1\r\nx\r\n"] * 400, 0.1)
    return False


async def _interim_answers_forever(target: str, n: int, writer: asyncio.StreamWriter) -> bool:
    await trickle(writer, [b"HTTP/1.1 102 Processing\r\n\r\n"] * 400, 0.1)
    return False


async def _headers_trickle(target: str, n: int, writer: asyncio.StreamWriter) -> bool:
    writer.write(b"HTTP/1.1 200 OK\r\nX-Slow: ")
    await trickle(writer, [b"a"] * 400, 0.1)
    return False


@OWN_TIMER
@pytest.mark.parametrize(
    "answer",
    [
        pytest.param(_error_body_trickles, id="error-body-trickles"),
        pytest.param(_interim_answers_forever, id="1xx-forever"),
        pytest.param(_headers_trickle, id="headers-trickle"),
    ],
)
@pytest.mark.parametrize("how", ["download", "stream"])
async def test_a_download_that_never_begins_ends_in_time(answer: Answer, how: str) -> None:
    async with (
        raw_server(answer) as (url, _),
        SentryClient("t", base_url=url, timeout=TIGHT, retry=ONCE) as client,
    ):
        with anyio.fail_after(HANG), pytest.raises(RequestTimeout):
            await fetch(client, how)


async def test_a_download_body_streamed_to_its_sink_is_exempt_from_total() -> None:
    """A 2xx body that keeps coming, each piece within ``read``, for longer than ``total``."""
    pieces = [b"x"] * 12

    async def answer(target: str, n: int, writer: asyncio.StreamWriter) -> bool:
        writer.write(head("200 OK", length=len(pieces)))
        await trickle(writer, pieces, 0.2)
        return True

    got = bytearray()

    async def keep(chunk: bytes) -> None:
        got.extend(chunk)

    timeouts = Timeouts(connect=2, read=1, total=0.8, pool=2)
    async with (
        raw_server(answer) as (url, _),
        SentryClient("t", base_url=url, timeout=timeouts, retry=ONCE) as client,
    ):
        with anyio.fail_after(HANG):
            await client.download("/x/", keep)
    assert bytes(got) == b"x" * 12


# Bug: each redirect hop had a ``total`` of its own, so one attempt could last six.


@OWN_TIMER
async def test_total_bounds_one_attempt_redirects_included() -> None:
    """Five same-origin hops, each well within ``total`` and together well past it."""

    async def answer(target: str, n: int, writer: asyncio.StreamWriter) -> bool:
        hop = int(target.rstrip("/").rsplit("/", 1)[-1]) if "/hop/" in target else 0
        body = b"[]      " if hop >= 5 else b"{}      "
        if hop >= 5:
            writer.write(head("200 OK", length=len(body)))
        else:
            writer.write(head("302 Found", f"Location: /api/0/hop/{hop + 1}/", length=len(body)))
        await trickle(writer, [bytes([b]) for b in body], 0.06)
        return True

    timeouts = Timeouts(connect=2, read=1, total=1, pool=2)
    async with (
        raw_server(answer) as (url, targets),
        SentryClient("t", base_url=url, timeout=timeouts, retry=ONCE) as client,
    ):
        with anyio.fail_after(HANG), pytest.raises(RequestTimeout):
            await client.request("GET", "/hop/0/")
    assert len(targets) < 6, "the attempt ended before the last hop"


# Bug: an empty 2xx body came back as None from a call typed to return an object.


def _empty(status: str) -> Answer:
    async def answer(target: str, n: int, writer: asyncio.StreamWriter) -> bool:
        writer.write(head(status))
        return True

    return answer


@pytest.mark.parametrize("status", ["200 OK", "204 No Content"])
async def test_an_empty_body_for_an_object_is_a_decode_error_retried(status: str) -> None:
    async with (
        raw_server(_empty(status)) as (url, targets),
        SentryClient("t", base_url=url, retry=FAST) as client,
    ):
        with anyio.fail_after(HANG), pytest.raises(DecodeError) as caught:
            await client.issues.get("acme", "1")
        with anyio.fail_after(HANG), pytest.raises(DecodeError):
            await client.request("GET", "/x/", type=Issue)
    assert "Issue" in str(caught.value)
    assert len(targets) == 6, "retried as a body cut short is"


@pytest.mark.parametrize("status", ["200 OK", "204 No Content"])
async def test_an_empty_body_is_none_where_the_type_allows_it(status: str) -> None:
    async with (
        raw_server(_empty(status)) as (url, targets),
        SentryClient("t", base_url=url, retry=FAST) as client,
    ):
        with anyio.fail_after(HANG):
            untyped: Any = await client.request("GET", "/x/")
            optional = await client.request("GET", "/x/", type=cast("type[Issue | None]", Issue | None))
            team = await client.teams.add_member_to_team("acme", "1", "t")
            release = await client.releases.create("acme", version="1", projects=["p"])
            updated = await client.issues.update("acme", "1", status="resolved")
    assert untyped is None and optional is None and team is None
    assert release is None and updated is None
    assert len(targets) == 5, "none of them is retried"


# Bug: a 101 (or any 1xx as a final status) counted as a success with an empty body.


async def test_a_final_1xx_status_is_an_error_naming_it() -> None:
    async def answer(target: str, n: int, writer: asyncio.StreamWriter) -> bool:
        writer.write(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: h2c\r\nConnection: Upgrade\r\n\r\n")
        return False

    async with (
        raw_server(answer) as (url, _),
        SentryClient("t", base_url=url, retry=FAST) as client,
    ):
        with anyio.fail_after(HANG), pytest.raises(APIError) as caught:
            await client.request("GET", "/x/")
        with anyio.fail_after(HANG), pytest.raises(APIError) as listed:
            await client.paginate("/x/").collect()
    assert caught.value.status == 101 and "101" in str(caught.value)
    assert listed.value.status == 101


# Bug: a server that closes each connection after answering (without saying so) made a
# same-origin redirect always fail, and a paginated list retry every page with backoff.


def _closes_after_answering(url: list[str]) -> Answer:
    async def answer(target: str, n: int, writer: asyncio.StreamWriter) -> bool:
        if target.startswith("/api/0/x/"):
            writer.write(head("302 Found", "Location: /api/0/y/"))
        elif "/pages/" in target:
            page = int(target.rsplit("cursor=0:", 1)[-1].split(":")[0]) if "cursor=" in target else 0
            more = "true" if page < 9 else "false"
            link = (
                f'<{url[0]}/x>; rel="previous"; results="false"; cursor="0:0:1", '
                f'<{url[0]}/x>; rel="next"; results="{more}"; cursor="0:{page + 1}:0"'
            )
            body = f'[{{"id": "{page}"}}]'.encode()
            writer.write(head("200 OK", f"Link: {link}", length=len(body)) + body)
        else:
            writer.write(head("200 OK", length=2) + b"[]")
        await writer.drain()
        await asyncio.sleep(0.05)  # the close comes after the client took the connection back
        return False

    return answer


class _Retries(Hooks):
    def __init__(self) -> None:
        self.count = 0

    def on_retry(self, event: HookEvent) -> None:
        self.count += 1


async def test_a_redirect_from_a_server_that_closes_each_connection_is_followed() -> None:
    base: list[str] = []
    async with (
        raw_server(_closes_after_answering(base)) as (url, targets),
        SentryClient("t", base_url=url, retry=ONCE) as client,
    ):
        base.append(url)
        with anyio.fail_after(HANG):
            assert await client.request("GET", "/x/") == []
    assert targets[0] == "/api/0/x/" and targets[-1] == "/api/0/y/"


async def test_pages_from_a_server_that_closes_each_connection_need_no_retry() -> None:
    retries = _Retries()
    base: list[str] = []
    async with (
        raw_server(_closes_after_answering(base)) as (url, _),
        SentryClient("t", base_url=url, hooks=[retries], retry=ONCE) as client,
    ):
        base.append(url)
        with anyio.fail_after(HANG):
            items = await client.paginate("/pages/").collect()
    assert [item["id"] for item in items] == [str(n) for n in range(10)]
    assert retries.count == 0


async def test_a_server_that_drops_every_connection_still_fails_after_the_attempts() -> None:
    async def answer(target: str, n: int, writer: asyncio.StreamWriter) -> bool:
        return False  # closes without a byte

    async with (
        raw_server(answer) as (url, targets),
        SentryClient("t", base_url=url, retry=FAST) as client,
    ):
        with anyio.fail_after(HANG), pytest.raises(ConnectionFailed):
            await client.request("GET", "/x/")
    assert len(targets) == FAST.attempts, "a new connection dropped is not sent again"


async def _one_answer_a_connection(target: str, n: int, writer: asyncio.StreamWriter) -> bool:
    """Answers the first request on a connection, and closes it under the second."""
    if n:
        return False
    writer.write(head("200 OK", length=2) + b"[]")
    await writer.drain()
    return True


async def test_a_kept_alive_connection_closed_under_a_read_is_sent_again_at_once() -> None:
    async with (
        raw_server(_one_answer_a_connection) as (url, targets),
        SentryClient("t", base_url=url, retry=ONCE) as client,
    ):
        with anyio.fail_after(HANG):
            assert await client.request("GET", "/a/") == []
            assert await client.request("GET", "/b/") == []
    assert targets == ["/api/0/a/", "/api/0/b/", "/api/0/b/"]


async def test_a_request_not_safe_to_repeat_is_not_sent_again_on_a_closed_connection() -> None:
    async with (
        raw_server(_one_answer_a_connection) as (url, targets),
        SentryClient("t", base_url=url, retry=FAST) as client,
    ):
        with anyio.fail_after(HANG):
            assert await client.request("GET", "/a/") == []
        with anyio.fail_after(HANG), pytest.raises(ConnectionFailed):
            await client.request("POST", "/b/", json={"a": 1})
    assert targets == ["/api/0/a/", "/api/0/b/"]
