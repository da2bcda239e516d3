"""The middleware: request recording, authentication, rate limits, faults, and the headers
every answer of an endpoint carries (``Allow``, CORS), ``OPTIONS`` answered first."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlencode, urlsplit

from aiohttp import web
from aiohttp.log import server_logger
from aiohttp.typedefs import Middleware

from ._faults import Fault
from ._limit_keys import sentry_counter
from ._paginators import _SHORTENED
from ._recorder import bearer_token, capture_body, record_request
from ._scopes import DENIED, ScopeMap, challenge
from ._state import (
    _JSON,
    _SCOPES,
    _SERVE,
    ANNOUNCED,
    CATCH_ALL,
    INTERNAL_ERROR,
    ApiError,
    Handler,
    ServerState,
    _encode,
    _json,
    _route_shape,
)

REQUEST_LINE_LIMIT = 8192


CORS_ALLOW_HEADERS = (
    "X-Sentry-Auth, X-Requested-With, Origin, Accept, Content-Type, Authentication, "
    "Authorization, Content-Encoding, sentry-trace, baggage, X-CSRFToken"
)
CORS_EXPOSE_HEADERS = (
    "X-Sentry-Error, X-Sentry-Direct-Hit, X-Hits, X-Max-Hits, Endpoint, Retry-After, Link"
)
"""What ``apply_cors_headers`` (``api/base.py``) lets a browser send and read."""


def _allowed_origin(request: web.Request) -> str:
    """``apply_cors_headers``' ``Access-Control-Allow-Origin``: an explicit ``null``
    Origin is any origin (``*``), as is none at all; else ``origin_from_request``, the
    Origin or, without one, its ``Referer``'s scheme and host."""
    origin = request.headers.get("Origin")
    if origin == "null":
        return "*"
    if not origin:
        # origin_from_url: no Referer (``*``) or an empty one as it is.
        referer = request.headers.get("Referer")
        if not referer:
            return "*" if referer is None else referer
        parts = urlsplit(referer)
        origin = f"{parts.scheme}://{parts.netloc}"
    return origin


def _endpoint_headers(
    request: web.Request, response: web.StreamResponse, allow: str | None
) -> web.StreamResponse:
    """Sentry's ``allow_cors_options`` around ``Endpoint.dispatch``: every answer of an
    endpoint (``allow`` its methods; ``None`` for a path none serves) says its methods in
    ``Allow`` and the CORS headers, whatever its status."""
    if allow is not None:
        response.headers.update({
            "Allow": allow,
            "Access-Control-Allow-Methods": allow,
            "Access-Control-Allow-Headers": CORS_ALLOW_HEADERS,
            "Access-Control-Expose-Headers": CORS_EXPOSE_HEADERS,
            "Access-Control-Allow-Origin": _allowed_origin(request),
        })
    return response


def _preflight() -> web.Response:
    """``allow_cors_options``' answer to ``OPTIONS``: a bare ``HttpResponse(status=200)``
    (no body, Django's default type), which a browser may reuse for an hour."""
    return web.Response(
        status=200,
        content_type="text/html",
        charset="utf-8",
        headers={"Access-Control-Max-Age": "3600"},
    )


def _query_forms(request: web.Request) -> tuple[str, str, str]:
    """The query string as sent, decoded (``key=value`` joined by ``&``, escapes and ``+``
    decoded), and as the request log shows it (``RecordedRequest.describe``): a fault's
    ``query`` may be written in any of them."""
    pairs = list(request.query.items())
    decoded = "&".join(f"{key}={value}" for key, value in pairs)
    return request.rel_url.raw_query_string, decoded, urlencode(pairs)


def _group(request: web.Request) -> str:
    resource = request.match_info.route.resource
    canonical = resource.canonical if resource is not None else request.path
    return f"{request.method} {canonical}"


def _counter(state: ServerState, group: str) -> str:
    """The window ``group`` counts in, keyed as Sentry's ``get_rate_limit_key`` keys it (the
    fake's own table of Sentry's views, not the client's grouping, so that a route the client
    misgroups shows): a route with limits of its own has one, those of Sentry's "CLI" group
    share one per method, the others share ``"default:<METHOD>"``; a route ``per_group``
    gives limits counts alone, in every spelling of its view."""
    policy = state.policy or ANNOUNCED
    if policy.has_own_limits(group):
        return _route_shape(group)
    method, _, path = group.partition(" ")
    return sentry_counter(method, path)


def _counter_in_flight(state: ServerState, counter: str) -> int:
    """Requests in flight on every route counting in ``counter``: what Sentry's concurrent
    limiter counts."""
    return sum(n for g, n in state.group_in_flight.items() if n and _counter(state, g) == counter)


def _rate_headers(
    state: ServerState, group: str, now: float, *, exhausted: bool = False
) -> dict[str, str]:
    limit, window, concurrent = (state.policy or ANNOUNCED).for_group(group)
    counter = _counter(state, group)
    index, count = _window(state, counter, window, now)
    headers = {
        "X-Sentry-Rate-Limit-Limit": str(limit),
        "X-Sentry-Rate-Limit-Remaining": str(0 if exhausted else max(0, limit - count)),
        "X-Sentry-Rate-Limit-Reset": str(int((index + 1) * window)),
    }
    if concurrent is not None:
        headers["X-Sentry-Rate-Limit-ConcurrentLimit"] = str(concurrent)
        headers["X-Sentry-Rate-Limit-ConcurrentRemaining"] = str(
            max(0, concurrent - _counter_in_flight(state, counter))
        )
    return headers


def _window(state: ServerState, counter: str, window: float, now: float) -> tuple[int, int]:
    """The fixed window ``now`` falls in, and the requests counted in it so far."""
    index = int(now / window)
    current, count = state.windows.get(counter, (index, 0))
    return index, count if current == index else 0


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
            body = INTERNAL_ERROR if fault.status >= 500 else {"detail": f"Fault {fault.status}"}
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


def _sent_status(request: web.Request, response: web.StreamResponse) -> int | None:
    """The status the client gets: ``None`` when the connection closed before the answer
    was begun (the client gave up during a ``slow`` fault, or cut its body short). aiohttp
    lets the handler run to its end regardless, and drops the answer it then returns."""
    if response.prepared:
        return response.status
    transport = request.transport
    return None if transport is None or transport.is_closing() else response.status


def _check_scopes(
    state: ServerState, scopes: frozenset[str], method: str, permission: ScopeMap | None
) -> None:
    """``ScopedPermission.has_permission``: a 403 unless the token holds one of the scopes
    the route's permission class accepts for ``method``. Current servers add the RFC 6750
    challenge naming them (none when the method accepts no scope at all)."""
    if permission is None:
        return
    accepted = permission.get(method, ())
    if scopes.intersection(accepted):
        return
    headers = (
        {"WWW-Authenticate": challenge(accepted)}
        if accepted and state.profile != "older"
        else None
    )
    raise ApiError(403, DENIED, headers=headers)


def make_middleware(
    state: ServerState, permissions: Mapping[str, ScopeMap], allowed: Mapping[str, str]
) -> Middleware:
    """The middleware for one server; it records, authenticates, limits and injects faults.
    ``permissions`` maps each route (``/api/0/organizations/{org}/``) to the scopes its
    Sentry endpoint accepts, ``allowed`` to its ``Allow``."""

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        group = _group(request)
        record = record_request(request, group, state.tokens)
        state.requests.append(record)
        state.in_flight += 1
        state.max_in_flight = max(state.max_in_flight, state.in_flight)
        state.group_in_flight[group] += 1
        state.group_max_in_flight[group] = max(
            state.group_max_in_flight[group], state.group_in_flight[group]
        )
        try:
            response = await _handle(request, handler, group)
        except web.HTTPException as exc:
            # An answer raised rather than returned (aiohttp's own): sent, so recorded.
            record.status = _sent_status(request, exc)
            raise
        else:
            record.status = _sent_status(request, response)
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
        fault = state.faults.pick(request.method, request.path, *_query_forms(request))
        try:
            return await _answer(request, handler, group, fault)
        finally:
            if fault is not None and fault.kind == "short_pages" and not request.get(_SHORTENED):
                # No page took its limit (a page-numbered list, an error, not a list at
                # all): the fault did nothing, so it did not fire.
                state.faults.unfire(fault)

    async def _answer(
        request: web.Request, handler: Handler, group: str, fault: Fault | None
    ) -> web.StreamResponse:
        if fault is not None:
            early = await _fault_response(request, fault, state, group)
            if early is not None:
                return early
        route = group.partition(" ")[2]
        if route == CATCH_ALL:
            # No view serves the path: Sentry's ``CatchallEndpoint``, whose ``dispatch``
            # answers before authentication (and outside the fake's windows), without the
            # headers ``allow_cors_options`` adds.
            return await handler(request)
        allow = allowed.get(route)
        if allow is not None and request.method == "OPTIONS":
            # Answered before dispatch: no authentication, scope check nor look-up.
            return _endpoint_headers(request, _preflight(), allow)
        token, refusal = bearer_token(request.headers.get("Authorization"))
        if token is None:
            # Sentry's refusal of a malformed bearer header, or DRF's of an anonymous request.
            detail = refusal or "Authentication credentials were not provided."
            return _endpoint_headers(request, _json(_encode({"detail": detail}), 401), allow)
        scopes = state.tokens.get(token)
        if scopes is None:
            body = _encode({"detail": "Invalid token"})
            return _endpoint_headers(request, _json(body, 401), allow)
        request[_SCOPES] = scopes
        now = time.time()
        policy = state.policy or ANNOUNCED
        limit, window, concurrent = policy.for_group(group)
        counter = _counter(state, group)
        index, count = _window(state, counter, window, now)
        # As Sentry's is_limited_with_value: every request is counted, refused or not, before
        # the concurrent check, whose 429 then announces what the window has left.
        count += 1
        state.windows[counter] = (index, count)
        if policy.enforce:
            if count > limit:
                return _too_many(
                    "You are attempting to use this endpoint too frequently. Limit is "
                    f"{limit} requests in {window:g} seconds",
                    _rate_headers(state, group, now, exhausted=True),
                    max(1, int((index + 1) * window - now + 0.999)) if policy.retry_after else None,
                    older=state.profile == "older",
                )
            if concurrent is not None and _counter_in_flight(state, counter) > concurrent:
                return _too_many(
                    "You are attempting to go above the allowed concurrency for this "
                    f"endpoint. Concurrency limit is {concurrent}",
                    _rate_headers(state, group, now),
                    int(window) if policy.retry_after else None,
                    older=state.profile == "older",
                )
        # Read as the request comes in, as Sentry's middleware reads them before the view
        # runs: the requests that begin while it is served are not in its answer's counts.
        rate_headers = _rate_headers(state, group, now)
        try:
            # After the limiter, as on Sentry: its middleware counts the request before
            # the endpoint's permission check refuses it.
            _check_scopes(state, scopes, request.method, permissions.get(route))
            response = await handler(request)
        except ApiError as exc:
            response = (
                _json(exc.body, exc.status, exc.headers)
                if exc.body
                else web.Response(status=exc.status, headers=exc.headers)
            )
        except (web.HTTPException, ConnectionError):
            # aiohttp's own answer, or the client gone while the body was read (which
            # aiohttp ignores as a premature disconnection, answering nothing).
            raise
        except Exception:
            # A bug in the fake: Sentry's answer to an unhandled error, not aiohttp's
            # plain-text one, with the traceback where aiohttp would have logged it.
            server_logger.exception("Error handling request")
            response = _json(_encode(INTERNAL_ERROR), 500)
        _endpoint_headers(request, response, allow)
        if isinstance(response, web.Response) and state.profile != "older":
            response.headers.update(rate_headers)
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

    return middleware
