"""``sentry.download(path, file)``: a file appears under its name only once complete.

The body goes to ``<file>.part`` and is renamed when the last byte is written, so a
download cut off mid-body (cancelled, or failing after its first byte, which is never
retried) leaves neither a truncated file that looks whole nor the part behind it.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterator
from pathlib import Path

import anyio
import anyio.lowlevel
import pytest
from _local_server import local_app
from aiohttp import web

from sentry_async import RetryPolicy, SentryClient, SentryError

pytestmark = pytest.mark.anyio

ANNOUNCED = 100_000
FIRST = b"x" * 1000


@contextlib.asynccontextmanager
async def half_sent(then: str) -> AsyncIterator[tuple[SentryClient, anyio.Event]]:
    """A client of a server that announces ``ANNOUNCED`` bytes, sends ``FIRST`` (then sets
    the yielded event), and then waits or (``then="cut"``) cuts the connection;
    ``/whole/`` answers the whole body."""
    sent, release = anyio.Event(), anyio.Event()

    async def handle(request: web.Request) -> web.StreamResponse:
        if request.path.startswith("/api/0/whole/"):
            return web.Response(body=b"y" * ANNOUNCED)
        response = web.StreamResponse(headers={"Content-Length": str(ANNOUNCED)})
        await response.prepare(request)
        await response.write(FIRST)
        sent.set()
        if then == "cut":
            assert request.transport is not None
            request.transport.close()
            return response
        with anyio.fail_after(20):
            await release.wait()
        return response

    app = web.Application()
    app.router.add_get("/{tail:.*}", handle)
    async with (
        local_app(app) as url,
        SentryClient("t", base_url=url, retry=RetryPolicy(attempts=1)) as client,
    ):
        try:
            yield client, sent
        finally:
            release.set()


async def test_a_complete_download_is_renamed_from_its_part(tmp_path: Path) -> None:
    target = tmp_path / "blob.bin"
    async with half_sent("wait") as (client, _):
        assert await client.download("/whole/", target) == ANNOUNCED
        assert await client.download("/whole/", str(target)) == ANNOUNCED  # replaced
    assert os.listdir(tmp_path) == ["blob.bin"]
    assert target.read_bytes() == b"y" * ANNOUNCED


async def test_a_download_cancelled_mid_body_leaves_no_file(tmp_path: Path) -> None:
    target = tmp_path / "blob.bin"
    async with half_sent("wait") as (client, sent):
        with anyio.fail_after(20):
            async with anyio.create_task_group() as tg:
                tg.start_soon(client.download, "/half/", target)
                await sent.wait()  # the body has begun
                for _ in range(20):
                    await anyio.lowlevel.checkpoint()
                tg.cancel_scope.cancel()
    assert os.listdir(tmp_path) == []


async def test_a_download_failing_after_its_first_byte_leaves_no_file(tmp_path: Path) -> None:
    target = tmp_path / "blob.bin"
    async with half_sent("cut") as (client, _):
        with anyio.fail_after(20), pytest.raises(SentryError):
            await client.download("/half/", target)
    assert os.listdir(tmp_path) == []
