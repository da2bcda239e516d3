"""A small application built on sentry_async: what an on-call engineer looks at first."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from sentry_async import SentryClient


async def fatal_issues(sentry: SentryClient, org: str, project_id: str) -> list[str]:
    """Short ids of the project's unresolved fatal issues, most recently seen first."""
    issues = sentry.issues.list(org, project=project_id, query="is:unresolved", sort="date")
    return [issue.short_id or issue.id async for issue in issues if issue.level == "fatal"]


async def resolve_stale(sentry: SentryClient, org: str, *, quiet_for: timedelta) -> list[str]:
    """Resolve the unresolved issues not seen for ``quiet_for``; returns their ids."""
    cutoff = datetime.now(timezone.utc) - quiet_for
    stale = [
        issue.id
        async for issue in sentry.issues.list(org, query="is:unresolved")
        if issue.last_seen is not None and issue.last_seen < cutoff
    ]
    if stale:
        await sentry.issues.bulk_update(org, stale, status="resolved")
    return stale


async def who_crashed(sentry: SentryClient, org: str, issue_id: str) -> tuple[str | None, str]:
    """The latest event's user e-mail and browser tag (``"unknown"`` without one)."""
    event = await sentry.events.latest(org, issue_id=issue_id)
    tags = {tag.key: tag.value for tag in event.tags}
    email = event.user.email if event.user is not None else None
    return email, tags.get("browser") or "unknown"


async def events_last_day(sentry: SentryClient, org: str, project: str) -> int:
    """How many events the project received in the last 24 hours."""
    end = datetime.now(timezone.utc)
    listing = sentry.events.for_project(org, project, start=end - timedelta(days=1), end=end)
    return len(await listing.collect())
