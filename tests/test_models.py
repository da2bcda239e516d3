"""The msgspec models against every response shape Sentry sends, old and new.

The bodies in ``tests/payloads/`` are this project's own samples, shaped like real
responses from sentry.io and self-hosted servers of several eras (values are invented).
Large payloads are built in code. Decoding is strict msgspec decoding, as the client does.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import anyio
import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sentry_async import DecodeError, ErrorDetail, SentryClient
from sentry_async._protocol.errors import parse_error_body
from sentry_async.models import (
    Assignee,
    Breadcrumb,
    BreadcrumbsEntry,
    CspEntry,
    DebugMetaEntry,
    DiscoverResponse,
    EntryHead,
    Event,
    EventError,
    EventIdResolution,
    EventSummary,
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
    Organization,
    Project,
    Release,
    RequestEntry,
    Sdk,
    Span,
    SpansEntry,
    Stacktrace,
    StacktraceEntry,
    TagDetail,
    TemplateEntry,
    Thread,
    ThreadsEntry,
    UnknownEntry,
    UsageStats,
    decode_entry,
    discover_meta,
    parse_events_stats,
)
from sentry_async.testing import SCALES, Dataset, Fault

PAYLOADS = Path(__file__).parent / "payloads"
UTC = timezone.utc


def raw(name: str) -> bytes:
    return (PAYLOADS / name).read_bytes()


def body(name: str) -> Any:
    return json.loads(raw(name))


def decode(name: str, type_: Any) -> Any:
    return msgspec.json.decode(raw(name), type=type_)


def event(name: str) -> Event:
    result: Event = decode(name, Event)
    return result


# --- every fixture decodes into its model -------------------------------------------------

EVENT_FILES = sorted(p.name for p in PAYLOADS.glob("event-*.json"))
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


# --- issues ---------------------------------------------------------------------------------


def test_current_issue_list_shape() -> None:
    first, second = decode("issues-list.json", list[Issue])
    assert first.id == "7301122450" and first.short_id == "LEDGER-API-2F"
    assert first.count == "1204" and first.count_int == 1204 and first.user_count == 17
    assert first.first_seen == datetime(2025, 11, 2, 8, 14, 55, 118000, tzinfo=UTC)
    assert first.last_seen == datetime(2026, 1, 1, 23, 41, 7, tzinfo=UTC)
    assert first.project == IssueProject(
        id="4508812", name="ledger-api", slug="ledger-api", platform="python"
    )
    assert first.assigned_to is not None and first.assigned_to.type == "team"
    assert first.assigned_to.email is None
    assert first.metadata["severity"] == 0.42
    assert first.inbox is not None and first.inbox.reason == 2
    assert first.owners is not None and first.owners[0].owner == "team:311"
    assert first.lifetime is not None and first.lifetime["count"] == "1204"
    assert first.filtered is None
    assert first.annotations[0]["displayName"] == "LIN-88"
    assert first.substatus == "escalating" and first.priority == "high"
    assert first.matching_event_id == "c0ffee0000000000000000000000beef"
    stats = first.stats
    assert stats is not None and list(stats) == ["24h"]
    assert len(stats["24h"]) == 24
    assert stats["24h"][1] == (1767225600 + 3600, 3)
    assert second.issue_category == "performance"
    assert second.status_details == {"ignoreUntilEscalating": True}
    assert second.first_seen == datetime(2026, 1, 1, 19, 0, 2, 500000, tzinfo=UTC)
    assert second.filtered is not None and second.filtered["count"] == "1"


def test_minimal_issue_stubs_fill_every_other_field_with_defaults() -> None:
    issues = decode("issues-list-minimal.json", list[Issue])
    assert [i.short_id for i in issues] == ["KITE-Q", "KITE-P"]
    stub = issues[0]
    assert stub.level == "fatal" and stub.status == "unresolved"
    assert stub.last_seen == datetime(2024, 2, 11, 6, 30, 41, 904512, tzinfo=UTC)
    assert stub.project is None and stub.first_seen is None and stub.assigned_to is None
    assert stub.count is None and stub.count_int is None
    assert stub.stats is None and stub.stats_raw == msgspec.Raw(b"null")
    assert stub.metadata == {} and stub.tags == [] and stub.activity == []
    assert msgspec.json.decode(msgspec.json.encode(stub)) == body("issues-list-minimal.json")[0]


def test_self_hosted_2018_issue_list() -> None:
    (issue,) = decode("issues-list-selfhosted-2018.json", list[Issue])
    assert issue.permalink == "10.20.30.40/sentry/shopfront/issues/204/"
    assert issue.project is not None and issue.project.platform is None
    assert issue.priority is None and issue.substatus is None and issue.issue_type is None
    assert issue.platform is None and issue.is_unhandled is None
    assert issue.count_int == 77
    assert issue.stats == {"24h": [(1528106400.0, 2.0), (1528110000.0, 0.0)]}


def test_issue_detail_fields() -> None:
    issue = decode("issue-detail.json", Issue)
    assert issue.metadata["severity"] == 0 and isinstance(issue.metadata["severity"], int)
    assert issue.assigned_to is not None and issue.assigned_to.email == "marta@fernhill.example"
    assert [a["type"] for a in issue.activity] == ["set_escalating", "first_seen"]
    assert issue.seen_by[0]["emails"][0]["is_verified"] is True
    assert issue.first_release == {"version": "ledger-api@3.18.0"} and issue.last_release is None
    assert [(t.key, t.name, t.total_values) for t in issue.tags] == [
        ("environment", "Environment", 1204),
        ("release", "Release", 1190),
        ("server_name", "Server", 1204),
    ]
    assert issue.participants[0]["type"] == "user" and issue.user_report_count == 1
    stats = issue.stats
    assert stats is not None and sorted(stats) == ["24h", "30d"]
    assert len(stats["30d"]) == 30


def test_seer_era_issue_detail() -> None:
    issue = decode("issue-detail-seer.json", Issue)
    assert issue.status == "resolved" and issue.substatus is None
    assert issue.metadata["severity"] == 0.87
    assert issue.metadata["autofix"]["steps"][1]["changes"][0]["pull_request"]["pr_number"] == 412
    assert issue.status_details["inNextRelease"] is True
    assert issue.subscription_details == {"disabled": True}
    assert [a["type"] for a in issue.activity] == [
        "set_resolved_in_release",
        "set_regression",
        "first_seen",
    ]
    assert issue.activity[0]["user"]["options"]["timezone"] == "UTC"
    assert issue.logger == "celery" and issue.user_count == 0


def test_old_issue_detail_with_float_stats_buckets() -> None:
    issue = decode("issue-detail-float-stats.json", Issue)
    stats = issue.stats
    assert stats is not None
    assert stats["24h"][0] == (1552608000.0, 0.0) and stats["24h"][4] == (
        1552608000.0 + 4 * 3600,
        4,
    )
    assert len(stats["30d"]) == 30
    assert issue.first_release is not None and issue.first_release["newGroups"] == 3
    assert issue.project is not None and issue.project.platform is None
    assert issue.tags == [] and issue.metadata == {"type": "MemoryError", "value": ""}


def test_issue_stats_are_decoded_only_when_read() -> None:
    page = [
        {"id": "1", "stats": {"24h": [[10, "not a number"]]}},
        {"id": "2", "stats": {"24h": [[10.5, 3], [3610, 0]], "14d": []}},
        {"id": "3", "stats": None},
    ]
    bad, good, empty = msgspec.json.decode(msgspec.json.encode(page), type=list[Issue])
    assert good.stats == {"24h": [(10.5, 3.0), (3610.0, 0.0)], "14d": []}
    assert empty.stats is None
    assert bytes(bad.stats_raw) == b'{"24h":[[10,"not a number"]]}'
    with pytest.raises(
        msgspec.ValidationError, match=r"issue 1 `stats`: Expected `float`, got `str`"
    ):
        _ = bad.stats
    assert json.loads(msgspec.json.encode(good))["stats"] == page[1]["stats"]


@pytest.mark.parametrize(
    ("count", "expected"), [("25", 25), (25, 25), ("17283712", 17283712), ("lots", None)]
)
def test_issue_count_is_a_string_or_an_int(count: Any, expected: int | None) -> None:
    issue = msgspec.json.decode(msgspec.json.encode({"id": "9", "count": count}), type=Issue)
    assert issue.count == count and issue.count_int == expected


def test_tag_detail() -> None:
    tag = decode("issue-tag-detail.json", TagDetail)
    assert (tag.key, tag.name, tag.total_values, tag.unique_values) == (
        "browser",
        "Browser",
        311,
        3,
    )
    assert [v.count for v in tag.top_values] == [190, 101, 20]
    assert tag.top_values[1].query == 'browser:"Safari 18.2"'
    assert tag.top_values[1].last_seen == datetime(2026, 1, 1, 20, 2, 12, 1000, tzinfo=UTC)
    assert tag.top_values[2].value is None
    assert tag.top_values[2].first_seen == datetime(2025, 12, 19, 9, tzinfo=UTC)


# --- organizations and projects -------------------------------------------------------------


def test_organizations_list() -> None:
    fernhill, kestrel = decode("organizations-list.json", list[Organization])
    assert fernhill.slug == "fernhill" and fernhill.require_2fa is True
    assert fernhill.links is not None and fernhill.links.region_url == "https://de.sentry.io"
    assert fernhill.status is not None and fernhill.status.id == "active"
    assert fernhill.avatar is not None and fernhill.avatar.avatar_type == "upload"
    assert "global-views" in fernhill.features and fernhill.has_auth_provider is True
    assert kestrel.links is None and kestrel.avatar is not None
    assert kestrel.avatar.avatar_uuid is None and kestrel.features == []
    assert kestrel.status is not None and kestrel.status.name == "pending deletion"
    assert kestrel.date_created == datetime(2016, 9, 1, tzinfo=UTC)


def test_projects_list_and_project_detail() -> None:
    ledger, console = decode("projects-list.json", list[Project])
    assert ledger.latest_release == {"version": "ledger-api@3.18.2"}
    assert ledger.latest_deploys is None and ledger.environments == [
        "production",
        "staging",
        "canary",
    ]
    assert ledger.first_event == datetime(2024, 10, 3, 12, 31, 9, 117000, tzinfo=UTC)
    assert ledger.team is not None and ledger.team["slug"] == "payments"
    assert console.first_event is None and console.latest_release is None and console.team is None
    assert console.platform == "" and console.latest_deploys is not None
    detail = decode("project-detail.json", Project)
    assert detail.slug == "nimbus" and detail.organization is not None
    assert detail.organization["slug"] == "kestrel-labs"
    assert detail.latest_release is not None and detail.latest_release["id"] == 991204
    assert detail.status == "active" and detail.color == "#bf3f9a"


# --- events ---------------------------------------------------------------------------------


def test_python_keyerror_with_message_exception_and_breadcrumbs() -> None:
    decoded = event("event-python-keyerror-breadcrumbs.json")
    assert decoded.entry_types == ["message", "exception", "breadcrumbs"]
    assert decoded.type == "error" and decoded.title == "KeyError: 23059"
    assert decoded.message_entry == MessageEntry(formatted="23059")
    exception = decoded.exception
    assert exception is not None and exception.has_system_frames is True
    (value,) = exception.values
    assert (value.type, value.value, value.module, value.thread_id) == (
        "KeyError",
        "23059",
        None,
        None,
    )
    assert value.mechanism is not None and value.mechanism.type == "celery"
    assert value.mechanism.handled is False and value.mechanism.data == {
        "celery_task_id": "5b9d2c44"
    }
    assert value.stacktrace is not None and value.raw_stacktrace is None
    frames = value.stacktrace.frames
    assert [f.function for f in frames] == [
        "trace_task",
        "reconcile",
        "reconcile_batch",
        "<lambda>",
    ]
    assert [f.in_app for f in frames] == [False, True, True, True]
    assert frames[1].lineno == 61 and frames[1].colno is None
    assert frames[1].abs_path == "/srv/ledger/ledger/tasks.py"
    assert frames[1].context[3] == (61, "    result = sync.reconcile_batch(batch, strict=True)")
    assert frames[3].vars is None
    entry_var = frames[2].vars["entry"]  # type: ignore[index]
    assert entry_var == {
        "id": 3,
        "account_id": 23059,
        "amount": 10,
        "tags": ["manual", "late"],
        "note": None,
    }
    crumbs = decoded.breadcrumbs
    assert crumbs is not None and len(crumbs.values) == 4
    http, query, log, last = crumbs.values
    assert http.type == "http" and http.message is None
    assert http.data is not None and http.data["http.response.status_code"] == 200
    assert query.message_format == "sql" and query.message_raw == query.message
    assert log.level == "warning" and log.timestamp == "2026-01-01T23:41:04.000011Z"
    assert last.data is None and last.event_id == "4c3b2a190807060504030201000f0e0d"
    assert decoded.request is None and decoded.stacktrace is None and decoded.spans is None
    assert decoded.release is None and decoded.user is None and decoded.dist is None
    assert decoded.date_created == datetime(2026, 1, 1, 23, 41, 7, tzinfo=UTC)
    assert decoded.date_received == datetime(2026, 1, 1, 23, 41, 7, 402118, tzinfo=UTC)
    assert decoded.previous_event_id == "1a2b3c4d5e6f70819203a4b5c6d7e8f9"
    assert decoded.fingerprints == ["3c59dc048e8850243be8079a5c74d079", "{{ default }}"]
    assert decoded.grouping_config == {
        "enhancements": "KLUv_SAYwQAAkwKRs25ld3N0eWxl",
        "id": "newstyle:2023-01-11",
    }
    assert decoded.packages is not None and decoded.packages["celery"] == "5.4.0"
    meta = msgspec.json.decode(decoded.meta)
    note = meta["entries"]["1"]["data"]["values"]["0"]["stacktrace"]["frames"]["0"]["vars"][
        "task_request"
    ][""]
    assert note["rem"] == [["!limit", "x", 77, 80]] and note["chunks"][1]["type"] == "redaction"
    extra = msgspec.json.decode(decoded.context)
    assert extra["results"] == [1, 2, 3] and extra["retrying"] is True


def test_contexts_and_tags_helpers() -> None:
    decoded = event("event-python-keyerror-breadcrumbs.json")
    trace = decoded.context_of("trace")
    assert trace is not None and trace["trace_id"] == "9a8b7c6d5e4f30211203a4b5c6d7e8f9"
    assert trace["client_sample_rate"] == 0.25 and trace["sampled"] is True
    assert decoded.context_of("celery") == {"task": "ledger.tasks.reconcile", "retries": 1}
    assert decoded.context_of("browser") is None
    assert decoded.tag("environment") == "production"
    assert decoded.tag("server_name") == "ledger-worker-6d7f9-x2x"
    assert decoded.tag("missing") is None
    js = event("event-javascript-breadcrumbs.json")
    assert js.context_of("ResizeObserverInfo") == {
        "entries": 2,
        "note": "user-named context without type",
    }
    assert js.context_of("organization") == {"id": "1044", "slug": "fernhill", "type": "default"}
    odd = event("event-unknown-entry.json")
    assert odd.contexts["app"] == "not an object" and odd.context_of("app") is None
    assert odd.context_of("gpu") == {"name": "M2", "vendor_name": "Apple"}


def test_frame_vars_hold_any_json_and_a_full_release() -> None:
    decoded = event("event-python-frame-vars.json")
    exception = decoded.exception
    assert exception is not None
    (value,) = exception.values
    assert value.thread_id == 140221190 and value.module == "pydantic_core._pydantic_core"
    assert value.mechanism is not None and value.mechanism.help_link is None
    stacktrace = value.stacktrace
    assert stacktrace is not None and stacktrace.frames_omitted == [3, 9]
    assert stacktrace.registers == {}
    variables = stacktrace.frames[0].vars
    assert variables is not None
    assert variables["body"]["lines"][1] == {"sku": None, "qty": -2, "unit": 0.5}
    assert variables["retries"] == 0 and variables["ratio"] == 0.125
    assert variables["flags"] == [True, False, None] and variables["nothing"] is None
    assert variables["nested"]["level1"]["level2"]["level3"] == "'deep'"
    assert variables["empty_list"] == [] and variables["empty_obj"] == {}
    release = decoded.release
    assert release is not None and release.id == 991204 and release.version == "ledger-api@3.18.2"
    assert release.status == "open" and release.short_version == "3.18.2"
    assert release.version_info is not None and release.version_info["version"]["raw"] == "3.18.2"
    assert release.projects[0]["id"] == 4508812 and release.new_groups == 2
    assert release.last_deploy is not None and release.last_deploy["id"] == "5521"
    assert release.last_commit is not None
    assert release.last_commit["repository"]["name"] == "fernhill/ledger"
    assert release.date_released == datetime(2025, 12, 10, 17, 30, tzinfo=UTC)
    assert release.user_agent == "sentry-cli/2.39.1" and release.authors[0]["name"] == "Rui"
    assert decoded.user == EventUser(
        id="4412",
        email="marta@fernhill.example",
        ip_address="203.0.113.77",
        geo={"country_code": "PT", "city": "Porto", "region": "Portugal"},
        data={"plan": "team", "seats": 12},
    )
    assert decoded.dist == "build-311" and decoded.next_event_id is not None
    assert (
        decoded.user_report is not None and decoded.user_report["comments"] == "Save failed again."
    )
    assert decoded.sdk_updates[0]["newSdkVersion"] == "2.19.2"
    assert decoded.sdk is not None and decoded.sdk.name == "sentry.python.fastapi"
    assert decoded.date_created == datetime(2025, 12, 12, 9, 29, 59, 870000, tzinfo=UTC)
    assert msgspec.json.decode(decoded.meta) is None, "no _meta key: null"


def test_javascript_exception_request_and_millisecond_breadcrumbs() -> None:
    decoded = event("event-javascript-breadcrumbs.json")
    exception = decoded.exception
    assert exception is not None
    (value,) = exception.values
    assert value.stacktrace is not None and value.raw_stacktrace is not None
    assert [f.function for f in value.stacktrace.frames] == [
        None,
        "HTMLButtonElement.onClick",
        "submitOrder",
    ]
    assert [f.function for f in value.raw_stacktrace.frames] == [None, "t.HTM", "t.sub"]
    mechanism = value.mechanism
    assert mechanism is not None and mechanism.synthetic is False and mechanism.source == "reason"
    assert (
        mechanism.help_link
        == "https://developer.mozilla.org/docs/Web/API/Window/unhandledrejection_event"
    )
    assert mechanism.exception_id == 0 and mechanism.is_exception_group is False
    assert value.stacktrace.frames[2].colno == 91002 and value.stacktrace.frames[2].context == []
    request = decoded.request
    assert request is not None and request.method == "GET" and request.fragment == "step-2"
    assert request.query == [("ref", "email"), ("utm_campaign", None)]
    assert request.headers is not None and ("Authorization", "[Filtered]") in request.headers
    assert request.cookies == [["theme", "dark"]] and request.env is None and request.data is None
    crumbs = decoded.breadcrumbs
    assert crumbs is not None
    assert [c.category for c in crumbs.values] == ["navigation", "fetch", "ui.click", "console"]
    assert all(c.event_id is None for c in crumbs.values), "no event_id key at all"
    assert crumbs.values[0].timestamp == "2025-12-20T14:02:10.120Z"
    assert crumbs.values[1].data is not None and crumbs.values[1].data["status_code"] == 502
    assert [(e.type, e.data) for e in decoded.errors] == [
        (
            "js_no_source",
            {"symbolicator_type": "missing_source", "url": "app:///assets/index-4f1c.js"},
        ),
        (
            "js_invalid_sourcemap_location",
            {"column": 40122, "row": 1, "source": "app:///assets/index-4f1c.js"},
        ),
    ]
    assert decoded.resolved_with == [None]
    assert decoded.release == Release(version="console@2025.12.3")
    assert decoded.date_created == datetime(2025, 12, 20, 14, 2, 11, 452000, tzinfo=UTC)
    meta = msgspec.json.decode(decoded.meta)
    redaction = meta["entries"]["1"]["data"]["headers"]["1"]["1"][""]
    assert redaction["chunks"][0]["text"] == "[Filtered]"


def test_message_only_minimal_event() -> None:
    decoded = event("event-message-minimal.json")
    assert decoded.type == "default" and decoded.id == "00aa11bb22cc33dd"
    assert decoded.message_entry == MessageEntry(
        formatted="Nightly export finished with warnings",
        message="Nightly export finished with %s",
        params=["warnings"],
    )
    assert decoded.exception is None and decoded.breadcrumbs is None and decoded.request is None
    assert decoded.threads is None and decoded.entry(CspEntry) is None
    assert decoded.date_received == datetime(2026, 1, 2, 3, 0, 0, 250000, tzinfo=UTC)
    assert decoded.tag("level") == "warning" and decoded.sdk is None


def test_2018_message_event_with_stacktrace_template_and_string_query() -> None:
    decoded = event("event-template-2018.json")
    assert decoded.id == "3" and decoded.event_id == "b0c1d2e3f405162738495a6b7c8d9e0f"
    assert decoded.title is None and decoded.culprit is None and decoded.release is None
    assert decoded.entry_types == ["message", "stacktrace", "template", "request"]
    assert decoded.exception is None
    stacktrace = decoded.stacktrace
    assert stacktrace is not None and len(stacktrace.frames) == 2
    assert stacktrace.frames[0].vars is not None
    assert stacktrace.frames[0].vars["'kwargs'"] == {
        "'level'": 20,
        "'message'": "'Order total mismatch'",
    }
    assert stacktrace.frames[0].vars["'extra'"]["'loadavg'"] == [0.51, 0.42, 0.4]
    assert stacktrace.frames[1].vars == {
        "'request'": "<WSGIRequest: GET '/orders/551/confirm?coupon=WINTER'>",
        "'total'": 1999,
        "'order'": "<Order: 551>",
        "'ratio'": 0.97,
    }
    template = decoded.entry(TemplateEntry)
    assert (
        template is not None and template.lineno == 3 and template.filename == "orders/confirm.html"
    )
    assert template.abs_path == "/opt/shop/templates/orders/confirm.html"
    assert template.context[2] == (3, "  {{ order.total|money }}")
    request = decoded.request
    assert request is not None and request.query == "coupon=WINTER&step=2"
    assert request.data == {"coupon": "WINTER", "qty": 2}
    assert request.env == {"REMOTE_ADDR": "10.1.2.3", "SERVER_NAME": "shop-1", "SERVER_PORT": "80"}
    assert request.inferred_content_type == "application/x-www-form-urlencoded"
    assert decoded.tags[0] == EventTag(key="level", value="info")
    assert decoded.user is not None and decoded.user.username == "dana"
    assert msgspec.json.decode(decoded.meta)["entries"] == {}


def test_ruby_2019_event_with_old_meta_and_old_release() -> None:
    decoded = event("event-ruby-2019.json")
    assert decoded.entries == [] and decoded.get_entries() == [] and decoded.exception is None
    assert decoded.message is None and decoded.platform == "ruby"
    (error,) = decoded.errors
    assert error.type == "invalid_data" and error.data is not None
    assert error.data["name"] == "request.headers"
    release = decoded.release
    assert release is not None and release.id is None and release.version == "4d1c9a0"
    assert release.authors == [] and release.owner is None and release.new_groups == 4
    assert release.projects == [{"name": "Payments", "slug": "payments"}]
    assert release.date_created == datetime(2019, 10, 20, 9, 0, 0, 518000, tzinfo=UTC)
    old_meta = msgspec.json.decode(decoded.meta)["entries"]["1"]["data"]["headers"][""]
    assert old_meta == {
        "err": [["invalid_data", {"reason": "expected a string"}]],
        "val": "********",
    }
    user_tag = decoded.tags[-1]
    assert (
        user_tag.query == 'user.email:"lee@cards.example"'
        and user_tag.value == "email:lee@cards.example"
    )
    assert decoded.context_of("client_os") == {"version": "10.15", "type": "os", "name": "Mac OS X"}
    assert decoded.user is not None and decoded.user.ip_address == "::1"


def test_csp_report() -> None:
    decoded = event("event-csp.json")
    assert decoded.type == "csp" and decoded.platform == "other" and decoded.sdk is None
    assert decoded.datetime_ == "2026-01-01T11:59:00.118000Z"
    assert decoded.date_created == datetime(2026, 1, 1, 11, 59, 0, 118000, tzinfo=UTC)
    csp = decoded.entry(CspEntry)
    assert csp is not None
    assert csp.get("effective_directive") == "script-src" and csp.get("line_number") == 14
    assert csp.get("blocked_uri") == "https://cdn.tracker.example/t.js"
    assert csp.get("not_there") is None
    assert decoded.message_entry == MessageEntry(
        formatted="Blocked 'script' from 'cdn.tracker.example'"
    )
    request = decoded.request
    assert request is not None and request.query == [("tab", "invoices"), ("page", "2")]
    assert request.method is None
    assert decoded.metadata["directive"] == "script-src"


def test_transaction_with_an_empty_spans_list() -> None:
    decoded = event("event-transaction-empty-spans.json")
    assert decoded.type == "transaction" and decoded.group_id is None
    assert decoded.culprit is None and decoded.date_created is None and decoded.fingerprints == []
    assert decoded.spans == SpansEntry(spans=[])
    assert decoded.start_timestamp == 1767268800.0961 and decoded.end_timestamp == 1767268800.1003
    assert decoded.measurements is None and decoded.breakdowns is None
    assert decoded.project_slug == "ledger-api"
    crumbs = decoded.breadcrumbs
    assert crumbs is not None and crumbs.values[0].data == {"key": "[Filtered]"}
    request = decoded.request
    assert (
        request is not None
        and request.query == []
        and request.url == "https://ledger.fernhill.example/health"
    )
    trace = decoded.context_of("trace")
    assert trace is not None and trace["data"]["sentry.sample_rate"] == 0.05


def test_transaction_spans_and_performance_occurrence() -> None:
    decoded = event("event-transaction-n-plus-one.json")
    assert len(decoded.id) == 33, "ids are not length-checked"
    spans = decoded.spans
    assert spans is not None and len(spans.spans) == 5
    root, *queries = spans.spans
    assert (
        root.op == "http.server" and root.tags is None and root.parent_span_id == "f0f0f0f0f0f0f0f0"
    )
    assert root.start_timestamp == 1767270000.0 and root.timestamp == 1767270000.42
    assert all(s.parent_span_id == root.span_id for s in queries)
    assert queries[0].description == "SELECT * FROM receipt_line WHERE receipt_id = 0"
    assert (
        queries[0].tags == {"db.system": "postgresql"} and queries[0].same_process_as_parent is True
    )
    assert queries[0].data == {"db.system": "postgresql", "db.operation": "SELECT"}
    assert queries[0].exclusive_time == 8.0 and queries[0].hash == "1b1b1b1b"
    occurrence = decoded.occurrence
    assert occurrence is not None and occurrence.type == 1006 and occurrence.project_id == 4508812
    assert occurrence.detection_time == 1767270001.0 and occurrence.priority == 50
    assert occurrence.evidence_data["numPatternRepetitions"] == 4
    assert occurrence.evidence_display[1]["important"] is False
    assert occurrence.resource_id is None and occurrence.assignee is None
    assert decoded.measurements == {
        "fcp": {"value": 120.5, "unit": "millisecond"},
        "cls": {"value": 0.01, "unit": "none"},
    }
    assert (
        decoded.breakdowns is not None and decoded.breakdowns["span_ops"]["ops.db"]["value"] == 32.0
    )
    request = decoded.request
    assert request is not None and request.cookies is None and request.env is None


def test_generic_issue_platform_occurrence() -> None:
    decoded = event("event-generic-occurrence.json")
    assert decoded.type == "generic" and decoded.entries == [] and decoded.location is None
    occurrence = decoded.occurrence
    assert occurrence is not None and occurrence.type == 1018
    assert occurrence.detection_time == 1767333600.551907
    assert occurrence.evidence_data["aggregateRange2"] == 388.9512
    assert occurrence.evidence_data["breakpoint"] == 1767312000
    assert occurrence.fingerprint == ["b0a1c2d3e4f5061728394a5b6c7d8e9f"]
    assert occurrence.subtitle == "Increased from 210.40ms to 388.95ms (P95)"


def test_unknown_event_type_decodes() -> None:
    decoded = event("event-unknown-type.json")
    assert decoded.type == "llm_agent_run" and decoded.message is None
    assert decoded.title == "Agent loop exceeded budget" and decoded.get_entries() == []
    assert "agentRun" in body("event-unknown-type.json"), "an unknown top-level key, ignored"


def test_unknown_and_mismatched_entries_fall_back_to_raw() -> None:
    original = body("event-unknown-entry.json")
    decoded = event("event-unknown-entry.json")
    assert decoded.entry_types == ["threads", "debugmeta", "gpu_trace", "exception", "request"]
    threads, debugmeta, gpu, broken, request = decoded.get_entries()
    assert isinstance(gpu, UnknownEntry) and gpu.type == "gpu_trace"
    assert msgspec.json.decode(gpu.data) == original["entries"][2]["data"]
    assert gpu.error() is None, "an unknown type is not an error"
    assert isinstance(broken, UnknownEntry) and broken.type == "exception"
    assert msgspec.json.decode(broken.data) == "this entry's data is not an object"
    assert "Expected `object`" in (broken.error() or "")
    assert decoded.exception is None, "the only exception entry does not fit ExceptionEntry"
    assert isinstance(threads, ThreadsEntry) and decoded.threads == threads
    main, worker = threads.values
    assert main.id == 0 and main.crashed is True and main.main is True and main.state == "RUNNABLE"
    assert main.stacktrace is not None
    assert main.stacktrace.registers == {"pc": "0x100a2b3c4", "sp": "0x16f5e3a10"}
    frame = main.stacktrace.frames[0]
    assert frame.instruction_addr == "0x100a2b3c4" and frame.symbol_addr == "0x100a2b300"
    assert frame.package == "/usr/lib/libtiles.dylib" and frame.trust == "context"
    assert worker.id == "worker-2" and worker.name is None and worker.stacktrace is None
    assert isinstance(debugmeta, DebugMetaEntry) and decoded.entry(DebugMetaEntry) == debugmeta
    assert debugmeta.images[0]["image_size"] == 65536
    assert debugmeta.sdk_info == {"sdk_name": "macOS", "version_major": 14}, (
        "snake_case on the wire"
    )
    assert debugmeta.is_debug_build is False
    assert isinstance(request, RequestEntry) and request.query == "z=3&x=1"
    assert request.headers == [("X-Tile", None)] and request.data == "raw body text"
    assert decoded.resolved_with == [None, "release"]
    assert decoded.contexts["device"]["arch"] == "arm64"


def test_eventid_resolution_holds_the_event() -> None:
    resolved = decode("eventid-resolve.json", EventIdResolution)
    assert (resolved.organization_slug, resolved.project_slug) == ("fernhill", "ledger-api")
    assert (
        resolved.group_id == "7301122450"
        and resolved.event_id == "5d4c3b2a19080f0e0d0c0b0a09080706"
    )
    assert resolved.event is not None and resolved.event.occurrence is not None
    assert resolved.event.occurrence.project_id == 4508812
    assert resolved.event.occurrence.detection_time == 1767310867
    request = resolved.event.request
    assert request is not None and request.url == "https://ledger.fernhill.example/reconcile"
    assert request.headers == [] and request.method is None
    assert resolved.event.user is not None and resolved.event.user.data == {}


def test_event_list_rows_with_the_dotted_event_type_key() -> None:
    first, second = decode("issue-events-list.json", list[EventSummary])
    assert first.event_type == "error" and first.group_id == "7301122450"
    assert first.id == first.event_id == "0b1c2d3e4f5061728394a5b6c7d8e9f0"
    assert first.user is not None and first.user.id == "4412" and first.user.ip_address is None
    assert first.tags[-1] == EventTag(key="user", value="id:4412", query='user.id:"4412"')
    assert first.date_created == datetime(2026, 1, 1, 23, 41, 7, tzinfo=UTC)
    assert first.crash_file is None and first.project_id == "4508812"
    assert second.user is None and second.location is None and second.metadata == {}
    assert second.date_created == datetime(2026, 1, 1, 22, 0, 0, 250000, tzinfo=UTC)
    transaction, csp = decode("project-events-list.json", list[EventSummary])
    assert transaction.event_type == "transaction" and transaction.group_id is None
    assert transaction.culprit is None and transaction.tags[1].value == "GET /health"
    assert csp.event_type == "csp" and csp.platform == "other"
    assert csp.user is not None and csp.user.geo == {"country_code": "PT", "region": "Portugal"}
    assert csp.user.data == {"plan": "team"}
    assert json.loads(msgspec.json.encode(transaction))["event.type"] == "transaction"


# --- discover, events-stats, stats_v2 ---------------------------------------------------------


def test_discover_rows_are_keyed_by_field_expressions() -> None:
    response = decode("discover-events.json", DiscoverResponse[dict[str, Any]])
    first, second = response.data
    assert first["issue.id"] == 7301122450 and isinstance(first["issue.id"], int)
    assert first["count()"] == 1204 and first["p75(transaction.duration)"] == 12.5
    assert first["last_seen()"] == "2026-01-01T23:41:07+00:00"
    assert second["p75(transaction.duration)"] is None
    meta = discover_meta(response.meta)
    assert meta is not None and meta.dataset == "errors" and meta.dataset_reason == "unchanged"
    assert (
        meta.fields["last_seen()"] == "date"
        and meta.units["p75(transaction.duration)"] == "millisecond"
    )
    assert meta.is_metrics_data is False and meta.tips == {"query": None, "columns": None}
    empty = decode("discover-events-empty.json", DiscoverResponse[dict[str, Any]])
    assert empty.data == [] and discover_meta(empty.meta) == meta


def test_discover_spans_dataset_with_confidence() -> None:
    response = decode("discover-events-spans.json", DiscoverResponse[dict[str, Any]])
    assert [row["span.duration"] for row in response.data] == [7.25, 420.0]
    assert response.data[1]["is_transaction"] is True
    assert response.confidence == [{"count()": "low"}, {}]
    meta = discover_meta(response.meta)
    assert meta is not None and meta.data_scanned == "partial" and meta.dataset == "spans"
    assert meta.accuracy == {"confidence": [{"count()": "low"}, {}]}
    assert meta.fields["span.duration"] == "duration"


def test_discover_legacy_meta_puts_field_types_at_the_top() -> None:
    response = decode("discover-events-legacy-meta.json", DiscoverResponse[dict[str, Any]])
    assert response.data[0]["equation|count() * 2"] == 176.0
    meta = discover_meta(response.meta)
    assert meta is not None and meta.is_metrics_data is False
    assert meta.fields == {
        "transaction": "string",
        "count()": "integer",
        "equation|count() * 2": "number",
    }
    assert discover_meta(None) is None


def test_discover_rows_can_stay_raw() -> None:
    response = msgspec.json.decode(raw("discover-events.json"), type=DiscoverResponse[msgspec.Raw])
    assert [msgspec.json.decode(row) for row in response.data] == body("discover-events.json")[
        "data"
    ]


def test_events_stats_single_y_axis() -> None:
    (series,) = parse_events_stats(raw("events-stats-single.json"))
    assert (series.name, series.y_axis, series.group, series.order) == (
        "count()",
        "count()",
        None,
        None,
    )
    assert series.values == [4, 0, 9, 2, 0, 1] and series.total == 16
    assert (
        series.timestamps[0] == 1767225600 and series.timestamps[1] - series.timestamps[0] == 3600
    )
    assert series.start == 1767225600 and series.end == 1767225600 + 6 * 3600
    assert series.meta is not None and series.meta["dataset"] == "errors"
    assert series.comparison_values is None
    (named,) = parse_events_stats(raw("events-stats-single.json"), ["count_unique(user)"])
    assert named.name == named.y_axis == "count_unique(user)"


def test_events_stats_multiple_y_axes() -> None:
    stats = parse_events_stats(
        raw("events-stats-multi-yaxis.json"), ["count()", "count_unique(user)"]
    )
    assert [(s.name, s.y_axis, s.group, s.order) for s in stats] == [
        ("count()", "count()", None, 0),
        ("count_unique(user)", "count_unique(user)", None, 1),
    ]
    assert stats.by_name("count_unique(user)") is not None
    assert stats.by_name("count_unique(user)").values == [2, 0, 3, 1]  # type: ignore[union-attr]
    assert stats.raw == body("events-stats-multi-yaxis.json")


def test_events_stats_top_events() -> None:
    stats = parse_events_stats(body("events-stats-top-events.json"))
    assert [(s.group, s.order, s.total) for s in stats] == [
        ("ledger-api", 0, 11),
        ("web-console", 1, 4),
        ("Other", 2, 0),
    ]
    assert all(s.y_axis == "count()" and s.name == s.group for s in stats)


def test_events_stats_top_events_with_multiple_y_axes() -> None:
    axes = ["count()", "p95(transaction.duration)"]
    stats = parse_events_stats(raw("events-stats-top-multi-yaxis.json"), axes)
    assert [(s.group, s.y_axis, s.order) for s in stats] == [
        ("GET /api/v3/receipts/{id},ledger-api", "count()", 0),
        ("GET /api/v3/receipts/{id},ledger-api", "p95(transaction.duration)", 0),
        ("POST /api/v3/payouts,ledger-api", "count()", 1),
        ("POST /api/v3/payouts,ledger-api", "p95(transaction.duration)", 1),
    ]
    assert stats.series[1].values == [120.5, 98.0, 0, 410.25]


def test_events_stats_edge_cases() -> None:
    cases = body("events-stats-edge-cases.json")
    (empty_key,) = parse_events_stats(cases["empty_group_key"])
    assert empty_key.group == "" and empty_key.values == [5.0, 6.0] and empty_key.order == 0
    (gaps,) = parse_events_stats(cases["null_and_empty_buckets"])
    assert gaps.values == [None, None, 4] and gaps.timestamps == [10, 20, 30] and gaps.total == 4
    (compared,) = parse_events_stats(cases["comparison_counts"])
    assert compared.values == [3, 0] and compared.comparison_values == [1, 2.5]
    only_order = parse_events_stats(cases["order_sibling_only_group"])
    assert [(s.group, s.y_axis, s.order) for s in only_order] == [("Group A", "count()", 2)]
    (nothing,) = parse_events_stats(cases["empty_data"])
    assert nothing.points() == [] and nothing.total == 0
    (floats,) = parse_events_stats(cases["float_timestamps"])
    assert floats.timestamps == [10, 3610] and all(isinstance(t, int) for t in floats.timestamps)


@pytest.mark.parametrize(
    "bad",
    [
        b"[]",
        b'"count"',
        b'{"data": [[1]]}',
        b'{"data": [["yesterday", [{"count": 1}]]]}',
        b'{"group": {"count()": {"data": "none"}, "x": 1}}',
        b'{"group": 3}',
    ],
)
def test_events_stats_bodies_of_no_known_shape_raise_value_error(bad: bytes) -> None:
    with pytest.raises(ValueError):
        parse_events_stats(bad)


def test_usage_stats_grouped_and_grouped_by_project() -> None:
    grouped = decode("stats-v2-grouped.json", UsageStats)
    assert grouped.intervals == [
        "2025-12-29T00:00:00Z",
        "2025-12-30T00:00:00Z",
        "2025-12-31T00:00:00Z",
    ]
    first = grouped.groups[0]
    assert first.by == {"category": "error", "outcome": "accepted", "reason": "none"}
    assert first.totals == {"sum(quantity)": 9120, "sum(times_seen)": 9120}
    assert all(len(v) == len(grouped.intervals) for g in grouped.groups for v in g.series.values())
    assert sum(g.totals["sum(quantity)"] for g in grouped.groups) == 9161
    by_project = decode("stats-v2-project.json", UsageStats)
    assert by_project.intervals == [] and by_project.start == "2025-12-29T00:00:00Z"
    assert [(g.by["project"], g.totals["sum(quantity)"], g.series) for g in by_project.groups] == [
        (4508812, 9161, {}),
        (4508813, 17, {}),
    ]


# --- error bodies ---------------------------------------------------------------------------


def test_error_bodies_in_every_shape() -> None:
    detail, data = parse_error_body(raw("error-bare-string.json"))
    assert detail == data == "Invalid project slugs: ghost-project"
    detail, data = parse_error_body(raw("error-detail-string.json"))
    assert isinstance(detail, str) and detail.startswith("Query timeout.")
    assert data == body("error-detail-string.json")
    detail, data = parse_error_body(raw("error-detail-object.json"))
    assert detail == ErrorDetail(
        code="2fa-required",
        message="Organization requires two-factor authentication to be enabled",
        extra={"orgSlug": "fernhill", "redirectUrl": "/settings/account/security/"},
    )
    detail, data = parse_error_body(raw("error-field-errors.json"))
    assert detail is None
    assert data["slug"] == [
        "Ensure this field has no more than 50 characters.",
        "Enter a valid slug.",
    ]


# --- polymorphic fields -------------------------------------------------------------------------


def minimal_event(**fields: Any) -> dict[str, Any]:
    return {"id": "a" * 32, "type": "error", **fields}


def decode_obj(value: Any, type_: Any) -> Any:
    return msgspec.json.decode(msgspec.json.encode(value), type=type_)


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


# --- large payloads, built in code ----------------------------------------------------------------


def large_event(frames: int, crumbs: int = 100) -> dict[str, Any]:
    """The KeyError sample scaled up: chained exceptions of 50 frames, each frame with vars."""
    payload = body("event-python-keyerror-breadcrumbs.json")
    template_frames = payload["entries"][1]["data"]["values"][0]["stacktrace"]["frames"]
    template_crumbs = payload["entries"][2]["data"]["values"]
    values = []
    for chain in range(0, frames, 50):
        chunk = []
        for index in range(chain, min(chain + 50, frames)):
            frame = copy.deepcopy(template_frames[index % len(template_frames)])
            frame["function"] = f"step_{index}"
            frame["lineNo"] = index + 1
            frame["vars"] = {
                "index": index,
                "payload": {"rows": list(range(index % 7)), "label": f"row {index} " * 20},
                "flags": [index % 2 == 0, None],
            }
            chunk.append(frame)
        values.append(
            {
                "type": "KeyError",
                "value": str(chain),
                "stacktrace": {"frames": chunk},
                "mechanism": None,
            }
        )
    payload["entries"][1]["data"]["values"] = values
    payload["entries"][2]["data"]["values"] = [
        dict(template_crumbs[n % len(template_crumbs)], message=f"crumb {n}") for n in range(crumbs)
    ]
    return payload


@pytest.mark.parametrize(("frames", "at_least"), [(95, 100_000), (1200, 1_000_000)])
def test_large_events_decode_lazily_and_completely(frames: int, at_least: int) -> None:
    encoded = msgspec.json.encode(large_event(frames))
    assert len(encoded) >= at_least
    decoded = msgspec.json.decode(encoded, type=Event)
    assert decoded.entry_types == ["message", "exception", "breadcrumbs"]
    assert all(isinstance(head.data, msgspec.Raw) for head in decoded.entries)
    exception = decoded.exception
    assert exception is not None and len(exception.values) == -(-frames // 50)
    all_frames = [f for v in exception.values for f in v.stacktrace.frames]  # type: ignore[union-attr]
    assert [f.function for f in all_frames] == [f"step_{n}" for n in range(frames)]
    assert all_frames[-1].vars is not None and all_frames[-1].vars["index"] == frames - 1
    crumbs = decoded.breadcrumbs
    assert crumbs is not None and [c.message for c in crumbs.values] == [
        f"crumb {n}" for n in range(100)
    ]
    assert msgspec.json.decode(msgspec.json.encode(decoded), type=Event) == decoded


def test_a_page_of_one_hundred_issues() -> None:
    template = body("issues-list.json")
    page = [dict(template[n % 2], id=str(8_000_000 + n), shortId=f"LEDGER-{n}") for n in range(100)]
    issues = msgspec.json.decode(msgspec.json.encode(page), type=list[Issue])
    assert [i.id for i in issues] == [str(8_000_000 + n) for n in range(100)]
    assert all(i.stats is not None and len(i.stats["24h"]) == 24 for i in issues)
    raw_items = msgspec.json.decode(msgspec.json.encode(page), type=list[msgspec.Raw])
    assert [msgspec.json.decode(item, type=Issue) for item in raw_items] == issues


# --- the fake server's payloads fit the same models ------------------------------------------------


def test_every_kind_of_fake_server_payload_decodes() -> None:
    data = Dataset(5, SCALES["small"], datetime(2026, 6, 1, 12, tzinfo=UTC))
    org = data.orgs[0]
    assert (
        msgspec.json.decode(msgspec.json.encode(data.org_body(org)), type=Organization).slug
        == org.slug
    )
    project = org.projects[0]
    decoded_project = decode_obj(data.project_body(project), Project)
    assert decoded_project.slug == project.slug
    issue = project.issues[0]
    for detail in (False, True):
        decoded_issue = decode_obj(data.issue_body(issue, detail=detail), Issue)
        assert decoded_issue.id == issue.id and decoded_issue.stats is not None
    seen: dict[str, list[str]] = {}
    for record in (e for p in org.projects for e in p.events):
        if record.kind in seen:
            continue
        decoded = msgspec.json.decode(data.event_bytes(record), type=Event)
        seen[record.kind] = [
            type(e).__name__ if not isinstance(e, UnknownEntry) else f"?{e.type}"
            for e in decoded.get_entries()
        ]
        summary = decode_obj(data.summary_body(record), EventSummary)
        assert summary.id == decoded.id == record.event_id
    assert seen == {
        "error": ["ExceptionEntry", "BreadcrumbsEntry", "RequestEntry"],
        "default": ["MessageEntry"],
        "csp": ["MessageEntry", "CspEntry", "RequestEntry"],
        "transaction": ["SpansEntry", "RequestEntry"],
        "future_ai_agent_trace": [
            "ExceptionEntry",
            "BreadcrumbsEntry",
            "RequestEntry",
            "?future_entry",
        ],
    }
