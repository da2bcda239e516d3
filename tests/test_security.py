"""The auth token goes to the configured origin and nowhere else, and is never shown.

Hostile or broken servers are played by the fake server: Link headers naming another
host, redirects to other origins, region URLs. A second fake server with a different
token plays "the other host" and must never see a request carrying the token.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import logging
import os
import pickle
import socket
import sys
import traceback
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import anyio
import pytest
from _local_server import local_app
from aiohttp import web

from sentry_async import (
    BadRequest,
    ConnectionFailed,
    DecodeError,
    NotFound,
    RateLimited,
    RequestTimeout,
    ResponseTooLarge,
    RetryPolicy,
    SentryClient,
    ServerError,
    Timeouts,
    Unauthorized,
    UnsafeRedirect,
)
from sentry_async.cli import EXIT_AUTH, main
from sentry_async.testing import FakeSentry, Fault
from sentry_async.testing.pytest_plugin import FIXED_NOW

Factory = Callable[..., Awaitable[FakeSentry]]

TOKEN = "sntrys_secret-TOKEN-for-security-tests-0123456789"
OTHER_TOKEN = "other-host-token"
WRONG_TOKEN = "sntrys_revoked-TOKEN-9876543210"
FAST = RetryPolicy(attempts=4, backoff_base=0.01, backoff_max=0.05)


async def _servers(factory: Factory) -> tuple[FakeSentry, FakeSentry]:
    """``(main, other)``: ``other`` stands for a host that must never see the token."""
    other = await factory(token=OTHER_TOKEN)
    main = await factory(token=TOKEN)
    return main, other


def _first_project(server: FakeSentry) -> tuple[str, str]:
    org = server.data.org_slugs()[0]
    return org, server.data.project_slugs(org)[0]


def _assert_untouched(other: FakeSentry) -> None:
    assert other.requests == [], "the other host received a request"


def _auth_headers(server: FakeSentry) -> list[str | None]:
    """The credentials each request carried, as far as the tokens known here tell."""
    known = (TOKEN, OTHER_TOKEN, WRONG_TOKEN, server.token)
    return [
        next((f"Bearer {t}" for t in known if r.sent_token(t)), r.headers.get("authorization"))
        for r in server.requests
    ]


# Link headers naming another host.


@pytest.mark.anyio
@pytest.mark.parametrize("legacy_links", [False, True])
async def test_link_header_host_is_ignored(
    fake_sentry_factory: Factory, legacy_links: bool
) -> None:
    """Cursors are taken from the Link header; the URL's host never is."""
    other = await fake_sentry_factory(token=OTHER_TOKEN)
    main = await fake_sentry_factory(token=TOKEN, link_host=other.url, legacy_links=legacy_links)
    org, project = _first_project(main)
    expected = main.data.issue_ids(org, project=project)
    assert len(expected) > 10, "the walk must span several pages"
    async with SentryClient(TOKEN, base_url=main.url) as client:
        with anyio.fail_after(20):
            issues = await client.issues.list(
                org, project=project, query="", page_size=10
            ).collect()
    assert sorted(i.id for i in issues) == sorted(expected)
    _assert_untouched(other)
    cursors = [r.param("cursor") for r in main.requests if r.path.endswith("/issues/")]
    assert len(cursors) >= 3 and all(c is not None for c in cursors[1:])
    assert set(_auth_headers(main)) == {f"Bearer {TOKEN}"}


async def test_link_header_to_unroutable_host_is_not_contacted(
    fake_sentry_factory: Factory,
) -> None:
    """A Link URL on a host that does not exist would hang or fail if it were followed."""
    main = await fake_sentry_factory(token=TOKEN, link_host="https://attacker.invalid:1")
    org, project = _first_project(main)
    async with SentryClient(TOKEN, base_url=main.url) as client:
        with anyio.fail_after(20):
            pages = [
                page
                async for page in client.issues.list(
                    org, project=project, query="", page_size=10
                ).pages()
            ]
    assert len(pages) >= 3
    assert all(r.path.startswith("/api/0/") for r in main.requests)


# Redirects.


async def test_redirect_to_other_origin_is_refused(fake_sentry_factory: Factory) -> None:
    main, other = await _servers(fake_sentry_factory)
    org = main.data.org_slugs()[0]
    main.faults.add(
        Fault("redirect", path=r"/organizations/[^/]+/$", location=f"{other.url}/api/0/x/")
    )
    async with SentryClient(TOKEN, base_url=main.url, retry=FAST) as client:
        with anyio.fail_after(10), pytest.raises(UnsafeRedirect) as caught:
            await client.organizations.get(org)
    assert other.url.split("//")[1] in str(caught.value)
    assert TOKEN not in str(caught.value)
    _assert_untouched(other)
    assert len(main.requests) == 1, "a refused redirect is final, not retried"


@pytest.mark.anyio
@pytest.mark.parametrize(
    "location",
    [
        "//{other_host}/api/0/organizations/",  # scheme-relative
        "http://localhost:{main_port}/api/0/organizations/",  # same port, other host name
        "https://127.0.0.1:{main_port}/api/0/organizations/",  # scheme change
        "http://{other_host}/api/0/organizations/",
    ],
)
async def test_redirect_to_any_other_origin_is_refused(
    fake_sentry_factory: Factory, location: str
) -> None:
    main, other = await _servers(fake_sentry_factory)
    target = location.format(other_host=other.url.split("//")[1], main_port=main.port)
    main.faults.add(Fault("redirect", path=r"/organizations/$", location=target))
    async with SentryClient(TOKEN, base_url=main.url) as client:
        with anyio.fail_after(10), pytest.raises(UnsafeRedirect):
            await client.organizations.list().collect()
    _assert_untouched(other)


@pytest.mark.anyio
@pytest.mark.parametrize("absolute", [False, True])
async def test_same_origin_redirect_is_followed_with_token(
    fake_sentry: FakeSentry, absolute: bool
) -> None:
    org = fake_sentry.data.org_slugs()[0]
    path = f"/api/0/organizations/{org}/"
    fake_sentry.faults.add(
        Fault(
            "redirect",
            path=r"/organizations/moved-away/$",
            location=f"{fake_sentry.url}{path}" if absolute else path,
        )
    )
    async with SentryClient(fake_sentry.token, base_url=fake_sentry.url) as client:
        with anyio.fail_after(10):
            detail = await client.organizations.get("moved-away")
    assert detail.slug == org
    assert [r.path for r in fake_sentry.requests] == ["/api/0/organizations/moved-away/", path]
    assert set(_auth_headers(fake_sentry)) == {f"Bearer {fake_sentry.token}"}


async def test_redirect_loop_ends_with_unsafe_redirect(fake_sentry: FakeSentry) -> None:
    fake_sentry.faults.add(
        Fault("redirect", path=r"/organizations/$", location="/api/0/organizations/", times=None)
    )
    async with SentryClient(fake_sentry.token, base_url=fake_sentry.url) as client:
        with anyio.fail_after(10), pytest.raises(UnsafeRedirect, match="too many redirects"):
            await client.organizations.list().collect()
    assert 2 <= len(fake_sentry.requests) <= 10


async def test_redirect_to_trusted_host_carries_token(fake_sentry_factory: Factory) -> None:
    """``trusted_hosts`` opts another origin in: it then gets the token, as asked."""
    main = await fake_sentry_factory(token=TOKEN)
    mirror = await fake_sentry_factory(token=TOKEN)
    org = main.data.org_slugs()[0]
    main.faults.add(
        Fault(
            "redirect",
            path=r"/organizations/[^/]+/$",
            location=f"{mirror.url}/api/0/organizations/{org}/",
        )
    )
    async with SentryClient(TOKEN, base_url=main.url, trusted_hosts=[mirror.url]) as client:
        with anyio.fail_after(10):
            detail = await client.organizations.get(org)
    assert detail.slug == org
    assert _auth_headers(mirror) == [f"Bearer {TOKEN}"]


# Regions.


async def test_trust_region_routes_org_requests_to_region(fake_sentry_factory: Factory) -> None:
    main = await fake_sentry_factory(token=TOKEN)
    region = await fake_sentry_factory(token=TOKEN)
    org = main.data.org_slugs()[0]
    async with SentryClient(TOKEN, base_url=main.url) as client:
        client.trust_region(org, region.url)
        with anyio.fail_after(10):
            await client.organizations.get(org)
            await client.organizations.list().collect()
    assert [r.path for r in region.requests] == [f"/api/0/organizations/{org}/"]
    assert [r.path for r in main.requests] == ["/api/0/users/me/regions/", "/api/0/organizations/"]
    assert _auth_headers(region) == [f"Bearer {TOKEN}"]


async def test_use_region_follows_region_url(fake_sentry_factory: Factory) -> None:
    main = await fake_sentry_factory(token=TOKEN)
    region = await fake_sentry_factory(token=TOKEN)
    org = main.data.org_slugs()[0]
    record = main.data.org(org)
    assert record is not None
    body = main.data.org_body(record)
    body["links"] = {"organizationUrl": main.url, "regionUrl": region.url}
    main.faults.add(Fault("status", status=200, body=body, path=rf"/organizations/{org}/$"))
    async with SentryClient(TOKEN, base_url=main.url) as client:
        with anyio.fail_after(10):
            assert await client.organizations.use_region(org) == region.url
            await client.organizations.get(org)
    assert [r.path for r in region.requests] == [f"/api/0/organizations/{org}/"]


async def test_plain_http_region_url_is_ignored(fake_sentry: FakeSentry) -> None:
    """A server naming a clear-text region must not make the client send the token there:
    a self-hosted server's base URL stays in use."""
    org = fake_sentry.data.org_slugs()[0]
    record = fake_sentry.data.org(org)
    assert record is not None
    body = fake_sentry.data.org_body(record)
    body["links"] = {"organizationUrl": fake_sentry.url, "regionUrl": "http://eu.attacker.invalid"}
    fake_sentry.faults.add(Fault("status", status=200, body=body, path=rf"/organizations/{org}/$"))
    async with SentryClient(fake_sentry.token, base_url=fake_sentry.url) as client:
        with anyio.fail_after(10):
            assert await client.organizations.use_region(org) == str(client.base_url)
        assert client.url_for("/organizations/{org}/", {"org": org}).host == "127.0.0.1"
    with pytest.raises(ValueError, match="plain http"):
        SentryClient(TOKEN, base_url="https://sentry.io").region_base("http://eu.attacker.invalid")


# Configuration: clear text and header injection.


@pytest.mark.parametrize(
    "url",
    [
        "http://sentry.example.com",
        "http://10.0.0.1:9000",
        "http://127.0.0.1.attacker.invalid",
        "http://localhost.attacker.invalid",
    ],
)
def test_plain_http_to_remote_host_is_refused(url: str) -> None:
    with pytest.raises(ValueError, match="plain http"):
        SentryClient(TOKEN, base_url=url)
    with pytest.raises(ValueError, match="plain http"):
        SentryClient(TOKEN, base_url="https://sentry.example.com", trusted_hosts=[url])
    client = SentryClient(TOKEN, base_url="https://sentry.example.com")
    with pytest.raises(ValueError, match="plain http"):
        client.trust_region("acme", url)
    assert SentryClient(TOKEN, base_url=url, allow_insecure_http=True).base_url.scheme == "http"


@pytest.mark.parametrize(
    "url",
    ["http://127.0.0.1:9000", "http://localhost:9000", "http://[::1]:9000", "http://127.8.9.10"],
)
def test_plain_http_to_loopback_is_allowed(url: str) -> None:
    assert SentryClient(TOKEN, base_url=url).base_url.scheme == "http"


@pytest.mark.parametrize(
    "token", ["abc\r\nX-Injected: 1", "abc def", "abc\x00", "abc\x7f", "abc\u2028def"]
)
def test_token_that_could_inject_headers_is_refused(token: str) -> None:
    with pytest.raises(ValueError) as caught:
        SentryClient(token, base_url="https://sentry.example.com")
    assert token not in str(caught.value)


def test_credentials_in_base_url_are_refused() -> None:
    with pytest.raises(ValueError) as caught:
        SentryClient(base_url=f"https://user:{TOKEN}@sentry.example.com")
    assert TOKEN not in str(caught.value)


# The token is never shown.


def _reachable_text(exc: BaseException) -> str:
    """Everything a user could print from an exception: str, repr, traceback (also with
    each frame's locals, as sentry-sdk, rich and ``pytest --showlocals`` print it),
    attributes."""
    parts = [str(exc), repr(exc), "".join(traceback.format_exception(exc))]
    parts.append(
        "".join(traceback.TracebackException.from_exception(exc, capture_locals=True).format())
    )
    seen: set[int] = set()
    pending: list[BaseException | None] = [exc]
    while pending:
        current = pending.pop()
        if current is None or id(current) in seen or len(seen) > 20:
            continue
        seen.add(id(current))
        parts.extend(repr(value) for value in vars(current).values())
        pending.extend([current.__cause__, current.__context__])
    return "\n".join(parts)


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def _raise_each_error(server: FakeSentry) -> list[BaseException]:
    """Provoke one of every error type the client raises (a 401 for ``WRONG_TOKEN``)."""
    org = server.data.org_slugs()[0]
    caught: list[BaseException] = []

    async def expect(kind: type[BaseException], call: Callable[[], Awaitable[Any]]) -> None:
        with anyio.fail_after(15), pytest.raises(kind) as info:
            await call()
        caught.append(info.value)

    async with SentryClient(TOKEN, base_url=server.url, retry=FAST) as client:
        await expect(NotFound, lambda: client.organizations.get("no-such-org"))
        server.faults.add(Fault("status", status=500, path="/organizations/$", times=None))
        await expect(ServerError, lambda: client.organizations.list().collect())
        server.faults.clear()
        server.faults.add(
            Fault("rate_limit", retry_after=0, reset_in=None, times=None, path="/organizations/$")
        )
        await expect(RateLimited, lambda: client.organizations.list().collect())
        server.faults.clear()
        server.faults.add(Fault("invalid_json_content", path="/organizations/$", times=None))
        await expect(DecodeError, lambda: client.organizations.list().collect())
        server.faults.clear()
        server.faults.add(Fault("redirect", location="https://attacker.invalid/", path="/x/$"))
        await expect(UnsafeRedirect, lambda: client.request("GET", "/x/"))
    async with SentryClient(TOKEN, base_url=server.url, retry=RetryPolicy(attempts=1)) as client:
        server.faults.add(Fault("drop", path="/organizations/$", times=None))
        await expect(ConnectionFailed, lambda: client.organizations.list().collect())
        server.faults.clear()
    async with SentryClient(
        TOKEN, base_url=server.url, retry=RetryPolicy(attempts=1), timeout=Timeouts(read=0.2)
    ) as client:
        server.faults.add(Fault("slow", delay=1.0, path="/organizations/$"))
        await expect(RequestTimeout, lambda: client.organizations.list().collect())
    closed = f"http://127.0.0.1:{_closed_port()}"
    async with SentryClient(TOKEN, base_url=closed, retry=RetryPolicy(attempts=1)) as client:
        await expect(ConnectionFailed, lambda: client.organizations.get(org))
    async with SentryClient(TOKEN, base_url=server.url, max_body_size=10) as client:
        await expect(ResponseTooLarge, lambda: client.organizations.get(org))
    async with SentryClient(WRONG_TOKEN, base_url=server.url) as client:
        await expect(Unauthorized, lambda: client.organizations.get(org))
    async with SentryClient(TOKEN, base_url=server.url) as client:
        # A server (or proxy) that echoes the credentials back in its error body.
        server.faults.add(Fault("status", status=400, body={"detail": f"bad token {TOKEN}"}))
        await expect(BadRequest, lambda: client.organizations.get(org))
    # aiohttp cannot parse this server's answers; its exception keeps the request's headers.
    async with (
        _garbage_http_server() as garbage,
        SentryClient(TOKEN, base_url=garbage, retry=RetryPolicy(attempts=1)) as client,
    ):
        await expect(ConnectionFailed, lambda: client.organizations.get(org))
    return caught


async def test_an_unexpected_error_inside_aiohttp_leaves_no_token_in_its_traceback(
    fake_sentry: FakeSentry,
) -> None:
    """aiohttp's frames hold the request's headers, ``Authorization`` included: whatever
    it raises becomes the library's own error, chained to none of them."""
    from aiohttp import TraceConfig

    async def broken(*_: object) -> None:
        raise TypeError("a bug below the client")

    tracing = TraceConfig()
    tracing.on_request_start.append(broken)
    async with SentryClient(
        TOKEN, base_url=fake_sentry.url, retry=RetryPolicy(attempts=1), trace_configs=[tracing]
    ) as client:
        with anyio.fail_after(10), pytest.raises(ConnectionFailed, match="TypeError") as info:
            await client.organizations.get("acme")
    assert info.value.__cause__ is None and info.value.__context__ is None
    assert TOKEN not in _reachable_text(info.value)


@contextlib.asynccontextmanager
async def _garbage_http_server() -> AsyncIterator[str]:
    """A TCP server on 127.0.0.1 answering every request with a malformed status line."""

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 abc garbage\r\n\r\n")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(answer, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.close()
        await server.wait_closed()


async def test_token_absent_from_every_error(fake_sentry_factory: Factory) -> None:
    server = await fake_sentry_factory(token=TOKEN)
    errors = await _raise_each_error(server)
    assert len({type(e) for e in errors}) == 10
    assert sum(isinstance(e, ConnectionFailed) for e in errors) == 3
    for error in errors:
        text = _reachable_text(error)
        assert TOKEN not in text, f"{type(error).__name__} shows the token"
        assert WRONG_TOKEN not in text, f"{type(error).__name__} shows the token"
        assert "Bearer" not in text


async def test_errors_pickle_without_the_token(fake_sentry: FakeSentry) -> None:
    """Errors cross process boundaries (multiprocessing, task queues) without the token."""
    async with SentryClient(TOKEN, base_url=fake_sentry.url) as client:
        with anyio.fail_after(10), pytest.raises(Unauthorized) as caught:
            await client.organizations.list().collect()
    data = pickle.dumps(caught.value)
    assert TOKEN.encode() not in data
    assert pickle.loads(data).status == 401


def test_client_repr_and_state_hide_the_token() -> None:
    client = SentryClient(TOKEN, base_url="https://sentry.example.com")
    assert TOKEN not in repr(client) and TOKEN not in str(client)
    assert "token set" in repr(client)
    assert TOKEN not in repr(vars(client))
    with pytest.raises(TypeError):
        pickle.dumps(client)


async def test_token_absent_from_debug_logs(
    fake_sentry_factory: Factory, caplog: pytest.LogCaptureFixture
) -> None:
    """A full walk with 5xx, 429 and dropped connections logs plenty, never the token."""
    caplog.set_level(logging.DEBUG)
    server = await fake_sentry_factory(token=TOKEN)
    org, project = _first_project(server)
    server.faults.add(Fault("status", status=503, path="/issues/$", times=2))
    server.faults.add(Fault("rate_limit", retry_after=0, path="/issues/$", after=1))
    server.faults.add(Fault("drop", path="/issues/$", after=2, times=2))
    async with SentryClient(TOKEN, base_url=server.url, retry=FAST) as client:
        with anyio.fail_after(20):
            issues = await client.issues.list(
                org, project=project, query="", page_size=10
            ).collect()
    assert len(issues) == len(server.data.issue_ids(org, project=project))
    retries = [r for r in caplog.records if "retrying" in r.getMessage()]
    assert len(retries) >= 4, "the faults should have caused retries"
    assert any(r.levelno == logging.DEBUG for r in caplog.records)
    for record in caplog.records:
        assert TOKEN not in record.getMessage()
        assert TOKEN not in repr(record.args)
        assert TOKEN not in (record.exc_text or "")
    assert TOKEN not in caplog.text


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("then", "error"),
    [
        ("503", ServerError),
        ("garbage", DecodeError),
        ("huge", ResponseTooLarge),
        ("loop", UnsafeRedirect),
        ("drop", ConnectionFailed),
    ],
)
async def test_token_a_redirect_puts_in_the_url_is_never_shown(
    then: str, error: type[Exception], caplog: pytest.LogCaptureFixture
) -> None:
    """A trusted front end echoes the credentials into a same-origin redirect's query: the
    URL the client then asks for holds the token, and no error or log line shows it."""
    caplog.set_level(logging.DEBUG)

    async def moved(request: web.Request) -> web.StreamResponse:
        token = request.headers["Authorization"].split()[1]
        raise web.HTTPFound(f"/api/0/there/?then={then}&from={token}")

    async def there(request: web.Request) -> web.StreamResponse:
        if then == "503":
            return web.json_response({"detail": "down"}, status=503)
        if then == "garbage":
            return web.Response(body=b"<html>", content_type="application/json")
        if then == "huge":
            return web.json_response(list(range(100)))
        if then == "loop":
            raise web.HTTPFound(str(request.rel_url))
        assert request.transport is not None
        request.transport.abort()
        return web.Response()

    app = web.Application()
    app.router.add_get("/api/0/moved/", moved)
    app.router.add_get("/api/0/there/", there)
    async with (
        local_app(app) as url,
        SentryClient(TOKEN, base_url=url, retry=FAST, max_body_size=100) as client,
    ):
        with anyio.fail_after(15), pytest.raises(error) as caught:
            await client.request("GET", "/moved/")
    assert "/api/0/there/" in str(caught.value), "the error still names where it went"
    assert TOKEN not in _reachable_text(caught.value)
    assert TOKEN not in getattr(caught.value, "url", "")
    assert any(r.levelno == logging.DEBUG for r in caplog.records) or then == "drop"
    assert TOKEN not in caplog.text


# The command line.


@pytest.fixture
def restore_logging() -> Iterator[None]:
    """The CLI configures the ``sentry_async`` logger for its process; undo that."""
    library_logger = logging.getLogger("sentry_async")
    saved = (library_logger.handlers[:], library_logger.level, library_logger.propagate)
    yield
    library_logger.handlers[:], library_logger.level, library_logger.propagate = saved


async def _run_cli(argv: list[str]) -> tuple[int, str, str]:
    """``main`` in a worker thread (it runs its own event loop), with captured output."""
    out, err = io.StringIO(), io.StringIO()

    def run() -> int:
        return main(argv, stdout=out, stderr=err)

    with anyio.fail_after(30):
        code = await anyio.to_thread.run_sync(run)
    return code, out.getvalue(), err.getvalue()


def _export_args(server: FakeSentry, token_file: Path, output: Path) -> list[str]:
    org, project = _first_project(server)
    return [
        "export",
        "issues",
        "--org",
        org,
        "--project",
        project,
        "--since",
        (FIXED_NOW - timedelta(days=30)).isoformat(),
        "--until",
        FIXED_NOW.isoformat(),
        "--window",
        "none",
        "--base-url",
        server.url,
        "--token-file",
        str(token_file),
        "--output",
        str(output),
        "--verbose",
    ]


@pytest.mark.usefixtures("restore_logging")
async def test_cli_success_never_prints_the_token(
    fake_sentry_factory: Factory, tmp_path: Path
) -> None:
    server = await fake_sentry_factory(token=TOKEN)
    server.faults.add(Fault("status", status=503, path="/issues/$"))
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN + "\n")
    code, out, err = await _run_cli(_export_args(server, token_file, tmp_path / "out"))
    assert code == 0, err
    assert "items" in out and "retrying" in err
    assert TOKEN not in out and TOKEN not in err
    assert {f"Bearer {TOKEN}"} == set(_auth_headers(server))


@pytest.mark.usefixtures("restore_logging")
async def test_cli_auth_failure_never_prints_the_token(
    fake_sentry_factory: Factory, tmp_path: Path
) -> None:
    server = await fake_sentry_factory(token=TOKEN)
    token_file = tmp_path / "token"
    token_file.write_text(WRONG_TOKEN)
    code, out, err = await _run_cli(_export_args(server, token_file, tmp_path / "out"))
    assert code == EXIT_AUTH
    assert "authentication failed" in err and "Traceback" in err
    assert WRONG_TOKEN not in out + err and TOKEN not in out + err


def test_cli_help_never_prints_the_token(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("SENTRY_AUTH_TOKEN", TOKEN)
    for argv in (["--help"], ["export", "--help"]):
        with pytest.raises(SystemExit) as caught:
            main(argv)
        assert caught.value.code == 0
    captured = capsys.readouterr()
    assert "--token-file" in captured.out
    assert TOKEN not in captured.out + captured.err


async def test_cli_subprocess_with_env_token(fake_sentry_factory: Factory, tmp_path: Path) -> None:
    """The real entry point, token from the environment, against a server that refuses it."""
    server = await fake_sentry_factory(token=TOKEN)
    args = _export_args(server, tmp_path / "unused", tmp_path / "out")
    at = args.index("--token-file")
    del args[at : at + 2]
    env = {**os.environ, "SENTRY_AUTH_TOKEN": WRONG_TOKEN, "PYTHONUNBUFFERED": "1"}
    with anyio.fail_after(30):
        result = await anyio.run_process(
            [sys.executable, "-m", "sentry_async", *args], env=env, check=False
        )
    output = (result.stdout + result.stderr).decode()
    assert result.returncode == EXIT_AUTH, output
    assert "authentication failed" in output
    assert WRONG_TOKEN not in output
    assert _auth_headers(server) == [f"Bearer {WRONG_TOKEN}"]


@pytest.mark.anyio
@pytest.mark.parametrize("location", ["http://[::1", "mailto:someone@example.com"])
async def test_unusable_redirect_location_is_a_typed_error(
    fake_sentry: FakeSentry, location: str
) -> None:
    fake_sentry.faults.add(Fault("redirect", path="/organizations/$", location=location))
    async with SentryClient(fake_sentry.token, base_url=fake_sentry.url) as client:
        with anyio.fail_after(10), pytest.raises(UnsafeRedirect):
            await client.organizations.list().collect()
