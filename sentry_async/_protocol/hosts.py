"""Where a request may go with the token, and how endpoints are grouped for rate limits."""

from __future__ import annotations

import ipaddress
import re

from yarl import URL

__all__ = [
    "REDIRECT_STATUSES",
    "endpoint_group",
    "is_loopback",
    "origin",
    "redirect_method",
    "resolve_redirect",
]

REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})

_ID_SEGMENT = re.compile(r"^(?:\d+|[0-9a-fA-F]{32}|[0-9a-fA-F-]{36})$")


def origin(url: URL) -> tuple[str, str, int | None]:
    """``(scheme, host, port)``, with default ports filled in: what "same origin" compares."""
    return (url.scheme.lower(), (url.host or "").lower(), url.port)


def is_loopback(host: str | None) -> bool:
    """True for ``localhost`` and the loopback ranges, where plain HTTP is acceptable."""
    if not host:
        return False
    host = host.strip("[]").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def resolve_redirect(
    current: URL, location: str, trusted: frozenset[tuple[str, str, int | None]]
) -> tuple[URL, bool]:
    """The redirect target and whether the token may go there (its origin is trusted).

    Raises ``ValueError`` when ``location`` is not a URL at all (``http://[::1``, say).
    """
    target = current.join(URL(location))
    return target, origin(target) in trusted


def redirect_method(status: int, method: str) -> tuple[str, bool]:
    """The method for the next hop and whether the body goes with it.

    303 always becomes ``GET``; so do 301 and 302 after anything but ``GET``/``HEAD``, as
    browsers and aiohttp do; 307 and 308 repeat the request as it was.
    """
    if status == 303 or (status in (301, 302) and method not in ("GET", "HEAD")):
        return "GET", False
    return method, True


def endpoint_group(method: str, path: str) -> str:
    """A rate-limit key: Sentry limits per endpoint and method, not per resource id.

    Path templates (``/organizations/{org}/issues/{issue_id}/``) are used as they are;
    concrete paths have their numeric and hex-id segments folded so that every issue's
    events share one bucket, as they do on the server.
    """
    segments = ["{id}" if _ID_SEGMENT.match(segment) else segment for segment in path.split("/")]
    return f"{method.upper()} {'/'.join(segments)}"
