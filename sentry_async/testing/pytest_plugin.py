"""pytest fixtures for the fake Sentry server (registered through the ``pytest11`` entry point).

The fixtures are synchronous and the servers run on a background thread's event loop, so
they serve ``async def`` tests run by pytest-asyncio (strict or auto mode) or anyio's
plugin, and plain ``def`` tests, alike. The plugin changes nothing else: it defines no
event loop or ``anyio_backend`` fixture. Only tests that use its fixtures and that anyio
parametrises over several backends are pinned to asyncio (the others are deselected),
because ``SentryClient`` runs on aiohttp, which needs asyncio. The fake (and aiohttp) is
imported by the fixtures, not when pytest loads the plugin: sessions that never use it do
not pay for it.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from ._factory import FakeSentryFactory
    from ._server import FakeSentry

__all__ = ["FIXED_NOW", "fake_sentry", "fake_sentry_factory", "fake_sentry_now"]

FIXED_NOW = datetime(2026, 6, 1, 12, 0, tzinfo=timezone.utc)
"""A fixed instant to pin ``fake_sentry_now`` to, so expectations do not move with the clock."""

FIXTURES = frozenset({"fake_sentry", "fake_sentry_factory"})
_PINNED = pytest.StashKey[int]()


@pytest.fixture
def fake_sentry_now() -> datetime:
    """The instant the fixtures' data is anchored to: the current time, to the second.

    Seeded events lie in the days before it, so ``start=now - 1d`` finds some. Override
    this fixture (in a ``conftest.py``) to pin it, e.g. to ``FIXED_NOW``.
    """
    return datetime.now(timezone.utc).replace(microsecond=0)


@pytest.fixture
def fake_sentry_factory(fake_sentry_now: datetime) -> Iterator[FakeSentryFactory]:
    """``await fake_sentry_factory(projects=2, issues=5, ...)`` starts more servers.

    Every server it started is stopped after the test.
    """
    from ._factory import FakeSentryFactory

    factory = FakeSentryFactory(now=fake_sentry_now)
    try:
        yield factory
    finally:
        factory.close()


@pytest.fixture
def fake_sentry(fake_sentry_factory: FakeSentryFactory) -> FakeSentry:
    """A started fake Sentry with the small seeded data set, stopped after the test."""
    return fake_sentry_factory.start()


def _backend_name(backend: Any) -> Any:
    return backend[0] if isinstance(backend, tuple) else backend


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    keep: list[pytest.Item] = []
    drop: list[pytest.Item] = []
    for item in items:
        callspec = getattr(item, "callspec", None)
        backend = callspec.params.get("anyio_backend") if callspec is not None else None
        uses_fake = FIXTURES.intersection(getattr(item, "fixturenames", ()))
        if backend is not None and uses_fake and _backend_name(backend) != "asyncio":
            drop.append(item)
        else:
            keep.append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep
        config.stash[_PINNED] = len(drop)


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    pinned = config.stash.get(_PINNED, 0)
    if pinned:
        terminalreporter.write_line(
            f"sentry_async: {pinned} non-asyncio anyio runs of tests using the fake Sentry "
            "deselected (the client runs on aiohttp, which needs asyncio)"
        )
