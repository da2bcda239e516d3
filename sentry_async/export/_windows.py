"""Time ranges for exports: parse, pin to absolute UTC, split into windows.

An export never sends ``statsPeriod``: a period is turned into an absolute ``start``/``end``
once, stored in the checkpoint, and reused on resume, so every request of every run sees
the same window. Long ranges are cut into windows (one day by default) that each get their
own cursor, so no stream depends on one very deep offset cursor. A range is refused when
it would need more than :data:`MAX_WINDOWS` windows: planning (and checkpointing) that
many streams per target would take longer than the export itself.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from .._protocol.params import PERIOD_UNITS
from ._errors import ExportRangeError

__all__ = [
    "MAX_WINDOWS",
    "Window",
    "check_window_count",
    "count_windows",
    "format_utc",
    "halve",
    "parse_duration",
    "parse_utc",
    "resolve_range",
    "split_windows",
]

MAX_WINDOWS = 100_000
"""Most windows one target's range may be split into (100,000 days is 273 years)."""

_DURATION = re.compile(r"^\s*(\d+)\s*([smhdw])\s*$")


def parse_duration(text: str) -> timedelta:
    """``90s``, ``30m``, ``12h``, ``1d``, ``2w`` -> a positive timedelta."""
    match = _DURATION.match(text) if isinstance(text, str) else None
    if match is None or not match.group(1).strip("0"):
        raise ValueError(f"expected a duration such as '1d', '12h', '30m' or '2w' (got {text!r})")
    try:
        return timedelta(seconds=int(match.group(1)) * PERIOD_UNITS[match.group(2)])
    except (OverflowError, ValueError):
        # ValueError: int() refuses thousands of digits before timedelta can overflow.
        raise ValueError(
            f"the duration {text.strip()!r} is too long (at most {timedelta.max.days:,} days)"
        ) from None


def parse_utc(text: str) -> datetime:
    """A date (``2026-01-01``) or ISO datetime; a value without an offset is taken as UTC."""
    value = text.strip()
    if value.endswith(("Z", "z")):
        value = value[:-1] + "+00:00"
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(
            f"expected a date (2026-01-01) or an ISO datetime (2026-01-01T12:00:00Z), got {text!r}"
        ) from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=timezone.utc)
    try:
        return parsed.astimezone(timezone.utc)
    except OverflowError:
        raise ValueError(f"{text!r} is out of range once converted to UTC") from None


def format_utc(value: datetime) -> str:
    """``2026-01-01T00:00:00Z`` (microseconds only when present): stable, sortable keys."""
    utc = value.astimezone(timezone.utc).replace(tzinfo=None)
    return utc.isoformat(timespec="microseconds" if utc.microsecond else "seconds") + "Z"


def resolve_range(
    *,
    start: datetime | None,
    end: datetime | None,
    period: timedelta | None,
    now: datetime,
) -> tuple[datetime, datetime]:
    """Pin ``period`` (ending at ``now``) or ``start``/``end`` (``end`` defaults to ``now``),
    both rounded down to whole seconds.

    An ``end`` after ``now`` is refused: an export records its windows as complete. Sentry
    drops the fraction of a second from both bounds of a query (event times are whole
    seconds), so a range pinned with one would record ``[floor(end), end)`` as exported
    when nothing of it was served.
    """
    if period is not None and start is not None:
        raise ValueError("give either a period or a start time, not both")
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    for name, value in (("start", start), ("end", end)):
        if value is not None and value.tzinfo is None:
            raise ValueError(f"{name} must be timezone-aware")
    stop = _to_utc(end or now, "end")
    if end is not None and stop > now:
        # Its windows would be recorded complete before their events exist: lost for good.
        raise ExportRangeError(
            "end",
            f"{format_utc(stop)} is in the future (now is {format_utc(now)}): leave the end "
            "out to export up to now",
        )
    if period is not None:
        try:
            begin = stop - period
        except OverflowError:
            raise ExportRangeError(
                "end" if end is not None else "period",
                f"the range would start {_format_span(period)} before {format_utc(stop)}, "
                "before the year 1",
            ) from None
    elif start is not None:
        begin = _to_utc(start, "start")
    else:
        raise ValueError("an export needs a time range: a period or a start time")
    if begin >= stop:
        if end is None:
            reason = f"{format_utc(begin)} is in the future (now is {format_utc(stop)})"
        else:
            reason = f"{format_utc(begin)} is not before the end {format_utc(stop)}"
        raise ExportRangeError(
            "start" if start is not None else "period", f"{reason}: the range is empty"
        )
    first, last = _whole_seconds(begin), _whole_seconds(stop)
    if first >= last:
        raise ExportRangeError(
            "start" if start is not None else "period",
            f"{format_utc(begin)} .. {format_utc(stop)} is empty once both are rounded down "
            "to whole seconds, the precision of Sentry's queries",
        )
    return first, last


def _whole_seconds(value: datetime) -> datetime:
    return value.replace(microsecond=0)


def _to_utc(value: datetime, argument: str) -> datetime:
    try:
        return value.astimezone(timezone.utc)
    except OverflowError:
        raise ExportRangeError(argument, "out of range once converted to UTC") from None


def count_windows(start: datetime, end: datetime, size: timedelta | None) -> int:
    """How many windows :func:`split_windows` makes, counted without making them."""
    if size is None or start >= end:
        return 1
    if size <= timedelta(0):
        raise ValueError("the window size must be positive")
    whole, rest = divmod(end - start, size)
    return whole + (1 if rest else 0)


def check_window_count(start: datetime, end: datetime, size: timedelta | None) -> None:
    """Refuse (:class:`ExportRangeError`) a split into more than :data:`MAX_WINDOWS` windows."""
    if size is None:
        return
    count = count_windows(start, end, size)
    if count > MAX_WINDOWS:
        raise ExportRangeError(
            "window",
            f"windows of {_format_span(size)} split {format_utc(start)} .. {format_utc(end)} "
            f"into {count:,} streams per project or issue, more than {MAX_WINDOWS:,}: "
            "use a larger window",
        )


def _format_span(value: timedelta) -> str:
    """``30d``, ``12h``, ``90s``: a duration as it would be written on the command line."""
    if value.microseconds:
        return str(value)
    seconds = value // timedelta(seconds=1)
    unit = next(name for name, size in reversed(PERIOD_UNITS.items()) if seconds % size == 0)
    return f"{seconds // PERIOD_UNITS[unit]}{unit}"


@dataclass(frozen=True, slots=True)
class Window:
    """The half-open interval ``[start, end)``; ``key`` names it in stream keys."""

    start: datetime
    end: datetime

    @property
    def key(self) -> str:
        return format_utc(self.start)


def split_windows(start: datetime, end: datetime, size: timedelta | None) -> list[Window]:
    """Consecutive windows of ``size`` from ``start``; the last one ends at ``end``.

    ``size=None`` gives one window over the whole range; more than :data:`MAX_WINDOWS`
    windows raise :class:`ExportRangeError`.
    """
    if start >= end:
        raise ValueError("start must be before end")
    if size is None:
        return [Window(start, end)]
    if size <= timedelta(0):
        raise ValueError("the window size must be positive")
    check_window_count(start, end, size)
    windows: list[Window] = []
    cursor = start
    while cursor < end:
        # Compared before adding: ``cursor + size`` may overflow near year 9999.
        stop = end if end - cursor <= size else cursor + size
        windows.append(Window(cursor, stop))
        cursor = stop
    return windows


def halve(window: Window, minimum: timedelta) -> tuple[Window, Window] | None:
    """``window`` cut in two at its middle (whole seconds), or ``None`` below ``minimum``.

    A window Sentry cannot serve (a query timeout, an offset too deep) is retried as two
    halves; halves shorter than ``minimum`` are not worth asking for.
    """
    half = (window.end - window.start) // 2
    half -= timedelta(microseconds=half.microseconds)
    if half < minimum or half <= timedelta(0):
        return None
    middle = window.start + half
    return Window(window.start, middle), Window(middle, window.end)
