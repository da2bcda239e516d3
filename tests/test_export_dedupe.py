"""A page's de-duplication by item id, without files or a server."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import msgspec
import pytest

from sentry_async.export import Manifest, ManifestFile
from sentry_async.export._dedupe import PageItems, dedupe_page, log_dropped
from sentry_async.export._files import id_key, id_text, ids_in_file, item_id, skip_keys, text_key
from sentry_async.export._incremental import stamped_items
from sentry_async.export._writer import JsonlFile

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


def test_the_overlap_skip_is_counted_apart_and_only_real_duplicates_warn(
    caplog: pytest.LogCaptureFixture,
) -> None:
    seen: set[str | int] = set()
    page = _page(b'{"id":5}', b'{"id":6}', b'{"id":6}', b'{"id":"x"}', b'{"id":5}')
    kept = dedupe_page(page, seen, skip={"5", "x"})
    assert _lines(kept) == [b'{"id":6}']
    assert (kept.duplicates, kept.overlap) == (4, 2), "5 and x once each: the overlap"
    with caplog.at_level(logging.INFO, logger="sentry_async.export"):
        log_dropped("stream-a", "c1", kept)
        log_dropped("stream-a", "c2", dedupe_page(_page(b'{"id":"x"}'), set(), skip={"x"}))
    assert [(r.levelname, r.getMessage()) for r in caplog.records] == [
        ("WARNING", "stream-a: dropped 2 duplicate item(s) at 'c1'")
    ]


def test_rows_without_ids_are_all_kept_when_identity_is_off() -> None:
    seen: set[str | int] = set()
    page = _page(b'{"id":"a"}', b'{"id":"a"}', b'"x"')
    kept = dedupe_page(page, seen, identify=False)
    assert _lines(kept) == [b'{"id":"a"}', b'{"id":"a"}', b'"x"']
    assert (kept.duplicates, kept.unidentified, seen) == (0, 0, set())


REPEATED = b'{"id":"first","user":{"id":"nested"},"id":"last"}'
"""JSON leaves a repeated key undefined; Sentry never sends one."""


def test_a_leading_id_is_read_from_the_first_bytes_and_wins_over_a_repeat() -> None:
    assert item_id(REPEATED) == "first"
    assert item_id(_page(REPEATED)[0]) == "first", "a Raw item reads the same, uncopied"
    # Anything else is parsed whole, where a repeated key's last value wins.
    assert item_id(b'{"x":1,"id":"a","id":"b"}') == "b"
    assert item_id(b'{"id": "spaced"}') == "spaced"
    assert item_id(b'{"id":"esc\\u0061ped"}') == "escaped"
    assert item_id(b'{"id":12}') == 12
    assert item_id(b'{"id":"1\xff"}') is None
    # CSV and Parquet rows are decoded whole when written, so their ids are parsed whole.
    assert item_id(REPEATED, leading=False) == "last"
    seen: set[str | int] = set()
    dedupe_page(_page(REPEATED), seen, text_ids=True, leading_ids=False)
    assert seen == {"last"}


def test_every_reader_of_a_json_lines_export_agrees_on_each_items_id(tmp_path: Path) -> None:
    """The writer, a split window's half reading the file back, and an incremental run's
    overlap must agree, or an item is written twice."""
    items = [REPEATED, b'{"x":1,"id":"a","id":"b"}', b'{"id":"c","dateCreated":null}']
    seen: set[str | int] = set()
    kept = dedupe_page(_page(*items), seen)
    path = tmp_path / "p.jsonl"
    path.write_bytes(b"".join(line + b"\n" for line in items))
    assert seen == ids_in_file(path, 0, path.stat().st_size, False) == {"first", "b", "c"}
    manifest = Manifest(
        format="sentry-async-export/1",
        projects=[],
        kind="events",
        org="o",
        spec={},
        fingerprint="f",
        start="2026-05-01T00:00:00Z",
        end="2026-05-02T00:00:00Z",
        created_at="2026-05-02T00:00:00Z",
        finished_at="2026-05-02T00:00:00Z",
        runs=1,
        items=3,
        pages=1,
        bytes=path.stat().st_size,
        duplicates=0,
        files=[ManifestFile(path="p.jsonl", items=3, bytes=path.stat().st_size)],
        streams=[],
    )
    assert {found for found, _ in stamped_items(tmp_path, manifest)} == seen
    again = dedupe_page(_page(*items), seen)
    assert (len(kept.lines), again.lines, again.duplicates) == (3, [], 3)


def test_a_page_is_joined_as_sent_and_items_spread_over_lines_are_put_on_one(
    tmp_path: Path,
) -> None:
    handle = JsonlFile(tmp_path / "p.jsonl", compress=False)
    plain = _page(b'{"id":"a","t":"x\\ny"}', b"[1,\n2]", b'{"id":"b"}')
    assert handle.encode_page(plain[:1] + plain[2:]) == b'{"id":"a","t":"x\\ny"}\n{"id":"b"}\n'
    assert handle.encode_page(plain) == (b'{"id":"a","t":"x\\ny"}\n[1,2]\n{"id":"b"}\n')
    assert handle.encode_page(_page(b'{"id":"c",\r\n"n":1}', b"2")) == b'{"id":"c","n":1}\n2\n'
    assert handle.encode_page([]) == b""


def test_ids_are_read_back_from_a_span_of_pages_plain_or_gzip(tmp_path: Path) -> None:
    """Between two page boundaries only; with gzip, each page is a member of its own."""
    pages = [[b'{"id":"a"}', b'{"id":"b"}'], [b'{"id":"c"}', b"[1]"], [b'{"id":7}']]
    for compress in (False, True):
        handle = JsonlFile(tmp_path / f"p{compress}.jsonl", compress=compress)
        handle.open(0)
        bounds = [0]
        for page in pages:
            handle.append(handle.encode_page(page))
            bounds.append(handle.offset)
        handle.close()
        assert ids_in_file(handle.path, bounds[1], bounds[3], compress) == {"c", 7}
        assert ids_in_file(handle.path, 0, bounds[1], compress) == {"a", "b"}
        assert ids_in_file(handle.path, bounds[2], bounds[2], compress) == set()


LONG = "7" * 100_000
"""Sentry's ids are 32 characters at most; a server may send any length."""


def _kept_sizes(ids: set[Any]) -> list[int]:
    return [len(key) if isinstance(key, (str, bytes)) else 0 for key in ids]


def test_long_ids_are_kept_as_digests_of_fixed_size_and_still_de_duplicated(
    tmp_path: Path,
) -> None:
    items = [b'{"id":"a' + LONG.encode() + b'"}', b'{"id":"b' + LONG.encode() + b'"}']
    items.append(b'{"id":"short"}')
    seen: set[Any] = set()
    kept = dedupe_page(_page(*items), seen)
    assert len(kept.lines) == 3 and max(_kept_sizes(seen)) <= 32 and "short" in seen
    again = dedupe_page(_page(items[1], b'{"id":"c' + LONG.encode() + b'"}'), seen)
    assert (_lines(again), again.duplicates) == ([b'{"id":"c' + LONG.encode() + b'"}'], 1)
    # Read back from a file (a resumed stream, a split window's half): the same keys.
    path = tmp_path / "p.jsonl"
    path.write_bytes(b"".join(line + b"\n" for line in items))
    back = ids_in_file(path, 0, path.stat().st_size, False)
    assert max(_kept_sizes(back)) <= 32
    assert dedupe_page(_page(*items), set(), earlier=back).lines == []
    # An incremental run's overlap: skipped by its ids as the state file holds them.
    skip = {"a" + LONG}
    assert dedupe_page(_page(*items), set(), skip=skip_keys(skip)).duplicates == 1


def test_ids_kept_as_digests_round_trip_through_their_text() -> None:
    for found in ("a" + LONG, "x" * 33, "x" * 32, "12", "#b2:" + "0" * 32):
        assert text_key(id_text(id_key(found))) == id_key(found)
    assert text_key(id_text(id_key(12))) == "12", "integer ids are skipped as text"
    assert len(id_text(id_key("a" + LONG))) <= 40
