"""What travels from :func:`~sentry_async.fan_out`'s fetchers to its consumer, and the
:meth:`~sentry_async.fanout.FanOut.events` view of it.

:class:`StreamItem`, :class:`StreamDone` and :data:`FanOutEvent` are public as
``sentry_async.fanout.*`` (and ``sentry_async.*``); they live here to keep that module small.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar

__all__ = ["Events", "FanOutEvent", "Page", "StreamDone", "StreamItem", "Wire"]

K = TypeVar("K")
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class StreamItem(Generic[K, T]):
    """One item of stream ``key``."""

    __module__ = "sentry_async.fanout"

    key: K
    item: T


@dataclass(frozen=True, slots=True)
class StreamDone(Generic[K]):
    """Stream ``key`` ended after ``items`` items: exhausted, or failed with ``error``.

    It is delivered after every item of its stream, so when a consumer sees it, it has
    seen (and handled) all that the stream produced.
    """

    __module__ = "sentry_async.fanout"

    key: K
    items: int
    error: BaseException | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


_new = object.__new__
_set_key = vars(StreamItem)["key"].__set__
_set_item = vars(StreamItem)["item"].__set__


def stream_item(key: K, item: T) -> StreamItem[K, T]:
    """``StreamItem(key, item)`` without the frozen dataclass's ``__init__``, which sets each
    field through ``object.__setattr__``: the same object, filled straight into its slots,
    for about a third less per item of :meth:`~sentry_async.fanout.FanOut.events`."""
    event: StreamItem[K, T] = _new(StreamItem)
    _set_key(event, key)
    _set_item(event, item)
    return event


FanOutEvent = StreamItem[K, T] | StreamDone[K]
"""What :meth:`FanOut.events` yields: an item of a stream, or a stream that ended."""


@dataclass(slots=True)
class Page(Generic[K, T]):
    """A paginator's page, travelling as one message instead of one per item."""

    key: K
    items: list[T]


Wire = tuple[K, T] | Page[K, T] | StreamDone[K] | BaseException
"""What travels through the queue: a bare ``(key, item)`` tuple per item (what iteration
hands out anyway, cheaper to build than a :class:`StreamItem`), a whole page, a done
marker, or the run's failure (``errors="raise"``), behind what was merged before it."""


class _Source(Protocol[K, T]):
    """The consumer's side of a fan-out, as :class:`Events` uses it."""

    _chunk: Iterator[T]
    _page_key: Any

    async def _next(self) -> tuple[K, T] | StreamDone[K]: ...


class Events(AsyncIterator[FanOutEvent[K, T]], Generic[K, T]):
    def __init__(self, source: _Source[K, T]) -> None:
        self._source = source

    async def __anext__(self) -> FanOutEvent[K, T]:
        source = self._source
        # An item of the open page's current chunk: no coroutine call, as in FanOut.__anext__.
        for item in source._chunk:
            return stream_item(source._page_key, item)
        event = await source._next()
        if isinstance(event, StreamDone):
            return event
        return stream_item(event[0], event[1])
