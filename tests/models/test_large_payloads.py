"""Large payloads built in code, and the fake server's payloads against the models."""

from __future__ import annotations

import copy
from datetime import datetime
from typing import Any

import msgspec
import pytest
from model_helpers import UTC, body, decode_obj

from sentry_async.models import Event, EventSummary, Issue, Organization, Project, UnknownEntry
from sentry_async.testing import SCALES, Dataset

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
