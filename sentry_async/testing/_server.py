"""``FakeSentry``: the fake API on 127.0.0.1 and an ephemeral port, started and stopped."""

from __future__ import annotations

import ssl as _ssl
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime, timezone
from types import TracebackType
from typing import TYPE_CHECKING, Any

from aiohttp import web
from yarl import URL

from ._app import RateLimitPolicy, ServerState, build_app
from ._background import BackgroundLoop, shared_loop
from ._builder import BuildableDataset, DataBuilder
from ._data import SCALES, SeedConfig
from ._faults import FaultPlan
from ._recorder import RequestLog
from ._scopes import SCOPES

if TYPE_CHECKING:
    from ..client import SentryClient

__all__ = ["FakeSentry"]

_MAX_REQUEST_LINE = 64 * 1024
_SHUTDOWN_TIMEOUT = 0.5
"""How long closing waits for a handler still running (a ``slow`` fault the client gave up
on) before cancelling it: a test's teardown must not wait out a scripted delay."""


def server_url(tls: bool, host: str, port: int) -> str:
    """The base URL of a socket the fake listens on: an IPv6 literal (``::1``) in brackets,
    or the port would read as part of it."""
    return str(URL.build(scheme="https" if tls else "http", host=host, port=port))


def _is_token(token: str) -> bool:
    """Whether ``token`` can be sent as one bearer credential: non-empty, printable, with
    no whitespace (Sentry splits the header on it)."""
    return bool(token) and not any(c.isspace() or not c.isprintable() for c in token)


def _check_keywords(
    *,
    seed: object,
    token: object,
    rate_limits: object,
    host: object,
    port: object,
    link_host: object,
    legacy_links: object,
    regions: object,
) -> None:
    """A ``ValueError`` naming the keyword, before anything starts: a wrong type would
    otherwise surface later, far from the call, or not at all."""
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise ValueError(f"seed must be an integer, got {seed!r}")
    if not isinstance(token, str) or not _is_token(token):
        # Sentry splits the Authorization header on whitespace: such a token never works.
        raise ValueError("token must be a non-empty string without spaces")
    if rate_limits is not None and not isinstance(rate_limits, RateLimitPolicy):
        raise ValueError(f"rate_limits must be a RateLimitPolicy or None, got {rate_limits!r}")
    if not isinstance(host, str) or not host:
        raise ValueError(f"host must be a non-empty string, got {host!r}")
    if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535:
        raise ValueError(f"port must be an integer from 0 to 65535, got {port!r}")
    if link_host is not None and (not isinstance(link_host, str) or not link_host):
        raise ValueError(f"link_host must be a non-empty string or None, got {link_host!r}")
    if not isinstance(legacy_links, bool):
        raise ValueError(f"legacy_links must be True or False, got {legacy_links!r}")
    if (
        isinstance(regions, (str, bytes))
        or not isinstance(regions, Sequence)
        or not all(isinstance(name, str) and name for name in regions)
        or len(set(regions)) != len(regions)
    ):
        raise ValueError(
            f"regions must be a sequence of distinct region names such as ('us', 'de'), "
            f"got {regions!r}"
        )


class FakeSentry:
    """A Sentry API double for tests, demos and benchmarks.

    ``async with FakeSentry(scale="small") as server:`` then point a client at
    ``server.url`` with ``server.token``. Data is deterministic for a ``seed`` and anchored
    to ``now`` (default: the current hour). ``faults`` scripts misbehaviour, ``requests``
    records every request, ``data`` answers "what does the server hold", ``builder`` adds
    to it. ``with server.in_thread():`` serves from a background thread instead, for
    callers on another event loop (or none).
    With ``ssl`` (a server-side ``ssl.SSLContext``) it serves https, to test private CAs.

    ``profile="older"`` plays a server from before September 2025 (multi-project refusals
    without ``global-views``, a bare-string 429 body, no rate-limit headers, no ``issue:``
    prefix on a short id).
    ``regions=("us", "de")`` plays sentry.io's regions: one port per region on the same
    host, organizations dealt out among them, ``/users/me/regions/`` listing them, and an
    organization's endpoints answering 404 outside its region.
    """

    def __init__(
        self,
        *,
        seed: int = 0,
        token: str = "fake-token",
        scale: SeedConfig | str = "default",
        now: datetime | None = None,
        rate_limits: RateLimitPolicy | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        link_host: str | None = None,
        legacy_links: bool = False,
        ssl: _ssl.SSLContext | None = None,
        profile: str = "current",
        regions: Sequence[str] = (),
    ) -> None:
        if profile not in ("current", "older"):
            raise ValueError("profile must be 'current' or 'older'")
        _check_keywords(
            seed=seed,
            token=token,
            rate_limits=rate_limits,
            host=host,
            port=port,
            link_host=link_host,
            legacy_links=legacy_links,
            regions=regions,
        )
        if isinstance(scale, str):
            if scale not in SCALES:
                raise ValueError(f"scale must be one of {sorted(SCALES)} or a SeedConfig")
            scale = SCALES[scale]
        if now is None:
            now = datetime.now(timezone.utc).replace(minute=0, second=0, microsecond=0)
        elif now.tzinfo is None:
            raise ValueError("now must be timezone-aware")
        self.token = token
        self.host = host
        self.port = port
        self._ssl = ssl
        self.data = BuildableDataset(seed, scale, now)
        self.builder = DataBuilder(self.data)
        self.faults = FaultPlan(seed)
        self._state = ServerState(
            data=self.data,
            token=token,
            faults=self.faults,
            policy=rate_limits,
            link_host=link_host,
            legacy_links=legacy_links,
            requests=RequestLog(),
            profile=profile,
        )
        self.regions = tuple(regions)
        self.data.regions = self.regions
        for org in self.data.orgs:
            org.region = self.regions[org.index % len(self.regions)] if self.regions else ""
        self._runner: web.AppRunner | None = None
        self._background: BackgroundLoop | None = None
        self.url = ""

    @property
    def requests(self) -> RequestLog:
        """Every request received, oldest first, with ``assert_called()`` and friends."""
        requests = self._state.requests
        assert isinstance(requests, RequestLog)
        return requests

    def client(self, token: str | None = None, **options: Any) -> SentryClient:
        """A ``SentryClient`` for this server (``async with server.client() as sentry:``),
        with the server's ``token`` or another one (``add_token()``).

        It goes direct unless ``proxy=`` says otherwise: the server is on this machine, and
        a proxy in the developer's environment must not route (or refuse) a test's client.
        """
        from ..client import SentryClient

        options.setdefault("proxy", None)
        return SentryClient(self.token if token is None else token, base_url=self.url, **options)

    def add_token(self, token: str, *, scopes: Iterable[str]) -> str:
        """Accept ``token`` too, holding only ``scopes`` (Sentry's names: ``"org:read"``,
        ``"event:admin"``, ...); returns it, for ``client(token=...)``.

        Its requests are refused as Sentry refuses them: 403 where the endpoint's permission
        class accepts none of its scopes for the method (``event:read`` to list issues,
        ``event:write`` to update them, ``event:admin`` to delete them, ``org:read`` for
        the organization, ``project:read`` for a project), then the checks past it
        (``discard`` wants ``event:admin``; a project's settings ``project:write``). Scopes
        are taken as given, none implying another: the permission classes list the higher
        scopes themselves, so ``org:write`` alone passes where ``org:read`` does, except at
        ``/users/me/regions/``, which accepts ``org:read`` only. The server's own ``token``
        holds every scope.
        """
        if isinstance(scopes, str):
            raise TypeError(f"scopes must be a list of scope names, not the string {scopes!r}")
        held = frozenset(scopes)
        unknown = sorted(map(str, held - SCOPES))
        if unknown:
            raise ValueError(f"unknown scopes {unknown}; Sentry's are {sorted(SCOPES)}")
        if not isinstance(token, str) or not _is_token(token):
            raise ValueError("token must be a non-empty string without spaces")
        if token in self._state.tokens:
            raise ValueError("that token is already accepted by this server")
        # Swapped in whole: a request being served on the server's thread keeps the
        # mapping it started with.
        self._state.tokens = {**self._state.tokens, token: held}
        return token

    @property
    def now(self) -> datetime:
        """The instant the data is anchored to: events are at most this recent."""
        return self.data.now

    @property
    def max_in_flight(self) -> int:
        return self._state.max_in_flight

    def max_in_flight_of(self, group: str) -> int:
        """Peak concurrency of one route group (``"GET /api/0/organizations/{org}/issues/"``)."""
        return self._state.group_max_in_flight[group]

    @property
    def rate_limits(self) -> RateLimitPolicy | None:
        return self._state.policy

    @rate_limits.setter
    def rate_limits(self, policy: RateLimitPolicy | None) -> None:
        self._state.policy = policy
        self._state.windows.clear()

    def reset_log(self) -> None:
        self._state.requests.clear()
        self._state.max_in_flight = 0
        self._state.group_max_in_flight.clear()

    async def start(self) -> None:
        if self._runner is not None:
            return
        runner = web.AppRunner(
            build_app(self._state),
            access_log=None,
            handle_signals=False,
            # Request lines over 8 KB get nginx's 414 from the app itself, as in front of
            # Sentry; aiohttp's own limit (8190 bytes, a 400) must not answer first.
            max_line_size=_MAX_REQUEST_LINE,
            shutdown_timeout=_SHUTDOWN_TIMEOUT,
        )
        await runner.setup()
        site = web.TCPSite(runner, self.host, self.port, reuse_address=True, ssl_context=self._ssl)
        await site.start()
        server = site._server
        assert server is not None
        sockets = getattr(server, "sockets", None) or []
        self.port = sockets[0].getsockname()[1]
        self.url = server_url(self._ssl is not None, self.host, self.port)
        self.data.base_url = self.url
        self._runner = runner
        for n, name in enumerate(self.regions):
            port = self.port
            if n:
                extra = web.TCPSite(runner, self.host, 0, reuse_address=True, ssl_context=self._ssl)
                await extra.start()
                assert extra._server is not None
                port = getattr(extra._server, "sockets", [])[0].getsockname()[1]
            self._state.region_ports[port] = name
            self.data.region_urls[name] = server_url(self._ssl is not None, self.host, port)

    async def close(self) -> None:
        if self._background is not None:
            self._close_background()
        elif self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    def start_in_thread(self, loop: BackgroundLoop | None = None) -> None:
        """Start serving from a background thread's event loop (a shared one by default).

        Then the server answers whatever the calling thread does: any event loop, any
        async test plugin, or plain blocking code. Stop it with ``close_in_thread()``.
        """
        if self._runner is not None:
            return
        background = loop or shared_loop()
        background.run(self.start())
        self._background = background

    def close_in_thread(self) -> None:
        """Stop a server started with ``start_in_thread()`` (nothing to do if not started)."""
        if self._background is None and self._runner is not None:
            raise RuntimeError(
                "this server was started with 'await start()' on your event loop: "
                "stop it with 'await close()'"
            )
        self._close_background()

    @contextmanager
    def in_thread(self, loop: BackgroundLoop | None = None) -> Iterator[FakeSentry]:
        """``with FakeSentry().in_thread() as server:``, served from a background thread."""
        self.start_in_thread(loop)
        try:
            yield self
        finally:
            self.close_in_thread()

    def _close_background(self) -> None:
        background, self._background = self._background, None
        runner, self._runner = self._runner, None
        if background is not None and runner is not None:
            background.run(runner.cleanup())

    async def __aenter__(self) -> FakeSentry:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    def __repr__(self) -> str:
        return f"<FakeSentry {self.url or 'not started'} seed={self.data.seed}>"
