"""An export against servers whose pages bring back ids already written: a stream whose
pages bring nothing new under fresh cursors ends in an error, while an incremental run's
overlap and a resumed stream's re-read pages, however many, do not."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import anyio
import msgspec
import pytest
from _local_server import local_app
from aiohttp import web

from sentry_async import PaginationError, RetryPolicy, SentryClient, ServerError
from sentry_async._protocol.cursors import DEFAULT_MAX_STALE_PAGES
from sentry_async.export import ExportSpec, export
from sentry_async.export._runner import Exporter

CAP = 400
"""Pages a server serves at most, then a last one: a client that never stops ends."""

Ids = Callable[[int], list[str] | None]
"""The ids of page ``n`` (0-based); ``None``: the server fails with a 500."""


class Pages:
    def __init__(self, ids: Ids, pages: int) -> None:
        self.ids, self.pages, self.served = ids, pages, 0

    async def handle(self, request: web.Request) -> web.Response:
        if request.path.endswith("/projects/"):
            return web.json_response([{"id": "1", "slug": "web", "name": "web"}])
        cursor = request.query.get("cursor")
        n = int(cursor.split(":")[1]) if cursor else 0
        self.served += 1
        ids = self.ids(n)
        if ids is None:
            return web.Response(status=500, text="down")
        # A field that changes with the page: no two bodies alike.
        items = [{"id": i, "title": "t", "count": str(n)} for i in ids]
        more = "true" if n + 1 < self.pages and self.served < CAP else "false"
        link = (
            '<http://h/x/>; rel="previous"; results="false"; cursor="0:0:1", '
            f'<http://h/x/>; rel="next"; results="{more}"; cursor="0:{n + 1}:0"'
        )
        return web.Response(
            body=msgspec.json.encode(items),
            content_type="application/json",
            headers={"Link": link},
        )


def _spec() -> ExportSpec:
    return ExportSpec(kind="issues", org="acme", query="", page_size=3, period="1d")


async def _export(pages: Pages, out: Path, **options: object) -> object:
    app = web.Application()
    app.router.add_get("/{tail:.*}", pages.handle)
    async with local_app(app) as url:
        client = SentryClient("t", base_url=url, retry=RetryPolicy(attempts=1))
        async with client:
            with anyio.fail_after(60):
                if options.pop("exporter", False):
                    return await Exporter(client, _spec(), out, **options).run()  # type: ignore[arg-type]
                return await export(client, _spec(), out, **options)  # type: ignore[arg-type]


def _written(out: Path) -> list[str]:
    lines = (out / "web.jsonl").read_bytes().splitlines()
    return [msgspec.json.decode(line)["id"] for line in lines]


async def test_fresh_cursors_over_ids_already_written_end_in_an_error(tmp_path: Path) -> None:
    pages = Pages(lambda n: ["1", "2", "3"], CAP)
    with pytest.raises(PaginationError, match="brought nothing new") as caught:
        await _export(pages, tmp_path, concurrency=1)
    assert "web" in caught.value.stream
    # The first page, then the bound of pages with nothing new (and the reads ahead).
    assert pages.served <= DEFAULT_MAX_STALE_PAGES + 4
    assert _written(tmp_path) == ["1", "2", "3"]


async def test_repeats_mixed_with_empty_pages_count_together(tmp_path: Path) -> None:
    pages = Pages(lambda n: ["1", "2", "3"] if n % 2 == 0 else [], CAP)
    with pytest.raises(PaginationError, match="brought nothing new"):
        await _export(pages, tmp_path, concurrency=1)
    assert pages.served <= DEFAULT_MAX_STALE_PAGES + 4


async def test_an_incremental_overlap_of_many_pages_is_not_stale(tmp_path: Path) -> None:
    # The previous run wrote the first 70 pages' ids: skipped, and never a reason to stop.
    def ids(n: int) -> list[str]:
        return [f"{n}-{k}" for k in range(3)]

    earlier = {i for n in range(DEFAULT_MAX_STALE_PAGES + 20) for i in ids(n)}
    pages = Pages(ids, DEFAULT_MAX_STALE_PAGES + 25)
    manifest = await _export(pages, tmp_path, exporter=True, skip_ids=earlier)
    assert _written(tmp_path) == [i for n in range(70, 75) for i in ids(n)]
    assert manifest.duplicates == len(earlier)  # type: ignore[attr-defined]


async def test_a_resumed_stream_rereading_many_pages_is_not_stale(tmp_path: Path) -> None:
    # The first run writes pages 0-59, then the server fails. Resumed at page 60, the
    # server serves pages 0-59's ids again (rows inserted ahead of the cursor shifted them)
    # before new ones: all dropped as duplicates, none a reason to stop.
    first = DEFAULT_MAX_STALE_PAGES + 10

    def before(n: int) -> list[str] | None:
        return [f"{n}-{k}" for k in range(3)] if n < first else None

    with pytest.raises(ServerError):
        await _export(Pages(before, 2 * first + 5), tmp_path, exporter=True, server="s")
    assert len(_written(tmp_path)) == 3 * first

    def after(n: int) -> list[str]:
        return [f"{n - first if n < 2 * first else n}-{k}" for k in range(3)]

    resumed = Pages(after, 2 * first + 5)
    manifest = await _export(resumed, tmp_path, exporter=True, server="s", resume=True)
    kept = [*range(first), *range(2 * first, 2 * first + 5)]
    assert _written(tmp_path) == [f"{n}-{k}" for n in kept for k in range(3)]
    assert manifest.duplicates == 3 * first  # type: ignore[attr-defined]
