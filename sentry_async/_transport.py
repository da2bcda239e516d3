"""The thin aiohttp layer, and the retry loop that applies the protocol's decisions.

Everything that decides (retry or not, how long to wait, which error, where a redirect
goes and with which method) lives in ``_protocol``; this module only moves bytes, sleeps,
and tells the limiter what it saw.

No error raised from here carries the token, even to a traceback printed with its frames'
locals (sentry-sdk, rich, ``pytest --showlocals``): aiohttp's exceptions are described
(and the description redacted) rather than chained, since their frames and their
``request_info`` hold the request's headers; the ``Authorization`` header is built inline
in the call, so it is never a local of this module's frames; and a body a server echoes
back has the token blanked out before anything is built from it.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import random
import ssl
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import aiohttp
import anyio
from multidict import CIMultiDictProxy
from yarl import URL

from ._network import explain_missing_token
from ._protocol.body import (
    ACCEPT_ENCODING,
    BodyReader,
    BodyTooLarge,
    CorruptBody,
    UnsupportedEncoding,
)
from ._protocol.errors import Redactor, build_api_error, is_query_timeout
from ._protocol.hosts import REDIRECT_STATUSES, origin, redirect_method, resolve_redirect
from ._protocol.proxies import ProxySettings
from ._protocol.ratelimit import RateLimitInfo, parse_rate_limit, server_clock
from ._protocol.retry import FailureKind, RetryPolicy, decide, fail_fast, rate_limit_delay
from .errors import (
    ConnectionFailed,
    RateLimited,
    RequestTimeout,
    ResponseTooLarge,
    SentryError,
    TransportError,
    UnsafeRedirect,
)
from .hooks import Call, HookSet
from .limiter import RateLimiter

__all__ = [
    "DEFAULT_MAX_BODY_SIZE",
    "MalformedBody",
    "Response",
    "Secret",
    "Transport",
    "disable_silent_resend",
]

T = TypeVar("T")

logger = logging.getLogger("sentry_async")

_MAX_REDIRECTS = 5
DEFAULT_MAX_BODY_SIZE = 64 * 1024 * 1024

_PER_REQUEST_DECOMPRESS = (
    "auto_decompress" in inspect.signature(aiohttp.ClientSession._request).parameters
)
"""Whether this aiohttp lets a request turn off its own decompression (newer versions)."""

Sink = Callable[[bytes], Awaitable[None]]
Form = Callable[[], aiohttp.FormData]
"""Builds a multipart body afresh for each attempt (aiohttp consumes one as it sends it)."""
Body = bytes | Form | None


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


@dataclass(slots=True, repr=False)
class Response:
    """A complete response: status, headers, the whole body, and what it said about limits."""

    method: str
    url: URL
    status: int
    headers: CIMultiDictProxy[str]
    body: bytes
    rate_limit: RateLimitInfo | None
    elapsed: float

    def __repr__(self) -> str:
        # Neither headers nor body: a server may echo the token in either, and a traceback
        # printed with locals shows this repr.
        return f"<Response {self.status} from {self.method} {self.url} ({len(self.body)} bytes)>"


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
    """One attempt's failure: ``kind`` for :func:`decide`, ``error`` to raise if final."""

    def __init__(
        self, kind: FailureKind, error: SentryError, response: Response | None = None
    ) -> None:
        self.kind = kind
        self.error = error
        self.response = response


def disable_silent_resend(session: aiohttp.ClientSession) -> bool:
    """Turn off aiohttp's own resend of a GET/PUT/DELETE whose connection dropped.

    aiohttp resends such a request once, silently, when a pooled connection turns out to
    be closed; for Sentry that would resend a merge or a discard (``PUT``), and double
    every attempt count. Every resend goes through :class:`RetryPolicy` instead. aiohttp
    has no public switch for it, so this sets the session's flag; it applies to a session
    passed to ``SentryClient(session=...)`` too, and to its other users. Returns whether
    the flag existed (aiohttp versions before the resend have nothing to turn off).
    """
    if not hasattr(session, "_retry_connection"):
        return False
    session._retry_connection = False
    return True


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
        max_body_size: int | None = DEFAULT_MAX_BODY_SIZE,
    ) -> None:
        self.session = session
        disable_silent_resend(session)
        self._token = token
        self._redactor = Redactor(token.reveal() if token is not None else None)
        self.limiter = limiter
        self.retry = retry
        self._timeout = timeout
        self.trusted_origins = trusted_origins
        self._headers = headers
        self._rng = rng or random.Random()
        self._proxy = proxy or None
        self._hooks = hooks
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

    async def download(
        self,
        method: str,
        url: URL,
        *,
        group: str,
        sink: Sink,
        params: Sequence[tuple[str, str]] = (),
        retry: RetryPolicy | None = None,
    ) -> Response:
        """Hand a success body to ``sink`` chunk by chunk (inflated, with no size cap) for
        large binary downloads; the returned response's ``body`` is empty. Failures are
        retried until the first chunk reaches ``sink``, never after."""
        return await self.send_decoded(
            method,
            url,
            group=group,
            params=params,
            idempotent=True,
            retry=retry,
            decode=_whole,
            sink=sink,
        )

    async def send_decoded(
        self,
        method: str,
        url: URL,
        *,
        group: str,
        params: Sequence[tuple[str, str]] = (),
        body: Body = None,
        idempotent: bool,
        retry: RetryPolicy | None = None,
        decode: Callable[[Response], T],
        sink: Sink | None = None,
        replayable: bool = True,
    ) -> T:
        """:meth:`send`, then ``decode`` the success; a :class:`MalformedBody` from it counts
        as a failed attempt (a body cut short or mangled on the way), retried like one.

        ``body`` is JSON bytes or a :data:`Form`; ``replayable=False`` (a form whose file
        can be read once) sends it once, even where a 429 would be retried."""
        call = None if self._hooks is None else self._hooks.start(method, group)
        try:
            result = await self._attempts(
                method,
                url,
                group,
                params,
                body,
                idempotent,
                retry,
                decode,
                sink,
                call,
                replayable,
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
        body: Body,
        idempotent: bool,
        retry: RetryPolicy | None,
        decode: Callable[[Response], T],
        sink: Sink | None,
        call: Call | None,
        replayable: bool,
    ) -> T:
        """The one retry loop: attempt, decide, log, sleep."""
        policy = retry or self.retry
        if params:
            url = url.extend_query(list(params))
        attempt = 0
        while True:
            attempt += 1
            paused = self.limiter.pause_for(group)
            if fail_fast(paused, policy):
                raise RateLimited(
                    429,
                    method=method,
                    url=str(url),
                    detail="this endpoint is paused",
                    retry_after=paused,
                )
            failure = await self._attempt(
                method, url, body, group, policy, decode, sink, call, attempt
            )
            if not isinstance(failure, _Failure):
                return failure
            response = failure.response
            if call is not None and response is None:
                call.failed(failure.kind)
            now = time.time() if response is None else self._server_now(response)
            decision = decide(
                attempt=attempt,
                policy=policy,
                idempotent=idempotent and replayable,
                kind=failure.kind,
                status=None if response is None else response.status,
                query_timeout=response is not None
                and is_query_timeout(response.status, getattr(failure.error, "detail", None)),
                headers=None if response is None else response.headers,
                rate_limit=None if response is None else response.rate_limit,
                now=now,
                rng=self._rng,
            )
            if decision.server_wait:
                self.limiter.block(group, decision.delay, max_wait=policy.max_wait)
                if call is not None:
                    call.server_wait(decision.delay)
            if not decision.retry or not replayable:
                # Raised here, outside any ``except``: nothing of aiohttp's is chained.
                raise failure.error
            if call is not None:
                call.retrying(decision.delay, failure.kind)
            logger.warning(
                "%s",
                self._redactor.text(
                    f"retrying {method} {url} in {decision.delay:.2f}s "
                    f"(attempt {attempt + 1} of {policy.attempts}): {failure.error}"
                ),
            )
            await anyio.sleep(decision.delay)

    async def _attempt(
        self,
        method: str,
        url: URL,
        body: Body,
        group: str,
        policy: RetryPolicy,
        decode: Callable[[Response], T],
        sink: Sink | None,
        call: Call | None,
        attempt: int,
    ) -> T | _Failure:
        """One attempt: the decoded success, or the failure to decide on."""
        try:
            if call is not None:
                call.waiting()
            async with self.limiter.slot(group):
                if call is not None:
                    call.sending(attempt)
                response = await self._exchange(method, url, body, sink)
        except _Failure as failure:
            return failure
        if call is not None:
            call.answered(response.status, response.elapsed)
        self.limiter.observe(
            group,
            response.rate_limit,
            server_now=self._server_now(response),
            max_wait=policy.max_wait,
            log=response.status != 429,
        )
        # A 3xx still here had no Location (Sentry's renamed-project answer): an error, not
        # a body to decode as the requested model.
        if response.status >= 300:
            return _Failure("status", self._api_error(response), response)
        try:
            return decode(response)
        except MalformedBody as malformed:
            return _Failure("payload", malformed.error)

    def _server_now(self, response: Response) -> float:
        return server_clock(response.headers.get("Date"), time.time())

    def _redact(self, body: bytes) -> bytes:
        """A body with the token (in any encoding) and the proxy's credentials blanked out."""
        if self._proxy is not None:
            body = self._proxy.redact(body)
        return self._redactor.body(body)

    def _api_error(self, response: Response) -> SentryError:
        return build_api_error(
            response.status,
            self._redact(response.body),
            method=response.method,
            url=str(response.url),
            rate_limit=response.rate_limit,
            retry_after=rate_limit_delay(
                response.headers, response.rate_limit, self._server_now(response)
            )
            if response.status == 429
            else None,
        )

    async def _exchange(self, method: str, url: URL, body: Body, sink: Sink | None) -> Response:
        """One attempt's HTTP exchanges: the request and the redirects it may follow."""
        started = time.perf_counter()
        for _ in range(_MAX_REDIRECTS + 1):
            response = await self._roundtrip(method, url, body, sink, started)
            location = response.headers.get("Location")
            if response.status not in REDIRECT_STATUSES or location is None:
                return response
            url = self._follow(method, url, location)
            method, keep_body = redirect_method(response.status, method)
            body = body if keep_body else None
        raise _Failure(
            "redirect", UnsafeRedirect("too many redirects", method=method, url=str(url))
        )

    def _follow(self, method: str, url: URL, location: str) -> URL:
        failure: _Failure | None = None
        try:
            target, trusted = resolve_redirect(url, location, frozenset(self.trusted_origins))
        except ValueError as exc:
            failure = self._failure(
                "redirect",
                UnsafeRedirect,
                f"refusing to follow a redirect to an unparsable location: {exc}",
                method,
                url,
            )
        if failure is not None:
            raise failure
        if not trusted:
            scheme, host, port = origin(target)
            raise self._failure(
                "redirect",
                UnsafeRedirect,
                "refusing to follow a redirect to untrusted origin "
                f"{scheme}://{host}{'' if port is None else f':{port}'}",
                method,
                url,
            )
        return target

    async def _roundtrip(
        self, method: str, url: URL, body: Body, sink: Sink | None, started: float
    ) -> Response:
        """One HTTP exchange; whatever goes wrong becomes a :class:`_Failure` raised outside
        the ``except`` that caught it, so aiohttp's exception is not even its context."""
        delivered = [0]
        failure: _Failure | None = None
        try:
            return await self._request(method, url, body, sink, delivered, started)
        except (asyncio.TimeoutError, TimeoutError):
            failure = self._failure(
                "timeout", RequestTimeout, "no complete response in time", method, url
            )
        except BodyTooLarge as exc:
            failure = _Failure(
                "too_large",
                ResponseTooLarge(str(exc), method=method, url=str(url), limit=exc.limit),
            )
        except UnsupportedEncoding as exc:
            failure = self._failure("final", ConnectionFailed, str(exc), method, url)
        except CorruptBody as exc:
            failure = self._failure("payload", ConnectionFailed, str(exc), method, url)
        except aiohttp.ClientPayloadError as exc:
            failure = self._failure(
                "payload", ConnectionFailed, f"response body broke off: {exc}", method, url, exc
            )
        except aiohttp.ClientConnectorCertificateError as exc:
            failure = self._failure(
                "tls",
                ConnectionFailed,
                f"{exc} (for a private CA pass ssl= or --ca-bundle with its certificate)",
                method,
                url,
                exc,
            )
        except aiohttp.ClientHttpProxyError as exc:
            # Its request_info is the CONNECT, Proxy-Authorization included.
            failure = self._failure(
                "connection",
                ConnectionFailed,
                f"the proxy refused the tunnel: {exc.status} {exc.message}",
                method,
                url,
                exc,
            )
        except aiohttp.ClientResponseError as exc:
            # A response aiohttp could not parse (bad status line, oversized header).
            failure = self._failure(
                "connection",
                ConnectionFailed,
                f"malformed response: {exc.message or type(exc).__name__}",
                method,
                url,
                exc,
            )
        except aiohttp.ClientError as exc:
            failure = self._failure(
                "tls" if _is_tls_failure(exc) else "connection",
                ConnectionFailed,
                f"{type(exc).__name__}: {exc}",
                method,
                url,
                exc,
            )
        except OSError as exc:
            failure = self._failure(
                "tls" if _is_tls_failure(exc) else "connection",
                ConnectionFailed,
                f"{type(exc).__name__}: {exc}",
                method,
                url,
                exc,
            )
        except (ValueError, RuntimeError) as exc:
            # Not expected from aiohttp, but its traceback would hold the request headers.
            failure = self._failure(
                "final", ConnectionFailed, f"{type(exc).__name__}: {exc}", method, url, exc
            )
        if delivered[0] and failure.kind != "too_large":
            failure.kind = "final"  # part of the body already went to the sink
        raise failure

    def _failure(
        self,
        kind: FailureKind,
        cls: type[TransportError],
        message: str,
        method: str,
        url: URL,
        cause: BaseException | None = None,
    ) -> _Failure:
        redact = self._redactor.text
        described = None if cause is None else redact(f"{type(cause).__name__}: {cause}")
        error = cls(redact(message), method=method, url=str(url), cause=described)
        return _Failure(kind, error)

    async def _request(
        self,
        method: str,
        url: URL,
        body: Body,
        sink: Sink | None,
        delivered: list[int],
        started: float,
    ) -> Response:
        """The aiohttp call. The only frame that sees aiohttp's objects; the headers,
        ``Authorization`` included, are built inside the call expression, never a local."""
        async with self.session.request(
            method,
            url,
            data=body() if callable(body) else body,
            allow_redirects=False,
            timeout=self._timeout,
            **self._request_options,
            **self._routed_headers(url, body, sink),
        ) as resp:
            try:
                if sink is not None and 200 <= resp.status < 300:
                    await self._stream(resp, sink, delivered)
                    payload = b""
                else:
                    payload = await self._read(resp, method)
            except BaseException:
                resp.close()  # whatever is left unread (a 2 GB body, say) is not waited for
                raise
            elapsed = time.perf_counter() - started
            logger.debug("%s %s -> %d in %.1f ms", method, url, resp.status, elapsed * 1000)
            return Response(
                method=method,
                url=url,
                status=resp.status,
                headers=resp.headers,
                body=payload,
                rate_limit=parse_rate_limit(resp.headers),
                elapsed=elapsed,
            )

    def _routed_headers(self, url: URL, body: Body, sink: Sink | None) -> dict[str, Any]:
        """``headers``, ``proxy`` and ``proxy_headers`` for the aiohttp call."""
        headers = self._request_headers(url, body, sink)
        proxy, proxy_headers = (
            (None, None) if self._proxy is None else self._proxy.route(url, headers)
        )
        return {"headers": headers, "proxy": proxy, "proxy_headers": proxy_headers}

    def _request_headers(self, url: URL, body: Body, sink: Sink | None) -> dict[str, str]:
        headers = dict(self._headers)
        if sink is not None:
            headers["Accept"] = "*/*"  # a download is a file, whatever its type
        if isinstance(body, bytes):
            headers["Content-Type"] = "application/json"  # a form sets its own
        if self._inflate:
            headers["Accept-Encoding"] = ACCEPT_ENCODING
        if self._token is not None and origin(url) in self.trusted_origins:
            headers["Authorization"] = f"Bearer {self._token.reveal()}"
        return headers

    def _reader(self, resp: aiohttp.ClientResponse, limit: int | None, method: str) -> BodyReader:
        return BodyReader(
            limit=limit,
            content_length=None if method == "HEAD" else resp.content_length,
            encoding=resp.headers.get("Content-Encoding", "") if self._inflate else "",
        )

    async def _read(self, resp: aiohttp.ClientResponse, method: str) -> bytes:
        """The whole body, at most ``max_body_size`` bytes once decoded, refused as soon as
        it is more."""
        reader = self._reader(resp, self.max_body_size, method)
        if resp.content_length is not None:
            # The announced length is already checked against the cap, and aiohttp reads
            # no further than it: one read, not an iteration step per network chunk. A
            # compressed body is still inflated under the cap by the reader.
            reader.feed(await resp.read())
            return reader.finish()
        async for chunk in resp.content.iter_any():
            reader.feed(chunk)
        return reader.finish()

    async def _stream(self, resp: aiohttp.ClientResponse, sink: Sink, delivered: list[int]) -> None:
        reader = self._reader(resp, None, "GET")
        async for chunk in resp.content.iter_any():
            reader.feed(chunk)
            data = reader.take()
            if data:
                delivered[0] += len(data)
                await sink(data)
        rest = reader.finish()
        if rest:
            delivered[0] += len(rest)
            await sink(rest)


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
