"""The same fixtures in a project that runs its async tests with anyio's plugin.

Tests that use the fake's fixtures run on asyncio only (the client needs it), even where
trio is installed and anyio would otherwise run each test on both.
"""

from __future__ import annotations

import pytest
from sentry_async.testing import FakeSentry, FakeSentryFactory

from triage import fatal_issues, resolve_stale

pytestmark = pytest.mark.anyio


async def test_fatal_issues_with_built_data(fake_sentry_factory: FakeSentryFactory) -> None:
    server = await fake_sentry_factory(orgs=0)
    backend = server.builder.add_organization("acme").add_project("backend")
    crash = backend.add_issue("SIGSEGV: segmentation fault", level="fatal")

    async with server.client() as sentry:
        assert await fatal_issues(sentry, "acme", backend.id) == [crash.short_id]

    server.requests.assert_called_once("GET", "/organizations/{org}/issues/", project=backend.id)


async def test_nothing_stale_means_no_update(fake_sentry: FakeSentry) -> None:
    from datetime import timedelta

    async with fake_sentry.client() as sentry:
        assert await resolve_stale(sentry, "org-0", quiet_for=timedelta(days=365)) == []
    fake_sentry.requests.assert_not_called("PUT", "/organizations/{org}/issues/")
