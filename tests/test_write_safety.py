"""Writes are never made to look done when they were not, nor resent when they may have
been made: redirects that would change a write's method, and failures after sending.

Servers here are small aiohttp servers on 127.0.0.1 inside each test.
"""

from __future__ import annotations

import logging
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio
import pytest
from _local_server import local_app
from aiohttp import web

from sentry_async import ConnectionFailed, RetryPolicy, SentryClient, UnsafeRedirect

pytestmark = pytest.mark.anyio

TOKEN = "sntrys_" + "w" * 40
FAST = RetryPolicy(attempts=3, backoff_base=0.01, backoff_max=0.02)


def _moved_app(status: int, seen: list[tuple[str, str, bytes]]) -> web.Application:
    """The API moved under a new prefix: every ``/old/`` path answers ``status`` to it."""

    async def handler(request: web.Request) -> web.StreamResponse:
        seen.append((request.method, request.path, await request.read()))
        if request.path.startswith("/old/"):
            location = request.path_qs.replace("/old/", "/", 1)
            return web.Response(status=status, headers={"Location": location})
        if request.method == "GET":
            return web.json_response({"id": "1", "status": "unresolved"})
        return web.json_response({"id": "1", "status": "resolved"})

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handler)
    return app


@asynccontextmanager
async def _moved(status: int, seen: list[tuple[str, str, bytes]]) -> AsyncIterator[SentryClient]:
    """A client whose ``base_url`` is under the moved prefix."""
    async with (
        local_app(_moved_app(status, seen)) as url,
        SentryClient(TOKEN, base_url=f"{url}/old", allow_insecure_http=True, retry=FAST) as client,
    ):
        yield client


@pytest.mark.parametrize("status", [301, 302, 303])
@pytest.mark.parametrize("method", ["PUT", "DELETE", "POST", "PATCH"])
async def test_a_write_is_not_turned_into_a_read_by_a_redirect(status: int, method: str) -> None:
    seen: list[tuple[str, str, bytes]] = []
    async with _moved(status, seen) as client:
        with anyio.fail_after(10), pytest.raises(UnsafeRedirect) as caught:
            await client.send(method, "/organizations/acme/issues/1/", json={"a": 1})
    assert [m for m, _, _ in seen] == [method], "refused at once, neither followed nor retried"
    error = caught.value
    assert error.status == status
    assert "/api/0/organizations/acme/issues/1/" in str(error), "names where it points"
    assert TOKEN not in str(error)


async def test_issues_update_through_a_301_raises_rather_than_returning_the_old_issue() -> None:
    seen: list[tuple[str, str, bytes]] = []
    async with _moved(301, seen) as client:
        with anyio.fail_after(10), pytest.raises(UnsafeRedirect):
            await client.issues.update("acme", "1", status="resolved")
    assert all(m == "PUT" for m, _, _ in seen)


@pytest.mark.parametrize("status", [307, 308])
async def test_307_and_308_keep_a_writes_method_and_body(status: int) -> None:
    seen: list[tuple[str, str, bytes]] = []
    async with _moved(status, seen) as client:
        with anyio.fail_after(10):
            response = await client.send(
                "PUT", "/organizations/acme/issues/1/", json={"status": "resolved"}
            )
    assert response.status == 200
    assert [(m, p) for m, p, _ in seen] == [
        ("PUT", "/old/api/0/organizations/acme/issues/1/"),
        ("PUT", "/api/0/organizations/acme/issues/1/"),
    ]
    assert seen[0][2] == seen[1][2] and b"resolved" in seen[1][2]


@pytest.mark.parametrize("status", [301, 302])
async def test_a_read_still_follows_a_301_or_302(status: int) -> None:
    seen: list[tuple[str, str, bytes]] = []
    async with _moved(status, seen) as client:
        with anyio.fail_after(10):
            response = await client.send("GET", "/organizations/acme/issues/1/")
    assert response.status == 200
    assert [m for m, _, _ in seen] == ["GET", "GET"]


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
