"""The waits of a request sent through an HTTP proxy: its answer to ``CONNECT`` is bounded
by ``Timeouts.connect`` (what ``timeout=N`` sets), not by the whole wait for a connection
(``pool``, a minute by default), and every wait that runs out names the proxy, never its
credentials.

The proxy is on 127.0.0.1 and never answers; nothing is timed: what is checked is the
error, what the proxy saw, and that no secret was shown. An outer limit, far above every
bound a test sets and far below ``pool``'s default, is reached only if the bound is not
applied.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import pickle

import anyio
import pytest
from _proxies import TunnelProxy

from sentry_async import RequestTimeout, RetryPolicy, SentryClient, Timeouts, _transport
from sentry_async._deadlines import SHARED_DEADLINES

TOKEN = "tok-7a6b5c4d3e2f"
PROXY_USER = "alice"
PROXY_PASSWORD = "pr0xy-s3cret"
PROXY_KEY = "k3y-0f-th3-pr0xy"
"""A proxy credential held as the user name alone (``http://KEY:@proxy``)."""
TWO_TRIES = RetryPolicy(attempts=2, backoff_base=0.01, backoff_max=0.02)
REMOTE = "https://sentry.example.com"
"""Reached only through a tunnel that never opens: never resolved, never connected to."""

CREDENTIALS = {"password": f"{PROXY_USER}:{PROXY_PASSWORD}", "key": f"{PROXY_KEY}:"}
SECRETS = [
    TOKEN,
    PROXY_PASSWORD,
    PROXY_KEY,
    base64.b64encode(f"{PROXY_USER}:{PROXY_PASSWORD}".encode()).decode(),
    base64.b64encode(f"{PROXY_KEY}:".encode()).decode(),
]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"  # the transport is aiohttp's, and so asyncio's


def _with(credentials: str, url: str) -> str:
    return url.replace("http://", f"http://{credentials}@")


def _assert_no_secret(error: BaseException, log: str) -> None:
    shown = [str(error), repr(error), repr(pickle.dumps(error)), log]
    shown += [str(getattr(error, name, "")) for name in ("cause", "url", "reason")]
    for text in shown:
        for secret in SECRETS:
            assert secret not in text


@pytest.mark.parametrize("credentials", sorted(CREDENTIALS))
@pytest.mark.parametrize("shared", [True, False])
async def test_a_connect_the_proxy_never_answers_ends_at_the_connect_bound(
    shared: bool,
    credentials: str,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """``timeout=0.1``: the tunnel's set-up is bounded by its connect part, not by
    ``pool``; nothing reached Sentry, so a POST is sent again, and the error names the
    proxy without its credentials."""
    if shared and not SHARED_DEADLINES:
        pytest.skip("Python 3.10 keeps aiohttp's own timers")
    monkeypatch.setattr(_transport, "SHARED_DEADLINES", shared)
    caplog.set_level(logging.DEBUG, logger="sentry_async")
    async with (
        TunnelProxy("hang") as proxy,
        SentryClient(
            TOKEN,
            base_url=REMOTE,
            proxy=_with(CREDENTIALS[credentials], proxy.url),
            timeout=0.1,
            retry=TWO_TRIES,
        ) as client,
    ):
        with anyio.fail_after(20), pytest.raises(RequestTimeout) as caught:
            await client.request("POST", "/organizations/o/releases/", json={"version": "1"})
    error = caught.value
    assert error.maybe_sent is False
    assert error.status is None
    assert proxy.connects == 2
    assert "the proxy did not answer CONNECT within 0.1s (Timeouts.connect)" in str(error)
    assert f"(proxy {proxy.url})" in str(error)
    assert str(error).endswith("the request was not sent")
    assert "retrying POST" in caplog.text
    _assert_no_secret(error, caplog.text)


@pytest.mark.parametrize("shared", [True, False])
async def test_a_pool_wait_through_a_proxy_names_the_proxy(
    shared: bool, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """The one connection carries a request the proxy never answers; the next request
    waits for it until ``pool`` runs out, and the error says it waited for a connection
    through that proxy."""
    if shared and not SHARED_DEADLINES:
        pytest.skip("Python 3.10 keeps aiohttp's own timers")
    monkeypatch.setattr(_transport, "SHARED_DEADLINES", shared)
    caplog.set_level(logging.DEBUG, logger="sentry_async")
    timeouts = Timeouts(connect=5, read=30, total=30, pool=0.2)
    async with (
        TunnelProxy("hang") as proxy,
        SentryClient(
            TOKEN,
            base_url="http://127.0.0.1:9",  # plain http, forwarded by a loopback proxy
            proxy=_with(CREDENTIALS["password"], proxy.url),
            timeout=timeouts,
            retry=RetryPolicy(attempts=1),
            max_connections=1,
        ) as client,
    ):
        hog = asyncio.create_task(client.request("GET", "/held/"))
        try:
            with anyio.fail_after(20):
                await proxy.reached.wait()
                with pytest.raises(RequestTimeout) as caught:
                    await client.request("POST", "/things/", json={"a": 1})
        finally:
            hog.cancel()
    error = caught.value
    assert error.maybe_sent is False
    assert (
        f"no connection through the proxy {proxy.url} in time "
        "(Timeouts.pool 0.2s, Timeouts.connect 5s)"
    ) in str(error)
    assert proxy.heads == ["GET http://127.0.0.1:9/api/0/held/ HTTP/1.1"]
    _assert_no_secret(error, caplog.text)
