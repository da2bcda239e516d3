"""Discover pages by offset: events arriving at the head during a walk push rows already
handed out onto the next page. With ``id`` among the fields, those are not handed out
twice."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta

import anyio
import msgspec
import pytest

from sentry_async.testing import FakeSentry


@pytest.mark.parametrize("raw", [False, True], ids=["rows", "raw"])
async def test_rows_pushed_onto_the_next_page_are_not_handed_out_twice(
    fake_sentry: FakeSentry, raw: bool
) -> None:
    org = "org-0"
    async with fake_sentry.client() as client:
        project = await client.projects.list(org).first()
        assert project is not None
        issue = fake_sentry.builder.organization(org).project(project.slug).add_issue(
            title="late arrivals"
        )
        walk = client.discover.query(
            org, fields=["id", "timestamp"], sort="-timestamp", period="30d", page_size=10
        )
        seen: list[str] = []
        pages = 0
        with anyio.fail_after(20):
            async for page in (walk.raw() if raw else walk).pages():
                pages += 1
                for item in page.items:
                    row = item if isinstance(item, dict) else msgspec.json.decode(item)
                    seen.append(row["id"])
                if pages == 1:  # five events stored while the walk runs
                    for k in range(5):
                        issue.add_event(timestamp=fake_sentry.now - timedelta(seconds=5 + k))
                if pages >= 4:
                    break
    counts = Counter(seen)
    assert [event for event, n in counts.items() if n > 1] == []
    assert len(seen) == 35  # the five repeats at the head of page 2 were dropped


async def test_rows_without_an_id_are_handed_out_as_they_come(fake_sentry: FakeSentry) -> None:
    async with fake_sentry.client() as client:
        walk = client.discover.query("org-0", fields=["title", "count()"], page_size=5)
        assert walk.repeat_id is None
