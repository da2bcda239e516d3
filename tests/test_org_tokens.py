"""Organization auth tokens (``sntrys_<base64 JSON>_<secret>``) name their server: the
client goes there by default and refuses another, as sentry-cli does."""

from __future__ import annotations

import base64
import io
import json
from pathlib import Path
from typing import Any

import pytest
from yarl import URL

from sentry_async import SentryClient
from sentry_async._protocol.errors import Redactor
from sentry_async._protocol.org_tokens import (
    OrgTokenClaims,
    org_token_claims,
    server_refusal,
)
from sentry_async.cli import main
from sentry_async.testing import FakeSentry

SECRET = "Zm9yIHRlc3RzIG9ubHkgbm90IGEgcmVhbCBzZWNyZXQgYXQgYWxs"


def org_token(payload: Any, secret: str = SECRET) -> str:
    """A token as Sentry's ``generate_token`` writes one (``orgauthtoken_token.py``)."""
    encoded = base64.b64encode(json.dumps(payload).encode("ascii")).decode("ascii")
    return f"sntrys_{encoded}_{secret}"


def saas_token(region: str = "https://us.sentry.io", org: str = "acme") -> str:
    return org_token(
        {"iat": 1_700_000_000.5, "url": "https://sentry.io", "region_url": region, "org": org}
    )


@pytest.fixture(autouse=True)
def _no_sentry_url(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SENTRY_URL", raising=False)


# --- the token's claims, read as Sentry reads them -------------------------------------


def test_the_claims_of_a_token_as_sentry_writes_it() -> None:
    assert org_token_claims(saas_token()) == OrgTokenClaims(
        url="https://sentry.io", region_url="https://us.sentry.io", org="acme"
    )


@pytest.mark.parametrize(
    "token",
    [
        "sntryu_" + "a" * 64,  # a user token
        "0123456789abcdef" * 4,  # a legacy token
        org_token({"url": "https://sentry.io"}),  # no iat: Sentry's parse_token says None
        org_token({"iat": 0, "url": "https://sentry.io"}),
        org_token(["iat", "url"]),
        org_token({"iat": 1, "url": "https://sentry.io"}) + "_more",  # three underscores
        "sntrys_" + base64.b64encode(b"not json").decode() + "_" + SECRET,
        "sntrys_" + base64.b64encode(b"\xff\xfe{}").decode() + "_" + SECRET,
        "sntrys_%%%_" + SECRET,
        "sntrys_ab_" + SECRET,  # base64 with a bad length
        "sntrys_é_" + SECRET,
    ],
)
def test_anything_else_is_no_organization_token(token: str) -> None:
    assert org_token_claims(token) is None


def test_claims_that_are_not_text_are_left_out() -> None:
    claims = org_token_claims(org_token({"iat": 1, "url": 5, "region_url": "", "org": None}))
    assert claims == OrgTokenClaims(url=None, region_url=None, org=None)


@pytest.mark.parametrize(
    "base",
    [
        "https://sentry.io",
        "https://sentry.io/some/prefix",
        "https://us.sentry.io",
        "https://SENTRY.io:443",
    ],
)
def test_the_token_may_go_to_its_server_or_its_region(base: str) -> None:
    claims = org_token_claims(saas_token())
    assert claims is not None
    assert server_refusal(claims, URL(base)) is None


@pytest.mark.parametrize(
    "base",
    ["https://de.sentry.io", "http://sentry.io", "https://sentry.io:8443", "https://example.com"],
)
def test_the_token_may_not_go_to_another_server(base: str) -> None:
    claims = org_token_claims(saas_token())
    assert claims is not None
    refusal = server_refusal(claims, URL(base))
    assert refusal is not None
    assert "made for https://sentry.io or https://us.sentry.io" in refusal
    assert str(URL(base).origin()) in refusal


def test_a_token_naming_no_server_goes_anywhere() -> None:
    claims = org_token_claims(org_token({"iat": 1, "url": "not a url", "org": "acme"}))
    assert claims is not None
    assert server_refusal(claims, URL("https://example.com")) is None


# --- the client ----------------------------------------------------------------------


def test_the_client_goes_to_the_tokens_server_and_organization() -> None:
    token = org_token(
        {
            "iat": 1,
            "url": "https://sentry.example.com/sentry/",
            "region_url": "https://sentry.example.com/sentry/",
            "org": "acme",
        }
    )
    client = SentryClient(token)
    assert str(client.base_url) == "https://sentry.example.com/sentry"
    assert str(client.api_root) == "https://sentry.example.com/sentry/api/0"
    assert client.org == "acme"
    assert client.url_for("/organizations/{org}/issues/").path == (
        "/sentry/api/0/organizations/acme/issues/"
    )


def test_an_org_passed_in_wins_over_the_tokens() -> None:
    # A renamed organization: the token keeps the slug it was made under.
    assert SentryClient(saas_token(), org="acme-renamed").org == "acme-renamed"


def test_a_token_without_a_server_goes_to_the_default() -> None:
    client = SentryClient(org_token({"iat": 1, "org": "a b"}))
    assert str(client.base_url) == "https://sentry.io/"
    assert client.org is None  # not a slug a path could hold


@pytest.mark.parametrize(
    ("base_url", "kept"),
    [
        ("https://us.sentry.io", "https://us.sentry.io/"),
        ("https://sentry.io/", "https://sentry.io/"),
        ("https://sentry.io/api/0/", "https://sentry.io/"),
    ],
)
def test_a_base_url_of_the_tokens_server_or_region_is_kept(base_url: str, kept: str) -> None:
    assert str(SentryClient(saas_token(), base_url=base_url).base_url) == kept


def test_a_base_url_of_another_server_is_refused_without_showing_the_token() -> None:
    token = saas_token()
    with pytest.raises(ValueError, match=r"made for https://sentry\.io or https://us\.sentry\.io, "
                       r"not https://sentry\.corp\.example") as caught:
        SentryClient(token, base_url="https://sentry.corp.example")
    assert not str(caught.value).startswith("$")
    secret = token.rsplit("_", 1)[1]
    for text in (str(caught.value), repr(caught.value)):
        assert secret not in text and token not in text


def test_sentry_url_of_another_server_is_refused_and_named(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SENTRY_URL", "https://self-hosted.example")
    with pytest.raises(ValueError, match=r"^\$SENTRY_URL: the organization token was made for"):
        SentryClient(saas_token())


def test_the_tokens_own_plain_http_server_is_refused_as_any_base_url() -> None:
    token = org_token({"iat": 1, "url": "http://sentry.corp.example", "org": "acme"})
    with pytest.raises(
        ValueError, match=r"^the organization token's own server: refusing plain http://"
    ):
        SentryClient(token)
    client = SentryClient(token, allow_insecure_http=True)
    assert str(client.base_url) == "http://sentry.corp.example/"


async def test_requests_reach_the_tokens_own_server(fake_sentry: FakeSentry) -> None:
    org = "org-0"
    url = str(fake_sentry.url)
    token = fake_sentry.add_token(
        org_token({"iat": 1, "url": url, "region_url": url, "org": org}),
        scopes=["org:read", "project:read"],
    )
    async with SentryClient(token) as client:
        assert (await client.organizations.get(org)).slug == org
        answer = await client.request("GET", "/organizations/{org}/")
        assert answer["slug"] == org
    assert fake_sentry.requests.last("GET", "/organizations/{org}/").authenticated


# --- the command line ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("token_url", "argv", "env", "expected"),
    [
        (
            "https://sentry.io",
            ["--base-url", "https://sentry.corp.example"],
            None,
            "sentry-async: error: --base-url: the organization token was made for https://sentry.io, "
            "not https://sentry.corp.example: it would go to a server that did not issue it "
            "(leave out --base-url and $SENTRY_URL",
        ),
        (
            "https://sentry.io",
            [],
            "https://sentry.corp.example",
            "sentry-async: error: $SENTRY_URL: the organization token was made for https://sentry.io",
        ),
        (
            "http://sentry.corp.example",
            [],
            None,
            "sentry-async: error: the organization token's own server: refusing plain http:// for "
            "sentry.corp.example in its URL: the token would travel unencrypted (pass "
            "--allow-insecure-http to override)",
        ),
    ],
    ids=["flag", "env", "tokens-own"],
)
def test_the_command_line_says_where_a_refused_server_came_from(
    token_url: str,
    argv: list[str],
    env: str | None,
    expected: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    token = org_token({"iat": 1, "url": token_url, "org": "acme"})
    monkeypatch.setenv("SENTRY_AUTH_TOKEN", token)
    if env is not None:
        monkeypatch.setenv("SENTRY_URL", env)
    out, err = io.StringIO(), io.StringIO()
    code = main(
        ["export", "events", "--org", "acme", "-o", str(tmp_path / "out"), *argv],
        stdout=out,
        stderr=err,
    )
    assert code == 2
    lines = err.getvalue().splitlines()
    assert len(lines) == 1 and lines[0].startswith(expected), lines
    assert SECRET not in err.getvalue() + out.getvalue()
    assert not (tmp_path / "out").exists()


def test_a_token_made_without_a_server_url_goes_to_its_region() -> None:
    # Sentry writes "url": null when system.url-prefix is unset; the region is still named.
    token = org_token(
        {"iat": 1, "url": None, "region_url": "https://sentry.local/", "org": "sentry"}
    )
    client = SentryClient(token)
    assert str(client.base_url) == "https://sentry.local/"
    with pytest.raises(ValueError, match=r"made for https://sentry\.local, not https://sentry\.io"):
        SentryClient(token, base_url="https://sentry.io")


def test_a_payload_too_deep_to_decode_is_no_organization_token() -> None:
    payload = base64.b64encode(b'{"iat":1,"x":' + b"[" * 5000 + b"]" * 5000 + b"}").decode()
    token = f"sntrys_{payload}_{SECRET}"
    assert org_token_claims(token) is None
    assert str(SentryClient(token).base_url) == "https://sentry.io/"


def test_the_tokens_own_url_is_named_as_such_when_refused() -> None:
    token = org_token({"iat": 1, "url": "sentry.example.com", "org": "acme"})
    with pytest.raises(ValueError) as caught:
        SentryClient(token)
    assert str(caught.value) == (
        "the organization token's own server: its URL must be an absolute http(s) URL "
        "(got 'sentry.example.com')"
    )


KEY = "lQ5ETt61cHhvJa35fxvxARsDXeVrd0pu4/smF4sRieA"
"""An organization token's key, as Sentry's generate_token makes one (base64, a "/" in it)."""


@pytest.mark.parametrize(
    "echo",
    [KEY, KEY.replace("/", "_"), f"sntrys__{KEY}"],
    ids=["key", "url-safe key", "token without its payload"],
)
def test_an_organization_tokens_key_echoed_alone_is_blanked(echo: str) -> None:
    token = org_token({"iat": 1, "url": "https://sentry.io"}, secret=KEY)
    shown = Redactor(token).text(f"bad token {echo}")
    assert shown.startswith("bad token ")
    assert "lQ5ETt61cH" not in shown
