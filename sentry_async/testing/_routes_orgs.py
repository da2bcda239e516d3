"""Handlers: organizations, regions, short ids, projects and releases."""

from __future__ import annotations

import re

import msgspec
from aiohttp import web

from ._lookups import _by_short_id, _flag, _org, _per_page, _project, _region
from ._paginators import _datetime_page, _page
from ._state import ApiError, _encode, _json, _state


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
    if request.query.get("sortBy") == "members":
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
