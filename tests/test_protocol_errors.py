"""Error body parsing and status mapping: pure, no network."""

from __future__ import annotations

import pickle

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sentry_async import (
    APIError,
    BadRequest,
    ErrorDetail,
    Forbidden,
    NotFound,
    RateLimited,
    RateLimitInfo,
    ServerError,
    Unauthorized,
)
from sentry_async._protocol.errors import build_api_error, is_query_timeout, parse_error_body


def test_detail_string() -> None:
    detail, data = parse_error_body(b'{"detail":"Invalid token"}')
    assert detail == "Invalid token"
    assert data == {"detail": "Invalid token"}


def test_detail_object() -> None:
    body = b'{"detail":{"code":"sso-required","message":"Must login via SSO","extra":{"loginUrl":"https://x"}}}'
    detail, _ = parse_error_body(body)
    assert detail == ErrorDetail("sso-required", "Must login via SSO", {"loginUrl": "https://x"})
    error = build_api_error(401, body, method="GET", url="https://sentry.io/api/0/x/")
    assert isinstance(error, Unauthorized)
    assert error.code == "sso-required"
    assert "Must login via SSO (sso-required)" in str(error)


def test_bare_json_string() -> None:
    assert parse_error_body(b'"Invalid fields"') == ("Invalid fields", "Invalid fields")


def test_field_errors_map_has_no_detail_but_a_message() -> None:
    body = b'{"slug":["Enter a valid slug."],"non_field_errors":["nope"]}'
    error = build_api_error(400, body, method="PUT", url="u")
    assert isinstance(error, BadRequest)
    assert error.detail is None
    assert error.data["slug"] == ["Enter a valid slug."]
    assert "slug: Enter a valid slug." in str(error)


def test_empty_and_html_bodies() -> None:
    assert parse_error_body(b"") == (None, None)
    assert parse_error_body(b"  \n") == (None, None)
    detail, data = parse_error_body(b"<html><body>502 Bad Gateway</body></html>")
    assert data is None
    assert detail is not None and "502 Bad Gateway" in detail
    error = build_api_error(502, b"<html>bad gateway</html>", method="GET", url="u")
    assert isinstance(error, ServerError)


def test_json_served_as_html_still_parses() -> None:
    body = b'{"detail":"You are attempting to use this endpoint too frequently. Limit is 40 requests in 1 seconds"}'
    error = build_api_error(
        429,
        body,
        method="GET",
        url="u",
        retry_after=3.0,
        rate_limit=RateLimitInfo(limit=40, remaining=0),
    )
    assert isinstance(error, RateLimited)
    assert error.retry_after == 3.0
    assert error.rate_limit is not None and error.rate_limit.remaining == 0
    assert "too frequently" in str(error)


@pytest.mark.parametrize(
    ("status", "cls"),
    [
        (400, BadRequest),
        (401, Unauthorized),
        (403, Forbidden),
        (404, NotFound),
        (429, RateLimited),
        (500, ServerError),
        (503, ServerError),
        (409, APIError),
        (418, APIError),
    ],
)
def test_status_classes(status: int, cls: type[APIError]) -> None:
    error = build_api_error(status, b"", method="GET", url="https://h/api/0/x/")
    assert type(error) is cls
    assert error.status == status
    assert str(error) == f"{status} from GET https://h/api/0/x/"


def test_query_timeout_detection() -> None:
    assert is_query_timeout(400, "Query timeout. Please try again.")
    assert is_query_timeout(400, ErrorDetail(None, "query timeout", {}))
    assert not is_query_timeout(500, "Query timeout.")
    assert not is_query_timeout(400, "Invalid query.")
    assert not is_query_timeout(400, None)


def test_errors_pickle() -> None:
    error = build_api_error(404, b'{"detail":"nope"}', method="GET", url="u")
    clone = pickle.loads(pickle.dumps(error))
    assert type(clone) is NotFound and clone.detail == "nope" and str(clone) == str(error)


@given(st.binary(max_size=300))
def test_any_body_parses(body: bytes) -> None:
    detail, _ = parse_error_body(body)
    assert detail is None or isinstance(detail, (str, ErrorDetail))
    error = build_api_error(400, body, method="GET", url="u")
    assert isinstance(error, BadRequest)
    str(error)


@given(
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.text(),
        lambda c: st.lists(c) | st.dictionaries(st.text(), c),
        max_leaves=20,
    )
)
def test_any_json_body_parses(value: object) -> None:
    import msgspec

    detail, _ = parse_error_body(msgspec.json.encode({"detail": value}))
    assert detail is None or isinstance(detail, (str, ErrorDetail))


def test_an_error_body_over_the_bound_is_kept_cut_and_not_decoded() -> None:
    """A 404 of 60 MiB of ``[{},{},...]`` decoded whole took 1.5 GB, for as long as the
    exception lived: past the bound nothing is decoded, ``.body`` keeps only its start, and
    the message says the body was cut and how long it was."""
    from sentry_async._protocol import errors

    items = 2 * 1024 * 1024 // 3
    body = b"[" + b"{}," * items + b"{}]"
    error = build_api_error(404, body, method="GET", url="https://h/api/0/x/")
    assert type(error) is NotFound
    assert error.data is None
    bound = errors.MAX_ERROR_BODY
    assert bound == 1024 * 1024
    assert len(error.body) == bound and body.startswith(error.body)
    assert f"{len(body):,} bytes, cut to its first {bound:,}" in str(error)
    assert isinstance(error.detail, str) and error.detail.startswith("[{},{},")
    assert len(str(error)) < 1000
    clone = pickle.loads(pickle.dumps(error))
    assert len(clone.body) == bound and str(clone) == str(error)
    # What parse_error_body() makes of it on its own (the sans-I/O entry point).
    detail, data = parse_error_body(body)
    assert data is None and isinstance(detail, str) and f"{len(body):,} bytes" in detail


def test_an_error_body_at_the_bound_is_decoded_as_before() -> None:
    """Up to the bound (whitespace and a long field included) Sentry's detail is read."""
    from sentry_async._protocol import errors

    bound = errors.MAX_ERROR_BODY
    head = b'{"detail":"Invalid query: x","pad":"'
    body = head + b"y" * (bound - len(head) - 4) + b'"}  '
    assert len(body) == bound
    error = build_api_error(400, body, method="GET", url="u")
    assert error.detail == "Invalid query: x"
    assert isinstance(error.data, dict) and len(error.data["pad"]) == bound - len(head) - 4
    assert error.body == body
    assert "cut" not in str(error)


def test_a_top_level_list_of_messages_is_the_detail() -> None:
    """DRF renders ``ValidationError("...")`` as a list (Sentry's discard refusal)."""
    error = build_api_error(
        400, b'["Only error issues can be discarded."]', method="PUT", url="https://x/api/0/y/"
    )
    assert isinstance(error, BadRequest)
    assert error.detail == "Only error issues can be discarded."
    assert str(error).endswith(": Only error issues can be discarded.")
    assert error.data == ["Only error issues can be discarded."]


def test_a_detail_list_of_messages_is_joined() -> None:
    body = b'{"detail": ["You do not have that feature enabled", "Invalid sort"]}'
    error = build_api_error(400, body, method="PUT", url="https://x/api/0/y/")
    assert error.detail == "You do not have that feature enabled; Invalid sort"
    assert str(error).endswith(": You do not have that feature enabled; Invalid sort")
    assert "[" not in str(error)


def test_lists_that_are_not_messages_keep_their_old_reading() -> None:
    assert parse_error_body(b"[1, 2]")[0] is None
    assert parse_error_body(b"[]")[0] is None
    assert parse_error_body(b'{"detail": []}')[0] is None
    structured = (
        b'{"detail": {"code": "sudo-required", "message": "Account verification required.",'
        b' "extra": {"u": 1}}}'
    )
    detail, _ = parse_error_body(structured)
    assert detail == ErrorDetail("sudo-required", "Account verification required.", {"u": 1})


@pytest.mark.parametrize(
    ("status", "detail"), [(500, "Internal Error"), (503, "Integration is unavailable")]
)
def test_sentrys_error_id_is_an_attribute_and_in_the_message(status: int, detail: str) -> None:
    body = b'{"detail": "%s", "errorId": "4b5e2f1a9c0d4e6f8a7b3c2d1e0f9a8b"}' % detail.encode()
    error = build_api_error(status, body, method="GET", url="https://x/api/0/y/")
    assert isinstance(error, ServerError)
    assert error.error_id == "4b5e2f1a9c0d4e6f8a7b3c2d1e0f9a8b"
    assert str(error) == (
        f"{status} from GET https://x/api/0/y/: {detail} (error id 4b5e2f1a9c0d4e6f8a7b3c2d1e0f9a8b)"
    )
    restored = pickle.loads(pickle.dumps(error))
    assert restored.error_id == error.error_id and str(restored) == str(error)


@pytest.mark.parametrize(
    "body", [b'{"detail": "Internal Error", "errorId": null}', b'{"detail": "x"}', b"[1]", b""]
)
def test_no_error_id_without_one(body: bytes) -> None:
    error = build_api_error(500, body, method="GET", url="https://x/api/0/y/")
    assert error.error_id is None
    assert "error id" not in str(error)
