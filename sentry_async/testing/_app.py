"""The aiohttp application that plays Sentry: routes, pagination, rate limits, faults.

It reproduces what a client can observe of the real server, as Sentry's server code behaves:
the exact ``Link`` format (both rels, previous first, ``?&cursor=``, raw cursors), cursor
formats per paginator, ``X-Hits``, the ``X-Sentry-Rate-Limit-*`` headers on every limited
response, 429s served as JSON with ``text/html``, error bodies, ``full=true`` pages capped at
10 events, the four shapes of ``events-stats``, and ``Allow`` with the CORS headers on
every answer of an endpoint, ``OPTIONS`` answered before authentication, and a path no
route matches answered as Sentry's catch-all.

This module wires the parts together: ``_state`` (state and errors), ``_lookups``
(parameters and path lookups), ``_paginators``, ``_middleware`` (auth, limits, faults) and
the handlers by area in ``_routes_*``.
"""

from __future__ import annotations

from collections.abc import Collection

from aiohttp import web

from ._middleware import make_middleware
from ._recorder import RecordedRequest
from ._routes_discover import discover
from ._routes_events import (
    issue_event,
    issue_events,
    issue_hashes,
    project_event,
    project_events,
    resolve_event_id,
)
from ._routes_issues import (
    bulk_delete_issues,
    bulk_update_issues,
    delete_issue,
    get_issue,
    issue_tag,
    issue_tag_values,
    list_issues,
    project_bulk_delete_issues,
    project_bulk_update_issues,
    update_issue,
)
from ._routes_orgs import (
    get_org,
    get_project,
    list_orgs,
    list_projects,
    list_releases,
    short_id,
    update_project,
    user_regions,
)
from ._routes_stats import events_stats, stats_v2
from ._scopes import (
    GROUP,
    ORGANIZATION,
    ORGANIZATION_EVENT,
    ORGANIZATION_RELEASE,
    PROJECT,
    PROJECT_EVENT,
    RELAXED_PROJECT,
    USER_REGIONS,
    ScopeMap,
)
from ._state import (
    _STATE,
    CATCH_ALL,
    ApiError,
    Handler,
    RateLimitPolicy,
    ServerState,
    _encode,
    _json,
)

__all__ = ["ROUTE_GROUPS", "RateLimitPolicy", "RecordedRequest", "ServerState", "build_app"]


async def not_found(request: web.Request) -> web.Response:
    """A path outside the API (or its index, ``/api/0/``), which the fake does not play."""
    raise ApiError(404, "The requested resource does not exist")


async def _unrouted(request: web.Request) -> web.Response:
    raise web.HTTPNotFound()


_NO_ROUTE = "Route not found, did you forget a trailing slash?"


async def catch_all(request: web.Request) -> web.Response:
    """``CatchallEndpoint`` (``api/endpoints/catchall.py``), where Sentry's API sends a path
    no URL pattern matches: a bare 404 (Django's default type, no body), or, for a path
    without its trailing slash, a hint: JSON for a request sent as JSON, else plain text
    with an arrow under the slash. Its ``dispatch`` neither authenticates nor adds CORS
    headers; the middleware calls it first (``CATCH_ALL``)."""
    if request.path.endswith("/"):
        return web.Response(status=404, content_type="text/html", charset="utf-8")
    suggestion = f"try: {request.path}/"
    if request.headers.get("Content-Type", "").startswith("application/json"):
        return _json(_encode({"info": f"{_NO_ROUTE} {suggestion}"}), 404)
    arrow = " " * (len(suggestion) - 1) + "^"
    text = f"{_NO_ROUTE}\n\n{suggestion}\n{arrow}\n"
    return web.Response(status=404, body=text.encode(), headers={"Content-Type": "text/plain"})


_METHOD_ORDER = ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS")
"""Django's ``http_method_names`` order, in which Sentry's ``Allow`` lists a view's methods."""


def allowed_methods(served: Collection[str]) -> str:
    """A view's ``Allow``: its ``_allowed_methods()``, the methods it defines in Django's
    order, ``HEAD`` wherever ``GET`` is (``View.setup``) and ``OPTIONS`` always (every
    view has Django's ``View.options``)."""
    listed = {*served, "OPTIONS", *(("HEAD",) if "GET" in served else ())}
    return ", ".join(method for method in _METHOD_ORDER if method in listed)


async def method_not_allowed(request: web.Request) -> web.Response:
    """The handler for the methods a served path lacks: DRF's ``MethodNotAllowed``, which
    ``Endpoint.dispatch`` raises once ``initial()`` (authentication, scopes) has let the
    request through and before ``convert_args`` looks anything up; its ``Allow`` is the
    middleware's, as on every answer of the endpoint."""
    raise ApiError(405, f'Method "{request.method}" not allowed.')


_ISSUE_VIEWS: tuple[tuple[str, str, Handler], ...] = (
    ("GET", "", get_issue),
    ("PUT", "", update_issue),
    ("DELETE", "", delete_issue),
    ("GET", "events/", issue_events),
    ("GET", "events/{event_id}/", issue_event),
    ("GET", "hashes/", issue_hashes),
    ("GET", "tags/{key}/", issue_tag),
    ("GET", "tags/{key}/values/", issue_tag_values),
)
"""An issue's views: method, path after the issue's id, handler."""

_ISSUE_PREFIXES = (
    "/organizations/{org}/issues/",
    "/organizations/{org}/groups/",
    "/issues/",
    "/groups/",
)
"""Where the issue views are served: ``create_group_urls`` is included under the
organization (``(?:issues|groups)/``, both alike) and at the top level (``api/urls.py``),
where ``GroupEndpoint`` finds the issue by its numeric id alone and checks access to its
project the same way."""

_EVENT_IDS = (
    ("{issue_id}", r"(?:latest|oldest|recommended|\d+|[A-Fa-f0-9-]{32,36})"),
    ("/eventids/", r"(?:\d+|[A-Fa-f0-9-]{32,36})"),
    ("/projects/", r"(?:\d+|[A-Fa-f0-9]{32})"),
)
"""The ``event_id`` Sentry's URL patterns match (``api/urls.py``): an issue's event
details, the event-id look-up and a project's event; any other segment matches no pattern
and reaches ``catch_all``. Python's ``\\d`` takes any Unicode digit, as Django's does."""


def _url_pattern(path: str) -> str:
    """The route as aiohttp matches it: ``{event_id}`` narrowed to what Sentry's pattern
    for that route takes."""
    if "{event_id}" not in path:
        return path
    pattern = next(regex for marker, regex in _EVENT_IDS if marker in path)
    return path.replace("{event_id}", f"{{event_id:{pattern}}}")


_ROUTES: tuple[tuple[str, str, Handler, ScopeMap], ...] = (
    ("GET", "/organizations/", list_orgs, ORGANIZATION),
    ("GET", "/users/me/regions/", user_regions, USER_REGIONS),
    ("GET", "/organizations/{org}/shortids/{short_id}/", short_id, GROUP),
    ("GET", "/organizations/{org}/", get_org, ORGANIZATION),
    ("GET", "/organizations/{org}/projects/", list_projects, ORGANIZATION),
    ("GET", "/organizations/{org}/releases/", list_releases, ORGANIZATION_RELEASE),
    ("GET", "/organizations/{org}/issues/", list_issues, ORGANIZATION_EVENT),
    ("PUT", "/organizations/{org}/issues/", bulk_update_issues, ORGANIZATION_EVENT),
    ("DELETE", "/organizations/{org}/issues/", bulk_delete_issues, ORGANIZATION_EVENT),
    *(
        (method, f"{prefix}{{issue_id}}/{tail}", handler, GROUP)
        for prefix in _ISSUE_PREFIXES
        for method, tail, handler in _ISSUE_VIEWS
    ),
    ("GET", "/organizations/{org}/eventids/{event_id}/", resolve_event_id, ORGANIZATION),
    ("GET", "/organizations/{org}/events/", discover, ORGANIZATION),
    ("GET", "/organizations/{org}/events-stats/", events_stats, ORGANIZATION),
    ("GET", "/organizations/{org}/stats_v2/", stats_v2, ORGANIZATION),
    ("GET", "/projects/{org}/{project}/", get_project, RELAXED_PROJECT),
    ("PUT", "/projects/{org}/{project}/", update_project, RELAXED_PROJECT),
    ("GET", "/projects/{org}/{project}/events/", project_events, PROJECT),
    ("PUT", "/projects/{org}/{project}/issues/", project_bulk_update_issues, PROJECT_EVENT),
    ("DELETE", "/projects/{org}/{project}/issues/", project_bulk_delete_issues, PROJECT_EVENT),
    ("GET", "/projects/{org}/{project}/events/{event_id}/", project_event, PROJECT),
)
"""Every endpoint the fake serves: method, path under ``/api/0``, handler, and the scopes
its Sentry endpoint's permission class accepts (its ``permission_classes``)."""

ROUTE_GROUPS = frozenset(f"{method} /api/0{path}" for method, path, _, _ in _ROUTES)
"""The route groups, as the server names them: ``"GET /api/0/organizations/{org}/"``."""


def build_app(state: ServerState) -> web.Application:
    permissions = {f"/api/0{path}": permission for _, path, _, permission in _ROUTES}
    handlers: dict[str, dict[str, Handler]] = {}
    for method, path, handler, _ in _ROUTES:
        handlers.setdefault(path, {})[method] = handler
    allowed = {f"/api/0{path}": allowed_methods(served) for path, served in handlers.items()}
    # The middleware wraps each route's handler here, not as the app's middleware: aiohttp
    # caches every (handler, app) pair a middleware wraps, up to 1024 of them, which would
    # keep each stopped server (and its data) alive for the rest of a test suite. Every
    # path reaches a route (``not_found`` takes the rest), so every request goes through it.
    middleware = make_middleware(state, permissions, allowed)

    def checked(handler: Handler) -> Handler:
        async def handle(request: web.Request) -> web.StreamResponse:
            return await middleware(request, handler)

        return handle

    app = web.Application(client_max_size=16 * 1024 * 1024)
    app[_STATE] = state
    for path, served in handlers.items():
        # One resource per path: its own methods first, then Sentry's 405 for any other,
        # which the middleware reaches after authentication and the scope check (and
        # never for OPTIONS, which it answers first).
        resource = app.router.add_resource(f"/api/0{_url_pattern(path)}")
        for method, handler in served.items():
            if method == "GET":
                resource.add_route("HEAD", checked(handler))
            resource.add_route(method, checked(handler))
        resource.add_route("*", checked(method_not_allowed))
    app.router.add_route("*", CATCH_ALL.replace("{tail}", "{tail:.+}"), checked(catch_all))
    app.router.add_route("*", "/{tail:.*}", checked(not_found))
    # A path with a line break, which ``.`` does not take: aiohttp's own bare 404, recorded.
    app.router.add_route("*", r"/{tail:[\s\S]*}", checked(_unrouted))
    return app
