"""The thin aiohttp layer, and the retry loop that applies the protocol's decisions.

Everything that decides (retry or not, how long to wait, which error, where a redirect
goes and with which method) lives in ``_protocol``; this module only moves bytes, sleeps,
and tells the limiter what it saw.

No error raised from here carries the token, even to a traceback printed with its frames'
locals (sentry-sdk, rich, ``pytest --showlocals``): aiohttp's exceptions are described
(and the description redacted) rather than chained, since their frames and their
``request_info`` hold the request's headers; the ``Authorization`` header is built inline
in the call, so it is never a local of this module's frames; a cancellation, which comes
up through aiohttp's frames, leaves them without their locals; and a body a server echoes
back has the token blanked out before anything is built from it.
"""

from __future__ import annotations

import inspect
import logging
import random
import time
import traceback
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import replace
from typing import TypeVar

import aiohttp
import anyio
from yarl import URL

from ._deadlines import SHARED_DEADLINES, Deadlines
from ._exchange import (
    Body,
    Exchange,
    HeadersSeen,
    MalformedBody,
    Response,
    Secret,
    Sink,
    _Failure,
    _whole,
)
from ._network import explain_missing_token
from ._protocol.errors import Redactor, build_api_error, is_query_timeout
from ._protocol.proxies import ProxySettings
from ._protocol.ratelimit import server_clock, shown_wait
from ._protocol.retry import RetryPolicy, decide, fail_fast, rate_limit_delay
from ._timeouts import Timeouts
from .errors import (
    RateLimited,
    SentryError,
)
from .hooks import Call, HookSet
from .limiter import RateLimiter, SlotWaitEnded

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

DEFAULT_MAX_BODY_SIZE = 64 * 1024 * 1024

_PER_REQUEST_DECOMPRESS = (
    "auto_decompress" in inspect.signature(aiohttp.ClientSession._request).parameters
)
"""Whether this aiohttp lets a request turn off its own decompression (newer versions)."""


def _unsourced(error: SentryError) -> str:
    """The error's message without the method and URL it names (``503 from GET <url>:
    …``, ``… (GET <url>)``): the retry line names the request already, and an export's
    URL is a few hundred characters."""
    text = str(error)
    method, url = getattr(error, "method", None), getattr(error, "url", None)
    if isinstance(method, str) and isinstance(url, str):
        text = text.replace(f" from {method} {url}", "", 1).replace(f" ({method} {url})", "", 1)
    return text


def _unanswered(exc: BaseException, download: bool) -> str:
    """The hooks' ``reason`` for an attempt sent and never answered: cancelled, or (the
    only other error to get past the exchange) what a download's sink raised."""
    if not isinstance(exc, Exception):
        return "cancelled"
    return "sink" if download else "error"


def disable_silent_resend(session: aiohttp.ClientSession) -> bool:
    """Turn off aiohttp's own resend of a GET/PUT/DELETE whose connection dropped.

    aiohttp resends such a request once, silently, when a pooled connection turns out to
    be closed; for Sentry that would resend a merge or a discard (``PUT``), and double
    every attempt count. Every resend goes through :class:`RetryPolicy` instead, but for
    the one the exchange makes of a request safe to repeat whose kept-alive connection
    closed before any answer. aiohttp has no public switch for it, so this sets the
    session's flag; it applies to a session passed to ``SentryClient(session=...)`` too,
    and to its other users. Returns whether the flag existed (aiohttp versions before the
    resend have nothing to turn off).
    """
    if not hasattr(session, "_retry_connection"):
        return False
    session._retry_connection = False
    return True


class Transport(Exchange):
    """Sends one logical request: limiter slot, aiohttp call, redirects, retries."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        *,
        token: Secret | None,
        limiter: RateLimiter,
        retry: RetryPolicy,
        timeouts: Timeouts,
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
        # ``read`` and ``total`` on one shared timer where the interpreter allows: an
        # attempt it watches leaves aiohttp only the bounds of the wait for a connection;
        # any other keeps all four (no shared timer), or all but ``total`` (a download).
        # Without bounds it still tracks the attempts in flight, for close() to end them.
        deadlines = Deadlines(read=timeouts.read, total=timeouts.total)
        shared = SHARED_DEADLINES and hasattr(aiohttp.StreamReader, "total_bytes")
        self._deadlines = deadlines if shared else None
        # Without them a download still needs ``total`` until its body begins (aiohttp's
        # own would bound the body too): a watch of that bound alone, read staying aiohttp's.
        self._download_deadlines = (
            deadlines if shared else Deadlines(read=None, total=timeouts.total)
        )
        self._timeout = timeouts.to_aiohttp()
        self._connect_timeout = timeouts.to_aiohttp(connection_only=True)
        # A download's body goes at its sink's pace, for as long as it takes: no ``total``,
        # but ``read`` still ends one whose server falls silent.
        self._download_timeout = replace(timeouts, total=None).to_aiohttp()
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
        self._waits: set[anyio.CancelScope] = set()
        """The waits of calls sitting out a backoff or a Retry-After, for close() to end."""

    def close(self) -> None:
        """End the attempts in flight, the waits between attempts and the waits in the
        limiter (for a slot, a window, another call's 429): each call raises
        :class:`ClientClosed` now, not once its wait (up to ``backoff_max`` or ``max_wait``)
        is over."""
        super().close()
        for wait in self._waits:
            wait.cancel()

    async def _sit_out(self, delay: float) -> None:
        """The wait before the next attempt, which close() ends."""
        if self.closed:
            raise self._closed_failure().error
        with anyio.CancelScope() as wait:
            self._waits.add(wait)
            try:
                await anyio.sleep(delay)
            finally:
                self._waits.discard(wait)
        if wait.cancel_called:
            raise self._closed_failure().error

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
        before_decode: Callable[[Response], Awaitable[None] | None] | None = None,
        on_headers: HeadersSeen | None = None,
    ) -> T:
        """:meth:`send`, then ``decode`` the success; a :class:`MalformedBody` from it counts
        as a failed attempt (a body cut short or mangled on the way), retried like one.

        ``body`` is JSON bytes or a :data:`Form`; ``replayable=False`` (a form whose file
        can be read once) sends it once, even where a 429 would be retried.
        ``before_decode`` sees each success first, and may return something to await before
        the decoding: one pass of the loop, so that a request it started (the next page's)
        goes out while the body decodes, which never awaits; or a wait for the consumer to
        have room for the decoded items, so that undecoded bytes wait rather than objects.
        ``on_headers`` sees a success's headers before its body is read (:data:`HeadersSeen`):
        the next page's cursor is there, and its request need not wait for the body."""
        call = None if self._hooks is None else self._hooks.start(method, group, url)
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
                before_decode,
                on_headers,
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
        before_decode: Callable[[Response], Awaitable[None] | None] | None,
        on_headers: HeadersSeen | None,
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
                    url=self._shown(url),
                    detail="this endpoint is paused",
                    retry_after=paused,
                )
            failure = await self._attempt(
                method,
                url,
                body,
                group,
                policy,
                decode,
                sink,
                call,
                attempt,
                before_decode,
                on_headers,
                idempotent and replayable,
            )
            if not isinstance(failure, _Failure):
                return failure
            response = failure.response
            if (
                call is not None
                and call.attempt == attempt
                and response is None
                and not failure.answered
            ):
                # Only an attempt sent gets its on_response: one ended while it waited for a
                # slot (a client closed) never left, and the call keeps its last real status.
                call.failed(failure.kind, failure.status)
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
                sent=failure.sent,
            )
            if decision.server_wait:
                self.limiter.block(group, decision.delay, max_wait=policy.max_wait)
            if not decision.retry or not replayable:
                # Raised here, outside any ``except``: nothing of aiohttp's is chained.
                raise failure.error
            if call is not None:
                if decision.server_wait:
                    # Only a wait this request sits out: one that fails it at once (past
                    # max_wait, no attempt left) is no wait.
                    call.server_wait(decision.delay)
                call.retrying(decision.delay, failure.kind)
            logger.warning(
                "%s",
                self._redactor.text(
                    f"retrying {method} {url} in {shown_wait(decision.delay, digits=2)} "
                    f"(attempt {attempt + 1} of {policy.attempts}): {_unsourced(failure.error)}"
                ),
            )
            await self._sit_out(decision.delay)

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
        before_decode: Callable[[Response], Awaitable[None] | None] | None,
        on_headers: HeadersSeen | None,
        resend: bool,
    ) -> T | _Failure:
        """One attempt: the decoded success, or the failure to decide on; ``resend``: safe
        to send again on a new connection when a kept-alive one closes under it."""
        seen = None if call is None else [0]
        try:
            async with self.limiter.slot(group, waits=self._waits) as slot:
                if call is not None:
                    call.sending(attempt, slot.waited)
                response = await self._exchange(
                    method, url, body, sink, on_headers, resend, seen
                )
        except _Failure as failure:
            return failure
        except SlotWaitEnded:
            return self._closed_failure()
        except BaseException as exc:
            if not isinstance(exc, Exception):
                # A cancellation (the caller's own timeout) came up through aiohttp's
                # frames, one of which holds the request's headers, ``Authorization``
                # included; they have all returned: their locals go, not their lines.
                traceback.clear_frames(exc.__traceback__)
            if call is not None and call.attempt == attempt:
                # Sent and never answered: one on_response per on_request, so that an
                # in-flight gauge comes back down, with the status if its line came (a sink
                # that raised, a stream left, after a 200). A hook failing here has ``exc``
                # as its context, which its log record prints.
                status = None if seen is None else seen[0] or None
                call.failed(_unanswered(exc, sink is not None), status)
            raise
        if call is not None:
            call.answered(response.status, response.elapsed)
        self.limiter.observe(
            group,
            response.rate_limit,
            server_now=self._server_now(response),
            max_wait=policy.max_wait,
            log=response.status != 429,
            sent=slot.sent,
        )
        # A 3xx still here is Sentry's renamed-project answer or had no Location, a 1xx is
        # a protocol switch (101) or a server's confusion: an error, not a body to decode as
        # the requested model.
        if response.status >= 300 or response.status < 200:
            return _Failure("status", self._api_error(response), response)
        if before_decode is not None:
            wait = before_decode(response)
            if wait is not None:
                held = time.perf_counter()
                await wait
                if call is not None:
                    call.held(time.perf_counter() - held)
        try:
            return decode(response)
        except MalformedBody as malformed:
            return _Failure("payload", malformed.error, answered=True)

    def _server_now(self, response: Response) -> float:
        """The server's clock, to read a ``Reset`` or ``Retry-After`` date against: where
        the answers so far placed it, else ``response``'s ``Date`` when it is well off ours."""
        placed = self.limiter.server_time()
        if placed is not None:
            return placed
        return server_clock(response.headers.get("Date"), time.time())

    def _redact(self, body: bytes) -> bytes:
        """A body with the token (in any encoding) and the proxy's credentials blanked out."""
        if self._proxy is not None:
            body = self._proxy.redact(body)
        return self._redactor.body(body)

    def _api_error(self, response: Response) -> SentryError:
        # Only the start of the body an error keeps is redacted. The two redactions run one
        # after the other, and only the proxy's lengthens a text: the sum of their reaches
        # bounds the margin both need past the cut.
        reach = self._redactor.reach + (self._proxy.reach if self._proxy is not None else 0)
        return build_api_error(
            response.status,
            response.body,
            redact=self._redact,
            reach=reach,
            method=response.method,
            url=self._shown(response.url),
            rate_limit=response.rate_limit,
            retry_after=rate_limit_delay(
                response.headers, response.rate_limit, self._server_now(response)
            )
            if response.status == 429
            else None,
        )
