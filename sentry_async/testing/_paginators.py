"""Sentry's paginators as the fake serves them: OffsetPaginator (``style="page"``),
the offset cursors of GenericOffsetPaginator and friends, DateTimePaginator for
organizations, SequencePaginator for issues, and the ``Link`` header they share.
"""

from __future__ import annotations

import math
from bisect import bisect_left
from collections.abc import Callable, Sequence
from datetime import datetime
from urllib.parse import quote, quote_plus, urlencode

from aiohttp import web

from ._data import IssueRecord
from ._lookups import _param
from ._state import _SERVE, ApiError, T, _json, _request_key, _state

MAX_HITS = 1000
_SHORTENED = _request_key("shortened", bool)
"""Set when a page was served under a ``short_pages`` fault's limit: the fault fired."""


def _parse_cursor(request: web.Request) -> tuple[int, int, int]:
    """``Cursor.from_string``: the value is read with ``float()`` when it holds a ``.``,
    else with ``int()`` (so ``1e3`` is refused); whatever does not parse is a 400
    (``get_cursor``). A float past any row (``1.0e400``) is refused too."""
    raw = _param(request, "cursor")
    if raw is None or raw == "":
        return 0, 0, 0
    parts = raw.split(":")
    try:
        if len(parts) != 3:
            raise ValueError
        value = int(float(parts[0])) if "." in parts[0] else int(parts[0])
        return value, int(parts[1]), int(parts[2])
    except (ValueError, OverflowError):
        raise ApiError(400, "Invalid cursor parameter.") from None


def _serve(request: web.Request) -> int | None:
    """The rows a ``short_pages`` fault allows this page (``None``: no fault), noting that
    the fault took effect."""
    serve = request.get(_SERVE)
    if serve is not None:
        request[_SHORTENED] = True
    return serve


def _link(
    request: web.Request, links: Sequence[tuple[str, str, bool]], *, discover: bool = False
) -> str:
    state = _state(request)
    base = state.link_host or f"{request.scheme}://{request.host}"
    # Django's ``QueryDict.lists()`` order: repeated keys grouped where the key first appears.
    grouped: dict[str, list[str]] = {}
    for key, value in request.query.items():
        if key != "cursor":
            grouped.setdefault(key, []).append(value)
    pairs = [(key, value) for key, values in grouped.items() for value in values]
    if discover:
        # Discover joins ``urlquote(k)=urlquote(v)``: spaces as %20, "/" kept.
        query = "&".join(f"{quote(key)}={quote(value)}" for key, value in pairs)
    else:
        # Other endpoints use ``QueryDict.urlencode()``, i.e. ``quote_plus``.
        query = urlencode(pairs, quote_via=quote_plus)
    uri = f"{base}{quote(request.path)}?{query}"
    out = []
    for rel, cursor, more in links:
        text = f'<{uri}&cursor={cursor}>; rel="{rel}"; results="{"true" if more else "false"}"'
        if not state.legacy_links:
            text += f'; cursor="{cursor}"'
        out.append(text)
    return ", ".join(out)


def _page(
    request: web.Request,
    rows: Sequence[T],
    encode: Callable[[T], bytes],
    *,
    per_page: int,
    style: str = "offset",
    hits: bool = False,
    discover: bool = False,
) -> web.Response:
    """One page of ``rows`` with Sentry's Link header; ``style`` picks the cursor format."""
    value, offset, _ = _parse_cursor(request)
    if style == "page":
        # Sentry's OffsetPaginator: the cursor is <page size>:<page number>, and the page
        # starts at number * the size the cursor was made with (a size of 0: the first
        # page). Asked with another size, it keeps the last per_page + 1 rows of that
        # window, as Sentry does: a client that changes page size mid-stream skips rows,
        # visibly to tests. A cursor names a page by its number, so no ``short_pages``
        # page can be resumed from: those faults leave these pages whole.
        start = offset * value
        if start < 0:
            raise ApiError(400, "Pagination offset cannot be negative")
        window = rows[start : start + (value or per_page) + 1]
        if value != per_page:
            window = window[-(per_page + 1) :]
        more = len(window) > per_page
        page = window[:per_page]
        prev_cursor, next_cursor = f"{per_page}:{offset - 1}:1", f"{per_page}:{offset + 1}:0"
    else:
        if offset < 0:
            raise ApiError(400, "Invalid cursor parameter.")
        serve = _serve(request)
        count = per_page if serve is None else min(per_page, serve)
        page = rows[offset : offset + count]
        next_offset = offset + (len(page) if serve is not None else per_page)
        more = next_offset < len(rows)
        prev_offset = max(0, offset - per_page)
        anchor = value + 1 if serve is not None else 0
        prev_cursor, next_cursor = f"{anchor}:{prev_offset}:1", f"{anchor}:{next_offset}:0"
    has_prev = offset > 0
    return _respond(
        request,
        page,
        encode,
        [("previous", prev_cursor, has_prev), ("next", next_cursor, more)],
        hits=len(rows) if hits else None,
        discover=discover,
    )


def _respond(
    request: web.Request,
    page: Sequence[T],
    encode: Callable[[T], bytes],
    links: Sequence[tuple[str, str, bool]],
    *,
    hits: int | None = None,
    discover: bool = False,
) -> web.Response:
    """A page's JSON list with its ``Link`` header (and ``X-Hits`` when counted)."""
    headers = {"Link": _link(request, links, discover=discover)}
    if hits is not None:
        headers["X-Hits"] = str(min(hits, MAX_HITS))
        headers["X-Max-Hits"] = str(MAX_HITS)
    body = b"[" + b",".join(encode(row) for row in page) + b"]"
    return _json(body, headers=headers)


def _datetime_page(
    request: web.Request,
    rows: Sequence[T],
    when: Callable[[T], datetime],
    encode: Callable[[T], bytes],
    *,
    per_page: int,
) -> web.Response:
    """Sentry's ``DateTimePaginator`` over ``rows`` ordered newest first by ``when``.

    A cursor value is a row's time in ms, rounded up (next) or down (prev) as
    ``get_item_key`` does; ``offset`` skips the rows at or below it already served, and
    ``build_cursor`` makes the next value the next page's first row, so it changes from
    page to page. Ties keep the rows' own order, newest first and reversed going back.
    """
    value, offset, prev_flag = _parse_cursor(request)
    is_prev = bool(prev_flag)
    if offset < 0:
        raise ApiError(400, "Invalid cursor parameter.")
    serve = _serve(request)
    limit = per_page if serve is None else min(per_page, serve)

    def ms(row: T) -> float:
        return when(row).timestamp() * 1000

    def key(row: T, for_prev: bool = False) -> int:
        # Descending: a prev cursor reads ascending, so it floors; a next one ceils.
        return math.floor(ms(row)) if for_prev else math.ceil(ms(row))

    newest = sorted(rows, key=ms, reverse=True)
    ordered = newest[::-1] if is_prev else newest
    if value:
        ordered = [r for r in ordered if (ms(r) >= value if is_prev else ms(r) <= value)]
    if not limit:
        # A ``short_pages`` page with no row: the same position under a new value above
        # every row, one higher each time, so that the client never gets its cursor back.
        top = max(value, key(newest[0]) if newest else 0) + 1
        more = offset < len(ordered)
        links = [("previous", f"{value}:{offset}:1", False), ("next", f"{top}:{offset}:0", more)]
        return _respond(request, [], encode, links)
    extra = 2 if is_prev and value else 1
    results = list(ordered[offset : offset + limit + extra])
    if is_prev and value:
        if results and key(results[0], True) == value:
            results = results[1:]
        elif len(results) == offset + limit + extra:
            results = results[:-1]
    if is_prev:
        results.reverse()
    next_value, next_offset, has_next = _next_values(value, offset, is_prev, results, key, limit)
    prev_value, prev_offset, has_prev = _prev_values(value, offset, is_prev, results, key, limit)
    if is_prev and has_prev:
        results = results[1:]
    elif not is_prev:
        results = results[:limit]
    links = [
        ("previous", f"{prev_value}:{prev_offset}:1", has_prev),
        ("next", f"{next_value}:{next_offset}:0", has_next),
    ]
    return _respond(request, results, encode, links)


def _next_values(
    value: int,
    offset: int,
    is_prev: bool,
    results: Sequence[T],
    key: Callable[[T, bool], int],
    limit: int,
) -> tuple[int, int, bool]:
    """``_build_next_values`` of a descending paginator: the next page's first row's key,
    and how many rows of this page share it (or the offset moved on by a page)."""
    if not value and results:
        value = key(results[0], False)
    if is_prev:
        return value, 0, True
    if not results:
        return value, offset, False
    has_next = len(results) > limit
    next_value = key(results[-1], False)
    if next_value == value:
        return next_value, offset + limit, has_next
    sharing = 0
    for row in reversed(results[:-1] if has_next else results):
        if key(row, False) > next_value:
            break
        sharing += 1
    return next_value, sharing, has_next


def _prev_values(
    value: int,
    offset: int,
    is_prev: bool,
    results: Sequence[T],
    key: Callable[[T, bool], int],
    limit: int,
) -> tuple[int, int, bool]:
    """``_build_prev_values`` of a descending paginator: the first row's key, rounded
    down, and whether a page lies before (assumed after any cursor going forward)."""
    has_prev = len(results) > limit if is_prev else bool(value or offset)
    first = 1 if is_prev and has_prev else 0
    prev_value = key(results[first], True) if results else 0
    if not (is_prev and results):
        return prev_value, offset if is_prev else 0, has_prev
    if prev_value == value:
        return prev_value, offset + limit, has_prev
    sharing = 0
    for row in results[first + 1 :]:
        if key(row, True) < prev_value:
            break
        sharing += 1
    return prev_value, sharing, has_prev


def _descending(row: tuple[int, IssueRecord]) -> int:
    return -row[0]


def _sequence_page(
    request: web.Request,
    rows: list[tuple[int, IssueRecord]],
    per_page: int,
    *,
    short: bool = False,
) -> tuple[list[IssueRecord], str, bool, str, bool]:
    """Sentry's ``SequencePaginator`` over ``(score, issue)`` rows sorted by score descending.

    A cursor ``value:offset:is_prev`` means "rows with score <= value, after skipping the
    ``offset`` of them that share ``value`` and were served already": rows inserted above
    the cursor while a stream runs cause no repeats and no gaps, while a client that
    treats the cursor as a plain offset into the list does repeat and skip rows.
    A ``short`` page (the ``short_pages`` fault) may serve no row: its next cursor then
    names the same position in a new way (a value above every score, the position as
    its offset, one higher each time), as the offset paginators' ``value + 1`` does, so
    that a client never gets back the cursor it sent.
    Returns ``(page, prev_cursor, has_prev, next_cursor, has_next)``.
    """
    value, offset, is_prev = _parse_cursor(request)
    if offset < 0:
        raise ApiError(400, "Invalid cursor parameter.")
    if short:
        request[_SHORTENED] = True
    if _param(request, "cursor"):
        # First row whose score is <= value (scores descend); bisected, so a page costs
        # its rows whatever the listing's length.
        position = bisect_left(rows, -value, key=_descending) + offset
    else:
        position = 0
    if is_prev:
        start = max(0, position - per_page)
        page_rows = rows[start:position]
    else:
        start = position
        page_rows = rows[start : start + per_page]
    end = start + len(page_rows)

    def cursor_at(index: int, prev: bool) -> str:
        score = rows[index][0]
        first = bisect_left(rows, -score, hi=index, key=_descending)
        return f"{score}:{index - first}:{int(prev)}"

    has_next = end < len(rows)
    if short and has_next:
        next_cursor = f"{max(rows[0][0], value) + 1}:{end}:0"
    else:
        next_cursor = cursor_at(end, False) if has_next else f"{value}:{offset}:0"
    has_prev = start > 0
    prev_cursor = cursor_at(start, True) if start < len(rows) else f"{value}:{offset}:1"
    return [issue for _, issue in page_rows], prev_cursor, has_prev, next_cursor, has_next
