"""What hooks are told: one ``on_response`` per attempt whatever ends it, waits that
really happen, the status of an attempt that failed after its status line, and hook
objects refused when they could never run."""

from __future__ import annotations

import pytest

from sentry_async import HookEvent, Hooks, SentryClient


class AsyncMetrics(Hooks):
    async def on_response(self, event: HookEvent) -> None:  # type: ignore[override]
        pass


def test_an_async_def_callback_is_refused_at_construction() -> None:
    """Hooks are called synchronously: a coroutine function would never run."""
    with pytest.raises(TypeError, match=r"AsyncMetrics\.on_response.*async def"):
        SentryClient("token", hooks=[AsyncMetrics()])
