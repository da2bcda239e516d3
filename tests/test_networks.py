"""Proxies (environment and ``proxy=``), private CAs (``ssl=``, ``--ca-bundle``), and a
suite that no proxy of the developer's shell can reach into.

The proxies here are small asyncio servers on 127.0.0.1 that record what passes: plain
http forwarded whole, https tunnelled with ``CONNECT``. The https server is the fake Sentry
with a certificate from a CA made in the test (trustme).
"""

from __future__ import annotations

import asyncio
import base64
import functools
import inspect
import io
import logging
import os
import pickle
import ssl
import subprocess
import sys
import urllib.request
import warnings
from collections.abc import AsyncIterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from urllib.parse import quote

import aiohttp
import anyio
import pytest
import trustme
from _proxies import LoopbackProxy
from yarl import URL

from sentry_async import (
    ConnectionFailed,
    RetryPolicy,
    SentryClient,
    SentryError,
    ServerError,
    Unauthorized,
)
from sentry_async._network import InsecureTLSWarning, tls
from sentry_async._protocol.proxies import (
    ENVIRONMENT,
    ProxySettings,
    bypasses,
    proxies_from_env,
    proxy_settings,
)
from sentry_async.cli import EXIT_OK, EXIT_USAGE, main
from sentry_async.hooks import HookEvent, Hooks
from sentry_async.testing import FakeSentry


async def _in_thread(function: Any, *args: Any, **kwargs: Any) -> Any:
    """Run a blocking call (the CLI runs its own event loop) in a worker thread.

    ``asyncio.to_thread`` copies the context, and with it sniffio's "asyncio is running"
    marker, which makes the CLI's ``anyio.run`` refuse to start; anyio's does not.
    """
    return await anyio.to_thread.run_sync(functools.partial(function, *args, **kwargs))

TOKEN = "tok-9f8e7d6c5b4a"
PROXY_PASSWORD = "pr0xy-s3cret"
PROXY_USER = "alice"
ONE_TRY = RetryPolicy(attempts=1)

# ---------------------------------------------------------------- recording proxy


class RecordingProxy(LoopbackProxy):
    """A forward proxy on 127.0.0.1: plain http requests are forwarded as they came
    (absolute-form, which aiohttp's server accepts), ``CONNECT`` opens a tunnel.

    ``heads`` holds each connection's first request head; ``forwarded`` every byte of
    plain http requests, ``tunnelled`` every byte the client sent inside tunnels.
    ``require`` is the ``Proxy-Authorization`` value to insist on (407 otherwise);
    ``echo`` answers every request with that status and a page echoing the request;
    ``refuse`` answers with that status and a reason phrase echoing the credentials;
    ``also`` is added to that reason phrase and to the echo page.
    """

    def __init__(
        self,
        require: str | None = None,
        echo: int | None = None,
        refuse: int | None = None,
        also: str = "",
    ) -> None:
        super().__init__()
        self.require = require
        self.echo = echo
        self.refuse = refuse
        self.also = also
        self.heads: list[str] = []
        self.forwarded = bytearray()
        self.tunnelled = bytearray()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        upstream: asyncio.StreamWriter | None = None
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            text = head.decode("latin-1")
            self.heads.append(text)
            method, target, _ = text.split("\r\n", 1)[0].split(" ", 2)
            if self.require is not None and (
                f"proxy-authorization: {self.require.lower()}" not in text.lower()
            ):
                writer.write(
                    b"HTTP/1.1 407 Proxy Authentication Required\r\n"
                    b'Proxy-Authenticate: Basic realm="test"\r\n'
                    b"Content-Length: 0\r\nConnection: close\r\n\r\n"
                )
                await writer.drain()
                return
            if self.refuse is not None:
                sent = [
                    line.split(":", 1)[1].strip()
                    for line in text.split("\r\n")
                    if line.lower().startswith("proxy-authorization:")
                ]
                pair = base64.b64decode(sent[0].removeprefix("Basic ")).decode() if sent else ""
                writer.write(
                    f"HTTP/1.1 {self.refuse} Denied for {' '.join(sent)} ({pair}) {self.also}\r\n"
                    "Content-Length: 0\r\nConnection: close\r\n\r\n".encode()
                )
                await writer.drain()
                return
            if self.echo is not None:
                body = f"<html><pre>proxy error, your request was:\n{text}{self.also}</pre></html>"
                writer.write(
                    f"HTTP/1.1 {self.echo} Proxy Error\r\nContent-Type: text/html\r\n"
                    f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n{body}".encode()
                )
                await writer.drain()
                return
            if method == "CONNECT":
                host, port = target.rsplit(":", 1)
                up_reader, upstream = await asyncio.open_connection(host, int(port))
                self._writers.add(upstream)
                writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
                record = self.tunnelled
            else:
                url = URL(target)
                up_reader, upstream = await asyncio.open_connection(url.host, url.port)
                self._writers.add(upstream)
                upstream.write(head)
                self.forwarded.extend(head)
                record = self.forwarded
            await asyncio.gather(_pipe(reader, upstream, record), _pipe(up_reader, writer, None))
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError):
            pass
        finally:
            for w in (writer, upstream):
                if w is not None:
                    w.close()
                    self._writers.discard(w)

    def plain_requests(self) -> list[str]:
        """The request lines of every plain http request forwarded."""
        return [
            line
            for line in self.forwarded.decode("latin-1").split("\r\n")
            if line.endswith(" HTTP/1.1") and " http://" in line
        ]


async def _pipe(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, record: bytearray | None
) -> None:
    try:
        while data := await reader.read(65536):
            if record is not None:
                record.extend(data)
            writer.write(data)
            await writer.drain()
    except ConnectionError:
        pass
    finally:
        writer.close()


def _basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def _with_credentials(url: str) -> str:
    return url.replace("http://", f"http://{PROXY_USER}:{PROXY_PASSWORD}@")


# ---------------------------------------------------------------- TLS fixtures


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture(scope="module")
def ca_file(ca: trustme.CA, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("ca") / "private-ca.pem"
    ca.cert_pem.write_to_path(str(path))
    return path


@pytest.fixture
async def tls_server(ca: trustme.CA) -> AsyncIterator[FakeSentry]:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1", "localhost").configure_cert(context)
    async with FakeSentry(scale="small", token=TOKEN, ssl=context) as server:
        yield server


@pytest.fixture
async def server() -> AsyncIterator[FakeSentry]:
    async with FakeSentry(scale="small", token=TOKEN) as server:
        yield server


async def _first_org(client: SentryClient) -> str:
    # One endpoint (organizations.list() also asks for the user's regions first).
    orgs = [org["slug"] async for org in client.paginate("/organizations/")]
    assert orgs
    return orgs[0]


# ---------------------------------------------------------------- the environment, as urllib


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    monkeypatch.delenv("REQUEST_METHOD", raising=False)
    return monkeypatch


ENV_CASES = [
    {"HTTPS_PROXY": "http://upper:3128"},
    {"https_proxy": "http://lower:3128", "HTTPS_PROXY": "http://upper:3128"},
    {"https_proxy": "", "HTTPS_PROXY": "http://upper:3128"},
    {"HTTP_PROXY": "http://p:1", "NO_PROXY": "example.com"},
    {"http_proxy": "http://p:1", "REQUEST_METHOD": "GET"},
    {"HTTP_PROXY": "http://p:1", "https_proxy": "p2:8080", "no_proxy": "*"},
]


@pytest.mark.parametrize("env", ENV_CASES)
def test_environment_is_read_as_urllib_reads_it(
    clean_env: pytest.MonkeyPatch, env: dict[str, str]
) -> None:
    for name, value in env.items():
        clean_env.setenv(name, value)
    assert proxies_from_env(os.environ) == urllib.request.getproxies_environment()


NO_PROXY_CASES = [
    ("sentry.io", None, "sentry.io"),
    ("de.sentry.io", None, "sentry.io"),
    ("de.sentry.io", None, ".sentry.io"),
    ("notsentry.io", None, "sentry.io"),
    ("sentry.io", 8443, "sentry.io:8443"),
    ("sentry.io", 443, "sentry.io:8443"),
    ("SENTRY.IO", None, " other.org , Sentry.io "),
    ("127.0.0.1", 9000, "localhost,127.0.0.1"),
    ("10.0.0.1", None, "*"),
    ("sentry.io", None, ""),
    ("sentry.io", None, ",,"),
    ("::1", 9000, "[::1]:9000"),
    ("::1", 9000, "[::1]"),
    ("::1", 9000, "::1"),
    ("::1", None, "::1"),
    ("[::1]", 9000, "[::1]:9000"),
]


@pytest.mark.parametrize(("host", "port", "no_proxy"), NO_PROXY_CASES)
def test_no_proxy_matches_as_urllib_does(host: str, port: int | None, no_proxy: str) -> None:
    # urllib sees the URL's netloc: an IPv6 host in brackets
    bracketed = f"[{host.strip('[]')}]" if ":" in host else host
    hostport = bracketed if port is None else f"{bracketed}:{port}"
    expected = urllib.request.proxy_bypass_environment(hostport, {"no": no_proxy})
    assert bypasses(host, port, no_proxy) == bool(expected)


def test_proxy_credentials_stay_out_of_urls_and_reprs() -> None:
    settings = ProxySettings(
        {"https": _with_credentials("http://proxy.corp:3128"), "http": "proxy.corp:3128"},
        "internal.corp",
    )
    target = URL("https://sentry.io/api/0/")
    assert settings.proxy_for(target) == URL("http://proxy.corp:3128")
    assert PROXY_PASSWORD not in repr(settings) and PROXY_USER not in repr(settings)
    headers: dict[str, str] = {}
    proxy, proxy_headers = settings.route(target, headers)
    # https: the credentials go on the CONNECT only, never on the request inside the tunnel
    assert proxy_headers == {"Proxy-Authorization": _basic(PROXY_USER, PROXY_PASSWORD)}
    assert headers == {}
    assert PROXY_PASSWORD not in str(proxy)
    # a host in NO_PROXY goes direct
    assert settings.route(URL("https://sentry.internal.corp/"), headers) == (None, None)
    # scheme-less proxy values mean http://, as urllib and curl read them
    assert settings.proxy_for(URL("http://sentry.io/")) == URL("http://proxy.corp:3128")


def test_an_unusable_proxy_is_a_clear_error_without_its_password() -> None:
    with pytest.raises(ValueError, match=r"\$HTTPS_PROXY must be an http:// or https://") as info:
        proxy_settings(
            ENVIRONMENT, {"HTTPS_PROXY": f"socks5://u:{PROXY_PASSWORD}@h:1080"}
        ).proxy_for(URL("https://sentry.io/"))
    assert PROXY_PASSWORD not in str(info.value)
    with pytest.raises(ValueError, match="proxy= must be"):
        proxy_settings(f"ftp://u:{PROXY_PASSWORD}@h:21", {})
    with pytest.raises(TypeError, match="proxy must be a URL string or None"):
        proxy_settings(3128, {})  # type: ignore[arg-type]


def test_a_proxy_variable_for_another_scheme_is_read_only_when_used(
    clean_env: pytest.MonkeyPatch,
) -> None:
    """urllib reads HTTP_PROXY for http:// URLs only: an https client does not care what it
    holds, while an http one names it."""
    clean_env.setenv("HTTP_PROXY", f"socks5://u:{PROXY_PASSWORD}@h:1080")
    client = SentryClient(TOKEN, base_url="https://sentry.io")
    assert client._proxy.proxy_for(URL("https://sentry.io/")) is None
    with pytest.raises(ValueError, match=r"\$HTTP_PROXY must be an http:// or https://") as info:
        SentryClient(TOKEN, base_url="http://127.0.0.1:9000")
    assert PROXY_PASSWORD not in str(info.value)
    clean_env.setenv("NO_PROXY", "127.0.0.1")  # exempt: the value is not used either
    SentryClient(TOKEN, base_url="http://127.0.0.1:9000")


def test_a_proxy_host_that_is_no_valid_name_is_an_error_naming_the_proxy(
    clean_env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    bad = f"http://{PROXY_USER}:{PROXY_PASSWORD}@xn--a-.com:3128"  # fails IDNA
    with pytest.raises(ValueError, match=r"^proxy= is not a proxy URL") as info:
        SentryClient(TOKEN, proxy=bad)
    assert PROXY_PASSWORD not in str(info.value)
    clean_env.setenv("HTTPS_PROXY", bad)
    with pytest.raises(ValueError, match=r"^\$HTTPS_PROXY is not a proxy URL") as info:
        SentryClient(TOKEN)
    assert PROXY_PASSWORD not in str(info.value)
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN)
    stderr = io.StringIO()
    code = main(
        ["export", "issues", "--org", "acme", "--token-file", str(token_file), "-o",
         str(tmp_path / "out"), "--base-url", "https://sentry.example"],
        stdout=io.StringIO(),
        stderr=stderr,
    )  # fmt: skip
    assert code == EXIT_USAGE
    assert "$HTTPS_PROXY is not a proxy URL" in stderr.getvalue()
    assert "--base-url" not in stderr.getvalue() and PROXY_PASSWORD not in stderr.getvalue()


def test_proxy_none_ignores_the_environment_and_a_url_overrides_it(
    clean_env: pytest.MonkeyPatch,
) -> None:
    clean_env.setenv("HTTPS_PROXY", "http://from-env:3128")
    target = URL("https://sentry.io/")
    assert SentryClient(TOKEN)._proxy.proxy_for(target) == URL("http://from-env:3128")
    assert SentryClient(TOKEN, proxy=None)._proxy.proxy_for(target) is None
    explicit = SentryClient(TOKEN, proxy="http://explicit:8080")._proxy
    assert explicit.proxy_for(target) == URL("http://explicit:8080")


def test_plain_http_goes_through_a_proxy_only_where_plain_http_is_allowed(
    clean_env: pytest.MonkeyPatch,
) -> None:
    remote = _with_credentials("http://proxy.corp:3128")
    with pytest.raises(ValueError, match=r"through proxy http://proxy\.corp:3128") as info:
        SentryClient(TOKEN, base_url="http://127.0.0.1:9000", proxy=remote)
    assert PROXY_PASSWORD not in str(info.value)
    # a loopback proxy keeps the bytes on this machine; NO_PROXY or the override also do
    SentryClient(TOKEN, base_url="http://127.0.0.1:9000", proxy="http://127.0.0.1:3128")
    SentryClient(TOKEN, base_url="http://sentry.corp", proxy=remote, allow_insecure_http=True)
    clean_env.setenv("HTTP_PROXY", remote)
    clean_env.setenv("NO_PROXY", "127.0.0.1")
    SentryClient(TOKEN, base_url="http://127.0.0.1:9000")
    clean_env.delenv("NO_PROXY")
    with pytest.raises(ValueError, match="refusing plain http://"):
        SentryClient(TOKEN, base_url="http://127.0.0.1:9000")
    # a region the host rule admits (the same loopback host) goes through the proxy too
    clean_env.setenv("NO_PROXY", "localhost:9000")
    client = SentryClient(TOKEN, base_url="http://localhost:9000", allow_insecure_http=False)
    with pytest.raises(ValueError, match="refusing plain http:// to localhost through proxy"):
        client.trust_region("acme", "http://localhost:9001")


# ---------------------------------------------------------------- plain http, forward proxy


async def test_plain_http_is_forwarded_by_the_proxy_from_the_environment(
    server: FakeSentry, clean_env: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="sentry_async")
    async with RecordingProxy(require=_basic(PROXY_USER, PROXY_PASSWORD)) as proxy:
        clean_env.setenv("http_proxy", _with_credentials(proxy.url))
        async with SentryClient(TOKEN, base_url=server.url) as client:
            org = await _first_org(client)
            issues = [
                i.id
                async for i in client.issues.list(
                    org, query="is:unresolved", page_size=40, limit=80
                )
            ]
    assert len(issues) == 80
    lines = proxy.plain_requests()
    assert len(lines) == len(server.requests) == 3  # organizations, then two pages
    assert lines[0].startswith(f"GET {server.url}/api/0/organizations/")
    assert f"proxy-authorization: {_basic(PROXY_USER, PROXY_PASSWORD)}".lower() in (
        proxy.heads[0].lower()
    )
    assert all(r.sent_token(TOKEN) for r in server.requests)
    assert PROXY_PASSWORD not in caplog.text and "forwarded" not in caplog.text


async def test_no_proxy_bypasses_the_proxy(
    server: FakeSentry, clean_env: pytest.MonkeyPatch
) -> None:
    async with RecordingProxy() as proxy:
        clean_env.setenv("HTTP_PROXY", proxy.url)
        clean_env.setenv("NO_PROXY", "example.org, 127.0.0.1")
        async with SentryClient(TOKEN, base_url=server.url) as client:
            await _first_org(client)
        assert proxy.heads == []
        assert len(server.requests) == 1
        clean_env.delenv("NO_PROXY")
        async with SentryClient(TOKEN, base_url=server.url) as client:
            await _first_org(client)
        assert len(proxy.heads) == 1


async def test_netrc_is_never_read(
    server: FakeSentry, clean_env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """aiohttp's trust_env would take proxies from the environment *and* attach Basic
    credentials from ~/.netrc; the client reads only the proxy variables."""
    netrc = tmp_path / "netrc"
    netrc.write_text(f"machine 127.0.0.1 login {PROXY_USER} password {PROXY_PASSWORD}\n")
    netrc.chmod(0o600)
    clean_env.setenv("NETRC", str(netrc))
    clean_env.delenv("SENTRY_AUTH_TOKEN", raising=False)
    async with RecordingProxy() as proxy:
        clean_env.setenv("HTTP_PROXY", proxy.url)
        async with SentryClient(base_url=server.url, retry=ONE_TRY) as client:
            with pytest.raises(Unauthorized):
                await _first_org(client)
    assert len(proxy.heads) == 1  # the proxy variable was honoured...
    assert "authorization" not in proxy.heads[0].lower()  # ...and .netrc was not
    assert server.requests[0].headers.get("authorization") is None


async def test_a_trust_env_session_of_yours_follows_the_clients_proxy_choice(
    server: FakeSentry, clean_env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """aiohttp would route a ``trust_env`` session by the environment whenever the client
    says "direct", and add ~/.netrc's credentials; the client's choice holds instead."""
    netrc = tmp_path / "netrc"
    netrc.write_text(f"machine 127.0.0.1 login {PROXY_USER} password {PROXY_PASSWORD}\n")
    netrc.chmod(0o600)
    clean_env.setenv("NETRC", str(netrc))
    async with RecordingProxy() as proxy, aiohttp.ClientSession(trust_env=True) as session:
        clean_env.setenv("HTTP_PROXY", proxy.url)
        async with SentryClient(
            TOKEN, base_url=server.url, proxy=None, session=session, retry=ONE_TRY
        ) as client:
            await _first_org(client)
        assert proxy.heads == []  # direct, whatever the environment says
        async with SentryClient(TOKEN, base_url=server.url, session=session) as client:
            await _first_org(client)
        assert len(proxy.heads) == 1  # the environment, read by the client's rules
        assert "basic" not in proxy.heads[0].lower()  # nothing from .netrc
        assert not session.closed
    assert [r.headers["authorization"] for r in server.requests] == ["Bearer [Filtered]"] * 2


@pytest.mark.skipif(
    "proxy" not in inspect.signature(aiohttp.ClientSession).parameters,
    reason="a session has a proxy of its own from aiohttp 3.11 (ClientSession(proxy=))",
)
async def test_a_session_with_its_own_proxy_is_refused(
    server: FakeSentry, clean_env: pytest.MonkeyPatch
) -> None:
    """aiohttp reads a request's proxy=None as "the session's proxy": the client could not
    send direct (proxy=None, NO_PROXY) nor keep a plain http token off a remote proxy."""
    remote = _with_credentials("http://proxy.corp:3128")
    async with aiohttp.ClientSession(proxy=remote) as session:
        for options in ({"proxy": None}, {}, {"proxy": "http://127.0.0.1:3128"}):
            with pytest.raises(ValueError, match="session= has its own proxy") as info:
                SentryClient(TOKEN, base_url=server.url, session=session, **options)
            assert "http://proxy.corp:3128" in str(info.value)
            assert PROXY_PASSWORD not in str(info.value)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # proxy_auth=, in aiohttp 3.14
        session = aiohttp.ClientSession(proxy_auth=aiohttp.BasicAuth(PROXY_USER, PROXY_PASSWORD))
    async with session:
        with pytest.raises(ValueError, match="session= has its own proxy") as info:
            SentryClient(TOKEN, base_url=server.url, session=session)
        assert PROXY_PASSWORD not in str(info.value)


# ---------------------------------------------------------------- https through CONNECT


async def test_https_tunnels_through_connect_with_the_token_inside_tls(
    tls_server: FakeSentry,
    ca_file: Path,
    clean_env: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="sentry_async")
    port = URL(tls_server.url).port
    async with RecordingProxy(require=_basic(PROXY_USER, PROXY_PASSWORD)) as proxy:
        clean_env.setenv("HTTPS_PROXY", _with_credentials(proxy.url))
        async with SentryClient(TOKEN, base_url=tls_server.url, ssl=ca_file) as client:
            org = await _first_org(client)
            issues = [
                i.id
                async for i in client.issues.list(
                    org, query="is:unresolved", page_size=40, limit=80
                )
            ]
            assert PROXY_PASSWORD not in repr(client)
    assert len(issues) == 80
    assert len(tls_server.requests) == 3
    assert proxy.heads[0].startswith(f"CONNECT 127.0.0.1:{port} HTTP/1.1")
    assert proxy.forwarded == b""  # nothing went as plain http
    assert len(proxy.tunnelled) > 1000
    assert TOKEN.encode() not in proxy.tunnelled and b"Bearer" not in proxy.tunnelled
    assert b"/api/0/" not in proxy.tunnelled  # paths and query values are encrypted too
    assert PROXY_PASSWORD not in caplog.text


class CountAttempts(Hooks):
    def __init__(self) -> None:
        self.attempts = 0

    def on_request(self, event: HookEvent) -> None:
        self.attempts += 1


@pytest.mark.parametrize("fault", ["expired", "wrong host"])
async def test_a_certificate_a_ca_bundle_cannot_fix_gets_no_ca_hint(
    ca: trustme.CA, ca_file: Path, fault: str
) -> None:
    """The private-CA hint is for a chain the client cannot verify; an expired certificate,
    or one for another host, fails the same with a trusted CA, and says only what is wrong."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    if fault == "expired":
        past = datetime.now(timezone.utc) - timedelta(days=2)
        leaf = ca.issue_cert("127.0.0.1", "localhost", not_before=past - timedelta(days=30),
                             not_after=past)
    else:
        leaf = ca.issue_cert("sentry.example.com")
    leaf.configure_cert(context)
    counter = CountAttempts()
    async with (
        FakeSentry(scale="small", token=TOKEN, ssl=context) as server,
        SentryClient(TOKEN, base_url=server.url, ssl=str(ca_file), hooks=counter) as client,
    ):
        with pytest.raises(ConnectionFailed) as caught:
            await _first_org(client)
    message = str(caught.value)
    assert "certificate" in message
    assert ("expired" if fault == "expired" else "match") in message
    assert "pass ssl=" not in message and "--ca-bundle" not in message
    assert counter.attempts == 1


async def test_a_private_ca_is_needed_and_ssl_accepts_a_context(
    tls_server: FakeSentry, ca_file: Path
) -> None:
    counter = CountAttempts()
    async with SentryClient(TOKEN, base_url=tls_server.url, hooks=counter) as client:
        with pytest.raises(ConnectionFailed, match=r"certificate.*pass ssl= or --ca-bundle"):
            await _first_org(client)
    assert counter.attempts == 1  # an untrusted certificate is not retried
    context = ssl.create_default_context(cafile=str(ca_file))
    async with SentryClient(TOKEN, base_url=tls_server.url, ssl=context) as client:
        await _first_org(client)
    async with SentryClient(TOKEN, base_url=tls_server.url, ssl=str(ca_file)) as client:
        await _first_org(client)


async def test_ssl_false_works_only_with_a_loud_warning(
    tls_server: FakeSentry, caplog: pytest.LogCaptureFixture
) -> None:
    with pytest.warns(InsecureTLSWarning, match="verification is OFF"):
        client = SentryClient(TOKEN, base_url=tls_server.url, ssl=False)
    assert "verification is OFF" in caplog.text
    async with client:
        await _first_org(client)


def test_the_default_trust_is_a_verifying_context_rather_than_ssl_true() -> None:
    """aiohttp 3.9.0 and 3.9.1 took the connector's ``ssl=True`` for "do not verify": the
    default (``None`` or ``True``) reaches aiohttp as a context that checks the certificate
    and the host against the system's CAs, which no aiohttp can read otherwise."""
    for setting in (None, True):
        context = tls(setting)
        assert isinstance(context, ssl.SSLContext)
        assert context.verify_mode is ssl.CERT_REQUIRED and context.check_hostname
    assert tls(None) is tls(True)  # made once: loading the system's CAs reads the disk


def test_bad_ssl_arguments_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="no CA bundle at"):
        SentryClient(TOKEN, ssl=tmp_path / "missing.pem")
    junk = tmp_path / "junk.pem"
    junk.write_text("not a certificate")
    with pytest.raises(ValueError, match="cannot load the CA bundle"):
        SentryClient(TOKEN, ssl=junk)
    with pytest.raises(TypeError, match="ssl must be"):
        SentryClient(TOKEN, ssl=42)  # type: ignore[arg-type]


async def test_ssl_and_trace_configs_need_the_clients_own_session() -> None:
    import aiohttp

    async with aiohttp.ClientSession() as session:
        with pytest.raises(ValueError, match="set them on your own session"):
            SentryClient(TOKEN, session=session, ssl="ca.pem")


# ---------------------------------------------------------------- proxy failures stay secret


def _assert_no_proxy_secret(error: BaseException) -> None:
    seen: list[str] = []
    current: BaseException | None = error
    while current is not None:
        seen += [str(current), repr(current)]
        current = current.__cause__ or current.__context__
    seen.append(repr(pickle.dumps(error)))
    encoded = base64.b64encode(f"{PROXY_USER}:{PROXY_PASSWORD}".encode()).decode()
    for text in seen:
        assert PROXY_PASSWORD not in text and encoded not in text


async def test_a_proxy_that_refuses_is_an_error_without_its_credentials(
    tls_server: FakeSentry, ca_file: Path, clean_env: pytest.MonkeyPatch
) -> None:
    async with RecordingProxy(require=_basic("someone", "else")) as proxy:
        clean_env.setenv("HTTPS_PROXY", _with_credentials(proxy.url))
        async with SentryClient(
            TOKEN, base_url=tls_server.url, ssl=ca_file, retry=ONE_TRY
        ) as client:
            with pytest.raises(ConnectionFailed) as info:
                await _first_org(client)
    assert "proxy refused" in str(info.value) and "407" in str(info.value)
    _assert_no_proxy_secret(info.value)


@pytest.mark.parametrize("status", [407, 403])
async def test_a_proxy_refusing_the_tunnel_is_final_at_once(
    tls_server: FakeSentry, ca_file: Path, clean_env: pytest.MonkeyPatch, status: int
) -> None:
    """Retrying would send the rejected credentials again (enough failed logins lock the
    account on many company proxies), and a blocked host stays blocked."""
    retry = RetryPolicy(attempts=3, backoff_base=0.01, backoff_max=0.02)
    require = _basic("someone", "else") if status == 407 else None
    async with RecordingProxy(require=require, echo=None if require else status) as proxy:
        clean_env.setenv("HTTPS_PROXY", _with_credentials(proxy.url))
        async with SentryClient(TOKEN, base_url=tls_server.url, ssl=ca_file, retry=retry) as c:
            with pytest.raises(ConnectionFailed) as info:
                await _first_org(c)
        assert len(proxy.heads) == 1
    assert f"refused the tunnel: {status}" in str(info.value)
    assert f"proxy {proxy.url}" in str(info.value)  # named, without its credentials
    _assert_no_proxy_secret(info.value)


async def test_a_failing_proxy_is_retried(
    tls_server: FakeSentry, ca_file: Path, clean_env: pytest.MonkeyPatch
) -> None:
    retry = RetryPolicy(attempts=3, backoff_base=0.01, backoff_max=0.02)
    async with RecordingProxy(echo=502) as proxy:
        clean_env.setenv("HTTPS_PROXY", proxy.url)
        async with SentryClient(TOKEN, base_url=tls_server.url, ssl=ca_file, retry=retry) as c:
            with pytest.raises(ConnectionFailed, match="refused the tunnel: 502"):
                await _first_org(c)
        assert len(proxy.heads) == 3


@pytest.mark.parametrize("status", [407, 502])
async def test_credentials_echoed_in_a_tunnel_refusals_reason_are_blanked_out(
    tls_server: FakeSentry,
    ca_file: Path,
    clean_env: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    status: int,
) -> None:
    caplog.set_level(logging.DEBUG, logger="sentry_async")
    retry = RetryPolicy(attempts=2, backoff_base=0.01, backoff_max=0.02)
    async with RecordingProxy(refuse=status) as proxy:
        clean_env.setenv("HTTPS_PROXY", _with_credentials(proxy.url))
        async with SentryClient(TOKEN, base_url=tls_server.url, ssl=ca_file, retry=retry) as c:
            with pytest.raises(ConnectionFailed) as info:
                await _first_org(c)
    assert f"refused the tunnel: {status} Denied for" in str(info.value)
    _assert_no_proxy_secret(info.value)
    assert info.value.cause is not None and PROXY_PASSWORD not in info.value.cause
    encoded = base64.b64encode(f"{PROXY_USER}:{PROXY_PASSWORD}".encode()).decode()
    assert PROXY_PASSWORD not in caplog.text and encoded not in caplog.text


async def test_a_proxy_error_page_echoing_the_request_keeps_its_credentials_out(
    server: FakeSentry, clean_env: pytest.MonkeyPatch
) -> None:
    async with RecordingProxy(echo=502) as proxy:
        clean_env.setenv("HTTP_PROXY", _with_credentials(proxy.url))
        async with SentryClient(TOKEN, base_url=server.url, retry=ONE_TRY) as client:
            with pytest.raises(ServerError) as info:
                await _first_org(client)
    assert "your request was" in info.value.body.decode()  # the page is kept, redacted
    assert TOKEN not in info.value.body.decode()
    _assert_no_proxy_secret(info.value)


SPECIAL_PASSWORD = "s3cr3t/P@ss:word!"
_SPECIAL_PAIR = f"{PROXY_USER}:{SPECIAL_PASSWORD}".encode()
SPECIAL_ECHOES = {
    "percent-as-written": quote(SPECIAL_PASSWORD, safe=""),
    "percent-lower": quote(SPECIAL_PASSWORD, safe="").lower(),
    "url-as-written": f"{PROXY_USER}:{quote(SPECIAL_PASSWORD, safe='')}@",
    "b64-password": base64.b64encode(SPECIAL_PASSWORD.encode()).decode(),
    "b64url-password": base64.urlsafe_b64encode(SPECIAL_PASSWORD.encode()).decode(),
    "b64-pair-unpadded": base64.b64encode(_SPECIAL_PAIR).decode().rstrip("="),
    "b64url-pair": base64.urlsafe_b64encode(_SPECIAL_PAIR).decode(),
}


@pytest.mark.parametrize("scheme", ["https", "http"])
@pytest.mark.parametrize("form", sorted(SPECIAL_ECHOES))
async def test_credentials_a_proxy_echoes_encoded_are_blanked_out(
    tls_server: FakeSentry,
    server: FakeSentry,
    ca_file: Path,
    clean_env: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    scheme: str,
    form: str,
) -> None:
    """Percent-encoded as written in the proxy URL, or base64 (the password, or the whole
    ``user:password`` of the ``Basic`` value), in the reason phrase or the page."""
    caplog.set_level(logging.DEBUG, logger="sentry_async")
    echoed = SPECIAL_ECHOES[form]
    target = tls_server if scheme == "https" else server
    refuse, echo = (407, None) if scheme == "https" else (None, 407)
    async with RecordingProxy(refuse=refuse, echo=echo, also=echoed) as proxy:
        written = f"http://{PROXY_USER}:{quote(SPECIAL_PASSWORD, safe='')}@{proxy.url[7:]}"
        clean_env.setenv(f"{scheme.upper()}_PROXY", written)
        async with SentryClient(
            TOKEN, base_url=target.url, ssl=ca_file if scheme == "https" else None, retry=ONE_TRY
        ) as client:
            with pytest.raises(SentryError) as info:
                await _first_org(client)
    error = info.value
    shown = [str(error), repr(error), repr(pickle.dumps(error)), caplog.text]
    shown += [str(getattr(error, name, "")) for name in ("cause", "body", "detail")]
    assert "********" in str(error)
    for text in shown:
        assert SPECIAL_PASSWORD not in text
        for value in SPECIAL_ECHOES.values():
            assert value.rstrip("=@") not in text


async def test_an_unreachable_proxy_is_an_error_without_its_credentials(
    server: FakeSentry, clean_env: pytest.MonkeyPatch
) -> None:
    async with RecordingProxy() as proxy:
        dead = proxy.url  # closed when the block ends
    clean_env.setenv("HTTP_PROXY", _with_credentials(dead))
    async with SentryClient(TOKEN, base_url=server.url, retry=ONE_TRY) as client:
        with pytest.raises(ConnectionFailed) as info:
            await _first_org(client)
    _assert_no_proxy_secret(info.value)
    assert server.requests == []


# ---------------------------------------------------------------- the CLI


def _cli_export(server: FakeSentry, out: Path, *extra: str) -> tuple[int, str]:
    token_file = out.parent / f"{out.name}.token"
    token_file.write_text(TOKEN)
    stderr = io.StringIO()
    code = main(
        [
            "export", "issues", "--org", server.data.orgs[0].slug, "--base-url", server.url,
            "--token-file", str(token_file), "-o", str(out), "--quiet", *extra,
        ],
        stdout=io.StringIO(),
        stderr=stderr,
    )  # fmt: skip
    return code, stderr.getvalue()


async def test_cli_trusts_a_private_ca_from_ca_bundle_or_ssl_cert_file(
    tls_server: FakeSentry, ca_file: Path, tmp_path: Path, clean_env: pytest.MonkeyPatch
) -> None:
    code, err = await _in_thread(_cli_export, tls_server, tmp_path / "system")
    assert code != EXIT_OK and "certificate" in err
    code, err = await _in_thread(
        _cli_export, tls_server, tmp_path / "flag", "--ca-bundle", str(ca_file)
    )
    assert (code, err) == (EXIT_OK, "")
    clean_env.setenv("SSL_CERT_FILE", str(ca_file))
    code, err = await _in_thread(_cli_export, tls_server, tmp_path / "env")
    assert (code, err) == (EXIT_OK, "")
    code, err = await _in_thread(
        _cli_export, tls_server, tmp_path / "bad", "--ca-bundle", str(tmp_path / "nope.pem")
    )
    assert code == EXIT_USAGE and "--ca-bundle: no CA bundle at" in err


async def test_cli_ignores_a_proxy_variable_for_another_scheme(
    tls_server: FakeSentry, ca_file: Path, tmp_path: Path, clean_env: pytest.MonkeyPatch
) -> None:
    clean_env.setenv("HTTP_PROXY", "socks5://127.0.0.1:1080")  # for http:// URLs only
    code, err = await _in_thread(
        _cli_export, tls_server, tmp_path / "out", "--ca-bundle", str(ca_file)
    )
    assert (code, err) == (EXIT_OK, "")


def test_cli_names_a_bad_proxy_variable(clean_env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN)
    clean_env.setenv("HTTPS_PROXY", f"socks5://u:{PROXY_PASSWORD}@h:1080")
    stderr = io.StringIO()
    code = main(
        ["export", "issues", "--org", "acme", "--token-file", str(token_file), "-o",
         str(tmp_path / "out")],
        stdout=io.StringIO(),
        stderr=stderr,
    )  # fmt: skip
    assert code == EXIT_USAGE
    assert "$HTTPS_PROXY must be an http:// or https:// proxy URL" in stderr.getvalue()
    assert PROXY_PASSWORD not in stderr.getvalue()
    clean_env.delenv("HTTPS_PROXY")
    clean_env.setenv("HTTP_PROXY", _with_credentials("http://proxy.corp:3128"))
    stderr = io.StringIO()
    code = main(
        ["export", "issues", "--org", "acme", "--token-file", str(token_file), "-o",
         str(tmp_path / "out"), "--base-url", "http://127.0.0.1:9"],
        stdout=io.StringIO(),
        stderr=stderr,
    )  # fmt: skip
    assert code == EXIT_USAGE
    assert "error: refusing plain http:// to 127.0.0.1 through proxy http://proxy.corp:3128" in (
        stderr.getvalue()
    )
    assert "--allow-insecure-http" in stderr.getvalue()
    assert PROXY_PASSWORD not in stderr.getvalue()


async def test_the_demo_goes_direct_whatever_the_environment_says(
    clean_env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    clean_env.setenv("HTTP_PROXY", "http://proxy.invalid:3128")
    out, err = io.StringIO(), io.StringIO()
    argv = ["demo", "--scale", "small", "--output", str(tmp_path)]
    code = await _in_thread(main, argv, stdout=out, stderr=err)
    assert code == EXIT_OK, err.getvalue()
    assert "demo: exported" in out.getvalue()


# ---------------------------------------------------------------- the suite is hermetic


async def test_the_fakes_client_goes_direct_whatever_the_environment_says(
    fake_sentry: FakeSentry, clean_env: pytest.MonkeyPatch
) -> None:
    """The fake always serves on 127.0.0.1: a user's suite run under a company HTTP_PROXY
    must not route its client through it (nor refuse plain http to a remote proxy)."""
    clean_env.setenv("HTTP_PROXY", "http://proxy.corp.example:3128")
    async with fake_sentry.client(retry=ONE_TRY) as client:
        await _first_org(client)
    async with RecordingProxy() as proxy:
        clean_env.setenv("HTTP_PROXY", proxy.url)
        async with fake_sentry.client(retry=ONE_TRY) as client:
            await _first_org(client)
        assert proxy.heads == []
        async with fake_sentry.client(retry=ONE_TRY, proxy=proxy.url) as client:
            await _first_org(client)  # a proxy asked for by name is still used
        assert len(proxy.heads) == 1


def test_the_suite_runs_with_no_proxy_variables() -> None:
    assert [name for name in os.environ if name.lower().endswith("_proxy")] == []
    assert "SSL_CERT_FILE" not in os.environ


async def test_a_client_reaches_the_fake_server_directly(server: FakeSentry) -> None:
    async with SentryClient(TOKEN, base_url=server.url, retry=ONE_TRY) as client:
        await _first_org(client)


def test_a_proxy_in_the_developers_shell_does_not_reach_the_suite(tmp_path: Path) -> None:
    """Run a test of this file in a child pytest whose environment names a dead proxy for
    every scheme: it passes only because the suite clears the variables first."""
    env = dict(os.environ)
    dead = "http://127.0.0.1:9"  # discard port: nothing listens there
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "ALL_PROXY"):
        env[name] = dead
    env["SSL_CERT_FILE"] = str(tmp_path / "missing.pem")
    result = subprocess.run(
        [
            sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
            f"{__file__}::test_a_client_reaches_the_fake_server_directly",
            f"{__file__}::test_the_suite_runs_with_no_proxy_variables",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=Path(__file__).parent.parent,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert "2 passed" in result.stdout
