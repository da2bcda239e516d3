"""Client options refused at construction, each error naming the option: no network."""

from __future__ import annotations

import traceback
from typing import Any

import pytest

from sentry_async import RateLimiter, SentryClient

TOKEN = "sntryu_" + "cd" * 32


@pytest.mark.parametrize("agent", [123, b"bytes-ua", "", "ua\r\nX-Injected: 1", "ua\n"])
def test_a_user_agent_that_is_not_one_header_value_is_refused(agent: Any) -> None:
    with pytest.raises((TypeError, ValueError), match="user_agent") as refused:
        SentryClient(TOKEN, user_agent=agent)
    assert TOKEN not in str(refused.value)


@pytest.mark.parametrize("count", [-1, 0, "10", True, 2.5, None])
def test_max_connections_must_be_a_positive_int(count: Any) -> None:
    with pytest.raises((TypeError, ValueError), match="max_connections"):
        SentryClient(TOKEN, max_connections=count)


def test_good_user_agent_and_max_connections_are_kept() -> None:
    client = SentryClient(TOKEN, user_agent="my-tool/1.0", max_connections=1)
    assert client._user_agent == "my-tool/1.0"
    assert client._max_connections == 1


@pytest.mark.parametrize(
    "options",
    [
        {"user_agent": 123},
        {"max_connections": "10"},
        {"base_url": "ftp://sentry.io"},
        {"timeout": "soon"},
        {"hooks": 5},
    ],
)
def test_a_refused_option_leaves_no_token_in_a_traceback_with_locals(
    options: dict[str, Any],
) -> None:
    """sentry-sdk, rich and ``pytest --showlocals`` print each frame's locals: the
    constructor's own frame must not hold the token when it refuses an option."""
    with pytest.raises((TypeError, ValueError)) as refused:
        SentryClient(TOKEN, **options)
    exception = traceback.TracebackException.from_exception(refused.value, capture_locals=True)
    assert TOKEN not in "".join(exception.format())


def test_a_refused_token_is_not_in_a_traceback_with_locals() -> None:
    with pytest.raises(ValueError, match="spaces") as refused:
        SentryClient(TOKEN + " x")
    exception = traceback.TracebackException.from_exception(refused.value, capture_locals=True)
    assert TOKEN not in "".join(exception.format())


@pytest.mark.parametrize("pacing", [{"rate": 1}, {"burst": 2}, {"max_concurrency": 1}])
def test_pacing_options_with_a_limiter_of_yours_are_refused(pacing: dict[str, Any]) -> None:
    """They shape the limiter this client creates; a shared one keeps its own."""
    (name,) = pacing
    with pytest.raises(ValueError, match=name):
        SentryClient(TOKEN, limiter=RateLimiter(), **pacing)


def test_a_limiter_of_yours_is_used_as_it_is() -> None:
    shared = RateLimiter(max_concurrency=3)
    assert SentryClient(TOKEN, limiter=shared).limiter is shared
    assert SentryClient(TOKEN, max_concurrency=25).limiter is not shared
