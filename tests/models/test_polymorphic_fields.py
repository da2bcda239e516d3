"""Fields Sentry sends in more than one JSON type, and lazily decoded parts."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from typing import Any

import msgspec
import pytest
from model_helpers import UTC, decode_obj, minimal_event

from sentry_async.models import (
    Breadcrumb,
    BreadcrumbsEntry,
    Event,
    EventSummary,
    EventTag,
    ExceptionValue,
    Frame,
    Issue,
    Occurrence,
    Release,
    RequestEntry,
    Span,
    Thread,
)

# --- polymorphic fields -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    [
        "a string",
        "",
        0,
        -12,
        2**53 + 1,
        3.25,
        True,
        None,
        [],
        [1, "two", None, [3.5, {"four": 4}]],
        {},
        {"nested": {"deeper": [{"deepest": None}]}},
    ],
)
def test_frame_vars_values_are_any_json(value: Any) -> None:
    frame = decode_obj({"function": "f", "vars": {"'x'": value, "y": value}}, Frame)
    assert frame.vars == {"'x'": value, "y": value}


def test_frame_vars_and_crumb_data_stay_bytes_until_read() -> None:
    frame = decode_obj({"function": "f", "vars": {"a": [1, {"b": None}]}}, Frame)
    assert json.loads(bytes(frame.raw_vars)) == {"a": [1, {"b": None}]}
    assert frame.vars == {"a": [1, {"b": None}]}
    assert decode_obj({"function": "f"}, Frame).vars is None
    crumb = decode_obj({"message": "m", "data": [1, 2]}, Breadcrumb)
    assert crumb.data is None, "not an object: no dict, but the bytes are kept"
    assert json.loads(bytes(crumb.raw_data)) == [1, 2]
    encoded = json.loads(msgspec.json.encode(crumb))
    assert encoded == {"message": "m", "data": [1, 2]}, "re-encoding gives the wire form back"


@pytest.mark.parametrize(
    ("contexts", "name", "expected"),
    [
        ({"os": {"name": "Linux", "type": "os"}}, "os", {"name": "Linux", "type": "os"}),
        ({"custom": {"no": "type key"}}, "custom", {"no": "type key"}),
        ({"weird": ["a", "list"]}, "weird", None),
        ({"weird": "a string"}, "weird", None),
        ({"weird": None}, "weird", None),
        ({"weird": 42}, "weird", None),
        ({}, "os", None),
    ],
)
def test_contexts_hold_anything_and_context_of_returns_only_objects(
    contexts: dict[str, Any], name: str, expected: Any
) -> None:
    decoded = decode_obj(minimal_event(contexts=contexts), Event)
    assert decoded.contexts == contexts and decoded.context_of(name) == expected


@pytest.mark.parametrize(
    "meta",
    [
        None,
        {},
        {"entries": {"0": {"data": {"values": {"0": {"value": {"": {"len": 130}}}}}}}},
        {
            "user": {
                "ip_address": {"": {"err": [["invalid_data", {"reason": "bad ip"}]], "val": "x"}}
            }
        },
        {"tags": {"0": {"value": {"": {"rem": [["@ip", "s", 0, 4]], "len": 12, "chunks": []}}}}},
    ],
)
def test_meta_in_both_formats_stays_raw_json(meta: Any) -> None:
    payload = minimal_event() if meta is None else minimal_event(_meta=meta)
    decoded = decode_obj(payload, Event)
    assert isinstance(decoded.meta, msgspec.Raw)
    assert msgspec.json.decode(decoded.meta) == meta


@pytest.mark.parametrize(
    "crumb",
    [
        {"timestamp": "2026-01-01T00:00:00.123456Z", "data": {"url": "/x", "status_code": 200}},
        {"timestamp": "2026-01-01T00:00:00Z", "data": None},
        {"timestamp": 1767225600.123, "data": {"nested": {"list": [1, 2]}}},
        {"timestamp": 1767225600, "data": {}},
        {"timestamp": None},
        {},
    ],
)
def test_breadcrumb_timestamps_and_data(crumb: dict[str, Any]) -> None:
    decoded = decode_obj({"values": [crumb]}, BreadcrumbsEntry).values[0]
    assert decoded.timestamp == crumb.get("timestamp") and decoded.data == crumb.get("data")


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ([["a", "1"], ["b", None]], [("a", "1"), ("b", None)]),
        ([], []),
        ("a=1&b=2", "a=1&b=2"),
        ("", ""),
        (None, None),
    ],
)
def test_request_query_is_pairs_or_a_string(query: Any, expected: Any) -> None:
    assert decode_obj({"url": "https://x", "query": query}, RequestEntry).query == expected


@pytest.mark.parametrize("data", [None, {"form": ["a", "b"]}, "raw body", ["json", "array"], 12])
def test_request_data_is_any_json(data: Any) -> None:
    assert decode_obj({"data": data}, RequestEntry).data == data


def test_ids_that_sentry_sends_as_ints_or_strings() -> None:
    assert decode_obj({"id": 7}, Thread).id == 7
    assert decode_obj({"id": "worker-1"}, Thread).id == "worker-1"
    assert decode_obj({"threadId": 140221190}, ExceptionValue).thread_id == 140221190
    assert decode_obj({"threadId": "main"}, ExceptionValue).thread_id == "main"
    assert decode_obj({"id": 991204, "version": "1"}, Release).id == 991204
    assert decode_obj({"projectId": 4508812, "type": 1006}, Occurrence).project_id == 4508812
    assert decode_obj({"id": "9", "count": 12}, Issue).count_int == 12
    assert decode_obj({"id": "9", "count": "12"}, Issue).count_int == 12


def test_ids_sentry_sends_as_strings_refuse_ints_and_name_the_field() -> None:
    with pytest.raises(msgspec.ValidationError, match=r"Expected `str`, got `int` - at `\$\.id`"):
        decode_obj({"id": 5}, Issue)
    with pytest.raises(msgspec.ValidationError, match=r"at `\$\.groupID`"):
        decode_obj(minimal_event(groupID=12), Event)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-01-01T23:41:07Z", datetime(2026, 1, 1, 23, 41, 7, tzinfo=UTC)),
        ("2026-01-01T23:41:07.5Z", datetime(2026, 1, 1, 23, 41, 7, 500000, tzinfo=UTC)),
        ("2026-01-01T23:41:07.118Z", datetime(2026, 1, 1, 23, 41, 7, 118000, tzinfo=UTC)),
        ("2026-01-01T23:41:07.118204Z", datetime(2026, 1, 1, 23, 41, 7, 118204, tzinfo=UTC)),
        ("2026-01-01T23:41:07.118204999Z", datetime(2026, 1, 1, 23, 41, 7, 118205, tzinfo=UTC)),
        ("2026-01-01T23:41:07+00:00", datetime(2026, 1, 1, 23, 41, 7, tzinfo=UTC)),
        ("2026-01-01T23:41:07.25+00:00", datetime(2026, 1, 1, 23, 41, 7, 250000, tzinfo=UTC)),
        (
            "2026-01-02T01:11:07+01:30",
            datetime(2026, 1, 2, 1, 11, 7, tzinfo=timezone(timedelta(hours=1, minutes=30))),
        ),
        ("2026-01-01T23:41:07", datetime(2026, 1, 1, 23, 41, 7)),
    ],
)
def test_rfc3339_timestamps_with_and_without_offset_and_fraction(
    text: str, expected: datetime
) -> None:
    for type_, key in ((Event, "dateCreated"), (Issue, "lastSeen"), (EventSummary, "dateCreated")):
        decoded = decode_obj({"id": "1", key: text}, type_)
        value = decoded.date_created if key == "dateCreated" else decoded.last_seen
        assert value == expected and value.utcoffset() == expected.utcoffset()


@pytest.mark.parametrize("stamp", [1767225600, 1767225600.0961, 1.5])
def test_epoch_seconds_as_int_or_float(stamp: float) -> None:
    decoded = decode_obj(minimal_event(startTimestamp=stamp, endTimestamp=stamp), Event)
    assert decoded.start_timestamp == stamp and isinstance(decoded.start_timestamp, float)
    span = decode_obj({"start_timestamp": stamp, "timestamp": stamp}, Span)
    assert span.start_timestamp == span.timestamp == stamp
    assert decode_obj({"detectionTime": stamp}, Occurrence).detection_time == stamp


def test_an_epoch_number_where_sentry_sends_a_date_string_names_the_field() -> None:
    with pytest.raises(msgspec.ValidationError, match=r"at `\$\.dateCreated`"):
        decode_obj(minimal_event(dateCreated=1767225600), Event)


def test_event_type_is_an_open_string_and_defaults_when_absent() -> None:
    assert decode_obj(minimal_event(type="something_new"), Event).type == "something_new"
    assert decode_obj({"id": "1"}, Event).type == "default"


def test_tags_with_extra_keys_and_null_values() -> None:
    decoded = decode_obj(
        minimal_event(
            tags=[
                {"key": "user", "value": "id:1", "query": 'user.id:"1"', "_meta": None},
                {"key": "empty", "value": None},
                {"key": "bare"},
            ]
        ),
        Event,
    )
    assert decoded.tags == [
        EventTag(key="user", value="id:1", query='user.id:"1"'),
        EventTag(key="empty"),
        EventTag(key="bare"),
    ]
    assert decoded.tag("user") == "id:1" and decoded.tag("empty") is None
