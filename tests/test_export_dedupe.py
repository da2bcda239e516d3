"""A page's de-duplication by item id, without files or a server."""

from __future__ import annotations

from pathlib import Path

import msgspec

from sentry_async.export import Manifest, ManifestFile
from sentry_async.export._dedupe import PageItems, dedupe_page
from sentry_async.export._files import ids_in_file, item_id
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
