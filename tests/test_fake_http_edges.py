"""The fake server's HTTP edges: ``OPTIONS``, ``Allow`` and ``HEAD`` as Sentry answers them.

Sentry's ``Endpoint.dispatch`` (``api/base.py``) is wrapped in ``allow_cors_options``:

- an ``OPTIONS`` request never reaches ``dispatch``: before authentication, the scope check
  or any look-up it is a bare ``HttpResponse(status=200)`` (empty, Django's
  ``text/html; charset=utf-8``) with ``Access-Control-Max-Age: 3600``;
- every answer of the endpoint, that one and whatever ``dispatch`` returns (its 401, 403,
  405, 404 of a look-up, 400, 500 and 200), then goes through ``apply_cors_headers``:
  ``Allow`` and ``Access-Control-Allow-Methods`` list the view's ``_allowed_methods()``
  (Django's ``http_method_names`` order; ``HEAD`` wherever ``GET`` is, ``View.setup``;
  ``OPTIONS`` always, ``View.options``), ``Access-Control-Allow-Origin`` echoes the
  request's ``Origin`` (or its ``Referer``'s origin), ``*`` without one or for ``null``.

What no endpoint answers carries none of it: the rate limiter's 429 (a Django
middleware's, before the view) and a path no endpoint serves. ``HEAD`` is dispatched to
``get``, but no permission class lists it in its ``scope_map``: a token gets a 403 (no
body, as any answer to ``HEAD``).
"""

from __future__ import annotations

from typing import Any

import aiohttp
import anyio
import msgspec
import pytest
from multidict import CIMultiDictProxy
from test_fake_app_edges import _allow, _fill, _served

from sentry_async.testing import FakeSentry, RateLimitPolicy

ORG = "org-0"
ISSUES = f"/api/0/organizations/{ORG}/issues/"
TIMEOUT = 60
ORIGIN = "https://tool.example"
ALLOW_HEADERS = (
    "X-Sentry-Auth, X-Requested-With, Origin, Accept, Content-Type, Authentication, "
    "Authorization, Content-Encoding, sentry-trace, baggage, X-CSRFToken"
)
EXPOSE_HEADERS = (
    "X-Sentry-Error, X-Sentry-Direct-Hit, X-Hits, X-Max-Hits, Endpoint, Retry-After, Link"
)
CORS = (
    "Allow",
    "Access-Control-Allow-Methods",
    "Access-Control-Allow-Headers",
    "Access-Control-Expose-Headers",
    "Access-Control-Allow-Origin",
)

async def _send(
    server: FakeSentry,
    method: str,
    path: str,
    token: str | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, bytes, CIMultiDictProxy[str]]:
    """Status, raw body and headers of one plain request (``token=None``: none)."""
    sent = dict(headers or {})
    if token is not None:
        sent["Authorization"] = f"Bearer {token}"
    with anyio.fail_after(TIMEOUT):
        async with (
            aiohttp.ClientSession() as http,
            http.request(method, f"{server.url}{path}", headers=sent) as reply,
        ):
            raw = await reply.read()
    return reply.status, raw, reply.headers


def _assert_cors(headers: CIMultiDictProxy[str], allow: str, origin: str = ORIGIN) -> None:
    assert headers["Allow"] == allow
    assert headers["Access-Control-Allow-Methods"] == allow
    assert headers["Access-Control-Allow-Headers"] == ALLOW_HEADERS
    assert headers["Access-Control-Expose-Headers"] == EXPOSE_HEADERS
    assert headers["Access-Control-Allow-Origin"] == origin


async def test_a_preflight_on_every_served_path_is_answered_before_authentication(
    fake_sentry: FakeSentry,
) -> None:
    """No credentials, made-up ids: 200, empty, cached an hour, every route's methods."""
    preflight = {
        "Origin": ORIGIN,
        "Access-Control-Request-Method": "PUT",
        "Access-Control-Request-Headers": "authorization, content-type",
    }
    served = _served()
    for path in sorted(served):
        status, raw, headers = await _send(fake_sentry, "OPTIONS", _fill(path), None, preflight)
        assert (path, status, raw) == (path, 200, b"")
        assert headers["Content-Type"] == "text/html; charset=utf-8"
        assert headers["Access-Control-Max-Age"] == "3600"
        _assert_cors(headers, _allow(served[path]))
        assert "X-Sentry-Rate-Limit-Limit" not in headers
    statuses = {(r.method, r.status) for r in fake_sentry.requests}
    assert statuses == {("OPTIONS", 200)}
    assert len(fake_sentry.requests) == len(served)


@pytest.mark.parametrize(
    ("sent", "origin"),
    [
        ({}, "*"),
        ({"Origin": "null"}, "*"),
        ({"Origin": "http://localhost:8080"}, "http://localhost:8080"),
        ({"Referer": "https://tool.example:8443/page?x=1"}, "https://tool.example:8443"),
        ({"Origin": "null", "Referer": "http://a.example/b"}, "*"),
    ],
)
async def test_the_allowed_origin_is_the_requests_origin_or_any(
    fake_sentry: FakeSentry, sent: dict[str, str], origin: str
) -> None:
    """``apply_cors_headers``: the ``Origin``, else ``origin_from_request``'s ``Referer``;
    an explicit ``null`` Origin is left alone, and answered with ``*``."""
    for token in (None, fake_sentry.token):
        status, _, headers = await _send(fake_sentry, "OPTIONS", ISSUES, token, sent)
        assert status == 200
        assert headers["Access-Control-Allow-Origin"] == origin


async def _answers(fake_sentry: FakeSentry) -> dict[str, tuple[int, str, Any]]:
    """One answer of each kind a known route gives: label -> status, its Allow, body."""
    reader = fake_sentry.add_token("reader", scopes=["org:read"])
    org = f"/api/0/organizations/{ORG}/"
    cases: list[tuple[str, str, str, str | None]] = [
        ("ok", "GET", ISSUES, fake_sentry.token),
        ("no credentials", "GET", ISSUES, None),
        ("invalid token", "GET", ISSUES, "nope"),
        ("scope", "GET", ISSUES, reader),
        ("method", "POST", ISSUES, fake_sentry.token),
        ("head", "HEAD", org, fake_sentry.token),
        ("look-up", "GET", "/api/0/organizations/no-such-org/issues/", fake_sentry.token),
        ("bad query", "GET", f"{ISSUES}?statsPeriod=forever", fake_sentry.token),
    ]
    answers = {}
    for label, method, path, token in cases:
        status, raw, headers = await _send(fake_sentry, method, path, token, {"Origin": ORIGIN})
        _assert_cors(headers, headers.get("Allow", "<none>"))
        answers[label] = (status, headers["Allow"], msgspec.json.decode(raw) if raw else None)
    return answers


async def test_every_answer_of_a_known_route_says_its_methods(fake_sentry: FakeSentry) -> None:
    issues = "GET, PUT, DELETE, HEAD, OPTIONS"
    answers = await _answers(fake_sentry)
    assert {label: status for label, (status, _, _) in answers.items()} == {
        "ok": 200,
        "no credentials": 401,
        "invalid token": 401,
        "scope": 403,
        "method": 405,
        "head": 403,
        "look-up": 404,
        "bad query": 400,
    }
    assert {label: allow for label, (_, allow, _) in answers.items()} == {
        **dict.fromkeys(answers, issues),
        "head": "GET, HEAD, OPTIONS",
    }
    # HEAD, which no scope_map lists: refused as Sentry refuses it, without a body.
    assert answers["head"][2] is None


async def test_what_no_endpoint_answers_carries_no_allow(fake_sentry: FakeSentry) -> None:
    """The limiter's 429 and a path no endpoint serves (``OPTIONS`` included)."""
    for method in ("GET", "OPTIONS"):
        path = f"/api/0/organizations/{ORG}/nothing/"
        status, _, headers = await _send(
            fake_sentry, method, path, fake_sentry.token, {"Origin": ORIGIN}
        )
        assert (method, status) == (method, 404)
        assert not {name for name in CORS if name in headers}
    fake_sentry.rate_limits = RateLimitPolicy(limit=1, window=3600, concurrent_limit=None)
    statuses = []
    for _ in range(2):
        status, _, headers = await _send(
            fake_sentry, "GET", ISSUES, fake_sentry.token, {"Origin": ORIGIN}
        )
        statuses.append(status)
    assert statuses == [200, 429]
    assert not {name for name in CORS if name in headers}
