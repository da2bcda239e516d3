"""Handler: Discover (``/events/``), and the field helpers ``events-stats`` shares."""

from __future__ import annotations

import math
import re
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from aiohttp import web

from ._data import Dataset, EventRecord, OrgRecord, ProjectRecord
from ._lookups import (
    InvalidParams,
    _by_short_id,
    _environments,
    _event_range,
    _org,
    _param,
    _per_page,
    _projects,
    _short_id_pattern,
    _single_project_only,
    _time_range,
)
from ._paginators import _page, _parse_cursor
from ._records import queried
from ._search import Term, event_value, parse_query, term_matches
from ._state import INTERNAL_ERROR, ApiError, _encode, _json, _state

_FIELD_TYPES = {
    "id": "string",
    "title": "string",
    "project": "string",
    "project.id": "integer",
    "project.name": "string",
    "timestamp": "date",
    "event.type": "string",
    "level": "string",
    "message": "string",
    "issue": "string",
    "issue.id": "integer",
    "transaction": "string",
    "user.email": "string",
    "environment": "string",
    "release": "string",
    "count()": "integer",
    "count_unique(user)": "integer",
    "last_seen()": "date",
    "first_seen()": "date",
    "p95(transaction.duration)": "duration",
    "p50(transaction.duration)": "duration",
    "avg(transaction.duration)": "duration",
}


def _iso_offset(ts: float) -> str:
    return datetime.fromtimestamp(int(ts), timezone.utc).strftime("%Y-%m-%dT%H:%M:%S+00:00")


def _plain(data: Dataset, event: EventRecord, name: str) -> Any:
    if name == "user.email":  # a built event's user, as its summary shows it
        return data.event_user(event).get("email")
    # Its own data from the issue it was made in; its group (``issue``) may be a merge's.
    issue, made_in = event.issue, event.made_in
    return {
        "id": event.event_id,
        "title": made_in.title if made_in else f"GET /api/items/{event.index % 17}",
        "project": event.project.slug,
        "project.name": event.project.slug,
        "project.id": int(event.project.id),
        "timestamp": _iso_offset(event.timestamp),
        "event.type": "transaction"
        if event.kind == "transaction"
        else ("default" if event.kind == "default" else "error"),
        "level": made_in.level if made_in else "info",
        "message": made_in.title if made_in else "",
        "issue": issue.short_id if issue else None,
        "issue.id": int(issue.id) if issue else None,
        "transaction": f"/api/items/{event.index % 17}",
        "environment": event.environment,
        "release": f"{event.project.slug}@1.4.{event.index % 5}",
    }.get(name)


def _search_value(data: Dataset, event: EventRecord, key: str) -> str | None:
    """A search key on a Discover row: its column, else what the event search reads."""
    value = _plain(data, event, key)
    return event_value(data, event, key) if value is None else str(value)


def _column(name: str) -> Callable[[dict[str, Any]], tuple[bool, Any]]:
    """A sort key for one row column; ``None`` sorts last."""

    def key(row: dict[str, Any]) -> tuple[bool, Any]:
        value = row[name]
        return (value is None, value if value is not None else 0)

    return key


_FUNCTION = re.compile(
    r"^(?P<function>[^\(]+)\((?P<columns>.*)\)( (as|AS) (?P<alias>(\w+)?(?!\d+)\w+))?$"
)


def _alias(field: str) -> str:
    """``get_function_alias`` (arguments split on commas; quoted commas are not played)."""
    match = _FUNCTION.search(field)
    if match is None:
        return field
    if match.group("alias") is not None:
        return match.group("alias")
    args = [a.strip() for a in match.group("columns").split(",") if a.strip()]
    columns = re.sub(r"[^\w]", "_", "_".join(args))
    return f"{match.group('function')}_{columns}".rstrip("_")


def _sort_column(key: str, fields: list[str], *, auto_fields: bool = True) -> str:
    """The selected column a sort names, as ``resolve_orderby`` matches it: the field itself,
    a function by its alias, ``equation[N]``, or ``id`` (added to every query without an
    aggregate, with ``auto_fields``); anything else is Sentry's 400."""
    name = key.lstrip("-")
    if name in fields:
        return name
    equations = [f for f in fields if f.startswith("equation|")]
    numbered = re.fullmatch(r"equation\[(\d+)\]", name)
    if numbered and int(numbered.group(1)) < len(equations):
        return equations[int(numbered.group(1))]
    functions = {_alias(f): f for f in fields if "(" in f and not f.startswith("equation|")}
    if _alias(name) in functions:
        return functions[_alias(name)]
    if auto_fields and name == "id" and not functions and not any("(" in f for f in equations):
        return "id"
    raise ApiError(400, "Cannot sort by a field that is not selected.")


def _auto_fields(fields: list[str], aggregated: bool) -> list[str]:
    """The columns ``resolve_select`` adds with ``auto_fields``, after the requested ones:
    ``id`` when nothing is aggregated, then ``project.name`` when ``id`` is selected (so
    asked for or added) and ``project.id`` is not."""
    added = [] if aggregated or "id" in fields else ["id"]
    if "project.id" not in fields and "project.name" not in fields and (added or "id" in fields):
        added.append("project.name")
    return added


def _aggregate(name: str, events: list[EventRecord]) -> Any:
    if name == "count()":
        return len(events)
    if name == "count_unique(user)":
        return len({e.user for e in events})
    if name == "last_seen()":
        return _iso_offset(max(e.timestamp for e in events))
    if name == "first_seen()":
        return _iso_offset(min(e.timestamp for e in events))
    if "transaction.duration" in name:
        durations = sorted(800.0 + (e.index % 40) * 12.5 for e in events if e.kind == "transaction")
        if not durations:
            return None
        if name.startswith("avg"):
            return sum(durations) / len(durations)
        pct = 0.95 if name.startswith("p95") else 0.5
        return durations[min(len(durations) - 1, int(len(durations) * pct))]
    raise ApiError(400, f"Invalid query. {name} is not a valid function")


def _field_type(name: str) -> str:
    """A column's meta type: equations are numbers, unknown names (tags) strings."""
    if name.startswith("equation|"):
        return "number"
    return _FIELD_TYPES.get(name, "number" if "(" in name else "string")


_TOKEN = re.compile(r"\s*(?:(?P<number>\d+(?:\.\d+)?)|(?P<op>[-+*/()])|(?P<name>[\w.:\[\]]+))")


def _equation_tokens(text: str) -> list[tuple[str, str]]:
    """Numbers, operators and parentheses, column names, and whole function calls."""
    tokens: list[tuple[str, str]] = []
    position = 0
    while position < len(text.rstrip()):
        match = _TOKEN.match(text, position)
        if match is None or match.end() == position:
            raise ApiError(400, f"Unable to parse {text}")
        kind = match.lastgroup or "op"
        value = match.group(kind)
        position = match.end()
        if kind == "name" and text[position : position + 1] == "(":
            depth, end = 0, position
            for end in range(position, len(text)):
                depth += {"(": 1, ")": -1}.get(text[end], 0)
                if depth == 0:
                    break
            value, position = value + text[position : end + 1], end + 1
            kind = "function"
        tokens.append((kind, value))
    return tokens


def _equation(data: Dataset, field: str, events: list[EventRecord]) -> Any:
    """An ``equation|…`` column: ``+ - * /`` and parentheses over numbers, the aggregates
    the fake computes (over ``events``) and numeric columns (of the first event). Anything
    null, or a division by zero (Sentry's ``nullIf``), makes it null."""
    text = field.removeprefix("equation|")
    tokens = _equation_tokens(text)

    def operand(kind: str, value: str) -> Any:
        if kind == "number":
            return float(value) if "." in value else int(value)
        if kind == "function":
            found = _aggregate(value, events) if events else None
        else:
            found = _plain(data, events[0], value) if events else None
        number = isinstance(found, (int, float)) and not isinstance(found, bool)
        return found if number else None

    def apply(op: str, left: Any, right: Any) -> Any:
        if left is None or right is None or (op == "/" and right == 0):
            return None
        if op == "+":
            return left + right
        if op == "-":
            return left - right
        return left * right if op == "*" else left / right

    def expression(at: int) -> tuple[Any, int]:
        value, at = term(at)
        while at < len(tokens) and tokens[at][1] in "+-" and tokens[at][0] == "op":
            right, after = term(at + 1)
            value, at = apply(tokens[at][1], value, right), after
        return value, at

    def term(at: int) -> tuple[Any, int]:
        value, at = factor(at)
        while at < len(tokens) and tokens[at][1] in "*/" and tokens[at][0] == "op":
            right, after = factor(at + 1)
            value, at = apply(tokens[at][1], value, right), after
        return value, at

    def factor(at: int) -> tuple[Any, int]:
        if at >= len(tokens):
            raise ApiError(400, f"Unable to parse {text}")
        kind, value = tokens[at]
        if (kind, value) == ("op", "("):
            inner, at = expression(at + 1)
            if at >= len(tokens) or tokens[at] != ("op", ")"):
                raise ApiError(400, f"Unable to parse {text}")
            return inner, at + 1
        if (kind, value) == ("op", "-"):
            inner, at = factor(at + 1)
            return (None if inner is None else -inner), at
        if kind == "op":
            raise ApiError(400, f"Unable to parse {text}")
        return operand(kind, value), at + 1

    result, end = expression(0)
    if end != len(tokens):
        raise ApiError(400, f"Unable to parse {text}")
    return result


_DATASETS = (
    "discover",
    "errors",
    "metricsEnhanced",
    "metrics",
    "ourlogs",
    "logs",
    "uptime_results",
    "profiles",
    "issuePlatform",
    "profileFunctions",
    "profile_functions",
    "spans",
    "spansIndexed",
    "spansMetrics",
    "tracemetrics",
    "transactions",
)
"""``DATASET_OPTIONS``' keys, in its order (its 400 lists them so)."""
_SERVED_DATASETS = frozenset(
    {"discover", "errors", "transactions", "issuePlatform", "metricsEnhanced", "metrics"}
)
"""The datasets the fake holds events for; the others (logs, spans, profiles, uptime,
trace metrics) are accepted and answer no rows."""
_TRANSACTION_DATASETS = frozenset({"transactions", "metricsEnhanced", "metrics"})
_LARGE_PAGE_DATASETS = ("logs", "ourlogs", "tracemetrics")
"""Datasets whose ``per_page`` may go to 9999 (``OurLogs``, ``TraceMetrics``)."""
_VALID_FIELD = re.compile(r"^[a-zA-Z0-9_.:-]*$")
"""``VALID_FIELD_PATTERN``: a name Sentry resolves, as a tag when it knows no such column."""


def _quantized(moment: float, key: int, duration: int, *, up: bool) -> float:
    """``snuba.quantize_time``: the last window start (windows of ``duration`` seconds from
    each hour, shifted by ``key % duration``) strictly before ``moment``; with ``up``, the
    end of that window. The fraction of a second is dropped."""
    hour = moment // 3600 * 3600
    past = int(moment - hour)
    window = past // duration * duration + key % duration
    past = window if window < past else window - duration
    return hour + past + (duration if up else 0)


def _filter_range(request: web.Request) -> tuple[float, float]:
    """``get_filter_params``' date range: ``get_date_range_from_params`` (``timeframe``
    read), a refusal answered "Invalid date range: ...". Its alias of ``range`` for
    ``statsPeriod`` assigns into the query string's ``QueryDict``, which Django keeps
    immutable: the ``AttributeError`` is Sentry's 500."""
    if "range" in request.query and "statsPeriod" not in request.query:
        raise ApiError(500, body=_encode(INTERNAL_ERROR))
    try:
        return _time_range(request, timeframe=True)
    except InvalidParams as exc:
        raise ApiError(400, f"Invalid date range: {exc.message}") from None


def _stats_range(request: web.Request, org: OrgRecord) -> tuple[float, float]:
    """The range of ``get_filter_params``, then ``quantize_date_params``: a ``statsPeriod``
    range of more than an hour is rounded out to the minute (to 15 minutes from 30 days
    up), keyed by the organization's id; other ranges are left as they are.
    ``get_snuba_params`` does it for ``/events/`` and ``events-stats`` alike
    (``quantize_date_params=True`` unless the caller says not)."""
    start, end = _filter_range(request)
    span = end - start
    if "statsPeriod" not in request.query or span <= 3600:
        return start, end
    duration = 15 * 60 if span >= 30 * 86400 else 60
    key = int(org.id) if org.id.isdigit() else 0
    return (
        _quantized(start, key, duration, up=False),
        _quantized(end, key, duration, up=True),
    )


def _event_bounds(request: web.Request, start: float, end: float) -> tuple[float, float]:
    """The rounded range the events are read over, as ``_event_range`` reads the request's
    own: whole seconds, the start moved up to the retention's (which refuses a range ending
    before it)."""
    lower, _ = _event_range(request)
    retained = lower > math.floor(_filter_range(request)[0])
    return (lower if retained else float(math.floor(start))), float(math.floor(end))


def _issue_terms(request: web.Request, org: OrgRecord, terms: list[Term]) -> list[Term]:
    """``_issue_filter_converter``: an ``issue`` filter is one on ``issue.id``, its short ids
    looked up in the organization as ``by_qualified_short_id_bulk`` does (the slug in any
    case, no issue deleted or merged away); ``unknown`` and an empty value (``has:issue``)
    are "no issue". A short id that names no issue fails the query: a 400 naming them all
    (``InvalidIssueSearchQuery``; before it, ``InvalidSearchQuery``)."""
    data, pattern = _state(request).data, _short_id_pattern(request)
    out = []
    for term in terms:
        if term.key != "issue":
            out.append(term)
            continue
        short_ids = [value for value in term.values if value and value != "unknown"]
        ids = ["" for value in term.values if not value or value == "unknown"]
        found = [_by_short_id(data, org, value, pattern) for value in short_ids]
        issues = [issue for issue in found if issue is not None]
        if len(issues) < len(found):
            if _state(request).profile == "older":
                raise ApiError(400, f"Invalid value '{short_ids}' for 'issue:' filter")
            raise ApiError(400, f"Issue IDs do not exist: {short_ids}")
        ids.extend(sorted((issue.id for issue in issues), key=int))
        out.append(Term("issue.id", tuple(ids), term.negated, term.text))
    return out


MAX_FIELDS = 20
"""``MAX_FIELDS``: ``field`` values (equations included) one query may select."""


@dataclass(frozen=True)
class SnubaParams:
    """What ``get_snuba_params`` settles before any query runs: the range (rounded out by
    ``quantize_date_params``), the projects and the environments."""

    start: float
    end: float
    projects: list[ProjectRecord]
    environments: set[str]


def _snuba_params(
    request: web.Request, org: OrgRecord, *, check_global_views: bool = True
) -> SnubaParams | None:
    """``get_snuba_params``: at most ``MAX_FIELDS`` fields, then ``get_filter_params`` in
    its order (the date range, the projects, the environments), then, with
    ``check_global_views``, the older servers' refusal of several projects. No project to
    query (``NoProjects``) is ``None``, which each endpoint answers its own way before
    anything else is checked."""
    if len(request.query.getall("field", [])) > MAX_FIELDS:
        raise ApiError(
            400,
            f"You can view up to {MAX_FIELDS} fields at a time. Please delete some and try again.",
        )
    start, end = _stats_range(request, org)
    projects = _projects(request, org)
    if not projects:
        return None
    environments = _environments(request, org)
    if check_global_views:
        _single_project_only(
            request, org, projects, "You cannot view events from multiple projects."
        )
    return SnubaParams(start, end, projects, environments)


def _dataset(request: web.Request) -> str:
    """``get_dataset``: one of ``DATASET_OPTIONS``, ``discover`` by default."""
    dataset = _param(request, "dataset", "discover")
    if dataset not in _DATASETS:
        raise ApiError(400, f"dataset must be one of: {', '.join(_DATASETS)}")
    return dataset


def _discover_events(
    request: web.Request,
    org: OrgRecord,
    params: SnubaParams,
    dataset: str,
    bounds: tuple[float, float] | None = None,
) -> list[EventRecord]:
    """The events a query reads, as the query builder's ``resolve_query`` resolves it: the
    query's conditions (``issue`` filters looked up), then the range moved up to the
    retention's (``resolve_params``, which refuses a range ending before it). ``bounds``
    replaces the params' range (``events-stats`` aligns it to its buckets first). A
    dataset the fake holds no events of answers none, its query unread. An issue's events
    are gone once its deletion has ended (``Dataset.finish_deletions``)."""
    served = dataset in _SERVED_DATASETS
    query = parse_query(_param(request, "query", "")) if served else []
    terms = _issue_terms(request, org, query)
    start, end = _event_bounds(request, *(bounds or (params.start, params.end)))
    if not served:
        return []
    data = _state(request).data
    environments = params.environments
    out = []
    for project in params.projects:
        for event in project.events:
            if not start <= event.timestamp < end or not queried(event):
                continue
            if dataset == "errors" and event.kind == "transaction":
                continue
            if dataset in _TRANSACTION_DATASETS and event.kind != "transaction":
                continue
            if environments and event.environment not in environments:
                continue
            if not all(term_matches(t, _search_value(data, event, t.key)) for t in terms):
                continue
            out.append(event)
    return out


async def discover(request: web.Request) -> web.Response:
    """``OrganizationEventsEndpoint.get``: ``get_snuba_params`` (no project: an empty answer
    with a tip), the dataset, ``paginate``'s page size and cursor, then the query:
    ``discover.query`` wants columns, then the builder resolves the conditions, the
    retention, the columns and the sort, in that order."""
    org = _org(request)
    fields = request.query.getall("field", [])
    params = _snuba_params(request, org)
    if params is None:
        return _json(
            _encode(
                {
                    "data": [],
                    "meta": {"tips": {"query": "Need at least one valid project to query."}},
                }
            )
        )
    dataset = _dataset(request)
    # ``if request.GET.get("noPagination"):`` one response of at most ``per_page`` rows,
    # read with the default maximum whatever the dataset, and no ``Link`` nor cursor.
    whole = bool(_param(request, "noPagination"))
    large = dataset in _LARGE_PAGE_DATASETS and not whole
    per_page = _per_page(request, maximum=9999 if large else 100)
    if not whole:
        _parse_cursor(request)
    if not fields:
        raise ApiError(400, "No columns selected")
    events = _discover_events(request, org, params, dataset)
    for name in fields:
        tag = re.fullmatch(r"tags\[(.*)\]", name)
        if "(" not in name and not _VALID_FIELD.match(tag.group(1) if tag else name):
            raise ApiError(400, f"Invalid characters in field {name}")
    data = _state(request).data
    equations = [f for f in fields if f.startswith("equation|")]
    aggregates = [f for f in fields if "(" in f and f not in equations]
    plain = [f for f in fields if "(" not in f]
    aggregated = bool(aggregates) or any("(" in e for e in equations)
    added = _auto_fields(fields, aggregated)
    rows: list[dict[str, Any]]
    if aggregated:
        # ``project.name`` joins the group key only beside ``id``, which it cannot split.
        groups: dict[tuple[Any, ...], list[EventRecord]] = defaultdict(list)
        for event in events:
            groups[tuple(_plain(data, event, f) for f in plain)].append(event)
        rows = [
            {
                **dict(zip(plain, key, strict=True)),
                **{a: _aggregate(a, members) for a in aggregates},
                **{e: _equation(data, e, members) for e in equations},
                **{f: _plain(data, members[0], f) for f in added},
            }
            for key, members in groups.items()
        ]
        first = (aggregates or equations)[0]
        rows.sort(
            key=lambda r: (
                -r[first] if isinstance(r[first], int) else 0,
                str(tuple(r[p] for p in plain)),
            )
        )
    else:
        rows = []
        for event in events:
            row = {f: _plain(data, event, f) for f in plain}
            row.update({e: _equation(data, e, [event]) for e in equations})
            row.update({f: _plain(data, event, f) for f in added})
            rows.append(row)
    for key in reversed(request.query.getall("sort", [])):
        rows.sort(key=_column(_sort_column(key, fields)), reverse=key.startswith("-"))
    columns = [*fields, *added]
    meta = {
        "fields": {f: _field_type(f) for f in columns},
        "units": {
            f: ("millisecond" if _FIELD_TYPES.get(f) == "duration" else None) for f in columns
        },
        "isMetricsData": False,
        "isMetricsExtractedData": False,
        "tips": {},
        "datasetReason": "unchanged",
        "dataset": dataset,
    }
    if whole:
        body = b"[" + b",".join(_encode(row) for row in rows[:per_page]) + b"]"
        return _json(b'{"data":' + body + b',"meta":' + _encode(meta) + b"}")
    response = _page(request, rows, _encode, per_page=per_page, discover=True)
    assert isinstance(response.body, bytes)
    response.body = b'{"data":' + response.body + b',"meta":' + _encode(meta) + b"}"
    return response
