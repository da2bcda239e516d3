"""The cursor walk, driven page by page without a network or an event loop."""

from __future__ import annotations

from collections.abc import Callable

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sentry_async import OversizedPage, PaginationError, Position
from sentry_async.sansio import CursorWalk, Step, body_fingerprint

MODERATE = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def link(nxt: str | None, more: bool = True) -> str:
    results = "true" if more else "false"
    return (
        '<https://h/x/>; rel="previous"; results="false"; cursor="0:0:1", '
        f'<https://h/x/>; rel="next"; results="{results}"; cursor="{nxt or ""}"'
    )


class Pages:
    """A well-behaved stream: page ``i`` holds ``counts[i]`` consecutive integers."""

    def __init__(self, counts: list[int]) -> None:
        self.counts = counts
        self.offsets = [sum(counts[:i]) for i in range(len(counts))]
        self.requests: list[str | None] = []

    @property
    def items(self) -> list[int]:
        return list(range(sum(self.counts)))

    def serve(self, cursor: str | None) -> tuple[list[int], str]:
        self.requests.append(cursor)
        index = 0 if cursor is None else int(cursor[1:])
        start = self.offsets[index]
        more = index + 1 < len(self.counts)
        return list(range(start, start + self.counts[index])), link(f"c{index + 1}", more)


def walk_all(walk: CursorWalk, serve: Callable[[str | None], tuple[list[int], str]]) -> list[int]:
    out: list[int] = []
    while not walk.finished:
        assert walk.pages < 10_000, "unbounded walk"
        items, header = serve(walk.cursor)
        step = walk.on_page(len(items), header)
        out.extend(items[step.start : step.stop])
    return out


def test_a_walk_follows_next_until_results_false() -> None:
    source = Pages([3, 0, 2, 1])
    walk = CursorWalk(page_size=3)
    assert walk_all(walk, source.serve) == [0, 1, 2, 3, 4, 5]
    assert source.requests == [None, "c1", "c2", "c3"]
    assert walk.position == Position(None, 0, done=True)


def test_limit_trims_and_the_position_is_inside_the_page() -> None:
    walk = CursorWalk(limit=4, page_size=3)
    assert walk_all(walk, Pages([3, 3, 3]).serve) == [0, 1, 2, 3]
    assert walk.position == Position("c1", 1)
    rest = CursorWalk(walk.position, page_size=3)
    assert walk_all(rest, Pages([3, 3, 3]).serve) == [4, 5, 6, 7, 8]


def test_a_done_position_sends_nothing() -> None:
    source = Pages([2, 2])
    walk = CursorWalk(Position(None, 0, done=True))
    assert walk.finished
    assert walk_all(walk, source.serve) == []
    assert source.requests == []
    with pytest.raises(RuntimeError, match="finished"):
        walk.on_page(1, None)


def test_results_true_with_an_empty_cursor_is_an_error_not_the_end() -> None:
    walk = CursorWalk(stream="GET /things/")
    with pytest.raises(PaginationError, match=r"GET /things/.*results=\"true\".*no cursor"):
        walk.on_page(2, link(None, more=True))
    with pytest.raises(PaginationError, match="no cursor"):
        CursorWalk().on_page(2, '<https://h/x/>; rel="next"; results="true"')


def test_results_false_with_an_empty_cursor_is_the_end() -> None:
    walk = CursorWalk()
    step = walk.on_page(2, link(None, more=False))
    assert (step.more, walk.finished, walk.position.done) == (False, True, True)


@pytest.mark.parametrize("header", [None, "", "  "], ids=["no-link", "empty", "blank"])
def test_a_page_without_links_after_one_that_promised_more_is_an_error(
    header: str | None,
) -> None:
    """A proxy's empty ``200`` in the middle of a stream is not its end: the walk stops with
    an error naming the cursor, positioned to request that page again (an export that took
    it for the end reported itself complete with half the data)."""
    walk = CursorWalk(page_size=2, stream="GET /things/")
    assert walk.on_page(2, link("c1")).more
    with pytest.raises(PaginationError, match=r"GET /things/.*'c1'.*no Link") as caught:
        walk.on_page(0, header)
    assert caught.value.position == Position("c1")
    assert walk.finished and not walk.position.done
    # A walk resumed from a saved cursor stands after a page that promised more too.
    resumed = CursorWalk(Position("c7", 1), page_size=2)
    with pytest.raises(PaginationError, match="'c7'") as caught:
        resumed.on_page(2, header)
    assert caught.value.position == Position("c7", 1)


def test_a_first_page_without_links_is_the_whole_stream() -> None:
    """An endpoint that answers in one response (no ``Link`` at all) ends after it."""
    for size in (None, 100):
        walk = CursorWalk(page_size=size)
        step = walk.on_page(3, None)
        assert (step.more, step.paginated, walk.finished) == (False, False, True)
        assert walk.position == Position(None, done=True)


def test_empty_pages_under_fresh_cursors_end_in_an_error_naming_stream_and_position() -> None:
    walk = CursorWalk(max_stale_pages=5, stream="GET /endless/")
    for n in range(4):
        walk.on_page(0, link(f"fresh{n}"))
    with pytest.raises(PaginationError, match=r"GET /endless/.*5 pages in a row") as caught:
        walk.on_page(0, link("fresh4"))
    assert caught.value.stream == "GET /endless/"
    assert caught.value.position == Position("fresh4")
    assert walk.pages == 5
    assert walk.finished, "an error ends the walk"


def test_a_page_with_something_new_resets_the_count() -> None:
    walk = CursorWalk(max_stale_pages=3)
    for n in range(30):
        walk.on_page(0 if n % 3 else 1, link(f"c{n}"), fingerprint=n)
    assert not walk.finished


def test_repeated_bodies_under_fresh_cursors_are_stale() -> None:
    walk = CursorWalk(max_stale_pages=3, stream="S")
    walk.on_page(2, link("a"), fingerprint=7)
    walk.on_page(2, link("b"), fingerprint=7)
    walk.on_page(2, link("c"), fingerprint=7)
    with pytest.raises(PaginationError, match="nothing new"):
        walk.on_page(2, link("d"), fingerprint=7)


def test_pages_whose_ids_were_all_seen_are_stale() -> None:
    walk = CursorWalk(max_stale_pages=2)
    walk.on_page(3, link("a"), fresh=3)
    walk.on_page(3, link("b"), fresh=0)
    with pytest.raises(PaginationError, match="nothing new"):
        walk.on_page(3, link("c"), fresh=0)


def test_a_cycle_longer_than_any_window_is_caught() -> None:
    """Every requested cursor is remembered, not only the last thousand."""
    walk = CursorWalk()
    cycle = 3000

    def follow() -> None:
        for n in range(2 * cycle):
            walk.on_page(1, link(f"c{(n + 1) % cycle}"), fingerprint=n)

    with pytest.raises(PaginationError, match="cycle"):
        follow()
    assert walk.pages == cycle + 1  # the first page, c1 … c2999, c0; then c1 again


def test_the_same_cursor_back_is_looping() -> None:
    walk = CursorWalk(Position("x"))
    with pytest.raises(PaginationError, match="looping"):
        walk.on_page(1, link("x"))


def test_a_page_far_larger_than_asked_for_is_refused() -> None:
    walk = CursorWalk(page_size=100, stream="GET /projects/")
    walk.on_page(200, link("a"))  # a little over is tolerated
    with pytest.raises(OversizedPage, match=r"GET /projects/.*5000000 items.*page_size=100") as e:
        walk.on_page(5_000_000, link("b"))
    assert (e.value.page_size, e.value.count, e.value.position) == (100, 5_000_000, Position("a"))
    assert isinstance(e.value, PaginationError)
    unpaged = CursorWalk(page_size=None)
    unpaged.on_page(5_000_000, None)
    assert unpaged.position.done


def test_body_fingerprints_tell_pages_apart_cheaply() -> None:
    items = [msgspec.json.encode([{"id": str(n), "title": "x" * 300}] * 100) for n in range(3)]
    assert body_fingerprint(items[0]) == body_fingerprint(bytes(items[0]))
    assert len({body_fingerprint(body) for body in items}) == 3
    assert body_fingerprint(b"[1]") != body_fingerprint(b"[2]")


def test_malformed_link_names_the_stream() -> None:
    with pytest.raises(PaginationError, match="GET /x/: malformed Link header"):
        CursorWalk(stream="GET /x/").on_page(1, "<unterminated")


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="limit"):
        CursorWalk(limit=-1)
    with pytest.raises(ValueError, match="max_pages"):
        CursorWalk(max_pages=0)
    with pytest.raises(ValueError, match="max_stale_pages"):
        CursorWalk(max_stale_pages=0)


# Positions persist.


def test_position_round_trips_through_dicts_and_msgspec() -> None:
    for position in (Position(None), Position("0:100:0", 42), Position(None, 0, done=True)):
        assert Position.from_dict(position.to_dict()) == position
        assert msgspec.json.decode(msgspec.json.encode(position), type=Position) == position
    assert Position.from_dict({"cursor": "c"}) == Position("c", 0, False)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"skip": 1}, "needs a 'cursor'"),
        ({"cursor": 5}, "cursor must be a string"),
        ({"cursor": "c", "skip": -1}, "skip must be a non-negative"),
        ({"cursor": "c", "skip": True}, "skip must be a non-negative"),
        ({"cursor": "c", "done": "yes"}, "done must be a boolean"),
        ({"cursor": "c", "sikp": 1}, "unknown keys"),
        (["c", 0], "must be an object"),
    ],
)
def test_a_bad_saved_position_is_a_value_error_naming_the_field(
    data: object, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        Position.from_dict(data)  # type: ignore[arg-type]


# Properties.

_counts = st.lists(st.integers(min_value=0, max_value=5), min_size=1, max_size=12)


@MODERATE
@given(
    counts=_counts,
    limit=st.none() | st.integers(min_value=0, max_value=40),
    max_pages=st.none() | st.integers(min_value=1, max_value=12),
)
def test_a_capped_walk_then_its_resumption_hand_out_every_item_once(
    counts: list[int], limit: int | None, max_pages: int | None
) -> None:
    first = CursorWalk(limit=limit, max_pages=max_pages, page_size=5)
    head = walk_all(first, Pages(counts).serve)
    everything = Pages(counts).items
    assert head == everything[: len(head)]
    if limit is not None:
        assert len(head) <= limit
    source = Pages(counts)
    tail = walk_all(CursorWalk(first.position, page_size=5), source.serve)
    assert head + tail == everything
    if first.position.done:
        assert source.requests == [], "a finished stream is not started again"


@MODERATE
@given(counts=_counts, stop_at=st.integers(min_value=0, max_value=60))
def test_stopping_after_any_item_resumes_at_the_next(counts: list[int], stop_at: int) -> None:
    """A consumer that breaks after ``stop_at`` items resumes at exactly the next one."""
    walk = CursorWalk(page_size=5)
    source = Pages(counts)
    taken: list[int] = []
    position = walk.position
    while not walk.finished and len(taken) < stop_at:
        items, header = source.serve(walk.cursor)
        step: Step = walk.on_page(len(items), header)
        for n, item in enumerate(items[step.start : step.stop], start=1):
            taken.append(item)
            position = step.position(n)
            if len(taken) == stop_at:
                break
        else:
            position = walk.position
    tail = walk_all(CursorWalk(position, page_size=5), Pages(counts).serve)
    assert taken + tail == source.items


_answers = st.tuples(
    st.integers(min_value=0, max_value=4),  # items on the page
    st.sampled_from(["fresh", "fresh", "fresh", "back", "same", "empty", "end", "bad"]),
    st.integers(min_value=0, max_value=3),  # which of four bodies
)


@MODERATE
@given(data=st.data(), max_stale=st.integers(min_value=1, max_value=6))
def test_any_server_is_followed_without_repeats_and_stale_runs_are_bounded(
    data: st.DataObject, max_stale: int
) -> None:
    """Whatever a server answers, no cursor is requested twice, no more than ``max_stale``
    pages in a row bring nothing new, and a server with a few distinct bodies ends soon."""
    walk = CursorWalk(max_stale_pages=max_stale, page_size=4)
    requested: list[str | None] = []
    bodies: set[int] = set()
    streak = 0
    issued = 0
    try:
        while not walk.finished:
            # Four bodies: at most four pages reset the stale count.
            assert walk.pages <= 5 * (max_stale + 1), "the walk outlived the bound"
            requested.append(walk.cursor)
            count, kind, fingerprint = data.draw(_answers)
            if kind == "fresh":
                issued += 1
                header = link(f"n{issued}")
            elif kind == "back":
                header = link(data.draw(st.sampled_from([c for c in requested if c] or ["z"])))
            elif kind == "same":
                header = link(walk.cursor or "first")
            elif kind == "empty":
                header = link(None, more=True)
            elif kind == "end":
                header = link("last", more=False)
            else:
                header = "<broken"
            new = count > 0 and fingerprint not in bodies
            if count:
                bodies.add(fingerprint)
            streak = 0 if new else streak + 1
            walk.on_page(count, header, fingerprint=fingerprint)
            assert streak < max_stale or walk.finished
    except PaginationError:
        pass
    named = [c for c in requested if c is not None]
    assert len(named) == len(set(named)), "a cursor was requested twice"


def test_a_link_without_next_after_a_promise_is_an_error_not_the_end() -> None:
    """A page requested with a cursor whose only ``Link`` is a proxy's (``rel=preload``) did
    not say the stream is over: ending there would record a truncated stream as complete."""
    walk = CursorWalk(Position("c1"), stream="rules")
    with pytest.raises(PaginationError) as e:
        walk.on_page(3, "</static/app.css>; rel=preload; as=style")
    assert e.value.position == Position("c1")
    single = CursorWalk()
    step = single.on_page(3, "</static/app.css>; rel=preload; as=style")
    assert not step.more and not step.paginated and single.position.done


def discover_pages(count: int, rows: int = 10) -> list[bytes]:
    """Distinct Discover pages as Sentry sends them for a flood of one long error message:
    every row has its own event id, yet all pages have the same length, and the bytes at
    the start (row 1's message), the middle (a message) and the end (``meta``) agree."""
    meta = msgspec.json.encode({"fields": {f"field{n}": "string" for n in range(40)}})
    pages = []
    for page in range(count):
        data = [
            {"message": "m" * 1000, "id": f"{page * rows + n:032x}", "project.name": "web"}
            for n in range(rows)
        ]
        pages.append(b'{"data":' + msgspec.json.encode(data) + b',"meta":' + meta + b"}")
    return pages


def test_distinct_pages_that_share_their_sampled_bytes_are_not_repeats() -> None:
    from sentry_async.sansio import BodyFingerprints

    bodies = discover_pages(60)
    assert len(set(bodies)) == 60 and len({body_fingerprint(body) for body in bodies}) == 1
    fingerprints = BodyFingerprints()
    walk = CursorWalk(page_size=10, stream="discover")
    for n, body in enumerate(bodies):
        walk.on_page(10, link(f"c{n + 1}", n + 1 < len(bodies)), fingerprint=fingerprints(body))
    assert walk.position.done and walk.pages == 60


def test_a_body_sent_again_is_still_stale() -> None:
    """Hashed whole from its first repeat on, a page served again and again still ends the
    stream, one page later than by its sample alone (a small page is exact at once)."""
    from sentry_async.sansio import BodyFingerprints

    fingerprints = BodyFingerprints()
    walk = CursorWalk(page_size=10, max_stale_pages=3)
    first, other = discover_pages(2)

    def again() -> int:
        return fingerprints(bytes(bytearray(first)))  # a fresh object, as every response is

    walk.on_page(10, link("c1"), fingerprint=fingerprints(first))
    walk.on_page(10, link("c2"), fingerprint=fingerprints(other))
    for n in range(3, 6):
        walk.on_page(10, link(f"c{n}"), fingerprint=again())
    with pytest.raises(PaginationError, match="3 pages in a row brought nothing new"):
        walk.on_page(10, link("c6"), fingerprint=again())
    small = CursorWalk(page_size=10, max_stale_pages=2)
    small.on_page(1, link("c1"), fingerprint=fingerprints(b'[{"id":1}]'))
    small.on_page(1, link("c2"), fingerprint=fingerprints(b'[{"id":1}]'))
    with pytest.raises(PaginationError, match="2 pages in a row brought nothing new"):
        small.on_page(1, link("c3"), fingerprint=fingerprints(b'[{"id":1}]'))


def test_body_fingerprints_remember_a_bounded_number_of_samples(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from sentry_async._protocol import cursors

    monkeypatch.setattr(cursors, "_MAX_SAMPLES", 2)
    fingerprints = cursors.BodyFingerprints()
    seen = [fingerprints(b"[%d]" % n + b" " * 2000) for n in range(5)]
    assert len(set(seen)) == 5 and len(fingerprints._samples) <= 2



@pytest.mark.parametrize("skip", [7, 10, 15, 25])
def test_a_skip_beyond_a_full_page_goes_on_into_the_next(skip: int) -> None:
    """A caller's ``skip`` counts items from the cursor on, across whole pages too."""
    source = Pages([7, 7, 7, 3])
    walk = CursorWalk(Position(None, skip), page_size=7)
    assert walk_all(walk, source.serve) == source.items[skip:]


def test_a_skip_beyond_a_short_page_ends_there() -> None:
    """A saved position whose page has since shrunk skips nothing of the next page."""
    walk = CursorWalk(Position(None, 5), page_size=7)
    assert walk_all(walk, Pages([3, 7]).serve) == list(range(3, 10))


def test_a_whole_skipped_page_leaves_the_rest_of_the_skip_in_the_position() -> None:
    walk = CursorWalk(Position(None, 10), page_size=7, max_pages=1)
    assert walk_all(walk, Pages([7, 7]).serve) == []
    assert walk.position == Position("c1", 3)
