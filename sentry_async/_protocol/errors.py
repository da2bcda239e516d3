"""Error bodies and statuses, mapped to exceptions with no I/O.

Sentry's error bodies come as ``{"detail": str}``, ``{"detail": {code, message, extra}}``,
a DRF ``{field: [messages]}`` map, a bare JSON string, JSON served as ``text/html``, HTML
from a proxy, or nothing at all. The body is decoded whatever the content type says.
"""

from __future__ import annotations

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
    "MULTI_PROJECT_REFUSALS",
    "QUERY_TIMEOUT_PREFIX",
    "build_api_error",
    "is_project_moved",
    "is_query_timeout",
    "parse_error_body",
]

QUERY_TIMEOUT_PREFIX = "query timeout"
_MAX_TEXT = 500
_STATUS_CLASSES: dict[int, type[APIError]] = {
    400: BadRequest,
    401: Unauthorized,
    403: Forbidden,
    404: NotFound,
    429: RateLimited,
}


def parse_error_body(body: bytes) -> tuple[str | ErrorDetail | None, Any]:
    """Return ``(detail, data)``: Sentry's ``detail`` and the decoded body.

    ``data`` is ``None`` for an empty or non-JSON body; for a non-JSON body the start of
    its text (a proxy's HTML page, say) becomes the detail so the error still says something.
    """
    stripped = body.strip()
    if not stripped:
        return None, None
    try:
        data = _decode_json(stripped)
    except (msgspec.DecodeError, RecursionError):
        text = stripped[:_MAX_TEXT].decode("utf-8", "replace").strip()
        return (text or None), None
    return _detail_of(data), data


def _decode_json(body: bytes) -> Any:
    """JSON, reading invalid UTF-8 inside strings as U+FFFD rather than losing the detail.

    msgspec reports invalid UTF-8 in a string as ``UnicodeDecodeError``, not as a
    ``DecodeError``; nesting deeper than it can follow is a ``RecursionError``.
    """
    try:
        return msgspec.json.decode(body)
    except UnicodeDecodeError:
        return msgspec.json.decode(body.decode("utf-8", "replace").encode())


def _detail_of(data: Any) -> str | ErrorDetail | None:
    if isinstance(data, str):
        return data
    if not isinstance(data, dict):
        return None
    detail = data.get("detail")
    if isinstance(detail, str):
        return detail
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

    Current servers send ``detail.code == "resource-moved"``; older ones a top-level
    ``slug`` and no code.
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
) -> APIError:
    """The exception for a non-success response."""
    detail, data = parse_error_body(body)
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
