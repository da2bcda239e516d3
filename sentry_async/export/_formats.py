"""Discover rows as CSV (appended per page) or Parquet (one immutable part per window).

CSV cells are written as ``sentry-async query`` writes them (one formatter for both).
CSV keeps the JSON Lines guarantees as they are: a page is appended whole (with gzip, as
one member), so the length after any page is a row boundary the checkpoint records and a
resume cuts back to. The header is written with a file's first page.

A Parquet file cannot be appended to once closed, so each stream (one project in one
window) writes its own part: pages are gathered into row groups of :data:`ROW_GROUP_ROWS`
rows (or :data:`ROW_GROUP_BYTES`) written to ``NAME.tmp``, and only when the window's last
page is in is it closed, fsynced and renamed to ``NAME``. The checkpoint records a part as
done after the rename; a part it records is never written again, and an unfinished window
is fetched again from its first page into a fresh temporary file.

So a part keeps the types its own window needed: a column a later window widened (int64 to
float64, to text) is narrower in the parts written before. :func:`dataset_schema` is the
schema all parts read under, which the manifest records. A window without rows whose
answer typed nothing (no ``meta.fields``) has null columns, so it types nothing either.
"""

from __future__ import annotations

import contextlib
import csv
import gzip
import importlib
import io
import os
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, BinaryIO, Literal

import msgspec

from .._csv import cell, row_writer
from ..models.discover import DiscoverMeta
from ._checkpoint import Checkpoint, FileState, file_seal
from ._files import IdKey, id_key, parse_stamp, read_segment, safe_stem
from ._splitting import Split
from ._writer import (
    JsonlFile,
    Line,
    fsync_dir,
    lstat_no_follow,
    open_no_follow,
    remove_file,
    replace_file,
)

__all__ = [
    "FORMATS",
    "ROW_GROUP_BYTES",
    "ROW_GROUP_ROWS",
    "SUFFIXES",
    "CsvFile",
    "DataFile",
    "ExportFormat",
    "ParquetPart",
    "check_arrow",
    "columns_for",
    "dataset_schema",
    "drop_unfinished",
    "ids_in_csv",
    "open_data_file",
    "part_name",
    "split_parts",
    "store_page",
]

ExportFormat = Literal["jsonl", "csv", "parquet"]
FORMATS = ("jsonl", "csv", "parquet")
SUFFIXES = {"jsonl": ".jsonl", "csv": ".csv", "parquet": ".parquet"}

_ANY = msgspec.json.Decoder()

ROW_GROUP_ROWS = 65_536
"""Rows of a Parquet part's row group. A row group per page (Discover's at most 100 rows)
costs the writer memory for every one until the part is closed, and a reader a footer
of megabytes and row groups too small to gain from reading by column."""
ROW_GROUP_BYTES = 32 * 1024 * 1024
"""Arrow bytes that make a row group before :data:`ROW_GROUP_ROWS` rows are held: wide
rows (long messages) stay within the memory of a row group of narrow ones."""


def check_arrow() -> None:
    """Parquet needs pyarrow; say how to get it before anything is created."""
    try:
        importlib.import_module("pyarrow.parquet")
    except ImportError as exc:
        raise ImportError(
            "--format parquet needs pyarrow: pip install 'sentry-async[arrow]'"
        ) from exc


def columns_for(fields: Sequence[str], meta: Any) -> list[str]:
    """The requested fields in their order, then any other column ``meta`` announces."""
    columns = list(dict.fromkeys(fields))
    if isinstance(meta, DiscoverMeta):
        columns += [name for name in meta.fields if name not in columns]
    return columns


def part_name(stem: str, start: datetime, end: datetime) -> str:
    """``stem.20260101T000000Z-20260102T000000Z.parquet``: one window's part."""
    fmt = "%Y%m%dT%H%M%SZ"
    return f"{stem}.{start.strftime(fmt)}-{end.strftime(fmt)}.parquet"


class CsvFile(JsonlFile):
    """A data file of CSV rows; ``columns`` are set from the first page (or the checkpoint)."""

    def __init__(
        self,
        path: Path,
        *,
        compress: bool,
        columns: list[str] | None,
        escape_formulas: bool = False,
    ) -> None:
        super().__init__(path, compress=compress)
        self.columns = columns
        self.escape_formulas = escape_formulas

    def encode_page(self, items: Sequence[Line]) -> bytes:
        assert self.columns is not None
        text = io.StringIO()
        write = row_writer(text)
        if self.offset == 0:
            # A column beyond the fields asked for is named by the server (meta.fields).
            write([cell(name, escape_formulas=self.escape_formulas) for name in self.columns])
        for item in items:
            row = _ANY.decode(item)
            if not isinstance(row, dict):
                row = {}
            write([cell(row.get(n), escape_formulas=self.escape_formulas) for n in self.columns])
        data = text.getvalue().encode("utf-8")
        if data and self.compress:
            data = gzip.compress(data, compresslevel=6, mtime=0)
        return data


def ids_in_csv(
    path: Path, start: int, end: int, compress: bool, columns: Sequence[str]
) -> set[IdKey]:
    """The ``id`` column of the rows between two page boundaries (strings, as CSV has them,
    as :func:`id_key`)."""
    if end <= start or "id" not in columns:
        return set()
    index = list(columns).index("id")
    with read_segment(path, start, end, compress) as data:
        rows = csv.reader(io.TextIOWrapper(data, encoding="utf-8", newline=""))
        if start == 0:
            next(rows, None)
        return {id_key(row[index]) for row in rows if len(row) > index}


class ParquetPart:
    """One window's Parquet part, written under a temporary name until it is complete.

    Pages are held until they make a row group; ``items`` counts the rows in row groups
    written to the temporary file, ``buffered`` those still held.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.tmp = path.with_name(path.name + ".tmp")
        self.offset = 0
        self.items = 0
        self.buffered = 0
        self._held: list[Any] = []
        self._held_bytes = 0
        self._writer: Any = None
        self._schema: Any = None
        self._sink: BinaryIO | None = None

    def open(self, offset: int) -> None:
        """Start the part afresh: a temporary file left by a stopped run is discarded."""
        if offset:
            raise ValueError(f"{self.path} is complete; a finished part is never rewritten")
        remove_file(self.tmp)

    def write_page(self, items: Sequence[Line], fields: Sequence[str], meta: Any) -> int:
        """Take a page into the row group being gathered, written once it holds
        :data:`ROW_GROUP_ROWS` rows or :data:`ROW_GROUP_BYTES`; returns the rows taken.

        A value that does not fit its column's type so far widens the column (int64 to
        float64, anything to text): the rows already written and those held are made the
        wider type, as a Parquet file has one schema, rather than the value being truncated.
        """
        from ..tables import _as_rows, _conform, _pa, _rows_table, _widened, discover_schema

        rows = _as_rows([msgspec.Raw(item) for item in items])
        if self._schema is None:
            if not rows and not (isinstance(meta, DiscoverMeta) and meta.fields):
                # Nothing to type the columns by: the next page, or finish(), does.
                return 0
            columns = columns_for(fields, meta)
            typed = meta if isinstance(meta, DiscoverMeta) else None
            self._schema = _rows_table(rows, discover_schema(typed, columns)).schema
        if not rows:
            return 0
        table = _rows_table(rows, self._schema)
        if table.schema != self._schema:
            pa = _pa()
            widened = _widened(pa, self._schema, table.schema)
            tables, schema = _conform(pa, [*self._held, table], widened)
            if self._writer is not None:
                tables, schema = self._widen(tables, schema)
            *self._held, table = tables
            self._schema = schema
            self._held_bytes = sum(held.nbytes for held in self._held)
        self._held.append(table)
        self.buffered += table.num_rows
        self._held_bytes += table.nbytes
        if self.buffered >= ROW_GROUP_ROWS or self._held_bytes >= ROW_GROUP_BYTES:
            self._flush()
        return len(rows)

    def _flush(self) -> None:
        """Write the rows held as one row group, and count them as written."""
        if not self._held:
            return
        from ..tables import _pa

        if self._writer is None:
            self._start()
        group = _pa().concat_tables(self._held)
        self._writer.write_table(group, row_group_size=group.num_rows)
        self.items += group.num_rows
        self._held = []
        self.buffered = self._held_bytes = 0

    def _widen(self, tables: list[Any], schema: Any) -> tuple[list[Any], Any]:
        """Rewrite the row groups written so far under ``schema`` (or wider, where a cast
        cannot hold a value); returns ``tables`` under the schema the part now has, and it."""
        from ..tables import _conform, _pa

        pa = _pa()
        pq = importlib.import_module("pyarrow.parquet")
        self._writer.close()
        self._writer = None
        assert self._sink is not None
        self._sink.close()
        self._sink = None
        fd = open_no_follow(self.tmp, os.O_RDONLY, create=False, single_link=False)
        with os.fdopen(fd, "rb") as written:
            # The open file is read from; the name is free for the rewritten part.
            remove_file(self.tmp)
            groups = pq.ParquetFile(written)
            for index in range(groups.num_row_groups):
                _, schema = _conform(pa, [groups.read_row_group(index)], schema)
            tables, schema = _conform(pa, tables, schema)
            self._schema = schema
            self._start()
            for index in range(groups.num_row_groups):
                (group,), _ = _conform(pa, [groups.read_row_group(index)], schema)
                self._writer.write_table(group, row_group_size=group.num_rows)
        return tables, schema

    def _start(self) -> None:
        pq = importlib.import_module("pyarrow.parquet")
        fd = open_no_follow(self.tmp, os.O_WRONLY, create=True, exclusive=True)
        self._sink = os.fdopen(fd, "wb")
        self._writer = pq.ParquetWriter(self._sink, self._schema)

    def finish(self, fields: Sequence[str], meta: Any) -> int:
        """Write the rows held, close, fsync and rename the part into place; returns its
        size in bytes."""
        self._flush()
        if self._writer is None:
            # A window without rows still gets its part, with the columns and no rows.
            self._write_empty(columns_for(fields, meta))
        self._writer.close()
        self._writer = None
        assert self._sink is not None
        self._sink.flush()
        os.fsync(self._sink.fileno())
        self._sink.close()
        self._sink = None
        replace_file(self.tmp, self.path)
        fsync_dir(self.path.parent)
        self.offset = lstat_no_follow(self.path).st_size
        return self.offset

    def _write_empty(self, columns: Sequence[str]) -> None:
        """Start the part with no rows: typed if a page's meta typed it, else null columns."""
        if self._schema is None:
            pa = importlib.import_module("pyarrow")
            self._schema = pa.schema([pa.field(name, pa.null()) for name in columns])
        self._start()
        self._writer.write_table(self._schema.empty_table())

    def sync(self) -> None:
        """Nothing to make durable before :meth:`finish`: an unfinished part is redone."""

    def close(self) -> None:
        """Stop without finishing: the rows held are dropped, and the temporary file stays
        until a resume discards it."""
        self._held = []
        self.buffered = self._held_bytes = 0
        if self._writer is not None:
            with contextlib.suppress(Exception):
                self._writer.close()
            self._writer = None
        if self._sink is not None:
            self._sink.close()
            self._sink = None


DataFile = JsonlFile | ParquetPart


def dataset_schema(directory: Path, names: Sequence[str]) -> Any:
    """The schema the Parquet parts ``names`` all read under: each column as wide as its
    widest part (null, then int64, float64, text), and text where a part's integers go
    past 2**53 in a column another part made float64 (read from the parts' statistics)."""
    from ..tables import _exact, _pa, _united

    pa = _pa()
    pq = importlib.import_module("pyarrow.parquet")
    schema = None
    largest: dict[str, int] = {}
    for name in names:
        # Opened as every file of the export is: no link followed, no wait on a FIFO.
        fd = open_no_follow(directory / name, os.O_RDONLY, create=False, single_link=False)
        with os.fdopen(fd, "rb") as handle:
            metadata = pq.read_metadata(handle)
        part = metadata.schema.to_arrow_schema().remove_metadata()
        schema = part if schema is None else _united(pa, schema, part)
        for index, field in enumerate(part):
            if pa.types.is_integer(field.type):
                largest[field.name] = max(largest.get(field.name, 0), _largest(metadata, index))
    if schema is None:
        return None
    return _exact(pa, schema, largest)


def _largest(metadata: Any, index: int) -> int:
    """The largest absolute value of an integer column of a part, from its statistics (the
    limit when a row group has none)."""
    largest = 0
    for group in range(metadata.num_row_groups):
        stats = metadata.row_group(group).column(index).statistics
        if stats is None or not stats.has_min_max:
            if metadata.row_group(group).num_rows:
                return 2**63
            continue
        largest = max(largest, abs(stats.min), abs(stats.max))
    return largest


def open_data_file(
    path: Path, file_state: FileState, *, format: str, compress: bool, escape_formulas: bool = False
) -> DataFile:
    """The data file ``path`` of a format, opened at its committed length (blocking);
    ``escape_formulas``: CSV text cells a spreadsheet would run are prefixed with ``'``."""
    handle: DataFile
    if format == "parquet":
        handle = ParquetPart(path)
    elif format == "csv":
        handle = CsvFile(
            path, compress=compress, columns=file_state.columns, escape_formulas=escape_formulas
        )
    else:
        handle = JsonlFile(path, compress=compress)
    handle.open(file_state.offset)
    return handle


def store_page(
    handle: DataFile,
    file_state: FileState,
    lines: Sequence[Line],
    *,
    fields: Sequence[str],
    meta: Any,
    last: bool,
) -> int:
    """Write one page and record it in ``file_state``; returns the bytes now on disk.

    A Parquet part counts its bytes once, when ``last`` finishes it; until then its rows
    are in a temporary file that no checkpoint relies on.
    """
    if isinstance(handle, ParquetPart):
        handle.write_page(lines, fields, meta)
        if not last:
            return 0
        file_state.offset = handle.finish(fields, meta)
        file_state.items = handle.items
        return file_state.offset
    if isinstance(handle, CsvFile) and handle.columns is None:
        handle.columns = file_state.columns = columns_for(fields, meta)
    written = handle.append(handle.encode_page(lines))
    file_state.offset = handle.offset
    file_state.items += len(lines)
    file_state.tail_crc = file_seal(handle.tail, handle.offset, file_state.items)
    return written


def split_parts(checkpoint: Checkpoint, split: Split) -> None:
    """Parquet: each half of a split window writes its own part, from its first page.

    The parent's part was never finished (its temporary file is dropped), so the halves
    have nothing to de-duplicate against, and the parent's rows count for nothing.
    """
    split.parent.items = split.parent.duplicates = split.parent.unidentified = 0
    for part in split.parts:
        stem = safe_stem(part.key.rpartition("@")[0] or part.key)
        part.file = part_name(stem, parse_stamp(part.window_start), parse_stamp(part.window_end))
        part.dedupe_from = None
        checkpoint.files[part.file] = FileState()


def drop_unfinished(path: Path) -> None:
    """Remove a part's temporary file, if a stopped run left one."""
    remove_file(path.with_name(path.name + ".tmp"))
