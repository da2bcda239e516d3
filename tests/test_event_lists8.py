"""The event lists (an issue's events, a project's events) while events arrive, their page
size for full payloads, and their argument checks.

Pinned against Sentry's server code: ``GroupEventsEndpoint`` (``group_events.py``: a range
without ``end`` ends at ``timezone.now()`` on every page, 90 days back by default; offset
pages of ``GenericOffsetPaginator`` ordered by ``-timestamp``; no ``get_per_page``
override, so ``per_page`` full payloads), ``ProjectEventsEndpoint`` (``project_events.py``:
the same paginator, full pages capped at ``FULL_PAYLOAD_MAX_PER_PAGE``, Snuba's default
range from 2008-05-08 without one) and ``get_date_range_from_stats_period``
(``statsPeriodStart``/``statsPeriodEnd``, both back from the server's clock).
"""

from __future__ import annotations

import re
from collections import Counter
from contextlib import AbstractAsyncContextManager
from datetime import datetime, timedelta, timezone
from typing import Any

import anyio
import msgspec
import pytest
from _local_server import local_app
from aiohttp import web

from sentry_async import Position, SentryClient
from sentry_async._protocol.cursors import CursorWalk, repeats_first
from sentry_async.resources import events as events_module
from sentry_async.testing import FakeSentry

ORG = "acme"
PROJECT = "backend"
TOKEN = "sntrys_eyJpYXQiOjE3MDAwMDAwMDAsIm9yZyI6ImFjbWUifQ_SECRETPART"


def _project(server: FakeSentry) -> Any:
    return server.builder.add_organization(ORG).add_project(PROJECT)


def _ids(items: list[Any]) -> list[str]:
    return [
        msgspec.json.decode(bytes(item))["id"] if isinstance(item, msgspec.Raw) else item.id
        for item in items
    ]


# -- events stored late, with timestamps inside the range -------------------------------------


@pytest.mark.parametrize("mode", ["summaries", "full", "raw"])
async def test_rows_pushed_down_by_late_events_are_not_handed_out_twice(
    fake_sentry: FakeSentry, client: SentryClient, mode: str
) -> None:
    """Three events stored after each of the first two pages, newer than every event of
    the issue but inside its range (the fake's clock stands still): each pushes the rows
    down by one, and the next page starts with rows the page before handed out."""
    issue = _project(fake_sentry).add_issue("RuntimeError: live", events=25)
    original = list(issue.event_ids)
    paginator: Any = client.events.for_issue(ORG, issue.id, full=mode == "full", page_size=10)
    if mode == "raw":
        paginator = paginator.raw()
    seen: list[str] = []
    with anyio.fail_after(10):
        async for page in paginator.pages():
            seen += _ids(page.items)
            if len(seen) <= 20:
                for k in range(3):
                    back = timedelta(seconds=len(seen) + k)
                    issue.add_event(timestamp=fake_sentry.now - back)
    assert [i for i, n in Counter(seen).items() if n > 1] == []
    assert seen == original


async def test_a_position_taken_after_dropped_repeats_resumes_where_the_rows_stand(
    fake_sentry: FakeSentry, client: SentryClient
) -> None:
    """Page 2 starts with the three rows page 1 ended on; four items after them, the walk
    stops. Its position counts the repeats as skipped items, so a walk resumed there
    without page 1 (which knows of no repeats) skips them too: nothing twice, nothing
    missed."""
    issue = _project(fake_sentry).add_issue("RuntimeError: live", events=25)
    original = list(issue.event_ids)
    paginator = client.events.for_issue(ORG, issue.id, page_size=10).read_ahead(0)
    seen: list[str] = []
    with anyio.fail_after(10):
        async for event in paginator:
            seen.append(event.id)
            if len(seen) == 10:
                for k in range(3):
                    issue.add_event(timestamp=fake_sentry.now - timedelta(seconds=1 + k))
            if len(seen) == 14:
                break
        await paginator.aclose()
        position = paginator.position
        assert position.skip == 3 + 4
        resumed = client.events.for_issue(
            ORG, issue.id, page_size=10, cursor=position.cursor, skip=position.skip
        )
        rest = [event.id async for event in resumed]
    assert seen + rest == original


@pytest.mark.parametrize(
    ("keys", "previous", "expected"),
    [
        ([1, 2, 3], set(), (0, None)),
        ([1, 2, 3], {7, 8}, (0, None)),
        ([8, 9, 1, 2], {8, 9}, (2, None)),
        ([8, 1, 9, 2], {8, 9}, (2, [0, 2, 1, 3])),
        ([None, 9, 1], {9}, (1, [1, 0, 2])),
    ],
)
def test_repeats_are_put_first_and_counted(
    keys: list[int | None], previous: set[int], expected: tuple[int, list[int] | None]
) -> None:
    assert repeats_first(keys, previous) == expected


def test_a_walk_skips_the_repeats_it_is_told_of_as_it_skips_a_position() -> None:
    link = '<http://x/?cursor=0:20:0>; rel="next"; results="true"; cursor="0:20:0"'
    walk = CursorWalk(Position("0:10:0", skip=1), page_size=10)
    step = walk.on_page(10, link, repeated=3)
    assert (step.start, step.stop) == (3, 10)
    assert step.position(4) == Position("0:10:0", 7)
    walk = CursorWalk(Position("0:10:0", skip=5), page_size=10)
    assert walk.on_page(10, link, repeated=3).start == 5


# -- events newer than the walk: the range pinned at its first answer ------------------------


class LiveEvents:
    """An issue's and a project's events as Sentry serves them while events keep arriving:
    every request's range is worked out from the server's clock (``now``, moved by the
    test), as ``get_date_range_from_stats_period`` does, and served by offset, newest
    first. Records the range each request was answered over."""

    def __init__(self, now: float, count: int) -> None:
        self.now = now
        self.events = [(now - 60.0 * (i + 1), f"{i:032x}") for i in range(count)]
        self.ranges: list[tuple[float, float]] = []
        self.queries: list[dict[str, str]] = []
        self._next = count

    def arrive(self, seconds: float, count: int) -> None:
        """``seconds`` pass, and ``count`` events happen in them."""
        for k in range(count):
            self._next += 1
            self.events.append((self.now + seconds * (k + 1) / count, f"{self._next:032x}"))
        self.now += seconds
        self.events.sort(key=lambda e: -e[0])

    def _range(self, query: dict[str, str], default: tuple[float, float]) -> tuple[float, float]:
        def back(period: str) -> float:
            match = re.fullmatch(r"(\d+)([smhdw]?)", period)
            assert match is not None, period
            unit = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}[match[2]]
            return self.now - int(match[1]) * unit

        if "statsPeriod" in query:
            start, end = back(query["statsPeriod"]), self.now
        elif "statsPeriodStart" in query:
            start, end = back(query["statsPeriodStart"]), back(query["statsPeriodEnd"])
        elif "start" in query:
            start, end = (
                datetime.fromisoformat(query[key]).replace(tzinfo=timezone.utc).timestamp()
                for key in ("start", "end")
            )
        else:
            start, end = default
        # Snuba drops the fraction of a second from both bounds.
        return float(int(start)), float(int(end))

    async def handle(self, request: web.Request) -> web.Response:
        query = dict(request.query)
        self.queries.append(query)
        project = "projects" in request.path
        if project:
            default = (datetime(2008, 5, 8, tzinfo=timezone.utc).timestamp(), self.now + 1)
        else:
            default = (self.now - 90 * 86400, self.now)
        start, end = self._range(query, default)
        self.ranges.append((start, end))
        rows = [e for e in self.events if start <= e[0] < end]
        per_page = int(query.get("per_page", "100"))
        offset = int(query.get("cursor", "0:0:0").split(":")[1])
        page = rows[offset : offset + per_page]
        more = "true" if offset + per_page < len(rows) else "false"
        nxt = f"0:{offset + per_page}:0"
        link = (
            f'<{request.url}>; rel="previous"; results="false"; cursor="0:0:1", '
            f'<{request.url}>; rel="next"; results="{more}"; cursor="{nxt}"'
        )
        body = [
            {"id": event_id, "dateCreated": datetime.fromtimestamp(ts, timezone.utc).isoformat()}
            for ts, event_id in page
        ]
        return web.json_response(body, headers={"Link": link})


def _serving(live: LiveEvents) -> AbstractAsyncContextManager[str]:
    app = web.Application()
    app.router.add_get("/api/0/organizations/{org}/issues/{issue}/events/", live.handle)
    app.router.add_get("/api/0/projects/{org}/{project}/events/", live.handle)
    return local_app(app)


@pytest.fixture
def live(monkeypatch: pytest.MonkeyPatch) -> LiveEvents:
    """The server's clock is the one the pinned range counts seconds on: both run alike
    (``raising=False``: a client without that clock fails the tests by what it asks)."""
    server = LiveEvents(now=1_780_000_000.25, count=75)
    monkeypatch.setattr(events_module, "_walk_clock", lambda: server.now, raising=False)
    return server


LISTS = {
    "issue": lambda sc, **kw: sc.events.for_issue(ORG, 7, **kw),
    "project": lambda sc, **kw: sc.events.for_project(ORG, PROJECT, **kw),
    "issue-1h": lambda sc, **kw: sc.events.for_issue(ORG, 7, period="1h", **kw),
    "project-14d": lambda sc, **kw: sc.events.for_project(ORG, PROJECT, period="14d", **kw),
}


@pytest.mark.parametrize("listing", LISTS)
async def test_events_newer_than_the_walk_never_push_rows_onto_the_next_page(
    live: LiveEvents, listing: str
) -> None:
    """Fifteen events arrive while each page of ten is read: more than a page, so only a
    range that stays where the first page found it keeps the rows in place."""
    hour = int(live.now - 3600) if listing == "issue-1h" else 0
    original = [event_id for ts, event_id in live.events if ts >= hour]
    async with _serving(live) as url, SentryClient("t", base_url=url) as sc:
        # Bounded: a walk the arrivals outrun never ends on its own.
        paginator = LISTS[listing](sc, page_size=10, limit=200).read_ahead(0)
        seen: list[str] = []
        with anyio.fail_after(10):
            async for page in paginator.pages():
                seen += [event.id for event in page.items]
                if paginator.pages_fetched < 10:
                    live.arrive(30, 15)
    assert seen == original
    assert len(set(live.ranges)) == 1, live.ranges
    assert all("statsPeriod" not in query for query in live.queries)


@pytest.mark.parametrize("how", ["resume", "raw"])
async def test_a_resumed_walk_asks_the_range_the_walk_was_pinned_to(
    live: LiveEvents, how: str
) -> None:
    """A walk stops inside its second page; events arrive for two minutes; the walk resumed
    from its position (by the same paginator, or its ``raw()``) asks the same range,
    so the offsets mean what they meant."""
    original = [event_id for _, event_id in live.events]
    async with _serving(live) as url, SentryClient("t", base_url=url) as sc:
        paginator = sc.events.for_issue(ORG, 7, page_size=10).read_ahead(0)
        seen: list[str] = []
        with anyio.fail_after(10):
            async for event in paginator:
                seen.append(event.id)
                if len(seen) == 13:
                    break
            await paginator.aclose()
            live.arrive(120, 40)
            position = paginator.position
            if how == "raw":
                seen += _ids(await paginator.raw().resume(position).collect())
            else:
                seen += [event.id async for event in paginator.resume(position)]
    assert seen == original
    assert len(set(live.ranges)) == 1, live.ranges


# -- full payloads: the page size an issue's events are asked in ------------------------------


async def test_an_issues_full_events_come_ten_a_page_unless_asked_otherwise(
    fake_sentry: FakeSentry, client: SentryClient
) -> None:
    """``GroupEventsEndpoint`` serves ``per_page`` full payloads (no cap): a default walk
    asks for 10, as many as a project's list serves; a page size given is sent as it is."""
    issue = _project(fake_sentry).add_issue("RuntimeError: big", events=30)

    async def pages(paginator: Any) -> list[int]:
        return [len(page) async for page in paginator.pages()]

    with anyio.fail_after(10):
        assert await pages(client.events.for_issue(ORG, issue.id, full=True)) == [10, 10, 10]
        asked = client.events.for_issue(ORG, issue.id, full=True, page_size=25)
        assert await pages(asked) == [25, 5]
        capped = client.events.for_project(ORG, PROJECT, full=True, page_size=25)
        assert await pages(capped) == [10, 10, 10]
    sizes = [request.param("per_page") for request in fake_sentry.requests]
    assert sizes == ["10"] * 3 + ["25"] * 5
    summaries = client.events.for_issue(ORG, issue.id)
    assert summaries.page_size == 100


# -- argument checks --------------------------------------------------------------------------

CALLS = {
    "get": lambda sc: sc.events.get(ORG, PROJECT, TOKEN),
    "get_raw": lambda sc: sc.events.get_raw(ORG, PROJECT, TOKEN),
    "for_issue_event": lambda sc: sc.events.for_issue_event(ORG, 1, TOKEN),
    "resolve": lambda sc: sc.events.resolve(ORG, TOKEN),
    "for_issue page_size": lambda sc: sc.events.for_issue(ORG, 1, page_size=TOKEN),
    "for_project page_size": lambda sc: sc.events.for_project(ORG, PROJECT, page_size=TOKEN),
    "for_issue keyword": lambda sc: sc.events.for_issue(ORG, 1, **{TOKEN: 1}),
}


@pytest.mark.parametrize("call", CALLS.values(), ids=CALLS.keys())
async def test_a_token_given_as_an_argument_is_blanked_out_of_its_refusal(
    client: SentryClient, call: Any
) -> None:
    with pytest.raises((ValueError, TypeError)) as refused:
        await call(client)
    assert "SECRETPART" not in str(refused.value)
    assert "********" in str(refused.value)
