"""Where a request may go with the token, and how endpoints are grouped for rate limits."""

from __future__ import annotations

import functools
import ipaddress
from collections.abc import Iterable
from importlib import resources

import msgspec
from yarl import URL

__all__ = [
    "DEFAULT_BASE_URL",
    "REDIRECT_STATUSES",
    "endpoint_group",
    "is_loopback",
    "origin",
    "redirect_method",
    "registrable_domain",
    "resolve_redirect",
    "token_host_refusal",
]

DEFAULT_BASE_URL = "https://sentry.io"
"""Where the client goes when neither ``base_url`` nor ``$SENTRY_URL`` says otherwise."""

REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})

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


_SECOND_LEVEL = frozenset({"co", "com", "net", "org", "gov", "edu", "ac", "or", "ne", "go"})


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    return True


def registrable_domain(host: str) -> str:
    """The domain a host's owner registered: ``sentry.io`` for ``de.sentry.io``.

    Without a public-suffix list: the last two labels, or three under a two-letter country
    code with a generic second level (``example.co.uk``). An IP address is its own domain.
    """
    host = host.lower().rstrip(".")
    if _is_ip(host):
        return host
    labels = host.split(".")
    if len(labels) >= 3 and len(labels[-1]) == 2 and labels[-2] in _SECOND_LEVEL:
        return ".".join(labels[-3:])
    return ".".join(labels[-2:])


def token_host_refusal(base: URL, target: URL, trusted: Iterable[URL] = ()) -> str | None:
    """Why the token must not go to ``target``, or ``None`` when it may.

    Allowed: the base URL's own origin; the same loopback host on any port; an ``https``
    subdomain of the base host's registrable domain on the default port (``de.sentry.io``
    for ``sentry.io``); an origin listed in ``trusted``. Refused: credentials in the URL,
    look-alikes (``sentry.io.evil.com``), other loopback addresses, plain-http subdomains
    (``http://de.localhost``).
    """
    if target.scheme not in ("http", "https") or not target.host:
        return f"{target} is not an absolute http(s) URL"
    if target.user is not None or target.password is not None or "@" in (target.raw_authority):
        return "a URL with user information (user@host) is never trusted"
    if any(origin(url) == origin(target) for url in trusted):
        return None
    if origin(target) == origin(base):
        return None
    host = target.host.lower().rstrip(".")
    base_host = (base.host or "").lower().rstrip(".")
    if host == base_host:
        if is_loopback(host) and target.scheme == base.scheme:
            return None
        return f"{target.host}: another port or scheme than the base URL's"
    if target.scheme != "https":
        return f"{target.host}: only https subdomains of the base URL's domain are trusted"
    if _is_ip(host) or _is_ip(base_host) or is_loopback(host):
        return f"{target.host}: not the base URL's host"
    if target.port != 443:
        return f"{target.host}: a subdomain is trusted on the default port only"
    domain = registrable_domain(base_host)
    if host == domain or host.endswith("." + domain):
        return None
    return f"{target.host} is not within {domain} (list it in trusted_hosts to allow it)"


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
    """A rate-limit key and the hooks' ``group``: the method and the route's template.

    Sentry limits per endpoint and method, not per resource. A template
    (``/organizations/{org}/issues/``) is its own group; a concrete path
    (``/organizations/acme/issues/?query=...``) is matched to the template of the client's
    known routes (hand-written and generated), so a slug, an id or a query value never
    names a group. An unknown route keeps only the words known routes use, the rest
    becoming ``{id}``.
    """
    return f"{method.upper()} {_route(path.partition('?')[0].partition('#')[0])}"


_EXTRA_ROUTES = (
    "/organizations/{org}/events-stats/",
    "/organizations/{org}/shortids/{short_id}/",
    "/users/me/regions/",
)
"""The hand-written resources' routes missing from the generated API's list."""


class _Route(msgspec.Struct):
    path: str


class _Node:
    """One path segment of the route tree: literal children, one placeholder child."""

    __slots__ = ("literals", "placeholder", "template")

    def __init__(self) -> None:
        self.literals: dict[str, _Node] = {}
        self.placeholder: _Node | None = None
        self.template: str | None = None


def _is_placeholder(segment: str) -> bool:
    return segment.startswith("{") and segment.endswith("}")


@functools.cache
def _routes() -> tuple[frozenset[str], _Node, frozenset[str]]:
    """The known templates, their tree and their words: read once, on first use."""
    listed = resources.files("sentry_async.api").joinpath("_operations.json").read_bytes()
    templates = [*_EXTRA_ROUTES, *(r.path for r in msgspec.json.decode(listed, type=list[_Route]))]
    root = _Node()
    for template in templates:
        node = root
        for segment in template.split("/"):
            if _is_placeholder(segment):
                node.placeholder = node.placeholder or _Node()
                node = node.placeholder
            else:
                node = node.literals.setdefault(segment, _Node())
        node.template = node.template or template
    words = frozenset(s for t in templates for s in t.split("/") if not _is_placeholder(s))
    return frozenset(templates), root, words


def _match(node: _Node, segments: list[str], at: int) -> str | None:
    """The template ``segments`` fit, a route's own words before a placeholder."""
    if at == len(segments):
        return node.template
    segment = segments[at]
    child = None if _is_placeholder(segment) else node.literals.get(segment)
    if child is not None:
        found = _match(child, segments, at + 1)
        if found is not None:
            return found
    if node.placeholder is not None and segment:
        return _match(node.placeholder, segments, at + 1)
    return None


@functools.lru_cache(maxsize=1024)
def _route(path: str) -> str:
    templates, root, words = _routes()
    if path in templates:
        return path
    segments = path.split("/")
    found = _match(root, segments, 0)
    if found is not None:
        return found
    return "/".join(
        s if not s or s in words or _is_placeholder(s) else "{id}" for s in segments
    )
