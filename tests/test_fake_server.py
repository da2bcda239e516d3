"""The fake server speaks Sentry's wire protocol: checked with plain aiohttp, no client.

Link headers, hit counts, rate-limit headers and 429s, auth errors, each scripted fault,
determinism of the data, and the ``legacy_links``/``link_host`` options.
"""

from __future__ import annotations

import asyncio
import re
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

import aiohttp
import anyio
import msgspec
import pytest
from multidict import CIMultiDictProxy

from sentry_async.testing import (
    SCALES,
    Dataset,
    FakeSentry,
    Fault,
    RateLimitPolicy,
)
from sentry_async.testing import __main__ as testing_main
from sentry_async.testing._data import DEFAULT_PRIORITIES
from sentry_async.testing.pytest_plugin import FIXED_NOW

Factory = Callable[..., Awaitable[FakeSentry]]

ORG = "org-0"
PROJECT = "project-0-0"
EVENTS = f"/api/0/projects/{ORG}/{PROJECT}/events/"
ISSUES = f"/api/0/organizations/{ORG}/issues/"
RATE_HEADERS = (
    "X-Sentry-Rate-Limit-Limit",
    "X-Sentry-Rate-Limit-Remaining",
    "X-Sentry-Rate-Limit-Reset",
    "X-Sentry-Rate-Limit-ConcurrentLimit",
    "X-Sentry-Rate-Limit-ConcurrentRemaining",
)


@dataclass
class Reply:
    status: int
    headers: CIMultiDictProxy[str]
    body: bytes

    def json(self) -> Any:
        return msgspec.json.decode(self.body)


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session:
        # aiohttp silently resends a GET once when the server drops the connection, which
        # would hide the ``drop`` fault; its own test client turns this off the same way.
        if hasattr(session, "_retry_connection"):
            session._retry_connection = False
        yield session


async def fetch(
    http: aiohttp.ClientSession,
    server: FakeSentry,
    path: str,
    params: Any = None,
    *,
    method: str = "GET",
    token: str | None = "",
    redirects: bool = False,
) -> Reply:
    """One request; ``token=""`` sends the server's token, ``None`` sends no header."""
    headers = {}
    if token is not None:
        headers["Authorization"] = f"Bearer {token or server.token}"
    with anyio.fail_after(10):
        async with http.request(
            method,
            server.url + path,
            params=params,
            headers=headers,
            allow_redirects=redirects,
        ) as response:
            return Reply(response.status, response.headers, await response.read())


def _ids(reply: Reply) -> list[str]:
    return [row["id"] for row in reply.json()]


# -- pagination -----------------------------------------------------------------------------


async def test_link_header_is_sentrys_exact_format(
    fake_sentry: FakeSentry, http: aiohttp.ClientSession
) -> None:
    assert len(fake_sentry.data.event_ids(ORG, PROJECT)) > 100
    reply = await fetch(http, fake_sentry, EVENTS)
    url = f"{fake_sentry.url}{EVENTS}"
    assert reply.headers["Link"] == (
        f'<{url}?&cursor=0:0:1>; rel="previous"; results="false"; cursor="0:0:1", '
        f'<{url}?&cursor=0:100:0>; rel="next"; results="true"; cursor="0:100:0"'
    )
    assert len(reply.json()) == 100


async def test_following_next_links_reaches_a_final_page(
    fake_sentry: FakeSentry, http: aiohttp.ClientSession
) -> None:
    expected = fake_sentry.data.event_ids(ORG, PROJECT, include_transactions=False)
    seen: list[str] = []
    cursor: str | None = None
    links: list[str] = []
    for _ in range(20):
        params = {"per_page": "60", **({"cursor": cursor} if cursor else {})}
        reply = await fetch(http, fake_sentry, EVENTS, params)
        seen.extend(_ids(reply))
        links.append(reply.headers["Link"])
        match = re.search(r'rel="next"; results="(true|false)"; cursor="([^"]+)"', links[-1])
        assert match is not None
        if match.group(1) == "false":
            break
        cursor = match.group(2)
    assert seen == expected
    assert len(links) == -(-len(expected) // 60)
    last = 60 * (len(links) - 1)
    url = f"{fake_sentry.url}{EVENTS}?per_page=60"
    # Other parameters come before the cursor; the cursor goes in raw, twice.
    assert links[-1] == (
        f'<{url}&cursor=0:{last - 60}:1>; rel="previous"; results="true"; '
        f'cursor="0:{last - 60}:1", '
        f'<{url}&cursor=0:{last + 60}:0>; rel="next"; results="false"; cursor="0:{last + 60}:0"'
    )


async def test_link_reencodes_other_parameters_as_sentry_does(
    fake_sentry: FakeSentry, http: aiohttp.ClientSession
) -> None:
    record = fake_sentry.data.org(ORG)
    assert record is not None
    one, two = (p.id for p in record.projects[:2])
    issues = await fetch(
        http,
        fake_sentry,
        ISSUES,
        [("query", "is:unresolved Key"), ("project", one), ("limit", "2"), ("project", two)],
    )
    # QueryDict.urlencode(): keys grouped, quote_plus.
    assert (
        f"{ISSUES}?query=is%3Aunresolved+Key&project={one}&project={two}&limit=2&cursor="
        in (issues.headers["Link"])
    )
    discover = await fetch(
        http,
        fake_sentry,
        f"/api/0/organizations/{ORG}/events/",
        [("field", "title"), ("query", "level:error a/b"), ("field", "count()")],
    )
    # Discover's own builder: urlquote(k)=urlquote(v), so %20 and a literal "/".
    assert (
        "?field=title&field=count%28%29&query=level%3Aerror%20a/b&cursor="
        in (discover.headers["Link"])
    )


async def test_projects_use_page_number_cursors(
    fake_sentry: FakeSentry, http: aiohttp.ClientSession
) -> None:
    path = f"/api/0/organizations/{ORG}/projects/"
    first = await fetch(http, fake_sentry, path, {"per_page": "2"})
    second = await fetch(http, fake_sentry, path, {"per_page": "2", "cursor": "2:1:0"})
    assert 'cursor="2:-1:1"' in first.headers["Link"]
    assert 'rel="next"; results="true"; cursor="2:1:0"' in first.headers["Link"]
    assert 'rel="previous"; results="true"; cursor="2:0:1"' in second.headers["Link"]
    slugs = [row["slug"] for row in first.json() + second.json()]
    assert sorted(slugs) == sorted(fake_sentry.data.project_slugs(ORG))
    assert 'rel="next"; results="false"' in second.headers["Link"]


async def test_projects_refuse_a_negative_page_as_sentry_does(
    fake_sentry: FakeSentry, http: aiohttp.ClientSession
) -> None:
    # OffsetPaginator.get_result: the row offset is page x size; below 0 it raises
    # BadPaginationError, which Endpoint.paginate turns into a 400 with its text. A size of
    # 0 makes any page offset 0, the first page.
    path = f"/api/0/organizations/{ORG}/projects/"
    negative = await fetch(http, fake_sentry, path, {"per_page": "2", "cursor": "2:-1:1"})
    zero = await fetch(http, fake_sentry, path, {"per_page": "2", "cursor": "0:-1:1"})
    first = await fetch(http, fake_sentry, path, {"per_page": "2"})
    assert (negative.status, negative.json()) == (
        400,
        {"detail": "Pagination offset cannot be negative"},
    )
    assert zero.status == 200 and _slugs(zero) == _slugs(first)


def _slugs(reply: Reply) -> list[str]:
    return [row["slug"] for row in reply.json()]


async def test_organizations_use_datetime_cursors(
    fake_sentry_factory: Any, http: aiohttp.ClientSession
) -> None:
    # OrganizationIndexEndpoint pages -date_added with DateTimePaginator: a cursor value is
    # a row's date in ms (ceil for next, floor for prev), its offset the rows sharing that
    # value already served (build_cursor's _build_next_values / _build_prev_values).
    server = await fake_sentry_factory(orgs=0)
    second = 1_780_000_000
    created = [second + 0.0004, second - 1, second - 1, second - 1, second - 2]
    for n, ts in enumerate(created):
        record = server.builder.add_organization(f"o{n}").record
        record.created = datetime.fromtimestamp(ts, timezone.utc)
    ms = second * 1000
    pages = []
    cursor = None
    for _ in range(4):
        params = {"per_page": "2", **({"cursor": cursor} if cursor else {})}
        reply = await fetch(http, server, "/api/0/organizations/", params)
        assert reply.status == 200
        links = re.findall(r'rel="(\w+)"; results="(\w+)"; cursor="([^"]*)"', reply.headers["Link"])
        pages.append((_slugs(reply), links))
        cursor = links[1][2] if links[1][1] == "true" else None
        if cursor is None:
            break
    assert pages == [
        (
            ["o0", "o1"],
            [("previous", "false", f"{ms}:0:1"), ("next", "true", f"{ms - 1000}:1:0")],
        ),
        (
            ["o2", "o3"],
            [("previous", "true", f"{ms - 1000}:0:1"), ("next", "true", f"{ms - 2000}:0:0")],
        ),
        (
            ["o4"],
            [("previous", "true", f"{ms - 2000}:0:1"), ("next", "false", f"{ms - 2000}:2:0")],
        ),
    ]


async def test_a_projects_first_event_is_its_oldest(
    fake_sentry: FakeSentry, http: aiohttp.ClientSession
) -> None:
    path = f"/api/0/organizations/{ORG}/projects/"
    rows = (await fetch(http, fake_sentry, path, {"per_page": "100"})).json()
    assert rows
    for row in rows:
        org = fake_sentry.data.org(ORG)
        assert org is not None
        project = fake_sentry.data.project(org, row["slug"])
        assert project is not None
        oldest = min((e.timestamp for e in project.events), default=None)
        if oldest is None:
            assert row["firstEvent"] is None
        else:
            first = msgspec.json.decode(msgspec.json.encode(row["firstEvent"]), type=datetime)
            assert first.timestamp() == pytest.approx(oldest, abs=1e-3)


async def test_unpaginated_endpoints_send_no_link(
    fake_sentry: FakeSentry, http: aiohttp.ClientSession
) -> None:
    issue_id = fake_sentry.data.issue_ids(ORG)[0]
    for path, params in [
        (f"/api/0/organizations/{ORG}/", None),
        (f"{ISSUES}{issue_id}/", None),
        (f"/api/0/organizations/{ORG}/events-stats/", {"statsPeriod": "1d"}),
        (f"/api/0/projects/{ORG}/{PROJECT}/", None),
    ]:
        reply = await fetch(http, fake_sentry, path, params)
        assert reply.status == 200, path
        assert "Link" not in reply.headers, path
        assert "X-Hits" not in reply.headers, path


async def test_issue_list_reports_hits(
    fake_sentry: FakeSentry, http: aiohttp.ClientSession
) -> None:
    # Sentry's default query: unresolved issues of high or medium priority.
    unresolved = fake_sentry.data.issue_ids(ORG, status="unresolved", priority=DEFAULT_PRIORITIES)
    reply = await fetch(http, fake_sentry, ISSUES, {"limit": "5"})
    assert reply.headers["X-Hits"] == str(len(unresolved))
    assert reply.headers["X-Max-Hits"] == "1000"
    assert len(reply.json()) == 5
    everything = await fetch(http, fake_sentry, ISSUES, {"query": "", "limit": "5"})
    assert everything.headers["X-Hits"] == str(len(fake_sentry.data.issue_ids(ORG)))
    events = await fetch(http, fake_sentry, EVENTS)
    assert "X-Hits" not in events.headers


async def test_bad_page_size_and_cursor_are_400(
    fake_sentry: FakeSentry, http: aiohttp.ClientSession
) -> None:
    for params, detail in [
        ({"per_page": "101"}, "Invalid per_page value. Cannot exceed 100."),
        ({"per_page": "0"}, "Invalid per_page value. Must be between 1 and 100."),
        ({"per_page": "ten"}, "Invalid per_page parameter."),
        ({"cursor": "0:10"}, "Invalid cursor parameter."),
    ]:
        reply = await fetch(http, fake_sentry, EVENTS, params)
        assert (reply.status, reply.json()) == (400, {"detail": detail}), params


# -- auth and rate limits -------------------------------------------------------------------


async def test_missing_or_wrong_token_is_401(
    fake_sentry: FakeSentry, http: aiohttp.ClientSession
) -> None:
    missing = await fetch(http, fake_sentry, ISSUES, token=None)
    wrong = await fetch(http, fake_sentry, ISSUES, token="nope")
    assert missing.status == wrong.status == 401
    assert missing.json() == {"detail": "Authentication credentials were not provided."}
    assert wrong.json() == {"detail": "Invalid token"}
    assert missing.headers["Content-Type"].startswith("application/json")


async def _in_one_window(
    http: aiohttp.ClientSession, server: FakeSentry, policy: RateLimitPolicy, count: int
) -> list[Reply]:
    """``count`` issue-list requests inside one fixed window of ``policy``.

    A run that straddles a window boundary (possible once per window length) is repeated
    with fresh counters, so the expected countdown does not depend on the clock.
    """
    for _ in range(2):
        server.rate_limits = policy
        replies = [await fetch(http, server, ISSUES, {"limit": "1"}) for _ in range(count)]
        if len({reply.headers["X-Sentry-Rate-Limit-Reset"] for reply in replies}) == 1:
            return replies
    raise AssertionError("two runs in a row straddled a window boundary")


async def test_rate_limit_headers_count_down_then_429(
    fake_sentry_factory: Factory, http: aiohttp.ClientSession
) -> None:
    server = await fake_sentry_factory()
    policy = RateLimitPolicy(limit=3, window=3600, concurrent_limit=5)
    replies = await _in_one_window(http, server, policy, 4)
    assert [r.status for r in replies] == [200, 200, 200, 429]
    for reply in replies:
        assert all(name in reply.headers for name in RATE_HEADERS)
        assert reply.headers["X-Sentry-Rate-Limit-Limit"] == "3"
        assert reply.headers["X-Sentry-Rate-Limit-ConcurrentLimit"] == "5"
        assert int(reply.headers["X-Sentry-Rate-Limit-ConcurrentRemaining"]) in range(6)
    assert [r.headers["X-Sentry-Rate-Limit-Remaining"] for r in replies] == ["2", "1", "0", "0"]
    reset = int(replies[0].headers["X-Sentry-Rate-Limit-Reset"])
    assert reset % 3600 == 0 and 0 < reset - time.time() <= 3600, "start of the next window"
    limited = replies[-1]
    assert limited.headers["Content-Type"].startswith("text/html"), "Django's default type"
    assert limited.json() == {
        "detail": "You are attempting to use this endpoint too frequently. "
        "Limit is 3 requests in 3600 seconds"
    }
    assert "Retry-After" not in limited.headers, "Sentry's API 429 has no Retry-After"
    # Windows are per endpoint group: another endpoint is not limited.
    assert (await fetch(http, server, EVENTS)).status == 200


async def test_endpoints_without_limits_of_their_own_share_one_window_per_method(
    fake_sentry_factory: Factory, http: aiohttp.ClientSession
) -> None:
    """As Sentry's ``get_rate_limit_key``: the organization, its projects and its issues
    declare no ``rate_limits`` and count in one ``GET`` window; the project's events
    (``ProjectEventsEndpoint``) keep their own."""
    server = await fake_sentry_factory()
    server.rate_limits = RateLimitPolicy(limit=4, window=3600, concurrent_limit=None)
    shared = [f"/api/0/organizations/{ORG}/", f"/api/0/organizations/{ORG}/projects/", ISSUES]
    replies = [await fetch(http, server, path) for path in shared * 2]
    if len({reply.headers["X-Sentry-Rate-Limit-Reset"] for reply in replies}) > 1:
        pytest.skip("the requests straddled an hour's boundary")
    assert [r.status for r in replies] == [200, 200, 200, 200, 429, 429]
    assert [r.headers["X-Sentry-Rate-Limit-Remaining"] for r in replies[:4]] == [
        "3",
        "2",
        "1",
        "0",
    ]
    assert (await fetch(http, server, EVENTS)).status == 200


async def test_a_concurrency_429_counts_in_the_window_and_announces_what_is_left(
    fake_sentry_factory: Factory, http: aiohttp.ClientSession
) -> None:
    """Sentry's ``above_rate_limit_check`` counts the request in the fixed window before the
    concurrent check, and a concurrency 429 announces ``limit - current``, not a spent window."""
    server = await fake_sentry_factory()
    server.rate_limits = RateLimitPolicy(limit=40, window=3600, concurrent_limit=1)
    server.faults.add(Fault("slow", delay=0.3))
    path = f"/api/0/organizations/{ORG}/"
    with anyio.fail_after(10):
        replies = await asyncio.gather(*(fetch(http, server, path) for _ in range(3)))
    if len({reply.headers["X-Sentry-Rate-Limit-Reset"] for reply in replies}) > 1:
        pytest.skip("the requests straddled an hour's boundary")
    refused = [r for r in replies if r.status == 429]
    assert refused, "two of three requests at once go above a concurrent limit of 1"
    assert all("concurrency" in r.json()["detail"] for r in refused)
    remaining = sorted(r.headers["X-Sentry-Rate-Limit-Remaining"] for r in replies)
    assert remaining == ["37", "38", "39"], "each request counted once, refused or not"


async def test_rate_limit_policy_variants(
    fake_sentry_factory: Factory, http: aiohttp.ClientSession
) -> None:
    server = await fake_sentry_factory()
    policy = RateLimitPolicy(limit=1, window=3600, concurrent_limit=None, retry_after=True)
    ok, limited = await _in_one_window(http, server, policy, 2)
    assert (ok.status, limited.status) == (200, 429)
    assert 1 <= int(limited.headers["Retry-After"]) <= 3600
    for reply in (ok, limited):
        assert "X-Sentry-Rate-Limit-ConcurrentLimit" not in reply.headers
        assert "X-Sentry-Rate-Limit-Limit" in reply.headers
    server.rate_limits = RateLimitPolicy(limit=1, window=3600, enforce=False)
    replies = [await fetch(http, server, ISSUES) for _ in range(3)]
    assert [r.status for r in replies] == [200, 200, 200], "enforce=False only sends headers"
    assert all(r.headers["X-Sentry-Rate-Limit-Limit"] == "1" for r in replies)


@pytest.mark.parametrize(
    "key",
    [
        "GET /organizations/{org}/issues/",  # as HookEvent.group names it
        "GET /api/0/organizations/{org}/issues/",
        "get /organizations/{organization_id_or_slug}/issues/",
    ],
)
async def test_per_group_limits_take_the_clients_group_names(
    fake_sentry_factory: Factory, http: aiohttp.ClientSession, key: str
) -> None:
    server = await fake_sentry_factory()
    policy = RateLimitPolicy(limit=100, window=3600, per_group={key: (2, 3600.0, None)})
    replies = await _in_one_window(http, server, policy, 3)
    assert [r.status for r in replies] == [200, 200, 429]
    assert replies[0].headers["X-Sentry-Rate-Limit-Limit"] == "2"
    other = await fetch(http, server, EVENTS)
    assert other.headers["X-Sentry-Rate-Limit-Limit"] == "100"


def test_per_group_keys_that_name_no_route_are_refused() -> None:
    with pytest.raises(ValueError, match=r"per_group.*'GET /organisations/\{org\}/'"):
        RateLimitPolicy(per_group={"GET /organisations/{org}/": (1, 1.0, None)})
    with pytest.raises(ValueError, match=r"per_group.*'/organizations/\{org\}/'"):
        RateLimitPolicy(per_group={"/organizations/{org}/": (1, 1.0, None)})


async def test_the_command_line_announces_the_rate_limit_it_is_given(
    http: aiohttp.ClientSession,
) -> None:
    """``--rate-limit N`` announces N requests a second for each endpoint and counts them
    down, without refusing any; a benchmark sets it high so the announcement never binds."""
    args = testing_main.parser().parse_args(["--scale", "small", "--rate-limit", "50000"])
    server = testing_main.build(args)
    async with server:
        policy = server.rate_limits
        assert policy is not None and not policy.enforce
        replies = await _in_one_window(http, server, policy, 3)
    assert [r.status for r in replies] == [200, 200, 200]
    assert {r.headers["X-Sentry-Rate-Limit-Limit"] for r in replies} == {"50000"}
    left = [int(r.headers["X-Sentry-Rate-Limit-Remaining"]) for r in replies]
    assert left == [left[0], left[0] - 1, left[0] - 2] and left[0] < 50000


async def test_the_command_line_can_enforce_the_rate_limit(http: aiohttp.ClientSession) -> None:
    args = testing_main.parser().parse_args(
        ["--scale", "small", "--rate-limit", "2", "--enforce-rate-limit"]
    )
    async with testing_main.build(args) as server:
        statuses = [(await fetch(http, server, ISSUES, {"limit": "1"})).status for _ in range(6)]
    # Six requests span at most two one-second windows of two requests each.
    assert statuses[0] == 200 and 429 in statuses


def test_the_command_line_refuses_a_rate_limit_below_one() -> None:
    with pytest.raises(SystemExit):
        testing_main.parser().parse_args(["--rate-limit", "0"])


async def test_the_command_line_keeps_no_request_log(http: aiohttp.ClientSession) -> None:
    """Nothing outside the process can read the log of a command-line fake: it keeps none,
    so a long load run does not grow its memory with every request."""
    args = testing_main.parser().parse_args(["--scale", "small"])
    async with testing_main.build(args) as server:
        statuses = [(await fetch(http, server, ISSUES, {"limit": "1"})).status for _ in range(3)]
        assert statuses == [200, 200, 200]
        assert list(server.requests) == []


@pytest.mark.parametrize("option", ["--projects", "--issues"])
def test_the_command_line_refuses_a_negative_count(
    option: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        testing_main.main([option, "-1"])
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert f"{option.lstrip('-')} must be an integer >= 0, got -1" in err
    assert "Traceback" not in err


def test_the_command_line_reports_a_busy_port_in_one_line(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(SystemExit) as exited:
            testing_main.main(["--scale", "small", "--port", str(port)])
    assert exited.value.code not in (0, None)
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and str(port) in err
    assert "Traceback" not in err


# -- faults ---------------------------------------------------------------------------------


async def test_status_fault_fires_its_count_then_is_spent(
    fake_sentry: FakeSentry, http: aiohttp.ClientSession
) -> None:
    fault = fake_sentry.faults.add(Fault("status", path="/issues/$", status=503, times=2))
    statuses = [(await fetch(http, fake_sentry, ISSUES)).status for _ in range(3)]
    assert statuses == [503, 503, 200]
    assert fault.spent and fault.fired == 2
    other = await fetch(http, fake_sentry, EVENTS)
    assert other.status == 200, "the path regex limits the fault"


async def test_status_fault_body_after_and_method(
    fake_sentry: FakeSentry, http: aiohttp.ClientSession
) -> None:
    fake_sentry.faults.add(Fault("status", path="/issues/$", status=500, after=1))
    fake_sentry.faults.add(
        Fault("status", method="PUT", status=409, body="conflict", content_type="text/plain")
    )
    assert (await fetch(http, fake_sentry, ISSUES)).status == 200, "after=1 lets one through"
    failed = await fetch(http, fake_sentry, ISSUES)
    assert failed.status == 500
    body = failed.json()
    assert body["detail"] == "Internal Error" and len(body["errorId"]) == 32
    put = await fetch(http, fake_sentry, ISSUES, {"id": "1"}, method="PUT")
    assert (put.status, put.body) == (409, b"conflict")
    assert put.headers["Content-Type"] == "text/plain"


async def test_rate_limit_fault_with_and_without_retry_after(
    fake_sentry: FakeSentry, http: aiohttp.ClientSession
) -> None:
    fake_sentry.faults.add(Fault("rate_limit", retry_after=7, reset_in=30))
    fake_sentry.faults.add(Fault("rate_limit", reset_in=None))
    with_retry = await fetch(http, fake_sentry, ISSUES)
    bare = await fetch(http, fake_sentry, ISSUES)
    assert (with_retry.status, bare.status) == (429, 429)
    assert with_retry.headers["Retry-After"] == "7"
    assert with_retry.headers["X-Sentry-Rate-Limit-Remaining"] == "0"
    reset = int(with_retry.headers["X-Sentry-Rate-Limit-Reset"])
    assert 0 < reset - time.time() <= 31
    assert with_retry.headers["Content-Type"].startswith("text/html")
    assert "too frequently" in with_retry.json()["detail"]
    assert "Retry-After" not in bare.headers
    assert "X-Sentry-Rate-Limit-Reset" not in bare.headers
    assert (await fetch(http, fake_sentry, ISSUES)).status == 200


async def test_drop_closes_the_connection_without_an_answer(
    fake_sentry: FakeSentry, http: aiohttp.ClientSession
) -> None:
    fault = fake_sentry.faults.add(Fault("drop"))
    with pytest.raises(aiohttp.ClientError):
        await fetch(http, fake_sentry, ISSUES)
    assert fault.spent
    assert fake_sentry.requests[0].status is None, "no answer was sent"
    assert (await fetch(http, fake_sentry, ISSUES)).status == 200


async def test_drop_mid_body_sends_part_of_the_promised_length(
    fake_sentry: FakeSentry, http: aiohttp.ClientSession
) -> None:
    fake_sentry.faults.add(Fault("drop_mid_body", path="/events/$"))
    promised, received, error = await _read_until_cut(http, fake_sentry, EVENTS)
    assert isinstance(error, aiohttp.ClientPayloadError)
    assert 0 < received < promised
    full = await fetch(http, fake_sentry, EVENTS)
    assert full.status == 200 and len(full.body) == promised


async def _read_until_cut(
    http: aiohttp.ClientSession, server: FakeSentry, path: str
) -> tuple[int, int, Exception | None]:
    """Stream a 200 answer: (Content-Length, bytes received, the error that ended it)."""
    received = 0
    headers = {"Authorization": f"Bearer {server.token}"}
    with anyio.fail_after(10):
        async with http.get(server.url + path, headers=headers) as response:
            assert response.status == 200
            promised = int(response.headers["Content-Length"])
            try:
                async for chunk in response.content.iter_any():
                    received += len(chunk)
            except aiohttp.ClientError as exc:
                return promised, received, exc
    return promised, received, None


async def test_truncated_json_is_a_valid_http_answer_with_half_a_body(
    fake_sentry: FakeSentry, http: aiohttp.ClientSession
) -> None:
    fake_sentry.faults.add(Fault("truncated_json", fraction=0.25))
    cut = await fetch(http, fake_sentry, EVENTS)
    whole = await fetch(http, fake_sentry, EVENTS)
    assert cut.status == 200
    assert cut.body == whole.body[: int(len(whole.body) * 0.25)]
    with pytest.raises(msgspec.DecodeError):
        cut.json()


async def test_slow_fault_delays_the_answer(
    fake_sentry: FakeSentry, http: aiohttp.ClientSession
) -> None:
    fake_sentry.faults.add(Fault("slow", delay=0.3))
    started = time.monotonic()
    slow = await fetch(http, fake_sentry, ISSUES)
    assert slow.status == 200
    assert time.monotonic() - started >= 0.25
    record = fake_sentry.requests[0]
    assert record.finished is not None and record.finished - record.started >= 0.25


async def test_close_keepalive_asks_to_close_the_connection(
    fake_sentry: FakeSentry, http: aiohttp.ClientSession
) -> None:
    fake_sentry.faults.add(Fault("close_keepalive"))
    closing = await fetch(http, fake_sentry, ISSUES)
    normal = await fetch(http, fake_sentry, ISSUES)
    assert closing.status == normal.status == 200
    assert closing.headers["Connection"].lower() == "close"
    assert normal.headers.get("Connection", "keep-alive").lower() != "close"
    assert closing.body == normal.body


async def test_short_pages_serve_fewer_rows_but_promise_more(
    fake_sentry: FakeSentry, http: aiohttp.ClientSession
) -> None:
    fake_sentry.faults.add(Fault("short_pages", serve=0, times=1))
    fake_sentry.faults.add(Fault("short_pages", serve=3, times=1))
    expected = fake_sentry.data.event_ids(ORG, PROJECT, include_transactions=False)
    empty = await fetch(http, fake_sentry, EVENTS)
    assert empty.json() == []
    nxt = re.search(r'rel="next"; results="true"; cursor="([^"]+)"', empty.headers["Link"])
    assert nxt is not None
    short = await fetch(http, fake_sentry, EVENTS, {"cursor": nxt.group(1)})
    assert _ids(short) == expected[:3]
    nxt = re.search(r'rel="next"; results="true"; cursor="([^"]+)"', short.headers["Link"])
    assert nxt is not None
    rest = await fetch(http, fake_sentry, EVENTS, {"cursor": nxt.group(1)})
    assert _ids(rest) == expected[3:103], "the next cursor resumes after the short page"


@pytest.mark.parametrize("times", [1, 2, 3])
async def test_empty_short_issue_pages_still_move_the_cursor(
    fake_sentry: FakeSentry, times: int
) -> None:
    """Each empty page's next cursor is a new one that resumes where the page stood."""
    expected = await _all_issues(fake_sentry)
    fake_sentry.faults.add(Fault("short_pages", serve=0, times=times, path="/issues/$"))
    assert await _all_issues(fake_sentry) == expected
    pages = fake_sentry.requests.matching("GET", "/organizations/{org}/issues/")
    cursors = [page.param("cursor") for page in pages[-(times + 2) :]]
    assert len(set(cursors)) == len(cursors)


async def _all_issues(server: FakeSentry) -> list[str]:
    async with server.client() as sentry:
        with anyio.fail_after(20):
            return [i.id async for i in sentry.issues.list(ORG, query="", limit=150)]


async def test_redirect_fault(fake_sentry: FakeSentry, http: aiohttp.ClientSession) -> None:
    fake_sentry.faults.add(Fault("redirect", location="https://evil.example/steal"))
    reply = await fetch(http, fake_sentry, ISSUES)
    assert reply.status == 302
    assert reply.headers["Location"] == "https://evil.example/steal"
    assert fake_sentry.faults.faults[0].spent


async def test_invalid_json_content_fault_variants(
    fake_sentry: FakeSentry, http: aiohttp.ClientSession
) -> None:
    fake_sentry.faults.add(Fault("invalid_json_content"))
    fake_sentry.faults.add(Fault("invalid_json_content", content_type="text/html"))
    html_body = await fetch(http, fake_sentry, ISSUES)
    html_type = await fetch(http, fake_sentry, ISSUES)
    normal = await fetch(http, fake_sentry, ISSUES)
    assert html_body.status == 200
    assert html_body.headers["Content-Type"].startswith("application/json")
    assert html_body.body.startswith(b"<html>")
    assert html_type.headers["Content-Type"].startswith("text/html")
    assert html_type.body == normal.body, "a JSON body under the wrong content type"
    assert normal.headers["Content-Type"].startswith("application/json")


# -- determinism and options ----------------------------------------------------------------


def test_same_seed_same_bytes_other_seed_other_data() -> None:
    config = SCALES["small"]
    one, two = Dataset(3, config, FIXED_NOW), Dataset(3, config, FIXED_NOW)
    other = Dataset(4, config, FIXED_NOW)
    assert list(one.issues_by_id) == list(two.issues_by_id)
    assert list(one.events_by_id) == list(two.events_by_id)
    assert all(
        one.issue_bytes(issue) == two.issue_bytes(two.issues_by_id[key])
        for key, issue in one.issues_by_id.items()
    )
    sample = list(one.events_by_id)[::25]
    assert all(
        one.event_bytes(one.events_by_id[key]) == two.event_bytes(two.events_by_id[key])
        for key in sample
    )
    assert set(other.events_by_id).isdisjoint(one.events_by_id)


async def test_same_seed_serves_the_same_bytes(
    fake_sentry_factory: Factory, http: aiohttp.ClientSession
) -> None:
    first, second = await fake_sentry_factory(seed=11), await fake_sentry_factory(seed=11)
    third = await fake_sentry_factory(seed=12)
    params = {"full": "1", "per_page": "10"}
    bodies = [(await fetch(http, s, EVENTS, params)).body for s in (first, second, third)]
    assert bodies[0] == bodies[1]
    assert bodies[0] != bodies[2]


async def test_legacy_links_omit_the_cursor_attribute(
    fake_sentry_factory: Factory, http: aiohttp.ClientSession
) -> None:
    server = await fake_sentry_factory(legacy_links=True)
    reply = await fetch(http, server, EVENTS)
    url = f"{server.url}{EVENTS}"
    assert reply.headers["Link"] == (
        f'<{url}?&cursor=0:0:1>; rel="previous"; results="false", '
        f'<{url}?&cursor=0:100:0>; rel="next"; results="true"'
    )


async def test_link_host_replaces_the_host_in_links(
    fake_sentry_factory: Factory, http: aiohttp.ClientSession
) -> None:
    server = await fake_sentry_factory(link_host="https://acme.sentry.io")
    reply = await fetch(http, server, ISSUES, {"query": "is:unresolved", "limit": "2"})
    targets = re.findall(r"<([^>]+)>", reply.headers["Link"])
    assert len(targets) == 2
    assert all(t.startswith(f"https://acme.sentry.io{ISSUES}?") for t in targets)
    assert server.url not in reply.headers["Link"]


async def test_bulk_mutations_follow_sentrys_id_rules(
    fake_sentry: FakeSentry, http: aiohttp.ClientSession
) -> None:
    data = fake_sentry.data
    unresolved = data.issue_ids(ORG, status="unresolved")
    # ``delete_groups`` takes any number of ids (1000 limits only its search).
    many = [("id", "9")] * 1001  # short enough for nginx's 8 KB request line
    accepted = await fetch(http, fake_sentry, ISSUES, many, method="DELETE")
    assert accepted.status == 204
    assert data.issue_ids(ORG, status="unresolved") == unresolved
    # Without ids, Sentry deletes whatever the query matches: what the client must prevent.
    wiped = await fetch(http, fake_sentry, ISSUES, {"query": "is:unresolved"}, method="DELETE")
    assert wiped.status == 204
    assert data.issue_ids(ORG, status="unresolved") == []
    assert data.issue_ids(ORG) == data.issue_ids(ORG, status="resolved") != []


class _CountedRows(list[tuple[int, Any]]):
    """A listing that counts the rows read from it, however they are read."""

    reads = 0

    def __getitem__(self, index: Any) -> Any:
        got = super().__getitem__(index)
        self.reads += len(got) if isinstance(index, slice) else 1
        return got

    def __iter__(self) -> Any:
        self.reads += len(self)
        return super().__iter__()


@pytest.mark.parametrize("cursor", ["", "9000:0:0", "9000:40:0", "9000:40:1", "1:0:0"])
def test_an_issue_page_reads_its_rows_not_the_whole_listing(cursor: str) -> None:
    """A page deep in a large listing costs the server its page, not every row: a fake
    that scans the listing per page is what the client's benchmarks would measure."""
    from aiohttp.test_utils import make_mocked_request

    from sentry_async.testing._paginators import _sequence_page

    total = 100_000
    # Scores descend with ties of 50 rows, as issues seen in the same second tie.
    rows = _CountedRows((10_000 - i // 50, object()) for i in range(total))
    request = make_mocked_request("GET", f"{ISSUES}?cursor={cursor}" if cursor else ISSUES)
    page, prev_cursor, has_prev, next_cursor, has_next = _sequence_page(request, rows, 100)
    assert rows.reads <= 100 + 2 * 60 + 2 * 50, rows.reads
    if cursor == "9000:40:0":
        start = (10_000 - 9000) * 50 + 40
        expected = list.__getitem__(rows, slice(start, start + 100))
        assert len(page) == 100 and page == [issue for _, issue in expected]
        assert next_cursor == f"{10_000 - (start + 100) // 50}:{(start + 100) % 50}:0"
        assert (prev_cursor, has_prev, has_next) == ("9000:40:1", True, True)
