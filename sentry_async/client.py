"""``SentryClient``: configuration, the session's lifetime, and the two generic entry points.

Every resource method is a few lines over :meth:`SentryClient.request` and
:meth:`SentryClient.paginate`; both are public, so endpoints this library does not wrap
yet are one call away, with the same limiter, retries, errors and pagination.
"""

from __future__ import annotations

import asyncio
import logging
import os
import platform
from collections.abc import (
    Awaitable,
    Callable,
    Hashable,
    Iterable,
    Mapping,
)
from types import TracebackType
from typing import (
    TYPE_CHECKING,
    Any,
    TypedDict,
    TypeVar,
    overload,
)

import aiohttp
import msgspec
from yarl import URL

from ._decoding import decode_body, no_body
from ._downloads import Downloads
from ._network import SSLSetting, cleanup_closed, tls
from ._paging import page_fetchers
from ._protocol.cursors import DEFAULT_MAX_STALE_PAGES
from ._protocol.errors import Redactor
from ._protocol.hosts import (
    DEFAULT_BASE_URL,
    endpoint_group,
    origin,
)
from ._protocol.org_tokens import OrgTokenClaims, org_token_claims, server_refusal
from ._protocol.params import (
    SIZED_SWITCHES,
    Params,
    check_page_size,
    check_slug,
    encode_params,
    unpaginated_switch,
)
from ._protocol.proxies import (
    ENVIRONMENT,
    FromEnvironment,
    proxy_settings_or_error,
    safe_proxy_url,
)
from ._protocol.retry import RetryPolicy
from ._routing import SAFE_METHODS, Routing, base_url_or_error, trusted_urls_or_error
from ._timeouts import Timeouts
from ._transport import DEFAULT_MAX_BODY_SIZE, Response, Secret, Transport
from ._version import __version__
from .api._groups import GeneratedGroups
from .errors import ClientClosed, WrongEventLoop
from .hooks import Hooks, HookSet
from .limiter import RateLimiter
from .pagination import PageFetcher, Paginator, RawPage, ReadAheads

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

_DEFAULT_TIMEOUTS = Timeouts()
"""``timeout=``'s default, told apart by identity: with a ``session`` passed in and no
``timeout``, the session's own ``ClientTimeout`` applies."""


class _CallOptions(TypedDict):
    group: str
    params: list[tuple[str, str]]
    body: bytes | None
    idempotent: bool


def _asyncio_loop() -> asyncio.AbstractEventLoop:
    """The running asyncio loop; off asyncio (trio, or no loop at all), the library's error
    naming the cause rather than asyncio's bare ``RuntimeError``."""
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        raise WrongEventLoop(
            "SentryClient runs on asyncio (aiohttp needs it), and no asyncio event loop is "
            "running here: call it from asyncio code (trio and other loops are not supported)"
        ) from None


class SentryClient(GeneratedGroups, Routing, Downloads):
    """An async client for one Sentry installation, to be used as ``async with``.

    Besides the hand-written resources below, every other operation in Sentry's API spec
    is a generated method on a group named after its tag (``client.releases``,
    ``client.teams``, ...); a group's module is imported the first time it is used.

    ``token`` defaults to ``$SENTRY_AUTH_TOKEN``; ``base_url`` to ``$SENTRY_URL``, an
    organization token's own server, or ``https://sentry.io`` (region hosts such as
    ``https://de.sentry.io`` and self-hosted installs, with or without a path prefix, work
    the same); an organization token is refused on another server than its own or its
    region's, as sentry-cli refuses it, and names the default ``org``. Plain ``http://``
    is refused for anything but loopback unless ``allow_insecure_http=True``: the token
    would travel in clear text.

    ``max_body_size`` caps a body read into memory, after decompression (``None``: no
    cap); a larger one is a :class:`ResponseTooLarge`, not retried. :meth:`download`
    streams a large binary body instead, with no cap.

    A ``session`` passed in is used as it is, its ``ClientTimeout`` included unless
    ``timeout`` is passed too, except that aiohttp's own silent resend of a
    GET/PUT/DELETE whose pooled connection dropped is turned off on it (it would resend
    merges and discards behind the retry policy's back; see ``disable_silent_resend``).
    A session made with aiohttp's own ``proxy=``/``proxy_auth=`` is refused: the client
    chooses each request's proxy itself (``proxy`` below), and aiohttp cannot send a
    request direct past a session's proxy.

    ``rate``/``burst`` pace requests per endpoint group until Sentry's headers say more;
    ``max_concurrency`` caps in-flight requests per group (``None``: 25). One limiter
    serves every task that shares the client; a ``limiter`` passed in (shared with other
    clients) keeps its own, so these three are refused with it.

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
        timeout: Timeouts | float | None = _DEFAULT_TIMEOUTS,
        retry: RetryPolicy | None = None,
        rate: float | None = None,
        burst: float | None = None,
        max_concurrency: int | None = None,
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
        secret = _secret_token(token)
        proxied = proxy_settings_or_error(proxy, os.environ)
        # From here on no local holds the token or the proxy URL (its password): a refused
        # option's traceback, printed with its frames' locals (sentry-sdk, rich, pytest
        # --showlocals), must show neither. So both are refused from here, not where read.
        del token, proxy
        if isinstance(secret, TypeError):
            raise secret
        self._token = secret
        if self._token is not None and not _is_one_word(self._token):
            raise ValueError("the auth token must not contain spaces or control characters")
        if isinstance(proxied, Exception):
            raise proxied
        self._proxy = proxied
        self._redact = _redaction(self._token)
        """Blanks the token out of the errors built from a body or a cursor outside the
        transport, and of the API root hook events show. Holds no reference to the client."""
        claims = org_token_claims(self._token.reveal()) if self._token is not None else None
        source = "base_url"
        if base_url is None:
            base_url, source = os.environ.get("SENTRY_URL") or None, "$SENTRY_URL"
        if base_url is None:
            # An organization token names its server: sent there, as sentry-cli does. One
            # made without system.url-prefix names only its region (url: null).
            made_for = claims.url or claims.region_url if claims is not None else None
            base_url, source = made_for or DEFAULT_BASE_URL, "token" if made_for else ""
        # No local holds the base URL or a trusted host either, which may carry the token
        # (https://TOKEN@host): refused from here, with it blanked out of the message.
        checked = base_url_or_error(
            base_url, allow_insecure_http, "its URL" if source == "token" else "base_url"
        )
        trusted = trusted_urls_or_error(trusted_hosts, allow_insecure_http)
        del base_url, trusted_hosts
        if isinstance(checked, Exception):
            if source == "token":
                raise type(checked)(f"the organization token's own server: {checked}")
            raise checked
        if claims is not None and source in ("base_url", "$SENTRY_URL"):
            refusal = server_refusal(claims, checked)
            if refusal is not None:
                raise ValueError(refusal if source == "base_url" else f"{source}: {refusal}")
        self.base_url = checked
        self._allow_insecure = allow_insecure_http
        self.api_root = self.api_root_of(self.base_url)
        self.org = check_slug(org, "org") if org is not None else _token_org(claims)
        if session is not None and timeout is _DEFAULT_TIMEOUTS:
            self.timeouts = Timeouts.of_session(session.timeout)
        else:
            self.timeouts = Timeouts.of(timeout)
        self.retry = retry or RetryPolicy()
        self.limiter = _limiter(limiter, rate=rate, burst=burst, max_concurrency=max_concurrency)
        self._max_connections = _checked_max_connections(max_connections)
        if max_body_size is not None and max_body_size < 1:
            raise ValueError("max_body_size must be a positive number of bytes (or None)")
        self._max_body_size = max_body_size
        self._user_agent = _checked_user_agent(user_agent) or (
            f"sentry-async/{__version__} aiohttp/{aiohttp.__version__} "
            f"python/{platform.python_version()}"
        )
        self._proxy.check_plain_http(self.base_url, allow_insecure_http)
        self._trusted: set[tuple[str, str, int | None]] = {origin(self.base_url)}
        if isinstance(trusted, Exception):
            raise trusted
        for trusted_url in trusted:
            self._proxy.check_plain_http(trusted_url, allow_insecure_http)
            self._trusted.add(origin(trusted_url))
        self._trusted_urls: list[URL] = trusted
        self._hooks = HookSet.of(hooks, redact=self._redact)
        self._trace_configs = list(trace_configs)
        if session is not None and (ssl is not None or self._trace_configs):
            raise ValueError(
                "ssl= and trace_configs= configure the session this client creates; "
                "set them on your own session instead"
            )
        if session is not None:
            _refuse_a_session_proxy(session)
        self._ssl = tls(ssl)
        self._session = session
        self._owns_session = session is None
        self._view: aiohttp.ClientSession | None = None
        self._transport: Transport | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        """The event loop the session was made on: the only one it can serve."""
        self._region_roots: dict[str, URL] = {}
        # Project slugs resolved to ids (and whether the user can access each) per
        # organization, and renamed projects (old -> new).
        self._project_ids: dict[str, dict[str, str]] = {}
        self._project_access: dict[str, dict[str, bool | None]] = {}
        self._project_loads = {}
        self._renamed: dict[tuple[str, str], str] = {}
        self._urls: dict[tuple[object, ...], URL] = {}
        # The regions of /users/me/regions/ (name, base URL), once asked.
        self.regions: list[tuple[str, URL]] | None = None
        self._closed = False
        self._read_aheads = ReadAheads()
        """The read-aheads of this client's walks: close() ends them before the requests."""
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
        # A client refused half-way through __init__ is shown in a traceback's locals too.
        auth = "token set" if getattr(self, "_token", None) is not None else "no token"
        return f"<SentryClient {getattr(self, 'base_url', '(no base URL yet)')} ({auth})>"

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
        """End the requests in flight (each raises :class:`ClientClosed`) and close the
        session if this client created it; idempotent. The read-ahead of a walk no consumer
        is waiting on (one left by ``break`` that the event loop has not finalized yet) is
        dropped first, its requests ``abandoned`` rather than failed.

        Called from another event loop than the client's own, it releases a client whose
        loop has ended; while that loop still runs, the session is that loop's to close
        (:class:`WrongEventLoop`).
        """
        loop = self._loop
        if (
            loop is not None
            and not self._closed
            and loop is not _asyncio_loop()
            and not loop.is_closed()
        ):
            raise self._wrong_loop(loop)
        self._closed = True
        # A walk left by ``break`` just before this (the loop finalizes it only later) drops
        # its read-ahead as abandoned first, rather than see its request fail as closed.
        await self._read_aheads.end()
        if self._transport is not None:
            self._transport.close()
        if self._view is not None:
            await self._view.close()  # not the pool it shares with your session
        if self._session is not None and self._owns_session and not self._session.closed:
            await self._session.close()

    @property
    def closed(self) -> bool:
        return self._closed

    def _get_transport(self) -> Transport:
        """The transport of every request: one loop lookup and identity check per call."""
        transport = self._transport
        if transport is None or self._closed or self._loop is not _asyncio_loop():
            transport = self._start_transport()
        return transport

    def _start_transport(self) -> Transport:
        """Make the session and transport on first use, binding the client to this event
        loop; refuse a closed client, or a call from another loop, before anything is sent."""
        if self._closed:
            raise ClientClosed("this SentryClient is closed")
        loop = _asyncio_loop()
        bound = self._loop
        if bound is not None and self._transport is not None:
            if loop is not bound:
                raise self._wrong_loop(bound)
            return self._transport
        if self._session is None:
            connector = aiohttp.TCPConnector(
                limit=self._max_connections,
                ttl_dns_cache=300,
                enable_cleanup_closed=cleanup_closed(),
                ssl=self._ssl,
            )
            self._session = aiohttp.ClientSession(
                connector=connector,
                timeout=self.timeouts.to_aiohttp(),
                trust_env=False,
                trace_configs=self._trace_configs or None,
                auto_decompress=False,  # the transport inflates, under max_body_size
            )
        session = self._session
        if not self._owns_session and session.trust_env:
            session = self._view = _without_environment(session)
        self._transport = Transport(
            session,
            token=self._token,
            limiter=self.limiter,
            retry=self.retry,
            timeouts=self.timeouts,
            trusted_origins=self._trusted,
            headers={"User-Agent": self._user_agent, "Accept": "application/json"},
            proxy=self._proxy,
            hooks=self._hooks,
            max_body_size=self._max_body_size,
        )
        self._loop = loop
        return self._transport

    def _wrong_loop(self, loop: asyncio.AbstractEventLoop) -> WrongEventLoop:
        """The error of a call from an event loop other than the client's ``loop``."""
        ended = (
            "; that loop has ended: `await client.close()` releases this client from any loop"
            if loop.is_closed()
            else ""
        )
        return WrongEventLoop(
            "this SentryClient is bound to the event loop it first sent on, and this call "
            "runs on another one (a second asyncio.run(), another thread): create one client "
            f"per event loop{ended}"
        )

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
            "idempotent": method in SAFE_METHODS if idempotent is None else idempotent,
        }

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
        """Send a request and decode its JSON body into ``type`` (``None`` for an empty body
        where ``type`` allows it, as ``Any`` and ``X | None`` do; for any other type an empty
        body is a :class:`DecodeError`, retried as a body cut short is).

        A success body that is not well-formed JSON (cut short, a proxy's HTML page) counts
        as a failed attempt and is retried when the request is safe to repeat.
        """

        def parse(response: Response) -> Any:
            return self._decode_or_resend(response, type, None)

        return await self._request_parsed(
            method,
            path,
            parse,
            path_params=path_params,
            params=params,
            json=json,
            idempotent=idempotent,
        )

    async def _request_parsed(
        self,
        method: str,
        path: str,
        parse: Callable[[Response], T],
        *,
        path_params: Mapping[str, str | int] | None = None,
        params: Params | Iterable[tuple[str, str]] | None = None,
        json: Any = None,
        idempotent: bool | None = None,
    ) -> T:
        """:meth:`request` with its own ``parse`` of the success, which may raise
        :class:`MalformedBody` to have a body that is not even JSON resent."""
        method, options = self._call(method, path, params, json, idempotent)

        async def once(url: URL) -> T:
            return await self._get_transport().send_decoded(method, url, **options, decode=parse)

        return await self._send_following(method, path, path_params, once)

    def decode(self, response: Response, type_: type[T] | Any) -> T:
        """Decode a response body, turning a mismatch into a :class:`DecodeError`."""
        result: T = decode_body(response, type_, resend=False)
        return result

    def _decode_or_resend(self, response: Response, type_: Any, empty: Any) -> Any:
        """Decode, or ``empty`` for a blank body where ``type_`` allows it (``None`` only for a
        type with room for it); malformed JSON, or no body at all for a type that needs one,
        raises :class:`MalformedBody`, which is resent as a body cut short."""
        if not response.body.strip():
            return empty if empty is not None else no_body(response, type_)
        return decode_body(response, type_, resend=True)

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
        prefetch: int | None = ...,
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
        prefetch: int | None = ...,
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
        prefetch: int | None = None,
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
        ``unpaginated=True`` is for requests answered in one response on purpose: it follows
        no ``Link``, sends no page size and checks none. ``noPagination`` with any non-empty
        value implies it (Sentry reads ``"0"`` as on), except that ``page_size`` is still
        sent there: Sentry answers at most that many rows. ``all_projects=1`` sends no page
        size either, but asks for every row: a ``Link`` a server sends anyway (one without
        the switch) is followed to the end rather than the walk cut at its first page.
        ``prefetch=n`` fetches up to ``n`` pages ahead while the consumer works (``0``: one
        at a time; by default, two once the consumer has asked for a second page, while no
        other walk is in progress on the event loop). With
        ``item_id`` (item -> its id), pages whose ids were all seen count as bringing nothing.
        ``lazy_params`` adds parameters that need a request of their own (project slugs
        resolved to ids), computed once, when the first page is fetched; ``root`` (an API
        root) sends the requests to another region.
        """
        if page_size is not None and page_size_param is not None:
            check_page_size(page_size, "page_size", max_page_size)
        base = encode_params(params)
        if any(key in ("cursor", page_size_param) for key, _ in base):
            raise ValueError(
                f"pass cursor= and page_size= to paginate(), not as query parameters ({path})"
            )
        switch = unpaginated_switch(base)
        whole = unpaginated or switch is not None
        if whole:
            sized = not unpaginated and switch in SIZED_SWITCHES
            if sized and page_size is not None and page_size_param is not None:
                base.append((page_size_param, str(page_size)))
            page_size = None
        description = f"GET {self.url_for(path, path_params, root=root)}"

        fetcher = page_fetchers(
            self,
            path,
            path_params,
            root=root,
            base=base,
            lazy_params=lazy_params,
            page_size_param=page_size_param,
            page_type=page_type,
            envelope=envelope,
        )
        if unpaginated or switch in SIZED_SWITCHES:
            fetcher = _one_response(fetcher)
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
            _redact=self._redact,
            _reads=self._read_aheads,
        )


def _one_response(fetcher: Callable[[Any], PageFetcher]) -> Callable[[Any], PageFetcher]:
    """Fetchers whose pages carry no ``Link``: a request answered in one response on purpose
    is the whole stream, whatever cursors a server sends along (Sentry sends none)."""

    def one(item_type: Any) -> PageFetcher:
        inner = fetcher(item_type)

        async def fetch(cursor: str | None, size: int | None) -> RawPage:
            return msgspec.structs.replace(await inner(cursor, size), link=None)

        return fetch

    return one


def _limiter(
    limiter: RateLimiter | None,
    *,
    rate: float | None,
    burst: float | None,
    max_concurrency: int | None,
) -> RateLimiter:
    """The client's limiter: the one passed in, or one of these settings. Both at once
    would drop the settings without a word."""
    if limiter is None:
        if max_concurrency is None:
            return RateLimiter(rate=rate, burst=burst)
        return RateLimiter(rate=rate, burst=burst, max_concurrency=max_concurrency)
    given = [
        name
        for name, value in (("rate", rate), ("burst", burst), ("max_concurrency", max_concurrency))
        if value is not None
    ]
    if given:
        raise ValueError(
            f"{', '.join(given)} shape the limiter this client creates; with limiter= set "
            "them on that RateLimiter instead"
        )
    return limiter


def _redaction(token: Secret | None) -> Callable[[str], str]:
    """What blanks ``token`` out of text in every form a server may echo it, its pattern
    compiled at the first use (most clients never need it)."""
    redactor: Redactor | None = None

    def redact(text: str) -> str:
        nonlocal redactor
        if redactor is None:
            redactor = Redactor(token.reveal() if token is not None else None)
        return redactor.text(text)

    return redact


def _secret_token(token: object) -> Secret | TypeError | None:
    """``token`` (else ``$SENTRY_AUTH_TOKEN``) stripped, ``None`` when there is none, or the
    error refusing one that is not a string (``bytes`` read from a file): returned, for
    the caller to raise once no local holds the value."""
    if token is not None and not isinstance(token, str):
        return TypeError(f"token must be a string or None (got {type(token).__name__})")
    raw = token if isinstance(token, str) else os.environ.get("SENTRY_AUTH_TOKEN")
    raw = raw.strip() if raw is not None else None
    return Secret(raw) if raw else None


def _token_org(claims: OrgTokenClaims | None) -> str | None:
    """The organization an organization token names, as the default ``org``; none when
    it names none a path could hold."""
    if claims is None or claims.org is None:
        return None
    try:
        return check_slug(claims.org, "org")
    except (TypeError, ValueError):
        return None


def _is_one_word(token: Secret) -> bool:
    """No space or control character: the token goes into a header as it is."""
    value = token.reveal()
    return value.isprintable() and not any(ch.isspace() for ch in value)


def _checked_user_agent(user_agent: object) -> str | None:
    """``user_agent=`` as one header value: else aiohttp fails on the first request, deep
    in frames that hold the ``Authorization`` header (or a CR/LF would add a header)."""
    if user_agent is None:
        return None
    if not isinstance(user_agent, str):
        raise TypeError(f"user_agent must be a string or None (got {type(user_agent).__name__})")
    if not user_agent.strip() or any(ch in user_agent for ch in "\r\n\x00"):
        raise ValueError(
            f"user_agent must be a non-empty string without line breaks (got {user_agent!r})"
        )
    return user_agent


def _checked_max_connections(count: object) -> int:
    """``max_connections=`` as aiohttp's pool size: below 1 a request would wait for a slot
    for ever, whatever the timeouts (and aiohttp reads 0 as no limit at all)."""
    if isinstance(count, bool) or not isinstance(count, int):
        raise TypeError(f"max_connections must be an integer (got {type(count).__name__})")
    if count < 1:
        raise ValueError(f"max_connections must be at least 1 (got {count})")
    return count


def _refuse_a_session_proxy(session: aiohttp.ClientSession) -> None:
    """A session made with ``proxy=`` (or ``proxy_auth=``) is refused: aiohttp reads a
    request's ``proxy=None`` as "the session's proxy", so the client could send nothing
    direct (``proxy=None``, ``NO_PROXY``), and a plain http token could reach that proxy
    without the check that keeps it on this machine."""
    default = getattr(session, "_default_proxy", None)  # aiohttp 3.10 and later
    if default is None and getattr(session, "_default_proxy_auth", None) is None:
        return
    shown = "with proxy_auth=" if default is None else safe_proxy_url(URL(str(default)))
    raise ValueError(
        f"session= has its own proxy ({shown}): the client chooses each request's proxy "
        "itself (proxy=, or HTTPS_PROXY/HTTP_PROXY/NO_PROXY); make the session without "
        "proxy= and proxy_auth=, and pass the proxy URL as SentryClient(proxy=...)"
    )


def _without_environment(session: aiohttp.ClientSession) -> aiohttp.ClientSession:
    """A view of a ``trust_env`` session that reads neither the proxy variables nor
    ``~/.netrc``: the client routes by its own ``proxy=`` (aiohttp would take the
    environment's proxy for a request the client sends direct) and sends its own
    credentials. It shares the session's connection pool, cookies, headers and timeouts."""
    return aiohttp.ClientSession(
        connector=session.connector,
        connector_owner=False,
        cookie_jar=session.cookie_jar,
        headers=session.headers,
        skip_auto_headers=session.skip_auto_headers,
        auth=session.auth,
        json_serialize=session.json_serialize,
        version=aiohttp.HttpVersion(*session.version),
        timeout=session.timeout,
        auto_decompress=session.auto_decompress,
        requote_redirect_url=session.requote_redirect_url,
        trace_configs=session.trace_configs or None,
        trust_env=False,
    )
