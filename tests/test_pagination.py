"""Paginator behaviour over a scripted page source: pure, no network."""

from __future__ import annotations

import anyio.lowlevel
import msgspec
import pytest

from sentry_async import PaginationError, Paginator, Position
from sentry_async.pagination import RawPage


def _link(prev: str | None, nxt: str, more: bool) -> str:
    has_prev = "true" if prev else "false"
    has_next = "true" if more else "false"
    return (
        f'<https://h/x/?&cursor={prev}>; rel="previous"; results="{has_prev}"; '
        f'cursor="{prev or "0:0:1"}", '
        f'<https://h/x/?&cursor={nxt}>; rel="next"; results="{has_next}"; cursor="{nxt}"'
    )


class OffsetSource:
    """Serves ``total`` integers as an offset paginator would, with optional short pages."""

    def __init__(self, total: int, *, serve: int | None = None, link: bool = True) -> None:
        self.total = total
        self.serve = serve
        self.link = link
        self.requests: list[tuple[str | None, int | None]] = []

    async def __call__(self, cursor: str | None, size: int | None) -> RawPage:
        assert len(self.requests) < 1000, "unbounded pagination"
        self.requests.append((cursor, size))
        offset = int(cursor.split(":")[1]) if cursor else 0
        size = size or 100
        count = min(size, self.serve) if self.serve is not None else size
        items = list(range(offset, min(offset + count, self.total)))
        nxt = offset + len(items) if self.serve is not None else offset + size
        more = nxt < self.total
        link = _link(cursor, f"0:{nxt}:0", more) if self.link else None
        return RawPage(items=items, link=link, hits=self.total)


async def test_walks_every_item_lazily() -> None:
    source = OffsetSource(250)
    paginator: Paginator[int] = Paginator(source, page_size=100)
    assert source.requests == [], "nothing is sent before iteration"
    seen = []
    async for item in paginator:
        seen.append(item)
        if item == 0:
            assert len(source.requests) == 1, "only one page fetched so far"
    assert seen == list(range(250))
    assert [c for c, _ in source.requests] == [None, "0:100:0", "0:200:0"]
    assert paginator.position.done


async def test_short_pages_are_not_the_end() -> None:
    source = OffsetSource(23, serve=3)
    paginator: Paginator[int] = Paginator(source, page_size=10)
    assert await paginator.collect() == list(range(23))
    assert len(source.requests) == 8


async def test_empty_pages_with_more_results_are_not_the_end() -> None:
    calls = 0

    async def source(cursor: str | None, size: int | None) -> RawPage:
        nonlocal calls
        calls += 1
        assert calls < 50
        step = int(cursor.split(":")[1]) if cursor else 0
        if step < 4:
            return RawPage(items=[], link=_link(cursor, f"0:{step + 1}:0", True))
        return RawPage(items=[1, 2], link=_link(cursor, f"0:{step + 1}:0", False))

    assert await Paginator(source, page_size=10).collect() == [1, 2]
    assert calls == 5


async def test_no_link_header_is_one_page() -> None:
    source = OffsetSource(500, link=False)
    pages = [page async for page in Paginator(source, page_size=100).pages()]
    assert len(pages) == 1
    assert not pages[0].paginated
    assert pages[0].next_cursor is None


async def test_repeated_cursor_is_an_error_not_a_loop() -> None:
    async def stuck(cursor: str | None, size: int | None) -> RawPage:
        return RawPage(items=[1], link=_link(None, "0:5:0", True))

    paginator: Paginator[int] = Paginator(stuck, page_size=5, description="GET stuck")
    with pytest.raises(PaginationError, match="GET stuck"):
        await paginator.collect()


async def test_malformed_link_is_a_pagination_error() -> None:
    async def broken(cursor: str | None, size: int | None) -> RawPage:
        return RawPage(items=[1], link="<unterminated")

    with pytest.raises(PaginationError, match="malformed"):
        await Paginator(broken, page_size=5).collect()


async def test_limit_keeps_the_page_size_and_resumes_inside_the_last_page() -> None:
    source = OffsetSource(1000)
    paginator: Paginator[int] = Paginator(source, page_size=100, limit=250)
    assert await paginator.collect() == list(range(250))
    assert [s for _, s in source.requests] == [100, 100, 100], "never a smaller last page"
    assert paginator.position == Position("0:200:0", 50)
    rest: Paginator[int] = Paginator(
        OffsetSource(1000),
        page_size=100,
        cursor=paginator.position.cursor,
        skip=paginator.position.skip,
    )
    assert await rest.collect() == list(range(250, 1000))


async def test_limit_without_page_size_resumes_inside_page() -> None:
    paginator: Paginator[int] = Paginator(OffsetSource(300), page_size=None, limit=150)
    assert await paginator.collect() == list(range(150))
    assert paginator.position == Position("0:100:0", 50)
    resumed: Paginator[int] = Paginator(OffsetSource(300), cursor="0:100:0", skip=50)
    assert await resumed.collect() == list(range(150, 300))


async def test_break_mid_page_reports_item_position() -> None:
    paginator: Paginator[int] = Paginator(OffsetSource(300), page_size=100)
    async for item in paginator:
        if item == 142:
            break
    assert paginator.position == Position("0:100:0", 43)
    resumed: Paginator[int] = Paginator(OffsetSource(300), page_size=100, cursor="0:100:0", skip=43)
    assert (await resumed.collect())[0] == 143


async def test_pages_carry_metadata_and_max_pages() -> None:
    paginator: Paginator[int] = Paginator(OffsetSource(1000), page_size=100, max_pages=2)
    pages = [page async for page in paginator.pages()]
    assert len(pages) == 2
    assert pages[0].cursor is None
    assert pages[1].cursor == "0:100:0"
    assert pages[1].next_cursor == "0:200:0"
    assert pages[0].hits == 1000
    assert paginator.position == Position("0:200:0", 0), "max_pages leaves a resumable cursor"


async def test_limit_zero_sends_nothing() -> None:
    source = OffsetSource(10)
    assert await Paginator(source, page_size=10, limit=0).collect() == []
    assert source.requests == []


async def test_reiteration_starts_over_and_first() -> None:
    paginator: Paginator[int] = Paginator(OffsetSource(5), page_size=2)
    assert await paginator.collect() == [0, 1, 2, 3, 4]
    assert await paginator.collect() == [0, 1, 2, 3, 4]
    assert await paginator.first() == 0


def test_bad_arguments() -> None:
    source = OffsetSource(1)
    with pytest.raises(ValueError, match="limit"):
        Paginator(source, limit=-1)
    with pytest.raises(ValueError, match="max_pages"):
        Paginator(source, max_pages=0)
    with pytest.raises(ValueError, match="skip"):
        Paginator(source, skip=-1)


async def test_raw_and_as_type_switch_the_item_type_of_the_same_request() -> None:
    seen: list[type] = []

    def retype(item_type: type) -> object:
        async def fetch(cursor: str | None, size: int | None) -> RawPage:
            seen.append(item_type)
            return RawPage(items=[item_type.__name__], link=None)

        return fetch

    typed: Paginator[int] = Paginator(retype(int), page_size=7, limit=3, retype=retype)  # type: ignore[arg-type]
    raw = typed.raw()
    assert (raw.page_size, raw.limit) == (7, 3)
    assert await raw.collect() == ["Raw"]
    assert await typed.as_type(str).collect() == ["str"]
    assert seen == [msgspec.Raw, str]


async def test_a_paginator_without_retype_refuses_to_change_type() -> None:
    async def fetch(cursor: str | None, size: int | None) -> RawPage:
        return RawPage(items=[], link=None)

    with pytest.raises(TypeError, match="cannot change its item type"):
        Paginator(fetch, description="GET /x/").raw()


async def test_the_position_after_every_item_resumes_right_after_it() -> None:
    """Positions inside a page are read from how far the page has been handed out: after
    each item, resuming from the position gives exactly the items not yet taken."""
    paginator: Paginator[int] = Paginator(OffsetSource(250), page_size=100, skip=30)
    taken: list[int] = []
    async for item in paginator:
        taken.append(item)
        position = paginator.position
        rest = Paginator[int](OffsetSource(250), page_size=100).resume(position)
        assert await rest.collect() == list(range(item + 1, 250)), (item, position)
    assert taken == list(range(30, 250))
    assert paginator.position == Position(None, 0, done=True)


@pytest.mark.parametrize("prefetch", [None, 0, 2])
async def test_a_loop_left_by_break_does_not_move_the_next_loops_position(
    prefetch: int | None,
) -> None:
    """The first loop's generator is finalized by the event loop while the second loop runs
    (the fetcher answers without suspending): it must leave the second loop's state alone."""
    paginator = Paginator(OffsetSource(100), page_size=10, prefetch=prefetch)
    async for item in paginator:
        if item == 3:
            break
    taken = 0
    async for _item in paginator:
        taken += 1
        if taken == 2:
            for _ in range(5):
                await anyio.lowlevel.checkpoint()
        if taken == 7:
            break
    for _ in range(5):
        await anyio.lowlevel.checkpoint()
    assert paginator.position == Position(None, 7)

