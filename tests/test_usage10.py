"""Usage (``stats_v2``) windows: where an explicit ``end`` puts the last interval, and the
window of each batch of a usage query grouped by project.

Pinned against Sentry's server code: ``get_constrained_date_range`` in
``src/sentry/snuba/sessions_v2.py`` (as ``QueryDefinition`` in
``src/sentry/snuba/outcomes.py`` calls it). Since getsentry/sentry#60466 it aligns the range
with ``to_intervals`` (``src/sentry/snuba/metrics/utils.py``): the start down and the end up
to the interval, an end on a boundary kept as it is. The second the versions before it
added to an explicit ``end`` "so it is treated as inclusive" is gone, and Sentry's own
``test_inclusive_end`` now expects 2021-02-24T00:00..2021-02-25T00:00 at 1h to end at
2021-02-25T00:00. A range given as ``statsPeriod`` ends at the server's clock, read anew for
each request.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta, timezone
from typing import Any

import anyio
import pytest
from _local_server import local_app
from aiohttp import web

from sentry_async import SentryClient
from sentry_async.testing import FakeSentry

ORG = "org-0"
HOUR = 3600


@pytest.mark.parametrize(
    ("interval", "days", "points"),
    [("1d", 1, 1), ("1h", 1, 24), ("1d", 3, 3)],
)
async def test_an_end_on_a_boundary_ends_the_last_interval(
    fake_sentry: FakeSentry, client: SentryClient, interval: str, days: int, points: int
) -> None:
    """``end`` is exclusive, as everywhere in the library and in Sentry since
    ``to_intervals``: 1 Jan up to 2 Jan by day is one day, sent as asked."""
    start = (fake_sentry.data.now - timedelta(days=10)).replace(hour=0)
    end = start + timedelta(days=days)
    with anyio.fail_after(10):
        usage = await client.stats.usage(
            ORG, category="error", start=start, end=end, interval=interval
        )
    assert (usage.start, usage.end) == (_z(start), _z(end))
    assert len(usage.intervals) == points
    (sent,) = [r for r in fake_sentry.requests if r.path.endswith("/stats_v2/")]
    assert sent.param("end") == end.replace(tzinfo=None).isoformat()


def _z(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _read(value: str) -> float:
    return datetime.fromisoformat(value).replace(tzinfo=timezone.utc).timestamp()


class _TurningClock:
    """``stats_v2`` on a server whose clock turns the hour between a usage query's batches:
    the batch naming project 1 is answered at 11:59:59, the others two seconds later. The
    range is aligned as ``to_intervals`` aligns it, and each project's total says which
    window it was counted over (the first hour's number, times 100, plus the project)."""

    before = datetime(2026, 3, 1, 11, 59, 59, tzinfo=timezone.utc).timestamp()

    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []

    async def stats(self, request: web.Request) -> web.Response:
        q = request.query
        ids = q.getall("project")
        self.sent.append({k: q.getall(k, []) for k in ("project", "statsPeriod", "start", "end")})
        if "statsPeriod" in q:
            now = self.before if "1" in ids else self.before + 2
            start, end = now - int(q["statsPeriod"].rstrip("h")) * HOUR, now
        else:
            start, end = _read(q["start"]), _read(q["end"])
        first = int(start) // HOUR * HOUR
        last = math.ceil(end / HOUR) * HOUR
        hour = datetime.fromtimestamp(first, timezone.utc).hour

        def iso(ts: float) -> str:
            return datetime.fromtimestamp(ts, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")

        groups = [
            {"by": {"project": int(p)}, "totals": {"sum(quantity)": hour * 100 + int(p)}}
            for p in ids
        ]
        return web.json_response({"start": iso(first), "end": iso(last), "groups": groups})

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/api/0/organizations/{org}/stats_v2/", self.stats)
        return app


async def test_batches_are_counted_over_one_window() -> None:
    """A batch answered after the server's clock turned the hour counted another window
    than the first batch: it is asked again over the first batch's window, as ``start`` and
    ``end``, and every total of the merged answer covers the window it reports."""
    server = _TurningClock()
    kw: dict[str, Any] = {
        "group_by": "project", "category": "error", "period": "2h", "project_batch": 1,
    }  # fmt: skip
    async with local_app(server.app()) as url, SentryClient("t", base_url=url) as sentry:
        with anyio.fail_after(10):
            usage = await sentry.stats.usage("acme", project=[1, 2, 3], **kw)
    assert (usage.start, usage.end) == ("2026-03-01T09:00:00Z", "2026-03-01T12:00:00Z")
    assert {g.by["project"]: g.totals["sum(quantity)"] for g in usage.groups} == {
        1: 901, 2: 902, 3: 903
    }
    assert len(server.sent) == 5
    assert sorted(s["project"] for s in server.sent[3:]) == [["2"], ["3"]]
    for sent in server.sent[3:]:
        assert (sent["statsPeriod"], sent["start"], sent["end"]) == (
            [], ["2026-03-01T09:00:00"], ["2026-03-01T12:00:00"]
        )


async def test_batches_over_one_window_are_asked_once() -> None:
    """Batches answered over the same window are not asked again."""
    server = _TurningClock()
    server.before -= HOUR / 2
    kw: dict[str, Any] = {
        "group_by": "project", "category": "error", "period": "2h", "project_batch": 2,
    }  # fmt: skip
    async with local_app(server.app()) as url, SentryClient("t", base_url=url) as sentry:
        with anyio.fail_after(10):
            usage = await sentry.stats.usage("acme", project=[1, 2, 3], **kw)
    assert {g.by["project"]: g.totals["sum(quantity)"] for g in usage.groups} == {
        1: 901, 2: 902, 3: 903
    }
    assert len(server.sent) == 2
