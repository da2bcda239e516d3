"""fan_out over many real paginated streams: completeness, bounds, failures, cancellation."""

from __future__ import annotations

import asyncio
import dataclasses
import pickle
import time
import weakref
from collections import Counter, defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import anyio
import anyio.lowlevel
import msgspec
import pytest

from sentry_async import NotFound, RetryPolicy, SentryClient, StreamDone, StreamItem, fan_out
from sentry_async._fanout_budget import Budget
from sentry_async._fanout_events import stream_item
from sentry_async._fanout_room import Room, event_type
from sentry_async.fanout import ErrorMode, FanOut
from sentry_async.hooks import HookEvent, Hooks
from sentry_async.pagination import Paginator, RawPage
from sentry_async.testing import FakeSentry, Fault, SeedConfig

ORG = "org-0"
PAGE = 5
MANY_PROJECTS = SeedConfig(
    orgs=1, projects_per_org=36, issues_per_project=4, events_per_issue=(1, 3), days=30
)
"""36 projects of roughly 6 to 14 events each, all inside the server's default 90 days."""

FAST_RETRY = RetryPolicy(backoff_base=0.01, backoff_max=0.05)

Factory = Callable[..., Awaitable[FakeSentry]]


async def _server(fake_sentry_factory: Factory) -> FakeSentry:
    server = await fake_sentry_factory(scale=MANY_PROJECTS)
    assert len(server.data.project_slugs(ORG)) >= 32
    return server


def _listed(server: FakeSentry, slug: str) -> list[str]:
    """The ids a project's event list serves: its events, transactions aside."""
    return server.data.event_ids(ORG, slug, include_transactions=False)


def _client(server: FakeSentry) -> SentryClient:
    return SentryClient(server.token, base_url=server.url, retry=FAST_RETRY)


def _events(client: SentryClient, slug: str) -> Callable[[], AsyncIterator[Any]]:
    def start() -> AsyncIterator[Any]:
        return aiter(client.events.for_project(ORG, slug, page_size=PAGE))

    return start


def _paginators(client: SentryClient, slugs: list[str]) -> dict[str, Callable[[], Any]]:
    """Factories returning the Paginator itself, which fan_out moves a page at a time."""

    def paginator(slug: str) -> Callable[[], Any]:
        return lambda: client.events.for_project(ORG, slug, page_size=PAGE)

    return {slug: paginator(slug) for slug in slugs}


class Gauge:
    """How many streams are running right now, and the most there ever were."""

    def __init__(self) -> None:
        self.active = 0
        self.peak = 0

    def wrap(self, factory: Callable[[], AsyncIterator[Any]]) -> Callable[[], AsyncIterator[Any]]:
        async def counted() -> AsyncIterator[Any]:
            self.active += 1
            self.peak = max(self.peak, self.active)
            try:
                async for item in factory():
                    yield item
            finally:
                self.active -= 1

        return counted


def _in_use(client: SentryClient) -> int:
    """Connections the client's pool has handed out and not got back (aiohttp internals)."""
    session = client._session
    assert session is not None
    return len(session.connector._acquired)  # type: ignore[union-attr]


async def _drain(merged: Any) -> int:
    """Consume a fan-out to its end; the number of items."""
    count = 0
    async with merged:
        async for _ in merged:
            count += 1
    return count


async def _fail_while_consuming(merged: Any) -> None:
    async with merged:
        async for _ in merged:
            raise KeyError("consumer failed")


def _client_tasks(before: set[asyncio.Task[Any]]) -> set[asyncio.Task[Any]]:
    """Tasks started since ``before`` that are not the in-process fake server's handlers."""
    return {
        task
        for task in asyncio.all_tasks() - before
        if not task.done() and "aiohttp/web_" not in task.get_coro().cr_code.co_filename
    }


async def test_every_item_of_every_stream_exactly_once(fake_sentry_factory: Factory) -> None:
    server = await _server(fake_sentry_factory)
    slugs = server.data.project_slugs(ORG)
    expected = {slug: _listed(server, slug) for slug in slugs}
    assert sum(len(ids) > PAGE for ids in expected.values()) > 20, "streams span several pages"
    seen: dict[str, list[str]] = defaultdict(list)
    with anyio.fail_after(20):
        async with _client(server) as client:
            streams = {slug: _events(client, slug) for slug in slugs}
            async with fan_out(streams, concurrency=6, buffer=16) as merged:
                async for slug, event in merged:
                    seen[slug].append(event.id)
    assert dict(seen) == expected, "each stream's items, in order, none lost or repeated"
    assert merged.started == len(slugs)
    assert set(merged.completed) == set(slugs)
    assert all(
        done.ok and done.items == len(expected[key]) for key, done in merged.completed.items()
    )
    assert merged.failures == {}


async def test_concurrency_never_exceeds_the_bound(fake_sentry_factory: Factory) -> None:
    server = await _server(fake_sentry_factory)
    slugs = server.data.project_slugs(ORG)
    total = sum(len(_listed(server, s)) for s in slugs)
    # Slow answers make the streams overlap, so a missing bound would show.
    server.faults.add(Fault("slow", path="/events/", delay=0.01, times=None))
    for concurrency in (1, 5):
        server.reset_log()
        gauge = Gauge()
        items = 0
        with anyio.fail_after(30):
            async with _client(server) as client:
                streams = {slug: gauge.wrap(_events(client, slug)) for slug in slugs}
                async with fan_out(streams, concurrency=concurrency, buffer=4) as merged:
                    async for _ in merged:
                        items += 1
        assert items == total
        assert gauge.peak == concurrency, "every slot was used, and never more"
        assert merged.max_active == concurrency
        assert 1 <= server.max_in_flight <= concurrency


async def test_slow_consumer_keeps_fetched_but_unconsumed_items_bounded(
    fake_sentry_factory: Factory,
) -> None:
    server = await _server(fake_sentry_factory)
    slugs = server.data.project_slugs(ORG)
    total = sum(len(_listed(server, s)) for s in slugs)
    concurrency, buffer = 4, 8
    bound = buffer + concurrency * PAGE
    assert total > 5 * bound
    fetched = 0

    def counting(client: SentryClient, slug: str) -> Callable[[], AsyncIterator[Any]]:
        async def stream() -> AsyncIterator[Any]:
            nonlocal fetched
            async for page in client.events.for_project(ORG, slug, page_size=PAGE).pages():
                fetched += len(page.items)
                for item in page.items:
                    yield item

        return stream

    consumed = 0
    peak = 0
    with anyio.fail_after(30):
        async with _client(server) as client:
            streams = {slug: counting(client, slug) for slug in slugs}
            async with fan_out(streams, concurrency=concurrency, buffer=buffer) as merged:
                async for _ in merged:
                    consumed += 1
                    if consumed == 1:
                        # A long pause: fetchers fill the buffer, then must stop asking.
                        # The buffer may settle just short of full (a waiting fetcher is
                        # woken at half free), so wait until it is full or stops moving.
                        still, last = 0, -1
                        for _ in range(1000):
                            if merged.buffered >= buffer or still >= 20:
                                break
                            still = still + 1 if fetched == last else 0
                            last = fetched
                            await anyio.sleep(0.01)
                        await anyio.sleep(0.3)
                        assert fetched - consumed <= bound
                        assert fetched < total
                    elif consumed % 7 == 0:
                        await anyio.sleep(0.005)
                    peak = max(peak, fetched - consumed)
    assert consumed == fetched == total
    assert peak <= bound
    assert merged.max_buffered <= buffer


async def test_paginator_streams_travel_by_page_and_lose_nothing(
    fake_sentry_factory: Factory,
) -> None:
    server = await _server(fake_sentry_factory)
    slugs = server.data.project_slugs(ORG)
    expected = {slug: _listed(server, slug) for slug in slugs}
    seen: dict[str, list[str]] = defaultdict(list)
    done: list[str] = []
    with anyio.fail_after(20):
        async with _client(server) as client:
            streams = _paginators(client, slugs)
            async with fan_out(streams, concurrency=6, buffer=3) as merged:
                async for event in merged.events():
                    if isinstance(event, StreamItem):
                        assert event.key not in done, "no item after its stream's done marker"
                        seen[event.key].append(event.item.id)
                    else:
                        assert event.items == len(expected[event.key])
                        done.append(event.key)
    assert dict(seen) == expected, "each stream's items, in order, none lost or repeated"
    assert sorted(done) == sorted(slugs)
    assert merged.buffered == 0
    assert merged.max_buffered <= 3 + PAGE - 1, "a page may overdraw the budget, no more"


async def test_slow_consumer_stops_paginator_streams_within_the_item_budget(
    fake_sentry_factory: Factory,
) -> None:
    server = await _server(fake_sentry_factory)
    slugs = server.data.project_slugs(ORG)
    total = sum(len(_listed(server, s)) for s in slugs)
    concurrency, buffer = 4, 8
    consumed = 0
    with anyio.fail_after(30):
        async with _client(server) as client:
            streams = _paginators(client, slugs)
            async with fan_out(streams, concurrency=concurrency, buffer=buffer) as merged:
                async for _ in merged:
                    consumed += 1
                    if consumed == 1:
                        await anyio.sleep(0.3)
                        requests = len([r for r in server.requests if "/events/" in r.path])
                        # In the budget (plus one page's overdraw), one page in each
                        # fetcher's hands, the one being consumed: nothing more was asked.
                        pages = -(-(buffer + PAGE - 1) // PAGE) + concurrency + 1
                        assert requests <= pages
                        assert merged.buffered <= buffer + PAGE - 1
    assert consumed == total
    assert merged.max_buffered <= buffer + PAGE - 1


async def test_a_stream_alone_stops_within_the_budget_and_two_pages_read_ahead() -> None:
    """A stream that walks alone reads two pages ahead of its consumer, as any walk alone
    does, and no further: a consumer that stops for a while finds two more pages asked for
    than the budget allows a stream beside others, not the rest of the stream."""
    asked: list[str | None] = []
    got: list[int] = []
    one = {"one": lambda: _recorded_paginator(20, PAGE, asked)}
    async with fan_out(one, concurrency=1, buffer=0) as merged:
        async for _, item in merged:
            got.append(item)
            if item == PAGE:  # the first item of the second page
                for _ in range(100):
                    await anyio.lowlevel.checkpoint()
                # The two it took, the one in the fetcher's hands (every active stream
                # may hold one), and two read ahead; nothing more.
                assert len(asked) == 2 + 1 + 2
    assert got == list(range(20 * PAGE))


async def test_fail_fast_cancels_the_run_and_raises_the_original_error(
    fake_sentry_factory: Factory,
) -> None:
    server = await _server(fake_sentry_factory)
    slugs = server.data.project_slugs(ORG)
    before = set(asyncio.all_tasks())
    with anyio.fail_after(20):
        async with _client(server) as client:
            streams = [("missing", _events(client, "no-such-project"))]
            streams += [(slug, _events(client, slug)) for slug in slugs]
            merged = fan_out(streams, concurrency=4, buffer=4)
            with pytest.raises(NotFound):
                await _drain(merged)
            assert _in_use(client) == 0
    assert set(merged.failures) == {"missing"}
    assert isinstance(merged.failures["missing"], NotFound)
    assert merged.started < len(streams), "no new stream starts after the failure"
    assert len(merged.completed) < len(slugs), "the other streams were cancelled"
    assert _client_tasks(before) == set()


async def test_fail_fast_error_is_not_wrapped_in_a_group() -> None:
    async def fine() -> AsyncIterator[int]:
        for n in range(1000):
            yield n
            await anyio.lowlevel.checkpoint()

    async def broken() -> AsyncIterator[int]:
        yield 1
        raise RuntimeError("boom")

    merged = fan_out({"a": fine, "b": broken, "c": fine}, concurrency=3)
    with anyio.fail_after(10), pytest.raises(RuntimeError, match="boom"):
        await _drain(merged)
    assert set(merged.failures) == {"b"}
    assert "a" not in merged.completed and "c" not in merged.completed


async def test_collect_mode_reports_failures_and_finishes_the_rest(
    fake_sentry_factory: Factory,
) -> None:
    server = await _server(fake_sentry_factory)
    slugs = server.data.project_slugs(ORG)
    seen: dict[str, list[str]] = defaultdict(list)
    done: dict[str, StreamDone[str]] = {}
    with anyio.fail_after(20):
        async with _client(server) as client:
            streams = {slug: _events(client, slug) for slug in slugs[:10]}
            streams["missing"] = _events(client, "no-such-project")
            streams.update({slug: _events(client, slug) for slug in slugs[10:]})
            async with fan_out(streams, concurrency=4, errors="collect") as merged:
                async for event in merged.events():
                    if isinstance(event, StreamItem):
                        assert event.key not in done, "a stream's items come before its end"
                        seen[event.key].append(event.item.id)
                    else:
                        done[event.key] = event
    assert dict(seen) == {slug: _listed(server, slug) for slug in slugs}
    assert set(done) == {*slugs, "missing"}
    assert not done["missing"].ok and isinstance(done["missing"].error, NotFound)
    assert done["missing"].items == 0
    assert all(done[slug].ok for slug in slugs)
    assert set(merged.failures) == {"missing"}
    assert merged.failures["missing"] is done["missing"].error


async def test_collect_mode_keeps_the_items_a_stream_gave_before_failing() -> None:
    async def partial() -> AsyncIterator[int]:
        yield 1
        yield 2
        raise RuntimeError("boom")

    async def whole() -> AsyncIterator[int]:
        for n in range(50):
            yield n

    items: dict[str, list[int]] = defaultdict(list)
    finished: list[str] = []
    merged = fan_out(
        {"partial": partial, "whole": whole},
        errors="collect",
        on_done=lambda event: finished.append(event.key),
    )
    with anyio.fail_after(10):
        async with merged:
            async for key, item in merged:
                items[key].append(item)
    assert items == {"partial": [1, 2], "whole": list(range(50))}
    assert sorted(finished) == ["partial", "whole"]
    assert merged.completed["partial"].items == 2
    assert str(merged.failures["partial"]) == "boom"


HANG = 3.0
"""How long hanging requests take: stopping must not wait for them."""


async def _break_after_first_item(merged: Any) -> None:
    async with merged:
        async for key, _ in merged:
            assert key == "project-0-0", "the only stream that answers"
            break


async def _cancel_from_outside(merged: Any) -> None:
    with anyio.move_on_after(0.3) as scope:
        async with merged:
            async for _ in merged:
                pass
    assert scope.cancelled_caught


async def _raise_in_the_consumer(merged: Any) -> None:
    with pytest.raises(KeyError):
        await _fail_while_consuming(merged)


async def test_stopping_early_stops_every_fetcher_at_once() -> None:
    # On the test's own loop, so the other fetchers' requests reach the server before the
    # first item reaches the consumer (a server on another thread may not have read them yet).
    async with FakeSentry(scale=MANY_PROJECTS) as server:
        # project-0-0 answers at once; every other stream hangs in a slow request.
        server.faults.add(Fault("slow", path=r"/project-0-(?!0/)", delay=HANG, times=None))
        slugs = server.data.project_slugs(ORG)
        for stop in (_break_after_first_item, _cancel_from_outside, _raise_in_the_consumer):
            before = set(asyncio.all_tasks())
            server.reset_log()
            with anyio.fail_after(HANG - 0.5):
                async with _client(server) as client:
                    streams = {slug: _events(client, slug) for slug in slugs}
                    started = time.monotonic()
                    await stop(fan_out(streams, concurrency=4, buffer=2))
                    elapsed = time.monotonic() - started
                    assert _in_use(client) == 0, f"{stop.__name__}: no connection stays checked out"
            hanging = [r for r in server.requests if r.finished is None]
            assert len(hanging) >= 3, f"{stop.__name__}: the other fetchers were mid-request"
            assert elapsed < HANG - 1, f"{stop.__name__}: did not wait for the hanging requests"
            assert _client_tasks(before) == set(), f"{stop.__name__}: no task outlives the block"


# -- edge cases of the merge itself (no server) ---------------------------------------------


def _counting(n: int, *, cleanup: Callable[[], Awaitable[None]] | None = None) -> Any:
    async def stream() -> AsyncIterator[int]:
        try:
            for i in range(n):
                await anyio.lowlevel.checkpoint()
                yield i
        finally:
            if cleanup is not None:
                await cleanup()

    return stream


async def test_the_blocks_own_error_survives_a_deadline_during_clean_up() -> None:
    async def slow_cleanup() -> None:
        await anyio.sleep(0.2)

    with anyio.fail_after(5), pytest.raises(KeyError, match="consumer"):  # noqa: PT012
        with anyio.move_on_after(0.05):
            async with fan_out({"a": _counting(100, cleanup=slow_cleanup)}, buffer=1) as merged:
                async for _ in merged:
                    await anyio.sleep(0.03)
                    raise KeyError("consumer")


async def test_a_failure_the_consumer_handled_is_not_raised_again() -> None:
    async def bad() -> AsyncIterator[int]:
        yield 1
        raise ValueError("stream")

    with anyio.fail_after(5):
        async with fan_out({"ok": _counting(3), "bad": bad}, errors="raise") as merged:
            with pytest.raises(ValueError, match="stream"):
                async for _ in merged:
                    pass
    assert isinstance(merged.failures["bad"], ValueError)


@pytest.mark.parametrize("buffer", [1, 64])
async def test_a_busy_stream_does_not_starve_the_others(buffer: int) -> None:
    taken: Counter[int] = Counter()
    with anyio.fail_after(10):
        streams = {key: _counting(10**5) for key in range(5)}
        async with fan_out(streams, concurrency=5, buffer=buffer) as merged:
            async for key, _ in merged:
                taken[key] += 1
                await anyio.lowlevel.checkpoint()
                if sum(taken.values()) == 1000:
                    break
    assert min(taken[key] for key in range(5)) >= 150, f"unfair: {dict(taken)}"


async def test_a_stream_failing_in_its_clean_up_is_collected() -> None:
    async def broken_cleanup() -> AsyncIterator[int]:
        try:
            for i in range(100):
                yield i  # fills the budget, then waits for room: closed while waiting
        finally:
            raise RuntimeError("clean-up failed")

    with anyio.fail_after(5):
        async with fan_out(
            {"a": broken_cleanup, "b": _counting(100)}, errors="collect", buffer=2
        ) as merged:
            async for _ in merged:
                break
    assert isinstance(merged.failures["a"], RuntimeError)


async def test_async_for_and_anext_share_one_merged_stream(fake_sentry_factory: Factory) -> None:
    """``async for`` hands a page out from a loop and ``anext()`` one item per call; taking
    turns between them loses, repeats and reorders nothing, and frees the whole budget."""
    server = await _server(fake_sentry_factory)
    slugs = server.data.project_slugs(ORG)
    expected = {slug: _listed(server, slug) for slug in slugs}
    seen: dict[str, list[str]] = defaultdict(list)
    with anyio.fail_after(20):
        async with (
            _client(server) as client,
            fan_out(_paginators(client, slugs), concurrency=4, buffer=7) as merged,
        ):
            while True:
                taken = 0
                async for key, event in merged:
                    seen[key].append(event.id)
                    taken += 1
                    if taken == 3:
                        break
                if taken < 3:
                    break
                try:
                    key, event = await anext(merged)
                except StopAsyncIteration:
                    break
                seen[key].append(event.id)
    assert dict(seen) == expected
    assert merged.buffered == 0


async def test_a_failing_streams_iterable_raises_its_own_error() -> None:
    """Like a stream's failure, the iterable's own is raised as itself, not in a group."""

    def streams() -> Any:
        yield "a", _counting(1000)
        raise KeyError("no more streams")

    merged = fan_out(streams(), concurrency=2)
    with anyio.fail_after(5), pytest.raises(KeyError, match="no more streams"):
        await _drain(merged)
    assert "a" not in merged.completed, "the running stream was stopped"


async def test_streams_share_worker_tasks_instead_of_one_task_each() -> None:
    """A stream costs no task start: ``concurrency`` workers take the streams in turn."""
    loop = asyncio.get_running_loop()
    started = 0
    default = loop.get_task_factory()

    def counting(loop: asyncio.AbstractEventLoop, coro: Any, **kwargs: Any) -> Any:
        nonlocal started
        started += 1
        if default is not None:
            return default(loop, coro, **kwargs)
        return asyncio.Task(coro, loop=loop, **kwargs)

    streams = {key: _counting(3) for key in range(60)}
    loop.set_task_factory(counting)
    try:
        with anyio.fail_after(10):
            items = await _drain(fan_out(streams, concurrency=4))
    finally:
        loop.set_task_factory(default)
    assert items == 180
    assert started <= 4 + 2, f"{started} tasks for 60 streams"


CONSUMER = True
"""The key of :func:`_count_passes` for the passes the consumer took."""


def _count_passes(merged: Any) -> Counter[bool]:
    """From now on, the scheduler passes ``merged`` takes, keyed by whether the consumer
    (the task calling this) took them."""
    consumer = asyncio.current_task()
    checkpoint = merged._checkpoint
    passes: Counter[bool] = Counter()

    async def counted() -> None:
        passes[asyncio.current_task() is consumer] += 1
        await checkpoint()

    merged._checkpoint = counted
    return passes


def _memory_paginator(pages: int, size: int) -> Paginator[int]:
    """A paginator over pages held in memory, each fetch one scheduler pass."""

    async def fetch(cursor: str | None, page_size: int | None) -> RawPage:
        index = int(cursor or 0)
        await anyio.lowlevel.checkpoint()
        more = str(index + 1 < pages).lower()
        link = f'<u>; rel="next"; results="{more}"; cursor="{index + 1}"'
        return RawPage(list(range(index * size, (index + 1) * size)), link, fingerprint=index)

    return Paginator(fetch)


def _recorded_paginator(
    pages: int, size: int, asked: list[str | None], prefetch: int | None = None
) -> Paginator[int]:
    """:func:`_memory_paginator` that appends the cursor of every request to ``asked``."""
    inner = _memory_paginator(pages, size)

    async def fetch(cursor: str | None, page_size: int | None) -> RawPage:
        asked.append(cursor)
        return await inner._fetch(cursor, page_size)

    return Paginator[int](fetch, prefetch=prefetch)


async def _requests_after_three_pages(setting: int | None, streams: int) -> int:
    """Requests sent by ``streams`` paginators (``prefetch=setting``) merged with
    ``buffer=0``, once the consumer stops at the third page of the first stream."""
    asked: list[str | None] = []

    def paginator() -> Paginator[int]:
        return _recorded_paginator(50, 5, asked, setting)

    factories = dict.fromkeys(range(streams), paginator)
    async with fan_out(factories, concurrency=streams, buffer=0) as merged:
        async for key, item in merged:
            if key == 0 and item == 12:  # the third page
                break
        for _ in range(100):
            await anyio.lowlevel.checkpoint()
        return len(asked)


@pytest.mark.parametrize("streams", [2, 8])
async def test_paginators_side_by_side_in_a_fan_out_fetch_one_page_at_a_time(
    streams: int,
) -> None:
    """Many streams at once already: a paginator left to its default fetches there what one
    that reads nothing ahead fetches, from the first stream's first page on (its walk does
    not count as alone while the other streams are still starting)."""
    assert await _requests_after_three_pages(None, streams) == await _requests_after_three_pages(
        0, streams
    )


@pytest.mark.parametrize("prefetch", [None, 2])
async def test_a_paginator_alone_in_a_fan_out_reads_ahead(prefetch: int | None) -> None:
    """A stream that runs alone (``concurrency=1``, or the last of a sweep) reads ahead as
    a walk alone does by default (measured: 0.65x-0.71x of the server's ceiling one page
    at a time, 0.89x-0.96x reading ahead); an explicit read-ahead reads ahead anywhere."""
    assert await _requests_after_three_pages(prefetch, 1) > await _requests_after_three_pages(
        0, 1
    )


async def test_the_last_stream_of_a_sweep_reads_ahead_once_the_others_are_done() -> None:
    """Two streams, one short: once it has ended, the long one walks alone, and reads ahead
    of the consumer; every item still arrives once, in order."""
    asked: list[str | None] = []
    seen: dict[str, list[int]] = defaultdict(list)
    ahead: list[int] = []
    streams = {
        "short": lambda: _memory_paginator(1, 5),
        "long": lambda: _recorded_paginator(8, 5, asked),  # 8 pages of 5 items
    }
    async with fan_out(streams, concurrency=2, buffer=0) as merged:
        async for key, item in merged:
            seen[key].append(item)
            if key == "long" and item % 5 == 0:
                # Pages asked for beyond the one this item is on: 0 while the short stream
                # runs beside it, up to two once it walks alone.
                ahead.append(len(asked) - (item // 5 + 1))
    assert seen["long"] == list(range(40))
    assert seen["short"] == [0, 1, 2, 3, 4]
    assert ahead[0] == 0
    assert max(ahead) >= 1


def test_merges_on_trio_too() -> None:
    """Off asyncio the waits are anyio's events: fetchers waiting for room, the consumer
    waiting for a page, and both ways of iterating still lose and reorder nothing."""

    async def main() -> tuple[dict[Any, list[int]], list[Any]]:
        streams: dict[Any, Callable[[], Any]] = {key: _counting(40) for key in range(3)}
        streams.update({f"pages-{n}": lambda: _memory_paginator(6, 7) for n in range(3)})
        seen: dict[Any, list[int]] = defaultdict(list)
        done: list[Any] = []
        async with fan_out(streams, concurrency=4, buffer=3) as merged:
            async for key, item in merged:
                seen[key].append(item)
        async with fan_out(streams, concurrency=2, buffer=0) as merged:
            async for event in merged.events():
                if isinstance(event, StreamDone):
                    done.append(event.key)
        return seen, done

    seen, done = anyio.run(main, backend="trio")
    expected: dict[Any, list[int]] = {key: list(range(40)) for key in range(3)}
    expected.update({f"pages-{n}": list(range(42)) for n in range(3)})
    assert seen == expected
    assert sorted(map(str, done)) == sorted(map(str, [0, 1, 2, "pages-0", "pages-1", "pages-2"]))


def test_events_items_are_ordinary_stream_items() -> None:
    """events() builds its items straight into their slots: still equal, hashable, frozen,
    printable and picklable like any StreamItem."""
    built = stream_item("web", 7)
    assert type(built) is StreamItem
    assert built == StreamItem("web", 7) and hash(built) == hash(StreamItem("web", 7))
    assert repr(built) == "StreamItem(key='web', item=7)"
    assert pickle.loads(pickle.dumps(built)) == built
    with pytest.raises(dataclasses.FrozenInstanceError):
        built.item = 8  # type: ignore[misc]


async def test_the_consumer_takes_a_waiting_fetchers_page_without_a_scheduler_pass() -> None:
    """With nothing queued and fetchers holding pages, the consumer takes the first one's
    page at once: a scheduler pass of its own per page cost 12-16% of fan_out's CPU a page
    against the fake server, and every page still arrives whole and in order."""
    streams = {n: (lambda: _memory_paginator(6, 7)) for n in range(3)}
    seen: dict[int, list[int]] = defaultdict(list)
    with anyio.fail_after(10):
        async with fan_out(streams, concurrency=3, buffer=3) as merged:
            passes = _count_passes(merged)
            async for key, item in merged:
                seen[key].append(item)
    assert dict(seen) == {n: list(range(42)) for n in range(3)}
    assert merged.max_buffered <= 3 + 7  # the budget, overdrawn by at most one page
    assert passes[CONSUMER] == 0


class _Built(msgspec.Struct):
    """An event summary that records its own decoding."""

    id: str

    def __post_init__(self) -> None:
        _BUILT.append(self.id)


_BUILT: list[str] = []


class _Answers(Hooks):
    """Set ``all_in`` once ``expected`` responses have been read."""

    def __init__(self, expected: int) -> None:
        self.left = expected
        self.all_in = anyio.Event()

    def on_response(self, event: HookEvent) -> None:
        self.left -= 1
        if not self.left:
            self.all_in.set()


async def test_pages_waiting_for_a_busy_consumer_wait_undecoded(
    fake_sentry_factory: Factory,
) -> None:
    """A fetcher whose page finds no room holds the response's bytes and decodes them when
    the consumer has room: the objects are built when they are about to be taken, as a
    task iterating alone builds them, not parked where the collector promotes them (at
    128 streams, 440 young and 3 full collections per 2,048 pages against 16 young)."""
    server = await _server(fake_sentry_factory)
    slugs = server.data.project_slugs(ORG)[:8]
    total = sum(len(_listed(server, slug)) for slug in slugs)
    answers = _Answers(len(slugs))
    _BUILT.clear()
    got: list[str] = []
    with anyio.fail_after(20):
        async with SentryClient(
            server.token, base_url=server.url, retry=FAST_RETRY, hooks=answers
        ) as client:

            def built(slug: str) -> Callable[[], Any]:
                return lambda: client.events.for_project(ORG, slug, page_size=PAGE).as_type(_Built)

            streams = {slug: built(slug) for slug in slugs}
            async with fan_out(streams, concurrency=8, buffer=0) as merged:
                async for _key, item in merged:
                    got.append(item.id)
                    if len(got) == 1:
                        await answers.all_in.wait()
                        for _ in range(10):
                            await anyio.lowlevel.checkpoint()
                        # Every stream's first page has arrived; only the open one is built.
                        assert len(_BUILT) == PAGE
    assert len(got) == len(set(got)) == total
    assert sorted(_BUILT) == sorted(got), "every page decoded once, when taken"


async def _two_waiting_to_decode() -> tuple[Room, list[asyncio.Future[None]]]:
    """A room with no budget and no waiting consumer, and two fetchers in its decode line."""
    room = Room(Budget(0))
    room.new_event = event_type()
    first, second = room.may_decode(), room.may_decode()
    assert first is not None and second is not None
    waiting = [asyncio.ensure_future(first), asyncio.ensure_future(second)]
    await anyio.lowlevel.checkpoint()
    return room, waiting


async def test_a_fetcher_let_through_to_decode_that_leaves_passes_its_turn_on() -> None:
    room, waiting = await _two_waiting_to_decode()
    assert len(room.gated) == 2, "no room and no waiting consumer: both wait, undecoded"
    room.consumer_waiting = True
    room.wake()
    assert room.gate_pending and len(room.gated) == 1
    waiting[0].cancel()
    with anyio.fail_after(5):
        await asyncio.wait(waiting)
    assert waiting[0].cancelled()
    assert waiting[1].result() is None, "the turn the cancelled one had went to the next"
    assert not room.gated and not room.gate_pending
    assert room.may_decode() is None, "a waiting consumer and nobody in line: decode now"


async def test_only_a_stream_with_nothing_in_it_costs_its_worker_a_scheduler_pass() -> None:
    """After an empty stream the worker passes once, so that a run of them cannot hog the
    loop; one that handed items over has no such debt (the pass cost about 3% of a
    one-page stream's instructions at 128 streams)."""
    sizes = [3, 0, 2, 0, 4]
    streams = {n: (lambda size=size: _memory_paginator(1, size)) for n, size in enumerate(sizes)}
    with anyio.fail_after(10):
        async with fan_out(streams, concurrency=1, buffer=8) as merged:
            passes = _count_passes(merged)
            got = [item async for _key, item in merged]
    assert sorted(got) == sorted(i for size in sizes for i in range(size))
    passes_elsewhere = passes[not CONSUMER]
    assert passes_elsewhere == 1 + sizes.count(0), "the supervisor's start, one per empty stream"


async def test_end_markers_of_empty_streams_wait_for_the_consumer_like_items() -> None:
    """A stream's end marker takes no budget, but a worker does not start another stream
    while ``buffer`` markers wait for the consumer: a paused consumer holds a bounded queue
    however many empty streams there are."""

    async def empty() -> AsyncIterator[int]:
        return
        yield

    buffer, concurrency = 4, 8
    with anyio.fail_after(30):
        async with fan_out(
            ((n, empty) for n in range(1000)), concurrency=concurrency, buffer=buffer
        ) as merged:
            events = merged.events()
            assert isinstance(await anext(events), StreamDone)
            for _ in range(300):
                await anyio.lowlevel.checkpoint()
            waiting = merged.started - len(merged.completed)
            rest = [event async for event in events]
    assert waiting <= buffer + concurrency
    assert len(rest) == 999 and len(merged.completed) == 1000


async def test_raw_pages_waiting_for_room_are_split_at_once(fake_sentry_factory: Factory) -> None:
    """Raw items are views of the response's bytes, nothing for the collector to walk: a
    raw page does not wait to be split (that would only cost a scheduler pass a page)."""
    server = await _server(fake_sentry_factory)
    slugs = server.data.project_slugs(ORG)[:8]
    total = sum(len(_listed(server, slug)) for slug in slugs)
    answers = _Answers(len(slugs))
    got = 0
    with anyio.fail_after(20):
        async with SentryClient(
            server.token, base_url=server.url, retry=FAST_RETRY, hooks=answers
        ) as client:

            def raw(slug: str) -> Callable[[], Any]:
                return lambda: client.events.for_project(ORG, slug, page_size=PAGE).raw()

            streams = {slug: raw(slug) for slug in slugs}
            async with fan_out(streams, concurrency=8, buffer=0) as merged:
                async for _key, _item in merged:
                    got += 1
                    if got == 1:
                        await answers.all_in.wait()
                        for _ in range(10):
                            await anyio.lowlevel.checkpoint()
                        room = merged._room
                        assert not room.gated
                        assert len(room.waiters) >= len(slugs) - 1, "split, waiting for room"
    assert got == total


async def test_pages_waiting_undecoded_are_not_starved_by_streams_of_items(
    fake_sentry_factory: Factory,
) -> None:
    """Item streams that keep a fetcher waiting for room at all times do not keep a
    paginator's page waiting to decode: it takes its turn among them, and its stream ends
    long before theirs (each far longer than the test's deadline allows)."""
    server = await _server(fake_sentry_factory)
    slug = server.data.project_slugs(ORG)[0]
    expected = len(_listed(server, slug))
    got: dict[Any, int] = defaultdict(int)
    ended: list[Any] = []
    with anyio.fail_after(30):
        async with _client(server) as client:
            streams: dict[Any, Callable[[], Any]] = {n: _counting(10**8) for n in range(4)}
            streams["events"] = lambda: client.events.for_project(ORG, slug, page_size=PAGE)
            async with fan_out(streams, concurrency=5, buffer=2) as merged:
                async for event in merged.events():
                    if isinstance(event, StreamDone):
                        ended.append(event.key)
                        if event.key == "events":
                            break
                    else:
                        got[event.key] += 1
    assert ended == ["events"]
    assert got["events"] == expected


async def test_a_fetcher_let_through_that_hands_nothing_over_lets_the_next_one_go() -> None:
    """A page let through to decode may hand nothing over (it was empty, or its body was
    cut short and is being fetched again after a back-off): the next in line goes at
    once, rather than when that fetcher comes back, while the consumer waits."""
    room, waiting = await _two_waiting_to_decode()
    assert len(room.gated) == 2
    room.consumer_waiting = True
    room.wake()
    with anyio.fail_after(5):
        await waiting[0]  # let through; it decodes and hands nothing over
        await waiting[1]
    assert not room.gated and not room.gate_pending


class _Watched:
    """An item that can be watched with a weak reference."""


async def test_a_stream_item_is_let_go_before_the_next_one_is_asked_for() -> None:
    """Once the consumer has taken and dropped an item (a page, from ``pages()``), nothing
    of the fan-out's keeps it while its stream fetches the next: a page kept alive while
    the next one decodes makes that one decode into cold memory."""
    refs: list[weakref.ref[_Watched]] = []
    alive_when_asked: list[bool] = []

    async def stream() -> AsyncIterator[_Watched]:
        for _ in range(3):
            alive_when_asked.append(any(ref() is not None for ref in refs))
            item = _Watched()
            refs.append(weakref.ref(item))
            yield item
            del item
            # The consumer has the item now; give it a pass to take and drop it.
            await asyncio.sleep(0.01)

    taken = 0
    with anyio.fail_after(5):
        async with fan_out({"one": stream}, concurrency=1, buffer=0) as merged:
            async for _key, item in merged:
                taken += 1
                del item
    assert taken == 3
    assert alive_when_asked == [False, False, False]


def _stray_cancel() -> AsyncIterator[int]:
    """A stream that awaits a future its owner cancelled (a shared look-up, a handed-over
    result): a CancelledError nobody sent to the fan-out or to its caller."""
    shared: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    shared.cancel()

    async def stream() -> AsyncIterator[int]:
        yield 0
        await shared
        yield 1

    return stream()


# -- a stream's own CancelledError ----------------------------------------------------------


@pytest.mark.parametrize("concurrency", [1, 3])
async def test_a_stream_ending_with_its_own_cancelled_error_is_collected(
    concurrency: int,
) -> None:
    """Its StreamDone and ``failures`` entry say so, and its worker goes on with the next
    streams (with ``concurrency=1`` the only worker)."""
    streams: list[tuple[str, Callable[[], AsyncIterator[int]]]] = [("stray", _stray_cancel)]
    streams += [(f"s{n}", _counting(3)) for n in range(5)]
    with anyio.fail_after(5):
        async with fan_out(streams, concurrency=concurrency, errors="collect") as merged:
            done = {e.key: e async for e in merged.events() if isinstance(e, StreamDone)}
    assert set(done) == {key for key, _ in streams}
    assert done["stray"].items == 1
    assert isinstance(done["stray"].error, asyncio.CancelledError)
    assert list(merged.failures) == ["stray"]
    assert all(done[f"s{n}"].ok and done[f"s{n}"].items == 3 for n in range(5))


async def test_a_stream_ending_with_its_own_cancelled_error_is_raised() -> None:
    with anyio.fail_after(5), pytest.raises(asyncio.CancelledError):  # noqa: PT012
        async with fan_out(
            {"stray": _stray_cancel, "ok": _counting(1000)}, concurrency=2, errors="raise"
        ) as merged:
            async for _ in merged:
                pass
    assert list(merged.failures) == ["stray"]


async def test_the_callers_cancellation_is_no_streams_failure() -> None:
    """A cancellation of the scope around the block ends the streams, as before: none of
    them is reported failed, and the cancellation ends at the scope that asked for it."""
    with anyio.fail_after(5):
        with anyio.CancelScope() as outer:
            async with fan_out(
                {n: _counting(10**6) for n in range(3)}, errors="collect", buffer=1
            ) as merged:
                async for _ in merged:
                    outer.cancel()
                    await anyio.lowlevel.checkpoint()
    assert outer.cancelled_caught
    assert merged.failures == {}


# -- one consumer ---------------------------------------------------------------------------


async def _second_consumer_refused() -> list[Any]:
    """A task waits for the merge's next item; another task asks for one meanwhile."""
    go = anyio.Event()

    async def late() -> AsyncIterator[int]:
        await go.wait()
        yield 1

    got: list[Any] = []
    with anyio.fail_after(5):
        async with fan_out({"late": late}) as merged:

            async def first() -> None:
                got.extend([item async for item in merged])

            async with anyio.create_task_group() as group:
                group.start_soon(first)
                await anyio.wait_all_tasks_blocked()
                with pytest.raises(RuntimeError, match="one consumer"):
                    await anext(merged)
                go.set()
    return got


async def test_a_second_task_asking_while_one_waits_is_refused() -> None:
    """Refused at once, and the first consumer still gets every item and the end."""
    assert await _second_consumer_refused() == [("late", 1)]


def test_a_second_consumer_is_refused_on_trio_too() -> None:
    assert anyio.run(_second_consumer_refused, backend="trio") == [("late", 1)]


# -- a stream's clean-up under the caller's deadline ----------------------------------------


async def _deadline_during_clean_up(leave: str) -> tuple[bool, bool]:
    """A stream waiting at its ``yield`` (slow consumer) whose clean-up stalls; the
    caller's deadline fires while the consumer works (``inside``) or after it left the
    block by ``break`` (``exiting``). Whether the deadline ended the block, and whether the
    clean-up ran to its end."""
    cleaned_up = False

    async def stalls() -> AsyncIterator[int]:
        nonlocal cleaned_up
        try:
            for i in range(10**6):
                yield i  # waits for room here: parked at its yield
        finally:
            await anyio.sleep(5)
            cleaned_up = True

    with anyio.move_on_after(0.2) as deadline:
        async with fan_out({"a": stalls}, buffer=1) as merged:
            async for _ in merged:
                if leave == "exiting":
                    break
                await anyio.sleep(0.05)
    assert merged.active == 0, "no stream outlives the block"
    return deadline.cancelled_caught, cleaned_up


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
@pytest.mark.parametrize("leave", ["inside", "exiting"])
def test_the_callers_deadline_cuts_a_streams_clean_up_short(backend: str, leave: str) -> None:
    ended, cleaned_up = anyio.run(_deadline_during_clean_up, leave, backend=backend)
    assert ended
    assert not cleaned_up, "the block waited for the stalled clean-up"


async def test_the_fan_outs_own_teardown_still_lets_a_clean_up_finish() -> None:
    """Leaving the block by ``break`` cancels the streams, but a clean-up that awaits is
    still run to its end when no deadline of the caller's cuts it short."""
    cleaned_up = False

    async def tidy() -> AsyncIterator[int]:
        nonlocal cleaned_up
        try:
            for i in range(10**6):
                yield i
        finally:
            await anyio.sleep(0.01)
            cleaned_up = True

    with anyio.fail_after(5):
        async with fan_out({"a": tidy}, buffer=1) as merged:
            async for _ in merged:
                break
    assert cleaned_up


# -- the merge after its block --------------------------------------------------------------


async def _left_over(take: Callable[[Any], Awaitable[Any]]) -> None:
    async with fan_out({"pages": lambda: _memory_paginator(3, 50)}) as merged:
        async for _ in merged:
            break
    with pytest.raises(RuntimeError, match="block has exited"):
        await take(merged)


async def test_iterating_after_the_block_is_refused() -> None:
    """Not the rest of the page that was open when the block exited."""
    with anyio.fail_after(5):
        await _left_over(anext)
        await _left_over(lambda merged: anext(merged.events()))


# -- on_done and completed when the consumer leaves ------------------------------------------


async def _stuck() -> AsyncIterator[int]:
    """A stream that gives nothing until the block ends it."""
    await anyio.sleep_forever()
    yield 0


async def _settle() -> None:
    """The consumer's own work after an item: the streams get to run."""
    for _ in range(20):
        await anyio.lowlevel.checkpoint()


async def _take_and_leave(
    streams: dict[str, Callable[[], Any]],
    take: int,
    *,
    concurrency: int,
    events: bool = False,
    errors: ErrorMode = "raise",
) -> tuple[list[StreamDone[str]], FanOut[str, int], list[int]]:
    """Take ``take`` items of stream ``"a"``, let the streams run, and leave the block."""
    called: list[StreamDone[str]] = []
    got: list[int] = []
    with anyio.fail_after(10):
        async with fan_out(
            streams, concurrency=concurrency, errors=errors, on_done=called.append
        ) as merged:
            source = merged.events() if events else merged
            async for event in source:
                if isinstance(event, StreamDone):
                    continue
                key, item = (event.key, event.item) if isinstance(event, StreamItem) else event
                if key == "a":
                    got.append(item)
                    if len(got) == take:
                        await _settle()
                        break
    return called, merged, got


@pytest.mark.parametrize("events", [False, True])
@pytest.mark.parametrize("concurrency", [1, 8])
@pytest.mark.parametrize("kind", ["paginator", "items"])
async def test_a_stream_whose_last_item_was_taken_is_done_when_the_consumer_leaves(
    kind: str, concurrency: int, events: bool
) -> None:
    """Was: ``on_done`` ran, and ``completed`` was filled, only when a next step took the
    stream's end marker: a consumer leaving right after the last item missed both."""
    first = (lambda: _memory_paginator(3, 7)) if kind == "paginator" else _counting(21)
    streams = {"a": first, "b": _stuck, "c": _stuck}
    called, merged, got = await _take_and_leave(
        streams, 21, concurrency=concurrency, events=events
    )
    assert got == list(range(21))
    assert [done.key for done in called] == ["a"]
    assert merged.completed == {"a": called[0]} and called[0].items == 21


@pytest.mark.parametrize("kind", ["paginator", "items"])
async def test_a_stream_with_an_item_left_untaken_is_not_done(kind: str) -> None:
    first = (lambda: _memory_paginator(3, 7)) if kind == "paginator" else _counting(21)
    called, merged, got = await _take_and_leave({"a": first}, 20, concurrency=1)
    assert got == list(range(20))
    assert called == [] and merged.completed == {}


async def test_an_end_behind_another_streams_untaken_item_is_not_done() -> None:
    """Only the end markers at the head of the queue: one behind an item never handed out
    does not say that the consumer took everything before it."""
    gave, queued = anyio.Event(), anyio.Event()

    async def a() -> AsyncIterator[int]:
        for i in range(3):
            yield i
        gave.set()
        await queued.wait()

    async def b() -> AsyncIterator[int]:
        await gave.wait()
        yield 100
        queued.set()
        await anyio.sleep_forever()

    called: list[StreamDone[str]] = []
    got: list[int] = []
    with anyio.fail_after(10):
        async with fan_out({"a": a, "b": b}, concurrency=2, on_done=called.append) as merged:
            async for key, item in merged:
                assert key == "a"
                got.append(item)
                if len(got) == 3:
                    await queued.wait()
                    await _settle()
                    assert merged._done_queued == 1, "a's end is queued, behind b's item"
                    break
    assert got == [0, 1, 2]
    assert called == [] and merged.completed == {}


async def test_collected_failures_whose_items_were_taken_are_done_when_leaving() -> None:
    async def partial() -> AsyncIterator[int]:
        yield 1
        yield 2
        raise RuntimeError("boom")

    called, merged, got = await _take_and_leave(
        {"a": partial, "b": _stuck}, 2, concurrency=8, errors="collect"
    )
    assert got == [1, 2]
    assert [done.key for done in called] == ["a"]
    assert not called[0].ok and called[0].items == 2
    assert merged.completed == {"a": called[0]} and "a" in merged.failures
