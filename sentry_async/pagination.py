"""Lazy pagination over Sentry's Link cursors.

A :class:`Paginator` sends nothing until it is iterated, fetches the next page only when
the consumer has used up the current one, and holds one page at a time, so a stream of a
million events runs in the memory of a single page. It stops exactly when ``rel="next"``
says ``results="false"`` (a short or empty page is not the end), and every position it
reaches can be saved and resumed from. What to hand out and what to request next is
decided by a :class:`~sentry_async._protocol.cursors.CursorWalk`; this module only fetches.
"""

from __future__ import annotations

import asyncio
import contextvars
import dataclasses
import traceback
import weakref
from collections import deque
from collections.abc import (
    AsyncGenerator,
    AsyncIterator,
    Awaitable,
    Callable,
    Hashable,
    Iterator,
)
from dataclasses import dataclass, field, fields
from operator import length_hint
from types import TracebackType
from typing import Any, Generic, NoReturn, TypeVar, cast

import anyio
import msgspec
from multidict import MultiMapping

from ._protocol.cursors import (
    DEFAULT_MAX_STALE_PAGES,
    CursorWalk,
    PageKeys,
    Position,
    Step,
    leading_repeats,
)
from ._protocol.links import link_header
from ._protocol.ratelimit import RateLimitInfo
from .errors import ClientClosed, OversizedPage, PaginationError, SentryError
from .hooks import Abandoning

__all__ = ["AUTOMATIC_PREFETCH", "Page", "Paginator", "Position"]

T = TypeVar("T")
U = TypeVar("U")

AUTOMATIC_PREFETCH = 2
"""Pages a paginator left to its default (``prefetch=None``) reads ahead, once its consumer
has asked for a second page while no other walk is in progress on the event loop.

Two, so that the next request leaves as soon as a response's headers arrive; one overlaps
only the consumer's own work. Not from the first page: a look-up that stops there
(``first()``, a ``break``) sends nothing it does not read. Not beside other walks: several
walks at once keep the server and the loop busy already, and reading ahead there measured
a quarter fewer items a second at eight walks, for a third more CPU an item."""


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
    """``X-Sentry-Direct-Hit: 1``: the issues query was an event id or a short id (or an
    issue's events were filtered by an event id: that event in full, even for summaries)
    and this single page is the match (no ``Link``, no further pages)."""

    def __len__(self) -> int:
        return len(self.items)

    def to_arrow(self) -> Any:
        """This page as a ``pyarrow.Table`` (Discover pages typed from their meta); needs
        the ``arrow`` extra. See :mod:`sentry_async.tables`."""
        from .tables import page_table

        return page_table(self)


class RawPage(msgspec.Struct, frozen=True):
    """What a page fetcher hands back: undecoded transport facts plus decoded items.

    A Struct, built in C: one is made for every page."""

    items: list[Any]
    link: str | None
    hits: int | None = None
    max_hits: int | None = None
    rate_limit: RateLimitInfo | None = None
    meta: Any = None
    fingerprint: int | None = None
    """A hash of the response body: a page that repeats an earlier one brings nothing new."""
    direct_hit: bool = False
    more_than: int | None = None
    """Set when the page held more items than this, more than the walk allows: refused
    before they were built (``items`` is empty)."""
    body: bytes | None = None
    """The response body ``items`` were read from, when a fetcher hands it over: a walk
    that tells repeats apart searches it for an id before it reads any of the page's."""


_LAZY_KEY_BYTES = 2048
"""Raw pages whose items average up to this many bytes keep their body for
:class:`PageKeys`: searching it costs less than reading each item's id (a parse, when the
id does not lead the item). Larger items are few for their bytes: their ids are read at
once, and their body is not held past its page."""


_LinkSeen = Callable[[str | None, str | None], bool]
_LINK_WATCH: contextvars.ContextVar[tuple[object, _LinkSeen] | None] = contextvars.ContextVar(
    "sentry_async_link_watch", default=None
)
"""Set by each task a read-ahead fetches in: the fetcher it watches, and what to tell."""


def announce_link(fetcher: object, cursor: str | None, link: str | None) -> bool:
    """Called by a page fetcher with the cursor it requested and the response's ``Link``,
    before it decodes the body: a read-ahead over ``fetcher`` sends its next request then,
    rather than after the decoding. A fetcher that never calls it loses only that overlap;
    a fetcher called inside another one's fetch is not the one watched, and is ignored.

    Returns whether a request was sent: the fetcher then lets the loop run once before it
    decodes (a decode never awaits), so that the request is on the wire while it does.
    """
    watch = _LINK_WATCH.get()
    return watch is not None and watch[0] is fetcher and watch[1](cursor, link)


def link_watch(fetcher: object, cursor: str | None) -> Callable[[MultiMapping[str]], bool] | None:
    """What a page fetcher hands its transport to announce the ``Link`` of ``cursor``'s
    response as soon as the headers arrive (``None`` when no read-ahead watches
    ``fetcher``): the body may take a while to come, and the next request need not wait
    for it. The fetcher still announces before decoding, which sends nothing twice."""
    watch = _LINK_WATCH.get()
    if watch is None or watch[0] is not fetcher:
        return None

    def on_headers(headers: MultiMapping[str]) -> bool:
        return announce_link(fetcher, cursor, link_header(headers))

    return on_headers


_WALK_MEMORY: contextvars.ContextVar[dict[Any, Any] | None] = contextvars.ContextVar(
    "sentry_async_walk_memory", default=None
)
"""Set while a walk's page is fetched: that walk's :attr:`CursorWalk.memory`."""


def walk_memory() -> dict[Any, Any] | None:
    """The memory of the walk whose page the running fetcher fetches (``None`` outside a
    walk): what it learnt on one page that the walk's next pages need, such as a renamed
    project it followed. Each walk has its own, so two walks of one paginator at once,
    whose cursors are the same strings, never share it; a walk continued after a failure
    keeps it."""
    return _WALK_MEMORY.get()


DecodeGate = Callable[[], Awaitable[None] | None]
"""What to await before a page decodes (``None``: decode now)."""
_DECODE_GATE: contextvars.ContextVar[tuple[object, DecodeGate] | None] = contextvars.ContextVar(
    "sentry_async_decode_gate", default=None
)
"""Set by the task that merges a paginator's pages with others': the fetcher it watches,
and the gate its pages wait at, undecoded, until the consumer has room for their items."""


def decode_gate(fetcher: object, gate: DecodeGate | None) -> None:
    """From now on in this task (``None``: no longer), the pages ``fetcher`` fetches wait
    at ``gate`` before they decode: bytes waiting for a busy consumer cost the collector
    nothing, and the objects decoded from them reach the consumer while still in cache."""
    _DECODE_GATE.set(None if gate is None else (fetcher, gate))


def before_decoding(
    fetcher: object, cursor: str | None, link: str | None, gated: bool = True
) -> Awaitable[None] | None:
    """What a page fetcher awaits between reading a response and decoding it: the gate of
    :func:`decode_gate` (unless ``gated`` is false), or one pass of the loop when
    :func:`announce_link` sent the next request early (a decode never awaits), or nothing."""
    sent = announce_link(fetcher, cursor, link)
    gate = _DECODE_GATE.get() if gated else None
    if gate is not None and gate[0] is fetcher:
        wait = gate[1]()
        if wait is not None:
            return wait
    return asyncio.sleep(0) if sent else None


_Fetched = tuple[RawPage, Step, Position]
"""A fetched page, the walk's step for it and the position after it."""

PageFetcher = Callable[[str | None, int | None], Awaitable[RawPage]]
"""``fetch(cursor, page_size)``: one request; ``page_size`` is ``None`` to use the default."""


@dataclass(eq=False)
class Paginator(Generic[T], AsyncIterator[T]):
    """``async for item in paginator`` yields items; :meth:`pages` yields :class:`Page` objects.

    ``cursor``/``skip``/``done`` start from a saved :class:`Position` (:meth:`resume` takes
    one whole); ``limit`` caps the number of items; ``max_pages`` caps requests. After any
    run, :attr:`position` says where to resume. A paginator can be iterated again; each
    iteration starts from its configured start (``anext(paginator)`` after one that raised
    goes on from :attr:`position` instead: see :meth:`__anext__`).

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
    done: bool = False
    """Start from a finished :class:`Position`: iterating yields nothing and sends nothing."""
    max_stale_pages: int = DEFAULT_MAX_STALE_PAGES
    """Consecutive pages with nothing new (empty or repeated) that end the stream in error."""
    prefetch: int | None = None
    """Pages fetched ahead while the consumer works on the current one (0: none; ``None``:
    none for the first page, then :data:`AUTOMATIC_PREFETCH` while no other walk is in
    progress on the event loop)."""
    item_id: Callable[[Any], Hashable] | None = field(default=None, repr=False)
    """An item's identity: a page whose ids were all seen before brings nothing new. Costs
    one hash per item of the stream in memory; without it, only empty and repeated pages
    count as stale. An error it raises (an item without the id it reads) stops the stream
    before that page, as a :class:`PaginationError` whose cause is that error."""
    repeat_id: Callable[[Any], Hashable | None] | None = field(default=None, repr=False)
    """An item's identity, read from any type the paginator hands out (:meth:`raw` and
    :meth:`as_type` keep it), ``None`` when unknown; it must not raise. The items at the
    head of a page that the page before handed out, up to the first that it did not, are
    not handed out again: rows arriving at the head of an offset list push the previous
    page's last rows onto the next page's head. A repeat further in is handed out where
    the server put it (a duplicate, never a loss: nothing is reordered), and a position
    counts the repeats dropped as the server's rows they are. Keeps one page of ids; for raw
    items of up to 2 KB on average, the page's body their bytes live in instead, searched
    for the next page's first id before any of the page's own ids are read."""
    _redact: Callable[[str], str] | None = field(default=None, repr=False)
    """Blanks the token out of a :class:`PaginationError`: a server may echo it in a cursor."""
    _reads: ReadAheads | None = field(default=None, repr=False)
    """The client's read-aheads, which its close() ends before the requests in flight."""
    _walk: CursorWalk | None = field(default=None, init=False, repr=False)
    _step: Step | None = field(default=None, init=False, repr=False)
    _after: Position | None = field(default=None, init=False, repr=False)
    _iterator: AsyncGenerator[T, None] | None = field(default=None, init=False, repr=False)
    """The iteration driven by :meth:`__anext__` calls on the paginator itself, run by
    :attr:`_driver`."""
    _driver: Paginator[T] | None = field(default=None, init=False, repr=False)
    """A copy of this paginator whose iteration :attr:`_iterator` is, and whose position is
    this one's while no iteration of its own has started. The paginator holds that
    iteration strongly and the iteration holds only the copy: dropped without
    :meth:`aclose`, the paginator is freed at once (not when the cyclic collector runs),
    and its iteration and read-ahead task end with it."""
    _looping: weakref.ref[AsyncGenerator[T, None]] | None = field(
        default=None, init=False, repr=False
    )
    """The iteration handed to an ``async for``: weakly held, so that leaving the loop (a
    ``break``) lets it be finalized, and its read-ahead task end, while the paginator
    itself lives on to say where it stopped."""
    _held: AsyncGenerator[T, None] | None = field(default=None, init=False, repr=False)
    """The same, held strongly off asyncio: trio warns about an async generator collected
    before it finished, so after a ``break`` it must live until :meth:`aclose` ends it."""
    _ahead: asyncio.Task[None] | None = field(default=None, init=False, repr=False)
    """The read-ahead task of the current iteration, which :meth:`aclose` ends at once."""
    _inside: Iterator[T] | None = field(default=None, init=False, repr=False)
    """The iterator over the page being handed out item by item."""
    _inside_size: int = field(default=0, init=False, repr=False)
    _begun: int = field(default=0, init=False, repr=False)
    """Pages the current walk has begun to hand out, and their items (:attr:`_handed`):
    what a walk continued after a failure counts against ``max_pages`` and ``limit``."""
    _handed: int = field(default=0, init=False, repr=False)
    _fetched_before: int = field(default=0, init=False, repr=False)
    """Pages the iteration fetched before it was continued by this walk."""
    _earlier: CursorWalk | None = field(default=None, init=False, repr=False)
    """The walk that failed, which this paginator's next one continues."""
    _stepping: bool = field(default=False, init=False, repr=False)
    """An :meth:`__anext__` is under way: a second one, or :meth:`aclose`, is refused."""
    _failed: bool = field(default=False, init=False, repr=False)
    """The iteration of :meth:`__anext__` ended in an error: the next call continues it."""
    _stopped: PaginationError | None = field(default=None, init=False, repr=False)
    """The error that ended it where its walk cannot go on, never raised itself (raised, it
    would hold this paginator in its traceback): the next call raises a copy instead."""

    def __repr__(self) -> str:
        """The dataclass's fields, the cursor's text blanked of the token: a position saved
        from a server that echoed it in a cursor holds it as sent, and a paginator resumed
        there is shown (as ``self`` in an error's locals too) without it."""
        shown = ", ".join(
            f"{f.name}={getattr(self, f.name)!r}" for f in fields(self) if f.repr
        )
        if self._redact is not None:
            shown = self._redact(shown)
        return f"{type(self).__name__}({shown})"

    def __post_init__(self) -> None:
        if self.limit is not None and self.limit < 0:
            raise ValueError("limit must not be negative")
        if self.max_pages is not None and self.max_pages < 1:
            raise ValueError("max_pages must be at least 1")
        if self.skip < 0:
            raise ValueError("skip must not be negative")
        if self.max_stale_pages < 1:
            raise ValueError("max_stale_pages must be at least 1")
        if self.prefetch is not None:
            if isinstance(self.prefetch, bool) or not isinstance(self.prefetch, int):
                raise ValueError(f"prefetch must be an integer or None (got {self.prefetch!r})")
            if self.prefetch < 0:
                raise ValueError("prefetch must not be negative")
        Position(self.cursor, self.skip, self.done)  # a cursor that is not a string fails here

    def as_type(self, item_type: type[U]) -> Paginator[U]:
        """The same request, each item decoded as ``item_type`` (any msgspec-decodable type).

        Call it before iterating: the new paginator starts from this one's configured start.
        """
        if self.retype is None:
            raise TypeError(f"{self.description or 'this paginator'} cannot change its item type")
        # ``item_id`` reads items of the old type: it does not carry over (``repeat_id``,
        # which reads every type, does).
        changed = dataclasses.replace(self, _fetch=self.retype(item_type), item_id=None)
        return cast("Paginator[U]", changed)

    def raw(self) -> Paginator[msgspec.Raw]:
        """The same request, each item as the exact JSON bytes Sentry sent (``msgspec.Raw``).

        For pass-through export: no objects are built, and ``bytes(item)`` is written as is.
        """
        return self.as_type(msgspec.Raw)

    def resume(self, position: Position) -> Paginator[T]:
        """The same request, continuing from a saved :class:`Position`.

        A ``done`` position gives a paginator that yields nothing, instead of starting over.
        """
        return dataclasses.replace(
            self, cursor=position.cursor, skip=position.skip, done=position.done
        )

    def read_ahead(self, pages: int | None) -> Paginator[T]:
        """The same request, fetching up to ``pages`` pages ahead of the consumer, from the
        first page on (``0``: one page at a time; ``None``: the default, see below).

        Memory grows by at most ``pages`` pages, and positions stay those of the pages
        handed out. From two pages on, the next request leaves as soon as a response's
        headers arrive, while its body travels and decodes. By default a paginator reads
        :data:`AUTOMATIC_PREFETCH` pages ahead once its consumer has asked for a second page
        while no other walk is in progress on the event loop: a look-up that stops within
        the first page sends nothing it does not read, and walks side by side (which keep
        the server busy already, a :func:`~sentry_async.fan_out`'s among them) go one page
        at a time until one finds itself alone. Reading ahead runs an asyncio task: off
        asyncio (trio) a walk goes one page at a time whatever ``pages`` says. Each request
        read ahead runs in the context the consumer was in when it asked for the page that
        led to it: a trace puts it under the span current then.
        """
        return dataclasses.replace(self, prefetch=pages)

    @property
    def position(self) -> Position:
        """Where to resume: after the last item handed out (or page, with :meth:`pages`)."""
        if self._inside is not None and self._step is not None:
            return self._step.position(self._inside_size - length_hint(self._inside))
        if self._after is not None:
            return self._after
        if self._driver is not None:
            return self._driver.position
        return Position(self.cursor, self.skip, self.done)

    @property
    def pages_fetched(self) -> int:
        """Requests sent by the current (or last) iteration."""
        if self._walk is not None:
            return self._fetched_before + self._walk.pages
        return self._driver.pages_fetched if self._driver is not None else 0

    async def pages(self) -> AsyncGenerator[Page[T], None]:
        """Yield pages lazily; with ``limit``, the last page is trimmed to the limit."""
        fetched = self._start()
        try:
            async for raw, step, after in fetched:
                items = raw.items
                if step.start or step.stop < len(items):
                    items = items[step.start : step.stop]
                self._step, self._after = step, after
                page: Page[T] = _page(step, items, raw)
                del step, after  # not locals of a later error's traceback: see _forget_walk
                yield page
                # Drop this page before fetching the next: two pages alive at once double
                # the memory and push every decoded item into the older GC generations.
                del raw, items, page
        except BaseException as exc:
            _forget_walk(exc)
            raise
        finally:
            await fetched.aclose()

    def _start(self) -> AsyncGenerator[_Fetched, None]:
        """A new walk from the configured start, and the pages it fetches."""
        earlier, self._earlier = self._earlier, None
        walk = self._walk = CursorWalk(
            Position(self.cursor, self.skip, self.done),
            limit=self.limit,
            max_pages=self.max_pages,
            page_size=self.page_size,
            max_stale_pages=self.max_stale_pages,
            stream=self.description,
            redact=self._redact,
            continuing=earlier,
        )
        self._inside, self._after, self._driver = None, None, None
        self._begun = self._handed = 0
        # Reading ahead runs an asyncio task: off asyncio (trio), one page at a time.
        if self.prefetch != 0 and _running_loop() is not None:
            pages = AUTOMATIC_PREFETCH if self.prefetch is None else self.prefetch
            itself: list[weakref.ref[AsyncGenerator[_Fetched, None]]] = []
            ahead = self._read_ahead(walk, pages, itself, automatic=self.prefetch is None)
            itself.append(weakref.ref(ahead))
            return ahead
        return self._one_by_one(walk)

    async def _one_by_one(self, walk: CursorWalk) -> AsyncGenerator[_Fetched, None]:
        walking = _Walking()
        try:
            while not walk.finished:
                # Always the same page size, even for the last page under a limit: some
                # cursors (Sentry's OffsetPaginator: ``<page size>:<page number>:<is_prev>``)
                # are only valid for the size they were made with. The walk trims the page.
                # The walk's memory is set for this fetch only: it runs in the consumer's
                # context, where other walks may be stepped too.
                memory = _WALK_MEMORY.set(walk.memory)
                try:
                    raw = await self._fetch(walk.cursor, self.page_size)
                finally:
                    _WALK_MEMORY.reset(memory)
                yield self._counted(walk, raw)
                del raw
        finally:
            walking.end()

    def _counted(self, walk: CursorWalk, raw: RawPage) -> _Fetched:
        """The walk's step for a fetched page."""
        if raw.more_than is not None:
            _refuse(walk, raw.more_than)
        fresh = None
        item_id = self.item_id
        if item_id is not None:
            # Every id of the page is read before any is counted as seen: a page not handed
            # out (item_id raised, or was interrupted) leaves none, and a walk that reads it
            # again (anext after the interruption) finds it as new.
            items = iter(raw.items)
            unreadable = None
            try:
                ids = list(map(hash, map(item_id, items)))
            except Exception as exc:
                index = len(raw.items) - length_hint(items) - 1
                unreadable = walk.on_unreadable_page(index, f"item_id raised {exc!r}")
                if not _shows_token(exc, self._redact):
                    raise unreadable from exc
            if unreadable is not None:
                # Described (blanked out) and raised here, where it has no context: the
                # caller's error would show the token a server echoed in the item.
                raise unreadable
            seen = walk.item_ids
            known = len(seen)
            seen.update(ids)
            fresh = len(seen) - known
        repeat_id = self.repeat_id
        if repeat_id is None:
            step = walk.on_page(len(raw.items), raw.link, fingerprint=raw.fingerprint, fresh=fresh)
            return raw, step, walk.position
        page = raw.items
        repeated = leading_repeats(map(repeat_id, page), walk.last_page_ids)
        count = len(page)
        fresh = count - repeated if fresh is None else min(fresh, count - repeated)
        step = walk.on_page(
            count, raw.link, fingerprint=raw.fingerprint, fresh=fresh, repeated=repeated
        )
        # The next page's repeats may be any of this page's rows, pushed down by as many
        # rows as arrived. Raw items hold their body anyway: its ids are read only when
        # the next page's first is in it (a page of summaries, one id read, not a hundred).
        body = raw.body
        if (
            body is not None
            and len(body) <= _LAZY_KEY_BYTES * count
            and type(page[0]) is msgspec.Raw
        ):
            walk.last_page_ids = PageKeys(page, repeat_id, body)
        else:
            walk.last_page_ids = set(map(repeat_id, page))
        return raw, step, walk.position

    async def _read_ahead(
        self,
        walk: CursorWalk,
        pages: int,
        itself: list[weakref.ref[AsyncGenerator[_Fetched, None]]],
        *,
        automatic: bool = False,
    ) -> AsyncGenerator[_Fetched, None]:
        """Fetch in a background task, at most ``pages`` pages beyond the consumer's;
        ``automatic``: one page at a time until the consumer asks for a page after the first
        while no other walk is in progress on the loop (:data:`AUTOMATIC_PREFETCH`).

        The walk still sees pages one at a time and in order; positions are those of the
        pages handed out, so a consumer that stops early resumes where it stopped. An error
        reaches the consumer after the pages fetched before it.

        With room for two pages or more, the next request leaves as soon as a response's
        headers arrive with its ``Link``, while its body still travels and decodes
        (:func:`link_watch`, :func:`announce_link`), when the walk is sure to go there
        (:meth:`CursorWalk.ahead`). ``itself`` is this generator, weakly: its task keeps it
        (see :data:`_READING`).
        """
        walking = _Walking()
        try:
            first = True
            while automatic and not walk.finished and (first or not walking.alone):
                memory = _WALK_MEMORY.set(walk.memory)  # as in _one_by_one
                try:
                    raw = await self._fetch(walk.cursor, self.page_size)
                finally:
                    _WALK_MEMORY.reset(memory)
                yield self._counted(walk, raw)
                del raw
                first = False
            if walk.finished:
                return
            room = _Room(pages)
            early: dict[str | None, asyncio.Task[RawPage]] = {}
            """At most one request sent early, by the cursor it asked for."""
            links: dict[str | None, str | None] = {}
            """The ``Link`` of each response read but not yet counted, by its cursor."""
            loop = asyncio.get_running_loop()
            abandoning = Abandoning(on=True)
            """The requests sent here are the library's own: when it cancels them (the
            consumer left, :meth:`aclose`, a cursor the walk left) they are abandoned, not
            failed; unless the consumer's wait for a page was cancelled by its caller."""
            ready = _Handover(loop, abandoning)
            begun = asked = contextvars.copy_context()
            """The consumer's context when it last asked for a page (``begun``: when the
            read-ahead began, the producer's own): the requests that ask leads to are sent
            in it, so that a trace puts them under the span the consumer was in then. One
            copy per page, none per item."""

            def send_early() -> bool:
                if early or walk.cursor not in links or not room.take_now():
                    return False
                nxt = walk.ahead(links[walk.cursor])
                if nxt is None:
                    room.give()
                    return False
                early[nxt] = asked.run(loop.create_task, fetch(nxt))
                return True

            async def fetch(cursor: str | None) -> RawPage:
                # Watched from the task that fetches (the producer's, or one sent early), so
                # that this fetch's Link, in turn, can send the next request.
                _LINK_WATCH.set((self._fetch, link_seen))
                _WALK_MEMORY.set(walk.memory)
                abandoning.enter()
                return await self._fetch(cursor, self.page_size)

            def link_seen(cursor: str | None, link: str | None) -> bool:
                links[cursor] = link
                return cursor == walk.cursor and send_early()

            async def produce() -> None:
                try:
                    while not walk.finished:
                        sent = early.pop(walk.cursor, None)
                        if early:
                            await _drop(early, room)  # sent early for a cursor the walk left
                        if sent is None:
                            if not room.take_now():
                                await room.take()
                            if asked == begun:
                                raw = await fetch(walk.cursor)
                            else:
                                # The consumer asks from another context (a span of its
                                # own): the request goes in a task of that context.
                                sent = asked.run(loop.create_task, fetch(walk.cursor))
                                raw = await sent
                        else:
                            raw = await sent
                        ready.put(self._counted(walk, raw))
                        del raw, sent
                        for passed in [cursor for cursor in links if cursor != walk.cursor]:
                            del links[passed]
                        send_early()
                    ready.put(None)
                except BaseException as exc:
                    # Ended by the client's close: a consumer still iterating gets what its
                    # next request would have, not the cancellation that ended this task.
                    ready.put(ClientClosed("this SentryClient is closed") if ready.closed else exc)
                    if not isinstance(exc, Exception):
                        raise
                finally:
                    await _drop(early, room)
                    # Over: the pages still queued give room back as the consumer takes
                    # them, and a Link left here would send a request nobody ends.
                    links.clear()

            task = self._ahead = loop.create_task(produce())
            _READING[task] = itself[0]()
            task.add_done_callback(_READING.pop)
            if self._reads is not None:
                self._reads.add(task, ready)
            try:
                while True:
                    got = ready.take_now()
                    if got is None and (got := await ready.take()) is None:
                        break
                    if isinstance(got, BaseException):
                        try:
                            raise got
                        finally:
                            # Not a local of its own traceback: that cycle would keep a
                            # paginator dropped after the error for the cyclic collector.
                            del got
                    room.give()
                    if not walk.finished:
                        send_early()
                    yield got
                    del got
                    asked = contextvars.copy_context()
            finally:
                await _end(task)
                await _drop(early, room)
                if self._ahead is task:
                    self._ahead = None
        finally:
            walking.end()

    async def _items(self) -> AsyncGenerator[T, None]:
        # Straight from the fetched pages, without building Page objects, and with nothing
        # done per item but the yield: the position inside a page is read on demand from
        # how far the page's list iterator has got.
        fetched = self._start()
        walk = self._walk
        try:
            async for raw, step, after in fetched:
                items = raw.items
                if step.start or step.stop < len(items):
                    items = items[step.start : step.stop]
                self._step, self._after = step, after
                del raw, step, after  # not locals of a later error's traceback: see _forget_walk
                self._inside = inside = iter(items)
                self._inside_size = len(items)
                self._begun += 1
                self._handed += len(items)
                for item in inside:
                    yield item
                self._inside = None
                del items, inside  # one page alive at a time, as in pages()
        except BaseException as exc:
            _forget_walk(exc)
            raise
        finally:
            # A loop left by ``break`` is finalized later, maybe while a newer iteration of
            # this paginator runs: the state is that one's then, not to be touched.
            if self._walk is walk:
                if self._inside is not None and self._step is not None:
                    # Left mid-page (break, aclose, cancellation): keep where it stopped.
                    self._after = self.position
                self._inside = None
            # Closed now, not by the garbage collector: a read-ahead task ends with it. At
            # the loop's shutdown it may be closing already (the loop closes every async
            # generator at once), and a second aclose() would fail.
            if not getattr(fetched, "ag_running", False):
                await fetched.aclose()

    def __aiter__(self) -> AsyncIterator[T]:
        iterator = self._items()
        self._looping = weakref.ref(iterator)
        if _running_loop() is None:
            self._held = iterator
        return iterator

    async def __anext__(self) -> T:
        """The next item of the iteration these calls drive, from the configured start.

        A call that raised (a fetch's error, a caller's timeout) ends that iteration, not
        the stream: the next call goes on from :attr:`position` with a fresh walk, as
        ``resume(position)`` would, so an interruption never looks like the end. After a
        :class:`PaginationError` (a cycle, a run of stale pages: a walk started there again
        would repeat it, as would an item ``item_id`` cannot read) each call raises it
        again instead, until :meth:`aclose`.

        One consumer at a time: a call while another task's is under way is refused before
        it changes anything (two at once would fail inside the iteration, unexplained)."""
        if self._stepping:
            raise RuntimeError(
                "another task is already waiting for this paginator's next item: a paginator "
                "has one consumer (hand its items on to other tasks, e.g. through "
                "anyio.create_memory_object_stream, or give each task a paginator of its own)"
            )
        iterator = self._iterator
        if iterator is None:
            iterator = self._begin()
        self._stepping = True
        try:
            return await iterator.__anext__()
        except StopAsyncIteration:
            raise
        except BaseException as exc:
            # The iteration is over (an async generator that raised is finished), but the
            # stream is not: the next call continues it, rather than ending it there.
            if self._iterator is iterator:
                self._iterator = None
                self._failed = True
                if isinstance(exc, PaginationError):
                    self._stopped = _afresh(exc)
            raise
        finally:
            self._stepping = False

    def _begin(self) -> AsyncGenerator[T, None]:
        """A new iteration for :meth:`__anext__`: from the configured start, or continuing
        one that ended in an error (a :class:`PaginationError` is raised again instead)."""
        if self._stopped is not None:
            raise _afresh(self._stopped)
        failed, self._failed = self._failed, False
        before = self._driver
        driver = self._driver = (
            before._continued() if failed and before is not None else dataclasses.replace(self)
        )
        self._walk = self._inside = self._after = None
        iterator = self._iterator = driver._items()
        return iterator

    def _continued(self) -> Paginator[T]:
        """This walk, which failed between two pages, continued from its consumer's position
        by a new one: ``limit`` and ``max_pages`` count what this one handed out, and the
        new walk keeps what this one saw (cycles and stale pages span failures) and its
        memory (a renamed project it followed)."""
        position = self.position
        limit = None if self.limit is None else max(self.limit - self._handed, 0)
        max_pages = None if self.max_pages is None else self.max_pages - self._begun
        if max_pages is not None and max_pages < 1:
            limit, max_pages = 0, None  # every page allowed was handed out: nothing is left
        continued = dataclasses.replace(
            self,
            cursor=position.cursor,
            skip=position.skip,
            done=position.done,
            limit=limit,
            max_pages=max_pages,
        )
        continued._fetched_before = self.pages_fetched
        continued._earlier = self._walk
        return continued

    async def aclose(self) -> None:
        """End an iteration early and release what it holds, as ``contextlib.aclosing`` does.

        Leaving an ``async for`` with ``break`` leaves the generator for the garbage collector
        to finish; this finishes it now. Iterating again starts over from the configured start.
        Refused, changing nothing, while another task waits for the iteration's next item: it
        cannot be closed under its consumer, whose next call would start over.
        """
        looping = self._looping
        left = self._held if self._held is not None else looping() if looping else None
        if self._stepping or getattr(left, "ag_running", False):
            raise RuntimeError(
                "aclose() was called while another task waits for this paginator's next "
                "item: a paginator has one consumer, and its iteration cannot be closed "
                "under it (cancel that task, whose iteration then ends where position says, "
                "or close the paginator from it)"
            )
        iterator, self._iterator = self._iterator, None
        self._looping = self._held = None
        self._failed, self._stopped = False, None
        for each in (iterator, left):
            if each is not None:
                await each.aclose()
        # A loop left by ``break`` is finalized by the event loop a moment later; its
        # read-ahead task ends now.
        task, self._ahead = self._ahead, None
        if task is not None:
            await _end(task)

    async def collect(self) -> list[T]:
        """Every item in a list: convenient for small results, wrong for exports."""
        return [item async for item in self]

    async def first(self) -> T | None:
        """The first item, or ``None``; the iteration is closed before returning, not left
        to the garbage collector (which trio warns about)."""
        iterator = self._items()
        try:
            async for item in iterator:
                return item
            return None
        finally:
            await iterator.aclose()


def _forget_walk(error: BaseException) -> None:
    """Drop the locals of the frames ``error`` came up through on its way out of a walk.

    Many hold a cursor as the server sent it (the walk's steps and positions, the page
    request's query and URL), and a server may have echoed the token in it: a traceback
    printed with locals (sentry-sdk, rich, ``pytest --showlocals``) would show it. Only for
    the library's own errors and for cancellations: an error of the caller's code (a
    fetcher's; an ``item_id``'s, the cause of the :class:`PaginationError` that reports
    it when nothing of it shows the token) keeps its own frames for them to debug. Every
    frame below has returned by now (a read-ahead's task ends before its walk does);
    :func:`traceback.clear_frames` leaves alone one still running, and the traceback keeps
    its lines."""
    if isinstance(error, SentryError) or not isinstance(error, Exception):
        traceback.clear_frames(error.__traceback__)


def _shows_token(error: BaseException, redact: Callable[[str], str] | None) -> bool:
    """Whether anything a traceback or a pickle shows of ``error``, an ``item_id``'s, holds
    the token: its chain's messages and attributes, its frames' locals (the item it read,
    where a server may have echoed the token). The frame that caught it, the walk's, is
    left out: its locals go as the walk's error leaves (:func:`_forget_walk`). A chain too
    long to read, or a value whose repr fails, counts as showing it."""
    if redact is None:
        return False
    shown: list[str] = []
    start = error.__traceback__
    pending: list[tuple[BaseException, TracebackType | None]] = [
        (error, start.tb_next if start is not None else None)
    ]
    seen: set[int] = set()
    try:
        while pending:
            current, frames = pending.pop()
            if id(current) in seen:
                continue
            if len(seen) >= _CHAIN_READ:
                return True
            seen.add(id(current))
            shown += (repr(current), str(current), repr(getattr(current, "__dict__", None)))
            summary = traceback.StackSummary.extract(traceback.walk_tb(frames), capture_locals=True)
            shown += (repr(frame.locals) for frame in summary)
            linked = [current.__cause__, current.__context__, *getattr(current, "exceptions", ())]
            pending += [(link, link.__traceback__) for link in linked if link is not None]
    except Exception:  # a repr of the caller's that fails: nothing tells it is clean
        return True
    text = "\n".join(shown)
    return redact(text) != text


_CHAIN_READ = 32
"""Exceptions of an ``item_id``'s error chain read before it counts as showing the token."""


def _afresh(error: PaginationError) -> PaginationError:
    """A copy of ``error`` (its type, message and attributes) that was never raised: what a
    paginator keeps, and raises, after an iteration it ended."""
    copy = type(error).__new__(type(error))
    copy.args = error.args
    vars(copy).update(vars(error))
    return copy


def _refuse(walk: CursorWalk, more_than: int) -> NoReturn:
    """The walk's :class:`OversizedPage` for a page refused undecoded: its exact count is
    unknown, only that it is past ``more_than``."""
    try:
        walk.on_page(more_than + 1, None)
    except OversizedPage as exc:
        raise OversizedPage(
            f"{walk.stream or 'the stream'} answered more than {more_than} items where "
            f"page_size={exc.page_size} was asked for",
            stream=exc.stream,
            position=exc.position,
            page_size=exc.page_size,
            count=exc.count,
        ) from None
    raise RuntimeError(f"a page of more than {more_than} items was not refused by its walk")


_READING: dict[asyncio.Task[None], object] = {}
"""Each read-ahead task in progress, and the generator that started it, until the task
ends. A paginator's iteration left to the cyclic collector (in a reference cycle of its
caller's) then takes neither with it: a task collected while pending is reported as
destroyed, and a walk collected beside the iteration that holds it would be closed twice
at once, by its own finalizer and by that iteration's (the second close fails as "already
running"). Only the iteration is collected; closing it closes the walk, which ends the
task."""


class ReadAheads:
    """The read-ahead tasks of one client's walks, until each ends, for its ``close()``.

    A walk left by ``break`` is closed by the event loop's finalizer a pass or two after
    the loop is left: when the client's block ends right there, its close would end the
    read-ahead's request in flight as a failure (``ClientClosed``) before the walk drops
    it. :meth:`end` drops it first, as ``aclose()`` would have."""

    __slots__ = ("_live",)

    def __init__(self) -> None:
        self._live: dict[asyncio.Task[None], _Handover] = {}

    def add(self, task: asyncio.Task[None], ready: _Handover) -> None:
        self._live[task] = ready
        task.add_done_callback(self._forget)

    def _forget(self, task: asyncio.Task[None]) -> None:
        self._live.pop(task, None)

    async def end(self) -> None:
        """End, and wait for, the read-ahead of each walk on this loop whose consumer is not
        waiting for a page: its requests end as ``abandoned``, and a consumer that comes
        back gets :class:`ClientClosed`. A consumer waiting for a page is left to the
        close, whose ``ClientClosed`` ends the request it waits for."""
        loop = _running_loop()
        for task, ready in list(self._live.items()):
            if task.get_loop() is loop and not ready.awaited:
                ready.closed = True
                await _end(task)


_WALKS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, int] = weakref.WeakKeyDictionary()
"""Walks in progress on each event loop."""


class _Walking:
    """One walk in progress on its event loop (none off asyncio), until :meth:`end`."""

    __slots__ = ("_loop",)

    def __init__(self) -> None:
        loop = self._loop = _running_loop()
        if loop is not None:
            _WALKS[loop] = _WALKS.get(loop, 0) + 1

    @property
    def alone(self) -> bool:
        return self._loop is not None and _WALKS.get(self._loop) == 1

    def end(self) -> None:
        loop, self._loop = self._loop, None
        if loop is not None:
            left = _WALKS.get(loop, 1) - 1
            if left:
                _WALKS[loop] = left
            else:
                _WALKS.pop(loop, None)


def _running_loop() -> asyncio.AbstractEventLoop | None:
    """The asyncio loop running here, or ``None`` elsewhere (trio): the read-ahead's task
    and hand-over are asyncio's, so off asyncio a walk goes one page at a time."""
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


class _Handover:
    """The read-ahead task's pages, errors and end (``None``) for the consumer, in order:
    a deque and the one future the consumer waits on, for a producer that never waits
    for room here (the room is counted apart) and a single consumer."""

    __slots__ = ("_abandoning", "_items", "_loop", "_waiter", "closed")

    def __init__(self, loop: asyncio.AbstractEventLoop, abandoning: Abandoning) -> None:
        self._items: deque[_Fetched | BaseException | None] = deque()
        self._loop = loop
        self._waiter: asyncio.Future[None] | None = None
        self._abandoning = abandoning
        self.closed = False
        """The read-ahead was ended by its client's close (:meth:`ReadAheads.end`)."""

    @property
    def awaited(self) -> bool:
        """Whether the consumer is waiting for the next page right now."""
        waiter = self._waiter
        return waiter is not None and not waiter.done()

    def put(self, item: _Fetched | BaseException | None) -> None:
        self._items.append(item)
        waiter = self._waiter
        if waiter is not None:
            self._waiter = None
            if not waiter.done():
                waiter.set_result(None)

    def take_now(self) -> _Fetched | BaseException | None:
        """The next one, or ``None`` when there is none yet (an end is taken by :meth:`take`)."""
        items = self._items
        if items and items[0] is not None:
            return items.popleft()
        return None

    async def take(self) -> _Fetched | BaseException | None:
        items = self._items
        try:
            while not items:
                waiter = self._waiter = self._loop.create_future()
                await waiter
        except asyncio.CancelledError:
            # The caller cancelled its wait for a page: the requests sent for it are
            # cancelled by the caller, not dropped by the library.
            self._abandoning.on = False
            raise
        return items.popleft()


class _Room:
    """A read-ahead's budget of pages beyond the consumer's, taken without waiting where
    a request is sent from a callback.

    Not ``anyio.Semaphore``: with it, a read-ahead left by ``break`` fetched every page of
    the stream (``test_stopping_or_cancelling_leaves_no_task_behind``); its ``acquire``
    ends in a shielded checkpoint, where the plain ``task.cancel()`` that ends the
    read-ahead task can land."""

    __slots__ = ("_free", "_freed")

    def __init__(self, pages: int) -> None:
        self._free = pages
        self._freed = asyncio.Event()

    def take_now(self) -> bool:
        if self._free <= 0:
            return False
        self._free -= 1
        return True

    async def take(self) -> None:
        while not self.take_now():
            self._freed.clear()
            await self._freed.wait()

    def give(self) -> None:
        self._free += 1
        self._freed.set()


async def _drop(early: dict[str | None, asyncio.Task[RawPage]], room: _Room) -> None:
    """End the requests sent early that nobody will read, and give back their room."""
    while early:
        _, task = early.popitem()
        await _end(task)
        if not task.cancelled():
            task.exception()  # retrieved: an error of a page never asked for is nobody's
        room.give()


async def _end(task: asyncio.Task[Any]) -> None:
    """Cancel a read-ahead's task and wait until it is over, even inside a cancelled scope.

    A task already over is not waited for: at the loop's shutdown (which has ended every
    task) a walk's close then completes in one step, before the loop closes the same walk
    from its own list of async generators (a second close of a walk still closing fails
    as "already running", whichever of the two the loop happens to start first)."""
    if not task.done():
        task.cancel()
        with anyio.CancelScope(shield=True):
            await asyncio.wait({task})
    if not task.cancelled():
        # What ended it (an interruption it re-raised) was handed to the consumer already:
        # retrieved here, it is not logged again as a task's error never retrieved.
        task.exception()


def _page(step: Step, items: list[T], raw: RawPage) -> Page[T]:
    return Page(
        items,
        step.cursor,
        step.next_cursor,
        step.prev_cursor,
        raw.hits,
        raw.max_hits,
        raw.rate_limit,
        raw.meta,
        step.paginated,
        raw.direct_hit,
    )
