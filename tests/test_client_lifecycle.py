"""A client's life: the event loop it belongs to, and what ``close()`` does to the calls in flight.

A client is bound to the event loop it first sends on; a call from another loop is a
:class:`WrongEventLoop` before anything is sent. ``close()`` ends every attempt in flight,
each call raising :class:`ClientClosed`, whether it waits for headers or reads a body.
"""

from __future__ import annotations

import asyncio
import gc
import threading
import warnings
from collections.abc import AsyncIterator, Awaitable
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
import anyio
import pytest
from _local_server import local_app
from aiohttp import web

from sentry_async import (
    ClientClosed,
    ConnectionFailed,
    HookEvent,
    Hooks,
    RetryPolicy,
    SentryClient,
    SentryError,
    Timeouts,
    WrongEventLoop,
)
from sentry_async._deadlines import SHARED_DEADLINES
from sentry_async.testing import FakeSentry

HANG = 30
"""Seconds a test waits for what should take a moment: reached only when something hangs."""

ENDS_BODIES = pytest.mark.skipif(
    not SHARED_DEADLINES, reason="on Python 3.10 a body being read ends at the read timeout"
)
"""close() ends a body half-way through where the attempts in flight are tracked (3.11+)."""


def _first_loop_then_second(client: SentryClient) -> BaseException:
    """One request on one ``asyncio.run``, then one on a second; what the second raised."""

    async def list_organizations() -> None:
        await asyncio.wait_for(client.request("GET", "/organizations/"), HANG)

    asyncio.run(list_organizations())
    with pytest.raises(Exception) as raised:
        asyncio.run(list_organizations())
    return raised.value


def test_a_second_event_loop_is_refused_before_anything_is_sent(fake_sentry: FakeSentry) -> None:
    client = fake_sentry.client()
    error = _first_loop_then_second(client)
    assert isinstance(error, WrongEventLoop), repr(error)
    assert isinstance(error, SentryError) and isinstance(error, RuntimeError)
    assert "create one client per event loop" in str(error)
    assert len(fake_sentry.requests) == 1  # the second call sent nothing

    # The first loop has ended with the client still open: close() from any other loop
    # releases it, and it then says it is closed.
    asyncio.run(client.close())
    assert client.closed
    assert client._session is not None and client._session.closed
    with pytest.raises(ClientClosed, match="this SentryClient is closed"):
        asyncio.run(client.request("GET", "/organizations/"))
    # The ended loop's pooled socket can only be reclaimed by the garbage collector, which
    # says so: here, not in whichever test runs next.
    del client
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)
        gc.collect()


def test_a_client_used_by_two_threads_refuses_the_second(fake_sentry: FakeSentry) -> None:
    client = fake_sentry.client()
    first_sent = threading.Event()
    second_done = threading.Event()
    outcome: dict[str, Any] = {}

    def first() -> None:
        async def run() -> None:
            async with client:
                await asyncio.wait_for(client.request("GET", "/organizations/"), HANG)
                first_sent.set()
                # This loop keeps running, the client open, while the other thread tries.
                await asyncio.to_thread(second_done.wait, HANG)
            outcome["first"] = "closed on its own loop"

        asyncio.run(run())

    def second() -> None:
        def attempt(call: Awaitable[Any]) -> BaseException | None:
            async def run() -> None:
                await asyncio.wait_for(call, HANG)

            try:
                asyncio.run(run())
            except BaseException as exc:
                return exc
            return None

        first_sent.wait(HANG)
        try:
            outcome["request"] = attempt(client.request("GET", "/organizations/"))
            # The session is the other loop's to close, and that loop still runs.
            outcome["close"] = attempt(client.close())
        finally:
            second_done.set()

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(HANG * 2)
    assert not any(thread.is_alive() for thread in threads)
    assert isinstance(outcome["request"], WrongEventLoop), repr(outcome["request"])
    assert isinstance(outcome["close"], WrongEventLoop), repr(outcome["close"])
    assert outcome.get("first") == "closed on its own loop"
    assert client.closed
    assert len(fake_sentry.requests) == 1


class Held:
    """The requests a stalling server holds, and a wait for a number of them."""

    def __init__(self) -> None:
        self.paths: list[str] = []
        self._arrived = anyio.Event()

    def add(self, path: str) -> None:
        self.paths.append(path)
        self._arrived.set()
        self._arrived = anyio.Event()

    async def reach(self, count: int) -> None:
        with anyio.fail_after(HANG):
            while len(self.paths) < count:
                await self._arrived.wait()


@asynccontextmanager
async def stalling() -> AsyncIterator[tuple[str, Held]]:
    """A server that answers ``/slow/`` never (no headers), ``/midbody/`` with a body that
    stops after its first bytes, and ``/list/`` with one page whose next page never comes.

    Yields the base URL and the requests it holds; each is let go when the test ends."""
    held = Held()
    release = anyio.Event()

    async def hold(request: web.Request) -> None:
        held.add(request.path_qs)
        with anyio.move_on_after(HANG):
            await release.wait()

    async def slow(request: web.Request) -> web.StreamResponse:
        await hold(request)
        return web.json_response({})

    async def midbody(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(
            headers={"Content-Type": "application/json", "Content-Length": "100000"}
        )
        await response.prepare(request)
        await response.write(b"[" + b" " * 1000)
        await hold(request)
        return response

    async def listing(request: web.Request) -> web.StreamResponse:
        if request.query.get("cursor") == "1":
            await hold(request)
        base = f"{request.scheme}://{request.host}{request.path}"
        link = f'<{base}?cursor=1>; rel="next"; results="true"; cursor="1"'
        return web.json_response([{"id": "1"}, {"id": "2"}], headers={"Link": link})

    app = web.Application()
    app.router.add_get("/api/0/slow/", slow)
    app.router.add_get("/api/0/midbody/", midbody)
    app.router.add_get("/api/0/list/", listing)
    async with local_app(app) as url:
        try:
            yield url, held
        finally:
            release.set()


@ENDS_BODIES
@pytest.mark.parametrize("timeouts", [Timeouts(), None], ids=["default", "no-timeouts"])
async def test_close_ends_the_requests_in_flight_with_client_closed(
    timeouts: Timeouts | None,
) -> None:
    """Two requests wait for headers, two are half-way through a body, and a walk's next
    page is on its way: close() ends all five at once, each as the client's own error
    (without timeouts too, where nothing else would ever end them)."""
    before = set(asyncio.all_tasks())
    async with stalling() as (url, held):
        client = SentryClient("token", base_url=url, timeout=timeouts)
        async with client:
            calls = [asyncio.create_task(client.request("GET", "/slow/")) for _ in range(2)]
            calls += [asyncio.create_task(client.request("GET", "/midbody/")) for _ in range(2)]
            walked: list[Any] = []

            async def walk() -> None:
                async for item in client.paginate("/list/", prefetch=0):
                    walked.append(item)

            calls.append(asyncio.create_task(walk()))
            await held.reach(5)
            with anyio.fail_after(HANG):
                await client.close()
            _done, pending = await asyncio.wait(calls, timeout=HANG)
            assert not pending, f"{len(pending)} calls still waiting after close()"
        for call in calls:
            error = call.exception()
            assert isinstance(error, ClientClosed), repr(error)
            assert str(error) == "this SentryClient is closed"
        assert len(walked) == 2
        with pytest.raises(ClientClosed, match="this SentryClient is closed"):
            await client.request("GET", "/slow/")
        assert len(held.paths) == 5  # nothing was sent after close()
    assert set(asyncio.all_tasks()) == before


@ENDS_BODIES
async def test_close_ends_a_download_half_way_through_its_body() -> None:
    """A download keeps its own read bound (its body goes at the sink's pace), yet close()
    ends it as promptly as any other request."""
    async with stalling() as (url, held), SentryClient("token", base_url=url) as client:
        first_chunk = anyio.Event()

        async def sink(chunk: bytes) -> None:
            first_chunk.set()

        download = asyncio.create_task(client.download("/midbody/", sink))
        with anyio.fail_after(HANG):
            await first_chunk.wait()
        await client.close()
        done, _pending = await asyncio.wait([download], timeout=HANG)
        assert done, "the download still waits after close()"
        error = download.exception()
        assert isinstance(error, ClientClosed), repr(error)
        assert held.paths == ["/api/0/midbody/"]


async def test_a_session_closed_under_the_client_is_not_a_network_failure() -> None:
    """aiohttp's "Session is closed" (a RuntimeError) says the client cannot send, not
    that the network failed: it is a ClientClosed, not retried."""
    async with stalling() as (url, held), aiohttp.ClientSession() as session:
        client = SentryClient("token", base_url=url, session=session)
        await session.close()
        with pytest.raises(ClientClosed) as raised:
            await client.request("GET", "/list/")
        assert not isinstance(raised.value, ConnectionFailed)
        assert "session" in str(raised.value)
        assert held.paths == []


class _Retrying(Hooks):
    """Sets ``waiting`` once a call has decided to wait and try again."""

    def __init__(self) -> None:
        self.waiting = asyncio.Event()

    def on_retry(self, event: HookEvent) -> None:
        self.waiting.set()


@pytest.mark.parametrize("answer", ["503", "429"])
async def test_close_ends_a_call_waiting_to_try_again(answer: str) -> None:
    """A call sitting out its backoff after a 503, or the Retry-After of its own 429, is
    ended by close() as a call in flight is, not when its wait is over."""

    async def refuse(request: web.Request) -> web.StreamResponse:
        if answer == "429":
            headers = {"Retry-After": "200"}
            return web.json_response({"detail": "slow down"}, status=429, headers=headers)
        return web.json_response({"detail": "busy"}, status=503)

    app = web.Application()
    app.router.add_get("/api/0/busy/", refuse)
    retry = RetryPolicy(backoff_base=200.0, backoff_max=200.0, jitter=0.0)
    retrying = _Retrying()
    async with local_app(app) as url:
        client = SentryClient("token", base_url=url, retry=retry, hooks=[retrying])
        async with client:
            call = asyncio.create_task(client.request("GET", "/busy/"))
            with anyio.fail_after(HANG):
                await retrying.waiting.wait()
            await client.close()
            done, _pending = await asyncio.wait([call], timeout=HANG)
            assert done, "the call still sits out its wait after close()"
            error = call.exception()
            assert isinstance(error, ClientClosed), repr(error)


async def test_close_ends_a_call_held_by_another_calls_429() -> None:
    """A call held back by the limiter because another call of its endpoint met a 429 is
    ended by close() at once, not when the server's pause is over."""
    hits = 0

    async def refuse(request: web.Request) -> web.StreamResponse:
        nonlocal hits
        hits += 1
        return web.json_response({"detail": "slow down"}, status=429, headers={"Retry-After": "200"})

    app = web.Application()
    app.router.add_get("/api/0/busy/", refuse)
    retrying = _Retrying()
    async with local_app(app) as url:
        client = SentryClient("token", base_url=url, hooks=[retrying])
        async with client:
            first = asyncio.create_task(client.request("GET", "/busy/"))
            with anyio.fail_after(HANG):
                await retrying.waiting.wait()
            held = asyncio.create_task(client.request("GET", "/busy/"))
            await asyncio.sleep(0.3)  # into the limiter's wait for the pause to end
            assert not held.done() and hits == 1
            await client.close()
            done, _pending = await asyncio.wait([first, held], timeout=HANG)
            assert held in done, "the held call still waits for the pause after close()"
            for call in (first, held):
                assert isinstance(call.exception(), ClientClosed), repr(call.exception())
            assert hits == 1


def test_a_client_off_asyncio_raises_the_librarys_error(fake_sentry: FakeSentry) -> None:
    """On trio (or any loop but asyncio's) the client says it needs asyncio, instead of
    asyncio's bare ``RuntimeError: no running event loop``."""
    trio = pytest.importorskip("trio")

    async def on_trio() -> None:
        async with fake_sentry.client() as sentry:
            await sentry.organizations.get("org-0")

    with pytest.raises(WrongEventLoop, match="runs on asyncio"):
        trio.run(on_trio)


async def test_a_client_bound_to_asyncio_then_called_off_it_raises_the_librarys_error(
    fake_sentry: FakeSentry,
) -> None:
    trio = pytest.importorskip("trio")
    sentry = fake_sentry.client()
    with anyio.fail_after(10):
        await sentry.organizations.get("org-0")

    async def on_trio() -> None:
        await sentry.organizations.get("org-0")

    try:
        with pytest.raises(WrongEventLoop, match="runs on asyncio"):
            await asyncio.to_thread(trio.run, on_trio)
    finally:
        await sentry.close()
