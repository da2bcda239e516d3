"""``sentry-async query stats`` rows are made one at a time from the answer: a large
events-stats answer is not copied into a list of rows before the first is written."""

from __future__ import annotations

import argparse
import tracemalloc
from typing import Any

from sentry_async import _query_command
from sentry_async.models.stats import EventsStats, Series
from sentry_async.tables import _each_events_stats_row, events_stats_rows

BUCKETS = 20_000


def _stats() -> EventsStats:
    series = Series(
        "count()", "count()", None, None, list(range(BUCKETS)), [1.0] * BUCKETS
    )
    return EventsStats([series], raw={"data": "the decoded answer"})


class _Stats:
    def __init__(self) -> None:
        self.answer: EventsStats | None = _stats()

    async def events(self, org: str, **options: Any) -> EventsStats:
        answer, self.answer = self.answer, None  # the caller's copy only
        assert answer is not None
        return answer


class _Client:
    def __init__(self) -> None:
        self.stats = _Stats()


async def test_stats_rows_are_made_as_they_are_written() -> None:
    args = argparse.Namespace(
        query_kind="stats", org="acme", y_axis=None, query=None, project=None,
        interval=None, top_events=None, field=None, order_by=None, dataset=None,
        period=None, since=None, until=None,
    )
    columns: list[str] = []
    client = _Client()
    count = 0
    tracemalloc.start()
    try:
        rows = _query_command._rows(client, args, columns, None)  # type: ignore[arg-type]
        async for _row in rows:
            count += 1
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert count == BUCKETS
    assert columns[:2] == ["series", "y_axis"]
    # A list of the rows would hold 20,000 dicts (and datetimes): some 10 MB.
    assert peak < 1_000_000, f"{peak} bytes traced while the rows were written"


def test_the_row_iterator_and_the_list_agree() -> None:
    stats = _stats()
    assert list(_each_events_stats_row(stats)) == events_stats_rows(stats)
