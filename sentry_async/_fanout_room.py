"""Which of :func:`~sentry_async.fan_out`'s fetchers may send next.

A fetcher holding a page or an item waits here for room in the
:class:`~sentry_async._fanout_budget.Budget`. Fetchers waiting for room are served in turn,
first come first served, so no stream can starve the others; a waiting fetcher is woken
when half the budget is free again (not for every item), or at once when the consumer has
nothing to take. A consumer with nothing queued may also take what the first of them holds
(:meth:`Room.take_parked`), which saves the scheduler pass of waking it to send.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable, Generator
from typing import Any, Protocol

import anyio

from ._fanout_budget import Budget

__all__ = ["Parcel", "Room", "Signal", "Waitable", "event_type", "release"]


class Waitable(Protocol):
    """What a fetcher or the consumer waits on: an asyncio future, or :class:`Signal`."""

    def done(self) -> bool: ...
    def set_result(self, result: None, /) -> None: ...
    def __await__(self) -> Generator[Any, None, Any]: ...


class Signal:
    """anyio's event with a future's face, where the loop is not asyncio's."""

    __slots__ = ("_event",)

    def __init__(self) -> None:
        self._event = anyio.Event()

    def done(self) -> bool:
        return self._event.is_set()

    def set_result(self, result: None, /) -> None:
        self._event.set()

    def __await__(self) -> Generator[Any, None, Any]:
        return self._event.wait().__await__()


def event_type() -> Callable[[], Waitable]:
    """A bare future of the running asyncio loop: an event (asyncio's or anyio's) makes one
    per wait anyway, with a few calls around it, and a fan-out waits once or twice a page."""
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        return Signal
    return loop.create_future


def release(waiter: Waitable) -> None:
    """Let whoever waits on ``waiter`` go on; nothing if it already has (or was cancelled)."""
    if not waiter.done():
        waiter.set_result(None)


class Parcel:
    """A fetcher waiting for room, and what it holds: the consumer may take it from here."""

    __slots__ = ("event", "key", "n", "state", "wire")

    def __init__(self, key: Any, wire: Any, n: int, event: Waitable) -> None:
        self.key = key
        self.wire = wire
        self.n = n
        self.event = event
        self.state = _WAITING


_WAITING, _WOKEN, _TAKEN = range(3)


class Room:
    """The room queue of one fan-out."""

    def __init__(self, budget: Budget) -> None:
        self.budget = budget
        self.new_event: Callable[[], Waitable] = Signal
        """What a wait is made of; :func:`event_type` once the loop runs."""
        self.waiters: deque[Parcel] = deque()
        """Fetchers waiting for room, first in line first."""
        self.wake_pending = False
        """One of them was woken and has not run yet."""
        self.gated: deque[Parcel] = deque()
        """Fetchers holding a page not yet decoded, waiting for room to decode it."""
        self.gate_pending = False
        """One of them was let through and has not handed its page over yet."""
        self.consumer_waiting = False
        self._turn: object = _NO_TURN
        """The key of the stream whose turn it is to fill the budget."""

    async def hand_over(self, key: Any, wire: Any, n: int) -> bool:
        """Wait for room for ``n`` items (or for a waiting consumer): ``True`` when the
        caller is to send ``wire`` now, ``False`` when the consumer took it meanwhile.

        A fetcher that finds others waiting queues behind them even if there is room, or
        one busy stream could take every freed slot. A turn lasts as long as there is
        room, so a run of items (which arrive without the stream suspending) goes out
        without a scheduler pass each.
        """
        if (self.budget.room > 0 or self.consumer_waiting) and (
            self._turn is key or not (self.waiters or self.wake_pending)
        ):
            self.sent(key, n)
            return True
        parcel = Parcel(key, wire, n, self.new_event())
        self.waiters.append(parcel)
        self.wake()
        while True:
            try:
                await parcel.event
            except BaseException:
                if parcel.state == _WOKEN:
                    # Woken but leaving: the turn passes to the next in line.
                    self.wake_pending = False
                    self.wake()
                elif parcel.state == _WAITING:
                    self.waiters.remove(parcel)
                raise
            if parcel.state == _TAKEN:
                return False
            self.wake_pending = False
            if self.budget.room > 0 or self.consumer_waiting:
                break
            parcel.event, parcel.state = self.new_event(), _WAITING
            self.waiters.appendleft(parcel)
        self._turn = key
        self.sent(key, n)
        return True

    def may_decode(self) -> Awaitable[None] | None:
        """Before a page decodes: ``None`` when there is room for it now, else the wait,
        in line, for room (or for a waiting consumer). A page's objects are built only
        when they are about to be taken, as a single task iterating would build them."""
        if (self.budget.room > 0 or self.consumer_waiting) and not (
            self.waiters or self.wake_pending or self.gated or self.gate_pending
        ):
            return None
        return self._wait_to_decode()

    async def _wait_to_decode(self) -> None:
        parcel = Parcel(None, None, 0, self.new_event())
        self.gated.append(parcel)
        self.wake()
        try:
            await parcel.event
        except BaseException:
            if parcel.state == _WOKEN:
                self.gate_pending = False
                self.wake()
            elif parcel.state == _WAITING:
                self.gated.remove(parcel)
            raise
        try:
            # The page decodes and is handed over without a suspension; once that step is
            # over, whatever it came to (nothing, for an empty page or a body to fetch
            # again), the next in line may go.
            asyncio.get_running_loop().call_soon(self._decoded)
        except RuntimeError:
            self.gate_pending = False

    def _decoded(self) -> None:
        self.gate_pending = False
        if self.gated:
            self.wake()

    def take_parked(self) -> Any:
        """The consumer has nothing queued: it takes what the first waiting fetcher holds
        (a scheduler pass sooner than waking it to send), or ``None``."""
        if not self.waiters:
            return None
        parcel = self.waiters.popleft()
        parcel.state = _TAKEN
        release(parcel.event)
        self.sent(parcel.key, parcel.n)
        wire, parcel.wire = parcel.wire, None
        return wire

    def sent(self, key: Any, n: int) -> None:
        """Fetcher ``key`` hands ``n`` items over."""
        # One hand-over per wait of the consumer, not one per fetcher that saw it waiting.
        self.consumer_waiting = False
        self.budget.spend(n)
        if self._turn is key and self.budget.room <= 0:
            self._turn = _NO_TURN

    def wake(self) -> None:
        """Wake the first waiting fetcher if the budget is half free or the consumer waits."""
        if (
            self.waiters
            and not self.wake_pending
            and (self.consumer_waiting or self.budget.half_free)
        ):
            self.wake_pending = True
            self._turn = _NO_TURN
            parcel = self.waiters.popleft()
            parcel.state = _WOKEN
            release(parcel.event)
        elif (
            self.gated
            and not self.gate_pending
            and not self.waiters
            and (self.consumer_waiting or self.budget.half_free)
        ):
            self.gate_pending = True
            parcel = self.gated.popleft()
            parcel.state = _WOKEN
            release(parcel.event)


_NO_TURN: Any = object()
