"""A traceback printed with its frames' locals never shows the token or a proxy's password.

sentry-sdk, rich and ``pytest --showlocals`` print every frame's locals, through
``__cause__`` and ``__context__``: whatever ended the call (the caller's own timeout or
cancellation, a refused option, a later error of a walk whose cursor echoes the token),
no frame in the chain may hold the ``Authorization`` header, the token or the proxy URL.
Servers are small aiohttp apps on 127.0.0.1 inside each test.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import traceback
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import anyio
import pytest
from _local_server import local_app
from aiohttp import web
from test_hostile_echo import FAST, TOKEN, assert_hidden, everything_shown, provoke

from sentry_async import (
    BadRequest,
    HookEvent,
    Hooks,
    RetryPolicy,
    SentryClient,
    ServerError,
    fan_out,
)

pytestmark = pytest.mark.anyio

PASSWORD = "Pr0xyPassw0rd-s3cret"


def with_locals(error: BaseException) -> str:
    return "".join(traceback.TracebackException.from_exception(error, capture_locals=True).format())


# The caller's own timeout or cancellation around a call.


@asynccontextmanager
async def stalled_sentry() -> AsyncIterator[tuple[str, asyncio.Event]]:
    """A Sentry that takes each request and never answers it, until the test is over;
    yields its URL and an event set once a request arrived."""
    arrived, release = asyncio.Event(), asyncio.Event()

    async def stall(request: web.Request) -> web.Response:
        arrived.set()
        with anyio.move_on_after(30):
            await release.wait()
        return web.json_response({})

    app = web.Application()
    app.router.add_get("/{tail:.*}", stall)
    async with local_app(app) as url:
        try:
            yield url, arrived
        finally:
            release.set()


async def _once(arrived: asyncio.Event, act: Callable[[], object]) -> None:
    with anyio.fail_after(20):
        await arrived.wait()
    act()


async def _cut_short(
    how: str, call: Callable[[], Awaitable[object]], arrived: asyncio.Event
) -> BaseException:
    """What ``call`` raises when the caller's own ``how`` ends it while its request is in
    flight, caught in a frame of its own."""
    loop = asyncio.get_running_loop()
    try:
        if how == "asyncio.timeout":
            async with asyncio.timeout(None) as window:  # type: ignore[attr-defined]
                waiter = loop.create_task(_once(arrived, lambda: window.reschedule(loop.time())))
                await call()
        elif how == "anyio.fail_after":
            with anyio.fail_after(None) as scope:
                waiter = loop.create_task(
                    _once(arrived, lambda: setattr(scope, "deadline", anyio.current_time()))
                )
                await call()
        elif how == "asyncio.wait_for":
            waiter = loop.create_task(_once(arrived, lambda: None))
            await asyncio.wait_for(call(), 2)
        else:
            task = loop.create_task(call())
            waiter = loop.create_task(_once(arrived, task.cancel))
            await task
    except BaseException as exc:
        await waiter
        return exc
    raise AssertionError("the call was not cut short")


CUTS = ["anyio.fail_after", "asyncio.wait_for", "task.cancel"]
if sys.version_info >= (3, 11):
    CUTS.insert(0, "asyncio.timeout")


@pytest.mark.parametrize("how", CUTS)
async def test_the_callers_timeout_shows_no_authorization_header(how: str) -> None:
    """The cancellation passes through aiohttp's frames, one of which holds the request's
    merged headers: none of them keeps its locals."""
    async with stalled_sentry() as (url, arrived), SentryClient(TOKEN, base_url=url) as client:
        error = await _cut_short(how, lambda: client.organizations.get("acme"), arrived)
    assert arrived.is_set()
    # asyncio.wait_for's is asyncio.TimeoutError: the builtin from Python 3.11 only.
    expected = {"task.cancel": asyncio.CancelledError, "asyncio.wait_for": asyncio.TimeoutError}
    assert isinstance(error, expected.get(how, TimeoutError))
    assert_hidden(everything_shown(error))


@pytest.mark.parametrize("how", ["anyio.fail_after", "task.cancel"])
async def test_a_cancelled_page_of_a_walk_shows_no_authorization_header(how: str) -> None:
    async with stalled_sentry() as (url, arrived), SentryClient(TOKEN, base_url=url) as client:
        paginator = client.paginate("/organizations/")
        error = await _cut_short(how, paginator.collect, arrived)
    assert isinstance(error, BaseException)
    assert_hidden(everything_shown(error))


class _Failing(Hooks):
    """Hooks of the caller's that fail: the library logs each failure with its traceback."""

    def on_response(self, event: HookEvent) -> None:
        raise KeyError("a metrics label")

    def on_done(self, event: HookEvent) -> None:
        raise KeyError("a metrics label")


async def test_a_hook_failing_on_a_cancelled_request_logs_no_authorization_header(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The hook runs while the cancellation is handled: its error's ``__context__`` is that
    cancellation, which a handler printing locals (sentry-sdk's logging integration, rich)
    prints with it."""
    caplog.set_level(logging.WARNING, logger="sentry_async.hooks")
    async with (
        stalled_sentry() as (url, arrived),
        SentryClient(TOKEN, base_url=url, hooks=_Failing()) as client,
    ):
        error = await _cut_short("task.cancel", lambda: client.organizations.get("acme"), arrived)
    assert isinstance(error, asyncio.CancelledError)
    logged = [r for r in caplog.records if r.name == "sentry_async.hooks" and r.exc_info]
    assert {r.getMessage() for r in logged} == {
        "hook _Failing.on_response failed",
        "hook _Failing.on_done failed",
    }
    for record in logged:
        assert record.exc_info is not None and record.exc_info[1] is not None
        hook_error = record.exc_info[1]
        assert isinstance(hook_error.__context__, asyncio.CancelledError)
        assert_hidden(everything_shown(hook_error))
    assert_hidden(caplog.text)


# Options the client refuses, with a proxy that has a password.


PROXY = f"http://alice:{PASSWORD}@127.0.0.1:3128"
REFUSED: dict[str, tuple[object, dict[str, Any]]] = {
    "max_connections": (PROXY, {"max_connections": 0}),
    "base_url": (PROXY, {"base_url": "ftp://x"}),
    "user_agent": (PROXY, {"user_agent": 5}),
    "hooks": (PROXY, {"hooks": 5}),
    "socks5": (f"socks5://alice:{PASSWORD}@proxy.corp:1080", {}),
    "unparsable": (f"http://alice:{PASSWORD}@[::1", {}),
    "remote-proxy-for-plain-http": (
        f"http://alice:{PASSWORD}@proxy.corp:3128",
        {"base_url": "http://sentry.corp"},
    ),
    "bytes": (f"http://alice:{PASSWORD}@proxy.corp:3128".encode(), {}),
}
"""Each case by name: the test's own frame, in the traceback too, holds only the name."""


def _refusal(make: Callable[[], object]) -> BaseException:
    with pytest.raises((TypeError, ValueError)) as refused:
        make()
    return refused.value


@pytest.mark.parametrize("case", list(REFUSED))
def test_a_refused_option_leaves_no_proxy_password_in_a_traceback_with_locals(case: str) -> None:
    error = _refusal(
        lambda: SentryClient(TOKEN, proxy=REFUSED[case][0], **REFUSED[case][1])  # type: ignore[arg-type]
    )
    shown = with_locals(error)
    assert PASSWORD not in shown
    assert TOKEN not in shown


def test_a_refused_token_leaves_no_proxy_password_in_a_traceback_with_locals() -> None:
    error = _refusal(lambda: SentryClient(TOKEN + " x", proxy=PROXY))
    assert isinstance(error, ValueError) and "spaces" in str(error)
    assert PASSWORD not in with_locals(error)


def test_a_proxy_from_the_environment_is_not_in_a_traceback_with_locals(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A refusal of the environment's proxy shows none of the environment: ``os.environ``
    printed as a local would show every variable, the token's among them."""
    monkeypatch.setenv("HTTP_PROXY", f"http://alice:{PASSWORD}@proxy.corp:3128")
    monkeypatch.setenv("SENTRY_AUTH_TOKEN", TOKEN)
    error = _refusal(lambda: SentryClient(base_url="http://sentry.corp"))
    assert "plain http" in str(error)
    shown = with_locals(error)
    assert PASSWORD not in shown
    assert TOKEN not in shown


# The token itself.


NOT_STRINGS: dict[str, object] = {
    "bytes": TOKEN.encode(),
    "bytearray": bytearray(TOKEN.encode()),
    "int": 12345,
}


@pytest.mark.parametrize("case", list(NOT_STRINGS))
def test_a_token_that_is_not_a_string_is_refused_without_showing_it(case: str) -> None:
    error = _refusal(lambda: SentryClient(NOT_STRINGS[case]))  # type: ignore[arg-type]
    assert isinstance(error, TypeError)
    assert str(error) == f"token must be a string or None (got {case})"
    shown = everything_shown(error)
    assert TOKEN not in shown and "12345" not in shown


def test_a_token_that_is_not_a_string_is_refused_before_a_proxy_is_read() -> None:
    error = _refusal(lambda: SentryClient(TOKEN.encode(), proxy=PROXY))  # type: ignore[arg-type]
    assert isinstance(error, TypeError)
    shown = with_locals(error)
    assert PASSWORD not in shown and TOKEN not in shown


# A walk whose cursor echoes the token, and a later request of it that fails.


def _echoing_cursor(status: int) -> web.Application:
    """Pages whose ``Link`` cursor is the request's own token; the page it names answers
    ``status``."""

    async def page(request: web.Request) -> web.Response:
        token = request.headers.get("Authorization", "").removeprefix("Bearer ")
        if "cursor" in request.query:
            return web.json_response({"detail": "nope"}, status=status)
        url = f"http://{request.host}{request.path}?&cursor={token}"
        link = (
            f'<{url}>; rel="previous"; results="false"; cursor="{token}", '
            f'<{url}>; rel="next"; results="true"; cursor="{token}"'
        )
        return web.json_response([{"id": "1", "slug": "acme"}], headers={"Link": link})

    app = web.Application()
    app.router.add_get("/{tail:.*}", page)
    return app


async def _walk(client: SentryClient, how: str) -> object:
    if how == "fan_out":
        merged = fan_out({"acme": lambda: client.paginate("/organizations/", prefetch=0)})
        async with merged:
            return [item async for item in merged]
    if how == "pages":
        pages = 0
        async for page in client.paginate("/organizations/").pages():
            pages += 1
            del page  # its next_cursor is the server's, which the caller is given
        return pages
    if how == "first-page-then-next":
        paginator = client.paginate("/organizations/", prefetch=0)
        await paginator.__anext__()
        return await paginator.__anext__()
    prefetch = {"collect": 0, "read-ahead": 2}[how]
    return await client.paginate("/organizations/", prefetch=prefetch).collect()


WALKS = ["collect", "read-ahead", "pages", "first-page-then-next", "fan_out"]


@pytest.mark.parametrize("how", WALKS)
@pytest.mark.parametrize("status", [500, 400])
async def test_a_cursor_echoing_the_token_is_not_in_a_later_errors_locals(
    how: str, status: int
) -> None:
    async with (
        local_app(_echoing_cursor(status)) as url,
        SentryClient(TOKEN, base_url=url, retry=FAST) as client,
    ):
        error = await provoke(lambda: _walk(client, how))
    assert isinstance(error, ServerError if status == 500 else BadRequest)
    assert "cursor=********" in str(error)
    assert_hidden(everything_shown(error))


async def test_an_error_leaving_a_walk_keeps_the_lines_of_the_frames_it_came_up_through() -> None:
    """Only their locals go: a traceback still shows where the error was raised."""
    async with (
        local_app(_echoing_cursor(500)) as url,
        SentryClient(TOKEN, base_url=url, retry=RetryPolicy(attempts=1)) as client,
    ):
        error = await provoke(lambda: _walk(client, "collect"))
    assert isinstance(error, ServerError)
    frames = {frame.f_code.co_name: frame for frame, _ in traceback.walk_tb(error.__traceback__)}
    assert {"_items", "fetch", "_attempts"} <= set(frames)
    assert frames["_attempts"].f_locals == {} and frames["fetch"].f_locals == {}


async def test_a_walk_cancelled_after_a_cursor_echoing_the_token_shows_none_of_it() -> None:
    """The caller's timeout on the page after one whose cursor echoes the token."""
    arrived, release = asyncio.Event(), asyncio.Event()

    async def page(request: web.Request) -> web.Response:
        if "cursor" in request.query:
            arrived.set()
            with anyio.move_on_after(30):
                await release.wait()
        token = request.headers.get("Authorization", "").removeprefix("Bearer ")
        url = f"http://{request.host}{request.path}?&cursor={token}"
        link = f'<{url}>; rel="next"; results="true"; cursor="{token}"'
        return web.json_response([{"id": "1", "slug": "acme"}], headers={"Link": link})

    app = web.Application()
    app.router.add_get("/{tail:.*}", page)
    async with local_app(app) as url, SentryClient(TOKEN, base_url=url) as client:
        try:
            paginator = client.paginate("/organizations/", prefetch=0)
            error = await _cut_short("anyio.fail_after", paginator.collect, arrived)
        finally:
            release.set()
    assert isinstance(error, TimeoutError)
    assert_hidden(everything_shown(error))


async def test_a_paginator_resumed_at_a_cursor_echoing_the_token_does_not_show_it() -> None:
    """A position saved from a walk whose server echoed the token in a cursor holds it as
    sent (it must, to resume there); the paginator resumed from it is shown, in its repr and
    as ``self`` in any later error's locals, with the token blanked out."""
    from sentry_async import Position

    async with SentryClient(TOKEN, base_url="http://127.0.0.1:9", retry=FAST) as client:
        paginator = client.issues.list("acme").resume(Position(f"{TOKEN}:0:1", skip=3))
        shown = repr(paginator)
        assert paginator.cursor == f"{TOKEN}:0:1", "the cursor itself is kept as sent"
    assert "Paginator(" in shown and "skip=3" in shown
    assert_hidden(shown)
