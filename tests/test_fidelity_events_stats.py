"""``events-stats`` as Sentry's server code reads its range, interval and comparison, and
answers a top-events query that matches no group.

Pinned against ``OrganizationEventsEndpointBase.quantize_date_params`` and ``get_rollup``
(``src/sentry/api/bases/organization_events.py``), ``snuba.quantize_time``
(``src/sentry/utils/snuba.py``), ``validate_interval`` and ``get_interval_from_range``
(``src/sentry/utils/dates.py``), ``OrganizationEventsStatsEndpoint.get`` (``comparisonDelta``
read with ``int()``, ``use_rpc = dataset in RPC_DATASETS``), ``timeseries_query`` and
``top_events_timeseries`` (``src/sentry/snuba/discover.py``: one column for a comparison, a
zero-filled placeholder when no top event exists) and ``get_event_stats_data``.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from itertools import pairwise
from typing import Any

import anyio
import pytest
from _fake_http import org_get

from sentry_async import SentryClient
from sentry_async.models import parse_events_stats
from sentry_async.testing import FakeSentry

ORG = "org-0"
ONLY_ONE = "Only one column can be selected for comparison queries"


def _quantize_time(moment: datetime, key: int, duration: int, *, up: bool) -> datetime:
    """``snuba.quantize_time`` as Sentry writes it."""
    jitter = key % duration
    seconds_past_hour = moment.minute * 60 + moment.second
    window_start = seconds_past_hour // duration * duration + jitter
    if window_start < seconds_past_hour:
        seconds_past_hour = window_start
    else:
        seconds_past_hour = window_start - duration
    if up:
        seconds_past_hour += duration
    hour = moment.replace(minute=0, second=0, microsecond=0)
    return hour + timedelta(seconds=seconds_past_hour)


def _sentry_range(server: FakeSentry, period: timedelta) -> tuple[int, int]:
    """``quantize_date_params`` over ``statsPeriod=period`` at the fake's clock."""
    end = server.now
    start = end - period
    org = server.data.org(ORG)
    assert org is not None
    size = 900 if period >= timedelta(days=30) else 60
    key = int(org.id)
    return (
        int(_quantize_time(start, key, size, up=False).timestamp()),
        int(_quantize_time(end, key, size, up=True).timestamp()),
    )


def _spacing(series: dict[str, Any]) -> set[int]:
    return {b[0] - a[0] for a, b in pairwise(series["data"])}


# -- the range Sentry counts points over ----------------------------------------------------


async def test_a_period_rounded_out_past_the_point_limit_is_refused_before_sending(
    fake_sentry: FakeSentry, client: SentryClient
) -> None:
    """A ``statsPeriod`` over an hour grows by a minute (15 minutes from 30 days up) before
    ``validate_interval`` counts its points: 10000 minutes at 1m are 10001 points."""
    refused: list[dict[str, Any]] = [
        {"period": "10000m", "interval": "1m"},
        {"period": timedelta(minutes=10000), "interval": timedelta(minutes=1)},
        {"period": "1000h", "interval": "1h", "top_events": 10, "fields": ["transaction"]},
        # 1000 hours is over 30 days: rounded to 15 minutes, 3600900 s at 6m.
        {"period": "1000h", "interval": "6m"},
        # Within the limit once a minute is added, not once 15 minutes are.
        {"period": "3599900s", "interval": "6m"},
    ]
    for kwargs in refused:
        with pytest.raises(ValueError, match="points") as caught:
            await client.stats.events(ORG, **kwargs)
        assert "rounds" in str(caught.value), kwargs
    assert fake_sentry.requests == []
    with anyio.fail_after(10):
        fits = await client.stats.events(ORG, project=-1, period="9999m", interval="1m")
        # start/end are not rounded: 10000 points exactly.
        pinned = await client.stats.events(
            ORG,
            project=-1,
            start=fake_sentry.now - timedelta(minutes=10000),
            end=fake_sentry.now,
            interval="1m",
        )
    assert {b - a for a, b in pairwise(fits.series[0].timestamps)} == {60}
    assert {b - a for a, b in pairwise(pinned.series[0].timestamps)} == {60}


async def test_an_interval_longer_than_the_range_is_refused_for_rpc_datasets(
    fake_sentry: FakeSentry, client: SentryClient
) -> None:
    """``get_rollup(..., allow_interval_over_range=not use_rpc)``: for the datasets read over
    RPC, an interval longer than the range falls back to the default interval."""
    for dataset in ("spans", "logs", "ourlogs", "tracemetrics", "uptime_results"):
        with pytest.raises(ValueError, match="longer than the range"):
            await client.stats.events(ORG, dataset=dataset, period="1h", interval="2h")
    with pytest.raises(ValueError, match="longer than the range"):
        await client.stats.events(
            ORG,
            dataset="spans",
            start=fake_sentry.now - timedelta(hours=2),
            end=fake_sentry.now,
            interval="7201s",
        )
    assert fake_sentry.requests == []
    with anyio.fail_after(10):
        # Two hours are rounded out to two hours and a minute: 7230 s fits.
        await client.stats.events(ORG, dataset="spans", period="2h", interval="7230s")
        # Other datasets take an interval longer than the range.
        await client.stats.events(ORG, project=-1, period="1h", interval="2h")
    assert [r.param("interval") for r in fake_sentry.requests if "events-stats" in r.path] == [
        "7230s",
        "2h",
    ]


async def test_the_fake_rounds_a_period_out_before_counting_points(
    fake_sentry: FakeSentry,
) -> None:
    with anyio.fail_after(10):
        status, body, _ = await org_get(
            fake_sentry,
            "events-stats/",
            [("statsPeriod", "10000m"), ("interval", "1m"), ("project", "-1")],
        )
        fits = await org_get(
            fake_sentry,
            "events-stats/",
            [("statsPeriod", "9999m"), ("interval", "1m"), ("project", "-1")],
        )
    # 10001 points: the default for a little under 7 days, an hour.
    assert status == 200 and _spacing(body) == {3600}
    assert fits[0] == 200 and _spacing(fits[1]) == {60}


async def test_the_fake_buckets_the_rounded_range(fake_sentry: FakeSentry) -> None:
    start, end = _sentry_range(fake_sentry, timedelta(hours=24))
    assert end - start == 86400 + 60
    with anyio.fail_after(10):
        status, body, _ = await org_get(
            fake_sentry,
            "events-stats/",
            [("statsPeriod", "24h"), ("interval", "1m"), ("project", "-1")],
        )
    assert status == 200
    stamps = [point[0] for point in body["data"]]
    assert stamps == list(range(start // 60 * 60, end // 60 * 60, 60))
    assert body["start"] == start // 60 * 60


@pytest.mark.parametrize(
    ("period", "step"),
    [("24h", 3600), ("23h", 300), ("30d", 4 * 3600), ("1h", 900)],
)
async def test_the_fake_picks_the_default_interval_for_the_rounded_range(
    fake_sentry: FakeSentry, period: str, step: int
) -> None:
    # get_interval_from_range(date_range) over the rounded range: 24h and a minute is over
    # a day (1h); an hour is not rounded (15m).
    with anyio.fail_after(10):
        status, body, _ = await org_get(fake_sentry, "events-stats/", [("statsPeriod", period)])
    assert status == 200 and _spacing(body) == {step}


async def test_the_fake_falls_back_for_an_rpc_interval_longer_than_the_range(
    fake_sentry: FakeSentry,
) -> None:
    base = [("statsPeriod", "1h"), ("interval", "2h")]
    with anyio.fail_after(10):
        spans = await org_get(fake_sentry, "events-stats/", [*base, ("dataset", "spans")])
        errors = await org_get(fake_sentry, "events-stats/", [*base, ("dataset", "errors")])
    assert spans[0] == 200 and _spacing(spans[1]) == {900}
    assert errors[0] == 200
    assert {point[0] % 7200 for point in errors[1]["data"]} == {0}


# -- top events without a group -------------------------------------------------------------


_PLACEHOLDER_META = {"fields": {}, "units": {}, "isMetricsData": False}
_ZEROS = {
    "data": [[1700000000, [{"count": 0}]], [1700003600, [{"count": 0}]]],
    "start": 1700000000,
    "end": 1700007200,
    "isMetricsData": False,
    "meta": _PLACEHOLDER_META,
}


def test_sentrys_placeholder_for_no_top_events_is_no_group() -> None:
    single = parse_events_stats(_ZEROS, ["count()"], top_events=True)
    several = parse_events_stats(
        {"": {"count()": dict(_ZEROS), "count_unique(user)": dict(_ZEROS)}},
        ["count()", "count_unique(user)"],
        top_events=True,
    )
    assert single.series == [] and single.raw == _ZEROS
    assert several.series == []
    # Not a top-events query: the same bodies are series.
    assert [s.name for s in parse_events_stats(_ZEROS, ["count()"])] == ["count()"]
    # A real group may be called "": it has an order.
    named = parse_events_stats(
        {"": {"count()": dict(_ZEROS), "count_unique(user)": dict(_ZEROS), "order": 0}},
        ["count()", "count_unique(user)"],
        top_events=True,
    )
    assert [(s.group, s.y_axis) for s in named] == [("", "count()"), ("", "count_unique(user)")]


async def test_a_top_events_query_matching_nothing_has_no_series(
    fake_sentry: FakeSentry, client: SentryClient
) -> None:
    query = [
        ("topEvents", "5"),
        ("field", "transaction"),
        ("query", "transaction:nothing-matches-this"),
        ("statsPeriod", "24h"),
        ("interval", "1h"),
        ("project", "-1"),
    ]
    with anyio.fail_after(10):
        single = await org_get(fake_sentry, "events-stats/", query)
        several = await org_get(
            fake_sentry, "events-stats/", [*query, ("yAxis", "count()"), ("yAxis", "count_unique(user)")]
        )
        answers = [
            await client.stats.events(
                ORG,
                y_axis=axes,
                top_events=5,
                fields=["transaction"],
                query="transaction:nothing-matches-this",
                period="24h",
                interval="1h",
                project=-1,
            )
            for axes in (["count()"], ["count()", "count_unique(user)"])
        ]
    # The plain single-yAxis shape, zero-filled, without an order.
    assert single[0] == 200 and "order" not in single[1]
    assert single[1]["data"] and {p[1][0]["count"] for p in single[1]["data"]} == {0}
    assert several[0] == 200 and list(several[1]) == [""]
    assert "order" not in several[1][""]
    assert [answer.series for answer in answers] == [[], []]
    assert answers[0].raw == single[1]


# -- comparisons ----------------------------------------------------------------------------


async def test_a_comparison_sentry_refuses_or_ignores_is_refused_before_sending(
    fake_sentry: FakeSentry, client: SentryClient
) -> None:
    refused: list[tuple[dict[str, Any], str]] = [
        ({"comparison_delta": 90.5}, "integer"),
        ({"comparison_delta": "3600"}, "integer"),
        ({"comparison_delta": True}, "integer"),
        ({"comparison_delta": timedelta(seconds=1.5)}, "whole number of seconds"),
        ({"comparison_delta": 0}, "positive"),
        ({"comparison_delta": 3600, "y_axis": ["count()", "count_unique(user)"]}, "one y_axis"),
        (
            {"comparison_delta": 3600, "top_events": 2, "fields": ["transaction"]},
            "top_events",
        ),
    ]
    for kwargs, reason in refused:
        with pytest.raises(ValueError, match=reason):
            await client.stats.events(ORG, period="24h", **kwargs)
    assert fake_sentry.requests == []
    with anyio.fail_after(10):
        stats = await client.stats.events(
            ORG, project=-1, period="24h", interval="1h", comparison_delta=timedelta(days=1)
        )
    assert fake_sentry.requests[-1].param("comparisonDelta") == "86400"
    assert stats.series[0].comparison_values is not None


async def test_the_fake_answers_comparisons_as_sentry_does(fake_sentry: FakeSentry) -> None:
    base = [("statsPeriod", "24h"), ("interval", "1h"), ("project", "-1")]
    two_axes = [("yAxis", "count()"), ("yAxis", "count_unique(user)")]
    top = [("topEvents", "2"), ("field", "transaction")]
    with anyio.fail_after(15):
        not_int = [
            await org_get(fake_sentry, "events-stats/", [*base, ("comparisonDelta", value)])
            for value in ("90.5", "17h", "")
        ]
        several = await org_get(
            fake_sentry, "events-stats/", [*base, *two_axes, ("comparisonDelta", "86400")]
        )
        grouped = await org_get(
            fake_sentry, "events-stats/", [*base, *top, ("comparisonDelta", "86400")]
        )
        grouped_axes = await org_get(
            fake_sentry, "events-stats/", [*base, *top, *two_axes, ("comparisonDelta", "86400")]
        )
        plain = await org_get(fake_sentry, "events-stats/", [*base, ("comparisonDelta", "86400")])
    assert [(status, body) for status, body, _ in not_int] == [
        (400, {"detail": "comparisonDelta must be an integer"})
    ] * 3
    assert (several[0], several[1]) == (400, {"detail": ONLY_ONE})
    # top_events_timeseries takes no comparison: no series has comparisonCount.
    assert grouped[0] == 200 and grouped_axes[0] == 200
    points = [p for series in grouped[1].values() for p in series["data"]]
    points += [
        p
        for group in grouped_axes[1].values()
        for series in group.values()
        if isinstance(series, dict)
        for p in series["data"]
    ]
    assert points and all("comparisonCount" not in p[1][0] for p in points)
    assert plain[0] == 200 and all("comparisonCount" in p[1][0] for p in plain[1]["data"])



@pytest.mark.parametrize(
    "fault",
    [
        {"kind": "truncated_json"},
        {"kind": "truncated_json", "fraction": 0.0},
        {"kind": "status", "status": 200, "body": "<html>maintenance</html>"},
    ],
    ids=["cut short", "empty", "html"],
)
async def test_a_stats_body_cut_short_is_sent_for_again(
    fake_sentry: FakeSentry, client: SentryClient, fault: dict[str, Any]
) -> None:
    """A success body that is no JSON (cut short, empty) is a failed attempt, resent as
    every other read's is; only a well-formed body of the wrong shape is a DecodeError."""
    from sentry_async.testing import Fault

    fake_sentry.faults.add(Fault(path="/events-stats/", times=1, **fault))
    with anyio.fail_after(20):
        stats = await client.stats.events(ORG, period="1d")
    asked = [r for r in fake_sentry.requests if r.path.endswith("/events-stats/")]
    assert len(asked) == 2, "the broken answer was not resent"
    assert stats.series
