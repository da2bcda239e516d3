"""One rate limiter per client, shared by every task that uses the client.

Per group it keeps the state below. A group is Sentry's counter: one per method for every
endpoint without limits of its own (``"GET default"``), one per endpoint and method for the
few that declare theirs (:func:`~sentry_async._protocol.hosts.rate_limit_group`); callers
name the endpoint group (``"GET /organizations/{org}/projects/"``) and the limiter finds
its counter:

* a token bucket, seeded from configuration and re-shaped by ``X-Sentry-Rate-Limit-Limit``;
* a mirror of the server's fixed window (``-Remaining`` and ``-Reset``), so no task sends
  into a window the server has already closed;
* a block set by a 429 (``Retry-After`` or the reset), which every task waits out;
* an in-flight cap, lowered to ``-ConcurrentLimit`` when the server announces one, and to
  the slots ``-ConcurrentRemaining`` leaves the client when other users of the token (its
  web UI, another process) hold some; never below one, and raised again as answers report
  slots free.

Every wait the server announces is enforced for at most ``max_wait`` seconds (a ``Reset``
a year away, or in epoch milliseconds, must not stall the client for good); while a longer
one is in force, :meth:`RateLimiter.pause_for` reports what was announced, so callers can
fail at once instead of waiting.

It is written on anyio primitives and is safe because nothing awaits between checking the
state and taking a token.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from types import TracebackType

import anyio

from ._protocol.hosts import rate_limit_group
from ._protocol.ratelimit import ClockOffset, RateLimitInfo, narrow_clock_offset, shown_wait

__all__ = ["GroupState", "RateLimiter", "SlotWaitEnded"]

logger = logging.getLogger("sentry_async")

_LOG_WAITS_OVER = 5.0
"""Server-announced waits longer than this are logged (once each, when announced)."""


@dataclass(frozen=True, slots=True)
class GroupState:
    """A snapshot of one group (Sentry's counter, ``"GET default"`` for the endpoints without
    limits of their own), for progress displays and tests."""

    group: str
    tokens: float | None
    rate: float | None
    remaining: int | None
    reset_in: float | None
    blocked_for: float
    concurrency: int
    in_flight: int


class _Group:
    __slots__ = (
        "answered",
        "block_announced",
        "blocked_until",
        "cap",
        "capacity",
        "in_flight",
        "limiter",
        "logged_until",
        "rate",
        "remaining",
        "reset_at",
        "reset_epoch",
        "sent",
        "slots",
        "stamp",
        "tokens",
        "window",
        "window_announced",
        "window_sent",
    )

    def __init__(self, rate: float | None, burst: float | None, concurrency: int, now: float):
        self.rate = rate
        # A request takes one whole token: a bucket that cannot hold one never sends.
        self.capacity = burst if burst is not None else None if rate is None else max(rate, 1.0)
        self.tokens = self.capacity if self.capacity is not None else 0.0
        self.stamp = now
        self.blocked_until = 0.0
        self.block_announced = 0.0
        self.window_announced = 0.0
        self.logged_until = 0.0
        self.remaining: int | None = None
        self.reset_at = 0.0
        self.reset_epoch: float | None = None
        self.window = 0.0
        self.window_sent = 0
        """:attr:`sent` when ``reset_epoch`` was recorded: a request sent after that was
        counted in that window or a later one."""
        self.limiter = anyio.CapacityLimiter(concurrency)
        self.cap = concurrency
        """The in-flight cap: ``max_concurrency``, or ``-ConcurrentLimit`` when lower."""
        self.slots = concurrency
        """The limiter's tokens: the cap less the slots other users of the counter hold."""
        self.in_flight = 0
        self.sent = 0
        """Requests sent so far; a response's ``Remaining`` is less those sent after it."""
        self.answered: tuple[int, float, float, int] | None = None
        """The last slot left with an answer: its send count, its wall-clock send and
        answer times, which :meth:`RateLimiter.observe` (called at once) reads ``Date`` by,
        and the group's requests in flight once it went (itself included), which it reads
        ``ConcurrentRemaining`` by."""

    def refill(self, now: float) -> None:
        if self.rate is not None and self.capacity is not None:
            self.tokens = min(self.capacity, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now

    def wait_time(self, now: float) -> float:
        """Seconds before a request may go; 0 means now (and takes the token)."""
        if self.blocked_until > now:
            return self.blocked_until - now
        if self.remaining is not None:
            if now >= self.reset_at:
                self.remaining = None
            elif self.remaining <= 0:
                return self.reset_at - now
        if self.rate is not None:
            self.refill(now)
            if self.tokens < 1.0:
                return (1.0 - self.tokens) / self.rate
            self.tokens -= 1.0
        if self.remaining is not None:
            self.remaining -= 1
        return 0.0


class RateLimiter:
    """Token bucket plus in-flight cap per Sentry counter, adapted by response headers.

    ``rate`` (requests per second) and ``burst`` apply until the server announces its own
    limit; ``None`` means no local pacing, which suits self-hosted Sentry (it sends no
    rate-limit headers). ``max_concurrency`` caps in-flight requests per group; the server's
    ``ConcurrentLimit`` can only lower it, and ``ConcurrentRemaining`` lowers it further
    while other users of the token hold slots of the same counter. Every method takes an
    endpoint group's name and acts on the counter it falls in.
    """

    def __init__(
        self,
        *,
        rate: float | None = None,
        burst: float | None = None,
        max_concurrency: int = 25,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        if rate is not None and rate <= 0:
            raise ValueError("rate must be positive (or None for no local pacing)")
        if burst is not None and burst < 1:
            raise ValueError("burst must be at least 1")
        if max_concurrency < 1:
            raise ValueError("max_concurrency must be at least 1")
        self._rate = rate
        self._burst = burst
        self._max_concurrency = max_concurrency
        self._clock = clock
        self._wall = wall_clock
        self._groups: dict[str, _Group] = {}
        self._offset: ClockOffset | None = None
        """The server's clock less ours, narrowed by every answer's ``Date``."""

    def _group(self, name: str) -> _Group:
        key = rate_limit_group(name)
        group = self._groups.get(key)
        if group is None:
            group = _Group(self._rate, self._burst, self._max_concurrency, self._clock())
            self._groups[key] = group
        return group

    def slot(self, name: str, *, waits: set[anyio.CancelScope] | None = None) -> _Slot:
        """``async with limiter.slot(group):`` holds one in-flight slot of ``name`` and one
        token, waiting for both as needed.

        ``waits``: each wait of the slot's runs in a cancel scope put there while it lasts,
        so that the owner (a client being closed) can end it; the slot then raises
        :class:`SlotWaitEnded` instead of waiting again."""
        return _Slot(self._group(name), self._clock, self._wall, waits)

    def observe(
        self,
        name: str,
        info: RateLimitInfo | None,
        *,
        server_now: float | None = None,
        max_wait: float = math.inf,
        log: bool = True,
        sent: int | None = None,
    ) -> None:
        """Fold a response's rate-limit headers into the group's state.

        ``Reset`` is read by the server's clock: the answers' ``Date`` (whole seconds), and
        when and how long each took, bound the offset between the clocks ever closer, so a
        skew of a fraction of a window neither makes the client wait a window too long nor
        send into one already spent; until an answer of a slot has been seen, ``server_now``
        (the server's clock when it answered) or the local clock stands in. ``max_wait``
        caps how long a closed window is honoured. ``log=False`` when the caller logs the
        wait itself (a 429's, through :meth:`block`). ``sent`` is the slot's
        :attr:`_Slot.sent`: the requests sent after this one were counted (or will be) after
        the server wrote this ``Remaining``, so they are taken off it; without it,
        ``Remaining`` is taken as is, and ``ConcurrentRemaining`` is not read (it cannot be
        told from the client's own requests in flight).

        A late answer (its request sent before the answer that recorded the window came in,
        ``sent`` at most the group's count then; without ``sent``, when nothing was sent
        since) whose ``Reset`` is older than the window recorded, while that window lasts,
        was counted in an earlier window (a slow request's): it says nothing of the current
        one and leaves it as it is. A request sent later cannot have been counted before the
        recorded window: its older ``Reset`` is another counter's or a shorter window's, and
        is the current window, so that one odd ``Reset`` cannot hold the group until it.
        """
        if info is None:
            return
        group = self._group(name)
        now = self._clock()
        later = max(0, group.sent - sent) if sent is not None else 0
        answered = group.answered
        if answered is not None and answered[0] != sent:
            answered = None
        if info.date is not None and answered is not None:
            self._offset = narrow_clock_offset(self._offset, info.date, answered[1], answered[2])
        limit, free = info.concurrent_limit, info.concurrent_remaining
        if limit is not None or free is not None:
            # ConcurrentRemaining is the counter's slots left once this request took its
            # own; the client's requests in flight then (answered[3], itself included) held
            # some of the rest, so it may hold free + those at most: fewer than the cap while
            # other users of the token hold slots. Never below one, so that a request can
            # always go and its answer give the slots back once they are free again.
            if limit is not None and limit > 0:
                group.cap = max(1, min(self._max_concurrency, limit))
            slots = group.cap
            if free is not None and answered is not None:
                slots = max(1, min(slots, free + answered[3]))
            if slots != group.slots:
                group.slots = group.limiter.total_tokens = slots
        reset = info.reset
        if (
            # Counted in an earlier window than the one recorded (a slow request's answer):
            # it says nothing of the current window, which it would reopen.
            reset is not None
            and group.reset_epoch is not None
            and reset < group.reset_epoch
            and now < group.reset_at
            and (group.sent if sent is None else sent) <= group.window_sent
        ):
            return
        placed = self.server_time()
        if placed is not None:
            # The earliest the server's clock can read: a window is never taken as over
            # before it is.
            server_now = placed
        reset_in = info.seconds_until_reset(self._wall() if server_now is None else server_now)
        most = info.reset_after_date
        if reset_in is not None and most is not None:
            reset_in = min(reset_in, most)
        if reset_in is not None:
            enforced = min(reset_in, max_wait)
            group.reset_at = now + enforced
            # Once the window's requests are spent, this is the wait it announced.
            group.window_announced = now + reset_in
            # The window's length follows the latest headers: a new window (a new Reset)
            # starts the estimate afresh, so one odd answer cannot slow the group for good.
            # A Reset further off than max_wait (epoch milliseconds, a year away) is no
            # window to pace by: it would hold the group to Limit per max_wait.
            if reset_in <= max_wait:
                length = math.ceil(reset_in) or 1.0
                if info.reset != group.reset_epoch:
                    group.reset_epoch = info.reset
                    group.window_sent = group.sent
                    group.window = length
                else:
                    group.window = max(group.window, length)
            if log and info.remaining is not None and info.remaining <= 0:
                self._log_wait(name, group, now, reset_in, enforced, "its window resets")
        if info.remaining is not None and reset_in is not None and reset_in > 0:
            group.remaining = info.remaining - later
        if info.limit is not None and info.limit > 0:
            had_bucket = group.rate is not None
            group.refill(now)
            group.rate = info.limit / (group.window or 1.0)
            group.capacity = float(info.limit)
            tokens = group.tokens if had_bucket else group.capacity
            if info.remaining is not None:
                tokens = min(tokens, float(max(0, info.remaining - later)))
            group.tokens = min(tokens, group.capacity)

    def block(self, name: str, seconds: float, *, max_wait: float = math.inf) -> None:
        """Hold every task of the group for ``seconds``, at most ``max_wait``: the server
        asked for the pause."""
        if seconds <= 0:
            return
        group = self._group(name)
        now = self._clock()
        enforced = min(seconds, max_wait)
        group.block_announced = max(
            group.block_announced if group.blocked_until > now else 0.0, now + seconds
        )
        group.blocked_until = max(group.blocked_until, now + enforced)
        self._log_wait(name, group, now, seconds, enforced, "a 429")

    def server_time(self) -> float | None:
        """The earliest the server's clock can read now, as the answers' ``Date`` and round
        trips placed it (epoch seconds); ``None`` until an answer has. A wait until a
        ``Reset`` read against it is never cut short, and is not lengthened by a skew too
        small for ``Date`` alone to reveal."""
        offset = self._offset
        return None if offset is None else self._wall() + offset.low

    def blocked_for(self, name: str) -> float:
        """Seconds left of the pause a 429 imposed on ``name`` (0 when none)."""
        group = self._groups.get(rate_limit_group(name))
        return max(0.0, group.blocked_until - self._clock()) if group is not None else 0.0

    def pause_for(self, name: str) -> float:
        """Seconds the server announced ``name`` must wait, while such a wait is in force
        (a 429's pause or a window with nothing left); 0 when none."""
        group = self._groups.get(rate_limit_group(name))
        if group is None:
            return 0.0
        now = self._clock()
        until = 0.0
        if group.blocked_until > now:
            until = max(group.block_announced, group.blocked_until)
        if group.remaining is not None and group.remaining <= 0 and now < group.reset_at:
            until = max(until, group.window_announced, group.reset_at)
        return max(0.0, until - now)

    @staticmethod
    def _log_wait(
        name: str, group: _Group, now: float, seconds: float, enforced: float, why: str
    ) -> None:
        """Log a long wait once, when it is announced, not once per task that waits."""
        if seconds <= _LOG_WAITS_OVER or now + seconds <= group.logged_until + 1.0:
            return
        group.logged_until = now + seconds
        shared = rate_limit_group(name)
        if shared != name:
            name = f"{name} (and every endpoint in Sentry's {shared!r} window)"
        if enforced < seconds:
            logger.warning(
                "%s: the server asked to wait %s (%s); holding the endpoint for at most "
                "%.3gs and failing calls that will not wait that long",
                name,
                shown_wait(seconds),
                why,
                enforced,
            )
        else:
            logger.info("%s: the server asked to wait %s (%s)", name, shown_wait(seconds), why)

    def state(self, name: str) -> GroupState:
        group = self._group(name)
        now = self._clock()
        if group.rate is not None:
            group.refill(now)
        remaining = group.remaining if now < group.reset_at else None
        return GroupState(
            group=rate_limit_group(name),
            tokens=group.tokens if group.rate is not None else None,
            rate=group.rate,
            remaining=remaining,
            reset_in=(group.reset_at - now) if remaining is not None else None,
            blocked_for=max(0.0, group.blocked_until - now),
            concurrency=int(group.limiter.total_tokens),
            in_flight=group.in_flight,
        )

    @property
    def groups(self) -> list[str]:
        return list(self._groups)


class SlotWaitEnded(Exception):
    """A slot's wait ended by the owner of its ``waits`` (a client being closed)."""


class _Slot:
    """The in-flight slot of one request.

    A class rather than ``@asynccontextmanager``, and a non-blocking acquire first: this
    runs once per request, and the uncontended path should cost no extra trip through the
    event loop. The slot is its own borrower token, so it cannot be confused with another.
    """

    __slots__ = ("_clock", "_group", "_waits", "_wall", "in_flight", "sent", "sent_at", "waited")

    def __init__(
        self,
        group: _Group,
        clock: Callable[[], float],
        wall: Callable[[], float],
        waits: set[anyio.CancelScope] | None,
    ) -> None:
        self._group = group
        self._clock = clock
        self._wall = wall
        self._waits = waits
        self.sent_at = 0.0
        """The wall clock as the request went out: before the server wrote its ``Date``."""
        self.sent = 0
        """The group's send count once this request went: for :meth:`RateLimiter.observe`."""
        self.in_flight = 0
        """The group's requests in flight once this one went, itself included."""
        self.waited = 0.0
        """Seconds the request really waited here (for a slot, a token, a window or a
        pause): what the hooks report, timed only where it waits, so that one-time work
        such as the first acquire of a process loading anyio's backend is not a wait."""

    async def __aenter__(self) -> _Slot:
        group = self._group
        try:
            group.limiter.acquire_on_behalf_of_nowait(self)
        except anyio.WouldBlock:
            await self._wait(group.limiter.acquire_on_behalf_of(self))
        try:
            while True:
                wait = group.wait_time(self._clock())
                if wait <= 0:
                    break
                await self._wait(anyio.sleep(wait))
        except BaseException:
            group.limiter.release_on_behalf_of(self)
            raise
        group.in_flight += 1
        group.sent += 1
        self.sent = group.sent
        self.in_flight = group.in_flight
        self.sent_at = self._wall()
        return self

    async def _wait(self, waiting: Awaitable[None]) -> None:
        """Wait (for a slot, a token, a window or a pause), timed for the hooks, and ended
        by whoever owns ``waits``."""
        started = time.perf_counter()
        if self._waits is None:
            await waiting
        else:
            with anyio.CancelScope() as scope:
                self._waits.add(scope)
                try:
                    await waiting
                finally:
                    self._waits.discard(scope)
            if scope.cancelled_caught:
                raise SlotWaitEnded
        self.waited += time.perf_counter() - started

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._group.in_flight -= 1
        self._group.limiter.release_on_behalf_of(self)
        if exc_type is None:
            # Answered: the bounds of the moment the server wrote its ``Date``.
            self._group.answered = (self.sent, self.sent_at, self._wall(), self.in_flight)
