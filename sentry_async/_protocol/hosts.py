"""Where a request may go with the token, and how endpoints are grouped for rate limits."""

from __future__ import annotations

import functools
import ipaddress
import re
from collections.abc import Iterable
from importlib import resources

import msgspec
from yarl import URL

__all__ = [
    "DEFAULT_BASE_URL",
    "REDIRECT_STATUSES",
    "SAAS_DOMAIN",
    "endpoint_group",
    "has_user_info",
    "host_problem",
    "is_loopback",
    "is_saas",
    "origin",
    "rate_limit_group",
    "redirect_method",
    "redirect_refusal",
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


SAAS_DOMAIN = "sentry.io"
"""Sentry's own service: the one base whose region hosts are trusted without a list."""


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    return True


_HOST_CHARACTERS = re.compile(r"[A-Za-z0-9_.-]+")
"""What a host name holds once in its ASCII (IDNA) form; underscores appear in internal
names (``sentry_web``)."""


def host_problem(host: str) -> str | None:
    """Why ``host`` (a URL's, decoded) cannot name a machine, or ``None`` when it can.

    Caught here, such a host is a clear configuration error at once; on the wire it was a
    connection error, retried for seconds. IPv6 literals were checked by the URL parser.
    """
    if ":" in host:
        return None
    labels = host.rstrip(".").split(".")
    if all(label.isascii() and label.isdigit() for label in labels):
        try:
            ipaddress.IPv4Address(host.rstrip("."))
        except ValueError:
            return f"{host!r} is not an IPv4 address"
        return None
    try:
        ascii_host = host.encode("idna").decode("ascii")
    except UnicodeError as exc:
        reason = exc.__cause__ or exc.__context__ or exc
        return f"{host!r} is not a host name ({reason})"
    if not _HOST_CHARACTERS.fullmatch(ascii_host):
        return f"{host!r} is not a host name (spaces or characters a host cannot hold)"
    return None


def has_user_info(url: URL) -> bool:
    """Whether ``url`` names a user or a password (``user:pass@host``, a bare ``@``): such a
    URL never gets the token, which it would carry beside credentials of its own."""
    return url.user is not None or url.password is not None or "@" in url.raw_authority


def is_saas(url: URL) -> bool:
    """True for a URL on sentry.io or one of its subdomains (``https://de.sentry.io``)."""
    host = (url.host or "").lower().rstrip(".")
    return host == SAAS_DOMAIN or host.endswith("." + SAAS_DOMAIN)


def token_host_refusal(base: URL, target: URL, trusted: Iterable[URL] = ()) -> str | None:
    """Why the token must not go to ``target``, or ``None`` when it may.

    Allowed: the base URL's own origin; the same loopback host on any port; an origin
    listed in ``trusted``; and, for a base on sentry.io only, an ``https`` subdomain of
    sentry.io on the default port (``de.sentry.io``). No other base trusts its neighbours:
    without the public-suffix list, ``attacker.herokuapp.com`` cannot be told apart from a
    sister host of ``sentry.herokuapp.com``. Refused: credentials in the URL, look-alikes
    (``sentry.io.evil.com``), other loopback addresses, plain http anywhere else.
    """
    if target.scheme not in ("http", "https") or not target.host:
        return f"{target} is not an absolute http(s) URL"
    if has_user_info(target):
        return "a URL with user information (user@host) is never trusted"
    if any(origin(url) == origin(target) for url in trusted):
        return None
    if origin(target) == origin(base):
        return None
    host = target.host.lower().rstrip(".")
    base_host = (base.host or "").lower().rstrip(".")
    if host == base_host and is_loopback(host) and target.scheme == base.scheme:
        return None
    if target.scheme != "https" and not is_loopback(host):
        return (
            f"plain http:// to {target.host} would carry the token unencrypted (list it in "
            "trusted_hosts, with allow_insecure_http=True, to allow it)"
        )
    if host == base_host:
        return f"{target.host}: another port or scheme than the base URL's"
    if target.scheme != "https":
        return f"{target.host}: not the base URL's host"
    if _is_ip(host) or is_loopback(host):
        return f"{target.host}: not the base URL's host"
    if not is_saas(base):
        return (
            f"{target.host}: only the base URL's origin receives the token "
            "(list it in trusted_hosts to allow it)"
        )
    if not is_saas(target):
        return f"{target.host} is not within {SAAS_DOMAIN} (list it in trusted_hosts to allow it)"
    if target.port != 443:
        return f"{target.host}: a subdomain is trusted on the default port only"
    return None


def resolve_redirect(
    current: URL, location: str, trusted: frozenset[tuple[str, str, int | None]]
) -> tuple[URL, bool]:
    """The redirect target and whether the token may go there: its origin is trusted and
    it names no user information (see :func:`has_user_info`).

    Raises ``ValueError`` when ``location`` is not a URL at all (``http://[::1``, say).
    """
    target = current.join(URL(location))
    return target, origin(target) in trusted and not has_user_info(target)


def redirect_method(status: int, method: str) -> tuple[str, bool]:
    """The method for the next hop and whether the body goes with it, as RFC 9110 §15.4
    and aiohttp have it.

    303 becomes ``GET`` (but for ``HEAD``); 301 and 302 turn only ``POST`` into ``GET``, for
    historical reasons; 307 and 308 repeat the request as it was. The client itself
    follows none of these for a write: see :func:`redirect_refusal`.
    """
    if (status == 303 and method != "HEAD") or (status in (301, 302) and method == "POST"):
        return "GET", False
    return method, True


def redirect_refusal(status: int, method: str) -> str | None:
    """Why the client does not follow this redirect of ``method``, or ``None``.

    Only ``GET``/``HEAD`` follow a 301, 302 or 303. For a write, 303 means the server
    acted and points at a result (not the answer the call expects), and user agents
    differ on 301/302 (most resend a ``POST`` as ``GET``): an error that names the new
    location is safer than a write quietly resent as a read, or to a moved API. 307 and
    308 say to repeat the request as it was, and are followed.
    """
    if status not in (301, 302, 303) or method in ("GET", "HEAD"):
        return None
    if status == 303:
        return f"the server answered {method} with 303 See Other: it may have acted on it"
    return (
        f"refusing to follow a {status} for {method}: the write was not made "
        "(update base_url if the API moved)"
    )


def endpoint_group(method: str, path: str) -> str:
    """The hooks' ``group``: the method and the route's template.

    A template
    (``/organizations/{org}/issues/``) is its own group; a concrete path
    (``/organizations/acme/issues/?query=...``) is matched to the template of the client's
    known routes (hand-written and generated), so a slug, an id or a query value never
    names a group. An unknown route keeps only the words known routes use, the rest
    becoming ``{id}``.
    """
    return f"{method.upper()} {_route(path.partition('?')[0].partition('#')[0])}"


def _issue_spellings(tail: str) -> tuple[str, ...]:
    """An issue's route in every spelling Sentry serves it under (``create_group_urls``,
    included at ``(?:issues|groups)/`` and at ``organizations/<org>/(?:issues|groups)/``),
    the client's own first."""
    return tuple(
        f"{prefix}{{issue_id}}/{tail}"
        for prefix in (
            "/organizations/{org}/issues/",
            "/organizations/{org}/groups/",
            "/issues/",
            "/groups/",
        )
    )


_OWN_LIMITS: dict[str, tuple[str, ...]] = {
    # Views whose Sentry endpoint declares its own ``rate_limits``, each with the templates
    # that reach it: one counter per view and method (``get_rate_limit_key`` names the view,
    # not the path), whatever methods the limits name and whichever spelling is used. The
    # first template names the group. Checked in Sentry's server code. A view left out is
    # merged into the default group, where the answers of its own counter (another Limit,
    # another Remaining) overwrite the mirror of the default window: keep the list whole.
    "OrganizationEventsEndpoint": ("/organizations/{org}/events/",),
    "OrganizationStatsEndpointV2": ("/organizations/{org}/stats_v2/",),
    "EventIdLookupEndpoint": ("/organizations/{org}/eventids/{event_id}/",),
    "GroupDetailsEndpoint": _issue_spellings(""),
    "GroupAutofixEndpoint": _issue_spellings("autofix/"),
    "GroupEventDetailsEndpoint": _issue_spellings("events/{event_id}/"),
    "OrganizationDashboardGenerateEndpoint": ("/organizations/{org}/dashboards/generate/",),
    "OrganizationReleasesEndpoint": ("/organizations/{org}/releases/",),
    "OrganizationReleaseFilesEndpoint": ("/organizations/{org}/releases/{version}/files/",),
    "OrganizationReplayCountEndpoint": ("/organizations/{org}/replay-count/",),
    "OrganizationRepositoriesEndpoint": ("/organizations/{org}/repos/",),
    "ProjectEventsEndpoint": ("/projects/{org}/{project}/events/",),
    "ProjectEventDetailsEndpoint": ("/projects/{org}/{project}/events/{event_id}/",),
    "ProjectGroupIndexEndpoint": (
        "/projects/{org}/{project}/issues/",
        "/projects/{org}/{project}/groups/",
    ),
    "ProjectReleasesEndpoint": ("/projects/{org}/{project}/releases/",),
    "ProjectReleaseFilesEndpoint": ("/projects/{org}/{project}/releases/{version}/files/",),
    "ProjectStatsEndpoint": ("/projects/{org}/{project}/stats/",),
    "ProjectTagKeyValuesEndpoint": ("/projects/{org}/{project}/tags/{key}/values/",),
    "ProjectUsersEndpoint": ("/projects/{org}/{project}/users/",),
    # sentry/core/endpoints/project_keys.py: GET and POST, 40 a second.
    "ProjectKeysEndpoint": ("/projects/{org}/{project}/keys/",),
    # sentry/api/endpoints/organization_project_keys.py: GET, 40 a second.
    "OrganizationProjectKeysEndpoint": ("/organizations/{org}/project-keys/",),
    # sentry/preprod/api/endpoints/public/organization_preprod_artifact_install_details.py:
    # GET, 100 a minute per organization.
    "OrganizationPreprodArtifactPublicInstallDetailsEndpoint": (
        "/organizations/{org}/preprodartifacts/{artifact_id}/install-details/",
    ),
    # sentry/preprod/api/endpoints/public/project_preprod_build_distribution_latest.py: GET.
    "ProjectPreprodBuildDistributionLatestEndpoint": (
        "/projects/{org}/{project}/preprodartifacts/build-distribution/latest/",
    ),
    # sentry/preprod/api/endpoints/snapshots/preprod_artifact_snapshot.py: POST.
    "ProjectPreprodSnapshotEndpoint": ("/projects/{org}/{project}/preprodartifacts/snapshots/",),
    # sentry/preprod/api/endpoints/public/project_preprod_size_analysis_status_check_rules.py.
    "ProjectPreprodSizeAnalysisStatusCheckRulesEndpoint": (
        "/projects/{org}/{project}/preprod/size-analysis/status-check-rules/",
    ),
    # sentry/preprod/api/endpoints/public/project_preprod_snapshot_status_check_rules.py.
    "ProjectPreprodSnapshotStatusCheckRulesEndpoint": (
        "/projects/{org}/{project}/preprod/snapshots/status-check-rules/",
    ),
    # sentry/preprod/api/endpoints/public/project_preprod_skip_status_check.py: two views of
    # one base class, POST, a counter each (the key names the view's class).
    "ProjectPreprodSizeAnalysisSkipStatusCheckEndpoint": (
        "/projects/{org}/{project}/preprod/size-analysis/status-checks/skip/",
    ),
    "ProjectPreprodSnapshotSkipStatusCheckEndpoint": (
        "/projects/{org}/{project}/preprod/snapshots/status-checks/skip/",
    ),
    # sentry/seer/endpoints/seer_models.py: GET, 100 a minute per IP.
    "SeerModelsEndpoint": ("/seer/models/",),
}
"""Sentry counts requests per ``(method, view)`` only for these; every other endpoint shares
one counter per method and group (``get_rate_limit_key``: the view enters the key only when
``RateLimitConfig.has_custom_limit()``, and ``Endpoint.rate_limits`` defaults to
``DEFAULT_RATE_LIMIT_CONFIG``, which has none). Views of the "CLI" group with limits of
their own (the project's releases, the release files, the repositories) are here too. Their
templates are known routes (:func:`endpoint_group` names an issue's other spellings, and
``dashboards/generate/``, rather than taking them for another route or turning their words
into ``{id}``)."""

_CLI_GROUP = {
    "/organizations/{org}/chunk-upload/": "ChunkUploadEndpoint",
    "/organizations/{org}/releases/{version}/previous-with-commits/": (
        "OrganizationReleasePreviousCommitsEndpoint"
    ),
}
"""Views that declare ``RateLimitConfig(group="CLI")`` and no limits of their own: Sentry
keys them ``<category>:CLI:<METHOD>:<id>``, one counter per method for the group (with
limits of its own, a concurrent one among them), apart from the default one. Outside the
generated API, so their templates are known routes too (:func:`endpoint_group` names
them rather than turning their words into ``{id}``)."""

_PLACEHOLDERS = re.compile(r"\{[^}/]*\}")


@functools.cache
def _own_limit_shapes() -> dict[str, str]:
    """Each template's shape -> the template naming its view's group."""
    return {
        _PLACEHOLDERS.sub("{}", template): templates[0]
        for templates in _OWN_LIMITS.values()
        for template in templates
    }


@functools.cache
def _cli_group_shapes() -> frozenset[str]:
    return frozenset(_PLACEHOLDERS.sub("{}", template) for template in _CLI_GROUP)


@functools.lru_cache(maxsize=1024)
def rate_limit_group(group: str) -> str:
    """The limiter's key for an endpoint group: the counter Sentry keeps its requests in.

    An endpoint with limits of its own has its view's group, named by the view's first
    template (``GET /organizations/{org}/events/``; ``GET /issues/{id}/`` is in
    ``GET /organizations/{org}/issues/{issue_id}/``); one of Sentry's "CLI" group shares
    ``"<METHOD> CLI"``, and every other one shares ``"<METHOD> default"`` with the rest of
    its method, so that a window spent, a 429 or the concurrent cap on one holds them all, as
    on Sentry. Placeholder names do not matter, and a name that is no route (``"g"``) is a
    group of its own.
    """
    method, _, path = group.partition(" ")
    if not path.startswith("/"):
        return group
    shape = _PLACEHOLDERS.sub("{}", path)
    own = _own_limit_shapes().get(shape)
    if own is not None:
        return f"{method} {own}"
    if shape in _cli_group_shapes():
        return f"{method} CLI"
    return f"{method} default"


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
    generated = (r.path for r in msgspec.json.decode(listed, type=list[_Route]))
    own = (template for templates in _OWN_LIMITS.values() for template in templates)
    templates = [*_EXTRA_ROUTES, *_CLI_GROUP, *own, *generated]
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
