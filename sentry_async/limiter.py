"""One rate limiter per client, shared by every task that uses the client.

Per endpoint group (Sentry limits per endpoint and method) it keeps:

* a token bucket, seeded from configuration and re-shaped by ``X-Sentry-Rate-Limit-Limit``;
* a mirror of the server's fixed window (``-Remaining`` and ``-Reset``), so no task sends
  into a window the server has already closed;
* a block set by a 429 (``Retry-After`` or the reset), which every task waits out;
* an in-flight cap, lowered to ``-ConcurrentLimit`` when the server announces one.

It is written on anyio primitives and is safe because nothing awaits between checking the
state and taking a token.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType

import anyio

from ._protocol.ratelimit import RateLimitInfo

__all__ = ["GroupState", "RateLimiter"]


@dataclass(frozen=True, slots=True)
class GroupState:
    """A snapshot of one endpoint group, for progress displays and tests."""

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
        "blocked_until",
        "capacity",
        "in_flight",
        "limiter",
        "rate",
        "remaining",
        "reset_at",
        "stamp",
        "tokens",
        "window",
    )

    def __init__(self, rate: float | None, burst: float | None, concurrency: int, now: float):
        self.rate = rate
        self.capacity = burst if burst is not None else rate
        self.tokens = self.capacity if self.capacity is not None else 0.0
        self.stamp = now
        self.blocked_until = 0.0
        self.remaining: int | None = None
        self.reset_at = 0.0
        self.window = 0.0
        self.limiter = anyio.CapacityLimiter(concurrency)
        self.in_flight = 0

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
    """Token bucket plus in-flight cap, keyed by endpoint group, adapted by response headers.

    ``rate`` (requests per second) and ``burst`` apply until the server announces its own
    limit; ``None`` means no local pacing, which suits self-hosted Sentry (it sends no
    rate-limit headers). ``max_concurrency`` caps in-flight requests per group; the server's
    ``ConcurrentLimit`` can only lower it.
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

    def _group(self, name: str) -> _Group:
        group = self._groups.get(name)
        if group is None:
            group = _Group(self._rate, self._burst, self._max_concurrency, self._clock())
            self._groups[name] = group
        return group

    def slot(self, name: str) -> _Slot:
        """``async with limiter.slot(group):`` holds one in-flight slot of ``name`` and one
        token, waiting for both as needed."""
        return _Slot(self._group(name), self._clock)

    def observe(self, name: str, info: RateLimitInfo | None) -> None:
        """Fold a response's rate-limit headers into the group's state."""
        if info is None:
            return
        group = self._group(name)
        now = self._clock()
        if info.concurrent_limit is not None and info.concurrent_limit > 0:
            group.limiter.total_tokens = max(1, min(self._max_concurrency, info.concurrent_limit))
        reset_in = info.seconds_until_reset(self._wall())
        if reset_in is not None:
            group.reset_at = now + reset_in
            group.window = max(group.window, math.ceil(reset_in) or 1.0)
        if info.remaining is not None and reset_in is not None and reset_in > 0:
            group.remaining = info.remaining
        if info.limit is not None and info.limit > 0:
            had_bucket = group.rate is not None
            group.refill(now)
            group.rate = info.limit / (group.window or 1.0)
            group.capacity = float(info.limit)
            tokens = group.tokens if had_bucket else group.capacity
            if info.remaining is not None:
                tokens = min(tokens, float(info.remaining))
            group.tokens = min(tokens, group.capacity)

    def block(self, name: str, seconds: float) -> None:
        """Hold every task of the group for ``seconds``: the server asked for the pause."""
        if seconds <= 0:
            return
        group = self._group(name)
        group.blocked_until = max(group.blocked_until, self._clock() + seconds)

    def blocked_for(self, name: str) -> float:
        """Seconds left of the pause a 429 imposed on ``name`` (0 when none)."""
        group = self._groups.get(name)
        return max(0.0, group.blocked_until - self._clock()) if group is not None else 0.0

    def state(self, name: str) -> GroupState:
        group = self._group(name)
        now = self._clock()
        if group.rate is not None:
            group.refill(now)
        remaining = group.remaining if now < group.reset_at else None
        return GroupState(
            group=name,
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


class _Slot:
    """The in-flight slot of one request.

    A class rather than ``@asynccontextmanager``, and a non-blocking acquire first: this
    runs once per request, and the uncontended path should cost no extra trip through the
    event loop. The slot is its own borrower token, so it cannot be confused with another.
    """

    __slots__ = ("_clock", "_group")

    def __init__(self, group: _Group, clock: Callable[[], float]) -> None:
        self._group = group
        self._clock = clock

    async def __aenter__(self) -> None:
        group = self._group
        try:
            group.limiter.acquire_on_behalf_of_nowait(self)
        except anyio.WouldBlock:
            await group.limiter.acquire_on_behalf_of(self)
        try:
            while True:
                wait = group.wait_time(self._clock())
                if wait <= 0:
                    break
                await anyio.sleep(wait)
        except BaseException:
            group.limiter.release_on_behalf_of(self)
            raise
        group.in_flight += 1

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._group.in_flight -= 1
        self._group.limiter.release_on_behalf_of(self)
