"""Test configuration: every async test runs on asyncio (aiohttp needs it) through anyio."""

from __future__ import annotations

import asyncio
import inspect
import os
import sys
from collections.abc import AsyncIterator, Iterator
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


@pytest.fixture
async def abandoned_generators(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[list[str]]:
    """The async generators the test left for the event loop's finalizer, by name.

    The loop closes an abandoned generator in a task of its own some passes later, so
    whatever it holds (a read-ahead, a connection) outlives the call that dropped it. The
    list is read before the fixture closes them; each test asserts it empty.
    """
    loop = asyncio.get_running_loop()
    abandoned: list[Any] = []
    names: list[str] = []

    def finalizer(agen: Any) -> None:
        abandoned.append(agen)
        names.append(agen.__qualname__)

    # The loop installs its hooks again each time it runs (once for the fixture, once for
    # the test), from this attribute.
    monkeypatch.setattr(loop, "_asyncgen_finalizer_hook", finalizer)
    hooks = sys.get_asyncgen_hooks()
    sys.set_asyncgen_hooks(firstiter=hooks.firstiter, finalizer=finalizer)
    try:
        yield names
    finally:
        sys.set_asyncgen_hooks(*hooks)
        for agen in abandoned:
            await agen.aclose()


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
def _no_inner_generator_left_to_the_loop(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Every test fails if one of the library's inner async generators reaches the event
    loop's finalizer: the code that walks one must close it, or what it holds (a
    read-ahead, a connection) outlives the call that dropped it."""
    found: list[str] = []
    original = asyncio.BaseEventLoop._asyncgen_finalizer_hook  # type: ignore[attr-defined]

    def finalizer(loop: asyncio.BaseEventLoop, agen: Any) -> None:
        inner = f"{os.sep}sentry_async{os.sep}" in agen.ag_code.co_filename
        if inner and agen.__qualname__ not in USER_FACING_GENERATORS:
            found.append(agen.__qualname__)
        original(loop, agen)

    monkeypatch.setattr(asyncio.BaseEventLoop, "_asyncgen_finalizer_hook", finalizer)
    yield
    assert found == [], "left for the event loop to close"
