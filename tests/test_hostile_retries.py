"""Retries that fit the failure: TLS errors are final, a 500 on a safe request is retried.

Servers here are small TCP or aiohttp servers on 127.0.0.1 inside each test.
"""

from __future__ import annotations

import asyncio
import shutil
import ssl
import subprocess
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import aiohttp
import anyio
import pytest
from _local_server import local_app
from aiohttp import web

from sentry_async import ConnectionFailed, RetryPolicy, SentryClient, ServerError

pytestmark = pytest.mark.anyio

FAST = RetryPolicy(attempts=4, backoff_base=0.01, backoff_max=0.02)


@asynccontextmanager
async def counting_server(
    context: ssl.SSLContext | None = None,
) -> AsyncIterator[tuple[int, list[int]]]:
    """A TCP server answering every connection with a plain-HTTP 400; yields its port and
    a one-element list counting connections."""
    connections = [0]
    if context is not None:
        # The handler only runs after a handshake succeeds: count the hellos instead.
        def hello(*_: object) -> None:
            connections[0] += 1

        context.sni_callback = hello

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connections[0] += 1
        try:
            # Answer the first bytes, as a plain HTTP server answers a TLS hello.
            await asyncio.wait_for(reader.read(1), 5)
            writer.write(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 2\r\n\r\n[]")
            await writer.drain()
        except (OSError, asyncio.IncompleteReadError, asyncio.TimeoutError, ssl.SSLError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(answer, "127.0.0.1", 0, ssl=context)
    port = server.sockets[0].getsockname()[1]
    try:
        yield port, connections
    finally:
        server.close()
        await server.wait_closed()


async def test_tls_to_a_plain_http_port_is_not_retried() -> None:
    """``WRONG_VERSION_NUMBER``: the same handshake would fail the same way."""
    async with (
        counting_server() as (port, connections),
        SentryClient("t", base_url=f"https://127.0.0.1:{port}", retry=FAST) as client,
    ):
        with anyio.fail_after(10), pytest.raises(ConnectionFailed) as caught:
            await client.request("GET", "/things/")
    assert connections[0] == 1
    assert "127.0.0.1" in caught.value.url


@pytest.fixture
def self_signed(tmp_path: Path) -> ssl.SSLContext:
    if shutil.which("openssl") is None:
        pytest.skip("needs the openssl command to make a certificate")
    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
            "ec_paramgen_curve:prime256v1", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
            "-keyout", str(key), "-out", str(cert),
        ],
        check=True,
        capture_output=True,
        timeout=30,
    )  # fmt: skip
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    return context


async def test_an_untrusted_certificate_is_not_retried(self_signed: ssl.SSLContext) -> None:
    """``CERTIFICATE_VERIFY_FAILED``: a self-signed certificate stays self-signed."""
    async with (
        counting_server(self_signed) as (port, connections),
        SentryClient("t", base_url=f"https://127.0.0.1:{port}", retry=FAST) as client,
    ):
        with anyio.fail_after(10), pytest.raises(ConnectionFailed) as caught:
            await client.request("GET", "/things/")
    assert connections[0] == 1
    assert "certificate" in str(caught.value).lower()


async def test_a_500_on_a_safe_request_is_retried_within_the_budget() -> None:
    """Sentry answers transient database failures with 500 "Internal Error"."""
    statuses = [500, 500, 200]
    seen: list[str] = []

    async def handle(request: web.Request) -> web.Response:
        seen.append(request.method)
        status = statuses[len(seen) - 1] if len(seen) <= len(statuses) else 200
        if status == 500:
            return web.json_response({"detail": "Internal Error"}, status=500)
        return web.json_response([1, 2])

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handle)
    async with local_app(app) as url, SentryClient("t", base_url=url, retry=FAST) as client:
        with anyio.fail_after(10):
            assert await client.paginate("/things/").collect() == [1, 2]
            seen.clear()
            statuses[:] = [500]
            with pytest.raises(ServerError):
                await client.request("POST", "/things/", json={"merge": 1})
    assert seen == ["POST"], "a request unsafe to repeat is not retried after a 500"


async def test_a_session_passed_in_never_resends_behind_the_retry_policy() -> None:
    """aiohttp resends a GET/PUT/DELETE once when a pooled connection turns out closed; on a
    session the user passes, that is turned off too, so a PUT that is not safe to repeat
    (a merge) is sent once, whatever happens to the connection."""
    puts: list[str] = []

    async def handle(request: web.Request) -> web.StreamResponse:
        if request.method == "PUT":
            puts.append(request.path)
            assert request.transport is not None
            request.transport.close()  # drop the connection without an answer
        return web.json_response([])

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handle)
    async with local_app(app) as url, aiohttp.ClientSession() as session:
        async with SentryClient("t", base_url=url, session=session, retry=FAST) as client:
            with anyio.fail_after(10):
                await client.request("GET", "/warm/")  # a pooled connection to reuse
                with pytest.raises(ConnectionFailed):
                    await client.request("PUT", "/issues/", json={"merge": 1})
        assert not session.closed, "a session passed in stays the caller's"
    assert puts == ["/api/0/issues/"]
