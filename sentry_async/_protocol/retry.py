"""When to send a request again, and after how long, with no I/O.

The transport asks :func:`decide` after every failed attempt and sleeps for the answer.
A 429 is always safe to repeat (the server refused the request without acting on it); other
failures are repeated only for requests that are safe to repeat (reads, idempotent writes).
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from .ratelimit import RateLimitInfo, parse_retry_after, shown_wait

__all__ = [
    "FINAL_KINDS",
    "FailureKind",
    "RetryDecision",
    "RetryPolicy",
    "backoff_delay",
    "decide",
    "fail_fast",
    "rate_limit_delay",
]

FailureKind = Literal[
    "status", "connection", "timeout", "payload", "too_large", "tls", "redirect", "final"
]
"""``"status"`` (an HTTP answer), ``"connection"``, ``"timeout"`` or ``"payload"`` (worth
another try), or one of :data:`FINAL_KINDS`."""

FINAL_KINDS: frozenset[FailureKind] = frozenset({"too_large", "tls", "redirect", "final"})
"""Failures the same request would meet again: a body over the size cap, a TLS handshake
or certificate error, a redirect the token must not follow, a response that cannot be used
at all."""


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How hard to try. ``attempts`` counts the first try: 1 disables retries."""

    attempts: int = 5
    backoff_base: float = 0.5
    backoff_max: float = 30.0
    jitter: float = 0.25
    max_wait: float = 300.0
    retry_statuses: frozenset[int] = field(
        default_factory=lambda: frozenset({429, 500, 502, 503, 504})
    )
    """Sentry answers transient database and query failures with 500 "Internal Error", so a
    500 is retried too (for requests safe to repeat), as Sentry's own CLI does."""
    retry_query_timeouts: bool = True

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise ValueError("RetryPolicy.attempts must be at least 1")
        if self.backoff_base < 0 or self.backoff_max < 0 or self.max_wait < 0:
            raise ValueError("RetryPolicy delays must not be negative")
        if not 0 <= self.jitter <= 1:
            raise ValueError("RetryPolicy.jitter must be between 0 and 1")


@dataclass(frozen=True, slots=True)
class RetryDecision:
    retry: bool
    delay: float = 0.0
    reason: str = ""
    server_wait: bool = False
    """True when the delay came from the server (Retry-After or the rate-limit reset):
    every task sharing the limiter must wait it out, not only this one."""


_MAX_DOUBLINGS = 1023
"""The largest exponent of two a float holds: ``2.0 ** 1024`` raises ``OverflowError``.
A ``backoff_base`` not yet at ``backoff_max`` after this many doublings is under 1e-300
of it, so the cap changes no delay a policy means."""


def backoff_delay(attempt: int, policy: RetryPolicy, rng: random.Random | None = None) -> float:
    """Capped exponential backoff for the ``attempt``-th failure (1-based), with jitter.

    The exponent is capped before it is raised (:data:`_MAX_DOUBLINGS`): a policy of
    thousands of attempts (hours of retries, ``backoff_max`` apart) must not overflow."""
    doublings = min(max(0, attempt - 1), _MAX_DOUBLINGS)
    base: float = min(policy.backoff_max, policy.backoff_base * 2.0**doublings)
    if policy.jitter and base:
        spread = base * policy.jitter
        base += (rng or random).uniform(-spread, spread)
    return max(0.0, base)


def rate_limit_delay(
    headers: Mapping[str, str], info: RateLimitInfo | None, now: float
) -> float | None:
    """The wait a 429 asks for: ``Retry-After`` first, else the window reset, else unknown.

    A ``Retry-After`` date or a ``Reset`` already in the past (clock skew, a stale header),
    or a wait of zero, still means "not now": no usable wait, so the caller backs off
    rather than sending again at once.
    """
    retry_after = parse_retry_after(headers.get("retry-after"), now)
    if retry_after is not None and retry_after > 0:
        return retry_after
    if info is not None and info.reset is not None:
        wait = info.seconds_until_reset(now)
        return wait if wait and wait > 0 else None
    return None


def decide(
    *,
    attempt: int,
    policy: RetryPolicy,
    idempotent: bool,
    kind: FailureKind,
    status: int | None = None,
    query_timeout: bool = False,
    headers: Mapping[str, str] | None = None,
    rate_limit: RateLimitInfo | None = None,
    now: float = 0.0,
    rng: random.Random | None = None,
    sent: bool = True,
) -> RetryDecision:
    """Decide whether the ``attempt``-th try (1-based) should be followed by another.

    ``sent=False``: the attempt failed before its request left (connection refused, DNS),
    so even a request that is not safe to repeat is sent again."""
    if kind in FINAL_KINDS:
        return RetryDecision(False, reason=f"{kind} is final")
    if kind == "status" and status == 429 and 429 in policy.retry_statuses:
        decision = _after_429(attempt, policy, headers or {}, rate_limit, now, rng)
        if decision.retry and attempt >= policy.attempts:
            # No retry left, but the server's pause still applies to every task.
            return RetryDecision(False, decision.delay, "retry budget exhausted", True)
        return decision
    if attempt >= policy.attempts:
        return RetryDecision(False, reason="retry budget exhausted")
    if kind == "status":
        if not idempotent:
            return RetryDecision(False, reason="request is not safe to repeat")
        if query_timeout and policy.retry_query_timeouts:
            return RetryDecision(True, backoff_delay(attempt, policy, rng), "query timeout")
        if status is not None and status in policy.retry_statuses:
            return _after_status(attempt, policy, status, headers or {}, now, rng)
        return RetryDecision(False, reason=f"status {status} is final")
    if not idempotent and sent:
        return RetryDecision(False, reason="request is not safe to repeat")
    return RetryDecision(True, backoff_delay(attempt, policy, rng), kind)


def _after_status(
    attempt: int,
    policy: RetryPolicy,
    status: int,
    headers: Mapping[str, str],
    now: float,
    rng: random.Random | None,
) -> RetryDecision:
    """A retried 5xx: the ``Retry-After`` it carries (a maintenance page, a draining load
    balancer; RFC 9110 §10.2.3), capped by ``max_wait`` as for a 429, else backoff."""
    wait = rate_limit_delay(headers, None, now)
    if wait is None:
        return RetryDecision(True, backoff_delay(attempt, policy, rng), f"status {status}")
    if wait > policy.max_wait:
        return RetryDecision(
            False, wait, f"status {status}, server asks to wait {shown_wait(wait)}"
        )
    spread = min(1.0, policy.backoff_base) * policy.jitter
    wait += (rng or random).uniform(0, spread) if spread else 0.0
    return RetryDecision(True, wait, f"status {status}, Retry-After")


def _after_429(
    attempt: int,
    policy: RetryPolicy,
    headers: Mapping[str, str],
    rate_limit: RateLimitInfo | None,
    now: float,
    rng: random.Random | None,
) -> RetryDecision:
    """A 429's decision, the budget aside: the wait it asks for, which every task keeps."""
    wait = rate_limit_delay(headers, rate_limit, now)
    if wait is None:
        return RetryDecision(True, backoff_delay(attempt, policy, rng), "429 without a wait", True)
    if wait > policy.max_wait:
        # Not retried here, but the pause still applies to every task.
        return RetryDecision(False, wait, f"server asks to wait {shown_wait(wait)}", True)
    # A little jitter after the wait spreads the stampede at the window edge.
    spread = min(1.0, policy.backoff_base) * policy.jitter
    wait += (rng or random).uniform(0, spread) if spread else 0.0
    return RetryDecision(True, wait, "429", True)


def fail_fast(paused: float, policy: RetryPolicy) -> bool:
    """Whether a call should fail at once rather than wait out a pause the server announced
    for its endpoint (``paused`` seconds left): the pause is longer than ``max_wait``."""
    return paused > policy.max_wait
