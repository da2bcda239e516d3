"""The exporter against Sentry's ways: aggregates in Discover, windows too deep to serve."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import anyio
import msgspec

from sentry_async import RetryPolicy, SentryClient
from sentry_async.export import ExportSpec, export
from sentry_async.testing import FakeSentry, SeedConfig
from sentry_async.testing.pytest_plugin import FIXED_NOW

ORG = "org-0"
DATA = SeedConfig(
    orgs=1, projects_per_org=3, issues_per_project=12, events_per_issue=(1, 4), days=20
)
END = FIXED_NOW - timedelta(hours=5)
START = END - timedelta(days=14)
FAST_RETRY = RetryPolicy(backoff_base=0.01, backoff_max=0.05)

Factory = Callable[..., Awaitable[FakeSentry]]


def _client(server: FakeSentry, **kwargs: Any) -> SentryClient:
    kwargs.setdefault("retry", FAST_RETRY)
    return SentryClient(server.token, base_url=server.url, **kwargs)


def _rows(path: Path) -> list[dict[str, Any]]:
    return [msgspec.json.decode(line) for line in path.read_bytes().splitlines()]


def _in_range(server: FakeSentry, slug: str) -> list[str]:
    return server.data.event_ids(ORG, slug, start=START.timestamp(), end=END.timestamp())


async def test_discover_aggregates_are_one_query_over_the_whole_range(
    fake_sentry_factory: Factory, tmp_path: Path
) -> None:
    server = await fake_sentry_factory(scale=DATA)
    spec = ExportSpec(
        kind="discover",
        org=ORG,
        fields=("project", "count()"),
        start=START,
        end=END,
        window=timedelta(days=3),
    )
    with anyio.fail_after(20):
        async with _client(server) as client:
            manifest = await export(client, spec, tmp_path)
    slugs = server.data.project_slugs(ORG)
    rows = [row for file in manifest.files for row in _rows(tmp_path / file.path)]
    # One row per project, holding the count over the whole range: no partial counts.
    assert sorted(row["project"] for row in rows) == sorted(slugs)
    assert {row["project"]: row["count()"] for row in rows} == {
        slug: len(_in_range(server, slug)) for slug in slugs
    }
    assert len(manifest.streams) == 1
    (stream,) = manifest.streams
    assert (stream.window_start, stream.window_end) == (manifest.start, manifest.end)
    assert [file.path for file in manifest.files] == ["aggregates.jsonl"]
    discover = [r for r in server.requests if r.path.endswith("/events/")]
    assert len({(r.param("start"), r.param("end")) for r in discover}) == 1
