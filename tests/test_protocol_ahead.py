"""``CursorWalk.ahead``: the cursor a read-ahead may request before a page is counted.

The promise it keeps: on a stream that behaves (pages no larger than asked for, no
repeats), every cursor it names is the one the walk then asks for, so a request sent early
is never wasted; and it names none where the page's count could still end the walk.
"""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_protocol_cursors import Pages, link

from sentry_async.sansio import CursorWalk, Position

MODERATE = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def test_ahead_names_the_next_cursor_of_an_open_walk() -> None:
    walk = CursorWalk(page_size=10)
    assert walk.ahead(link("c1")) == "c1"
    walk.on_page(10, link("c1"))
    assert walk.ahead(link("c2")) == "c2"


def test_ahead_names_nothing_where_the_link_ends_or_breaks_the_walk() -> None:
    walk = CursorWalk(page_size=10)
    assert walk.ahead(None) is None
    assert walk.ahead(link("c1", more=False)) is None
    assert walk.ahead('<https://h/x/>; rel="next"; results="true"; cursor=""') is None
    assert walk.ahead("not a link header at all <") is None
    walk.on_page(10, link("c1"))
    assert walk.ahead(link("c1")) is None  # the cursor just requested: the walk stops
    walk.on_page(10, link("c2"))
    assert walk.ahead(link("c1")) is None  # a cycle back to an earlier cursor


def test_ahead_names_nothing_at_the_last_page_max_pages_allows() -> None:
    walk = CursorWalk(page_size=10, max_pages=2)
    assert walk.ahead(link("c1")) == "c1"
    walk.on_page(10, link("c1"))
    assert walk.ahead(link("c2")) is None


def test_ahead_names_nothing_within_reach_of_the_limit() -> None:
    walk = CursorWalk(page_size=10, limit=35)
    assert walk.ahead(link("c1")) == "c1"  # 35 left: more than any page can fill
    walk.on_page(10, link("c1"))
    assert walk.ahead(link("c2")) == "c2"  # 25 left
    walk.on_page(10, link("c2"))
    assert walk.ahead(link("c3")) is None  # 15 left: an oversized page could end it
    assert CursorWalk(limit=1_000).ahead(link("c1")) is None  # no page size: no bound


def test_ahead_names_nothing_when_one_more_stale_page_would_end_the_walk() -> None:
    walk = CursorWalk(page_size=10, max_stale_pages=2)
    assert walk.ahead(link("c1")) == "c1"
    walk.on_page(0, link("c1"))
    assert walk.ahead(link("c2")) is None


def test_ahead_names_nothing_once_the_walk_is_finished() -> None:
    walk = CursorWalk(Position("c9", done=True), page_size=10)
    assert walk.ahead(link("c1")) is None


@MODERATE
@given(
    counts=st.lists(st.integers(min_value=0, max_value=10), min_size=1, max_size=12),
    limit=st.none() | st.integers(min_value=0, max_value=130),
    max_pages=st.none() | st.integers(min_value=1, max_value=14),
    skip=st.integers(min_value=0, max_value=12),
    max_stale=st.integers(min_value=1, max_value=4),
)
def test_a_cursor_named_ahead_is_always_the_one_the_walk_asks_for_next(
    counts: list[int], limit: int | None, max_pages: int | None, skip: int, max_stale: int
) -> None:
    pages = Pages(counts)
    walk = CursorWalk(
        Position(None, skip),
        page_size=10,
        limit=limit,
        max_pages=max_pages,
        max_stale_pages=max_stale,
    )
    for _ in range(len(counts) + 1):
        if walk.finished:
            break
        items, header = pages.serve(walk.cursor)
        early = walk.ahead(header)
        try:
            walk.on_page(len(items), header)
        except Exception:
            assert early is None, "a request sent early for a walk that then failed"
            return
        if early is not None:
            assert not walk.finished and walk.cursor == early
    assert walk.finished
