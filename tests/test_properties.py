"""Property tests: whatever a server or a caller sends, the parsers answer with a value or
the one typed error they document, and well-formed input parses back to what built it."""

from __future__ import annotations

import math
import re
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime as http_date
from typing import Any
from urllib.parse import quote

import anyio
import msgspec
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from multidict import CIMultiDict
from yarl import URL

from sentry_async import (
    APIError,
    BadRequest,
    ErrorDetail,
    Forbidden,
    NotFound,
    PaginationError,
    Paginator,
    RateLimited,
    ServerError,
    Unauthorized,
)
from sentry_async._protocol.errors import build_api_error, is_query_timeout, parse_error_body
from sentry_async._protocol.hosts import (
    endpoint_group,
    has_user_info,
    is_loopback,
    origin,
    resolve_redirect,
)
from sentry_async._protocol.links import cursor_from_url
from sentry_async._protocol.params import (
    check_page_size,
    check_slug,
    encode_params,
    format_datetime,
    time_range,
    validate_period,
)
from sentry_async.pagination import Position, RawPage
from sentry_async.sansio import (
    LinkHeaderError,
    page_links,
    parse_link_header,
    parse_rate_limit,
    parse_retry_after,
)

MODERATE = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# Text that looks like a Link header far more often than st.text() does.
_link_ish = st.text(alphabet='<>;,="\\ \tabcnrelxt:/?&=0123456789é\x00', max_size=120)
_huge_digits = st.integers(min_value=4000, max_value=6000).map(lambda n: "9" * n)
_header_value = st.one_of(
    st.text(max_size=40), _huge_digits, st.from_regex(r"\A\s*-?[0-9_.eE+]{1,30}\s*\Z")
)
# Opaque cursors: any characters a header can carry, quotes and backslashes included.
_cursor = st.text(
    alphabet=st.characters(blacklist_categories=("Cs", "Cc")), min_size=1, max_size=40
)


def _quoted(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


# Link headers.


@MODERATE
@given(st.one_of(_link_ish, st.text(max_size=200)))
def test_link_parser_returns_links_or_link_header_error(header: str) -> None:
    try:
        links = parse_link_header(header)
    except LinkHeaderError as exc:
        message = str(exc)
        assert "position" in message
        return
    for link in links:
        assert isinstance(link.url, str)
        assert all(name == name.lower() for name in link.params)
        assert link.results in (True, False, None)
        assert link.cursor is None or isinstance(link.cursor, str)


@MODERATE
@given(st.one_of(_link_ish, st.text(max_size=200)))
def test_page_links_never_raises_anything_else(header: str) -> None:
    try:
        links = page_links(header)
    except LinkHeaderError:
        return
    # Paginated: a rel="next" link was found (a Link of any other kind says nothing of pages).
    assert not links.paginated or "next" in header.lower()
    assert links.next_cursor is None or links.next_cursor
    try:
        parsed = parse_link_header(header)
    except LinkHeaderError:
        return
    if any("next" in (link.rel or "").lower().split() for link in parsed):
        assert links.paginated


@MODERATE
@given(
    prev=_cursor,
    nxt=_cursor,
    has_prev=st.booleans(),
    has_next=st.booleans(),
    next_first=st.booleans(),
    rel_case=st.sampled_from(["next", "NEXT", "Next"]),
    space=st.sampled_from(["", " ", "\t", "  "]),
    url_tail=st.text(alphabet="abc,;=&%20:", max_size=15),
)
def test_generated_link_header_parses_back_to_its_cursors(
    prev: str,
    nxt: str,
    has_prev: bool,
    has_next: bool,
    next_first: bool,
    rel_case: str,
    space: str,
    url_tail: str,
) -> None:
    """Cursors holding ``,``, ``;``, quotes and backslashes survive the round trip."""
    url = f"https://sentry.example/api/0/x/?q={url_tail}"
    previous = (
        f"<{url}>{space};{space}rel=previous;{space}results={_quoted(str(has_prev).lower())}"
        f";cursor={_quoted(prev)}"
    )
    following = (
        f'<{url}>; rel="{rel_case}"; results="{str(has_next).lower()}"; cursor={_quoted(nxt)}'
    )
    parts = [following, previous] if next_first else [previous, following]
    links = page_links(f",{space}".join(parts))
    assert links.next_cursor == (nxt if has_next else None)
    assert links.prev_cursor == (prev if has_prev else None)
    assert links.polling_cursor == nxt
    assert [link.url for link in parse_link_header(", ".join(parts))] == [url, url]


@MODERATE
@given(st.text(alphabet=st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=40))
def test_legacy_cursor_in_the_url_round_trips(cursor: str) -> None:
    """Old servers put the cursor only in the URL, percent-encoded."""
    header = f'<https://h/api/0/x/?a=1&cursor={quote(cursor, safe="")}>; rel="next"; results="true"'
    assert page_links(header).next_cursor == cursor


@MODERATE
@given(st.one_of(st.text(max_size=80), _link_ish))
@example("http://[broken")
@example("https://h/?cursor=%ZZ")
def test_cursor_from_any_url_is_a_string_or_none(url: str) -> None:
    cursor = cursor_from_url(url)
    assert cursor is None or isinstance(cursor, str)


@MODERATE
@given(
    cursors=st.lists(_cursor, min_size=1, max_size=6),
    repeat_at=st.none() | st.integers(min_value=0, max_value=5),
)
def test_paginator_follows_any_cursors_and_refuses_loops(
    cursors: list[str], repeat_at: int | None
) -> None:
    """Whatever the cursors, the paginator asks for exactly them, in order, and ends;
    a cursor it was already sent ends the walk with a PaginationError, never a loop."""
    if repeat_at is not None and repeat_at < len(cursors):
        cursors = [*cursors[:repeat_at], cursors[repeat_at], *cursors[repeat_at:]]
    requested: list[str | None] = []
    chain: list[str | None] = [None, *cursors]

    async def fetch(cursor: str | None, size: int | None) -> RawPage:
        assert len(requested) <= len(chain), "unbounded pagination"
        requested.append(cursor)
        index = len(requested) - 1
        nxt = chain[index + 1] if index + 1 < len(chain) else "end"
        more = index + 1 < len(chain)
        link = f'<https://h/x/>; rel="next"; results="{str(more).lower()}"; cursor={_quoted(nxt or "")}'
        return RawPage(items=[index], link=link)

    async def walk() -> None:
        paginator: Paginator[int] = Paginator(fetch, page_size=1)
        if len(set(chain)) == len(chain):
            assert await paginator.collect() == list(range(len(chain)))
            assert requested == chain
            assert paginator.position.done
        else:
            with pytest.raises(PaginationError, match=r"looping|cycle"):
                await paginator.collect()
            assert len(requested) <= len(chain)

    anyio.run(walk, backend="asyncio")


@MODERATE
@given(cursor=st.none() | _cursor, skip=st.integers(min_value=0, max_value=2**40), done=st.booleans())
def test_any_position_persists_through_dicts_and_msgspec(
    cursor: str | None, skip: int, done: bool
) -> None:
    position = Position(cursor, skip, done)
    assert Position.from_dict(msgspec.json.decode(msgspec.json.encode(position.to_dict()))) == (
        position
    )
    assert msgspec.json.decode(msgspec.json.encode(position), type=Position) == position


@MODERATE
@given(
    counts=st.lists(st.integers(min_value=0, max_value=4), min_size=1, max_size=8),
    limit=st.none() | st.integers(min_value=1, max_value=30),
    stop_after=st.none() | st.integers(min_value=0, max_value=30),
    prefetch=st.integers(min_value=1, max_value=3),
)
def test_prefetch_changes_neither_items_nor_positions(
    counts: list[int], limit: int | None, stop_after: int | None, prefetch: int
) -> None:
    """Read-ahead hands out the same items and stops at the same position as plain paging."""

    async def fetch(cursor: str | None, size: int | None) -> RawPage:
        index = int(cursor) if cursor else 0
        start = sum(counts[:index])
        more = str(index + 1 < len(counts)).lower()
        link = f'<https://h/x/>; rel="next"; results="{more}"; cursor="{index + 1}"'
        return RawPage(items=list(range(start, start + counts[index])), link=link)

    async def run(ahead: int) -> tuple[list[int], Position]:
        paginator: Paginator[int] = Paginator(fetch, page_size=4, limit=limit, prefetch=ahead)
        taken: list[int] = []
        async for item in paginator:
            if stop_after is not None and len(taken) == stop_after:
                break
            taken.append(item)
        await paginator.aclose()
        return taken, paginator.position

    async def both() -> None:
        assert await run(prefetch) == await run(0)

    anyio.run(both, backend="asyncio")


# Rate-limit headers and Retry-After.


def _random_case(name: str, flips: list[bool]) -> str:
    return "".join(
        c.upper() if flip else c for c, flip in zip(name, flips + [False] * len(name), strict=False)
    )


@MODERATE
@given(
    limit=st.integers(min_value=0, max_value=10**12),
    remaining=st.integers(min_value=0, max_value=10**12),
    reset=st.integers(min_value=0, max_value=2**40),
    concurrent=st.none() | st.integers(min_value=0, max_value=10**6),
    flips=st.lists(st.booleans(), max_size=40),
    pad=st.sampled_from(["", " ", "\t"]),
)
def test_rate_limit_headers_from_ints_parse_to_those_ints(
    limit: int, remaining: int, reset: int, concurrent: int | None, flips: list[bool], pad: str
) -> None:
    prefix = "X-Sentry-Rate-Limit-"
    headers = CIMultiDict(
        {
            _random_case(prefix + "Limit", flips): f"{pad}{limit}{pad}",
            _random_case(prefix + "Remaining", flips): str(remaining),
            _random_case(prefix + "Reset", flips): str(reset),
        }
    )
    if concurrent is not None:
        headers[prefix + "ConcurrentLimit"] = str(concurrent)
        headers[prefix + "ConcurrentRemaining"] = str(concurrent)
    info = parse_rate_limit(headers)
    assert info is not None
    assert (info.limit, info.remaining, info.reset) == (limit, remaining, float(reset))
    assert info.concurrent_limit == info.concurrent_remaining == concurrent
    assert info.exhausted == (remaining == 0)
    assert info.seconds_until_reset(float(reset) + 5) == 0.0


_RATE_NAMES = [
    f"x-sentry-rate-limit-{n}"
    for n in ("limit", "remaining", "reset", "concurrentlimit", "concurrentremaining")
]


@MODERATE
@given(st.dictionaries(st.sampled_from([*_RATE_NAMES, "retry-after"]), _header_value))
def test_rate_limit_headers_of_any_text_parse_or_are_absent(values: dict[str, str]) -> None:
    info = parse_rate_limit(CIMultiDict(values))
    if not set(values) & set(_RATE_NAMES):
        assert info is None
        return
    assert info is not None
    for number in (info.limit, info.remaining, info.concurrent_limit, info.concurrent_remaining):
        assert number is None or (isinstance(number, int) and number >= 0)
    assert info.reset is None or (math.isfinite(info.reset) and info.reset >= 0)
    wait = info.seconds_until_reset(0.0)
    assert wait is None or (math.isfinite(wait) and wait >= 0)


@MODERATE
@given(st.one_of(_header_value, st.text(max_size=60)), st.floats(min_value=0, max_value=4e9))
@example("9" * 400, 0.0)
@example("9" * 5000, 0.0)
@example("1e400", 0.0)
@example("Wed, 21 Oct 99999 07:28:00 GMT", 0.0)
def test_retry_after_of_any_text_is_a_finite_wait_or_none(value: str, now: float) -> None:
    wait = parse_retry_after(value, now)
    assert wait is None or (math.isfinite(wait) and wait >= 0)


@MODERATE
@given(st.integers(min_value=0, max_value=10**15), st.sampled_from(["", " ", "\t"]))
def test_retry_after_seconds_round_trip(seconds: int, pad: str) -> None:
    assert parse_retry_after(f"{pad}{seconds}{pad}", 123.0) == float(seconds)


@MODERATE
@given(
    st.datetimes(
        min_value=datetime(1971, 1, 1),
        max_value=datetime(9999, 1, 1),
        timezones=st.just(timezone.utc),
    ),
    st.floats(min_value=0, max_value=4e9),
)
def test_retry_after_http_date_round_trip(when: datetime, now: float) -> None:
    when = when.replace(microsecond=0)
    wait = parse_retry_after(http_date(when, usegmt=True), now)
    assert wait == pytest.approx(max(0.0, when.timestamp() - now))


# Error bodies.

_json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=15,
)
# Shallow, or far deeper than msgspec follows: how deep it follows depends on the stack
# depth of the caller, so a nesting near that limit could parse in one call and not another.
_depths = st.integers(min_value=1, max_value=200) | st.integers(min_value=3000, max_value=10_000)
_error_bodies = st.one_of(
    st.binary(max_size=200),
    _json_values.map(msgspec.json.encode),
    st.builds(lambda detail: msgspec.json.encode({"detail": detail}), _json_values),
    _depths.map(lambda depth: b"[" * depth + b"]" * depth),
    _depths.map(lambda depth: b'{"a":' * depth + b"1" + b"}" * depth),
    st.text(max_size=50).map(lambda t: f"<html><body>{t}</body></html>".encode()),
    # Well-formed JSON whose strings hold bytes that are not UTF-8.
    st.binary(min_size=1, max_size=8).map(lambda junk: b'{"detail": "x' + junk + b'"}'),
    st.binary(min_size=1, max_size=8).map(lambda junk: b'{"' + junk + b'": ["bad"]}'),
)
_EXPECTED_CLASS = {
    400: BadRequest,
    401: Unauthorized,
    403: Forbidden,
    404: NotFound,
    429: RateLimited,
}


@MODERATE
@given(st.integers(min_value=100, max_value=599), _error_bodies)
def test_any_error_body_builds_the_right_error(status: int, body: bytes) -> None:
    detail, _ = parse_error_body(body)
    assert detail is None or isinstance(detail, (str, ErrorDetail))
    error = build_api_error(status, body, method="GET", url="https://h/api/0/x/")
    expected = _EXPECTED_CLASS.get(status, ServerError if status >= 500 else APIError)
    assert type(error) is expected
    assert (error.status, error.body, error.detail) == (status, body, detail)
    assert str(error).startswith(f"{status} from GET https://h/api/0/x/")
    assert len(str(error)) < 2000
    is_query_timeout(status, detail)


@MODERATE
@given(st.text(max_size=300))
def test_string_detail_is_kept_whole(text: str) -> None:
    detail, data = parse_error_body(msgspec.json.encode({"detail": text}))
    assert detail == text and data == {"detail": text}


@MODERATE
@given(st.text(max_size=40), st.sampled_from([400, 401, 500]))
def test_only_a_400_can_be_a_query_timeout(text: str, status: int) -> None:
    detail = f"Query timeout. {text}"
    assert is_query_timeout(status, detail) == (status == 400)
    assert is_query_timeout(status, ErrorDetail(None, detail, {})) == (status == 400)


def test_huge_detail_is_cut_in_the_message_but_kept_whole() -> None:
    text = "x" * 1_000_000  # under MAX_ERROR_BODY: decoded, and kept whole
    error = build_api_error(400, msgspec.json.encode({"detail": text}), method="GET", url="u")
    assert error.detail == text
    assert len(str(error)) < 2000 and "1,000,000 characters" in str(error)


# Parameters.

_scalars = st.one_of(
    st.text(max_size=10),
    st.integers(),
    st.floats(allow_nan=False),
    st.booleans(),
    st.datetimes(timezones=st.none() | st.timezones()),
)
_junk = st.one_of(st.binary(max_size=5), st.just(object()), st.dictionaries(st.text(), st.text()))
_param_values = st.one_of(
    st.none(), _scalars, st.lists(_scalars, max_size=3), st.tuples(_scalars, _scalars), _junk
)


@MODERATE
@given(st.dictionaries(st.text(max_size=8), _param_values, max_size=5))
def test_encode_params_gives_string_pairs_or_value_error(params: dict[str, Any]) -> None:
    try:
        pairs = encode_params(params)
    except ValueError:
        return
    assert all(isinstance(k, str) and isinstance(v, str) for k, v in pairs)
    expected_keys = [
        k
        for k, v in params.items()
        if v is not None
        for _ in (v if isinstance(v, (list, tuple)) else [v])
    ]
    assert [k for k, _ in pairs] == expected_keys


@MODERATE
@given(st.one_of(st.text(max_size=30), st.integers(), st.booleans(), st.none(), st.floats()))
@example("acme\x00")
@example("acme\u200b")
@example("..")
def test_check_slug_returns_a_path_safe_slug_or_value_error(value: Any) -> None:
    try:
        slug = check_slug(value, "org")
    except ValueError:
        return
    assert slug and "/" not in slug and slug not in (".", "..")
    assert slug.isprintable() and not any(ch.isspace() for ch in slug)


@MODERATE
@given(st.one_of(st.text(max_size=12), st.from_regex(r"\A[0-9]{1,6}[smhdw]?\n?\Z"), _huge_digits))
@example("24\n")
@example("٢٤h")
@example("0d")
def test_validate_period_accepts_only_ascii_periods(value: str) -> None:
    try:
        period = validate_period(value)
    except ValueError:
        return
    assert period == value
    assert re.fullmatch(r"[0-9]+[smhdw]?", period, flags=re.ASCII)
    assert period.rstrip("smhdw").strip("0"), "zero periods are refused"


_offsets = st.integers(min_value=-(24 * 60 - 1), max_value=24 * 60 - 1).map(
    lambda minutes: timezone(timedelta(minutes=minutes))
)


@MODERATE
@given(st.datetimes(timezones=st.none() | _offsets))
@example(datetime.min.replace(tzinfo=timezone(timedelta(hours=5))))
@example(datetime.max.replace(tzinfo=timezone(timedelta(hours=-5))))
def test_format_datetime_is_utc_without_offset_or_value_error(value: datetime) -> None:
    try:
        text = format_datetime(value)
    except ValueError:
        assert value.tzinfo is None or value.year in (1, 9999)
        return
    parsed = datetime.fromisoformat(text)
    assert parsed.tzinfo is None and "+" not in text
    assert parsed.replace(tzinfo=timezone.utc) == value


@MODERATE
@given(
    st.none() | st.datetimes(timezones=st.none() | _offsets),
    st.none() | st.datetimes(timezones=st.none() | _offsets),
    st.none() | st.text(max_size=6) | st.timedeltas(),
)
def test_time_range_is_consistent_or_value_error(
    start: datetime | None, end: datetime | None, period: Any
) -> None:
    try:
        result = time_range(period=period, start=start, end=end)
    except ValueError:
        return
    assert set(result) in ({"statsPeriod"}, {"start", "end"}, set())
    if "start" in result:
        assert result["start"] < result["end"] or len(result["start"]) != len(result["end"])


@MODERATE
@given(st.one_of(st.integers(), st.booleans(), st.floats(), st.text(max_size=4)))
def test_check_page_size_accepts_only_1_to_100(value: Any) -> None:
    try:
        size = check_page_size(value)
    except ValueError:
        return
    assert type(size) is int and 1 <= size <= 100


# Hosts and redirects.


@MODERATE
@given(st.none() | st.text(max_size=40))
@example("[::1]")
@example("127.0.0.1.attacker.invalid")
@example("::ffff:127.0.0.1")
def test_is_loopback_never_raises(host: str | None) -> None:
    assert is_loopback(host) in (True, False)
    if host and "attacker" in host:
        assert not is_loopback(host)


@MODERATE
@given(st.sampled_from(["GET", "put", "Delete"]), st.text(max_size=60))
def test_endpoint_group_never_raises(method: str, path: str) -> None:
    group = endpoint_group(method, path)
    assert group.startswith(method.upper() + " ")


_location = st.one_of(
    st.text(alphabet="abcdefhtps:/.?#@[]%\\0123456789", max_size=40),
    st.text(max_size=40),
    st.builds(
        lambda scheme, host, port, path: f"{scheme}://{host}{port}{path}",
        st.sampled_from(["http", "https", "HTTP", "ftp"]),
        st.sampled_from(["127.0.0.1", "sentry.example", "SENTRY.example", "evil.invalid", ""]),
        st.sampled_from(["", ":80", ":443", ":8000"]),
        st.text(alphabet="/abc?&=%", max_size=10),
    ),
)


@MODERATE
@given(_location)
@example("//evil.invalid/api/0/")
@example("https://sentry.example@evil.invalid/")
@example("https://evil.invalid\\@sentry.example/")
def test_redirect_gets_the_token_only_on_a_trusted_origin(location: str) -> None:
    current = URL("https://sentry.example/api/0/organizations/")
    trusted = frozenset({origin(current)})
    try:
        target, allowed = resolve_redirect(current, location, trusted)
    except ValueError:
        return
    assert allowed == (origin(target) in trusted and not has_user_info(target))
    if allowed:
        assert target.scheme == "https" and target.host == "sentry.example"
        assert target.port == 443
