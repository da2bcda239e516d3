"""The client the resource tests share: retries kept short."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from resource_helpers import FAST_RETRY

from sentry_async import SentryClient
from sentry_async.testing import FakeSentry


@pytest.fixture
async def client(fake_sentry: FakeSentry) -> AsyncIterator[SentryClient]:
    async with SentryClient(fake_sentry.token, base_url=fake_sentry.url, retry=FAST_RETRY) as sc:
        yield sc
