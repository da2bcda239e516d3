"""Logging as a library should, hooks for metrics, OpenTelemetry spans, aiohttp trace
configs, and the first error of a client that has no token."""

from __future__ import annotations

import io
import logging
import os
import subprocess
import sys
import time
from functools import partial
from pathlib import Path
from typing import Any

import aiohttp
import anyio
import pytest
from _hooks_recorder import Recorder, attempts, calls
from _hooks_recorder import memory_spans as _memory_spans

from sentry_async import (
    HookEvent,
    Hooks,
    NotFound,
    OpenTelemetryHooks,
    RateLimiter,
    RetryPolicy,
    SentryClient,
    Unauthorized,
    fan_out,
)
from sentry_async.cli import EXIT_OK, main
from sentry_async.hooks import HookSet
from sentry_async.testing import FakeSentry, Fault

TOKEN = "tok-observe-5e4d3c2b1a"
FAST = RetryPolicy(attempts=3, backoff_base=0.01, backoff_max=0.02, jitter=0)
ORGS = "GET /organizations/"


@pytest.fixture
async def server() -> Any:
    async with FakeSentry(scale="small", token=TOKEN) as server:
        yield server


async def _orgs(client: SentryClient) -> list[str]:
    # One endpoint (organizations.list() also asks for the user's regions first).
    return [org["slug"] async for org in client.paginate("/organizations/")]


# ---------------------------------------------------------------- logging


_SCRIPT = """
import asyncio, logging, sys
from sentry_async import RetryPolicy, SentryClient
from sentry_async.hooks import HookSet
from sentry_async.testing import FakeSentry, Fault

async def export_with_one_503(server):
    server.faults.add(Fault("status", status=503, times=1))
    retry = RetryPolicy(attempts=3, backoff_base=0.01, backoff_max=0.02)
    async with SentryClient(server.token, base_url=server.url, retry=retry) as client:
        [org async for org in client.paginate("/organizations/")]

async def main():
    async with FakeSentry(scale="small") as server:
        await export_with_one_503(server)
        print(len(server.requests))
        print("-- logging configured --", file=sys.stderr, flush=True)
        logging.basicConfig()
        await export_with_one_503(server)

asyncio.run(main())
"""


def test_an_application_that_configured_no_logging_gets_no_retry_warnings() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SENTRY_")}
    run = subprocess.run(
        [sys.executable, "-c", _SCRIPT],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        cwd=Path(__file__).parent.parent,
    )
    assert run.returncode == 0, run.stderr
    assert run.stdout.split() == ["2"]  # the 503 was retried...
    before, _, after = run.stderr.partition("-- logging configured --\n")
    assert before == ""  # ...and nothing was printed about it
    assert "WARNING:sentry_async:retrying GET" in after  # until the program asks for logs


def test_the_library_logger_has_a_null_handler_and_export_logs_below_it() -> None:
    handlers = logging.getLogger("sentry_async").handlers
    assert any(isinstance(h, logging.NullHandler) for h in handlers)
    assert logging.getLogger("sentry_async.export").parent is logging.getLogger("sentry_async")


async def test_the_cli_still_shows_retry_warnings(
    server: FakeSentry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SENTRY_AUTH_TOKEN", TOKEN)
    server.faults.add(Fault("status", status=503, times=1, path="/issues/"))
    out, err = io.StringIO(), io.StringIO()
    argv = ["export", "issues", "--org", server.data.orgs[0].slug, "--base-url", server.url,
            "-o", str(tmp_path / "out"), "--quiet"]  # fmt: skip
    code = await anyio.to_thread.run_sync(lambda: main(argv, stdout=out, stderr=err))
    assert code == EXIT_OK, err.getvalue()
    assert "WARNING sentry_async: retrying GET" in err.getvalue()
    assert TOKEN not in err.getvalue()


# ---------------------------------------------------------------- hooks


async def test_hooks_see_each_attempt_retry_and_the_outcome(server: FakeSentry) -> None:
    server.faults.add(Fault("status", status=503, times=1))
    recorder = Recorder()
    async with SentryClient(TOKEN, base_url=server.url, retry=FAST, hooks=recorder) as client:
        await _orgs(client)
    assert recorder.names() == [
        "start", "request", "response", "retry", "request", "response", "done",
    ]  # fmt: skip
    assert len({event.id for _, event in recorder.events}) == 1
    assert {(event.method, event.group) for _, event in recorder.events} == {("GET", ORGS)}
    assert [(e.attempt, e.status) for e in recorder.of("response")] == [(1, 503), (2, 200)]
    (retry,) = recorder.of("retry")
    assert (retry.attempt, retry.status) == (1, 503) and retry.wait > 0
    (done,) = recorder.of("done")
    assert (done.attempt, done.status, done.reason) == (2, 200, None)


async def test_a_malformed_body_is_one_response_then_a_payload_retry(server: FakeSentry) -> None:
    server.faults.add(Fault("truncated_json", times=1))
    recorder = Recorder()
    async with SentryClient(TOKEN, base_url=server.url, retry=FAST, hooks=recorder) as client:
        await _orgs(client)
    assert recorder.names() == [
        "start", "request", "response", "retry", "request", "response", "done",
    ]  # fmt: skip
    assert [(e.attempt, e.status, e.reason) for e in recorder.of("response")] == [
        (1, 200, None),
        (2, 200, None),
    ]
    (retry,) = recorder.of("retry")
    assert (retry.attempt, retry.status, retry.reason) == (1, 200, "payload")


async def test_hooks_see_a_429_wait_and_the_limiter_holding_requests_back(
    server: FakeSentry,
) -> None:
    server.faults.add(Fault("rate_limit", retry_after=0.05, times=1))
    recorder = Recorder()
    async with SentryClient(TOKEN, base_url=server.url, retry=FAST, hooks=[recorder]) as client:
        await _orgs(client)
    # the server's pause; the limiter may hold the resend a little longer, to the window's end
    (server_wait,) = [e for e in recorder.of("rate_limit_wait") if e.reason == "server"]
    assert (server_wait.reason, server_wait.status, server_wait.wait) == ("server", 429, 0.05)
    assert recorder.of("retry")[0].status == 429

    paced = Recorder()
    limiter = RateLimiter(rate=20, burst=1)
    async with (
        SentryClient(TOKEN, base_url=server.url, hooks=paced, limiter=limiter) as client,
        anyio.create_task_group() as group,
    ):
        for _ in range(3):
            group.start_soon(_orgs, client)
    waits = paced.of("rate_limit_wait")
    assert waits and {w.reason for w in waits} == {"limiter"} and all(w.wait > 0 for w in waits)
    assert len({e.id for e in paced.of("done")}) == 3


async def test_a_group_is_the_route_template_never_a_slug_or_query_value(
    server: FakeSentry,
) -> None:
    recorder = Recorder()
    issue = server.data.issue_ids("org-0")[0]
    async with SentryClient(TOKEN, base_url=server.url, hooks=recorder) as client:
        await client.request("GET", "/organizations/org-0/issues/?query=secret-customer")
        await client.request("GET", f"/organizations/org-0/issues/{issue}/")
        await client.request("GET", "/projects/org-0/project-0-0/")
    assert [event.group for event in recorder.of("done")] == [
        "GET /organizations/{org}/issues/",
        "GET /organizations/{org}/issues/{issue_id}/",
        "GET /projects/{org}/{project}/",
    ]


async def test_hooks_see_final_errors_and_cancellation(server: FakeSentry) -> None:
    recorder = Recorder()
    async with SentryClient(TOKEN, base_url=server.url, hooks=recorder) as client:
        with pytest.raises(NotFound):
            await client.organizations.get("no-such-org")
        server.faults.add(Fault("slow", delay=1.0, times=1))
        with anyio.move_on_after(0.2):
            await _orgs(client)
    first, second = recorder.of("done")
    assert (first.status, first.attempt, first.reason) == (404, 1, "NotFound")
    assert first.group == "GET /organizations/{org}/"
    assert second.reason == "CancelledError"


async def test_a_failing_hook_is_logged_and_never_breaks_the_request(
    server: FakeSentry, caplog: pytest.LogCaptureFixture
) -> None:
    class Broken(Hooks):
        def on_response(self, event: HookEvent) -> None:
            raise RuntimeError("metrics backend is down")

    recorder = Recorder()
    async with SentryClient(TOKEN, base_url=server.url, hooks=[Broken(), recorder]) as client:
        assert await _orgs(client)
    assert "Broken.on_response failed" in caplog.text
    assert recorder.of("response")[0].status == 200  # the next hook still ran


def test_without_overridden_callbacks_there_is_nothing_to_call() -> None:
    """The transport skips every hook step when HookSet.of() gives None."""
    assert HookSet.of(None) is None
    assert HookSet.of([]) is None
    assert HookSet.of(Hooks()) is None  # the base class overrides nothing

    class OnlyDone(Hooks):
        def on_done(self, event: HookEvent) -> None:
            pass

    found = HookSet.of([OnlyDone(), Hooks()])
    assert found is not None
    assert found._handlers["on_response"] == ()
    assert len(found._handlers["on_done"]) == 1


def test_hooks_must_be_hooks() -> None:
    with pytest.raises(TypeError, match=r"hooks must be sentry_async\.Hooks"):
        SentryClient(TOKEN, hooks=[print])  # type: ignore[list-item]


async def test_trace_configs_reach_aiohttp(server: FakeSentry) -> None:
    seen: list[str] = []

    async def on_request_start(session: Any, context: Any, params: Any) -> None:
        seen.append(params.method)

    trace = aiohttp.TraceConfig()
    trace.on_request_start.append(on_request_start)
    async with SentryClient(TOKEN, base_url=server.url, trace_configs=[trace]) as client:
        await _orgs(client)
        await _orgs(client)
    assert seen == ["GET", "GET"] == [r.method for r in server.requests]


# ---------------------------------------------------------------- OpenTelemetry


async def test_one_span_per_logical_request_and_attempt_without_secrets_or_query_values(
    server: FakeSentry,
) -> None:
    exporter, provider = _memory_spans()

    server.faults.add(Fault("status", status=502, times=1, path="/issues/"))
    query = "is:unresolved"
    async with SentryClient(
        TOKEN, base_url=server.url, retry=FAST, hooks=OpenTelemetryHooks(provider)
    ) as client:
        org = (await _orgs(client))[0]
        issues = [i async for i in client.issues.list(org, query=query, page_size=10, limit=25)]
        with pytest.raises(NotFound):
            await client.issues.get(org, 999_999_999)
    assert len(issues) == 25
    spans = calls(exporter)
    assert len(spans) == 5  # organizations, three pages of issues, one 404
    assert len(attempts(exporter)) == 6  # and the first page's retry
    assert [span.name for span in spans] == [
        "GET /organizations/",
        *["GET /organizations/{org}/issues/"] * 3,
        "GET /organizations/{org}/issues/{issue_id}/",
    ]
    first_page = spans[1]
    assert dict(first_page.attributes) == {
        "http.request.method": "GET",
        "sentry_async.endpoint_group": "GET /organizations/{org}/issues/",
        "server.address": "127.0.0.1",
        "server.port": int(server.url.rsplit(":", 1)[1]),
        "url.template": "/organizations/{org}/issues/",
        "url.full": f"{server.url}/api/0/organizations/{{org}}/issues/",
        "http.response.status_code": 200,
        "http.request.resend_count": 1,
        "sentry_async.attempts": 2,
    }
    assert [event.name for event in first_page.events] == ["retry"]
    assert first_page.kind.name == "INTERNAL"
    failed = spans[-1]
    assert failed.attributes["error.type"] == "NotFound"
    assert failed.attributes["http.response.status_code"] == 404
    assert failed.status.status_code.name == "ERROR"
    recorded = repr([(s.name, dict(s.attributes), [dict(e.attributes) for e in s.events])
                     for s in exporter.get_finished_spans()])  # fmt: skip
    for secret in (TOKEN, "unresolved", "cursor", org, "999999999"):
        assert secret not in recorded


# ---------------------------------------------------------------- no token


async def test_without_a_token_the_first_error_says_where_one_is_looked_for(
    server: FakeSentry, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SENTRY_AUTH_TOKEN", raising=False)
    async with SentryClient(base_url=server.url) as client:
        with pytest.raises(Unauthorized) as info:
            await _orgs(client)
    message = str(info.value)
    assert message.startswith("401 from GET")
    for source in ("token=", "$SENTRY_AUTH_TOKEN", "--token-file"):
        assert source in message
    # with a (wrong) token the 401 is about that token, not about a missing one
    async with SentryClient("not-the-token", base_url=server.url) as client:
        with pytest.raises(Unauthorized) as info:
            await _orgs(client)
    assert "SENTRY_AUTH_TOKEN" not in str(info.value)


async def test_one_otel_hook_serves_several_clients_at_once(server: FakeSentry) -> None:
    exporter, provider = _memory_spans()
    hooks = OpenTelemetryHooks(provider)
    async with (
        SentryClient(TOKEN, base_url=server.url, hooks=hooks) as first,
        SentryClient(TOKEN, base_url=server.url, hooks=hooks) as second,
        anyio.create_task_group() as group,
    ):
        group.start_soon(_orgs, first)
        group.start_soon(_orgs, second)
    assert len(calls(exporter)) == 2


class Timed(Hooks):
    """When each request was answered and done, and the ``elapsed`` it reported."""

    def __init__(self) -> None:
        self.answered: dict[int, float] = {}
        self.done: dict[int, tuple[float, float]] = {}

    def on_response(self, event: HookEvent) -> None:
        self.answered[event.id] = time.perf_counter()

    def on_done(self, event: HookEvent) -> None:
        self.done[event.id] = (time.perf_counter(), event.elapsed)


async def test_a_response_waiting_for_a_busy_fan_out_consumer_is_not_request_time(
    server: FakeSentry,
) -> None:
    """fan_out keeps a page undecoded until its consumer has room; ``elapsed`` and the
    span measure the request, not how long the consumer took to get to it."""
    exporter, provider = _memory_spans()
    timed = Timed()
    org = server.data.org_slugs()[0]
    slugs = server.data.project_slugs(org)[:2]
    hooks = [timed, OpenTelemetryHooks(provider)]
    hold = 0.8
    with anyio.fail_after(20):
        async with SentryClient(TOKEN, base_url=server.url, hooks=hooks) as client:
            streams = {slug: partial(client.events.for_project, org, slug) for slug in slugs}
            async with fan_out(streams, concurrency=2, buffer=0) as merged:
                async for _ in merged:
                    if hold:
                        await anyio.sleep(hold)
                        hold = 0
    held = [call for call, (done, _) in timed.done.items() if done - timed.answered[call] >= 0.6]
    assert held, "a page waited, undecoded, while the consumer slept"
    assert all(elapsed < 0.5 for _, elapsed in timed.done.values())
    spans = calls(exporter)
    assert len(spans) == len(timed.done)
    assert all(span.end_time - span.start_time < 0.5e9 for span in spans)
