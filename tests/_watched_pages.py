"""A page fetcher that watches the pages it hands out: whether a walk lets go of each page
before it asks for the next (a page kept alive then makes the next decode into cold memory)."""

from __future__ import annotations

import weakref
from collections.abc import Awaitable, Callable
from typing import Any

import msgspec

from sentry_async.pagination import RawPage

Fetch = Callable[[str | None, int | None], Awaitable[RawPage]]


class _Items(list):  # type: ignore[type-arg]
    """A page's items, as a list that can be watched with a weak reference."""


class WatchedPages:
    """Wraps a page fetcher; ``alive_when_asked`` holds, for each request, how many of the
    pages handed out before it are still alive."""

    def __init__(self, fetch: Fetch) -> None:
        self._fetch = fetch
        self._pages: list[weakref.ref[_Items]] = []
        self.alive_when_asked: list[int] = []

    async def __call__(self, cursor: str | None, size: int | None) -> RawPage:
        self.alive_when_asked.append(sum(page() is not None for page in self._pages))
        raw = await self._fetch(cursor, size)
        items = _Items(raw.items)
        self._pages.append(weakref.ref(items))
        return msgspec.structs.replace(raw, items=items)


def memory_pages(pages: list[list[Any]]) -> Fetch:
    """A page fetcher over ``pages`` held in memory; the cursor is the page's index."""

    async def fetch(cursor: str | None, size: int | None) -> RawPage:
        index = 0 if cursor is None else int(cursor)
        more = str(index + 1 < len(pages)).lower()
        return RawPage(pages[index], f'<u>; rel="next"; results="{more}"; cursor="{index + 1}"')

    return fetch
