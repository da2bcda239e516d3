"""Attempts' time bounds on one shared timer: cheap when requests are quick, exact enough
when they are not, and a cancellation from outside stays a cancellation.

The network tests serve scripted answers from a small aiohttp server on 127.0.0.1; every
loop is bounded in count and every test in time.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import anyio
import pytest
from aiohttp import web
from test_hostile_bodies import Handler, hostile

from sentry_async import RequestTimeout, RetryPolicy, SentryClient, Timeouts, _transport
from sentry_async._deadlines import SHARED_DEADLINES, Deadlines

pytestmark = pytest.mark.anyio

needs_uncancel = pytest.mark.skipif(
    not SHARED_DEADLINES, reason="Python 3.10 keeps aiohttp's own timers"
)

ONE_TRY = RetryPolicy(attempts=1)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"  # the transport is aiohttp's, and so asyncio's


@asynccontextmanager
async def client_on(handle: Handler, timeouts: Timeouts) -> AsyncIterator[SentryClient]:
    """A client of one attempt per call on a server answering with ``handle``."""
    async with (
        hostile(handle) as (url, _),
        SentryClient("t", base_url=url, timeout=timeouts, retry=ONE_TRY) as client,
    ):
        yield client


async def quick(request: web.Request) -> web.StreamResponse:
    return web.json_response([{"id": "1"}])


def in_pieces(pieces: int, gap: float, *, stall: float = 0.0) -> Handler:
    """A JSON list sent in ``pieces`` writes ``gap`` seconds apart, after ``stall`` seconds
    of silence once half of it is out."""

    async def handle(request: web.Request) -> web.StreamResponse:
        body = b"[" + b" " * (pieces - 2) + b"]"
        response = web.StreamResponse(headers={"Content-Type": "application/json"})
        response.content_length = len(body)
        await response.prepare(request)
        try:
            for index in range(pieces):
                if index == pieces // 2 and stall:
                    await anyio.sleep(stall)
                await response.write(body[index : index + 1])
                await anyio.sleep(gap)
        except ConnectionError:
            pass
        return response

    return handle


@needs_uncancel
async def test_quick_requests_arm_no_timer_each() -> None:
    """aiohttp's own bounds arm three timers a request (the deadline, and the read bound at
    the start and on each arrival); the shared one arms one for many requests."""
    count = 40
    loop = asyncio.get_running_loop()
    armed: list[str] = []
    call_at = loop.call_at

    def counting(when: float, callback: Callable[..., object], *args: Any, **kw: Any) -> Any:
        module = getattr(callback, "__module__", None) or type(callback).__module__
        if not module.startswith("aiohttp.web"):  # the server's own keep-alive timers
            armed.append(getattr(callback, "__qualname__", repr(callback)))
        return call_at(when, callback, *args, **kw)

    async with hostile(quick) as (url, _), SentryClient("t", base_url=url) as client:
        await client.request("GET", "/warm-up/")
        armed.clear()
        loop.call_at = counting  # type: ignore[method-assign]
        try:
            with anyio.fail_after(10):
                for _ in range(count):
                    assert await client.request("GET", "/things/") == [{"id": "1"}]
        finally:
            del loop.call_at  # type: ignore[method-assign]
    assert len(armed) <= count // 8, armed


@needs_uncancel
async def test_a_body_that_keeps_arriving_outlives_the_read_bound() -> None:
    """Each gap is under ``read``; the whole body takes three times ``read``."""
    timeouts = Timeouts(read=0.2, total=10)
    async with client_on(in_pieces(12, 0.05), timeouts) as client:
        with anyio.fail_after(10):
            assert await client.request("GET", "/things/") == []


@pytest.mark.parametrize("shared", [True, False])
async def test_a_body_that_stops_arriving_is_cut_after_the_read_bound(
    shared: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    if shared and not SHARED_DEADLINES:
        pytest.skip("Python 3.10 keeps aiohttp's own timers")
    monkeypatch.setattr(_transport, "SHARED_DEADLINES", shared)
    timeouts = Timeouts(read=0.2, total=30)
    async with client_on(in_pieces(12, 0.01, stall=20), timeouts) as client:
        with anyio.fail_after(5), pytest.raises(RequestTimeout) as caught:
            await client.request("GET", "/things/")
    if shared:
        assert "nothing arrived for 0.2s (Timeouts.read)" in str(caught.value)


@needs_uncancel
async def test_the_total_bound_cuts_a_body_that_keeps_arriving() -> None:
    timeouts = Timeouts(read=5, total=0.3)
    async with client_on(in_pieces(200, 0.02), timeouts) as client:
        with anyio.fail_after(5), pytest.raises(RequestTimeout) as caught:
            await client.request("GET", "/things/")
    assert "no complete response within 0.3s (Timeouts.total)" in str(caught.value)
    assert "no complete response: no complete response" not in str(caught.value)


@needs_uncancel
async def test_a_cancellation_from_outside_stays_a_cancellation() -> None:
    """The caller's own deadline, not the request's: no ``RequestTimeout``, the caller's
    scope sees its cancellation, and the client goes on working."""
    timeouts = Timeouts(read=0.3, total=30)
    async with client_on(in_pieces(12, 0.01, stall=20), timeouts) as client:
        with anyio.move_on_after(0.1) as scope:
            await client.request("GET", "/things/")
        assert scope.cancelled_caught
        # Past the read bound: nothing of the abandoned attempt is still being watched.
        await anyio.sleep(0.5)
        with anyio.fail_after(5), pytest.raises(RequestTimeout):
            await client.request("GET", "/things/")


@needs_uncancel
async def test_a_watch_is_kept_alive_by_progress_and_ends_when_it_stops() -> None:
    class Body:
        total_bytes = 0

    deadlines = Deadlines(read=0.1, total=None)
    body = Body()
    watch = deadlines.start()
    watch.stream = body
    with anyio.fail_after(5):
        # Bytes every 0.03 s for 0.4 s: four times the read bound, never cut.
        for _ in range(13):
            await asyncio.sleep(0.03)
            body.total_bytes += 1
        assert watch.expired is None
        with pytest.raises(asyncio.CancelledError):
            await asyncio.sleep(5)
    assert watch.expired == "nothing arrived for 0.1s (Timeouts.read)"
    assert deadlines.finish(watch) is True
    assert deadlines.finish(watch) is False  # once only


@needs_uncancel
async def test_a_finished_watch_is_never_cancelled() -> None:
    deadlines = Deadlines(read=0.05, total=0.05)
    deadlines.finish(deadlines.start())
    with anyio.fail_after(5):
        await asyncio.sleep(0.2)  # past both bounds: no cancellation arrives


def test_no_bounds_no_watching() -> None:
    assert not Deadlines(read=None, total=None).active
    assert Deadlines(read=1.0, total=None).active
    assert Deadlines(read=None, total=1.0).active


@needs_uncancel
async def test_an_expired_attempt_still_winding_down_is_not_cancelled_twice() -> None:
    """The first attempt's task is slow to leave after its cancellation; the second's
    expiry comes meanwhile, and cancels the second task only."""
    deadlines = Deadlines(read=0.1, total=None)
    leaving = asyncio.Event()
    seen: dict[str, int] = {}

    async def attempt(name: str, linger: bool) -> None:
        watch = deadlines.start()
        try:
            await asyncio.sleep(5)
        except asyncio.CancelledError:
            seen[name] = seen.get(name, 0) + 1
            if linger:
                current = asyncio.current_task()
                assert current is not None
                current.uncancel()  # it goes on, still registered, until told to leave
                await leaving.wait()
        finally:
            deadlines.finish(watch)

    with anyio.fail_after(5):
        first = asyncio.create_task(attempt("first", linger=True))
        await asyncio.sleep(0.05)
        second = asyncio.create_task(attempt("second", linger=False))
        await second
        leaving.set()
        await first
    assert seen == {"first": 1, "second": 1}
