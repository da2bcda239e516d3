"""The client under faults and load, against the fake server over real HTTP.

Rate-limit waits are checked on the server's clock: after a 429 that asks for a wait, no
request from any task sharing the client may arrive before the wait is over.
"""

from __future__ import annotations

import asyncio
import gc
import re
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import aclosing, asynccontextmanager
from functools import partial
from typing import Any

import anyio
import pytest
from _local_server import local_app
from aiohttp import web

from sentry_async import (
    ConnectionFailed,
    DecodeError,
    PaginationError,
    RateLimited,
    RequestTimeout,
    RetryPolicy,
    SentryClient,
    ServerError,
    Timeouts,
)
from sentry_async.testing import FakeSentry, Fault, RateLimitPolicy, RecordedRequest
from sentry_async.testing.pytest_plugin import FIXED_NOW

# Marked here, not only by conftest: a mark added after collection makes anyio rebuild the
# test items and drop their parametrization.
pytestmark = pytest.mark.anyio

Factory = Callable[..., Awaitable[FakeSentry]]
FAST = RetryPolicy(attempts=4, backoff_base=0.01, backoff_max=0.05)
ORG_PATH = "/organizations/{org}/"
ORG_ROUTE = r"^/api/0/organizations/[^/]+/$"
IN_FLIGHT_GRACE = 0.1
"""A request the client had already sent when the 429 came back may arrive this late."""
TOLERANCE = 0.05


def client_for(server: FakeSentry, **kwargs: Any) -> SentryClient:
    kwargs.setdefault("retry", FAST)
    return SentryClient(server.token, base_url=server.url, **kwargs)


def wall_offset() -> float:
    """Add to a ``time.monotonic()`` reading (the server's request log) to get wall time."""
    return time.time() - time.monotonic()


def assert_nothing_sent_during_waits(
    requests: list[RecordedRequest], wait_until: Callable[[RecordedRequest], float]
) -> int:
    """For every 429, no later request arrived before ``wait_until(that_429)`` (monotonic).

    Returns how many 429s were checked.
    """
    limited = [r for r in requests if r.status == 429]
    for refusal in limited:
        assert refusal.finished is not None
        deadline = wait_until(refusal)
        early = [
            round(r.started - refusal.finished, 3)
            for r in requests
            if refusal.finished + IN_FLIGHT_GRACE < r.started < deadline - TOLERANCE
        ]
        assert not early, (
            f"requests arrived {early}s after a 429 that asked to wait "
            f"{deadline - refusal.finished:.2f}s"
        )
    return len(limited)


async def hammer(
    client: SentryClient, org: str, tasks: int, each: int, *, pause: float = 0.15
) -> int:
    """``tasks`` tasks sharing ``client`` each fetch the org ``each`` times, ``pause`` apart,
    so that the load lasts longer than the waits under test; returns the successes."""
    done = 0

    async def worker() -> None:
        nonlocal done
        for _ in range(each):
            org_detail = await client.request("GET", ORG_PATH, path_params={"org": org})
            assert org_detail["slug"] == org
            done += 1
            await anyio.sleep(pause)

    async with anyio.create_task_group() as group:
        for _ in range(tasks):
            group.start_soon(worker)
    return done


# -- 429 storms -----------------------------------------------------------------------------


async def test_retry_after_holds_every_task(fake_sentry: FakeSentry) -> None:
    org = fake_sentry.data.org_slugs()[0]
    fake_sentry.faults.add(
        Fault("rate_limit", path=ORG_ROUTE, retry_after=1, reset_in=None, after=6, times=3)
    )
    async with client_for(fake_sentry) as client:
        with anyio.fail_after(15):
            assert await hammer(client, org, tasks=6, each=4) == 24
    requests = fake_sentry.requests
    checked = assert_nothing_sent_during_waits(requests, lambda r: r.finished + 1.0)
    assert checked >= 1
    assert len([r for r in requests if r.status == 200]) == 24
    first = min(r.finished for r in requests if r.status == 429)
    assert any(r.started >= first + 1.0 for r in requests), "work resumed after the wait"


async def test_reset_in_the_future_holds_every_task(fake_sentry: FakeSentry) -> None:
    """``X-Sentry-Rate-Limit-Reset`` is an epoch second: wait until then, whoever asked."""
    reset_in = 1.5  # int(now + 1.5) is 0.5 to 1.5 s away
    org = fake_sentry.data.org_slugs()[0]
    offset = wall_offset()
    fake_sentry.faults.add(
        Fault("rate_limit", path=ORG_ROUTE, retry_after=None, reset_in=reset_in, after=5, times=2)
    )
    async with client_for(fake_sentry) as client:
        with anyio.fail_after(15):
            assert await hammer(client, org, tasks=5, each=3) == 15

    def reset_of(refusal: RecordedRequest) -> float:
        # The server stamped int(its wall clock + reset_in) between started and finished.
        return int(refusal.started + offset + reset_in) - offset

    assert assert_nothing_sent_during_waits(fake_sentry.requests, reset_of) >= 1


@pytest.mark.parametrize("reset_in", [-5.0, None], ids=["reset-in-the-past", "no-reset"])
async def test_429_without_a_usable_wait_backs_off_every_task(
    fake_sentry: FakeSentry, reset_in: float | None
) -> None:
    """No Retry-After and no future reset: back off, and every task backs off with it."""
    org = fake_sentry.data.org_slugs()[0]
    fake_sentry.faults.add(
        Fault("rate_limit", path=ORG_ROUTE, retry_after=None, reset_in=reset_in, after=5, times=2)
    )
    policy = RetryPolicy(attempts=4, backoff_base=0.3, backoff_max=1.0, jitter=0.0)
    async with client_for(fake_sentry, retry=policy) as client:
        with anyio.fail_after(15):
            assert await hammer(client, org, tasks=5, each=3) == 15
    checked = assert_nothing_sent_during_waits(
        fake_sentry.requests,
        lambda r: r.finished + policy.backoff_base,
    )
    assert checked >= 1


async def test_server_enforced_window_is_learned_and_respected(
    fake_sentry_factory: Factory,
) -> None:
    """The server's own fixed window: the client reads Limit/Remaining/Reset and paces itself
    instead of running into 429s (an unpaced client would collect ten of them here)."""
    server = await fake_sentry_factory(
        rate_limits=RateLimitPolicy(limit=6, window=1.0, concurrent_limit=None, retry_after=True)
    )
    org = server.data.org_slugs()[0]
    async with client_for(server, retry=RetryPolicy(attempts=6, backoff_base=0.05)) as client:
        with anyio.fail_after(20):
            assert await hammer(client, org, tasks=4, each=4, pause=0.01) == 16
    requests = server.requests
    offset = wall_offset()

    def window_end(refusal: RecordedRequest) -> float:
        return int(refusal.started + offset) + 1.0 - offset

    assert_nothing_sent_during_waits(requests, window_end)
    assert len([r for r in requests if r.status == 429]) <= 2
    windows = {int(r.started + offset) for r in requests if r.status == 200}
    assert len(windows) >= 3, "16 requests at 6 per second span at least three windows"


async def test_a_429_on_one_of_sentrys_counters_does_not_stall_another(
    fake_sentry: FakeSentry,
) -> None:
    """A project's events have a window of their own on Sentry (``ProjectEventsEndpoint``
    declares its limits): a 429 there does not hold the organization's details."""
    org = fake_sentry.data.org_slugs()[0]
    project = fake_sentry.data.project_slugs(org)[0]
    fake_sentry.faults.add(
        Fault("rate_limit", path=r"/events/$", retry_after=1, reset_in=None, times=1)
    )
    async with client_for(fake_sentry) as client:
        with anyio.fail_after(15):
            async with anyio.create_task_group() as group:
                group.start_soon(lambda: client.events.for_project(org, project, limit=5).collect())
                await anyio.sleep(0.2)
                await hammer(client, org, tasks=2, each=3, pause=0.01)
                # Done while the events endpoint is still held: nothing waited for it.
                events = "GET /projects/{org}/{project}/events/"
                assert client.limiter.state(events).blocked_for > 0.2
    org_requests = [r for r in fake_sentry.requests if r.path.endswith(f"/{org}/")]
    assert len(org_requests) == 6


# -- faults while paginating ----------------------------------------------------------------

FAULTS: dict[str, tuple[dict[str, Any], type[Exception] | None]] = {
    # name: (Fault options, the error once the fault outlasts the retry budget)
    "502": ({"kind": "status", "status": 502}, ServerError),
    "503-html": ({"kind": "status", "status": 503, "body": "<h1>503</h1>"}, ServerError),
    "429-no-wait": ({"kind": "rate_limit", "retry_after": 0, "reset_in": None}, RateLimited),
    "drop-before-headers": ({"kind": "drop"}, ConnectionFailed),
    "drop-mid-body": ({"kind": "drop_mid_body", "fraction": 0.3}, ConnectionFailed),
    "truncated-json": ({"kind": "truncated_json", "fraction": 0.6}, DecodeError),
    "html-as-json": ({"kind": "invalid_json_content"}, DecodeError),
    "slow": ({"kind": "slow", "delay": 2.5}, RequestTimeout),
    "close-keepalive": ({"kind": "close_keepalive"}, None),
}
TIMEOUTS = Timeouts(connect=2.0, read=1.0)
"""``read`` well under the slow fault's delay, and well over what an ordinary page of the
in-process fake takes on a busy machine (it shares the test's loop): seen on a machine
running four busy processes per two cores, an ordinary page took more than 0.2 s."""
BUSY_MACHINE_DELAY = 0.4
"""How late an ordinary page may come without counting as a fault."""


def _policy(fault: str) -> RetryPolicy:
    """The retry budget a test of ``fault`` runs with: two attempts for a timeout (each
    costs a whole read timeout; the mechanism is the same at every attempt), else FAST's."""
    return RetryPolicy(attempts=2, backoff_base=0.01, backoff_max=0.05) if fault == "slow" else FAST


def _walk(client: SentryClient, server: FakeSentry, target: str) -> tuple[Any, list[str], str]:
    """A paginator over ``target``, the ids the server holds for it, and its path regex."""
    org = server.data.org_slugs()[0]
    if target == "issues":
        return (
            client.issues.list(org, query="", page_size=25),
            server.data.issue_ids(org),
            r"/organizations/[^/]+/issues/$",
        )
    project = server.data.project_slugs(org)[0]
    return (
        client.events.for_project(org, project, page_size=40),
        server.data.event_ids(org, project, include_transactions=False),
        r"/projects/[^/]+/[^/]+/events/$",
    )


def _ids(target: str, items: list[Any]) -> list[str]:
    return [item.id if target == "issues" else item.event_id for item in items]


@pytest.mark.parametrize("target", ["issues", "events"])
@pytest.mark.parametrize("fault", list(FAULTS))
async def test_transient_fault_mid_pagination_loses_nothing(
    fake_sentry: FakeSentry, fault: str, target: str
) -> None:
    options, error_type = FAULTS[fault]
    policy = _policy(fault)
    resends = policy.attempts - 1 if error_type is not None else 0
    async with client_for(fake_sentry, timeout=TIMEOUTS, retry=policy) as client:
        paginator, expected, route = _walk(client, fake_sentry, target)
        fake_sentry.faults.add(Fault(path=route, after=2, times=policy.attempts - 1, **options))
        with anyio.fail_after(15):
            ids = _ids(target, await paginator.collect())
    assert len(ids) == len(set(ids)), "no duplicates"
    assert sorted(ids) == sorted(expected), "no gaps"
    assert len(expected) > 100
    hits = [r for r in fake_sentry.requests if re.search(route, r.path)]
    pages = -(-len(expected) // (25 if target == "issues" else 40))
    assert len(hits) == pages + resends, "each fault cost exactly one resend"


async def test_a_page_a_busy_machine_delays_is_not_a_fault(fake_sentry: FakeSentry) -> None:
    async with client_for(fake_sentry, timeout=TIMEOUTS) as client:
        paginator, expected, route = _walk(client, fake_sentry, "issues")
        fake_sentry.faults.add(
            Fault(path=route, kind="slow", delay=BUSY_MACHINE_DELAY, after=1, times=1)
        )
        with anyio.fail_after(15):
            ids = _ids("issues", await paginator.collect())
    assert sorted(ids) == sorted(expected)
    hits = [r for r in fake_sentry.requests if re.search(route, r.path)]
    assert len(hits) == -(-len(expected) // 25), "no page was sent twice"


@pytest.mark.parametrize("prefetch", [0, None], ids=["one-by-one", "default-read-ahead"])
@pytest.mark.parametrize("fault", [name for name, (_, error) in FAULTS.items() if error])
async def test_fault_outlasting_the_budget_is_a_typed_error(
    fake_sentry: FakeSentry, fault: str, prefetch: int | None
) -> None:
    options, error_type = FAULTS[fault]
    assert error_type is not None
    policy = _policy(fault)
    async with client_for(fake_sentry, timeout=TIMEOUTS, retry=policy) as client:
        paginator, expected, route = _walk(client, fake_sentry, "issues")
        paginator = paginator.read_ahead(prefetch)
        fake_sentry.faults.add(Fault(path=route, after=1, times=None, **options))
        seen: list[str] = []

        async def consume() -> None:
            async for issue in paginator:
                seen.append(issue.id)

        with anyio.fail_after(15), pytest.raises(error_type) as caught:
            await consume()
    assert len(seen) == 25 and set(seen) <= set(expected), "the first page came through"
    assert "/organizations/" in str(caught.value)
    hits = [r for r in fake_sentry.requests if re.search(route, r.path)]
    # A drop of a connection kept alive (the first page's) is sent again at once on a new
    # one, within the same attempt.
    resent = 1 if fault == "drop-before-headers" else 0
    if prefetch == 0:
        assert len(hits) == 1 + policy.attempts + resent
    else:
        # From its second page on the walk reads ahead: the request for the third page,
        # sent when the second's headers came, is retried as well until the second's
        # failure ends the walk and cancels it. Never more than one request sent early.
        # Each of the two may find a kept-alive connection closed, and be sent again.
        assert 1 + policy.attempts <= len(hits) <= 1 + 2 * policy.attempts + 2 * resent
    # A request cancelled in flight may reach the server's record a moment after the
    # error; past that, nothing is sent: no retry loop or read-ahead outlives the walk.
    await anyio.sleep(0.2)
    settled = len(fake_sentry.requests)
    await anyio.sleep(0.3)
    assert len(fake_sentry.requests) == settled, "nothing goes on after the error"
    assert paginator.position.cursor is not None and not paginator.position.done


# -- concurrency ----------------------------------------------------------------------------

ORG_GROUP = "GET /api/0/organizations/{org}/"


def peak_overlap(requests: list[RecordedRequest], since: float) -> int:
    """Most requests the server was handling at once, counting requests started after ``since``."""
    peak = 0
    for request in requests:
        if request.started < since:
            continue
        peak = max(
            peak,
            sum(
                1
                for other in requests
                if other.started <= request.started
                and (other.finished is None or other.finished > request.started)
            ),
        )
    return peak


async def test_announced_concurrent_limit_is_never_exceeded(fake_sentry_factory: Factory) -> None:
    server = await fake_sentry_factory(
        rate_limits=RateLimitPolicy(limit=100_000, window=1.0, concurrent_limit=3)
    )
    server.faults.add(Fault("slow", path=ORG_ROUTE, delay=0.03, times=None))
    org = server.data.org_slugs()[0]
    async with client_for(server) as client:
        with anyio.fail_after(20):
            await client.request("GET", ORG_PATH, path_params={"org": org})
            assert client.limiter.state("GET /organizations/{org}/").concurrency == 3
            server.reset_log()
            assert await hammer(client, org, tasks=60, each=1, pause=0) == 60
    assert server.max_in_flight_of(ORG_GROUP) == 3
    assert all(r.status == 200 for r in server.requests), "no request was refused"


async def test_cold_start_learns_the_concurrent_limit(fake_sentry_factory: Factory) -> None:
    """Before the first answer the client cannot know the limit; once it does, it keeps it."""
    server = await fake_sentry_factory(
        rate_limits=RateLimitPolicy(limit=100_000, window=1.0, concurrent_limit=4)
    )
    server.faults.add(Fault("slow", path=ORG_ROUTE, delay=0.03, times=None))
    org = server.data.org_slugs()[0]
    async with client_for(server, retry=RetryPolicy(attempts=8, backoff_base=0.05)) as client:
        with anyio.fail_after(20):
            assert await hammer(client, org, tasks=50, each=1, pause=0) == 50
    requests = server.requests
    learned = min(r.finished for r in requests if r.finished is not None)
    assert peak_overlap(requests, learned + IN_FLIGHT_GRACE) <= 4
    assert len([r for r in requests if r.status == 200]) == 50


async def test_max_concurrency_is_respected(fake_sentry: FakeSentry) -> None:
    fake_sentry.faults.add(Fault("slow", path=ORG_ROUTE, delay=0.03, times=None))
    org = fake_sentry.data.org_slugs()[0]
    async with client_for(fake_sentry, max_concurrency=4) as client:
        with anyio.fail_after(20):
            assert await hammer(client, org, tasks=60, each=1, pause=0) == 60
    assert 2 <= fake_sentry.max_in_flight_of(ORG_GROUP) <= 4


async def test_many_tasks_paginating_at_once_each_get_everything(fake_sentry: FakeSentry) -> None:
    org = fake_sentry.data.org_slugs()[0]
    projects = fake_sentry.data.project_slugs(org)
    fake_sentry.faults.add(
        Fault("status", status=503, probability=0.15, times=None, path="/events/$")
    )
    fake_sentry.faults.add(Fault("drop", probability=0.1, times=None, path="/events/$"))
    results: dict[int, list[str]] = {}
    policy = RetryPolicy(attempts=10, backoff_base=0.01, backoff_max=0.02)

    async with client_for(fake_sentry, retry=policy, max_concurrency=6) as client:

        async def walk(n: int) -> None:
            project = projects[n % len(projects)]
            paginator = client.events.for_project(org, project, page_size=50)
            results[n] = [e.event_id for e in await paginator.collect()]

        with anyio.fail_after(30):
            async with anyio.create_task_group() as group:
                for n in range(51):
                    group.start_soon(walk, n)
    for n, ids in results.items():
        slug = projects[n % len(projects)]
        assert ids == fake_sentry.data.event_ids(org, slug, include_transactions=False)
    assert len(results) == 51
    assert fake_sentry.max_in_flight_of("GET /api/0/projects/{org}/{project}/events/") <= 6


# -- cancellation ---------------------------------------------------------------------------


@pytest.fixture
def threaded_server() -> Iterator[FakeSentry]:
    """A fake server on its own thread and event loop, so that the test's loop holds only
    the client's tasks and a leftover one is the client's."""
    server = FakeSentry(scale="small", now=FIXED_NOW)
    loop = asyncio.new_event_loop()
    ready = threading.Event()

    def serve() -> None:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(server.start())
        ready.set()
        loop.run_forever()
        loop.run_until_complete(server.close())
        loop.close()

    thread = threading.Thread(target=serve, name="fake-sentry", daemon=True)
    thread.start()
    assert ready.wait(10), "the fake server did not start"
    yield server
    loop.call_soon_threadsafe(loop.stop)
    thread.join(10)


def connections_in_use(client: SentryClient) -> int:
    """Connections the client's pool has handed out and not yet had back."""
    session = client._session
    assert session is not None
    return len(session.connector._acquired)


async def settle() -> set[asyncio.Task[Any]]:
    """Let finalizers and callbacks run, then return the loop's other unfinished tasks."""
    gc.collect()
    for _ in range(5):
        await asyncio.sleep(0.005)
    return {t for t in asyncio.all_tasks() if t is not asyncio.current_task() and not t.done()}


async def assert_clean_after(client: SentryClient, tasks_before: set[asyncio.Task[Any]]) -> None:
    assert connections_in_use(client) == 0
    assert await settle() <= tasks_before, "a task outlived the cancelled iteration"
    for group in client.limiter.groups:
        assert client.limiter.state(group).in_flight == 0, f"{group} kept a slot"


async def test_cancel_scope_mid_page_leaves_nothing_behind(threaded_server: FakeSentry) -> None:
    server = threaded_server
    org = server.data.org_slugs()[0]
    server.faults.add(Fault("slow", path=r"/issues/$", after=1, delay=0.6))
    async with client_for(server) as client:
        before = await settle()
        seen: list[str] = []
        with anyio.fail_after(10):
            with anyio.move_on_after(0.3) as scope:
                async for issue in client.issues.list(org, query="", page_size=25):
                    seen.append(issue.id)
            assert scope.cancelled_caught
            assert len(seen) == 25, "the second page never came"
            await assert_clean_after(client, before)
            assert (await client.issues.list(org, limit=3).collect())[0].id


async def test_breaking_out_of_async_for_leaves_nothing_behind(threaded_server: FakeSentry) -> None:
    org = threaded_server.data.org_slugs()[0]
    async with client_for(threaded_server) as client:
        before = await settle()
        with anyio.fail_after(10):
            paginator = client.issues.list(org, query="", page_size=25)
            async for issue in paginator:
                if issue.id:
                    break
            await assert_clean_after(client, before)
            assert len(threaded_server.requests) == 1, "no page was fetched ahead"


async def test_breaking_out_of_a_read_ahead_ends_its_task(threaded_server: FakeSentry) -> None:
    # The paginator outlives the loop (it is still a local): the read-ahead task must not.
    org = threaded_server.data.org_slugs()[0]
    async with client_for(threaded_server) as client:
        before = await settle()
        with anyio.fail_after(10):
            paginator = client.issues.list(org, query="", page_size=25).read_ahead(1)
            async for issue in paginator:
                if issue.id:
                    break
            await assert_clean_after(client, before)
            assert len(threaded_server.requests) <= 2, "more than one page was fetched ahead"
            assert paginator.position.skip == 1


async def test_closing_the_paginator_ends_the_iteration(threaded_server: FakeSentry) -> None:
    org = threaded_server.data.org_slugs()[0]
    async with client_for(threaded_server) as client:
        before = await settle()
        with anyio.fail_after(10):
            paginator = client.issues.list(org, query="", page_size=25)
            iterator = aiter(paginator)
            first = await anext(iterator)
            await paginator.aclose()
            with pytest.raises(StopAsyncIteration):
                await anext(iterator)
            await assert_clean_after(client, before)
            async with aclosing(client.issues.list(org, query="", page_size=25)) as again:
                assert (await again.__anext__()).id == first.id
            assert (await paginator.collect())[0].id == first.id, "it can start over"


async def test_cancelled_task_mid_request_releases_its_slot(threaded_server: FakeSentry) -> None:
    org = threaded_server.data.org_slugs()[0]
    threaded_server.faults.add(Fault("slow", path=ORG_ROUTE, delay=0.6, times=4))
    async with client_for(threaded_server, max_concurrency=4) as client:
        before = await settle()
        with anyio.fail_after(10):
            async with anyio.create_task_group() as group:
                for _ in range(4):
                    group.start_soon(
                        partial(client.request, "GET", ORG_PATH, path_params={"org": org})
                    )
                await anyio.sleep(0.2)
                assert client.limiter.state("GET /organizations/{org}/").in_flight == 4
                group.cancel_scope.cancel()
            await assert_clean_after(client, before)
            # Every slot came back: four requests fit at once again.
            assert await hammer(client, org, tasks=4, each=1, pause=0) == 4


async def test_cancel_while_waiting_out_a_429(threaded_server: FakeSentry) -> None:
    org = threaded_server.data.org_slugs()[0]
    threaded_server.faults.add(Fault("rate_limit", path=ORG_ROUTE, retry_after=30, reset_in=None))
    async with client_for(threaded_server) as client:
        before = await settle()
        with anyio.fail_after(10):
            with anyio.move_on_after(0.5) as scope:
                async with anyio.create_task_group() as group:
                    group.start_soon(hammer, client, org, 1, 1)
                    await anyio.sleep(0.2)
                    assert client.limiter.state("GET /organizations/{org}/").blocked_for > 20
                    for _ in range(3):
                        group.start_soon(hammer, client, org, 1, 1)
            assert scope.cancelled_caught
            await assert_clean_after(client, before)
    assert len(threaded_server.requests) == 1, "the others waited instead of sending"


# -- paginator edge cases against a server --------------------------------------------------


@pytest.mark.parametrize("serve", [3, 0], ids=["short-pages", "empty-pages"])
async def test_short_and_empty_pages_are_not_the_end(fake_sentry: FakeSentry, serve: int) -> None:
    org = fake_sentry.data.org_slugs()[0]
    project = fake_sentry.data.project_slugs(org)[0]
    fake_sentry.faults.add(Fault("short_pages", serve=serve, path="/events/$", after=1, times=4))
    async with client_for(fake_sentry) as client:
        with anyio.fail_after(15):
            pages = [
                page async for page in client.events.for_project(org, project, page_size=50).pages()
            ]
    ids = [event.event_id for page in pages for event in page.items]
    assert ids == fake_sentry.data.event_ids(org, project, include_transactions=False)
    assert [len(page) for page in pages[1:5]] == [serve] * 4
    assert all(page.next_cursor for page in pages[:-1]) and pages[-1].next_cursor is None


@asynccontextmanager
async def scripted_links(links: Callable[[str | None], str]) -> AsyncIterator[str]:
    """A server whose org list answers ``[]`` with ``links(requested_cursor)`` as Link."""
    served: list[str | None] = []

    async def orgs(request: web.Request) -> web.Response:
        cursor = request.query.get("cursor")
        served.append(cursor)
        assert len(served) < 50, "the client kept going"
        return web.json_response(
            [{"id": str(len(served)), "slug": f"o{len(served)}"}], headers={"Link": links(cursor)}
        )

    app = web.Application()
    app.router.add_get("/api/0/organizations/", orgs)
    async with local_app(app) as url:
        yield url


def _next_link(cursor: str) -> str:
    return (
        '<http://127.0.0.1/api/0/organizations/?&cursor=0:0:1>; rel="previous"; '
        'results="false"; cursor="0:0:1", '
        f'<http://127.0.0.1/api/0/organizations/?&cursor={cursor}>; rel="next"; '
        f'results="true"; cursor="{cursor}"'
    )


@pytest.mark.parametrize(
    "step",
    [
        pytest.param({None: "0:100:0", "0:100:0": "0:100:0"}, id="same-cursor-again"),
        pytest.param(
            {None: "0:100:0", "0:100:0": "0:200:0", "0:200:0": "0:100:0"}, id="two-page-cycle"
        ),
    ],
)
async def test_a_repeated_next_cursor_is_an_error_not_a_loop(step: dict[str | None, str]) -> None:
    seen: list[str] = []
    async with (
        scripted_links(lambda cursor: _next_link(step[cursor])) as url,
        SentryClient("t", base_url=url, retry=FAST) as client,
    ):

        async def walk() -> None:
            async for org in client.organizations.list():
                seen.append(org.slug)

        with anyio.fail_after(10), pytest.raises(PaginationError, match="cursor"):
            await walk()
    # The page that pointed back is not handed out: its items would be ones seen before.
    assert seen == [f"o{n + 1}" for n in range(len(step) - 1)]
