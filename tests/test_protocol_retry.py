"""Retry decisions and backoff: pure, no network."""

from __future__ import annotations

import random
from typing import get_args

import pytest
from multidict import CIMultiDict

from sentry_async import RateLimitInfo, RetryPolicy
from sentry_async._protocol.retry import (
    FINAL_KINDS,
    FailureKind,
    backoff_delay,
    decide,
    rate_limit_delay,
)

POLICY = RetryPolicy(attempts=4, backoff_base=1.0, backoff_max=8.0, jitter=0.0)


def test_backoff_is_exponential_and_capped() -> None:
    assert [backoff_delay(n, POLICY) for n in range(1, 7)] == [1, 2, 4, 8, 8, 8]


def test_backoff_jitter_stays_in_band() -> None:
    policy = RetryPolicy(backoff_base=1.0, jitter=0.5)
    rng = random.Random(1)
    delays = [backoff_delay(3, policy, rng) for _ in range(200)]
    assert all(2.0 <= d <= 6.0 for d in delays)
    assert len(set(delays)) > 100


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_gateway_errors_retry_for_reads(status: int) -> None:
    decision = decide(attempt=1, policy=POLICY, idempotent=True, kind="status", status=status)
    assert decision.retry and decision.delay == 1.0 and not decision.server_wait


@pytest.mark.parametrize("status", [400, 401, 403, 404, 501])
def test_final_statuses(status: int) -> None:
    assert not decide(attempt=1, policy=POLICY, idempotent=True, kind="status", status=status).retry


def test_query_timeout_400_retries() -> None:
    decision = decide(
        attempt=2, policy=POLICY, idempotent=True, kind="status", status=400, query_timeout=True
    )
    assert decision.retry and decision.delay == 2.0


def test_non_idempotent_is_not_repeated_except_429() -> None:
    assert not decide(attempt=1, policy=POLICY, idempotent=False, kind="status", status=503).retry
    assert not decide(attempt=1, policy=POLICY, idempotent=False, kind="connection").retry
    assert decide(attempt=1, policy=POLICY, idempotent=False, kind="status", status=429).retry


@pytest.mark.parametrize("kind", ["connection", "timeout", "payload"])
def test_transport_failures_retry(kind: str) -> None:
    assert decide(attempt=1, policy=POLICY, idempotent=True, kind=kind).retry


def test_budget_is_respected() -> None:
    assert decide(attempt=3, policy=POLICY, idempotent=True, kind="connection").retry
    assert not decide(attempt=4, policy=POLICY, idempotent=True, kind="connection").retry
    assert not decide(
        attempt=1, policy=RetryPolicy(attempts=1), idempotent=True, kind="timeout"
    ).retry


def test_429_retry_after_wins_over_reset() -> None:
    headers = CIMultiDict({"Retry-After": "7"})
    info = RateLimitInfo(remaining=0, reset=1030.0)
    decision = decide(
        attempt=1,
        policy=POLICY,
        idempotent=True,
        kind="status",
        status=429,
        headers=headers,
        rate_limit=info,
        now=1000.0,
    )
    assert decision.retry and decision.server_wait and decision.delay == 7.0


def test_429_waits_until_reset_without_retry_after() -> None:
    info = RateLimitInfo(remaining=0, reset=1003.0)
    decision = decide(
        attempt=1,
        policy=POLICY,
        idempotent=True,
        kind="status",
        status=429,
        headers={},
        rate_limit=info,
        now=1000.0,
    )
    assert decision.delay == 3.0 and decision.server_wait


def test_429_reset_in_past_or_missing_backs_off() -> None:
    for info in (RateLimitInfo(remaining=0, reset=990.0), None):
        decision = decide(
            attempt=2,
            policy=POLICY,
            idempotent=True,
            kind="status",
            status=429,
            headers={},
            rate_limit=info,
            now=1000.0,
        )
        assert decision.retry and decision.delay == 2.0 and decision.server_wait


@pytest.mark.parametrize(
    ("headers", "delay"), [({"retry-after": "5"}, 5.0), ({}, 8.0)], ids=["retry-after", "none"]
)
def test_a_429_on_the_last_attempt_still_pauses_the_group(
    headers: dict[str, str], delay: float
) -> None:
    """No retry is left, but the server's wait still applies to every task of the group."""
    decision = decide(
        attempt=POLICY.attempts,
        policy=POLICY,
        idempotent=True,
        kind="status",
        status=429,
        headers=headers,
        now=1000.0,
    )
    assert not decision.retry
    assert decision.server_wait and decision.delay == delay
    assert "budget" in decision.reason


def test_429_asking_for_too_long_gives_up() -> None:
    policy = RetryPolicy(max_wait=60.0, jitter=0.0)
    decision = decide(
        attempt=1,
        policy=policy,
        idempotent=True,
        kind="status",
        status=429,
        headers={"retry-after": "3600"},
        now=0.0,
    )
    assert not decision.retry


def test_rate_limit_delay_http_date() -> None:
    headers = CIMultiDict({"Retry-After": "Thu, 01 Jan 1970 00:00:30 GMT"})
    assert rate_limit_delay(headers, None, 10.0) == 20.0


@pytest.mark.parametrize(
    "value",
    ["Thu, 01 Jan 1970 00:00:00 GMT", "Sat, 28 Nov 2026 17:00:00 GMT", "0", "0.0"],
    ids=["epoch", "an-hour-ago", "zero", "zero-fraction"],
)
def test_a_retry_after_in_the_past_or_of_zero_backs_off(value: str) -> None:
    """A date already past (clock skew, a stale header) or no wait at all says "not now",
    as a past ``Reset`` does: the usual backoff, not a retry at once (a 429 storm)."""
    now = 1_795_888_800.0  # 2026-11-28 18:00 UTC
    headers = {"retry-after": value}
    assert rate_limit_delay(headers, None, now) is None
    decision = decide(
        attempt=2,
        policy=POLICY,
        idempotent=True,
        kind="status",
        status=429,
        headers=headers,
        now=now,
    )
    assert decision.retry and decision.delay == 2.0 and decision.server_wait
    # A window reset still to come is the wait then, as with no Retry-After at all.
    info = RateLimitInfo(remaining=0, reset=now + 3.0)
    assert rate_limit_delay(headers, info, now) == 3.0


def test_policy_validation() -> None:
    with pytest.raises(ValueError, match="attempts"):
        RetryPolicy(attempts=0)
    with pytest.raises(ValueError, match="jitter"):
        RetryPolicy(jitter=2)


def test_a_pause_longer_than_max_wait_fails_fast() -> None:
    from sentry_async._protocol.retry import fail_fast

    policy = RetryPolicy(max_wait=10.0)
    assert fail_fast(10.5, policy) and not fail_fast(10.0, policy) and not fail_fast(0, policy)


@pytest.mark.parametrize("kind", ["too_large", "tls", "redirect", "final"])
def test_final_failure_kinds_are_never_retried(kind: str) -> None:
    assert not decide(attempt=1, policy=POLICY, idempotent=True, kind=kind).retry


@pytest.mark.parametrize(
    ("status", "method", "expected"),
    [
        (303, "PUT", ("GET", False)),
        (303, "GET", ("GET", False)),
        (301, "POST", ("GET", False)),
        (302, "DELETE", ("DELETE", True)),
        (301, "PUT", ("PUT", True)),
        (303, "HEAD", ("HEAD", True)),
        (301, "GET", ("GET", True)),
        (302, "HEAD", ("HEAD", True)),
        (307, "PUT", ("PUT", True)),
        (308, "POST", ("POST", True)),
    ],
)
def test_redirect_method_rules(status: int, method: str, expected: tuple[str, bool]) -> None:
    from sentry_async._protocol.hosts import redirect_method

    assert redirect_method(status, method) == expected


def test_only_reads_follow_a_301_302_or_303() -> None:
    from sentry_async._protocol.hosts import redirect_refusal

    for status in (301, 302, 303, 307, 308):
        assert redirect_refusal(status, "GET") is None
        assert redirect_refusal(status, "HEAD") is None
    for method in ("POST", "PUT", "PATCH", "DELETE"):
        assert redirect_refusal(307, method) is None and redirect_refusal(308, method) is None
        for status in (301, 302):
            assert "not made" in (redirect_refusal(status, method) or "")
        assert "may have acted" in (redirect_refusal(303, method) or "")


def test_failure_kinds_are_the_closed_set_the_transport_uses() -> None:
    kinds = set(get_args(FailureKind))
    assert kinds == {
        "status", "connection", "timeout", "payload", "too_large", "tls", "redirect", "final"
    }
    assert kinds >= FINAL_KINDS
    for kind in kinds - FINAL_KINDS:
        assert decide(
            attempt=1, policy=RetryPolicy(), idempotent=True, kind=kind, status=503
        ).retry, kind


@pytest.mark.parametrize("kind", ["connection", "timeout"])
def test_a_write_that_never_left_is_retried_like_a_read(kind: FailureKind) -> None:
    unsent = decide(attempt=1, policy=POLICY, idempotent=False, kind=kind, sent=False)
    assert unsent.retry and unsent.delay == 1.0
    assert not decide(attempt=1, policy=POLICY, idempotent=False, kind=kind).retry
    assert not decide(attempt=1, policy=POLICY, idempotent=False, kind="tls", sent=False).retry
    assert not decide(attempt=4, policy=POLICY, idempotent=False, kind=kind, sent=False).retry


@pytest.mark.parametrize("status", [502, 503, 504])
def test_a_gateway_error_waits_its_retry_after(status: int) -> None:
    asked = CIMultiDict({"Retry-After": "12"})
    decision = decide(
        attempt=1, policy=POLICY, idempotent=True, kind="status", status=status, headers=asked
    )
    assert decision.retry and decision.delay == 12.0
    dated = CIMultiDict({"Retry-After": "Thu, 01 Jan 2026 00:00:20 GMT"})
    at = 1767225600.0  # 2026-01-01 00:00:00 UTC
    assert decide(
        attempt=1, policy=POLICY, idempotent=True, kind="status", status=status, headers=dated,
        now=at,
    ).delay == 20.0
    too_long = CIMultiDict({"Retry-After": "301"})
    assert not decide(
        attempt=1, policy=POLICY, idempotent=True, kind="status", status=status, headers=too_long
    ).retry
    assert not decide(
        attempt=1, policy=POLICY, idempotent=False, kind="status", status=status, headers=asked
    ).retry
    assert not decide(
        attempt=4, policy=POLICY, idempotent=True, kind="status", status=status, headers=asked
    ).retry
    past = CIMultiDict({"Retry-After": "0"})
    assert decide(
        attempt=1, policy=POLICY, idempotent=True, kind="status", status=status, headers=past
    ).delay == 1.0, "no usable wait: backoff"
