"""What ``sentry-async query`` prints for answers the bundled fake does not make: empty
results, long series, large numbers, wide characters and text that spreadsheets run."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from functools import partial
from typing import Any

import anyio
import pytest
from _local_server import local_app
from aiohttp import web

from sentry_async.cli import main

TOKEN = "sntrys_query-output-token-0123456789abcdef0123456789abcdef"
HOUR = 3600
T0 = 1767225600
"""2026-01-01T00:00:00Z."""


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def _link(request: web.Request, index: int, count: int) -> str:
    more = "true" if index + 1 < count else "false"
    url = f"http://{request.host}{request.path}?cursor=0:{index + 1}:0"
    return f'<{url}>; rel="next"; results="{more}"; cursor="0:{index + 1}:0"'


@asynccontextmanager
async def _sentry(
    pages: Sequence[dict[str, Any]] = (),
    stats: dict[str, Any] | None = None,
    usage: dict[str, Any] | None = None,
) -> AsyncIterator[str]:
    """A Sentry answering Discover with ``pages`` (in turn, by cursor), events-stats with
    ``stats`` and stats_v2 with ``usage``; yields its base URL."""

    async def events(request: web.Request) -> web.Response:
        index = int(request.query.get("cursor", "0:0:0").split(":")[1])
        return web.json_response(pages[index], headers={"Link": _link(request, index, len(pages))})

    async def events_stats(request: web.Request) -> web.Response:
        return web.json_response(stats)

    async def stats_v2(request: web.Request) -> web.Response:
        return web.json_response(usage)

    app = web.Application()
    app.router.add_get("/api/0/organizations/{org}/events/", events)
    app.router.add_get("/api/0/organizations/{org}/events-stats/", events_stats)
    app.router.add_get("/api/0/organizations/{org}/stats_v2/", stats_v2)
    async with local_app(app) as url:
        yield url


async def _run(
    argv: Sequence[str], url: str, out: io.StringIO | None = None
) -> tuple[int, str, str]:
    out = out if out is not None else io.StringIO()
    err = io.StringIO()
    argv = [*argv, "--base-url", url, "--quiet"]
    with anyio.fail_after(30):
        code = await anyio.to_thread.run_sync(partial(main, argv, stdout=out, stderr=err))
    return code, out.getvalue(), err.getvalue()


@pytest.fixture(autouse=True)
def _token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SENTRY_AUTH_TOKEN", TOKEN)


DISCOVER = ["query", "discover", "--org", "acme", "--period", "1d"]


async def test_an_empty_discover_answer_in_csv_is_its_header() -> None:
    page = {"data": [], "meta": {"fields": {"title": "string", "count()": "integer"}}}
    async with _sentry([page]) as url:
        code, out, err = await _run([*DISCOVER, "--field", "title", "--field", "count()"], url)
    assert code == 0, err
    assert out == "title,count()\n"
