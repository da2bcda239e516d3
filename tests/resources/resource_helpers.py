"""What the resource tests share: the org they use and expectations from the server's data."""

from __future__ import annotations

from sentry_async import RetryPolicy
from sentry_async.testing import FakeSentry, RecordedRequest
from sentry_async.testing._data import DEFAULT_PRIORITIES

ORG = "org-0"
FAST_RETRY = RetryPolicy(attempts=2, backoff_base=0.01, backoff_max=0.05)


def _project(server: FakeSentry, index: int = 0) -> str:
    return server.data.project_slugs(ORG)[index]


def _project_id(server: FakeSentry, slug: str) -> str:
    org = server.data.org(ORG)
    project = server.data.project(org, slug) if org else None
    assert project is not None
    return project.id


def _to(server: FakeSentry, suffix: str) -> list[RecordedRequest]:
    """The requests to one endpoint (slug lookups go to the projects list first)."""
    return [r for r in server.requests if r.path.endswith(suffix)]


def _unresolved_by_date(server: FakeSentry) -> list[str]:
    """The server's default listing: unresolved high and medium priority issues, most
    recently seen first (whole seconds, as Sentry's search scores them; ties by id)."""
    ids = server.data.issue_ids(ORG, status="unresolved", priority=DEFAULT_PRIORITIES)
    issues = [server.data.issues_by_id[i] for i in ids]
    issues.sort(key=lambda issue: (-int(issue.last_seen), -int(issue.id)))
    return [issue.id for issue in issues]


def _events_since(
    server: FakeSentry, project: str, days: int, *, listed: bool = False
) -> list[str]:
    """The project's events of the last ``days``; ``listed``: as its event list serves them,
    which reads the errors dataset (no transactions; Discover and events-stats have them)."""
    start = server.data.now_ts - days * 86400
    return server.data.event_ids(ORG, project, start=start, include_transactions=not listed)
