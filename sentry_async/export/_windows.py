"""Time ranges for exports: parse, pin to absolute UTC, split into windows.

An export never sends ``statsPeriod``: a period is turned into an absolute ``start``/``end``
once, stored in the checkpoint, and reused on resume, so every request of every run sees
the same window. Long ranges are cut into windows (one day by default) that each get their
own cursor, so no stream depends on one very deep offset cursor.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

__all__ = [
    "Window",
    "format_utc",
    "parse_duration",
    "parse_utc",
    "resolve_range",
    "split_windows",
]

_DURATION = re.compile(r"^\s*(\d+)\s*([smhdw])\s*$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_duration(text: str) -> timedelta:
    """``90s``, ``30m``, ``12h``, ``1d``, ``2w`` -> a positive timedelta."""
    match = _DURATION.match(text) if isinstance(text, str) else None
    if match is None or int(match.group(1)) <= 0:
        raise ValueError(f"expected a duration such as '1d', '12h', '30m' or '2w' (got {text!r})")
    return timedelta(seconds=int(match.group(1)) * _UNITS[match.group(2)])


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
    return parsed.astimezone(timezone.utc)


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
    """Pin ``period`` (ending at ``now``) or ``start``/``end`` (``end`` defaults to ``now``)."""
    if period is not None and start is not None:
        raise ValueError("give either a period or a start time, not both")
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    for name, value in (("start", start), ("end", end)):
        if value is not None and value.tzinfo is None:
            raise ValueError(f"{name} must be timezone-aware")
    stop = (end or now).astimezone(timezone.utc)
    if period is not None:
        begin = stop - period
    elif start is not None:
        begin = start.astimezone(timezone.utc)
    else:
        raise ValueError("an export needs a time range: a period or a start time")
    if begin >= stop:
        raise ValueError(
            f"the range is empty: {format_utc(begin)} is not before {format_utc(stop)}"
        )
    return begin, stop


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

    ``size=None`` gives one window over the whole range.
    """
    if start >= end:
        raise ValueError("start must be before end")
    if size is None:
        return [Window(start, end)]
    if size <= timedelta(0):
        raise ValueError("the window size must be positive")
    windows: list[Window] = []
    cursor = start
    while cursor < end:
        stop = min(cursor + size, end)
        windows.append(Window(cursor, stop))
        cursor = stop
    return windows
