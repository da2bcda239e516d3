"""Many lazy streams at once, merged into one async iterator, bounded and cancellable.

:func:`fan_out` runs one task per stream (a project's events, one time window, an issue...)
with at most ``concurrency`` streams active at a time, and merges what they yield into a
single iterator through a memory object stream of ``buffer`` slots. When the consumer is
slower than the fetchers the buffer fills, the fetchers block on ``send`` and stop asking
for pages: memory stays bounded by ``buffer`` items plus one item (and one page) per active
stream, whatever the number of streams.

Streams that share one :class:`~sentry_async.SentryClient` share its rate limiter, so the
fan-out never needs a limiter of its own: ``concurrency`` only bounds how many streams make
progress at once.

It is an async context manager rather than a bare async generator because structured
concurrency needs a scope that outlives the loop: leaving the ``async with`` block (normally,
by ``break``, by an exception or by cancellation) cancels every fetcher and waits for them,
so no task and no connection outlives the block.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator, Callable, Iterable, Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Generic, Literal, TypeVar

import anyio
from anyio.abc import TaskGroup
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

__all__ = ["FanOut", "StreamDone", "StreamItem", "fan_out"]

K = TypeVar("K")
T = TypeVar("T")

ErrorMode = Literal["raise", "collect"]
StreamFactory = Callable[[], AsyncIterable[T]]
"""Called once when the stream gets a slot; returns e.g. a Paginator or ``paginator.pages()``."""


@dataclass(frozen=True, slots=True)
class StreamItem(Generic[K, T]):
    """One item of stream ``key``."""

    key: K
    item: T


@dataclass(frozen=True, slots=True)
class StreamDone(Generic[K]):
    """Stream ``key`` ended after ``items`` items: exhausted, or failed with ``error``.

    It is delivered after every item of its stream, so when a consumer sees it, it has
    seen (and handled) all that the stream produced.
    """

    key: K
    items: int
    error: BaseException | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


Event = StreamItem[K, T] | StreamDone[K]


class FanOut(Generic[K, T], AsyncIterator[tuple[K, T]]):
    """The merged view of many streams; create it with :func:`fan_out`.

    ``async for key, item in merged`` yields items; :meth:`events` also yields a
    :class:`StreamDone` per stream. ``failures`` maps each failed stream's key to its
    exception; ``completed`` maps each finished stream's key to its :class:`StreamDone`.
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
        self.max_buffered = 0
        self._sent = 0
        self._taken = 0
        self._error: BaseException | None = None
        self._scope = anyio.CancelScope()
        self._task_group: TaskGroup | None = None
        self._send: MemoryObjectSendStream[Event[K, T]] | None = None
        self._receive: MemoryObjectReceiveStream[Event[K, T]] | None = None
        self._entered = False

    @property
    def buffered(self) -> int:
        """Items (and done markers) produced but not yet taken by the consumer."""
        if self._receive is None:
            return 0
        return self._receive.statistics().current_buffer_used

    async def __aenter__(self) -> FanOut[K, T]:
        if self._entered:
            raise RuntimeError("a FanOut can be entered only once")
        self._entered = True
        self._send, self._receive = anyio.create_memory_object_stream[Event[K, T]](self.buffer)
        self._task_group = anyio.create_task_group()
        await self._task_group.__aenter__()
        self._task_group.start_soon(self._supervise, self._send)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool:
        # Whatever ended the block, no fetcher may outlive it.
        self._scope.cancel()
        assert self._task_group is not None and self._receive is not None
        cancelled = exc is not None and isinstance(exc, anyio.get_cancelled_exc_class())
        try:
            # Only a cancellation goes to the task group (it must see it to unwind the
            # scopes); any other exception of the block propagates as itself instead of
            # being wrapped in an ExceptionGroup. The children never raise.
            if cancelled:
                await self._task_group.__aexit__(exc_type, exc, tb)
            else:
                await self._task_group.__aexit__(None, None, None)
        finally:
            self._receive.close()
        if exc is None and self._error is not None:
            # A failure the consumer never got to see is not swallowed.
            raise self._error
        return False

    async def _supervise(self, send: MemoryObjectSendStream[Event[K, T]]) -> None:
        """Start streams one slot at a time, so only ``concurrency`` tasks ever exist."""
        slots = anyio.Semaphore(self.concurrency)
        async with send:
            with self._scope:
                try:
                    async with anyio.create_task_group() as group:
                        for key, factory in self._streams:
                            await slots.acquire()
                            group.start_soon(self._run_stream, key, factory, send.clone(), slots)
                except Exception as exc:
                    # The streams iterable itself failed: nothing sensible to go on with.
                    if self._error is None:
                        self._error = exc

    async def _run_stream(
        self,
        key: K,
        factory: StreamFactory[T],
        send: MemoryObjectSendStream[Event[K, T]],
        slots: anyio.Semaphore,
    ) -> None:
        self.active += 1
        self.started += 1
        self.max_active = max(self.max_active, self.active)
        count = 0
        error: Exception | None = None
        try:
            async with send:
                iterator: AsyncIterator[T] | None = None
                try:
                    iterator = aiter(factory())
                    while True:
                        try:
                            item = await anext(iterator)
                        except StopAsyncIteration:
                            break
                        count += 1
                        await _send(send, StreamItem(key, item))
                        self._note_buffer()
                except Exception as exc:
                    error = exc
                finally:
                    await _close(iterator)
                if error is not None:
                    self.failures[key] = error
                    if self.errors == "raise":
                        if self._error is None:
                            self._error = error
                        self._scope.cancel()
                        return
                await send.send(StreamDone(key, count, error))
                self._note_buffer()
        finally:
            self.active -= 1
            slots.release()

    def _note_buffer(self) -> None:
        # Sent minus taken bounds the buffer from above (an item handed straight to a
        # waiting consumer counts until it resumes), so the exact, costlier count is only
        # taken when the bound passes the maximum seen so far.
        self._sent += 1
        if self._sent - self._taken > self.max_buffered:
            self.max_buffered = max(self.max_buffered, self.buffered)

    async def _next_event(self) -> Event[K, T]:
        if self._receive is None:
            raise RuntimeError("use the FanOut inside 'async with fan_out(...) as merged'")
        if self._error is not None:
            raise self._error
        try:
            try:
                event = self._receive.receive_nowait()
            except anyio.WouldBlock:
                event = await self._receive.receive()
        except (anyio.EndOfStream, anyio.ClosedResourceError):
            if self._error is not None:
                raise self._error from None
            raise StopAsyncIteration from None
        self._taken += 1
        if isinstance(event, StreamDone):
            self.completed[event.key] = event
            if self._on_done is not None:
                self._on_done(event)
        return event

    async def __anext__(self) -> tuple[K, T]:
        while True:
            event = await self._next_event()
            if isinstance(event, StreamItem):
                return event.key, event.item

    def events(self) -> AsyncIterator[Event[K, T]]:
        """Items and per-stream completion markers, in delivery order."""
        return _Events(self)


class _Events(AsyncIterator[Event[K, T]], Generic[K, T]):
    def __init__(self, owner: FanOut[K, T]) -> None:
        self._owner = owner

    async def __anext__(self) -> Event[K, T]:
        return await self._owner._next_event()


async def _send(send: MemoryObjectSendStream[Event[K, T]], event: Event[K, T]) -> None:
    """Send without an event-loop round trip while the buffer has room.

    A page's items arrive without the paginator suspending, so a checkpoint per item would
    only cost two scheduler passes each; the fetcher still blocks (and yields) once the
    buffer is full, and its next page fetch is a checkpoint of its own.
    """
    try:
        send.send_nowait(event)
    except anyio.WouldBlock:
        await send.send(event)


async def _close(iterator: AsyncIterator[Any] | None) -> None:
    """Close an async generator now (shielded), not whenever the loop gets to finalise it."""
    aclose = getattr(iterator, "aclose", None)
    if aclose is not None:
        with anyio.CancelScope(shield=True):
            await aclose()


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

    ``errors="raise"``: the first stream failure cancels every other stream and is raised
    to the consumer *unwrapped* (the original exception, not an ExceptionGroup) at its next
    step of iteration, or when the block exits; ``merged.failures`` holds it with its key.
    ``errors="collect"``: a failed stream is recorded in ``merged.failures`` (and in its
    :class:`StreamDone`) and the others go on.

    ``on_done`` is called in the consumer's task when a stream's :class:`StreamDone` is
    dequeued, i.e. after the consumer has taken every item of that stream.
    """
    return FanOut(streams, concurrency=concurrency, buffer=buffer, errors=errors, on_done=on_done)
