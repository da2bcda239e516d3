"""The thin aiohttp layer, and the retry loop that applies the protocol's decisions.

Everything that decides (retry or not, how long to wait, which error) lives in
``_protocol``; this module only moves bytes, sleeps, and tells the limiter what it saw.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar

import aiohttp
import anyio
from multidict import CIMultiDictProxy
from yarl import URL

from ._network import explain_missing_token
from ._protocol.errors import build_api_error, is_query_timeout, parse_error_body
from ._protocol.hosts import origin, resolve_redirect
from ._protocol.proxies import ProxySettings
from ._protocol.ratelimit import RateLimitInfo, parse_rate_limit, parse_retry_after
from ._protocol.retry import RetryPolicy, decide
from .errors import (
    ConnectionFailed,
    RateLimited,
    RequestTimeout,
    SentryError,
    TransportError,
    UnsafeRedirect,
)
from .hooks import Call, HookSet
from .limiter import RateLimiter

__all__ = ["MalformedBody", "Response", "Secret", "Transport"]

T = TypeVar("T")

logger = logging.getLogger("sentry_async")

_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_MAX_REDIRECTS = 5


class Secret:
    """Holds the auth token so that no repr, log line or traceback can show it."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('********')"

    __str__ = __repr__

    def __reduce__(self) -> tuple[object, ...]:
        raise TypeError("the auth token cannot be pickled")


@dataclass(slots=True)
class Response:
    """A complete response: status, headers, the whole body, and what it said about limits."""

    method: str
    url: URL
    status: int
    headers: CIMultiDictProxy[str]
    body: bytes
    rate_limit: RateLimitInfo | None
    elapsed: float


class MalformedBody(Exception):
    """Raised by a decoder when a success body is not even well-formed JSON.

    A body that parses but does not fit the model is final; one that does not parse at all
    was most likely cut short or replaced on the way (a proxy's page, a broken transfer),
    so the request is sent again when it is safe to repeat.
    """

    def __init__(self, error: SentryError) -> None:
        super().__init__(str(error))
        self.error = error


def _whole(response: Response) -> Response:
    return response


class _Failure(Exception):
    def __init__(self, kind: str, error: TransportError) -> None:
        self.kind = kind
        self.error = error


class Transport:
    """Sends one logical request: limiter slot, aiohttp call, redirects, retries."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        *,
        token: Secret | None,
        limiter: RateLimiter,
        retry: RetryPolicy,
        timeout: aiohttp.ClientTimeout,
        trusted_origins: set[tuple[str, str, int | None]],
        headers: dict[str, str],
        rng: random.Random | None = None,
        proxy: ProxySettings | None = None,
        hooks: HookSet | None = None,
    ) -> None:
        self.session = session
        if hasattr(session, "_retry_connection"):
            # aiohttp silently resends GET/PUT/DELETE once when the server disconnects: that
            # would double every attempt count and resend non-idempotent PUTs and DELETEs.
            # Every resend goes through the retry policy here instead.
            session._retry_connection = False
        self._token = token
        self.limiter = limiter
        self.retry = retry
        self._timeout = timeout
        self.trusted_origins = trusted_origins
        self._headers = headers
        self._rng = rng or random.Random()
        self._proxy = proxy or None
        self._hooks = hooks

    async def send(
        self,
        method: str,
        url: URL,
        *,
        group: str,
        params: Sequence[tuple[str, str]] = (),
        body: bytes | None = None,
        idempotent: bool,
        retry: RetryPolicy | None = None,
    ) -> Response:
        """Send until success, a final error, or the retry budget is spent."""
        return await self.send_decoded(
            method,
            url,
            group=group,
            params=params,
            body=body,
            idempotent=idempotent,
            retry=retry,
            decode=_whole,
        )

    async def send_decoded(
        self,
        method: str,
        url: URL,
        *,
        group: str,
        params: Sequence[tuple[str, str]] = (),
        body: bytes | None = None,
        idempotent: bool,
        retry: RetryPolicy | None = None,
        decode: Callable[[Response], T],
    ) -> T:
        """:meth:`send`, then ``decode`` the success; a :class:`MalformedBody` from it counts
        as a failed attempt (a body cut short or mangled on the way), retried like one."""
        call = None if self._hooks is None else self._hooks.start(method, group)
        try:
            result = await self._attempts(
                method, url, group, params, body, idempotent, retry, decode, call
            )
        except BaseException as exc:
            if call is not None:
                call.done(exc)
            if self._token is None:
                explain_missing_token(exc)
            raise
        if call is not None:
            call.done(None)
        return result

    async def _attempts(
        self,
        method: str,
        url: URL,
        group: str,
        params: Sequence[tuple[str, str]],
        body: bytes | None,
        idempotent: bool,
        retry: RetryPolicy | None,
        decode: Callable[[Response], T],
        call: Call | None,
    ) -> T:
        policy = retry or self.retry
        if params:
            url = url.extend_query(list(params))
        attempt = 0
        while True:
            attempt += 1
            paused = self.limiter.blocked_for(group)
            if paused > policy.max_wait:
                # An earlier 429 asked for a longer pause than this caller will wait: fail
                # now, as that request did, instead of sleeping or sending into the limit.
                raise RateLimited(
                    429,
                    method=method,
                    url=str(url),
                    detail=f"the server asked to pause this endpoint for {paused:.0f}s more",
                    retry_after=paused,
                )
            try:
                if call is not None:
                    call.waiting()
                async with self.limiter.slot(group):
                    if call is not None:
                        call.sending(attempt)
                    response = await self._send_once(method, url, body)
            except _Failure as failure:
                if call is not None:
                    call.failed(failure.kind)
                decision = decide(
                    attempt=attempt,
                    policy=policy,
                    idempotent=idempotent,
                    kind=failure.kind,
                    rng=self._rng,
                )
                if not decision.retry:
                    raise failure.error from failure.error.__cause__
                if call is not None:
                    call.retrying(decision.delay, failure.kind)
                logger.warning(
                    "retrying %s %s in %.2fs (attempt %d of %d): %s",
                    method,
                    url,
                    decision.delay,
                    attempt + 1,
                    policy.attempts,
                    failure.error,
                )
                await anyio.sleep(decision.delay)
                continue
            self.limiter.observe(group, response.rate_limit)
            if call is not None:
                call.answered(response.status, response.elapsed)
            # A 3xx that is still here had no Location (Sentry's renamed-project answer):
            # an error, not a body to decode as the requested model.
            if response.status < 300:
                try:
                    return decode(response)
                except MalformedBody as malformed:
                    decision = decide(
                        attempt=attempt,
                        policy=policy,
                        idempotent=idempotent,
                        kind="payload",
                        rng=self._rng,
                    )
                    if not decision.retry:
                        raise malformed.error from malformed.error.__cause__
                    if call is not None:
                        call.retrying(decision.delay, "payload")
                    logger.warning(
                        "retrying %s %s in %.2fs (attempt %d of %d): %s",
                        method,
                        url,
                        decision.delay,
                        attempt + 1,
                        policy.attempts,
                        malformed.error,
                    )
                    await anyio.sleep(decision.delay)
                    continue
            detail, _ = parse_error_body(response.body)
            wall = time.time()
            decision = decide(
                attempt=attempt,
                policy=policy,
                idempotent=idempotent,
                kind="status",
                status=response.status,
                query_timeout=is_query_timeout(response.status, detail),
                headers=response.headers,
                rate_limit=response.rate_limit,
                now=wall,
                rng=self._rng,
            )
            if decision.server_wait:
                self.limiter.block(group, decision.delay)
                if call is not None:
                    call.server_wait(decision.delay)
            if decision.retry:
                if call is not None:
                    call.retrying(decision.delay)
                logger.warning(
                    "retrying %s %s in %.2fs after %d (attempt %d of %d)",
                    method,
                    url,
                    decision.delay,
                    response.status,
                    attempt + 1,
                    policy.attempts,
                )
                await anyio.sleep(decision.delay)
                continue
            raise build_api_error(
                response.status,
                self._redact(response.body),
                method=method,
                url=str(url),
                rate_limit=response.rate_limit,
                retry_after=parse_retry_after(response.headers.get("retry-after"), wall)
                if response.status == 429
                else None,
            )

    def _redact(self, body: bytes) -> bytes:
        """An error body with the token blanked out: a server (or proxy) that echoes the
        request back must not put the token into the exception built from it."""
        if self._proxy is not None:
            body = self._proxy.redact(body)
        if self._token is None:
            return body
        secret = self._token.reveal().encode()
        return body.replace(secret, b"********") if secret and secret in body else body

    async def _send_once(self, method: str, url: URL, body: bytes | None) -> Response:
        started = time.perf_counter()
        for _ in range(_MAX_REDIRECTS + 1):
            headers = dict(self._headers)
            if body is not None:
                headers["Content-Type"] = "application/json"
            if self._token is not None and origin(url) in self.trusted_origins:
                headers["Authorization"] = f"Bearer {self._token.reveal()}"
            proxy, proxy_headers = (
                (None, None) if self._proxy is None else self._proxy.route(url, headers)
            )
            malformed: ConnectionFailed | None = None
            try:
                async with self.session.request(
                    method,
                    url,
                    data=body,
                    headers=headers,
                    allow_redirects=False,
                    timeout=self._timeout,
                    proxy=proxy,
                    proxy_headers=proxy_headers,
                ) as resp:
                    payload = await resp.read()
                    status = resp.status
                    resp_headers = resp.headers
            except (asyncio.TimeoutError, TimeoutError) as exc:
                raise _Failure(
                    "timeout",
                    _chain(
                        RequestTimeout("no complete response in time", method=method, url=str(url)),
                        exc,
                    ),
                ) from exc
            except aiohttp.ClientPayloadError as exc:
                raise _Failure(
                    "payload",
                    _chain(
                        ConnectionFailed(
                            f"response body broke off: {exc}", method=method, url=str(url)
                        ),
                        exc,
                    ),
                ) from exc
            except aiohttp.ClientConnectorCertificateError as exc:
                # Not retried: a certificate nobody trusts stays untrusted.
                raise _chain(
                    ConnectionFailed(
                        f"{exc} (for a private CA pass ssl= or --ca-bundle with its certificate)",
                        method=method,
                        url=str(url),
                    ),
                    exc,
                ) from exc
            except aiohttp.ClientHttpProxyError as exc:
                # Not chained either: its request_info is the CONNECT, Proxy-Authorization
                # included.
                malformed = ConnectionFailed(
                    f"the proxy refused the tunnel: {exc.status} {exc.message}",
                    method=method,
                    url=str(url),
                )
            except aiohttp.ClientResponseError as exc:
                # A response aiohttp could not parse (bad status line, oversized header). Its
                # request_info holds the request's headers, Authorization included, so it
                # is neither chained nor left as the context of what is raised.
                malformed = ConnectionFailed(
                    f"malformed response: {exc.message or type(exc).__name__}",
                    method=method,
                    url=str(url),
                )
            except aiohttp.ClientError as exc:
                raise _Failure(
                    "connection",
                    _chain(
                        ConnectionFailed(
                            f"{type(exc).__name__}: {exc}", method=method, url=str(url)
                        ),
                        exc,
                    ),
                ) from exc
            if malformed is not None:
                raise _Failure("connection", malformed)
            if status in _REDIRECTS and "Location" in resp_headers:
                try:
                    target, trusted = resolve_redirect(
                        url, resp_headers["Location"], frozenset(self.trusted_origins)
                    )
                except ValueError as exc:
                    raise UnsafeRedirect(
                        f"refusing to follow a redirect to an unparsable location: {exc}",
                        method=method,
                        url=str(url),
                    ) from exc
                if not trusted:
                    scheme, host, port = origin(target)
                    raise UnsafeRedirect(
                        "refusing to follow a redirect to untrusted origin "
                        f"{scheme}://{host}{'' if port is None else f':{port}'}",
                        method=method,
                        url=str(url),
                    )
                if status == 303 or (status in (301, 302) and method not in ("GET", "HEAD")):
                    method, body = "GET", None
                url = target
                continue
            elapsed = time.perf_counter() - started
            logger.debug("%s %s -> %d in %.1f ms", method, url, status, elapsed * 1000)
            return Response(
                method=method,
                url=url,
                status=status,
                headers=resp_headers,
                body=payload,
                rate_limit=parse_rate_limit(resp_headers),
                elapsed=elapsed,
            )
        raise UnsafeRedirect("too many redirects", method=method, url=str(url))


def _chain(error: TransportError, cause: BaseException) -> TransportError:
    error.__cause__ = cause
    return error
