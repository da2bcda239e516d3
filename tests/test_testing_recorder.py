"""What the fake server records of each request, and the helpers tests assert with."""

from __future__ import annotations

import pickle

import anyio
import pytest

from sentry_async import RetryPolicy, SentryClient
from sentry_async.testing import FILTERED, FakeSentry, Fault, RecordedRequest, RequestLog

ORG = "org-0"
FAST = RetryPolicy(attempts=1)


async def test_requests_keep_method_path_query_and_body(fake_sentry: FakeSentry) -> None:
    issue_id = fake_sentry.data.issue_ids(ORG)[0]
    async with fake_sentry.client(retry=FAST) as sentry:
        with anyio.fail_after(10):
            await sentry.issues.list(ORG, query="is:unresolved", project=[101, 102]).collect()
            await sentry.issues.update(ORG, issue_id, status="resolved")
    listing, update = fake_sentry.requests[0], fake_sentry.requests[-1]
    assert (listing.method, listing.path) == ("GET", f"/api/0/organizations/{ORG}/issues/")
    assert listing.param("query") == "is:unresolved"
    assert listing.params("project") == ["101", "102"]
    assert listing.body == b"" and listing.json() is None
    assert update.method == "PUT" and update.json() == {"status": "resolved"}
    assert update.route == "/api/0/organizations/{org}/issues/{issue_id}/"


async def test_the_token_is_never_recorded(fake_sentry_factory) -> None:
    token = "sntrys_recorder-secret-0123456789"
    server = await fake_sentry_factory(token=token)
    async with SentryClient(token, base_url=server.url) as sentry:
        await sentry.organizations.get(ORG)
    async with SentryClient("sntrys_some-other-token", base_url=server.url, retry=FAST) as sentry:
        with pytest.raises(Exception, match="401"):
            await sentry.organizations.get(ORG)
    good, bad = server.requests
    assert good.headers["authorization"] == f"Bearer {FILTERED}"
    assert bad.headers["authorization"] == f"Bearer {FILTERED}"
    for record in (good, bad):
        for text in (repr(record), str(record.__dict__), repr(server.requests)):
            assert token not in text and "some-other-token" not in text
        assert token.encode() not in pickle.dumps(record)
    assert good.authenticated and good.sent_token(token)
    assert not bad.authenticated and bad.sent_token("sntrys_some-other-token")
    assert not bad.sent_token(token)


def _record(method: str, path: str, query: list[tuple[str, str]], body: bytes = b"") -> RecordedRequest:
    return RecordedRequest(method, path, query, {}, started=0.0, status=200, body=body)


LOG = RequestLog(
    [
        _record("GET", "/api/0/organizations/acme/issues/", [("query", "is:unresolved"), ("limit", "100")]),
        _record(
            "GET",
            "/api/0/organizations/acme/issues/",
            [("query", "is:unresolved"), ("limit", "100"), ("cursor", "0:100:0")],
        ),
        _record("PUT", "/api/0/organizations/acme/issues/", [("id", "1"), ("id", "2")], b'{"status":"resolved"}'),
        _record("GET", "/api/0/projects/acme/backend/events/", [("full", "true")]),
    ]
)


def test_matching_by_route_template_or_concrete_path() -> None:
    assert LOG.matching("GET", "/organizations/{org}/issues/") == LOG[:2]
    assert LOG.matching("get", "/api/0/organizations/acme/issues/") == LOG[:2]
    assert LOG.matching(None, "/organizations/acme/issues") == LOG[:3]
    assert LOG.matching("GET", "/organizations/{org}/") == []
    assert LOG.matching("GET", "/projects/{org}/{project}/events/", full="true") == [LOG[3]]
    assert LOG.matching("PUT") == [LOG[2]]


def test_matching_by_query_parameters_and_body() -> None:
    issues = "/organizations/{org}/issues/"
    assert LOG.matching("GET", issues, query="is:unresolved", cursor=None) == [LOG[0]]
    assert LOG.matching("GET", issues, limit=100) == LOG[:2]
    assert LOG.matching("PUT", issues, id=["1", "2"]) == [LOG[2]]
    assert LOG.matching("PUT", issues, id="1") == [], "a string is the only value"
    assert LOG.matching("PUT", issues, json={"status": "resolved"}) == [LOG[2]]
    assert LOG.matching("PUT", issues, json={"status": "ignored"}) == []
    with pytest.raises(TypeError, match="full="):
        LOG.matching("GET", full=True)  # type: ignore[arg-type]


def test_a_body_that_is_not_json_matches_no_json_expectation() -> None:
    form = _record("PUT", "/api/0/organizations/acme/issues/", [("id", "1")], b"status=resolved")
    log = RequestLog([*LOG, form])
    assert log.matching("PUT", json={"status": "resolved"}) == [LOG[2]]
    log.assert_not_called("PUT", "/organizations/{org}/issues/", json={"status": "ignored"})
    assert log.matching(json={"x": 1}) == []


def test_assertion_helpers_say_what_was_recorded() -> None:
    issues = "/organizations/{org}/issues/"
    assert LOG.assert_called("GET", issues, query="is:unresolved") == LOG[:2]
    assert LOG.assert_called_once("PUT", issues) is LOG[2]
    assert LOG.last("GET", issues) is LOG[1]
    LOG.assert_not_called("DELETE", issues)
    with pytest.raises(AssertionError) as missing:
        LOG.assert_called("GET", issues, query="is:resolved")
    message = str(missing.value)
    assert "GET /organizations/{org}/issues/ with query='is:resolved'" in message
    assert "recorded (4):" in message and "query=is%3Aunresolved" in message
    with pytest.raises(AssertionError, match=r"2 requests matched .* expected 1"):
        LOG.assert_called_once("GET", issues)
    with pytest.raises(AssertionError, match=r"1 requests matched .* expected none"):
        LOG.assert_not_called("PUT")
    with pytest.raises(AssertionError, match="no request was recorded"):
        RequestLog().last()


async def test_an_answer_cut_mid_body_keeps_the_body_its_handler_read(
    fake_sentry: FakeSentry,
) -> None:
    # The handler read and applied the body before the answer was cut: both attempts went
    # out with it, and both are recorded with it.
    ids = fake_sentry.data.issue_ids(ORG)[:2]
    fake_sentry.faults.add(Fault("drop_mid_body", method="PUT", times=1))
    retry = RetryPolicy(backoff_base=0.01, backoff_max=0.02)
    async with fake_sentry.client(retry=retry) as sentry:
        with anyio.fail_after(10):
            await sentry.issues.bulk_update(ORG, ids, status="resolved")
    puts = fake_sentry.requests.matching("PUT", "/organizations/{org}/issues/")
    assert [(r.status, r.json()) for r in puts] == [(200, {"status": "resolved"})] * 2
    sent = fake_sentry.requests.assert_called(
        "PUT", "/organizations/{org}/issues/", json={"status": "resolved"}
    )
    assert len(sent) == 2
