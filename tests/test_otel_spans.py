"""OpenTelemetry spans as the HTTP client conventions ask: one CLIENT span per attempt
sent, under an INTERNAL span for the call, with the server, the route template and a URL
that carries no slug, id or query value."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from _hooks_recorder import memory_spans

from sentry_async import OpenTelemetryHooks, RetryPolicy, SentryClient
from sentry_async.testing import FakeSentry, Fault

TOKEN = "tok-otel-1a2b3c4d5e"
FAST = RetryPolicy(attempts=3, backoff_base=0.01, backoff_max=0.02, jitter=0)
ISSUES = "/organizations/{org}/issues/"


@pytest.fixture
async def server() -> AsyncIterator[FakeSentry]:
    async with FakeSentry(scale="small", token=TOKEN) as server:
        yield server


async def test_each_attempt_is_a_client_span_under_the_call(server: FakeSentry) -> None:
    exporter, provider = memory_spans()
    server.faults.add(Fault("status", status=503, times=1, path="/issues/"))
    org = server.data.org_slugs()[0]
    async with SentryClient(
        TOKEN, base_url=server.url, retry=FAST, hooks=OpenTelemetryHooks(provider)
    ) as client:
        await client.request(
            "GET", f"/organizations/{org}/issues/", params={"query": "is:unresolved"}
        )
    first, second, call = exporter.get_finished_spans()
    assert call.kind.name == "INTERNAL" and call.parent is None
    assert [span.kind.name for span in (first, second)] == ["CLIENT", "CLIENT"]
    assert {span.name for span in (first, second, call)} == {f"GET {ISSUES}"}
    assert first.parent.span_id == second.parent.span_id == call.context.span_id
    port = int(server.url.rsplit(":", 1)[1])
    sent: dict[str, Any] = {
        "http.request.method": "GET",
        "sentry_async.endpoint_group": f"GET {ISSUES}",
        "server.address": "127.0.0.1",
        "server.port": port,
        "url.template": ISSUES,
        "url.full": f"http://127.0.0.1:{port}/api/0{ISSUES}",
    }
    assert dict(first.attributes) == {
        **sent,
        "http.response.status_code": 503,
        "error.type": "503",
    }
    assert first.status.status_code.name == "ERROR"
    assert dict(second.attributes) == {
        **sent,
        "http.request.resend_count": 1,
        "http.response.status_code": 200,
    }
    assert second.status.status_code.name == "UNSET"
    assert dict(call.attributes) == {
        **sent,
        "http.request.resend_count": 1,
        "http.response.status_code": 200,
        "sentry_async.attempts": 2,
    }
    assert [event.name for event in call.events] == ["retry"]
    recorded = repr([dict(span.attributes) for span in (first, second, call)])
    for secret in (TOKEN, org, "unresolved", "query"):
        assert secret not in recorded


async def test_an_attempt_with_no_answer_is_an_error_span_of_its_kind(
    server: FakeSentry,
) -> None:
    exporter, provider = memory_spans()
    server.faults.add(Fault("drop", times=1))
    async with SentryClient(
        TOKEN, base_url=server.url, retry=FAST, hooks=OpenTelemetryHooks(provider)
    ) as client:
        await client.request("GET", "/organizations/")
    dropped, answered, call = exporter.get_finished_spans()
    assert dropped.attributes["error.type"] == "connection"
    assert "http.response.status_code" not in dropped.attributes
    assert dropped.status.status_code.name == "ERROR"
    assert answered.attributes["http.response.status_code"] == 200
    assert call.status.status_code.name == "UNSET"


@pytest.mark.parametrize("prefetch", [None, 1, 2])
async def test_a_page_read_ahead_is_a_child_of_the_span_that_asked_for_it(
    server: FakeSentry, prefetch: int | None
) -> None:
    """A caller that wraps each step of a walk in its own span finds each page request
    under the step whose page asked for it (at most ``prefetch`` pages before it), not
    under the step that was current when the read-ahead began."""
    exporter, provider = memory_spans()
    tracer = provider.get_tracer("caller")
    org = server.data.org_slugs()[0]
    steps: dict[int, int] = {}
    async with SentryClient(
        TOKEN, base_url=server.url, retry=FAST, hooks=OpenTelemetryHooks(provider)
    ) as client:
        issues = client.issues.list(org, page_size=1, limit=8).read_ahead(prefetch)
        for step in range(8):
            with tracer.start_as_current_span(f"step{step}") as span:
                steps[span.get_span_context().span_id] = step
                await issues.__anext__()
            for _ in range(5):  # the consumer works: the read-ahead goes on meanwhile
                await asyncio.sleep(0)
        await issues.aclose()
    requests = sorted(
        (span for span in exporter.get_finished_spans() if span.name == f"GET {ISSUES}"),
        key=lambda span: span.start_time,
    )
    parents = [steps[span.parent.span_id] for span in requests if span.kind.name == "INTERNAL"]
    assert len(parents) >= 8
    ahead = 2 if prefetch is None else prefetch
    assert all(page - ahead <= step <= page for page, step in enumerate(parents)), parents
