"""Read-ahead sends the next request while a page is still being decoded.

A fetcher announces each response's ``Link`` (:func:`announce_link`) before decoding its
body; with room for two pages beyond the consumer's, the read-ahead sends the request for
the cursor the walk is sure to take next at that moment, so the server works on the next
page while this one decodes. Everything a consumer sees stays as without it.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import anyio
import anyio.lowlevel
import msgspec
import pytest
from _local_server import local_app
from aiohttp import web

from sentry_async import PaginationError, Paginator, Position, SentryClient, _paging, pagination
from sentry_async.pagination import RawPage, announce_link
from sentry_async.testing import FakeSentry


def _link(nxt: str, more: bool) -> str:
    return f'<https://h/x/>; rel="next"; results="{"true" if more else "false"}"; cursor="{nxt}"'


class Gated:
    """Serves ``total`` integers in pages of 10; each page's "decoding" waits for its gate.

    ``announced`` overrides the ``Link`` announced for a cursor (a retried response that
    came back different); ``fail`` names a cursor whose decoding fails.
    """

    def __init__(self, total: int, *, open_gates: bool = False) -> None:
        self.total = total
        self.requests: list[str | None] = []
        self.gates: dict[str | None, anyio.Event] = {}
        self.open_gates = open_gates
        self.announced: dict[str | None, str] = {}
        self.fail: str | None = None
        self.cancelled: list[str | None] = []
        self.in_flight = self.most_in_flight = 0

    def gate(self, cursor: str | None) -> anyio.Event:
        return self.gates.setdefault(cursor, anyio.Event())

    async def __call__(self, cursor: str | None, size: int | None) -> RawPage:
        assert len(self.requests) < 200, "unbounded pagination"
        self.requests.append(cursor)
        offset = int(cursor) if cursor else 0
        link = _link(str(offset + 10), offset + 10 < self.total)
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        announce_link(self, cursor, self.announced.get(cursor, link))
        try:
            if not self.open_gates:
                await self.gate(cursor).wait()
            await anyio.lowlevel.checkpoint()
        except BaseException:
            self.cancelled.append(cursor)
            raise
        finally:
            self.in_flight -= 1
        if cursor is not None and cursor == self.fail:
            raise PaginationError(f"page {cursor} failed")
        return RawPage(items=list(range(offset, min(offset + 10, self.total))), link=link)


async def _until(condition: object, what: str) -> None:
    with anyio.fail_after(10):
        while not condition():  # type: ignore[operator]
            await anyio.lowlevel.checkpoint()


async def test_the_next_request_leaves_while_the_page_before_it_decodes() -> None:
    source = Gated(100)
    pages = Paginator[int](source, page_size=10, prefetch=2).pages()
    first = asyncio.ensure_future(pages.__anext__())
    await _until(lambda: len(source.requests) == 2, "the early request")
    assert source.requests == [None, "10"]  # page 1 has not finished decoding
    assert not first.done()
    source.gate(None).set()
    source.gate("10").set()
    assert (await first).items == list(range(10))
    await pages.aclose()


async def test_with_room_for_one_page_nothing_leaves_early() -> None:
    source = Gated(100)
    pages = Paginator[int](source, page_size=10, prefetch=1).pages()
    first = asyncio.ensure_future(pages.__anext__())
    await _until(lambda: len(source.requests) == 1, "the first request")
    for _ in range(50):
        await anyio.lowlevel.checkpoint()
    assert source.requests == [None]
    source.gate(None).set()
    await first
    await pages.aclose()


@pytest.mark.parametrize("prefetch", [2, 3, 4])
async def test_requests_sent_early_stay_within_the_read_aheads_room(prefetch: int) -> None:
    source = Gated(1000, open_gates=True)
    pages = Paginator[int](source, page_size=10, prefetch=prefetch).pages()
    await pages.__anext__()  # held: the consumer's page
    for _ in range(200):
        await anyio.lowlevel.checkpoint()
    assert len(source.requests) == 1 + prefetch
    await pages.__anext__()
    for _ in range(200):
        await anyio.lowlevel.checkpoint()
    assert len(source.requests) == 2 + prefetch
    assert source.most_in_flight == 2  # one request at a time is ever sent early
    await pages.aclose()


@pytest.mark.parametrize("prefetch", [2, 3])
async def test_every_page_is_asked_for_once_and_items_and_positions_are_unchanged(
    prefetch: int,
) -> None:
    plain = Paginator[int](Gated(95, open_gates=True), page_size=10)
    assert await plain.collect() == list(range(95))
    source = Gated(95, open_gates=True)
    early = Paginator[int](source, page_size=10, prefetch=prefetch)
    assert await early.collect() == list(range(95))
    assert source.requests == [None, *(str(n) for n in range(10, 100, 10))]
    assert early.position == plain.position == Position(None, done=True)

    capped = Gated(95, open_gates=True)
    items = await Paginator[int](capped, page_size=10, limit=33, prefetch=prefetch).collect()
    assert items == list(range(33))
    # Nothing is sent early within reach of the limit: the pages a plain walk asks for.
    assert capped.requests == [None, "10", "20", "30"]


async def test_a_page_requested_early_for_a_cursor_the_walk_does_not_take_is_dropped() -> None:
    source = Gated(50, open_gates=True)
    source.announced[None] = _link("30", True)  # the retried answer then says 10
    paginator = Paginator[int](source, page_size=10, prefetch=2)
    assert await paginator.collect() == list(range(50))
    assert source.requests.count("10") == 1
    assert "30" in source.requests  # sent early, dropped, then asked for again in turn
    assert source.requests[-1] == "40"


async def test_a_failing_page_sent_early_fails_after_the_pages_before_it() -> None:
    source = Gated(100, open_gates=True)
    source.fail = "30"
    seen: list[int] = []
    paginator = Paginator[int](source, page_size=10, prefetch=2)

    async def consume() -> None:
        async for item in paginator:
            seen.append(item)

    with pytest.raises(PaginationError, match="page 30 failed"):
        await consume()
    assert seen == list(range(30))
    assert paginator.position == Position("30")


@pytest.mark.parametrize("prefetch", [2, 3, 4])
async def test_after_a_page_fails_no_request_leaves_and_no_task_is_left(prefetch: int) -> None:
    # The failed page's Link was announced before it failed; the pages fetched before it
    # still wait for the consumer, and taking them gives room back. Nothing may be sent
    # for the page after the failed one, nor left running.
    source = Gated(1000)
    source.fail = "30"
    for cursor in (None, "10", "20", "30"):
        source.gate(cursor).set()  # a request for a page after those would hang
    before = set(asyncio.all_tasks())
    pages = Paginator[int](source, page_size=10, prefetch=prefetch).pages()
    seen = [(await pages.__anext__()).items]
    for _ in range(100):
        await anyio.lowlevel.checkpoint()

    async def consume() -> None:
        for _ in range(10):
            seen.append((await pages.__anext__()).items)
            for _ in range(100):
                await anyio.lowlevel.checkpoint()

    with pytest.raises(PaginationError, match="page 30 failed"):
        await consume()
    for _ in range(100):
        await anyio.lowlevel.checkpoint()
    assert [item for items in seen for item in items] == list(range(30))
    assert source.requests == [None, "10", "20", "30"]
    assert set(asyncio.all_tasks()) == before


async def test_leaving_the_loop_ends_a_request_sent_early() -> None:
    source = Gated(1000)
    paginator = Paginator[int](source, page_size=10, prefetch=2)
    before = len(asyncio.all_tasks())
    pages = paginator.pages()
    first = asyncio.ensure_future(pages.__anext__())
    await _until(lambda: len(source.requests) == 2, "the early request")
    source.gate(None).set()
    assert (await first).items == list(range(10))
    await pages.aclose()
    assert "10" in source.cancelled
    assert len(asyncio.all_tasks()) == before
    assert paginator.position == Position("10")


async def test_the_client_sends_early_over_the_network_and_loses_nothing(
    fake_sentry: FakeSentry, monkeypatch: pytest.MonkeyPatch
) -> None:
    announced: list[str | None] = []

    def announce(fetcher: object, cursor: str | None, link: str | None) -> bool:
        announced.append(cursor)
        return announce_link(fetcher, cursor, link)

    monkeypatch.setattr(pagination, "announce_link", announce)
    org = fake_sentry.data.org_slugs()[0]
    async with fake_sentry.client() as client:
        one_by_one = client.issues.list(org, query="", page_size=3).read_ahead(0)
        plain = [issue.id async for issue in one_by_one]
        fake_sentry.requests.clear()
        early = client.issues.list(org, query="", page_size=3).read_ahead(2)
        got = [issue.id async for issue in early]
    assert got == plain and len(plain) > 6
    sent = fake_sentry.requests.matching("GET", "/organizations/{org}/issues/")
    cursors = [tuple(request.params("cursor")) for request in sent]
    assert len(cursors) == len(set(cursors)) == -(-len(plain) // 3)
    # Every Link is announced before its body decodes, in both walks; with the read-ahead
    # watching, also as soon as its headers arrive.
    assert len(announced) == 3 * len(cursors)


async def test_the_request_sent_early_reaches_the_server_before_the_decoding_starts(
    fake_sentry: FakeSentry, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A real fetcher decodes without awaiting: a request sent early must have left before
    # the decoding holds the loop, or the server only hears of it once the page is decoded.
    # The fake server runs on a thread of its own, so it can receive while a decode blocks.
    org = fake_sentry.data.org_slugs()[0]
    route = ("GET", "/organizations/{org}/issues/")
    decode = _paging.decode_items
    heard: list[int] = []

    def waiting_decode(response: Any, item_type: Any, limit: int) -> Any:
        if not heard:
            deadline = time.monotonic() + 5
            while len(fake_sentry.requests.matching(*route)) < 2 and time.monotonic() < deadline:
                time.sleep(0.005)
            heard.append(len(fake_sentry.requests.matching(*route)))
        return decode(response, item_type, limit)

    monkeypatch.setattr(_paging, "decode_items", waiting_decode)
    async with fake_sentry.client() as client:
        fake_sentry.requests.clear()
        paginator = client.issues.list(org, query="", page_size=3).read_ahead(2)
        got = [issue.id async for issue in paginator]
    assert len(got) > 6
    assert heard == [2]  # while the first page decoded, the second was already asked for


async def test_the_next_request_leaves_when_the_headers_arrive_not_after_the_body() -> None:
    # The next page's cursor is in the first page's headers: waiting for its body as well
    # leaves the server idle while the body travels. This server sends the first page's
    # headers and half its body, then holds the rest until the next page is asked for
    # (or 5 s have passed, when the client waited for the body after all).
    total, size = 6, 3
    asked = anyio.Event()
    held: list[bool] = []

    def body(offset: int) -> bytes:
        rows = [{"id": str(n), "title": "x" * 2000} for n in range(offset, offset + size)]
        return msgspec.json.encode(rows)

    async def handle(request: web.Request) -> web.StreamResponse:
        cursor = request.query.get("cursor")
        offset = int(cursor) if cursor else 0
        more = offset + size < total
        payload = body(offset)
        response = web.StreamResponse(
            headers={"Content-Type": "application/json", "Link": _link(str(offset + size), more)}
        )
        response.content_length = len(payload)
        await response.prepare(request)
        if cursor is None:
            await response.write(payload[: len(payload) // 2])
            with anyio.move_on_after(5):
                await asked.wait()
            held.append(asked.is_set())
            await response.write(payload[len(payload) // 2 :])
        else:
            asked.set()
            await response.write(payload)
        await response.write_eof()
        return response

    app = web.Application()
    app.router.add_get("/api/0/organizations/acme/issues/", handle)
    async with local_app(app) as url, SentryClient("token", base_url=url) as client:
        paginator = client.issues.list("acme", query="", page_size=size).read_ahead(2)
        got = [issue.id async for issue in paginator]
    assert got == [str(n) for n in range(total)]
    assert held == [True]  # asked for while the first page's body was still on its way
