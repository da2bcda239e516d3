"""Handlers: event listings, single events, event-id lookups and issue hashes."""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable, Collection, Iterable, Sequence

from aiohttp import web

from ._data import EventRecord, OrgRecord
from ._lookups import (
    _HEX32,
    InvalidParams,
    _environments,
    _event_range,
    _exact_flag,
    _issue,
    _org,
    _param,
    _per_page,
    _project,
    _range_given,
    _time_range,
)
from ._paginators import _page
from ._records import queried
from ._routes_discover import _issue_terms
from ._search import (
    InvalidSearchQuery,
    Term,
    UnevaluatedTerm,
    event_detail_terms,
    event_value,
    events_matching,
    parse_query,
    term_matches,
)
from ._state import ApiError, _encode, _json, _state

FULL_PAGE_MAX = 10
"""``FULL_PAYLOAD_MAX_PER_PAGE``: ``ProjectEventsEndpoint.get_per_page`` caps a page of full
payloads at it; ``GroupEventsEndpoint`` has no such cap, and serves ``per_page`` of them."""

MISSING_EVENT = (
    "Event not found. The event ID may be incorrect, or its age exceeded the retention period."
)
NO_MATCHING_EVENT = (
    "No matching event found. Try changing the environments, date range, or query."
)
"""``GroupEventDetailsEndpoint``'s 404s (getsentry/sentry#82490): an event id its issue does
not hold, and no latest, oldest or recommended event among those the request selects."""


def _event_rows(
    request: web.Request, events: Sequence[EventRecord], terms: Sequence[Term] | None = None
) -> list[EventRecord]:
    """An issue's events in the range and environments matching ``terms``, by default the
    ``query`` as the issue's Discover query reads it (``get_query_builder_for_group``): its
    ``issue`` filters looked up by Discover's converter, one naming no issue a 400."""
    start, end = _event_range(request, expired_status=500)
    environments = set(request.query.getall("environment", []))
    if terms is None:
        terms = _issue_terms(request, _org(request), parse_query(_param(request, "query", "")))
    return events_matching(
        _state(request).data,
        (
            e
            for e in events
            if start <= e.timestamp < end and (not environments or e.environment in environments)
        ),
        terms,
    )


def _project_event_rows(request: web.Request, events: Sequence[EventRecord]) -> list[EventRecord]:
    """A project's events in the range whose message contains ``query``, case aside
    (``positionCaseInsensitive``): no search grammar, and no ``environment``. Transactions
    are left out: ``eventstore.backend.get_events`` reads ``Dataset.Events`` by default, and
    so are those of an issue whose deletion has ended. A range it cannot read is "Invalid
    date range parameters provided" whatever the cause."""
    try:
        start, end = _event_range(request, expired_status=500)
    except InvalidParams:
        raise ApiError(400, "Invalid date range parameters provided") from None
    rows = [
        e
        for e in events
        if start <= e.timestamp < end and e.kind != "transaction" and queried(e)
    ]
    query = _param(request, "query")
    if not query:
        return rows
    data, wanted = _state(request).data, query.lower()
    return [e for e in rows if wanted in data.search_message(e).lower()]


def _event_page(
    request: web.Request,
    events: Sequence[EventRecord],
    *,
    sample: bool,
    select: Callable[[web.Request, Sequence[EventRecord]], list[EventRecord]],
    full_max: int | None = None,
) -> web.Response:
    """A page of the ``events`` that ``select`` keeps, newest first, or ordered by event id
    when ``sample`` (how Sentry's sampled order is played here); a page of full payloads
    holds at most ``full_max`` of them where the endpoint caps it."""
    data = _state(request).data
    per_page = _per_page(request)

    def build() -> list[EventRecord]:
        rows = select(request, events)
        return sorted(rows, key=lambda e: e.event_id) if sample else rows

    rows = _state(request).listing(request, build)
    if _exact_flag(request, "full"):
        if full_max is not None:
            per_page = min(per_page, full_max)
        return _page(request, rows, data.event_bytes, per_page=per_page)
    return _page(request, rows, data.summary_bytes, per_page=per_page)


def _event_direct_hit(request: web.Request, events: Sequence[EventRecord]) -> web.Response | None:
    """``get_direct_hit_response``: an event-id query naming exactly one of the issue's events
    in the date range (environments aside) answers that event in full, unpaginated."""
    query = _param(request, "query", "").strip()
    if not _HEX32.match(query):
        return None
    event_id = query.replace("-", "").lower()
    if len(event_id) != 32:
        return None
    start, end = _event_range(request, expired_status=500)
    hits = [e for e in events if e.event_id == event_id and start <= e.timestamp < end]
    if len(hits) != 1:
        return None
    body = b"[" + _state(request).data.event_bytes(hits[0]) + b"]"
    return _json(body, headers={"X-Sentry-Direct-Hit": "1"})


def _neighbour_range(request: web.Request) -> tuple[float, float] | None:
    """``get_date_range_from_params(request.GET, optional=True)``: the range the neighbours
    are looked for in, in whole seconds, or ``None`` when none is sent (Sentry then looks 100
    days either side of the event, further than the fake keeps). A bad one is a 400."""
    try:
        if not _range_given(request, timeframe=True):
            return None
        start, end = _time_range(request, timeframe=True)
    except InvalidParams:
        raise ApiError(400, "Invalid date range") from None
    return float(math.floor(start)), float(math.floor(end))


def _with_neighbours(
    request: web.Request,
    event: EventRecord,
    environments: Collection[str],
    terms: Sequence[Term],
    bounds: tuple[float, float] | None,
) -> bytes:
    """The full event with ``wrap_event_response``'s ``nextEventID``/``previousEventID``: the
    nearest newer and older of its issue's events matching the query ``terms``, the
    ``environments`` and the ``bounds`` (``get_adjacent_event_ids_snql`` and
    ``get_adjacent_event_ids``), whether or not the event itself matches them."""
    data = _state(request).data
    if not terms and bounds is None:
        return data.event_bytes(event, with_neighbours=True, environments=environments)
    body = data.event_body(event)
    if event.issue is not None:
        start, end = bounds if bounds is not None else (-math.inf, math.inf)
        events = event.issue.events
        pos = events.index(event)

        def nearest(candidates: Iterable[EventRecord]) -> str | None:
            for e in candidates:
                if not start <= e.timestamp < end:
                    continue
                if environments and e.environment not in environments:
                    continue
                if all(term_matches(t, event_value(data, e, t.key)) for t in terms):
                    return e.event_id
            return None

        body["nextEventID"] = nearest(reversed(events[:pos]))
        body["previousEventID"] = nearest(events[pos + 1 :])
    return _encode(body)


async def issue_events(request: web.Request) -> web.Response:
    events = _issue(request, _org(request)).events
    # GroupEventsEndpoint: ``request.GET.get("sample") in ("1", "true")``.
    sample = _exact_flag(request, "sample")
    # ``is not None``, not ``or``: before aiohttp 3.12 a fresh ``web.Response`` is false.
    direct = _event_direct_hit(request, events)
    if direct is not None:
        return direct
    return _event_page(request, events, sample=sample, select=_event_rows)


async def project_events(request: web.Request) -> web.Response:
    org = _org(request)
    # ProjectEventsEndpoint: ``request.GET.get("sample") in ("1", "true")``; servers before
    # it read any non-empty value, "0" included.
    sample = _exact_flag(request, "sample")
    return _event_page(
        request,
        _project(request, org).events,
        sample=sample,
        select=_project_event_rows,
        full_max=FULL_PAGE_MAX,
    )


async def issue_event(request: web.Request) -> web.Response:
    org = _org(request)
    issue = _issue(request, org)
    environments = _environments(request, org)
    bounds = _neighbour_range(request)
    try:
        terms = event_detail_terms(_param(request, "query", ""))
    except InvalidSearchQuery:
        # ``parse_and_convert_issue_search_query``'s ``ValidationError``.
        raise ApiError(400, "Invalid event query") from None
    try:
        terms = _issue_terms(request, org, terms)
    except ApiError:
        # ``issue_search_query_to_conditions``: ``format_search_filter`` looks the short ids
        # up as Discover does, and ``GroupEventDetailsEndpoint`` answers its failure so.
        raise ApiError(400, "Unable to parse query") from None
    key = request.match_info["event_id"]
    events = issue.events
    if key in ("latest", "recommended", "oldest"):
        # The choice is made among events matching environment, query and time range.
        events = _event_rows(request, events, terms)
    if key in ("latest", "recommended"):
        event = events[0] if events else None
    elif key == "oldest":
        event = events[-1] if events else None
    else:
        event = next((e for e in events if e.event_id == key.replace("-", "").lower()), None)
        if event is None:
            raise ApiError(404, MISSING_EVENT)
    if event is None:
        raise ApiError(404, NO_MATCHING_EVENT)
    return _json(_with_neighbours(request, event, environments, terms, bounds))


def _lenient_terms(request: web.Request, org: OrgRecord) -> list[Term]:
    """ProjectEventDetailsEndpoint's ``query``, read as an issue event's is: one that does
    not parse, or whose ``issue`` filter names no issue (``format_search_filter``), is
    dropped (``capture_exception``) rather than refused; a term the fake cannot play still
    is."""
    try:
        return _issue_terms(request, org, event_detail_terms(_param(request, "query", "")))
    except UnevaluatedTerm:
        raise
    except ApiError:
        return []


async def project_event(request: web.Request) -> web.Response:
    org = _org(request)
    project = _project(request, org)
    bounds = _neighbour_range(request)
    event = _state(request).data.events_by_id.get(
        request.match_info["event_id"].replace("-", "").lower()
    )
    # ``get_event_by_id`` reads the group id from Snuba: none once the deletion has ended.
    if event is None or event.project is not project or not queried(event):
        raise ApiError(404, "Event not found")
    # ProjectEventDetailsEndpoint: ``wrap_event_response`` with the requested environments,
    # the query's conditions (an issue's event only) and the date range.
    environments = _environments(request, org)
    terms = _lenient_terms(request, org) if event.issue is not None else []
    return _json(_with_neighbours(request, event, environments, terms, bounds))


async def resolve_event_id(request: web.Request) -> web.Response:
    org = _org(request)
    key = request.match_info["event_id"]
    if not _HEX32.match(key):
        raise ApiError(
            400,
            "Event ID must be a valid UUID hex (32-36 characters long, "
            "containing only digits, dashes, or a-f characters)",
        )
    data = _state(request).data
    event = data.events_by_id.get(key.replace("-", "").lower())
    if (
        event is None
        or event.project.org is not org
        or event.kind == "transaction"
        or not queried(event)
    ):
        raise ApiError(404, "The requested resource does not exist")
    issue = event.issue
    body = (
        b'{"organizationSlug":'
        + _encode(org.slug)
        + b',"projectSlug":'
        + _encode(event.project.slug)
        + b',"groupId":'
        + _encode(issue.id if issue else None)
        + b',"eventId":'
        + _encode(event.event_id)
        + b',"event":'
        + data.event_bytes(event)
        + b"}"
    )
    return _json(body)


async def issue_hashes(request: web.Request) -> web.Response:
    org = _org(request)
    issue = _issue(request, org)
    data = _state(request).data
    full = _param(request, "full", "true").lower() in ("1", "true")
    groups: dict[int, list[EventRecord]] = defaultdict(list)
    for event in issue.events:
        groups[event.index % 3].append(event)
    rows = [(f"{int(issue.id) * 7 + k:032x}", events[0]) for k, events in sorted(groups.items())]

    def encode(row: tuple[str, EventRecord]) -> bytes:
        latest = data.event_bytes(row[1]) if full else _encode(data.summary_body(row[1]))
        return (
            b'{"id":'
            + _encode(row[0])
            + b',"latestEvent":'
            + latest
            + b',"mergedBySeer":false,"seerMatchDistance":null}'
        )

    return _page(request, rows, encode, per_page=_per_page(request))
