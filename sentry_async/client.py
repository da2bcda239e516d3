"""``SentryClient``: configuration, the session's lifetime, and the two generic entry points.

Every resource method is a few lines over :meth:`SentryClient.request` and
:meth:`SentryClient.paginate`; both are public, so endpoints this library does not wrap
yet are one call away, with the same limiter, retries, errors and pagination.
"""

from __future__ import annotations

import logging
import os
import platform
import re
from collections.abc import (
    AsyncGenerator,
    AsyncIterator,
    Awaitable,
    Callable,
    Coroutine,
    Hashable,
    Iterable,
    Mapping,
    Sequence,
)
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from functools import lru_cache
from types import TracebackType, UnionType
from typing import (
    TYPE_CHECKING,
    Any,
    TypedDict,
    TypeVar,
    Union,
    cast,
    get_args,
    get_origin,
    overload,
)
from urllib.parse import quote

import aiohttp
import anyio
import msgspec
from yarl import URL

from ._network import SSLSetting, tls
from ._protocol.cursors import DEFAULT_MAX_STALE_PAGES, body_fingerprint
from ._protocol.hosts import (
    DEFAULT_BASE_URL,
    endpoint_group,
    is_loopback,
    origin,
    token_host_refusal,
)
from ._protocol.params import (
    Params,
    check_page_size,
    check_slug,
    encode_params,
    is_numeric_id,
    project_refs,
)
from ._protocol.proxies import ENVIRONMENT, FromEnvironment, proxy_settings
from ._protocol.ratelimit import header_int
from ._protocol.retry import RetryPolicy
from ._transport import DEFAULT_MAX_BODY_SIZE, MalformedBody, Response, Secret, Transport
from ._version import __version__
from .api._groups import GeneratedGroups
from .errors import DecodeError, ProjectMoved, SentryError, UntrustedHost
from .hooks import Hooks, HookSet
from .limiter import RateLimiter
from .pagination import PageFetcher, Paginator, RawPage

if TYPE_CHECKING:
    from .resources.discover import DiscoverResource
    from .resources.events import EventsResource
    from .resources.issues import IssuesResource
    from .resources.organizations import OrganizationsResource
    from .resources.projects import ProjectsResource
    from .resources.stats import StatsResource

__all__ = ["DEFAULT_BASE_URL", "SentryClient", "Timeouts"]

T = TypeVar("T")
logger = logging.getLogger("sentry_async")

_API_PREFIX = "/api/0"
_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")
_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_UNPAGINATED_SWITCHES = frozenset({"noPagination", "all_projects"})
"""Query parameters with which Sentry answers a list whole, whatever the page size."""


_UNDECODABLE = (msgspec.ValidationError, msgspec.DecodeError, UnicodeDecodeError, RecursionError)
"""What msgspec raises for a body that does not decode: invalid UTF-8 inside a string is a
``UnicodeDecodeError`` and nesting deeper than it follows a ``RecursionError``."""


class _ProjectRef(msgspec.Struct):
    id: str
    slug: str


@dataclass(frozen=True, slots=True)
class Timeouts:
    """Seconds. ``read`` bounds each wait for bytes; ``total`` a whole attempt, body included,
    so a body that trickles in a byte at a time cannot hold a request (or a paginator, a
    fan-out, an export) for ever; ``pool`` the whole wait for a connection, a free pooled one
    or a new one (``connect`` bounds each connection attempt). ``None`` turns a bound off,
    on purpose."""

    connect: float = 10.0
    read: float = 60.0
    total: float | None = 300.0
    pool: float | None = 60.0

    def __post_init__(self) -> None:
        for name in ("connect", "read", "total", "pool"):
            value = getattr(self, name)
            if value is not None and not value > 0:
                raise ValueError(f"Timeouts.{name} must be a positive number of seconds")

    def to_aiohttp(self) -> aiohttp.ClientTimeout:
        # aiohttp's ``connect`` covers the wait for a pooled connection plus connecting.
        return aiohttp.ClientTimeout(
            total=self.total,
            connect=self.pool,
            sock_connect=self.connect,
            sock_read=self.read,
        )


class _CallOptions(TypedDict):
    group: str
    params: list[tuple[str, str]]
    body: bytes | None
    idempotent: bool


_DEFAULT_TOTAL = 300.0
"""The default deadline of one attempt, kept when ``timeout=`` is a plain number."""


@lru_cache(maxsize=256)
def _decoder(type_: Any) -> msgspec.json.Decoder[Any]:
    return msgspec.json.Decoder(type_)


def _type_name(type_: Any) -> str:
    """A short readable name: ``list[Issue]``, ``int | None``, ``Any``."""
    if type_ is type(None):
        return "None"
    origin, args = get_origin(type_), get_args(type_)
    if origin in (Union, UnionType):
        return " | ".join(_type_name(arg) for arg in args)
    if origin is not None and args:
        return f"{_type_name(origin)}[{', '.join(_type_name(arg) for arg in args)}]"
    return getattr(type_, "__name__", None) or str(type_).replace("typing.", "")


class SentryClient(GeneratedGroups):
    """An async client for one Sentry installation, to be used as ``async with``.

    Besides the hand-written resources below, every other operation in Sentry's API spec
    is a generated method on a group named after its tag (``client.releases``,
    ``client.teams``, ...); a group's module is imported the first time it is used.

    ``token`` defaults to ``$SENTRY_AUTH_TOKEN``; ``base_url`` to ``$SENTRY_URL`` or
    ``https://sentry.io`` (region hosts such as ``https://de.sentry.io`` and self-hosted
    installs, with or without a path prefix, work the same). Plain ``http://`` is refused
    for anything but loopback unless ``allow_insecure_http=True``: the token would travel
    in clear text.

    ``max_body_size`` caps a body read into memory, after decompression (``None``: no
    cap); a larger one is a :class:`ResponseTooLarge`, not retried. :meth:`download`
    streams a large binary body instead, with no cap.

    A ``session`` passed in is used as it is, except that aiohttp's own silent resend of a
    GET/PUT/DELETE whose pooled connection dropped is turned off on it (it would resend
    merges and discards behind the retry policy's back; see ``disable_silent_resend``).

    ``rate``/``burst`` pace requests per endpoint group until Sentry's headers say more;
    ``max_concurrency`` caps in-flight requests per group. One limiter serves every task
    that shares the client.

    ``proxy`` defaults to the environment's ``HTTPS_PROXY``/``HTTP_PROXY``/``NO_PROXY`` (read
    as ``urllib`` reads them, without ``.netrc``); a URL forces one, ``None`` goes direct.
    ``ssl`` takes a CA bundle's path or an ``ssl.SSLContext`` for private CAs. ``hooks``
    and ``trace_configs`` (aiohttp's) observe every request.
    """

    def __init__(
        self,
        token: str | None = None,
        *,
        base_url: str | None = None,
        org: str | None = None,
        timeout: Timeouts | float = Timeouts(),
        retry: RetryPolicy | None = None,
        rate: float | None = None,
        burst: float | None = None,
        max_concurrency: int = 25,
        max_connections: int = 100,
        user_agent: str | None = None,
        allow_insecure_http: bool = False,
        trusted_hosts: Iterable[str] = (),
        session: aiohttp.ClientSession | None = None,
        limiter: RateLimiter | None = None,
        proxy: str | FromEnvironment | None = ENVIRONMENT,
        ssl: SSLSetting = None,
        hooks: Hooks | Iterable[Hooks] | None = None,
        trace_configs: Iterable[aiohttp.TraceConfig] = (),
        max_body_size: int | None = DEFAULT_MAX_BODY_SIZE,
    ) -> None:
        raw_token = token if token is not None else os.environ.get("SENTRY_AUTH_TOKEN")
        if raw_token is not None:
            raw_token = raw_token.strip()
            if not raw_token:
                raw_token = None
            elif any(ch.isspace() for ch in raw_token) or not raw_token.isprintable():
                raise ValueError("the auth token must not contain spaces or control characters")
        self._token = Secret(raw_token) if raw_token is not None else None
        if base_url is None:
            base_url = os.environ.get("SENTRY_URL") or DEFAULT_BASE_URL
        self.base_url = _normalise_base_url(base_url, allow_insecure_http)
        self._allow_insecure = allow_insecure_http
        self.api_root = self.base_url.with_path(self.base_url.path.rstrip("/") + _API_PREFIX)
        self.org = check_slug(org, "org") if org is not None else None
        if isinstance(timeout, (int, float)):
            seconds = float(timeout)
            timeout = Timeouts(
                connect=min(seconds, 10.0), read=seconds, total=max(seconds, _DEFAULT_TOTAL)
            )
        self.timeouts = timeout
        self.retry = retry or RetryPolicy()
        self.limiter = limiter or RateLimiter(
            rate=rate, burst=burst, max_concurrency=max_concurrency
        )
        self._max_connections = max_connections
        if max_body_size is not None and max_body_size < 1:
            raise ValueError("max_body_size must be a positive number of bytes (or None)")
        self._max_body_size = max_body_size
        self._user_agent = user_agent or (
            f"sentry-async/{__version__} aiohttp/{aiohttp.__version__} "
            f"python/{platform.python_version()}"
        )
        self._proxy = proxy_settings(proxy, os.environ)
        self._proxy.check_plain_http(self.base_url, allow_insecure_http)
        self._trusted: set[tuple[str, str, int | None]] = {origin(self.base_url)}
        self._trusted_urls: list[URL] = []
        for host in trusted_hosts:
            trusted_url = _normalise_base_url(host, allow_insecure_http)
            self._proxy.check_plain_http(trusted_url, allow_insecure_http)
            self._trusted_urls.append(trusted_url)
            self._trusted.add(origin(trusted_url))
        self._hooks = HookSet.of(hooks)
        self._trace_configs = list(trace_configs)
        if session is not None and (ssl is not None or self._trace_configs):
            raise ValueError(
                "ssl= and trace_configs= configure the session this client creates; "
                "set them on your own session instead"
            )
        self._ssl = tls(ssl)
        self._session = session
        self._owns_session = session is None
        self._transport: Transport | None = None
        self._region_roots: dict[str, URL] = {}
        # Project slugs resolved to ids per organization, and renamed projects (old -> new).
        self._project_ids: dict[str, dict[str, str]] = {}
        self._renamed: dict[tuple[str, str], str] = {}
        # The regions of /users/me/regions/ (name, base URL), once asked.
        self.regions: list[tuple[str, URL]] | None = None
        self._closed = False
        from .resources.discover import DiscoverResource
        from .resources.events import EventsResource
        from .resources.issues import IssuesResource
        from .resources.organizations import OrganizationsResource
        from .resources.projects import ProjectsResource
        from .resources.stats import StatsResource

        self.issues: IssuesResource = IssuesResource(self)
        self.events: EventsResource = EventsResource(self)
        self.discover: DiscoverResource = DiscoverResource(self)
        self.stats: StatsResource = StatsResource(self)
        self.organizations: OrganizationsResource = OrganizationsResource(self)
        self.projects: ProjectsResource = ProjectsResource(self)

    def __repr__(self) -> str:
        auth = "token set" if self._token is not None else "no token"
        return f"<SentryClient {self.base_url} ({auth})>"

    async def __aenter__(self) -> SentryClient:
        self._get_transport()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self) -> None:
        """Close the session if this client created it; idempotent."""
        self._closed = True
        if self._session is not None and self._owns_session and not self._session.closed:
            await self._session.close()

    @property
    def closed(self) -> bool:
        return self._closed

    def _get_transport(self) -> Transport:
        if self._closed:
            raise SentryError("this SentryClient is closed")
        if self._transport is None:
            if self._session is None:
                connector = aiohttp.TCPConnector(
                    limit=self._max_connections,
                    ttl_dns_cache=300,
                    enable_cleanup_closed=True,
                    ssl=self._ssl,
                )
                self._session = aiohttp.ClientSession(
                    connector=connector,
                    timeout=self.timeouts.to_aiohttp(),
                    trust_env=False,
                    trace_configs=self._trace_configs or None,
                    auto_decompress=False,  # the transport inflates, under max_body_size
                )
            self._transport = Transport(
                self._session,
                token=self._token,
                limiter=self.limiter,
                retry=self.retry,
                timeout=self.timeouts.to_aiohttp(),
                trusted_origins=self._trusted,
                headers={"User-Agent": self._user_agent, "Accept": "application/json"},
                proxy=self._proxy,
                hooks=self._hooks,
                max_body_size=self._max_body_size,
            )
        return self._transport

    def check_region(self, region_url: str) -> URL:
        """``region_url`` as a base URL, if the token may go there; else :class:`UntrustedHost`.

        The rule (``_protocol.hosts.token_host_refusal``): the base URL's origin, the same
        loopback host on any port, an https subdomain of the base URL's registrable domain
        (``de.sentry.io`` for ``sentry.io``), or an origin listed in ``trusted_hosts``.
        """
        try:
            region = URL(region_url.strip())
            normalised = _normalise_base_url(region_url, self._allow_insecure)
            self._proxy.check_plain_http(normalised, self._allow_insecure)
        except (TypeError, ValueError) as exc:
            raise UntrustedHost(f"refusing region {region_url!r}: {exc}") from exc
        refusal = token_host_refusal(self.base_url, region, self._trusted_urls)
        if refusal is not None:
            raise UntrustedHost(f"refusing to send the token to region {region_url!r}: {refusal}")
        return normalised

    def api_root_of(self, region: URL) -> URL:
        """The API root under a region's base URL."""
        return region.with_path(region.path.rstrip("/") + _API_PREFIX)

    def admit_region(self, region_url: str) -> URL:
        """Let the token go to a region host that passes the rule; returns its base URL."""
        region = self.check_region(region_url)
        self._trusted.add(origin(region))
        return region

    def trust_region(self, org: str, region_url: str) -> None:
        """Send ``org``'s requests to its region host (``links.regionUrl``) from now on."""
        region = self.admit_region(region_url)
        self._region_roots[check_slug(org, "org")] = region.with_path(
            region.path.rstrip("/") + _API_PREFIX
        )

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
                raise ValueError(f"no project with slug {ref!r} in organization {org!r}")
        return out

    async def project_id_map(self, org: str) -> dict[str, str]:
        """The organization's ``slug -> id`` map, from the cache when it is there."""
        known = self._project_ids.get(check_slug(org, "org"))
        return known if known is not None else await self.load_project_ids(org)

    async def load_project_ids(self, org: str) -> dict[str, str]:
        """Fetch (again) the organization's ``slug -> id`` map that :meth:`project_ids` uses."""
        mapping: dict[str, str] = {}
        refs: Paginator[_ProjectRef] = self.paginate(
            "/organizations/{org}/projects/", path_params={"org": org}, type=_ProjectRef
        )
        async for ref in refs:
            mapping[ref.slug] = ref.id
        self._project_ids[org] = mapping
        return mapping

    @property
    def renamed_projects(self) -> dict[tuple[str, str], str]:
        """``(org, old slug) -> new slug`` for every renamed project this client followed."""
        return dict(self._renamed)

    def _follow_move(self, error: ProjectMoved, path_params: Mapping[str, str | int]) -> bool:
        """Remember a renamed project, if the answer names a usable new same-origin path."""
        org, old = path_params.get("org", self.org), path_params.get("project")
        new = error.new_slug
        target = error.new_url
        if org is None or old is None or new is None:
            return False
        if target is not None and (not target.startswith("/") or target.startswith("//")):
            return False
        try:
            check_slug(new, "project")
        except ValueError:
            return False
        key = (str(org), str(old))
        if self._renamed.get(key) == new:
            return True  # another task learnt it first
        logger.warning("project %s/%s was renamed to %s; following the new path", org, old, new)
        self._renamed[key] = new
        return True

    async def _send_following(
        self,
        method: str,
        path: str,
        path_params: Mapping[str, str | int] | None,
        send: Callable[[URL], Awaitable[T]],
        root: URL | None = None,
    ) -> T:
        """``send(url)``; a read of a renamed project is sent once more to its new path."""
        url = self.url_for(path, path_params, root=root)
        try:
            return await send(url)
        except ProjectMoved as moved:
            if method not in _SAFE_METHODS or "{project}" not in path or not path_params:
                raise
            if not self._follow_move(moved, path_params):
                raise
        return await send(self.url_for(path, path_params, root=root))

    def url_for(
        self,
        path: str,
        path_params: Mapping[str, str | int] | None = None,
        *,
        root: URL | None = None,
    ) -> URL:
        """The absolute URL of an API path such as ``/organizations/{org}/issues/``.

        An organization's paths go to its region once known; ``root`` (an API root such as
        ``https://de.sentry.io/api/0``) overrides both.
        """
        values: dict[str, str | int] = {}
        if self.org is not None:
            values["org"] = self.org
        if path_params:
            values.update(path_params)

        def substitute(match: re.Match[str]) -> str:
            name = match.group(1)
            if name not in values:
                raise ValueError(f"path {path!r} needs a value for {{{name}}}")
            text = check_slug(values[name], name)
            if name == "project" and "org" in values:
                text = self._renamed.get((str(values["org"]), text), text)
            return quote(text, safe="")

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
        return root.with_path(root.path + concrete, encoded=True)

    async def send(
        self,
        method: str,
        path: str,
        *,
        path_params: Mapping[str, str | int] | None = None,
        params: Params | Iterable[tuple[str, str]] | None = None,
        json: Any = None,
        idempotent: bool | None = None,
        retry: RetryPolicy | None = None,
    ) -> Response:
        """Send one request (with retries) and return the whole response, undecoded."""
        method, options = self._call(method, path, params, json, idempotent)

        async def once(url: URL) -> Response:
            return await self._get_transport().send(method, url, **options, retry=retry)

        return await self._send_following(method, path, path_params, once)

    def _call(
        self,
        method: str,
        path: str,
        params: Params | Iterable[tuple[str, str]] | None,
        json: Any,
        idempotent: bool | None,
    ) -> tuple[str, _CallOptions]:
        """What :meth:`send` and :meth:`request` hand the transport for one call."""
        method = method.upper()
        return method, {
            "group": endpoint_group(method, path),
            "params": encode_params(params),
            "body": msgspec.json.encode(json) if json is not None else None,
            "idempotent": method in _SAFE_METHODS if idempotent is None else idempotent,
        }

    @asynccontextmanager
    async def stream(
        self,
        path: str,
        *,
        path_params: Mapping[str, str | int] | None = None,
        params: Params | Iterable[tuple[str, str]] | None = None,
    ) -> AsyncIterator[AsyncIterator[bytes]]:
        """``async with sentry.stream(path) as chunks: async for chunk in chunks: ...``: a
        GET's body as it arrives, inflated, with no size cap (see :meth:`download`). An error
        is raised from the iteration; leaving the block early stops the download."""
        pump, chunks = self._piped_download(path, path_params, params)
        raised: Exception | None = None
        async with anyio.create_task_group() as tg:
            tg.start_soon(pump)
            try:
                yield chunks
            except Exception as exc:
                raised = exc  # raised below as it is, not wrapped in the group's ExceptionGroup
            finally:
                tg.cancel_scope.cancel()  # nothing outlives the block
                await chunks.aclose()
        if raised is not None:
            raise raised

    def _piped_download(
        self,
        path: str,
        path_params: Mapping[str, str | int] | None,
        params: Params | Iterable[tuple[str, str]] | None,
    ) -> tuple[Callable[[], Coroutine[Any, Any, None]], AsyncGenerator[bytes, None]]:
        """A download to run (in a task of the caller's choosing), and the chunks it hands
        over one at a time; the chunks end with the download's error, if it failed."""
        send, receive = anyio.create_memory_object_stream[bytes](0)
        failed: list[Exception] = []

        async def pump() -> None:
            try:
                async with send:
                    await self.download(path, send.send, path_params=path_params, params=params)
            except anyio.BrokenResourceError:
                pass  # the consumer left
            except Exception as exc:  # handed to the consumer, whose iteration raises it
                failed.append(exc)

        async def chunks() -> AsyncGenerator[bytes, None]:
            async with receive:
                async for chunk in receive:
                    yield chunk
            if failed:
                raise failed[0]

        return pump, chunks()

    async def download(
        self,
        path: str,
        destination: str | os.PathLike[str] | Callable[[bytes], Awaitable[None]],
        *,
        path_params: Mapping[str, str | int] | None = None,
        params: Params | Iterable[tuple[str, str]] | None = None,
    ) -> int:
        """Stream a GET's body to a file (a path) or to an async callable, chunk by chunk,
        with no size cap; returns the number of bytes. Failures before the first byte are
        retried as usual, none after."""
        url = self.url_for(path, path_params)
        total = 0
        async with AsyncExitStack() as stack:
            if callable(destination):
                write = destination
            else:
                file = await stack.enter_async_context(await anyio.open_file(destination, "wb"))

                async def write(chunk: bytes) -> None:
                    await file.write(chunk)

            async def count(chunk: bytes) -> None:
                nonlocal total
                total += len(chunk)
                await write(chunk)

            group = endpoint_group("GET", path)
            await self._get_transport().download(
                "GET", url, group=group, params=encode_params(params), sink=count
            )
        return total

    @overload
    async def request(
        self,
        method: str,
        path: str,
        *,
        type: type[T],
        path_params: Mapping[str, str | int] | None = ...,
        params: Params | Iterable[tuple[str, str]] | None = ...,
        json: Any = ...,
        idempotent: bool | None = ...,
    ) -> T: ...

    @overload
    async def request(
        self,
        method: str,
        path: str,
        *,
        path_params: Mapping[str, str | int] | None = ...,
        params: Params | Iterable[tuple[str, str]] | None = ...,
        json: Any = ...,
        idempotent: bool | None = ...,
    ) -> Any: ...

    async def request(
        self,
        method: str,
        path: str,
        *,
        type: Any = Any,
        path_params: Mapping[str, str | int] | None = None,
        params: Params | Iterable[tuple[str, str]] | None = None,
        json: Any = None,
        idempotent: bool | None = None,
    ) -> Any:
        """Send a request and decode its JSON body into ``type`` (``None`` for an empty body).

        A success body that is not well-formed JSON (cut short, a proxy's HTML page) counts
        as a failed attempt and is retried when the request is safe to repeat.
        """

        def parse(response: Response) -> Any:
            return self._decode_or_resend(response, type, None)

        method, options = self._call(method, path, params, json, idempotent)

        async def once(url: URL) -> Any:
            return await self._get_transport().send_decoded(method, url, **options, decode=parse)

        return await self._send_following(method, path, path_params, once)

    def decode(self, response: Response, type_: type[T] | Any) -> T:
        """Decode a response body, turning a mismatch into a :class:`DecodeError`."""
        result: T = _decode(response, type_, resend=False)
        return result

    def _decode_or_resend(self, response: Response, type_: Any, empty: Any) -> Any:
        """Decode, or ``empty`` for a blank body; malformed JSON raises :class:`MalformedBody`."""
        if not response.body.strip():
            return empty
        return _decode(response, type_, resend=True)

    @overload
    def paginate(
        self,
        path: str,
        *,
        type: type[T],
        path_params: Mapping[str, str | int] | None = ...,
        params: Params | Iterable[tuple[str, str]] | None = ...,
        page_size: int | None = ...,
        page_size_param: str | None = ...,
        max_page_size: int = ...,
        cursor: str | None = ...,
        skip: int = ...,
        limit: int | None = ...,
        max_pages: int | None = ...,
        envelope: Callable[[Any], tuple[list[Any], Any]] | None = ...,
        page_type: Callable[[Any], Any] | None = ...,
        unpaginated: bool = ...,
        max_stale_pages: int = ...,
        prefetch: int = ...,
        item_id: Callable[[Any], Hashable] | None = ...,
        lazy_params: Callable[[], Awaitable[Params]] | None = ...,
        root: URL | None = ...,
    ) -> Paginator[T]: ...

    @overload
    def paginate(
        self,
        path: str,
        *,
        type: Any = ...,
        path_params: Mapping[str, str | int] | None = ...,
        params: Params | Iterable[tuple[str, str]] | None = ...,
        page_size: int | None = ...,
        page_size_param: str | None = ...,
        max_page_size: int = ...,
        cursor: str | None = ...,
        skip: int = ...,
        limit: int | None = ...,
        max_pages: int | None = ...,
        envelope: Callable[[Any], tuple[list[Any], Any]] | None = ...,
        page_type: Callable[[Any], Any] | None = ...,
        unpaginated: bool = ...,
        max_stale_pages: int = ...,
        prefetch: int = ...,
        item_id: Callable[[Any], Hashable] | None = ...,
        lazy_params: Callable[[], Awaitable[Params]] | None = ...,
        root: URL | None = ...,
    ) -> Paginator[Any]: ...

    def paginate(
        self,
        path: str,
        *,
        type: Any = Any,
        path_params: Mapping[str, str | int] | None = None,
        params: Params | Iterable[tuple[str, str]] | None = None,
        page_size: int | None = 100,
        page_size_param: str | None = "per_page",
        max_page_size: int = 100,
        cursor: str | None = None,
        skip: int = 0,
        limit: int | None = None,
        max_pages: int | None = None,
        envelope: Callable[[Any], tuple[list[Any], Any]] | None = None,
        page_type: Callable[[Any], Any] | None = None,
        unpaginated: bool = False,
        max_stale_pages: int = DEFAULT_MAX_STALE_PAGES,
        prefetch: int = 0,
        item_id: Callable[[Any], Hashable] | None = None,
        lazy_params: Callable[[], Awaitable[Params]] | None = None,
        root: URL | None = None,
    ) -> Paginator[Any]:
        """A lazy :class:`Paginator` over a list endpoint; nothing is sent until iterated.

        ``type`` is the item type (``msgspec.Raw`` for undecoded item bytes; the paginator's
        :meth:`~Paginator.raw` and :meth:`~Paginator.as_type` switch it later). For endpoints
        whose body is an object wrapping the list (Discover's ``{"data", "meta"}``), pass
        ``page_type`` (item type -> the body's type) and ``envelope`` (body -> ``(items,
        meta)``).

        A page holding far more items than ``page_size`` is an :class:`OversizedPage` error.
        ``unpaginated=True`` is for requests answered whole on purpose: it sends no page size
        and checks none (implied by ``noPagination``/``all_projects`` parameters).
        ``prefetch=n`` fetches up to ``n`` pages ahead while the consumer works. With
        ``item_id`` (item -> its id), pages whose ids were all seen count as bringing nothing.
        ``lazy_params`` adds parameters that need a request of their own (project slugs
        resolved to ids), computed once, when the first page is fetched; ``root`` (an API
        root) sends the requests to another region.
        """
        if page_size is not None and page_size_param is not None:
            check_page_size(page_size, "page_size", max_page_size)
        base = encode_params(params)
        if unpaginated or any(
            key in _UNPAGINATED_SWITCHES and value not in ("0", "false") for key, value in base
        ):
            page_size = None
        if any(key in ("cursor", page_size_param) for key, _ in base):
            raise ValueError(
                f"pass cursor= and page_size= to paginate(), not as query parameters ({path})"
            )
        url = self.url_for(path, path_params, root=root)
        group = endpoint_group("GET", path)
        description = f"GET {url}"
        resolved: list[list[tuple[str, str]]] = []

        def fetcher(item_type: Any) -> PageFetcher:
            decode_type = list[item_type] if page_type is None else page_type(item_type)

            async def fetch(page_cursor: str | None, size: int | None) -> RawPage:
                query = list(base)
                if lazy_params is not None:
                    if not resolved:
                        resolved.append(encode_params(await lazy_params()))
                    query.extend(resolved[0])
                if size is not None and page_size_param is not None:
                    query.append((page_size_param, str(size)))
                if page_cursor is not None:
                    query.append(("cursor", page_cursor))

                def parse(response: Response) -> tuple[Response, Any]:
                    return response, self._decode_or_resend(response, decode_type, [])

                async def once(page_url: URL) -> tuple[Response, Any]:
                    return await self._get_transport().send_decoded(
                        "GET", page_url, group=group, params=query, idempotent=True, decode=parse
                    )

                response, body = await self._send_following("GET", path, path_params, once, root)
                if envelope is not None:
                    items, meta = envelope(body)
                else:
                    items, meta = body, None
                headers = response.headers
                return RawPage(
                    items=items,
                    link=headers.get("Link"),
                    hits=header_int(headers.get("X-Hits")),
                    max_hits=header_int(headers.get("X-Max-Hits")),
                    rate_limit=response.rate_limit,
                    meta=meta,
                    fingerprint=body_fingerprint(response.body),
                    direct_hit=headers.get("X-Sentry-Direct-Hit") == "1",
                )

            return fetch

        return Paginator(
            fetcher(type),
            retype=fetcher,
            page_size=page_size if page_size_param is not None else None,
            cursor=cursor,
            skip=skip,
            limit=limit,
            max_pages=max_pages,
            description=description,
            max_stale_pages=max_stale_pages,
            prefetch=prefetch,
            item_id=item_id,
        )


def _decode(response: Response, type_: Any, *, resend: bool) -> Any:
    """The body as ``type_``, or a :class:`DecodeError`; with ``resend``, a body that is not
    even JSON is a :class:`MalformedBody` instead, so that the transport tries again."""
    try:
        return _decoder(cast(Hashable, type_)).decode(response.body)
    except _UNDECODABLE as exc:
        error = DecodeError(
            str(exc), method=response.method, url=str(response.url), type_name=_type_name(type_)
        )
        if resend and isinstance(exc, msgspec.DecodeError) and not isinstance(
            exc, msgspec.ValidationError
        ):
            error.__cause__ = exc
            raise MalformedBody(error) from exc
        raise error from exc


def _normalise_base_url(value: str, allow_insecure: bool) -> URL:
    try:
        url = URL(value.strip())
    except (TypeError, ValueError) as exc:
        raise ValueError(f"base_url is not a URL: {value!r}") from exc
    if url.scheme not in ("http", "https") or not url.host:
        raise ValueError(f"base_url must be an absolute http(s) URL (got {value!r})")
    if url.user or url.password:
        raise ValueError("base_url must not carry credentials; pass the token instead")
    if url.scheme == "http" and not allow_insecure and not is_loopback(url.host):
        raise ValueError(
            f"refusing plain http:// for {url.host}: the token would travel unencrypted "
            "(pass allow_insecure_http=True to override)"
        )
    path = url.path.rstrip("/")
    if path.endswith(_API_PREFIX):
        path = path[: -len(_API_PREFIX)]
    return url.with_path(path or "/").with_query(None).with_fragment(None)
