"""``prefetch=``: the next pages are fetched while the consumer works, within a bound."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import os
import subprocess
import sys
import warnings
import weakref
from typing import Any

import anyio
import anyio.lowlevel
import pytest

from sentry_async import PaginationError, Paginator, Position
from sentry_async.pagination import AUTOMATIC_PREFETCH, RawPage


def _link(nxt: str, more: bool) -> str:
    return f'<https://h/x/>; rel="next"; results="{"true" if more else "false"}"; cursor="{nxt}"'


class Source:
    """Serves ``total`` integers in pages; ``wanted[n]`` is set when page ``n`` is asked for."""

    def __init__(self, total: int, *, fail_at: int | None = None) -> None:
        self.total = total
        self.fail_at = fail_at
        self.requests: list[str | None] = []
        self.wanted = [anyio.Event() for _ in range(100)]

    async def __call__(self, cursor: str | None, size: int | None) -> RawPage:
        assert len(self.requests) < 100, "unbounded pagination"
        self.requests.append(cursor)
        self.wanted[len(self.requests)].set()
        if self.fail_at == len(self.requests):
            raise PaginationError("page failed")
        offset = int(cursor) if cursor else 0
        size = size or 10
        items = list(range(offset, min(offset + size, self.total)))
        return RawPage(items=items, link=_link(str(offset + size), offset + size < self.total))


async def _settle() -> None:
    for _ in range(50):
        await anyio.lowlevel.checkpoint()


async def _asked_exactly(source: Source, requests: int) -> None:
    """Wait until ``source`` has been asked for ``requests`` pages, let the loop settle, and
    check that no more were asked for."""
    with anyio.fail_after(10):
        await source.wanted[requests].wait()
    await _settle()
    assert len(source.requests) == requests


async def test_the_next_page_is_fetched_while_the_consumer_works() -> None:
    source = Source(100)
    pages = Paginator[int](source, page_size=10, prefetch=1).pages()
    first = await pages.__anext__()
    with anyio.fail_after(10):
        await source.wanted[2].wait()  # without prefetch nobody asks while we hold page 1
    assert first.items == list(range(10))
    await pages.aclose()


@pytest.mark.parametrize("prefetch", [0, None], ids=["off", "default"])
async def test_nothing_is_fetched_ahead_of_the_first_page(prefetch: int | None) -> None:
    source = Source(100)
    pages = Paginator[int](source, page_size=10, prefetch=prefetch).pages()
    await pages.__anext__()
    await _settle()
    assert len(source.requests) == 1
    await pages.aclose()


async def test_a_look_up_sends_one_request_by_default() -> None:
    source = Source(100)
    paginator = Paginator[int](source, page_size=10)
    assert await paginator.first() == 0
    async for item in paginator:
        if item == 9:  # the first page's last item: the page after it was never asked for
            break
    await paginator.aclose()
    await _settle()
    assert source.requests == [None, None]


async def test_by_default_the_walk_reads_ahead_once_a_second_page_is_asked_for() -> None:
    source = Source(1000)
    pages = Paginator[int](source, page_size=10).pages()
    await pages.__anext__()
    await pages.__anext__()  # the consumer walks: from here on, two pages ahead of it
    await _asked_exactly(source, 2 + AUTOMATIC_PREFETCH)
    await pages.aclose()
    off = Source(1000)
    one_by_one = Paginator[int](off, page_size=10, prefetch=0).pages()
    await one_by_one.__anext__()
    await one_by_one.__anext__()
    await _settle()
    assert len(off.requests) == 2
    await one_by_one.aclose()


async def test_by_default_a_walk_beside_another_reads_nothing_ahead_until_alone() -> None:
    source, other = Source(1000), Source(1000)
    pages = Paginator[int](source, page_size=10).pages()
    beside = Paginator[int](other, page_size=10, prefetch=0).pages()
    await beside.__anext__()  # another walk in progress on this loop
    for _ in range(3):
        await pages.__anext__()
    await _settle()
    assert len(source.requests) == 3  # one page at a time, as many walks at once should
    await beside.aclose()  # alone now: from its next page on, it reads ahead
    await pages.__anext__()
    await _asked_exactly(source, 4 + AUTOMATIC_PREFETCH)
    await pages.aclose()


async def test_by_default_a_walk_of_one_page_starts_no_task() -> None:
    paginator = Paginator[int](Source(7), page_size=10)
    before = set(asyncio.all_tasks())
    created: list[object] = []
    loop = asyncio.get_running_loop()
    factory = loop.get_task_factory()

    def counting(loop: asyncio.AbstractEventLoop, coro: Any, **kwargs: Any) -> Any:
        created.append(coro)
        if factory is not None:
            return factory(loop, coro, **kwargs)
        return asyncio.Task(coro, loop=loop, **kwargs)

    loop.set_task_factory(counting)
    try:
        assert await paginator.collect() == list(range(7))
    finally:
        loop.set_task_factory(factory)
    assert created == [] and set(asyncio.all_tasks()) == before


@pytest.mark.parametrize("prefetch", [1, 2, 3])
async def test_at_most_prefetch_pages_beyond_the_current_one(prefetch: int) -> None:
    source = Source(1000)
    pages = Paginator[int](source, page_size=10, prefetch=prefetch).pages()
    await pages.__anext__()
    await _asked_exactly(source, 1 + prefetch)
    await pages.__anext__()
    await _asked_exactly(source, 2 + prefetch)
    await pages.aclose()


@pytest.mark.parametrize("prefetch", [0, 1, 4, None])
async def test_items_and_positions_are_those_without_prefetch(prefetch: int | None) -> None:
    capped: Paginator[int] = Paginator(Source(95), page_size=10, limit=33, prefetch=prefetch)
    assert await capped.collect() == list(range(33))
    assert capped.position == Position("30", 3)
    broken: Paginator[int] = Paginator(Source(95), page_size=10, prefetch=prefetch)
    async for item in broken:
        if item == 42:
            break
    assert broken.position == Position("40", 3)
    rest = broken.resume(broken.position)
    assert await rest.collect() == list(range(43, 95))
    assert rest.position.done
    paged = Paginator[int](Source(95), page_size=10, prefetch=prefetch)
    positions = [paged.position async for _ in paged.pages()]
    assert positions[0] == Position("10") and positions[-1] == Position(None, done=True)


async def test_an_error_arrives_after_the_pages_fetched_before_it() -> None:
    source = Source(100, fail_at=3)
    got: list[int] = []
    paginator: Paginator[int] = Paginator(source, page_size=10, prefetch=3)

    async def consume() -> None:
        async for item in paginator:
            got.append(item)

    with pytest.raises(PaginationError, match="page failed"):
        await consume()
    assert got == list(range(20))
    assert paginator.position == Position("20")


async def test_stopping_or_cancelling_leaves_no_task_behind() -> None:
    def others() -> set[asyncio.Task[object]]:
        return {task for task in asyncio.all_tasks() if task is not asyncio.current_task()}

    async def settled() -> set[asyncio.Task[object]]:
        # A loop left by ``break`` is finalized by asyncio's own task a tick later.
        for _ in range(5):
            await asyncio.sleep(0)
        return others()

    before = others()
    paginator: Paginator[int] = Paginator(Source(1000), page_size=10, prefetch=2)
    async for _ in paginator:
        break
    await paginator.aclose()
    assert not any("produce" in repr(task) for task in others()), "the read-ahead task is over"
    assert await settled() == before
    async for _ in paginator:
        break
    assert await settled() == before, "leaving the loop alone ends the read-ahead"
    with anyio.CancelScope() as scope:
        async for item in Paginator[int](Source(1000), page_size=10, prefetch=2):
            if item == 15:
                scope.cancel()
    assert others() == before


def test_prefetch_must_be_a_count() -> None:
    source = Source(1)
    with pytest.raises(ValueError, match="prefetch must not be negative"):
        Paginator(source, prefetch=-1)
    with pytest.raises(ValueError, match="prefetch must be an integer"):
        Paginator(source, prefetch=1.5)  # type: ignore[arg-type]
    assert Paginator(source).read_ahead(2).prefetch == 2
    assert Paginator(source).prefetch is None  # the default: see AUTOMATIC_PREFETCH
    assert Paginator(source, prefetch=3).read_ahead(None).prefetch is None


def test_by_default_a_walk_off_asyncio_goes_one_page_at_a_time() -> None:
    """The read-ahead is asyncio's; a paginator whose fetcher runs on trio still walks."""
    source = Source(35)

    async def main() -> list[int]:
        return await Paginator[int](source, page_size=10).collect()

    assert anyio.run(main, backend="trio") == list(range(35))
    assert source.requests == [None, "10", "20", "30"]


def test_read_ahead_off_asyncio_walks_one_page_at_a_time() -> None:
    """Asked for explicitly too: off asyncio (trio) a walk goes page by page, as the
    default does, instead of failing."""
    source = Source(35)

    async def main() -> list[int]:
        return await Paginator[int](source, page_size=10).read_ahead(2).collect()

    assert anyio.run(main, backend="trio") == list(range(35))
    assert source.requests == [None, "10", "20", "30"]


def test_on_trio_aclose_after_a_break_ends_the_walk_without_a_warning() -> None:
    """Trio warns about an async generator collected before it finished: the remedy the
    README gives (``aclose()`` after a ``break``; ``aclosing`` around ``pages()``) must
    reach the iteration before that, and so must ``first()`` on its own."""

    async def main() -> list[object]:
        paginator = Paginator[int](Source(1000), page_size=10)
        async for item in paginator:
            if item == 35:
                break
        await paginator.aclose()
        stopped = paginator.position
        found = await Paginator[int](Source(1000), page_size=10).first()
        paginator = Paginator[int](Source(1000), page_size=10)
        heads: list[int] = []
        async with contextlib.aclosing(paginator.pages()) as pages:
            async for page in pages:
                heads.append(page.items[0])
                break
        return [stopped, found, heads]

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        done = anyio.run(main, backend="trio")
        gc.collect()
    assert [str(warning.message) for warning in caught] == []
    assert done == [Position("30", 6), 0, [0]]


_LEFT_AT_SHUTDOWN = """
import asyncio
import contextlib
import gc
import os
import subprocess
import sys
import warnings
from sentry_async import Paginator
from sentry_async.pagination import RawPage

async def fetch(cursor, size):
    await asyncio.sleep(0.001)
    offset = int(cursor) if cursor else 0
    link = f'<https://h/x/>; rel="next"; results="true"; cursor="{offset + 10}"'
    return RawPage(items=list(range(offset, offset + 10)), link=link)

left = []

async def main():
    items = aiter(Paginator(fetch, page_size=10, prefetch=PREFETCH))
    left.append(items)
    for _ in range(25):
        await anext(items)

asyncio.run(main())
print("ran")
"""


@pytest.mark.parametrize("prefetch", [1, 2])
def test_a_walk_left_unfinished_ends_quietly_with_its_loop(prefetch: int) -> None:
    """``anext()`` on a reading-ahead walk, left mid-page when ``asyncio.run`` ends: the
    loop closes the walk and the pages it reads at once, and neither may complain."""
    code = _LEFT_AT_SHUTDOWN.replace("PREFETCH", str(prefetch))
    for _ in range(3):
        done = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
        )
        assert (done.returncode, done.stdout.strip()) == (0, "ran"), done.stderr
        assert done.stderr == ""


@pytest.mark.parametrize("prefetch", [None, 2])
async def test_a_paginator_advanced_with_anext_and_dropped_ends_its_walk(
    prefetch: int | None,
) -> None:
    """Dropped without ``aclose()``, a paginator read ahead with ``anext()`` is freed at once,
    not when the cyclic collector happens to run: its walk ends, sends nothing more, and no
    longer keeps another walk from reading ahead."""
    before = set(asyncio.all_tasks())
    dropped = Source(1000)
    collecting = gc.isenabled()
    gc.disable()  # what is freed here must be freed without the cyclic collector
    try:
        paginator = Paginator[int](dropped, page_size=10, prefetch=prefetch)
        for _ in range(12):  # into the second page: reading ahead
            await anext(paginator)
        await _asked_exactly(dropped, 2 + AUTOMATIC_PREFETCH)
        gone = weakref.ref(paginator)
        del paginator
        assert gone() is None
        await _settle()
        assert set(asyncio.all_tasks()) == before
        assert len(dropped.requests) == 2 + AUTOMATIC_PREFETCH
        source = Source(1000)  # alone on the loop: reads ahead from its second page
        pages = Paginator[int](source, page_size=10).pages()
        await pages.__anext__()
        await pages.__anext__()
        await _asked_exactly(source, 2 + AUTOMATIC_PREFETCH)
        await pages.aclose()
    finally:
        if collecting:
            gc.enable()


_DROPPED = """
import asyncio
import gc
from sentry_async import Paginator
from sentry_async.pagination import RawPage

async def fetch(cursor, size):
    await asyncio.sleep(0)
    offset = int(cursor) if cursor else 0
    link = f'<https://h/x/>; rel="next"; results="true"; cursor="{offset + 10}"'
    return RawPage(items=list(range(offset, offset + 10)), link=link)

class Holder:
    pass

async def peek(prefetch, how):
    paginator = Paginator(fetch, page_size=10, prefetch=prefetch)
    if how == "anext":
        return [await anext(paginator) for _ in range(12)]
    holder = Holder()  # in a reference cycle of the caller's: freed by the collector
    holder.itself = holder
    holder.iterator = items = paginator if how == "anext, cycle" else aiter(paginator)
    return [await anext(items) for _ in range(12)]

async def main():
    for how in ("anext", "anext, cycle", "aiter, cycle"):
        for prefetch in (None, 1, 2, 3) * 5:
            await peek(prefetch, how)
            for _ in range(3):
                await asyncio.sleep(0)
            gc.collect()
    await asyncio.sleep(0.01)
    gc.collect()
    left = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
    print("ran", len(left))

asyncio.run(main())
"""


def test_paginators_dropped_after_anext_are_collected_quietly() -> None:
    """Collected, a paginator advanced with ``anext()`` neither leaves its read-ahead task
    to be destroyed while pending nor fails to close its iteration, and neither does an
    iteration that only the cyclic collector frees."""
    done = subprocess.run(
        [sys.executable, "-X", "dev", "-c", _DROPPED],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**os.environ, "PYTHONASYNCIODEBUG": "1"},
    )
    assert (done.returncode, done.stdout.strip()) == (0, "ran 0"), done.stderr
    assert "Task was destroyed" not in done.stderr
    assert "already running" not in done.stderr
    assert "never retrieved" not in done.stderr

