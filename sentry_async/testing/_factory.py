"""``FakeSentryFactory``: starts configured fake servers on demand and stops them all at once.

The pytest fixtures are thin wrappers around it; other test frameworks (``unittest``'s
``IsolatedAsyncioTestCase``, a script) can use it directly.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from typing import Any

from ._app import RateLimitPolicy
from ._background import BackgroundLoop
from ._data import SCALES, SeedConfig
from ._server import FakeSentry

__all__ = ["FakeSentryFactory", "seed_config"]


def seed_config(
    scale: SeedConfig | str = "small",
    *,
    orgs: int | None = None,
    projects: int | None = None,
    issues: int | None = None,
    events_per_issue: int | tuple[int, int] | None = None,
    days: int | None = None,
) -> SeedConfig:
    """A ``SeedConfig``: ``scale`` with the counts given replaced.

    ``projects`` is per organization, ``issues`` per project, ``events_per_issue`` a count
    or an inclusive ``(low, high)`` range, ``days`` how far back events go.
    """
    if isinstance(scale, str):
        if scale not in SCALES:
            raise ValueError(f"scale must be one of {sorted(SCALES)} or a SeedConfig")
        scale = SCALES[scale]
    changes: dict[str, Any] = {}
    for name, value, field_name, low in (
        ("orgs", orgs, "orgs", 0),
        ("projects", projects, "projects_per_org", 0),
        ("issues", issues, "issues_per_project", 0),
        ("days", days, "days", 1),
    ):
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")
        changes[field_name] = value
    if events_per_issue is not None:
        span = (
            (events_per_issue, events_per_issue)
            if isinstance(events_per_issue, int)
            else tuple(events_per_issue)
            if isinstance(events_per_issue, (tuple, list))
            else ()
        )
        if (
            len(span) != 2
            or not all(isinstance(n, int) and not isinstance(n, bool) for n in span)
            or not 1 <= span[0] <= span[1]
        ):
            raise ValueError(
                "events_per_issue must be an integer >= 1 or a (low, high) range with "
                f"1 <= low <= high, got {events_per_issue!r}"
            )
        changes["events_per_issue"] = span
    return replace(scale, **changes)


class FakeSentryFactory:
    """``await factory(...)`` (or ``factory.start(...)``) starts a fake Sentry; ``close()`` all.

    Servers run on a background thread's event loop, so they answer any test: on
    pytest-asyncio's loop, anyio's, or blocking code. ``now`` anchors every server's data
    unless a call passes its own.
    """

    def __init__(
        self,
        *,
        now: datetime | None = None,
        scale: SeedConfig | str = "small",
        loop: BackgroundLoop | None = None,
    ) -> None:
        if now is not None and now.tzinfo is None:
            raise ValueError("now must be timezone-aware")
        self.now = now
        self.scale = scale
        self._loop = loop
        self.servers: list[FakeSentry] = []

    async def __call__(
        self,
        *,
        scale: SeedConfig | str | None = None,
        orgs: int | None = None,
        projects: int | None = None,
        issues: int | None = None,
        events_per_issue: int | tuple[int, int] | None = None,
        days: int | None = None,
        seed: int = 0,
        token: str = "fake-token",
        now: datetime | None = None,
        rate_limits: RateLimitPolicy | None = None,
        **options: Any,
    ) -> FakeSentry:
        return self.start(
            scale=scale,
            orgs=orgs,
            projects=projects,
            issues=issues,
            events_per_issue=events_per_issue,
            days=days,
            seed=seed,
            token=token,
            now=now,
            rate_limits=rate_limits,
            **options,
        )

    def start(
        self,
        *,
        scale: SeedConfig | str | None = None,
        orgs: int | None = None,
        projects: int | None = None,
        issues: int | None = None,
        events_per_issue: int | tuple[int, int] | None = None,
        days: int | None = None,
        seed: int = 0,
        token: str = "fake-token",
        now: datetime | None = None,
        rate_limits: RateLimitPolicy | None = None,
        **options: Any,
    ) -> FakeSentry:
        """Start a server (blocking, for synchronous callers); ``options`` go to ``FakeSentry``."""
        config = seed_config(
            self.scale if scale is None else scale,
            orgs=orgs,
            projects=projects,
            issues=issues,
            events_per_issue=events_per_issue,
            days=days,
        )
        server = FakeSentry(
            seed=seed,
            token=token,
            scale=config,
            now=now or self.now,
            rate_limits=rate_limits,
            **options,
        )
        server.start_in_thread(self._loop)
        self.servers.append(server)
        return server

    def close(self) -> None:
        """Stop every server this factory started; one that fails does not keep the others
        running (the first failure is raised once all were tried)."""
        servers, self.servers = self.servers, []
        failure: Exception | None = None
        for server in reversed(servers):
            try:
                server.close_in_thread()
            except Exception as exc:
                failure = failure or exc
        if failure is not None:
            raise failure
