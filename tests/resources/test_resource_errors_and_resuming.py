"""Errors, input checks and resuming, through the public API against the bundled fake.

Expectations come from ``server.data`` (what the server holds), and the request log
(``server.requests``) shows what went over the wire: parameter names, repeated keys, UTC
datetimes, cursors.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta, timezone
from typing import Any

import anyio
import pytest
from resource_helpers import FAST_RETRY, ORG, _events_since, _project, _unresolved_by_date

from sentry_async import NotFound, SentryClient, Unauthorized
from sentry_async.testing import FakeSentry, SeedConfig

# -- errors ---------------------------------------------------------------------------------


async def test_unknown_resources_raise_not_found_with_detail(
    fake_sentry: FakeSentry, client: SentryClient
) -> None:
    calls: list[Callable[[], Awaitable[Any]]] = [
        lambda: client.organizations.get("no-such-org"),
        lambda: client.projects.get(ORG, "no-such-project"),
        lambda: client.issues.get(ORG, 1),
        lambda: client.issues.list("no-such-org").collect(),
        lambda: client.events.resolve(ORG, "0" * 32),
    ]
    with anyio.fail_after(10):
        for call in calls:
            with pytest.raises(NotFound) as caught:
                await call()
            assert caught.value.status == 404
            assert caught.value.detail == "The requested resource does not exist"
    assert len(fake_sentry.requests) == len(calls), "a 404 is not retried"


async def test_bad_token_is_unauthorized(fake_sentry: FakeSentry) -> None:
    async with SentryClient("wrong-token", base_url=fake_sentry.url, retry=FAST_RETRY) as sc:
        with anyio.fail_after(10), pytest.raises(Unauthorized) as caught:
            await sc.issues.list(ORG).collect()
    assert caught.value.status == 401
    assert caught.value.detail == "Invalid token"
    assert "wrong-token" not in str(caught.value)
    assert fake_sentry.requests[0].sent_token("wrong-token")
    assert not fake_sentry.requests[0].authenticated


_NAIVE = datetime(2026, 5, 1, 12, 0)
_AWARE = datetime(2026, 5, 1, 12, 0, tzinfo=timezone.utc)

INVALID_CALLS: dict[str, tuple[Callable[[SentryClient], Any], str]] = {
    "period typo": (lambda c: c.issues.list(ORG, period="14 days"), "period must look like"),
    "period zero": (
        lambda c: c.discover.query(ORG, fields=["id"], period="0d"),
        "period must look like",
    ),
    "naive start": (
        lambda c: c.events.for_project(ORG, "p", start=_NAIVE, end=_AWARE + timedelta(days=1)),
        "timezone-aware",
    ),
    "start without end": (lambda c: c.issues.list(ORG, start=_AWARE), "given together"),
    "period and start": (
        lambda c: c.stats.events(ORG, period="1d", start=_AWARE, end=_AWARE + timedelta(hours=1)),
        "either period or start/end",
    ),
    "per_page 0": (lambda c: c.issues.list(ORG, page_size=0), "from 1 to 100"),
    "per_page 101": (lambda c: c.events.for_issue(ORG, 1, page_size=101), "from 1 to 100"),
    "discover per_page 101": (
        lambda c: c.discover.query(ORG, fields=["id"], page_size=101),
        "from 1 to 100",
    ),
    "empty org": (lambda c: c.projects.list(""), "org must not be empty"),
    "blank org": (lambda c: c.organizations.get("  "), "org must not be empty"),
    "21 fields": (
        lambda c: c.discover.query(ORG, fields=[f"f{n}" for n in range(21)]),
        "1 to 20 field",
    ),
    "no fields": (lambda c: c.discover.query(ORG, fields=[]), "1 to 20 field"),
    "sort not selected": (
        lambda c: c.discover.query(ORG, fields=["id"], sort="-timestamp"),
        "must name a requested field",
    ),
    "bad event id": (lambda c: c.events.get(ORG, "p", "not-an-id"), "event ids are 32 hex"),
    "malformed issue id": (
        lambda c: c.issues.get(ORG, "PROJ 1A"),
        "numeric id such as 4567 or a short id",
    ),
    "unknown update field": (
        lambda c: c.issues.update(ORG, 1, colour="red"),
        "unknown issue field 'colour'",
    ),
    "11 top events": (
        lambda c: c.stats.events(ORG, top_events=11, fields=["title"], order_by="-count()"),
        "from 1 to 10",
    ),
    "usage group": (lambda c: c.stats.usage(ORG, group_by="team"), "group_by must be among"),
}


@pytest.mark.anyio
@pytest.mark.parametrize("name", sorted(INVALID_CALLS))
async def test_invalid_input_fails_before_sending(fake_sentry: FakeSentry, name: str) -> None:
    async with SentryClient(fake_sentry.token, base_url=fake_sentry.url) as sc:
        call, message = INVALID_CALLS[name]
        with pytest.raises(ValueError, match=re.escape(message)):
            await _call_and_consume(call, sc)
    assert fake_sentry.requests == []


async def _call_and_consume(call: Callable[[SentryClient], Any], sc: SentryClient) -> None:
    """Await a coroutine or drain a paginator: validation may happen at either step."""
    result = call(sc)
    if hasattr(result, "__await__"):
        await result
    else:
        await result.collect()


# -- resuming -------------------------------------------------------------------------------


async def test_position_resumes_after_a_break_mid_page(
    fake_sentry: FakeSentry, client: SentryClient
) -> None:
    expected = _unresolved_by_date(fake_sentry)
    first: list[str] = []
    paginator = client.issues.list(ORG, page_size=20)
    with anyio.fail_after(10):
        async for issue in paginator:
            first.append(issue.id)
            if len(first) == 47:
                break
        position = paginator.position
        assert position.skip == 7 and not position.done
        rest = await client.issues.list(
            ORG, page_size=20, cursor=position.cursor, skip=position.skip
        ).collect()
    assert first + [issue.id for issue in rest] == expected


async def test_limit_leaves_a_cursor_that_resumes_without_duplicates(
    fake_sentry: FakeSentry, client: SentryClient
) -> None:
    project = _project(fake_sentry)
    expected = _events_since(fake_sentry, project, 30, listed=True)
    assert len(expected) > 25
    capped = client.events.for_project(ORG, project, period="30d", page_size=10, limit=23)
    with anyio.fail_after(10):
        head = [event.id for event in await capped.collect()]
        position = capped.position
        assert len(head) == 23 and position.skip == 3 and not position.done
        sizes = [r.param("per_page") for r in fake_sentry.requests]
        assert sizes == ["10", "10", "10"], "the page size never changes mid-stream"
        tail = await client.events.for_project(
            ORG, project, period="30d", page_size=10, cursor=position.cursor, skip=position.skip
        ).collect()
    ids = head + [event.id for event in tail]
    assert ids == expected
    assert len(set(ids)) == len(ids)


@pytest.mark.parametrize("limit", [1, 3, 4, 5, 7])
async def test_limit_on_page_number_cursors_loses_and_repeats_nothing(
    fake_sentry_factory: Callable[..., Awaitable[FakeSentry]], limit: int
) -> None:
    # The projects list uses Sentry's OffsetPaginator: cursors are <size>:<page>:<prev> and
    # only valid for the page size they were made with.
    server = await fake_sentry_factory(
        scale=SeedConfig(orgs=1, projects_per_org=9, issues_per_project=1, events_per_issue=(1, 1))
    )
    expected = server.data.project_slugs(ORG)
    assert len(expected) == 9
    with anyio.fail_after(10):
        async with SentryClient(server.token, base_url=server.url) as client:
            capped = client.projects.list(ORG, page_size=4, limit=limit)
            head = [project.slug for project in await capped.collect()]
            position = capped.position
            tail = await client.projects.list(
                ORG, page_size=4, cursor=position.cursor, skip=position.skip
            ).collect()
    slugs = head + [project.slug for project in tail]
    assert len(head) == limit
    assert sorted(slugs) == sorted(expected) and len(set(slugs)) == len(slugs)


async def test_pages_position_resumes_at_page_boundary(
    fake_sentry: FakeSentry, client: SentryClient
) -> None:
    project = _project(fake_sentry, 1)
    fields = ["id", "timestamp"]
    expected = _events_since(fake_sentry, project, 30)
    paginator = client.discover.query(
        ORG, fields=fields, project=project, period="30d", sort="-timestamp", page_size=9
    )
    seen: list[str] = []
    with anyio.fail_after(10):
        async for page in paginator.pages():
            seen.extend(row["id"] for row in page.items)
            if len(seen) >= 18:
                break
        resume = paginator.position
        rest = await client.discover.query(
            ORG,
            fields=fields,
            project=project,
            period="30d",
            sort="-timestamp",
            page_size=9,
            cursor=resume.cursor,
        ).collect()
    assert resume.skip == 0
    ids = seen + [row["id"] for row in rest]
    assert sorted(ids) == sorted(expected) and len(set(ids)) == len(ids)
