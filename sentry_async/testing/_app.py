"""The aiohttp application that plays Sentry: routes, pagination, rate limits, faults.

It reproduces what a client can observe of the real server, as Sentry's server code behaves:
the exact ``Link`` format (both rels, previous first, ``?&cursor=``, raw cursors), cursor
formats per paginator, ``X-Hits``, the ``X-Sentry-Rate-Limit-*`` headers on every limited
response, 429s served as JSON with ``text/html``, error bodies, ``full=true`` pages capped at
10 events, and the four shapes of ``events-stats``.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections import Counter, defaultdict
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, TypeVar
from urllib.parse import quote, quote_plus, urlencode

import msgspec
from aiohttp import web

from ._data import Dataset, EventRecord, IssueRecord, OrgRecord, ProjectRecord
from ._faults import Fault, FaultPlan
from ._recorder import RecordedRequest, capture_body, record_request

__all__ = ["RateLimitPolicy", "RecordedRequest", "ServerState", "build_app"]

T = TypeVar("T")
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

_encode = msgspec.json.encode
_JSON = "application/json"
_PERIOD = re.compile(r"^(\d+)([smhdw]?)$")
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_HEX32 = re.compile(r"^[0-9a-fA-F]{32}$|^[0-9a-fA-F-]{36}$")
MAX_HITS = 1000
REQUEST_LINE_LIMIT = 8192
STATS_ROW_LIMIT = 10_000
"""Groups ``stats_v2`` answers at most when grouping by project (tests lower it)."""
FULL_PAGE_MAX = 10


@dataclass
class RateLimitPolicy:
    """Sentry's fixed-window limiter, per route group; ``enforce=False`` only sends headers."""

    limit: int = 40
    window: float = 1.0
    concurrent_limit: int | None = 25
    enforce: bool = True
    retry_after: bool = False
    per_group: dict[str, tuple[int, float, int | None]] = field(default_factory=dict)

    def for_group(self, group: str) -> tuple[int, float, int | None]:
        return self.per_group.get(group, (self.limit, self.window, self.concurrent_limit))


@dataclass
class ServerState:
    data: Dataset
    token: str
    faults: FaultPlan
    policy: RateLimitPolicy | None
    link_host: str | None = None
    legacy_links: bool = False
    profile: str = "current"
    """``"older"``: a server from before September 2025 (multi-project refusals, a bare-string
    429 body, no ``X-Sentry-Rate-Limit-*`` headers as on many self-hosted installs)."""
    region_ports: dict[int, str] = field(default_factory=dict)
    """Listening port -> region name, when the server plays several regions."""
    requests: list[RecordedRequest] = field(default_factory=list)
    in_flight: int = 0
    max_in_flight: int = 0
    group_in_flight: Counter[str] = field(default_factory=Counter)
    group_max_in_flight: Counter[str] = field(default_factory=Counter)
    windows: dict[str, tuple[int, int]] = field(default_factory=dict)
    listings: dict[tuple[Any, ...], tuple[int, list[Any]]] = field(default_factory=dict)
    """Filtered, sorted listings by path and query (without the cursor), so that walking
    thousands of pages does not filter and sort the whole dataset once per page."""

    def listing(self, request: web.Request, build: Callable[[], list[T]]) -> list[T]:
        key = (
            request.path,
            tuple(sorted((k, v) for k, v in request.query.items() if k != "cursor")),
        )
        cached = self.listings.get(key)
        if cached is not None and cached[0] == self.data.generation:
            return cached[1]
        rows = build()
        if len(self.listings) >= 256:
            self.listings.clear()
        self.listings[key] = (self.data.generation, rows)
        return rows


class ApiError(Exception):
    def __init__(self, status: int, detail: Any = None, *, body: bytes | None = None) -> None:
        self.status = status
        self.body = (
            body
            if body is not None
            else (_encode({"detail": detail}) if detail is not None else b"")
        )


def _json(body: bytes, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(body=body, status=status, content_type=_JSON, headers=headers)


_STATE = web.AppKey("state", ServerState)


def _request_key(name: str, type_: type[Any]) -> Any:
    """A typed request key where aiohttp has them (3.13+), else the plain string."""
    factory = getattr(web, "RequestKey", None)
    return factory(name, type_) if factory is not None else name


_SERVE = _request_key("serve", int)
"""Rows per page a ``short_pages`` fault allows for this request."""


def _state(request: web.Request) -> ServerState:
    return request.app[_STATE]


# -- parameters -----------------------------------------------------------------------------


def _parse_time(value: str, name: str) -> float:
    text = value.strip()
    try:
        return float(text)
    except ValueError:
        pass
    text = re.sub(r"(Z|\+\d\d:\d\d)$", "", text)
    for fmt in ("%Y-%m-%dT%H:%M:%S.%f", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d"):
        try:
            return datetime.strptime(text, fmt).replace(tzinfo=timezone.utc).timestamp()
        except ValueError:
            continue
    raise ApiError(400, f"{name} is not a valid ISO8601 date query")


def _period(value: str) -> float:
    match = _PERIOD.match(value)
    if not match:
        raise ApiError(400, f"Invalid statsPeriod: {value!r}")
    return int(match.group(1)) * _UNITS[match.group(2)]


def _time_range(request: web.Request, default: float) -> tuple[float, float]:
    q = request.query
    now = _state(request).data.now_ts
    if "start" in q or "end" in q:
        if "start" not in q or "end" not in q:
            raise ApiError(400, "start and end are both required")
        start, end = _parse_time(q["start"], "start"), _parse_time(q["end"], "end")
        if start >= end:
            raise ApiError(400, "start must be before end")
        return start, end
    if q.get("statsPeriod"):
        return now - _period(q["statsPeriod"]), now
    return now - default, now


def _per_page(request: web.Request, name: str = "per_page", maximum: int = 100) -> int:
    raw = request.query.get(name)
    if raw is None:
        return 100
    try:
        value = int(raw)
    except ValueError:
        raise ApiError(400, f"Invalid {name} parameter.") from None
    if value > maximum:
        # Sentry's ``Endpoint.get_per_page``.
        raise ApiError(400, f"Invalid {name} value. Cannot exceed {maximum}.")
    if value < 1:
        raise ApiError(400, f"Invalid {name} value. Must be between 1 and {maximum}.")
    return value


def _flag(request: web.Request, name: str) -> bool:
    return request.query.get(name, "").lower() in ("1", "true")


# -- pagination -----------------------------------------------------------------------------


def _parse_cursor(request: web.Request) -> tuple[int, int, int]:
    raw = request.query.get("cursor")
    if raw is None or raw == "":
        return 0, 0, 0
    parts = raw.split(":")
    try:
        if len(parts) != 3:
            raise ValueError
        value = int(float(parts[0]))
        return value, int(parts[1]), int(parts[2])
    except ValueError:
        raise ApiError(400, "Invalid cursor parameter.") from None


def _link(
    request: web.Request, links: Sequence[tuple[str, str, bool]], *, discover: bool = False
) -> str:
    state = _state(request)
    base = state.link_host or f"{request.scheme}://{request.host}"
    # Django's ``QueryDict.lists()`` order: repeated keys grouped where the key first appears.
    grouped: dict[str, list[str]] = {}
    for key, value in request.query.items():
        if key != "cursor":
            grouped.setdefault(key, []).append(value)
    pairs = [(key, value) for key, values in grouped.items() for value in values]
    if discover:
        # Discover joins ``urlquote(k)=urlquote(v)``: spaces as %20, "/" kept.
        query = "&".join(f"{quote(key)}={quote(value)}" for key, value in pairs)
    else:
        # Other endpoints use ``QueryDict.urlencode()``, i.e. ``quote_plus``.
        query = urlencode(pairs, quote_via=quote_plus)
    uri = f"{base}{quote(request.path)}?{query}"
    out = []
    for rel, cursor, more in links:
        text = f'<{uri}&cursor={cursor}>; rel="{rel}"; results="{"true" if more else "false"}"'
        if not state.legacy_links:
            text += f'; cursor="{cursor}"'
        out.append(text)
    return ", ".join(out)


def _page(
    request: web.Request,
    rows: Sequence[T],
    encode: Callable[[T], bytes],
    *,
    per_page: int,
    style: str = "offset",
    hits: bool = False,
    discover: bool = False,
) -> web.Response:
    """One page of ``rows`` with Sentry's Link header; ``style`` picks the cursor format."""
    value, offset, _ = _parse_cursor(request)
    if offset < 0:
        raise ApiError(400, "Invalid cursor parameter.")
    if style == "page":
        # Sentry's OffsetPaginator: the cursor is <page size>:<page number>, and the page
        # starts at number * the size the cursor was made with. Asked with another size,
        # it keeps the last per_page + 1 rows of that window, as Sentry does: a client
        # that changes page size mid-stream skips rows, visibly to tests.
        size_then = value or per_page
        start = offset * size_then
        window = rows[start : start + size_then + 1]
        if size_then != per_page:
            window = window[-(per_page + 1) :]
        more = len(window) > per_page
        page = window[:per_page]
        prev_cursor, next_cursor = f"{per_page}:{offset - 1}:1", f"{per_page}:{offset + 1}:0"
    else:
        serve = request.get(_SERVE)
        count = per_page if serve is None else min(per_page, serve)
        page = rows[offset : offset + count]
        next_offset = offset + (len(page) if serve is not None else per_page)
        more = next_offset < len(rows)
        prev_offset = max(0, offset - per_page)
        anchor = value + 1 if serve is not None else (value if style == "value" else 0)
        if style == "value" and not value:
            anchor = int(_state(request).data.now_ts * 1000)
        prev_cursor, next_cursor = f"{anchor}:{prev_offset}:1", f"{anchor}:{next_offset}:0"
    headers = {
        "Link": _link(
            request,
            [("previous", prev_cursor, offset > 0), ("next", next_cursor, more)],
            discover=discover,
        )
    }
    if hits:
        headers["X-Hits"] = str(min(len(rows), MAX_HITS))
        headers["X-Max-Hits"] = str(MAX_HITS)
    body = b"[" + b",".join(encode(row) for row in page) + b"]"
    return _json(body, headers=headers)


# -- lookups --------------------------------------------------------------------------------


def _region(request: web.Request) -> str | None:
    """The region this request reached, when the server plays several (else ``None``)."""
    ports = _state(request).region_ports
    if not ports:
        return None
    sock = request.transport.get_extra_info("sockname") if request.transport else None
    return ports.get(sock[1]) if sock else None


def _org(request: web.Request) -> OrgRecord:
    org = _state(request).data.org(request.match_info["org"])
    if org is None:
        raise ApiError(404, "The requested resource does not exist")
    region = _region(request)
    if region is not None and org.region != region:
        # An organization's data lives in its region only.
        raise ApiError(404, "The requested resource does not exist")
    return org


def _project(request: web.Request, org: OrgRecord) -> ProjectRecord:
    key = request.match_info["project"]
    project = _state(request).data.project(org, key)
    if project is None:
        new = org.redirects.get(key)
        if new is not None:
            # ``ProjectEndpoint.convert_args`` -> ``ProjectMoved``: 302, no Location header.
            path = request.path.replace(f"/{key}/", f"/{new}/", 1)
            url = f"{path}?{request.query_string}" if request.query_string else path
            raise ApiError(
                302,
                body=_encode(
                    {"slug": new}
                    if _state(request).profile == "older"
                    else {
                        "slug": new,
                        "detail": {
                            "code": "resource-moved",
                            "message": "Resource has been moved",
                            "extra": {"url": url, "slug": new},
                        },
                    }
                ),
            )
        raise ApiError(404, "The requested resource does not exist")
    return project


_SHORT_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]*-[A-Za-z0-9]+$", re.ASCII)


def _by_short_id(data: Dataset, org: OrgRecord, key: str) -> IssueRecord | None:
    key = key.upper()
    for project in org.projects:
        for issue in project.issues:
            if issue.short_id == key and not issue.deleted:
                return issue
    return None


def _issue(request: web.Request, org: OrgRecord) -> IssueRecord:
    key = request.match_info["issue_id"]
    data = _state(request).data
    issue: IssueRecord | None
    if key.isascii() and key.isdigit():
        issue = data.issues_by_id.get(key)
    elif _SHORT_ID.match(key):
        # ``get_group_with_redirect`` accepts a qualified short id as well.
        issue = _by_short_id(data, org, key)
    else:
        issue = None
    if issue is None or issue.deleted or issue.project.org is not org:
        raise ApiError(404, "The requested resource does not exist")
    return issue


def _projects(request: web.Request, org: OrgRecord) -> list[ProjectRecord]:
    wanted = request.query.getall("project", [])
    try:
        ids = {int(value) for value in wanted}
    except ValueError:
        # ``get_requested_project_ids_unchecked``: slugs are not accepted here.
        raise ApiError(400, "Invalid project parameter. Values must be numbers.") from None
    if not ids or -1 in ids:
        return list(org.projects)
    out = []
    for key in sorted(ids):
        project = _state(request).data.project(org, str(key))
        if project is None:
            raise ApiError(403, "You do not have permission to perform this action.")
        out.append(project)
    return out


def _single_project_only(
    request: web.Request, org: OrgRecord, projects: list[ProjectRecord], message: str
) -> None:
    """Servers before September 2025 refuse several projects without ``global-views``."""
    if (
        _state(request).profile == "older"
        and len(projects) > 1
        and "global-views" not in org.features
    ):
        raise ApiError(400, message)


# -- handlers: organizations and projects ---------------------------------------------------


async def list_orgs(request: web.Request) -> web.Response:
    data = _state(request).data
    region = _region(request)
    orgs = [o for o in data.orgs if region is None or o.region == region]
    if _flag(request, "owner"):
        # User tokens: every org the user owns, unpaginated, each wrapped with singleOwner.
        body = [{"organization": data.org_body(o), "singleOwner": o.index % 2 == 0} for o in orgs]
        return _json(_encode(body))
    return _page(
        request,
        orgs,
        lambda o: _encode(data.org_body(o)),
        per_page=_per_page(request),
        style="value",
    )


async def user_regions(request: web.Request) -> web.Response:
    data = _state(request).data
    urls = data.region_urls or {"us": data.base_url}
    return _json(_encode({"regions": [{"name": n, "url": u} for n, u in urls.items()]}))


async def short_id(request: web.Request) -> web.Response:
    org = _org(request)
    data = _state(request).data
    issue = _by_short_id(data, org, request.match_info["short_id"])
    if issue is None:
        raise ApiError(404, "Short ID not found")
    return _json(
        _encode(
            {
                "organizationSlug": org.slug,
                "projectSlug": issue.project.slug,
                "groupId": issue.id,
                "shortId": issue.short_id,
                "group": data.issue_body(issue),
            }
        )
    )


async def get_org(request: web.Request) -> web.Response:
    return _json(_encode(_state(request).data.org_body(_org(request))))


async def list_projects(request: web.Request) -> web.Response:
    org = _org(request)
    data = _state(request).data
    projects = sorted(org.projects, key=lambda p: (p.index != 0, p.slug))
    query = request.query.get("query", "")
    if query:
        projects = [p for p in projects if query.removeprefix("slug:") in p.slug]
    return _page(
        request,
        projects,
        lambda p: _encode(data.project_body(p)),
        per_page=_per_page(request),
        style="page",
    )


async def get_project(request: web.Request) -> web.Response:
    org = _org(request)
    return _json(_encode(_state(request).data.project_body(_project(request, org))))


async def update_project(request: web.Request) -> web.Response:
    """``PUT /projects/{org}/{project}/``: a new ``slug`` renames it (the old one then moves)."""
    org = _org(request)
    project = _project(request, org)
    data = _state(request).data
    try:
        body = msgspec.json.decode(await request.read()) if request.can_read_body else {}
    except msgspec.DecodeError:
        raise ApiError(400, "Malformed request body") from None
    if not isinstance(body, dict):
        raise ApiError(400, "Malformed request body")
    if isinstance(body.get("name"), str):
        project.name = body["name"]
    slug = body.get("slug")
    if isinstance(slug, str) and slug != project.slug:
        if not re.fullmatch(r"[a-z0-9_-]*[a-z_-][a-z0-9_-]*", slug) or data.project(org, slug):
            raise ApiError(400, body=_encode({"slug": ["Enter a valid slug."]}))
        data.rename_project(org.slug, project.slug, slug)
    return _json(_encode(data.project_body(project)))


async def list_releases(request: web.Request) -> web.Response:
    org = _org(request)
    rows = [
        {
            "version": f"{p.slug}@1.4.{n}",
            "dateCreated": f"2026-01-0{n + 1}T00:00:00Z",
            "projects": [{"id": int(p.id), "slug": p.slug}],
        }
        for p in org.projects
        for n in range(5)
    ]
    return _page(request, rows, _encode, per_page=_per_page(request))


# -- handlers: issues -----------------------------------------------------------------------


DEFAULT_ISSUE_QUERY = "is:unresolved issue.priority:[high, medium]"
"""Sentry's ``DEFAULT_QUERY`` for the issues list when no ``query`` is sent."""
_QUERY_TOKEN = re.compile(r"\S+:\[[^\]]*\]|\S+")


def _issue_filter(request: web.Request, org: OrgRecord) -> list[IssueRecord]:
    query = request.query.get("query")
    query = DEFAULT_ISSUE_QUERY if query is None else query
    statuses: set[str] = set()
    priorities: set[str] = set()
    text: list[str] = []
    for token in _QUERY_TOKEN.findall(query):
        if token.startswith("is:"):
            statuses.add(token[3:])
        elif token.startswith("issue.priority:"):
            value = token.partition(":")[2].strip("[]")
            priorities.update(p.strip() for p in value.split(",") if p.strip())
        else:
            text.append(token.lower())
    start, end = (
        _time_range(request, 90 * 86400)
        if ("start" in request.query or "end" in request.query or "statsPeriod" in request.query)
        else (float("-inf"), float("inf"))
    )
    environments = set(request.query.getall("environment", []))
    rows = []
    projects = _projects(request, org)
    _single_project_only(
        request, org, projects, "You do not have the multi project stream feature enabled"
    )
    for project in projects:
        for issue in project.issues:
            if issue.deleted or (statuses and issue.status not in statuses):
                continue
            if priorities and issue.priority not in priorities:
                continue
            if text and not all(t in issue.title.lower() for t in text):
                continue
            if not (start <= issue.last_seen and issue.first_seen <= end):
                continue
            if environments and not any(e.environment in environments for e in issue.events):
                continue
            rows.append(issue)
    return rows


_ISSUE_SCORES: dict[str, Callable[[IssueRecord], int]] = {
    # The search backend's scores: whole seconds x 1000 for times, so ties are frequent.
    "date": lambda i: int(i.last_seen) * 1000,
    "new": lambda i: int(i.first_seen) * 1000,
    "freq": lambda i: len(i.events),
    "user": lambda i: len({e.user for e in i.events}),
}


def _sequence_page(
    request: web.Request, rows: list[tuple[int, IssueRecord]], per_page: int
) -> tuple[list[IssueRecord], str, bool, str, bool]:
    """Sentry's ``SequencePaginator`` over ``(score, issue)`` rows sorted by score descending.

    A cursor ``value:offset:is_prev`` means "rows with score <= value, after skipping the
    ``offset`` of them that share ``value`` and were served already": rows inserted above
    the cursor while a stream runs cause no repeats and no gaps, while a client that
    treats the cursor as a plain offset into the list does repeat and skip rows.
    Returns ``(page, prev_cursor, has_prev, next_cursor, has_next)``.
    """
    value, offset, is_prev = _parse_cursor(request)
    if offset < 0:
        raise ApiError(400, "Invalid cursor parameter.")
    scores = [score for score, _ in rows]
    if request.query.get("cursor"):
        # First row whose score is <= value (scores descend).
        lo, hi = 0, len(scores)
        while lo < hi:
            mid = (lo + hi) // 2
            if scores[mid] > value:
                lo = mid + 1
            else:
                hi = mid
        position = lo + offset
    else:
        position = 0
    if is_prev:
        start = max(0, position - per_page)
        page_rows = rows[start:position]
    else:
        start = position
        page_rows = rows[start : start + per_page]
    end = start + len(page_rows)

    def cursor_at(index: int, prev: bool) -> str:
        score = scores[index]
        first = index
        while first > 0 and scores[first - 1] == score:
            first -= 1
        return f"{score}:{index - first}:{int(prev)}"

    has_next = end < len(rows)
    next_cursor = cursor_at(end, False) if has_next else f"{value}:{offset}:0"
    has_prev = start > 0
    prev_cursor = cursor_at(start, True) if start < len(rows) else f"{value}:{offset}:1"
    return [issue for _, issue in page_rows], prev_cursor, has_prev, next_cursor, has_next


def _direct_hit(request: web.Request, org: OrgRecord) -> web.Response | None:
    """An event-id query (or a short id with ``shortIdLookup=1``) answers its issue(s), no Link."""
    query = request.query.get("query", "").strip()
    data = _state(request).data
    if _HEX32.match(query):
        event_id = query.replace("-", "").lower()
        groups: dict[str, IssueRecord] = {}
        for project in org.projects:
            for event in project.events:
                issue = event.issue
                if event.event_id == event_id and issue is not None and not issue.deleted:
                    groups.setdefault(issue.id, issue)
        if len(groups) == 1:
            (issue,) = groups.values()
            body = {**data.issue_body(issue), "matchingEventId": event_id}
            return _json(_encode([body]), headers={"X-Sentry-Direct-Hit": "1"})
        if groups:
            return _json(_encode([data.issue_body(i) for i in groups.values()]))
    if request.query.get("shortIdLookup") == "1" and _SHORT_ID.match(query):
        issue = _by_short_id(data, org, query)
        if issue is not None:
            return _json(_encode([data.issue_body(issue)]), headers={"X-Sentry-Direct-Hit": "1"})
    return None


async def list_issues(request: web.Request) -> web.Response:
    org = _org(request)
    data = _state(request).data
    if "groupStatsPeriod" in request.query and request.query["groupStatsPeriod"] not in (
        "",
        "24h",
        "14d",
        "auto",
    ):
        raise ApiError(400, "Invalid stats_period. Valid choices are '', '24h', '14d' and 'auto'")

    direct = _direct_hit(request, org)
    if direct is not None:
        return direct
    score = _ISSUE_SCORES.get(request.query.get("sort", "date"), _ISSUE_SCORES["date"])

    def build() -> list[tuple[int, IssueRecord]]:
        rows = [(score(issue), issue) for issue in _issue_filter(request, org)]
        rows.sort(key=lambda row: (-row[0], -int(row[1].id)))
        return rows

    rows = _state(request).listing(request, build)
    limit = min(_per_page(request, "limit", 10_000), 100)
    serve = request.get(_SERVE)
    page, prev_cursor, has_prev, next_cursor, has_next = _sequence_page(
        request, rows, limit if serve is None else min(limit, serve)
    )
    hits = min(len(rows), MAX_HITS)
    if request.query.get("cursor"):
        # After the first page Sentry estimates the count from sampled groups.
        hits = min(MAX_HITS, max(len(rows), int(round(len(rows) * 1.1, -1))))
    headers = {
        "Link": _link(
            request, [("previous", prev_cursor, has_prev), ("next", next_cursor, has_next)]
        ),
        "X-Hits": str(int(hits)),
        "X-Max-Hits": str(MAX_HITS),
    }
    body = b"[" + b",".join(data.issue_bytes(issue) for issue in page) + b"]"
    return _json(body, headers=headers)


_WIRE = {
    "status",
    "statusDetails",
    "substatus",
    "assignedTo",
    "hasSeen",
    "isBookmarked",
    "isPublic",
    "isSubscribed",
    "priority",
    "merge",
    "discard",
    "inbox",
}


async def _update_body(request: web.Request) -> dict[str, Any]:
    try:
        body = msgspec.json.decode(await request.read()) if request.can_read_body else {}
    except msgspec.DecodeError:
        raise ApiError(400, "Malformed request body") from None
    if not isinstance(body, dict) or not body:
        raise ApiError(400, body=_encode({"non_field_errors": ["No changes requested."]}))
    unknown = set(body) - _WIRE
    if unknown:
        raise ApiError(400, body=_encode({k: ["Unknown field."] for k in sorted(unknown)}))
    if "status" in body and body["status"] not in (
        "resolved",
        "unresolved",
        "ignored",
        "resolvedInNextRelease",
        "muted",
    ):
        raise ApiError(
            400, body=_encode({"status": [f'"{body["status"]}" is not a valid choice.']})
        )
    return body


def _apply(data: Dataset, issue: IssueRecord, body: dict[str, Any]) -> dict[str, Any]:
    changed: dict[str, Any] = {}
    if "status" in body:
        issue.status = "ignored" if body["status"] == "muted" else body["status"]
        issue.substatus = None if issue.status == "resolved" else "ongoing"
        changed.update(
            {
                "status": issue.status,
                "statusDetails": body.get("statusDetails", {}),
                "substatus": issue.substatus,
            }
        )
    for key in ("hasSeen", "isBookmarked", "isPublic", "isSubscribed", "priority"):
        if key in body:
            issue.extra[key] = body[key]
            changed[key] = body[key]
    if "assignedTo" in body:
        value = body["assignedTo"]
        assignee = (
            None
            if not value
            else {
                "type": "user",
                "id": str(value).split(":")[-1],
                "name": str(value),
                "email": None,
            }
        )
        issue.extra["assignedTo"] = assignee
        changed["assignedTo"] = assignee
    data.invalidate_issue(issue)
    return changed


async def bulk_update_issues(request: web.Request) -> web.Response:
    org = _org(request)
    data = _state(request).data
    ids = request.query.getall("id", [])
    if len(ids) > 1000:
        raise ApiError(400, "Too many issues. Limit is 1000.")
    _single_project_only(
        request,
        org,
        _projects(request, org),
        "You do not have the multi project stream feature enabled",
    )
    body = await _update_body(request)
    if ids:
        targets = [
            data.issues_by_id[i]
            for i in ids
            if i in data.issues_by_id
            and not data.issues_by_id[i].deleted
            and data.issues_by_id[i].project.org is org
        ]
    else:
        targets = _issue_filter(request, org)
    if not targets:
        return web.Response(status=204)
    changed: dict[str, Any] = {}
    for issue in targets:
        changed = _apply(data, issue, body)
    return _json(_encode(changed))


async def bulk_delete_issues(request: web.Request) -> web.Response:
    org = _org(request)
    data = _state(request).data
    ids = request.query.getall("id", [])
    if len(ids) > 1000:
        raise ApiError(400, "Too many issues. Limit is 1000.")
    _single_project_only(
        request,
        org,
        _projects(request, org),
        "You do not have the multi project stream feature enabled",
    )
    if ids:
        targets = [
            data.issues_by_id[i]
            for i in ids
            if i in data.issues_by_id and data.issues_by_id[i].project.org is org
        ]
    else:
        # Faithful to Sentry: without ids, the first 1000 issues matching the query go.
        targets = _issue_filter(request, org)[:1000]
    for issue in targets:
        issue.deleted = True
        data.invalidate_issue(issue)
    return web.Response(status=204)


async def get_issue(request: web.Request) -> web.Response:
    org = _org(request)
    return _json(_encode(_state(request).data.issue_body(_issue(request, org), detail=True)))


async def update_issue(request: web.Request) -> web.Response:
    org = _org(request)
    data = _state(request).data
    issue = _issue(request, org)
    _apply(data, issue, await _update_body(request))
    return _json(_encode(data.issue_body(issue, detail=True)))


async def delete_issue(request: web.Request) -> web.Response:
    issue = _issue(request, _org(request))
    issue.deleted = True
    _state(request).data.invalidate_issue(issue)
    return web.Response(status=202)


def _event_rows(request: web.Request, events: Sequence[EventRecord]) -> list[EventRecord]:
    start, end = _time_range(request, 90 * 86400)
    environments = set(request.query.getall("environment", []))
    text = request.query.get("query", "").lower()
    return [
        e
        for e in events
        if start <= e.timestamp < end
        and (not environments or e.environment in environments)
        and (not text or text in (e.issue.title.lower() if e.issue else "transaction"))
    ]


def _event_page(request: web.Request, events: Sequence[EventRecord]) -> web.Response:
    data = _state(request).data
    per_page = _per_page(request)
    rows = _state(request).listing(request, lambda: _event_rows(request, events))
    if _flag(request, "full"):
        return _page(request, rows, data.event_bytes, per_page=min(per_page, FULL_PAGE_MAX))
    return _page(request, rows, data.summary_bytes, per_page=per_page)


async def issue_events(request: web.Request) -> web.Response:
    return _event_page(request, _issue(request, _org(request)).events)


async def project_events(request: web.Request) -> web.Response:
    org = _org(request)
    return _event_page(request, _project(request, org).events)


async def issue_event(request: web.Request) -> web.Response:
    org = _org(request)
    issue = _issue(request, org)
    key = request.match_info["event_id"]
    events = issue.events
    if key in ("latest", "recommended", "oldest"):
        # The choice is made among events matching environment, query and time range.
        events = _event_rows(request, events)
    if key in ("latest", "recommended"):
        event = events[0] if events else None
    elif key == "oldest":
        event = events[-1] if events else None
    else:
        event = next((e for e in events if e.event_id == key.replace("-", "").lower()), None)
        if event is None:
            raise ApiError(
                404,
                "Event not found. The event ID may be incorrect, or it's age "
                "exceeded the retention period.",
            )
    if event is None:
        raise ApiError(
            404, "No matching event found, try changing the environments, date range, or query."
        )
    return _json(_state(request).data.event_bytes(event, with_neighbours=True))


async def project_event(request: web.Request) -> web.Response:
    org = _org(request)
    project = _project(request, org)
    event = _state(request).data.events_by_id.get(
        request.match_info["event_id"].replace("-", "").lower()
    )
    if event is None or event.project is not project:
        raise ApiError(404, "Event not found")
    return _json(_state(request).data.event_bytes(event))


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
    if event is None or event.project.org is not org or event.kind == "transaction":
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
    full = request.query.get("full", "true").lower() in ("1", "true")
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


def _tag_values(issue: IssueRecord, key: str) -> list[dict[str, Any]]:
    counts: Counter[str] = Counter()
    seen: dict[str, list[float]] = {}
    for event in issue.events:
        value = {
            "environment": event.environment,
            "level": issue.level,
            "user": f"id:{event.user}",
        }.get(key)
        if value is None:
            continue
        counts[value] += 1
        seen.setdefault(value, []).append(event.timestamp)
    return [
        {
            "key": key,
            "name": value,
            "value": value,
            "count": n,
            "lastSeen": datetime.fromtimestamp(max(seen[value]), timezone.utc).strftime(
                "%Y-%m-%dT%H:%M:%SZ"
            ),
            "firstSeen": datetime.fromtimestamp(min(seen[value]), timezone.utc).strftime(
                "%Y-%m-%dT%H:%M:%SZ"
            ),
        }
        for value, n in counts.most_common()
    ]


async def issue_tag(request: web.Request) -> web.Response:
    issue = _issue(request, _org(request))
    key = request.match_info["key"]
    values = _tag_values(issue, key)
    if not values:
        raise ApiError(404, "The requested resource does not exist")
    return _json(
        _encode(
            {
                "key": key,
                "name": key.title(),
                "uniqueValues": len(values),
                "totalValues": sum(v["count"] for v in values),
                "topValues": values[:9],
            }
        )
    )


async def issue_tag_values(request: web.Request) -> web.Response:
    issue = _issue(request, _org(request))
    values = _tag_values(issue, request.match_info["key"])
    return _page(request, values, _encode, per_page=_per_page(request))


# -- handlers: discover and stats -----------------------------------------------------------

_FIELD_TYPES = {
    "id": "string",
    "title": "string",
    "project": "string",
    "project.id": "integer",
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


def _plain(event: EventRecord, name: str) -> Any:
    issue = event.issue
    return {
        "id": event.event_id,
        "title": issue.title if issue else f"GET /api/items/{event.index % 17}",
        "project": event.project.slug,
        "project.id": int(event.project.id),
        "timestamp": _iso_offset(event.timestamp),
        "event.type": "transaction"
        if event.kind == "transaction"
        else ("default" if event.kind == "default" else "error"),
        "level": issue.level if issue else "info",
        "message": issue.title if issue else "",
        "issue": issue.short_id if issue else None,
        "issue.id": int(issue.id) if issue else None,
        "transaction": f"/api/items/{event.index % 17}",
        "user.email": f"user{event.user}@example.com",
        "environment": event.environment,
        "release": f"{event.project.slug}@1.4.{event.index % 5}",
    }.get(name)


def _column(name: str) -> Callable[[dict[str, Any]], tuple[bool, Any]]:
    """A sort key for one row column; ``None`` sorts last."""

    def key(row: dict[str, Any]) -> tuple[bool, Any]:
        value = row[name]
        return (value is None, value if value is not None else 0)

    return key


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


_DATASETS = ("discover", "errors", "transactions", "issuePlatform", "logs", "tracemetrics")
_LARGE_PAGE_DATASETS = ("logs", "tracemetrics")
"""Datasets whose ``per_page`` may go to 9999."""


def _discover_events(request: web.Request, org: OrgRecord) -> list[EventRecord]:
    projects = _projects(request, org)
    _single_project_only(request, org, projects, "You cannot view events from multiple projects.")
    dataset = request.query.get("dataset", "discover")
    if dataset not in _DATASETS:
        raise ApiError(400, f"dataset must be one of: {', '.join(_DATASETS)}")
    if dataset in _LARGE_PAGE_DATASETS:
        return []
    start, end = _time_range(request, 14 * 86400)
    environments = set(request.query.getall("environment", []))
    filters: list[tuple[str, str]] = []
    text: list[str] = []
    for token in request.query.get("query", "").split():
        if ":" in token:
            key, _, value = token.partition(":")
            filters.append((key, value))
        else:
            text.append(token.lower())
    out = []
    for project in projects:
        for event in project.events:
            if not start <= event.timestamp < end:
                continue
            if dataset == "errors" and event.kind == "transaction":
                continue
            if dataset == "transactions" and event.kind != "transaction":
                continue
            if environments and event.environment not in environments:
                continue
            if any(str(_plain(event, key)) != value for key, value in filters):
                continue
            title = str(_plain(event, "title")).lower()
            if text and not all(t in title for t in text):
                continue
            out.append(event)
    return out


async def discover(request: web.Request) -> web.Response:
    org = _org(request)
    fields = request.query.getall("field", [])
    if not fields:
        raise ApiError(400, "No columns selected")
    if len(fields) > 20:
        raise ApiError(
            400, "You can view up to 20 fields at a time. Please delete some and try again."
        )
    for name in fields:
        if name not in _FIELD_TYPES and not name.startswith("equation|"):
            raise ApiError(400, f"Invalid query. {name} is not a valid field")
    large = request.query.get("dataset") in _LARGE_PAGE_DATASETS
    per_page = _per_page(request, maximum=9999 if large else 100)
    events = _discover_events(request, org)
    aggregates = [f for f in fields if "(" in f]
    plain = [f for f in fields if "(" not in f]
    rows: list[dict[str, Any]]
    if aggregates:
        groups: dict[tuple[Any, ...], list[EventRecord]] = defaultdict(list)
        for event in events:
            groups[tuple(_plain(event, f) for f in plain)].append(event)
        rows = [
            {
                **dict(zip(plain, key, strict=True)),
                **{a: _aggregate(a, members) for a in aggregates},
            }
            for key, members in groups.items()
        ]
        rows.sort(
            key=lambda r: (
                -r[aggregates[0]] if isinstance(r[aggregates[0]], int) else 0,
                str(tuple(r[p] for p in plain)),
            )
        )
    else:
        rows = [{f: _plain(e, f) for f in fields} for e in events]
    for key in reversed(request.query.getall("sort", [])):
        name = key.lstrip("-")
        if name not in fields:
            raise ApiError(400, f"Cannot sort by a field that is not selected: {name}")
        rows.sort(key=_column(name), reverse=key.startswith("-"))
    if not _projects(request, org):
        return _json(
            _encode(
                {
                    "data": [],
                    "meta": {"tips": {"query": "Need at least one valid project to query."}},
                }
            )
        )
    meta = {
        "fields": {f: _FIELD_TYPES.get(f, "number") for f in fields},
        "units": {
            f: ("millisecond" if _FIELD_TYPES.get(f) == "duration" else None) for f in fields
        },
        "isMetricsData": False,
        "isMetricsExtractedData": False,
        "tips": {},
        "datasetReason": "unchanged",
        "dataset": request.query.get("dataset", "discover"),
    }
    response = _page(request, rows, _encode, per_page=per_page, discover=True)
    assert isinstance(response.body, bytes)
    response.body = b'{"data":' + response.body + b',"meta":' + _encode(meta) + b"}"
    return response


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


async def not_found(request: web.Request) -> web.Response:
    raise ApiError(404, "The requested resource does not exist")


# -- middleware -----------------------------------------------------------------------------


def _group(request: web.Request) -> str:
    resource = request.match_info.route.resource
    canonical = resource.canonical if resource is not None else request.path
    return f"{request.method} {canonical}"


def _rate_headers(
    state: ServerState, group: str, now: float, *, exhausted: bool = False
) -> dict[str, str]:
    policy = state.policy or RateLimitPolicy(
        limit=1000, window=1.0, concurrent_limit=None, enforce=False
    )
    limit, window, concurrent = policy.for_group(group)
    index = int(now / window)
    count = (
        state.windows.get(group, (index, 0))[1]
        if state.windows.get(group, (-1, 0))[0] == index
        else 0
    )
    headers = {
        "X-Sentry-Rate-Limit-Limit": str(limit),
        "X-Sentry-Rate-Limit-Remaining": str(0 if exhausted else max(0, limit - count)),
        "X-Sentry-Rate-Limit-Reset": str(int((index + 1) * window)),
    }
    if concurrent is not None:
        headers["X-Sentry-Rate-Limit-ConcurrentLimit"] = str(concurrent)
        headers["X-Sentry-Rate-Limit-ConcurrentRemaining"] = str(
            max(0, concurrent - state.group_in_flight[group])
        )
    return headers


def _too_many(
    message: str, headers: dict[str, str], retry_after: Any = None, *, older: bool = False
) -> web.Response:
    if retry_after is not None:
        headers["Retry-After"] = str(retry_after)
    if older:
        headers = {k: v for k, v in headers.items() if not k.startswith("X-Sentry-Rate-Limit")}
    # Sentry's middleware builds a bare HttpResponse: JSON body, Django's default type.
    # Older servers sent the message as a bare JSON string.
    return web.Response(
        status=429,
        body=_encode(message if older else {"detail": message}),
        headers=headers,
        content_type="text/html",
        charset="utf-8",
    )


async def _fault_response(
    request: web.Request, fault: Fault, state: ServerState, group: str
) -> web.StreamResponse | None:
    kind = fault.kind
    if kind == "status":
        body = fault.body
        if body is None:
            body = (
                {"detail": "Internal Error", "errorId": "f" * 32}
                if fault.status >= 500
                else {"detail": f"Fault {fault.status}"}
            )
        raw = (
            body
            if isinstance(body, bytes)
            else body.encode()
            if isinstance(body, str)
            else _encode(body)
        )
        return web.Response(
            status=fault.status, body=raw, headers={"Content-Type": fault.content_type or _JSON}
        )
    if kind == "rate_limit":
        now = time.time()
        headers = _rate_headers(state, group, now, exhausted=True)
        if fault.reset_in is None:
            headers.pop("X-Sentry-Rate-Limit-Reset")
        else:
            headers["X-Sentry-Rate-Limit-Reset"] = str(int(now + fault.reset_in))
        return _too_many(
            "You are attempting to use this endpoint too frequently. Limit is 40 "
            "requests in 1 seconds",
            headers,
            fault.retry_after,
            older=state.profile == "older",
        )
    if kind == "drop":
        transport = request.transport
        if transport is not None:
            transport.abort()
        raise asyncio.CancelledError
    if kind == "slow":
        await asyncio.sleep(fault.delay)
        return None
    if kind == "redirect":
        return web.Response(status=302, headers={"Location": fault.location or "/"})
    if kind == "invalid_json_content":
        if fault.content_type == "text/html":
            return None
        return web.Response(
            status=200,
            body=b"<html><body>Bad gateway</body></html>",
            headers={"Content-Type": _JSON},
        )
    if kind == "short_pages":
        request[_SERVE] = fault.serve
    return None


def build_app(state: ServerState) -> web.Application:
    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        group = _group(request)
        record = record_request(request, group, state.token)
        state.requests.append(record)
        state.in_flight += 1
        state.max_in_flight = max(state.max_in_flight, state.in_flight)
        state.group_in_flight[group] += 1
        state.group_max_in_flight[group] = max(
            state.group_max_in_flight[group], state.group_in_flight[group]
        )
        try:
            response = await _handle(request, handler, group)
            record.status = response.status
            await capture_body(record, request)
            return response
        finally:
            state.in_flight -= 1
            state.group_in_flight[group] -= 1
            record.finished = time.monotonic()

    async def _handle(request: web.Request, handler: Handler, group: str) -> web.StreamResponse:
        if len(request.method) + len(request.raw_path) + 11 > REQUEST_LINE_LIMIT:
            # nginx in front of Sentry: a request line over its 8 KB buffer never arrives.
            return web.Response(status=414, text="<html>414 Request-URI Too Large</html>")
        fault = state.faults.pick(request.method, request.path, request.query_string)
        if fault is not None:
            early = await _fault_response(request, fault, state, group)
            if early is not None:
                return early
        auth = request.headers.get("Authorization")
        if auth is None:
            return _json(_encode({"detail": "Authentication credentials were not provided."}), 401)
        if auth != f"Bearer {state.token}":
            return _json(_encode({"detail": "Invalid token"}), 401)
        now = time.time()
        policy = state.policy
        if policy is not None and policy.enforce:
            limit, window, concurrent = policy.for_group(group)
            index = int(now / window)
            current_index, count = state.windows.get(group, (index, 0))
            if current_index != index:
                count = 0
            if concurrent is not None and state.group_in_flight[group] > concurrent:
                return _too_many(
                    "You are attempting to go above the allowed concurrency for this "
                    f"endpoint. Concurrency limit is {concurrent}",
                    _rate_headers(state, group, now, exhausted=True),
                    int(window) if policy.retry_after else None,
                    older=state.profile == "older",
                )
            if count >= limit:
                return _too_many(
                    "You are attempting to use this endpoint too frequently. Limit is "
                    f"{limit} requests in {window:g} seconds",
                    _rate_headers(state, group, now, exhausted=True),
                    max(1, int((index + 1) * window - now + 0.999)) if policy.retry_after else None,
                    older=state.profile == "older",
                )
            state.windows[group] = (index, count + 1)
        elif policy is None:
            index = int(now)
            current_index, count = state.windows.get(group, (index, 0))
            state.windows[group] = (index, (count if current_index == index else 0) + 1)
        try:
            response = await handler(request)
        except ApiError as exc:
            response = _json(exc.body, exc.status) if exc.body else web.Response(status=exc.status)
        if isinstance(response, web.Response) and state.profile != "older":
            response.headers.update(_rate_headers(state, group, now))
        if fault is None or not isinstance(response, web.Response):
            return response
        body = response.body if isinstance(response.body, bytes) else b""
        if fault.kind == "truncated_json":
            response.body = body[: max(1, int(len(body) * fault.fraction))]
        elif fault.kind == "close_keepalive":
            response.force_close()
            response.headers["Connection"] = "close"
        elif fault.kind == "invalid_json_content":
            response.content_type = "text/html"
        elif fault.kind == "drop_mid_body":
            stream = web.StreamResponse(status=response.status, headers=response.headers)
            stream.content_length = len(body)
            await stream.prepare(request)
            await stream.write(body[: max(1, int(len(body) * fault.fraction))])
            transport = request.transport
            if transport is not None:
                transport.abort()
            return stream
        return response

    app = web.Application(middlewares=[middleware], client_max_size=16 * 1024 * 1024)
    app[_STATE] = state
    r = app.router
    api = "/api/0"
    r.add_get(f"{api}/organizations/", list_orgs)
    r.add_get(f"{api}/users/me/regions/", user_regions)
    r.add_get(f"{api}/organizations/{{org}}/shortids/{{short_id}}/", short_id)
    r.add_get(f"{api}/organizations/{{org}}/", get_org)
    r.add_get(f"{api}/organizations/{{org}}/projects/", list_projects)
    r.add_get(f"{api}/organizations/{{org}}/releases/", list_releases)
    r.add_get(f"{api}/organizations/{{org}}/issues/", list_issues)
    r.add_put(f"{api}/organizations/{{org}}/issues/", bulk_update_issues)
    r.add_delete(f"{api}/organizations/{{org}}/issues/", bulk_delete_issues)
    r.add_get(f"{api}/organizations/{{org}}/issues/{{issue_id}}/", get_issue)
    r.add_put(f"{api}/organizations/{{org}}/issues/{{issue_id}}/", update_issue)
    r.add_delete(f"{api}/organizations/{{org}}/issues/{{issue_id}}/", delete_issue)
    r.add_get(f"{api}/organizations/{{org}}/issues/{{issue_id}}/events/", issue_events)
    r.add_get(f"{api}/organizations/{{org}}/issues/{{issue_id}}/events/{{event_id}}/", issue_event)
    r.add_get(f"{api}/organizations/{{org}}/issues/{{issue_id}}/hashes/", issue_hashes)
    r.add_get(f"{api}/organizations/{{org}}/issues/{{issue_id}}/tags/{{key}}/", issue_tag)
    r.add_get(
        f"{api}/organizations/{{org}}/issues/{{issue_id}}/tags/{{key}}/values/", issue_tag_values
    )
    r.add_get(f"{api}/organizations/{{org}}/eventids/{{event_id}}/", resolve_event_id)
    r.add_get(f"{api}/organizations/{{org}}/events/", discover)
    r.add_get(f"{api}/organizations/{{org}}/events-stats/", events_stats)
    r.add_get(f"{api}/organizations/{{org}}/stats_v2/", stats_v2)
    r.add_get(f"{api}/projects/{{org}}/{{project}}/", get_project)
    r.add_put(f"{api}/projects/{{org}}/{{project}}/", update_project)
    r.add_get(f"{api}/projects/{{org}}/{{project}}/events/", project_events)
    r.add_get(f"{api}/projects/{{org}}/{{project}}/events/{{event_id}}/", project_event)
    r.add_route("*", "/{tail:.*}", not_found)
    return app
