"""The event lists' repeat detection without a pinned range: only a page's leading run of
rows the page before handed out is dropped, in the server's order, and repeats are told
apart by their ids, not by the ids' hashes.

Sentry pages both lists by offset (``GenericOffsetPaginator``) ordered by ``-timestamp``
alone (``get_query_builder_for_group``: no event-id tiebreak, second-resolution
timestamps), so an event stored late can put a row the page before handed out anywhere
in the next page, not only at its head.
"""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from datetime import datetime, timezone
from typing import Any

import anyio
import msgspec
import pytest
from _local_server import local_app
from aiohttp import web

from sentry_async import Position, SentryClient
from sentry_async.models import Event, EventSummary
from sentry_async.resources import events as events_module

ORG = "acme"
START = datetime(2026, 6, 1, tzinfo=timezone.utc)
END = datetime(2026, 6, 2, tzinfo=timezone.utc)


class Rows:
    """An event list served by offset, newest first, in exactly the order of ``rows``
    (which a test changes between two pages)."""

    def __init__(self, rows: list[Any]) -> None:
        self.rows = rows

    async def handle(self, request: web.Request) -> web.Response:
        per_page = int(request.query.get("per_page", "100"))
        offset = int(request.query.get("cursor", "0:0:0").split(":")[1])
        page = self.rows[offset : offset + per_page]
        more = "true" if offset + per_page < len(self.rows) else "false"
        link = (
            f'<{request.url}>; rel="previous"; results="false"; cursor="0:0:1", '
            f'<{request.url}>; rel="next"; results="{more}"; cursor="0:{offset + per_page}:0"'
        )
        body = [{"id": row, "n": str(row)} for row in page]
        return web.json_response(body, headers={"Link": link})


def _serving(rows: Rows) -> AbstractAsyncContextManager[str]:
    app = web.Application()
    app.router.add_get("/api/0/organizations/{org}/issues/{issue}/events/", rows.handle)
    app.router.add_get("/api/0/projects/{org}/{project}/events/", rows.handle)
    return local_app(app)


def _late_events(rows: Rows) -> None:
    """Four events stored late, while page 1 (``e00``..``e09``) was handed out, with
    timestamps among its rows: two after ``e00``, two between ``e08`` and ``e09``. Page 2
    now starts ``e08, late-x, late-y, e09``: one leading repeat, and one further in."""
    at = rows.rows.index
    rows.rows[at("e00") + 1 : at("e00") + 1] = ["late-a", "late-b"]
    rows.rows[at("e09") : at("e09")] = ["late-x", "late-y"]


ORIGINAL = [f"e{i:02d}" for i in range(30)]
# What a walk hands out: page 1, then page 2 as the server sends it without its leading
# repeat (``e08``); ``e09``, a repeat further in, is handed out again in place. The two
# events stored above the walk's offset (``late-a``/``late-b``) are never reached.
WALKED = [*ORIGINAL[:10], "late-x", "late-y", "e09", *ORIGINAL[10:]]


@pytest.mark.parametrize("stop", [11, 12, 14])
async def test_a_repeat_inside_a_page_is_handed_out_in_place_and_a_position_resumes_there(
    stop: int,
) -> None:
    """The walk stops at ``stop`` items, inside page 2; a new call resumes from its position
    (``start``/``end`` given, as the README says to resume in another process). The two
    walks together hand out what one uninterrupted walk does: the position counts the
    server's rows, so the resumed walk skips exactly what was handed out (or dropped)."""
    rows = Rows(list(ORIGINAL))
    async with _serving(rows) as url, SentryClient("t", base_url=url) as sc:
        span = {"start": START, "end": END, "page_size": 10}
        first = sc.events.for_issue(ORG, 7, limit=stop, **span).read_ahead(0)
        seen: list[str] = []
        with anyio.fail_after(10):
            async for page in first.pages():
                seen += [event.id for event in page.items]
                if len(seen) == 10:
                    _late_events(rows)
            position = first.position
            resumed = sc.events.for_issue(
                ORG, 7, cursor=position.cursor, skip=position.skip, **span
            )
            rest = [event.id async for event in resumed]
    assert seen + rest == WALKED
    assert seen == WALKED[:stop]
    assert position == Position("0:10:0", stop - 10 + 1)


async def raw_walk(*, late: bool) -> list[str]:
    """The ids a raw walk of :data:`ORIGINAL` by pages of 10 hands out, with
    :func:`_late_events` stored after the first page when ``late``."""
    rows = Rows(list(ORIGINAL))
    async with _serving(rows) as url, SentryClient("t", base_url=url) as sc:
        paginator = sc.events.for_project(ORG, "backend", page_size=10).raw().read_ahead(0)
        seen: list[str] = []
        with anyio.fail_after(10):
            async for page in paginator.pages():
                seen += [msgspec.json.decode(bytes(item))["id"] for item in page.items]
                if late and len(seen) == 10:
                    _late_events(rows)
    return seen


async def test_an_uninterrupted_walk_hands_a_repeat_inside_a_page_out_again() -> None:
    """Nothing is reordered and nothing lost: a repeat that is not at the head of its page
    is a duplicate, handed out where the server put it."""
    assert await raw_walk(late=True) == WALKED


@pytest.mark.parametrize("how", ["raw", "dict"])
async def test_ids_whose_hashes_are_equal_are_not_taken_for_repeats(how: str) -> None:
    """A hostile or odd server's integer ids: ``hash(-1) == hash(-2)`` and
    ``hash(0) == hash(2**61 - 1)``, but page 2's ids are all distinct from page 1's, and
    every item is handed out."""
    ids = [-1, 0, -2, 2**61 - 1, 7]
    assert hash(ids[0]) == hash(ids[2]) and hash(ids[1]) == hash(ids[3])
    rows = Rows(list(ids))
    async with _serving(rows) as url, SentryClient("t", base_url=url) as sc:
        paginator: Any = sc.events.for_project(ORG, "backend", page_size=2)
        with anyio.fail_after(10):
            if how == "raw":
                got = [msgspec.json.decode(bytes(r))["n"] async for r in paginator.raw()]
            else:
                got = [d["n"] async for d in paginator.as_type(dict)]
    assert got == [str(i) for i in ids]


class _Own(msgspec.Struct):
    id: int | None = None


class _Summary(EventSummary):
    pass


@pytest.mark.parametrize(
    ("item", "key"),
    [
        (EventSummary(id="ab12"), "ab12"),
        (Event(id="ab12"), "ab12"),
        (_Summary(id="ab12"), "ab12"),
        (msgspec.Raw(b'{"id":"ab12","title":"x"}'), "ab12"),
        (msgspec.Raw(b'{"title":"x","id":"ab12"}'), "ab12"),
        (msgspec.Raw(b'{"id":-2}'), -2),
        (msgspec.Raw(b'{"id":'), None),
        ({"id": "ab12"}, "ab12"),
        ({"id": 7}, 7),
        ({"id": True}, None),
        ({"id": 1.5}, None),
        (_Own(id=-1), -1),
        (_Own(), None),
        (object(), None),
    ],
)
def test_an_events_key_is_its_id_in_every_form_a_list_hands_out(item: Any, key: Any) -> None:
    """The lists' own models are read first, by their exact type: a subclass, an
    ``as_type`` object, a dict or the raw bytes are read as before, an id of another type
    than a string or an integer being unknown (never a repeat)."""
    assert events_module.event_key(item) == key
