"""What the fake server was sent: each request as recorded, and helpers to assert on them.

A test asks "was the issues list called with ``query=is:unresolved``?" as
``server.requests.assert_called("GET", "/organizations/{org}/issues/", query="is:unresolved")``.
The token is never kept: ``Authorization`` is recorded as ``Bearer [Filtered]``, and only a
digest remains, enough to answer ``sent_token(token)`` and ``authenticated``.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import re
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import msgspec
from aiohttp import web

__all__ = ["FILTERED", "RecordedRequest", "RequestLog", "bearer_token", "record_request"]

FILTERED = "[Filtered]"
"""What stands in the recorded ``Authorization`` header in place of the credentials."""

_UNSET: Any = object()
_SHOWN = 20


def _digest(value: str) -> bytes:
    return hashlib.sha256(value.encode("utf-8", "surrogateescape")).digest()


@dataclass
class RecordedRequest:
    """One request as the fake server received it.

    ``path`` is the full path (``/api/0/...``), ``query`` the parameters in order (repeated
    keys repeated), ``headers`` lower-cased names with the credentials filtered out,
    ``body`` the raw request body, ``group`` the route (``"GET /api/0/organizations/{org}/"``),
    ``status`` the status sent (``None`` when the connection was cut before an answer),
    ``started``/``finished`` ``time.monotonic()`` readings.
    """

    method: str
    path: str
    query: list[tuple[str, str]]
    headers: dict[str, str]
    started: float
    finished: float | None = None
    status: int | None = None
    group: str = ""
    body: bytes = b""
    authenticated: bool = False
    """Whether the request carried a token the server accepts (its own, or one
    ``add_token`` registered), whatever its scopes."""
    _token_digest: bytes | None = field(default=None, repr=False, compare=False)

    def param(self, name: str) -> str | None:
        """The first value of query parameter ``name``, or ``None``."""
        for key, value in self.query:
            if key == name:
                return value
        return None

    def params(self, name: str) -> list[str]:
        """Every value of query parameter ``name``, in order."""
        return [value for key, value in self.query if key == name]

    def json(self) -> Any:
        """The body decoded as JSON (``None`` for an empty body)."""
        return msgspec.json.decode(self.body) if self.body else None

    def sent_token(self, token: str) -> bool:
        """Whether the request carried ``token`` as Sentry reads a bearer token
        (``Authorization: Bearer <token>``, the scheme in any case, any whitespace around)."""
        if self._token_digest is None:
            return False
        return hmac.compare_digest(self._token_digest, _digest(token))

    @property
    def route(self) -> str:
        """The route template without the method: ``/api/0/organizations/{org}/issues/``."""
        return self.group.partition(" ")[2]

    def describe(self) -> str:
        query = f"?{urlencode(self.query)}" if self.query else ""
        return f"{self.method} {self.path}{query} -> {self.status}"


def _path_pattern(path: str) -> re.Pattern[str]:
    """``/organizations/{org}/issues/`` as a regex over full paths; ``/api/0`` may be left out."""
    out = []
    for literal, name in re.findall(r"([^{]*)(?:\{([^}]*)\})?", path):
        out.append(re.escape(literal))
        if name:
            out.append("[^/]+")
    pattern = "".join(out)
    if pattern.endswith("/"):
        pattern = pattern[:-1]
    if not path.startswith("/api/"):
        pattern = "(?:/api/0)?" + pattern
    return re.compile(pattern + "/?")


def _wanted_values(name: str, value: Any) -> list[str] | None:
    if value is None:
        return None
    if isinstance(value, str):
        return [value]
    if isinstance(value, bool):
        raise TypeError(f"{name}=: pass query values as they are sent, e.g. 'true'")
    if isinstance(value, int):
        return [str(value)]
    if isinstance(value, Sequence):
        return [str(v) for v in value]
    raise TypeError(f"{name}=: expected a string, an int or a sequence of strings")


class RequestLog(list[RecordedRequest]):
    """Every request the server received, oldest first, with helpers to find and assert on them.

    ``method`` and ``path`` narrow by method and by path, where ``path`` is a concrete path
    or a route template (``"/organizations/{org}/issues/"``; each ``{name}`` stands for one
    segment; the ``/api/0`` prefix may be left out). Keyword arguments are query parameters:
    a string must be the parameter's only value, a sequence all of its values in order,
    ``None`` means absent. ``json=`` compares the decoded body (one that is not JSON, such
    as a form, matches no ``json=``).
    """

    def matching(
        self,
        method: str | None = None,
        path: str | None = None,
        /,
        *,
        json: Any = _UNSET,
        **params: str | int | Sequence[str] | None,
    ) -> list[RecordedRequest]:
        """The recorded requests that match, oldest first."""
        pattern = _path_pattern(path) if path is not None else None
        wanted = {name: _wanted_values(name, value) for name, value in params.items()}
        out = []
        for record in list(self):
            if method is not None and record.method != method.upper():
                continue
            if pattern is not None and not pattern.fullmatch(record.path):
                continue
            if any(
                (record.params(name) or None) != values for name, values in wanted.items()
            ):
                continue
            if json is not _UNSET and not _same_json(record, json):
                continue
            out.append(record)
        return out

    def last(
        self,
        method: str | None = None,
        path: str | None = None,
        /,
        *,
        json: Any = _UNSET,
        **params: str | int | Sequence[str] | None,
    ) -> RecordedRequest:
        """The newest matching request; ``AssertionError`` if there is none."""
        return self.assert_called(method, path, json=json, **params)[-1]

    def assert_called(
        self,
        method: str | None = None,
        path: str | None = None,
        /,
        *,
        json: Any = _UNSET,
        **params: str | int | Sequence[str] | None,
    ) -> list[RecordedRequest]:
        """The matching requests; ``AssertionError`` naming what was recorded if none match."""
        found = self.matching(method, path, json=json, **params)
        if not found:
            raise AssertionError(
                f"no request matched {_what(method, path, json, params)}\n{self._listing()}"
            )
        return found

    def assert_called_once(
        self,
        method: str | None = None,
        path: str | None = None,
        /,
        *,
        json: Any = _UNSET,
        **params: str | int | Sequence[str] | None,
    ) -> RecordedRequest:
        """The one matching request; ``AssertionError`` if there are none or several."""
        found = self.assert_called(method, path, json=json, **params)
        if len(found) != 1:
            raise AssertionError(
                f"{len(found)} requests matched {_what(method, path, json, params)}, "
                f"expected 1\n{_lines(found)}"
            )
        return found[0]

    def assert_not_called(
        self,
        method: str | None = None,
        path: str | None = None,
        /,
        *,
        json: Any = _UNSET,
        **params: str | int | Sequence[str] | None,
    ) -> None:
        """``AssertionError`` listing the matching requests if there are any."""
        found = self.matching(method, path, json=json, **params)
        if found:
            raise AssertionError(
                f"{len(found)} requests matched {_what(method, path, json, params)}, "
                f"expected none\n{_lines(found)}"
            )

    def _listing(self) -> str:
        records = list(self)
        if not records:
            return "no request was recorded"
        return f"recorded ({len(records)}):\n{_lines(records)}"


def _lines(records: Iterable[RecordedRequest]) -> str:
    records = list(records)
    shown = [f"  {r.describe()}" for r in records[:_SHOWN]]
    if len(records) > _SHOWN:
        shown.append(f"  ... and {len(records) - _SHOWN} more")
    return "\n".join(shown)


def _same_json(record: RecordedRequest, expected: Any) -> bool:
    """Whether the body decodes to ``expected``; a body that is not JSON (a form, bytes)
    is no match, not an error: the assertion looks for the request that was."""
    try:
        return bool(record.json() == expected)
    except msgspec.DecodeError:
        return False


def _what(method: str | None, path: str | None, json: Any, params: Mapping[str, Any]) -> str:
    parts = [method.upper() if method else "any method", path or "any path"]
    if params:
        parts.append("with " + ", ".join(f"{k}={v!r}" for k, v in params.items()))
    if json is not _UNSET:
        parts.append(f"json={json!r}")
    return " ".join(parts)


def bearer_token(authorization: str | None) -> tuple[str | None, str | None]:
    """``(token, refusal)``: the ``Authorization`` header read as Sentry's
    ``StandardAuthentication.authenticate`` reads it (``api/authentication.py``).

    Split on ASCII whitespace (``get_authorization_header(request).split()``), it is taken
    when its first word, in any case, is ``bearer``; one word alone or more than two are
    refused with Sentry's detail. A header no bearer authenticator takes (none, empty,
    another scheme) is ``(None, None)``: the request is anonymous, refused as without one.
    """
    if authorization is None:
        return None, None
    words = authorization.encode("utf-8", "surrogateescape").split()
    if not words or words[0].lower() != b"bearer":
        return None, None
    if len(words) == 1:
        return None, "Invalid token header. No credentials provided."
    if len(words) > 2:
        return None, "Invalid token header. Token string should not contain spaces."
    return words[1].decode("utf-8", "surrogateescape"), None


def record_request(request: web.Request, group: str, tokens: Iterable[str]) -> RecordedRequest:
    """The record of one incoming request, credentials filtered; ``capture_body`` adds the
    body. ``tokens`` are those the server accepts."""
    started = time.monotonic()
    headers = {k.lower(): v for k, v in request.headers.items()}
    auth = headers.get("authorization")
    if auth is not None:
        # The scheme stays when a credential follows it; a lone word may be the token.
        words = auth.split()
        scheme = words[0] if len(words) > 1 else ""
        headers["authorization"] = f"{scheme} {FILTERED}".strip()
    token = bearer_token(auth)[0]
    digest = _digest(token) if token is not None else None
    return RecordedRequest(
        method=request.method,
        path=request.path,
        query=list(request.query.items()),
        headers=headers,
        started=started,
        group=group,
        authenticated=digest is not None
        and any(hmac.compare_digest(digest, _digest(t)) for t in tokens),
        _token_digest=digest,
    )


class DiscardedLog(RequestLog):
    """A log that keeps nothing, for a server whose log no one can read (the command line):
    its memory stays flat however many requests it serves."""

    def append(self, record: RecordedRequest, /) -> None:
        """Drop ``record``."""


async def capture_body(record: RecordedRequest, request: web.Request) -> None:
    """Keep the request body, once the handler is done with it.

    Read after the handler, not before: reading first would leave ``can_read_body`` false
    for the handler. A body the handler never read (a fault answered first) is read here;
    one the handler read is kept by aiohttp, so it is there even when the answer was cut
    afterwards (``drop_mid_body``); one never read before the cut stays empty.
    """
    if not request.body_exists:
        return
    transport = request.transport
    if request.can_read_body and (transport is None or transport.is_closing()):
        return
    with contextlib.suppress(Exception):
        record.body = await request.read()
