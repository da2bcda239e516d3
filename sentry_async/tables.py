"""Apache Arrow tables from Discover rows, events-stats series and stats_v2 groups.

Analysts want a table, not JSON: these functions build Arrow tables whose column types come
from what Sentry says about the data (Discover's ``meta.fields``/``meta.units``), so dates
are timestamps, durations and sizes are numbers carrying their unit in the field metadata,
and counts are integers. polars and pandas read Arrow without copying
(:func:`to_polars`, :func:`to_pandas`). pyarrow is an optional extra
(``pip install 'sentry-async[arrow]'``) imported only when one of these is called.
"""

from __future__ import annotations

import contextlib
import importlib
from collections.abc import AsyncGenerator, Iterable, Iterator, Mapping, Sequence
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

import msgspec

from .models.discover import DiscoverMeta

if TYPE_CHECKING:
    import pyarrow as pa

    from .models.stats import EventsStats, UsageStats
    from .pagination import Page, Paginator

__all__ = [
    "collect_table",
    "discover_batches",
    "discover_schema",
    "discover_table",
    "events_stats_rows",
    "events_stats_table",
    "page_table",
    "to_pandas",
    "to_polars",
    "usage_rows",
    "usage_table",
]

_FLOAT_TYPES = frozenset(
    {"number", "percentage", "rate", "score", "percent_change", "currency", "duration", "size"}
)
"""Discover result types that are numbers with a fractional part (the unit in ``units``)."""

_ANY = msgspec.json.Decoder()


def _pa() -> Any:
    try:
        return importlib.import_module("pyarrow")
    except ImportError as exc:
        raise ImportError("Arrow tables need pyarrow: pip install 'sentry-async[arrow]'") from exc


def _arrow_type(pa: Any, sentry_type: str | None) -> Any:
    if sentry_type == "integer":
        return pa.int64()
    if sentry_type in _FLOAT_TYPES:
        return pa.float64()
    if sentry_type == "date":
        return pa.timestamp("us", tz="UTC")
    if sentry_type == "boolean":
        return pa.bool_()
    if sentry_type == "array":
        return pa.list_(pa.string())
    return pa.string()


def discover_schema(meta: DiscoverMeta | None, columns: Sequence[str]) -> pa.Schema:
    """The Arrow schema for Discover rows with these columns, typed from ``meta``.

    A column's Sentry type and unit travel as field metadata (``sentry.type``,
    ``sentry.unit``), so ``p95(transaction.duration)`` is a float64 column whose unit says
    ``millisecond``. Columns ``meta`` does not know are strings.
    """
    pa = _pa()
    types = meta.fields if meta is not None else {}
    units = meta.units if meta is not None else {}
    fields = []
    for name in columns:
        sentry_type = types.get(name)
        metadata: dict[str, str] = {}
        if sentry_type:
            metadata["sentry.type"] = sentry_type
        unit = units.get(name)
        if unit:
            metadata["sentry.unit"] = unit
        fields.append(pa.field(name, _arrow_type(pa, sentry_type), metadata=metadata or None))
    return pa.schema(fields)


def _timestamp(value: Any) -> datetime | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise ValueError(f"not a date: {value!r}")
    if isinstance(value, (int, float)):
        return datetime.fromtimestamp(value, tz=timezone.utc)
    text = str(value)
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    stamp = datetime.fromisoformat(text)
    return stamp if stamp.tzinfo is not None else stamp.replace(tzinfo=timezone.utc)


def _text(value: Any) -> str | None:
    if value is None or isinstance(value, str):
        return value
    return msgspec.json.encode(value).decode()


def _column(pa: Any, field: Any, values: list[Any]) -> Any:
    """One column; a value that does not fit the announced type widens it, never drops it."""
    kind = field.type
    if pa.types.is_timestamp(kind):
        try:
            return pa.array([_timestamp(v) for v in values], type=kind)
        except (ValueError, OverflowError, OSError, TypeError):
            # Not a date (free text, an epoch past year 9999): the values as Sentry sent them.
            return pa.array([_text(v) for v in values], type=pa.string())
    if pa.types.is_string(kind):
        return pa.array([_text(v) for v in values], type=kind)
    if pa.types.is_list(kind):
        return pa.array(
            [
                None if v is None else [_text(x) for x in (v if isinstance(v, list) else [v])]
                for v in values
            ],
            type=kind,
        )
    if pa.types.is_boolean(kind):
        # Sentry's booleans are ClickHouse UInt8: 0 and 1 on the wire, typed "boolean".
        flags = [_flag(v) for v in values]
        if _NO_FLAG in flags:
            return pa.array([_text(v) for v in values], type=pa.string())
        return pa.array(flags, type=kind)
    if pa.types.is_integer(kind) and not all(_whole(v) for v in values):
        kind = pa.float64()
    try:
        return pa.array(values, type=kind)
    except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError):
        return pa.array([_text(v) for v in values], type=pa.string())


_NO_FLAG = object()


def _flag(value: Any) -> Any:
    """A "boolean" column's value as a bool (``None`` stays null), or :data:`_NO_FLAG`."""
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    return _NO_FLAG


_INT64_END = 2**63


def _whole(value: Any) -> bool:
    """Whether an "integer" column's value fits int64 as is (pyarrow would truncate 2.5);
    a whole float past int64 does not (float64 holds it, int64 cannot)."""
    if value is None or isinstance(value, int):
        return True
    return isinstance(value, float) and value.is_integer() and abs(value) < _INT64_END


def _wider_type(pa: Any, old: Any, new: Any) -> Any:
    """The narrowest type holding both: integers and floats meet at float64, others at text."""
    if old == new or pa.types.is_null(new):
        return old
    if pa.types.is_null(old):
        return new
    numbers = (pa.types.is_integer, pa.types.is_floating)
    if any(check(old) for check in numbers) and any(check(new) for check in numbers):
        return pa.float64()
    return pa.string()


def _widened(pa: Any, schema: Any, other: Any) -> Any:
    """``schema`` with each column wide enough for ``other``'s (same columns, same metadata)."""
    fields = []
    for field in schema:
        kind = _wider_type(pa, field.type, other.field(field.name).type)
        fields.append(field if kind == field.type else field.with_type(kind))
    return pa.schema(fields, metadata=schema.metadata)


def _as_text(pa: Any, column: Any) -> Any:
    """A column as text: numbers as Arrow prints them, dates in ISO 8601, others as JSON."""
    if pa.types.is_integer(column.type) or pa.types.is_floating(column.type):
        return column.cast(pa.string())
    return pa.array(
        [v.isoformat() if isinstance(v, datetime) else _text(v) for v in column.to_pylist()],
        type=pa.string(),
    )


def _fit(pa: Any, column: Any, kind: Any) -> Any:
    """``column`` as the wider type ``kind`` with no value lost; text when a cast would
    lose one (an integer beyond 2**53 as float64), so the result may not be ``kind``."""
    if column.type == kind:
        return column
    if pa.types.is_string(kind):
        return _as_text(pa, column)
    try:
        return column.cast(kind)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError):
        return _as_text(pa, column)


def _column_or_nulls(pa: Any, table: Any, field: Any) -> Any:
    """``table``'s column of ``field``, or nulls where the table has no such column."""
    if field.name in table.column_names:
        return table.column(field.name)
    return pa.nulls(table.num_rows, type=field.type)


_EXACT_FLOAT = 2**53
"""Integers past this in magnitude are not all float64 values: such a column widens to text."""


def _exact(pa: Any, schema: Any, largest: Mapping[str, int]) -> Any:
    """``schema`` with text instead of float64 for a column whose integers (their largest
    magnitude in ``largest``) went past 2**53: as float64 they would not read back."""
    for index, field in enumerate(schema):
        if pa.types.is_floating(field.type) and largest.get(field.name, 0) > _EXACT_FLOAT:
            schema = schema.set(index, field.with_type(pa.string()))
    return schema


def _note_largest(pa: Any, table: Any, largest: dict[str, int]) -> None:
    """Record in ``largest`` the largest magnitude of each integer column of ``table``."""
    compute = importlib.import_module("pyarrow.compute")
    for field, column in zip(table.schema, table.columns, strict=True):
        if pa.types.is_integer(field.type):
            bounds = compute.min_max(column).as_py()
            if bounds["min"] is not None:
                found = max(abs(bounds["min"]), abs(bounds["max"]))
                largest[field.name] = max(largest.get(field.name, 0), found)


def _united(pa: Any, schema: Any, other: Any) -> Any:
    """``schema`` widened for ``other`` (as :func:`_widened`), then ``other``'s columns it
    lacks: the schema of pages whose rows carry different keys."""
    fields = []
    for field in schema:
        if field.name not in other.names:
            fields.append(field)
            continue
        new = other.field(field.name)
        if pa.types.is_null(field.type):
            # Untyped so far (only nulls): the other's field, with its Sentry type and unit.
            fields.append(new)
            continue
        kind = _wider_type(pa, field.type, new.type)
        fields.append(field if kind == field.type else field.with_type(kind))
    fields += [field for field in other if field.name not in schema.names]
    return pa.schema(fields, metadata=schema.metadata)


def _conform(pa: Any, tables: list[Any], schema: Any) -> tuple[list[Any], Any]:
    """``tables`` all under ``schema``, widened further (to text) where a cast cannot hold a
    value; returns the tables and the schema they now share. A column a table lacks is
    null in it."""
    while True:
        columns = [
            [_fit(pa, _column_or_nulls(pa, table, f), f.type) for f in schema] for table in tables
        ]
        loose = [
            index
            for index, field in enumerate(schema)
            if any(table[index].type != field.type for table in columns)
        ]
        if not loose:
            return [pa.Table.from_arrays(table, schema=schema) for table in columns], schema
        for index in loose:
            schema = schema.set(index, schema.field(index).with_type(pa.string()))


def _rows_table(rows: Sequence[Mapping[str, Any]], schema: Any) -> pa.Table:
    pa = _pa()
    arrays = []
    fields = []
    for field in schema:
        column = _column(pa, field, [row.get(field.name) for row in rows])
        arrays.append(column)
        fields.append(field if column.type == field.type else field.with_type(column.type))
    return pa.Table.from_arrays(arrays, schema=pa.schema(fields))


def _columns(meta: DiscoverMeta | None, rows: Iterable[Mapping[str, Any]]) -> list[str]:
    names: dict[str, None] = dict.fromkeys(meta.fields if meta is not None else ())
    for row in rows:
        for key in row:
            names.setdefault(key, None)
    return list(names)


def _raw_value(value: Any) -> Any:
    """A model's raw JSON field (an issue's ``stats``, an event's ``context``) as its value."""
    if isinstance(value, msgspec.Raw):
        return _ANY.decode(value) if value else None
    raise NotImplementedError(f"no table value for {type(value).__name__}")


def _as_rows(items: Sequence[Any]) -> list[Mapping[str, Any]]:
    rows: list[Mapping[str, Any]] = []
    for item in items:
        if isinstance(item, msgspec.Raw):
            item = _ANY.decode(item)
        elif isinstance(item, msgspec.Struct):
            struct = item
            # Dates stay datetimes: a table types them as timestamps, not text.
            item = msgspec.to_builtins(item, enc_hook=_raw_value, builtin_types=(datetime,))
            count = getattr(struct, "count_int", None)
            if isinstance(count, int) and isinstance(item, dict) and "count" in item:
                # An issue's count is text on the wire, an integer in a table.
                item["count"] = count
        if not isinstance(item, Mapping):
            raise TypeError(f"a table row must be an object, not {type(item).__name__}")
        rows.append(item)
    return rows


def discover_table(rows: Sequence[Mapping[str, Any]], meta: DiscoverMeta | None = None) -> pa.Table:
    """Discover rows as one table typed from ``meta`` (a page's ``meta``)."""
    rows = _as_rows(rows)
    return _rows_table(rows, discover_schema(meta, _columns(meta, rows)))


def page_table(page: Page[Any]) -> pa.Table:
    """Any page as a table: Discover pages typed from their meta, other items (Structs,
    raw bytes, dicts) from their fields, nested objects as Arrow structs. A model's raw
    JSON fields hold their JSON value; a column whose values share no Arrow type (free-form
    objects whose keys change type from row to row) holds each value's JSON text."""
    meta = page.meta if isinstance(page.meta, DiscoverMeta) else None
    if meta is not None:
        return discover_table(page.items, meta)
    return _inferred_table(_pa(), _as_rows(page.items))


def _inferred_table(pa: Any, rows: Sequence[Mapping[str, Any]]) -> Any:
    """Rows without meta as a table, each column typed from its values."""
    columns = {}
    for name in _columns(None, rows):
        values = [row.get(name) for row in rows]
        try:
            columns[name] = pa.array(values)
        except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError):
            columns[name] = pa.array([_text(v) for v in values], type=pa.string())
    return pa.table(columns)


async def _page_tables(paginator: Paginator[Any]) -> AsyncGenerator[pa.Table, None]:
    """One table per page, each typed as wide as the pages so far need.

    Discover pages have the first page's meta's columns, typed from it. Pages without meta
    (issues, events) are typed as :func:`page_table` types them, and a key first seen on
    a later page adds a column from that page on. A column keeps its type until a page
    holds a value that does not fit it, and from that page on it is wider: never narrower
    than on an earlier page, and text rather than float64 where an earlier page held an
    integer past 2**53, so the last page's schema holds every page's values.
    """
    pa = _pa()
    schema = None
    typed = True
    largest: dict[str, int] = {}
    # Closed with these tables, not later by the event loop: a read-ahead stops with them.
    async with contextlib.aclosing(paginator.pages()) as pages:
        async for page in pages:
            rows = _as_rows(page.items)
            if schema is None:
                meta = page.meta if isinstance(page.meta, DiscoverMeta) else None
                if meta is None and not rows:
                    continue
                typed = meta is not None
                if typed:
                    schema = discover_schema(meta, _columns(meta, rows))
            if typed:
                table = _rows_table(rows, schema)
                wider = _widened(pa, schema, table.schema)
            else:
                table = _inferred_table(pa, rows)
                wider = table.schema if schema is None else _united(pa, schema, table.schema)
            wider = _exact(pa, wider, largest)
            if table.schema != wider:
                (table,), wider = _conform(pa, [table], wider)
            schema = wider
            _note_largest(pa, table, largest)
            # Gone before the next page is asked for: a page kept alive while the next
            # one decodes makes it decode into cold memory.
            del page, rows
            yield table
            del table


async def discover_batches(paginator: Paginator[Any]) -> AsyncGenerator[pa.RecordBatch, None]:
    """A whole Discover query, one record batch per page, in the memory of one page.

    Every batch has the columns of the first page's meta (columns a later page adds are
    dropped, missing ones are null); a paginator without meta (issues, events) gains a
    column from the batch whose rows first carry its key. A column has the first page's
    type until a later page holds a value that does not fit it: from that batch on the
    column is wider (int64 to float64, anything to text; text, not float64, after a batch
    with an integer past 2**53), and batches already yielded keep their type, so the last
    batch's schema reads every batch. A ``ParquetWriter`` made with the first batch's schema
    refuses a batch whose schema changed: to write one file, use :func:`collect_table`
    (which casts the earlier batches), or write each schema to a file of its own. A query
    without rows yields one empty batch with the meta's columns, so a writer still learns
    them.
    """
    schema = None
    rows = 0
    async with contextlib.aclosing(_page_tables(paginator)) as tables:
        async for table in tables:
            schema = table.schema
            rows += table.num_rows
            for batch in table.to_batches():
                yield batch
            del table
    if schema is not None and not rows:
        yield _pa().RecordBatch.from_pylist([], schema=schema)


async def collect_table(paginator: Paginator[Any]) -> pa.Table:
    """A whole Discover query as one table (for results that fit in memory), each column
    as wide as its widest page: a value is never truncated to an earlier page's type. A
    query without rows gives an empty table with the meta's columns."""
    pa = _pa()
    tables = [table async for table in _page_tables(paginator)]
    if not tables:
        return pa.table({})
    tables, _ = _conform(pa, tables, tables[-1].schema)
    return pa.concat_tables(tables)


_EVENTS_STATS_COLUMNS = (
    "series",
    "y_axis",
    "group",
    "order",
    "timestamp",
    "value",
    "comparison_value",
)
"""The keys of :func:`events_stats_rows`, in order: the columns of an answer without series
too (top events that match nothing, which Sentry answers with ``{}``)."""


def events_stats_rows(stats: EventsStats) -> list[dict[str, Any]]:
    """One row per series and bucket: ``series``, ``y_axis``, ``group``, ``order``,
    ``timestamp`` (UTC datetime), ``value`` and ``comparison_value``. Plain Python: the
    command line prints these without pyarrow."""
    return list(_each_events_stats_row(stats))


def _each_events_stats_row(stats: EventsStats) -> Iterator[dict[str, Any]]:
    """:func:`events_stats_rows` one at a time: a large answer's rows (a dict each, several
    times the answer's own size) need not all be in memory to be written."""
    for series in stats.series:
        comparisons = series.comparison_values or [None] * len(series.timestamps)
        for stamp, value, comparison in zip(
            series.timestamps, series.values, comparisons, strict=True
        ):
            yield {
                "series": series.name,
                "y_axis": series.y_axis,
                "group": series.group,
                "order": series.order,
                "timestamp": datetime.fromtimestamp(stamp, tz=timezone.utc),
                "value": value,
                "comparison_value": comparison,
            }


def events_stats_table(stats: EventsStats) -> pa.Table:
    """:func:`events_stats_rows` as a table (timestamps in seconds, UTC), built column by
    column from the series rather than through a dict per row."""
    pa = _pa()
    schema = pa.schema(
        [
            ("series", pa.string()),
            ("y_axis", pa.string()),
            ("group", pa.string()),
            ("order", pa.int64()),
            ("timestamp", pa.timestamp("s", tz="UTC")),
            ("value", pa.float64()),
            ("comparison_value", pa.float64()),
        ]
    )
    columns: dict[str, list[Any]] = {name: [] for name in schema.names}
    for series in stats.series:
        size = len(series.timestamps)
        comparisons = series.comparison_values or [None] * size
        if not len(series.values) == len(comparisons) == size:
            raise ValueError(
                f"series {series.name!r}: {size} timestamps, {len(series.values)} values "
                f"and {len(comparisons)} comparison values"
            )
        for name, value in (
            ("series", series.name),
            ("y_axis", series.y_axis),
            ("group", series.group),
            ("order", series.order),
        ):
            columns[name].extend([value] * size)
        columns["timestamp"].extend(series.timestamps)
        # Counts are integers in a series; the column is float64, as sums and rates are.
        columns["value"].extend([None if v is None else float(v) for v in series.values])
        columns["comparison_value"].extend([None if v is None else float(v) for v in comparisons])
    return pa.Table.from_pydict(columns, schema=schema)


def _usage_columns(usage: UsageStats) -> tuple[list[str], bool, list[str]]:
    """The ``groupBy`` keys, whether rows go per interval, and the quantity fields: those the
    query asked for first (an answer with no group has the same columns as any other), then
    any other its groups hold. Answers with ``intervals`` go per interval unless their
    groups have no series (``groupBy=project``)."""
    keys = dict.fromkeys(usage.group_by or ())
    fields = dict.fromkeys(usage.fields or ())
    for group in usage.groups:
        keys.update(dict.fromkeys(group.by))
        fields.update(dict.fromkeys(group.series or group.totals))
    per_interval = bool(usage.intervals) and (
        not usage.groups or any(group.series for group in usage.groups)
    )
    return list(keys), per_interval, list(fields)


def _usage_column_names(usage: UsageStats) -> list[str]:
    """The column names of :func:`usage_rows` and :func:`usage_table`, rows or none."""
    keys, per_interval, fields = _usage_columns(usage)
    return [*keys, *(["interval"] if per_interval else []), *fields]


def usage_rows(usage: UsageStats) -> list[dict[str, Any]]:
    """stats_v2 groups as rows: the ``groupBy`` keys (as strings), then ``interval`` (UTC
    datetime) and one value per field; answers without intervals (``groupBy=project``) give
    one row per group with the totals."""
    keys, per_interval, fields = _usage_columns(usage)
    intervals = [_timestamp(stamp) for stamp in usage.intervals]
    rows: list[dict[str, Any]] = []
    for group in usage.groups:
        labels = {key: None if group.by.get(key) is None else str(group.by[key]) for key in keys}
        if not per_interval:
            rows.append({**labels, **{name: group.totals.get(name) for name in fields}})
            continue
        for index, interval in enumerate(intervals):
            row: dict[str, Any] = {**labels, "interval": interval}
            for name in fields:
                series = group.series.get(name, [])
                row[name] = series[index] if index < len(series) else None
            rows.append(row)
    return rows


def usage_table(usage: UsageStats) -> pa.Table:
    """:func:`usage_rows` as a table; a quantity column is int64 where every value is whole
    (counts, bytes: exact past 2**53, never through float64), uint64 past int64, float64
    otherwise, and each value's text where neither holds them all exactly."""
    pa = _pa()
    keys, per_interval, fields = _usage_columns(usage)
    rows = usage_rows(usage)
    columns = {key: pa.array([row[key] for row in rows], type=pa.string()) for key in keys}
    if per_interval:
        stamps = [row["interval"] for row in rows]
        columns["interval"] = pa.array(stamps, type=pa.timestamp("us", tz="UTC"))
    for name in fields:
        columns[name] = _quantities(pa, [row[name] for row in rows])
    return pa.table(columns)


def _quantities(pa: Any, values: list[Any]) -> Any:
    """Quantities as int64 when every value is whole and fits, else uint64 when that holds
    them, else float64 when it holds each exactly, else their text: one large sum does not
    change the other values of its column."""
    if all(_whole(value) for value in values):
        whole = [None if value is None else int(value) for value in values]
        for kind in (pa.int64(), pa.uint64()):
            with contextlib.suppress(pa.ArrowInvalid, OverflowError):
                return pa.array(whole, type=kind)
    else:
        with contextlib.suppress(pa.ArrowInvalid, OverflowError):
            return pa.array(values, type=pa.float64())
    return pa.array([_text(value) for value in values], type=pa.string())


def to_polars(table: pa.Table) -> Any:
    """A polars DataFrame over the table (``pip install 'sentry-async[polars]'``)."""
    try:
        polars = importlib.import_module("polars")
    except ImportError as exc:
        raise ImportError("to_polars needs polars: pip install 'sentry-async[polars]'") from exc
    return polars.from_arrow(table)


def to_pandas(table: pa.Table) -> Any:
    """A pandas DataFrame over the table (``pip install 'sentry-async[pandas]'``).

    Integer columns are pandas' nullable ``Int64`` (``UInt64`` past int64; a null is
    ``pd.NA``): pandas' own ``int64`` has no null, and its default of turning such a column
    into float64 would change ids and counts past 2**53 (an ``issue.id`` null for
    transactions, a large sum).
    """
    try:
        pandas = importlib.import_module("pandas")
    except ImportError as exc:
        raise ImportError("to_pandas needs pandas: pip install 'sentry-async[pandas]'") from exc
    pa = _pa()
    nullable = {pa.int64(): pandas.Int64Dtype(), pa.uint64(): pandas.UInt64Dtype()}
    return table.to_pandas(types_mapper=nullable.get)
