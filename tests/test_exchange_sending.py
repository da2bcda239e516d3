"""When a request counts as sent, and how each phase of sending it is bounded.

A request that never left (still waiting for a pooled connection, for a proxy's tunnel,
for a connection) is bounded by ``pool`` and ``connect``, not by ``read``, and a failure
then is ``maybe_sent=False``, retried even for a write; the read clock starts once the
connection is acquired. A download's body goes at its consumer's pace, under ``read``
only while the client waits for the server. A session made with ``raise_for_status=True``
does not turn Sentry's answers into transport errors.

Every server and proxy is on 127.0.0.1; every loop is bounded in count and every test in
time by an outer limit that only a hang reaches. Nothing is timed: what is checked is what
the error says, how many attempts the servers saw and what the consumer got.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import aiohttp
import anyio
import pytest
from _local_server import local_app
from _proxies import TunnelProxy
from aiohttp import web

from sentry_async import (
    ConnectionFailed,
    NotFound,
    RateLimited,
    RequestTimeout,
    RetryPolicy,
    SentryClient,
    Timeouts,
    Unauthorized,
    _transport,
)
from sentry_async._deadlines import SHARED_DEADLINES, Deadlines
from sentry_async.hooks import HookEvent, Hooks
from sentry_async.testing import FakeSentry

pytestmark = pytest.mark.anyio

TOKEN = "tok-5e4d3c2b1a"
THREE_TRIES = RetryPolicy(attempts=3, backoff_base=0.01, backoff_max=0.02)
TWO_TRIES = RetryPolicy(attempts=2, backoff_base=0.01, backoff_max=0.02)
ONE_TRY = RetryPolicy(attempts=1)
REMOTE = "https://sentry.example.com"
"""Reached only through a tunnel that never opens: never resolved, never connected to."""


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"  # the transport is aiohttp's, and so asyncio's


class Attempts(Hooks):
    """The methods of the attempts the client sent."""

    def __init__(self) -> None:
        self.methods: list[str] = []

    def on_request(self, event: HookEvent) -> None:
        self.methods.append(event.method)


# ---------------------------------------------------------------- a recording origin


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


async def at_once(request: web.Request) -> web.StreamResponse:
    return web.json_response({"ok": True})


@asynccontextmanager
async def origin(slow: Handler, other: Handler = at_once) -> AsyncIterator[tuple[str, list[str]]]:
    """An origin whose ``GET /api/0/slow/`` is ``slow`` and whose other requests are
    ``other``'s; yields its URL and the request lines it got."""
    seen: list[str] = []

    async def handle(request: web.Request) -> web.StreamResponse:
        await request.read()
        seen.append(f"{request.method} {request.path}")
        if request.path == "/api/0/slow/":
            return await slow(request)
        return await other(request)

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handle)
    async with local_app(app) as url:
        yield url, seen


def trickle(pieces: int, gap: float) -> Handler:
    """A JSON body in ``pieces`` writes ``gap`` seconds apart: a live, slow answer that
    holds its connection for ``pieces * gap`` seconds."""

    async def handle(request: web.Request) -> web.StreamResponse:
        body = b"[" + b" " * (pieces - 2) + b"]"
        response = web.StreamResponse(headers={"Content-Type": "application/json"})
        response.content_length = len(body)
        await response.prepare(request)
        try:
            for index in range(pieces):
                await response.write(body[index : index + 1])
                await anyio.sleep(gap)
        except ConnectionError:
            pass
        return response

    return handle


@asynccontextmanager
async def one_connection_held(
    timeouts: Timeouts,
    retry: RetryPolicy,
    pieces: int,
    hooks: Hooks | None = None,
    other: Handler = at_once,
) -> AsyncIterator[tuple[SentryClient, list[str]]]:
    """A client of one connection, which a slow GET holds for ``pieces * 0.05`` seconds
    (each gap far under ``read``) while the block runs; the GET must succeed. The
    origin answers other requests with ``other``."""
    answering = anyio.Event()
    answer = trickle(pieces, 0.05)

    async def slow(request: web.Request) -> web.StreamResponse:
        answering.set()
        return await answer(request)

    async with (
        origin(slow, other) as (url, seen),
        SentryClient(
            TOKEN, base_url=url, max_connections=1, timeout=timeouts, retry=retry, hooks=hooks
        ) as client,
    ):
        hog = asyncio.create_task(client.request("GET", "/slow/"))
        try:
            with anyio.fail_after(10):
                await answering.wait()
            yield client, seen
            with anyio.fail_after(30):
                assert await hog == []
        finally:
            hog.cancel()


# ---------------------------------------------------------------- waiting for a connection


@pytest.mark.parametrize("shared", [True, False])
async def test_the_wait_for_a_pooled_connection_is_bounded_by_pool_not_read(
    shared: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The POST waits for the connection a live GET holds, far longer than ``read`` and
    well within ``pool``: it is sent once the connection is free."""
    if shared and not SHARED_DEADLINES:
        pytest.skip("Python 3.10 keeps aiohttp's own timers")
    monkeypatch.setattr(_transport, "SHARED_DEADLINES", shared)
    timeouts = Timeouts(connect=5, read=0.5, total=60, pool=30)
    async with one_connection_held(timeouts, ONE_TRY, pieces=40) as (client, seen):
        with anyio.fail_after(30):
            assert await client.request("POST", "/things/", json={"a": 1}) == {"ok": True}
    assert seen == ["GET /api/0/slow/", "POST /api/0/things/"]


@pytest.mark.parametrize("shared", [True, False])
async def test_the_read_clock_starts_once_the_request_has_its_connection(
    shared: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The POST waits for its connection far longer than ``read``, is sent, and its
    server never answers: the read bound, not ``pool``, ends it, and it may have been
    made, so it is not sent again."""
    if shared and not SHARED_DEADLINES:
        pytest.skip("Python 3.10 keeps aiohttp's own timers")
    monkeypatch.setattr(_transport, "SHARED_DEADLINES", shared)
    release = anyio.Event()

    async def silent(request: web.Request) -> web.StreamResponse:
        with anyio.move_on_after(20):
            await release.wait()
        return web.json_response({"ok": True})

    timeouts = Timeouts(connect=5, read=0.5, total=60, pool=30)
    attempts = Attempts()
    try:
        async with one_connection_held(timeouts, TWO_TRIES, 40, attempts, silent) as (
            client,
            seen,
        ):
            with anyio.fail_after(30), pytest.raises(RequestTimeout) as caught:
                await client.request("POST", "/things/", json={"a": 1})
            release.set()
    finally:
        release.set()
    assert caught.value.maybe_sent is True
    assert "the request was not sent" not in str(caught.value)
    if shared:
        assert "nothing arrived for 0.5s (Timeouts.read)" in str(caught.value)
    assert attempts.methods == ["GET", "POST"]
    assert seen == ["GET /api/0/slow/", "POST /api/0/things/"]


@pytest.mark.parametrize("shared", [True, False])
async def test_a_pool_wait_that_runs_out_is_unsent_and_retried_for_a_write(
    shared: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``pool`` is shorter than the GET's hold and longer than ``read``: the POST never
    gets a connection, says so, and is tried again since nothing was sent."""
    if shared and not SHARED_DEADLINES:
        pytest.skip("Python 3.10 keeps aiohttp's own timers")
    monkeypatch.setattr(_transport, "SHARED_DEADLINES", shared)
    timeouts = Timeouts(connect=5, read=0.5, total=60, pool=1)
    attempts = Attempts()
    async with one_connection_held(timeouts, TWO_TRIES, 70, attempts) as (client, seen):
        with anyio.fail_after(30), pytest.raises(RequestTimeout) as caught:
            await client.request("POST", "/things/", json={"a": 1})
    error = caught.value
    assert attempts.methods == ["GET", "POST", "POST"]
    assert error.maybe_sent is False
    assert "the request was not sent" in str(error)
    assert "Timeouts.read" not in str(error)
    assert seen == ["GET /api/0/slow/"]  # the POST never reached the origin
    assert error.status is None


@pytest.mark.parametrize("shared", [True, False])
async def test_a_tunnel_the_proxy_never_answers_is_bounded_by_pool_and_retried(
    shared: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``read`` is shorter than ``pool``: the CONNECT waits out ``pool``, not ``read``,
    and a POST is sent again since no tunnel was opened."""
    if shared and not SHARED_DEADLINES:
        pytest.skip("Python 3.10 keeps aiohttp's own timers")
    monkeypatch.setattr(_transport, "SHARED_DEADLINES", shared)
    timeouts = Timeouts(connect=5, read=0.2, total=60, pool=0.6)
    async with (
        TunnelProxy("hang") as proxy,
        SentryClient(
            TOKEN, base_url=REMOTE, proxy=proxy.url, timeout=timeouts, retry=TWO_TRIES
        ) as client,
    ):
        with anyio.fail_after(30), pytest.raises(RequestTimeout) as caught:
            await client.request("POST", "/organizations/o/releases/", json={"version": "1"})
    assert caught.value.maybe_sent is False
    assert "Timeouts.read" not in str(caught.value)
    assert proxy.connects == 2


@pytest.mark.skipif(not SHARED_DEADLINES, reason="Python 3.10 keeps aiohttp's own timers")
async def test_a_watch_runs_no_read_clock_while_its_request_waits_for_a_connection() -> None:
    """Waiting for a connection for eight times ``read``: no expiry; once connected and
    silent, the read bound ends it."""
    deadlines = Deadlines(read=0.1, total=None)
    connecting = [True]
    watch = deadlines.start()
    watch.begin(lambda: connecting[0])
    with anyio.fail_after(5):
        await asyncio.sleep(0.8)
        assert watch.expired is None
        connecting[0] = False
        with pytest.raises(asyncio.CancelledError):
            await asyncio.sleep(5)
    assert watch.expired == "nothing arrived for 0.1s (Timeouts.read)"
    assert deadlines.finish(watch) is True


# ---------------------------------------------------------------- a tunnel that breaks


@pytest.mark.parametrize("mode", ["close", "garble"])
@pytest.mark.parametrize("method", ["GET", "POST"])
async def test_a_tunnel_the_proxy_drops_or_garbles_was_not_sent_and_names_the_proxy(
    mode: str, method: str
) -> None:
    """No tunnel, so nothing reached Sentry: retried even for a write, as a ``CONNECT``
    answered with a 502 is, and the error says the proxy failed, naming it."""
    timeouts = Timeouts(connect=5, read=5, total=30, pool=5)
    async with (
        TunnelProxy(mode) as proxy,
        SentryClient(
            TOKEN, base_url=REMOTE, proxy=proxy.url, timeout=timeouts, retry=THREE_TRIES
        ) as client,
    ):
        body = {"version": "1"} if method == "POST" else None
        with anyio.fail_after(30), pytest.raises(ConnectionFailed) as caught:
            await client.request(method, "/organizations/o/releases/", json=body)
    error = caught.value
    assert error.maybe_sent is False
    assert proxy.connects == 3
    assert "the proxy refused the tunnel" in str(error)
    assert f"(proxy {proxy.url})" in str(error)
    assert str(error).endswith("the request was not sent")


# ---------------------------------------------------------------- a slow consumer


def _file(size: int) -> Handler:
    async def handle(request: web.Request) -> web.StreamResponse:
        return web.Response(body=b"x" * size, content_type="application/octet-stream")

    return handle


SIZES = [3_000_000, 4_000_000]
"""Whether aiohttp's read bound is re-armed after the body ended depends on where the
chunks it hands over end; with this aiohttp, at least one size of the two meets it."""


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("shared", [True, False])
async def test_a_download_to_a_consumer_slower_than_read_completes(
    shared: bool, size: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The server sends the whole file at once; the consumer takes longer than ``read``
    over each chunk. The server was never silent: the download succeeds."""
    if shared and not SHARED_DEADLINES:
        pytest.skip("Python 3.10 keeps aiohttp's own timers")
    monkeypatch.setattr(_transport, "SHARED_DEADLINES", shared)
    got: list[int] = []

    async def sink(chunk: bytes) -> None:
        got.append(len(chunk))
        await anyio.sleep(0.3)

    timeouts = Timeouts(connect=5, read=0.2, total=0.5, pool=5)
    async with (
        origin(_file(size)) as (url, seen),
        SentryClient(TOKEN, base_url=url, timeout=timeouts, retry=ONE_TRY) as client,
    ):
        with anyio.fail_after(60):
            assert await client.download("/slow/", sink) == size
    assert sum(got) == size and len(got) > 1
    assert seen == ["GET /api/0/slow/"]


@pytest.mark.parametrize("size", SIZES)
async def test_a_stream_read_slower_than_read_gets_the_whole_body(size: int) -> None:
    timeouts = Timeouts(connect=5, read=0.2, total=0.5, pool=5)
    async with (
        origin(_file(size)) as (url, _),
        SentryClient(TOKEN, base_url=url, timeout=timeouts, retry=ONE_TRY) as client,
    ):
        received = 0
        with anyio.fail_after(60):
            async with client.stream("/slow/") as chunks:
                async for chunk in chunks:  # bounded: the body is `size` bytes
                    received += len(chunk)
                    await anyio.sleep(0.3)
    assert received == size


@pytest.mark.parametrize("shared", [True, False])
async def test_a_download_whose_server_falls_silent_still_ends_at_read(
    shared: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Half a file, then silence: ``read`` ends it, with a slow consumer too."""
    if shared and not SHARED_DEADLINES:
        pytest.skip("Python 3.10 keeps aiohttp's own timers")
    monkeypatch.setattr(_transport, "SHARED_DEADLINES", shared)

    release = anyio.Event()

    async def half(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "application/octet-stream"})
        response.content_length = 200_000
        await response.prepare(request)
        await response.write(b"x" * 100_000)
        with anyio.move_on_after(20):
            await release.wait()
        return response

    got: list[int] = []

    async def sink(chunk: bytes) -> None:
        got.append(len(chunk))
        await anyio.sleep(0.3)

    timeouts = Timeouts(connect=5, read=0.5, total=60, pool=5)
    async with (
        origin(half) as (url, _),
        SentryClient(TOKEN, base_url=url, timeout=timeouts, retry=ONE_TRY) as client,
    ):
        try:
            with anyio.fail_after(20), pytest.raises(RequestTimeout) as caught:
                await client.download("/slow/", sink)
        finally:
            release.set()
    assert sum(got) == 100_000
    assert caught.value.status == 200


# ---------------------------------------------------------------- a session of yours


async def test_a_session_raising_for_status_still_gets_sentrys_answers() -> None:
    """aiohttp's ``raise_for_status=True`` would turn a 404 or a 401 into an exception
    the client took for a broken response, and retried."""
    async with (
        FakeSentry(scale="small", token=TOKEN) as server,
        aiohttp.ClientSession(raise_for_status=True) as session,
    ):
        for token, error in ((TOKEN, NotFound), ("wrong-token-0123", Unauthorized)):
            before = len(server.requests)
            async with SentryClient(
                token, base_url=server.url, session=session, proxy=None, retry=THREE_TRIES
            ) as client:
                with anyio.fail_after(30), pytest.raises(error):
                    await client.request("GET", "/organizations/no-such-org/")
            assert len(server.requests) - before == 1  # not retried
        assert not session.closed


async def test_a_session_raising_for_status_honours_a_429s_retry_after() -> None:
    """A wait longer than ``max_wait`` is a ``RateLimited`` at once, not a retry."""
    seen: list[str] = []

    async def handle(request: web.Request) -> web.StreamResponse:
        seen.append(request.path)
        return web.json_response(
            {"detail": "slow down"}, status=429, headers={"Retry-After": "3600"}
        )

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handle)
    async with (
        local_app(app) as url,
        aiohttp.ClientSession(raise_for_status=True) as session,
        SentryClient(TOKEN, base_url=url, session=session, proxy=None, retry=THREE_TRIES) as client,
    ):
        with anyio.fail_after(30), pytest.raises(RateLimited) as caught:
            await client.request("GET", "/things/")
    assert caught.value.retry_after == 3600
    assert seen == ["/api/0/things/"]
