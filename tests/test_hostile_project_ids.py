"""A projects list naming a project id that is not a 64-bit integer (a hostile or broken
server): a typed error naming the list, never an ``int()`` failing deep in a caller."""

from __future__ import annotations

import anyio
import pytest
from _local_server import local_app
from aiohttp import web

from sentry_async import DecodeError, RetryPolicy, SentryClient

LINK = (
    '<x?cursor=0:0:1>; rel="previous"; results="false"; cursor="0:0:1", '
    '<x?cursor=0:100:0>; rel="next"; results="false"; cursor="0:100:0"'
)


def _server(project_id: str) -> web.Application:
    async def projects(request: web.Request) -> web.Response:
        row = {"id": project_id, "slug": "backend", "name": "b", "hasAccess": True}
        return web.json_response([row], headers={"Link": LINK})

    async def usage(request: web.Request) -> web.Response:
        return web.json_response(
            {"start": "2026-01-01T00:00:00Z", "end": "2026-01-02T00:00:00Z",
             "intervals": [], "groups": []}
        )

    app = web.Application()
    app.router.add_get("/api/0/organizations/acme/projects/", projects)
    app.router.add_get("/api/0/organizations/acme/stats_v2/", usage)
    return app


@pytest.mark.parametrize("project_id", ["abc", "9" * 5000, "", "-1", "١٢"])
async def test_a_project_id_that_is_no_integer_is_a_decode_error(project_id: str) -> None:
    quick = RetryPolicy(attempts=1)
    async with (
        local_app(_server(project_id)) as url,
        SentryClient("t" * 40, base_url=url, retry=quick) as client,
    ):
        with anyio.fail_after(10), pytest.raises(DecodeError) as caught:
            await client.stats.usage("acme", category="error", project="backend", period="1d")
    assert "/organizations/acme/projects/" in str(caught.value)
