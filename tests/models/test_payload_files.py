"""Every payload file in ``tests/payloads/`` decodes into its model and back."""

from __future__ import annotations

import json
from typing import Any

import msgspec
import pytest
from model_helpers import EVENT_FILES, PAYLOADS, body, decode, event

from sentry_async.models import (
    DiscoverResponse,
    Event,
    EventIdResolution,
    EventSummary,
    Issue,
    Organization,
    Project,
    TagDetail,
    UnknownEntry,
    UsageStats,
)

# --- every fixture decodes into its model -------------------------------------------------


MODEL_OF: dict[str, Any] = {
    **dict.fromkeys(EVENT_FILES, Event),
    "issues-list.json": list[Issue],
    "issues-list-minimal.json": list[Issue],
    "issues-list-selfhosted-2018.json": list[Issue],
    "issue-detail.json": Issue,
    "issue-detail-seer.json": Issue,
    "issue-detail-float-stats.json": Issue,
    "issue-events-list.json": list[EventSummary],
    "project-events-list.json": list[EventSummary],
    "issue-tag-detail.json": TagDetail,
    "eventid-resolve.json": EventIdResolution,
    "organizations-list.json": list[Organization],
    "projects-list.json": list[Project],
    "project-detail.json": Project,
    "discover-events.json": DiscoverResponse[dict[str, Any]],
    "discover-events-empty.json": DiscoverResponse[dict[str, Any]],
    "discover-events-spans.json": DiscoverResponse[dict[str, Any]],
    "discover-events-legacy-meta.json": DiscoverResponse[dict[str, Any]],
    "stats-v2-grouped.json": UsageStats,
    "stats-v2-project.json": UsageStats,
}
NOT_STRUCTS = {
    "events-stats-single.json",
    "events-stats-multi-yaxis.json",
    "events-stats-top-events.json",
    "events-stats-top-multi-yaxis.json",
    "events-stats-edge-cases.json",
    "error-bare-string.json",
    "error-detail-string.json",
    "error-detail-object.json",
    "error-field-errors.json",
}


def test_every_payload_file_has_a_model_and_the_directory_stays_small() -> None:
    files = {p.name for p in PAYLOADS.glob("*.json")}
    assert files == set(MODEL_OF) | NOT_STRUCTS
    assert sum(p.stat().st_size for p in PAYLOADS.iterdir()) < 400_000


@pytest.mark.parametrize("name", sorted(MODEL_OF))
def test_payload_decodes_into_its_model(name: str) -> None:
    result = decode(name, MODEL_OF[name])
    items = result if isinstance(result, list) else [result]
    assert items or name == "discover-events-empty.json"
    original = body(name)
    if isinstance(original, list):
        assert len(items) == len(original)


@pytest.mark.parametrize("name", EVENT_FILES)
def test_every_entry_of_a_real_shape_gets_its_typed_model(name: str) -> None:
    decoded = event(name)
    entries = decoded.get_entries()
    assert [head.type for head in decoded.entries] == [e["type"] for e in body(name)["entries"]]
    unknown = [e.type for e in entries if isinstance(e, UnknownEntry)]
    if name == "event-unknown-entry.json":
        assert unknown == ["gpu_trace", "exception"]
    else:
        assert unknown == [], "a real entry shape fell back to UnknownEntry"


@pytest.mark.parametrize("name", sorted(MODEL_OF))
def test_decode_encode_decode_round_trips(name: str) -> None:
    type_ = MODEL_OF[name]
    first = decode(name, type_)
    again = msgspec.json.decode(msgspec.json.encode(first), type=type_)
    assert again == first


@pytest.mark.parametrize("name", EVENT_FILES)
def test_raw_parts_of_an_event_re_encode_to_the_original_json(name: str) -> None:
    original = body(name)
    decoded = event(name)
    assert msgspec.json.decode(decoded.meta) == original.get("_meta")
    assert msgspec.json.decode(decoded.context) == original.get("context")
    for head, entry in zip(decoded.entries, original["entries"], strict=True):
        assert msgspec.json.decode(head.data) == entry["data"]
    reencoded = json.loads(msgspec.json.encode(decoded))
    omitted_as_default = {"_meta": None, "context": None, "entries": []}
    for key, default in omitted_as_default.items():
        assert reencoded.get(key, default) == original.get(key, default)
