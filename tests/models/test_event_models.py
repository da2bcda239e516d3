"""Full events of every era and platform, with their typed entries."""

from __future__ import annotations

import json
from datetime import datetime

import msgspec
from model_helpers import UTC, body, decode, decode_obj, event, minimal_event

from sentry_async.models import (
    CspEntry,
    DebugMetaEntry,
    Event,
    EventIdResolution,
    EventSummary,
    EventTag,
    EventUser,
    MessageEntry,
    Release,
    RequestEntry,
    SpansEntry,
    TemplateEntry,
    ThreadsEntry,
    UnknownEntry,
)

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


def test_exception_keeps_the_value_before_processing() -> None:
    """SingleException.get_api_context sends ``rawValue``, ``rawType`` and ``rawModule``
    beside ``rawStacktrace``: the exception as the SDK sent it, before source maps or
    ProGuard rewrote it."""
    value = {
        "type": "TypeError",
        "value": "Cannot read properties of undefined (reading 'total')",
        "module": "app/cart",
        "rawValue": "e is undefined",
        "rawType": "t",
        "rawModule": "assets/index-4f1c",
        "threadId": None,
        "mechanism": None,
        "stacktrace": None,
        "rawStacktrace": None,
    }
    data = {"values": [value], "hasSystemFrames": False, "excOmitted": None}
    decoded = decode_obj(minimal_event(entries=[{"type": "exception", "data": data}]), Event)
    assert decoded.exception is not None
    (got,) = decoded.exception.values
    assert (got.raw_value, got.raw_type, got.raw_module) == (
        "e is undefined",
        "t",
        "assets/index-4f1c",
    )
    assert json.loads(msgspec.json.encode(got)) == {
        key: item for key, item in value.items() if item is not None
    }


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


def test_a_full_payload_read_as_a_summary_keeps_its_type() -> None:
    """An issue's events filtered by an event id answer the full event (a direct hit), whose
    type is ``type``: the summary reads it there when ``event.type`` is absent."""
    payload = body("event-python-keyerror-breadcrumbs.json")
    summary = msgspec.json.decode(json.dumps(payload), type=EventSummary)
    assert (summary.id, summary.event_type, summary.title) == (
        payload["id"],
        "error",
        "KeyError: 23059",
    )
    assert "type" not in json.loads(msgspec.json.encode(summary))
    both = msgspec.json.decode(b'{"id": "e", "event.type": "csp", "type": "error"}', type=EventSummary)
    assert both.event_type == "csp"
