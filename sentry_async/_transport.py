"""The thin aiohttp layer, and the retry loop that applies the protocol's decisions.

Everything that decides (retry or not, how long to wait, which error) lives in
``_protocol``; this module only moves bytes, sleeps, and tells the limiter what it saw.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import random
import ssl
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar

import aiohttp
import anyio
from multidict import CIMultiDictProxy
from yarl import URL

from ._protocol.body import (
    ACCEPT_ENCODING,
    BodyReader,
    BodyTooLarge,
    CorruptBody,
    UnsupportedEncoding,
)
from ._protocol.errors import build_api_error, is_query_timeout, parse_error_body
from ._protocol.hosts import origin, resolve_redirect
from ._protocol.ratelimit import RateLimitInfo, parse_rate_limit, server_clock
from ._protocol.retry import RetryPolicy, decide, rate_limit_delay
from .errors import (
    ConnectionFailed,
    RateLimited,
    RequestTimeout,
    ResponseTooLarge,
    SentryError,
    TransportError,
    UnsafeRedirect,
)
from .limiter import RateLimiter

__all__ = ["MalformedBody", "Response", "Secret", "Transport"]

T = TypeVar("T")

logger = logging.getLogger("sentry_async")

_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_MAX_REDIRECTS = 5
DEFAULT_MAX_BODY_SIZE = 64 * 1024 * 1024

_PER_REQUEST_DECOMPRESS = (
    "auto_decompress" in inspect.signature(aiohttp.ClientSession._request).parameters
)
"""Whether this aiohttp lets a request turn off its own decompression (newer versions)."""


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
        max_body_size: int | None = DEFAULT_MAX_BODY_SIZE,
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
        self.max_body_size = max_body_size
        # Bodies are inflated by BodyReader, under the size cap, whenever aiohttp can be
        # told not to; otherwise (an old aiohttp and a session that decompresses) the cap
        # still counts the inflated bytes aiohttp hands over.
        self._inflate = _PER_REQUEST_DECOMPRESS or not session.auto_decompress
        self._request_options: dict[str, bool] = (
            {"auto_decompress": False} if _PER_REQUEST_DECOMPRESS else {}
        )

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
        policy = retry or self.retry
        if params:
            url = url.extend_query(list(params))
        attempt = 0
        while True:
            attempt += 1
            paused = self.limiter.pause_for(group)
            if paused > policy.max_wait:
                # The server asked for a longer pause than this caller will wait: fail now
                # instead of sleeping or sending into the limit.
                raise RateLimited(
                    429,
                    method=method,
                    url=str(url),
                    detail="this endpoint is paused",
                    retry_after=paused,
                )
            try:
                async with self.limiter.slot(group):
                    response = await self._send_once(method, url, body)
            except _Failure as failure:
                decision = decide(
                    attempt=attempt,
                    policy=policy,
                    idempotent=idempotent,
                    kind=failure.kind,
                    rng=self._rng,
                )
                if not decision.retry:
                    raise failure.error from failure.error.__cause__
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
            wall = server_clock(response.headers.get("Date"), time.time())
            self.limiter.observe(
                group,
                response.rate_limit,
                server_now=wall,
                max_wait=policy.max_wait,
                log=response.status != 429,
            )
            if response.status < 400:
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
                self.limiter.block(group, decision.delay, max_wait=policy.max_wait)
            if decision.retry:
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
                retry_after=rate_limit_delay(response.headers, response.rate_limit, wall)
                if response.status == 429
                else None,
            )

    def _redact(self, body: bytes) -> bytes:
        """An error body with the token blanked out: a server (or proxy) that echoes the
        request back must not put the token into the exception built from it."""
        if self._token is None:
            return body
        secret = self._token.reveal().encode()
        return body.replace(secret, b"********") if secret and secret in body else body

    async def _read(self, resp: aiohttp.ClientResponse, method: str) -> bytes:
        return await _read_body(resp, method, self.max_body_size, self._inflate)

    async def _send_once(self, method: str, url: URL, body: bytes | None) -> Response:
        started = time.perf_counter()
        for _ in range(_MAX_REDIRECTS + 1):
            headers = dict(self._headers)
            if body is not None:
                headers["Content-Type"] = "application/json"
            if self._inflate:
                headers["Accept-Encoding"] = ACCEPT_ENCODING
            if self._token is not None and origin(url) in self.trusted_origins:
                headers["Authorization"] = f"Bearer {self._token.reveal()}"
            malformed: ConnectionFailed | None = None
            try:
                async with self.session.request(
                    method,
                    url,
                    data=body,
                    headers=headers,
                    allow_redirects=False,
                    timeout=self._timeout,
                    **self._request_options,
                ) as resp:
                    try:
                        payload = await self._read(resp, method)
                    except BaseException:
                        resp.close()
                        raise
                    status = resp.status
                    resp_headers = resp.headers
            except BodyTooLarge as exc:
                raise _Failure(
                    "too_large",
                    ResponseTooLarge(str(exc), method=method, url=str(url), limit=exc.limit),
                ) from None
            except UnsupportedEncoding as exc:
                raise _Failure(
                    "final", ConnectionFailed(str(exc), method=method, url=str(url))
                ) from None
            except CorruptBody as exc:
                raise _Failure(
                    "payload", ConnectionFailed(str(exc), method=method, url=str(url))
                ) from None
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
                    "tls" if _is_tls_failure(exc) else "connection",
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


async def _read_body(
    resp: aiohttp.ClientResponse, method: str, limit: int | None, inflate: bool
) -> bytes:
    """The whole body, at most ``limit`` bytes once decoded, refused as soon as it is more."""
    reader = BodyReader(
        limit=limit,
        content_length=None if method == "HEAD" else resp.content_length,
        encoding=resp.headers.get("Content-Encoding", "") if inflate else "",
    )
    async for chunk in resp.content.iter_any():
        reader.feed(chunk)
    return reader.finish()


def _is_tls_failure(exc: BaseException) -> bool:
    """A TLS handshake or certificate error (``WRONG_VERSION_NUMBER``,
    ``CERTIFICATE_VERIFY_FAILED``): trying again would meet the same configuration."""
    if isinstance(exc, aiohttp.ClientSSLError):
        return True
    seen: BaseException | None = exc
    for _ in range(5):
        if seen is None:
            return False
        if isinstance(seen, ssl.SSLError) or isinstance(
            getattr(seen, "os_error", None), ssl.SSLError
        ):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def _chain(error: TransportError, cause: BaseException) -> TransportError:
    error.__cause__ = cause
    return error
