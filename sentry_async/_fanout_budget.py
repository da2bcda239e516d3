"""The item budget of :func:`~sentry_async.fan_out`: pure bookkeeping, no I/O.

Fetchers spend it when they hand a page or an item over; the consumer gives it back as it
takes items. A page's items are handed out from a list iterator with no counting per item:
what the consumer has taken of the open page is read from how far that iterator has got
(``length_hint``) whenever someone asks, and committed when the page is done. So a page
costs the consumer a loop step per item and a few calls per page, however the budget is
looked at in between.
"""

from __future__ import annotations

from collections.abc import Iterator
from operator import length_hint
from typing import Any

__all__ = ["Budget"]


class Budget:
    """``size`` items in flight at most, which a page may overdraw by its own size.

    ``room`` is what the fetchers may still send; ``buffered`` what was sent and not yet
    taken (the open page's remaining items included); ``max_buffered`` the most there were
    at any hand-over.
    """

    __slots__ = (
        "_page",
        "_page_size",
        "_recheck",
        "_room",
        "_sent",
        "_taken",
        "low_water",
        "max_buffered",
    )

    def __init__(self, size: int) -> None:
        self._room = size
        self._sent = 0
        self._taken = 0
        self.max_buffered = 0
        self.low_water = max(1, size // 2)
        """A fetcher waiting for room is woken when this much is free, not for every item."""
        self._recheck = max(1, self.low_water // 2)
        self._page: Iterator[Any] | None = None
        self._page_size = 0

    def _credit(self) -> int:
        """Items of the open page the consumer has already taken."""
        page = self._page
        return 0 if page is None else self._page_size - length_hint(page)

    @property
    def room(self) -> int:
        return self._room + self._credit()

    @property
    def buffered(self) -> int:
        return self._sent - self._taken - self._credit()

    @property
    def half_free(self) -> bool:
        return self.room >= self.low_water

    def spend(self, n: int) -> None:
        """A fetcher hands ``n`` items over."""
        self._room -= n
        self._sent += n
        buffered = self._sent - self._taken - self._credit()
        if buffered > self.max_buffered:
            self.max_buffered = buffered

    def take(self, n: int) -> None:
        """The consumer took ``n`` items that travelled one by one."""
        self._room += n
        self._taken += n

    def open_page(self, items: list[Any]) -> Iterator[Any]:
        """The consumer starts on a page: its items, counted as they are taken."""
        self.close_page()
        page = self._page = iter(items)
        self._page_size = len(items)
        return page

    def close_page(self) -> None:
        """The consumer is done with the open page: what it took is committed."""
        if self._page is not None:
            taken = self._credit()
            self._room += taken
            self._taken += taken
            self._page = None

    def step(self) -> int:
        """How many of the open page's items the consumer may hand out before it looks at
        waiting fetchers again: up to the point where half the budget is free, or a few
        once it is (a fetcher may have spent some in between)."""
        need = self.low_water - self.room
        return need if need > 0 else self._recheck
