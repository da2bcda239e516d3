"""Edges of how the client reaches Sentry: a proxy credential held in the user name alone,
and the connector's options on Pythons where aiohttp deprecates one of them.

Servers are the fake Sentry and a small proxy on 127.0.0.1 inside each test.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import pickle
import sys
import traceback
import warnings
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from urllib.parse import quote

import aiohttp
import aiohttp.connector
import anyio
import pytest
from _hooks_recorder import Recorder, memory_spans

from sentry_async import (
    ConnectionFailed,
    OpenTelemetryHooks,
    RetryPolicy,
    SentryClient,
    SentryError,
    ServerError,
    _network,
)
from sentry_async._protocol.proxies import ProxySettings
from sentry_async.testing import FakeSentry

pytestmark = pytest.mark.anyio

TOKEN = "tok-edges-5d4c3b2a1f"
API_KEY = "APIKEY0123456789abcdef"
ONE_TRY = RetryPolicy(attempts=1)


@asynccontextmanager
async def echoing_proxy() -> AsyncIterator[str]:
    """A proxy on 127.0.0.1 that answers every request (``CONNECT`` or forwarded) with a
    502 whose reason phrase and page echo what it got: the ``Proxy-Authorization`` header,
    the ``user:password`` it decodes to, and that pair as a proxy URL writes it. Yields the
    proxy's URL, without credentials."""
    writers: set[asyncio.StreamWriter] = set()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writers.add(writer)
        try:
            head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1")
            sent = [
                line.split(":", 1)[1].strip()
                for line in head.split("\r\n")
                if line.lower().startswith("proxy-authorization:")
            ]
            pair = base64.b64decode(sent[0].removeprefix("Basic ")).decode() if sent else "-"
            echo = f"header {' '.join(sent) or '-'} pair {pair} url http://{pair}@proxy"
            body = f"<html>bad gateway; you sent {echo}</html>".encode()
            writer.write(
                f"HTTP/1.1 502 Bad Gateway {echo}\r\nContent-Length: {len(body)}\r\n"
                "Connection: close\r\n\r\n".encode()
                + body
            )
            await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError):
            pass
        finally:
            writer.close()
            writers.discard(writer)

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    try:
        yield f"127.0.0.1:{server.sockets[0].getsockname()[1]}"
    finally:
        server.close()
        for writer in list(writers):
            writer.close()
        await server.wait_closed()


def _shown(error: BaseException) -> str:
    """Everything an exception shows: message, repr, traceback, pickle, causes, body."""
    texts = ["".join(traceback.format_exception(error)), repr(pickle.dumps(error))]
    current: BaseException | None = error
    while current is not None:
        texts += [str(current), repr(current)]
        for name in ("cause", "body", "detail"):
            texts.append(str(getattr(current, name, "")))
        current = current.__cause__ or current.__context__
    return "\n".join(texts)


# ---------------------------------------------------------------- a user name as the secret

# How a proxy URL can hold a credential in its user name alone: an API key with an empty
# password (Zyte's ``http://<API_KEY>:@proxy``), or with none at all.
USER_ONLY = {"empty-password": f"{API_KEY}:@", "no-password": f"{API_KEY}@"}


@pytest.mark.parametrize("scheme", ["https", "http"])
@pytest.mark.parametrize("written", sorted(USER_ONLY))
async def test_a_proxy_credential_in_the_user_name_alone_is_blanked_out(
    caplog: pytest.LogCaptureFixture, scheme: str, written: str
) -> None:
    """A refused tunnel (https: the reason phrase) or a proxy's 502 page (http) echoing an
    API key held in the proxy URL's user name shows none of it, in any form the proxy
    sent it, in the error, its traceback, its pickle, a log line, a hook event or a span."""
    caplog.set_level(logging.DEBUG, logger="sentry_async")
    recorder = Recorder()
    exporter, provider = memory_spans()
    async with echoing_proxy() as proxy, FakeSentry(scale="small", token=TOKEN) as server:
        # Nothing listens on port 9; a refused tunnel never reaches it.
        base_url = "https://127.0.0.1:9" if scheme == "https" else server.url
        async with SentryClient(
            TOKEN,
            base_url=base_url,
            proxy=f"http://{USER_ONLY[written]}{proxy}",
            retry=ONE_TRY,
            hooks=[recorder, OpenTelemetryHooks(provider)],
        ) as client:
            with anyio.fail_after(20), pytest.raises(SentryError) as info:
                await client.request("GET", "/organizations/")
    error = info.value
    assert isinstance(error, ConnectionFailed if scheme == "https" else ServerError)
    assert "********" in str(error)
    spans = [repr(dict(span.attributes or {})) for span in exporter.get_finished_spans()]
    shown = "\n".join([_shown(error), caplog.text, *map(repr, recorder.events), *spans])
    for form in (API_KEY, base64.b64encode(f"{API_KEY}:".encode()).decode()):
        assert form not in shown
    if scheme == "http":
        assert "bad gateway; you sent" in error.body.decode()  # the page is kept, redacted


ODD = "key/with:odd@chars"


@pytest.mark.parametrize(
    ("proxy", "secret", "pair"),
    [
        (f"http://{API_KEY}:@proxy:3128", API_KEY, f"{API_KEY}:"),
        (f"http://{API_KEY}@proxy:3128", API_KEY, f"{API_KEY}:"),
        (f"http://{quote(ODD, safe='')}:@proxy:3128", ODD, f"{ODD}:"),
        ("http://:0nly-a-passw0rd@proxy:3128", "0nly-a-passw0rd", ":0nly-a-passw0rd"),
    ],
)
def test_whatever_a_proxy_url_holds_as_its_credential_is_redacted(
    proxy: str, secret: str, pair: str
) -> None:
    """The user name is the credential when no password stands beside it: it is blanked
    out raw, percent-encoded as written, and base64 (alone, and the ``Basic`` value)."""
    settings = ProxySettings({"http": proxy, "https": proxy})
    echoes = [
        secret,
        quote(secret, safe=""),
        base64.b64encode(secret.encode()).decode(),
        base64.b64encode(pair.encode()).decode(),
    ]
    for echo in echoes:
        text = settings.redact_text(f"you sent {echo}.")
        assert secret not in text and echo not in text
        assert echo.encode() not in settings.redact(f"you sent {echo}.".encode())


def test_a_user_name_beside_a_password_is_kept() -> None:
    """With a password the user name is an account's name, not the secret: a proxy page
    that names it stays readable, its password blanked out."""
    settings = ProxySettings({"https": "http://alice:pr0xy-s3cret@proxy:3128"})
    assert settings.redact_text("denied for alice:pr0xy-s3cret") == "denied for alice:********"


# ---------------------------------------------------------------- enable_cleanup_closed


@pytest.fixture
def cleanup_fixed(monkeypatch: pytest.MonkeyPatch) -> None:
    """This Python as aiohttp sees 3.12.8+ and 3.13.1+, where asyncio no longer leaks
    closed TLS transports and ``enable_cleanup_closed=True`` is deprecated (the flag is
    new in aiohttp 3.10.11: set where it is missing)."""
    monkeypatch.setattr(aiohttp.connector, "NEEDS_CLEANUP_CLOSED", False, raising=False)


@pytest.mark.usefixtures("cleanup_fixed")
async def test_a_client_starts_under_warnings_as_errors_where_cleanup_is_fixed() -> None:
    """A user's ``filterwarnings = error`` (or ``-W error``) must not turn the client's
    start into aiohttp's DeprecationWarning, nor should any client warn at all."""
    async with FakeSentry(scale="small", token=TOKEN) as server:
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            async with SentryClient(TOKEN, base_url=server.url, proxy=None) as client:
                with anyio.fail_after(20):
                    assert await client.organizations.list().collect()
            async with server.client() as client:
                with anyio.fail_after(20):
                    assert await client.organizations.list().collect()


async def test_the_client_still_cleans_up_closed_tls_where_python_needs_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """On a Python that leaks closed TLS transports, aiohttp's clean-up stays on."""
    monkeypatch.setattr(aiohttp.connector, "NEEDS_CLEANUP_CLOSED", True, raising=False)
    async with FakeSentry(scale="small", token=TOKEN) as server, server.client() as client:
        with anyio.fail_after(20):
            assert await client.organizations.list().collect()
        connector = client._get_transport().session.connector
        assert isinstance(connector, aiohttp.TCPConnector)
        assert connector._cleanup_closed_disabled is False


def test_cleanup_closed_follows_aiohttp_and_python_without_the_flag(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """aiohttp's own answer when it gives one; an aiohttp without the flag (before 3.10.11,
    or one that drops it) gets the answer it would give: needed before the fix of
    cpython#118960 (3.12.8, 3.13.1)."""
    for value in (True, False):
        monkeypatch.setattr(aiohttp.connector, "NEEDS_CLEANUP_CLOSED", value, raising=False)
        assert _network.cleanup_closed() is value
    monkeypatch.delattr(aiohttp.connector, "NEEDS_CLEANUP_CLOSED")
    for version, needed in [
        ((3, 10, 14), True),
        ((3, 12, 7), True),
        ((3, 12, 8), False),
        ((3, 13, 0), True),
        ((3, 13, 1), False),
        ((3, 14, 0), False),
    ]:
        monkeypatch.setattr(sys, "version_info", (*version, "final", 0))
        assert _network.cleanup_closed() is needed
