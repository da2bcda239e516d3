"""Rate-limit and Retry-After header parsing: pure, no network."""

from __future__ import annotations

import gc
from datetime import datetime, timezone
from email.utils import format_datetime

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st
from multidict import CIMultiDict

from sentry_async._protocol.ratelimit import _epoch
from sentry_async.sansio import (
    RateLimitInfo,
    Step,
    header_int,
    page_links,
    parse_rate_limit,
    parse_retry_after,
)


def test_reads_all_headers_case_insensitively() -> None:
    headers = CIMultiDict(
        {
            "x-sentry-rate-limit-limit": "40",
            "X-Sentry-Rate-Limit-Remaining": "39",
            "X-SENTRY-RATE-LIMIT-RESET": "1787019075",
            "x-sentry-rate-limit-concurrentlimit": "25",
            "x-sentry-rate-limit-concurrentremaining": "24",
        }
    )
    info = parse_rate_limit(headers)
    assert info == RateLimitInfo(40, 39, 1787019075.0, 25, 24)
    assert info is not None
    assert info.seconds_until_reset(1787019070.0) == 5.0
    assert info.seconds_until_reset(1787019080.0) == 0.0
    assert not info.exhausted


def test_absent_headers_mean_no_information() -> None:
    assert parse_rate_limit(CIMultiDict({"Content-Type": "application/json"})) is None


def test_garbage_values_become_none() -> None:
    info = parse_rate_limit(
        CIMultiDict({"X-Sentry-Rate-Limit-Remaining": "-3", "X-Sentry-Rate-Limit-Reset": "soon"})
    )
    assert info == RateLimitInfo(remaining=None, reset=None)


def test_zero_remaining_is_exhausted() -> None:
    info = parse_rate_limit(CIMultiDict({"X-Sentry-Rate-Limit-Remaining": "0"}))
    assert info is not None and info.exhausted


def test_retry_after_seconds_and_http_date() -> None:
    now = 1_700_000_000.0
    assert parse_retry_after("7", now) == 7.0
    assert parse_retry_after(" 1.5 ", now) == 1.5
    when = datetime.fromtimestamp(now + 30, tz=timezone.utc)
    assert parse_retry_after(format_datetime(when, usegmt=True), now) == 30.0
    past = datetime.fromtimestamp(now - 30, tz=timezone.utc)
    assert parse_retry_after(format_datetime(past, usegmt=True), now) == 0.0


def test_retry_after_garbage_is_none() -> None:
    for value in (None, "", "soon", "-5", "nan", "inf", "Mon, 99 Foo 2020"):
        assert parse_retry_after(value, 0.0) is None


def test_retry_after_seconds_are_digits_only() -> None:
    """RFC 9110's delay-seconds (a decimal fraction is taken too), not what float() takes."""
    for value in ("1_000_000", "1_0", "+5", "2e0", "0x10", "infinity"):
        assert parse_retry_after(value, 0.0) is None, value
    assert parse_retry_after("1" * 400, 0.0) is None, "too long to be a wait"


def test_an_http_date_in_minus_0000_is_gmt() -> None:
    """``-0000`` is how RFC 2822 writes GMT without saying where (``formatdate`` does it)."""
    from email.utils import formatdate

    from sentry_async._protocol.ratelimit import server_clock

    now = 1_700_000_000.0
    assert formatdate(now + 30).endswith("-0000")
    assert parse_retry_after(formatdate(now + 30), now) == 30.0
    assert server_clock(formatdate(now + 600), now) == now + 600


@given(
    st.dictionaries(
        st.sampled_from(
            [
                "x-sentry-rate-limit-limit",
                "x-sentry-rate-limit-remaining",
                "x-sentry-rate-limit-reset",
                "x-sentry-rate-limit-concurrentlimit",
                "x-sentry-rate-limit-concurrentremaining",
                "other",
            ]
        ),
        st.text(),
    )
)
def test_any_header_values_parse_without_raising(values: dict[str, str]) -> None:
    info = parse_rate_limit(CIMultiDict(values))
    if info is not None:
        for number in (
            info.limit,
            info.remaining,
            info.concurrent_limit,
            info.concurrent_remaining,
        ):
            assert number is None or number >= 0


@given(st.text(), st.floats(min_value=0, max_value=4e9))
def test_any_retry_after_parses_without_raising(value: str, now: float) -> None:
    result = parse_retry_after(value, now)
    assert result is None or result >= 0


def test_server_clock_wins_only_when_the_client_clock_is_off() -> None:
    from email.utils import formatdate

    from sentry_async._protocol.ratelimit import server_clock

    wall = 1_700_000_000.4
    assert server_clock(formatdate(wall, usegmt=True), wall) == wall
    assert server_clock(formatdate(wall + 600, usegmt=True), wall) == int(wall) + 600
    assert server_clock(formatdate(wall - 600, usegmt=True), wall) == int(wall) - 600
    for garbage in (None, "", "yesterday", "Thu, 01 Jan 99999 00:00:00 GMT", "ü"):
        assert server_clock(garbage, wall) == wall


@pytest.mark.parametrize(
    "value",
    ["40", "0", " 7 ", "+3", "-1", "1e3", "2.5", "٣", "x", "", "9" * 15, "9" * 16, "9" * 5000],
)
def test_the_plain_digits_shortcut_reads_every_value_as_the_careful_path_does(
    value: str,
) -> None:
    """Short runs of digits skip the per-value helpers; every other value, spaces, signs,
    exponents and numbers too long for int() included, still goes through them."""
    info = parse_rate_limit(
        CIMultiDict(
            {
                "X-Sentry-Rate-Limit-Limit": value,
                "X-Sentry-Rate-Limit-Remaining": value,
                "X-Sentry-Rate-Limit-Reset": value,
                "X-Sentry-Rate-Limit-ConcurrentLimit": value,
                "X-Sentry-Rate-Limit-ConcurrentRemaining": value,
            }
        )
    )
    count, epoch = header_int(value), _epoch(value)
    assert info == RateLimitInfo(count, count, epoch, count, count)
    assert info is not None and type(info.reset) is (float if epoch is not None else type(None))


def test_the_records_made_for_every_response_are_immutable_and_left_alone_by_the_collector() -> (
    None
):
    """One of each is built per page: the collector never walks them, and they still
    compare, hash and refuse changes like the frozen records they replace."""
    records = [
        RateLimitInfo(40, 39, 1787019075.0, 25, 24),
        page_links('<u>; rel="next"; results="true"; cursor="0:100:0"'),
        Step("0:0:0", 0, 100, "0:100:0", None, True, True),
    ]
    for record in records:
        assert not gc.is_tracked(record)
        assert hash(record) == hash(msgspec.structs.replace(record))
        with pytest.raises(AttributeError):
            record.paginated = False  # type: ignore[misc]


def test_the_date_is_read_with_the_rate_limit_headers() -> None:
    info = parse_rate_limit(
        CIMultiDict(
            {
                "X-Sentry-Rate-Limit-Reset": "1787019076",
                "Date": "Tue, 18 Aug 2026 02:11:15 GMT",
            }
        )
    )
    assert info is not None and info.date == 1787019075.0
    assert info.reset_after_date == 1.0, "the most the window can have left"
    assert RateLimitInfo(reset=1787019076.0).reset_after_date is None
    garbled = parse_rate_limit(CIMultiDict({"X-Sentry-Rate-Limit-Limit": "40", "Date": "x"}))
    assert garbled is not None and garbled.date is None


@pytest.mark.parametrize("skew", [0.5, 1.5, -0.5, -1.5, 0.0])
def test_answers_across_the_second_narrow_the_clock_offset_to_the_round_trip(
    skew: float,
) -> None:
    """``Date`` has whole seconds only, but answers written at every phase of the server's
    second bound the offset between the clocks far closer than the second (a 10 ms round
    trip, answers 137 ms apart)."""
    from sentry_async._protocol.ratelimit import narrow_clock_offset

    known = None
    for step in range(40):
        sent = 1_700_000_000.0 + step * 0.137  # the client's clock
        written = sent + 0.005 + skew  # the server's, half-way through the round trip
        known = narrow_clock_offset(known, float(int(written)), sent, sent + 0.01)
        assert known.low <= skew <= known.high
    assert known is not None and known.high - known.low <= 0.1


def test_a_clock_set_since_starts_the_offset_over() -> None:
    from sentry_async._protocol.ratelimit import narrow_clock_offset

    known = narrow_clock_offset(None, 1000.0, 999.5, 999.6)
    assert (known.low, known.high) == pytest.approx((0.4, 1.5))
    moved = narrow_clock_offset(known, 1000.0, 1009.5, 1009.6)
    assert (moved.low, moved.high) == pytest.approx((-9.6, -8.5)), "no overlap: this answer"


@pytest.mark.parametrize(
    ("value", "count"),
    [
        ("9" * 15, 10**15 - 1),
        (" 1000 ", 1000),
        ("9" * 16, None),
        ("1" + "0" * 18, None),
        ("1" + "0" * 400, None),
        ("9" * 4000, None),
    ],
)
def test_a_count_no_sentry_can_send_is_absent_like_a_malformed_one(
    value: str, count: int | None
) -> None:
    """``X-Hits`` of hundreds of digits is no count at all: read as one, it overflows the
    float arithmetic of whoever estimates with it (an export's progress)."""
    assert header_int(value) == count
