"""The same fixtures in a pytest-asyncio project in strict mode: each test is marked."""

from __future__ import annotations

import pytest
from sentry_async.testing import FakeSentry, FakeSentryFactory

from triage import fatal_issues

pytestmark = pytest.mark.asyncio


async def test_fatal_issues_with_built_data(fake_sentry_factory: FakeSentryFactory) -> None:
    server = await fake_sentry_factory(orgs=0)
    backend = server.builder.add_organization("acme").add_project("backend")
    crash = backend.add_issue("SIGSEGV: segmentation fault", level="fatal")

    async with server.client() as sentry:
        assert await fatal_issues(sentry, "acme", backend.id) == [crash.short_id]

    server.requests.assert_called("GET", "/organizations/acme/issues/", query="is:unresolved")
    server.requests.assert_not_called("PUT")


async def test_seeded_data_shaped_by_keywords(fake_sentry_factory: FakeSentryFactory) -> None:
    server: FakeSentry = await fake_sentry_factory(projects=2, issues=3, events_per_issue=1)
    async with server.client() as sentry:
        projects = [p.slug async for p in sentry.projects.list("org-0")]
        issues = await sentry.issues.list("org-0", query="").collect()
    assert len(projects) == 2 and len(issues) == 2 * 3
    assert len(server.requests.matching("GET", "/organizations/{org}/projects/")) == 1
