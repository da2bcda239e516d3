"""Test configuration: every async test runs on asyncio (aiohttp needs it) through anyio."""

from __future__ import annotations

import inspect
from typing import Any

import pytest


@pytest.hookimpl(tryfirst=True)
def pytest_pycollect_makeitem(collector: pytest.Collector, name: str, obj: Any) -> None:
    # Marked at collection (before parametrisation) so anyio's plugin sees the marker and
    # wires its backend fixture into parametrised tests too.
    if inspect.iscoroutinefunction(obj) and name.startswith("test"):
        pytest.mark.anyio(obj)
