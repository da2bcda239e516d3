"""Sentry's paginators as the fake serves them: OffsetPaginator (``style="page"``),
the offset cursors of GenericOffsetPaginator and friends, SequencePaginator for issues, and
the ``Link`` header they share.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Callable, Sequence
from urllib.parse import quote, quote_plus, urlencode

from aiohttp import web

from ._data import IssueRecord
from ._state import _SERVE, ApiError, T, _json, _state

MAX_HITS = 1000


def _parse_cursor(request: web.Request) -> tuple[int, int, int]:
    raw = request.query.get("cursor")
    if raw is None or raw == "":
        return 0, 0, 0
    parts = raw.split(":")
    try:
        if len(parts) != 3:
            raise ValueError
        value = int(float(parts[0]))
        return value, int(parts[1]), int(parts[2])
    except ValueError:
        raise ApiError(400, "Invalid cursor parameter.") from None


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
    if offset < 0:
        raise ApiError(400, "Invalid cursor parameter.")
    if style == "page":
        # Sentry's OffsetPaginator: the cursor is <page size>:<page number>, and the page
        # starts at number * the size the cursor was made with. Asked with another size,
        # it keeps the last per_page + 1 rows of that window, as Sentry does: a client
        # that changes page size mid-stream skips rows, visibly to tests.
        size_then = value or per_page
        start = offset * size_then
        window = rows[start : start + size_then + 1]
        if size_then != per_page:
            window = window[-(per_page + 1) :]
        more = len(window) > per_page
        page = window[:per_page]
        prev_cursor, next_cursor = f"{per_page}:{offset - 1}:1", f"{per_page}:{offset + 1}:0"
    else:
        serve = request.get(_SERVE)
        count = per_page if serve is None else min(per_page, serve)
        page = rows[offset : offset + count]
        next_offset = offset + (len(page) if serve is not None else per_page)
        more = next_offset < len(rows)
        prev_offset = max(0, offset - per_page)
        anchor = value + 1 if serve is not None else (value if style == "value" else 0)
        if style == "value" and not value:
            anchor = int(_state(request).data.now_ts * 1000)
        prev_cursor, next_cursor = f"{anchor}:{prev_offset}:1", f"{anchor}:{next_offset}:0"
    headers = {
        "Link": _link(
            request,
            [("previous", prev_cursor, offset > 0), ("next", next_cursor, more)],
            discover=discover,
        )
    }
    if hits:
        headers["X-Hits"] = str(min(len(rows), MAX_HITS))
        headers["X-Max-Hits"] = str(MAX_HITS)
    body = b"[" + b",".join(encode(row) for row in page) + b"]"
    return _json(body, headers=headers)


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
    if request.query.get("cursor"):
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
