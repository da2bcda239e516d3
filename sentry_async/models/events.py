"""Events: full payloads and list rows.

The typed entries inside a payload live in :mod:`.entries`; they are re-exported here, where
they were first defined.
"""

from __future__ import annotations

import builtins
from datetime import datetime
from typing import Any, TypeVar

import msgspec

from ._base import Model
from .entries import (
    _NULL,
    Breadcrumb,
    BreadcrumbsEntry,
    CspEntry,
    DebugMetaEntry,
    Entry,
    EntryHead,
    ExceptionEntry,
    ExceptionValue,
    Frame,
    Mechanism,
    MessageEntry,
    RequestEntry,
    Span,
    SpansEntry,
    Stacktrace,
    StacktraceEntry,
    TemplateEntry,
    Thread,
    ThreadsEntry,
    UnknownEntry,
    decode_entry,
)

__all__ = [
    "Breadcrumb",
    "BreadcrumbsEntry",
    "CspEntry",
    "DebugMetaEntry",
    "Entry",
    "EntryHead",
    "Event",
    "EventError",
    "EventFormatted",
    "EventIdResolution",
    "EventSummary",
    "EventTag",
    "EventUser",
    "ExceptionEntry",
    "ExceptionValue",
    "Frame",
    "IssueHash",
    "IssueHashSummary",
    "Mechanism",
    "MessageEntry",
    "Occurrence",
    "Release",
    "RequestEntry",
    "Sdk",
    "Span",
    "SpansEntry",
    "Stacktrace",
    "StacktraceEntry",
    "TemplateEntry",
    "Thread",
    "ThreadsEntry",
    "UnknownEntry",
    "decode_entry",
]

E = TypeVar("E", bound="Entry")


class EventTag(Model):
    key: str
    value: str | None = None
    query: str | None = None


class EventUser(Model):
    id: str | None = None
    email: str | None = None
    username: str | None = None
    ip_address: str | None = msgspec.field(default=None, name="ip_address")
    name: str | None = None
    geo: dict[str, Any] | None = None
    data: dict[str, Any] | None = None


class Sdk(Model):
    name: str | None = None
    version: str | None = None


class EventError(Model):
    type: str | None = None
    message: str | None = None
    data: dict[str, Any] | None = None


class Occurrence(Model):
    """Issue-platform data (performance issues, regressions ...)."""

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


class Release(Model):
    """A release in any of its three shapes: ``{version}`` only, old full, new full."""

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


class EventFormatted(Model):
    """``Event.formatted``: ``content`` in ``format`` (``markdown`` or ``xml``)."""

    format: str | None = None
    content: str | None = None


class Event(Model):
    """A full event payload (``/events/{id}/``, ``latest``, ``full=true`` lists).

    ``entries`` keeps each entry's data undecoded; :meth:`get_entries`, :meth:`entry` and
    the properties (``exception``, ``breadcrumbs`` ...) decode them when asked. ``meta``
    (Sentry's ``_meta``) and ``context`` (the legacy "extra") stay raw JSON: large and
    rarely read (``msgspec.json.decode(event.meta)`` when needed; ``null`` when absent).
    """

    id: str
    event_id: str | None = msgspec.field(default=None, name="eventID")
    group_id: str | None = msgspec.field(default=None, name="groupID")
    project_id: str | None = msgspec.field(default=None, name="projectID")
    project_slug: str | None = None
    type: str = "default"
    platform: str | None = None
    title: str | None = None
    message: str | None = None
    culprit: str | None = None
    location: str | None = None
    date_created: datetime | None = None
    date_received: datetime | None = None
    datetime_: str | None = msgspec.field(default=None, name="datetime")
    size: int | None = None
    tags: list[EventTag] = []
    user: EventUser | None = None
    contexts: dict[str, Any] | None = {}
    """``null`` on some events (the spec marks it nullable)."""
    context: msgspec.Raw = _NULL
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
    next_event_id: str | None = msgspec.field(default=None, name="nextEventID")
    previous_event_id: str | None = msgspec.field(default=None, name="previousEventID")
    crash_file: Any = None
    dist: str | None = None
    start_timestamp: float | None = None
    end_timestamp: float | None = None
    measurements: dict[str, Any] | None = None
    breakdowns: dict[str, Any] | None = None
    meta: msgspec.Raw = msgspec.field(default=_NULL, name="_meta")
    entries: list[EntryHead] = []
    formatted: EventFormatted | None = None
    """The event rendered for a language model, when ``llmFormat`` was asked for."""

    def get_entries(self) -> list[Entry]:
        """Every entry, decoded by type, in the payload's order."""
        return [decode_entry(head) for head in self.entries]

    def entry(self, kind: builtins.type[E]) -> E | None:
        """The first entry of a given class, e.g. ``event.entry(RequestEntry)``."""
        wanted = kind.entry_type
        for head in self.entries:
            if head.type == wanted or (kind is CspEntry and head.type in _CSP_LIKE):
                decoded = decode_entry(head)
                if isinstance(decoded, kind):
                    return decoded
        return None

    @property
    def exception(self) -> ExceptionEntry | None:
        return self.entry(ExceptionEntry)

    @property
    def breadcrumbs(self) -> BreadcrumbsEntry | None:
        return self.entry(BreadcrumbsEntry)

    @property
    def request(self) -> RequestEntry | None:
        return self.entry(RequestEntry)

    @property
    def stacktrace(self) -> StacktraceEntry | None:
        return self.entry(StacktraceEntry)

    @property
    def spans(self) -> SpansEntry | None:
        return self.entry(SpansEntry)

    @property
    def threads(self) -> ThreadsEntry | None:
        return self.entry(ThreadsEntry)

    @property
    def message_entry(self) -> MessageEntry | None:
        return self.entry(MessageEntry)

    @property
    def entry_types(self) -> list[str]:
        return [head.type for head in self.entries]

    def context_of(self, name: str) -> dict[str, Any] | None:
        """One of ``contexts`` (``os``, ``browser``, ``trace``, a custom name), if an object."""
        value = (self.contexts or {}).get(name)
        return value if isinstance(value, dict) else None

    def tag(self, key: str) -> str | None:
        for tag in self.tags:
            if tag.key == key:
                return tag.value
        return None


_CSP_LIKE = frozenset({"csp", "nel", "hpkp", "expectct", "expectstaple"})


class EventSummary(Model):
    """A row of an event list without ``full`` (note the dotted wire key ``event.type``).

    An issue's events filtered by an event id answer that event's full payload (a direct
    hit, ``page.direct_hit``), whose type is ``type``: ``event_type`` is read there then.
    """

    id: str
    event_type: str | None = msgspec.field(default=None, name="event.type")
    group_id: str | None = msgspec.field(default=None, name="groupID")
    event_id: str | None = msgspec.field(default=None, name="eventID")
    project_id: str | None = msgspec.field(default=None, name="projectID")
    message: str | None = None
    title: str | None = None
    location: str | None = None
    culprit: str | None = None
    user: EventUser | None = None
    tags: list[EventTag] = []
    platform: str | None = None
    date_created: datetime | None = None
    crash_file: Any = None
    metadata: dict[str, Any] | None = None
    _type: str | None = msgspec.field(default=None, name="type")
    """A full payload's ``type``, moved to ``event_type`` on decoding: a summary read from
    a direct hit is then the summary a list row would be."""

    def __post_init__(self) -> None:
        if self._type is not None:
            if self.event_type is None:
                self.event_type = self._type
            self._type = None


class EventIdResolution(Model):
    """Where an event id lives: its org, project and issue, plus the event itself."""

    organization_slug: str | None = None
    project_slug: str | None = None
    group_id: str | None = None
    event_id: str | None = None
    event: Event | None = None


class IssueHash(Model):
    """A fingerprint hash merged into an issue, with its latest event (``hashes(full=True)``)."""

    id: str
    latest_event: Event | None = None
    merged_by_seer: bool | None = None
    seer_match_distance: float | None = None


class IssueHashSummary(Model):
    """A row of ``hashes(full=False)``: its latest event is a summary (``event.type``)."""

    id: str
    latest_event: EventSummary | None = None
    merged_by_seer: bool | None = None
    seer_match_distance: float | None = None
