"""Time series: event stats in one normalised shape, and organization usage stats.

``events-stats`` answers in four shapes depending on the query (one yAxis, several, top
events, top events with several yAxis). :func:`parse_events_stats` tells them apart by the
body itself (a top-level ``data`` list, ``order`` siblings), not by the request, and hands
back one list of :class:`Series`, keeping the decoded original in ``raw``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import msgspec

from ._base import Model

__all__ = ["EventsStats", "Series", "UsageGroup", "UsageStats", "parse_events_stats"]


@dataclass(frozen=True, slots=True)
class Series:
    """One line of a chart: ``values[i]`` is the bucket starting at ``timestamps[i]``.

    ``name`` is the group label for top-events queries and the yAxis otherwise; a bucket
    Sentry left empty or null is ``None``.
    """

    name: str
    y_axis: str
    group: str | None
    order: int | None
    timestamps: list[int]
    values: list[float | None]
    comparison_values: list[float | None] | None = None
    meta: dict[str, Any] | None = None
    start: int | None = None
    end: int | None = None

    def points(self) -> list[tuple[int, float | None]]:
        return list(zip(self.timestamps, self.values, strict=True))

    @property
    def total(self) -> float:
        return sum(v for v in self.values if v is not None)


@dataclass(frozen=True, slots=True)
class EventsStats:
    series: list[Series]
    raw: Any = field(repr=False, default=None)

    def by_name(self, name: str) -> Series | None:
        for series in self.series:
            if series.name == name:
                return series
        return None

    def __iter__(self) -> Any:
        return iter(self.series)

    def __len__(self) -> int:
        return len(self.series)

    def to_arrow(self) -> Any:
        """One row per series and bucket as a ``pyarrow.Table`` (the ``arrow`` extra)."""
        from ..tables import events_stats_table

        return events_stats_table(self)


_ANY = msgspec.json.Decoder(Any)


def _number(value: Any) -> int | float | None:
    """A bucket's value as sent: a count stays an integer (exact past 2**53)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return value


def _series(
    body: dict[str, Any], *, name: str, y_axis: str, group: str | None, order: Any
) -> Series:
    data = body.get("data")
    if not isinstance(data, list):
        raise ValueError(f"series {name!r} has no 'data' list")
    timestamps: list[int] = []
    values: list[float | None] = []
    comparisons: list[float | None] = []
    has_comparison = False
    for bucket in data:
        if not isinstance(bucket, list) or len(bucket) != 2:
            raise ValueError(f"series {name!r} has a bucket that is not [timestamp, values]")
        stamp, counts = bucket
        if isinstance(stamp, bool) or not isinstance(stamp, (int, float)):
            raise ValueError(f"series {name!r} has a non-numeric timestamp {stamp!r}")
        timestamps.append(int(stamp))
        first = counts[0] if isinstance(counts, list) and counts else None
        if isinstance(first, dict):
            values.append(_number(first.get("count")))
            if "comparisonCount" in first:
                has_comparison = True
            comparisons.append(_number(first.get("comparisonCount")))
        else:
            values.append(None)
            comparisons.append(None)
    meta = body.get("meta")
    start, end = body.get("start"), body.get("end")
    return Series(
        name=name,
        y_axis=y_axis,
        group=group,
        order=order if isinstance(order, int) and not isinstance(order, bool) else None,
        timestamps=timestamps,
        values=values,
        comparison_values=comparisons if has_comparison else None,
        meta=meta if isinstance(meta, dict) else None,
        start=start if isinstance(start, int) else None,
        end=end if isinstance(end, int) else None,
    )


def _is_series(value: Any) -> bool:
    return isinstance(value, dict) and isinstance(value.get("data"), list)


def _no_top_events(raw: dict[str, Any], multi_axis: bool) -> bool:
    """Whether a top-events answer is Sentry's placeholder for no group at all: the one
    zero-filled result ``top_events_timeseries`` returns then, which ``get_event_stats_data``
    serialises in the single-yAxis shape (a top-level ``data`` list), or for several yAxis
    as the group ``""``. A real group always has an ``order``."""
    if not multi_axis:
        return isinstance(raw.get("data"), list)
    placeholder = raw.get("")
    return len(raw) == 1 and isinstance(placeholder, dict) and "order" not in placeholder


def parse_events_stats(
    body: bytes | Any, y_axes: Sequence[str] | None = None, *, top_events: bool = False
) -> EventsStats:
    """Normalise any of the four ``events-stats`` shapes into a list of series.

    ``y_axes`` are the requested yAxis expressions: they name the series of single-yAxis
    answers (whose inner key is always ``count``). ``top_events`` says the query asked for
    top events: Sentry's zero-filled placeholder for a query that matched no group is then
    no series at all (``raw`` still holds it). Raises ``ValueError`` on a body that fits
    none of the shapes, the placeholder included.
    """
    raw = _ANY.decode(body) if isinstance(body, (bytes, bytearray, memoryview, str)) else body
    if not isinstance(raw, dict):
        raise ValueError("events-stats body is not a JSON object")
    axes = list(y_axes or ["count()"])
    series = _all_series(raw, axes)
    if top_events and _no_top_events(raw, len(axes) > 1):
        series = []
    return EventsStats(series=series, raw=raw)


def _all_series(raw: dict[str, Any], axes: list[str]) -> list[Series]:
    """Every series of a decoded ``events-stats`` body, in their ``order``."""
    first_axis = axes[0]
    if isinstance(raw.get("data"), list):
        order = raw.get("order")
        return [_series(raw, name=first_axis, y_axis=first_axis, group=None, order=order)]
    series: list[Series] = []
    multi_axis = len(axes) > 1
    for key, value in raw.items():
        if _is_series(value):
            if multi_axis and key in axes:
                series.append(
                    _series(value, name=key, y_axis=key, group=None, order=value.get("order"))
                )
            else:
                series.append(
                    _series(value, name=key, y_axis=first_axis, group=key, order=value.get("order"))
                )
        elif isinstance(value, dict):
            order = value.get("order")
            nested = [(axis, inner) for axis, inner in value.items() if _is_series(inner)]
            if not nested and any(k != "order" for k in value):
                raise ValueError(f"events-stats group {key!r} holds no series")
            for axis, inner in nested:
                series.append(
                    _series(
                        inner,
                        name=key,
                        y_axis=axis,
                        group=key,
                        order=order if order is not None else inner.get("order"),
                    )
                )
        elif key not in ("order", "totals", "meta", "start", "end", "isMetricsData"):
            raise ValueError(f"events-stats key {key!r} is neither a series nor a group")
    series.sort(key=lambda s: (s.order is None, s.order if s.order is not None else 0))
    return series


class UsageGroup(Model):
    """One group of ``stats_v2``: ``series[field][i]`` aligns with ``UsageStats.intervals[i]``.

    A ``by`` value is ``None`` where Sentry stored none: below an hour it reads the raw
    outcomes, whose ``reason`` is null for an outcome without one (``"none"`` from an hour).
    """

    by: dict[str, str | int | None] = {}
    totals: dict[str, int | float] = {}
    series: dict[str, list[int | float]] = {}


class UsageStats(Model):
    """``groupBy=project`` answers without ``intervals`` and without series.

    ``group_by`` and ``fields`` are the query's ``groupBy`` and ``field``, which Sentry does
    not send back: ``usage()`` keeps them so that an answer with no group still has its
    columns. ``None`` in a body decoded by hand.
    """

    start: str | None = None
    end: str | None = None
    intervals: list[str] = []
    groups: list[UsageGroup] = []
    group_by: list[str] | None = None
    fields: list[str] | None = None

    def to_arrow(self) -> Any:
        """The groups as a ``pyarrow.Table`` (the ``arrow`` extra)."""
        from ..tables import usage_table

        return usage_table(self)
