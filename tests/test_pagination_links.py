"""What a paginator reads of a real response's ``Link`` fields, against a small server on
127.0.0.1 that writes them as Sentry (and the proxies before it) do."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from email.header import Header
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

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


RULES = sorted(["alpha", "Règle", "rouge", "ruby", "規則", "Zulu"], key=str.lower)
"""Alert rules as ``?sort=name`` orders them: each page's cursor is the lower-cased name of
its last rule (Sentry's ``StringCursor``), so a cursor is any text the rules are named."""


def _rules_page(target: str, received: list[str | None]) -> bytes:
    """One page of ``/alert-rules/?sort=name`` as Django and a WSGI server put it on the
    wire: the query read as UTF-8 (``QueryDict``), the ``Link`` as latin-1 bytes when it
    fits and as an RFC 2047 encoded-word otherwise (``ResponseHeaders._convert_to_charset``)."""
    query = parse_qs(urlsplit(target).query, keep_blank_values=True)
    size = int(query["per_page"][-1])
    cursor = query.get("cursor", [None])[-1]
    received.append(cursor)
    after = cursor.rsplit(":", 2)[0] if cursor else None
    rows = [name for name in RULES if after is None or name.lower() > after]
    page, more = rows[:size], len(rows) > size
    last = page[-1].lower() if page else after or ""
    rest = urlencode([(key, value) for key, values in query.items() if key != "cursor" for value in values])
    base = f"http://127.0.0.1/api/0/organizations/acme/alert-rules/?{rest}"
    link = (
        f'<{base}&cursor=:0:1>; rel="previous"; results="false"; cursor=":0:1", '
        f'<{base}&cursor={last}:0:0>; rel="next"; results="{str(more).lower()}"; '
        f'cursor="{last}:0:0"'
    )
    try:
        wire = link.encode("latin-1")
    except UnicodeEncodeError:
        wire = Header(link, "utf-8", maxlinelen=sys.maxsize).encode().encode("ascii")
    body = json.dumps([{"id": str(RULES.index(name)), "name": name} for name in page]).encode()
    head = (
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n"
    )
    return head.encode() + b"Link: " + wire + b"\r\n\r\n" + body


@asynccontextmanager
async def _django_rules() -> AsyncIterator[tuple[str, list[str | None]]]:
    """A raw server on 127.0.0.1 answering as :func:`_rules_page`; yields its base URL and
    the cursors it received."""
    received: list[str | None] = []

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            request = await reader.readuntil(b"\r\n\r\n")
            writer.write(_rules_page(request.split(b" ", 2)[1].decode("ascii"), received))
            await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(answer, "127.0.0.1", 0)
    try:
        yield f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}", received
    finally:
        server.close()
        await server.wait_closed()


@pytest.mark.parametrize("page_size", [1, 2, 3])
async def test_rules_named_in_any_script_are_each_handed_out_once(page_size: int) -> None:
    """A cursor is sent back as Sentry wrote it: a rule name in latin-1 (Django's bytes,
    which aiohttp surrogate-escapes) lost its letter in the next request, so rows came
    twice; one outside latin-1 (RFC 2047 encoded) ended the stream as malformed."""
    async with _django_rules() as (url, received), SentryClient("token", base_url=url) as client:
        paginator = client.paginate(
            "/organizations/acme/alert-rules/",
            params={"sort": "name"},
            page_size=page_size,
            max_pages=20,
        )
        with anyio.fail_after(20):
            got = [row["name"] async for row in paginator]
    assert got == RULES
    pages = [RULES[start : start + page_size] for start in range(0, len(RULES), page_size)]
    assert received == [None] + [f"{page[-1].lower()}:0:0" for page in pages[:-1]]
