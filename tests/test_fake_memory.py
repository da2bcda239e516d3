"""A stopped fake server leaves nothing behind: a suite starts thousands, and each one's
data kept alive would make every later garbage collection (and so every test) slower."""

from __future__ import annotations

import gc
import weakref

import aiohttp

from sentry_async.testing import FakeSentry


async def test_a_closed_server_that_answered_requests_is_freed() -> None:
    server = FakeSentry(scale="small")
    await server.start()
    org = server.data.org_slugs()[0]
    async with aiohttp.ClientSession() as session:
        for path in (f"/api/0/organizations/{org}/", "/api/0/nowhere/"):
            async with session.get(
                server.url + path, headers={"Authorization": f"Bearer {server.token}"}
            ) as response:
                await response.read()
    await server.close()
    data = weakref.ref(server.data)
    del server
    gc.collect()
    assert data() is None, "a closed server's data is still referenced"


async def test_every_request_is_recorded_whatever_its_path() -> None:
    """The request checks wrap the routes: a path no route pattern would take (a line break
    in it) still reaches one, is recorded, and gets aiohttp's bare 404 as before."""
    server = FakeSentry(scale="small")
    await server.start()
    try:
        paths = ("/api/0/foo%0Abar/", "/x%0Ay", "/api/0/organizations/%0A/")
        async with aiohttp.ClientSession() as session:
            for path in paths:
                async with session.get(
                    server.url + path, headers={"Authorization": f"Bearer {server.token}"}
                ) as response:
                    assert response.status == 404
                    await response.read()
        assert [record.path for record in server.requests] == [
            "/api/0/foo\nbar/",
            "/x\ny",
            "/api/0/organizations/\n/",
        ]
    finally:
        await server.close()
