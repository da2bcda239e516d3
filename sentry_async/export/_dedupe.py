"""De-duplication of a stream's pages by item ``id``, without I/O.

Each stream keeps the ids it has written (a half of a split window starts with those of
its parent, and a resumed stream with its own from before the stop, read back from the
file); an item whose id is among them, among the ids an earlier run of an incremental
export wrote, or among those the streams of an issue merged into its issue wrote, is
dropped. The ids are let go when the stream ends. A page whose every id
the stream already met in this run brings nothing new (see :attr:`PageItems.stale`); ids
written before this run (read back, or an incremental export's overlap) are met once
without counting so, however many pages hold them. An item without a usable id (not
an object, no string or integer ``id``, invalid UTF-8) is kept as sent and counted as
``unidentified``: it cannot be de-duplicated. Ids are kept as :func:`id_key` makes them
(a digest of fixed size for one longer than Sentry's), here and wherever read back.
"""

from __future__ import annotations

import csv
import io
import logging
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from pathlib import Path

import msgspec

from ._files import IdKey, id_key, ids_in_file, item_key, read_segment
from ._formats import ids_in_csv

__all__ = [
    "PageItems",
    "dedupe_page",
    "ids_written",
    "log_dropped",
    "log_overlap",
    "row_key",
    "rows_written",
]

logger = logging.getLogger("sentry_async.export")


@dataclass(frozen=True, slots=True)
class PageItems:
    """What of a page is written: ``lines``, and how many items were dropped or unidentified."""

    lines: list[msgspec.Raw]
    duplicates: int = 0
    unidentified: int = 0
    overlap: int = 0
    """Of the ``duplicates``, the items an earlier incremental run wrote (its overlap, read
    again by design): counted, but not warned about page by page."""
    stale: bool = False
    """Nothing new: the page was empty, or every item's id was met before in this run by
    the same stream."""


def dedupe_page(
    items: Sequence[msgspec.Raw],
    seen: set[IdKey],
    *,
    identify: bool = True,
    text_ids: bool = False,
    leading_ids: bool = True,
    skip: Collection[IdKey] = frozenset(),
    earlier: set[IdKey] | None = None,
    absorbed: Collection[IdKey] = frozenset(),
) -> PageItems:
    """The items of a page not seen before (not copied); adds their ids to ``seen``.

    ``identify=False`` keeps every item (rows asked for without an ``id``); ``text_ids``
    compares ids as strings, as a CSV file holds them (for a split window's halves);
    ``leading_ids`` is :func:`item_id`'s ``leading`` (JSON Lines only); ``skip`` holds
    ids as strings, made keys by :func:`~._files.skip_keys`, that count as seen;
    ``earlier`` holds ids the stream wrote before this run: dropped too, and moved to
    ``seen`` once met, so that only a second meeting makes a page stale; ``absorbed``
    holds ids other streams wrote that this one may meet (the events of an issue merged
    into its issue, which Sentry moved into it): dropped as ``earlier`` ids are, and
    left in place for the other streams that meet them. Ids are kept as
    :func:`~._files.id_key` makes them.
    """
    if not identify:
        return PageItems(list(items), stale=not items)
    lines: list[msgspec.Raw] = []
    dupes = unidentified = repeats = overlap = 0
    for item in items:
        key = item_key(item, leading=leading_ids)
        if key is None:
            unidentified += 1
            lines.append(item)
            continue
        if text_ids and isinstance(key, int):
            key = id_key(str(key))
        if key in seen:
            repeats += 1
        elif earlier and key in earlier:
            earlier.discard(key)
            seen.add(key)
        elif absorbed and key in absorbed:
            seen.add(key)
        elif skip and (id_key(str(key)) if isinstance(key, int) else key) in skip:
            seen.add(key)
            overlap += 1
        else:
            seen.add(key)
            lines.append(item)
            continue
        dupes += 1
    return PageItems(lines, dupes, unidentified, overlap, stale=repeats == len(items))


def row_key(item: msgspec.Raw, *, text_ids: bool, leading_ids: bool) -> IdKey | None:
    """An item's id as :func:`dedupe_page` keeps it with the same options (``None``: none
    usable), to look it up among the ids a stream met."""
    key = item_key(item, leading=leading_ids)
    if text_ids and isinstance(key, int):
        return id_key(str(key))
    return key


def log_dropped(stream: str, cursor: str | None, kept: PageItems) -> None:
    """Warn about a page's duplicates and unidentified items, if it had any; items an
    earlier incremental run wrote are expected (see :func:`log_overlap`)."""
    duplicates = kept.duplicates - kept.overlap
    if duplicates:
        logger.warning("%s: dropped %d duplicate item(s) at %r", stream, duplicates, cursor)
    if kept.unidentified:
        logger.warning(
            "%s: %d item(s) at %s have no usable id (written as sent, not de-duplicated)",
            stream,
            kept.unidentified,
            f"cursor {cursor!r}" if cursor is not None else "the first page",
        )


def log_overlap(skipped: int) -> None:
    """Once per run: the items an earlier incremental run already wrote, read again within
    the overlap and skipped, as designed."""
    if skipped:
        logger.info(
            "skipped %d item(s) the previous run already exported (its overlap, read again)",
            skipped,
        )


def ids_written(
    path: Path, start: int, end: int, *, compress: bool, columns: list[str] | None
) -> set[IdKey]:
    """The ids already in a data file between two page boundaries (blocking): what a half
    of a split window, or a resumed stream, must not write again. ``columns`` are a CSV
    file's (``None``: JSON Lines), whose ids are strings, as :func:`dedupe_page` with
    ``text_ids`` compares them."""
    if columns is not None:
        return ids_in_csv(path, start, end, compress, columns)
    return ids_in_file(path, start, end, compress)


def rows_written(path: Path, start: int, end: int, *, compress: bool, csv_rows: bool) -> int:
    """How many items (lines, or CSV rows past the header) a data file holds between two
    page boundaries (blocking)."""
    if end <= start:
        return 0
    with read_segment(path, start, end, compress) as data:
        if not csv_rows:
            return sum(1 for _ in data)
        rows = sum(1 for _ in csv.reader(io.TextIOWrapper(data, encoding="utf-8", newline="")))
    return rows - 1 if start == 0 else rows
