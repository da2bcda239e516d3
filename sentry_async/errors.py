"""The exceptions users catch.

Every error carries enough context to act on (status, Sentry's ``detail``, the method and
URL, the rate-limit state) and never the auth token: URLs carry no credentials in this
library, and the token only ever lives in a request header.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

from ._protocol.ratelimit import shown_wait

if TYPE_CHECKING:
    from ._protocol.cursors import Position
    from ._protocol.ratelimit import RateLimitInfo

__all__ = [
    "APIError",
    "BadRequest",
    "BulkPartialError",
    "ClientClosed",
    "ConnectionFailed",
    "DecodeError",
    "ErrorDetail",
    "Forbidden",
    "IssuesNotFound",
    "MultiProjectRefused",
    "NotFound",
    "OversizedPage",
    "PaginationError",
    "ProjectMoved",
    "RateLimited",
    "RequestTimeout",
    "ResponseTooLarge",
    "SentryError",
    "ServerError",
    "TransportError",
    "Unauthorized",
    "UnsafeRedirect",
    "UntrustedHost",
    "WrongEventLoop",
]


_MAX_MESSAGE_TEXT = 1000


class SentryError(Exception):
    """Base class of every error raised by sentry_async."""


class ErrorDetail:
    """Sentry's structured ``detail``: ``{"code", "message", "extra"}`` (SSO, sudo, 2FA, ...)."""

    __slots__ = ("code", "extra", "message")

    def __init__(self, code: str | None, message: str | None, extra: Mapping[str, Any]) -> None:
        self.code = code
        self.message = message
        self.extra = dict(extra)

    def __repr__(self) -> str:
        return f"ErrorDetail(code={self.code!r}, message={self.message!r}, extra={self.extra!r})"

    def __str__(self) -> str:
        if self.code and self.message:
            return f"{self.message} ({self.code})"
        return self.message or self.code or ""

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ErrorDetail):
            return NotImplemented
        return (self.code, self.message, self.extra) == (other.code, other.message, other.extra)

    __hash__ = None  # type: ignore[assignment]


class APIError(SentryError):
    """Sentry answered with a status that is not a success.

    ``detail`` is Sentry's ``detail`` as a string or :class:`ErrorDetail`; ``data`` is the
    decoded body whatever its shape (a bare string, a field->messages map, ...), or ``None``
    when the body was empty, not JSON or too large to decode; ``body`` holds the raw bytes,
    at most ``sansio.MAX_ERROR_BODY`` of them. ``error_id`` is the id of the event Sentry
    recorded for its own failure (a 500's ``errorId``): what its support asks for.
    """

    def __init__(
        self,
        status: int,
        *,
        method: str,
        url: str,
        detail: str | ErrorDetail | None = None,
        data: Any = None,
        body: bytes = b"",
        rate_limit: RateLimitInfo | None = None,
    ) -> None:
        self.status = status
        self.method = method
        self.url = url
        self.detail = detail
        self.data = data
        self.body = body
        self.rate_limit = rate_limit
        super().__init__(self._message())

    def _message(self) -> str:
        text = str(self.detail) if self.detail is not None else ""
        if not text and isinstance(self.data, Mapping):
            text = "; ".join(f"{k}: {_join(v)}" for k, v in self.data.items())
        suffix = f": {_shorten(text)}" if text else ""
        if self.error_id is not None:
            suffix += f" (error id {_shorten(self.error_id)})"
        return f"{self.status} from {self.method} {self.url}{suffix}"

    @property
    def error_id(self) -> str | None:
        """Sentry's ``errorId`` of an unhandled failure (500, an integration's 503)."""
        error_id = self.data.get("errorId") if isinstance(self.data, Mapping) else None
        if not isinstance(error_id, str):
            return None
        return error_id.strip() or None

    @property
    def code(self) -> str | None:
        """The machine-readable code of a structured ``detail`` (e.g. ``sso-required``)."""
        return self.detail.code if isinstance(self.detail, ErrorDetail) else None

    def __reduce__(self) -> tuple[Any, ...]:
        return (
            _rebuild_api_error,
            (
                type(self),
                self.status,
                self.method,
                self.url,
                self.detail,
                self.data,
                self.body,
                self.rate_limit,
            ),
        )


def _rebuild_api_error(cls: type[APIError], *args: Any) -> APIError:
    status, method, url, detail, data, body, rate_limit = args
    return cls(
        status, method=method, url=url, detail=detail, data=data, body=body, rate_limit=rate_limit
    )


def _rebuild_rate_limited(args: tuple[Any, ...], retry_after: float | None) -> APIError:
    error = _rebuild_api_error(*args)
    if isinstance(error, RateLimited):
        error.retry_after = retry_after
        error.args = (error._message(),)
    return error


def _shorten(text: str) -> str:
    """The message's copy of a server's text: a hostile body must not make megabyte messages.

    The full text stays in ``detail``/``data``/``body``.
    """
    if len(text) <= _MAX_MESSAGE_TEXT:
        return text
    return f"{text[:_MAX_MESSAGE_TEXT]}... ({len(text):,} characters)"


def _join(value: Any) -> str:
    if isinstance(value, list):
        return ", ".join(str(v) for v in value)
    return str(value)


class BadRequest(APIError):
    """400: the query, a parameter or the body was refused."""


class MultiProjectRefused(BadRequest):
    """400 from a server older than September 2025 without the multi-project feature.

    Such servers refuse issue and Discover queries over more than one project (a request
    with no ``project`` means every project you belong to). Ask one project per request,
    or run one stream per project with :func:`sentry_async.fan_out`.
    """

    def _message(self) -> str:
        return (
            super()._message()
            + " (this server takes one project per request: pass project=<one id>, "
            "or fan_out over the projects)"
        )


class ProjectMoved(APIError):
    """302: the project was renamed; ``new_slug`` and ``new_url`` say where.

    Sentry's answer to a renamed project's old slug when no other project holds it now:
    its ``Location`` is the new path, and its body names that path and the new slug. A read
    follows it on its own, for that call; a write is never applied there, and raises this.
    """

    @property
    def new_slug(self) -> str | None:
        data = self.data if isinstance(self.data, Mapping) else {}
        slug = data.get("slug")
        if isinstance(self.detail, ErrorDetail):
            slug = self.detail.extra.get("slug", slug)
        return slug if isinstance(slug, str) and slug else None

    @property
    def new_url(self) -> str | None:
        """The new path with its query, relative to the server (``/api/0/projects/...``)."""
        if isinstance(self.detail, ErrorDetail):
            url = self.detail.extra.get("url")
            if isinstance(url, str) and url:
                return url
        return None

    def _message(self) -> str:
        """``project 'old' was renamed to 'new'``: the body's slugs and path, which are all
        it says (current Sentry sends no message), would only repeat the new slug."""
        old = _moved_slug(self.url)
        new = self.new_slug
        what = "project renamed" if old is None else f"project {_shorten(old)!r} was renamed"
        to = "" if new is None else f" to {_shorten(new)!r}"
        return f"{self.status} from {self.method} {self.url}: {what}{to}"


def _moved_slug(url: str) -> str | None:
    """The project slug of a ``/api/0/projects/{org}/{project}/`` URL (``None``: another
    path), which a moved answer names only in its request."""
    _, found, rest = url.partition("/api/0/projects/")
    parts = rest.split("?", 1)[0].split("#", 1)[0].split("/")
    if not found or len(parts) < 3 or not parts[0] or not parts[1]:
        return None
    return unquote(parts[1])


class Unauthorized(APIError):
    """401: the token is missing, invalid, expired, or the org requires SSO/2FA."""


class Forbidden(APIError):
    """403: the token lacks a scope, or the org's plan lacks a feature."""


class NotFound(APIError):
    """404: unknown org, project, issue or event (the body may be empty)."""


class RateLimited(APIError):
    """429 that outlived the retry budget; ``retry_after`` is the wait the server asked for."""

    def __init__(self, status: int, *, retry_after: float | None = None, **kwargs: Any) -> None:
        self.retry_after = retry_after
        super().__init__(status, **kwargs)

    def _message(self) -> str:
        message = super()._message()
        if self.retry_after is None:
            return message
        return f"{message} (the server asked to wait {shown_wait(self.retry_after)})"

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild_rate_limited, (super().__reduce__()[1], self.retry_after))


class ServerError(APIError):
    """5xx: Sentry or a proxy in front of it failed."""


class _WithContext(SentryError):
    """An error whose ``__init__`` takes keyword-only context: pickled as its arguments
    and attributes, since ``Exception`` would call ``__init__`` with the message alone."""

    def __reduce__(self) -> tuple[Any, ...]:
        return (_restore, (type(self), self.args, dict(vars(self))))


class TransportError(_WithContext):
    """The request got no usable response: connection refused or dropped, timeout, bad body.

    ``cause`` describes the underlying failure (aiohttp's exception, say) with any secret
    blanked out; that exception itself is not chained, since its frames and its request
    hold the request's headers.

    ``maybe_sent`` is ``False`` only when the request provably never left (connection
    refused, a DNS or TLS handshake failure, a proxy that refused the tunnel): sending it
    again cannot make a write twice. Otherwise the server may have received it, and a
    write may have been made. ``status`` is the status line that arrived before the
    failure (a body that broke off after ``201``, a refused redirect), or ``None``.
    """

    def __init__(
        self,
        message: str,
        *,
        method: str,
        url: str,
        cause: str | None = None,
        status: int | None = None,
        maybe_sent: bool = True,
    ) -> None:
        self.method = method
        self.url = url
        self.cause = cause
        self.reason = message
        self.status = status
        self.maybe_sent = maybe_sent
        super().__init__(self._message())

    def _message(self) -> str:
        message = f"{self.reason} ({self.method} {self.url})"
        if self.status is not None:
            message += f"; the server had answered {self.status}"
        elif not self.maybe_sent:
            message += "; the request was not sent"
        return message

    def _delivered(self, status: int | None, *, maybe_sent: bool) -> None:
        """Record how far the request got, once the exchange knows it."""
        self.status = status
        self.maybe_sent = maybe_sent
        self.args = (self._message(),)


def _restore(cls: type[Exception], args: tuple[Any, ...], state: dict[str, Any]) -> Exception:
    """Unpickle an error whose ``__init__`` takes keyword-only context."""
    error = cls.__new__(cls)
    error.args = args
    vars(error).update(state)
    return error


class ConnectionFailed(TransportError):
    """The connection could not be made or broke before the whole response arrived."""


class RequestTimeout(TransportError):
    """No complete response within the configured timeout."""


class ResponseTooLarge(TransportError):
    """A response body was larger than ``max_body_size`` (announced, sent, or once
    decompressed); not retried, since the same request would bring the same body."""

    def __init__(self, message: str, *, method: str, url: str, limit: int) -> None:
        self.limit = limit
        super().__init__(message, method=method, url=url)


class UnsafeRedirect(TransportError):
    """A redirect that is not followed: to a host the token must not be sent to, in a
    loop, or a ``301``/``302``/``303`` answered to a write (anything but ``GET``/``HEAD``),
    which would be resent as a ``GET`` or dropped; ``status`` is the redirect's."""


class UntrustedHost(SentryError, ValueError):
    """A region or URL the token must not be sent to (see ``trusted_hosts``)."""


class ClientClosed(SentryError):
    """The :class:`~sentry_async.SentryClient` was closed: a call made after ``close()``, or
    one in flight when it ran (its request is ended, not left to time out); or the aiohttp
    session it sends through was closed."""


class WrongEventLoop(SentryError, RuntimeError):
    """A client was used from an event loop other than the one it first sent on, or off
    asyncio (trio, no loop): it runs on aiohttp, which needs asyncio.

    Its connections belong to that loop and cannot serve another (a second
    ``asyncio.run()``, another thread): create one client per event loop. Nothing was sent.
    """


class BulkPartialError(SentryError):
    """One of a bulk method's calls failed, the first or only one included (``done`` is
    empty then). A bulk method raises any other error before its first call (the ids' and
    projects' look-ups), with nothing changed.

    ``done``: ids of the calls Sentry answered, so changed. ``uncertain``: ids of the call
    that failed after it may have reached Sentry and acted (an answer that broke off or
    never came, a 5xx, a 400 other than a refused field's): look them up before counting on
    either outcome. ``not_done``: ids certainly not changed, those of the calls never made,
    and of the failed call when it provably did nothing (never sent, or refused before
    Sentry acted: a 429, 401, 403, 404, a 400 naming the fields it refused ...). ``error``
    is the failure of the call that stopped it (also ``__cause__``).
    """

    def __init__(
        self,
        error: SentryError,
        *,
        done: list[str],
        not_done: list[str],
        uncertain: list[str] | None = None,
    ) -> None:
        self.error = error
        self.done = done
        self.uncertain = uncertain if uncertain is not None else []
        self.not_done = not_done
        total = len(done) + len(self.uncertain) + len(not_done)
        super().__init__(
            f"bulk call stopped after {len(done)} of {total} issues (ids changed: "
            f"{len(done)}, uncertain: {len(self.uncertain)}, not changed: {len(not_done)}): "
            f"{error}"
        )

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild_bulk, (self.error, self.done, self.not_done, self.uncertain))


def _rebuild_bulk(
    error: SentryError,
    done: list[str],
    not_done: list[str],
    uncertain: list[str] | None = None,
) -> BulkPartialError:
    return BulkPartialError(error, done=done, not_done=not_done, uncertain=uncertain)


class IssuesNotFound(SentryError, LookupError):
    """None of a bulk update's ids is an issue in scope, so nothing was sent.

    Sentry would not refuse the call: when no id matches it changes up to 1000 issues of a
    search instead. ``missing`` holds the ids as given (numeric ones as Sentry reads them,
    ``"05"`` as ``"5"``).
    """

    def __init__(self, missing: list[str]) -> None:
        self.missing = missing
        shown = ", ".join(missing[:20]) + (", ..." if len(missing) > 20 else "")
        super().__init__(
            f"no issue in scope has any of these {len(missing)} ids (deleted, merged, or in "
            f"another organization or project): {shown}"
        )

    def __reduce__(self) -> tuple[Any, ...]:
        return (IssuesNotFound, (self.missing,))


class DecodeError(_WithContext):
    """A response body did not match the model: names the endpoint and what did not match."""

    def __init__(self, message: str, *, method: str, url: str, type_name: str) -> None:
        self.method = method
        self.url = url
        self.type_name = type_name
        self.reason = message
        super().__init__(f"cannot decode {type_name} from {method} {url}: {message}")


class PaginationError(SentryError):
    """The server's answers would make pagination loop, or cannot be followed.

    ``stream`` names the request (``GET <url>``) and ``position`` is where the stream
    stood when it stopped.
    """

    def __init__(self, message: str, *, stream: str = "", position: Position | None = None):
        super().__init__(message)
        self.stream = stream
        self.position = position


class OversizedPage(PaginationError):
    """A page held far more items than the page size asked for.

    Endpoints that answer everything at once on purpose are paginated with
    ``unpaginated=True``, which sends no page size and checks none.
    """

    def __init__(
        self,
        message: str,
        *,
        stream: str = "",
        position: Position | None = None,
        page_size: int,
        count: int,
    ) -> None:
        super().__init__(message, stream=stream, position=position)
        self.page_size = page_size
        self.count = count
