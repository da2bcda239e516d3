"""fan_out: what a stream's end, failure and clean-up promise when the block does not end
plainly (an exception or a cancellation in it, a failure overtaking queued items, a stream
stopped while it awaits or in its own clean-up), and the arguments it refuses."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import AsyncIterator, Callable
from contextlib import nullcontext, suppress
from typing import Any

import anyio
import anyio.lowlevel
import pytest
from test_fanout import _counting, _memory_paginator, _settle, _stuck

from sentry_async import PaginationError, StreamDone, fan_out
from sentry_async.pagination import Paginator, RawPage

# -- on_done and completed when the block ends with an exception or a cancellation ----------


class _HandlingFailed(Exception):
    pass


@pytest.mark.parametrize("leave", ["exception", "cancellation"])
@pytest.mark.parametrize("kind", ["paginator", "items"])
async def test_a_stream_whose_last_item_was_not_handled_is_not_done(kind: str, leave: str) -> None:
    """Was: the end markers at the head of the queue were taken whatever ended the block,
    so ``on_done`` saved a stream whose last item the block had failed to handle."""
    first = (lambda: _memory_paginator(3, 7)) if kind == "paginator" else _counting(21)
    called: list[StreamDone[str]] = []
    expected = pytest.raises(_HandlingFailed) if leave == "exception" else nullcontext()
    with anyio.fail_after(10), anyio.CancelScope() as outer, expected:
        async with fan_out({"a": first, "b": _stuck}, concurrency=2, on_done=called.append) as merged:
            async for _key, item in merged:
                if item == 20:
                    await _settle()
                    assert merged._done_queued == 1, "a's end is queued, nothing before it"
                    if leave == "exception":
                        raise _HandlingFailed("writing the last item failed")
                    outer.cancel()
                    await anyio.lowlevel.checkpoint()
    assert called == [] and merged.completed == {}


# -- errors="raise": a stream's failure comes after its own items ----------------------------


def _failing_paginator(pages: int, size: int, bad: int, healed: list[bool]) -> Paginator[int]:
    """:func:`test_fanout._memory_paginator` whose page ``bad`` is an empty answer without
    ``Link`` (a proxy's) until ``healed``: a ``PaginationError`` positioned to fetch it
    again."""

    async def fetch(cursor: str | None, page_size: int | None) -> RawPage:
        index = int(cursor or 0)
        await anyio.lowlevel.checkpoint()
        if index == bad and not healed[0]:
            return RawPage([], None)
        more = str(index + 1 < pages).lower()
        link = f'<u>; rel="next"; results="{more}"; cursor="{index + 1}"'
        return RawPage(list(range(index * size, (index + 1) * size)), link, fingerprint=index)

    return Paginator(fetch)


async def _fifty_then_boom() -> AsyncIterator[int]:
    for i in range(50):
        yield i
    raise RuntimeError("boom")


@pytest.mark.parametrize("concurrency", [1, 3])
async def test_a_paginators_failure_comes_after_its_queued_pages(concurrency: int) -> None:
    """Was: the error overtook the stream's pages already queued, which were dropped, and
    its ``position`` pointed past them: resuming from it lost them for good."""
    healed = [False]
    seen: list[int] = []
    streams: dict[str, Callable[[], Any]] = {"a": lambda: _failing_paginator(8, 10, 5, healed)}
    streams.update({f"other{n}": _stuck for n in range(concurrency - 1)})
    with anyio.fail_after(10), pytest.raises(PaginationError) as raised:  # noqa: PT012
        async with fan_out(streams, concurrency=concurrency, buffer=64) as merged:
            async for _key, item in merged:
                seen.append(item)
                if len(seen) == 1:
                    await _settle()  # a consumer slower than the stream: pages queue up
                    await _settle()
                    assert merged.failures, "the stream failed behind its queued pages"
    assert seen == list(range(50)), "every item before the failure, then the failure"
    healed[0] = True
    resumed = _failing_paginator(8, 10, 5, healed).resume(raised.value.position)
    rest = [item async for item in resumed]
    assert seen + rest == list(range(80)), "the error's position is where to resume"


async def test_a_streams_failure_comes_after_its_queued_items() -> None:
    seen: list[int] = []
    with anyio.fail_after(10), pytest.raises(RuntimeError, match="boom"):  # noqa: PT012
        async with fan_out({"a": _fifty_then_boom}, buffer=64) as merged:
            async for _key, item in merged:
                seen.append(item)
                if len(seen) == 1:
                    await _settle()
                    await _settle()
                    assert merged.failures
    assert seen == list(range(50))


async def test_a_failure_the_consumer_reached_is_raised_at_every_step() -> None:
    """Once reached, the failure stays where it is: a consumer that caught it and asks
    again gets it again, never an item merged after it, nor a quiet end."""
    with anyio.fail_after(10):
        async with fan_out({"a": _fifty_then_boom, "b": _counting(10**6)}, buffer=4) as merged:
            for _ in range(2):
                with pytest.raises(RuntimeError, match="boom"):
                    async for _ in merged:
                        pass
    assert list(merged.failures) == ["a"]


# -- on_done must be a plain function ---------------------------------------------------------


async def _save(done: StreamDone[str]) -> None:
    await anyio.lowlevel.checkpoint()


class _AsyncCall:
    async def __call__(self, done: StreamDone[str]) -> None:
        await anyio.lowlevel.checkpoint()


@pytest.mark.parametrize(
    "on_done",
    [_save, _AsyncCall(), functools.partial(_save)],
    ids=["async-def", "async-call", "partial"],
)
async def test_an_async_on_done_is_refused(on_done: Any) -> None:
    """Was: accepted, and called without being awaited: it never ran."""
    with pytest.raises(TypeError, match="async def"):
        fan_out({"a": _counting(1)}, on_done=on_done)


async def test_an_on_done_that_returns_a_coroutine_is_an_error_and_the_coroutine_closed() -> None:
    """``on_done=lambda done: save(done)`` with an async ``save`` passes the check of the
    callable itself: what it returns is checked, as nothing would ever run the coroutine
    (a checkpoint never saved). A task or a future returned is fine: it runs on its own."""
    made: list[Any] = []

    def on_done(done: StreamDone[str]) -> Any:
        made.append(_save(done))
        return made[-1]

    with anyio.fail_after(5), pytest.raises(TypeError, match="returned a coroutine") as raised:  # noqa: PT012
        async with fan_out({"a": _counting(2)}, on_done=on_done) as merged:
            async for _ in merged:
                pass
    assert "create_task" in str(raised.value), "says how to start it instead"
    assert made[0].cr_frame is None, "closed, not left for a RuntimeWarning"


# -- a streams iterable whose iter() fails ----------------------------------------------------


class _Unreadable:
    def __iter__(self) -> Any:
        raise FileNotFoundError("projects.txt")


async def _pairs() -> AsyncIterator[Any]:
    yield "a", _counting(1)


@pytest.mark.parametrize(
    ("streams", "error"),
    [(_Unreadable, FileNotFoundError), (_pairs, TypeError)],
    ids=["iter-raises", "async-iterable"],
)
async def test_a_streams_iterable_that_cannot_be_iterated_raises_its_own_error(
    streams: Callable[[], Any], error: type[Exception]
) -> None:
    """Was: an ExceptionGroup, where a failing ``next()`` was raised as itself."""
    with anyio.fail_after(5), pytest.raises(error):  # noqa: PT012
        async with fan_out(streams()) as merged:
            async for _ in merged:
                pass


# -- where the fan-out's own stop finds a stream ----------------------------------------------


def _tidy(
    log: dict[str, str], name: str, stop_at: str, *, shielded: bool = False
) -> Callable[[], AsyncIterator[int]]:
    """A stream whose ``finally`` awaits, found by the fan-out's stop parked at its
    ``yield`` (``stop_at="yield"``), waiting for its next item, a page being fetched
    (``"await"``), or in its ``finally`` after its last item (``"finally"``). Its clean-up
    is expected to finish only at a ``yield`` or ``shielded``: elsewhere it waits for ever
    unless cut."""

    async def stream() -> AsyncIterator[int]:
        try:
            yield 0
            if stop_at == "await":
                await anyio.sleep_forever()
            if stop_at == "yield":
                for i in range(1, 10**6):
                    yield i  # awaits nothing: waits for room only at its yield
        finally:
            log[name] = "started"
            try:
                if shielded:
                    with anyio.move_on_after(5, shield=True):
                        await anyio.sleep(0.01)
                elif stop_at == "yield":
                    await anyio.sleep(0.01)
                else:
                    await anyio.sleep_forever()
            except anyio.get_cancelled_exc_class():
                log[name] = "cut"
                raise
            log[name] = "finished"

    return stream


async def _boom_later() -> AsyncIterator[int]:
    yield 1
    await _settle()
    raise RuntimeError("sibling failed")


async def _stop_the_streams(stop: str) -> tuple[dict[str, str], bool]:
    """What became of each stream's clean-up, and whether the (generous) deadline around
    the block had to end the wait for one."""
    log: dict[str, str] = {}
    streams: dict[str, Callable[[], AsyncIterator[int]]] = {
        "mid_await": _tidy(log, "mid_await", "await"),
        "in_finally": _tidy(log, "in_finally", "finally"),
        "shielded": _tidy(log, "shielded", "await", shielded=True),
    }
    if stop == "failure":
        streams["boom"] = _boom_later
    # Started last, it fills the budget the others' first items left and waits for room.
    streams["at_yield"] = _tidy(log, "at_yield", "yield")
    with (
        anyio.move_on_after(5) as deadline,
        pytest.raises(RuntimeError) if stop != "break" else nullcontext(),
    ):
        async with fan_out(streams, concurrency=5, buffer=8) as merged:
            async for _ in merged:
                await _settle()
                if stop == "break":
                    break
                if stop == "exception":
                    raise RuntimeError("consumer failed")
    assert merged.active == 0
    return log, deadline.cancel_called


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
@pytest.mark.parametrize("stop", ["break", "failure", "exception"])
def test_the_fan_outs_own_stop_cancels_an_awaiting_stream_at_every_await(
    stop: str, backend: str
) -> None:
    """As documented: a stream parked at its ``yield`` is closed in a shielded scope and its
    clean-up finishes; one stopped while it awaits, or already in its own ``finally``, is
    cancelled at every await of its clean-up, unless it shields it. Was, on asyncio: a
    single cancellation, the stream then shielded from the fan-out's cancelled scope for
    good, so the block waited for a stalled clean-up for ever."""
    log, deadline_fired = anyio.run(_stop_the_streams, stop, backend=backend)
    assert log == {
        "at_yield": "finished",
        "mid_await": "cut",
        "in_finally": "cut",
        "shielded": "finished",
    }
    assert not deadline_fired, "the block waited for a clean-up the stop should have cut"


@pytest.mark.parametrize("then", ["yields", "waits"])
async def test_a_stream_that_swallows_the_stop_is_cancelled_again(then: str) -> None:
    """A stream that catches the cancellation once and goes on is cancelled again at its
    next await, whether it yields next or waits for data that never comes. Was: stopped
    only at its next item, so one that waited hung the block."""
    closed = False

    async def stubborn() -> AsyncIterator[int]:
        nonlocal closed
        try:
            yield 0
            with suppress(asyncio.CancelledError):
                await anyio.sleep_forever()
            if then == "waits":
                await anyio.sleep_forever()
            for i in range(1, 10**6):
                yield i
                await anyio.lowlevel.checkpoint()
        finally:
            closed = True

    with anyio.fail_after(5):
        async with fan_out({"a": stubborn, "b": _counting(10**6)}, buffer=1) as merged:
            async for key, _ in merged:
                if key == "a":
                    await _settle()
                    break
    assert closed and merged.active == 0


# -- an interruption raised by a stream -------------------------------------------------------


class _Interruption(BaseException):
    """Neither an ``Exception`` nor a cancellation, as ``SystemExit`` and
    ``KeyboardInterrupt`` are."""


@pytest.mark.parametrize("errors", ["raise", "collect"])
@pytest.mark.parametrize("interruption", [SystemExit(3), _Interruption("stop")])
async def test_an_interruption_raised_by_a_stream_ends_the_run_as_itself(
    errors: Any, interruption: BaseException
) -> None:
    """Was: a ``BaseExceptionGroup`` nested in another, in either mode."""

    async def interrupted() -> AsyncIterator[int]:
        yield 1
        raise interruption

    with anyio.fail_after(5), pytest.raises(type(interruption)) as caught:  # noqa: PT012
        async with fan_out({"a": interrupted, "b": _counting(10**6)}, errors=errors) as merged:
            async for _ in merged:
                pass
    assert caught.value is interruption
    assert "a" not in merged.completed
