"""Arrow tables: column types from Sentry's meta, checked against hand-built tables."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path
from types import SimpleNamespace

import anyio
import msgspec
import pytest
from _watched_pages import WatchedPages, memory_pages

from sentry_async import SentryClient
from sentry_async.models import DiscoverMeta, UsageStats, discover_meta, parse_events_stats
from sentry_async.pagination import Page, Paginator, RawPage
from sentry_async.tables import (
    collect_table,
    discover_batches,
    discover_schema,
    discover_table,
    to_pandas,
    to_polars,
)
from sentry_async.testing import FakeSentry

pa = pytest.importorskip("pyarrow")

ORG = "org-0"
UTC = timezone.utc


def _meta(fields: dict[str, str], units: dict[str, str | None] | None = None) -> DiscoverMeta:
    return DiscoverMeta(fields=fields, units=units or {})


def test_every_discover_type_maps_to_its_arrow_type() -> None:
    meta = _meta(
        {
            "n": "integer",
            "x": "number",
            "pct": "percentage",
            "d": "duration",
            "size": "size",
            "rate": "rate",
            "when": "date",
            "ok": "boolean",
            "arr": "array",
            "s": "string",
        },
        {"d": "millisecond", "size": "byte", "rate": "1/second"},
    )
    rows = [
        {
            "n": 3,
            "x": 1.5,
            "pct": 0.25,
            "d": 12.5,
            "size": 2048,
            "rate": 0.5,
            "when": "2026-01-01T23:41:07+00:00",
            "ok": True,
            "arr": ["a", "b"],
            "s": "hi",
        },
        {
            "n": None,
            "x": 2,
            "pct": None,
            "d": 1,
            "size": None,
            "rate": 1,
            "when": "2026-01-02T00:00:00Z",
            "ok": None,
            "arr": None,
            "s": None,
        },
    ]
    expected_schema = pa.schema(
        [
            pa.field("n", pa.int64(), metadata={"sentry.type": "integer"}),
            pa.field("x", pa.float64(), metadata={"sentry.type": "number"}),
            pa.field("pct", pa.float64(), metadata={"sentry.type": "percentage"}),
            pa.field(
                "d", pa.float64(), metadata={"sentry.type": "duration", "sentry.unit": "millisecond"}
            ),
            pa.field("size", pa.float64(), metadata={"sentry.type": "size", "sentry.unit": "byte"}),
            pa.field(
                "rate", pa.float64(), metadata={"sentry.type": "rate", "sentry.unit": "1/second"}
            ),
            pa.field("when", pa.timestamp("us", tz="UTC"), metadata={"sentry.type": "date"}),
            pa.field("ok", pa.bool_(), metadata={"sentry.type": "boolean"}),
            pa.field("arr", pa.list_(pa.string()), metadata={"sentry.type": "array"}),
            pa.field("s", pa.string(), metadata={"sentry.type": "string"}),
        ]
    )
    expected = pa.Table.from_pydict(
        {
            "n": [3, None],
            "x": [1.5, 2.0],
            "pct": [0.25, None],
            "d": [12.5, 1.0],
            "size": [2048.0, None],
            "rate": [0.5, 1.0],
            "when": [
                datetime(2026, 1, 1, 23, 41, 7, tzinfo=UTC),
                datetime(2026, 1, 2, tzinfo=UTC),
            ],
            "ok": [True, None],
            "arr": [["a", "b"], None],
            "s": ["hi", None],
        },
        schema=expected_schema,
    )
    table = discover_table(rows, meta)
    assert table.schema.equals(expected_schema, check_metadata=True)
    assert table.equals(expected)


def test_unknown_columns_are_strings_and_odd_values_widen_instead_of_failing() -> None:
    meta = _meta({"count()": "integer"})
    rows = [{"count()": 1, "extra": {"a": 1}}, {"count()": 2.5, "extra": "x"}]
    table = discover_table(rows, meta)
    assert table.column("count()").type == pa.float64()
    assert table.column("count()").to_pylist() == [1.0, 2.5]
    assert table.column("extra").to_pylist() == ['{"a":1}', "x"]


def test_a_date_or_integer_that_does_not_fit_widens_to_its_text() -> None:
    meta = _meta({"n": "integer", "when": "date"})
    stamp = "2024-01-01T00:00:00+00:00"
    for rows, column, expected in [
        ([{"when": stamp}, {"when": "not a date"}], "when", [stamp, "not a date"]),
        ([{"when": 1704067200}, {"when": 10**15}], "when", ["1704067200", "1000000000000000"]),
        ([{"n": 1}, {"n": 2**64}], "n", ["1", "18446744073709551616"]),
    ]:
        table = discover_table(rows, meta)
        assert table.column(column).to_pylist() == expected
        assert table.schema.field(column).metadata == {b"sentry.type": meta.fields[column].encode()}


def test_legacy_meta_at_the_top_level_types_the_columns() -> None:
    meta = discover_meta({"transaction": "string", "count()": "integer", "isMetricsData": False})
    table = discover_table([{"transaction": "GET /", "count()": 88}], meta)
    assert table.schema.field("count()").type == pa.int64()
    assert discover_schema(meta, ["transaction"]).field("transaction").type == pa.string()


def test_raw_and_struct_items_become_rows() -> None:
    page: Page[msgspec.Raw] = Page(
        items=[msgspec.Raw(b'{"a": 1, "b": "x"}')], cursor=None, next_cursor=None, prev_cursor=None
    )
    assert page.to_arrow().to_pylist() == [{"a": 1, "b": "x"}]


async def test_typed_pages_with_raw_json_fields_become_tables(
    fake_sentry: FakeSentry, client: SentryClient
) -> None:
    """Models keep some fields as raw JSON (an issue's stats, an event's context and
    ``_meta``): a table holds their JSON value, like any other field's."""
    project = fake_sentry.data.project_slugs(ORG)[0]
    with anyio.fail_after(15):
        issues = await anext(client.issues.list(ORG, query="").pages())
        events = await anext(client.events.for_project(ORG, project, full=True).pages())
        table = await collect_table(client.issues.list(ORG, query="", limit=5))
    stats = [msgspec.json.decode(issue.stats_raw) for issue in issues.items]
    assert any(stats), "the fake's issues must carry stats"
    assert issues.to_arrow().column("stats").to_pylist() == stats
    event_table = events.to_arrow()
    assert event_table.num_rows == len(events.items) > 0
    # Free-form context (a job's args mixing numbers and text) shares no Arrow type: JSON text
    assert event_table.schema.field("context").type == pa.string()
    assert [
        None if text is None else msgspec.json.decode(text)
        for text in event_table.column("context").to_pylist()
    ] == [msgspec.json.decode(event.context) for event in events.items]
    assert "_meta" in event_table.schema.names
    assert table.num_rows == 5
    assert table.column("stats").to_pylist() == stats[:5]


async def test_a_fake_discover_query_streams_into_typed_batches(
    fake_sentry: FakeSentry, client: SentryClient
) -> None:
    project = fake_sentry.data.project_slugs(ORG)[0]
    fields = ["id", "project.id", "timestamp", "title"]
    paginator = client.discover.query(
        ORG, fields=fields, project=project, period="14d", sort="-timestamp", page_size=5
    )
    with anyio.fail_after(15):
        batches = [batch async for batch in discover_batches(paginator)]
        rows = await paginator.collect()
        table = await collect_table(paginator)
    assert len(batches) >= 2, "the query must span several pages"
    expected = pa.Table.from_pydict(
        {
            "id": [row["id"] for row in rows],
            "project.id": [int(row["project.id"]) for row in rows],
            "timestamp": [
                datetime.fromisoformat(row["timestamp"]).astimezone(UTC) for row in rows
            ],
            "title": [row["title"] for row in rows],
        },
        schema=pa.schema(
            [
                pa.field("id", pa.string()),
                pa.field("project.id", pa.int64()),
                pa.field("timestamp", pa.timestamp("us", tz="UTC")),
                pa.field("title", pa.string()),
            ]
        ),
    )
    assert table.num_rows == sum(batch.num_rows for batch in batches) == len(rows)
    assert table.equals(expected.replace_schema_metadata(None).cast(table.schema))
    assert [f.metadata for f in table.schema] == [
        {b"sentry.type": t.encode()} for t in ("string", "integer", "date", "string")
    ]


def _discover_pages(pages: list[list[dict[str, object]]], meta: DiscoverMeta) -> Paginator[object]:
    """A Discover query over pages held in memory, each answered with ``meta``."""

    async def fetch(cursor: str | None, size: int | None) -> RawPage:
        index = 0 if cursor is None else int(cursor)
        more = str(index + 1 < len(pages)).lower()
        link = f'<u>; rel="next"; results="{more}"; cursor="{index + 1}"'
        return RawPage(pages[index], link, meta=meta)

    return Paginator(fetch, page_size=10)


async def test_a_later_page_widens_the_column_instead_of_truncating() -> None:
    """Each batch is typed when it is yielded: a later page's value that does not fit widens
    the column from that batch on; the whole table holds every batch at the widest type."""
    meta = _meta({"n": "integer", "title": "string"})
    pages: list[list[dict[str, object]]] = [[{"n": 1, "title": "a"}], [{"n": 2.5}], [{"n": 3}]]
    with anyio.fail_after(5):
        batches = [batch async for batch in discover_batches(_discover_pages(pages, meta))]
        table = await collect_table(_discover_pages(pages, meta))
        words = await collect_table(_discover_pages([[{"n": 1}], [{"n": "n/a"}]], meta))
    assert [batch.schema.field("n").type for batch in batches] == [
        pa.int64(),
        pa.float64(),
        pa.float64(),
    ]
    assert table.column("n").to_pylist() == [1.0, 2.5, 3.0]
    assert table.column("title").to_pylist() == ["a", None, None]
    assert table.schema.field("n").metadata == {b"sentry.type": b"integer"}
    assert words.column("n").to_pylist() == ["1", "n/a"]


async def test_a_query_without_rows_keeps_the_meta_columns(
    fake_sentry: FakeSentry, client: SentryClient
) -> None:
    def query() -> Paginator[object]:
        return client.discover.query(
            ORG, fields=["id", "timestamp"], query="title:nothing-matches", period="14d"
        )

    with anyio.fail_after(15):
        table = await collect_table(query())
        batches = [batch async for batch in discover_batches(query())]
    schema = pa.schema(
        [
            pa.field("id", pa.string(), metadata={"sentry.type": "string"}),
            pa.field("timestamp", pa.timestamp("us", tz="UTC"), metadata={"sentry.type": "date"}),
            # Sentry's meta types the columns it adds too, rows or not.
            pa.field("project.name", pa.string(), metadata={"sentry.type": "string"}),
        ]
    )
    assert table.num_rows == 0
    assert table.schema.equals(schema, check_metadata=True)
    assert [(batch.num_rows, batch.schema) for batch in batches] == [(0, table.schema)]


async def test_batches_left_early_close_the_pages_they_read_from(
    fake_sentry: FakeSentry, client: SentryClient, abandoned_generators: list[str]
) -> None:
    """A consumer that stops after one batch and closes the batches has stopped the
    paginator's read-ahead too; nothing is left for the event loop to close later."""
    project = fake_sentry.data.project_slugs(ORG)[0]
    paginator = client.discover.query(
        ORG, fields=["id"], project=project, period="14d", page_size=2
    ).read_ahead(1)
    batches = discover_batches(paginator)
    with anyio.fail_after(15):
        first = await anext(batches)
        await batches.aclose()
    assert first.num_rows == 2
    assert abandoned_generators == []


async def test_fake_aggregates_carry_duration_units(
    fake_sentry: FakeSentry, client: SentryClient
) -> None:
    fields = ["transaction", "count()", "p95(transaction.duration)", "last_seen()"]
    with anyio.fail_after(10):
        page = await anext(
            client.discover.query(ORG, fields=fields, period="14d", dataset="transactions").pages()
        )
    table = page.to_arrow()
    assert table.num_rows == len(page.items) > 0
    duration = table.schema.field("p95(transaction.duration)")
    assert duration.type == pa.float64()
    assert duration.metadata == {b"sentry.type": b"duration", b"sentry.unit": b"millisecond"}
    assert table.schema.field("count()").type == pa.int64()
    assert table.schema.field("last_seen()").type == pa.timestamp("us", tz="UTC")
    assert table.column("count()").to_pylist() == [row["count()"] for row in page.items]


def test_events_stats_rows_per_series_and_bucket() -> None:
    body = {
        "prod": {"order": 0, "data": [[1700000000, [{"count": 3}]], [1700003600, [{"count": 0}]]]},
        "dev": {"order": 1, "data": [[1700000000, [{"count": 1}]], [1700003600, []]]},
    }
    stats = parse_events_stats(msgspec.json.encode(body), ["count()"])
    expected = pa.table(
        {
            "series": ["prod", "prod", "dev", "dev"],
            "y_axis": ["count()"] * 4,
            "group": ["prod", "prod", "dev", "dev"],
            "order": pa.array([0, 0, 1, 1], pa.int64()),
            "timestamp": pa.array(
                [datetime.fromtimestamp(t, UTC) for t in (1700000000, 1700003600) * 2],
                pa.timestamp("s", tz="UTC"),
            ),
            "value": [3.0, 0.0, 1.0, None],
            "comparison_value": pa.array([None] * 4, pa.float64()),
        }
    )
    assert stats.to_arrow().equals(expected)


def test_usage_groups_with_and_without_intervals() -> None:
    usage = msgspec.json.decode(
        b'{"start":"2026-01-01T00:00:00Z","end":"2026-01-03T00:00:00Z",'
        b'"intervals":["2026-01-01T00:00:00Z","2026-01-02T00:00:00Z"],'
        b'"groups":[{"by":{"outcome":"accepted"},"totals":{"sum(quantity)":5},'
        b'"series":{"sum(quantity)":[2,3]}},'
        b'{"by":{"outcome":"filtered"},"totals":{"sum(quantity)":1},'
        b'"series":{"sum(quantity)":[0,1]}}]}',
        type=UsageStats,
    )
    day = [datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 1, 2, tzinfo=UTC)]
    expected = pa.table(
        {
            "outcome": ["accepted", "accepted", "filtered", "filtered"],
            "interval": pa.array(day * 2, pa.timestamp("us", tz="UTC")),
            "sum(quantity)": pa.array([2, 3, 0, 1], pa.int64()),
        }
    )
    assert usage.to_arrow().equals(expected)
    by_project = msgspec.json.decode(
        b'{"intervals":[],"groups":[{"by":{"project":11},"totals":{"sum(quantity)":7}},'
        b'{"by":{"project":12},"totals":{"sum(quantity)":1.5}}]}',
        type=UsageStats,
    )
    expected = pa.table(
        {"project": ["11", "12"], "sum(quantity)": pa.array([7.0, 1.5], pa.float64())}
    )
    assert by_project.to_arrow().equals(expected)


def test_polars_and_pandas_read_the_same_table() -> None:
    pytest.importorskip("polars")
    pytest.importorskip("pandas")
    table = discover_table(
        [{"n": 1, "when": "2026-01-01T00:00:00+00:00"}], _meta({"n": "integer", "when": "date"})
    )
    frame = to_polars(table)
    assert frame.columns == ["n", "when"] and frame["n"].to_list() == [1]
    pandas_frame = to_pandas(table)
    assert list(pandas_frame.columns) == ["n", "when"]
    assert str(pandas_frame["when"].dtype).startswith("datetime64")


async def test_a_page_is_let_go_before_the_next_one_is_fetched() -> None:
    """The pages before the one being fetched are garbage already: a page kept alive while
    the next one decodes makes that one decode into cold memory (measured: 2-6% of a
    walk's CPU, 11-14% with many walks side by side)."""
    from sentry_async.pagination import Paginator

    fetch = WatchedPages(
        memory_pages([[{"id": str(page * 10 + n), "n": n} for n in range(3)] for page in range(3)])
    )
    rows = 0
    with anyio.fail_after(5):
        async for batch in discover_batches(Paginator(fetch, page_size=3).read_ahead(0)):
            rows += batch.num_rows
    assert rows == 9
    assert fetch.alive_when_asked == [0, 0, 0]


def test_usage_quantities_beyond_2_to_the_53_stay_exact_integers() -> None:
    """Byte sums of attachments over a long period pass 2**53: as int64 they stay exact,
    instead of going through float64 (which refused them)."""
    big = 2**53 + 1
    usage = msgspec.json.decode(
        b'{"intervals":["2026-01-01T00:00:00Z","2026-01-02T00:00:00Z"],'
        b'"groups":[{"by":{"category":"attachment"},"totals":{"sum(quantity)":%d,"n":2.5},'
        b'"series":{"sum(quantity)":[%d,0],"n":[2.5]}}]}' % (big, big),
        type=UsageStats,
    )
    table = usage.to_arrow()
    assert table.schema.field("sum(quantity)").type == pa.int64()
    assert table.column("sum(quantity)").to_pylist() == [big, 0]
    assert table.schema.field("n").type == pa.float64()
    assert table.column("n").to_pylist() == [2.5, None]
    whole = msgspec.json.decode(
        b'{"intervals":[],"groups":[{"by":{"project":1},"totals":{"sum(quantity)":3.0}}]}',
        type=UsageStats,
    )
    assert whole.to_arrow().column("sum(quantity)").to_pylist() == [3]
    assert whole.to_arrow().schema.field("sum(quantity)").type == pa.int64()


def test_pandas_keeps_integer_columns_with_nulls_exact() -> None:
    pd = pytest.importorskip("pandas")
    big = 2**53 + 1
    table = discover_table(
        [{"issue.id": 6123456789, "n": big}, {"issue.id": None, "n": None}],
        _meta({"issue.id": "integer", "n": "integer"}),
    )
    frame = to_pandas(table)
    assert frame["n"].dtype == pd.Int64Dtype() and frame["issue.id"].dtype == pd.Int64Dtype()
    assert frame["n"][0] == big and frame["n"].isna().tolist() == [False, True]
    assert frame.to_csv(index=False).splitlines() == ["issue.id,n", f"6123456789,{big}", ","]


async def test_pages_without_meta_keep_their_types_and_every_column() -> None:
    """A list endpoint's pages (issues, events) have no meta: each column is typed as
    ``page.to_arrow()`` types it, and a key first seen on a later page (an optional field
    absent from a whole page) is a column, null for the rows before it."""
    pages = [
        [{"id": "1", "n": 1, "ok": True, "project": {"slug": "a"}}],
        [{"id": "2", "n": 2.5, "ok": False, "project": {"slug": "b"}, "assignedTo": {"id": "7"}}],
        [{"id": "3", "n": 3}],
    ]

    def query() -> Paginator[object]:
        raw = [[msgspec.Raw(msgspec.json.encode(item)) for item in page] for page in pages]
        return Paginator(memory_pages(raw), page_size=1)

    with anyio.fail_after(5):
        first = await anext(query().pages())
        table = await collect_table(query())
        batches = [batch async for batch in discover_batches(query())]
    assert table.column_names == ["id", "n", "ok", "project", "assignedTo"]
    assert table.schema.field("ok").type == first.to_arrow().schema.field("ok").type == pa.bool_()
    assert table.schema.field("project").type == first.to_arrow().schema.field("project").type
    assert table.schema.field("n").type == pa.float64()
    assert table.to_pylist() == [
        {"id": "1", "n": 1.0, "ok": True, "project": {"slug": "a"}, "assignedTo": None},
        {"id": "2", "n": 2.5, "ok": False, "project": {"slug": "b"}, "assignedTo": {"id": "7"}},
        {"id": "3", "n": 3.0, "ok": None, "project": None, "assignedTo": None},
    ]
    assert [batch.schema.names for batch in batches][1:] == [table.column_names] * 2


async def test_issue_tables_have_integer_counts_and_timestamps(
    fake_sentry: FakeSentry, client: SentryClient
) -> None:
    with anyio.fail_after(15):
        page = await anext(client.issues.list(ORG, query="", page_size=3).pages())
        table = await collect_table(client.issues.list(ORG, query="", page_size=3, limit=6))
    one = page.to_arrow()
    for name in ("userCount", "numComments", "isBookmarked", "project", "count", "firstSeen"):
        assert table.schema.field(name).type == one.schema.field(name).type, name
    assert one.schema.field("count").type == pa.int64()
    assert one.schema.field("firstSeen").type == pa.timestamp("us", tz="UTC")
    assert one.column("count").to_pylist() == [issue.count_int for issue in page.items]
    assert one.column("firstSeen").to_pylist() == [issue.first_seen for issue in page.items]


async def test_the_readme_way_to_write_batches_to_parquet_survives_a_widened_column(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The README's loop over ``discover_batches`` into Parquet, run as written, on a query
    whose second page widens a column."""
    import ast
    import re

    pq = pytest.importorskip("pyarrow.parquet")
    readme = Path(__file__).resolve().parents[1] / "README.md"  # noqa: ASYNC240
    blocks = re.findall(r"```python\n(.*?)```", readme.read_text(encoding="utf-8"), re.S)
    (recipe,) = [block for block in blocks if "write_batch" in block]
    meta = _meta({"n": "integer", "title": "string"})
    pages: list[list[dict[str, object]]] = [[{"n": 1, "title": "a"}], [{"n": 2.5}], [{"n": 3}]]
    monkeypatch.chdir(tmp_path)
    discover = SimpleNamespace(query=lambda *args, **kwargs: _discover_pages(pages, meta))
    scope: dict[str, object] = {"sentry": SimpleNamespace(discover=discover)}
    code = compile(recipe, "README.md", "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)
    with anyio.fail_after(5):
        await eval(code, scope)
    table = scope["table"]
    assert isinstance(table, pa.Table)
    assert table.column("n").to_pylist() == [1.0, 2.5, 3.0]
    assert len(list(tmp_path.glob("*.parquet"))) == 2  # noqa: ASYNC240 - a test's own files
    assert pq.read_table(tmp_path / "rows-0.parquet").column("n").type == pa.int64()
