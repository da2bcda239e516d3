"""Sentry's rate-limit headers, as pure functions.

``X-Sentry-Rate-Limit-Reset`` is the UTC epoch second at which the next fixed window
starts, not a duration; ``Retry-After`` (seconds or an HTTP date) is rarely sent on API
429s but is honoured first when a proxy adds it.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from datetime import timezone
from email.utils import parsedate_to_datetime
from functools import lru_cache

import msgspec

__all__ = [
    "ClockOffset",
    "RateLimitInfo",
    "header_int",
    "narrow_clock_offset",
    "parse_rate_limit",
    "parse_retry_after",
    "server_clock",
    "shown_wait",
]

_PLAIN_DIGITS = 15
"""Up to this many digits, a count is exact as a float and far below int()'s digit limit."""

_DELAY_SECONDS = re.compile(r"[0-9]+(?:\.[0-9]+)?")
"""``Retry-After``'s delay-seconds: digits (RFC 9110), a decimal fraction tolerated; not
the signs, exponents, underscores and words that float() also takes."""

_SKEW_TOLERANCE = 2.0
"""Seconds the client's clock may differ from the server's ``Date`` before the latter wins
(``Date`` has whole seconds only, so the client's own clock is preferred when close)."""


_SHOWN_IN_FULL = 1e10
"""Waits shorter than this (317 years) are shown to the second; a longer one is no wait
anyone means (a ``Reset`` of ``1e308``), and its hundreds of digits would fill a line."""


def shown_wait(seconds: float, *, digits: int = 0) -> str:
    """A wait for a message or a log line: ``"42s"`` (``digits`` after the point), an
    absurd one as ``"1e+308s"``.

    Only the text is clamped: what is waited is the retry policy's ``max_wait`` at most."""
    if seconds < _SHOWN_IN_FULL:
        return f"{seconds:.{digits}f}s"
    return f"{seconds:.3g}s"


class RateLimitInfo(msgspec.Struct, frozen=True, gc=False):
    """The rate-limit state a response announced; a field is ``None`` when not sent.

    A Struct (built in C, not tracked by the collector): one is made for every response."""

    limit: int | None = None
    remaining: int | None = None
    reset: float | None = None
    concurrent_limit: int | None = None
    concurrent_remaining: int | None = None
    date: float | None = None
    """The response's ``Date`` (epoch seconds, whole): the server's clock when it answered."""

    def seconds_until_reset(self, now: float) -> float | None:
        """Seconds from the wall-clock ``now`` to the next window, never negative."""
        if self.reset is None:
            return None
        return max(0.0, self.reset - now)

    @property
    def reset_after_date(self) -> float | None:
        """``Reset - Date``: the most the window can have left when the server answered,
        whatever the client's clock says (``Date`` is cut to the second, never ahead)."""
        if self.reset is None or self.date is None:
            return None
        return max(0.0, self.reset - self.date)

    @property
    def exhausted(self) -> bool:
        return self.remaining is not None and self.remaining <= 0


class ClockOffset(msgspec.Struct, frozen=True, gc=False):
    """The server's clock less the client's, as the answers' ``Date`` bound it: above
    ``low``, below ``high`` (seconds)."""

    low: float
    high: float


def narrow_clock_offset(
    known: ClockOffset | None, date: float, sent: float, received: float
) -> ClockOffset:
    """What one answer adds to ``known``.

    ``Date`` is the server's clock, cut to the whole second, at a moment between ``sent`` and
    ``received`` (the client's clock): the offset lies above ``date - received`` and below
    ``date + 1 - sent``. Answers at every phase of the second narrow it to about the
    round trip, far finer than ``Date`` itself. When the bounds no longer meet (a clock was
    set), the estimate starts over from this answer.
    """
    low, high = date - received, date + 1.0 - sent
    if known is not None:
        narrowed_low, narrowed_high = max(low, known.low), min(high, known.high)
        if narrowed_low <= narrowed_high:
            return ClockOffset(narrowed_low, narrowed_high)
    return ClockOffset(low, high)


_COUNT_LIMIT = 10**_PLAIN_DIGITS
"""No Sentry counts this many of anything; a larger number would overflow the float
arithmetic of whoever estimates with it (an export's progress)."""

_COUNT_TEXT = 64
"""Longer header text is no count: int() is never asked to read thousands of digits."""


def header_int(value: str | None) -> int | None:
    """A count a header announces (``X-Hits``, a rate limit); ``None`` when absent, not a
    number, negative or longer than :data:`_PLAIN_DIGITS` digits (as no Sentry sends),
    rather than failing the request over a header."""
    if value is None or len(value) > _COUNT_TEXT:
        return None
    try:
        number = int(value)  # surrounding whitespace is allowed, as in any HTTP value
    except ValueError:
        return None
    return number if 0 <= number < _COUNT_LIMIT else None


def _epoch(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        number = float(value)
    except ValueError:
        return None
    return number if number >= 0 and math.isfinite(number) else None


def parse_rate_limit(headers: Mapping[str, str]) -> RateLimitInfo | None:
    """Read the ``X-Sentry-Rate-Limit-*`` headers (and ``Date``, to read ``Reset`` by);
    ``None`` when the response has none of the former.

    ``headers`` must look names up case-insensitively (aiohttp's ``CIMultiDictProxy`` does);
    values that are not numbers are treated as absent rather than failing the request.
    It runs once per response, hence five plain lookups and no intermediate containers.
    """
    get = headers.get
    limit = get("x-sentry-rate-limit-limit")
    remaining = get("x-sentry-rate-limit-remaining")
    reset = get("x-sentry-rate-limit-reset")
    concurrent = get("x-sentry-rate-limit-concurrentlimit")
    concurrent_left = get("x-sentry-rate-limit-concurrentremaining")
    if (
        limit is None
        and remaining is None
        and reset is None
        and concurrent is None
        and concurrent_left is None
    ):
        return None
    date = get("date")
    stamp = None if date is None else _http_date(date)
    if _plain(limit, remaining, reset, concurrent, concurrent_left):
        return RateLimitInfo(
            None if limit is None else int(limit),
            None if remaining is None else int(remaining),
            None if reset is None else float(reset),
            None if concurrent is None else int(concurrent),
            None if concurrent_left is None else int(concurrent_left),
            stamp,
        )
    return RateLimitInfo(
        header_int(limit),
        header_int(remaining),
        _epoch(reset),
        header_int(concurrent),
        header_int(concurrent_left),
        stamp,
    )


def _plain(*values: str | None) -> bool:
    """Every value absent or a short run of digits (what Sentry sends): then int() and
    float() take them as they are, with no check left to make."""
    for value in values:
        if value is not None and not (value.isdecimal() and len(value) <= _PLAIN_DIGITS):
            return False
    return True


def parse_retry_after(value: str | None, now: float) -> float | None:
    """``Retry-After`` in seconds from the wall-clock ``now``: delta-seconds or an HTTP date."""
    if value is None:
        return None
    value = value.strip()
    if _DELAY_SECONDS.fullmatch(value):
        # float(), never int(): thousands of digits must not trip int()'s digit limit or
        # overflow a conversion; they become inf, which is refused below.
        seconds = float(value)
        return seconds if math.isfinite(seconds) else None
    stamp = _http_date(value)
    return None if stamp is None else max(0.0, stamp - now)


def server_clock(date: str | None, wall: float) -> float:
    """The wall-clock time to measure ``Reset`` and ``Retry-After`` dates against.

    Both are the server's clock readings; a client clock minutes off would turn a
    one-second wait into minutes, or none. The response's ``Date`` is used when it
    differs from ``wall`` by more than a couple of seconds, ``wall`` otherwise.
    """
    if date is None:
        return wall
    stamp = _http_date(date)
    return stamp if stamp is not None and abs(stamp - wall) > _SKEW_TOLERANCE else wall


@lru_cache(maxsize=8)
def _http_date(value: str) -> float | None:
    """Epoch seconds of an HTTP date; cached, since every response of a second repeats it."""
    if not value.isascii():
        return None
    try:
        when = parsedate_to_datetime(value.strip())
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when.tzinfo is None:
        # ``-0000`` (or no zone at all): an HTTP date is GMT whatever it fails to say.
        when = when.replace(tzinfo=timezone.utc)
    try:
        return when.timestamp()
    except (OverflowError, OSError, ValueError):
        return None
