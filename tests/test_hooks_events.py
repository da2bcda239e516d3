"""What hooks are told: one ``on_response`` per attempt whatever ends it, waits that
really happen, the status of an attempt that failed after its status line, and hook
objects refused when they could never run."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, TypeVar

import anyio
import pytest
from _hooks_recorder import Recorder, attempts, calls, memory_spans

from sentry_async import (
    HookEvent,
    Hooks,
    OpenTelemetryHooks,
    RateLimited,
    RetryPolicy,
    SentryClient,
    SentryError,
)
from sentry_async.testing import FakeSentry, Fault

TOKEN = "tok-hooks-7f6e5d4c3b"
T = TypeVar("T")
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


async def aenumerate(items: AsyncIterator[T]) -> AsyncIterator[tuple[int, T]]:
    seen = 0
    async for item in items:
        yield seen, item
        seen += 1


class InFlight(Hooks):
    """A gauge of attempts in flight, as a metrics hook keeps one."""

    def __init__(self) -> None:
        self.in_flight = 0
        self.reasons: list[str | None] = []

    def on_request(self, event: HookEvent) -> None:
        self.in_flight += 1

    def on_response(self, event: HookEvent) -> None:
        self.in_flight -= 1
        self.reasons.append(event.reason)


async def test_every_attempt_sent_is_answered_even_when_cancelled_or_its_sink_raises(
    server: FakeSentry,
) -> None:
    gauge = InFlight()
    org = server.data.org_slugs()[0]

    async def broken_sink(chunk: bytes) -> None:
        raise OSError("disk full")

    with anyio.fail_after(20):
        async with SentryClient(TOKEN, base_url=server.url, retry=FAST, hooks=gauge) as client:
            # a caller's timeout cancels the request in flight
            server.faults.add(Fault("slow", delay=2.0, path="/issues/", times=1))
            with anyio.move_on_after(0.2):
                await client.request("GET", f"/organizations/{org}/issues/")
            # leaving a walk cancels the read-ahead request the library sent on its own
            server.faults.add(Fault("slow", delay=2.0, path="/issues/", after=2, times=None))
            issues = client.issues.list(org, page_size=2)
            async for seen, _ in aenumerate(issues):
                if seen == 2:  # on the second page: the third is being read ahead
                    break
            await issues.aclose()
            with pytest.raises(OSError, match="disk full"):
                await client.download("/organizations/", broken_sink)
    assert server.requests.matching("GET", "/organizations/{org}/issues/")  # sent, then cut
    assert gauge.in_flight == 0
    assert gauge.reasons.count("cancelled") == 1  # the caller's timeout
    assert gauge.reasons.count("abandoned") == 1  # the read-ahead the walk left
    assert "sink" in gauge.reasons


@pytest.mark.parametrize(
    ("fault", "options", "status", "reason"),
    [
        (Fault("drop_mid_body", path="/issues/"), {}, 200, "payload"),
        (None, {"max_body_size": 100}, 200, "too_large"),
        (Fault("redirect", location="http://127.0.0.2:9/x", path="/issues/"), {}, 302, "redirect"),
    ],
    ids=["body-cut", "body-too-large", "refused-redirect"],
)
async def test_an_attempt_failing_after_its_status_line_reports_the_status(
    server: FakeSentry, fault: Fault | None, options: dict[str, Any], status: int, reason: str
) -> None:
    if fault is not None:
        server.faults.add(fault)
    exporter, provider = memory_spans()
    recorder = Recorder()
    hooks = [recorder, OpenTelemetryHooks(provider)]
    org = server.data.org_slugs()[0]
    once = RetryPolicy(attempts=1)
    async with SentryClient(TOKEN, base_url=server.url, retry=once, hooks=hooks, **options) as c:
        with pytest.raises(SentryError):
            await c.request("GET", f"/organizations/{org}/issues/")
    assert [(e.status, e.reason) for e in recorder.of("response")] == [(status, reason)]
    assert recorder.of("done")[0].status == status
    for (span,) in (attempts(exporter), calls(exporter)):
        assert span.attributes["http.response.status_code"] == status


_FIRST_REQUEST = """
import asyncio, sys
from sentry_async import HookEvent, Hooks, SentryClient
from sentry_async.testing import FakeSentry

class Waits(Hooks):
    def __init__(self):
        self.waits = []

    def on_rate_limit_wait(self, event: HookEvent) -> None:
        self.waits.append((event.reason, event.wait))

async def main():
    async with FakeSentry(scale="small") as server:
        print("anyio._backends._asyncio" in sys.modules)
        hooks = Waits()
        async with SentryClient(server.token, base_url=server.url, hooks=hooks) as client:
            await client.request("GET", "/organizations/")
        print(hooks.waits)

asyncio.run(main())
"""


def test_the_first_request_of_a_process_reports_no_limiter_wait() -> None:
    """The first limiter slot of a process loads anyio's asyncio backend: that is no wait.
    (A fresh process, where the backend is not loaded yet.)"""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SENTRY_")}
    run = subprocess.run(
        [sys.executable, "-c", _FIRST_REQUEST],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        cwd=Path(__file__).parent.parent,
    )
    assert run.returncode == 0, run.stderr
    assert run.stdout.split("\n")[:2] == ["False", "[]"]


async def test_a_renamed_project_followed_is_a_move_not_a_failure(server: FakeSentry) -> None:
    org = server.data.org_slugs()[0]
    old = server.data.project_slugs(org)[0]
    server.data.rename_project(org, old, old + "-renamed")
    exporter, provider = memory_spans()
    recorder = Recorder()
    hooks = [recorder, OpenTelemetryHooks(provider)]
    async with SentryClient(TOKEN, base_url=server.url, retry=FAST, hooks=hooks) as client:
        assert (await client.projects.get(org, old)).slug == old + "-renamed"
    assert [(e.status, e.reason) for e in recorder.of("done")] == [(302, "moved"), (200, None)]
    spans = exporter.get_finished_spans()
    assert [span.attributes["http.response.status_code"] for span in spans] == [302] * 2 + [200] * 2
    assert not [span for span in spans if "error.type" in span.attributes]
    assert {span.status.status_code.name for span in spans} == {"UNSET"}
