"""The application's tests, plain ``async def``: run by pytest-asyncio or anyio in auto mode.

``fake_sentry`` is a started fake Sentry with seeded data anchored to the current time;
``fake_sentry_factory`` starts servers shaped by keywords; ``server.builder`` adds data of
our own; ``server.requests`` is what the application sent.
"""

from __future__ import annotations

from datetime import timedelta

from sentry_async.testing import FakeSentry, FakeSentryFactory, Fault

from triage import events_last_day, fatal_issues, resolve_stale, who_crashed


async def test_fatal_issues_lists_only_unresolved_fatal_ones(
    fake_sentry_factory: FakeSentryFactory,
) -> None:
    server = await fake_sentry_factory(orgs=0)  # nothing seeded: only what we add
    backend = server.builder.add_organization("acme").add_project("backend")
    oom = backend.add_issue("MemoryError: out of memory", level="fatal")
    backend.add_issue("KeyError: 'user_id'", level="error")
    backend.add_issue("SystemExit: 70", level="fatal", status="resolved")

    async with server.client() as sentry:
        assert await fatal_issues(sentry, "acme", backend.id) == [oom.short_id]

    server.requests.assert_called_once(
        "GET", "/organizations/{org}/issues/", query="is:unresolved", project=backend.id
    )


async def test_resolve_stale_resolves_only_quiet_issues(
    fake_sentry_factory: FakeSentryFactory,
) -> None:
    server = await fake_sentry_factory(orgs=0)
    web = server.builder.add_organization("acme").add_project("web", platform="javascript")
    old = web.add_issue("TypeError: x is undefined", events=0)
    old.add_event(timestamp=server.now - timedelta(days=30))
    web.add_issue("RangeError: invalid array length")  # seen a minute ago

    async with server.client() as sentry:
        assert await resolve_stale(sentry, "acme", quiet_for=timedelta(days=7)) == [old.id]

    update = server.requests.assert_called_once("PUT", "/organizations/acme/issues/")
    assert update.params("id") == [old.id]
    assert update.json() == {"status": "resolved"}


async def test_who_crashed_reads_the_latest_event(fake_sentry: FakeSentry) -> None:
    project = fake_sentry.builder.organization("org-0").add_project("checkout")
    issue = project.add_issue("ChunkLoadError: loading chunk 7 failed", events=0)
    issue.add_event(user={"id": "7", "email": "ada@example.com"}, tags={"browser": "Firefox"})

    async with fake_sentry.client() as sentry:
        assert await who_crashed(sentry, "org-0", issue.id) == ("ada@example.com", "Firefox")

    latest = f"/organizations/org-0/issues/{issue.id}/events/latest/"
    fake_sentry.requests.assert_called_once("GET", latest)


async def test_a_rate_limit_is_waited_out(fake_sentry: FakeSentry) -> None:
    fake_sentry.faults.add(Fault("rate_limit", path="/issues/", retry_after=0.1, times=1))
    project = fake_sentry.builder.organization("org-1").add_project("api")
    project.add_issue("OperationalError: database is locked", level="fatal")

    async with fake_sentry.client() as sentry:
        assert await fatal_issues(sentry, "org-1", project.id) != []

    listed = fake_sentry.requests.matching("GET", "/organizations/{org}/issues/")
    assert [r.status for r in listed] == [429, 200]


async def test_seeded_data_is_recent(fake_sentry: FakeSentry) -> None:
    # Seeded events lie in the days before the current time, so a one-day window finds some.
    org = "org-0"
    async with fake_sentry.client() as sentry:
        counts = [
            await events_last_day(sentry, org, project)
            for project in fake_sentry.data.project_slugs(org)
        ]
    assert sum(counts) > 0
    recorded = fake_sentry.requests.last("GET", "/projects/{org}/{project}/events/")
    assert recorded.param("start") is not None and recorded.param("end") is not None
