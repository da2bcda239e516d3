"""Handlers: organizations, regions, short ids, projects and releases."""

from __future__ import annotations

import re

import msgspec
from aiohttp import web

from ._data import Dataset
from ._lookups import (
    _flag,
    _issue_by_key,
    _org,
    _param,
    _per_page,
    _project,
    _region,
    _short_id_pattern,
)
from ._paginators import _datetime_page, _page
from ._records import ProjectRecord
from ._scopes import DENIED
from ._state import ApiError, _encode, _json, _state, token_scopes


async def list_orgs(request: web.Request) -> web.Response:
    """``OrganizationIndexEndpoint.get``: newest first by ``date_added``, or most members
    first with ``sortBy=members`` (an OffsetPaginator then); any other ``sortBy`` is
    ignored, as Sentry ignores it. Ties keep the newest first."""
    data = _state(request).data
    region = _region(request)
    orgs = [o for o in data.orgs if region is None or o.region == region]
    orgs.sort(key=lambda o: o.created, reverse=True)
    if _flag(request, "owner"):
        # User tokens: every org the user owns, unpaginated, each wrapped with singleOwner.
        body = [{"organization": data.org_body(o), "singleOwner": o.index % 2 == 0} for o in orgs]
        return _json(_encode(body))
    if _param(request, "sortBy") == "members":
        # An OffsetPaginator over the member count.
        orgs.sort(key=lambda o: o.members, reverse=True)
        return _page(
            request,
            orgs,
            lambda o: _encode(data.org_body(o)),
            per_page=_per_page(request),
            style="page",
        )
    # ``-date_added`` with DateTimePaginator.
    return _datetime_page(
        request,
        orgs,
        lambda o: o.created,
        lambda o: _encode(data.org_body(o)),
        per_page=_per_page(request),
    )


async def user_regions(request: web.Request) -> web.Response:
    data = _state(request).data
    urls = data.region_urls or {"us": data.base_url}
    return _json(_encode({"regions": [{"name": n, "url": u} for n, u in urls.items()]}))


async def short_id(request: web.Request) -> web.Response:
    """``ShortIdLookupEndpoint``, a ``GroupEndpoint``: the key is looked up as on any issue
    path (an id too, and a merged issue's short id or id reaches the issue it went into), and
    the answer is that issue's; one of a project the user cannot access is a 403."""
    org = _org(request)
    data = _state(request).data
    key = request.match_info["short_id"]
    issue = _issue_by_key(data, org, key, _short_id_pattern(request))
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
    """``OrganizationProjectsEndpoint.get``: every project of the organization (each with
    ``hasAccess``), filtered by ``query``; with ``all_projects=1`` all of them in one answer
    ordered by slug, with no ``Link``, else an OffsetPaginator over bookmarked first, then
    slug."""
    org = _org(request)
    data = _state(request).data
    projects = list(org.projects)
    query = _param(request, "query", "")
    if query:
        projects = _matching(data, projects, query)
    if _param(request, "all_projects") == "1":
        projects.sort(key=lambda p: p.slug)
        return _json(_encode([data.project_body(p) for p in projects]))
    projects.sort(key=lambda p: (p.index != 0, p.slug))
    return _page(
        request,
        projects,
        lambda p: _encode(data.project_body(p)),
        per_page=_per_page(request),
        style="page",
    )


def _matching(data: Dataset, projects: list[ProjectRecord], query: str) -> list[ProjectRecord]:
    """The projects ``query`` keeps, read as ``OrganizationProjectsEndpoint.get`` reads it:
    free text within the name or slug (any case), ``id:`` (digits, else a 400), ``slug:``
    (exact), ``team:``/``!team:`` (team slugs), ``is_member:`` (any value: the user's
    teams); any other key matches nothing."""
    for key, values in _tokenize_query(query).items():
        if key == "query":
            text = " ".join(values).lower()
            projects = [p for p in projects if text in p.name.lower() or text in p.slug.lower()]
        elif key == "id":
            if not all(value.isdigit() for value in values):
                # Sentry's own envelope for this refusal, ``stats_period`` and all.
                message = {"message": "All 'id' values must be integers."}
                raise ApiError(400, body=_encode({"error": {"params": {"stats_period": message}}}))
            wanted = {int(value) for value in values}
            projects = [p for p in projects if int(p.id) in wanted]
        elif key == "slug":
            projects = [p for p in projects if p.slug in values]
        elif key in ("team", "!team"):
            keep = key == "team"
            projects = [p for p in projects if (data.team_slug(p) in values) is keep]
        elif key == "is_member":
            projects = [p for p in projects if p.member]
        else:
            projects = []
    return projects


def _tokenize_query(query: str) -> dict[str, list[str]]:
    """Sentry's ``tokenize_query``: ``key:value`` tokens by key, the other words (quotes
    and parentheses stripped) under ``"query"``; ``OR`` and ``AND`` are dropped."""
    words: list[str] = []
    tags: list[str] = []
    for token in _split_query(query):
        if token.upper() in ("OR", "AND") or token.strip("()") == "":
            continue
        tagged = False
        for index, char in enumerate(token):
            if index == 0 and char in ('"', "'", ":"):
                break
            if char == ":":
                tagged = token[index + 1 : index + 2] not in (":", " ")
                break
        (tags if tagged else words).append(token)
    result: dict[str, list[str]] = {}
    if words:
        result["query"] = [word.strip('"()') for word in words]
    for tag in tags:
        split = tag.index(":")
        key = _unquote(tag[:split].lstrip("("))
        result.setdefault(key, []).append(_unquote(tag[split + 1 :].rstrip(")")))
    return result


def _split_query(query: str) -> list[str]:
    """Sentry's ``split_query_into_tokens``: split on whitespace, except within quotes
    and after a word that ends in ``:`` (``user: foo`` is one token)."""
    tokens: list[str] = []
    token = ""
    quote: str | None = None
    word_end: str | None = None
    index = 0
    while index < len(query):
        char = query[index]
        next_char = query[index + 1] if index < len(query) - 1 else None
        token += char
        if next_char and not char.isspace() and next_char.isspace():
            word_end = char
        if char.isspace() and quote is None and word_end != ":" and not token.isspace():
            tokens.append(token.strip(" "))
            token = ""
        if char in ("'", '"') and quote in (None, char):
            quote = char if quote is None else None
        if quote is not None and char == "\\" and next_char == quote:
            token += next_char
            index += 1
        index += 1
    if not token.isspace():
        tokens.append(token.strip(" "))
    return tokens


def _unquote(text: str) -> str:
    """Sentry's ``remove_surrounding_quotes``: double quotes off both ends, an escaped
    closing one kept."""
    length = len(text)
    if length <= 1:
        return text
    left = 0
    while left <= length / 2 and text[left] == '"':
        left += 1
    right = length - 1
    while right >= length / 2 and text[right] == '"' and text[right - 1] != "\\":
        right -= 1
    return text[left : right + 1]


async def get_project(request: web.Request) -> web.Response:
    org = _org(request)
    return _json(_encode(_state(request).data.project_body(_project(request, org))))


_PROJECT_SETTINGS = frozenset({
    "name", "slug", "platform", "subjectPrefix", "subjectTemplate", "resolveAge",
    "highlightContext", "highlightTags", "team", "digestsMinDelay", "digestsMaxDelay",
    "securityToken", "securityTokenHeader", "verifySSL", "defaultEnvironment",
    "dataScrubber", "dataScrubberDefaults", "sensitiveFields", "safeFields",
    "storeCrashReports", "relayPiiConfig", "builtinSymbolSources", "symbolSources",
    "scrubIPAddresses", "groupingConfig", "groupingEnhancements", "fingerprintingRules",
    "secondaryGroupingConfig", "secondaryGroupingExpiry", "scrapeJavaScript",
    "allowedDomains", "copy_from_project", "targetSampleRate", "dynamicSamplingBiases",
    "performanceIssueCreationRate", "performanceIssueCreationThroughPlatform",
    "performanceIssueSendToPlatform", "uptimeAutodetection", "tempestFetchScreenshots",
    "options",
})
"""``ProjectAdminSerializer``'s fields but ``isBookmarked`` (``project_details.py``): what a
token without ``project:write`` or ``project:admin`` may not set."""


async def update_project(request: web.Request) -> web.Response:
    """``PUT /projects/{org}/{project}/``: a new ``slug`` renames it (the old one then moves).

    A token with ``project:read`` only is let in (``RelaxedProjectPermission``) and gets
    ``ProjectMemberSerializer``, so any setting it sends with a value is a 403.
    """
    org = _org(request)
    project = _project(request, org)
    data = _state(request).data
    try:
        body = msgspec.json.decode(await request.read()) if request.can_read_body else {}
    except msgspec.DecodeError:
        raise ApiError(400, "Malformed request body") from None
    if not isinstance(body, dict):
        raise ApiError(400, "Malformed request body")
    if not token_scopes(request) & {"project:write", "project:admin"} and any(
        body.get(key) for key in _PROJECT_SETTINGS
    ):
        raise ApiError(403, DENIED)
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
