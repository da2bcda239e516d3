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
    status, raw, headers = await api_raw(server, "GET", f"organizations/{org}/{path}", params)
    return status, msgspec.json.decode(raw), headers


async def api_raw(
    server: FakeSentry,
    method: str,
    path: str,
    params: list[tuple[str, str]] | None = None,
    body: Any = None,
    *,
    token: str | None = "",
    base: str | None = None,
) -> tuple[int, bytes, CIMultiDictProxy[str]]:
    """``method /api/0/{path}`` (on ``base``, else the server's URL) with ``token`` (the
    fake's own when empty, none when ``None``) and ``body`` as JSON (none for ``None``):
    the status, the raw answer and its headers."""
    headers = {} if token is None else {"Authorization": f"Bearer {token or server.token}"}
    if body is not None:
        headers["Content-Type"] = "application/json"
    async with (
        aiohttp.ClientSession() as http,
        http.request(
            method,
            f"{base or server.url}/api/0/{path}",
            params=params or [],
            data=None if body is None else msgspec.json.encode(body),
            headers=headers,
        ) as reply,
    ):
        return reply.status, await reply.read(), reply.headers


async def api_send(
    server: FakeSentry,
    method: str,
    path: str,
    params: list[tuple[str, str]] | None = None,
    body: Any = None,
    *,
    base: str | None = None,
) -> tuple[int, Any]:
    """:func:`api_raw` with the fake's token: the status and the decoded answer (``None``
    for an empty one)."""
    status, raw, _ = await api_raw(server, method, path, params, body, base=base)
    return status, msgspec.json.decode(raw) if raw else None


async def org_send(
    server: FakeSentry,
    method: str,
    path: str,
    params: list[tuple[str, str]],
    body: Any = None,
    *,
    org: str = "org-0",
) -> tuple[int, Any]:
    """``method /api/0/organizations/{org}/{path}``, as :func:`api_send` sends it."""
    return await api_send(server, method, f"organizations/{org}/{path}", params, body)
