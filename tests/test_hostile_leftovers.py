"""Small leftovers of hostile or unusual server answers: a same-origin redirect carrying
user information, an absurd rate-limit ``Reset``, a download of many gzip members, a
latin-1 cursor whose bytes are also UTF-8, and the context of an organization that does
not decode.

Servers are small aiohttp apps (or raw TCP servers) on 127.0.0.1 inside each test; every
loop is bounded.
"""

from __future__ import annotations

import asyncio
import gzip
import logging
import math
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import parse_qsl, quote

import anyio
import pytest
from aiohttp import web
from multidict import CIMultiDict, CIMultiDictProxy
from test_hostile_echo import TOKEN, assert_hidden, everything_shown, provoke
from test_hostile_protocol import FAST, Handler, hostile

from sentry_async import (
    DecodeError,
    RateLimited,
    RateLimiter,
    RetryPolicy,
    SentryClient,
    UnsafeRedirect,
)
from sentry_async._protocol import body as body_module
from sentry_async._protocol.body import INPUT_SLICE, MAX_GZIP_MEMBERS, BodyReader, CorruptBody
from sentry_async._protocol.links import link_header
from sentry_async._protocol.retry import decide
from sentry_async.sansio import parse_rate_limit

pytestmark = pytest.mark.anyio

# Bug: a same-origin redirect whose Location carried user information was followed into
# aiohttp, which refused a URL with credentials beside an Authorization header: a
# ConnectionFailed ("Cannot combine AUTHORIZATION header ...") instead of UnsafeRedirect.


def _redirect_to(userinfo: str, *, relative: bool = False) -> Handler:
    async def handle(request: web.Request) -> web.StreamResponse:
        if request.path.endswith("/end/"):
            return web.json_response({"ok": True})
        authority = f"{userinfo}@{request.host}"
        location = f"//{authority}/api/0/end/" if relative else f"http://{authority}/api/0/end/"
        return web.Response(status=302, headers={"Location": location})

    return handle


@pytest.mark.parametrize(
    ("userinfo", "relative"),
    [
        ("mallory:hunter2", False),
        ("mallory:hunter2", True),
        ("mallory", False),
        (":hunter2", False),
        (f"mallory:{quote(TOKEN, safe='')}", False),
        (quote(TOKEN, safe=""), False),
    ],
    ids=[
        "user-password",
        "scheme-relative",
        "user-only",
        "password-only",
        "token-password",
        "token-user",
    ],
)
async def test_a_same_origin_redirect_with_user_information_is_an_unsafe_redirect(
    userinfo: str, relative: bool
) -> None:
    async with (
        hostile(_redirect_to(userinfo, relative=relative)) as (url, seen),
        SentryClient(TOKEN, base_url=url, retry=FAST) as client,
    ):
        error = await provoke(lambda: client.request("GET", "/start/"))
    assert isinstance(error, UnsafeRedirect), repr(error)
    assert "user information" in str(error)
    assert error.status == 302
    shown = everything_shown(error)
    assert "mallory" not in shown and "hunter2" not in shown
    assert_hidden(shown)
    assert seen == ["/api/0/start/"], "a refused redirect is final, and never followed"


# Bug: a ``Reset`` of 1e308 put a 309-digit wait in the error and the log line.

LONG_NUMBER = re.compile(r"[0-9]{12}")
"""More digits than any wait worth showing in full (31,000 years of seconds)."""


class Clock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.mark.parametrize("status", [429, 200])
@pytest.mark.parametrize("reset", ["1e308", "9" * 60 + ".5"])
async def test_an_absurd_reset_is_shown_short_and_waited_for_max_wait_at_most(
    status: int, reset: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="sentry_async")
    answered: list[int] = []

    async def handle(request: web.Request) -> web.StreamResponse:
        answered.append(status if not answered else 200)
        if len(answered) > 1:
            return web.json_response({"slug": "acme"})
        limits = {"X-Sentry-Rate-Limit-Remaining": "0", "X-Sentry-Rate-Limit-Reset": reset}
        if status == 429:
            return web.json_response({"detail": "slow down"}, status=429, headers=limits)
        return web.json_response({"slug": "acme"}, headers=limits)

    clock = Clock()
    policy = RetryPolicy(attempts=3, max_wait=5.0)
    limiter = RateLimiter(clock=clock)
    async with (
        hostile(handle) as (url, seen),
        SentryClient("t", base_url=url, retry=policy, limiter=limiter) as client,
    ):
        with anyio.fail_after(20):
            if status == 200:
                await client.request("GET", "/organizations/acme/")
            errors = []
            for _ in range(2):
                with pytest.raises(RateLimited) as caught:
                    await client.request("GET", "/organizations/acme/")
                errors.append(caught.value)
            state = limiter.state("GET /organizations/{org}/")
            assert state.blocked_for <= policy.max_wait
            assert state.reset_in is None or state.reset_in <= policy.max_wait
            clock.now += policy.max_wait + 0.1
            assert await client.request("GET", "/organizations/acme/") == {"slug": "acme"}
    assert len(seen) == 2, "nothing is sent until max_wait has passed, then the call goes"
    for error in errors:
        assert error.retry_after is not None and error.retry_after > 1e30
        assert "the server asked to wait" in str(error)
        assert not LONG_NUMBER.search(str(error)), str(error)
    logged = [r.getMessage() for r in caplog.records if "asked to wait" in r.getMessage()]
    assert logged and not any(LONG_NUMBER.search(line) for line in logged), logged


async def test_the_retry_warning_shows_an_absurd_wait_short_where_it_is_waited(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """With ``max_wait=inf`` (the caller's own choice) an absurd ``Reset`` is really waited,
    and the warning before the wait is the one place that shows it: short, as elsewhere."""
    caplog.set_level(logging.WARNING, logger="sentry_async")

    async def handle(request: web.Request) -> web.StreamResponse:
        limits = {"X-Sentry-Rate-Limit-Remaining": "0", "X-Sentry-Rate-Limit-Reset": "1e308"}
        return web.json_response({"detail": "slow down"}, status=429, headers=limits)

    policy = RetryPolicy(attempts=2, max_wait=math.inf)
    async with (
        hostile(handle) as (url, _seen),
        SentryClient("t", base_url=url, retry=policy) as client,
    ):
        with anyio.move_on_after(2) as waited:
            await client.request("GET", "/organizations/acme/")
    assert waited.cancelled_caught, "the wait is the server's, and the caller's to cut"
    logged = [r.getMessage() for r in caplog.records if "retrying" in r.getMessage()]
    assert logged and not any(LONG_NUMBER.search(line) for line in logged), logged
    assert "1e+308s" in logged[0]


def test_a_retry_decision_names_an_absurd_wait_short() -> None:
    headers = {"X-Sentry-Rate-Limit-Reset": "1e308", "X-Sentry-Rate-Limit-Remaining": "0"}
    decision = decide(
        attempt=1,
        policy=RetryPolicy(max_wait=5.0),
        idempotent=True,
        kind="status",
        status=429,
        headers={"retry-after": "9" * 300},
        rate_limit=parse_rate_limit(headers),
        now=1.7e9,
    )
    assert not decision.retry and decision.server_wait
    assert "wait" in decision.reason and not LONG_NUMBER.search(decision.reason)


# Bug: a download of a file of many gzip members (a legitimate body: concatenated logs,
# BGZF blocks) broke off after 1,000 members, the cap meant for API bodies read whole.

KIB = 1024


def _many_members(count: int) -> tuple[bytes, bytes]:
    """``count`` gzip members of 1 KiB each: the plain file and its compressed body."""
    blocks = [(f"{n:06d}" * 200)[:KIB].encode() for n in range(count)]
    return b"".join(blocks), b"".join(gzip.compress(block, mtime=0) for block in blocks)


async def test_a_download_of_thousands_of_gzip_members_arrives_whole() -> None:
    plain, packed = _many_members(5 * MAX_GZIP_MEMBERS)

    async def handle(request: web.Request) -> web.StreamResponse:
        if request.path.endswith("/json/"):
            return web.Response(
                body=packed, headers={"Content-Encoding": "gzip", "Content-Type": "application/json"}
            )
        response = web.StreamResponse(headers={"Content-Encoding": "gzip"})
        await response.prepare(request)
        for start in range(0, len(packed), 10_000):
            await response.write(packed[start : start + 10_000])
        await response.write_eof()
        return response

    async with (
        hostile(handle) as (url, _),
        SentryClient("t", base_url=url, retry=FAST) as client,
    ):
        got = bytearray()

        async def sink(chunk: bytes) -> None:
            got.extend(chunk)

        with anyio.fail_after(30):
            size = await client.download("/file/", sink)
            streamed = bytearray()
            async with client.stream("/file/") as chunks:
                async for chunk in chunks:
                    streamed.extend(chunk)
            error = await provoke(lambda: client.request("GET", "/json/"))
    assert size == len(plain) and bytes(got) == plain
    assert bytes(streamed) == plain
    assert "gzip members" in str(error), "an API body read whole keeps the cap"


def _counting(monkeypatch: pytest.MonkeyPatch) -> tuple[list[int], list[int]]:
    """Inflaters that record each call's input size, and one entry per member begun."""
    calls: list[int] = []
    members: list[int] = []
    real = body_module.zlib

    class Counting:
        def __init__(self, inner: Any) -> None:
            self._inner = inner

        def decompress(self, data: bytes, max_length: int = 0) -> bytes:
            calls.append(len(data))
            return self._inner.decompress(data, max_length)  # type: ignore[no-any-return]

        def __getattr__(self, name: str) -> Any:
            return getattr(self._inner, name)

    class Zlib:
        error = real.error
        MAX_WBITS = real.MAX_WBITS

        @staticmethod
        def decompressobj(wbits: int = real.MAX_WBITS) -> Counting:
            members.append(wbits)
            return Counting(real.decompressobj(wbits=wbits))

    monkeypatch.setattr(body_module, "zlib", Zlib)
    return calls, members


@pytest.mark.parametrize("member", [b"", b"x" * KIB], ids=["empty", "1KiB"])
def test_a_streamed_body_of_many_members_is_inflated_in_linear_work(
    monkeypatch: pytest.MonkeyPatch, member: bytes
) -> None:
    """With no count cap, the work stays the body plus at most a slice per member (each
    member at least 20 bytes): every call gets a bounded slice, whatever the chunk."""
    calls, members = _counting(monkeypatch)
    count = 20 * MAX_GZIP_MEMBERS
    packed = gzip.compress(member, mtime=0) * count
    reader = BodyReader(limit=None, content_length=None, encoding="gzip", max_members=None)
    size = 0
    for start in range(0, len(packed), 65536):
        size += sum(len(piece) for piece in reader.pieces(packed[start : start + 65536]))
    size += len(reader.finish())
    assert size == len(member) * count
    assert len(members) == count
    assert max(calls) <= INPUT_SLICE
    assert sum(calls) <= len(packed) + len(members) * INPUT_SLICE
    capped = BodyReader(limit=None, content_length=None, encoding="gzip")
    with pytest.raises(CorruptBody, match="gzip members"):
        list(capped.pieces(packed))


# Bug: a latin-1 cursor whose bytes are also valid UTF-8 (``É®``: C9 AE, UTF-8 for ``ɮ``)
# was read as UTF-8, and the next request asked for another cursor.


def _latin1_page(target: str, received: list[str | None]) -> bytes:
    """Sentry's answer as Django writes it: the ``Link`` header's bytes are latin-1
    (``ResponseHeaders._convert_to_charset(value, "latin-1", mime_encode=True)``)."""
    query = dict(parse_qsl(target.partition("?")[2], keep_blank_values=True))
    cursor = query.get("cursor")
    received.append(cursor)
    more = cursor is None
    url = "http://sentry.example/api/0/organizations/acme/alert-rules/?sort=name"
    nxt = "É®:0:0" if more else "É®z:0:0"
    link = (
        f'<{url}&cursor=:0:1>; rel="previous"; results="false"; cursor=":0:1", '
        f'<{url}&cursor={nxt}>; rel="next"; results="{str(more).lower()}"; cursor="{nxt}"'
    )
    body = b'[{"id": "1"}]' if more else b'[{"id": "2"}]'
    head = (
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n"
    )
    return head.encode() + b"Link: " + link.encode("latin-1") + b"\r\n\r\n" + body


@asynccontextmanager
async def _latin1_server() -> AsyncIterator[tuple[str, list[str | None]]]:
    received: list[str | None] = []

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            request = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
            writer.write(_latin1_page(request.split(b" ", 2)[1].decode("ascii"), received))
            await writer.drain()
        except (OSError, asyncio.IncompleteReadError, asyncio.TimeoutError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(answer, "127.0.0.1", 0)
    try:
        yield f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}", received
    finally:
        server.close()
        await server.wait_closed()


async def test_a_latin1_cursor_that_is_also_utf8_is_sent_back_as_written() -> None:
    async with _latin1_server() as (url, received), SentryClient("t", base_url=url) as client:
        paginator = client.paginate(
            "/organizations/acme/alert-rules/", params={"sort": "name"}, max_pages=5
        )
        with anyio.fail_after(20):
            rows = [row async for row in paginator]
    assert rows == [{"id": "1"}, {"id": "2"}]
    assert received == [None, "É®:0:0"]


def test_link_header_reads_aiohttp_text_as_latin1() -> None:
    """aiohttp reads a header's bytes as UTF-8 (surrogate-escaping the rest); Django wrote
    them as latin-1, so the bytes are read again as latin-1 whatever they looked like."""
    value = '<https://x/?cursor=É®:0:0>; rel="next"; results="true"; cursor="É®:0:0"'
    aiohttp_text = value.encode("latin-1").decode("utf-8", "surrogateescape")
    assert "ɮ" in aiohttp_text
    headers = CIMultiDictProxy(CIMultiDict([("Link", aiohttp_text)]))
    assert link_header(headers) == value


# Bug: organizations.list()'s DecodeError kept msgspec's error (which may quote a value a
# server filled with the token) as its suppressed ``__context__``.


async def test_an_organization_that_does_not_decode_chains_nothing() -> None:
    async def handle(request: web.Request) -> web.StreamResponse:
        if request.path.endswith("/regions/"):
            return web.json_response({"detail": "not here"}, status=404)
        return web.json_response([{"id": 1, "slug": ["not", "a", "slug"]}])

    async with (
        hostile(handle) as (url, _),
        SentryClient(TOKEN, base_url=url, retry=FAST) as client,
    ):
        error = await provoke(lambda: client.organizations.list().collect())
    assert isinstance(error, DecodeError)
    assert error.__cause__ is None and error.__context__ is None
