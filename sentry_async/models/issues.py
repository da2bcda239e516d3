"""Issues (Sentry's "groups"), their tags and the answers of update calls."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import msgspec

from ._base import UNDECODABLE, Model, SnakeModel

__all__ = [
    "Assignee",
    "Issue",
    "IssueInbox",
    "IssueOwner",
    "IssueProject",
    "IssueTagSummary",
    "IssueUpdateResult",
    "TagDetail",
    "TagValue",
]


_NULL = msgspec.Raw(b"null")
_STATS = msgspec.json.Decoder(dict[str, list[tuple[float, float]]] | None)


class IssueProject(Model):
    id: str | None = None
    name: str | None = None
    slug: str | None = None
    platform: str | None = None


class Assignee(Model):
    type: str | None = None
    id: str | None = None
    name: str | None = None
    email: str | None = None


class IssueOwner(SnakeModel):
    """``expand=owners``: why an owner was suggested (``ownershipRule``, ``suspectCommit``...)."""

    type: str | None = None
    owner: str | None = None
    date_added: datetime | None = None


class IssueInbox(SnakeModel):
    """``expand=inbox``: why the issue is in the inbox (``reason`` is Sentry's enum value)."""

    reason: int | None = None
    reason_details: dict[str, Any] | None = None
    date_added: datetime | None = None


class IssueTagSummary(Model):
    """An entry of an issue detail's ``tags``: a key and how many values it has."""

    key: str
    name: str | None = None
    total_values: int | None = None


class Issue(Model):
    """One issue, from the list or the detail endpoint (detail-only fields stay empty in lists).

    ``count`` is a string on the wire (``count_int`` converts it). ``stats`` is decoded
    when read, not with the issue: its buckets are most of a list page's objects and few
    callers look at them (``stats_raw`` holds the JSON as sent, ``null`` when absent).
    """

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
    project: IssueProject | None = None
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
    stats_raw: msgspec.Raw = msgspec.field(default=_NULL, name="stats")
    lifetime: dict[str, Any] | None = None
    filtered: dict[str, Any] | None = None
    inbox: IssueInbox | None = None
    owners: list[IssueOwner] | IssueOwner | None = None
    """A list on current servers; the spec shows a single object."""
    integration_issues: list[dict[str, Any]] | None = None
    """``expand=integrationIssues``: linked issues in Jira, GitHub, ..."""
    sentry_app_issues: list[dict[str, Any]] | None = None
    latest_event_has_attachments: bool | None = None
    session_count: int | None = None
    """``expand=sessions``: sessions in the period, for a crash-free rate."""
    forecast: dict[str, Any] | None = None
    """``expand=forecast`` (detail): the escalation forecast."""
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
    tags: list[IssueTagSummary] = []

    @property
    def stats(self) -> dict[str, list[tuple[float, float]]] | None:
        """``{"24h": [(epoch seconds, count), ...]}`` as floats (old servers send float seconds).

        Raises ``msgspec.ValidationError`` (naming the issue) if the buckets have another shape
        or do not decode (a key that is not UTF-8, kept unread until now; no room left on the
        stack).
        """
        try:
            stats: dict[str, list[tuple[float, float]]] | None = _STATS.decode(self.stats_raw)
        except UNDECODABLE as exc:
            raise msgspec.ValidationError(f"issue {self.id} `stats`: {exc}") from exc
        return stats

    @property
    def count_int(self) -> int | None:
        """``count`` as an int (Sentry sends it as a string)."""
        if self.count is None:
            return None
        try:
            return int(self.count)
        except ValueError:
            return None


class TagValue(Model):
    key: str | None = None
    name: str | None = None
    value: str | None = None
    count: int | None = None
    last_seen: datetime | None = None
    first_seen: datetime | None = None
    query: str | None = None


class TagDetail(Model):
    key: str
    name: str | None = None
    unique_values: int | None = None
    total_values: int | None = None
    top_values: list[TagValue] | None = []
    """``null`` where the spec allows it."""


class IssueUpdateResult(Model):
    """What a bulk or single ``PUT`` changed; absent fields were not touched.

    ``merge`` is ``{"parent", "children"}`` when several issues were merged, else the
    boolean as sent (``prepare_response`` echoes it). ``activity`` comes with a release
    resolution of one issue, ``subscription_details`` with ``is_subscribed``.
    """

    status: str | None = None
    status_details: dict[str, Any] | None = None
    substatus: str | None = None
    assigned_to: Assignee | None = None
    has_seen: bool | None = None
    is_bookmarked: bool | None = None
    is_public: bool | None = None
    is_subscribed: bool | None = None
    priority: str | None = None
    merge: dict[str, Any] | bool | None = None
    share_id: str | None = None
    inbox: Any = None
    subscription_details: dict[str, Any] | None = None
    activity: list[dict[str, Any]] | None = None
