"""Test configuration: every async test runs on asyncio (aiohttp needs it) through anyio."""

from __future__ import annotations

import asyncio
import inspect
import os
from collections.abc import AsyncIterator, Iterator
from datetime import datetime
from typing import Any

import pytest

from sentry_async import RetryPolicy, SentryClient
from sentry_async.testing import FakeSentry
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


QUICK_RETRY = RetryPolicy(attempts=2, backoff_base=0.01, backoff_max=0.05)
"""Retries that keep a test's fault short: a second attempt a few milliseconds later."""


QUICK_BACKOFF = RetryPolicy(backoff_base=0.01, backoff_max=0.05)
"""The default number of attempts, a few milliseconds apart: a fault that outlasts them all
fails the call as it would by default, without the default's seconds of backoff."""


@pytest.fixture
def quick_default_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    """Clients made without ``retry=`` (the command line's) back off for milliseconds."""
    monkeypatch.setattr("sentry_async.client.RetryPolicy", lambda: QUICK_BACKOFF)


@pytest.fixture
async def client(fake_sentry: FakeSentry) -> AsyncIterator[SentryClient]:
    """A client of the test's fake server (a test file may define its own)."""
    async with SentryClient(fake_sentry.token, base_url=fake_sentry.url, retry=QUICK_RETRY) as sc:
        yield sc


USER_FACING_GENERATORS = frozenset(
    {
        "Paginator._items",
        "Paginator.pages",
        "stream",
        "Downloads.stream",
        "discover_batches",
    }
)
"""The library's async generators a caller iterates, and may leave with ``break``."""


@pytest.fixture(autouse=True)
def abandoned_generators(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """The async generators the test left for the event loop's finalizer, by name (a test
    that must leave none asserts the list empty).

    The loop closes an abandoned generator in a task of its own some passes later, so
    whatever it holds (a read-ahead, a connection) outlives the call that dropped it. Every
    test fails if one of the library's inner generators is among them: the code that walks
    one must close it. The loop still closes each one as it would.
    """
    names: list[str] = []
    inner: list[str] = []
    original = asyncio.BaseEventLoop._asyncgen_finalizer_hook  # type: ignore[attr-defined]

    def finalizer(loop: asyncio.BaseEventLoop, agen: Any) -> None:
        names.append(agen.__qualname__)
        library = f"{os.sep}sentry_async{os.sep}" in agen.ag_code.co_filename
        if library and agen.__qualname__ not in USER_FACING_GENERATORS:
            inner.append(agen.__qualname__)
        original(loop, agen)

    # Read by the loop each time it starts running (for each fixture, then the test).
    monkeypatch.setattr(asyncio.BaseEventLoop, "_asyncgen_finalizer_hook", finalizer)
    yield names
    assert inner == [], "left for the event loop to close"
