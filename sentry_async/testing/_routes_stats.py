"""Handlers: ``events-stats`` in its four shapes, and ``stats_v2``."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timezone
from typing import Any

from aiohttp import web

from ._data import EventRecord
from ._lookups import _PERIOD, _UNITS, _flag, _org, _projects, _time_range
from ._routes_discover import _FIELD_TYPES, _aggregate, _discover_events, _plain
from ._state import ApiError, _encode, _json

STATS_ROW_LIMIT = 10_000
"""Groups ``stats_v2`` answers at most when grouping by project (tests lower it)."""


def _buckets(request: web.Request, default_period: float) -> tuple[float, float, int]:
    start, end = _time_range(request, default_period)
    raw = request.query.get("interval")
    span = end - start
    interval = 3600 if span <= 7 * 86400 else 86400
    if raw:
        match = _PERIOD.match(raw)
        if match:
            interval = max(1, int(match.group(1)) * _UNITS[match.group(2)])
    start = (int(start) // interval) * interval
    return start, end, interval


def _series(
    events: list[EventRecord],
    start: float,
    end: float,
    interval: int,
    axis: str,
    order: int | None,
    comparison: list[EventRecord] | None,
    delta: int,
) -> dict[str, Any]:
    slots = int((end - start) // interval) + 1
    buckets: list[list[EventRecord]] = [[] for _ in range(slots)]
    for event in events:
        position = int((event.timestamp - start) // interval)
        if 0 <= position < slots:
            buckets[position].append(event)
    shifted: list[list[EventRecord]] = [[] for _ in range(slots)]
    for event in comparison or []:
        position = int((event.timestamp + delta - start) // interval)
        if 0 <= position < slots:
            shifted[position].append(event)
    data = []
    for n, members in enumerate(buckets):
        value: Any
        if axis == "count()":
            value = len(members)
        elif axis == "count_unique(user)":
            value = len({e.user for e in members})
        else:
            value = _aggregate(axis, members) if members else None
        point: dict[str, Any] = {"count": value}
        if comparison is not None:
            point["comparisonCount"] = len(shifted[n])
        data.append([int(start) + n * interval, [point]])
    body: dict[str, Any] = {
        "data": data,
        "start": int(start),
        "end": int(start) + slots * interval,
        "isMetricsData": False,
        "meta": {
            "fields": {"time": "date", "count": "integer"},
            "units": {"time": None, "count": None},
            "isMetricsData": False,
            "isMetricsExtractedData": False,
            "tips": {},
            "datasetReason": "unchanged",
            "dataset": "errors",
        },
    }
    if order is not None:
        body["order"] = order
    return body


async def events_stats(request: web.Request) -> web.Response:
    org = _org(request)
    axes = request.query.getall("yAxis", []) or ["count()"]
    for axis in axes:
        if axis not in _FIELD_TYPES or "(" not in axis:
            raise ApiError(400, f"Invalid yAxis: {axis}")
    start, end, interval = _buckets(request, 14 * 86400)
    top = request.query.get("topEvents")
    divisor = int(top) if top and top.isdigit() else 1
    if (end - start) / interval > 10_000 / max(1, divisor):
        raise ApiError(
            400,
            "Your interval and date range would create too many results. "
            "Use a larger interval, or a smaller date range.",
        )
    events = _discover_events(request, org)
    delta = int(request.query.get("comparisonDelta", "0") or 0)
    comparison = None
    if delta:
        comparison = [
            e
            for p in _projects(request, org)
            for e in p.events
            if start - delta <= e.timestamp < end - delta
        ]

    def make(members: list[EventRecord], axis: str, order: int | None) -> dict[str, Any]:
        return _series(members, start, end, interval, axis, order, comparison, delta)

    if top is None:
        if len(axes) == 1:
            return _json(_encode(make(events, axes[0], None)))
        return _json(_encode({axis: make(events, axis, n) for n, axis in enumerate(axes)}))
    if not top.isdigit() or not 1 <= int(top) <= 10:
        raise ApiError(
            400,
            "Can only get up to 10 top events"
            if top.isdigit()
            else "topEvents needs to be at least 1",
        )
    fields = [f for f in request.query.getall("field", []) if "(" not in f]
    if not fields:
        raise ApiError(400, "You must provide at least one field to group by")
    groups: dict[str, list[EventRecord]] = defaultdict(list)
    for event in events:
        groups[",".join(str(_plain(event, f)) for f in fields)].append(event)
    ranked = sorted(groups.items(), key=lambda kv: (-len(kv[1]), kv[0]))
    chosen = ranked[: int(top)]
    rest = [e for _, members in ranked[int(top) :] for e in members]
    if rest and not _flag(request, "excludeOther"):
        chosen.append(("Other", rest))
    body: dict[str, Any] = {}
    for order, (label, members) in enumerate(chosen):
        if len(axes) == 1:
            body[label] = make(members, axes[0], order)
        else:
            body[label] = {**{axis: make(members, axis, None) for axis in axes}, "order": order}
    if not chosen and len(axes) > 1:
        body[""] = {axis: make([], axis, None) for axis in axes}
    return _json(_encode(body))


_OUTCOMES = (
    "accepted",
    "filtered",
    "rate_limited",
    "invalid",
    "abuse",
    "client_discard",
    "cardinality_limited",
)


def _outcome(event: EventRecord) -> tuple[str, str | None]:
    if event.index % 10 == 0:
        return "filtered", "browser-extensions"
    if event.index % 13 == 0:
        return "rate_limited", "key_quota"
    return "accepted", None


async def stats_v2(request: web.Request) -> web.Response:
    org = _org(request)
    group_by = request.query.getall("groupBy", [])
    if not group_by:
        raise ApiError(400, "At least one groupBy is required.")
    for key in group_by:
        if key not in ("outcome", "category", "reason", "project"):
            raise ApiError(400, f'Invalid groupBy: "{key}"')
    field_names = request.query.getall("field", [])
    if not field_names:
        raise ApiError(400, 'Invalid field: "None"')
    for field_name in field_names:
        if field_name not in ("sum(quantity)", "sum(times_seen)"):
            raise ApiError(400, f'Invalid field: "{field_name}"')
    interval_raw = request.query.get("interval", "1h")
    match = _PERIOD.match(interval_raw)
    interval = int(match.group(1)) * _UNITS[match.group(2)] if match else 0
    if interval < 3600 or interval > 86400 or 86400 % interval:
        raise ApiError(
            400,
            "The interval has to be a multiple of the minimum interval, at least "
            "one hour, at most one day, and divide a day evenly.",
        )
    start, end = _time_range(request, 14 * 86400)
    start = (int(start) // interval) * interval
    slots = int((end - start) // interval) + 1
    categories = set(request.query.getall("category", []))
    outcomes = set(request.query.getall("outcome", []))
    reasons = set(request.query.getall("reason", []))
    selected = {p.id for p in _projects(request, org)}
    groups: dict[tuple[Any, ...], list[int]] = {}
    for project in org.projects:
        if project.id not in selected:
            continue
        for event in project.events:
            if not start <= event.timestamp < end:
                continue
            category = "transaction" if event.kind == "transaction" else "error"
            outcome, reason = _outcome(event)
            if (categories and category not in categories) or (
                outcomes and outcome not in outcomes
            ):
                continue
            if reasons and reason not in reasons:
                continue
            values = {
                "outcome": outcome,
                "category": category,
                "reason": reason or "none",
                "project": int(project.id),
            }
            group_key = tuple(values[g] for g in group_by)
            series = groups.setdefault(group_key, [0] * slots)
            series[int((event.timestamp - start) // interval)] += 1
    fmt = "%Y-%m-%dT%H:%M:%SZ"
    out_groups = []
    ordered = sorted(groups.items(), key=lambda kv: str(kv[0]))
    if "project" in group_by:
        # The outcomes query has a row limit: many projects lose groups past it.
        ordered = ordered[:STATS_ROW_LIMIT]
    for group_key, series in ordered:
        group: dict[str, Any] = {
            "by": dict(zip(group_by, group_key, strict=True)),
            "totals": {name: sum(series) for name in field_names},
        }
        if "project" not in group_by:
            group["series"] = dict.fromkeys(field_names, series)
        out_groups.append(group)
    body: dict[str, Any] = {
        "start": datetime.fromtimestamp(start, timezone.utc).strftime(fmt),
        "end": datetime.fromtimestamp(end, timezone.utc).strftime(fmt),
        "groups": out_groups,
    }
    if "project" not in group_by:
        body["intervals"] = [
            datetime.fromtimestamp(start + n * interval, timezone.utc).strftime(fmt)
            for n in range(slots)
        ]
    return _json(_encode(body))
