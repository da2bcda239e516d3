"""``as_type`` keeps the event lists' rule for repeats: a model that decodes the wire's
``id``, under whatever attribute name, drops the rows a page repeats at its head."""

from __future__ import annotations

from typing import Any

import anyio
import msgspec
import pytest
from _local_server import local_app
from aiohttp import web

from sentry_async import SentryClient


def _row(n: int) -> dict[str, Any]:
    return {"id": f"{n:032x}", "eventID": f"{n:032x}", "title": f"t{n}", "groupID": "1",
            "projectID": "2", "dateCreated": "2026-05-01T00:00:00Z", "tags": []}


def _events_arriving() -> web.Application:
    """Five events, two a page by offset; a sixth arrives at the head after page 1."""
    arrived = False

    async def events(request: web.Request) -> web.Response:
        nonlocal arrived
        offset = int(request.query.get("cursor", "0:0:0").split(":")[1])
        size = int(request.query["per_page"])
        rows = [_row(n) for n in range(6 if arrived else 5, 0, -1)]
        arrived = True
        base = f"http://{request.host}{request.path}"
        more = "true" if offset + size < len(rows) else "false"
        link = (
            f'<{base}?cursor=0:0:1>; rel="previous"; results="false"; cursor="0:0:1", '
            f'<{base}?cursor=0:{offset + size}:0>; rel="next"; results="{more}"; '
            f'cursor="0:{offset + size}:0"'
        )
        return web.json_response(rows[offset : offset + size], headers={"Link": link})

    app = web.Application()
    app.router.add_get("/api/0/projects/acme/web/events/", events)
    return app


class Renamed(msgspec.Struct):
    ident: str = msgspec.field(name="id")
    title: str | None = None


class Plain(msgspec.Struct):
    id: str
    title: str | None = None


@pytest.mark.parametrize("model", [Renamed, Plain])
async def test_a_model_with_the_wire_id_drops_the_repeats(model: type[msgspec.Struct]) -> None:
    async with local_app(_events_arriving()) as url, SentryClient("t" * 40, base_url=url) as c:
        walk = c.events.for_project("acme", "web", page_size=2).as_type(model)
        with anyio.fail_after(10):
            got = [msgspec.structs.astuple(item)[0] async for item in walk]
    assert [int(event, 16) for event in got] == [5, 4, 3, 2, 1]
