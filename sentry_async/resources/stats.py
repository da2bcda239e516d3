"""Time series: event stats (``events-stats``) and organization usage (``stats_v2``)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from ..errors import DecodeError
from ..models import EventsStats, UsageStats, parse_events_stats
from ._base import IdOrSlug, Resource, listify, time_params

__all__ = ["StatsResource"]

MAX_TOP_EVENTS = 10
_INTERVAL = re.compile(r"^\d+[smhdw]?$")
_USAGE_GROUPS = frozenset({"outcome", "category", "reason", "project"})
_USAGE_FIELDS = frozenset({"sum(quantity)", "sum(times_seen)"})


def _interval(value: str | timedelta | None) -> str | None:
    if value is None:
        return None
    if isinstance(value, timedelta):
        seconds = int(value.total_seconds())
        if seconds <= 0:
            raise ValueError(f"interval must be positive (got {value!r})")
        return f"{seconds}s"
    if not _INTERVAL.match(value) or int(value.rstrip("smhdw")) <= 0:
        raise ValueError(f"interval must look like '1h', '5m' or '1d' (got {value!r})")
    return value


class StatsResource(Resource):
    """``client.stats``."""

    __slots__ = ()

    async def events(
        self,
        org: IdOrSlug,
        *,
        y_axis: str | Sequence[str] = "count()",
        query: str | None = None,
        project: IdOrSlug | Sequence[IdOrSlug] | None = None,
        environment: str | Sequence[str] | None = None,
        period: str | timedelta | None = None,
        start: datetime | None = None,
        end: datetime | None = None,
        interval: str | timedelta | None = None,
        top_events: int | None = None,
        fields: Sequence[str] | None = None,
        order_by: str | None = None,
        partial: bool | None = None,
        comparison_delta: int | timedelta | None = None,
        exclude_other: bool | None = None,
        dataset: str | None = None,
    ) -> EventsStats:
        """Counts over time, normalised to one list of series whatever shape Sentry answers in.

        ``top_events`` groups by ``fields`` (ordered by ``order_by``) and returns one series
        per group (plus ``Other`` unless ``exclude_other``); ``raw`` keeps the response.
        """
        axes = listify(y_axis, "y_axis") or []
        if not axes:
            raise ValueError("y_axis needs at least one expression")
        if top_events is not None:
            if isinstance(top_events, bool) or not 1 <= top_events <= MAX_TOP_EVENTS:
                raise ValueError(f"top_events must be from 1 to {MAX_TOP_EVENTS}")
            if not fields:
                raise ValueError("top_events needs fields= (the columns to group by)")
            if not order_by:
                raise ValueError("top_events needs order_by= (e.g. '-count()')")
        if isinstance(comparison_delta, timedelta):
            comparison_delta = int(comparison_delta.total_seconds())
        if comparison_delta is not None and comparison_delta <= 0:
            raise ValueError("comparison_delta must be a positive number of seconds")
        params: dict[str, Any] = {
            "yAxis": axes,
            "query": query,
            "project": listify(project, "project"),
            "environment": listify(environment, "environment"),
            "interval": _interval(interval),
            "topEvents": top_events,
            "field": listify(fields, "fields"),
            "orderby": order_by,
            "partial": partial,
            "comparisonDelta": comparison_delta,
            "excludeOther": exclude_other,
            "dataset": dataset,
            **time_params(period, start, end),
        }
        response = await self._client.send(
            "GET",
            "/organizations/{org}/events-stats/",
            path_params={"org": self._org(org)},
            params=params,
        )
        try:
            return parse_events_stats(response.body, axes)
        except (ValueError, TypeError) as exc:
            raise DecodeError(
                str(exc), method="GET", url=str(response.url), type_name="EventsStats"
            ) from exc

    async def usage(
        self,
        org: IdOrSlug,
        *,
        group_by: str | Sequence[str],
        field: str = "sum(quantity)",
        period: str | timedelta | None = None,
        start: datetime | None = None,
        end: datetime | None = None,
        interval: str | timedelta | None = None,
        project: IdOrSlug | Sequence[IdOrSlug] | None = None,
        category: str | Sequence[str] | None = None,
        outcome: str | Sequence[str] | None = None,
        reason: str | Sequence[str] | None = None,
    ) -> UsageStats:
        """Accepted, filtered and dropped event counts; ``group_by="project"`` has no series."""
        groups = listify(group_by, "group_by") or []
        if not groups:
            raise ValueError("group_by needs at least one of outcome, category, reason, project")
        unknown = set(groups) - _USAGE_GROUPS
        if unknown:
            raise ValueError(
                f"group_by must be among {sorted(_USAGE_GROUPS)} (got {sorted(unknown)})"
            )
        if field not in _USAGE_FIELDS:
            raise ValueError(f"field must be one of {sorted(_USAGE_FIELDS)} (got {field!r})")
        return await self._client.request(
            "GET",
            "/organizations/{org}/stats_v2/",
            path_params={"org": self._org(org)},
            params={
                "groupBy": groups,
                "field": field,
                "interval": _interval(interval),
                "project": listify(project, "project"),
                "category": listify(category, "category"),
                "outcome": listify(outcome, "outcome"),
                "reason": listify(reason, "reason"),
                **time_params(period, start, end),
            },
            type=UsageStats,
        )
