"""Writes are never made to look done when they were not, nor resent when they may have
been made: redirects that would change a write's method, and failures after sending.

Servers here are small aiohttp servers on 127.0.0.1 inside each test.
"""

from __future__ import annotations

import logging
import socket

import anyio
import pytest
from _local_server import local_app
from aiohttp import web

from sentry_async import ConnectionFailed, RetryPolicy, SentryClient

pytestmark = pytest.mark.anyio

TOKEN = "sntrys_" + "w" * 40
FAST = RetryPolicy(attempts=3, backoff_base=0.01, backoff_max=0.02)


async def test_a_write_answered_before_its_body_broke_off_says_it_may_have_been_made() -> None:
    created: list[bytes] = []

    async def handler(request: web.Request) -> web.StreamResponse:
        created.append(await request.read())
        response = web.StreamResponse(
            status=201, headers={"Content-Length": "200", "Content-Type": "application/json"}
        )
        await response.prepare(request)
        await response.write(b'{"id": "42", "na')
        assert request.transport is not None
        request.transport.close()
        return response

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handler)
    async with (
        local_app(app) as url,
        SentryClient(TOKEN, base_url=url, allow_insecure_http=True, retry=FAST) as client,
    ):
        with anyio.fail_after(10), pytest.raises(ConnectionFailed) as caught:
            await client.request("POST", "/projects/acme/web/keys/", json={"name": "k"})
    assert len(created) == 1, "a write that may have been made is not resent"
    assert caught.value.status == 201
    assert caught.value.maybe_sent is True
    assert "201" in str(caught.value)


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


async def test_a_write_refused_before_it_was_sent_is_retried_and_says_so(
    caplog: pytest.LogCaptureFixture,
) -> None:
    base = f"http://127.0.0.1:{_closed_port()}"
    caplog.set_level(logging.WARNING, logger="sentry_async")
    async with SentryClient(TOKEN, base_url=base, allow_insecure_http=True, retry=FAST) as client:
        with anyio.fail_after(10), pytest.raises(ConnectionFailed) as caught:
            await client.request("POST", "/projects/acme/web/keys/", json={"name": "k"})
    assert caught.value.maybe_sent is False
    assert caught.value.status is None
    retries = [r for r in caplog.records if r.getMessage().startswith("retrying POST")]
    assert len(retries) == FAST.attempts - 1, "nothing was sent: safe to send again"
