"""The records the fake dataset is made of, and how much of them to make."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

DEFAULT_PRIORITIES = ("high", "medium")
"""The priorities Sentry's default issue query (no ``query`` sent) keeps."""

NEW_FOR = 7 * 86400.0
"""``TRANSITION_AFTER_DAYS`` in seconds: how long after its first event an issue is ``new``."""

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

    @property
    def short_id(self) -> str:
        """``Group.qualified_short_id``: made from the project's slug as it is now, so a
        renamed project's issues answer to the new one only."""
        return f"{self.project.slug.upper()}-{base32_encode(self.number)}"

    @property
    def priority(self) -> str:
        return str(self.extra.get("priority") or ("high", "medium", "low")[self.index % 3])

    def substatus_at(self, now: float) -> str | None:
        """The substatus at ``now``: Sentry's every-minute task
        (``schedule_auto_transition_issues_new_to_ongoing``) has moved an unresolved ``new``
        issue first seen ``NEW_FOR`` or longer before to ``ongoing``."""
        if self.status == "unresolved" and self.substatus == "new":
            return "ongoing" if self.first_seen <= now - NEW_FOR else "new"
        return self.substatus


@dataclass(slots=True)
class EventRecord:
    index: int
    event_id: str
    issue: IssueRecord | None
    project: ProjectRecord
    timestamp: float
    kind: str
    user: int
    environment: str


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _iso_seconds(ts: float) -> str:
    return datetime.fromtimestamp(ts, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
