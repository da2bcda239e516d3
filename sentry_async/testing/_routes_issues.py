"""Handlers: the issue search, bulk and single issue updates, and issue tags."""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Callable, Collection
from datetime import datetime, timezone
from typing import Any

from aiohttp import web

from ._data import Dataset, EventRecord, IssueRecord, IssueShape, OrgRecord, ProjectRecord
from ._lookups import (
    _HEX32,
    _by_short_id,
    _environments,
    _has_access,
    _issue,
    _org,
    _param,
    _per_page,
    _project,
    _projects,
    _range_given,
    _short_id_pattern,
    _single_project_only,
    _time_range,
)
from ._mutations import read_body, update_groups
from ._paginators import MAX_HITS, _link, _page, _parse_cursor, _sequence_page
from ._search import SearchValidationError, issue_filter
from ._state import _SERVE, INTERNAL_ERROR, ApiError, _encode, _json, _state, token_scopes

DEFAULT_ISSUE_QUERY = "is:unresolved issue.priority:[high, medium]"
"""Sentry's ``DEFAULT_QUERY`` for the issues list when no ``query`` is sent."""
_DELETE_FAILED = "Error deleting groups"
"""The 500's detail of the bulk deletes when deleting raised (an id that is no integer, a
cursor that does not parse)."""
_INVALID_BULK_QUERY = "Invalid query. Error getting group ids and group list"
"""``update_groups_with_search_fn``'s 400 when its search raises a ``ValidationError``."""
BULK_MUTATION_LIMIT = 1000
"""Issues a bulk change without ids reaches at most, from the search's cursor on."""
INBOX_DAYS = 7
"""How old an inbox row gets: ``inbox_search`` looks no further back."""
_QUERY_TOKEN = re.compile(r"\S+:\[[^\]]*\]|\S+")


def _issue_filter(
    request: web.Request,
    org: OrgRecord,
    projects: list[ProjectRecord] | None = None,
    environments: Collection[str] | None = None,
    *,
    dated: bool = True,
) -> list[IssueRecord]:
    """The search: ``projects`` from the path, else from ``?project=``; ``environments``
    as given, else ``?environment=``; with ``dated`` the request's date range (the issue
    list's), without it none (the bulk changes pass none to the search)."""
    query = _param(request, "query")
    query = DEFAULT_ISSUE_QUERY if query is None else query
    matches = issue_filter(_state(request).data, query)
    # ``date_from``/``date_to`` from ``get_date_range_from_stats_period``: 90 days back by
    # default; the default end is the request's "now", which the fake's frozen clock would
    # put before issues made during a test, so it is left open.
    start, end = -math.inf, math.inf
    if dated:
        ranged = _range_given(request)
        start, end = _time_range(request)
        if not ranged:
            end = math.inf
    if environments is None:
        environments = _environments(request, org)

    def in_scope(event: EventRecord) -> bool:
        return not environments or event.environment in environments

    rows = []
    if projects is None:
        projects = _projects(request, org)
        _single_project_only(
            request, org, projects, "You do not have the multi project stream feature enabled"
        )
    for project in projects:
        for issue in project.issues:
            if issue.deleted or not matches(issue, in_scope):
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


_INBOX_TERMS = frozenset({"date", "status", "for_review", "assigned_or_suggested"})
_STATUSES = frozenset({"unresolved", "resolved", "ignored", "archived", "muted", "reprocessing"})


def _search_terms(query: str) -> list[tuple[str, str]]:
    """The query's search filters as (key, text as ``str(SearchFilter)`` shows it)."""
    terms = []
    for token in _QUERY_TOKEN.findall(query):
        key, colon, value = token.partition(":")
        if not colon:
            terms.append(("message", f"message={token}"))
        elif key == "is":
            name = (
                "status"
                if value in _STATUSES
                else "for_review"
                if value == "for_review"
                else value
            )
            terms.append((name, f"{name}={value}"))
        elif value.startswith("["):
            items = [v.strip() for v in value.strip("[]").split(",") if v.strip()]
            terms.append((key, f"{key}IN{items}"))
        else:
            terms.append((key, f"{key}={value}"))
    return terms


def _check_inbox_search(request: web.Request) -> None:
    """``inbox_search``: the ``inbox`` sort takes an unresolved ``is:for_review`` query
    of status, date, for-review and assignment terms only."""
    query = _param(request, "query")
    terms = _search_terms(DEFAULT_ISSUE_QUERY if query is None else query.strip())
    invalid = [text for key, text in terms if key not in _INBOX_TERMS]
    if invalid:
        raise ApiError(400, f"Invalid search terms for 'inbox' search: {invalid}")
    if not any(key == "for_review" for key, _ in terms):
        raise ApiError(400, "Sort key 'inbox' only supported for inbox search")
    if [text for key, text in terms if key == "status"] != ["status=unresolved"]:
        raise ApiError(400, "Inbox search only works for 'unresolved' status")


def _shape(request: web.Request) -> IssueShape:
    """``calculate_stats_period``: no ``groupStatsPeriod`` is ``24h``, an empty one no stats;
    ``auto`` spans the request's range."""
    period = _param(request, "groupStatsPeriod", "24h") or None
    return IssueShape(
        stats_period=period,
        collapse=frozenset(request.query.getall("collapse", [])),
        expand=frozenset(request.query.getall("expand", [])),
        auto_range=_time_range(request) if period == "auto" else None,
    )


def _direct_hit(
    request: web.Request, org: OrgRecord, projects: list[ProjectRecord], shape: IssueShape
) -> web.Response | None:
    """An event-id query (or a short id with ``shortIdLookup=1``) answers its issue(s), no Link.

    Event ids are looked up in the requested projects plus the user's member projects
    (``project_ids_with_team_membership``); a short id's issue only if its project is
    accessible (``has_project_access``)."""
    query = _param(request, "query", "").strip()
    data = _state(request).data
    if _HEX32.match(query):
        event_id = query.replace("-", "").lower()
        groups: dict[str, IssueRecord] = {}
        scope = {project.id for project in projects}
        for project in org.projects:
            if project.id not in scope and not project.member:
                continue
            for event in project.events:
                issue = event.issue
                if event.event_id == event_id and issue is not None and not issue.deleted:
                    groups.setdefault(issue.id, issue)
        if len(groups) == 1:
            (issue,) = groups.values()
            body = {**data.issue_body(issue, shape=shape), "matchingEventId": event_id}
            return _json(_encode([body]), headers={"X-Sentry-Direct-Hit": "1"})
        if groups:
            return _json(_encode([data.issue_body(i, shape=shape) for i in groups.values()]))
    pattern = _short_id_pattern(request)
    if _param(request, "shortIdLookup") == "1" and pattern.match(query):
        issue = _by_short_id(data, org, query, pattern)
        if issue is not None and _has_access(issue.project):
            found = [data.issue_body(issue, shape=shape)]
            return _json(_encode(found), headers={"X-Sentry-Direct-Hit": "1"})
    return None


def _groups(request: web.Request, org: OrgRecord) -> list[IssueRecord] | None:
    """``?group=``: exactly those issues of the requested projects, unpaginated, no search,
    whatever their status (issues being deleted or merged away too)."""
    wanted = request.query.getall("group", [])
    if not wanted:
        return None
    try:
        ids = {str(int(value)) for value in wanted}
    except ValueError:
        raise ApiError(400, "Group ids must be integers") from None
    return _scoped(request, org, sorted(ids, key=int))


def _scoped(
    request: web.Request,
    org: OrgRecord,
    ids: list[str],
    projects: list[ProjectRecord] | None = None,
    *,
    failure: str | None = None,
) -> list[IssueRecord]:
    """The issues among ``ids`` in the request's projects (``project__in=projects``).

    Ids are read as integers, as Sentry does (``int(id)``, Django's ``id__in``): ``05``
    is issue 5, and an id that is no integer fails the call with a 500: ``failure`` its
    detail where the endpoint catches the error, else Sentry's answer to an uncaught one.
    No status filter (``get_group_list``, the ``group=`` lookup): an issue being deleted or
    merged away is still found, until its deletion has ended and its row is gone.
    """
    data = _state(request).data
    try:
        numbers = [str(int(value)) for value in ids]
    except ValueError:
        if failure is None:
            raise ApiError(500, body=_encode(INTERNAL_ERROR)) from None
        raise ApiError(500, failure) from None
    scope = {project.id for project in projects or _projects(request, org)}
    found = (data.issues_by_id.get(i) for i in dict.fromkeys(numbers))
    return [
        issue
        for issue in found
        if issue is not None
        and not issue.purged
        and issue.project.org is org
        and issue.project.id in scope
    ]


def _group_body(data: Dataset, issue: IssueRecord, shape: IssueShape) -> dict[str, Any]:
    """An issue as the ``group=`` lookup serializes it: one deleted or merged away is only
    marked so until a task removes it (``delete_group_list``, ``handle_merge`` set
    ``PENDING_DELETION`` / ``PENDING_MERGE`` and clear the substatus)."""
    body = data.issue_body(issue, shape=shape)
    if issue.deleted:
        status = "pending_merge" if issue.id in data.merged else "pending_deletion"
        body.update(status=status, substatus=None, statusDetails={})
    return body


def _read_limit(request: web.Request) -> bool:
    """``build_query_params_from_request``' ``limit``, the first of the search's parameters:
    whether one is given (an empty one is none); one ``int()`` refuses is "invalid limit"."""
    raw = _param(request, "limit")
    if not raw:
        return False
    try:
        int(raw)
    except ValueError:
        raise SearchValidationError("invalid limit") from None
    return True


def _check_view(request: web.Request) -> None:
    """``build_query_params_from_request``' issue view, read after the cursor: only with
    ``savedSearch=0`` and no query (``has_query`` is the raw value, so ``query=`` is none),
    by ``int(viewId)`` (what that refuses is Sentry's 500), else the user's first view. The
    fake holds no views (its user has none): a view Sentry would look up by id is refused
    in so many words rather than answered with a search the view does not make."""
    if _param(request, "savedSearch") != "0" or _param(request, "query"):
        return
    raw = _param(request, "viewId")
    if not raw:
        return
    try:
        int(raw)
    except ValueError:
        raise ApiError(500, body=_encode(INTERNAL_ERROR)) from None
    raise ApiError(400, f"The fake Sentry holds no issue views: viewId {raw} cannot be applied")


def _search_limit(request: web.Request) -> int:
    """The issue list's page size: ``_read_limit``, then the fake's own bounds, and pages
    of 100 at most."""
    if not _read_limit(request):
        return 100
    return min(_per_page(request, "limit", 10_000), 100)


def _ranked(request: web.Request, issues: list[IssueRecord]) -> list[tuple[int, IssueRecord]]:
    """``(score, issue)`` in the order of the search's ``sort``: highest score first, ties
    newest id first."""
    score = _ISSUE_SCORES.get(_param(request, "sort", "date"), _ISSUE_SCORES["date"])
    rows = [(score(issue), issue) for issue in issues]
    rows.sort(key=lambda row: (-row[0], -int(row[1].id)))
    return rows


def _inbox_ended(request: web.Request) -> bool:
    """``inbox_search``: inbox rows are ``INBOX_DAYS`` old at most, so its range starts no
    further back and ends no earlier; a request's range that ends by then leaves nothing,
    an empty page answered before the terms are looked at."""
    _, end = _time_range(request)
    return end <= _state(request).data.now_ts - INBOX_DAYS * 86400


async def list_issues(request: web.Request) -> web.Response:
    """``OrganizationGroupIndexEndpoint.get``: date range, stats period, environments and
    projects checked in that order, then direct hits and ``group`` ids, then the search's
    parameters as ``build_query_params_from_request`` reads them (``limit``, the cursor,
    an issue view, the query), then an ``inbox`` sort's range (one ending a week back is an
    empty page, ``Paginator(Group.objects.none())``'s, no hits counted) and terms
    (``inbox_search``), then the search.

    Every page, the first included, is the Snuba path's ``SequencePaginator`` (whole
    seconds): ``PostgresSnubaQueryExecutor.query`` answers a first ``sort=date`` page from
    Postgres (``DateTimePaginator``, in ms) only for a search without an end date, and
    this endpoint always passes one (``date_to``, now by default).
    """
    org = _org(request)
    data = _state(request).data
    _time_range(request)
    if "groupStatsPeriod" in request.query and _param(request, "groupStatsPeriod") not in (
        "",
        "24h",
        "14d",
        "auto",
    ):
        raise ApiError(400, "Invalid stats_period. Valid choices are '', '24h', '14d' and 'auto'")
    shape = _shape(request)
    _environments(request, org)
    projects = _projects(request, org)
    if not projects:
        return _json(b"[]")

    direct = _direct_hit(request, org, projects, shape)
    if direct is not None:
        return direct
    groups = _groups(request, org)
    if groups is not None:
        return _json(_encode([_group_body(data, issue, shape) for issue in groups]))
    limit = _search_limit(request)
    _parse_cursor(request)
    _check_view(request)
    query = _param(request, "query")
    issue_filter(data, DEFAULT_ISSUE_QUERY if query is None else query)
    if _param(request, "sort") == "inbox":
        if _inbox_ended(request):
            links = [("previous", "0:0:1", False), ("next", "0:0:0", False)]
            return _json(b"[]", headers={"Link": _link(request, links)})
        _check_inbox_search(request)

    def build() -> list[tuple[int, IssueRecord]]:
        return _ranked(request, _issue_filter(request, org))

    rows = _state(request).listing(request, build)
    serve = request.get(_SERVE)
    page, prev_cursor, has_prev, next_cursor, has_next = _sequence_page(
        request, rows, limit if serve is None else min(limit, serve), short=serve is not None
    )
    hits = min(len(rows), MAX_HITS)
    if _param(request, "cursor"):
        # After the first page Sentry estimates the count from sampled groups.
        hits = min(MAX_HITS, max(len(rows), int(round(len(rows) * 1.1, -1))))
    headers = {
        "Link": _link(
            request, [("previous", prev_cursor, has_prev), ("next", next_cursor, has_next)]
        ),
        "X-Hits": str(int(hits)),
        "X-Max-Hits": str(MAX_HITS),
    }
    body = b"[" + b",".join(data.issue_bytes(issue, shape) for issue in page) + b"]"
    return _json(body, headers=headers)


def _bulk_scope(request: web.Request, org: OrgRecord) -> tuple[list[ProjectRecord], set[str]]:
    """What the bulk ``put`` and ``delete`` check before anything else: ``get_projects`` (on
    servers before September 2025, several of them without ``global-views`` are refused
    next), then ``get_environments``. Returns both."""
    projects = _projects(request, org)
    _single_project_only(
        request, org, projects, "You do not have the multi project stream feature enabled"
    )
    return projects, _environments(request, org)


def _bulk_search(
    request: web.Request,
    org: OrgRecord,
    projects: list[ProjectRecord],
    environments: Collection[str],
    *,
    delete: bool,
    inbox: bool = True,
) -> list[IssueRecord]:
    """``search_fn`` of a bulk change without ids (an update's too when none matched):
    ``build_query_params_from_request`` reads ``limit`` (then replaced by
    ``BULK_MUTATION_LIMIT``), the cursor, an issue view and the query, and passes no date
    range; with ``inbox`` (the organization's ``_search``) an ``inbox`` sort is
    ``inbox_search``'s.
    The first ``BULK_MUTATION_LIMIT`` matches from the cursor on, in the sort's order.

    Refusals in the endpoint's words: a ``ValidationError`` is ``update_groups_with_search_fn``'s
    "Invalid query. ..." and ``schedule_tasks_to_delete_groups``' own message; anything else
    raised (the cursor's ``ParseError``, an inbox search's ``InvalidSearchQuery``) is DRF's
    400 or Sentry's 500 for an update, and the deletes' 500 "Error deleting groups" (their
    ``except Exception``)."""

    def uncaught(error: ApiError) -> ApiError:
        return ApiError(500, _DELETE_FAILED) if delete else error

    data = _state(request).data
    try:
        _read_limit(request)
        try:
            _parse_cursor(request)
        except ApiError as exc:
            raise uncaught(exc) from None
        try:
            _check_view(request)
        except ApiError as exc:
            raise (uncaught(exc) if exc.status == 500 else exc) from None
        query = _param(request, "query")
        issue_filter(data, DEFAULT_ISSUE_QUERY if query is None else query)
    except SearchValidationError as exc:
        raise ApiError(400, exc.message if delete else _INVALID_BULK_QUERY) from None
    if inbox and _param(request, "sort") == "inbox":
        try:
            _check_inbox_search(request)
        except ApiError:
            raise uncaught(ApiError(500, body=_encode(INTERNAL_ERROR))) from None
    rows = _ranked(request, _issue_filter(request, org, projects, environments, dated=False))
    try:
        return _sequence_page(request, rows, BULK_MUTATION_LIMIT)[0]
    except ApiError as exc:
        raise uncaught(exc) from None


def _project_search(
    request: web.Request, org: OrgRecord, projects: list[ProjectRecord], *, delete: bool
) -> list[IssueRecord]:
    """``prep_search``: one environment, the last sent (``get_environment``); one the
    organization does not have is an empty result, before the search reads anything."""
    name = _param(request, "environment")
    if name is not None and name not in _state(request).data.environments(org):
        return []
    environments = set() if name is None else {name}
    return _bulk_search(request, org, projects, environments, delete=delete, inbox=False)


async def bulk_update_issues(request: web.Request) -> web.Response:
    """``update_groups``: the projects, then the environments (``put``), then the ids are
    looked up; when none matches, the change goes to the request's search
    (``_bulk_search``). Only then is the body validated."""
    org = _org(request)
    data = _state(request).data
    ids = request.query.getall("id", [])
    projects, environments = _bulk_scope(request, org)
    targets = _scoped(request, org, ids, projects) if ids else []
    if not targets:
        targets = _bulk_search(request, org, projects, environments, delete=False)
    if not targets:
        return web.Response(status=204)
    body = await read_body(request)
    return update_groups(data, org, targets, body, token_scopes(request), projects)


async def bulk_delete_issues(request: web.Request) -> web.Response:
    """``delete_groups``: the projects, then the environments (``delete``); given ids are
    never a search, matched or not; without ids the search's (``_bulk_search``); 204
    either way."""
    org = _org(request)
    data = _state(request).data
    ids = request.query.getall("id", [])
    projects, environments = _bulk_scope(request, org)
    targets = (
        _scoped(request, org, ids, projects, failure=_DELETE_FAILED)
        if ids
        else _bulk_search(request, org, projects, environments, delete=True)
    )
    for issue in targets:
        issue.deleted = True
        data.invalidate_issue(issue)
    return web.Response(status=204)


async def project_bulk_update_issues(request: web.Request) -> web.Response:
    """``ProjectGroupIndexEndpoint.put``: as the organization's, within the path's project;
    the environment is read by its search only (``_project_search``), which reads
    ``query``, never ``status``."""
    org = _org(request)
    data = _state(request).data
    projects = [_project(request, org)]
    ids = request.query.getall("id", [])
    targets = _scoped(request, org, ids, projects) if ids else []
    if not targets:
        targets = _project_search(request, org, projects, delete=False)
    if not targets:
        return web.Response(status=204)
    body = await read_body(request)
    return update_groups(data, org, targets, body, token_scopes(request), projects)


async def project_bulk_delete_issues(request: web.Request) -> web.Response:
    """``ProjectGroupIndexEndpoint.delete``: given ids only, the environment unread;
    without ids, the search's (``_project_search``)."""
    org = _org(request)
    data = _state(request).data
    projects = [_project(request, org)]
    ids = request.query.getall("id", [])
    targets = (
        _scoped(request, org, ids, projects, failure=_DELETE_FAILED)
        if ids
        else _project_search(request, org, projects, delete=True)
    )
    for issue in targets:
        issue.deleted = True
        data.invalidate_issue(issue)
    return web.Response(status=204)


async def get_issue(request: web.Request) -> web.Response:
    """``GroupDetailsEndpoint.get``: ``collapse`` (stats, tags, release) and ``expand``."""
    org = _org(request)
    shape = IssueShape(
        collapse=frozenset(request.query.getall("collapse", [])),
        expand=frozenset(request.query.getall("expand", [])),
    )
    issue = _issue(request, org)
    return _json(_encode(_state(request).data.issue_body(issue, detail=True, shape=shape)))


async def update_issue(request: web.Request) -> web.Response:
    """``GroupDetailsEndpoint.put``: ``update_groups`` on the one issue; its 204 (discard)
    and 400s pass through, else the issue as it is now."""
    org = _org(request)
    data = _state(request).data
    issue = _issue(request, org)
    body = await read_body(request)
    answer = update_groups(data, org, [issue], body, token_scopes(request), [issue.project])
    if answer.status != 200:
        return answer
    return _json(_encode(data.issue_body(issue, detail=True)))


async def delete_issue(request: web.Request) -> web.Response:
    issue = _issue(request, _org(request))
    issue.deleted = True
    _state(request).data.invalidate_issue(issue)
    return web.Response(status=202)


def _tag_values(data: Dataset, issue: IssueRecord, key: str) -> list[dict[str, Any]]:
    counts: Counter[str] = Counter()
    seen: dict[str, list[float]] = {}
    for event in issue.events:
        value = data.event_tags(event).get(key)
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
    values = _tag_values(_state(request).data, issue, key)
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
    values = _tag_values(_state(request).data, issue, request.match_info["key"])
    return _page(request, values, _encode, per_page=_per_page(request))
