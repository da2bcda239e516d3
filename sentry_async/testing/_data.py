"""The fake server's dataset: deterministic from a seed, cheap to build, payloads on demand.

Orgs, projects, issues and a compact index of events are built up front (tuples, no JSON);
issue bodies and event payloads are generated from ``(seed, index)`` when first asked for,
and their encoded bytes are cached (events in a bounded LRU), so a "large" dataset of a
quarter of a million events starts in about a second and serves pages by joining bytes.
"""

from __future__ import annotations

import hashlib
import random
from collections import OrderedDict
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import msgspec

from ._entries import event_payload
from ._records import (
    DEFAULT_PRIORITIES,
    SCALES,
    EventRecord,
    IssueRecord,
    OrgRecord,
    ProjectRecord,
    SeedConfig,
    _iso,
    _iso_seconds,
    queried,
)

__all__ = [
    "DEFAULT_PRIORITIES",
    "SCALES",
    "Dataset",
    "EventRecord",
    "IssueRecord",
    "IssueShape",
    "OrgRecord",
    "ProjectRecord",
    "SeedConfig",
]

_encode = msgspec.json.encode
_PLATFORMS = ("python", "javascript", "ruby", "go")
_LEVELS = ("error", "error", "error", "warning", "fatal", "info")
_ENVIRONMENTS = ("production", "staging")
_EXCEPTIONS = (
    ("KeyError", "'user_id'"),
    ("ValueError", "invalid literal for int() with base 10: 'abc'"),
    ("TypeError", "Cannot read properties of undefined (reading 'map')"),
    ("ZeroDivisionError", "division by zero"),
    ("ConnectionError", "Connection refused by upstream, retries exhausted"),
    ("NoMethodError", "undefined method `name' for nil:NilClass"),
)



@dataclass(frozen=True)
class IssueShape:
    """What an issues request asks of the serializer: ``groupStatsPeriod`` (``None``
    when sent empty: no stats), ``collapse``, ``expand``, and the request's range, which
    the ``auto`` period's buckets span."""

    stats_period: str | None = "24h"
    collapse: frozenset[str] = frozenset()
    expand: frozenset[str] = frozenset()
    auto_range: tuple[float, float] | None = None


_SEEN_STATS = ("count", "userCount", "firstSeen", "lastSeen")
_STREAM_EXPANDS: dict[str, Any] = {
    "pluginActions": [],
    "pluginIssues": [],
    "integrationIssues": [],
    "sentryAppIssues": [],
    "latestEventHasAttachments": False,
}
"""``StreamGroupSerializerSnuba``'s expands beyond ``inbox``/``owners``: the fake has no
plugins, linked issues or attachments."""


def _auto_rollup(total: float) -> int:
    """``GroupStatsMixin.get_stats``: the ``auto`` period's rollup for a range (seconds)."""
    hour, day = 3600, 86400
    if total < day:
        rollup = total / 29
    else:
        steps = (29, hour), (29, 2 * hour), (29, 3 * hour), (29, 6 * hour), (35, 12 * hour)
        for segments, step in (*steps, (29, day)):
            if total < segments * step:
                rollup = step
                break
        else:
            rollup = round(total / (29 * day)) * day
    return max(int(rollup), 1)


def _expanded(
    result: dict[str, Any], body: dict[str, Any], expand: frozenset[str], names: tuple[str, ...]
) -> None:
    """Expandable fields appear only when expanded: the issue's own value, else the empty
    one (null for ``inbox``/``owners``)."""
    for name in names:
        if name in expand:
            result[name] = body.get(name, _STREAM_EXPANDS.get(name))
        else:
            result.pop(name, None)


def _shape_stream(body: dict[str, Any], shape: IssueShape) -> dict[str, Any]:
    """``StreamGroupSerializerSnuba.serialize``: ``collapse=base`` keeps the id and the seen
    stats; ``stats`` keyed by the period, ``lifetime`` and ``filtered`` go unless collapsed;
    the expands are added only when asked for."""
    collapse, expand = shape.collapse, shape.expand
    if "base" in collapse:
        kept = ("id", *_SEEN_STATS, "isUnhandled")
        result = {key: body[key] for key in kept if key in body}
    else:
        result = dict(body)
        for key in ("stats", "lifetime", "filtered", "sessionCount"):
            result.pop(key, None)
    if "stats" not in collapse:
        if shape.stats_period is not None:
            result["stats"] = body["stats"]
        if "lifetime" not in collapse:
            lifetime = {key: body["lifetime"][key] for key in _SEEN_STATS}
            if shape.stats_period is not None:
                lifetime["stats"] = None
            result["lifetime"] = lifetime
        if "filtered" not in collapse:
            result["filtered"] = body.get("filtered")
        if "sessions" in expand:
            result["sessionCount"] = body.get("sessionCount")
    _expanded(result, body, expand, ("inbox", "owners", *_STREAM_EXPANDS))
    return result


def _shape_detail(
    body: dict[str, Any], shape: IssueShape, daily: list[list[int]]
) -> dict[str, Any]:
    """``GroupDetailsEndpoint.get``: ``stats`` has ``24h`` and ``30d`` unless collapsed, as
    do ``tags`` and the releases (``release``); the expands are added only when asked for."""
    collapse, expand = shape.collapse, shape.expand
    result = dict(body)
    for key in ("lifetime", "filtered", "sessionCount"):
        result.pop(key, None)
    if "stats" in collapse:
        result.pop("stats", None)
    else:
        result["stats"] = {"24h": body["stats"]["24h"], "30d": daily}
    if "tags" in collapse:
        result.pop("tags", None)
    if "release" in collapse:
        result.pop("firstRelease", None)
        result.pop("lastRelease", None)
    extra = ("integrationIssues", "sentryAppIssues", "latestEventHasAttachments")
    _expanded(result, body, expand, ("inbox", "owners", *extra))
    return result


EVENT_CACHE_BYTES = 256 * 1024 * 1024
"""Encoded full events kept (LRU). Big enough for a benchmark's working set, so that
repeated rounds measure the client rather than the server building payloads."""



class Dataset:
    """Everything the fake server holds, plus accessors tests use to compute expectations."""

    def __init__(self, seed: int, config: SeedConfig, now: datetime, base_url: str = "") -> None:
        self.seed = seed
        self.config = config
        self.now = now
        self.now_ts = now.timestamp()
        self.retention_days: float | None = 90
        """The organizations' event retention (``None``: none); events queries reaching
        before ``now`` minus it are clamped or refused, as Sentry's are."""
        self.base_url = base_url
        self.orgs: list[OrgRecord] = []
        self.issues_by_id: dict[str, IssueRecord] = {}
        self.events_by_id: dict[str, EventRecord] = {}
        self._issue_cache: dict[str, bytes] = {}
        self._summary_cache: dict[str, bytes] = {}
        self.generation = 0
        """Bumped on every change to an issue, so cached listings know they are stale."""
        self._event_cache: OrderedDict[tuple[str, bool], bytes] = OrderedDict()
        self._event_cache_bytes = 0
        self.regions: tuple[str, ...] = ()
        """The region names when the server plays several; organizations are dealt out."""
        self.region_urls: dict[str, str] = {}
        """Region name -> its URL when the server plays several regions."""
        self._environments: dict[str, tuple[int, set[str]]] = {}
        self.merged: dict[str, str] = {}
        """A merged issue's id -> the id of the issue it went into (``GroupRedirect``)."""
        self.merged_slugs: dict[str, str] = {}
        """A merged issue's id -> its project's slug when merged, kept once the project is
        renamed (``GroupRedirect.previous_project_slug``)."""
        self._build()

    # -- building ---------------------------------------------------------------------------

    def _build(self) -> None:
        cfg = self.config
        rng = random.Random(self.seed)
        span = cfg.days * 86400.0
        project_no = issue_no = event_no = 0
        for o in range(cfg.orgs):
            created = self.now - timedelta(days=400 + 30 * o)
            features = ["discover-basic", "performance-view"]
            if o < cfg.global_views_orgs:
                features.append("global-views")
            org = OrgRecord(o, str(1000 + o), f"org-{o}", f"Organization {o}", created, features)
            self.orgs.append(org)
            for p in range(cfg.projects_per_org):
                project_no += 1
                platform = _PLATFORMS[(o + p) % len(_PLATFORMS)]
                project = ProjectRecord(
                    p,
                    str(100 + project_no),
                    f"project-{o}-{p}",
                    f"Project {o}.{p}",
                    platform,
                    org,
                    created + timedelta(days=p),
                )
                org.projects.append(project)
                for i in range(cfg.issues_per_project):
                    issue_no += 1
                    exc_type, _ = _EXCEPTIONS[rng.randrange(len(_EXCEPTIONS))]
                    level = _LEVELS[rng.randrange(len(_LEVELS))]
                    resolved = rng.random() < 0.2
                    issue = IssueRecord(
                        index=i,
                        id=str(5_000_000 + issue_no),
                        number=i + 1,
                        project=project,
                        title=f"{exc_type}: failure #{issue_no} in handler",
                        exc_type=exc_type,
                        level=level,
                        first_seen=0.0,
                        last_seen=0.0,
                        status="resolved" if resolved else "unresolved",
                        substatus=None if resolved else "new",
                    )
                    count = rng.randint(*cfg.events_per_issue)
                    for _ in range(count):
                        event_no += 1
                        ts = self.now_ts - rng.random() * span
                        kind = "error"
                        roll = event_no % 53
                        if roll == 7:
                            kind = "default"
                        elif roll == 19:
                            kind = "csp"
                        elif roll == 31:
                            kind = "future_ai_agent_trace"
                        event = EventRecord(
                            event_no,
                            hashlib.md5(f"{self.seed}:{event_no}".encode()).hexdigest(),
                            issue,
                            project,
                            round(ts, 3),
                            kind,
                            rng.randrange(500),
                            _ENVIRONMENTS[event_no % 2],
                        )
                        issue.events.append(event)
                        project.events.append(event)
                    issue.events.sort(key=lambda e: (-e.timestamp, e.event_id))
                    issue.first_seen = issue.events[-1].timestamp
                    issue.last_seen = issue.events[0].timestamp
                    project.issues.append(issue)
                    self.issues_by_id[issue.id] = issue
                # A few transactions per project: events without an issue.
                for t in range(max(2, cfg.issues_per_project // 20)):
                    event_no += 1
                    event = EventRecord(
                        event_no,
                        hashlib.md5(f"{self.seed}:{event_no}".encode()).hexdigest(),
                        None,
                        project,
                        round(self.now_ts - rng.random() * span, 3),
                        "transaction",
                        rng.randrange(500),
                        _ENVIRONMENTS[t % 2],
                    )
                    project.events.append(event)
                project.events.sort(key=lambda e: (-e.timestamp, e.event_id))
                for event in project.events:
                    self.events_by_id[event.event_id] = event

    # -- lookups tests use ----------------------------------------------------------------

    def org(self, key: str) -> OrgRecord | None:
        for org in self.orgs:
            if key in (org.slug, org.id):
                return org
        return None

    def project(self, org: OrgRecord, key: str) -> ProjectRecord | None:
        for project in org.projects:
            if key in (project.slug, project.id):
                return project
        return None

    def rename_project(self, org: str, old: str, new: str) -> None:
        """Rename a project; its old slug then answers Sentry's "resource moved" 302."""
        record = self.org(org)
        project = self.project(record, old) if record else None
        if record is None or project is None:
            raise KeyError(f"{org}/{old}")
        for issue in project.issues:
            if issue.id in self.merged:
                self.merged_slugs.setdefault(issue.id, project.slug)
        project.slug = new
        record.redirects[old] = new
        for slug, target in record.redirects.items():
            if target == old:
                record.redirects[slug] = new
        self._issue_cache.clear()
        self.generation += 1

    def environments(self, org: OrgRecord) -> set[str]:
        """The environment names the org's events carry (Sentry's ``Environment`` rows)."""
        cached = self._environments.get(org.id)
        if cached is not None and cached[0] == self.generation:
            return cached[1]
        names = {e.environment for p in org.projects for e in p.events}
        self._environments[org.id] = (self.generation, names)
        return names

    def region_url(self, org: OrgRecord) -> str:
        return self.region_urls.get(org.region, self.base_url)

    def org_slugs(self) -> list[str]:
        return [org.slug for org in self.orgs]

    def project_slugs(self, org: str) -> list[str]:
        record = self.org(org)
        return [p.slug for p in record.projects] if record else []

    def issue_ids(
        self,
        org: str,
        *,
        project: str | None = None,
        status: str | None = None,
        priority: tuple[str, ...] | None = None,
    ) -> list[str]:
        """Ids of live issues, optionally of one project, with one status, with priorities.

        What Sentry's default issue query lists: ``status="unresolved",
        priority=DEFAULT_PRIORITIES``.
        """
        record = self.org(org)
        if record is None:
            return []
        out: list[str] = []
        for proj in record.projects:
            if project is not None and project not in (proj.slug, proj.id):
                continue
            out.extend(
                i.id
                for i in proj.issues
                if not i.deleted
                and (status is None or i.status == status)
                and (priority is None or i.priority in priority)
            )
        return out

    def event_ids(
        self,
        org: str,
        project: str,
        *,
        start: float | None = None,
        end: float | None = None,
        include_transactions: bool = True,
    ) -> list[str]:
        """Ids of a project's events, newest first, optionally in ``[start, end)`` (epoch s);
        those of an issue whose deletion has ended (``finish_deletions``) are gone."""
        record = self.org(org)
        proj = self.project(record, project) if record else None
        if proj is None:
            return []
        return [
            e.event_id
            for e in proj.events
            if (start is None or e.timestamp >= start)
            and (end is None or e.timestamp < end)
            and (include_transactions or e.kind != "transaction")
            and queried(e)
        ]

    def events_for_issue(self, issue_id: str) -> list[str]:
        issue = self.issues_by_id.get(issue_id)
        return [e.event_id for e in issue.events] if issue else []

    # -- bodies ---------------------------------------------------------------------------

    def org_body(self, org: OrgRecord) -> dict[str, Any]:
        return {
            "id": org.id,
            "slug": org.slug,
            "name": org.name,
            "dateCreated": _iso_seconds(org.created.timestamp()),
            "status": {"id": "active", "name": "active"},
            "avatar": {"avatarType": "letter_avatar", "avatarUuid": None},
            "isEarlyAdopter": False,
            "require2FA": False,
            "hasAuthProvider": False,
            "features": org.features,
            "links": {"organizationUrl": self.base_url, "regionUrl": self.region_url(org)},
        }

    def project_body(self, project: ProjectRecord) -> dict[str, Any]:
        return {
            "id": project.id,
            "slug": project.slug,
            "name": project.name,
            "platform": project.platform,
            "dateCreated": _iso_seconds(project.created.timestamp()),
            "isBookmarked": project.index == 0,
            "isMember": project.member,
            "hasAccess": project.member or project.org.open_membership,
            "features": ["releases", "minidump"],
            # Events are kept newest first: the oldest is the last, not a scan of them all
            # (a large project holds a hundred thousand, and every project list reads this).
            "firstEvent": _iso(project.events[-1].timestamp) if project.events else None,
            "environments": list(_ENVIRONMENTS),
            "latestRelease": {"version": f"{project.slug}@1.4.{project.index}"},
            "status": "active",
            "organization": {
                "id": project.org.id,
                "slug": project.org.slug,
                "name": project.org.name,
            },
        }

    def issue_body(
        self,
        issue: IssueRecord,
        *,
        detail: bool = False,
        shape: IssueShape | None = None,
    ) -> dict[str, Any]:
        """The issue as the list serializer (``StreamGroupSerializerSnuba``) or, with
        ``detail``, as ``GroupDetailsEndpoint.get`` sends it, shaped by ``shape``."""
        body = self._issue_body(issue, detail=detail)
        shape = shape or IssueShape()
        if detail:
            return _shape_detail(body, shape, self._series(issue, "30d"))
        if shape.stats_period is not None and shape.stats_period != "24h":
            body["stats"] = {shape.stats_period: self._series(issue, shape.stats_period, shape)}
        return _shape_stream(body, shape)

    def _series(
        self, issue: IssueRecord, period: str, shape: IssueShape | None = None
    ) -> list[list[int]]:
        """Made-up counts for one stats period: ``14d`` and ``30d`` daily, ``auto`` at the
        rollup ``GroupStatsMixin.get_stats`` picks for the request's range."""
        rng = random.Random(f"{self.seed}:issue:{issue.id}:{period}")
        if period == "auto" and shape is not None and shape.auto_range is not None:
            start, end = shape.auto_range
            rollup = _auto_rollup(end - start)
            first = int(start // rollup) * rollup
            return [[t, rng.randrange(4)] for t in range(first, int(end) + 1, rollup)][:1000]
        days = 30 if period == "30d" else 14
        day = int(self.now_ts // 86400) * 86400
        return [[day - 86400 * (days - 1 - d), rng.randrange(20)] for d in range(days)]

    def _issue_body(self, issue: IssueRecord, *, detail: bool = False) -> dict[str, Any]:
        project = issue.project
        rng = random.Random(f"{self.seed}:issue:{issue.id}")
        hour = int(self.now_ts // 3600) * 3600
        body: dict[str, Any] = {
            "id": issue.id,
            "shareId": None,
            "shortId": issue.short_id,
            "title": issue.title,
            "culprit": f"app.handlers.{issue.exc_type.lower()} in handle",
            "permalink": f"{self.base_url}/organizations/{project.org.slug}/issues/{issue.id}/",
            "logger": None,
            "level": issue.level,
            "status": issue.status,
            "statusDetails": {},
            "substatus": issue.substatus_at(self.now_ts),
            "isPublic": False,
            "platform": project.platform,
            "priority": issue.priority,
            "priorityLockedAt": None,
            "project": {
                "id": project.id,
                "name": project.name,
                "slug": project.slug,
                "platform": project.platform,
            },
            "type": "error",
            "issueType": "error",
            "issueCategory": "error",
            "metadata": {
                "type": issue.exc_type,
                "value": "failure",
                "filename": "app/handlers.py",
                "function": "handle",
                "in_app_frame_mix": "in-app-only",
                "severity": round(rng.random(), 2),
            },
            "numComments": rng.randrange(3),
            "assignedTo": None
            if issue.index % 4
            else {"type": "user", "id": "7", "name": "Ada", "email": "ada@example.com"},
            "isBookmarked": False,
            "isSubscribed": issue.index % 5 == 0,
            "subscriptionDetails": None,
            "hasSeen": issue.index % 2 == 0,
            "annotations": [],
            "isUnhandled": issue.index % 3 == 0,
            "count": str(len(issue.events)),
            "userCount": len({e.user for e in issue.events}),
            "firstSeen": _iso(issue.first_seen),
            "lastSeen": _iso(issue.last_seen),
            "stats": {"24h": [[hour - 3600 * (23 - h), rng.randrange(4)] for h in range(24)]},
            "lifetime": {
                "count": str(len(issue.events)),
                "userCount": 3,
                "firstSeen": _iso(issue.first_seen),
                "lastSeen": _iso(issue.last_seen),
            },
            "filtered": None,
            "matchingEventId": None,
            "seerFixabilityScore": None,
        }
        body.update(issue.extra)
        body["inbox"] = issue.inbox_at(self.now_ts)
        if detail:
            body.update(
                {
                    "activity": [
                        {
                            "id": "1",
                            "type": "first_seen",
                            "data": {},
                            "dateCreated": _iso(issue.first_seen),
                            "user": None,
                        }
                    ],
                    "seenBy": [],
                    "userReportCount": 0,
                    "participants": [],
                    "firstRelease": {"version": f"{project.slug}@1.0.0"},
                    "lastRelease": None,
                    "tags": [
                        {
                            "key": "environment",
                            "name": "Environment",
                            "totalValues": len(issue.events),
                        },
                        {"key": "level", "name": "Level", "totalValues": len(issue.events)},
                    ],
                }
            )
        return body

    def issue_bytes(self, issue: IssueRecord, shape: IssueShape | None = None) -> bytes:
        if shape is not None and shape != IssueShape():
            return _encode(self.issue_body(issue, shape=shape))
        cached = self._issue_cache.get(issue.id)
        if cached is None:
            cached = _encode(self.issue_body(issue))
            self._issue_cache[issue.id] = cached
        return cached

    USERS = ({"id": "7", "name": "Ada", "username": "ada", "email": "ada@example.com"},)
    """The organizations' members (each org has the same ones): who issues are assigned to."""

    ACTING_USER = {"id": "1", "name": "Fake Token", "username": "fake", "email": "fake@example.com"}
    """The user the token belongs to, as a ``statusDetails.actor``."""

    def teams(self, org: OrgRecord) -> list[dict[str, str]]:
        """One team per project, ids unique across organizations."""
        return [
            {"id": str(org.index * 100 + p.index + 1), "slug": self.team_slug(p)}
            for p in org.projects
        ]

    @staticmethod
    def team_slug(project: ProjectRecord) -> str:
        """The slug of the project's one team (what the projects list's ``team:`` names)."""
        return f"{project.slug}-team"

    def release_versions(self, project: ProjectRecord) -> list[str]:
        """The project's releases, oldest first, as ``/releases/`` lists them."""
        return [f"{project.slug}@1.4.{n}" for n in range(5)]

    def invalidate_issue(self, issue: IssueRecord) -> None:
        """Forget what was encoded from the issue: its body, and its events' next/previous
        links, which an added event moves; and, once a request changed its status or
        substatus, that event processing set them."""
        if issue.made != (issue.status, issue.substatus):
            issue.made = None
        self._issue_cache.pop(issue.id, None)
        for event in issue.events:
            dropped = self._event_cache.pop((event.event_id, True), None)
            if dropped is not None:
                self._event_cache_bytes -= len(dropped)
        self.generation += 1

    def finish_deletions(self) -> list[str]:
        """End the deletion of every issue deleted or discarded so far, as Sentry's
        ``delete_groups`` task does an hour or so after the request (``countdown=3600``):
        its ``end_delete_groups`` is when Snuba drops the events (``start_delete_groups``,
        sent with the request, changes no query). From then on the issues' events are gone
        from every events query (a project's events, Discover, ``events-stats``, event-id
        and event look-ups) and the issues from the ``group=`` look-up; usage
        (``stats_v2``) still counts them. Issues merged away are not deletions. Returns the
        ids of the issues whose deletion ended now."""
        ended = [
            issue
            for issue in self.issues_by_id.values()
            if issue.deleted and not issue.purged and issue.id not in self.merged
        ]
        for issue in ended:
            issue.purged = True
            self.invalidate_issue(issue)
        return [issue.id for issue in ended]

    def move_events(self, source: IssueRecord, target: IssueRecord) -> None:
        """A merge's replacement in Snuba (``MergeReplacement``): ``source``'s events are
        ``target``'s from now on, each keeping its own data (``EventRecord.origin``), and
        ``target``'s first and last seen span both issues' (``merge_groups``). The lists
        are swapped in whole, so a request being served keeps iterating the one it began."""
        moved = source.events
        for event in moved:
            event.origin = event.made_in
            event.issue = target
            self._summary_cache.pop(event.event_id, None)
            for neighbours in (False, True):
                dropped = self._event_cache.pop((event.event_id, neighbours), None)
                if dropped is not None:
                    self._event_cache_bytes -= len(dropped)
        source.events = []
        target.events = sorted([*target.events, *moved], key=lambda e: (-e.timestamp, e.event_id))
        target.first_seen = min(target.first_seen, source.first_seen)
        target.last_seen = max(target.last_seen, source.last_seen)
        self.invalidate_issue(source)
        self.invalidate_issue(target)

    def summary_bytes(self, event: EventRecord) -> bytes:
        cached = self._summary_cache.get(event.event_id)
        if cached is None:
            if len(self._summary_cache) >= 250_000:
                self._summary_cache.clear()
            cached = _encode(self.summary_body(event))
            self._summary_cache[event.event_id] = cached
        return cached

    def summary_body(self, event: EventRecord) -> dict[str, Any]:
        issue = event.issue
        return {
            "id": event.event_id,
            "event.type": "error"
            if event.kind in ("error", "future_ai_agent_trace")
            else event.kind,
            "groupID": issue.id if issue else None,
            "eventID": event.event_id,
            "projectID": event.project.id,
            "message": "" if event.kind == "error" else self._title(event),
            "title": self._title(event),
            "location": "app/handlers.py",
            "culprit": "app.handlers in handle",
            "user": self.event_user(event),
            "tags": [
                {"key": "environment", "value": event.environment},
                {"key": "level", "value": self._level(event)},
            ],
            "platform": event.project.platform,
            "dateCreated": _iso_seconds(event.timestamp),
            "crashFile": None,
            "metadata": {"title": self._title(event)},
        }

    def search_message(self, event: EventRecord) -> str:
        """What Snuba's ``message`` column holds (``Event.search_message``): the message,
        then the title (the metadata it is made of) and the culprit where the text does not
        hold them yet. A project's events ``query`` is matched against it."""
        summary = self.summary_body(event)
        message = str(summary.get("message") or "")
        for part in (summary.get("title"), summary.get("culprit")):
            if part and str(part) not in message:
                message = f"{message} {part}"
        return message.strip()

    def event_user(self, event: EventRecord) -> dict[str, Any]:
        """The event's user as summaries show it: what tag values and Discover read too."""
        return {
            "id": str(event.user),
            "email": f"user{event.user}@example.com",
            "username": None,
            "ip_address": "10.0.0.1",
            "name": None,
        }

    def event_tags(self, event: EventRecord) -> dict[str, str]:
        """The event's tags, ``user`` as Sentry writes it (``id:42``), for tag endpoints."""
        tags = {
            "environment": event.environment,
            "level": self._level(event),
        }
        user = self.event_user(event)
        for key, prefix in (("id", "id"), ("email", "email"), ("username", "username")):
            if user.get(key):
                tags["user"] = f"{prefix}:{user[key]}"
                break
        else:
            if user.get("ip_address"):
                tags["user"] = f"ip:{user['ip_address']}"
        return tags

    def _title(self, event: EventRecord) -> str:
        made_in = event.made_in
        if made_in is not None:
            return made_in.title
        return f"GET /api/items/{event.index % 17}"

    @staticmethod
    def _level(event: EventRecord) -> str:
        made_in = event.made_in
        return made_in.level if made_in is not None else "info"

    def event_bytes(
        self,
        event: EventRecord,
        *,
        with_neighbours: bool = False,
        environments: Collection[str] = frozenset(),
    ) -> bytes:
        """The full event; ``with_neighbours`` fills ``nextEventID``/``previousEventID``
        as ``wrap_event_response`` does, among the issue's events in ``environments`` (all
        when empty). Only the bodies without environments are cached."""
        if with_neighbours and environments:
            body = self.event_body(event)
            self._set_neighbours(body, event, environments)
            return _encode(body)
        key = (event.event_id, with_neighbours)
        cached = self._event_cache.get(key)
        if cached is not None:
            self._event_cache.move_to_end(key)
            return cached
        body = self.event_body(event)
        if with_neighbours:
            self._set_neighbours(body, event, environments)
        data = _encode(body)
        self._event_cache[key] = data
        self._event_cache_bytes += len(data)
        while self._event_cache_bytes > EVENT_CACHE_BYTES and self._event_cache:
            _, old = self._event_cache.popitem(last=False)
            self._event_cache_bytes -= len(old)
        return data

    @staticmethod
    def _set_neighbours(
        body: dict[str, Any], event: EventRecord, environments: Collection[str]
    ) -> None:
        """The nearest newer (next) and older (previous) of the issue's events in
        ``environments``, whether or not the event itself is in them; none for an event
        without an issue."""
        if event.issue is None:
            return
        events = event.issue.events
        pos = events.index(event)

        def nearest(candidates: Iterable[EventRecord]) -> str | None:
            kept = (e for e in candidates if not environments or e.environment in environments)
            return next((e.event_id for e in kept), None)

        body["nextEventID"] = nearest(reversed(events[:pos]))
        body["previousEventID"] = nearest(events[pos + 1 :])

    def event_size_class(self, event: EventRecord) -> int:
        """Approximate frames count: most events are small, some ~100 KB, a few ~1 MB."""
        if event.index % self.config.huge_event_every == 0:
            return 400
        if event.index % self.config.large_event_every == 0:
            return 40
        return 4 + event.index % 9

    def event_body(self, event: EventRecord) -> dict[str, Any]:
        rng = random.Random(f"{self.seed}:event:{event.event_id}")
        return event_payload(event, rng, self.event_size_class(event), self._title(event))
