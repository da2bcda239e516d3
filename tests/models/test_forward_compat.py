"""Unknown keys, entries and event types anywhere never break decoding."""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator
from typing import Any

import msgspec
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from model_helpers import body

from sentry_async.models import (
    Assignee,
    Breadcrumb,
    BreadcrumbsEntry,
    EntryHead,
    Event,
    EventError,
    EventTag,
    EventUser,
    ExceptionEntry,
    ExceptionValue,
    Frame,
    Issue,
    IssueProject,
    IssueTagSummary,
    Mechanism,
    MessageEntry,
    Occurrence,
    Release,
    RequestEntry,
    Sdk,
    Span,
    Stacktrace,
    StacktraceEntry,
    TemplateEntry,
    UnknownEntry,
)

# --- forward compatibility: arbitrary unknown keys anywhere never break decoding ------------------

JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=16),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=8,
)

EXTRA_KEYS = st.dictionaries(st.text(max_size=12), JSON_VALUES, min_size=1, max_size=3)
Position = tuple[dict[str, Any], type]


def issue_positions(issue: dict[str, Any]) -> Iterator[Position]:
    yield issue, Issue
    if isinstance(issue.get("project"), dict):
        yield issue["project"], IssueProject
    if isinstance(issue.get("assignedTo"), dict):
        yield issue["assignedTo"], Assignee
    for tag in issue.get("tags", []):
        yield tag, IssueTagSummary


_ENTRY_DATA = {
    "exception": ExceptionEntry,
    "breadcrumbs": BreadcrumbsEntry,
    "request": RequestEntry,
    "message": MessageEntry,
    "stacktrace": StacktraceEntry,
    "template": TemplateEntry,
}


def event_positions(payload: dict[str, Any]) -> Iterator[Position]:
    yield payload, Event
    for key, cls in (
        ("user", EventUser),
        ("sdk", Sdk),
        ("release", Release),
        ("occurrence", Occurrence),
    ):
        if isinstance(payload.get(key), dict):
            yield payload[key], cls
    for tag in payload.get("tags", []):
        yield tag, EventTag
    for error in payload.get("errors", []):
        yield error, EventError
    for entry in payload.get("entries", []):
        yield entry, EntryHead
        data = entry["data"]
        if entry["type"] == "spans":
            for span in data:
                yield span, Span
            continue
        if entry["type"] not in _ENTRY_DATA:
            continue
        yield data, _ENTRY_DATA[entry["type"]]
        for item in data.get("values", []):
            if entry["type"] == "breadcrumbs":
                yield item, Breadcrumb
                continue
            yield item, ExceptionValue
            if item.get("mechanism"):
                yield item["mechanism"], Mechanism
            for key in ("stacktrace", "rawStacktrace"):
                if item.get(key):
                    yield item[key], Stacktrace
                    for frame in item[key]["frames"]:
                        yield frame, Frame
        for frame in data.get("frames", []) if entry["type"] == "stacktrace" else []:
            yield frame, Frame


FUZZED: dict[str, tuple[Any, Callable[[Any], Iterator[Position]]]] = {
    "issues-list.json": (list[Issue], lambda items: (p for i in items for p in issue_positions(i))),
    "issue-detail.json": (Issue, issue_positions),
    "event-python-keyerror-breadcrumbs.json": (Event, event_positions),
    "event-javascript-breadcrumbs.json": (Event, event_positions),
    "event-template-2018.json": (Event, event_positions),
    "event-transaction-n-plus-one.json": (Event, event_positions),
}


def comparable(decoded: Any) -> Any:
    """Events compare with their entries decoded: unknown keys inside entry data stay in the bytes."""
    if isinstance(decoded, Event):
        return msgspec.structs.replace(decoded, entries=[]), decoded.get_entries()
    return decoded


def known_wire_names(cls: type) -> set[str]:
    return {f.encode_name for f in msgspec.structs.fields(cls)}


def test_fuzzed_payloads_have_struct_positions_of_every_kind() -> None:
    kinds = {cls for name, (_, positions) in FUZZED.items() for _, cls in positions(body(name))}
    assert kinds >= {Issue, IssueProject, Assignee, IssueTagSummary, Event, EventUser, Sdk, Release}
    assert kinds >= {Occurrence, EventTag, EventError, EntryHead, Span, ExceptionEntry, Frame}
    assert kinds >= {
        BreadcrumbsEntry,
        Breadcrumb,
        RequestEntry,
        MessageEntry,
        Mechanism,
        Stacktrace,
    }
    assert kinds >= {StacktraceEntry, TemplateEntry, ExceptionValue}


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_unknown_keys_anywhere_never_change_what_decodes(data: st.DataObject) -> None:
    name = data.draw(st.sampled_from(sorted(FUZZED)), label="payload")
    type_, positions = FUZZED[name]
    original = body(name)
    mutated = copy.deepcopy(original)
    targets = list(positions(mutated))
    chosen = data.draw(st.lists(st.sampled_from(range(len(targets))), min_size=1, max_size=4))
    for index in chosen:
        target, cls = targets[index]
        known = known_wire_names(cls) | set(target)
        extras = data.draw(EXTRA_KEYS, label=cls.__name__)
        target.update({key: value for key, value in extras.items() if key not in known})
    expected = msgspec.json.decode(msgspec.json.encode(original), type=type_)
    actual = msgspec.json.decode(msgspec.json.encode(mutated), type=type_)
    assert comparable(actual) == comparable(expected)


@settings(max_examples=40, deadline=None)
@given(
    entry_type=st.text(min_size=1, max_size=20).filter(lambda t: t not in _KNOWN_ENTRY_TYPES),
    entry_data=JSON_VALUES,
    event_type=st.text(max_size=20),
)
def test_unknown_entry_and_event_types_never_break_an_event(
    entry_type: str, entry_data: Any, event_type: str
) -> None:
    payload = body("event-python-keyerror-breadcrumbs.json")
    payload["type"] = event_type
    payload["entries"].insert(1, {"type": entry_type, "data": entry_data})
    decoded = msgspec.json.decode(msgspec.json.encode(payload), type=Event)
    entries = decoded.get_entries()
    assert decoded.type == event_type
    assert isinstance(entries[1], UnknownEntry) and entries[1].type == entry_type
    assert msgspec.json.decode(entries[1].data) == entry_data
    assert [type(e) for e in entries] == [
        MessageEntry,
        UnknownEntry,
        ExceptionEntry,
        BreadcrumbsEntry,
    ]


_KNOWN_ENTRY_TYPES = frozenset(
    {
        "exception",
        "stacktrace",
        "message",
        "breadcrumbs",
        "request",
        "template",
        "threads",
        "debugmeta",
        "spans",
        "csp",
        "nel",
        "hpkp",
        "expectct",
        "expectstaple",
    }
)
