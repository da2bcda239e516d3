"""Argument validation and encoding: pure, no network."""

from __future__ import annotations

import json
import re
from datetime import datetime, timedelta, timezone
from importlib import resources

import pytest
from yarl import URL

import sentry_async.api
from sentry_async._protocol.hosts import endpoint_group, is_loopback, origin, resolve_redirect
from sentry_async._protocol.params import (
    check_page_size,
    check_path_value,
    check_slug,
    encode_params,
    format_datetime,
    period_seconds,
    time_range,
    validate_period,
)

UTC = timezone.utc


def test_periods() -> None:
    for good in ("24h", "14d", "90d", "1w", "30m", "3600"):
        assert validate_period(good) == good
    for bad in ("", "24 h", "1y", "-1d", "0d", "h", "1.5h", "24H"):
        with pytest.raises(ValueError, match="period"):
            validate_period(bad)


def test_period_seconds() -> None:
    assert [period_seconds(p) for p in ("90", "30s", "5m", "4h", "14d", "2w")] == [
        90, 30, 300, 14_400, 1_209_600, 1_209_600,
    ]  # fmt: skip


def test_datetimes_go_out_as_utc_without_offset() -> None:
    cet = timezone(timedelta(hours=1))
    assert format_datetime(datetime(2026, 1, 2, 13, 0, tzinfo=cet)) == "2026-01-02T12:00:00"
    assert (
        format_datetime(datetime(2026, 1, 2, 3, 4, 5, 6000, tzinfo=UTC))
        == "2026-01-02T03:04:05.006000"
    )
    with pytest.raises(ValueError, match="timezone-aware"):
        format_datetime(datetime(2026, 1, 2))


def test_time_range() -> None:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    end = datetime(2026, 1, 2, tzinfo=UTC)
    assert time_range() == {}
    assert time_range(period="14d") == {"statsPeriod": "14d"}
    assert time_range(period=timedelta(hours=2)) == {"statsPeriod": "7200s"}
    assert time_range(start=start, end=end) == {
        "start": "2026-01-01T00:00:00",
        "end": "2026-01-02T00:00:00",
    }
    with pytest.raises(ValueError, match="together"):
        time_range(start=start)
    with pytest.raises(ValueError, match="before"):
        time_range(start=end, end=start)
    with pytest.raises(ValueError, match="not both"):
        time_range(period="1d", start=start, end=end)
    with pytest.raises(ValueError, match="period"):
        time_range(period="yesterday")


def test_slugs() -> None:
    assert check_slug("acme", "org") == "acme"
    assert check_slug(42, "org") == "42"
    for bad in ("", "  ", "a/b", "a b", "..", None, True, 1.5):
        with pytest.raises(ValueError, match="org"):
            check_slug(bad, "org")  # type: ignore[arg-type]


def test_names_in_paths_are_checked_as_sentry_checks_them() -> None:
    assert check_path_value("My App 1.0", "version") == "My App 1.0"
    assert check_path_value("Production EU", "environment") == "Production EU"
    assert check_path_value("a\\b", "environment") == "a\\b"  # only '/' and line breaks
    for bad in ("a\\b", "a/b", "1.0\n", "", " ", "."):
        with pytest.raises(ValueError, match="version"):
            check_path_value(bad, "version")
    with pytest.raises(ValueError, match="project"):
        check_path_value("my project", "project")  # a slug stays a slug


def test_page_sizes() -> None:
    assert check_page_size(1) == 1 and check_page_size(100) == 100
    for bad in (0, 101, -1, True, 5.0, "10"):
        with pytest.raises(ValueError, match="per_page"):
            check_page_size(bad)  # type: ignore[arg-type]


def test_encode_params_repeats_and_drops_none() -> None:
    when = datetime(2026, 1, 1, tzinfo=UTC)
    assert encode_params(
        {"project": [1, 2], "q": None, "full": True, "start": when, "x": "a+b"}
    ) == [
        ("project", "1"),
        ("project", "2"),
        ("full", "1"),
        ("start", "2026-01-01T00:00:00"),
        ("x", "a+b"),
    ]
    assert encode_params([("a", "1"), ("a", "2")]) == [("a", "1"), ("a", "2")]
    assert encode_params(None) == []


def test_hosts() -> None:
    assert is_loopback("127.0.0.1") and is_loopback("localhost") and is_loopback("[::1]")
    assert is_loopback("127.5.5.5")
    assert not is_loopback("10.0.0.1") and not is_loopback("sentry.io") and not is_loopback(None)
    trusted = frozenset({origin(URL("https://sentry.io"))})
    assert resolve_redirect(URL("https://sentry.io/api/0/x/"), "/api/0/y/", trusted) == (
        URL("https://sentry.io/api/0/y/"),
        True,
    )
    target, ok = resolve_redirect(
        URL("https://sentry.io/api/0/x/"), "https://evil.example/steal", trusted
    )
    assert not ok and target.host == "evil.example"
    _, ok = resolve_redirect(URL("https://sentry.io/x"), "http://sentry.io/x", trusted)
    assert not ok


def test_endpoint_groups_are_route_templates() -> None:
    """A concrete path is grouped under its route's template: no slug, id or query value."""
    assert (
        endpoint_group("get", "/organizations/acme/issues/123/events/")
        == "GET /organizations/{org}/issues/{issue_id}/events/"
    )
    assert (
        endpoint_group("GET", "/organizations/{org}/issues/") == "GET /organizations/{org}/issues/"
    )
    assert endpoint_group("GET", "/projects/a/b/events/" + "ab" * 16 + "/") == (
        "GET /projects/{org}/{project}/events/{event_id}/"
    )
    assert endpoint_group("GET", "/organizations/org-0/issues/?query=secret#x") == (
        "GET /organizations/{org}/issues/"
    )
    assert endpoint_group("GET", "/organizations/org-0/shortids/PROJECT-0-0-1/") == (
        "GET /organizations/{org}/shortids/{short_id}/"
    )
    assert endpoint_group("GET", "/organizations/org-0/issues/{issue_id}/") == (
        "GET /organizations/{org}/issues/{issue_id}/"
    )
    assert endpoint_group("GET", "/users/me/regions/") == "GET /users/me/regions/"
    # A route the client does not know keeps its known words only.
    assert endpoint_group("POST", "/organizations/acme/secret-thing/") == (
        "POST /organizations/{id}/{id}/"
    )


def test_every_known_route_is_its_own_group() -> None:
    """The limiter's buckets for the hand-written and generated endpoints are unchanged."""
    rows = json.loads(
        resources.files(sentry_async.api).joinpath("_operations.json").read_text("utf-8")
    )
    assert rows
    for row in rows:
        group = f"{row['http']} {row['path']}"
        assert endpoint_group(row["http"], row["path"]) == group
        concrete = re.sub(r"\{[^}]*\}", "x-1", row["path"])
        # the same route (two templates may name one placeholder differently)
        shape = re.sub(r"\{[^}]*\}", "{}", group)
        assert re.sub(r"\{[^}]*\}", "{}", endpoint_group(row["http"], concrete)) == shape


