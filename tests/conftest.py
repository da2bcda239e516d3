"""Test configuration: every async test runs on asyncio (aiohttp needs it) through anyio."""

from __future__ import annotations

import inspect
import os
from collections.abc import Iterator
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


def proxy_variables() -> list[str]:
    """Every variable urllib (and so the client) would read a proxy or NO_PROXY from."""
    return [name for name in os.environ if name.lower().endswith("_proxy")]


@pytest.fixture(autouse=True, scope="session")
def _no_proxy_from_the_developer() -> Iterator[None]:
    """The suite talks to 127.0.0.1 only: a proxy set in the shell must not route it (nor
    a CA bundle replace the ones a test builds). Session-wide, before any other fixture;
    subprocesses inherit the cleared environment."""
    with pytest.MonkeyPatch.context() as patch:
        for name in proxy_variables():
            patch.delenv(name)
        patch.delenv("SSL_CERT_FILE", raising=False)
        yield


@pytest.fixture(scope="session")
def anyio_backend() -> str:
    """asyncio only, even where trio is installed: the client and the fake run on aiohttp."""
    return "asyncio"


@pytest.fixture
def fake_sentry_now() -> datetime:
    """The suite's fake data is pinned to one instant, so its expectations never move."""
    return FIXED_NOW
