"""The fake server at the edges of its input: time ranges past ``datetime``'s years, malformed
cursors, a handler that fails, fault query patterns, and ``short_pages`` where it cannot apply.

Pinned against Sentry's server code: ``get_datetime_from_stats_period``
(``src/sentry/api/utils.py``: ``now - parse_stats_period(...)`` raising ``OverflowError``
is ``InvalidParams("Invalid statsPeriod: ...")``, and ``parse_stats_period`` answers
``timedelta.max`` for a period too long for a ``timedelta``), ``parse_datetime_string``
(``src/sentry/search/utils.py``: a number is read with ``datetime.utcfromtimestamp(float(v))``,
which refuses years outside 1..9999, then ``InvalidQuery("<value> is not a valid ISO8601 date
query")``), ``Cursor.from_string`` (``src/sentry/utils/cursors.py``: the value is
``float()`` when it holds a ``.``, else ``int()``; any ``ValueError`` is
``ParseError("Invalid cursor parameter.")``), and ``Endpoint.handle_exception_with_details``
(``src/sentry/api/base.py``: an unhandled error is a 500 ``{"detail": "Internal Error",
"errorId": ...}``).
"""

from __future__ import annotations

import re
from typing import Any

import aiohttp
import anyio
import msgspec
import pytest
from aiohttp import web

from sentry_async import BadRequest, NotFound, SentryClient, ServerError
from sentry_async.testing import FakeSentry, FakeSentryFactory, Fault

ORG = "org-0"
PROJECT = "project-0-0"
YEAR_ONE = -62135596800
"""``datetime(1, 1, 1, tzinfo=UTC).timestamp()``: the earliest instant Sentry can hold."""
YEAR_10000 = 253402300800
"""The first instant past ``datetime.max``."""


async def _get(server: FakeSentry, path: str, params: list[tuple[str, str]]) -> tuple[int, Any]:
    """``GET /api/0/<path>`` with the server's token: the status and the body (raw bytes
    when it is not JSON)."""
    async with (
        aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=20)) as http,
        http.get(
            f"{server.url}/api/0/{path}",
            params=params,
            headers={"Authorization": f"Bearer {server.token}"},
        ) as reply,
    ):
        raw = await reply.read()
        try:
            return reply.status, msgspec.json.decode(raw)
        except msgspec.DecodeError:
            return reply.status, raw


def _latest_period(server: FakeSentry) -> int:
    """The longest ``statsPeriod`` (seconds) whose start is still in year 1."""
    return int(server.data.now_ts) - YEAR_ONE


# -- time ranges ------------------------------------------------------------------------------

STATS = f"organizations/{ORG}/events-stats/"
ISSUES = f"organizations/{ORG}/issues/"
DISCOVER = f"organizations/{ORG}/events/"
USAGE = f"organizations/{ORG}/stats_v2/"
PROJECT_EVENTS = f"projects/{ORG}/{PROJECT}/events/"
# An interval that makes a few buckets of any range: the old code answered these with 200
# without allocating a bucket per day of the range.
WIDE = [("interval", "99999999999999d")]
RANGED_ENDPOINTS = [
    (STATS, WIDE),
    (ISSUES, []),
    (DISCOVER, [("field", "title")]),
    (PROJECT_EVENTS, []),
    (USAGE, [("field", "sum(quantity)"), ("category", "error"), ("interval", "1d")]),
]


def _refusal(path: str, message: str) -> dict[str, str]:
    """The range refusal as ``path``'s endpoint words it: Discover and ``events-stats`` after
    ``get_filter_params``' "Invalid date range: " (``src/sentry/api/bases/organization.py``),
    a project's events in words of their own (``project_events.py``), the others as it is."""
    if path in (STATS, DISCOVER):
        return {"detail": f"Invalid date range: {message}"}
    if path == PROJECT_EVENTS:
        return {"detail": "Invalid date range parameters provided"}
    return {"detail": message}


@pytest.mark.parametrize(("path", "extra"), RANGED_ENDPOINTS)
@pytest.mark.parametrize("period", ["3000000d", "99999999999999d", "past-year-one"])
async def test_a_period_reaching_before_year_one_is_refused(
    fake_sentry: FakeSentry, path: str, extra: list[tuple[str, str]], period: str
) -> None:
    """``now - period`` overflows in Sentry: a 400 naming the period, before any work."""
    if period == "past-year-one":
        period = f"{_latest_period(fake_sentry) + 1}s"
    with anyio.fail_after(20):
        status, body = await _get(fake_sentry, path, [("statsPeriod", period), *extra])
    assert (status, body) == (400, _refusal(path, f"Invalid statsPeriod: {period!r}"))


@pytest.mark.parametrize("path", [ISSUES, STATS])
async def test_a_period_back_to_year_one_is_served(fake_sentry: FakeSentry, path: str) -> None:
    """The longest period Sentry can subtract from now is still a range."""
    params = [("statsPeriod", f"{_latest_period(fake_sentry)}s"), *WIDE]
    with anyio.fail_after(20):
        status, _ = await _get(fake_sentry, path, params)
    assert status == 200


@pytest.mark.parametrize(("path", "extra"), RANGED_ENDPOINTS)
@pytest.mark.parametrize(
    ("start", "end", "refused"),
    [
        # Epoch milliseconds: year 57837.
        ("1780000000000", "1780300000000", "1780000000000"),
        ("0", "99999999999999", "99999999999999"),
        (str(YEAR_ONE - 1), "0", str(YEAR_ONE - 1)),
        ("0", str(YEAR_10000), str(YEAR_10000)),
        ("nan", "0", "nan"),
        ("-inf", "0", "-inf"),
        ("0", "1e400", "1e400"),
    ],
)
async def test_a_timestamp_outside_years_1_to_9999_is_refused(
    fake_sentry: FakeSentry,
    path: str,
    extra: list[tuple[str, str]],
    start: str,
    end: str,
    refused: str,
) -> None:
    """``utcfromtimestamp`` refuses the year (a ``ValueError``), and Sentry names the value
    as not a date; a value past what it can convert at all gets the same 400 here."""
    with anyio.fail_after(20):
        status, body = await _get(fake_sentry, path, [("start", start), ("end", end), *extra])
    assert (status, body) == (400, _refusal(path, f"{refused} is not a valid ISO8601 date query"))


async def test_timestamps_at_the_edges_of_the_years_are_served(fake_sentry: FakeSentry) -> None:
    with anyio.fail_after(20):
        status, _ = await _get(
            fake_sentry, ISSUES, [("start", str(YEAR_ONE)), ("end", str(YEAR_10000 - 1))]
        )
    assert status == 200


async def test_a_date_that_is_no_date_is_named_as_sentry_names_it(
    fake_sentry: FakeSentry,
) -> None:
    with anyio.fail_after(20):
        status, body = await _get(fake_sentry, ISSUES, [("start", "shrug"), ("end", "0")])
    assert (status, body) == (400, {"detail": "shrug is not a valid ISO8601 date query"})


# -- cursors --------------------------------------------------------------------------------

LISTS = [
    f"organizations/{ORG}/issues/",  # SequencePaginator
    f"projects/{ORG}/{PROJECT}/events/",  # offset cursors
    "organizations/",  # DateTimePaginator
    f"organizations/{ORG}/projects/",  # OffsetPaginator
]


@pytest.mark.parametrize("path", LISTS)
@pytest.mark.parametrize("cursor", ["1e400:0:0", "1e3:0:0", "1.0e400:0:0", "-1.5e999:0:0"])
async def test_a_cursor_value_int_refuses_is_a_400(
    fake_sentry: FakeSentry, path: str, cursor: str
) -> None:
    """``int(bits[0])`` refuses an exponent; a value with a ``.`` is read with ``float()``,
    and one past what a float holds cannot name a row either."""
    with anyio.fail_after(20):
        status, body = await _get(fake_sentry, path, [("cursor", cursor)])
    assert (status, body) == (400, {"detail": "Invalid cursor parameter."})
    assert [r.status for r in fake_sentry.requests] == [400]


@pytest.mark.parametrize("path", LISTS)
async def test_a_cursor_value_with_a_fraction_is_read(fake_sentry: FakeSentry, path: str) -> None:
    with anyio.fail_after(20):
        status, _ = await _get(fake_sentry, path, [("cursor", "0.0:0:0")])
    assert status == 200


async def test_a_bad_cursor_is_not_retried_by_the_client(
    fake_sentry: FakeSentry, client: SentryClient
) -> None:
    with anyio.fail_after(20), pytest.raises(BadRequest) as caught:
        await client.request(
            "GET", f"/organizations/{ORG}/issues/", params={"cursor": "1e400:0:0"}
        )
    assert caught.value.detail == "Invalid cursor parameter."
    assert [r.status for r in fake_sentry.requests] == [400]


# -- a handler that fails -----------------------------------------------------------------


def _boom(*args: Any, **kwargs: Any) -> Any:
    raise RuntimeError("a bug in the fake")


async def test_an_unhandled_error_is_sentrys_json_500_and_recorded(
    fake_sentry: FakeSentry, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(fake_sentry.data, "org_body", _boom)
    with anyio.fail_after(20):
        status, body = await _get(fake_sentry, f"organizations/{ORG}/", [])
    assert status == 500
    assert isinstance(body, dict) and body["detail"] == "Internal Error"
    assert re.fullmatch(r"[0-9a-f]{32}", body["errorId"])
    (record,) = fake_sentry.requests
    assert record.status == 500
    assert "X-Sentry-Rate-Limit-Limit" in await _headers(fake_sentry, f"organizations/{ORG}/")


async def _headers(server: FakeSentry, path: str) -> dict[str, str]:
    async with (
        aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=20)) as http,
        http.get(
            f"{server.url}/api/0/{path}", headers={"Authorization": f"Bearer {server.token}"}
        ) as reply,
    ):
        await reply.read()
        return dict(reply.headers)


async def test_the_client_sees_each_unhandled_error_as_a_server_error(
    fake_sentry: FakeSentry, client: SentryClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(fake_sentry.data, "org_body", _boom)
    with anyio.fail_after(20), pytest.raises(ServerError) as caught:
        await client.request("GET", f"/organizations/{ORG}/")
    assert caught.value.status == 500
    statuses = [r.status for r in fake_sentry.requests]
    assert statuses and set(statuses) == {500}


async def test_an_http_exception_keeps_its_status_in_the_log(
    fake_sentry: FakeSentry, monkeypatch: pytest.MonkeyPatch
) -> None:
    """aiohttp's own answers (a 405, a 409 raised as an exception) pass through as they are,
    and the log records the status that was sent."""

    def conflict(*args: Any, **kwargs: Any) -> Any:
        raise web.HTTPConflict(text="taken")

    monkeypatch.setattr(fake_sentry.data, "org_body", conflict)
    with anyio.fail_after(20):
        status, body = await _get(fake_sentry, f"organizations/{ORG}/", [])
    assert (status, body) == (409, b"taken")
    assert [r.status for r in fake_sentry.requests] == [409]


# -- fault query patterns -------------------------------------------------------------------

QUERY = "is:unresolved level:error url:a/b+c"


async def _list_issues(server: FakeSentry) -> str:
    """Lists issues with ``QUERY``: ``"served"`` or ``"fault"`` (the fault's 404)."""
    async with server.client() as sentry:
        try:
            with anyio.fail_after(20):
                [issue async for issue in sentry.issues.list(ORG, query=QUERY)]
        except NotFound:
            return "fault"
    return "served"


@pytest.mark.parametrize(
    "pattern",
    [
        r"query=is%3Aunresolved\+level%3Aerror",  # as the request log shows it
        r"url%3Aa%2Fb%2Bc",  # the log's encoding of "/" and "+"
        r"query=is:unresolved\+level:error",  # as the client sent it
        r"url:a/b%2Bc",
        r"query=is:unresolved level:error url:a/b\+c",  # decoded
    ],
)
async def test_a_fault_query_matches_the_query_as_sent_logged_or_decoded(
    fake_sentry: FakeSentry, pattern: str
) -> None:
    fault = fake_sentry.faults.add(Fault("status", status=404, query=pattern))
    assert await _list_issues(fake_sentry) == "fault"
    assert fault.fired == 1


async def test_a_pattern_copied_from_the_request_log_fires(fake_sentry: FakeSentry) -> None:
    assert await _list_issues(fake_sentry) == "served"
    (first,) = fake_sentry.requests
    shown = first.describe().split("?", 1)[1].rsplit(" -> ", 1)[0]
    fault = fake_sentry.faults.add(Fault("status", status=404, query=f"^{re.escape(shown)}$"))
    assert await _list_issues(fake_sentry) == "fault"
    assert fault.fired == 1


async def test_a_fault_query_that_matches_no_form_does_not_fire(fake_sentry: FakeSentry) -> None:
    fault = fake_sentry.faults.add(Fault("status", status=404, query="level%3Dwarning"))
    assert await _list_issues(fake_sentry) == "served"
    assert fault.fired == 0


# -- short pages where a page cannot be cut ------------------------------------------------


@pytest.fixture
async def spread(fake_sentry_factory: FakeSentryFactory) -> FakeSentry:
    """Three organizations of four projects each."""
    return await fake_sentry_factory(orgs=3, projects=4)


@pytest.mark.parametrize(
    ("path", "query"),
    [(f"organizations/{ORG}/projects/", []), ("organizations/", [("sortBy", "members")])],
)
async def test_short_pages_do_not_fire_on_page_numbered_lists(
    spread: FakeSentry, path: str, query: list[tuple[str, str]]
) -> None:
    """Sentry's OffsetPaginator names a page by its number: a cursor cannot resume inside
    a page, so the fault leaves these pages whole and waits for a list it can shorten."""
    fault = spread.faults.add(Fault("short_pages", serve=1, times=1))
    params = [("per_page", "2"), *query]
    with anyio.fail_after(20):
        status, body = await _get(spread, path, params)
        assert (status, len(body), fault.fired) == (200, 2, 0)
        status, body = await _get(spread, f"organizations/{ORG}/releases/", [("per_page", "2")])
    assert (status, len(body), fault.fired) == (200, 1, 1)
    assert fault.spent


async def test_short_pages_count_only_the_pages_they_shortened(spread: FakeSentry) -> None:
    fault = spread.faults.add(Fault("short_pages", serve=1, times=None))
    with anyio.fail_after(20):
        await _get(spread, f"organizations/{ORG}/", [])
        await _get(spread, f"organizations/{ORG}/projects/", [("per_page", "2")])
        await _get(spread, "organizations/", [("per_page", "2")])
        await _get(spread, f"organizations/{ORG}/issues/", [("limit", "2")])
        await _get(spread, f"projects/{ORG}/{PROJECT}/events/", [("per_page", "2")])
    assert fault.fired == 3
