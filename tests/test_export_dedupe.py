"""A page's de-duplication by item id, without files or a server."""

from __future__ import annotations

import msgspec

from sentry_async.export._dedupe import PageItems, dedupe_page

RawList = msgspec.json.Decoder(list[msgspec.Raw])


def _page(*items: bytes) -> list[msgspec.Raw]:
    return RawList.decode(b"[" + b",".join(items) + b"]")


def _lines(kept: PageItems) -> list[bytes]:
    return [bytes(line) for line in kept.lines]


def test_new_items_are_kept_and_remembered_repeats_dropped() -> None:
    seen: set[str | int] = {"old"}
    page = _page(b'{"id":"a","x":1}', b'{"id":"old"}', b'{"id":7}', b'{"x":2,"id":"a"}')
    kept = dedupe_page(page, seen)
    assert _lines(kept) == [b'{"id":"a","x":1}', b'{"id":7}']
    assert (kept.duplicates, kept.unidentified) == (2, 0)
    assert seen == {"old", "a", 7}
    again = dedupe_page(_page(b'{"id":7}', b'{"id":"b"}'), seen)
    assert _lines(again) == [b'{"id":"b"}'] and again.duplicates == 1


def test_items_without_a_usable_id_are_kept_as_sent_and_counted() -> None:
    items = [b'{"id":"1\xff"}', b'"text"', b'{"id":true}', b"{}", b'{"id":null}', b"[1]"]
    seen: set[str | int] = set()
    kept = dedupe_page(_page(*items, *items), seen)
    assert _lines(kept) == items + items, "never de-duplicated: they have no identity"
    assert (kept.duplicates, kept.unidentified) == (0, 12)
    assert seen == set()


def test_text_ids_match_ids_read_back_from_csv() -> None:
    seen: set[str | int] = {"7"}
    kept = dedupe_page(_page(b'{"id":7}', b'{"id":8}'), seen, text_ids=True)
    assert _lines(kept) == [b'{"id":8}'] and seen == {"7", "8"}


def test_ids_of_an_earlier_run_are_skipped_as_strings() -> None:
    seen: set[str | int] = set()
    kept = dedupe_page(_page(b'{"id":5}', b'{"id":"x"}', b'{"id":6}'), seen, skip={"5", "x"})
    assert _lines(kept) == [b'{"id":6}'] and kept.duplicates == 2


def test_rows_without_ids_are_all_kept_when_identity_is_off() -> None:
    seen: set[str | int] = set()
    page = _page(b'{"id":"a"}', b'{"id":"a"}', b'"x"')
    kept = dedupe_page(page, seen, identify=False)
    assert _lines(kept) == [b'{"id":"a"}', b'{"id":"a"}', b'"x"']
    assert (kept.duplicates, kept.unidentified, seen) == (0, 0, set())
