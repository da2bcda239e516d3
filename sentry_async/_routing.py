"""Where a request goes: the base URL's rules, regions, project ids and renamed projects.

A mixin of :class:`~sentry_async.SentryClient`: the state lives on the client (set in its
``__init__``), the decisions that need no I/O in ``_protocol.hosts`` and
``_protocol.params``.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from contextvars import ContextVar
from typing import TYPE_CHECKING, Annotated, TypeVar, cast
from urllib.parse import quote

import anyio
import msgspec
from yarl import URL

from ._protocol.errors import REDACTED, Redactor
from ._protocol.hosts import host_problem, is_loopback, is_saas, origin, token_host_refusal
from ._protocol.params import check_path_value, check_slug, is_numeric_id, project_refs
from .errors import APIError, ProjectMoved, UntrustedHost

if TYPE_CHECKING:
    from ._protocol.proxies import ProxySettings
    from ._transport import Secret
    from .client import SentryClient
    from .hooks import HookSet

__all__ = [
    "API_PREFIX",
    "SAFE_METHODS",
    "Routing",
    "base_url_or_error",
    "normalise_base_url",
    "trusted_urls_or_error",
    "without_userinfo",
]

T = TypeVar("T")
logger = logging.getLogger("sentry_async")

API_PREFIX = "/api/0"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_URL_CACHE_SIZE = 256
"""URLs kept by :meth:`Routing.url_for`; a sweep over thousands of issues starts afresh."""
FOLLOWING_MOVES: ContextVar[bool] = ContextVar("sentry_async_following_moves", default=False)
"""Set while a read that follows a renamed project is sent: the hooks then report its
302 as ``reason="moved"``, an outcome, not a failure (the call goes on to the new path)."""
_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")


ProjectId = Annotated[str, msgspec.Meta(pattern=r"^[0-9]{1,20}$")]
"""A project id as Sentry writes one (a 64-bit integer, as text): a server's other value
is a :class:`DecodeError` naming the projects list, never an ``int()`` failing later."""


class _ProjectRef(msgspec.Struct):
    id: ProjectId
    slug: str
    has_access: bool | None = msgspec.field(default=None, name="hasAccess")
    """Whether the user can access the project (a user token lists every project of the
    organization, and Sentry answers 403 for a query naming one it cannot access);
    ``None`` when the row does not say."""


class Routing:
    """Regions, project ids and renamed projects, for :class:`~sentry_async.SentryClient`."""

    if TYPE_CHECKING:
        base_url: URL
        org: str | None
        _token: Secret | None
        _redact: Callable[[str], str]
        _allow_insecure: bool
        _proxy: ProxySettings
        _trusted: set[tuple[str, str, int | None]]
        _trusted_urls: list[URL]
        _region_roots: dict[str, URL]
        _project_ids: dict[str, dict[str, str]]
        _project_access: dict[str, dict[str, bool | None]]
        _project_loads: dict[str, _ProjectIdsLoad]
        _renamed: dict[tuple[str, str], str]
        _urls: dict[tuple[object, ...], URL]
        _hooks: HookSet | None
        api_root: URL

    def url_for(
        self,
        path: str,
        path_params: Mapping[str, str | int] | None = None,
        *,
        root: URL | None = None,
    ) -> URL:
        """The absolute URL of an API path such as ``/organizations/{org}/issues/``.

        An organization's paths go to its region once known; ``root`` (an API root such as
        ``https://de.sentry.io/api/0``) overrides both. Every page of a paginator asks for
        the same URL, so the answers are cached until a region is learnt. The project is the
        one given: a read follows a rename within its call only (:meth:`_send_following`).
        """
        try:
            key = (path, tuple(path_params.items()) if path_params else (), root, self.org)
            url = self._urls.get(key)
        except TypeError:  # an unhashable value: the checks below name it
            return self._build_url(path, path_params, root)
        if url is None:
            url = self._build_url(path, path_params, root)
            if len(self._urls) >= _URL_CACHE_SIZE:
                self._urls.clear()
            self._urls[key] = url
        return url

    def _build_url(
        self, path: str, path_params: Mapping[str, str | int] | None, root: URL | None
    ) -> URL:
        values: dict[str, str | int] = {}
        if self.org is not None:
            values["org"] = self.org
        if path_params:
            values.update(path_params)

        def substitute(match: re.Match[str]) -> str:
            name = match.group(1)
            if name not in values:
                raise ValueError(f"path {path!r} needs a value for {{{name}}}")
            return quote(check_path_value(values[name], name), safe="")

        if not path.startswith("/"):
            raise ValueError(f"API paths start with '/' (got {path!r})")
        concrete = _PLACEHOLDER.sub(substitute, path)
        org = values.get("org")
        if root is not None:
            pass
        elif org is not None and "{org}" in path and str(org) in self._region_roots:
            root = self._region_roots[str(org)]
        else:
            root = self.api_root
        # The raw path: a prefix such as /my%20sentry/ is already encoded.
        return root.with_path(root.raw_path + concrete, encoded=True)

    def check_region(self, region_url: str) -> URL:
        """``region_url`` as a base URL, if the token may go there; else :class:`UntrustedHost`.

        The rule (``_protocol.hosts.token_host_refusal``): the base URL's origin, the same
        loopback host on any port, an origin listed in ``trusted_hosts``, or, for a base on
        sentry.io, an https subdomain of sentry.io on the default port (``de.sentry.io``).
        The rule comes first: its refusal says what would allow the host, where the base
        URL's own checks would only point at ``allow_insecure_http``, which never does.
        """
        try:
            region = URL(region_url.strip())
        except (TypeError, ValueError) as exc:
            raise UntrustedHost(self._refusing(region_url, "not a URL")) from exc
        refusal = token_host_refusal(self.base_url, region, self._trusted_urls)
        if refusal is not None:
            raise UntrustedHost(self._refusing(region_url, refusal))
        try:
            normalised = normalise_base_url(region_url, self._allow_insecure, "the region URL")
            self._proxy.check_plain_http(normalised, self._allow_insecure)
        except (TypeError, ValueError) as exc:
            raise UntrustedHost(self._refusing(region_url, str(exc))) from exc
        return normalised

    def _refusing(self, region_url: str, reason: str) -> str:
        """Why a region is refused, with the token blanked out should the server have
        echoed it in the URL it named."""
        redactor = Redactor(self._token.reveal() if self._token is not None else None)
        return redactor.text(f"refusing to send the token to region {region_url!r}: {reason}")

    def api_root_of(self, region: URL) -> URL:
        """The API root under a base URL (a region's, or the client's own)."""
        return region.with_path(region.raw_path.rstrip("/") + API_PREFIX, encoded=True)

    def admit_region(self, region_url: str) -> URL:
        """Let the token go to a region host that passes the rule; returns its base URL."""
        region = self.check_region(region_url)
        self._trusted.add(origin(region))
        return region

    def region_base(self, region_url: str) -> URL | None:
        """The base URL of a region a server named (``/users/me/regions/``,
        ``links.regionUrl``), admitted, when it passes the rule; ``None`` when it is
        ignored and the base URL stays in use.

        On sentry.io a region the token must not go to is an :class:`UntrustedHost`. A
        self-hosted server names its ``system.url-prefix`` there, whatever the admin typed
        at setup (an internal name, a plain-http address behind the TLS proxy the client
        goes through): such a region is ignored.
        """
        try:
            return self.admit_region(region_url)
        except UntrustedHost as refused:
            if is_saas(self.base_url):
                raise
            logger.debug("ignoring region URL, using the base URL %s: %s", self.base_url, refused)
            return None

    def trust_region(self, org: str, region_url: str) -> None:
        """Send ``org``'s requests to its region host (``links.regionUrl``) from now on."""
        self._trust_orgs(region_url, (org,))

    def _trust_orgs(self, region_url: str, orgs: Iterable[str]) -> None:
        """:meth:`trust_region` for several names of one organization (its id and its
        slug): the region is checked once."""
        root = self.api_root_of(self.admit_region(region_url))
        try:
            for org in orgs:
                self._region_roots[check_slug(org, "org")] = root
        finally:
            self._urls.clear()

    # -- projects: slugs to ids, renamed projects -------------------------------------------

    async def project_ids(
        self, org: str, project: str | int | Sequence[str | int] | None
    ) -> list[str] | None:
        """``project=`` for the org endpoints: Sentry takes numeric ids only (a slug is a 400).

        Ids (ints, digit strings, ``-1``) pass as they are; slugs are looked up in the
        organization's projects list, cached per client and organization and fetched again
        once when a slug is not in the cache (still unknown: a ``ValueError`` naming it).
        ``None`` stays ``None`` (every project); ``[]`` is a ``ValueError``.
        """
        refs = project_refs(project)
        if refs is None:
            return None
        org = check_slug(org, "org")
        if all(ref == "-1" or is_numeric_id(ref) for ref in refs):
            return refs
        known = self._project_ids.get(org)
        if known is None or any(
            ref not in known for ref in refs if not (ref == "-1" or is_numeric_id(ref))
        ):
            known = await self.load_project_ids(org)
        out: list[str] = []
        for ref in refs:
            if ref == "-1" or is_numeric_id(ref):
                out.append(ref)
            elif ref in known:
                out.append(known[ref])
            else:
                new = self._renamed.get((org, ref))
                renamed = "" if new is None else f" (renamed to {new!r})"
                # Blanked out: the token passed by mistake is a valid slug (sntryu_<hex>).
                raise ValueError(
                    self._redact(f"no project with slug {ref!r} in organization {org!r}{renamed}")
                )
        return out

    async def project_id_map(self, org: str) -> dict[str, str]:
        """The organization's ``slug -> id`` map, from the cache when it is there."""
        known = self._project_ids.get(check_slug(org, "org"))
        return known if known is not None else await self.load_project_ids(org)

    async def project_access(self, org: str) -> dict[str, bool | None]:
        """The organization's ``id -> hasAccess`` (``None``: the list did not say), read with
        the ``slug -> id`` map and cached with it."""
        org = check_slug(org, "org")
        known = self._project_access.get(org)
        if known is None:
            await self.load_project_ids(org)
            known = self._project_access[org]
        return known

    def cached_project_access(self, org: str) -> dict[str, bool | None] | None:
        """The ``id -> hasAccess`` map as last read, without reading it: ``None`` before the
        first read. For a caller that reads the list again when the cached one would not do."""
        return self._project_access.get(check_slug(org, "org"))

    async def load_project_ids(self, org: str) -> dict[str, str]:
        """Fetch (again) the organization's ``slug -> id`` map that :meth:`project_ids` uses.

        Callers at the same time share one walk of the projects list, each with its map or
        its error: a failed walk is not kept, and the next caller walks again.
        """
        while True:
            load = self._project_loads.get(org)
            if load is None:
                break
            await load.done.wait()
            if load.mapping is not None:
                return load.mapping
            if load.error is not None:
                raise load.error
            # The walk's caller was cancelled: one of those who waited walks instead.
        load = self._project_loads[org] = _ProjectIdsLoad()
        try:
            mapping = load.mapping = await self._walk_project_ids(org)
        except Exception as exc:
            load.error = exc
            raise
        finally:
            del self._project_loads[org]
            load.done.set()
        return mapping

    async def _walk_project_ids(self, org: str) -> dict[str, str]:
        """One walk of the organization's projects list, kept as its ``slug -> id`` map:
        read in one answer (``all_projects``), where pages would shift past a project
        created or deleted between them."""
        mapping: dict[str, str] = {}
        access: dict[str, bool | None] = {}
        client = cast("SentryClient", self)
        refs = client.projects.list(org, all_projects=True).as_type(_ProjectRef)
        async for ref in refs:
            mapping[ref.slug] = ref.id
            access[ref.id] = ref.has_access
        self._project_ids[org] = mapping
        self._project_access[org] = access
        return mapping

    @property
    def renamed_projects(self) -> dict[tuple[str, str], str]:
        """``(org, old slug) -> new slug`` of every rename a read followed, until the old
        slug answers as a project again (another project took it, or it was renamed back)."""
        return dict(self._renamed)

    def _follow_move(self, error: ProjectMoved, key: tuple[str, str]) -> str | None:
        """The slug a read of ``key`` goes to now, if the answer names a usable new
        same-origin path (the slug asked for, when the project was renamed back).

        A rename is recorded and logged the first time it is seen; reads keep asking the
        old slug first, as Sentry serves it to any project that takes it later.
        """
        new = error.new_slug
        target = error.new_url
        if new is None:
            return None
        if target is not None and (not target.startswith("/") or target.startswith("//")):
            return None
        try:
            check_slug(new, "project")
        except ValueError:
            return None
        if REDACTED in new:
            # Blanked out of the answer: the token (echoed) was the slug, and the path the
            # blank makes names no project. The move is raised, not followed to a 404.
            return None
        org, old = key
        if new == old:
            self._forget_move(key)
        elif self._renamed.get(key) != new:
            logger.warning(
                "project %s/%s was renamed to %s; reads follow it, writes raise ProjectMoved: "
                "use the new slug (another project may take the old one)",
                org,
                old,
                new,
            )
            self._renamed[key] = new
            self._project_ids.pop(org, None)  # its slugs changed: read them again when asked
        return new

    def _forget_move(self, key: tuple[str, str]) -> None:
        """The old slug answered as itself (a project holds it again, or nothing does): the
        rename is no longer listed, and the organization's slugs are read again when asked."""
        if self._renamed.pop(key, None) is not None:
            self._project_ids.pop(key[0], None)

    async def _send_following(
        self,
        method: str,
        path: str,
        path_params: Mapping[str, str | int] | None,
        send: Callable[[URL], Awaitable[T]],
        root: URL | None = None,
        moves: dict[tuple[str, str], str] | None = None,
    ) -> T:
        """``send(url)``; a read of a renamed project is sent once more to its new slug.

        Sentry answers a slug with the project that holds it now, and only when none does
        with the renamed project's 302, which never applies a write. So every call asks the
        slug it was given: a write raises :class:`ProjectMoved`, a read follows the 302,
        and what it learnt lasts for that call only. ``moves`` is the memory of a walk
        whose pages each rebuild the path as given: its pages go where its first one was
        sent, and a 302 learnt there is kept in it.
        """
        key = _project_key(path, path_params, self.org)
        followable = key is not None and method in SAFE_METHODS
        given = path_params or {}
        new = moves.get(key) if key is not None and followable and moves else None
        sent = given if new is None else {**given, "project": new}
        url = self.url_for(path, sent, root=root)
        try:
            if self._hooks is not None and followable:
                # The hooks report a 302 followed here as a move, not a failed call.
                following = FOLLOWING_MOVES.set(True)
                try:
                    return await self._answer(send, url, key, new is None)
                finally:
                    FOLLOWING_MOVES.reset(following)
            return await self._answer(send, url, key, new is None)
        except ProjectMoved as moved:
            if key is None or not followable:
                raise
            now = self._follow_move(moved, key)
            if now is None:
                raise
        if moves is not None:
            if now == key[1]:
                moves.pop(key, None)
            else:
                moves[key] = now
        return await send(self.url_for(path, {**given, "project": now}, root=root))

    async def _answer(
        self,
        send: Callable[[URL], Awaitable[T]],
        url: URL,
        key: tuple[str, str] | None,
        as_given: bool,
    ) -> T:
        """``send(url)``; an answer other than the 302 to the slug given forgets its rename."""
        if key is None or not as_given:
            return await send(url)
        try:
            answer = await send(url)
        except ProjectMoved:
            raise
        except APIError:
            self._forget_move(key)
            raise
        self._forget_move(key)
        return answer


def _project_key(
    path: str, path_params: Mapping[str, str | int] | None, org: str | None
) -> tuple[str, str] | None:
    """``(org, project)`` of a templated project path, the key of its rename."""
    if "{project}" not in path or not path_params or "project" not in path_params:
        return None
    org_value = path_params.get("org", org)
    if org_value is None:
        return None
    return str(org_value), str(path_params["project"])


def normalise_base_url(value: str, allow_insecure: bool, name: str = "base_url") -> URL:
    """``value`` as a base URL (no ``/api/0``, no query), or the error of
    :func:`base_url_or_error`, raised."""
    checked = base_url_or_error(value, allow_insecure, name)
    del value
    if isinstance(checked, Exception):
        raise checked
    return checked


def base_url_or_error(
    value: object, allow_insecure: bool, name: str = "base_url"
) -> URL | TypeError | ValueError:
    """``value`` as a base URL (no ``/api/0``, no query), or the error refusing it, naming
    ``name``, the argument it came from (``base_url``, ``trusted_hosts``, a region URL).

    The error is returned, not raised, for a caller that raises it once none of its locals
    holds ``value`` (``SentryClient()``): ``https://TOKEN@host`` holds the token. For the
    same reason it shows ``value`` without its user information and does not chain yarl's
    error, whose frames hold it."""
    if not isinstance(value, str):
        return TypeError(f"{name} must be a URL string (got {type(value).__name__})")
    try:
        url = URL(value.strip())
        host = url.host  # decoded here: a name that fails IDNA raises UnicodeError
    except (TypeError, ValueError):
        return ValueError(f"{name} is not a URL: {without_userinfo(value)!r}")
    if url.scheme not in ("http", "https") or not host:
        return ValueError(
            f"{name} must be an absolute http(s) URL (got {without_userinfo(value)!r})"
        )
    problem = host_problem(host)
    if problem is not None:
        return ValueError(f"{name} has an unusable host: {problem}")
    if url.user or url.password or "@" in url.raw_path:
        # An "@" in the path is user information a "/" cut short: https://sntrys_a/b@host,
        # an organization token's base64 unencoded, is a URL of host "sntrys_a".
        return ValueError(f"{name} must not carry credentials; pass the token instead")
    if url.scheme == "http" and not allow_insecure and not is_loopback(host):
        where = "" if name == "base_url" else f" in {name}"  # the CLI names base_url's flag
        return ValueError(
            f"refusing plain http:// for {host}{where}: the token would travel "
            "unencrypted (pass allow_insecure_http=True to override)"
        )
    path = url.raw_path.rstrip("/")
    if path.endswith(API_PREFIX):
        path = path[: -len(API_PREFIX)]
    return url.with_path(path or "/", encoded=True).with_query(None).with_fragment(None)


def trusted_urls_or_error(
    hosts: Iterable[object], allow_insecure: bool
) -> list[URL] | TypeError | ValueError:
    """``trusted_hosts`` as base URLs, or the error refusing the first that is not one,
    returned: see :func:`base_url_or_error`."""
    if isinstance(hosts, bytes):
        return TypeError("trusted_hosts must be a list of base URLs, not bytes")
    if isinstance(hosts, str):
        return TypeError(
            "trusted_hosts must be a list of base URLs, not one string "
            f"(trusted_hosts=[{without_userinfo(hosts)!r}])"
        )
    try:
        entries = list(hosts)
    except TypeError:
        return TypeError(f"trusted_hosts must be a list of base URLs (got {type(hosts).__name__})")
    urls: list[URL] = []
    for entry in entries:
        url = base_url_or_error(entry, allow_insecure, name="trusted_hosts")
        if isinstance(url, Exception):
            return url
        urls.append(url)
    return urls


_AUTHORITY_START = re.compile(r"[ \t]*(?:[A-Za-z][A-Za-z0-9+.-]*:)?//")


def without_userinfo(text: str) -> str:
    """``text``, a URL as typed, with its user information (``TOKEN@``, ``user:password@``)
    blanked out, however wrong the rest: whatever stands between the authority's start
    (the text's, without ``//``: ``TOKEN@host``) and the last ``@`` before a query or
    fragment. Not only up to the first ``/``: an organization token's base64 may hold one."""
    start = _AUTHORITY_START.match(text)
    begin = start.end() if start is not None else 0
    end = len(text)
    for mark in "?#":
        found = text.find(mark, begin)
        if found >= 0:
            end = min(end, found)
    at = text.rfind("@", begin, end)
    return text if at < 0 else f"{text[:begin]}********{text[at:]}"


class _ProjectIdsLoad:
    """A walk of an organization's projects list under way, which concurrent callers of
    :meth:`Routing.load_project_ids` await instead of walking it each."""

    __slots__ = ("done", "error", "mapping")

    def __init__(self) -> None:
        self.done = anyio.Event()
        self.mapping: dict[str, str] | None = None
        self.error: Exception | None = None
