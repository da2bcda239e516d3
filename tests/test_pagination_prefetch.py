"""``prefetch=``: the next pages are fetched while the consumer works, within a bound."""

from __future__ import annotations

import asyncio

import anyio
import anyio.lowlevel
import pytest

from sentry_async import PaginationError, Paginator, Position
from sentry_async.pagination import RawPage


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


async def test_the_next_page_is_fetched_while_the_consumer_works() -> None:
    source = Source(100)
    pages = Paginator[int](source, page_size=10, prefetch=1).pages()
    first = await pages.__anext__()
    with anyio.fail_after(10):
        await source.wanted[2].wait()  # without prefetch nobody asks while we hold page 1
    assert first.items == list(range(10))
    await pages.aclose()


async def test_without_prefetch_nothing_is_fetched_ahead() -> None:
    source = Source(100)
    pages = Paginator[int](source, page_size=10).pages()
    await pages.__anext__()
    await _settle()
    assert len(source.requests) == 1
    await pages.aclose()


@pytest.mark.parametrize("prefetch", [1, 2, 3])
async def test_at_most_prefetch_pages_beyond_the_current_one(prefetch: int) -> None:
    source = Source(1000)
    pages = Paginator[int](source, page_size=10, prefetch=prefetch).pages()
    await pages.__anext__()
    with anyio.fail_after(10):
        await source.wanted[1 + prefetch].wait()
    await _settle()
    assert len(source.requests) == 1 + prefetch
    await pages.__anext__()
    with anyio.fail_after(10):
        await source.wanted[2 + prefetch].wait()
    await _settle()
    assert len(source.requests) == 2 + prefetch
    await pages.aclose()


@pytest.mark.parametrize("prefetch", [0, 1, 4])
async def test_items_and_positions_are_those_without_prefetch(prefetch: int) -> None:
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
