"""The fake server as a user's test kit: ``Fault`` options checked when the fault is made,
the request log's ``status`` for a request the client gave up on, and the
``Authorization`` header read as Sentry reads it.

Sentry's ``StandardAuthentication.authenticate`` (``src/sentry/api/authentication.py``)
splits the header on whitespace (``get_authorization_header(request).split()``), takes it
when the first word lower-cased is ``bearer`` (``UserAuthTokenAuthentication.token_name``),
and refuses one word alone ("Invalid token header. No credentials provided.") and more than
two ("Invalid token header. Token string should not contain spaces."). A header no bearer
authenticator takes leaves the request anonymous, which DRF refuses as it refuses no
header at all.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import aiohttp
import anyio
import pytest

from sentry_async.testing import FakeSentry, Fault

ORG = "org-0"
ORG_PATH = f"/api/0/organizations/{ORG}/"
TOKEN = "sntrys_testkit10-secret"
NOT_PROVIDED = {"detail": "Authentication credentials were not provided."}


# -- Fault options --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "named"),
    [
        ({"kind": "status", "status": 99}, "status"),
        ({"kind": "status", "status": 700}, "status"),
        ({"kind": "status", "status": 1000}, "status"),
        ({"kind": "status", "status": True}, "status"),
        ({"kind": "slow", "delay": -1}, "delay"),
        ({"kind": "slow", "delay": float("nan")}, "delay"),
        ({"kind": "status", "times": -1}, "times"),
        ({"kind": "status", "times": 0}, "times"),
        ({"kind": "status", "after": -3}, "after"),
        ({"kind": "status", "after": 1.5}, "after"),
        ({"kind": "status", "probability": 1.5}, "probability"),
        ({"kind": "status", "probability": -0.1}, "probability"),
        ({"kind": "truncated_json", "fraction": 2.0}, "fraction"),
        ({"kind": "truncated_json", "fraction": 1.0}, "fraction"),
        ({"kind": "drop_mid_body", "fraction": -1}, "fraction"),
        ({"kind": "short_pages", "serve": -2}, "serve"),
        ({"kind": "status", "method": 7}, "method"),
        ({"kind": "status", "method": ""}, "method"),
        ({"kind": "status", "method": "GET /"}, "method"),
        ({"kind": "status", "path": "("}, "path"),
        ({"kind": "status", "path": 5}, "path"),
        ({"kind": "status", "query": "[a"}, "query"),
        ({"kind": "status", "body": object()}, "body"),
        ({"kind": "status", "content_type": 5}, "content_type"),
        ({"kind": "status", "content_type": "text/html\r\nX-Evil: 1"}, "content_type"),
        ({"kind": "rate_limit", "retry_after": -5}, "retry_after"),
        ({"kind": "rate_limit", "retry_after": "Tue,\n1"}, "retry_after"),
        ({"kind": "rate_limit", "retry_after": True}, "retry_after"),
        ({"kind": "rate_limit", "reset_in": "soon"}, "reset_in"),
        ({"kind": "rate_limit", "reset_in": float("inf")}, "reset_in"),
        ({"kind": "redirect", "location": 5}, "location"),
        ({"kind": "redirect", "location": "/a\nb"}, "location"),
    ],
)
def test_a_fault_option_out_of_its_range_is_a_value_error_naming_it(
    options: dict[str, Any], named: str
) -> None:
    with pytest.raises(ValueError, match=rf"^{named} "):
        Fault(**options)


@pytest.mark.parametrize(
    "options",
    [
        {"kind": "status", "status": 200, "body": b"x", "content_type": "text/plain"},
        {"kind": "status", "status": 599, "times": None, "after": 0, "probability": 0},
        {"kind": "status", "probability": 1, "method": "get", "path": "", "query": "a=b"},
        {"kind": "slow", "delay": 0},
        {"kind": "short_pages", "serve": 0},
        {"kind": "truncated_json", "fraction": 0},
        {"kind": "drop_mid_body", "fraction": 0.99},
        {"kind": "rate_limit", "retry_after": "Wed, 21 Oct 2015 07:28:00 GMT", "reset_in": -5},
        {"kind": "rate_limit", "retry_after": 0.05, "reset_in": None},
        {"kind": "redirect", "location": "https://elsewhere.example/x"},
    ],
)
def test_fault_options_in_their_ranges_are_accepted(options: dict[str, Any]) -> None:
    assert Fault(**options).kind == options["kind"]


# -- the status of a request the client gave up on ------------------------------------------


async def _until(done: Callable[[], bool]) -> None:
    """Polls ``done()`` until it holds; ``AssertionError`` after 10 s (bounded)."""
    for _ in range(10_000):
        if done():
            return
        await anyio.sleep(0.001)
    raise AssertionError("the server never got there")


async def _abandon(server: FakeSentry, raw: bytes) -> int | None:
    """Sends ``raw``, closes the connection once the server has recorded the request, and
    returns the status the log then holds for it, once the server is done with it."""
    with anyio.fail_after(20):
        _, writer = await asyncio.open_connection(server.host, server.port)
        writer.write(raw)
        await writer.drain()
        await _until(lambda: bool(server.requests))
        writer.close()
        await writer.wait_closed()
        record = server.requests[0]
        await _until(lambda: record.finished is not None)
    return record.status


@pytest.mark.parametrize("cut", ["slow", "body"])
async def test_a_request_the_client_gave_up_on_is_recorded_without_a_status(
    fake_sentry_factory: Any, cut: str
) -> None:
    """The client closed the connection before any answer: the handler still ran to its
    end (aiohttp does not cancel it), but no status was sent, so none is recorded."""
    server: FakeSentry = await fake_sentry_factory(orgs=1, projects=1, issues=1, token=TOKEN)
    if cut == "slow":
        server.faults.add(Fault("slow", delay=1.0, path=f"^{ORG_PATH}$"))  # room for the close
        raw = f"GET {ORG_PATH} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\n\r\n"
    else:
        # A body announced but cut short: the handler's read fails once the client is gone.
        issue = server.data.issue_ids(ORG)[0]
        raw = (
            f"PUT {ORG_PATH}issues/?id={issue} HTTP/1.1\r\nHost: x\r\n"
            f"Authorization: Bearer {TOKEN}"
            '\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"status":'
        )
    assert await _abandon(server, raw.encode()) is None


# -- the Authorization header ---------------------------------------------------------------


async def _get(server: FakeSentry, authorization: str) -> tuple[int, Any]:
    with anyio.fail_after(10):
        async with (
            aiohttp.ClientSession() as http,
            http.get(f"{server.url}{ORG_PATH}", headers={"Authorization": authorization}) as reply,
        ):
            return reply.status, await reply.json(content_type=None)


@pytest.mark.parametrize(
    "spelling",
    ["Bearer {}", "bearer {}", "BEARER {}", "Bearer  {}", "Bearer\t{}", " Bearer {} "],
)
async def test_a_bearer_token_is_read_as_sentry_reads_it(
    fake_sentry_factory: Any, spelling: str
) -> None:
    server: FakeSentry = await fake_sentry_factory(orgs=1, projects=1, issues=1, token=TOKEN)
    status, _ = await _get(server, spelling.format(TOKEN))
    (record,) = server.requests
    assert status == 200
    assert record.authenticated and record.sent_token(TOKEN)
    assert TOKEN not in repr(record)


@pytest.mark.parametrize(
    ("authorization", "answer"),
    [
        ("Bearer", {"detail": "Invalid token header. No credentials provided."}),
        ("bearer   ", {"detail": "Invalid token header. No credentials provided."}),
        (
            f"Bearer {TOKEN} extra",
            {"detail": "Invalid token header. Token string should not contain spaces."},
        ),
        (f"Token {TOKEN}", NOT_PROVIDED),
        (TOKEN, NOT_PROVIDED),
        ("", NOT_PROVIDED),
        (f"Bearer {TOKEN}x", {"detail": "Invalid token"}),
    ],
)
async def test_a_header_sentry_refuses_gets_sentrys_401(
    fake_sentry_factory: Any, authorization: str, answer: dict[str, str]
) -> None:
    server: FakeSentry = await fake_sentry_factory(orgs=1, projects=1, issues=1, token=TOKEN)
    assert await _get(server, authorization) == (401, answer)
    (record,) = server.requests
    assert not record.authenticated and not record.sent_token(TOKEN)
    assert TOKEN not in repr(record)


@pytest.mark.parametrize("token", ["abc def", "abc\tdef", " abc", "abc\n"])
def test_a_server_token_with_whitespace_is_refused(token: str) -> None:
    """Sentry splits the header on whitespace: such a token could never authenticate."""
    with pytest.raises(ValueError, match=r"^token must be a non-empty string without spaces"):
        FakeSentry(token=token)
