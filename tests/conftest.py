"""Test configuration: every async test runs on asyncio (aiohttp needs it) through anyio."""

from __future__ import annotations

import inspect
from datetime import datetime
from typing import Any

import pytest

from sentry_async.testing.pytest_plugin import FIXED_NOW


@pytest.hookimpl(tryfirst=True)
def pytest_pycollect_makeitem(collector: pytest.Collector, name: str, obj: Any) -> None:
    # Marked at collection (before parametrisation) so anyio's plugin sees the marker and
    # wires its backend fixture into parametrised tests too.
    if inspect.iscoroutinefunction(obj) and name.startswith("test"):
        pytest.mark.anyio(obj)


@pytest.fixture(scope="session")
def anyio_backend() -> str:
    """asyncio only, even where trio is installed: the client and the fake run on aiohttp."""
    return "asyncio"


@pytest.fixture
def fake_sentry_now() -> datetime:
    """The suite's fake data is pinned to one instant, so its expectations never move."""
    return FIXED_NOW
