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
