"""The event lists' repeat detection in raw mode reads an item's id only where a repeat
can be: a page's first id is looked for in the bytes of the page before, and only when
they hold it are that page's ids read. A raw page of summaries thus costs one id read, not
one per item, while repeats are still dropped exactly as before."""

from __future__ import annotations

from collections.abc import Hashable
from typing import Any

import msgspec
import pytest
from test_event_lists9 import ORIGINAL, WALKED, raw_walk

from sentry_async._protocol.cursors import PageKeys, leading_repeats
from sentry_async.resources import events as events_module


def _counting(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    calls: list[Any] = []
    real = events_module.event_key

    def counted(item: Any) -> Hashable | None:
        calls.append(item)
        return real(item)

    monkeypatch.setattr(events_module, "event_key", counted)
    return calls


async def test_a_raw_walk_without_repeats_reads_one_id_a_page(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls = _counting(monkeypatch)
    assert await raw_walk(late=False) == ORIGINAL
    assert len(calls) == 3, f"{len(calls)} ids read for 3 pages"


async def test_a_raw_walk_with_repeats_drops_them_as_before(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls = _counting(monkeypatch)
    assert await raw_walk(late=True) == WALKED
    # Page 1's ids are read once page 2's first id is found in its bytes; page 2's lead
    # (one repeat, then a new id) and page 3's first id are read as the walk goes.
    assert len(calls) < 2 * 10 + 5


def _raw(items: list[Any]) -> tuple[list[msgspec.Raw], bytes]:
    body = msgspec.json.encode(items)
    return msgspec.json.decode(body, type=list[msgspec.Raw]), body


def _key(item: msgspec.Raw) -> Hashable | None:
    value = msgspec.json.decode(item)["id"]
    return value if isinstance(value, (str, int)) else None


@pytest.mark.parametrize(
    ("before", "after", "repeated"),
    [
        (["a", "b", "c"], ["b", "c", "d"], 2),
        (["a", "b", "c"], ["d", "a"], 0),
        (["a", "b", "c"], ["c", "x", "b"], 1),
        ([1, 2, 3], [3, 4], 1),
        (["5f0e-aa", "b"], ["5f0e-aa", "x"], 1),
        (["a/b", "c"], ["a/b", "c", "d"], 2),
        ([-1, 0], [-2, 2**61 - 1], 0),
        # The id's characters only inside another field of the page before: not a repeat.
        ([{"id": "a", "note": "b"}], ["b"], 0),
    ],
)
def test_page_keys_answer_as_the_set_of_ids_does(
    before: list[Any], after: list[Any], repeated: int
) -> None:
    rows = [row if isinstance(row, dict) else {"id": row} for row in before]
    items, body = _raw(rows)
    lazy = PageKeys(items, _key, body)
    new, _ = _raw([{"id": row} for row in after])
    assert leading_repeats(map(_key, new), lazy) == repeated
    assert leading_repeats(map(_key, new), set(map(_key, items))) == repeated


def test_page_keys_read_no_id_for_an_id_its_bytes_lack() -> None:
    read: list[Any] = []

    def key(item: msgspec.Raw) -> Hashable | None:
        read.append(item)
        return _key(item)

    items, body = _raw([{"id": f"e{i:02d}"} for i in range(100)])
    lazy = PageKeys(items, key, body)
    assert "f00" not in lazy
    assert 170 not in lazy
    assert read == []
    assert "e42" in lazy
    assert len(read) == 100
    assert "e43" in lazy and "x" not in lazy
    assert len(read) == 100
