"""The fake server's state, its error type, and the request keys its handlers share."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import msgspec
from aiohttp import web

from ._data import Dataset
from ._faults import FaultPlan
from ._recorder import RecordedRequest
from ._scopes import SCOPES

T = TypeVar("T")
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

_encode = msgspec.json.encode
_JSON = "application/json"
CATCH_ALL = "/api/0/{tail}"
"""The route Sentry's ``CatchallEndpoint`` plays: a path under the API no view serves."""
INTERNAL_ERROR = {"detail": "Internal Error", "errorId": "f" * 32}
"""``handle_exception_with_details``' body for an error no handler caught (the id of the
event Sentry captured about it)."""


@dataclass
class RateLimitPolicy:
    """Sentry's fixed-window limiter; ``enforce=False`` only sends headers.

    As on Sentry, the routes whose endpoint declares its own ``rate_limits`` (and those
    ``per_group`` names) each count in a window of their own; every other route shares one
    window, and one concurrent limit, per method. ``per_group`` keys name a route as the
    client's ``HookEvent.group`` does
    (``"GET /organizations/{org}/issues/"``), with or without ``/api/0``, whatever the
    placeholders are called; a key that names no route of the fake is a ``ValueError``.
    """

    limit: int = 40
    window: float = 1.0
    concurrent_limit: int | None = 25
    enforce: bool = True
    retry_after: bool = False
    per_group: dict[str, tuple[int, float, int | None]] = field(default_factory=dict)
    _limits: dict[str, tuple[int, float, int | None]] = field(
        init=False, repr=False, compare=False, default_factory=dict
    )

    def __post_init__(self) -> None:
        if not self.per_group:
            return
        from ._app import ROUTE_GROUPS  # the routes' module imports this one

        known = {_route_shape(group) for group in ROUTE_GROUPS}
        unknown = []
        for key, limits in self.per_group.items():
            shape = _route_shape(key)
            if shape in known:
                self._limits[shape] = limits
            else:
                unknown.append(key)
        if unknown:
            raise ValueError(
                f"per_group keys name no route of the fake server: {unknown} (write them "
                "as 'GET /organizations/{org}/issues/', the form of HookEvent.group)"
            )

    def has_own_limits(self, group: str) -> bool:
        """Whether ``per_group`` gives the route limits, and so a window, of its own."""
        return _route_shape(group) in self._limits

    def for_group(self, group: str) -> tuple[int, float, int | None]:
        default = (self.limit, self.window, self.concurrent_limit)
        return self._limits.get(_route_shape(group), default) if self._limits else default


_PLACEHOLDER = re.compile(r"\{[^}/]*\}")
_ISSUE_SPELLING = re.compile(r"^/api/0/(?:organizations/\{\}/groups|issues|groups)/\{\}/")
"""An issue's route spelt otherwise than ``/organizations/{org}/issues/{id}/``: the same view."""


def _route_shape(group: str) -> str:
    """``"GET /api/0/organizations/{}/"`` for a group in the client's or the server's form;
    an issue's route spelt ``/organizations/{org}/groups/{id}/`` or at the top level
    (``/issues/{id}/``, ``/groups/{id}/``) is the organization's ``issues`` one, the view
    Sentry counts it under."""
    method, _, path = group.strip().partition(" ")
    path = path.strip()
    if not path.startswith("/"):
        return ""
    if not path.startswith("/api/0/"):
        path = "/api/0" + path
    shape = _ISSUE_SPELLING.sub("/api/0/organizations/{}/issues/{}/", _PLACEHOLDER.sub("{}", path))
    return f"{method.upper()} {shape}"


ANNOUNCED = RateLimitPolicy(limit=1000, window=1.0, concurrent_limit=None, enforce=False)
"""What a server with no policy announces (and does not enforce)."""


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
    429 body, no ``X-Sentry-Rate-Limit-*`` headers as on many self-hosted installs, no
    ``issue:`` prefix on a short id)."""
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
    tokens: dict[str, frozenset[str]] = field(default_factory=dict)
    """Every token the server accepts -> its scopes; ``token`` holds them all."""

    def __post_init__(self) -> None:
        self.tokens.setdefault(self.token, SCOPES)

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
    def __init__(
        self,
        status: int,
        detail: Any = None,
        *,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        self.status = status
        self.headers = headers
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
_SCOPES = _request_key("scopes", frozenset)
"""The scopes of the token the request carried."""


def _state(request: web.Request) -> ServerState:
    return request.app[_STATE]


def token_scopes(request: web.Request) -> frozenset[str]:
    """The scopes of the request's token, for the checks Sentry makes past the permission
    class (``discard``, a project's settings)."""
    scopes: frozenset[str] = request[_SCOPES]
    return scopes
