"""fan_out: a stream that swallows the stop, an interruption of the block (Ctrl-C), an
interruption raised by a stream under another exception, and an ``on_done`` that starts
its work as a task."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import anyio
import anyio.lowlevel
import pytest
from test_fanout import _counting, _settle, _stuck

from sentry_async import StreamDone, fan_out

# -- a stream that swallows the fan-out's stop -------------------------------------------------


async def test_a_poll_whose_wait_for_swallows_the_stop_does_not_hang_the_block() -> None:
    """A "tail" stream polls with ``asyncio.wait_for`` and yields only what is new. Before
    Python 3.12, ``wait_for`` returns its result and drops a cancellation that lands after
    its inner call finished but before it resumed: here the consumer answers the poll and
    breaks in the same step. Was: the fan-out sent that one cancellation and shielded the
    stream from its own cancelled scope, so the stream polled again and the block hung."""
    loop = asyncio.get_running_loop()
    polls: list[asyncio.Future[list[int]]] = []
    closed = False

    async def tail() -> AsyncIterator[int]:
        nonlocal closed
        try:
            yield 0
            while True:
                polls.append(loop.create_future())
                for item in await asyncio.wait_for(polls[-1], timeout=10):
                    yield item
        finally:
            closed = True

    with anyio.fail_after(5):
        async with fan_out({"tail": tail, "other": _stuck}, concurrency=2) as merged:
            async for _ in merged:
                await _settle()
                assert len(polls) == 1, "the stream is polling"
                polls[0].set_result([])  # nothing new, answered as the consumer leaves
                break
    assert closed and merged.active == 0


# -- an interruption of the block (Ctrl-C on trio) ---------------------------------------------


class _Interruption(BaseException):
    """Neither an ``Exception`` nor a cancellation, as ``KeyboardInterrupt`` is."""


async def _interrupted_while_a_clean_up_stalls() -> tuple[dict[str, str], bool]:
    """A stream parked at its ``yield`` whose clean-up never ends; the block is interrupted
    while the consumer handles an item. What became of the clean-up, and whether the
    (generous) deadline around the block had to end the wait for it."""
    log: dict[str, str] = {}

    async def stalls() -> AsyncIterator[int]:
        try:
            for i in range(10**6):
                yield i
        finally:
            log["clean-up"] = "started"
            try:
                await anyio.sleep_forever()
            finally:
                log["clean-up"] = "cut"

    with anyio.move_on_after(5) as deadline, pytest.raises(_Interruption):  # noqa: PT012
        async with fan_out({"a": stalls}, buffer=1) as merged:
            async for _ in merged:
                await _settle()
                raise _Interruption
    assert merged.active == 0
    return log, deadline.cancel_called


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_an_interruption_of_the_block_cuts_clean_ups_short(backend: str) -> None:
    """Ctrl-C reaches the block as ``KeyboardInterrupt`` on trio. Was: taken for the
    fan-out's own stop, so the block waited for the streams' clean-ups, for ever for one
    that stalls (a second Ctrl-C came out as a ``BaseExceptionGroup``)."""
    log, deadline_fired = anyio.run(_interrupted_while_a_clean_up_stalls, backend=backend)
    assert log == {"clean-up": "cut"}
    assert not deadline_fired, "the block waited for the stalled clean-up"


# -- an interruption raised by a stream under the block's own exception --------------------------


class _DiskFull(Exception):
    pass


@pytest.mark.parametrize("leave", ["exception", "cancellation"])
async def test_a_streams_interruption_wins_over_the_blocks_exception(leave: str) -> None:
    """Was: ``sys.exit(3)`` in a stream, queued for the consumer's next step, was dropped
    when the block ended with an exception or a cancellation: the process went on."""
    interruption = SystemExit(3)
    taken = anyio.Event()

    async def quits() -> AsyncIterator[int]:
        yield 1
        await taken.wait()
        raise interruption

    with anyio.fail_after(5), anyio.CancelScope() as outer, pytest.raises(SystemExit) as caught:  # noqa: PT012
        async with fan_out({"q": quits, "b": _stuck}, concurrency=2) as merged:
            async for _ in merged:
                taken.set()  # the stream quits while the consumer handles its item
                await _settle()
                assert merged._error is interruption, "queued, not yet raised"
                if leave == "exception":
                    raise _DiskFull
                outer.cancel()
                await anyio.lowlevel.checkpoint()
    assert caught.value is interruption
    expected = _DiskFull if leave == "exception" else anyio.get_cancelled_exc_class()
    assert isinstance(interruption.__context__, expected), "chained to the block's exception"
    assert merged.active == 0


# -- on_done that starts its work -------------------------------------------------------------


@pytest.mark.parametrize("start", ["task", "executor"])
async def test_an_on_done_that_starts_its_work_and_returns_the_handle_is_fine(start: str) -> None:
    """``on_done=lambda done: asyncio.create_task(save(done))`` (or ``run_in_executor``)
    starts the work, which runs whether or not anything awaits the handle. Was: a
    ``TypeError`` that ended the sweep at its first stream, claiming it would never run."""
    loop = asyncio.get_running_loop()
    saved: list[str] = []
    started: list[asyncio.Future[None]] = []

    async def save(done: StreamDone[str]) -> None:
        await anyio.lowlevel.checkpoint()
        saved.append(done.key)

    def on_done(done: StreamDone[str]) -> asyncio.Future[None]:
        if start == "task":
            handle = loop.create_task(save(done))
        else:
            handle = loop.run_in_executor(None, saved.append, done.key)
        started.append(handle)
        return handle

    streams = {f"s{n}": _counting(3) for n in range(4)}
    with anyio.fail_after(5):
        async with fan_out(streams, concurrency=2, on_done=on_done) as merged:
            async for _ in merged:
                pass
        await asyncio.gather(*started)
    assert sorted(saved) == sorted(streams) == sorted(merged.completed)
