"""``item_id=`` raising on an item of a page: where the stream stops, and what it says.

An error of ``item_id`` is a ``PaginationError`` naming the stream, the page's cursor (the
token blanked out) and the item, positioned before that page, with ``item_id``'s own
error as its cause. The ids of a page are counted into the walk's seen ids all at once or
not at all: a page whose ids could not all be read (an error, an interruption) is never
handed out, and a walk continued after an interruption finds it as new when it reads it
again.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Hashable
from typing import Any

import anyio
import anyio.lowlevel
import pytest
from _local_server import local_app
from aiohttp import web
from test_hostile_echo import FAST, TOKEN, assert_hidden, everything_shown, provoke

from sentry_async import PaginationError, Paginator, Position, SentryClient
from sentry_async.pagination import RawPage
from sentry_async.sansio import CursorWalk

PAGE = 10
TOTAL = 30
STREAM = "GET http://h/api/0/things/"


def _link(nxt: str, more: bool) -> str:
    return f'<https://h/x/>; rel="next"; results="{"true" if more else "false"}"; cursor="{nxt}"'


class Things:
    """``TOTAL`` items ``{"id": n}`` in pages of ``PAGE``; the item at each index of
    ``broken`` has no id, and the page of each offset in ``shrunk`` has lost its last item."""

    def __init__(self) -> None:
        self.requests: list[str | None] = []
        self.broken: set[int] = set()
        self.shrunk: set[int] = set()

    async def __call__(self, cursor: str | None, size: int | None) -> RawPage:
        assert len(self.requests) < 50, "unbounded pagination"
        self.requests.append(cursor)
        await anyio.lowlevel.checkpoint()
        offset = int(cursor) if cursor else 0
        nxt = offset + PAGE
        stop = nxt - 1 if offset in self.shrunk else nxt
        items: list[dict[str, int]] = [
            {"no_id": n} if n in self.broken else {"id": n} for n in range(offset, stop)
        ]
        return RawPage(items=items, link=_link(str(nxt), nxt < TOTAL))


def _ids(item: dict[str, int]) -> int:
    return item["id"]


def _paginator(things: Things, prefetch: int | None, **options: Any) -> Paginator[dict[str, int]]:
    return Paginator[dict[str, int]](
        things, page_size=PAGE, prefetch=prefetch, item_id=_ids, description=STREAM, **options
    )


async def _take(paginator: Paginator[dict[str, int]], how: str, got: list[int]) -> None:
    """Every id handed out into ``got``: item by item with ``anext``, or page by page."""
    if how == "anext":
        for _ in range(TOTAL):  # bounded
            got.append((await anext(paginator))["id"])
    else:
        async for page in paginator.pages():
            got.extend(item["id"] for item in page.items)


@pytest.mark.parametrize("prefetch", [0, 2, None])
@pytest.mark.parametrize("how", ["anext", "pages"])
async def test_an_item_id_that_raises_stops_the_stream_before_its_page(
    prefetch: int | None, how: str
) -> None:
    things = Things()
    things.broken.add(14)
    paginator = _paginator(things, prefetch)
    got: list[int] = []
    with anyio.fail_after(10), pytest.raises(PaginationError) as caught:
        await _take(paginator, how, got)
    error = caught.value
    assert got == list(range(10)), "nothing of the page whose ids could not be read"
    assert error.position == Position("10") == paginator.position, "before that page"
    assert error.stream == STREAM and str(error).startswith(STREAM)
    assert "item_id raised KeyError('id') on the item at index 4 of the page" in str(error)
    assert "cursor '10'" in str(error)
    assert isinstance(error.__cause__, KeyError), "item_id's own error, for its author"
    if how == "anext":
        # The page would fail again: the error is raised again, nothing is sent.
        sent = list(things.requests)
        with pytest.raises(PaginationError, match="item_id raised"):
            await anext(paginator)
        assert things.requests == sent
        await paginator.aclose()
    things.broken.clear()
    resumed = paginator.resume(error.position)
    with anyio.fail_after(10):
        rest = [item["id"] async for item in resumed]
    assert rest == list(range(10, TOTAL)), "every item once, from where it stopped"


@pytest.mark.parametrize(
    ("item_id", "said"),
    [
        (_ids, "KeyError('id')"),
        (lambda item: item.get("id", []), "TypeError(\"unhashable type: 'list'\")"),
    ],
)
async def test_an_item_id_that_raises_on_the_first_page_stays_at_the_start(
    item_id: Callable[[dict[str, int]], Hashable], said: str
) -> None:
    things = Things()
    things.broken.add(1)
    paginator = Paginator[dict[str, int]](
        things, page_size=PAGE, prefetch=0, item_id=item_id, skip=2
    )
    with anyio.fail_after(10), pytest.raises(PaginationError) as caught:
        await paginator.collect()
    assert f"item_id raised {said} on the item at index 1 of the first page" in str(caught.value)
    assert caught.value.position == Position(None, 2) == paginator.position
    assert paginator.pages_fetched == 1


def _hidden(text: str) -> str:
    return text.replace("SECRET", "***")


def test_a_walk_given_an_unreadable_page_ends_before_it() -> None:
    walk = CursorWalk(page_size=PAGE, stream=STREAM, redact=_hidden)
    walk.item_ids.add(1)
    walk.on_page(PAGE, _link("c-SECRET", True))
    error = walk.on_unreadable_page(3, "item_id raised KeyError('id')")
    assert str(error) == (
        f"{STREAM}: item_id raised KeyError('id') on the item at index 3 of the page requested "
        "with cursor 'c-***'; stopping before it (at Position(cursor='c-***', skip=0, done=False))"
    )
    assert error.stream == STREAM and error.position == Position("c-***")
    assert walk.position == Position("c-SECRET") and walk.cursor == "c-SECRET"
    assert walk.finished and walk.pages == 2 and walk.item_ids == {1}
    with pytest.raises(RuntimeError, match="finished"):
        walk.on_unreadable_page(0, "again")


class Interrupted(BaseException):
    """An interruption inside ``item_id`` (what a ``KeyboardInterrupt`` is): not an error
    of the stream, so not reported as one; ``anext`` goes on after it."""


async def test_a_walk_continued_after_item_id_was_interrupted_counts_that_page_afresh() -> None:
    """Interrupted at the last item of a page, ``item_id`` had read all the others; that
    page, fetched again without that item, brings nothing the walk had counted as seen.
    A page's ids counted before the interruption made it stale, and with
    ``max_stale_pages=1`` ended the stream."""
    things = Things()
    interrupt = [True]

    def interrupted_once(item: dict[str, int]) -> int:
        if item["id"] == 19 and interrupt:
            interrupt.clear()
            raise Interrupted
        return item["id"]

    paginator = Paginator[dict[str, int]](
        things, page_size=PAGE, prefetch=0, item_id=interrupted_once, max_stale_pages=1
    )
    got: list[int] = []
    interruptions = 0
    with anyio.fail_after(10):
        for _ in range(2 * TOTAL):  # bounded
            try:
                got.append((await anext(paginator))["id"])
            except StopAsyncIteration:
                break
            except Interrupted:
                interruptions += 1
                assert paginator.position == Position("10"), "before the page"
                things.shrunk.add(10)  # the item is gone when the page is read again
    assert interruptions == 1
    assert got == [n for n in range(TOTAL) if n != 19]
    assert things.requests == [None, "10", "10", "20"]
    await paginator.aclose()


def _app(echoed: str) -> web.Application:
    """A first page whose next cursor is the token; the page at that cursor holds an item
    with no id."""

    async def page(request: web.Request) -> web.Response:
        items: list[dict[str, str]] = [{"title": "no id"}] if "cursor" in request.query else [
            {"id": "a"}
        ]
        url = f"http://{request.host}{request.path}?&cursor={echoed}"
        link = f'<{url}>; rel="next"; results="true"; cursor="{echoed}"'
        return web.json_response(items, headers={"Link": link})

    app = web.Application()
    app.router.add_get("/{tail:.*}", page)
    return app


@pytest.mark.parametrize("prefetch", [0, 2])
async def test_a_cursor_holding_the_token_is_blanked_out_of_the_item_id_error(
    caplog: pytest.LogCaptureFixture, prefetch: int
) -> None:
    caplog.set_level(logging.DEBUG)
    async with (
        local_app(_app(TOKEN)) as url,
        SentryClient(TOKEN, base_url=url, retry=FAST) as client,
    ):
        paginator = client.paginate(
            "/organizations/", type=dict, prefetch=prefetch, item_id=lambda item: item["id"]
        )
        error = await provoke(lambda: paginator.collect())
    assert isinstance(error, PaginationError) and isinstance(error.__cause__, KeyError)
    assert "********" in str(error) and "item_id raised" in str(error)
    assert error.stream.endswith("/api/0/organizations/")
    # The library's frames held the cursor as the server sent it: they keep no locals.
    assert_hidden("\n".join([everything_shown(error), repr(error.position), caplog.text]))
    assert paginator.position == Position(TOKEN), "what a resume sends: kept"


class _Interruption(BaseException):
    """Not an ``Exception``: a fetcher's interruption the read-ahead hands on and re-raises."""


@pytest.mark.parametrize("prefetch", [1, 2])
async def test_an_interruption_in_a_read_ahead_is_not_logged_as_never_retrieved(
    prefetch: int, caplog: pytest.LogCaptureFixture
) -> None:
    import gc

    things = Things()

    async def fetch(cursor: str | None, size: int | None) -> RawPage:
        if cursor == str(2 * PAGE):
            raise _Interruption
        return await things(cursor, size)

    paginator = Paginator[dict[str, int]](fetch, page_size=PAGE, prefetch=prefetch)
    seen: list[dict[str, int]] = []

    async def consume(items: Paginator[dict[str, int]]) -> None:
        async for item in items:
            seen.append(item)

    with caplog.at_level(logging.ERROR, logger="asyncio"), pytest.raises(_Interruption):
        await consume(paginator)
    del paginator
    gc.collect()
    await anyio.lowlevel.checkpoint()
    assert len(seen) == 2 * PAGE
    assert "never retrieved" not in caplog.text
