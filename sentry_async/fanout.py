"""Many lazy streams at once, merged into one async iterator, bounded and cancellable.

:func:`fan_out` runs the streams (a project's events, one time window, an issue...) on at
most ``concurrency`` worker tasks, each taking the next stream when its last one ends, and
merges what they yield into a single iterator through a queue with a budget of ``buffer``
items in flight (:mod:`._fanout_budget`). When the consumer is slower than the fetchers
the budget runs out and the fetchers wait for room before asking for more pages: memory
stays bounded by ``buffer`` items plus one page per active stream, whatever the number of
streams. A stream's end marker takes no budget (a worker goes on to its next stream at
once), but while ``buffer`` markers wait for the consumer no worker starts another stream,
so a run of empty streams queues at most ``buffer`` markers plus one per worker.

A :class:`~sentry_async.Paginator` stream travels a page at a time (one message, its
items counted against the budget, which a page may overdraw by its own size), and the
consumer hands a page's items out from a plain loop with no bookkeeping per item, so
merging costs a tuple per item rather than a channel hand-over; any other async iterable
travels item by item. A paginator's page of typed items that finds no room waits as the
response's bytes and is decoded once there is room
(:func:`~sentry_async.pagination.decode_gate`): its objects are built when they are about
to be taken, as a task iterating alone builds them, rather than waiting where the garbage
collector walks and promotes them. Fetchers waiting for room are served in turn, first
come first served, so no stream can starve the others (:mod:`._fanout_room`).

Streams that share one :class:`~sentry_async.SentryClient` share its rate limiter, so the
fan-out never needs a limiter of its own: ``concurrency`` only bounds how many streams make
progress at once.

It is an async context manager rather than a bare async generator because structured
concurrency needs a scope that outlives the loop: leaving the ``async with`` block (normally,
by ``break``, by an exception or by cancellation) cancels every fetcher and waits for them,
so no task and no connection outlives the block.
"""

from __future__ import annotations

import asyncio
import inspect
import math
from collections import deque
from collections.abc import (
    AsyncIterable,
    AsyncIterator,
    Awaitable,
    Callable,
    Iterable,
    Iterator,
    Mapping,
)
from itertools import islice
from operator import length_hint
from types import TracebackType
from typing import Any, Generic, Literal, TypeVar

import anyio
import anyio.lowlevel
from anyio.abc import TaskGroup

from ._fanout_budget import Budget
from ._fanout_events import Events as _Events
from ._fanout_events import FanOutEvent, StreamDone, StreamItem
from ._fanout_events import Page as _Page
from ._fanout_events import Wire as _Wire
from ._fanout_room import Room, Signal, Waitable, event_type, release
from .hooks import Abandoning
from .pagination import Paginator, _Walking, decode_gate

__all__ = ["FanOut", "FanOutEvent", "StreamDone", "StreamItem", "fan_out"]

K = TypeVar("K")
T = TypeVar("T")

ErrorMode = Literal["raise", "collect"]
StreamFactory = Callable[[], AsyncIterable[T]]
"""Called once when the stream gets a slot; returns e.g. a Paginator or ``paginator.pages()``."""


class FanOut(Generic[K, T], AsyncIterator[tuple[K, T]]):
    """The merged view of many streams; create it with :func:`fan_out`.

    ``async for key, item in merged`` yields items; :meth:`events` also yields a
    :class:`StreamDone` per stream, inside the ``async with`` block only. It has one
    consumer: a task asking for an item while another waits for one gets a
    ``RuntimeError``. ``failures`` maps each failed stream's key to its
    exception; ``completed`` maps each finished stream's key to its :class:`StreamDone`,
    once the consumer has taken it (or left with nothing before it: see :func:`fan_out`).
    ``active``/``max_active`` and ``buffered``/``max_buffered`` are live counters for
    progress displays and tests.
    """

    def __init__(
        self,
        streams: Mapping[K, StreamFactory[T]] | Iterable[tuple[K, StreamFactory[T]]],
        *,
        concurrency: int = 8,
        buffer: int = 64,
        errors: ErrorMode = "raise",
        on_done: Callable[[StreamDone[K]], None] | None = None,
    ) -> None:
        if isinstance(concurrency, bool) or not isinstance(concurrency, int) or concurrency < 1:
            raise ValueError(f"concurrency must be a positive integer (got {concurrency!r})")
        if isinstance(buffer, bool) or not isinstance(buffer, int) or buffer < 0:
            raise ValueError(f"buffer must be a non-negative integer (got {buffer!r})")
        if errors not in ("raise", "collect"):
            raise ValueError(f"errors must be 'raise' or 'collect' (got {errors!r})")
        if on_done is not None and (
            inspect.iscoroutinefunction(on_done)
            or inspect.iscoroutinefunction(type(on_done).__call__)
        ):
            # Called synchronously, it would only make a coroutine nobody awaits.
            raise TypeError(
                "on_done is an async def: it is called synchronously in the consumer's task "
                "and must be plain def"
            )
        self._streams: Iterable[tuple[K, StreamFactory[T]]] = (
            streams.items() if isinstance(streams, Mapping) else streams
        )
        self.concurrency = concurrency
        self.buffer = buffer
        self.errors: ErrorMode = errors
        self._on_done = on_done
        self.failures: dict[K, BaseException] = {}
        self.completed: dict[K, StreamDone[K]] = {}
        self.active = 0
        self.max_active = 0
        self.started = 0
        self._budget = Budget(buffer)
        self._room = Room(self._budget)
        self._queue: deque[_Wire[K, T]] = deque()
        self._done_queued = 0
        """End markers in the queue: from ``buffer`` (or one) on, no worker starts a stream."""
        self._done_waiters: deque[Waitable] = deque()
        """Workers waiting for the consumer to take an end marker."""
        self._closed = False
        """No more messages will come: every fetcher has ended."""
        self._consumer: Waitable | None = None
        """Set when the consumer waits for the queue."""
        self._waiting = False
        """The consumer is in its wait for the queue, until it runs again (woken or not)."""
        self._page_key: Any = None
        self._page: Iterator[T] | None = None
        """The open page's items not yet handed out (the budget's view of the same page)."""
        self._chunk: Iterator[T] = _SPENT
        """The open page's items up to where waiting fetchers are looked at next."""
        self._error: BaseException | None = None
        """The run's failure (``errors="raise"``), queued behind what was merged before it."""
        self._error_delivered = False
        self._scope = anyio.CancelScope()
        self._task_group: TaskGroup | None = None
        self._clean_ups: set[anyio.CancelScope] = set()
        """The shields of streams' clean-ups under way (:meth:`_close`)."""
        self._cut = False
        """The caller's cancellation (or an interruption of the block) reached the
        fan-out: clean-ups are no longer shielded."""
        self._checkpoint: Callable[[], Awaitable[None]] = anyio.lowlevel.checkpoint
        """One scheduler pass: asyncio's own on its loop, without anyio's backend look-up."""
        self._entered = False
        self._inside = False
        """In the ``async with`` block: the only place the merge can be iterated."""
        self._abandoning = Abandoning()
        """Set on when the run ends early on its own account (a failure, the consumer
        leaving): the requests it cancels then are abandoned, not failed."""

    @property
    def buffered(self) -> int:
        """Items produced but not yet taken by the consumer."""
        return self._budget.buffered

    @property
    def max_buffered(self) -> int:
        return self._budget.max_buffered

    async def __aenter__(self) -> FanOut[K, T]:
        if self._entered:
            raise RuntimeError("a FanOut can be entered only once")
        self._entered = self._inside = True
        self._room.new_event = event_type()
        if self._room.new_event is not Signal:
            self._checkpoint = _asyncio_checkpoint
        self._task_group = anyio.create_task_group()
        await self._task_group.__aenter__()
        ended = anyio.Event()
        self._task_group.start_soon(self._guard_clean_ups, ended)
        self._task_group.start_soon(self._supervise, ended)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool:
        assert self._task_group is not None
        # A stream's own CancelledError raised to the consumer is that stream's failure,
        # not a cancellation of the block.
        cancelled = (
            exc is not None
            and isinstance(exc, anyio.get_cancelled_exc_class())
            and exc is not self._error
        )
        if _interrupts(exc):
            # Ctrl-C (``KeyboardInterrupt`` on trio, where it is no cancellation),
            # ``SystemExit``: as the caller's cancellation, it cuts clean-ups short.
            self._cut_clean_ups()
        elif not cancelled:
            # The consumer left (a break, an exception): requests in flight are dropped by
            # the library, not cancelled by the caller.
            self._abandoning.on = True
        # Whatever ended the block, no fetcher may outlive it.
        self._scope.cancel()
        try:
            await self._exit_task_group(cancelled, exc_type, exc, tb)
        finally:
            interruption = self._error
            if (
                interruption is not None
                and not self._error_delivered
                and _interrupts(interruption)
            ):
                # A stream's ``SystemExit`` or ``KeyboardInterrupt`` the consumer never
                # got ends the run whatever ended the block (an exception, a cancellation:
                # its context, unless it has one of its own): ``sys.exit(3)`` in a stream
                # still exits with 3.
                self._error_delivered = True
                if exc is not None and exc is not interruption and interruption.__context__ is None:
                    interruption.__context__ = exc
                raise interruption
        if exc is None and self._error is not None and not self._error_delivered:
            # A failure the consumer never got to see is not swallowed.
            raise self._error
        return False

    async def _exit_task_group(
        self,
        cancelled: bool,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Wait for every fetcher; then take the end markers the consumer reached (the
        block left normally or by ``break``) and drop what is left in the queue."""
        assert self._task_group is not None
        try:
            # Only a cancellation goes to the task group (it must see it to unwind the
            # scopes); any other exception of the block propagates as itself instead of
            # being wrapped in an ExceptionGroup. The children never raise.
            if cancelled:
                await self._task_group.__aexit__(exc_type, exc, tb)
            elif exc is not None:
                try:
                    await self._task_group.__aexit__(None, None, None)
                except anyio.get_cancelled_exc_class():
                    # An outer deadline fired while the (already cancelled) fetchers finished
                    # their clean-up; the task group still waited for all of them. The
                    # block's own exception is what the caller must see, as a task group
                    # would report it, not the cancellation.
                    pass
            else:
                await self._task_group.__aexit__(None, None, None)
        finally:
            self._closed = True
            self._inside = False
            try:
                if exc is None:
                    # Left normally or by ``break``: the last item taken was handled. After
                    # an exception or a cancellation it may not have been.
                    self._finish_taken()
            finally:
                self._queue.clear()
                # The open page's items are left over from cancelled streams, not theirs
                # to hand out after the block.
                self._page = None
                self._chunk = _SPENT
                self._budget.close_page()

    async def _guard_clean_ups(self, ended: anyio.Event) -> None:
        """Wait, beside the workers but outside the fan-out's own scope, until they have
        ``ended``: only the caller's cancellation (a deadline or cancel scope around the
        block, the block's task cancelled) stops the wait. From then on no stream's clean-up
        is shielded, so the block ends as promptly as a generator closed alone would, not
        when a stalled clean-up gives up."""
        try:
            await ended.wait()
        except anyio.get_cancelled_exc_class():
            self._cut_clean_ups()
            raise

    def _cut_clean_ups(self) -> None:
        """The caller's cancellation (or an interruption of the block): no clean-up is
        shielded any longer."""
        self._cut = True
        for clean_up in self._clean_ups:
            clean_up.cancel()

    async def _supervise(self, ended: anyio.Event) -> None:
        """Start up to ``concurrency`` workers; each runs streams one after another, taking
        the next from ``streams`` when its last one ends, so a stream costs no task start."""
        self._abandoning.enter()
        with self._scope:
            # Counted as a walk until every worker has started: a first stream whose first
            # page comes back before the others start does not read ahead as one alone.
            starting = _Walking()
            try:
                try:
                    streams = iter(self._streams)
                except Exception as exc:
                    # As a failing ``next()``: raised to the consumer as itself.
                    self._fail(exc)
                    return
                async with anyio.create_task_group() as group:
                    for _ in range(self.concurrency):
                        pair = self._next_stream(streams)
                        if pair is None:
                            break
                        group.start_soon(self._work, pair, streams)
                        # One start per scheduler pass: the first streams are under way
                        # (and their pages taken) before the last ones fetch theirs.
                        await self._checkpoint()
                    starting.end()
            finally:
                starting.end()
                self._closed = True
                self._wake_consumer()
                ended.set()

    def _next_stream(
        self, streams: Iterator[tuple[K, StreamFactory[T]]]
    ) -> tuple[K, StreamFactory[T]] | None:
        if self._scope.cancel_called:
            return None
        try:
            key, factory = next(streams)
        except StopIteration:
            return None
        except Exception as exc:
            # The streams iterable itself failed: nothing sensible to go on with.
            self._fail(exc)
            return None
        return key, factory

    async def _work(
        self, pair: tuple[K, StreamFactory[T]], streams: Iterator[tuple[K, StreamFactory[T]]]
    ) -> None:
        next_pair = None if self._scope.cancel_called else pair
        limit = max(self.buffer, 1)
        while next_pair is not None:
            if not await self._run_stream(*next_pair):
                # A scheduler pass after a stream with nothing in it, so that a run of
                # empty ones cannot hog the loop (items spend the budget, and a fetcher
                # with none left waits).
                await self._checkpoint()
            while self._done_queued >= limit:
                # End markers take no budget; unchecked, a paused consumer would let a
                # run of empty streams queue one each.
                waiting = self._room.new_event()
                self._done_waiters.append(waiting)
                await waiting
            next_pair = self._next_stream(streams)

    def _fail(self, error: BaseException) -> None:
        """The run's first failure: every stream stops, and the consumer gets it once it
        has taken what was merged before it (the failing stream's items first: a
        paginator's ``error.position`` is then where to resume)."""
        if self._error is None:
            self._error = error
            self._queue.append(error)
        self._abandoning.on = True
        self._scope.cancel()
        self._wake_consumer()

    def _interrupt(self, interruption: BaseException) -> None:
        """A stream raised something that ends the whole run (``SystemExit``, say): the
        consumer gets it at its next step, before anything still queued, and every stream
        stops."""
        self._error, self._error_delivered = interruption, False
        self._queue.appendleft(interruption)
        self._abandoning.on = True
        self._scope.cancel()
        self._wake_consumer()

    async def _run_stream(self, key: K, factory: StreamFactory[T]) -> int:
        """Run one stream to its end; the number of items it handed over."""
        self.active += 1
        self.started += 1
        self.max_active = max(self.max_active, self.active)
        count = 0
        error: BaseException | None = None
        interruption: BaseException | None = None
        try:
            iterator: AsyncIterator[Any] | None = None
            gated: object = None
            try:
                stream = factory()
                if isinstance(stream, Paginator):
                    # The paginator's own default: one page at a time while other walks
                    # are under way, reading ahead once it walks alone (the last stream of
                    # a sweep, or every stream with ``concurrency=1``).
                    iterator = stream.pages()
                    gated = stream._fetch
                    decode_gate(gated, self._room.may_decode)
                    async for page in iterator:
                        items = page.items
                        # Only the message holds the page now: once the consumer has
                        # taken it, it is freed, not kept while the next one is fetched.
                        del page
                        if items:
                            count += len(items)
                            await self._put(_Page(key, items), len(items), key)
                        del items
                else:
                    iterator = aiter(stream)
                    while True:
                        try:
                            item = await anext(iterator)
                        except StopAsyncIteration:
                            break
                        count += 1
                        await self._put((key, item), 1, key)
                        # Not kept while the stream fetches its next item (a page, from
                        # ``pages()``): the next one would decode into cold memory.
                        del item
            except BaseException as exc:
                if _failure(exc):
                    error = exc
                elif isinstance(exc, anyio.get_cancelled_exc_class()):
                    raise
                else:
                    # ``SystemExit``, ``KeyboardInterrupt``: the run's end whatever ``errors``
                    # says, raised as itself rather than from the task groups, which would
                    # wrap it in an ``ExceptionGroup`` nested in another.
                    interruption = exc
            finally:
                if gated is not None:
                    decode_gate(gated, None)
                try:
                    await self._close(iterator)
                except BaseException as exc:
                    if not _failure(exc):
                        raise
                    # The stream failed while being closed: its error, like any other.
                    self.failures.setdefault(key, exc)
                    if error is None:
                        error = exc
            if interruption is not None:
                self._interrupt(interruption)
                return count
            if error is not None:
                self.failures[key] = error
                if self.errors == "raise":
                    self._fail(error)
                    return count
            self._queue.append(StreamDone(key, count, error))
            self._done_queued += 1
            self._wake_consumer()
            return count
        finally:
            self.active -= 1

    async def _close(self, iterator: AsyncIterator[Any] | None) -> None:
        """Close an async generator now, not whenever the loop gets to finalise it; one that
        ran to its end has nothing left to close. Its clean-up, run from its ``yield``, is
        shielded from the fan-out's own cancellation (a failure, the consumer leaving),
        which must not cut a stream's ``finally`` short, but not from the caller's
        (:meth:`_guard_clean_ups`, or an interruption of the block). A stream stopped while
        it awaits unwinds where it waits instead, in the fan-out's cancelled scope."""
        aclose = getattr(iterator, "aclose", None)
        if aclose is None or getattr(iterator, "ag_frame", True) is None:
            return
        if self._cut:
            await aclose()
            return
        with anyio.CancelScope(shield=True) as clean_up:
            self._clean_ups.add(clean_up)
            try:
                await aclose()
            finally:
                self._clean_ups.discard(clean_up)
        if clean_up.cancel_called:
            # Cut short by the caller's cancellation, which the shield's scope caught: the
            # worker goes on as cancelled.
            await anyio.lowlevel.checkpoint()

    def _wake_consumer(self) -> None:
        consumer = self._consumer
        if consumer is not None:
            self._consumer = None
            release(consumer)

    async def _put(self, wire: _Wire[K, T], n: int, key: K) -> None:
        """Wait for room in the item budget (or for a waiting consumer), then send at once,
        unless the consumer took ``wire`` from the waiting fetcher itself."""
        if await self._room.hand_over(key, wire, n):
            self._queue.append(wire)
            self._wake_consumer()

    async def _next(self) -> tuple[K, T] | StreamDone[K]:
        """The next item or done marker, once the current chunk of the open page is used
        up: the page's next chunk (waiting fetchers looked at first), or the next message."""
        if not self._inside:
            if self._entered:
                raise RuntimeError(
                    "the FanOut's 'async with' block has exited and its streams were "
                    "stopped: iterate it inside the block"
                )
            raise RuntimeError("use the FanOut inside 'async with fan_out(...) as merged'")
        budget, room = self._budget, self._room
        page = self._page
        if page is not None:
            left = length_hint(page)
            if left:
                if room.waiters or room.gated:
                    room.wake()
                return self._page_key, self._next_chunk(page, left)
            self._page = None
            budget.close_page()
            if room.waiters or room.gated:
                room.wake()
        queue = self._queue
        while True:
            if queue:
                wire = queue.popleft()
            elif room.waiters:
                wire = room.take_parked()
            elif self._closed:
                raise StopAsyncIteration
            else:
                if self._waiting:
                    # One waiter is all the merge wakes; a second would wait for ever.
                    raise RuntimeError(
                        "another task is already waiting for this FanOut's next item: a "
                        "FanOut has one consumer (hand its items on to other tasks, e.g. "
                        "through anyio.create_memory_object_stream)"
                    )
                # Nothing queued: let fetchers hand over even without room (buffer=0).
                self._waiting = room.consumer_waiting = True
                room.wake()
                waiting = self._consumer = room.new_event()
                try:
                    await waiting
                finally:
                    self._waiting = room.consumer_waiting = False
                    if self._consumer is waiting:
                        self._consumer = None
                continue
            if type(wire) is tuple:
                budget.take(1)
                if room.waiters or room.gated:
                    room.wake()
                return wire
            if isinstance(wire, _Page):
                left = len(wire.items)
                if not left:
                    continue
                page = self._page = budget.open_page(wire.items)
                self._page_key = wire.key
                return wire.key, self._next_chunk(page, left)
            if isinstance(wire, BaseException):
                # The run's failure: it stays at the head, raised again at every later step.
                queue.appendleft(wire)
                self._error_delivered = True
                raise wire
            assert isinstance(wire, StreamDone)
            self._done_queued -= 1
            if self._done_waiters and self._done_queued < max(self.buffer, 1):
                # Every waiting worker looks again: one woken per marker could be lost to
                # a worker that finds the markers back at the limit and waits once more.
                for waiting in self._done_waiters:
                    release(waiting)
                self._done_waiters.clear()
            self._finished(wire)
            return wire

    def _finished(self, done: StreamDone[K]) -> None:
        """The consumer has taken ``done``: its stream is complete, as far as it knows."""
        self.completed[done.key] = done
        if self._on_done is not None:
            returned: object = self._on_done(done)
            if inspect.iscoroutine(returned):
                # A plain function handing back a coroutine (``lambda d: save(d)``): nobody
                # would run it, and what it saves would silently never be saved. A task or
                # a future it returns runs on its own: fire and forget.
                returned.close()
                raise TypeError(
                    "on_done returned a coroutine, which nothing would run (it was closed): "
                    "on_done is called synchronously in the consumer's task; do the work "
                    "there, or start it as a task (asyncio.create_task) and return that"
                )

    def _finish_taken(self) -> None:
        """As the block exits normally or by ``break``, take the end markers at the head of
        the queue: nothing is left to hand out before them (the open page is used up), so
        the consumer took and handled each stream's last item before it left, and its next
        step would have taken them."""
        page = self._page
        if page is not None and length_hint(page):
            return
        queue = self._queue
        while queue:
            done = queue[0]
            if not isinstance(done, StreamDone):
                return
            queue.popleft()
            self._done_queued -= 1
            self._finished(done)

    def _next_chunk(self, page: Iterator[T], left: int) -> T:
        """The first item of the open page's next chunk: up to :meth:`Budget.step` items,
        handed out before waiting fetchers are looked at again."""
        step = self._budget.step()
        chunk = self._chunk = page if step >= left else islice(page, step)
        return next(chunk)

    async def __anext__(self) -> tuple[K, T]:
        """What ``async for`` runs: an item of the open page's current chunk costs a loop
        step and a tuple (a coroutine's return, cheaper than an async generator's yield of
        a tuple); waiting fetchers are looked at between chunks, every
        :meth:`Budget.step` items."""
        for item in self._chunk:
            return self._page_key, item
        while True:
            event = await self._next()
            if not isinstance(event, StreamDone):
                return event

    def events(self) -> AsyncIterator[FanOutEvent[K, T]]:
        """Items and per-stream completion markers, in delivery order."""
        return _Events(self)


def _failure(error: BaseException) -> bool:
    """Whether ``error`` ends its stream as a failure rather than the worker's task.

    Any ``Exception``, and a cancellation exception while no cancel scope around the worker
    (the fan-out's own, the caller's, a task group's) is cancelled: that one the stream
    raised itself (it awaited a future or a task that its owner cancelled), and would
    otherwise end the worker unseen, with the streams it had yet to run.
    """
    if isinstance(error, Exception):
        return True
    return (
        isinstance(error, anyio.get_cancelled_exc_class())
        and anyio.current_effective_deadline() != -math.inf
    )


def _interrupts(error: BaseException | None) -> bool:
    """Whether ``error`` is an interruption of the run (``KeyboardInterrupt``,
    ``SystemExit``): neither an ``Exception``, nor a cancellation, nor a generator's
    ``aclose()`` (a consumer leaving, as by ``break``)."""
    return (
        error is not None
        and not isinstance(error, (Exception, GeneratorExit))
        and not isinstance(error, anyio.get_cancelled_exc_class())
    )


def _asyncio_checkpoint() -> Awaitable[None]:
    return asyncio.sleep(0)


_SPENT: Iterator[Any] = iter(())
"""An iterator with nothing left: the chunk when no page is open."""


def fan_out(
    streams: Mapping[K, StreamFactory[T]] | Iterable[tuple[K, StreamFactory[T]]],
    *,
    concurrency: int = 8,
    buffer: int = 64,
    errors: ErrorMode = "raise",
    on_done: Callable[[StreamDone[K]], None] | None = None,
) -> FanOut[K, T]:
    """Run ``streams`` (key -> factory) concurrently and merge their items, with backpressure.

    ``async with fan_out({...}, concurrency=8) as merged: async for key, item in merged``.
    Factories are called lazily when their stream gets one of the ``concurrency`` slots;
    ``streams`` may be a lazy iterable of ``(key, factory)`` pairs.

    ``errors="raise"``: the first stream failure stops every stream and is raised to the
    consumer *unwrapped* (the original exception, not an ExceptionGroup) once it has taken
    what was merged before the failure, the failing stream's own items included (so a
    paginator's ``error.position`` is where to resume it), or when the block exits;
    ``merged.failures`` holds it with its key. ``errors="collect"``: a failed stream is
    recorded in ``merged.failures`` (and in its :class:`StreamDone`) and the others go on.
    A ``streams`` iterable that fails (its ``iter()`` or ``next()``) is raised the same way
    in both modes.

    ``on_done`` (a plain function: an ``async def`` is a ``TypeError``, and so is a
    coroutine it returns; a task or a future it returns runs on its own) is called in the
    consumer's task with a stream's :class:`StreamDone` when the consumer takes it: at its
    next step after the stream's last item, or, when it leaves the block normally or by
    ``break`` before that step, as the block exits, for each stream that had ended with
    every item merged before its end taken (the markers at the head of the queue). A stream
    ended with items left untaken before its end, or not ended, gets no call, and neither
    does one whose marker was still queued when an exception or a cancellation ended the
    block (the last item taken may not have been handled). ``merged.completed`` holds the
    same markers.

    Stopping the streams (a failure, the consumer leaving) closes a stream waiting at its
    ``yield`` in a shielded scope, its clean-up run to its end; one stopped while it
    awaits, or already in its own ``finally``, is cancelled at every await of its
    ``finally``, as in any cancelled scope (a clean-up that must await shields itself,
    bounded by a timeout). The caller's own cancellation, or a ``KeyboardInterrupt`` or
    ``SystemExit`` in the block, cuts the shielded closes short too. A stream's
    ``SystemExit`` or ``KeyboardInterrupt`` ends the run as itself, raised at the
    consumer's next step or as the block exits, whatever else ended the block.
    """
    return FanOut(streams, concurrency=concurrency, buffer=buffer, errors=errors, on_done=on_done)


def __getattr__(name: str) -> Any:
    """``fanout.Event`` was renamed ``FanOutEvent`` (it clashed with ``models.Event``)."""
    if name == "Event":
        import warnings

        warnings.warn(
            "sentry_async.fanout.Event was renamed FanOutEvent", DeprecationWarning, stacklevel=2
        )
        return FanOutEvent
    raise AttributeError(f"module 'sentry_async.fanout' has no attribute {name!r}")
