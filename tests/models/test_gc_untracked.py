"""Decoded models are invisible to the garbage collector.

Every response model is a ``gc=False`` Struct: a page of 100 issues or a 1 MB event is a
tree of thousands of objects, and while such pages wait (a paginator's current page, a
fan-out's buffer) every collection would otherwise walk each of them, for nothing: JSON
cannot express a reference cycle. Only the lists and dicts inside stay tracked.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from typing import Any

import msgspec
import pytest
from model_helpers import decode, decode_obj, event
from test_payload_files import MODEL_OF

from sentry_async.api import _support
from sentry_async.models import DiscoverResponse, Issue, Model, SnakeModel
from sentry_async.models.entries import EntryHead


def _structs(value: Any) -> Iterator[msgspec.Struct]:
    """Every Struct in a decoded tree."""
    if isinstance(value, msgspec.Struct):
        yield value
        for name in value.__struct_fields__:
            yield from _structs(getattr(value, name))
    elif isinstance(value, list | tuple):
        for each in value:
            yield from _structs(each)
    elif isinstance(value, dict):
        for each in value.values():
            yield from _structs(each)


@pytest.mark.parametrize("name", sorted(MODEL_OF))
def test_no_decoded_struct_is_tracked(name: str) -> None:
    structs = list(_structs(decode(name, MODEL_OF[name])))
    assert structs or name == "discover-events-empty.json"
    assert [type(s).__name__ for s in structs if gc.is_tracked(s)] == []


def test_an_issue_holding_lists_and_dicts_is_untracked_and_its_lists_are_not() -> None:
    # Before the change msgspec tracked an Issue as soon as a field held a container.
    issue = decode_obj(
        {"id": "1", "stats": {"24h": [[1, 2]]}, "tags": [{"key": "a"}], "project": {}}, Issue
    )
    assert not gc.is_tracked(issue)
    assert gc.is_tracked(issue.stats["24h"])


def test_every_entry_of_an_event_is_untracked() -> None:
    decoded = event("event-python-frame-vars.json")
    entries = decoded.get_entries()
    assert entries
    assert [type(e).__name__ for e in entries if gc.is_tracked(e)] == []


@pytest.mark.parametrize(
    "base", [Model, SnakeModel, _support.APIModel, _support.DataPage, DiscoverResponse, EntryHead]
)
def test_every_model_base_and_its_subclasses_are_untracked(base: type[msgspec.Struct]) -> None:
    class Mine(base):  # type: ignore[valid-type,misc]
        things: list[int] = []

    assert Mine.__struct_config__.gc is False
    assert not gc.is_tracked(msgspec.json.decode(b'{"things": [1]}', type=Mine))
