"""Discover rows, ``events-stats`` in its shapes, ``stats_v2``, and error bodies."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest
from model_helpers import body, decode, raw

from sentry_async import ErrorDetail
from sentry_async._protocol.errors import parse_error_body
from sentry_async.models import DiscoverResponse, UsageStats, discover_meta, parse_events_stats

# --- discover, events-stats, stats_v2 ---------------------------------------------------------


def test_discover_rows_are_keyed_by_field_expressions() -> None:
    response = decode("discover-events.json", DiscoverResponse[dict[str, Any]])
    first, second = response.data
    assert first["issue.id"] == 7301122450 and isinstance(first["issue.id"], int)
    assert first["count()"] == 1204 and first["p75(transaction.duration)"] == 12.5
    assert first["last_seen()"] == "2026-01-01T23:41:07+00:00"
    assert second["p75(transaction.duration)"] is None
    meta = discover_meta(response.meta)
    assert meta is not None and meta.dataset == "errors" and meta.dataset_reason == "unchanged"
    assert (
        meta.fields["last_seen()"] == "date"
        and meta.units["p75(transaction.duration)"] == "millisecond"
    )
    assert meta.is_metrics_data is False and meta.tips == {"query": None, "columns": None}
    empty = decode("discover-events-empty.json", DiscoverResponse[dict[str, Any]])
    assert empty.data == [] and discover_meta(empty.meta) == meta


def test_discover_spans_dataset_with_confidence() -> None:
    response = decode("discover-events-spans.json", DiscoverResponse[dict[str, Any]])
    assert [row["span.duration"] for row in response.data] == [7.25, 420.0]
    assert response.data[1]["is_transaction"] is True
    assert response.confidence == [{"count()": "low"}, {}]
    meta = discover_meta(response.meta)
    assert meta is not None and meta.data_scanned == "partial" and meta.dataset == "spans"
    assert meta.accuracy == {"confidence": [{"count()": "low"}, {}]}
    assert meta.fields["span.duration"] == "duration"


def test_discover_legacy_meta_puts_field_types_at_the_top() -> None:
    response = decode("discover-events-legacy-meta.json", DiscoverResponse[dict[str, Any]])
    assert response.data[0]["equation|count() * 2"] == 176.0
    meta = discover_meta(response.meta)
    assert meta is not None and meta.is_metrics_data is False
    assert meta.fields == {
        "transaction": "string",
        "count()": "integer",
        "equation|count() * 2": "number",
    }
    assert discover_meta(None) is None


def test_discover_rows_can_stay_raw() -> None:
    response = msgspec.json.decode(raw("discover-events.json"), type=DiscoverResponse[msgspec.Raw])
    assert [msgspec.json.decode(row) for row in response.data] == body("discover-events.json")[
        "data"
    ]


def test_events_stats_single_y_axis() -> None:
    (series,) = parse_events_stats(raw("events-stats-single.json"))
    assert (series.name, series.y_axis, series.group, series.order) == (
        "count()",
        "count()",
        None,
        None,
    )
    assert series.values == [4, 0, 9, 2, 0, 1] and series.total == 16
    assert (
        series.timestamps[0] == 1767225600 and series.timestamps[1] - series.timestamps[0] == 3600
    )
    assert series.start == 1767225600 and series.end == 1767225600 + 6 * 3600
    assert series.meta is not None and series.meta["dataset"] == "errors"
    assert series.comparison_values is None
    (named,) = parse_events_stats(raw("events-stats-single.json"), ["count_unique(user)"])
    assert named.name == named.y_axis == "count_unique(user)"


def test_events_stats_multiple_y_axes() -> None:
    stats = parse_events_stats(
        raw("events-stats-multi-yaxis.json"), ["count()", "count_unique(user)"]
    )
    assert [(s.name, s.y_axis, s.group, s.order) for s in stats] == [
        ("count()", "count()", None, 0),
        ("count_unique(user)", "count_unique(user)", None, 1),
    ]
    assert stats.by_name("count_unique(user)") is not None
    assert stats.by_name("count_unique(user)").values == [2, 0, 3, 1]  # type: ignore[union-attr]
    assert stats.raw == body("events-stats-multi-yaxis.json")


def test_events_stats_top_events() -> None:
    stats = parse_events_stats(body("events-stats-top-events.json"))
    assert [(s.group, s.order, s.total) for s in stats] == [
        ("ledger-api", 0, 11),
        ("web-console", 1, 4),
        ("Other", 2, 0),
    ]
    assert all(s.y_axis == "count()" and s.name == s.group for s in stats)


def test_events_stats_top_events_with_multiple_y_axes() -> None:
    axes = ["count()", "p95(transaction.duration)"]
    stats = parse_events_stats(raw("events-stats-top-multi-yaxis.json"), axes)
    assert [(s.group, s.y_axis, s.order) for s in stats] == [
        ("GET /api/v3/receipts/{id},ledger-api", "count()", 0),
        ("GET /api/v3/receipts/{id},ledger-api", "p95(transaction.duration)", 0),
        ("POST /api/v3/payouts,ledger-api", "count()", 1),
        ("POST /api/v3/payouts,ledger-api", "p95(transaction.duration)", 1),
    ]
    assert stats.series[1].values == [120.5, 98.0, 0, 410.25]


def test_events_stats_edge_cases() -> None:
    cases = body("events-stats-edge-cases.json")
    (empty_key,) = parse_events_stats(cases["empty_group_key"])
    assert empty_key.group == "" and empty_key.values == [5.0, 6.0] and empty_key.order == 0
    (gaps,) = parse_events_stats(cases["null_and_empty_buckets"])
    assert gaps.values == [None, None, 4] and gaps.timestamps == [10, 20, 30] and gaps.total == 4
    (compared,) = parse_events_stats(cases["comparison_counts"])
    assert compared.values == [3, 0] and compared.comparison_values == [1, 2.5]
    only_order = parse_events_stats(cases["order_sibling_only_group"])
    assert [(s.group, s.y_axis, s.order) for s in only_order] == [("Group A", "count()", 2)]
    (nothing,) = parse_events_stats(cases["empty_data"])
    assert nothing.points() == [] and nothing.total == 0
    (floats,) = parse_events_stats(cases["float_timestamps"])
    assert floats.timestamps == [10, 3610] and all(isinstance(t, int) for t in floats.timestamps)


@pytest.mark.parametrize(
    "bad",
    [
        b"[]",
        b'"count"',
        b'{"data": [[1]]}',
        b'{"data": [["yesterday", [{"count": 1}]]]}',
        b'{"group": {"count()": {"data": "none"}, "x": 1}}',
        b'{"group": 3}',
    ],
)
def test_events_stats_bodies_of_no_known_shape_raise_value_error(bad: bytes) -> None:
    with pytest.raises(ValueError):
        parse_events_stats(bad)


def test_usage_stats_grouped_and_grouped_by_project() -> None:
    grouped = decode("stats-v2-grouped.json", UsageStats)
    assert grouped.intervals == [
        "2025-12-29T00:00:00Z",
        "2025-12-30T00:00:00Z",
        "2025-12-31T00:00:00Z",
    ]
    first = grouped.groups[0]
    assert first.by == {"category": "error", "outcome": "accepted", "reason": "none"}
    assert first.totals == {"sum(quantity)": 9120, "sum(times_seen)": 9120}
    assert all(len(v) == len(grouped.intervals) for g in grouped.groups for v in g.series.values())
    assert sum(g.totals["sum(quantity)"] for g in grouped.groups) == 9161
    by_project = decode("stats-v2-project.json", UsageStats)
    assert by_project.intervals == [] and by_project.start == "2025-12-29T00:00:00Z"
    assert [(g.by["project"], g.totals["sum(quantity)"], g.series) for g in by_project.groups] == [
        (4508812, 9161, {}),
        (4508813, 17, {}),
    ]


# --- error bodies ---------------------------------------------------------------------------


def test_error_bodies_in_every_shape() -> None:
    detail, data = parse_error_body(raw("error-bare-string.json"))
    assert detail == data == "Invalid project slugs: ghost-project"
    detail, data = parse_error_body(raw("error-detail-string.json"))
    assert isinstance(detail, str) and detail.startswith("Query timeout.")
    assert data == body("error-detail-string.json")
    detail, data = parse_error_body(raw("error-detail-object.json"))
    assert detail == ErrorDetail(
        code="2fa-required",
        message="Organization requires two-factor authentication to be enabled",
        extra={"orgSlug": "fernhill", "redirectUrl": "/settings/account/security/"},
    )
    detail, data = parse_error_body(raw("error-field-errors.json"))
    assert detail is None
    assert data["slug"] == [
        "Ensure this field has no more than 50 characters.",
        "Enter a valid slug.",
    ]
