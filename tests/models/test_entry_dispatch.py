"""Entry helpers and dispatch, wrong types and wire names, encoding."""

from __future__ import annotations

import json
from typing import Any

import anyio
import msgspec
import pytest
from model_helpers import EVENT_FILES, decode_obj, event, minimal_event

from sentry_async import DecodeError, SentryClient
from sentry_async.models import (
    Breadcrumb,
    BreadcrumbsEntry,
    CspEntry,
    DebugMetaEntry,
    EntryHead,
    Event,
    EventIdResolution,
    EventSummary,
    EventUser,
    ExceptionEntry,
    ExceptionValue,
    Frame,
    Issue,
    Mechanism,
    MessageEntry,
    Occurrence,
    Organization,
    Project,
    Release,
    RequestEntry,
    Span,
    SpansEntry,
    StacktraceEntry,
    TagDetail,
    TemplateEntry,
    UnknownEntry,
    decode_entry,
)
from sentry_async.testing import Fault

# --- helpers and entry dispatch ---------------------------------------------------------------


def test_entry_helpers_return_the_first_entry_of_their_kind() -> None:
    payload = minimal_event(
        entries=[
            {"type": "message", "data": {"formatted": "first"}},
            {"type": "message", "data": {"formatted": "second"}},
            {"type": "stacktrace", "data": {"frames": [{"function": "f", "lineNo": 3}]}},
            {"type": "hpkp", "data": {"hostname": "x.example", "port": 443}},
            {"type": "spans", "data": [{"span_id": "1", "op": "db"}]},
        ]
    )
    decoded = decode_obj(payload, Event)
    assert decoded.message_entry == MessageEntry(formatted="first")
    assert decoded.stacktrace == StacktraceEntry(frames=[Frame(function="f", lineno=3)])
    csp_like = decoded.entry(CspEntry)
    assert csp_like is not None and csp_like.get("port") == 443
    assert decoded.spans == SpansEntry(spans=[Span(span_id="1", op="db")])
    assert decoded.exception is None and decoded.threads is None
    kinds = [type(e) for e in decoded.get_entries()]
    assert kinds == [MessageEntry, MessageEntry, StacktraceEntry, CspEntry, SpansEntry]


@pytest.mark.parametrize(
    ("head", "expected"),
    [
        (EntryHead(type="exception", data=msgspec.Raw(b'{"values": []}')), ExceptionEntry()),
        (EntryHead(type="spans", data=msgspec.Raw(b"[]")), SpansEntry()),
        (
            EntryHead(type="csp", data=msgspec.Raw(b'{"blocked_uri": "x"}')),
            CspEntry(report={"blocked_uri": "x"}),
        ),
        (
            EntryHead(type="breadcrumbs", data=msgspec.Raw(b'{"values": [{}]}')),
            BreadcrumbsEntry(values=[Breadcrumb()]),
        ),
    ],
)
def test_decode_entry_by_type(head: EntryHead, expected: Any) -> None:
    assert decode_entry(head) == expected


@pytest.mark.parametrize(
    ("type_", "data"),
    [
        ("exception", b'{"values": "not a list"}'),
        ("spans", b'{"not": "a list"}'),
        ("csp", b"[1, 2]"),
        ("request", b'{"query": 12}'),
        ("breadcrumbs", b'{"values": [{"level": 5}]}'),
        ("message", b"null"),
        ("threads", b'{"values": [{"id": true}]}'),
        ("brand_new", b'{"anything": [1, {"goes": null}]}'),
        ("", b"null"),
    ],
)
def test_entries_that_do_not_fit_keep_their_raw_data(type_: str, data: bytes) -> None:
    decoded = decode_entry(EntryHead(type=type_, data=msgspec.Raw(data)))
    assert isinstance(decoded, UnknownEntry) and decoded.type == type_
    assert bytes(decoded.data) == data
    assert json.loads(msgspec.json.encode(decoded)) == {"type": type_, "data": json.loads(data)}


def test_entry_head_defaults_when_type_or_data_is_missing() -> None:
    decoded = decode_obj(minimal_event(entries=[{}, {"type": "message"}]), Event)
    assert decoded.entries == [EntryHead(), EntryHead(type="message")]
    missing, message = decoded.get_entries()
    assert isinstance(missing, UnknownEntry) and missing.type == ""
    assert isinstance(message, UnknownEntry) and message.type == "message", "null data"


def test_unknown_fields_are_ignored_at_every_level() -> None:
    payload = minimal_event(
        brandNewTopLevel={"a": 1},
        user={"id": "1", "newUserField": [1, 2]},
        sdk={"name": "s", "integrations": ["x"], "packages": [{"name": "p"}]},
        release={"version": "1", "someFutureKey": True},
        occurrence={"type": 1, "newEvidence": {}},
        entries=[
            {
                "type": "exception",
                "futureHeadKey": 1,
                "data": {
                    "values": [
                        {
                            "type": "E",
                            "newValueKey": "x",
                            "mechanism": {"type": "m", "newMechanismKey": 1},
                            "stacktrace": {
                                "frames": [{"function": "f", "parentIndex": 3, "sampleCount": 7}],
                                "newStacktraceKey": None,
                            },
                        }
                    ],
                    "newExceptionKey": [],
                },
            },
            {"type": "spans", "data": [{"span_id": "s", "newSpanKey": 1}]},
        ],
    )
    decoded = decode_obj(payload, Event)
    exception = decoded.exception
    assert exception is not None and exception.values[0].type == "E"
    assert exception.values[0].mechanism == Mechanism(type="m")
    stacktrace = exception.values[0].stacktrace
    assert stacktrace is not None and stacktrace.frames == [Frame(function="f")]
    assert decoded.spans == SpansEntry(spans=[Span(span_id="s")])
    assert decoded.user == EventUser(id="1") and decoded.release == Release(version="1")
    assert decoded.occurrence == Occurrence(type=1)
    project = decode_obj(
        [{"id": "1", "slug": "p", "hasNewThing": True, "team": {"id": "2"}}], list[Project]
    )
    assert project[0].slug == "p"


# --- wrong types, names and encoding ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("type_", "payload", "where"),
    [
        (list[Issue], [{"id": "1"}, {"id": "2", "userCount": "many"}], r"\$\[1\]\.userCount"),
        (list[Issue], [{"id": "1", "project": {"slug": 5}}], r"\$\[0\]\.project\.slug"),
        (list[Issue], [{"id": "1", "assignedTo": "me"}], r"\$\[0\]\.assignedTo"),
        (list[Issue], [{"shortId": "X"}], r"missing required field `id` - at `\$\[0\]`"),
        (Issue, {"id": "1", "firstSeen": "last tuesday"}, r"\$\.firstSeen"),
        (Event, {"id": "1", "size": "big"}, r"\$\.size"),
        (Event, {"id": "1", "entries": [{"type": 5, "data": {}}]}, r"\$\.entries\[0\]\.type"),
        (
            Event,
            {"id": "1", "tags": [{"value": "x"}]},
            r"missing required field `key` - at `\$\.tags\[0\]`",
        ),
        (Event, {"id": "1", "user": {"ip_address": 127}}, r"\$\.user\.ip_address"),
        (list[EventSummary], [{"id": "1", "event.type": 3}], r"\$\[0\]\.event\.type"),
        (Organization, {"id": "1", "slug": "o", "require2FA": "yes"}, r"\$\.require2FA"),
        (TagDetail, {"key": "k", "topValues": [{"count": "x"}]}, r"\$\.topValues\[0\]\.count"),
    ],
)
def test_wrong_types_raise_a_validation_error_naming_the_wire_field(
    type_: Any, payload: Any, where: str
) -> None:
    with pytest.raises(msgspec.ValidationError, match=where) as caught:
        decode_obj(payload, type_)
    assert isinstance(caught.value, msgspec.DecodeError)


def test_bodies_that_are_not_json_raise_decode_error() -> None:
    for text in (b"", b"<html>502</html>", b'{"id": "1"', b'[{"id": "1"},]'):
        with pytest.raises(msgspec.DecodeError):
            msgspec.json.decode(text, type=list[Issue])


async def test_the_client_names_the_field_that_did_not_match(fake_sentry: Any) -> None:
    org = fake_sentry.data.org_slugs()[0]
    issue_id = fake_sentry.data.issue_ids(org)[0]
    fake_sentry.faults.add(
        Fault(
            "status",
            path=rf"/issues/{issue_id}/$",
            status=200,
            body={"id": issue_id, "userCount": "several"},
            content_type="application/json",
        )
    )
    with anyio.fail_after(20):
        async with SentryClient(fake_sentry.token, base_url=fake_sentry.url) as client:
            with pytest.raises(DecodeError) as caught:
                await client.issues.get(org, issue_id)
            issue = await client.issues.get(org, issue_id)
    assert "$.userCount" in caught.value.reason and "Issue" in caught.value.type_name
    assert issue.id == issue_id and issue.stats is not None


@pytest.mark.parametrize(
    ("cls", "attribute", "wire"),
    [
        (Issue, "short_id", "shortId"),
        (Issue, "user_count", "userCount"),
        (Issue, "status_details", "statusDetails"),
        (Issue, "stats_raw", "stats"),
        (Issue, "matching_event_id", "matchingEventId"),
        (Event, "event_id", "eventID"),
        (Event, "group_id", "groupID"),
        (Event, "project_id", "projectID"),
        (Event, "next_event_id", "nextEventID"),
        (Event, "meta", "_meta"),
        (Event, "datetime_", "datetime"),
        (Event, "date_received", "dateReceived"),
        (Event, "sdk_updates", "sdkUpdates"),
        (EventSummary, "event_type", "event.type"),
        (EventUser, "ip_address", "ip_address"),
        (Breadcrumb, "event_id", "event_id"),
        (Breadcrumb, "message_format", "messageFormat"),
        (Frame, "lineno", "lineNo"),
        (Frame, "colno", "colNo"),
        (Frame, "abs_path", "absPath"),
        (Frame, "in_app", "inApp"),
        (ExceptionValue, "raw_stacktrace", "rawStacktrace"),
        (Mechanism, "help_link", "help_link"),
        (DebugMetaEntry, "sdk_info", "sdk_info"),
        (TemplateEntry, "lineno", "lineNo"),
        (RequestEntry, "inferred_content_type", "inferredContentType"),
        (Span, "parent_span_id", "parent_span_id"),
        (Span, "start_timestamp", "start_timestamp"),
        (Occurrence, "evidence_data", "evidenceData"),
        (Organization, "require_2fa", "require2FA"),
        (EventIdResolution, "organization_slug", "organizationSlug"),
        (TagDetail, "top_values", "topValues"),
    ],
)
def test_snake_case_attributes_and_wire_names(cls: Any, attribute: str, wire: str) -> None:
    names = {f.name: f.encode_name for f in msgspec.structs.fields(cls)}
    assert names[attribute] == wire


def test_encoding_writes_wire_names_and_omits_defaults() -> None:
    issue = Issue(id="1", short_id="P-1", user_count=0, stats_raw=msgspec.Raw(b'{"24h":[]}'))
    assert json.loads(msgspec.json.encode(issue)) == {
        "id": "1",
        "shortId": "P-1",
        "userCount": 0,
        "stats": {"24h": []},
    }
    summary = EventSummary(id="e", event_type="error", user=EventUser(ip_address="::1"))
    assert json.loads(msgspec.json.encode(summary)) == {
        "id": "e",
        "event.type": "error",
        "user": {"ip_address": "::1"},
    }
    assert json.loads(msgspec.json.encode(Event(id="e"))) == {"id": "e"}


@pytest.mark.parametrize("name", EVENT_FILES)
def test_typed_entries_round_trip_through_their_own_class(name: str) -> None:
    for entry in event(name).get_entries():
        again = msgspec.json.decode(msgspec.json.encode(entry), type=type(entry))
        assert again == entry
