"""Event payloads by entry type, as the fake serves them from ``(seed, index)``.

Each builder makes one entry (``exception``, ``breadcrumbs``, ``request``, ``spans``, ...);
``event_payload`` puts the common fields and the entries of an event's kind together. The
order of ``rng`` draws is part of the data: builders are called in a fixed order.
"""

from __future__ import annotations

import hashlib
import random
from typing import Any

from ._records import EventRecord, _iso, _iso_seconds


def event_payload(
    event: EventRecord, rng: random.Random, frames_count: int, title: str
) -> dict[str, Any]:
    """A full event as ``GET .../events/{id}/`` answers it, entries by the event's kind."""
    issue, made_in = event.issue, event.made_in
    project = event.project
    common: dict[str, Any] = {
        "id": event.event_id,
        "groupID": issue.id if issue else None,
        "eventID": event.event_id,
        "projectID": project.id,
        "size": 1000 + frames_count * 600,
        "type": event.kind,
        "platform": project.platform,
        "title": title,
        "message": "",
        "location": "app/handlers.py",
        "dateCreated": _iso_seconds(event.timestamp),
        "dateReceived": _iso(event.timestamp + 0.4),
        "dist": None,
        "user": {
            "id": str(event.user),
            "email": f"user{event.user}@example.com",
            "username": f"user{event.user}",
            "ip_address": "10.0.0.1",
            "name": None,
            "geo": {"country_code": "DE", "city": "Berlin", "region": "Germany"},
            "data": None,
        },
        "tags": sorted(
            [
                {"key": "environment", "value": event.environment},
                {"key": "level", "value": made_in.level if made_in else "info"},
                {"key": "release", "value": f"{project.slug}@1.4.{event.index % 5}"},
                {"key": "server_name", "value": f"web-{event.index % 7}"},
            ],
            key=lambda t: t["key"],
        ),
        "contexts": {
            "os": {"name": "Linux", "version": "6.1", "type": "os"},
            "runtime": {"name": "CPython", "version": "3.12.1", "type": "runtime"},
            "trace": {
                "trace_id": hashlib.md5(event.event_id.encode()).hexdigest(),
                "span_id": event.event_id[:16],
                "op": "http.server",
                "type": "trace",
            },
        },
        "context": {"celery-job": {"args": [event.index, "x"], "kwargs": {}}, "retries": 0},
        "sdk": {"name": f"sentry.{project.platform}", "version": "2.19.0"},
        "packages": {"aiohttp": "3.9.5", "msgspec": "0.18.6"},
        "errors": [],
        "occurrence": None,
        "release": None
        if event.index % 3
        else {
            "version": f"{project.slug}@1.4.{event.index % 5}",
            "id": 40 + event.index % 5,
            "status": "open",
            "projects": [{"id": int(project.id), "slug": project.slug}],
        },
        "userReport": None,
        "sdkUpdates": [],
        "resolvedWith": [None],
        "nextEventID": None,
        "previousEventID": None,
        "_meta": {"entries": {"0": {"data": {"values": {"0": {"value": {"": {"len": 130}}}}}}}},
    }
    if event.kind == "transaction":
        start = event.timestamp - 0.8
        common.update(
            {
                "title": title,
                "startTimestamp": start,
                "endTimestamp": event.timestamp,
                "measurements": {"lcp": {"value": 812.5, "unit": "millisecond"}},
                "breakdowns": None,
                "entries": [
                    spans_entry(event, start, frames_count),
                    request_entry(event, rng),
                ],
            }
        )
        return common
    common.update(
        {
            "culprit": "app.handlers in handle",
            "fingerprints": ["{{ default }}"],
            "groupingConfig": {
                "id": "newstyle:2023-01-11",
                "enhancements": "eJybzDRxY3J-bk5mXrqVTV5",
            },
            "metadata": {
                "type": made_in.exc_type if made_in else "Error",
                "value": "failure",
                "filename": "app/handlers.py",
                "function": "handle",
            },
            "crashFile": None,
        }
    )
    if event.kind == "csp":
        common["entries"] = [
            {"type": "message", "data": {"formatted": "Blocked 'script' from 'evil.example'"}},
            csp_entry(),
            request_entry(event, rng),
        ]
        common["sdk"] = None
        return common
    if event.kind == "default":
        common["message"] = f"Job {event.index} took too long"
        common["entries"] = [
            {
                "type": "message",
                "data": {
                    "formatted": common["message"],
                    "message": "Job %s took too long",
                    "params": [event.index],
                },
            }
        ]
        return common
    entries = [
        exception_entry(event, rng, frames_count),
        breadcrumbs_entry(event, frames_count),
        request_entry(event, rng),
    ]
    if event.kind == "future_ai_agent_trace":
        entries.append({"type": "future_entry", "data": {"agent": "planner", "steps": [1, 2, 3]}})
    common["entries"] = entries
    return common


def exception_entry(event: EventRecord, rng: random.Random, frames: int) -> dict[str, Any]:
    return {
        "type": "exception",
        "data": {
            "values": [_exception(event, rng, frames)],
            "hasSystemFrames": True,
            "excOmitted": None,
        },
    }


def breadcrumbs_entry(event: EventRecord, frames: int) -> dict[str, Any]:
    return {
        "type": "breadcrumbs",
        "data": {
            "values": [
                {
                    "type": "default",
                    "category": "query",
                    "level": "info",
                    "timestamp": _iso(event.timestamp - 5 + b * 0.01),
                    "message": f"SELECT id FROM users WHERE id = {b}",
                    "data": None,
                    "event_id": None,
                }
                for b in range(min(100, 10 + frames))
            ]
        },
    }


def request_entry(event: EventRecord, rng: random.Random) -> dict[str, Any]:
    return {
        "type": "request",
        "data": {
            "url": f"https://app.example/api/items/{event.index % 17}",
            "method": "GET",
            "query": [["page", str(rng.randrange(9))], ["q", "a+b"]],
            "fragment": None,
            "data": None,
            "headers": [["Accept", "application/json"], ["User-Agent", "curl/8.0"]],
            "cookies": [],
            "env": {"SERVER_NAME": "web-1"},
            "inferredContentType": None,
            "apiTarget": None,
        },
    }


def spans_entry(event: EventRecord, start: float, frames: int) -> dict[str, Any]:
    return {
        "type": "spans",
        "data": [
            {
                "span_id": f"{event.event_id[:12]}{s:04x}",
                "trace_id": event.event_id,
                "parent_span_id": event.event_id[:16],
                "op": "db.sql.query",
                "description": f"SELECT * FROM items WHERE id = {s}",
                "status": "ok",
                "start_timestamp": start + s * 0.01,
                "timestamp": start + s * 0.01 + 0.005,
                "data": {"db.system": "postgresql"},
            }
            for s in range(frames * 3)
        ],
    }


def csp_entry() -> dict[str, Any]:
    return {
        "type": "csp",
        "data": {
            "effective_directive": "script-src",
            "blocked_uri": "https://evil.example/x.js",
            "document_uri": "https://app.example/",
            "line_number": 12,
        },
    }


def _exception(event: EventRecord, rng: random.Random, frames: int) -> dict[str, Any]:
    issue = event.made_in
    pad = 1800 if frames >= 400 else 1500 if frames >= 40 else 120
    return {
        "type": issue.exc_type if issue else "Error",
        "value": "failure while handling request",
        "module": "app.handlers",
        "threadId": None,
        "mechanism": {"type": "generic", "handled": event.index % 2 == 0},
        "stacktrace": {
            "frames": [
                {
                    "filename": f"app/module_{f}.py",
                    "absPath": f"/srv/app/module_{f}.py",
                    "module": f"app.module_{f}",
                    "package": None,
                    "platform": None,
                    "instructionAddr": None,
                    "symbolAddr": None,
                    "function": f"step_{f}",
                    "rawFunction": None,
                    "symbol": None,
                    "context": [
                        [10 + f + c, f"    value = compute_{c}(payload)  # line {c}"]
                        for c in range(7)
                    ],
                    "lineNo": 13 + f,
                    "colNo": None,
                    "inApp": f % 3 != 0,
                    "trust": None,
                    "errors": None,
                    "lock": None,
                    "vars": {
                        "payload": {
                            "id": event.index,
                            "items": list(range(f % 6)),
                            "note": "x" * (pad + rng.randrange(40)),
                        },
                        "count": f,
                        "ratio": f / 7,
                        "enabled": f % 2 == 0,
                        "missing": None,
                        "'self'": f"<Handler at 0x{event.index:08x}>",
                    },
                }
                for f in range(frames)
            ],
            "framesOmitted": None,
            "registers": None,
            "hasSystemFrames": True,
        },
        "rawStacktrace": None,
        "rawValue": None,
        "rawModule": None,
        "rawType": None,
    }
