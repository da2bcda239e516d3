"""One HTTP exchange through aiohttp, and the types the transport's layers share.

The only code that touches aiohttp's request and response objects: it sends a request
(headers built inline, so the token is never a local), reads the body under the size cap,
follows a redirect the protocol allows, and turns every aiohttp or socket failure into a
:class:`_Failure` whose error is described and redacted, never chained. The retry loop
above it (:mod:`sentry_async._transport`) decides what to do with each.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import re
import ssl
import time
import weakref
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from types import CodeType
from typing import TYPE_CHECKING, Any

import aiohttp
from aiohttp.client_proto import ResponseHandler
from multidict import CIMultiDictProxy
from yarl import URL

from ._deadlines import _EARLY
from ._protocol.body import (
    ACCEPT_ENCODING,
    MAX_GZIP_MEMBERS,
    BodyReader,
    BodyTooLarge,
    CorruptBody,
    UnsupportedEncoding,
)
from ._protocol.errors import is_project_moved, parse_error_body
from ._protocol.hosts import (
    REDIRECT_STATUSES,
    has_user_info,
    origin,
    redirect_method,
    redirect_refusal,
    resolve_redirect,
)
from ._protocol.proxies import safe_proxy_url, tunnel_refusal_is_final
from ._protocol.ratelimit import RateLimitInfo, parse_rate_limit
from ._protocol.retry import FailureKind
from .errors import (
    ClientClosed,
    ConnectionFailed,
    RequestTimeout,
    ResponseTooLarge,
    SentryError,
    TransportError,
    UnsafeRedirect,
    WrongEventLoop,
)

if TYPE_CHECKING:
    from ._deadlines import Deadlines, Watch
    from ._protocol.errors import Redactor
    from ._protocol.proxies import ProxySettings

__all__ = ["Body", "Exchange", "Form", "MalformedBody", "Response", "Secret", "Sink"]

logger = logging.getLogger("sentry_async")

_MAX_REDIRECTS = 5

Sink = Callable[[bytes], Awaitable[None]]
HeadersSeen = Callable[[CIMultiDictProxy[str]], bool]
"""Sees a success's headers as soon as they arrive, before its body is read; returns
whether it started something (a request for the next page) that should get one pass of
the loop before the body is read, which may not wait at all."""
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
    redact: Callable[[str], str] | None = None
    """Blanks the token out of text about this response (its URL may hold a cursor a
    server echoed it in): for errors only, never run on a success."""

    @property
    def shown_url(self) -> str:
        """The URL for an error message, the token blanked out."""
        url = str(self.url)
        return url if self.redact is None else self.redact(url)

    def __repr__(self) -> str:
        # Neither headers nor body: a server may echo the token in either, and a traceback
        # printed with locals shows this repr (and the URL may hold an echoing cursor).
        size = len(self.body)
        return f"<Response {self.status} from {self.method} {self.shown_url} ({size} bytes)>"


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
    """One attempt's failure: ``kind`` for :func:`decide`, ``error`` to raise if final.

    ``answered``: the attempt got a response whose body then failed to decode; its
    ``on_response`` hook was already called, and one attempt reports one response.
    ``status``: the status line that arrived before the attempt failed (a body cut off or
    too large, a refused redirect), for hooks and spans; ``None`` when none came.
    ``unanswered``: the connection closed under the request before its status line came.
    ``sent``: the request may have reached the server; ``False`` only when it provably
    never left (no connection was made), so that even a write may be sent again."""

    unanswered = False
    sent = True

    def __init__(
        self,
        kind: FailureKind,
        error: SentryError,
        response: Response | None = None,
        *,
        answered: bool = False,
        status: int | None = None,
    ) -> None:
        self.kind = kind
        self.error = error
        self.response = response
        self.answered = answered
        self.status = status


class Exchange:
    """The aiohttp side of :class:`~sentry_async._transport.Transport` (its base class)."""

    if TYPE_CHECKING:
        session: aiohttp.ClientSession
        trusted_origins: set[tuple[str, str, int | None]]
        max_body_size: int | None
        _token: Secret | None
        _redactor: Redactor
        _timeout: aiohttp.ClientTimeout
        _connect_timeout: aiohttp.ClientTimeout
        _download_timeout: aiohttp.ClientTimeout
        _deadlines: Deadlines | None
        _download_deadlines: Deadlines
        _headers: dict[str, str]
        _proxy: ProxySettings | None
        _inflate: bool
        _request_options: dict[str, bool]

    closed = False
    """Set by :meth:`close`: no attempt is sent from then on."""

    def close(self) -> None:
        """End every attempt in flight (each call raises :class:`ClientClosed`, rather than
        wait for a body that a closed session no longer reads) and send none from now on."""
        self.closed = True
        if self._deadlines is not None:
            self._deadlines.end_all("the client was closed")

    async def _exchange(
        self,
        method: str,
        url: URL,
        body: Body,
        sink: Sink | None,
        on_headers: HeadersSeen | None = None,
        resend: bool = False,
        seen: list[int] | None = None,
    ) -> Response:
        """One attempt's HTTP exchanges: the request and the redirects it may follow, all
        under one watch, so that ``total`` bounds the attempt rather than each hop.

        ``resend``: the request is safe to send twice; each of its exchanges that a
        kept-alive connection closed under, before any answer, is sent once more.
        ``seen[0]``: the last hop's status once its line arrived (else 0), for the hooks of
        an attempt that an exception ends (a sink's, a cancellation), which no
        :class:`_Failure` carries."""
        started = time.perf_counter()
        deadlines = self._deadlines if sink is None else self._download_deadlines
        watch = None if deadlines is None else deadlines.start()
        try:
            for hop in range(_MAX_REDIRECTS + 1):
                try:
                    response = await self._roundtrip(
                        method, url, body, sink, started, on_headers, watch, seen
                    )
                except _Failure as failure:
                    if not (resend and failure.unanswered):
                        raise
                    # A server may close a kept-alive connection while it is taken for the
                    # next request (RFC 9112 §9.3.1): once, at once, not an attempt.
                    response = await self._roundtrip(
                        method, url, body, sink, started, on_headers, watch, seen
                    )
                location = response.headers.get("Location")
                if (
                    response.status not in REDIRECT_STATUSES
                    or location is None
                    or _project_moved(response)
                ):
                    if hop:
                        # A Location may echo the token: errors and reprs show what it named.
                        response.url = URL(self._shown(url), encoded=True)
                    return response
                try:
                    target = self._follow(method, url, location)
                    self._refuse_write(response.status, method, url, target)
                except _Failure as refused:
                    refused.status = response.status
                    if isinstance(refused.error, TransportError):
                        refused.error.status = response.status  # its message names it
                    raise
                url = target
                method, keep_body = redirect_method(response.status, method)
                body = body if keep_body else None
        finally:
            if watch is not None:
                watch.finish()
        raise _Failure(
            "redirect",
            UnsafeRedirect("too many redirects", method=method, url=self._shown(url)),
            status=response.status,
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
            where = f"{scheme}://{host}{'' if port is None else f':{port}'}"
            if has_user_info(target):
                # Named by origin alone: the credentials it carries are not shown.
                why = f"a URL with user information (user@host) on {where}"
            else:
                why = f"untrusted origin {where}"
            raise self._failure(
                "redirect", UnsafeRedirect, f"refusing to follow a redirect to {why}", method, url
            )
        return target

    def _refuse_write(self, status: int, method: str, url: URL, target: URL) -> None:
        """A write answered with 301/302/303 is not followed: the error names where to."""
        refusal = redirect_refusal(status, method)
        if refusal is not None:
            raise _Failure(
                "redirect",
                UnsafeRedirect(
                    f"{refusal}; it points to {self._shown(target)}",
                    method=method,
                    url=self._shown(url),
                ),
            )

    async def _roundtrip(
        self,
        method: str,
        url: URL,
        body: Body,
        sink: Sink | None,
        started: float,
        on_headers: HeadersSeen | None,
        watch: Watch | None,
        seen: list[int] | None = None,
    ) -> Response:
        """One HTTP exchange under its attempt's ``watch``; whatever goes wrong becomes a
        :class:`_Failure` raised outside the ``except`` that caught it, so aiohttp's
        exception is not even its context."""
        if self.closed:
            raise self._closed_failure()
        delivered = [0, 0]  # bytes handed to the sink; the status, once its line arrived
        failure: _Failure | _SinkFailed | None = None
        dropped = False
        unsent = False  # failed before the request had a connection: nothing left
        request = self._request(method, url, body, sink, delivered, started, watch, on_headers)
        if watch is not None:
            watch.begin(functools.partial(_in_connector, request))
        tunnel = self._tunnel_wait(request, url)
        try:
            return await request
        except _SinkFailed as exc:
            failure = exc
        except asyncio.CancelledError as exc:
            if tunnel is not None and tunnel.finish():
                unsent = True  # no tunnel: nothing reached Sentry
                failure = self._tunnel_timeout(tunnel.seconds, method, url)
            elif watch is None or not watch.finish():
                raise
            else:
                unsent = _raised_in(exc) is not None
                expired = watch.expired or ""
                if not expired.startswith("no complete response"):
                    expired = f"no complete response: {expired}"
                failure = self._failure("timeout", RequestTimeout, expired, method, url)
        except (asyncio.TimeoutError, TimeoutError) as exc:
            unsent = isinstance(exc, _CONNECT_TIMEOUTS) or _raised_in(exc) is not None
            failure = self._failure(
                "timeout",
                RequestTimeout,
                self._connection_wait(url) if unsent else "no complete response in time",
                method,
                url,
            )
        except BodyTooLarge as exc:
            failure = _Failure(
                "too_large",
                ResponseTooLarge(str(exc), method=method, url=self._shown(url), limit=exc.limit),
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
            unsent = True
            hint = " (for a private CA pass ssl= or --ca-bundle with its certificate)"
            failure = self._failure(
                "tls",
                ConnectionFailed,
                f"{exc}{hint if _unknown_issuer(exc.certificate_error) else ''}",
                method,
                url,
                exc,
            )
        except aiohttp.ClientHttpProxyError as exc:
            # Its request_info is the CONNECT, Proxy-Authorization included. The tunnel
            # was refused: the request itself never left.
            unsent = True
            failure = self._tunnel_refused(exc, method, url)
        except aiohttp.ClientResponseError as exc:
            # A response aiohttp could not parse (bad status line, oversized header): what
            # was wrong with it, never the bytes its parser quotes.
            found = _parser_complaint(exc.message) or type(exc).__name__
            cause = f"{type(exc).__name__}: {exc.status}, {found}"
            where = _raised_in(exc)
            unsent = where is not None
            if where is _TUNNEL:
                # The proxy's answer to CONNECT: no tunnel, so the request never left.
                failure = self._tunnel_failed(f"malformed answer: {found}", cause, method, url)
            else:
                failure = self._failure(
                    "connection",
                    ConnectionFailed,
                    f"malformed response: {found}",
                    method,
                    url,
                    cause,
                )
        except aiohttp.ClientConnectorError as exc:
            # Raised only while connecting (refused, DNS, TLS handshake, the proxy's
            # socket): no byte of the request was written.
            unsent = True
            failure = self._connection_failure(exc, method, url)
        except aiohttp.ClientError as exc:
            dropped = _dropped_kept_alive(exc)
            where = _raised_in(exc)
            unsent = where is not None
            if where is _TUNNEL:
                # The proxy closed or reset the connection before it answered CONNECT.
                what = f"{type(exc).__name__}: {exc}"
                failure = self._tunnel_failed(what, what, method, url)
            else:
                failure = self._connection_failure(exc, method, url)
        except OSError as exc:
            unsent = _raised_in(exc) is not None
            failure = self._connection_failure(exc, method, url)
        except RuntimeError as exc:
            failure = self._runtime_failure(exc, method, url)
        except Exception as exc:
            # Not expected from aiohttp (a bug, a trace callback's own error), but its
            # traceback would hold the request headers, the token included.
            unsent = _raised_in(exc) is not None
            failure = self._failure(
                "final", ConnectionFailed, f"{type(exc).__name__}: {exc}", method, url, exc
            )
        finally:
            if tunnel is not None:
                tunnel.finish()
            if seen is not None:
                seen[0] = delivered[1]
        if isinstance(failure, _SinkFailed):
            raise failure.error  # outside the ``except``: not chained to its carrier
        if self.closed:
            raise self._closed_failure()  # whatever it broke, the attempt ended for the close
        if delivered[0] and failure.kind != "too_large":
            failure.kind = "final"  # part of the body already went to the sink
        failure.status = delivered[1] or None
        failure.unanswered = dropped and not delivered[1]
        failure.sent = not unsent
        if isinstance(failure.error, TransportError):
            failure.error._delivered(failure.status, maybe_sent=failure.sent)
        raise failure

    def _failure(
        self,
        kind: FailureKind,
        cls: type[TransportError],
        message: str,
        method: str,
        url: URL,
        cause: BaseException | str | None = None,
    ) -> _Failure:
        """``cause``: aiohttp's exception, or its description where its own text would
        quote the response's bytes."""
        redact = self._redactor.text
        if isinstance(cause, BaseException):
            cause = f"{type(cause).__name__}: {cause}"
        described = None if cause is None else redact(cause)
        error = cls(redact(message), method=method, url=self._shown(url), cause=described)
        return _Failure(kind, error)

    def _closed_failure(self) -> _Failure:
        """The attempt of a closed client, or of one whose session was closed under it."""
        if self.closed:
            message = "this SentryClient is closed"
        else:
            message = "the aiohttp session this SentryClient sends through is closed"
        return _Failure("final", ClientClosed(message))

    def _runtime_failure(self, exc: RuntimeError, method: str, url: URL) -> _Failure:
        """aiohttp's RuntimeErrors say the client cannot send from here (a closed session,
        a session of another event loop), not that the network failed."""
        if self.closed or self.session.closed:
            return self._closed_failure()
        text = f"{type(exc).__name__}: {exc}"
        if "loop" in text or "thread" in text:
            return _Failure(
                "final",
                WrongEventLoop(
                    self._redactor.text(
                        "the aiohttp session of this SentryClient belongs to another event "
                        f"loop ({text}): create one client, and one session, per event loop"
                    )
                ),
            )
        return self._failure("final", ConnectionFailed, text, method, url, exc)

    def _shown(self, url: URL) -> str:
        """``url`` for an error or a log line: a redirect's ``Location`` may have put the
        token in it."""
        return self._redactor.text(str(url))

    async def _request(
        self,
        method: str,
        url: URL,
        body: Body,
        sink: Sink | None,
        delivered: list[int],
        started: float,
        watch: Watch | None,
        on_headers: HeadersSeen | None,
    ) -> Response:
        """The aiohttp call. The only frame that sees aiohttp's objects; the headers,
        ``Authorization`` included, are built inside the call expression, never a local.
        ``delivered`` counts the bytes handed to a sink, and gets the status as soon as its
        line arrives (``delivered[1]``): a failure after it keeps it. ``raise_for_status``
        is off whatever the session says: every status is the transport's to judge."""
        if sink is not None:
            timeout = self._download_timeout
        elif watch is not None:
            timeout = self._connect_timeout
        else:
            timeout = self._timeout
        async with self.session.request(
            method,
            url,
            data=body() if callable(body) else body,
            allow_redirects=False,
            raise_for_status=False,
            timeout=timeout,
            **self._request_options,
            **self._routed_headers(url, body, sink),
        ) as resp:
            delivered[1] = resp.status
            _KEPT_ALIVE.add(resp._protocol)
            if watch is not None:
                watch.stream = resp.content  # from here on, arriving bytes are progress
            if on_headers is not None and 200 <= resp.status < 300 and on_headers(resp.headers):
                await asyncio.sleep(0)
            try:
                if sink is not None and 200 <= resp.status < 300:
                    if watch is not None:
                        # The body goes at its sink's pace: no ``total``, and aiohttp's read
                        # bound, which pauses while the sink is slow; the watch stays, for
                        # close() to end it.
                        watch.bounded = False
                    _not_pooled(resp)
                    await self._stream(resp, sink, delivered)
                    payload = b""
                else:
                    payload = await self._read(resp, method)
            except BaseException:
                resp.close()  # whatever is left unread (a 2 GB body, say) is not waited for
                raise
            elapsed = time.perf_counter() - started
            if logger.isEnabledFor(logging.DEBUG):
                logger.debug(
                    "%s %s -> %d in %.1f ms", method, self._shown(url), resp.status, elapsed * 1000
                )
            return Response(
                method=method,
                url=url,
                status=resp.status,
                headers=resp.headers,
                body=payload,
                rate_limit=parse_rate_limit(resp.headers),
                elapsed=elapsed,
                redact=self._redactor.text,
            )

    def _connection_failure(self, exc: BaseException, method: str, url: URL) -> _Failure:
        """A connection that failed or broke (a TLS one told apart), described by aiohttp's
        or the socket's error."""
        return self._failure(
            "tls" if _is_tls_failure(exc) else "connection",
            ConnectionFailed,
            f"{type(exc).__name__}: {exc}",
            method,
            url,
            exc,
        )

    def _tunnel_refused(self, exc: aiohttp.ClientHttpProxyError, method: str, url: URL) -> _Failure:
        """A proxy's non-200 answer to ``CONNECT``; a refusal is final."""
        failure = self._tunnel_failed(
            f"{exc.status} {exc.message}", f"{type(exc).__name__}: {exc}", method, url
        )
        if tunnel_refusal_is_final(exc.status):
            failure.kind = "final"
        return failure

    def _tunnel_failed(self, what: str, cause: str, method: str, url: URL) -> _Failure:
        """No tunnel through the proxy (``what`` says why), naming the proxy, never its
        credentials, which its reason phrase may echo: a connection failure, retried."""
        message = f"the proxy refused the tunnel: {what}"
        if self._proxy is not None:
            message, cause = self._proxy.redact_text(message), self._proxy.redact_text(cause)
        message = self._through_proxy(message, url)
        redact = self._redactor.text
        error = ConnectionFailed(
            redact(message), method=method, url=self._shown(url), cause=redact(cause)
        )
        return _Failure("connection", error)

    def _shown_proxy(self, url: URL) -> str | None:
        """The proxy ``url`` goes through, as it may be shown (no credentials), or ``None``."""
        proxy = self._proxy.proxy_for(url) if self._proxy is not None else None
        return None if proxy is None else safe_proxy_url(proxy)

    def _through_proxy(self, message: str, url: URL) -> str:
        """``message`` naming the proxy ``url`` goes through, if any: a failure of the
        proxy's must not read as Sentry's."""
        proxy = self._shown_proxy(url)
        return message if proxy is None else f"{message} (proxy {proxy})"

    def _tunnel_timeout(self, seconds: float, method: str, url: URL) -> _Failure:
        """The proxy left the ``CONNECT`` unanswered for ``seconds``: retried, a write
        included, as no tunnel was opened."""
        message = f"the proxy did not answer CONNECT within {seconds:g}s (Timeouts.connect)"
        return self._failure(
            "timeout", RequestTimeout, self._through_proxy(message, url), method, url
        )

    def _connection_wait(self, url: URL) -> str:
        """A timeout before the request had a connection: the bounds it ran into, and the
        proxy the connection was to go through."""
        bounds = self._connect_timeout
        shown = ", ".join(
            f"Timeouts.{name} {value:g}s"
            for name, value in (("pool", bounds.connect), ("connect", bounds.sock_connect))
            if value is not None
        )
        proxy = self._shown_proxy(url)
        what = "no connection" if proxy is None else f"no connection through the proxy {proxy}"
        return f"{what} in time ({shown})" if shown else f"{what} in time"

    def _tunnel_wait(self, request: Coroutine[Any, Any, object], url: URL) -> _TunnelWait | None:
        """The bound on the proxy's answer to ``CONNECT``, for a request that tunnels."""
        seconds = self._connect_timeout.sock_connect
        if seconds is None or url.scheme != "https" or self._proxy is None:
            return None
        return None if self._proxy.proxy_for(url) is None else _TunnelWait(request, seconds)

    def _routed_headers(self, url: URL, body: Body, sink: Sink | None) -> dict[str, Any]:
        """``headers``, ``proxy`` and ``proxy_headers`` for the aiohttp call."""
        headers = dict(self._headers)
        if sink is not None:
            headers["Accept"] = "*/*"  # a download is a file, whatever its type
        if isinstance(body, bytes):
            headers["Content-Type"] = "application/json"  # a form sets its own
        if self._inflate:
            headers["Accept-Encoding"] = ACCEPT_ENCODING
        if self._token is not None and origin(url) in self.trusted_origins:
            headers["Authorization"] = f"Bearer {self._token.reveal()}"
        proxy, proxy_headers = (
            (None, None) if self._proxy is None else self._proxy.route(url, headers)
        )
        return {"headers": headers, "proxy": proxy, "proxy_headers": proxy_headers}

    def _reader(
        self, resp: aiohttp.ClientResponse, limit: int | None, method: str, *, streamed: bool
    ) -> BodyReader:
        """``streamed``: the body goes on chunk by chunk (a download), its inflation linear
        in each chunk, so a file of many gzip members is read to its end."""
        return BodyReader(
            limit=limit,
            content_length=None if method == "HEAD" else resp.content_length,
            encoding=resp.headers.get("Content-Encoding", "") if self._inflate else "",
            max_members=None if streamed else MAX_GZIP_MEMBERS,
        )

    async def _read(self, resp: aiohttp.ClientResponse, method: str) -> bytes:
        """The whole body, at most ``max_body_size`` bytes once decoded, refused as soon as
        it is more."""
        # An announced excess fails here.
        reader = self._reader(resp, self.max_body_size, method, streamed=False)
        if resp.content_length is not None:
            # aiohttp reads no further than the announced length: one read, not an
            # iteration step per network chunk, and a plain body is handed on as read.
            return reader.whole(await resp.read())
        async for chunk in resp.content.iter_any():
            reader.feed(chunk)
        return reader.finish()

    async def _stream(self, resp: aiohttp.ClientResponse, sink: Sink, delivered: list[int]) -> None:
        reader = self._reader(resp, None, "GET", streamed=True)
        content = resp.content
        while True:
            try:
                chunk = await content.readany()
            except aiohttp.ServerTimeoutError:
                # aiohttp re-arms its read bound when a slow sink lets it read again, even
                # once the body has ended: then it fires for a body already handed over
                # (``readany`` takes all that arrived), and the server was never silent.
                if not content.at_eof():
                    raise
                break
            if not chunk:
                break
            for data in reader.pieces(chunk):
                delivered[0] += len(data)
                await _deliver(sink, data)
        rest = reader.finish()
        if rest:
            delivered[0] += len(rest)
            await _deliver(sink, rest)


_UNKNOWN_ISSUER = frozenset({2, 18, 19, 20, 21})
"""OpenSSL's verify codes for a chain the client cannot follow to a CA it trusts (issuer
not found, self-signed, leaf not verifiable): what a private CA's bundle fixes. An expired
certificate (10) or one for another host (62) fails the same with the right CA."""


def _unknown_issuer(error: BaseException) -> bool:
    """Whether a certificate failure is one a CA bundle could fix (unknown: say so too)."""
    code = getattr(error, "verify_code", None)
    return not isinstance(code, int) or code in _UNKNOWN_ISSUER


_CONNECT = aiohttp.BaseConnector.connect.__code__
"""The connector's ``connect``: a request still in it has no connection yet (it waits
for a pooled one, or for DNS, a TCP or TLS handshake, a proxy's tunnel), and a failure
raised in it is one of a request that never left."""

_TUNNEL: CodeType | None = getattr(
    getattr(aiohttp.TCPConnector, "_create_proxy_connection", None), "__code__", None
)
"""The connector's building of a connection through a proxy: a failure raised there (but
a failure to reach the proxy at all) is the proxy's, before it opened a tunnel."""

_AWAIT_DEPTH = 16
"""How far down the coroutines an exchange awaits :func:`_in_connector` looks (aiohttp's
request, its middlewares, the connector: about six)."""


def _in_connector(request: Coroutine[Any, Any, object]) -> bool:
    """Whether ``request``, an exchange's aiohttp call, is still getting its connection:
    the read clock is the server's only once it has one. Followed down what each
    coroutine awaits, as :meth:`asyncio.Task.get_stack` does; anything else (a callback's
    future, an unknown awaitable) ends the search, and the read clock runs."""
    awaited: Any = request
    for _ in range(_AWAIT_DEPTH):
        code = getattr(awaited, "cr_code", None)
        if code is None:
            return False
        if code is _CONNECT:
            return True
        awaited = awaited.cr_await
    return False


_REACHING: frozenset[CodeType] = frozenset(
    code
    for code in (
        getattr(getattr(aiohttp.TCPConnector, name, None), "__code__", None)
        for name in (
            "_create_direct_connection",
            "_wrap_create_connection",
            "_wrap_existing_connection",
            "_start_tls_connection",
        )
    )
    if code is not None
)
"""The steps of a connection through a proxy that aiohttp bounds by ``sock_connect``
(``Timeouts.connect``): reaching the proxy, and the TLS handshake through the tunnel."""


def _awaiting_tunnel(request: Coroutine[Any, Any, object]) -> bool | None:
    """Whether ``request`` waits on a proxy's ``CONNECT`` (sent, its answer not yet in):
    ``False`` while it waits otherwise for its connection (a pooled one, the proxy's
    socket, the TLS handshake through the tunnel), ``None`` once it has one. Found as
    :func:`_in_connector` finds the connector."""
    awaited: Any = request
    connecting = False
    for _ in range(_AWAIT_DEPTH):
        code = getattr(awaited, "cr_code", None)
        if code is None:
            break
        awaited = awaited.cr_await
        if code is _TUNNEL:
            return getattr(awaited, "cr_code", None) not in _REACHING
        connecting = connecting or code is _CONNECT
    return False if connecting else None


class _TunnelWait:
    """Ends an attempt whose proxy leaves its ``CONNECT`` unanswered for ``seconds``
    (``Timeouts.connect``): aiohttp bounds the other steps of a connection through a
    proxy by it, but that answer only by the whole wait for a connection (``pool``, a
    minute by default), whatever ``timeout=`` said. Looked at every quarter of
    ``seconds`` until the request has its connection, so the attempt ends at most a
    quarter of ``seconds`` late; it ends as the shared deadlines end one, by cancelling
    its task, which :meth:`finish` turns into a timeout."""

    __slots__ = (
        "_cancelling",
        "_handle",
        "_loop",
        "_request",
        "_since",
        "_task",
        "expired",
        "seconds",
    )

    def __init__(self, request: Coroutine[Any, Any, object], seconds: float) -> None:
        self.seconds = seconds
        self.expired = False
        self._request = request
        self._loop = asyncio.get_running_loop()
        self._task = asyncio.current_task()
        cancelling = getattr(self._task, "cancelling", None)  # Python 3.11 and later
        self._cancelling: int = cancelling() if cancelling is not None else 0
        self._since: float | None = None
        self._handle: asyncio.TimerHandle | None = self._loop.call_later(
            seconds / 4, self._look
        )

    def _look(self) -> None:
        """Where the request stands: the clock runs while it waits on the ``CONNECT``."""
        self._handle = None
        state = _awaiting_tunnel(self._request)
        if state is None or self._task is None:
            return  # connected: the read bound takes over
        now = self._loop.time()
        if not state:
            self._since = None
        elif self._since is None:
            self._since = now
        elif now - self._since >= self.seconds - _EARLY:
            # Seen waiting on it for ``seconds``: it went out up to a quarter earlier.
            self.expired = True
            self._task.cancel()
            return
        self._handle = self._loop.call_later(self.seconds / 4, self._look)

    def finish(self) -> bool:
        """Stop looking (again is harmless). True, once, when its expiry cancelled the
        task and nothing else asked to: the caller then raises a timeout instead."""
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
        if not self.expired:
            return False
        self.expired = False
        uncancel = getattr(self._task, "uncancel", None)
        return uncancel is None or uncancel() <= self._cancelling


def _raised_in(exc: BaseException) -> CodeType | None:
    """Where ``exc`` (or an error it was raised from, or while handling) came up from:
    :data:`_TUNNEL`, :data:`_CONNECT`, or ``None`` once the request had its connection."""
    seen: BaseException | None = exc
    where = None
    for _ in range(4):
        if seen is None:
            break
        traceback = seen.__traceback__
        while traceback is not None:
            code = traceback.tb_frame.f_code
            if code is _TUNNEL:
                return code
            if code is _CONNECT:
                where = code
            traceback = traceback.tb_next
        if where is not None:
            return where
        # aiohttp before 3.10 raises its timeout while handling the cancellation that came
        # up through the connector: that one is only the implicit context.
        seen = seen.__cause__ or (None if seen.__suppress_context__ else seen.__context__)
    return None


_CONNECT_TIMEOUTS: tuple[type[BaseException], ...] = tuple(
    getattr(aiohttp, name) for name in ("ConnectionTimeoutError",) if hasattr(aiohttp, name)
)
"""aiohttp's timeout while connecting or waiting for a pooled connection (3.10 and
later): the request was not sent yet."""

_KEPT_ALIVE: weakref.WeakSet[object] = weakref.WeakSet()
"""The connections (aiohttp's protocol objects) that carried an answer: one of them taken
from the pool again is a kept-alive connection, which the server may close at any time."""


def _project_moved(response: Response) -> bool:
    """Whether a redirect is Sentry's renamed-project answer, which carries the new path
    in its ``Location`` too: an answer for the caller, who follows a read to the new slug
    and remembers it, and raises :class:`~sentry_async.ProjectMoved` for a write."""
    return is_project_moved(response.status, *parse_error_body(response.body))


_QUOTE = re.compile(r"""(?:^|(?<=[\s:(=]))b?['"]""")
"""Where a quoted value starts in a parser's message: ``b'...'`` or ``'...'`` after a
space, a colon or the start of a line, not an apostrophe inside a word (``can't``)."""


def _parser_complaint(message: str) -> str:
    """What aiohttp's parser found wrong with a response, without the bytes it quotes.

    Its C parser quotes only the part of the line that is in its current read
    (``Missing expected LF after header value:\\n\\n  b'...'``): a token a server echoed
    there may be cut in two, and no redactor knows a piece of the token from any other
    text, while the last piece of an org token is its random secret. The lines up to
    the first quoted value are kept (``Bad status line: Invalid status code``)."""
    kept: list[str] = []
    for line in message.splitlines():
        quote = _QUOTE.search(line)
        text = (line if quote is None else line[: quote.start()]).strip().rstrip(":").rstrip()
        if text:
            kept.append(text)
        if quote is not None:
            break
    return ": ".join(kept)


def _dropped_kept_alive(exc: aiohttp.ClientError) -> bool:
    """Whether ``exc`` is a kept-alive connection closed under a request before its status
    line: the server closed it as the request went out (RFC 9112 §9.3.1), not a connection
    refused, a fresh one dropped (a server that drops every request) or a body broken off.
    The connection is found among the frames the error passed through."""
    if not isinstance(exc, (aiohttp.ServerDisconnectedError, aiohttp.ClientOSError)):
        return False
    if isinstance(exc, aiohttp.ClientConnectorError):
        return False
    traceback = exc.__traceback__
    while traceback is not None:
        for value in traceback.tb_frame.f_locals.values():
            if isinstance(value, ResponseHandler) and value in _KEPT_ALIVE:
                return True
        traceback = traceback.tb_next
    return False


class _SinkFailed(Exception):
    """Carries what the caller's sink raised past the handlers meant for the network's
    failures: it is the caller's own error, raised to them as it is and never retried."""

    def __init__(self, error: Exception) -> None:
        self.error = error


def _not_pooled(resp: aiohttp.ClientResponse) -> None:
    """A streamed body's connection is closed at its end, not handed back to the pool.

    aiohttp pools it as soon as the body's last byte is parsed, which a slow consumer
    may delay until it drains what was read before; its next read then re-arms aiohttp's
    read timer on the connection already in the pool, where, the body over, nothing
    stops it: it fires and breaks the idle connection, and the next request taken from
    the pool fails at once with a timeout, sent or not. A connection not pooled takes no
    other request."""
    connection = resp.connection
    protocol = None if connection is None else connection.protocol
    if protocol is not None:
        protocol.force_close()


async def _deliver(sink: Sink, data: bytes) -> None:
    try:
        await sink(data)
    except Exception as exc:
        raise _SinkFailed(exc) from None


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
