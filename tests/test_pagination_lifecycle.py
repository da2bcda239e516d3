"""A paginator advanced with ``anext(paginator)`` through failures, timeouts and misuse.

An ``anext`` that raised (a server error past its retries, a caller's timeout) must not
make the next one report the end of the stream: it goes on from ``position``, every item
once. A second task stepping the same paginator, or closing it under its consumer, is
refused with a clear error before anything changes, never a silent restart.
"""

from __future__ import annotations

import asyncio
import gc
import weakref

import anyio
import anyio.lowlevel
import pytest

from sentry_async import PaginationError, Paginator, SentryClient
from sentry_async.pagination import RawPage
from sentry_async.testing import FakeSentry, Fault

PAGE = 10


class Flaky(Exception):
    """A page's request that failed (what a ServerError past its retries is to the walk)."""


def _link(nxt: str, more: bool) -> str:
    return f'<https://h/x/>; rel="next"; results="{"true" if more else "false"}"; cursor="{nxt}"'


class Source:
    """Serves ``total`` integers in pages of ``PAGE``; the request for page ``fail_at``
    (counted from 0) fails ``failures`` times first, and each page ``hang_at`` holds until
    ``release`` is set."""

    def __init__(self, total: int, *, fail_at: int | None = None, failures: int = 1) -> None:
        self.total = total
        self.fail_at = fail_at
        self.failures = failures
        self.requests: list[str | None] = []
        self.hang_at: set[int] = set()
        self.hanging = anyio.Event()
        self.release = anyio.Event()

    async def __call__(self, cursor: str | None, size: int | None) -> RawPage:
        assert len(self.requests) < 200, "unbounded pagination"
        self.requests.append(cursor)
        offset = int(cursor) if cursor else 0
        page = offset // PAGE
        await anyio.lowlevel.checkpoint()
        if page in self.hang_at:
            self.hanging.set()
            await self.release.wait()
        if page == self.fail_at and self.failures:
            self.failures -= 1
            raise Flaky(f"page {page} failed")
        nxt = offset + PAGE
        items = list(range(offset, min(nxt, self.total)))
        return RawPage(items=items, link=_link(str(nxt), nxt < self.total))


def _others() -> set[asyncio.Task[object]]:
    return {task for task in asyncio.all_tasks() if task is not asyncio.current_task()}


async def _settle() -> None:
    for _ in range(50):
        await anyio.lowlevel.checkpoint()


async def _step_through(paginator: Paginator[int], *, tolerate: int = 5) -> tuple[list[int], int]:
    """Every item ``anext`` hands out, asking again after each failure (at most
    ``tolerate``), as a consumer that treats failures as transient does."""
    got: list[int] = []
    failures = 0
    with anyio.fail_after(10):
        while True:
            try:
                got.append(await anext(paginator))
            except StopAsyncIteration:
                return got, failures
            except Flaky:
                failures += 1
                assert failures <= tolerate, "the same failure again and again"


@pytest.mark.parametrize("prefetch", [None, 0, 1, 2, 4])
@pytest.mark.parametrize("fail_at", [0, 1, 2, 5, 9])
async def test_the_anext_after_a_failed_one_goes_on_from_the_position(
    prefetch: int | None, fail_at: int
) -> None:
    """Was: the next ``anext`` raised ``StopAsyncIteration`` with the stream unfinished, an
    interruption that looked like its end."""
    before = _others()
    source = Source(95, fail_at=fail_at)
    paginator = Paginator[int](source, page_size=PAGE, prefetch=prefetch)
    got, failures = await _step_through(paginator)
    assert failures == 1
    assert got == list(range(95)), "every item once, in order"
    assert paginator.position.done
    await paginator.aclose()
    await _settle()
    assert _others() == before


async def test_the_position_after_a_failure_is_after_the_last_item_handed_out() -> None:
    source = Source(95, fail_at=3)
    paginator = Paginator[int](source, page_size=PAGE, prefetch=2)
    got = [await anext(paginator) for _ in range(30)]
    with pytest.raises(Flaky):
        await anext(paginator)
    assert paginator.position.cursor == "30" and paginator.position.skip == 0
    assert not paginator.position.done
    got.append(await anext(paginator))
    assert got == list(range(31))
    await paginator.aclose()


async def test_a_caller_timeout_is_not_the_end_of_the_stream() -> None:
    before = _others()
    source = Source(95)
    source.hang_at = {2}
    paginator = Paginator[int](source, page_size=PAGE, prefetch=0)
    got = [await anext(paginator) for _ in range(20)]
    with pytest.raises(asyncio.TimeoutError):  # not the builtin before Python 3.11
        await asyncio.wait_for(anext(paginator), 0.05)  # the page hangs until released
    assert not paginator.position.done and paginator.position.cursor == "20"
    source.release.set()
    rest, _ = await _step_through(paginator, tolerate=0)
    assert got + rest == list(range(95))
    assert paginator.position.done
    await _settle()
    assert _others() == before


async def test_a_cancelled_anext_is_not_the_end_of_the_stream() -> None:
    source = Source(95)
    source.hang_at = {4}
    paginator = Paginator[int](source, page_size=PAGE, prefetch=2)
    got = [await anext(paginator) for _ in range(40)]
    waiting = asyncio.ensure_future(anext(paginator))
    with anyio.fail_after(10):
        await source.hanging.wait()
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    source.release.set()
    rest, _ = await _step_through(paginator, tolerate=0)
    assert got + rest == list(range(95))


async def test_limit_and_max_pages_count_what_came_before_the_failure() -> None:
    limited = Paginator[int](Source(95, fail_at=2), page_size=PAGE, limit=25)
    got, failures = await _step_through(limited)
    assert failures == 1 and got == list(range(25))
    assert limited.position.cursor == "20" and limited.position.skip == 5
    capped_source = Source(95, fail_at=1)
    capped = Paginator[int](capped_source, page_size=PAGE, max_pages=3, prefetch=0)
    got, failures = await _step_through(capped)
    assert failures == 1 and got == list(range(30))
    assert capped.position.cursor == "30" and not capped.position.done
    assert capped_source.requests == [None, "10", "10", "20"], "three pages, one retried"
    assert capped.pages_fetched == 3


async def test_a_pagination_error_is_raised_again_not_continued() -> None:
    """A walk that cannot go on (here a cursor cycle) would repeat its items if started
    again from its position: the next ``anext`` raises the same error, sends nothing."""
    requests: list[str | None] = []

    async def cycling(cursor: str | None, size: int | None) -> RawPage:
        assert len(requests) < 20, "unbounded pagination"
        requests.append(cursor)
        nxt = {None: "a", "a": "b", "b": "a"}[cursor]
        return RawPage(items=[len(requests)], link=_link(nxt, True))

    paginator = Paginator[int](cycling, page_size=PAGE, prefetch=0)
    assert [await anext(paginator) for _ in range(2)] == [1, 2]
    with pytest.raises(PaginationError) as first:
        await anext(paginator)
    sent = len(requests)
    with pytest.raises(PaginationError) as again:
        await anext(paginator)
    assert type(again.value) is type(first.value) and str(again.value) == str(first.value)
    assert again.value.position == first.value.position
    assert len(requests) == sent
    assert not paginator.position.done
    await paginator.aclose()
    assert await anext(paginator) == 1 + sent, "after aclose(), it starts over"
    await paginator.aclose()


def _repeating() -> Paginator[int]:
    """A stream whose second page sends back the cursor it was asked with."""

    async def fetch(cursor: str | None, size: int | None) -> RawPage:
        return RawPage(items=[1], link=_link("a", True))

    return Paginator[int](fetch, page_size=PAGE, prefetch=0)


@pytest.mark.parametrize("failure", [Flaky, PaginationError])
async def test_a_paginator_dropped_after_a_failure_is_freed_at_once(
    failure: type[Exception],
) -> None:
    """What it keeps to go on (or to raise again) holds no traceback, whose frames would
    hold the paginator: dropped, it is freed without the cyclic collector."""
    before = _others()
    if failure is Flaky:
        paginator, taken = Paginator[int](Source(95, fail_at=2), page_size=PAGE, prefetch=2), 20
    else:
        paginator, taken = _repeating(), 1
    collecting = gc.isenabled()
    gc.disable()
    try:
        for _ in range(taken):
            await anext(paginator)
        with pytest.raises(failure):
            await anext(paginator)
        gone = weakref.ref(paginator)
        del paginator
        assert gone() is None
    finally:
        if collecting:
            gc.enable()
    await _settle()
    assert _others() == before


async def test_the_next_anext_after_aclose_starts_over_not_continues() -> None:
    source = Source(35, fail_at=2)
    paginator = Paginator[int](source, page_size=PAGE, prefetch=0)
    assert [await anext(paginator) for _ in range(20)] == list(range(20))
    with pytest.raises(Flaky):
        await anext(paginator)
    await paginator.aclose()
    got, _ = await _step_through(paginator, tolerate=0)
    assert got == list(range(35))


async def test_a_server_error_past_the_retries_is_not_the_end(
    fake_sentry: FakeSentry, client: SentryClient
) -> None:
    """The review's case on the wire: the second page answers 503 to both attempts."""
    org = fake_sentry.data.org_slugs()[0]
    project = fake_sentry.data.project_slugs(org)[0]
    truth = fake_sentry.data.event_ids(org, project, include_transactions=False)
    assert len(truth) > 14
    path = f"/projects/{org}/{project}/events/"
    fake_sentry.faults.add(Fault("status", status=503, path=path, after=1, times=2))
    paginator = client.events.for_project(org, project, page_size=7).read_ahead(0)
    got: list[str] = []
    errors: list[str] = []
    with anyio.fail_after(30):
        while len(errors) <= 3:
            try:
                got.append((await anext(paginator)).event_id)
            except StopAsyncIteration:
                break
            except Exception as exc:  # the consumer asks again
                errors.append(type(exc).__name__)
    assert errors == ["ServerError"]
    assert got == truth
    assert paginator.position.done
    await paginator.aclose()


@pytest.mark.parametrize("prefetch", [0, 2])
async def test_aclose_from_another_task_is_refused_and_changes_nothing(
    prefetch: int,
) -> None:
    """Was: a bare "already running" RuntimeError, after the state was reset, and the
    consumer's next ``anext`` started over from the first page."""
    before = _others()
    source = Source(95)
    source.hang_at = {1}
    paginator = Paginator[int](source, page_size=PAGE, prefetch=prefetch)
    got = [await anext(paginator) for _ in range(PAGE)]
    waiting = asyncio.ensure_future(anext(paginator))
    with anyio.fail_after(10):
        await source.hanging.wait()
    position = paginator.position
    with pytest.raises(RuntimeError, match="one consumer"):
        await paginator.aclose()
    assert paginator.position == position
    source.release.set()
    with anyio.fail_after(10):
        got.append(await waiting)
    rest, _ = await _step_through(paginator, tolerate=0)
    assert got + rest == list(range(95)), "no restart, no duplicate"
    await paginator.aclose()
    await _settle()
    assert _others() == before


async def test_aclose_from_another_task_is_refused_while_an_async_for_steps() -> None:
    source = Source(95)
    source.hang_at = {1}
    paginator = Paginator[int](source, page_size=PAGE, prefetch=0)
    got: list[int] = []

    async def loop() -> None:
        async for item in paginator:
            got.append(item)

    looping = asyncio.ensure_future(loop())
    with anyio.fail_after(10):
        await source.hanging.wait()
    with pytest.raises(RuntimeError, match="one consumer"):
        await paginator.aclose()
    source.release.set()
    with anyio.fail_after(10):
        await looping
    assert got == list(range(95))
    await paginator.aclose()


@pytest.mark.parametrize("prefetch", [0, 2])
async def test_two_tasks_stepping_one_paginator_get_a_clear_error(prefetch: int) -> None:
    """Was: Python's bare "anext(): asynchronous generator is already running"."""
    source = Source(95)
    source.hang_at = {1}
    paginator = Paginator[int](source, page_size=PAGE, prefetch=prefetch)
    got = [await anext(paginator) for _ in range(PAGE)]
    waiting = asyncio.ensure_future(anext(paginator))
    with anyio.fail_after(10):
        await source.hanging.wait()
    with pytest.raises(RuntimeError, match="a paginator has one consumer"):
        await anext(paginator)
    source.release.set()
    with anyio.fail_after(10):
        got.append(await waiting)
    rest, _ = await _step_through(paginator, tolerate=0)
    assert got + rest == list(range(95)), "the refused call changed nothing"
    await paginator.aclose()
