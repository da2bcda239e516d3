"""Plain HTTP against the fake server, without the client: what a test of the fake's own
answers (status, body, headers) sends when the client would refuse the request first."""

from __future__ import annotations

from typing import Any

import aiohttp
import msgspec
from multidict import CIMultiDictProxy

from sentry_async.testing import FakeSentry


async def org_get(
    server: FakeSentry, path: str, params: list[tuple[str, str]], *, org: str = "org-0"
) -> tuple[int, Any, CIMultiDictProxy[str]]:
    """``GET /api/0/organizations/{org}/{path}`` with the fake's token (``org-0`` is the
    first organization of the fake's data)."""
    async with (
        aiohttp.ClientSession() as http,
        http.get(
            f"{server.url}/api/0/organizations/{org}/{path}",
            params=params,
            headers={"Authorization": f"Bearer {server.token}"},
        ) as reply,
    ):
        return reply.status, msgspec.json.decode(await reply.read()), reply.headers
