"""Hooks, spans and log lines at the edges: a client closed under a walk left by ``break``
or under requests waiting for a limiter slot, a generated download closed early, values
from a successful answer that echo the token, and the ``reason`` values documented."""

from __future__ import annotations

import asyncio
import io
import logging
import re
from collections.abc import AsyncGenerator, AsyncIterator, Iterator
from datetime import timedelta
from functools import partial
from pathlib import Path
from typing import Any, cast, get_args

import anyio
import msgspec
import pytest
from _hooks_recorder import Recorder, attempts, calls, memory_spans
from _local_server import local_app
from aiohttp import web

import sentry_async.hooks
from sentry_async import (
    ClientClosed,
    OpenTelemetryHooks,
    RetryPolicy,
    SentryClient,
)
from sentry_async._protocol.retry import FailureKind
from sentry_async._transport import _unanswered
from sentry_async.cli import main
from sentry_async.export import MANIFEST_NAME, ExportSpec, export
from sentry_async.hooks import ABANDONED
from sentry_async.testing import FakeSentry, Fault, SeedConfig
from sentry_async.testing.pytest_plugin import FIXED_NOW

TOKEN = "sntrys_obsEdgesTokenQ1w2e3r4t5y6u7i8"
BARE = TOKEN[len("sntrys_") :]
FAST = RetryPolicy(attempts=3, backoff_base=0.01, backoff_max=0.02, jitter=0)
SLOW = 5.0
"""Far longer than any test waits: a request this slow is cut, never answered."""
README = Path(__file__).resolve().parent.parent / "README.md"


@pytest.fixture
async def server() -> AsyncIterator[FakeSentry]:
    async with FakeSentry(scale="small", token=TOKEN) as server:
        yield server


def _outcomes(recorder: Recorder) -> list[tuple[Any, Any]]:
    """Each request's attempt outcome and its end, in the order the requests ended."""
    responses = {event.id: event.reason for event in recorder.of("response")}
    return [(responses.get(event.id), event.reason) for event in recorder.of("done")]


def _gauges(recorder: Recorder) -> tuple[int, int]:
    """Requests begun and not ended, attempts sent and not answered: what a metrics hook's
    gauges would show."""
    names = recorder.names()
    logical = names.count("start") - names.count("done")
    return logical, names.count("request") - names.count("response")


def _running(*names: str) -> list[str]:
    """The tasks of this loop still running one of the library's coroutines named."""
    found = []
    for task in asyncio.all_tasks():
        name = getattr(task.get_coro(), "__qualname__", "")
        if not task.done() and any(part in name for part in names):
            found.append(name)
    return found


def _slot_app(
    flaky_answers: list[int], slow_reached: asyncio.Event, release: asyncio.Event
) -> web.Application:
    """``/organizations/slow/`` answers only once ``release`` is set; ``/organizations/flaky/``
    answers each status of ``flaky_answers`` in turn, then 200."""

    async def handle(request: web.Request) -> web.Response:
        if request.match_info["org"] == "slow":
            slow_reached.set()
            await release.wait()
        if flaky_answers:
            return web.json_response({"detail": "unavailable"}, status=flaky_answers.pop(0))
        return web.json_response({"slug": request.match_info["org"]})

    app = web.Application()
    app.router.add_get("/api/0/organizations/{org}/", handle)
    return app


async def _slot_waiters(client: SentryClient, count: int) -> None:
    """Until ``count`` requests wait for the (one) slot of the organization endpoint."""
    group = client.limiter._group("GET /organizations/{org}/")
    for _ in range(2000):
        if group.limiter.statistics().tasks_waiting >= count:
            return
        await asyncio.sleep(0.005)
    raise AssertionError("no request waited for the slot")


async def _get(client: SentryClient, org: str, errors: list[str]) -> None:
    try:
        await client.request("GET", "/organizations/{org}/", path_params={"org": org})
    except ClientClosed as exc:
        errors.append(type(exc).__name__)


@pytest.mark.parametrize("retried", [False, True], ids=["first-attempt", "retry"])
async def test_closing_while_a_request_waits_for_a_slot_reports_no_response_for_it(
    retried: bool,
) -> None:
    """One response per attempt sent and none for one that never left: the in-flight gauge
    comes back to zero, and the request ends with the last status it really got."""
    recorder = Recorder()
    slow_reached = asyncio.Event()
    answers = [503] if retried else []
    retry = RetryPolicy(attempts=3, backoff_base=0.3, backoff_max=0.3, jitter=0)
    errors: list[str] = []
    release = asyncio.Event()
    async with local_app(_slot_app(answers, slow_reached, release)) as url:
        client = SentryClient(
            TOKEN, base_url=url, max_concurrency=1, retry=retry, hooks=recorder
        )
        try:
            with anyio.fail_after(20):
                async with anyio.create_task_group() as tg:
                    if retried:
                        tg.start_soon(_get, client, "flaky", errors)
                        for _ in range(2000):
                            if recorder.of("retry"):
                                break  # the 503 came; its backoff runs
                            await asyncio.sleep(0.005)
                    tg.start_soon(_get, client, "slow", errors)
                    await slow_reached.wait()
                    if not retried:
                        tg.start_soon(_get, client, "flaky", errors)
                    await _slot_waiters(client, 1)
                    await client.close()
        finally:
            release.set()
    assert errors == ["ClientClosed", "ClientClosed"]
    assert _gauges(recorder) == (0, 0)
    starts = [event.id for event in recorder.of("start")]
    flaky = starts[0] if retried else starts[1]
    mine = [(name, event.attempt) for name, event in recorder.events if event.id == flaky]
    if retried:
        assert mine == [("start", 0), ("request", 1), ("response", 1), ("retry", 1), ("done", 1)]
    else:
        assert mine == [("start", 0), ("done", 0)]
    done = next(event for event in recorder.of("done") if event.id == flaky)
    assert (done.status, done.reason) == ((503 if retried else None), "ClientClosed")


async def test_a_generated_stream_closed_early_leaves_no_download_running() -> None:
    """``aclose()`` of a ``stream_*`` method returns once its download is over, as
    :meth:`SentryClient.stream`'s block does: nothing in flight in the hooks after it."""
    recorder = Recorder()
    finish = asyncio.Event()

    async def attachment(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "application/octet-stream"})
        await response.prepare(request)
        await response.write(b"x" * 1000)
        await finish.wait()  # the rest never comes while the test looks
        return response

    app = web.Application()
    app.router.add_get("/{tail:.*}", attachment)
    async with local_app(app) as url, SentryClient(TOKEN, base_url=url, hooks=recorder) as client:
        try:
            with anyio.fail_after(20):
                chunks = cast(
                    "AsyncGenerator[bytes, None]",
                    client.events.stream_attachment("acme", "web", "a" * 32, 9, chunk_size=10),
                )
                assert await chunks.__anext__() == b"x" * 10
                await chunks.aclose()
                running, gauges = _running("pump"), _gauges(recorder)
        finally:
            finish.set()
    assert running == []
    assert gauges == (0, 0)


@pytest.mark.parametrize("prefetch", [2, None], ids=["prefetch-2", "default-read-ahead"])
async def test_a_walk_left_by_break_as_its_client_closes_abandons_its_read_ahead(
    server: FakeSentry, prefetch: int | None
) -> None:
    """The commonest shape: ``async with client: async for ...: break``. The loop finalizes
    the walk only after the client's close, which ends the read-ahead first, as the same
    walk closed by ``aclose()`` would: abandoned, no error span, no task left."""
    recorder = Recorder()
    exporter, provider = memory_spans()
    org = server.data.org_slugs()[0]
    server.faults.add(Fault("slow", delay=SLOW, path="/issues/", after=2, times=None))
    hooks = [recorder, OpenTelemetryHooks(provider)]
    with anyio.fail_after(20):
        async with SentryClient(TOKEN, base_url=server.url, hooks=hooks) as client:
            seen = 0
            async for _ in client.issues.list(org, page_size=2).read_ahead(prefetch):
                seen += 1
                if seen == 3:
                    break  # on the second page: the third is being read ahead
        left = _running("Paginator._read_ahead")
    assert left == []
    outcomes = _outcomes(recorder)
    assert ("abandoned", "abandoned") in outcomes
    assert set(outcomes) <= {(None, None), ("abandoned", "abandoned")}, outcomes
    assert _gauges(recorder) == (0, 0)
    errors = [s.name for s in exporter.get_finished_spans() if s.status.status_code.name == "ERROR"]
    assert errors == []
    assert any(s.attributes.get("sentry_async.abandoned") for s in attempts(exporter))


async def test_a_walk_still_iterating_when_its_client_closes_ends_with_client_closed(
    server: FakeSentry,
) -> None:
    """A consumer between items in another task when the client closes: its next page is
    a ``ClientClosed``, never the cancellation that ended the read-ahead."""
    recorder = Recorder()
    org = server.data.org_slugs()[0]
    server.faults.add(Fault("slow", delay=SLOW, path="/issues/", after=2, times=None))
    outcome: list[str] = []
    got, go_on = anyio.Event(), anyio.Event()
    client = SentryClient(TOKEN, base_url=server.url, hooks=recorder)
    issues = client.issues.list(org, page_size=2).read_ahead(2)

    async def consume() -> None:
        try:
            async for _ in issues:
                got.set()
                await go_on.wait()
        except ClientClosed:
            outcome.append("ClientClosed")
        finally:
            await issues.aclose()

    with anyio.fail_after(20):
        async with anyio.create_task_group() as tg:
            tg.start_soon(consume)
            await got.wait()
            await client.close()
            go_on.set()
    assert outcome == ["ClientClosed"]
    assert _gauges(recorder) == (0, 0)


DATA = SeedConfig(orgs=1, projects_per_org=3, issues_per_project=3, events_per_issue=(1, 2), days=5)
END = FIXED_NOW - timedelta(hours=1)
START = END - timedelta(days=4)


def _token_forms() -> list[str]:
    return [TOKEN, BARE, BARE.lower()]


def _everything_written(out: Path) -> str:
    """The names and contents of every file an export left behind."""
    parts = []
    for path in sorted(out.rglob("*")):
        parts.append(path.name)
        if path.is_file():
            parts.append(path.read_bytes().decode("utf-8", "replace"))
    return "\n".join(parts)


@pytest.fixture
def restore_logging() -> Iterator[None]:
    """The CLI configures the ``sentry_async`` logger for its process; undo that."""
    library_logger = logging.getLogger("sentry_async")
    saved = (library_logger.handlers[:], library_logger.level, library_logger.propagate)
    yield
    library_logger.handlers[:], library_logger.level, library_logger.propagate = saved


@pytest.fixture
async def echoing(fake_sentry_factory: Any) -> FakeSentry:
    """A fake Sentry whose projects list echoes the token: as the whole header value (not
    a slug: skipped) and bare (a slug by its characters, that would name a file)."""
    server: FakeSentry = await fake_sentry_factory(scale=DATA, token=TOKEN)
    projects = server.data.orgs[0].projects
    projects[0].slug = f"Bearer {TOKEN}"
    projects[1].slug = BARE
    return server


async def test_project_slugs_echoing_the_token_reach_no_log_line_or_file(
    echoing: FakeSentry, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    server = echoing
    projects = server.data.orgs[0].projects
    out = tmp_path / "out"
    spec = ExportSpec(kind="events", org=server.data.orgs[0].slug, start=START, end=END)
    async with SentryClient(TOKEN, base_url=server.url, retry=FAST) as client:
        with anyio.fail_after(30):
            manifest = await export(client, spec, out)
    shown = caplog.text + _everything_written(out) + repr(manifest)
    for form in _token_forms():
        assert form not in shown
    assert sorted(p.id for p in manifest.skipped) == sorted(p.id for p in projects[:2])
    assert all("********" in (p.slug or "") for p in manifest.skipped)
    assert [p.id for p in manifest.projects] == [projects[2].id]
    on_disk = msgspec.json.decode((out / MANIFEST_NAME).read_bytes())
    assert len(on_disk["skipped"]) == 2
    assert "skipping project" in caplog.text


@pytest.mark.usefixtures("restore_logging")
async def test_the_cli_never_prints_a_project_slug_echoing_the_token(
    echoing: FakeSentry, tmp_path: Path
) -> None:
    server = echoing
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN)
    out = tmp_path / "out"
    argv = ["export", "events", "--org", server.data.orgs[0].slug, "--output", str(out),
            "--base-url", server.url, "--since", START.isoformat(), "--until", END.isoformat(),
            "--token-file", str(token_file), "--verbose"]  # fmt: skip
    stdout, stderr = io.StringIO(), io.StringIO()
    with anyio.fail_after(60):
        code = await anyio.to_thread.run_sync(partial(main, argv, stdout=stdout, stderr=stderr))
    assert code == 0, stderr.getvalue()
    shown = stdout.getvalue() + stderr.getvalue() + _everything_written(out)
    assert "skipping project" in stderr.getvalue()
    for form in _token_forms():
        assert form not in shown


@pytest.mark.usefixtures("restore_logging")
def test_the_cli_blanks_the_token_out_of_every_log_line() -> None:
    """Whatever a log line quotes (a value of a successful answer is never redacted on its
    way in), the command's stderr shows no form of the token, tracebacks included."""
    from sentry_async.cli import _blank_out_in_logs, _setup_logging

    out = io.StringIO()
    restore = _setup_logging(quiet=False, verbose=True, stream=out)
    try:
        _blank_out_in_logs(TOKEN)
        logging.getLogger("sentry_async.export").warning("project %r, bare %s", TOKEN, BARE)
        try:
            raise ValueError(f"Bearer {TOKEN}")
        except ValueError:
            logging.getLogger("sentry_async").exception("failed")
    finally:
        restore()
    for form in _token_forms():
        assert form not in out.getvalue()
    assert out.getvalue().count("********") == 3


async def test_a_redirect_is_followed_inside_its_attempt_span() -> None:
    """What the README says of redirects: one attempt, one CLIENT span and one
    ``on_request``/``on_response`` pair whose status is the last hop's."""
    recorder = Recorder()
    exporter, provider = memory_spans()
    hops: list[str] = []

    async def handle(request: web.Request) -> web.Response:
        hops.append(request.path)
        if request.match_info["org"] == "old":
            raise web.HTTPTemporaryRedirect("/api/0/organizations/new/")
        return web.json_response({"slug": "new"})

    app = web.Application()
    app.router.add_get("/api/0/organizations/{org}/", handle)
    async with local_app(app) as url:
        hooks = [recorder, OpenTelemetryHooks(provider)]
        async with SentryClient(TOKEN, base_url=url, hooks=hooks) as client:
            await client.request("GET", "/organizations/{org}/", path_params={"org": "old"})
    assert hops == ["/api/0/organizations/old/", "/api/0/organizations/new/"]
    assert [(name, e.status) for name, e in recorder.events if name in ("request", "response")] == [
        ("request", None),
        ("response", 200),
    ]
    (span,) = attempts(exporter)
    assert span.attributes["http.response.status_code"] == 200
    assert "http.request.resend_count" not in span.attributes
    assert len(calls(exporter)) == 1


def _hooks_source() -> str:
    return Path(sentry_async.hooks.__file__).read_text()


def _reasons_sent() -> set[str]:
    """Every ``reason`` the transport and the hook set can put in an event: each failure
    kind, what an attempt sent and never answered ends with, and the hooks' own."""
    unanswered = {
        _unanswered(error, download)
        for error in (ValueError(), asyncio.CancelledError())
        for download in (False, True)
    }
    own = set(re.findall(r'reason\s*=\s*"([a-z_]+)"', _hooks_source()))
    return set(get_args(FailureKind)) | unanswered | own | {ABANDONED}


def _reason_docstring() -> str:
    source = _hooks_source()
    start = source.index("    reason: str | None = None")
    return source[start : source.index("    server: str | None = None", start)]


def _readme_hooks_paragraph() -> str:
    text = README.read_text()
    start = text.index("**Hooks, metrics and traces.**")
    return text[start : text.index("**No token.**", start)]


def test_every_reason_a_hook_can_get_is_documented() -> None:
    """``error.type`` on CLIENT spans and metric labels come from these: each one the code
    sends is listed in ``HookEvent.reason`` and in the README's hooks paragraph."""
    sent = _reasons_sent()
    assert {"status", "final", "tls", "redirect", "too_large", "error", "sink"} <= sent
    assert {"cancelled", "abandoned", "moved", "server", "limiter"} <= sent
    documented = set(re.findall(r"``([a-z_]+)``", _reason_docstring()))
    assert sent - documented == set()
    in_readme = set(re.findall(r'"([a-z_]+)"', _readme_hooks_paragraph()))
    assert sent - in_readme == set()
