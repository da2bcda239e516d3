"""Handlers: ``events-stats`` in its four shapes, and ``stats_v2``."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any

from aiohttp import web

from ._data import Dataset, EventRecord, OrgRecord
from ._lookups import (
    _PERIOD,
    _UNITS,
    OUTCOME_DATE_KEYS,
    _flag,
    _org,
    _param,
    _projects,
    _requested_project_ids,
    _time_range,
)
from ._records import queried
from ._routes_discover import (
    _FIELD_TYPES,
    _aggregate,
    _column,
    _dataset,
    _discover_events,
    _plain,
    _snuba_params,
    _sort_column,
)
from ._state import ApiError, _encode, _json, _state

TOO_MANY_POINTS = (
    "Your interval and date range would create too many results. "
    "Use a larger interval, or a smaller date range."
)
MAX_ROLLUP_POINTS = 10_000
"""``sentry.constants.MAX_ROLLUP_POINTS``: buckets one ``events-stats`` series may have."""
STATS_ROW_LIMIT = 10_000
"""Groups ``stats_v2`` answers at most when grouping by project (tests lower it)."""
RPC_DATASETS = frozenset(
    {"spans", "logs", "ourlogs", "tracemetrics", "uptime_results", "profile_functions"}
)
"""``RPC_DATASETS``' names: ``get_rollup(..., allow_interval_over_range=not use_rpc)``."""
ONE_COLUMN = "Only one column can be selected for comparison queries"
"""``timeseries_query``'s refusal of a comparison over several y-axes."""
OUTSIDE_COMPARISON = "Comparison period is outside retention window"
"""events-stats' 400 for the ``ValidationError`` ``get_event_stats_data`` raises when the
compared period starts before the retention."""


def _default_interval(span: float) -> int:
    """``get_interval_from_range(date_range, high_fidelity=False)``."""
    if span >= 60 * 86400:
        return 86400
    if span >= 30 * 86400:
        return 4 * 3600
    if span > 86400:
        return 3600
    if span > 3600:
        return 300
    return 900


def _buckets(
    request: web.Request, start: float, end: float, top_events: int, rpc: bool
) -> tuple[float, float, int]:
    """``get_rollup`` as ``get_event_stats_data`` calls it over the rounded range: an
    interval that does not parse counts as an hour, and one that ``validate_interval``
    refuses (zero, more than ``MAX_ROLLUP_POINTS`` points divided among the top events, or
    for an RPC dataset longer than the range) falls back to the default interval for the
    range, silently."""
    interval = _default_interval(end - start)
    raw = _param(request, "interval")
    if raw is not None:
        match = _PERIOD.match(raw)
        asked = int(match.group(1)) * _UNITS[match.group(2)] if match else 3600
        limit = MAX_ROLLUP_POINTS / top_events if top_events else MAX_ROLLUP_POINTS
        over_range = rpc and asked > end - start
        if asked > 0 and not over_range and (end - start) / asked <= limit:
            interval = asked
    start = (int(start) // interval) * interval
    return start, end, interval


def _frame(start: float, end: float, interval: int, partial: bool) -> tuple[int, int, int]:
    """``zerofill`` and ``calculate_time_frame``: buckets from the aligned start up to the end
    rounded down (one more when that leaves a single window, and ``end`` reported one second
    later), plus the bucket the end falls in only with ``partial``. Returns the first
    bucket, the number of buckets and the ``end`` reported."""
    rollup_start = int(start) // interval * interval
    rollup_end = int(end) // interval * interval
    if rollup_end - rollup_start == interval:
        rollup_end += 1
    slots = len(range(rollup_start, rollup_end, interval))
    last = int(end) // interval * interval
    if partial and last < end and last >= rollup_start + slots * interval:
        slots += 1
    return rollup_start, slots, rollup_end


def _series(
    events: list[EventRecord],
    frame: tuple[int, int, int],
    interval: int,
    axis: str,
    order: int | None,
    comparison: list[EventRecord] | None,
    delta: int,
) -> dict[str, Any]:
    start, slots, end = frame
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
        data.append([start + n * interval, [point]])
    body: dict[str, Any] = {
        "data": data,
        "start": start,
        "end": end,
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


def _group_rank(
    data: Dataset, column: str
) -> Callable[[tuple[str, list[EventRecord]]], tuple[bool, Any]]:
    """A sort key for top-events groups: ``column``'s value over a group's events."""

    def key(group: tuple[str, list[EventRecord]]) -> tuple[bool, Any]:
        members = group[1]
        value = (
            _aggregate(column, members) if "(" in column else _plain(data, members[0], column)
        )
        return _column(column)({column: value})

    return key


def _top_events(request: web.Request) -> int:
    """``topEvents`` as ``OrganizationEventsStatsEndpoint.get`` reads it (0: not asked)."""
    top = _param(request, "topEvents")
    if top is None:
        return 0
    try:
        count = int(top)
    except ValueError:
        raise ApiError(400, "topEvents must be an integer") from None
    if count > 10:
        raise ApiError(400, "Can only get up to 10 top events")
    if count <= 0:
        raise ApiError(400, "topEvents needs to be at least 1")
    return count


def _comparison_delta(request: web.Request) -> int:
    """``comparisonDelta`` read with ``int()`` (0: no comparison, as Sentry's falsy delta)."""
    if "comparisonDelta" not in request.query:
        return 0
    try:
        return int(_param(request, "comparisonDelta", ""))
    except ValueError:
        raise ApiError(400, "comparisonDelta must be an integer") from None


def _check_comparison(request: web.Request, start: float, delta: int) -> None:
    """``get_event_stats_data``: with a ``comparisonDelta`` (even 0), a start ``delta``
    seconds before the range's (as ``get_snuba_params`` rounded it) that falls before the
    retention is refused."""
    data = _state(request).data
    retention = data.retention_days
    if "comparisonDelta" not in request.query or not retention:
        return
    if start - delta < data.now_ts - retention * 86400:
        raise ApiError(400, OUTSIDE_COMPARISON)


def _check_axes(axes: list[str]) -> None:
    """The y-axes the fake computes (functions of ``_FIELD_TYPES``); a 400 for any other,
    where the query builder resolves the columns."""
    for axis in axes:
        if axis not in _FIELD_TYPES or "(" not in axis:
            raise ApiError(400, f"Invalid yAxis: {axis}")


async def events_stats(request: web.Request) -> web.Response:
    """``OrganizationEventsStatsEndpoint.get``: ``topEvents``, ``comparisonDelta`` and the
    dataset, then ``get_event_stats_data``: ``get_snuba_params`` (no project: no data;
    ``check_global_views=False``, so never the older servers' refusal of several
    projects), the rollup, the comparison's retention, then, for top events,
    ``timestamp`` among the fields, then the query (its conditions and the retention, then
    the columns)."""
    org = _org(request)
    top = _top_events(request)
    delta = _comparison_delta(request)
    dataset = _dataset(request)
    params = _snuba_params(request, org, check_global_views=False)
    if params is None:
        return _json(b'{"data":[]}')
    axes = request.query.getall("yAxis", []) or ["count()"]
    start, end, interval = _buckets(
        request, params.start, params.end, top, dataset in RPC_DATASETS
    )
    _check_comparison(request, params.start, delta)
    selected = request.query.getall("field", [])
    # ``get_field_list`` leaves equations out; the group columns are what is not a function.
    if top and "timestamp" in [f for f in selected if not f.startswith("equation|")]:
        raise ApiError(400, "Cannot group by timestamp")
    events = _discover_events(request, org, params, dataset, (start, end))
    if not top:
        _check_axes(axes)
    # ``top_events_timeseries`` takes no comparison; ``timeseries_query`` compares one column.
    comparison = None
    if delta and not top:
        if len(axes) > 1:
            raise ApiError(400, ONE_COLUMN)
        comparison = [
            e
            for p in params.projects
            for e in p.events
            if start - delta <= e.timestamp < end - delta and queried(e)
        ]

    # ``allow_partial_buckets``: ``request.GET.get("partial") == "1"``.
    frame = _frame(start, end, interval, _param(request, "partial") == "1")

    def make(members: list[EventRecord], axis: str, order: int | None) -> dict[str, Any]:
        return _series(members, frame, interval, axis, order, comparison, delta)

    if not top:
        if len(axes) == 1:
            return _json(_encode(make(events, axes[0], None)))
        return _json(_encode({axis: make(events, axis, n) for n, axis in enumerate(axes)}))
    # ``get_orderby``: ``sort``, else ``orderby``; the first query (``top_events_timeseries``
    # runs ``query(selected_columns=fields, orderby=...)``) adds no ``id``.
    orderby = request.query.getall("sort", []) or request.query.getall("orderby", [])
    columns = [_sort_column(key, selected, auto_fields=False) for key in orderby]
    fields = [f for f in selected if "(" not in f]
    if not fields:
        raise ApiError(400, "You must provide at least one field to group by")
    # The series are the second query's (``TopEventsQueryBuilder``), after the first one's.
    _check_axes(axes)
    groups: dict[str, list[EventRecord]] = defaultdict(list)
    data = _state(request).data
    for event in events:
        groups[",".join(str(_plain(data, event, f)) for f in fields)].append(event)
    ranked = sorted(groups.items(), key=lambda kv: (-len(kv[1]), kv[0]))
    for key, column in reversed(list(zip(orderby, columns, strict=True))):
        ranked.sort(key=_group_rank(data, column), reverse=key.startswith("-"))
    chosen = ranked[:top]
    rest = [e for _, members in ranked[top:] for e in members]
    if rest and not _flag(request, "excludeOther"):
        chosen.append(("Other", rest))
    if not chosen:
        # ``allow_empty=False``: one zero-filled result without an order, serialised as a
        # plain series (``comparisonCount`` zero when asked), or as the group "" for several.
        if len(axes) == 1:
            placeholder = _series([], frame, interval, axes[0], None, [] if delta else None, 0)
            return _json(_encode(placeholder))
        return _json(_encode({"": _axes(make, [], axes)}))
    body: dict[str, Any] = {}
    for order, (label, members) in enumerate(chosen):
        if len(axes) == 1:
            body[label] = make(members, axes[0], order)
        else:
            body[label] = {**_axes(make, members, axes), "order": order}
    return _json(_encode(body))


def _axes(
    make: Callable[[list[EventRecord], str, int | None], dict[str, Any]],
    members: list[EventRecord],
    axes: list[str],
) -> dict[str, Any]:
    """``serialize_multiple_axis``: one series per y-axis, each ordered by its position."""
    return {axis: make(members, axis, n) for n, axis in enumerate(axes)}


_OUTCOMES = (
    "accepted",
    "filtered",
    "rate_limited",
    "invalid",
    "abuse",
    "client_discard",
    "cardinality_limited",
)
_CATEGORIES = frozenset(
    {
        "default",
        "error",
        "transaction",
        "security",
        "attachment",
        "session",
        "profile",
        "replay",
        "transaction_processed",
        "transaction_indexed",
        "monitor",
        "profile_indexed",
        "span",
        "monitor_seat",
        "user_report_v2",
        "metric_bucket",
        "span_indexed",
        "profile_duration",
        "profile_chunk",
        "metric_second",
        "replay_video",
        "uptime",
        "attachment_item",
        "log_item",
        "log_byte",
    }
)
"""Relay's ``DataCategory`` names (``DataCategory.parse``); ``error`` covers the next two."""
_ERROR_CATEGORIES = frozenset({"default", "error", "security"})
MAX_POINTS = 1000
"""``sessions_v2.MAX_POINTS``: intervals a usage query may span."""


def _outcome(event: EventRecord) -> tuple[str, str | None]:
    if event.index % 10 == 0:
        return "filtered", "browser-extensions"
    if event.index % 13 == 0:
        return "rate_limited", "key_quota"
    return "accepted", None


def _category(event: EventRecord) -> str:
    """The category an event's outcome is stored under (``csp`` reports are ``security``)."""
    return {"transaction": "transaction", "default": "default", "csp": "security"}.get(
        event.kind, "error"
    )


def _usage_interval(request: web.Request) -> int:
    """``get_constrained_date_range`` at ``allow_minute_resolution=True`` (what stats_v2
    uses): an interval that does not parse counts as an hour; any multiple of a minute up to
    a day that divides a day is accepted (shorter than an hour reads the raw outcomes)."""
    match = _PERIOD.match(_param(request, "interval", ""))
    interval = int(match.group(1)) * _UNITS[match.group(2)] if match else 3600
    if interval % 60 or interval < 60:
        raise ApiError(
            400, "The interval has to be a multiple of the minimum interval of one minute."
        )
    if interval > 86400:
        raise ApiError(400, "The interval has to be less than one day.")
    if 86400 % interval:
        raise ApiError(400, "The interval should divide one day without a remainder.")
    return interval


def _usage_window(request: web.Request, interval: int) -> tuple[int, int]:
    """``get_constrained_date_range``: the range of ``get_date_range_from_params`` over
    ``statsPeriod``, ``start`` and ``end`` (no ``timeframe`` nor ``statsPeriodStart``:
    ``QueryDefinition.from_query_dict`` passes no other), aligned by ``to_intervals``, at
    most ``MAX_POINTS`` intervals. An explicit ``end`` on a boundary stays the end: the
    second servers before ``to_intervals`` (getsentry/sentry#60466) added to it is gone."""
    start, end = _time_range(request, keys=OUTCOME_DATE_KEYS)
    start = min(start, _state(request).data.now_ts)
    aligned = int(start) // interval * interval
    points = -(-int(end - aligned) // interval)
    if points > MAX_POINTS:
        raise ApiError(400, TOO_MANY_POINTS)
    return aligned, aligned + points * interval


def _usage_filters(request: web.Request) -> tuple[set[str], set[str], str | None]:
    """``QueryDefinition.get_conditions``, in ``DIMENSION_MAP``'s order: outcome and
    category values parsed, one reason, then one ``key_id`` (``KeyDimension``: ``int()``
    or 'Invalid key'; an empty one is none). The fake's outcomes carry no key, so a valid
    one filters nothing out."""
    outcomes = set()
    for raw in request.query.getall("outcome", []):
        if raw.lower() not in _OUTCOMES:
            raise ApiError(400, f'Invalid outcome: "{raw}"')
        outcomes.add(raw.lower())
    categories: set[str] = set()
    for raw in request.query.getall("category", []):
        if raw not in _CATEGORIES:
            raise ApiError(400, f'Invalid category: "{raw}"')
        categories |= _ERROR_CATEGORIES if raw == "error" else {raw}
    if "attachment" in categories and len(categories) > 1:
        raise ApiError(400, "if filtering by attachment no other category may be present")
    reasons = request.query.getall("reason", [])
    key = _param(request, "key_id")
    if key:
        try:
            int(key)
        except ValueError:
            raise ApiError(400, f'Invalid key: "{key}"') from None
    return outcomes, categories, reasons[-1] if reasons else None


def _stats_projects(request: web.Request, org: OrgRecord, group_by: list[str]) -> set[str]:
    """``_get_projects_for_orgstats_query``: an organization total (no ids or ``-1``, and
    ``"project" not in request.GET.get("groupBy")``, which reads the last value only) has
    no project condition; otherwise ``get_projects`` checks the ids, and none left is a
    400."""
    ids = _requested_project_ids(request)
    if (not ids or ids == {-1}) and "project" not in (group_by[-1] if group_by else ""):
        return {p.id for p in org.projects}
    selected = {p.id for p in _projects(request, org)}
    if not selected:
        raise ApiError(400, "No projects available")
    return selected


async def stats_v2(request: web.Request) -> web.Response:
    org = _org(request)
    group_by = request.query.getall("groupBy", [])
    # ``build_outcomes_query``: the projects first, then ``QueryDefinition``.
    selected = _stats_projects(request, org, group_by)
    field_names = request.query.getall("field", [])
    if not field_names:
        raise ApiError(400, 'At least one "field" is required.')
    interval = _usage_interval(request)
    start, end = _usage_window(request, interval)
    for field_name in field_names:
        if field_name not in ("sum(quantity)", "sum(times_seen)"):
            raise ApiError(400, f'Invalid field: "{field_name}"')
    for key in group_by:
        if key not in ("outcome", "category", "reason", "project"):
            raise ApiError(400, f'Invalid groupBy: "{key}"')
    if not request.query.getall("category", []) and "category" not in group_by:
        raise ApiError(400, "Query must have category as groupby or filter")
    outcomes, categories, reason_filter = _usage_filters(request)
    # ``_outcomes_dataset``: below an hour the raw outcomes, whose ``reason`` is null for an
    # outcome without one (``ReasonDimension.map_row`` passes it through); the hourly and
    # daily ones are written with ``ifNull(reason, 'none')``.
    no_reason = None if interval < 3600 else "none"
    slots = (end - start) // interval
    groups: dict[tuple[Any, ...], list[int]] = {}
    for project in org.projects:
        if project.id not in selected:
            continue
        for event in project.events:
            if not start <= event.timestamp < end:
                continue
            category = _category(event)
            outcome, reason = _outcome(event)
            if (categories and category not in categories) or (
                outcomes and outcome not in outcomes
            ):
                continue
            stored_reason = reason if reason is not None else no_reason
            if reason_filter is not None and stored_reason != reason_filter:
                continue
            if category in _ERROR_CATEGORIES:
                category = "error"
            values = {
                "outcome": outcome,
                "category": category,
                "reason": stored_reason,
                "project": int(project.id),
            }
            group_key = tuple(values[g] for g in group_by)
            series = groups.setdefault(group_key, [0] * slots)
            series[int((event.timestamp - start) // interval)] += 1
    if not group_by:
        # No groupBy: the totals query has no GROUP BY and answers one row, even of zeros.
        groups.setdefault((), [0] * slots)
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
