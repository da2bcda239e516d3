"""Data a test shapes itself: organizations, projects, issues and events added by hand.

``server.builder.add_organization("acme").add_project("backend").add_issue("KeyError: 'id'")``
adds to whatever the server holds (the seeded data, or nothing with ``orgs=0``), while it
serves. Everything not chosen gets the same plausible defaults as seeded data.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from ._data import Dataset, EventRecord, IssueRecord, OrgRecord, ProjectRecord

__all__ = [
    "BuildableDataset",
    "DataBuilder",
    "IssueBuilder",
    "OrganizationBuilder",
    "ProjectBuilder",
]

LEVELS = ("fatal", "error", "warning", "info", "debug", "sample")
STATUSES = ("unresolved", "resolved", "ignored")
_SUBSTATUSES = {"unresolved": "new", "resolved": None, "ignored": "archived_forever"}
"""A built issue's substatus unless chosen: an unresolved issue is made ``new`` (and reads
``ongoing`` once first seen a week before the server's ``now``), a resolved one has none, an
ignored one is archived (``infer_substatus`` with no conditions), as on Sentry."""
_STATUS_SUBSTATUSES: dict[str, tuple[str | None, ...]] = {
    "unresolved": ("new", "ongoing", "regressed", "escalating"),
    "ignored": ("archived_until_escalating", "archived_until_condition_met", "archived_forever"),
    "resolved": (None,),
}
"""``GROUP_SUBSTATUS_TO_STATUS_MAP``: the substatuses each status may hold."""
_AGING = ("regressed", "escalating")
PRIORITIES = ("high", "medium", "low")
_SLUG = re.compile(r"^[a-z0-9][a-z0-9_-]*$")
_EXC_TYPE = re.compile(r"^([A-Za-z_][\w.]*)\s*:")
_SUMMARY_USER_KEYS = ("id", "email", "username", "ip_address", "name")


@dataclass
class _EventExtras:
    tags: dict[str, str]
    user: dict[str, Any] | None
    payload: dict[str, Any]


class BuildableDataset(Dataset):
    """The seeded dataset plus what a builder added: tags, users and payloads per event."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.event_extras: dict[str, _EventExtras] = {}
        self.reissued: dict[str, str] = {}
        """A built issue's id -> the issue its later events made once it was deleted."""
        super().__init__(*args, **kwargs)

    def event_user(self, event: EventRecord) -> dict[str, Any]:
        extras = self.event_extras.get(event.event_id)
        if extras is None or extras.user is None:
            return super().event_user(event)
        return {key: extras.user.get(key) for key in _SUMMARY_USER_KEYS}

    def event_tags(self, event: EventRecord) -> dict[str, str]:
        tags = super().event_tags(event)
        extras = self.event_extras.get(event.event_id)
        if extras is not None:
            tags.update(extras.tags)
        return tags

    def summary_body(self, event: EventRecord) -> dict[str, Any]:
        body = super().summary_body(event)
        extras = self.event_extras.get(event.event_id)
        if extras is not None:
            body["tags"] = _merge_tags(body.get("tags"), extras.tags, sort=False)
            body.update({k: v for k, v in extras.payload.items() if k in body})
        return body

    def event_body(self, event: EventRecord) -> dict[str, Any]:
        body = super().event_body(event)
        extras = self.event_extras.get(event.event_id)
        if extras is not None:
            if extras.user is not None:
                body["user"] = {
                    **dict.fromkeys((*_SUMMARY_USER_KEYS, "geo", "data")),
                    **extras.user,
                }
            body["tags"] = _merge_tags(body.get("tags"), extras.tags, sort=True)
            body.update(extras.payload)
        return body


def _newest_first(event: EventRecord) -> tuple[float, str]:
    return (-event.timestamp, event.event_id)


def _merge_tags(tags: Any, extra: Mapping[str, str], *, sort: bool) -> Any:
    if not extra:
        return tags
    merged = {t["key"]: t["value"] for t in tags or ()}
    merged.update(extra)
    out = [{"key": key, "value": value} for key, value in merged.items()]
    return sorted(out, key=lambda t: t["key"]) if sort else out


def _check_slug(kind: str, slug: str) -> None:
    if not isinstance(slug, str) or not _SLUG.match(slug):
        raise ValueError(
            f"{kind} slug must be lower-case letters, digits, '-' or '_', got {slug!r}"
        )


def _timestamp(value: datetime | None, default: datetime) -> float:
    if value is None:
        value = default
    if not isinstance(value, datetime):
        raise TypeError(f"timestamp must be a datetime, got {type(value).__name__}")
    if value.tzinfo is None:
        raise ValueError("timestamp must be timezone-aware (e.g. tzinfo=timezone.utc)")
    return round(value.timestamp(), 3)


class DataBuilder:
    """Adds organizations (and through them projects, issues, events) to a server's data."""

    def __init__(self, data: BuildableDataset) -> None:
        self.data = data
        self._users: dict[str, int] = {}

    def add_organization(
        self,
        slug: str,
        *,
        name: str | None = None,
        features: list[str] | None = None,
        region: str | None = None,
    ) -> OrganizationBuilder:
        """An organization; on a server with ``regions`` it lives in ``region`` (by default
        dealt out like the seeded ones) and answers there only.

        ``features`` are the names Sentry lists (``"global-views"``, ...); project features
        count for all its projects: ``"discard-groups"`` lets issues be discarded, as
        ``projects:discard-groups`` does (Sentry refuses a discard without it).
        """
        _check_slug("organization", slug)
        if self.data.org(slug) is not None:
            raise ValueError(f"organization {slug!r} already exists")
        regions = self.data.regions
        index = len(self.data.orgs)
        if region is None:
            region = regions[index % len(regions)] if regions else ""
        elif region not in regions:
            raise ValueError(f"region must be one of {list(regions)}, got {region!r}")
        ids = [int(org.id) for org in self.data.orgs if org.id.isdigit()]
        record = OrgRecord(
            index=index,
            id=str(max(ids, default=999) + 1),
            slug=slug,
            name=name or slug.replace("-", " ").title(),
            created=self.data.now - timedelta(days=365),
            features=list(features)
            if features is not None
            else ["discover-basic", "performance-view", "global-views"],
            region=region,
        )
        self.data.orgs.append(record)
        self._changed()
        return OrganizationBuilder(self, record)

    def organization(self, slug: str) -> OrganizationBuilder:
        """A builder for an organization the server already holds (seeded or added)."""
        record = self.data.org(slug)
        if record is None:
            raise KeyError(f"no organization {slug!r}; known: {self.data.org_slugs()}")
        return OrganizationBuilder(self, record)

    # -- shared by the builders -----------------------------------------------------------

    def _changed(self) -> None:
        self.data.generation += 1

    def _next_project_id(self) -> str:
        ids = [int(p.id) for o in self.data.orgs for p in o.projects if p.id.isdigit()]
        return str(max(ids, default=100) + 1)

    def _next_issue_id(self) -> str:
        ids = [int(i) for i in self.data.issues_by_id if i.isdigit()]
        return str(max(ids, default=5_000_000) + 1)

    def _next_event_index(self) -> int:
        index = max((e.index for e in self.data.events_by_id.values()), default=0) + 1
        config = self.data.config
        # Seeded data makes every 97th event ~100 KB and every 1999th ~1 MB; a built event
        # stays small unless its payload says otherwise.
        while index % config.large_event_every == 0 or index % config.huge_event_every == 0:
            index += 1
        return index

    def _user_number(self, user: Mapping[str, Any]) -> int:
        key = str(user.get("id") or user.get("email") or user.get("username") or "")
        return self._users.setdefault(key, 10_000 + len(self._users))


class OrganizationBuilder:
    """One organization: ``slug``, ``id``; ``add_project()`` adds to it."""

    def __init__(self, builder: DataBuilder, record: OrgRecord) -> None:
        self._builder = builder
        self.record = record

    @property
    def slug(self) -> str:
        return self.record.slug

    @property
    def id(self) -> str:
        return self.record.id

    def add_project(
        self,
        slug: str,
        *,
        name: str | None = None,
        platform: str = "python",
        member: bool = True,
    ) -> ProjectBuilder:
        """``member=False``: a project on none of the user's teams. In an org with open
        membership (the default) the user may still read it; in a closed one the project is
        listed with ``hasAccess: false`` and its own paths answer 403, as on Sentry. Either
        way a call that names no project leaves it out, as Sentry does."""
        _check_slug("project", slug)
        if self._builder.data.project(self.record, slug) is not None:
            raise ValueError(f"project {slug!r} already exists in {self.record.slug!r}")
        record = ProjectRecord(
            index=len(self.record.projects),
            id=self._builder._next_project_id(),
            slug=slug,
            name=name or slug.replace("-", " ").title(),
            platform=platform,
            org=self.record,
            created=self._builder.data.now - timedelta(days=300),
            member=member,
        )
        self.record.projects.append(record)
        self._builder._changed()
        return ProjectBuilder(self._builder, record)

    def project(self, slug: str) -> ProjectBuilder:
        """A builder for a project the organization already has."""
        record = self._builder.data.project(self.record, slug)
        if record is None:
            raise KeyError(f"no project {slug!r} in {self.record.slug!r}")
        return ProjectBuilder(self._builder, record)


class ProjectBuilder:
    """One project: ``slug``, ``id``; ``add_issue()`` adds to it."""

    def __init__(self, builder: DataBuilder, record: ProjectRecord) -> None:
        self._builder = builder
        self.record = record

    @property
    def slug(self) -> str:
        return self.record.slug

    @property
    def id(self) -> str:
        return self.record.id

    def add_issue(
        self,
        title: str,
        *,
        level: str = "error",
        status: str = "unresolved",
        substatus: str | None = None,
        substatus_since: datetime | None = None,
        priority: str = "high",
        events: int = 1,
        payload: Mapping[str, Any] | None = None,
    ) -> IssueBuilder:
        """An issue with ``events`` default events a minute apart, the newest a minute ago.

        ``substatus`` must be one of its ``status``'s (by default ``new`` for an unresolved
        issue, ``archived_forever`` for an ignored one, none for a resolved one). A ``new``
        issue is in the inbox (``is:for_review``) for a week after its first event, then
        reads ``ongoing``; a ``regressed`` or ``escalating`` one the same for a week after
        ``substatus_since`` (timezone-aware, default the server's ``now``), when its
        regression or escalation happened, as Sentry's scheduled task moves them.
        ``priority`` is chosen, never derived: a ``"low"`` issue is left out of the default
        issue list (no ``query`` sent), as on Sentry. ``payload`` is merged into the
        issue's JSON (``culprit``, ``metadata``, ``assignedTo``, ...). Add events with
        chosen details with ``add_event()``.
        """
        if not title:
            raise ValueError("title must not be empty")
        if level not in LEVELS:
            raise ValueError(f"level must be one of {list(LEVELS)}, got {level!r}")
        if status not in STATUSES:
            raise ValueError(f"status must be one of {list(STATUSES)}, got {status!r}")
        chosen = _SUBSTATUSES[status] if substatus is None else substatus
        if chosen not in _STATUS_SUBSTATUSES[status]:
            raise ValueError(
                f"substatus must be one of {list(_STATUS_SUBSTATUSES[status])} for a "
                f"{status} issue, got {substatus!r}"
            )
        if substatus_since is not None and chosen not in _AGING:
            raise ValueError(
                f"substatus_since is for a regressed or escalating issue, not {chosen!r}"
            )
        if priority not in PRIORITIES:
            raise ValueError(f"priority must be one of {list(PRIORITIES)}, got {priority!r}")
        if events < 0:
            raise ValueError(f"events must be >= 0, got {events}")
        data = self._builder.data
        match = _EXC_TYPE.match(title)
        record = IssueRecord(
            index=len(self.record.issues),
            id=self._builder._next_issue_id(),
            number=len(self.record.issues) + 1,
            project=self.record,
            title=title,
            exc_type=match.group(1) if match else "Error",
            level=level,
            first_seen=data.now_ts,
            last_seen=data.now_ts,
            status=status,
            substatus=chosen,
            substatus_since=_timestamp(substatus_since, data.now) if chosen in _AGING else None,
        )
        record.extra["priority"] = priority
        if payload:
            record.extra.update(payload)
        self.record.issues.append(record)
        data.issues_by_id[record.id] = record
        self._builder._changed()
        issue = IssueBuilder(self._builder, record)
        for _ in range(events):
            issue.add_event()
        return issue


class IssueBuilder:
    """One issue: ``id``, ``short_id``; ``add_event()`` adds an event to it."""

    def __init__(self, builder: DataBuilder, record: IssueRecord) -> None:
        self._builder = builder
        self.record = record

    @property
    def id(self) -> str:
        return self.record.id

    @property
    def short_id(self) -> str:
        return self.record.short_id

    @property
    def title(self) -> str:
        return self.record.title

    @property
    def event_ids(self) -> list[str]:
        """The issue's events, newest first."""
        return [e.event_id for e in self.record.events]

    def add_event(
        self,
        *,
        timestamp: datetime | None = None,
        environment: str = "production",
        tags: Mapping[str, str] | None = None,
        user: str | Mapping[str, Any] | None = None,
        payload: Mapping[str, Any] | None = None,
        event_id: str | None = None,
    ) -> str:
        """Add an event; returns its id.

        ``timestamp`` (timezone-aware) defaults to a minute before the issue's oldest
        event (a minute before the server's ``now`` for the first). ``tags`` are added to
        the default ``environment`` and ``level`` tags; ``user`` is an id or a dict
        (``id``, ``email``, ``username``, ``ip_address``, ``name``); ``payload`` is merged
        into the full event's JSON (``message``, ``contexts``, ``entries``, ...) and, for
        the keys summaries have, into the summary.

        On an issue merged away the event is filed under the issue it went into, as Sentry
        files it (the merge points the issue's hashes there): it carries this issue's title
        and level, ``timestamp`` defaults from that issue's events, and it shows in that
        issue's ``event_ids``, never in this one's.

        Once the issue it would be filed under is deleted (not merged), the event makes a new
        issue, as on Sentry, whose deletion removes the issue's hashes (``delete_group_list``,
        ``GroupDeletionTask``): the next of the project's short ids, unresolved, with this
        issue's title, level and priority. Later events of this issue go there too; find it
        by an event's id (``/eventids/``). The deleted issue's ``event_ids`` never change.
        """
        builder = self._builder
        data = builder.data
        made_in = self.record
        issue = data.issues_by_id[data.reissued.get(made_in.id, made_in.id)]
        issue = data.issues_by_id[data.merged.get(issue.id, issue.id)]
        if issue.deleted:
            # Merges are followed to their end, so this issue was deleted, not merged.
            issue = self._reissue()
        oldest = min((e.timestamp for e in issue.events), default=data.now_ts)
        default = datetime.fromtimestamp(oldest, timezone.utc) - timedelta(minutes=1)
        ts = _timestamp(timestamp, default)
        if event_id is None:
            index = builder._next_event_index()
            event_id = hashlib.md5(f"built:{data.seed}:{index}".encode()).hexdigest()
        else:
            if not re.fullmatch(r"[0-9a-f]{32}", event_id):
                raise ValueError(f"event_id must be 32 lower-case hex digits, got {event_id!r}")
            index = builder._next_event_index()
        if event_id in data.events_by_id:
            raise ValueError(f"event {event_id!r} already exists")
        if isinstance(user, str):
            user = {"id": user}
        user_dict = dict(user) if user is not None else None
        record = EventRecord(
            index,
            event_id,
            issue,
            issue.project,
            ts,
            "error",
            builder._user_number(user_dict) if user_dict else index % 500,
            environment,
            origin=None if issue.id in (made_in.id, data.reissued.get(made_in.id)) else made_in,
        )
        data.event_extras[event_id] = _EventExtras(
            tags=dict(tags or {}), user=user_dict, payload=dict(payload or {})
        )
        # New sorted lists, swapped in whole: a request being served on the server's
        # thread keeps iterating the list it started with.
        issue.events = sorted([*issue.events, record], key=_newest_first)
        issue.project.events = sorted([*issue.project.events, record], key=_newest_first)
        data.events_by_id[event_id] = record
        issue.first_seen = issue.events[-1].timestamp
        issue.last_seen = issue.events[0].timestamp
        data.invalidate_issue(issue)
        return event_id

    def _reissue(self) -> IssueRecord:
        """A new issue for this issue's events, the one its later events go to."""
        made_in = self.record
        project = ProjectBuilder(self._builder, made_in.project)
        issue = project.add_issue(
            made_in.title, level=made_in.level, priority=made_in.priority, events=0
        )
        self._builder.data.reissued[made_in.id] = issue.id
        return issue.record
