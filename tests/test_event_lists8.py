"""The event lists (an issue's events, a project's events) while events arrive, their page
size for full payloads, and their argument checks.

Checked against Sentry's server code: ``GroupEventsEndpoint`` (``group_events.py``: a
range without ``end`` ends at ``timezone.now()`` on every page, 90 days back by default;
offset pages of ``GenericOffsetPaginator`` ordered by ``-timestamp``; no ``get_per_page``
override, so ``per_page`` full payloads) and ``ProjectEventsEndpoint``
(``project_events.py``: the same paginator, full pages capped at
``FULL_PAYLOAD_MAX_PER_PAGE``, Snuba's default range from 2008-05-08 without one).
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
from sentry_async._protocol.cursors import CursorWalk, leading_repeats
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
        ([1, 2, 3], set(), 0),
        ([1, 2, 3], {7, 8}, 0),
        ([8, 9, 1, 2], {8, 9}, 2),
        ([9, 8], {8, 9}, 2),
        ([8, 1, 9, 2], {8, 9}, 1),
        ([1, 8, 9], {8, 9}, 0),
        ([None, 9, 1], {9, None}, 0),
        ([-2, 2**61 - 1], {-1, 0}, 0),
    ],
)
def test_only_the_leading_run_of_repeats_is_counted(
    keys: list[int | None], previous: set[int | None], expected: int
) -> None:
    """The run of keys the page before handed out at the head of the page, up to the first
    that it did not; unknown keys (``None``) are never repeats; keys are compared, not
    their hashes (``hash(-1) == hash(-2)``)."""
    assert leading_repeats(keys, previous) == expected


def test_a_walk_skips_the_repeats_it_is_told_of_as_it_skips_a_position() -> None:
    link = '<http://x/?cursor=0:20:0>; rel="next"; results="true"; cursor="0:20:0"'
    walk = CursorWalk(Position("0:10:0", skip=1), page_size=10)
    step = walk.on_page(10, link, repeated=3)
    assert (step.start, step.stop) == (3, 10)
    assert step.position(4) == Position("0:10:0", 7)
    walk = CursorWalk(Position("0:10:0", skip=5), page_size=10)
    assert walk.on_page(10, link, repeated=3).start == 5


# -- events newer than the walk: rows pushed down by them -----------------------------------


class LiveEvents:
    """An issue's and a project's events as Sentry serves them while events keep arriving:
    every request's range is worked out from the server's clock (``now``, moved by the
    test), as ``get_date_range_from_params`` does, and served by offset, newest first.
    Records the query of each request."""

    def __init__(self, now: float, count: int) -> None:
        self.now = now
        self.events = [(now - 60.0 * (i + 1), f"{i:032x}") for i in range(count)]
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
        if "statsPeriod" in query:
            match = re.fullmatch(r"(\d+)([smhdw]?)", query["statsPeriod"])
            assert match is not None, query
            unit = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}[match[2]]
            start, end = self.now - int(match[1]) * unit, self.now
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
        if "projects" in request.path:
            default = (datetime(2008, 5, 8, tzinfo=timezone.utc).timestamp(), self.now + 1)
        else:
            default = (self.now - 90 * 86400, self.now)
        start, end = self._range(query, default)
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
def live() -> LiveEvents:
    return LiveEvents(now=1_780_000_000.25, count=75)


LISTS = {
    "issue": lambda sc, **kw: sc.events.for_issue(ORG, 7, **kw),
    "project": lambda sc, **kw: sc.events.for_project(ORG, PROJECT, **kw),
    "project-14d": lambda sc, **kw: sc.events.for_project(ORG, PROJECT, period="14d", **kw),
}
RANGE_KEYS = {"statsPeriod", "statsPeriodStart", "statsPeriodEnd", "start", "end"}


async def _walk(live: LiveEvents, listing: str, arrivals: int, **kw: Any) -> list[str]:
    """The ids a walk of ``listing`` hands out, 10 a page, while ``arrivals`` events arrive
    during each of its first nine pages (bounded: arrivals can outrun a walk)."""
    async with _serving(live) as url, SentryClient("t", base_url=url) as sc:
        paginator = LISTS[listing](sc, page_size=10, limit=300, **kw).read_ahead(0)
        seen: list[str] = []
        with anyio.fail_after(10):
            async for page in paginator.pages():
                seen += [event.id for event in page.items]
                if paginator.pages_fetched < 10:
                    live.arrive(30, arrivals)
    return seen


@pytest.mark.parametrize("arrivals", [4, 10])
@pytest.mark.parametrize("listing", LISTS)
async def test_up_to_a_page_of_arrivals_per_page_is_neither_repeated_nor_lost(
    live: LiveEvents, listing: str, arrivals: int
) -> None:
    """Each arrival pushes the rows down by one: the next page starts with as many rows
    the page before handed out, which are dropped. Every event there at the first answer
    is handed out, once, in order; the range goes out as the caller gave it."""
    original = [event_id for _, event_id in live.events]
    assert await _walk(live, listing, arrivals) == original
    sent = {key for query in live.queries for key in query} & RANGE_KEYS
    assert sent == ({"statsPeriod"} if listing == "project-14d" else set())
    assert all(query.get("statsPeriod", "14d") == "14d" for query in live.queries)


@pytest.mark.parametrize("listing", LISTS)
async def test_more_than_a_page_of_arrivals_per_page_repeats_rows_but_loses_none(
    live: LiveEvents, listing: str
) -> None:
    """Fifteen events arrive while each page of ten is read: the next page starts with
    five of them, and the rows the page before handed out follow, handed out again (not at
    the head, they are no leading repeats). Nothing is lost or reordered: every event there
    at the first answer is handed out, first in the server's order."""
    original = [event_id for _, event_id in live.events]
    seen = await _walk(live, listing, 15)
    assert [event_id for event_id, n in Counter(seen).items() if n > 1]
    assert [event_id for event_id in dict.fromkeys(seen) if event_id in original] == original


@pytest.mark.parametrize("listing", ["issue", "project"])
async def test_events_newer_than_end_stay_out_of_the_walk(live: LiveEvents, listing: str) -> None:
    """With ``start``/``end`` every page asks the same range, and events arriving after
    ``end`` push no row, however many arrive: each event handed out once, none newer."""
    original = [event_id for _, event_id in live.events]
    end = datetime.fromtimestamp(live.now, timezone.utc)
    seen = await _walk(live, listing, 15, start=end - timedelta(days=1), end=end)
    assert seen == original
    assert {(query["start"], query["end"]) for query in live.queries} == {
        (f"{end - timedelta(days=1):%Y-%m-%dT%H:%M:%S.%f}", f"{end:%Y-%m-%dT%H:%M:%S.%f}")
    }


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
