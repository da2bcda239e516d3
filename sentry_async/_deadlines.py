"""Every in-flight attempt's time bounds on one timer.

aiohttp enforces ``total`` with a timer for each request, and ``sock_read`` with one it
re-arms whenever bytes arrive: three timer handles a page, created, heap-sorted and
cancelled, which cost the client about as much CPU as its rate limiter and retry loop
together. Here an attempt is an entry in a dict. One timer wakes at the earliest bound (and,
while attempts are in flight, every quarter of ``read``, to see whose body has grown since);
an attempt out of time has its task cancelled, and turns that cancellation into a timeout as
:func:`asyncio.timeout` does. Python 3.10 has no ``Task.uncancel``, so there aiohttp's own
timers keep serving (:data:`SHARED_DEADLINES`), but for a download's ``total`` until its
body begins, which aiohttp would hold to the end of the body.
"""

from __future__ import annotations

import asyncio
import math
import sys
from collections.abc import Callable
from typing import Any, Protocol, cast

__all__ = ["SHARED_DEADLINES", "Deadlines", "Watch"]

SHARED_DEADLINES = sys.version_info >= (3, 11)

_EARLY = 0.001
"""Seconds before a bound at which it counts as reached (a timer may fire that early)."""


class _Task(Protocol):
    def cancel(self, msg: Any | None = None) -> bool: ...

    def cancelling(self) -> int: ...

    def uncancel(self) -> int: ...


class _Growing(Protocol):
    """What a body's progress is read from: aiohttp's ``StreamReader`` counts what arrived."""

    total_bytes: int


class Watch:
    """One attempt's bounds: a fixed deadline, and a quiet spell no longer than ``read``."""

    __slots__ = (
        "bounded",
        "cancelling",
        "connecting",
        "deadline",
        "expired",
        "owner",
        "quiet_since",
        "seen",
        "stream",
        "task",
    )

    def __init__(self, owner: Deadlines, task: _Task, deadline: float, now: float) -> None:
        self.owner = owner
        self.bounded = True
        """False: only tracked, so that :meth:`Deadlines.end_all` reaches it too (a
        download's body, which goes at its sink's pace under aiohttp's own read bound)."""
        self.task = task
        cancelling = getattr(task, "cancelling", None)  # Python 3.11 and later
        self.cancelling: int = cancelling() if cancelling is not None else 0
        self.deadline = deadline
        self.quiet_since: float | None = now
        """When the server last sent something or was last asked to; ``None`` while the
        request waits for a connection."""
        self.stream: _Growing | None = None
        """The response body once its headers are in; until then nothing counts as progress."""
        self.connecting: Callable[[], bool] | None = None
        """Whether the request is still waiting for a connection (see :meth:`begin`)."""
        self.seen = 0
        self.expired: str | None = None
        """Why the attempt ran out of time, once it has."""

    def finish(self) -> bool:
        """:meth:`Deadlines.finish` of this watch."""
        return self.owner.finish(self)

    def begin(self, connecting: Callable[[], bool]) -> None:
        """A new exchange of the attempt (its first, a redirect's, a resend): until its
        response begins, each look asks ``connecting`` whether the request still waits for
        a connection (a pooled one, a handshake, a proxy's tunnel), which ``pool`` and
        ``connect`` bound; the read clock starts over at the first look that finds it has
        one, so no such wait counts as a silence of the server."""
        self.connecting = connecting
        self.stream = None


class Deadlines:
    """The bounds of one transport's attempts (``None`` turns a bound off), and the
    attempts in flight, which :meth:`end_all` ends when the client is closed."""

    def __init__(self, *, read: float | None, total: float | None) -> None:
        self._read = read
        self._total = math.inf if total is None else total
        self._every = math.inf if read is None else read / 4
        self._watching: dict[Watch, None] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._timer: asyncio.TimerHandle | None = None

    @property
    def active(self) -> bool:
        return self._read is not None or self._total != math.inf

    def start(self) -> Watch:
        """Watch the current task's attempt from now; :meth:`finish` it on the way out."""
        loop = asyncio.get_running_loop()
        if loop is not self._loop:  # a timer of a loop that has ended will never fire
            self._loop, self._timer = loop, None
        now = loop.time()
        task = cast(_Task, asyncio.current_task())
        watch = Watch(self, task, now + self._total, now)
        self._watching[watch] = None
        # A pending wake is never later than this attempt's first look: every attempt has
        # the same bounds, and one still in flight wakes the timer by then at the latest.
        # The first look comes after a quarter of ``read``, as every later one: a request
        # still waiting for its connection is found before its read bound is spent.
        if self._timer is None:
            first = min(watch.deadline, now + self._every)
            if first != math.inf:
                self._arm(first)
        return watch

    def finish(self, watch: Watch) -> bool:
        """Stop watching ``watch`` (again is harmless). True when its expiry is what
        cancelled the task and nothing else asked to cancel it: the caller then raises a
        timeout instead of the :class:`asyncio.CancelledError`."""
        if self._watching.pop(watch, False) is False:
            return False
        if watch.expired is None:
            return False
        # Python 3.10 counts no cancellations: the expiry is taken for the one that came,
        # as aiohttp's own timers take theirs (only a download's ``total`` is watched there).
        uncancel = getattr(watch.task, "uncancel", None)
        return uncancel is None or uncancel() <= watch.cancelling

    def end_all(self, reason: str) -> None:
        """End every attempt in flight now, the client being closed: each task is cancelled
        as at a timeout, with ``reason`` as its expiry. An ended loop's attempts are
        already over (its tasks ran to the end before it closed)."""
        loop = self._loop
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if loop is None or loop.is_closed():
            self._watching.clear()
            return
        current: object = asyncio.current_task()
        for watch in list(self._watching):
            if watch.expired is None and watch.task is not current:
                watch.expired = reason
                watch.task.cancel()

    def _arm(self, when: float) -> None:
        assert self._loop is not None
        self._timer = self._loop.call_at(when, self._check)

    def _check(self) -> None:
        assert self._loop is not None
        self._timer = None
        now = self._loop.time()
        wake = math.inf
        read = self._read
        for watch in self._watching:
            if watch.expired is not None or not watch.bounded:
                continue
            stream = watch.stream
            connecting = watch.connecting
            if stream is None and connecting is not None and read is not None:
                if connecting():
                    watch.quiet_since = None  # the server has not been asked yet
                elif watch.quiet_since is None:
                    watch.quiet_since = now  # it got its connection since the last look
            quiet_until = math.inf
            if watch.quiet_since is not None:
                if stream is not None and stream.total_bytes != watch.seen:
                    watch.seen = stream.total_bytes
                    watch.quiet_since = now
                if read is not None:
                    quiet_until = watch.quiet_since + read
            due = min(watch.deadline, quiet_until)
            if due - now > _EARLY:
                wake = min(wake, due, now + self._every)
                continue
            if quiet_until <= watch.deadline:
                watch.expired = f"nothing arrived for {read:g}s (Timeouts.read)"
            else:
                watch.expired = f"no complete response within {self._total:g}s (Timeouts.total)"
            watch.task.cancel()
        if wake != math.inf:
            self._arm(wake)
