"""One stream's cursor decisions, without I/O.

A :class:`CursorWalk` is fed one page's facts at a time (how many items it held, its
``Link`` header, optionally a fingerprint of its body and how many of its items were new)
and answers which of those items to hand out, which cursor to request next, and where a
consumer stands. Everything that can make a walk go on for ever is decided here: repeated
cursors and cycles (every requested cursor is remembered as a hash), pages that bring
nothing new under fresh cursors, ``results="true"`` with an empty cursor, and pages far
larger than the page size asked for; and what must not end it early: a page with no
``Link`` at all where a page before it promised more.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Container, Hashable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import msgspec

from ..errors import OversizedPage, PaginationError
from .items import PLAIN_ID
from .links import LinkHeaderError, PageLinks, page_links

__all__ = [
    "DEFAULT_MAX_STALE_PAGES",
    "OVERSIZE_FACTOR",
    "BodyFingerprints",
    "CursorWalk",
    "PageKeys",
    "Position",
    "Step",
    "body_fingerprint",
    "leading_repeats",
    "row_before",
]

DEFAULT_MAX_STALE_PAGES = 50
"""Consecutive pages with nothing new (empty, or a repeat) after which a stream is stuck.

Sentry legitimately sends empty pages with ``results="true"`` (filtered rows), a few in a
row at most; fifty wastes little and still ends a server that never stops."""

OVERSIZE_FACTOR = 2
"""A page may hold up to this many times the page size asked for before it is refused."""

_POSITION_KEYS = frozenset({"cursor", "skip", "done"})
_SAMPLE = 512
"""Bytes hashed at each end and in the middle: the cost stays the same whatever the size."""
_MAX_SAMPLES = 1 << 16
"""Samples a :class:`BodyFingerprints` remembers before it starts over (bounded memory)."""


def body_fingerprint(body: bytes) -> int:
    """A hash of a response body's length and three slices of it.

    Equal bytes give equal fingerprints, at a constant cost; but distinct pages can share
    all four (Discover rows led by one long message: the same length, and the same bytes at
    the start, in the middle and in ``meta``). :class:`BodyFingerprints` tells those apart.
    """
    size = len(body)
    if size <= 3 * _SAMPLE:
        return hash(body)
    middle = size // 2
    return hash(
        (size, body[:_SAMPLE], body[middle : middle + _SAMPLE], body[size - _SAMPLE :])
    )


class BodyFingerprints:
    """Fingerprints of one stream's page bodies, for :meth:`CursorWalk.on_page`: equal only
    for equal bytes, and nearly as cheap as :func:`body_fingerprint`.

    A body is sampled first (:func:`body_fingerprint`, which hashes a small body whole);
    only when its sample was met before is it hashed whole, which tells distinct pages
    sharing a sample apart. Hashing every body whole would cost a tenth to a quarter of
    decoding it. A sampled body sent again is fingerprinted whole from its second time on,
    so a run of its repeats is stale one page later than its first repeat.
    """

    __slots__ = ("_samples",)

    def __init__(self) -> None:
        self._samples: set[int] = set()

    def __call__(self, body: bytes) -> int:
        sample = body_fingerprint(body)
        if len(body) <= 3 * _SAMPLE:
            return sample  # hashed whole already
        if sample in self._samples:
            return hash((sample, hash(body)))
        if len(self._samples) >= _MAX_SAMPLES:
            self._samples.clear()
        self._samples.add(sample)
        return sample


@dataclass(frozen=True, slots=True)
class Position:
    """Where to resume: re-request ``cursor`` and skip its first ``skip`` items.

    ``skip`` is zero whenever the consumer stopped at a page boundary; after a ``limit=``
    or a ``break`` mid-page it counts the items of that page already handed out. A skip
    given by hand may be larger than a page: it goes on across full pages. Resume
    with the same page size: some of Sentry's cursors encode it. ``done`` means nothing
    is left: resuming from a done position yields nothing. msgspec encodes it as an
    object; :meth:`to_dict`/:meth:`from_dict` do the same for ``json``.
    """

    cursor: str | None
    skip: int = 0
    done: bool = False

    def __post_init__(self) -> None:
        if self.cursor is not None and not isinstance(self.cursor, str):
            raise ValueError(f"Position.cursor must be a string or None (got {self.cursor!r})")
        if isinstance(self.skip, bool) or not isinstance(self.skip, int) or self.skip < 0:
            raise ValueError(f"Position.skip must be a non-negative integer (got {self.skip!r})")
        if not isinstance(self.done, bool):
            raise ValueError(f"Position.done must be a boolean (got {self.done!r})")

    def to_dict(self) -> dict[str, Any]:
        return {"cursor": self.cursor, "skip": self.skip, "done": self.done}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Position:
        """The inverse of :meth:`to_dict`; a ``ValueError`` names what is wrong."""
        if not isinstance(data, Mapping):
            raise ValueError(f"a saved Position must be an object (got {type(data).__name__})")
        unknown = set(data) - _POSITION_KEYS
        if unknown:
            raise ValueError(f"a saved Position has unknown keys: {sorted(map(str, unknown))}")
        if "cursor" not in data:
            raise ValueError("a saved Position needs a 'cursor' (null for the first page)")
        return cls(data["cursor"], data.get("skip", 0), data.get("done", False))


class Step(msgspec.Struct, frozen=True, gc=False):
    """What to do with one page: hand out ``items[start:stop]``; request again if ``more``.

    ``cursor`` is the cursor the page was requested with; ``next_cursor`` is set only while
    the server says more results exist.
    """

    cursor: str | None
    start: int
    stop: int
    next_cursor: str | None
    prev_cursor: str | None
    paginated: bool
    more: bool

    def position(self, taken: int) -> Position:
        """Where a consumer stands after taking ``taken`` of the items handed out."""
        return Position(self.cursor, self.start + taken)


def leading_repeats(keys: Iterable[Hashable | None], previous: Container[Hashable]) -> int:
    """How many items at the head of a page the page before handed out: the run of
    ``keys`` found in ``previous``, up to the first that is not (``None``: unknown, never
    a repeat).

    Rows arriving at the head of an offset list push the last rows of the page before onto
    the head of the next: those are dropped, and skipped as a position skips rows, so a
    position taken after them counts the server's rows and a walk started there without
    the page before skips them by count. A repeat further in (an event stored late among
    the rows, same-second events sent in another order) is handed out again where it
    stands: a position counts the rows it skips plus the items taken, which is where the
    server's rows stand only while every row dropped leads the page (a duplicate, rather
    than a position that skips an event on resume)."""
    count = 0
    for key in keys:
        if key is None or key not in previous:
            break
        count += 1
    return count


_PLAIN_KEY = re.compile(PLAIN_ID + "{1,200}")
"""A key every JSON encoder writes as it is: found in a body, or not there at all."""


class PageKeys:
    """The keys of a page's items, read only when asked about a key the page's bytes hold.

    The next page's first key is asked about: when no rows arrived, it is not in this
    page, and a search of the body (C speed) says so without reading any item's key. Only
    a key the body holds (a repeat, or its characters elsewhere in the page) makes every
    key be read, once. A key outside :data:`_PLAIN_KEY` (one an encoder might escape) is
    looked up among the keys read. Holds the body until then: the raw items hold it too.
    """

    __slots__ = ("_body", "_items", "_key", "_keys")

    def __init__(
        self, items: Iterable[Any], key: Callable[[Any], Hashable | None], body: bytes
    ) -> None:
        self._items: Iterable[Any] | None = items
        self._key = key
        self._body: bytes | None = body
        self._keys: Container[Hashable] | None = None

    def __contains__(self, key: object) -> bool:
        keys = self._keys
        if keys is None:
            body = self._body
            if body is not None and not isinstance(key, bool) and isinstance(key, (str, int)):
                text = key if isinstance(key, str) else str(key)
                if _PLAIN_KEY.fullmatch(text):
                    token = f'"{text}"' if isinstance(key, str) else text
                    if token.encode() not in body:
                        return False
            keys = self._keys = set(map(self._key, self._items or ()))
            self._items = self._body = None
        return key in keys


_MAX_OFFSET_DIGITS = 18
"""Digits of an offset :func:`row_before` reads: far past any list, and short of the
longest text ``int`` converts."""


def row_before(cursor: str | None) -> str | None:
    """The cursor of the page that begins one row before ``cursor``'s: an offset cursor past
    the first row (``<value>:<offset>:0``, as Sentry's ``GenericOffsetPaginator`` makes
    them, its offset counting rows) one row back; ``None`` for the first page, and for a
    cursor of any other form (whose offset counts something else)."""
    if cursor is None:
        return None
    parts = cursor.split(":")
    if len(parts) != 3 or parts[2] != "0":
        return None
    offset = parts[1]
    if not (offset.isascii() and offset.isdigit()) or len(offset) > _MAX_OFFSET_DIGITS:
        return None
    rows = int(offset)
    return f"{parts[0]}:{rows - 1}:0" if rows > 0 else None


def _read_links(link: str | None) -> PageLinks | str:
    """A page's links, or why its ``Link`` header cannot be read: a walk's error does not
    chain the parser's, whose frames hold the whole header (cursors and all) as locals."""
    try:
        return page_links(link)
    except LinkHeaderError as exc:
        return str(exc)


class CursorWalk:
    """The cursor state of one stream, from a start :class:`Position` to its end.

    Call :meth:`on_page` with each page fetched from :attr:`cursor` until :attr:`finished`.
    ``page_size`` is the size sent with each request (``None`` when none was: endpoints
    that answer unpaginated on purpose). ``stream`` names the stream in errors.
    ``continuing``: an ended walk of the same stream that this one goes on from, after a
    failure; its :attr:`memory` is this walk's. Started at its :attr:`position`, this
    walk counts what it saw too, the cursors, pages and ids met and its run of stale pages,
    so that a server failing every few pages while it cycles or sends nothing new is still
    stopped. Started before it (pages it took in were never handed out, and are fetched
    again: seen already, they would look like a cycle), this one starts that count afresh.
    """

    __slots__ = (
        "_cursor",
        "_finished",
        "_left",
        "_max_pages",
        "_max_stale",
        "_page_size",
        "_position",
        "_redact",
        "_seen_cursors",
        "_seen_pages",
        "_skip",
        "_stale",
        "item_ids",
        "last_page_ids",
        "memory",
        "pages",
        "stream",
    )

    def __init__(
        self,
        start: Position | None = None,
        *,
        limit: int | None = None,
        max_pages: int | None = None,
        page_size: int | None = None,
        max_stale_pages: int = DEFAULT_MAX_STALE_PAGES,
        stream: str = "",
        redact: Callable[[str], str] | None = None,
        continuing: CursorWalk | None = None,
    ) -> None:
        if limit is not None and limit < 0:
            raise ValueError("limit must not be negative")
        if max_pages is not None and max_pages < 1:
            raise ValueError("max_pages must be at least 1")
        if max_stale_pages < 1:
            raise ValueError("max_stale_pages must be at least 1")
        start = start if start is not None else Position(None)
        self.stream = stream
        self._redact = redact
        self.pages = 0
        self._cursor = start.cursor
        self._skip = start.skip
        self._position = start
        self._left = limit
        self._max_pages = max_pages
        self._page_size = page_size
        self._max_stale = max_stale_pages
        self._finished = start.done or limit == 0
        self.memory: dict[Any, Any] = {} if continuing is None else continuing.memory
        """What the fetcher of this walk's pages keeps from one page for the next (the
        renamed projects it follows): each walk its own, whatever its cursors."""
        if continuing is None or continuing.position != start:
            self._seen_cursors: set[int] = set()
            self._seen_pages: set[int] = set()
            self._stale = 0
            self.item_ids: set[int] = set()
            """Hashes of the item ids a caller that counts ``fresh`` items has met. It adds a
            page's all at once, after reading every one: a page given up half-read
            (:meth:`on_unreadable_page`) must leave none behind, or that page read again
            would count as bringing less than it does."""
            self.last_page_ids: Container[Hashable] = frozenset()
            """The ids of the last page taken in, for a caller that drops what the page
            before handed out (``repeated``): one page of them, whatever the stream's
            length. The ids themselves, not their hashes: distinct ids may hash alike."""
        else:
            # Taken over, not copied: the walk continued has ended, and copies would cost
            # the length of the stream at each failure.
            self._seen_cursors = continuing._seen_cursors
            self._seen_pages = continuing._seen_pages
            self._stale = continuing._stale
            self.item_ids = continuing.item_ids
            self.last_page_ids = continuing.last_page_ids

    @property
    def finished(self) -> bool:
        return self._finished

    @property
    def cursor(self) -> str | None:
        """The cursor of the next request (``None``: the first page)."""
        return self._cursor

    @property
    def position(self) -> Position:
        """Where a consumer that took every item handed out so far resumes."""
        return self._position

    def ahead(self, link: str | None) -> str | None:
        """The cursor to request early, from the ``Link`` of the page requested with
        :attr:`cursor` before that page is counted: ``None`` unless the walk is sure to go on
        there whatever the page holds.

        A read-ahead sends it while the page's body is still being decoded. Only a page's
        count or content can still end the walk then (a limit it fills, a run of stale
        pages, an oversized page), so nothing is guessed within reach of a limit, at the
        last page ``max_pages`` allows, or where the ``Link`` itself would stop the walk
        (malformed, repeating a cursor).
        """
        if self._finished:
            return None
        try:
            nxt = page_links(link).next_cursor
        except LinkHeaderError:
            return None
        if nxt is None or nxt == self._cursor or hash(nxt) in self._seen_cursors:
            return None
        if self._max_pages is not None and self.pages + 1 >= self._max_pages:
            return None
        if self._left is not None:
            size = self._page_size
            if size is None or self._left <= size * OVERSIZE_FACTOR:
                return None
        if self._stale + 1 >= self._max_stale:
            return None
        return nxt

    def on_page(
        self,
        count: int,
        link: str | None,
        *,
        fingerprint: int | None = None,
        fresh: int | None = None,
        repeated: int = 0,
    ) -> Step:
        """Take in the page requested with :attr:`cursor`: ``count`` items and its ``Link``.

        ``fingerprint`` (a hash of the body) marks a page repeating an earlier one;
        ``fresh`` is how many of its items were new, where the caller tracks ids;
        ``repeated`` how many of its first items the page before handed out already
        (:func:`leading_repeats`): they are not handed out again, and a position counts
        them as the server's rows they are, as it counts the items handed out. Raises
        :class:`PaginationError` (or :class:`OversizedPage`) when the stream cannot go on.
        A page without ``Link`` ends the walk only as its first page (an unpaginated
        endpoint); requested with a cursor, which a page before it (or the saved position)
        promised more at, it is an error that leaves the position on that cursor.
        """
        if self._finished:
            raise RuntimeError("this walk is finished; start a new one to fetch again")
        cursor = self._cursor
        self.pages += 1
        if cursor is not None:
            self._seen_cursors.add(hash(cursor))
        size = self._page_size
        if size is not None and count > size * OVERSIZE_FACTOR:
            self._finished = True
            message = f"{self._where()} answered {count} items where page_size={size} was asked for"
            raise OversizedPage(
                self._shown(message),
                stream=self.stream,
                position=self._shown_position(),
                page_size=size,
                count=count,
            )
        links = _read_links(link)
        if isinstance(links, str):
            raise self._error(f"malformed Link header: {links}")
        nxt = links.next_cursor
        if nxt is None:
            if links.next_results and not links.polling_cursor:
                raise self._error('rel="next" says results="true" but carries no cursor')
            if cursor is not None and not links.paginated:
                # Requested with a cursor a page promised more at: no Link (or one with no
                # rel="next", a proxy's) is no answer (a proxy's empty 200), not the end.
                raise self._error(
                    f"the page requested with cursor {cursor!r} came back with no Link "
                    'header with rel="next", after a page that said more results exist; '
                    "stopping rather than ending the stream early"
                )
        if nxt is not None and nxt == cursor:
            raise self._error(
                f"the server sent back the cursor {cursor!r} that was just requested as the "
                "next one; stopping instead of looping"
            )
        if nxt is not None and hash(nxt) in self._seen_cursors:
            raise self._error(
                f"the server sent the cursor {nxt!r} again, after pages that came later; "
                "stopping instead of going round in a cycle"
            )
        new = count > 0 and fresh != 0
        if new and fingerprint is not None:
            new = fingerprint not in self._seen_pages
            self._seen_pages.add(fingerprint)
        self._stale = 0 if new else self._stale + 1

        skipped = min(self._skip, count)
        # A skip beyond a full page goes on into the next pages (a caller's skip of more
        # than a page); beyond a short one it ends there: a saved position whose page has
        # since shrunk must not skip items of the next page that were never handed out.
        full = self._page_size is not None and count >= self._page_size
        self._skip = self._skip - skipped if full and nxt is not None else 0
        start = max(skipped, min(repeated, count))
        stop = count
        left = self._left
        trimmed = left is not None and stop - start > left
        if left is not None:
            stop = min(stop, start + left)
            self._left = left - (stop - start)
        if trimmed:
            # The page held more than the limit: resume inside it.
            self._position = Position(cursor, stop)
        else:
            self._position = Position(nxt, self._skip, done=nxt is None)
        more = (
            not trimmed
            and nxt is not None
            and self._left != 0
            and (self._max_pages is None or self.pages < self._max_pages)
        )
        if more and self._stale >= self._max_stale:
            raise self._error(
                f"{self._stale} pages in a row brought nothing new (empty, or repeating "
                "earlier items) while the server kept sending fresh cursors; stopping"
            )
        self._finished = not more
        self._cursor = nxt
        return Step(cursor, start, stop, nxt, links.prev_cursor, links.paginated, more)

    def on_unreadable_page(self, index: int, reason: str) -> PaginationError:
        """The error that ends the walk at the page requested with :attr:`cursor`, fetched
        but not taken in: its caller could not read the item at ``index`` (``reason``: an
        ``item_id`` that raised). The walk stays positioned before that page, whose
        items are not handed out (a walk started there fetches it again whole)."""
        if self._finished:
            raise RuntimeError("this walk is finished; start a new one to fetch again")
        self.pages += 1
        cursor = self._cursor
        page = "the first page" if cursor is None else f"the page requested with cursor {cursor!r}"
        return self._error(f"{reason} on the item at index {index} of {page}; stopping before it")

    def _where(self) -> str:
        return self.stream or "the stream"

    def _shown(self, text: str) -> str:
        """``text`` with the token blanked out: a hostile server may echo it in a cursor."""
        return text if self._redact is None else self._redact(text)

    def _shown_position(self) -> Position:
        """The position an error carries: a cursor echoing the token is blanked there too
        (:attr:`position` keeps it: resuming needs it)."""
        position = self._position
        if position.cursor is None or self._redact is None:
            return position
        cursor = self._redact(position.cursor)
        if cursor == position.cursor:
            return position
        return Position(cursor, position.skip, position.done)

    def _error(self, message: str) -> PaginationError:
        self._finished = True  # a stream that cannot go on is over, whoever catches this
        shown = self._shown_position()
        return PaginationError(
            self._shown(f"{self._where()}: {message} (at {shown})"),
            stream=self.stream,
            position=shown,
        )
