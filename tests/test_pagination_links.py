"""What a paginator reads of a real response's ``Link`` fields, against a small server on
127.0.0.1 that writes them as Sentry (and the proxies before it) do."""

from __future__ import annotations

from typing import Any

import anyio
import pytest
from _local_server import local_app
from aiohttp import web
from multidict import CIMultiDict

from sentry_async import SentryClient

ITEMS = list(range(7))
PRELOAD = "</static/app.css>; rel=preload; as=style"


def _links(request: web.Request, offset: int, size: int) -> tuple[str, str]:
    """Sentry's previous and next links for the page at ``offset``."""
    base = f"http://{request.host}{request.path}?"
    prev, nxt = f"0:{max(0, offset - size)}:1", f"0:{offset + size}:0"
    more = "true" if offset + size < len(ITEMS) else "false"
    return (
        f'<{base}&cursor={prev}>; rel="previous"; results="{str(offset > 0).lower()}"; '
        f'cursor="{prev}"',
        f'<{base}&cursor={nxt}>; rel="next"; results="{more}"; cursor="{nxt}"',
    )


@pytest.mark.parametrize("fields", ["split", "preload first", "preload last"])
async def test_every_link_field_is_read(fields: str) -> None:
    """A ``Link`` split over two fields, or a proxy's own ``Link`` beside Sentry's: the
    stream reads on to its end instead of stopping, as done, after the first page."""

    async def things(request: web.Request) -> web.Response:
        cursor = request.query.get("cursor")
        size = int(request.query["per_page"])
        offset = int(cursor.split(":")[1]) if cursor else 0
        prev, nxt = _links(request, offset, size)
        headers: CIMultiDict[str] = CIMultiDict()
        if fields == "split":
            headers.add("Link", prev)
            headers.add("Link", nxt)
        elif fields == "preload first":
            headers.add("Link", PRELOAD)
            headers.add("Link", f"{prev}, {nxt}")
        else:
            headers.add("Link", f"{prev}, {nxt}")
            headers.add("Link", PRELOAD)
        return web.json_response(ITEMS[offset : offset + size], headers=headers)

    app = web.Application()
    app.router.add_get("/api/0/things/", things)
    async with local_app(app) as url, SentryClient("token", base_url=url) as client:
        for read_ahead in (0, 2):
            paginator = client.paginate("/things/", page_size=3).read_ahead(read_ahead)
            with anyio.fail_after(20):
                got = [item async for item in paginator]
            assert got == ITEMS
            assert paginator.position.done


async def test_distinct_pages_that_share_their_sampled_bytes_are_all_handed_out() -> None:
    """Sixty Discover pages of one long message, every row its own event id: same length and
    same bytes at start, middle and end, yet not repeats; the stream reads to its end."""
    from test_protocol_cursors import discover_pages

    bodies = discover_pages(60)

    async def events(request: web.Request) -> web.Response:
        cursor = request.query.get("cursor")
        offset = int(cursor.split(":")[1]) if cursor else 0
        base = f"http://{request.host}{request.path}?"
        more = "true" if offset + 1 < len(bodies) else "false"
        link = (
            f'<{base}&cursor=0:0:1>; rel="previous"; results="false"; cursor="0:0:1", '
            f'<{base}&cursor=0:{offset + 1}:0>; rel="next"; results="{more}"; '
            f'cursor="0:{offset + 1}:0"'
        )
        return web.Response(
            body=bodies[offset], content_type="application/json", headers={"Link": link}
        )

    app = web.Application()
    app.router.add_get("/api/0/things/", events)
    async with local_app(app) as url, SentryClient("token", base_url=url) as client:
        paginator = client.paginate(
            "/things/",
            page_size=10,
            page_type=lambda item: dict[str, Any],
            envelope=lambda body: (body["data"], body["meta"]),
        )
        with anyio.fail_after(30):
            rows = [row async for row in paginator]
    assert len({row["id"] for row in rows}) == 600
