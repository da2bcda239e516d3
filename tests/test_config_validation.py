"""Client options refused at construction, each error naming the option: no network."""

from __future__ import annotations

import traceback
from typing import Any

import pytest

from sentry_async import Hooks, RateLimiter, SentryClient, Timeouts

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


def test_timeout_none_turns_every_bound_off() -> None:
    """As ``None`` does for one bound of ``Timeouts``."""
    client = SentryClient(TOKEN, timeout=None)
    assert client.timeouts == Timeouts(connect=None, read=None, total=None, pool=None)
    bounds = client.timeouts.to_aiohttp()
    assert (bounds.total, bounds.connect, bounds.sock_connect, bounds.sock_read) == (None,) * 4


@pytest.mark.parametrize("timeout", ["5", True, 0, -1, [5]])
def test_a_timeout_that_is_not_seconds_is_refused_by_name(timeout: Any) -> None:
    with pytest.raises((TypeError, ValueError), match="timeout"):
        SentryClient(TOKEN, timeout=timeout)


def test_trusted_hosts_as_one_string_is_refused_by_name() -> None:
    """A string would be read one character at a time."""
    with pytest.raises(TypeError, match="trusted_hosts"):
        SentryClient(TOKEN, trusted_hosts="https://eu.corp.example")


@pytest.mark.parametrize(
    "entry",
    [
        "eu.corp.example",
        "ftp://eu.corp.example",
        "https://exa mple.com",
        "",
        5,
        "http://eu.corp.example",
        "https://user:pw@eu.corp.example",
    ],
)
def test_a_bad_trusted_host_is_named_as_such(entry: Any) -> None:
    with pytest.raises((TypeError, ValueError), match="trusted_hosts") as refused:
        SentryClient(TOKEN, trusted_hosts=[entry])
    assert "base_url" not in str(refused.value)


class _Counting(Hooks):
    def on_done(self, event: object) -> None:
        pass


@pytest.mark.parametrize("hooks", [_Counting, [_Counting], 5, "hooks", object()])
def test_hooks_that_are_not_hooks_instances_are_refused_by_name(hooks: Any) -> None:
    with pytest.raises(TypeError, match="hooks") as refused:
        SentryClient(TOKEN, hooks=hooks)
    if hooks is _Counting or hooks == [_Counting]:
        assert "_Counting()" in str(refused.value)


def test_hooks_instances_are_taken_alone_or_in_a_list() -> None:
    SentryClient(TOKEN, hooks=_Counting())
    SentryClient(TOKEN, hooks=(_Counting(), _Counting()))
