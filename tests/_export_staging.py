"""Changes staged against the fake server while an export runs: projects deleted, their
slugs taken by new projects, issues deleted; and the small organizations they are staged
in. Shared by the tests of exports that meet such changes mid-run."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from sentry_async import RetryPolicy, SentryClient
from sentry_async.export import ExportSpec, Manifest, Progress, _runner
from sentry_async.testing import FakeSentry, SeedConfig

Factory = Callable[..., Awaitable[FakeSentry]]
FAST = RetryPolicy(attempts=2, backoff_base=0.01, backoff_max=0.05)
TOTALS = ("title", "count()")


def client_of(server: FakeSentry) -> SentryClient:
    return server.client(retry=FAST)


def lines(path: Path) -> list[Any]:
    return [json.loads(line) for line in path.read_bytes().splitlines()]


class Meddling(Progress):
    """Progress that changes the server once, after ``after`` pages were written (``0``:
    once the export is planned, before any stream); with ``stream``, pages with items of
    the streams whose key starts with it."""

    def __init__(
        self, kind: str, change: Callable[[], None], *, after: int = 0, stream: str = ""
    ) -> None:
        super().__init__(kind)
        self._change: Callable[[], None] | None = change
        self._after = after
        self._stream = stream

    def _maybe_change(self) -> None:
        if self._change is not None and self._after <= 0:
            self._change()
            self._change = None

    def begin(self, **counts: Any) -> None:
        self._maybe_change()
        super().begin(**counts)

    def page(self, stream: str, **counts: Any) -> None:
        super().page(stream, **counts)
        if not self._stream or (stream.startswith(self._stream) and counts["items"]):
            self._after -= 1
            self._maybe_change()


async def acme(factory: Factory, **options: Any) -> tuple[FakeSentry, dict[str, str]]:
    """``alpha``, ``gone`` and ``zeta``, each with three issues of two events (all a few
    minutes old); returns slug -> project id."""
    server = await factory(scale=SeedConfig(orgs=0), **options)
    org = server.builder.add_organization("acme")
    ids = {}
    for slug in ("alpha", "gone", "zeta"):
        project = org.add_project(slug)
        for n in range(3):
            project.add_issue(f"Boom {slug} {n}", events=2)
        ids[slug] = project.id
    return server, ids


def delete_project(server: FakeSentry, slug: str) -> None:
    """The project pending deletion: off the projects list, 404 on its paths, 403 by id."""
    org = server.data.org("acme")
    assert org is not None
    org.projects[:] = [p for p in org.projects if p.slug != slug]


def reuse_slug(server: FakeSentry, slug: str, events: int = 4) -> str:
    """The project deleted and a new one made with its slug, with ``events`` events of its
    own in the export's range; returns the new project's id."""
    delete_project(server, slug)
    project = server.builder.organization("acme").add_project(slug)
    for n in range(events // 2):
        project.add_issue(f"Impostor {n}", events=2)
    return project.id


def skipped(manifest: Manifest) -> list[tuple[str | None, str | None]]:
    return [(s.id, s.slug) for s in manifest.skipped]


@pytest.fixture
def in_step(monkeypatch: pytest.MonkeyPatch) -> None:
    """A stream running alone asks for its next page only once the last one is written, so
    that a change made after a page is written is met by the very next page."""
    monkeypatch.setattr(_runner, "ALONE_READ_AHEAD", 0)


def totals(**options: Any) -> ExportSpec:
    """Discover totals (an aggregate field) of ``acme`` over the last three days."""
    options.setdefault("period", "3d")
    return ExportSpec(kind="discover", org="acme", fields=TOTALS, **options)


async def issues_of_alpha(factory: Factory, **options: Any) -> tuple[FakeSentry, list[str]]:
    """Three issues of project ``alpha``, with five events each; returns their ids."""
    server = await factory(scale=SeedConfig(orgs=0), **options)
    project = server.builder.add_organization("acme").add_project("alpha")
    return server, [project.add_issue(f"Boom {n}", events=5).id for n in range(3)]


def delete_issue(server: FakeSentry, issue: str) -> None:
    """The issue pending deletion: 404 on its details and its events."""
    server.data.issues_by_id[issue].deleted = True
