"""Requests the library sent on its own and then dropped (a read-ahead left by ``break``
or ``aclose()``, a fan_out's siblings at its teardown) end as ``abandoned``, not as
failures; a cancellation by the caller stays ``cancelled``, an error."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import anyio
import pytest
from _hooks_recorder import Recorder, attempts, calls, memory_spans

from sentry_async import OpenTelemetryHooks, RetryPolicy, SentryClient, fan_out
from sentry_async.testing import FakeSentry, Fault

TOKEN = "tok-abandon-9a8b7c6d5e"
FAST = RetryPolicy(attempts=3, backoff_base=0.01, backoff_max=0.02, jitter=0)
SLOW = 5.0
"""Far longer than any test waits: a request this slow is cut, never answered."""


@pytest.fixture
async def server() -> AsyncIterator[FakeSentry]:
    async with FakeSentry(scale="small", token=TOKEN) as server:
        yield server


def _outcomes(recorder: Recorder) -> list[tuple[Any, Any]]:
    """Each request's attempt outcome and its end, in the order the requests ended."""
    responses = {event.id: event.reason for event in recorder.of("response")}
    return [(responses.get(event.id), event.reason) for event in recorder.of("done")]


async def _drain(streams: dict[str, Any]) -> None:
    async with fan_out(streams) as merged:
        async for _ in merged:
            pass


async def _stop_a_walk(client: SentryClient, org: str, how: str) -> None:
    issues = client.issues.list(org, page_size=2).read_ahead(2)
    if how == "break":
        async for _ in issues:
            break  # the second page is being read ahead
    else:
        await issues.__anext__()
    await issues.aclose()


@pytest.mark.parametrize("how", ["break", "aclose"])
async def test_a_read_ahead_left_by_the_consumer_is_abandoned_not_failed(
    server: FakeSentry, how: str
) -> None:
    recorder = Recorder()
    org = server.data.org_slugs()[0]
    server.faults.add(Fault("slow", delay=SLOW, path="/issues/", after=1, times=None))
    with anyio.fail_after(20):
        async with SentryClient(TOKEN, base_url=server.url, hooks=recorder) as client:
            await _stop_a_walk(client, org, how)
    assert _outcomes(recorder) == [(None, None), ("abandoned", "abandoned")]


async def test_a_caller_cancelling_a_walk_waiting_for_its_read_ahead_is_a_cancellation(
    server: FakeSentry,
) -> None:
    recorder = Recorder()
    org = server.data.org_slugs()[0]
    server.faults.add(Fault("slow", delay=SLOW, path="/issues/", after=1, times=None))
    with anyio.fail_after(20):
        async with SentryClient(TOKEN, base_url=server.url, hooks=recorder) as client:
            issues = client.issues.list(org, page_size=2).read_ahead(2)
            with anyio.move_on_after(0.3):
                async for _ in issues:
                    pass  # waits for the slow second page
            await issues.aclose()
    assert _outcomes(recorder) == [(None, None), ("cancelled", "CancelledError")]


async def test_a_fan_out_failing_abandons_the_requests_of_its_other_streams(
    server: FakeSentry,
) -> None:
    recorder = Recorder()
    server.faults.add(Fault("slow", delay=SLOW, path="/organizations/$", times=None))
    sent = anyio.Event()

    async def slow(client: SentryClient) -> AsyncIterator[Any]:
        sent.set()
        yield await client.request("GET", "/organizations/")

    async def failing() -> AsyncIterator[Any]:
        await sent.wait()
        await anyio.sleep(0.1)  # the other stream's request is in flight
        raise RuntimeError("stream failed")
        yield  # pragma: no cover - an async generator

    with anyio.fail_after(20):
        async with SentryClient(TOKEN, base_url=server.url, hooks=recorder) as client:
            with pytest.raises(RuntimeError, match="stream failed"):
                await _drain({"slow": lambda: slow(client), "bad": failing})
    assert _outcomes(recorder) == [("abandoned", "abandoned")]


async def test_a_fan_out_left_by_break_abandons_and_a_caller_timeout_cancels(
    server: FakeSentry,
) -> None:
    recorder = Recorder()
    org = server.data.org_slugs()[0]
    server.faults.add(Fault("slow", delay=SLOW, path="/organizations/$", times=None))

    async def slow(client: SentryClient) -> AsyncIterator[Any]:
        yield await client.request("GET", "/organizations/")

    async def quick(client: SentryClient) -> AsyncIterator[Any]:
        yield await client.request("GET", f"/organizations/{org}/")

    with anyio.fail_after(20):
        async with SentryClient(TOKEN, base_url=server.url, hooks=recorder) as client:
            streams = {"quick": lambda: quick(client), "slow": lambda: slow(client)}
            async with fan_out(streams) as merged:
                async for _ in merged:
                    break  # the slow stream's request is in flight
            left = _outcomes(recorder)
            with anyio.move_on_after(0.3):
                await _drain({"slow": lambda: slow(client)})
    assert left == [(None, None), ("abandoned", "abandoned")]
    assert _outcomes(recorder)[2:] == [("cancelled", "CancelledError")]


async def test_an_abandoned_request_ends_its_spans_without_error(server: FakeSentry) -> None:
    exporter, provider = memory_spans()
    org = server.data.org_slugs()[0]
    server.faults.add(Fault("slow", delay=SLOW, path="/issues/", after=1, times=None))
    with anyio.fail_after(20):
        async with SentryClient(
            TOKEN, base_url=server.url, retry=FAST, hooks=OpenTelemetryHooks(provider)
        ) as client:
            await _stop_a_walk(client, org, "break")
            with anyio.move_on_after(0.3):
                await client.request("GET", f"/organizations/{org}/issues/", params={"cursor": "x"})
    read, abandoned, cancelled = calls(exporter)
    assert [span.status.status_code.name for span in (read, abandoned)] == ["UNSET", "UNSET"]
    for span in [abandoned, *(a for a in attempts(exporter) if a.parent == abandoned.context)]:
        assert span.status.status_code.name == "UNSET"
        assert "error.type" not in span.attributes
        assert span.attributes["sentry_async.abandoned"] is True
    assert len([a for a in attempts(exporter) if a.parent == abandoned.context]) == 1
    assert cancelled.status.status_code.name == "ERROR"
    assert cancelled.attributes["error.type"] == "CancelledError"
    assert "sentry_async.abandoned" not in cancelled.attributes
