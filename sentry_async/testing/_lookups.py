"""Query parameters and path lookups, validated as Sentry's endpoints validate them."""

from __future__ import annotations

import math
import re
from datetime import date, datetime, timedelta, timezone
from typing import Any, overload

from aiohttp import web

from ._data import Dataset, IssueRecord, OrgRecord, ProjectRecord
from ._records import base32_decode
from ._state import INTERNAL_ERROR, ApiError, _encode, _state

_PERIOD = re.compile(r"^(\d+)([smhdw]?)$")
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_HEX32 = re.compile(r"^[0-9a-fA-F]{32}$|^[0-9a-fA-F-]{36}$")


# -- parameters -----------------------------------------------------------------------------


@overload
def _param(request: web.Request, name: str) -> str | None: ...
@overload
def _param(request: web.Request, name: str, default: str) -> str: ...
def _param(request: web.Request, name: str, default: str | None = None) -> str | None:
    """``request.GET.get(name, default)``: Django's ``QueryDict`` answers the last value of
    a key sent more than once, where aiohttp's ``MultiDict`` answers the first."""
    values = request.query.getall(name, [])
    return values[-1] if values else default


class InvalidParams(ApiError):
    """Sentry's ``InvalidParams``: a date range it cannot read. A 400 with ``message`` as
    it is; each endpoint words it its own way."""

    def __init__(self, message: str) -> None:
        super().__init__(400, message)
        self.message = message


EARLIEST = datetime(1, 1, 1, tzinfo=timezone.utc).timestamp()
PAST_LATEST = datetime(9999, 12, 31, 23, 59, 59, tzinfo=timezone.utc).timestamp() + 1
"""The epoch seconds a ``datetime`` holds: from ``EARLIEST`` up to, not including,
``PAST_LATEST``. Sentry makes every bound of a range a ``datetime`` and refuses a range
that leaves them."""


_ASCII_DIGITS = frozenset("0123456789")


def _digits(text: str, at: int, count: int) -> int:
    """``parse_digits``: ``count`` ASCII digits from ``at``, else ``ValueError``."""
    chunk = text[at : at + count]
    if len(chunk) < count or not _ASCII_DIGITS.issuperset(chunk):
        raise ValueError(text)
    return int(chunk)


def _date_end(text: str) -> int:
    """``_find_isoformat_datetime_separator``: where the date of ``text`` (7 characters or
    more) ends, the character after it being the separator, whatever it is."""
    if len(text) == 7:
        return 7
    if text[4] == "-":
        if text[5] != "W":
            return 10
        if len(text) > 8 and text[8] == "-":
            if len(text) == 9:
                raise ValueError(text)
            return 8 if len(text) > 10 and text[10] in _ASCII_DIGITS else 10
        return 8
    if text[4] == "W":
        end = 7
        while end < len(text) and text[end] in _ASCII_DIGITS:
            end += 1
        return end if end < 9 else 7 if end % 2 == 0 else 8
    return 8


def _iso_date(text: str) -> tuple[int, int, int]:
    """``parse_isoformat_date``: ``YYYY-MM-DD``, ``YYYYMMDD`` or an ISO week date
    (``YYYY-Www[-D]``, ``YYYYWww[D]``)."""
    year = _digits(text, 0, 4)
    dashed = text[4:5] == "-"
    at = 4 + dashed
    if text[at : at + 1] == "W":
        week, at, weekday = _digits(text, at + 1, 2), at + 3, 1
        if at < len(text):
            if dashed and text[at] != "-":
                raise ValueError(text)
            weekday = _digits(text, at + dashed, 1)
        try:
            day = date.fromisocalendar(year, week, weekday)
        except OverflowError:
            raise ValueError(text) from None
        return day.year, day.month, day.day
    month, at = _digits(text, at, 2), at + 2
    if dashed:
        if text[at : at + 1] != "-":
            raise ValueError(text)
        at += 1
    return year, month, _digits(text, at, 2)


def _clock(text: str, start: int, end: int) -> tuple[int, int, int, int, bool]:
    """``parse_hh_mm_ss_ff`` on ``text[start:end]``: ``HH[:?MM[:?SS]][{.,}f...]``, as hours,
    minutes, seconds and microseconds, and whether characters follow (the C code reads on
    past ``end``, and so does this)."""
    parts = [0, 0, 0]
    at, colons = start, True
    for index in range(3):
        parts[index] = _digits(text, at, 2)
        char = text[at + 2 : at + 3]
        at += 3
        if index == 0:
            colons = char == ":"
        if at >= end:
            return parts[0], parts[1], parts[2], 0, char != ""
        if colons and char == ":":
            continue
        if char in (".", ","):
            break
        if colons:
            raise ValueError(text)
        at -= 1
    take = min(end - at, 6)
    micro = _digits(text, at, take) * 10 ** (6 - take)
    at += take
    while at < len(text) and text[at] in _ASCII_DIGITS:
        at += 1
    return parts[0], parts[1], parts[2], micro, at < len(text)


def _iso_datetime(text: str) -> datetime:
    """``datetime.fromisoformat`` as Python 3.11 and later read it, on any Python: the
    extended and basic ISO 8601 forms, week dates, any one character between date and time,
    a fraction of any length (``.`` or ``,``), an offset ``+HH[[:]MM[[:]SS[.f]]]``. Sentry
    reads ``start`` and ``end`` with it (``parse_iso_timestamp``). ``ValueError`` otherwise."""
    if len(text) < 7:
        raise ValueError(text)
    end = _date_end(text)
    year, month, day = _iso_date(text[:end])
    if len(text) <= end:
        return datetime(year, month, day)
    clock = text[end + 1 :]
    if not clock:
        raise ValueError(text)
    zone_at = next((i for i, char in enumerate(clock) if char in "Z+-"), len(clock))
    hour, minute, second, micro, more = _clock(clock, 0, zone_at)
    zone: timezone | None = None
    if zone_at == len(clock):
        if more:
            raise ValueError(text)
    elif clock[zone_at] == "Z":
        if zone_at + 1 != len(clock):
            raise ValueError(text)
        zone = timezone.utc
    else:
        sign = -1 if clock[zone_at] == "-" else 1
        hours, minutes, seconds, micros, more = _clock(clock, zone_at + 1, len(clock))
        if more:
            raise ValueError(text)
        # ``tzinfo_from_isoformat_results``: no whole seconds of offset is UTC.
        offset = sign * (hours * 3600 + minutes * 60 + seconds)
        zone = timezone.utc
        if offset:
            zone = timezone(timedelta(seconds=offset, microseconds=sign * micros))
    return datetime(year, month, day, hour, minute, second, micro, zone)


def _parse_time(value: str) -> float:
    """``parse_datetime_string``: ``fromisoformat`` with ``Z`` read as ``+00:00`` (a time
    without an offset is UTC, the servers' zone), converted to UTC; else epoch seconds read
    with ``utcfromtimestamp``. Either refuses an instant outside years 1..9999 (epoch
    milliseconds, say); a number past what ``utcfromtimestamp`` converts at all is refused
    the same way here."""
    try:
        moment = _iso_datetime(value.replace("Z", "+00:00"))
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=timezone.utc)
        seconds = moment.timestamp()
        if EARLIEST <= seconds < PAST_LATEST:
            return seconds
    except ValueError:
        pass
    try:
        seconds = float(value)
    except ValueError:
        seconds = math.nan
    if EARLIEST <= seconds < PAST_LATEST:
        return seconds
    raise InvalidParams(f"{value} is not a valid ISO8601 date query")


def _period(value: str, now: float) -> float:
    """``get_datetime_from_stats_period``: a period whose start ``now - period`` would fall
    before year 1 overflows and is refused in the same words as one that does not parse,
    before anything is sized by it."""
    match = _PERIOD.match(value)
    try:
        seconds = int(match.group(1)) * _UNITS[match.group(2)] if match else None
    except ValueError:
        # More digits than ``int()`` converts.
        seconds = None
    # Compared as it is: an int too large for a float still compares exactly.
    if seconds is None or seconds > now - EARLIEST:
        raise InvalidParams(f"Invalid statsPeriod: {value!r}")
    return float(seconds)


DEFAULT_RANGE = 90 * 86400.0
"""``MAX_STATS_PERIOD``: the range Sentry searches when none is given."""


_DATE_KEYS = ("statsPeriod", "statsPeriodStart", "statsPeriodEnd", "start", "end")
_TIMEFRAME_KEYS = ("timeframe", "timeframeStart", "timeframeEnd")
OUTCOME_DATE_KEYS = ("statsPeriod", "start", "end")
"""The date parameters ``QueryDefinition.from_query_dict`` (``snuba/outcomes.py``) hands to
``get_constrained_date_range``: stats_v2 reads no other."""


def _date_params(
    request: web.Request, *, timeframe: bool, keys: tuple[str, ...] = _DATE_KEYS
) -> dict[str, str]:
    """The date parameters sent among ``keys``, each its last value (``QueryDict``). With
    ``timeframe``, ``get_date_range_from_params``' aliases are applied first: ``timeframe``
    (even empty) is ``statsPeriod``; else ``timeframeStart``/``timeframeEnd``, both
    required, are ``statsPeriodStart``/``statsPeriodEnd``. Without it (the issue list,
    which calls ``get_date_range_from_stats_period`` itself) they are not read."""
    keys = (*_TIMEFRAME_KEYS, *keys) if timeframe else keys
    params = {key: request.query.getall(key)[-1] for key in keys if key in request.query}
    if "timeframe" in params:
        params["statsPeriod"] = params["timeframe"]
    elif params.get("timeframeStart") or params.get("timeframeEnd"):
        if not params.get("timeframeStart") or not params.get("timeframeEnd"):
            raise InvalidParams("timeframeStart and timeframeEnd are both required")
        params["statsPeriodStart"] = params["timeframeStart"]
        params["statsPeriodEnd"] = params["timeframeEnd"]
    return params


def _time_range(
    request: web.Request,
    default: float = DEFAULT_RANGE,
    *,
    timeframe: bool = False,
    keys: tuple[str, ...] = _DATE_KEYS,
) -> tuple[float, float]:
    """``get_date_range_from_stats_period`` (``get_date_range_from_params`` with
    ``timeframe``) over the parameters among ``keys``: ``statsPeriod`` (even empty), else
    ``statsPeriodStart``/``statsPeriodEnd`` (periods back from now), else ``start``/``end``;
    an empty value of the last two pairs is no value. Whichever is read must end after it
    starts. A refusal is ``InvalidParams``."""
    q = _date_params(request, timeframe=timeframe, keys=keys)
    now = _state(request).data.now_ts
    start, end = now - default, now
    if "statsPeriod" in q:
        start = now - _period(q["statsPeriod"], now)
    elif q.get("statsPeriodStart") or q.get("statsPeriodEnd"):
        if not q.get("statsPeriodStart") or not q.get("statsPeriodEnd"):
            raise InvalidParams("statsPeriodStart and statsPeriodEnd are both required")
        start = now - _period(q["statsPeriodStart"], now)
        end = now - _period(q["statsPeriodEnd"], now)
    elif q.get("start") or q.get("end"):
        if not q.get("start") or not q.get("end"):
            raise InvalidParams("start and end are both required")
        start, end = _parse_time(q["start"]), _parse_time(q["end"])
    if start >= end:
        raise InvalidParams("start must be before end")
    return start, end


def _range_given(request: web.Request, *, timeframe: bool = False) -> bool:
    """Whether the request names a date range for ``_time_range`` to read, rather than
    leaving it the default: ``get_date_range_from_params(optional=True)`` answers
    ``(None, None)`` when it does not (its aliases may refuse first)."""
    q = _date_params(request, timeframe=timeframe)
    return "statsPeriod" in q or any(
        q.get(key) for key in ("statsPeriodStart", "statsPeriodEnd", "start", "end")
    )


OUTSIDE_RETENTION = "Invalid date range. Please try a more recent date range."
"""``QueryOutsideRetentionError``'s message, which the org events endpoints answer as a 400."""


def _event_range(request: web.Request, *, expired_status: int = 400) -> tuple[float, float]:
    """The range an events query runs on: ``_time_range`` as every events endpoint reads it
    (``get_date_range_from_params``, ``timeframe`` too) and as Snuba and the query builder
    take it. Snuba drops the fraction of a second from both bounds (``parse_datetime``);
    ``outside_retention_with_modified_start`` moves the start up to the retention's and
    refuses a range that ends before it. The org events endpoints answer that refusal
    with a 400 (``handle_query_errors``); the project and issue events endpoints leave it
    uncaught, a 500 (``expired_status``)."""
    start, end = (float(math.floor(bound)) for bound in _time_range(request, timeframe=True))
    retention = _state(request).data.retention_days
    if retention:
        start = max(start, _state(request).data.now_ts - retention * 86400)
        if start > end:
            if expired_status == 400:
                raise ApiError(400, OUTSIDE_RETENTION)
            raise ApiError(expired_status, "Internal Error")
    return start, end


def _environments(request: web.Request, org: OrgRecord) -> set[str]:
    """``get_environments``: names the org has never seen are a 404, not an empty answer."""
    wanted = set(request.query.getall("environment", []))
    if wanted and not wanted <= _state(request).data.environments(org):
        raise ApiError(404, "The requested resource does not exist")
    return wanted


def _per_page(request: web.Request, name: str = "per_page", maximum: int = 100) -> int:
    raw = _param(request, name)
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
    return _param(request, name, "").lower() in ("1", "true")


def _exact_flag(request: web.Request, name: str) -> bool:
    """``request.GET.get(name) in ("1", "true")``: case-sensitive, as the event lists read
    ``full`` and an issue's events ``sample``."""
    return _param(request, name) in ("1", "true")


# -- lookups --------------------------------------------------------------------------------


def _region(request: web.Request) -> str | None:
    """The region this request reached, when the server plays several (else ``None``)."""
    ports = _state(request).region_ports
    if not ports:
        return None
    sock = request.transport.get_extra_info("sockname") if request.transport else None
    return ports.get(sock[1]) if sock else None


def _org(request: web.Request) -> OrgRecord:
    """The path's organization; on a top-level issue path (``/issues/{issue_id}/...``), which
    names none, the issue's, once ``_top_level_issue`` has found the issue."""
    slug = request.match_info.get("org")
    if slug is None:
        return _top_level_issue(request).project.org
    org = _state(request).data.org(slug)
    if org is None:
        raise ApiError(404, "The requested resource does not exist")
    region = _region(request)
    if region is not None and org.region != region:
        # An organization's data lives in its region only.
        raise ApiError(404, "The requested resource does not exist")
    return org


def _project(request: web.Request, org: OrgRecord) -> ProjectRecord:
    key = request.match_info["project"]
    data = _state(request).data
    project = data.project(org, key)
    if project is not None:
        # ``ProjectPermission.has_object_permission``: a project the user cannot access is
        # refused on every method, whether named by slug or by id.
        if not _has_access(project):
            raise ApiError(403, "You do not have permission to perform this action.")
        return project
    new = org.redirects.get(key)
    target = data.project(org, new) if new is not None else None
    if target is None:
        raise ApiError(404, "The requested resource does not exist")
    # ``ProjectEndpoint.convert_args``: the live projects first, then the redirect, whose
    # project the user must be allowed to see before the rename is revealed.
    if not _has_access(target):
        raise ApiError(403, "You do not have permission to perform this action.")
    # The full path, query included, with the slug replaced (the org as it was given).
    requested = request.raw_path
    scope = f"projects/{request.match_info['org']}/"
    url = requested.replace(f"{scope}{key}/", f"{scope}{target.slug}/")
    if url == requested:
        raise ApiError(404, "The requested resource does not exist")
    # ``handle_exception_with_details``: a 302 with a ``Location``; servers before it
    # sent ``ProjectMoved``'s code and message in ``detail`` too.
    detail: dict[str, Any] = {"extra": {"url": url, "slug": target.slug}}
    if _state(request).profile == "older":
        detail = {"code": "resource-moved", "message": "Resource has been moved", **detail}
    raise ApiError(
        302, body=_encode({"slug": target.slug, "detail": detail}), headers={"Location": url}
    )


_SHORT_ID = re.compile(r"^(.*?)[\s_-]([A-Za-z0-9]+)$")
"""Sentry's ``_short_id_re`` (``looks_like_short_id``) before May 2024: a project slug, then
the counter after the last ``-``, ``_`` or space."""

_PREFIXED_SHORT_ID = re.compile(r"^(?:issue+:)?(.*?)[\s_-]([A-Za-z0-9]+)$")
"""The current ``_short_id_re``: ``issue:`` may come first (getsentry/sentry#70247 took any
``word:`` from May 2024, until it was narrowed to this)."""


def _short_id_pattern(request: web.Request) -> re.Pattern[str]:
    """The ``_short_id_re`` of the server played: the older profile's takes no prefix, as
    the servers before May 2024 (the strictest of those before September 2025)."""
    return _SHORT_ID if _state(request).profile == "older" else _PREFIXED_SHORT_ID


_MAX_SHORT_ID = 2**63 - 1
"""``Group.short_id``'s largest value (a ``BoundedBigIntegerField``)."""


def _parse_short_id(key: str, pattern: re.Pattern[str]) -> tuple[str, int] | None:
    """Sentry's ``parse_short_id``: the lower-cased project slug and the decoded counter, or
    ``None`` for what is not a short id."""
    match = pattern.match(key.strip())
    if match is None:
        return None
    slug, digits = match.groups()
    try:
        number = base32_decode(digits)
    except ValueError:
        return None
    return (slug.lower(), number) if number <= _MAX_SHORT_ID else None


def _short_id_issue(org: OrgRecord, key: str, pattern: re.Pattern[str]) -> IssueRecord | None:
    """The issue of the org's project of that slug with that counter, whatever its status
    (``get_group_with_redirect``'s ``project__slug``/``short_id`` lookup)."""
    parsed = _parse_short_id(key, pattern)
    if parsed is None:
        return None
    slug, number = parsed
    for project in org.projects:
        if project.slug == slug:
            return next((issue for issue in project.issues if issue.number == number), None)
    return None


def _by_short_id(
    data: Dataset, org: OrgRecord, key: str, pattern: re.Pattern[str]
) -> IssueRecord | None:
    """``Group.objects.by_qualified_short_id``: the issue of the org's project of that slug
    with that counter, unless it is being deleted or merged away."""
    issue = _short_id_issue(org, key, pattern)
    return issue if issue is not None and not issue.deleted else None


def _redirected_short_id(
    data: Dataset, org: OrgRecord, key: str, pattern: re.Pattern[str]
) -> IssueRecord | None:
    """``GroupRedirect`` by ``previous_short_id`` and ``previous_project_slug``: the issue a
    merged-away issue of the org's project of that slug (then) went into."""
    parsed = _parse_short_id(key, pattern)
    if parsed is None:
        return None
    slug, number = parsed
    for project in org.projects:
        for issue in project.issues:
            if issue.number != number or issue.id not in data.merged:
                continue
            if data.merged_slugs.get(issue.id, project.slug) == slug:
                return data.issues_by_id.get(data.merged[issue.id])
    return None


def _numeric_issue_id(key: str) -> str | None:
    """The id ``get_group_with_redirect`` looks a path's issue up by, as Sentry reads it: a
    key ``str.isdigit()`` accepts is ``id=``, which Django converts with ``int()`` (``05``,
    or 5 in Arabic-Indic digits, is issue 5), and one ``int()`` refuses (a superscript
    digit) raises, Sentry's 500; ``None`` for any other key, a short id."""
    if not key.isdigit():
        return None
    try:
        return str(int(key))
    except ValueError:
        raise ApiError(500, body=_encode(INTERNAL_ERROR)) from None


def _issue(request: web.Request, org: OrgRecord) -> IssueRecord:
    data, key = _state(request).data, request.match_info["issue_id"]
    return _issue_by_key(data, org, key, _short_id_pattern(request))


def _top_level_issue(request: web.Request) -> IssueRecord:
    """``GroupEndpoint.convert_args`` without an organization (``create_group_urls`` at
    ``(?:issues|groups)/``): ``get_group_with_redirect`` finds a numeric id in any
    organization, or the issue a merge sent it to, and refuses a short id, which needs an
    organization; an issue outside the region the request reached is not in its database.
    Then the same checks as under the organization: 403 for a project the user cannot
    access, 404 for an issue being deleted."""
    data = _state(request).data
    number = _numeric_issue_id(request.match_info["issue_id"])
    issue = None
    if number is not None:
        issue = data.issues_by_id.get(data.merged.get(number, number))
    region = _region(request)
    if issue is None or (region is not None and issue.project.org.region != region):
        raise ApiError(404, "The requested resource does not exist")
    return _issue_by_key(data, issue.project.org, issue.id, _short_id_pattern(request))


def _issue_by_key(
    data: Dataset, org: OrgRecord, key: str, pattern: re.Pattern[str]
) -> IssueRecord:
    """``GroupEndpoint.convert_args``: the org's issue a path names, else the generic 404;
    then ``GroupPermission`` (``ProjectPermission`` on its project), a 403 for a project the
    user cannot access; only then is an issue being deleted the 404 (``EXCLUDED_STATUSES``)."""
    issue: IssueRecord | None
    number = _numeric_issue_id(key)
    if number is not None:
        # ``get_group_with_redirect``: a merged issue's id reaches the issue it went into.
        issue = data.issues_by_id.get(data.merged.get(number, number))
    else:
        # Anything else is a qualified short id, found whatever the issue's status; one
        # merged away is gone (the merge is done here at once), and its short id reaches
        # the issue it went into.
        issue = _short_id_issue(org, key, pattern)
        if issue is None or issue.id in data.merged:
            issue = _redirected_short_id(data, org, key, pattern)
    if issue is None or issue.project.org is not org:
        raise ApiError(404, "The requested resource does not exist")
    if not _has_access(issue.project):
        raise ApiError(403, "You do not have permission to perform this action.")
    if issue.deleted:
        raise ApiError(404, "The requested resource does not exist")
    return issue


def _requested_project_ids(request: web.Request) -> set[int]:
    """``get_requested_project_ids_unchecked``: slugs are not accepted here."""
    try:
        return {int(value) for value in request.query.getall("project", [])}
    except ValueError:
        raise ApiError(400, "Invalid project parameter. Values must be numbers.") from None


def _has_access(project: ProjectRecord) -> bool:
    """``access.has_project_access`` for a member: global access (open membership) or a
    project of one of the user's teams."""
    return project.member or project.org.open_membership


def _projects(request: web.Request, org: OrgRecord) -> list[ProjectRecord]:
    """``_get_projects_by_id``: ``-1`` alone is every project the user can access, no ids
    the projects the user is a member of; named ids must all exist and be accessible, else
    ``PermissionDenied`` (``-1`` among other ids is such an id)."""
    ids = _requested_project_ids(request)
    if ids == {-1}:
        return [project for project in org.projects if _has_access(project)]
    if not ids:
        return [project for project in org.projects if project.member]
    out = []
    for key in sorted(ids):
        project = _state(request).data.project(org, str(key))
        if project is None or not _has_access(project):
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
