"""Lazy pagination over Sentry's Link cursors.

A :class:`Paginator` sends nothing until it is iterated, fetches the next page only when
the consumer has used up the current one, and holds one page at a time, so a stream of a
million events runs in the memory of a single page. It stops exactly when ``rel="next"``
says ``results="false"`` (a short or empty page is not the end), and every position it
reaches can be saved and resumed from.
"""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar, cast

import msgspec

from ._protocol.links import LinkHeaderError, page_links
from ._protocol.ratelimit import RateLimitInfo
from .errors import PaginationError

__all__ = ["Page", "Paginator", "Position"]

T = TypeVar("T")
U = TypeVar("U")

_CURSOR_MEMORY = 1024
"""How many requested cursors to remember for spotting a server that leads back to one."""


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    """One response's worth of items and what it said about the rest.

    ``cursor`` is the cursor this page was requested with (``None`` for the first page);
    ``next_cursor`` is set only while the server says more results exist.
    """

    items: list[T]
    cursor: str | None
    next_cursor: str | None
    prev_cursor: str | None
    hits: int | None = None
    max_hits: int | None = None
    rate_limit: RateLimitInfo | None = None
    meta: Any = None
    paginated: bool = True
    direct_hit: bool = False
    """``X-Sentry-Direct-Hit: 1``: the issues query was an event id or a short id and this
    single page is the match (no ``Link``, no further pages)."""

    def __len__(self) -> int:
        return len(self.items)


@dataclass(frozen=True, slots=True)
class Position:
    """Where to resume: re-request ``cursor`` and skip its first ``skip`` items.

    ``skip`` is zero whenever the consumer stopped at a page boundary; after a ``limit=``
    or a ``break`` mid-page it counts the items of that page already handed out. Resume
    with the same page size: some of Sentry's cursors encode it. ``done`` means nothing
    is left.
    """

    cursor: str | None
    skip: int = 0
    done: bool = False


@dataclass(frozen=True, slots=True)
class RawPage:
    """What a page fetcher hands back: undecoded transport facts plus decoded items."""

    items: list[Any]
    link: str | None
    hits: int | None = None
    max_hits: int | None = None
    rate_limit: RateLimitInfo | None = None
    meta: Any = None
    direct_hit: bool = False


PageFetcher = Callable[[str | None, int | None], Awaitable[RawPage]]
"""``fetch(cursor, page_size)``: one request; ``page_size`` is ``None`` to use the default."""


@dataclass(eq=False)
class Paginator(Generic[T], AsyncIterator[T]):
    """``async for item in paginator`` yields items; :meth:`pages` yields :class:`Page` objects.

    ``cursor``/``skip`` start from a saved :class:`Position`; ``limit`` caps the number of
    items; ``max_pages`` caps requests. After any run, :attr:`position` says where to resume.
    A paginator can be iterated again; each iteration starts from its configured start.

    Every list method returns its typed paginator; :meth:`raw` turns it into the same stream
    of undecoded item bytes, and :meth:`as_type` into the same stream decoded as your own
    model, so one method (and one signature) serves all three.
    """

    _fetch: PageFetcher
    page_size: int | None = None
    cursor: str | None = None
    skip: int = 0
    limit: int | None = None
    max_pages: int | None = None
    description: str = ""
    retype: Callable[[Any], PageFetcher] | None = field(default=None, repr=False)
    """Item type -> fetcher for that type; what :meth:`raw` and :meth:`as_type` use."""
    pages_fetched: int = field(default=0, init=False)
    _position: Position = field(init=False, repr=False)
    _iterator: AsyncGenerator[T, None] | None = field(default=None, init=False, repr=False)
    _page_cursor: str | None = field(default=None, init=False, repr=False)
    _page_base: int = field(default=-1, init=False, repr=False)
    _taken: int = field(default=0, init=False, repr=False)

    def __post_init__(self) -> None:
        if self.limit is not None and self.limit < 0:
            raise ValueError("limit must not be negative")
        if self.max_pages is not None and self.max_pages < 1:
            raise ValueError("max_pages must be at least 1")
        if self.skip < 0:
            raise ValueError("skip must not be negative")
        self._position = Position(self.cursor, self.skip)

    def as_type(self, item_type: type[U]) -> Paginator[U]:
        """The same request, each item decoded as ``item_type`` (any msgspec-decodable type).

        Call it before iterating: the new paginator starts from this one's configured start.
        """
        if self.retype is None:
            raise TypeError(f"{self.description or 'this paginator'} cannot change its item type")
        changed = dataclasses.replace(self, _fetch=self.retype(item_type))
        return cast("Paginator[U]", changed)

    def raw(self) -> Paginator[msgspec.Raw]:
        """The same request, each item as the exact JSON bytes Sentry sent (``msgspec.Raw``).

        For pass-through export: no objects are built, and ``bytes(item)`` is written as is.
        """
        return self.as_type(msgspec.Raw)

    @property
    def position(self) -> Position:
        """Where to resume: after the last item handed out (or page, with :meth:`pages`)."""
        if self._page_base >= 0:
            return Position(self._page_cursor, self._page_base + self._taken)
        return self._position

    async def pages(self) -> AsyncIterator[Page[T]]:
        """Yield pages lazily; with ``limit``, the last page is trimmed to the limit."""
        cursor, skip = self.cursor, self.skip
        left = self.limit
        self._position = Position(cursor, skip)
        self._page_base = -1
        self.pages_fetched = 0
        if left == 0:
            return
        visited: dict[str | None, None] = {}
        while True:
            if self.max_pages is not None and self.pages_fetched >= self.max_pages:
                return
            # Always the same page size, even for the last page under a limit: some cursors
            # (Sentry's OffsetPaginator: ``<page size>:<page number>:<is_prev>``) are only
            # valid for the size they were made with, and a smaller request skips rows. A
            # capped run trims the page here instead, and its position says where inside.
            raw = await self._fetch(cursor, self.page_size)
            self.pages_fetched += 1
            try:
                links = page_links(raw.link)
            except LinkHeaderError as exc:
                raise PaginationError(f"{self.description}: malformed Link header: {exc}") from exc
            next_cursor = links.next_cursor
            if next_cursor is not None and next_cursor == cursor:
                raise PaginationError(
                    f"{self.description}: the server sent back the cursor {cursor!r} that was "
                    "just requested as the next one; stopping instead of looping"
                )
            if next_cursor is not None and next_cursor in visited:
                raise PaginationError(
                    f"{self.description}: the server sent the cursor {next_cursor!r} again, "
                    "after pages that came later; stopping instead of going round in a cycle"
                )
            visited[cursor] = None
            if len(visited) > _CURSOR_MEMORY:
                del visited[next(iter(visited))]
            items = raw.items[skip:] if skip else raw.items
            trimmed = left is not None and len(items) > left
            if trimmed:
                assert left is not None
                items = items[:left]
            page: Page[T] = Page(
                items=items,
                cursor=cursor,
                next_cursor=next_cursor,
                prev_cursor=links.prev_cursor,
                hits=raw.hits,
                max_hits=raw.max_hits,
                rate_limit=raw.rate_limit,
                meta=raw.meta,
                paginated=links.paginated,
                direct_hit=raw.direct_hit,
            )
            if trimmed:
                # The page held more than the limit: resume inside it.
                self._position = Position(cursor, skip + len(items))
            else:
                self._position = Position(next_cursor, 0, done=next_cursor is None)
            if left is not None:
                left -= len(items)
            yield page
            if trimmed or next_cursor is None or left == 0:
                return
            # Drop this page before fetching the next: two pages alive at once double the
            # memory and push every decoded item into the older GC generations.
            del raw, items, page
            cursor, skip = next_cursor, 0

    async def _items(self) -> AsyncGenerator[T, None]:
        # The position inside a page is computed on demand from a counter: building a
        # Position per item would cost more than the rest of the per-item work.
        async for page in self.pages():
            self._page_cursor = page.cursor
            self._page_base = self._base_skip(page)
            self._taken = 0
            for item in page.items:
                self._taken += 1
                yield item
            self._page_base = -1
            del page

    def _base_skip(self, page: Page[T]) -> int:
        return self.skip if page.cursor == self.cursor and self.pages_fetched == 1 else 0

    def __aiter__(self) -> AsyncIterator[T]:
        self._iterator = self._items()
        return self._iterator

    async def __anext__(self) -> T:
        if self._iterator is None:
            self._iterator = self._items()
        return await self._iterator.__anext__()

    async def aclose(self) -> None:
        """End an iteration early and release what it holds, as ``contextlib.aclosing`` does.

        Leaving an ``async for`` with ``break`` leaves the generator for the garbage collector
        to finish; this finishes it now. Iterating again starts over from the configured start.
        """
        iterator, self._iterator = self._iterator, None
        if iterator is not None:
            await iterator.aclose()

    async def collect(self) -> list[T]:
        """Every item in a list: convenient for small results, wrong for exports."""
        return [item async for item in self]

    async def first(self) -> T | None:
        async for item in self:
            return item
        return None
