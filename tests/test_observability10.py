"""Hooks and spans of attempts that end badly or late: a retry after a held response stays
inside its request's span, every attempt is timed, a status line that came is kept, and a
download stream left early is abandoned, not failed; log-mode progress keeps a clock."""

from __future__ import annotations

import logging
import threading
from collections.abc import AsyncIterator, Awaitable
from contextlib import aclosing
from typing import Any

import anyio
import pytest
from _hooks_recorder import Recorder, attempts, calls, memory_spans
from _local_server import local_app
from aiohttp import web

from sentry_async import OpenTelemetryHooks, RetryPolicy, SentryClient
from sentry_async._exchange import MalformedBody, Response
from sentry_async._protocol.hosts import endpoint_group
from sentry_async._streaming import stream as generated_stream
from sentry_async.errors import ConnectionFailed
from sentry_async.export import Progress, show_progress
from sentry_async.hooks import Call

TOKEN = "tok-obs10-5f4e3d2c1b"
FAST = RetryPolicy(attempts=3, backoff_base=0.001, backoff_max=0.002, jitter=0)
FILES = "/organizations/acme/files/"
CHUNK = b"x" * 65536
CHUNKS = 2000
"""A body far longer than any test reads: it is left, never finished (a bounded loop)."""


async def _files(request: web.Request) -> web.StreamResponse:
    response = web.StreamResponse(headers={"Content-Type": "application/octet-stream"})
    await response.prepare(request)
    try:
        for _ in range(CHUNKS):
            await response.write(CHUNK)
    except (ConnectionError, RuntimeError):
        pass  # the client left
    return response


async def _cut(request: web.Request) -> web.StreamResponse:
    """A 200 whose body breaks off: a ``payload`` failure, retried."""
    response = web.StreamResponse(
        headers={"Content-Type": "application/json", "Content-Length": "100"}
    )
    await response.prepare(request)
    await response.write(b'[{"id": "1"')
    request.transport.close()  # type: ignore[union-attr]
    return response


async def _ok(request: web.Request) -> web.Response:
    return web.json_response([])


@pytest.fixture
async def url() -> AsyncIterator[str]:
    app = web.Application()
    app.router.add_get("/api/0/organizations/acme/files/", _files)
    app.router.add_get("/api/0/organizations/acme/cut/", _cut)
    app.router.add_get("/api/0/organizations/acme/ok/", _ok)
    async with local_app(app) as base:
        yield base


def _client(url: str, *hooks: Any) -> SentryClient:
    return SentryClient(TOKEN, base_url=url, hooks=list(hooks), retry=FAST)


async def test_a_retry_after_a_held_response_stays_inside_its_request_span(
    url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A success held for a busy consumer, then found malformed and retried: its hold is
    left out of ``elapsed`` (a long one here, without waiting it), yet the request's span
    still holds both attempts."""
    held = Call.held
    monkeypatch.setattr(Call, "held", lambda self, seconds: held(self, seconds + 60.0))
    exporter, provider = memory_spans()
    decoded: list[int] = []

    def decode(response: Response) -> int:
        decoded.append(response.status)
        if len(decoded) == 1:
            raise MalformedBody(ConnectionFailed("cut", method="GET", url="u"))
        return response.status

    def before_decode(response: Response) -> Awaitable[None]:
        return anyio.lowlevel.checkpoint()

    with anyio.fail_after(10):
        async with _client(url, OpenTelemetryHooks(provider)) as client:
            transport = client._get_transport()
            status = await transport.send_decoded(
                "GET",
                client.url_for("/organizations/acme/ok/"),
                group=endpoint_group("GET", "/organizations/acme/ok/"),
                idempotent=True,
                decode=decode,
                before_decode=before_decode,
            )
    assert status == 200 and decoded == [200, 200]
    (request,) = calls(exporter)
    tries = attempts(exporter)
    assert [span.attributes.get("http.request.resend_count") for span in tries] == [None, 1]
    for span in tries:
        assert request.start_time <= span.start_time
        assert span.end_time <= request.end_time


async def test_every_attempt_is_timed_even_one_without_an_answer(url: str) -> None:
    recorder = Recorder()
    with anyio.fail_after(10):
        async with _client(url, recorder) as client:
            with pytest.raises(ConnectionFailed):
                await client.request("GET", "/organizations/acme/cut/")
    responses = recorder.of("response")
    assert [event.reason for event in responses] == ["payload"] * 3
    assert all(event.elapsed > 0 for event in responses)
    (done,) = recorder.of("done")
    assert sum(event.elapsed for event in responses) <= done.elapsed


async def test_a_sink_raising_keeps_the_status_and_the_attempt_time(url: str) -> None:
    recorder = Recorder()
    exporter, provider = memory_spans()

    async def sink(chunk: bytes) -> None:
        raise RuntimeError("disk full")

    with anyio.fail_after(10):
        async with _client(url, recorder, OpenTelemetryHooks(provider)) as client:
            with pytest.raises(RuntimeError, match="disk full"):
                await client.download(FILES, sink)
    (response,) = recorder.of("response")
    (done,) = recorder.of("done")
    assert (response.status, response.reason) == (200, "sink")
    assert response.elapsed > 0
    assert (done.status, done.reason) == (200, "RuntimeError")
    for span in (*attempts(exporter), *calls(exporter)):
        assert span.attributes["http.response.status_code"] == 200


async def _leave_block(client: SentryClient) -> None:
    async with client.stream(FILES) as chunks:
        async for _ in chunks:
            break


async def _leave_generated(client: SentryClient) -> None:
    async with aclosing(
        generated_stream(client, "/organizations/{org}/files/", path_params={"org": "acme"})
    ) as chunks:
        async for _ in chunks:
            break


@pytest.mark.parametrize("leave", [_leave_block, _leave_generated], ids=["stream", "generated"])
async def test_a_download_stream_left_early_is_abandoned_not_failed(url: str, leave: Any) -> None:
    recorder = Recorder()
    exporter, provider = memory_spans()
    with anyio.fail_after(10):
        async with _client(url, recorder, OpenTelemetryHooks(provider)) as client:
            await leave(client)
    (response,) = recorder.of("response")
    (done,) = recorder.of("done")
    assert (response.status, response.reason) == (200, "abandoned")
    assert (done.status, done.reason) == (200, "abandoned")
    spans = exporter.get_finished_spans()
    assert len(spans) == 2
    for span in spans:
        assert span.status.status_code.name == "UNSET"
        assert span.attributes["sentry_async.abandoned"] is True
        assert span.attributes["http.response.status_code"] == 200
        assert "error.type" not in span.attributes


async def test_a_download_stream_cancelled_by_its_caller_stays_cancelled(url: str) -> None:
    recorder = Recorder()
    with anyio.fail_after(10):
        async with _client(url, recorder) as client:
            with anyio.CancelScope() as scope:
                async with client.stream(FILES) as chunks:
                    async for _ in chunks:
                        scope.cancel()
                        await anyio.lowlevel.checkpoint()
    (response,) = recorder.of("response")
    (done,) = recorder.of("done")
    assert (response.status, response.reason) == (200, "cancelled")
    assert done.reason == "CancelledError"


def test_log_mode_progress_logs_on_a_clock_while_nothing_moves() -> None:
    """A stalled export still shows signs of life: a line comes without any progress."""
    progress = Progress("export")
    logged = threading.Event()

    class Seen(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            logged.set()

    handler = Seen()
    logger = logging.getLogger("sentry_async.export")
    logger.addHandler(handler)
    level = logger.level
    logger.setLevel(logging.INFO)
    try:
        with show_progress(progress, mode="log", log_interval=0.01):
            assert logged.wait(10)
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


@pytest.mark.parametrize("interval", [0, -1.0, float("nan"), float("inf")])
def test_log_mode_progress_refuses_an_interval_its_clock_cannot_keep(interval: float) -> None:
    with (
        pytest.raises(ValueError, match="log_interval"),
        show_progress(Progress("export"), mode="log", log_interval=interval),
    ):
        pass
