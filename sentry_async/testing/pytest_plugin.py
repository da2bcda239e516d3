"""pytest fixtures for the fake Sentry server (registered through the ``pytest11`` entry point).

Tests are ``async def`` run by anyio's pytest plugin on asyncio (aiohttp needs asyncio).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import datetime, timezone
from typing import Any

import pytest

from ._server import FakeSentry

__all__ = ["FIXED_NOW", "anyio_backend", "fake_sentry", "fake_sentry_factory"]

FIXED_NOW = datetime(2026, 6, 1, 12, 0, tzinfo=timezone.utc)
"""The ``now`` the fixtures' data is anchored to, so expectations do not move with the clock."""


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
async def fake_sentry() -> AsyncIterator[FakeSentry]:
    """A started small fake Sentry, closed after the test."""
    async with FakeSentry(scale="small", now=FIXED_NOW) as server:
        yield server


@pytest.fixture
async def fake_sentry_factory() -> AsyncIterator[Callable[..., Awaitable[FakeSentry]]]:
    """``await fake_sentry_factory(**kwargs)`` starts more servers; all close at teardown."""
    servers: list[FakeSentry] = []

    async def make(**kwargs: Any) -> FakeSentry:
        kwargs.setdefault("scale", "small")
        kwargs.setdefault("now", FIXED_NOW)
        server = FakeSentry(**kwargs)
        await server.start()
        servers.append(server)
        return server

    yield make
    for server in servers:
        await server.close()
