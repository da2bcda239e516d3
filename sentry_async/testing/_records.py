"""The records the fake dataset is made of, and how much of them to make."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

DEFAULT_PRIORITIES = ("high", "medium")
"""The priorities Sentry's default issue query (no ``query`` sent) keeps."""

NEW_FOR = 7 * 86400.0
"""``TRANSITION_AFTER_DAYS`` in seconds: how long an issue stays ``new`` after its first event
(``regressed`` or ``escalating`` after it became so) before Sentry's scheduled task moves it
to ``ongoing``; also how long a ``GroupInbox`` row lives (``auto_remove_inbox``)."""

INBOX_REASONS = {"new": 0, "regressed": 2, "escalating": 5}
"""``GroupInboxReason`` of the row event processing adds with each substatus (``NEW``,
``REGRESSION``, ``ESCALATING``)."""

BASE32_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
"""Sentry's (``sentry.utils.numbers``): Crockford's, without I, L, O and U."""


def base32_encode(number: int) -> str:
    """Sentry's ``base32_encode`` of a short id's counter (``0`` is ``"0"``)."""
    digits = ""
    while number:
        number, digit = divmod(number, 32)
        digits = BASE32_ALPHABET[digit] + digits
    return digits or BASE32_ALPHABET[0]


def base32_decode(text: str) -> int:
    """Sentry's ``base32_decode``: any case, ``O`` read as 0, ``I`` and ``L`` as 1; a
    character outside the alphabet (``U``) raises ``ValueError``."""
    number = 0
    for char in text.upper().replace("O", "0").replace("I", "1").replace("L", "1"):
        number = number * 32 + BASE32_ALPHABET.index(char)
    return number


@dataclass(frozen=True)
class SeedConfig:
    """How much data to make. ``events_per_issue`` is an inclusive range."""

    orgs: int = 3
    projects_per_org: int = 4
    issues_per_project: int = 150
    events_per_issue: tuple[int, int] = (2, 12)
    days: int = 90
    global_views_orgs: int = 1
    large_event_every: int = 97
    huge_event_every: int = 1999


SCALES: dict[str, SeedConfig] = {
    "small": SeedConfig(orgs=2, projects_per_org=3, issues_per_project=40, events_per_issue=(2, 8)),
    "default": SeedConfig(
        orgs=3, projects_per_org=5, issues_per_project=200, events_per_issue=(2, 14)
    ),
    "large": SeedConfig(
        orgs=1, projects_per_org=2, issues_per_project=13_000, events_per_issue=(5, 11)
    ),
}


@dataclass
class OrgRecord:
    index: int
    id: str
    slug: str
    name: str
    created: datetime
    features: list[str]
    projects: list[ProjectRecord] = field(default_factory=list)
    region: str = ""
    """The region name the org lives in (``""``: the server's own, single region)."""
    redirects: dict[str, str] = field(default_factory=dict)
    """Old project slug -> new slug, kept after a rename as Sentry's ``ProjectRedirect``."""
    members: int = 2
    """How many members it has (the token's user and ``Dataset.USERS``): what the
    organization list's ``sortBy=members`` orders by."""
    open_membership: bool = True
    """Sentry's ``allow_joinleave`` (on for a new organization): the user can access every
    project, member or not; without it only the projects of the user's teams."""


@dataclass
class ProjectRecord:
    index: int
    id: str
    slug: str
    name: str
    platform: str
    org: OrgRecord
    created: datetime
    issues: list[IssueRecord] = field(default_factory=list)
    events: list[EventRecord] = field(default_factory=list)
    member: bool = True
    """Whether the token's user is on one of the project's teams: a call that names no
    project covers member projects only (``project=-1``: every project the user can
    access, which is every project unless the organization's membership is closed)."""


@dataclass
class IssueRecord:
    index: int
    id: str
    number: int
    """Sentry's ``Group.short_id``: a counter of its project's issues, from 1."""
    project: ProjectRecord
    title: str
    exc_type: str
    level: str
    first_seen: float
    last_seen: float
    events: list[EventRecord] = field(default_factory=list)
    status: str = "unresolved"
    substatus: str | None = "new"
    """As last set: ``new`` when made (``_create_group``), else by an update. What Sentry
    shows is ``substatus_at(now)``."""
    extra: dict[str, Any] = field(default_factory=dict)
    deleted: bool = False
    purged: bool = False
    """Its deletion task has ended (``delete_groups``, then Snuba's ``end_delete_groups``):
    its events have left every events query and its row every look-up. Until then a deleted
    issue's events are listed as before (Snuba ignores ``start_delete_groups``)."""
    substatus_since: float | None = None
    """When event processing made the issue ``regressed`` or ``escalating`` (the
    ``GroupHistory`` row the scheduled task ages it by)."""
    made: tuple[str, str | None] | None = field(init=False, default=None)
    """Status and substatus as event processing left them, ``None`` once a request changed
    them (``Dataset.invalidate_issue``): at the server's ``now``, which never moves, and with
    no inbox row (``handle_status_update`` adds none)."""

    def __post_init__(self) -> None:
        self.made = (self.status, self.substatus)

    @property
    def short_id(self) -> str:
        """``Group.qualified_short_id``: made from the project's slug as it is now, so a
        renamed project's issues answer to the new one only."""
        return f"{self.project.slug.upper()}-{base32_encode(self.number)}"

    @property
    def priority(self) -> str:
        return str(self.extra.get("priority") or ("high", "medium", "low")[self.index % 3])

    def _since(self) -> float | None:
        """When the unresolved issue's ``new``, ``regressed`` or ``escalating`` substatus
        began, as the scheduled task reads it: the first event for ``new``; ``None`` for
        another substatus, or one a request set (at ``now``, which never moves)."""
        if self.status != "unresolved":
            return None
        if self.substatus == "new":
            return self.first_seen
        if self.substatus in ("regressed", "escalating") and self.made is not None:
            return self.substatus_since
        return None

    def substatus_at(self, now: float) -> str | None:
        """The substatus at ``now``: Sentry's every-minute task
        (``schedule_auto_transition_to_ongoing``) has moved an unresolved ``new`` issue first
        seen ``NEW_FOR`` or longer before to ``ongoing``, and a ``regressed`` or
        ``escalating`` one that became so that long before."""
        since = self._since()
        if since is not None and since <= now - NEW_FOR:
            return "ongoing"
        return self.substatus

    def inbox_at(self, now: float) -> dict[str, Any] | None:
        """The issue's ``GroupInbox`` row at ``now`` (``get_inbox_details``), ``None`` when
        it has none: the one a request set (``inbox``, resolving, ignoring), else the one
        event processing added with the substatus (``process_inbox_adds``), gone a week later
        (``auto_remove_inbox``, and the move to ``ongoing``)."""
        if "inbox" in self.extra:
            row: dict[str, Any] | None = self.extra["inbox"]
            return row
        since = self._since() if self.made is not None else None
        if since is None or since <= now - NEW_FOR or self.substatus not in INBOX_REASONS:
            return None
        return {
            "reason": INBOX_REASONS[self.substatus],
            "reason_details": None,
            "date_added": _iso(since),
        }


@dataclass(slots=True)
class EventRecord:
    index: int
    event_id: str
    issue: IssueRecord | None
    """The issue the event is grouped in now (its ``groupID``)."""
    project: ProjectRecord
    timestamp: float
    kind: str
    user: int
    environment: str
    origin: IssueRecord | None = None
    """The issue the event was made in, once a merge moved it to ``issue``."""

    @property
    def made_in(self) -> IssueRecord | None:
        """The issue whose title, level and exception type the event carries: a merge
        rewrites an event's group id only, its own data stays."""
        return self.origin or self.issue


def queried(event: EventRecord) -> bool:
    """Whether Snuba's events queries still answer the event: not once its issue's deletion
    task has ended (``DeleteGroupsReplacement`` excludes the group). Outcomes keep it."""
    return event.issue is None or not event.issue.purged


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _iso_seconds(ts: float) -> str:
    return datetime.fromtimestamp(ts, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
