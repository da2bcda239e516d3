"""Error bodies and statuses, mapped to exceptions with no I/O.

Sentry's error bodies come as ``{"detail": str}``, ``{"detail": {code, message, extra}}``,
``{"detail": [messages]}``, a DRF ``[messages]`` list or ``{field: [messages]}`` map, a bare
JSON string, JSON served as ``text/html``, HTML from a proxy, or nothing at all. The body is
decoded whatever the content type says, up to :data:`MAX_ERROR_BODY`.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Callable, Sequence
from typing import Any

import msgspec

from ..errors import (
    APIError,
    BadRequest,
    ErrorDetail,
    Forbidden,
    MultiProjectRefused,
    NotFound,
    ProjectMoved,
    RateLimited,
    ServerError,
    Unauthorized,
)
from .ratelimit import RateLimitInfo

__all__ = [
    "MAX_ERROR_BODY",
    "MULTI_PROJECT_REFUSALS",
    "QUERY_TIMEOUT_PREFIX",
    "REDACTED",
    "Redactor",
    "build_api_error",
    "is_project_moved",
    "is_query_timeout",
    "parse_error_body",
]

QUERY_TIMEOUT_PREFIX = "query timeout"
MAX_ERROR_BODY = 1024 * 1024
"""The largest error body decoded, and the most of one an :class:`APIError` keeps.

Sentry's error bodies are a few hundred bytes. A larger one (a proxy's page, a hostile
server) is kept cut to this many bytes and not decoded: 60 MiB of JSON decode into more
than a gigabyte of objects, held for as long as the exception lives.
"""
_MAX_TEXT = 500
_STATUS_CLASSES: dict[int, type[APIError]] = {
    400: BadRequest,
    401: Unauthorized,
    403: Forbidden,
    404: NotFound,
    429: RateLimited,
}


def parse_error_body(
    body: bytes, *, size: int | None = None
) -> tuple[str | ErrorDetail | None, Any]:
    """Return ``(detail, data)``: Sentry's ``detail`` and the decoded body.

    ``data`` is ``None`` for an empty or non-JSON body; for a non-JSON body the start of
    its text (a proxy's HTML page, say) becomes the detail so the error still says something.
    A body over :data:`MAX_ERROR_BODY` is not decoded either: its detail is the start of
    its text, then how long it was (``size``, when ``body`` is only the start of it).
    """
    size = len(body) if size is None else size
    if size > MAX_ERROR_BODY:
        cut = (
            f"(error body of {size:,} bytes, cut to its first {MAX_ERROR_BODY:,} "
            "and not decoded)"
        )
        text = _start(body[: 2 * _MAX_TEXT])
        return (f"{text}... {cut}" if text else cut), None
    stripped = body.strip()
    if not stripped:
        return None, None
    try:
        data = _decode_json(stripped)
    except (msgspec.DecodeError, RecursionError):
        return _start(stripped), None
    return _detail_of(data), data


def _start(body: bytes) -> str | None:
    """The start of a body's text, for a detail when there is no JSON to take it from."""
    return body.strip()[:_MAX_TEXT].decode("utf-8", "replace").strip() or None


def _decode_json(body: bytes) -> Any:
    """JSON, reading invalid UTF-8 inside strings as U+FFFD rather than losing the detail.

    msgspec before 0.23 reports invalid UTF-8 in a string as ``UnicodeDecodeError``, later
    ones as a ``DecodeError``; nesting deeper than it can follow is a ``RecursionError``.
    """
    try:
        return msgspec.json.decode(body)
    except (UnicodeDecodeError, msgspec.DecodeError):
        mended = body.decode("utf-8", "replace").encode()
        if mended == body:
            raise
        return msgspec.json.decode(mended)


def _messages(value: Any) -> str | None:
    """A list of messages as one text: DRF renders ``ValidationError("...")`` as a
    top-level list, and Sentry sends ``{"detail": ["..."]}`` too."""
    if isinstance(value, list) and value and all(isinstance(item, str) for item in value):
        return "; ".join(value)
    return None


def _detail_of(data: Any) -> str | ErrorDetail | None:
    if isinstance(data, str):
        return data
    if isinstance(data, list):
        return _messages(data)
    if not isinstance(data, dict):
        return None
    detail = data.get("detail")
    if isinstance(detail, str):
        return detail
    if isinstance(detail, list):
        joined = _messages(detail)
        if joined is not None:
            return joined
        if not detail:
            detail = None
    if isinstance(detail, dict):
        code = detail.get("code")
        message = detail.get("message")
        extra = detail.get("extra")
        return ErrorDetail(
            code=code if isinstance(code, str) else None,
            message=message if isinstance(message, str) else None,
            extra=extra if isinstance(extra, dict) else {},
        )
    if detail is not None:
        return str(detail)
    error = data.get("error")
    if isinstance(error, str):
        return error
    return None


def is_query_timeout(status: int, detail: str | ErrorDetail | None) -> bool:
    """Snuba overload surfaces as a 400 whose detail starts with "Query timeout": retryable."""
    if status != 400 or detail is None:
        return False
    text = detail if isinstance(detail, str) else (detail.message or "")
    return text.lstrip().lower().startswith(QUERY_TIMEOUT_PREFIX)


MULTI_PROJECT_REFUSALS = frozenset(
    {
        "You do not have the multi project stream feature enabled",
        "You cannot view events from multiple projects.",
    }
)
"""What servers before September 2025 answer for a query over several projects."""


def _text(detail: str | ErrorDetail | None) -> str:
    if detail is None:
        return ""
    return (detail if isinstance(detail, str) else (detail.message or "")).strip()


def is_project_moved(status: int, detail: str | ErrorDetail | None, data: Any) -> bool:
    """Sentry's renamed-project answer: a 3xx whose body names the new slug.

    Sentry sends the new slug at the top level and the new path in ``detail.extra.url``
    (and in ``Location``); older servers send ``detail.code == "resource-moved"`` too.
    """
    if not 300 <= status < 400:
        return False
    if isinstance(detail, ErrorDetail) and detail.code == "resource-moved":
        return True
    return isinstance(data, dict) and isinstance(data.get("slug"), str)


def build_api_error(
    status: int,
    body: bytes,
    *,
    method: str,
    url: str,
    rate_limit: RateLimitInfo | None = None,
    retry_after: float | None = None,
    redact: Callable[[bytes], bytes] | None = None,
    reach: int = 0,
) -> APIError:
    """The exception for a non-success response; it keeps at most :data:`MAX_ERROR_BODY`
    bytes of ``body``, with secrets blanked out by ``redact`` (``reach``: the longest text
    it blanks out)."""
    size = len(body)
    if redact is not None:
        body = _redacted_start(body, redact, reach)
    detail, data = parse_error_body(body, size=size)
    if len(body) > MAX_ERROR_BODY:
        body = body[:MAX_ERROR_BODY]
    common: dict[str, Any] = {
        "method": method,
        "url": url,
        "detail": detail,
        "data": data,
        "body": body,
        "rate_limit": rate_limit,
    }
    if status == 429:
        return RateLimited(status, retry_after=retry_after, **common)
    if is_project_moved(status, detail, data):
        return ProjectMoved(status, **common)
    if status == 400 and _text(detail) in MULTI_PROJECT_REFUSALS:
        return MultiProjectRefused(status, **common)
    cls = _STATUS_CLASSES.get(status)
    if cls is None:
        cls = ServerError if status >= 500 else APIError
    return cls(status, **common)


def _redacted_start(body: bytes, redact: Callable[[bytes], bytes], reach: int) -> bytes:
    """``body`` redacted, or for a body larger than an error keeps, its start: redacting
    costs up to some 200 ms a MiB, and a proxy's 60 MiB page blocked the event loop for
    seconds on every attempt, for bytes dropped at once.

    The start runs ``margin`` bytes (eight times ``reach``) past :data:`MAX_ERROR_BODY`, so
    that a secret straddling that cut is blanked out whole. A secret the start's own end
    cuts short is not blanked out: the redacted start's last ``margin`` bytes are dropped,
    and with them whatever redaction made of the start's last ``reach`` bytes (at most eight
    times as many: a secret of one byte becomes ``REDACTED``'s eight)."""
    margin = len(REDACTED) * reach
    if len(body) <= MAX_ERROR_BODY + margin:
        return redact(body)
    start = redact(body[: MAX_ERROR_BODY + margin])
    return start[: len(start) - margin]


REDACTED = "********"
_TOKEN_PREFIXES = ("sntrys_", "sntryu_")
_MIN_LENGTH = 8


_URL_SAFE = str.maketrans("+/", "-_")


class Redactor:
    """Blanks a secret out of text a server (or proxy) echoed back, in every form it takes.

    A server that echoes the request may send the token raw, with JSON escapes (``\\/`` for
    ``/``, ``\\uXXXX`` for any character, either case of hex), percent-encoded (either case),
    as HTML character references (``&#115;``, ``&#x73;``), or any mix of these, character by
    character; or base64-encoded (standard or URL-safe, padded or not, alone or inside a
    longer base64 text such as ``Bearer <token>``'s). The token's body without its
    ``sntrys_``/``sntryu_`` prefix is blanked out the same way, and so is an organization
    token's key (its part after the last ``_``, whose payload before it Sentry writes in
    the clear), in either base64 alphabet. Secrets shorter than
    eight characters (no real token is) are left alone: they would blank out words.
    It runs on error bodies and messages only, never on a successful page.
    """

    __slots__ = ("_bytes", "_text", "reach")

    def __init__(self, secret: str | None) -> None:
        secrets = [secret] if secret and len(secret) >= _MIN_LENGTH else []
        if secrets and secret and secret.startswith(_TOKEN_PREFIXES):
            bare = secret[len(_TOKEN_PREFIXES[0]) :]
            if len(bare) >= _MIN_LENGTH:
                secrets.append(bare)
            if secret.startswith("sntrys_") and secret.count("_") == 2:
                # An organization token's payload is public; its last part is the key.
                key = secret[secret.rindex("_") + 1 :]
                if len(key) >= _MIN_LENGTH:
                    secrets.extend(dict.fromkeys([key, key.translate(_URL_SAFE)]))
        wholes = [f"Bearer {secret}", *secrets] if secrets else []
        self._compile(secrets, wholes, _MIN_LENGTH)

    @classmethod
    def of(cls, secrets: Sequence[str], *, encoded: Sequence[str] = ()) -> Redactor:
        """A redactor for several secrets of any length (a proxy's password), which also
        blanks the base64 of each of ``encoded`` whole (the ``user:password`` of a
        ``Basic`` value). Only secrets of eight characters or more are looked for inside a
        longer base64 text: a shorter one's fragment would blank out random text."""
        redactor = cls.__new__(cls)
        redactor._compile([s for s in secrets if s], [s for s in encoded if s], 1)
        return redactor

    def _compile(self, secrets: list[str], wholes: list[str], shortest: int) -> None:
        self.reach = _FORM_GROWTH * max((len(s.encode()) for s in [*secrets, *wholes]), default=0)
        """The longest text blanked out, in bytes (zeros padding an HTML reference aside)."""
        if not secrets and not wholes:
            self._text: re.Pattern[str] | None = None
            self._bytes: re.Pattern[bytes] | None = None
            return
        forms = sorted(
            {_base64_pattern(s, whole=True) for s in [*wholes, *secrets] if len(s) >= shortest}
            | {
                _base64_pattern(core)
                for s in secrets
                if len(s) >= _MIN_LENGTH
                for core in _base64_cores(s.encode())
            },
            key=len,
            reverse=True,
        )
        plain = ["".join(_char_pattern(c) for c in s) for s in secrets if len(s) >= shortest]
        self._text = re.compile("|".join([*forms, *plain]), re.IGNORECASE)
        self._bytes = re.compile(self._text.pattern.encode(), re.IGNORECASE)

    def text(self, value: str) -> str:
        return value if self._text is None else self._text.sub(REDACTED, value)

    def body(self, value: bytes) -> bytes:
        return value if self._bytes is None else self._bytes.sub(REDACTED.encode(), value)


_FORM_GROWTH = 12
"""A bound on the bytes one byte of a secret takes in a form blanked out: ten at most
(``_`` as ``&UnderBar;``), fewer in every other form (``\\u0073``, ``%F0%9F%98%80``,
percent-encoded base64)."""

_HTML_NAMES = {
    "_": ("lowbar", "UnderBar"),
    "/": ("sol",),
    "+": ("plus",),
    "=": ("equals",),
    "-": ("hyphen", "dash"),
    ".": ("period",),
    ":": ("colon",),
}
"""Named HTML references of the punctuation a token or a password may hold."""


def _char_pattern(char: str) -> str:
    """One character of a secret: raw, JSON-escaped, percent-encoded (UTF-8) or an HTML
    character reference (decimal or hex, leading zeros, the ``;`` optional as browsers read
    it; a few punctuation names)."""
    forms = [re.escape(char)]
    code = ord(char)
    if code <= 0xFFFF:
        forms.append(rf"\\u{code:04x}")
    else:
        high, low = divmod(code - 0x10000, 0x400)
        forms.append(rf"\\u{0xD800 + high:04x}\\u{0xDC00 + low:04x}")
    if char in '/"\\':
        forms.append(rf"\\{re.escape(char)}")
    forms.append("".join(f"%{byte:02x}" for byte in char.encode()))
    forms.append(f"&\\#0*{code};?")
    forms.append(f"&\\#x0*{code:x};?")
    forms.extend(f"&{name};" for name in _HTML_NAMES.get(char, ()))
    return f"(?:{'|'.join(forms)})"


_B64_CHARS = {"+": "[+-]|%2[bB]", "/": "[/_]|\\\\/|%2[fF]"}


def _base64_cores(secret: bytes) -> list[str]:
    """The base64 characters that encode only ``secret``'s bytes, at each of the three
    offsets it may start at inside a longer base64 text."""
    cores = []
    for offset, skip in ((0, 0), (1, 2), (2, 3)):
        encoded = base64.b64encode(bytes(offset) + secret).decode("ascii")
        cores.append(encoded[skip : (offset + len(secret)) // 3 * 4])
    return cores


def _base64_pattern(value: str, *, whole: bool = False) -> str:
    """Case-sensitive base64 text (either alphabet, ``/`` JSON-escaped or any of ``+/=``
    percent-encoded), of ``value`` encoded whole with or without its padding, or a
    fragment of it."""
    text = base64.b64encode(value.encode()).decode("ascii") if whole else value
    text = text.replace("-", "+").replace("_", "/")
    body = text.rstrip("=")
    chars = "".join(
        f"(?:{_B64_CHARS[c]})" if c in _B64_CHARS else re.escape(c) for c in body
    )
    if whole and len(body) < len(text):
        chars += f"(?:=|%3[dD]){{0,{len(text) - len(body)}}}"
    return f"(?-i:{chars})"
