"""What hooks are told: one ``on_response`` per attempt whatever ends it, waits that
really happen, the status of an attempt that failed after its status line, and hook
objects refused when they could never run."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from _hooks_recorder import Recorder

from sentry_async import HookEvent, Hooks, RateLimited, RetryPolicy, SentryClient
from sentry_async.testing import FakeSentry, Fault

TOKEN = "tok-hooks-7f6e5d4c3b"
FAST = RetryPolicy(attempts=3, backoff_base=0.01, backoff_max=0.02, jitter=0)


@pytest.fixture
async def server() -> AsyncIterator[FakeSentry]:
    async with FakeSentry(scale="small", token=TOKEN) as server:
        yield server


class AsyncMetrics(Hooks):
    async def on_response(self, event: HookEvent) -> None:  # type: ignore[override]
        pass


def test_an_async_def_callback_is_refused_at_construction() -> None:
    """Hooks are called synchronously: a coroutine function would never run."""
    with pytest.raises(TypeError, match=r"AsyncMetrics\.on_response.*async def"):
        SentryClient("token", hooks=[AsyncMetrics()])


@pytest.mark.parametrize(
    ("retry_after", "attempts"),
    [(1_000_000_000, 3), (0.05, 1)],
    ids=["wait-past-max-wait", "last-attempt"],
)
async def test_a_429_reports_a_server_wait_only_when_a_retry_waits_it_out(
    server: FakeSentry, retry_after: float, attempts: int
) -> None:
    server.faults.add(Fault("rate_limit", retry_after=retry_after, times=1))
    recorder = Recorder()
    policy = RetryPolicy(attempts=attempts, backoff_base=0.01, max_wait=300)
    async with SentryClient(TOKEN, base_url=server.url, retry=policy, hooks=recorder) as client:
        with pytest.raises(RateLimited):
            await client.request("GET", "/organizations/")
    assert recorder.names() == ["start", "request", "response", "done"]
    assert recorder.of("done")[0].reason == "RateLimited"


async def test_a_429_waited_out_reports_the_wait_once(server: FakeSentry) -> None:
    server.faults.add(Fault("rate_limit", retry_after=0.05, times=1))
    recorder = Recorder()
    async with SentryClient(TOKEN, base_url=server.url, retry=FAST, hooks=recorder) as client:
        await client.request("GET", "/organizations/")
    waits = [(e.reason, e.status, e.wait) for e in recorder.of("rate_limit_wait")]
    assert ("server", 429, 0.05) in waits
    assert [w for w in waits if w[0] == "server"] == [("server", 429, 0.05)]
