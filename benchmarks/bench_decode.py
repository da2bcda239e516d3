"""Decoding: sentry_async's msgspec models against json, orjson and pydantic.

Four payloads, built here from a seeded generator in the shapes sentry.io sends (see
``tests/payloads/`` for small real-shaped samples):

* ``event 5 KB``, ``event 100 KB``, ``event 1 MB``: full error events (Python): an
  ``exception`` entry whose frames carry context lines and ``vars`` (chained exceptions
  past 50 frames), up to 100 breadcrumbs, a ``request`` entry, contexts, tags, the legacy
  ``context`` ("extra") and ``_meta`` truncation notes;
* ``issue page``: one page of 100 issues as the issues list sends it (stats, lifetime,
  metadata, inbox, derived data ...).

Per payload, every variant decodes the same bytes; rounds are interleaved (A, B, C, A, B,
C ...) after a discarded warm-up round, each round times a batch of calls with the
garbage collector paused (as ``timeit`` does), and the table shows the median time per
decode and its ratio to ``json.loads`` (higher is faster):

* ``json.loads``, ``orjson.loads``, ``msgspec untyped`` (``msgspec.json.decode`` into
  dicts and lists);
* ``sentry_async typed``: ``Event`` / ``list[Issue]``, what ``client.events.get()`` and
  ``client.issues.list()`` decode. An event's entries and an issue's ``stats`` stay
  bytes until read;
* ``typed + entries`` (events only): the same plus ``event.get_entries()``, i.e. every
  frame, crumb and request decoded into structs: the cost once everything is read;
* ``sentry_async raw``: ``.raw()`` pagination decodes a page into ``list[msgspec.Raw]``;
  for a single event the raw path (``get_raw``) does no decoding at all, so its row is
  ``msgspec.Raw`` (one validating scan), which is what each event of a ``.raw()``
  page of full events costs;
* ``pydantic v2``: ``model_validate_json`` into pydantic models mirroring the fields the
  typed models decode (entry data and ``_meta`` as ``Any``: pydantic has no lazy bytes).
"""

from __future__ import annotations

import argparse
import gc
import importlib
import json
import random
import sys
import time
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta, timezone
from typing import Any

import msgspec
from _server import goal, median, publish, table

from sentry_async.models import Event, Issue


def _optional(name: str) -> Any:
    """A module of the ``bench`` extra, or ``None``: its rows are skipped without it."""
    try:
        return importlib.import_module(name)
    except ImportError:
        return None


orjson = _optional("orjson")
pydantic = _optional("pydantic")

NOW = datetime(2026, 3, 2, 14, 30, tzinfo=timezone.utc)
EVENT_TARGETS = {"event 5 KB": 5_000, "event 100 KB": 100_000, "event 1 MB": 1_000_000}
PAGE_NAME = "issue page"
PAGE_ISSUES = 100
FRAMES_PER_EXCEPTION = 50
GOAL_TYPED = 2.5
GOAL_RAW = 10.0
GOAL_ENTRIES = {"event 100 KB": 2.5, "event 1 MB": 2.0}
"""The typed ``Event`` with every entry decoded too, against ``json.loads``."""

Decode = Callable[[bytes], Any]

# --- payloads ------------------------------------------------------------------------

_MODULES = (
    "billing.invoices",
    "billing.tasks",
    "accounts.views",
    "accounts.serializers",
    "inventory.sync",
    "django.core.handlers.base",
    "django.db.models.query",
    "celery.app.trace",
)
_WORDS = ("order", "customer", "invoice", "warehouse", "ledger", "coupon", "sku", "tenant")
_EXCEPTIONS = (
    ("KeyError", "'tenant_id'"),
    ("ValueError", "invalid literal for int() with base 10: 'n/a'"),
    ("IntegrityError", 'duplicate key value violates unique constraint "invoice_number_key"'),
    ("TimeoutError", "upstream inventory service did not answer within 30s"),
)


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _hex(rng: random.Random, length: int) -> str:
    return "".join(rng.choice("0123456789abcdef") for _ in range(length))


def _var_value(rng: random.Random, depth: int = 0) -> Any:
    """A frame variable as Sentry stores it: reprs, small containers, numbers, nulls."""
    kind = rng.randrange(8 if depth < 2 else 5)
    word = rng.choice(_WORDS)
    if kind == 0:
        return f"<{word.title()}: {word}-{rng.randrange(10**6)}>"
    if kind == 1:
        return rng.randrange(-5, 10**6)
    if kind == 2:
        return round(rng.random() * 1000, 3)
    if kind == 3:
        return rng.choice((True, False, None))
    if kind == 4:
        return f"'{word}_{rng.randrange(1000)}'" + (" ..." if rng.random() < 0.1 else "")
    if kind == 5:
        return [_var_value(rng, depth + 1) for _ in range(rng.randrange(1, 6))]
    return {
        f"'{rng.choice(_WORDS)}'": _var_value(rng, depth + 1) for _ in range(rng.randrange(2, 6))
    }


def _frame(rng: random.Random, index: int) -> dict[str, Any]:
    module = rng.choice(_MODULES)
    path = module.replace(".", "/") + ".py"
    line = rng.randrange(20, 900)
    in_app = not module.startswith(("django", "celery"))
    return {
        "filename": path,
        "absPath": f"/srv/app/{path}",
        "module": module,
        "package": None,
        "platform": None,
        "instructionAddr": None,
        "symbolAddr": None,
        "function": f"{rng.choice(_WORDS)}_{rng.choice(('load', 'save', 'apply', 'run'))}",
        "rawFunction": None,
        "symbol": None,
        "context": [
            [
                line + offset,
                "        " + " ".join(rng.choice(_WORDS) for _ in range(rng.randrange(2, 9))),
            ]
            for offset in range(-5, 6)
        ],
        "lineNo": line,
        "colNo": None,
        "inApp": in_app,
        "trust": None,
        "errors": None,
        "lock": None,
        "sourceLink": None,
        "vars": {
            f"'{rng.choice(_WORDS)}_{k}'" if index % 2 else f"{rng.choice(_WORDS)}_{k}": _var_value(
                rng
            )
            for k in range(rng.randrange(4, 12))
        },
    }


def _breadcrumb(rng: random.Random, moment: datetime) -> dict[str, Any]:
    kind = rng.randrange(3)
    base: dict[str, Any] = {"timestamp": _iso(moment), "level": "info", "event_id": None}
    if kind == 0:
        status = rng.choice((200, 200, 201, 404, 502))
        base.update(
            type="http",
            category="httplib",
            message=None,
            data={
                "http.method": rng.choice(("GET", "POST")),
                "http.query": "",
                "http.fragment": "",
                "http.response.status_code": status,
                "reason": "OK" if status < 300 else "Error",
                "url": f"https://inventory.internal/api/v2/{rng.choice(_WORDS)}s/{rng.randrange(9999)}",
            },
        )
    elif kind == 1:
        table_name = rng.choice(_WORDS)
        base.update(
            type="default",
            category="query",
            message=f'SELECT "{table_name}"."id" FROM "{table_name}" WHERE "id" = %s',
            data={"db.params": [rng.randrange(10**5)], "db.executemany": False},
            messageFormat="sql",
            messageRaw=f'SELECT "{table_name}"."id" FROM "{table_name}" WHERE "id" = %s',
        )
    else:
        base.update(
            type="log",
            category=rng.choice(("billing", "celery.worker", "accounts")),
            message=f"processed {rng.randrange(500)} {rng.choice(_WORDS)}s in {rng.random():.3f}s",
            data={"asctime": moment.strftime("%Y-%m-%d %H:%M:%S,%f")[:-3]},
        )
    return base


def event_body(frames: int, *, seed: int = 7) -> dict[str, Any]:
    """A Python error event with ``frames`` frames (chained past 50) and up to 100 crumbs."""
    rng = random.Random(f"{seed}:{frames}")
    event_id = _hex(rng, 32)
    moment = NOW - timedelta(minutes=rng.randrange(10_000))
    exc_type, exc_value = rng.choice(_EXCEPTIONS)
    values = []
    remaining = frames
    chain = 0
    while remaining > 0:
        count = min(FRAMES_PER_EXCEPTION, remaining)
        remaining -= count
        values.append(
            {
                "type": exc_type if remaining == 0 else "OperationalError",
                "value": exc_value if remaining == 0 else f"connection lost (chain {chain})",
                "module": None,
                "threadId": None,
                "mechanism": {"type": "celery", "handled": False},
                "stacktrace": {
                    "frames": [_frame(rng, index) for index in range(count)],
                    "framesOmitted": None,
                    "registers": None,
                    "hasSystemFrames": True,
                },
                "rawStacktrace": None,
            }
        )
        chain += 1
    crumbs = [
        _breadcrumb(rng, moment - timedelta(seconds=30) + timedelta(milliseconds=250 * b))
        for b in range(min(100, 4 * frames))
    ]
    trimmed = {
        str(f): {"vars": {"": {"len": 40}, "payload": {"": {"rem": [["!limit", "x", 509, 512]]}}}}
        for f in range(0, frames, 3)
    }
    return {
        "id": event_id,
        "groupID": str(5_100_000_000 + rng.randrange(10**6)),
        "eventID": event_id,
        "projectID": "4507771",
        "size": 900 * frames + 4000,
        "entries": [
            {
                "type": "exception",
                "data": {"values": values, "hasSystemFrames": True, "excOmitted": None},
            },
            {"type": "breadcrumbs", "data": {"values": crumbs}},
            {
                "type": "request",
                "data": {
                    "apiTarget": None,
                    "method": "POST",
                    "url": "https://shop.example.net/api/checkout/",
                    "query": [["cart", str(rng.randrange(10**6))], ["step", "pay"]],
                    "fragment": None,
                    "data": {"items": [rng.randrange(100) for _ in range(5)], "coupon": None},
                    "headers": [
                        ["Accept", "application/json"],
                        ["Content-Type", "application/json"],
                        ["User-Agent", "Mozilla/5.0 (X11; Linux x86_64) Firefox/128.0"],
                        ["X-Request-Id", _hex(rng, 16)],
                    ],
                    "cookies": [["sessionid", "[Filtered]"]],
                    "env": {"SERVER_NAME": "web-3", "SERVER_PORT": "8000"},
                    "inferredContentType": "application/json",
                },
            },
        ],
        "dist": None,
        "message": "",
        "title": f"{exc_type}: {exc_value}",
        "location": "billing/invoices.py",
        "user": {
            "id": str(rng.randrange(10**6)),
            "email": None,
            "username": None,
            "ip_address": "198.51.100.23",
            "name": None,
            "geo": {"country_code": "NL", "city": "Utrecht", "region": "Netherlands"},
            "data": None,
        },
        "contexts": {
            "runtime": {"name": "CPython", "version": "3.12.4", "type": "runtime"},
            "os": {"name": "Linux", "version": "6.6.12", "type": "os"},
            "trace": {
                "trace_id": _hex(rng, 32),
                "span_id": _hex(rng, 16),
                "op": "queue.task.celery",
                "status": "internal_error",
                "type": "trace",
            },
            "celery": {"task": "billing.tasks.issue_invoice", "retries": 2},
        },
        "sdk": {"name": "sentry.python.django", "version": "2.14.0"},
        "context": {
            "celery-job": {
                "args": [rng.randrange(10**6)],
                "kwargs": {"force": False},
                "task_name": "billing.tasks.issue_invoice",
            },
            "sys.argv": ["celery", "-A", "shop", "worker"],
        },
        "packages": {"django": "5.0.7", "celery": "5.4.0", "psycopg": "3.2.1"},
        "type": "error",
        "metadata": {
            "type": exc_type,
            "value": exc_value,
            "filename": "billing/invoices.py",
            "function": "invoice_apply",
            "in_app_frame_mix": "mixed",
            "display_title_with_tree_label": False,
        },
        "tags": [
            {"key": "environment", "value": "production"},
            {"key": "handled", "value": "no"},
            {"key": "level", "value": "error"},
            {"key": "mechanism", "value": "celery"},
            {"key": "release", "value": "shop@2026.3.1"},
            {"key": "runtime", "value": "CPython 3.12.4"},
            {"key": "server_name", "value": "worker-billing-5c9d"},
            {"key": "transaction", "value": "billing.tasks.issue_invoice"},
        ],
        "platform": "python",
        "dateReceived": _iso(moment + timedelta(milliseconds=412)),
        "errors": [],
        "occurrence": None,
        "_meta": {
            "entries": {"0": {"data": {"values": {"0": {"stacktrace": {"frames": trimmed}}}}}}
        },
        "crashFile": None,
        "culprit": "billing.tasks.issue_invoice",
        "dateCreated": moment.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "fingerprints": [_hex(rng, 32)],
        "groupingConfig": {
            "enhancements": "KLUv_SAd6QAAkwORuGFsbC1wbGF0",
            "id": "newstyle:2023-01-11",
        },
        "release": {"version": "shop@2026.3.1"},
        "userReport": None,
        "sdkUpdates": [],
        "resolvedWith": [],
        "nextEventID": None,
        "previousEventID": _hex(rng, 32),
    }


def event_payload(target: int) -> bytes:
    """The smallest generated event at least ``target`` bytes long (minified JSON)."""
    low, high = 1, 1
    while len(msgspec.json.encode(event_body(high))) < target:
        low, high = high, high * 2
    while low < high:
        mid = (low + high) // 2
        if len(msgspec.json.encode(event_body(mid))) < target:
            low = mid + 1
        else:
            high = mid
    return msgspec.json.encode(event_body(high))


def issue_body(rng: random.Random, index: int) -> dict[str, Any]:
    """One issue in the issues list's current shape."""
    exc_type, exc_value = rng.choice(_EXCEPTIONS)
    first = NOW - timedelta(days=rng.randrange(1, 80), seconds=rng.randrange(86400))
    last = NOW - timedelta(seconds=rng.randrange(86400))
    hour = int(NOW.timestamp()) // 3600 * 3600
    count = rng.randrange(1, 50_000)
    issue_id = str(6_200_000_000 + index * 7919)
    assigned = {"type": "team", "id": "42", "name": "billing"} if index % 5 == 0 else None
    return {
        "annotations": [],
        "assignedTo": assigned,
        "count": str(count),
        "culprit": f"{rng.choice(_MODULES)} in {rng.choice(_WORDS)}_apply",
        "firstSeen": _iso(first),
        "filtered": None,
        "inbox": {"reason": 2, "reason_details": None, "date_added": _iso(last)}
        if index % 3 == 0
        else None,
        "hasSeen": index % 2 == 0,
        "id": issue_id,
        "isBookmarked": False,
        "isPublic": False,
        "isSubscribed": index % 4 == 0,
        "lastSeen": _iso(last),
        "level": rng.choice(("error", "error", "warning", "fatal")),
        "logger": None,
        "metadata": {
            "type": exc_type,
            "value": exc_value,
            "filename": "billing/invoices.py",
            "function": "invoice_apply",
            "in_app_frame_mix": "mixed",
            "sdk": {"name": "sentry.python.django", "name_normalized": "sentry.python"},
            "severity": round(rng.random(), 3),
            "severity_reason": "ml",
            "initial_priority": 75,
            "title": None,
        },
        "numComments": rng.randrange(3),
        "permalink": f"https://acme-shop.sentry.io/issues/{issue_id}/",
        "project": {
            "id": "4507771",
            "name": "shop-backend",
            "slug": "shop-backend",
            "platform": "python-django",
        },
        "shareId": None,
        "shortId": f"SHOP-BACKEND-{index + 100:X}",
        "stats": {"24h": [[hour - 3600 * (23 - h), rng.randrange(0, 400)] for h in range(24)]},
        "priority": rng.choice(("high", "medium", "low")),
        "priorityLockedAt": None,
        "owners": None,
        "platform": "python",
        "lifetime": {
            "count": str(count),
            "userCount": rng.randrange(100),
            "firstSeen": _iso(first),
            "lastSeen": _iso(last),
        },
        "seerAutofixLastTriggered": None,
        "seerExplorerAutofixLastTriggered": None,
        "seerFixabilityScore": round(rng.random(), 4),
        "status": "unresolved",
        "substatus": rng.choice(("ongoing", "new", "escalating", "regressed")),
        "statusDetails": {},
        "subscriptionDetails": None,
        "title": f"{exc_type}: {exc_value}",
        "type": "error",
        "userCount": rng.randrange(100),
        "integrationIssues": [],
        "sentryAppIssues": [],
        "isUnhandled": index % 3 == 0,
        "issueCategory": "error",
        "issueType": "error",
        "sessionCount": None,
        "latestEventHasAttachments": False,
        "matchingEventId": None,
        "matchingEventEnvironment": None,
    }


def issue_page(count: int = PAGE_ISSUES) -> bytes:
    rng = random.Random(11)
    return msgspec.json.encode([issue_body(rng, index) for index in range(count)])


# --- pydantic mirrors ----------------------------------------------------------------


def pydantic_decoders() -> tuple[Decode, Decode] | None:
    """Decoders of an event and of an issue page into pydantic v2 models that mirror the
    typed models' fields and wire names."""
    if pydantic is None:
        return None
    from pydantic import BaseModel, ConfigDict, Field, TypeAdapter
    from pydantic.alias_generators import to_camel

    class Wire(BaseModel):
        model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="ignore")

    class Tag(Wire):
        key: str
        value: str | None = None
        query: str | None = None

    class User(Wire):
        id: str | None = None
        email: str | None = None
        username: str | None = None
        ip_address: str | None = Field(default=None, alias="ip_address")
        name: str | None = None
        geo: dict[str, Any] | None = None
        data: dict[str, Any] | None = None

    class Sdk(Wire):
        name: str | None = None
        version: str | None = None

    class EventError(Wire):
        type: str | None = None
        message: str | None = None
        data: dict[str, Any] | None = None

    class Occurrence(Wire):
        id: str | None = None
        project_id: int | None = None
        event_id: str | None = None
        fingerprint: list[str] = []
        issue_title: str | None = None
        subtitle: str | None = None
        resource_id: str | None = None
        evidence_data: dict[str, Any] = {}
        evidence_display: list[dict[str, Any]] = []
        type: int | None = None
        detection_time: float | None = None
        level: str | None = None
        culprit: str | None = None
        priority: int | None = None
        assignee: Any = None

    class Release(Wire):
        version: str | None = None
        id: int | None = None
        short_version: str | None = None
        status: str | None = None
        ref: str | None = None
        url: str | None = None
        date_created: datetime | None = None
        date_released: datetime | None = None
        first_event: datetime | None = None
        last_event: datetime | None = None
        new_groups: int | None = None
        owner: Any = None
        authors: list[Any] = []
        projects: list[dict[str, Any]] = []
        version_info: dict[str, Any] | None = None
        last_commit: dict[str, Any] | None = None
        last_deploy: dict[str, Any] | None = None
        user_agent: str | None = None
        current_project_meta: dict[str, Any] | None = None
        data: dict[str, Any] | None = None

    class EntryHead(BaseModel):
        type: str = ""
        data: Any = None

    class Formatted(Wire):
        format: str | None = None
        content: str | None = None

    class PydanticEvent(Wire):
        id: str
        event_id: str | None = Field(default=None, alias="eventID")
        group_id: str | None = Field(default=None, alias="groupID")
        project_id: str | None = Field(default=None, alias="projectID")
        project_slug: str | None = None
        type: str = "default"
        platform: str | None = None
        title: str | None = None
        message: str | None = None
        culprit: str | None = None
        location: str | None = None
        date_created: datetime | None = None
        date_received: datetime | None = None
        datetime_: str | None = Field(default=None, alias="datetime")
        size: int | None = None
        tags: list[Tag] = []
        user: User | None = None
        contexts: dict[str, Any] = {}
        context: Any = None
        sdk: Sdk | None = None
        packages: dict[str, Any] | None = None
        metadata: dict[str, Any] = {}
        errors: list[EventError] = []
        fingerprints: list[str] = []
        grouping_config: dict[str, Any] | None = None
        occurrence: Occurrence | None = None
        release: Release | None = None
        user_report: dict[str, Any] | None = None
        sdk_updates: list[dict[str, Any]] = []
        resolved_with: list[str | None] = []
        next_event_id: str | None = Field(default=None, alias="nextEventID")
        previous_event_id: str | None = Field(default=None, alias="previousEventID")
        crash_file: Any = None
        dist: str | None = None
        start_timestamp: float | None = None
        end_timestamp: float | None = None
        measurements: dict[str, Any] | None = None
        breakdowns: dict[str, Any] | None = None
        meta: Any = Field(default=None, alias="_meta")
        entries: list[EntryHead] = []
        formatted: Formatted | None = None

    class Project(Wire):
        id: str | None = None
        name: str | None = None
        slug: str | None = None
        platform: str | None = None

    class Assignee(Wire):
        type: str | None = None
        id: str | None = None
        name: str | None = None
        email: str | None = None

    class TagSummary(Wire):
        key: str
        name: str | None = None
        total_values: int | None = None

    class PydanticIssue(Wire):
        id: str
        short_id: str | None = None
        title: str | None = None
        culprit: str | None = None
        permalink: str | None = None
        logger: str | None = None
        level: str | None = None
        status: str | None = None
        status_details: dict[str, Any] = {}
        substatus: str | None = None
        is_public: bool | None = None
        platform: str | None = None
        priority: str | None = None
        project: Project | None = None
        type: str | None = None
        issue_type: str | None = None
        issue_category: str | None = None
        metadata: dict[str, Any] = {}
        num_comments: int | None = None
        assigned_to: Assignee | None = None
        is_bookmarked: bool | None = None
        is_subscribed: bool | None = None
        subscription_details: dict[str, Any] | None = None
        has_seen: bool | None = None
        annotations: list[Any] = []
        is_unhandled: bool | None = None
        count: str | int | None = None
        user_count: int | None = None
        first_seen: datetime | None = None
        last_seen: datetime | None = None
        stats: dict[str, list[tuple[float, float]]] | None = None
        lifetime: dict[str, Any] | None = None
        filtered: dict[str, Any] | None = None
        inbox: Any = None
        owners: Any = None
        integration_issues: list[dict[str, Any]] | None = None
        sentry_app_issues: list[dict[str, Any]] | None = None
        latest_event_has_attachments: bool | None = None
        session_count: int | None = None
        forecast: dict[str, Any] | None = None
        priority_locked_at: datetime | None = None
        seer_fixability_score: float | None = None
        share_id: str | None = None
        matching_event_id: str | None = None
        matching_event_environment: str | None = None
        activity: list[dict[str, Any]] = []
        seen_by: list[dict[str, Any]] = []
        user_report_count: int | None = None
        participants: list[dict[str, Any]] = []
        first_release: dict[str, Any] | None = None
        last_release: dict[str, Any] | None = None
        tags: list[TagSummary] = []

    page = TypeAdapter(list[PydanticIssue])
    return PydanticEvent.model_validate_json, page.validate_json


# --- variants and timing -------------------------------------------------------------


def variants(kind: str) -> dict[str, Decode]:
    """Name -> decode function, for ``kind`` ``"event"`` or ``"page"``; json first."""
    out: dict[str, Decode] = {"json.loads": json.loads}
    if orjson is not None:
        out["orjson.loads"] = orjson.loads
    out["msgspec untyped"] = msgspec.json.Decoder().decode
    models = pydantic_decoders()
    if kind == "event":
        typed = msgspec.json.Decoder(Event).decode

        def typed_with_entries(body: bytes) -> Any:
            event = typed(body)
            event.get_entries()
            return event

        out["sentry_async typed"] = typed
        out["typed + entries"] = typed_with_entries
        out["sentry_async raw"] = msgspec.json.Decoder(msgspec.Raw).decode
        if models is not None:
            out["pydantic v2"] = models[0]
    else:
        out["sentry_async typed"] = msgspec.json.Decoder(list[Issue]).decode
        out["sentry_async raw"] = msgspec.json.Decoder(list[msgspec.Raw]).decode
        if models is not None:
            out["pydantic v2"] = models[1]
    return out


def check(kind: str, body: bytes, decoders: dict[str, Decode]) -> None:
    """Every variant must read the same payload before any of them is timed."""
    reference = json.loads(body)
    for name, decode in decoders.items():
        result = decode(body)
        if kind == "page":
            assert len(result) == len(reference), name
        elif isinstance(result, (dict, Event)) or hasattr(result, "model_dump"):
            ident = result["id"] if isinstance(result, dict) else result.id
            assert ident == reference["id"], name
        else:
            assert bytes(result) == body, name
    event = msgspec.json.decode(body, type=Event) if kind == "event" else None
    if event is not None:
        entries = event.get_entries()
        assert [type(e).__name__ for e in entries] == [
            "ExceptionEntry",
            "BreadcrumbsEntry",
            "RequestEntry",
        ], entries


def calibrate(decode: Decode, body: bytes, batch_s: float) -> int:
    """Calls per timed batch so that one batch lasts about ``batch_s`` seconds."""
    started = time.perf_counter()
    calls = 0
    while calls < 3 or time.perf_counter() - started < batch_s / 4:
        decode(body)
        calls += 1
    per_call = (time.perf_counter() - started) / calls
    return max(1, round(batch_s / per_call))


def time_batch(decode: Decode, body: bytes, calls: int) -> float:
    """Seconds per call over one batch, with the garbage collector paused."""
    gc.collect()
    gc.disable()
    try:
        started = time.perf_counter()
        for _ in range(calls):
            decode(body)
        return (time.perf_counter() - started) / calls
    finally:
        gc.enable()


def measure(name: str, kind: str, body: bytes, *, rounds: int, batch_s: float) -> dict[str, Any]:
    decoders = variants(kind)
    check(kind, body, decoders)
    calls = {label: calibrate(decode, body, batch_s) for label, decode in decoders.items()}
    samples: dict[str, list[float]] = {label: [] for label in decoders}
    for index in range(rounds + 1):
        for label, decode in decoders.items():
            seconds = time_batch(decode, body, calls[label])
            if index > 0:
                samples[label].append(seconds)
    baseline = median(samples["json.loads"])
    rows: dict[str, dict[str, Any]] = {}
    for label, values in samples.items():
        mid = median(values)
        rows[label] = {
            "us_per_decode": mid * 1e6,
            "mb_per_s": len(body) / mid / 1e6,
            "vs_json": baseline / mid,
            "spread": (max(values) - min(values)) / mid,
            "calls_per_round": calls[label],
            "rounds_us": [v * 1e6 for v in values],
        }
    return {"name": name, "kind": kind, "bytes": len(body), "variants": rows}


def goals(payloads: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    checks: list[dict[str, Any]] = []
    for name in ("event 100 KB", PAGE_NAME):
        if name in payloads:
            ratio = payloads[name]["variants"]["sentry_async typed"]["vs_json"]
            checks.append(goal(f"typed >= {GOAL_TYPED}x json.loads, {name}", ratio, GOAL_TYPED))
    for name, target in GOAL_ENTRIES.items():
        variants = payloads.get(name, {}).get("variants", {})
        if "typed + entries" in variants:
            ratio = variants["typed + entries"]["vs_json"]
            label = f"typed + entries >= {target:g}x json.loads, {name}"
            checks.append(goal(label, ratio, target))
    for name, result in payloads.items():
        ratio = result["variants"]["sentry_async raw"]["vs_json"]
        checks.append(goal(f"raw >= {GOAL_RAW:.0f}x json.loads, {name}", ratio, GOAL_RAW))
    return checks


def render(result: dict[str, Any]) -> str:
    text = ""
    for payload in result["payloads"].values():
        rows = [
            [label, row["us_per_decode"], row["mb_per_s"], row["vs_json"], row["spread"]]
            for label, row in payload["variants"].items()
        ]
        text += table(
            f"Decode {payload['name']} ({payload['bytes'] / 1000:,.1f} KB)",
            ["variant", "µs per decode", "MB/s", "vs json.loads", "spread"],
            rows,
        )
        text += "\n"
    text += "Goals (ratio = json.loads time / variant time, higher is faster):\n\n"
    for check in result["goals"]:
        mark = "met" if check["met"] else "**missed**"
        text += f"- {check['goal']}: {check['ratio']:.2f}x, {mark}\n"
    text += (
        f"\n{result['rounds']} interleaved rounds of ~{result['batch_ms']:.0f} ms batches "
        "per variant, medians; garbage collector paused while timing. For events, the raw "
        "row is one validating `msgspec.Raw` scan (what a `.raw()` page of full events "
        "costs per event); `client.events.get_raw()` does no decoding at all.\n"
    )
    return text


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="CI-sized run (a few seconds)")
    parser.add_argument("--json", metavar="PATH", help="write results as JSON here")
    parser.add_argument("--rounds", type=int, help="kept rounds (default 15; quick 5)")
    args = parser.parse_args(argv)
    rounds = args.rounds or (5 if args.quick else 15)
    batch_s = 0.02 if args.quick else 0.05
    started = time.perf_counter()
    bodies = {name: ("event", event_payload(size)) for name, size in EVENT_TARGETS.items()}
    bodies[PAGE_NAME] = ("page", issue_page())
    payloads = {
        name: measure(name, kind, body, rounds=rounds, batch_s=batch_s)
        for name, (kind, body) in bodies.items()
    }
    result: dict[str, Any] = {
        "rounds": rounds,
        "batch_ms": batch_s * 1000,
        "python": sys.version.split()[0],
        "msgspec": msgspec.__version__,
        "orjson": getattr(orjson, "__version__", None),
        "pydantic": getattr(pydantic, "VERSION", None),
        "payloads": payloads,
    }
    result["goals"] = goals(payloads)
    return publish(result, started, render, args.json)


if __name__ == "__main__":
    main()
