"""What one walk of a paginator remembers, and what a walk continuing it keeps.

A walk of a renamed project's path follows the 302 once and sends its later pages to the
new slug; that memory is the walk's own. Cursors such as ``10:1:0`` are the same strings
in every walk of one query, so memory shared by cursor let a second walk of the same
paginator drop the first one's rename, or take it over: once another project took the old
slug, a walk read that project's pages. A walk continued after a failure (``anext`` again)
keeps the rename it followed, and what it saw: the cursors requested, the pages' bodies
and ids, the run of stale pages; otherwise a server that fails every few pages while it
cycles could be walked for ever.
"""

from __future__ import annotations

from collections.abc import Callable

import anyio
import anyio.lowlevel
import pytest

from sentry_async import PaginationError, Paginator, RetryPolicy, SentryClient, ServerError
from sentry_async.pagination import RawPage
from sentry_async.sansio import CursorWalk
from sentry_async.testing import FakeSentry, Fault
from sentry_async.testing._records import ProjectRecord

ORG = "org-0"
EVENTS = 40


def _two(server: FakeSentry) -> tuple[ProjectRecord, ProjectRecord]:
    org = server.data.org(ORG)
    assert org is not None
    return org.projects[0], org.projects[1]


# -- renames: each walk its own memory ------------------------------------------------------


@pytest.mark.parametrize("prefetch", [0, 2, None])
async def test_two_walks_of_one_paginator_at_once_stay_on_the_renamed_project(
    fake_sentry: FakeSentry, client: SentryClient, prefetch: int | None
) -> None:
    """Both walks have followed the rename when another project takes the old slug: each
    goes on reading the renamed project, every item once."""
    a, b = _two(fake_sentry)
    old = a.slug
    a_events = fake_sentry.data.event_ids(ORG, old, include_transactions=False)[:EVENTS]
    b_events = set(fake_sentry.data.event_ids(ORG, b.slug))
    assert len(a_events) == EVENTS and not b_events & set(a_events)
    fake_sentry.data.rename_project(ORG, old, "a-renamed")
    events = client.events.for_project(ORG, old, page_size=10, limit=EVENTS)
    events = events.read_ahead(prefetch)
    got: dict[str, list[str]] = {"x": [], "y": []}
    started = {name: anyio.Event() for name in got}
    taken = anyio.Event()

    async def walk(name: str) -> None:
        async for event in events:
            got[name].append(event.event_id)
            if len(got[name]) == 10:
                started[name].set()
                await taken.wait()

    with anyio.fail_after(20):
        async with anyio.create_task_group() as group:
            for name in got:
                group.start_soon(walk, name)
            for event in started.values():
                await event.wait()
            fake_sentry.data.rename_project(ORG, b.slug, old)  # B takes the freed slug
            taken.set()
    assert got == {"x": a_events, "y": a_events}


async def test_walks_stepped_in_turn_each_keep_their_own_rename(
    fake_sentry: FakeSentry, client: SentryClient
) -> None:
    """One page of each in turn: a walk's first page does not drop the other's rename,
    and a walk no longer reads pages the other one's rename led to."""
    a, b = _two(fake_sentry)
    old = a.slug
    a_events = fake_sentry.data.event_ids(ORG, old, include_transactions=False)[:EVENTS]
    fake_sentry.data.rename_project(ORG, old, "a-renamed")
    events = client.events.for_project(ORG, old, page_size=10, limit=EVENTS).read_ahead(0)
    x, y = events.pages(), events.pages()
    got: list[list[str]] = [[], []]
    try:
        with anyio.fail_after(20):
            for turn in range(2 * EVENTS):  # bounded: four pages each
                which = turn % 2
                try:
                    page = await anext((x, y)[which])
                except StopAsyncIteration:
                    if all(len(each) == EVENTS for each in got):
                        break
                    continue
                got[which].extend(event.event_id for event in page.items)
                if turn == 1:
                    fake_sentry.data.rename_project(ORG, b.slug, old)
    finally:
        await x.aclose()
        await y.aclose()
    assert got == [a_events, a_events]
    moved = f"/api/0/projects/{ORG}/{old}/events/"
    assert [r.status for r in fake_sentry.requests if r.path == moved] == [302, 302]


async def test_a_walk_continued_after_a_failure_keeps_its_rename(
    fake_sentry: FakeSentry,
) -> None:
    """``anext`` after a failed page goes on with the project the walk followed, though
    another project took the old slug in between."""
    a, b = _two(fake_sentry)
    old = a.slug
    a_events = fake_sentry.data.event_ids(ORG, old, include_transactions=False)[:EVENTS]
    fake_sentry.data.rename_project(ORG, old, "a-renamed")
    fake_sentry.faults.add(
        Fault("status", status=503, method="GET", path=r"/a-renamed/events/$", after=2)
    )
    once = RetryPolicy(attempts=1)
    got: list[str] = []
    failures = 0
    async with SentryClient(fake_sentry.token, base_url=fake_sentry.url, retry=once) as client:
        events = client.events.for_project(ORG, old, page_size=10, limit=EVENTS)
        with anyio.fail_after(20):
            for _ in range(2 * EVENTS):  # bounded
                try:
                    got.append((await anext(events)).event_id)
                except StopAsyncIteration:
                    break
                except ServerError:
                    failures += 1
                    fake_sentry.data.rename_project(ORG, b.slug, old)
            await events.aclose()
    assert failures == 1
    assert got == a_events


# -- a continued walk keeps what it saw -----------------------------------------------------


class Flaky(Exception):
    """A page's request that failed past its retries."""


def _link(nxt: str) -> str:
    return f'<https://h/x/>; rel="next"; results="true"; cursor="{nxt}"'


_Answer = Callable[[str | None], tuple[list[int], str, int | None]]


class Failing:
    """A server that fails every ``every``-th request; ``page(n)`` is the ``n``-th
    request's answer: its items, the next cursor and a fingerprint."""

    def __init__(self, every: int, page: _Answer) -> None:
        self.every = every
        self.page = page
        self.requests = 0
        self.failures = 0

    async def __call__(self, cursor: str | None, size: int | None) -> RawPage:
        assert self.requests < 500, "unbounded pagination"
        self.requests += 1
        await anyio.lowlevel.checkpoint()
        if self.requests % self.every == 0:
            self.failures += 1
            raise Flaky(f"request {self.requests} failed")
        items, nxt, fingerprint = self.page(cursor)
        return RawPage(items=items, link=_link(nxt), fingerprint=fingerprint)


async def _until_stopped(paginator: Paginator[int]) -> tuple[PaginationError, int]:
    """``anext`` again after each failure, as a consumer that treats failures as
    transient does, until the walk gives up; the items handed out."""
    handed = 0
    with anyio.fail_after(20):
        for _ in range(2000):  # bounded
            try:
                await anext(paginator)
                handed += 1
            except Flaky:
                continue
            except PaginationError as exc:
                return exc, handed
    raise AssertionError("the walk never stopped")


def _cycle(cursor: str | None) -> tuple[list[int], str, int | None]:
    """``a -> b -> c -> a``: the same three pages for ever."""
    at = "abc".index(cursor) if cursor else 0
    return [at], "abc"[(at + 1) % 3], at


@pytest.mark.parametrize("prefetch", [0, 2, None])
async def test_a_cycle_broken_up_by_failures_is_still_a_cycle(prefetch: int | None) -> None:
    server = Failing(3, _cycle)
    paginator = Paginator[int](server, page_size=10, prefetch=prefetch)
    error, _ = await _until_stopped(paginator)
    assert "again" in str(error)
    assert server.requests < 10, "stopped at the first repeated cursor"
    await paginator.aclose()


def _empty(cursor: str | None) -> tuple[list[int], str, int | None]:
    """Fresh cursors, empty pages: nothing new, ever."""
    at = int(cursor) if cursor else 0
    return [], str(at + 1), None


def _repeating(cursor: str | None) -> tuple[list[int], str, int | None]:
    """Fresh cursors, the same items in bodies that differ: new only by their ids."""
    at = int(cursor) if cursor else 0
    return [1, 2, 3], str(at + 1), None


@pytest.mark.parametrize("prefetch", [0, 2, None])
@pytest.mark.parametrize("page", [_empty, _repeating])
async def test_stale_pages_broken_up_by_failures_still_end_the_walk(
    prefetch: int | None, page: _Answer
) -> None:
    server = Failing(3, page)
    paginator = Paginator[int](
        server, page_size=10, prefetch=prefetch, max_stale_pages=6, item_id=lambda item: item
    )
    error, handed = await _until_stopped(paginator)
    assert "brought nothing new" in str(error)
    # Repeated items are handed out (ids only tell that a page brought nothing new) until
    # the page that ends the walk.
    assert handed == (0 if page is _empty else 3 * 6)
    # An empty page is stale from the first; the repeating ones after the first.
    assert server.requests - server.failures == (6 if page is _empty else 7)
    await paginator.aclose()


def _fine(cursor: str | None) -> tuple[list[int], str, int | None]:
    at = int(cursor) if cursor else 0
    return list(range(at * 10, at * 10 + 10)), str(at + 1), at


@pytest.mark.parametrize("prefetch", [0, 2, None])
async def test_a_stream_broken_up_by_failures_is_walked_once(prefetch: int | None) -> None:
    """The cursor that failed is asked again by the continued walk: not a repeat."""
    server = Failing(3, _fine)
    paginator = Paginator[int](
        server, page_size=10, prefetch=prefetch, limit=200, item_id=lambda item: item
    )
    got: list[int] = []
    with anyio.fail_after(20):
        for _ in range(400):  # bounded
            try:
                got.append(await anext(paginator))
            except Flaky:
                continue
            except StopAsyncIteration:
                break
    assert got == list(range(200))
    assert server.failures >= 5
    await paginator.aclose()


# -- the walk itself ------------------------------------------------------------------------


def _next(cursor: str) -> str:
    return f'<https://h/x/>; rel="next"; results="true"; cursor="{cursor}"'


def test_a_walk_continuing_from_where_another_stopped_counts_what_it_saw() -> None:
    first = CursorWalk(page_size=10, max_stale_pages=3)
    first.on_page(10, _next("a"), fingerprint=1)
    first.on_page(0, _next("b"))  # stale
    first.memory["renamed"] = "kept"
    # The request for "b" failed: a new walk goes on from the position.
    again = CursorWalk(first.position, page_size=10, max_stale_pages=3, continuing=first)
    assert again.memory is first.memory
    with pytest.raises(PaginationError, match="again"):
        again.on_page(10, _next("a"), fingerprint=2)
    stale = CursorWalk(first.position, page_size=10, max_stale_pages=3, continuing=first)
    stale.on_page(0, _next("c"))
    with pytest.raises(PaginationError, match="3 pages in a row"):
        stale.on_page(10, _next("d"), fingerprint=1)  # a repeat of the first page


def test_a_walk_continuing_from_an_earlier_position_counts_afresh() -> None:
    """Pages taken in but never handed out (a read-ahead's, when its consumer was
    cancelled) are fetched again: not a cycle. The memory goes on all the same."""
    first = CursorWalk(page_size=10)
    first.on_page(10, _next("a"), fingerprint=1)
    handed = first.position
    first.on_page(10, _next("b"), fingerprint=2)
    first.on_page(10, _next("c"), fingerprint=3)
    first.memory["renamed"] = "kept"
    again = CursorWalk(handed, page_size=10, continuing=first)
    assert again.memory is first.memory
    again.on_page(10, _next("b"), fingerprint=2)
    step = again.on_page(10, _next("c"), fingerprint=3)
    assert step.more and again.cursor == "c"
