"""A Parquet export's parts read as one table the way the README says, whatever each
window's answer did to its part's schema (a widened column, an answer without meta)."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import anyio
import pytest
from _local_server import local_app
from aiohttp import web

from sentry_async import SentryClient
from sentry_async.export import ExportSpec, export

pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")

README = Path(__file__).resolve().parents[1] / "README.md"
META = {"fields": {"id": "string", "n": "integer", "timestamp": "date"}}
NO_META = {"tips": {"query": None, "columns": None}}
"""What Sentry sends as ``meta`` with an empty answer it did not type."""


def _rows(day: int, *values: Any) -> list[dict[str, Any]]:
    return [
        {"id": f"{day}-{i}", "n": n, "timestamp": f"2026-01-0{day}T05:00:0{i}+00:00"}
        for i, n in enumerate(values)
    ]


@asynccontextmanager
async def _sentry(days: dict[int, dict[str, Any]]) -> AsyncIterator[str]:
    """A Sentry with one project whose Discover answer is ``days[day]`` for the window
    starting on that day of January 2026."""

    async def projects(request: web.Request) -> web.Response:
        body = [{"id": "1", "slug": "backend", "name": "backend"}]
        return web.json_response(body, headers={"Link": _no_more(request)})

    async def events(request: web.Request) -> web.Response:
        day = int(request.query["start"][8:10])
        return web.json_response(days[day], headers={"Link": _no_more(request)})

    app = web.Application()
    app.router.add_get("/api/0/organizations/{org}/projects/", projects)
    app.router.add_get("/api/0/organizations/{org}/events/", events)
    async with local_app(app) as url:
        yield url


def _no_more(request: web.Request) -> str:
    url = f"http://{request.host}{request.path}"
    return f'<{url}>; rel="next"; results="false"; cursor="0:1:0"'


def _read_as_the_readme_says(directory: Path) -> Any:
    """Runs the README's recipe for reading a Parquet export, on ``directory``."""
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), re.S)
    (block,) = [block for block in blocks if "manifest.json" in block]
    # The block exports first (against this test's server, done already), then reads.
    imports, _, reading = block.partition("\nmanifest = ")
    recipe = "\n".join(line for line in imports.splitlines() if line.startswith("import"))
    recipe += "\nmanifest = " + reading
    scope: dict[str, Any] = {}
    exec(recipe.replace('"out/', f'"{directory}/'), scope)
    return scope["table"]


async def _export(days: dict[int, dict[str, Any]], out: Path) -> None:
    spec = ExportSpec(
        kind="discover",
        org="acme",
        projects=("backend",),
        fields=("id", "n", "timestamp"),
        start=datetime(2026, 1, 1, tzinfo=timezone.utc),
        end=datetime(2026, 1, 1 + len(days), tzinfo=timezone.utc),
        window="1d",
        format="parquet",
    )
    async with _sentry(days) as url, SentryClient("t0ken", base_url=url) as client:
        with anyio.fail_after(30):
            await export(client, spec, out)


async def test_parts_widened_by_a_later_window_read_as_one_table(tmp_path: Path) -> None:
    days = {
        1: {"data": _rows(1, 1, 9007199254740993), "meta": META},
        2: {"data": _rows(2, 2.5), "meta": META},
        3: {"data": _rows(3, 3), "meta": META},
    }
    await _export(days, tmp_path)
    parts = sorted(tmp_path.glob("*.parquet"))  # noqa: ASYNC240 - a test's own small files
    assert [pq.read_schema(p).field("n").type for p in parts] == [
        pa.int64(),
        pa.float64(),
        pa.int64(),
    ], "a finished part is never rewritten"
    table = _read_as_the_readme_says(tmp_path)
    # 2**53 + 1 in a column another window made float64: kept exact, as text.
    assert table.schema.field("n").type == pa.string()
    assert sorted(table.column("n").to_pylist()) == ["1", "2.5", "3", "9007199254740993"]
    assert table.schema.field("timestamp").type == pa.timestamp("us", tz="UTC")
    assert table.schema.field("n").metadata == {b"sentry.type": b"integer"}


async def test_an_empty_window_without_meta_does_not_type_the_dataset(tmp_path: Path) -> None:
    days = {
        1: {"data": [], "meta": NO_META},
        2: {"data": _rows(2, 2), "meta": META},
        3: {"data": _rows(3, 2.5), "meta": META},
    }
    await _export(days, tmp_path)
    table = _read_as_the_readme_says(tmp_path)
    assert table.schema.field("n").type == pa.float64()
    assert table.schema.field("timestamp").type == pa.timestamp("us", tz="UTC")
    assert sorted(table.column("n").to_pylist()) == [2.0, 2.5]
    first = sorted(tmp_path.glob("*.parquet"))[0]  # noqa: ASYNC240 - a test's own small files
    assert pq.read_table(first).num_rows == 0
    assert {f.type for f in pq.read_schema(first)} == {pa.null()}, "no type guessed"
