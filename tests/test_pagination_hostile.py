"""Paginating against small hostile servers on 127.0.0.1: every endless stream ends.

Each server gives up after ``CAP`` requests with a last page (``results="false"``), so a
client that fails to notice the trap ends with a wrong answer instead of hanging.
"""

from __future__ import annotations

import tracemalloc
from collections.abc import AsyncIterator, Callable
from typing import Any, Generic, TypeVar

import anyio
import msgspec
import pytest
from _local_server import local_app
from aiohttp import web

from sentry_async import (
    DecodeError,
    OversizedPage,
    PaginationError,
    Position,
    RetryPolicy,
    SentryClient,
    _paging,
)

CAP = 3000
T = TypeVar("T")
FAST = RetryPolicy(attempts=1)

Answer = tuple[Any, str | None, dict[str, str]]
"""A body, the next cursor (``None``: no Link header) and extra headers (``more``: the
``results`` of ``rel="next"``, ``"true"`` unless given)."""


class Hostile:
    def __init__(self, answer: Callable[[int, str | None], Answer]) -> None:
        self.answer = answer
        self.queries: list[dict[str, str]] = []
        self.url = ""

    async def handle(self, request: web.Request) -> web.Response:
        self.queries.append(dict(request.query))
        n = len(self.queries)
        if n >= CAP:
            return _page([], "end", more="false")
        body, nxt, headers = self.answer(n, request.query.get("cursor"))
        return _page(body, nxt, **headers)


def _page(body: Any, nxt: str | None, more: str = "true", **headers: str) -> web.Response:
    if nxt is not None:
        headers["Link"] = (
            '<http://h/x/>; rel="previous"; results="false"; cursor="0:0:1", '
            f'<http://h/x/>; rel="next"; results="{more}"; cursor="{nxt}"'
        )
    return web.Response(
        body=msgspec.json.encode(body), content_type="application/json", headers=headers
    )


@pytest.fixture
async def hostile() -> AsyncIterator[Callable[..., Any]]:
    runners: list[web.AppRunner] = []

    async def start(answer: Callable[[int, str | None], Answer]) -> Hostile:
        server = Hostile(answer)
        app = web.Application()
        app.router.add_get("/{tail:.*}", server.handle)
        runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await runner.setup()
        runners.append(runner)
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        server.url = f"http://127.0.0.1:{runner.addresses[0][1]}"
        return server

    yield start
    for runner in runners:
        await runner.cleanup()


async def _collect(server: Hostile, **kwargs: Any) -> list[Any]:
    async with SentryClient("t", base_url=server.url, retry=FAST) as client:
        with anyio.fail_after(30):
            return await client.paginate("/things/", **kwargs).collect()


async def test_the_same_items_under_fresh_cursors_end_in_an_error(hostile: Any) -> None:
    server = await hostile(lambda n, cursor: ([{"id": 1}, {"id": 2}], f"fresh{n}", {}))
    with pytest.raises(PaginationError, match=r"GET http://127\.0\.0\.1:\d+/api/0/things/") as e:
        await _collect(server, max_stale_pages=5)
    assert "nothing new" in str(e.value)
    assert e.value.stream.endswith("/api/0/things/")
    assert e.value.position == Position("fresh6")
    assert len(server.queries) == 6, "the first page, then five repeats"


async def test_known_ids_in_new_bodies_end_in_an_error_where_ids_are_tracked(
    hostile: Any,
) -> None:
    def answer(n: int, cursor: str | None) -> Answer:
        # The same two issues, reordered and with a changing count: no two bodies alike.
        return [{"id": 2 - n % 2, "count": n}, {"id": 1 + n % 2, "count": n}], f"c{n}", {}

    server = await hostile(answer)
    with pytest.raises(PaginationError, match="4 pages in a row brought nothing new"):
        await _collect(server, max_stale_pages=4, item_id=lambda item: item["id"])
    assert len(server.queries) == 5


async def test_empty_pages_with_results_true_forever_end_in_an_error(hostile: Any) -> None:
    server = await hostile(lambda n, cursor: ([], f"0:{n}:0", {}))
    with pytest.raises(PaginationError, match="50 pages in a row brought nothing new"):
        await _collect(server)
    assert len(server.queries) == 50


async def test_a_cycle_longer_than_a_thousand_cursors_ends(hostile: Any) -> None:
    cycle = 1500

    def answer(n: int, cursor: str | None) -> Answer:
        index = int(cursor[1:]) if cursor else 0
        return [{"id": index}], f"c{(index + 1) % cycle}", {}

    server = await hostile(answer)
    with pytest.raises(PaginationError, match="cycle"):
        await _collect(server, page_size=1)
    assert len(server.queries) == cycle + 1  # c0 comes back as the 1501st request


async def test_results_true_with_an_empty_cursor_is_an_error_not_the_end(hostile: Any) -> None:
    server = await hostile(lambda n, cursor: ([{"id": n}], "", {}))
    with pytest.raises(PaginationError, match=r'results="true" but carries no cursor'):
        await _collect(server)
    assert len(server.queries) == 1


async def test_x_hits_is_an_estimate_never_a_ceiling(hostile: Any) -> None:
    def answer(n: int, cursor: str | None) -> Answer:
        start = int(cursor.split(":")[1]) if cursor else 0
        headers = {"X-Hits": "1000", "X-Max-Hits": "1000"}
        return list(range(start, start + 100)), f"0:{start + 100}:0", headers

    def ending(n: int, cursor: str | None) -> Answer:
        body, nxt, headers = answer(n, cursor)
        if n == 15:
            return body, nxt, {**headers, "more": "false"}
        return body, nxt, headers

    server = await hostile(ending)
    assert await _collect(server) == list(range(1500))


async def test_a_page_far_larger_than_the_page_size_is_an_error(hostile: Any) -> None:
    server = await hostile(lambda n, cursor: (list(range(5000)), None, {}))
    with pytest.raises(OversizedPage, match=r"/api/0/things/ answered more than 20 items.*page_size=10"):
        await _collect(server, page_size=10)


async def test_endpoints_unpaginated_on_purpose_are_exempt(hostile: Any) -> None:
    server = await hostile(lambda n, cursor: (list(range(5000)), None, {}))
    assert len(await _collect(server, page_size=10, unpaginated=True)) == 5000
    assert "per_page" not in server.queries[-1], "no page size is sent"
    assert len(await _collect(server, params={"all_projects": 1})) == 5000
    assert len(await _collect(server, params={"noPagination": "1"})) == 5000
    async with SentryClient("t", base_url=server.url, retry=FAST) as client:
        with pytest.raises(DecodeError):  # numbers here, not {"organization", "singleOwner"}
            await client.organizations.list_owned()
    assert server.queries[-1] == {"owner": "1"}, "owner=1 is answered whole: no page size"


async def test_a_finished_position_resumes_to_nothing(hostile: Any) -> None:
    def answer(n: int, cursor: str | None) -> Answer:
        start = int(cursor) if cursor else 0
        return list(range(start, start + 2)), str(start + 2), {"more": str(start < 4).lower()}

    server = await hostile(answer)
    async with SentryClient("t", base_url=server.url, retry=FAST) as client:
        paginator = client.paginate("/things/", type=int, page_size=2)
        async for item in paginator:
            if item == 2:
                break
        saved = msgspec.json.encode(paginator.position)
        assert msgspec.json.decode(saved, type=Position) == Position("2", 1)
        rest = paginator.resume(msgspec.json.decode(saved, type=Position))
        assert await rest.collect() == [3, 4, 5]
        finished = Position.from_dict(rest.position.to_dict())
        assert finished.done
        sent = len(server.queries)
        assert await paginator.resume(finished).collect() == []
        assert len(server.queries) == sent, "nothing is sent for a finished stream"


async def test_page_size_errors_name_page_size(hostile: Any) -> None:
    server = await hostile(lambda n, cursor: ([], None, {}))
    async with SentryClient("t", base_url=server.url) as client:
        with pytest.raises(ValueError, match=r"^page_size must be an integer from 1 to 100"):
            client.issues.list("acme", page_size=500)
        with pytest.raises(ValueError, match=r"^page_size must"):
            client.paginate("/things/", page_size=0)
        with pytest.raises(ValueError, match=r"^page_size must"):
            client.events.for_project("acme", "backend", page_size=101)
        with pytest.raises(ValueError, match=r"^page_size must"):
            client.discover.query("acme", fields=["title"], page_size=0)
        with pytest.raises(ValueError, match=r"^page_size must"):
            client.issues.hashes("acme", 1, page_size=1000)


async def test_an_oversized_page_is_refused_before_its_items_are_built(hostile: Any) -> None:
    # Tiny items: 400,000 in a 0.8 MB body, whose msgspec.Raw objects would take some 36
    # times the body (29 MB) were the page decoded whole before its count is checked.
    server = await hostile(lambda n, cursor: ([0] * 400_000, "1", {}))
    tracemalloc.start()
    try:
        async with SentryClient("t", base_url=server.url, retry=FAST) as client:
            paginator = client.paginate("/things/", type=msgspec.Raw, page_size=10)
            with pytest.raises(OversizedPage, match=r"more than 20 items.*page_size=10"):
                await paginator.collect()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 12_000_000, f"{peak} bytes traced for a 0.8 MB page"


async def test_a_page_at_the_size_limit_is_decoded_whole(hostile: Any) -> None:
    server = await hostile(lambda n, cursor: (list(range(20)), None, {}))
    assert await _collect(server, page_size=10) == list(range(20))
    raw = await _collect(server, page_size=10, type=msgspec.Raw)
    assert [bytes(item) for item in raw] == [str(i).encode() for i in range(20)]


class _Wrapped(msgspec.Struct, Generic[T]):
    data: list[T]


async def test_an_oversized_wrapped_page_is_refused_before_its_items_are_built(
    hostile: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # {"data": [...]} pages (Discover, replays) past SMALL_PAGE bytes are counted first.
    monkeypatch.setattr(_paging, "SMALL_PAGE", 1000)
    server = await hostile(lambda n, cursor: ({"meta": {}, "data": [0] * 400_000}, "1", {}))
    tracemalloc.start()
    try:
        async with SentryClient("t", base_url=server.url, retry=FAST) as client:
            paginator = client.paginate(
                "/things/",
                type=msgspec.Raw,
                page_size=10,
                page_type=lambda item: _Wrapped[item],
                envelope=lambda body: (body.data, None),
            )
            with pytest.raises(OversizedPage, match=r"more than 20 items.*page_size=10"):
                await paginator.collect()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 12_000_000, f"{peak} bytes traced for a 0.8 MB page"
    # A wrapped page within the size is read whole, counted or not.
    fine = await hostile(lambda n, cursor: ({"meta": {"a": [1] * 50}, "data": [7] * 20}, None, {}))
    async with SentryClient("t", base_url=fine.url, retry=FAST) as client:
        got = await client.paginate(
            "/things/",
            type=int,
            page_size=10,
            page_type=lambda item: _Wrapped[item],
            envelope=lambda body: (body.data, None),
        ).collect()
    assert got == [7] * 20


async def test_a_link_of_hundreds_of_kilobytes_is_refused_unread() -> None:
    """aiohttp takes up to 128 ``Link`` fields of 8 KB each, which read as one list. Sentry's
    ``Link`` is two URLs and their cursors, a few KB, so a longer one is not read: it ends
    the stream with an error before its reading costs seconds, on each page."""
    part = "x" * 4000
    cursor = ", ".join([part] * 60)

    async def handle(request: web.Request) -> web.Response:
        more = "false" if "cursor" in request.query else "true"
        url = f"{request.url.with_query(None)}?per_page=100"
        link = (
            f'<{url}&cursor={cursor}>; rel="previous"; results="false"; cursor="{cursor}", '
            f'<{url}&cursor=0:100:0>; rel="next"; results="{more}"; cursor="0:100:0"'
        )
        response = web.json_response([len(request.query)])
        for field in link.split(", "):
            response.headers.add("Link", field)
        return response

    app = web.Application()
    app.router.add_get("/{tail:.*}", handle)
    async with local_app(app) as url, SentryClient("t", base_url=url, retry=FAST) as client:
        with anyio.fail_after(30), pytest.raises(PaginationError) as caught:
            await client.paginate("/things/").collect()
    assert "Link header of 48" in str(caught.value), caught.value
