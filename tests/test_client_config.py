"""Client configuration, URL building and secrecy of the token: no network."""

from __future__ import annotations

import logging
import pickle

import anyio
import pytest
from _local_server import local_app
from aiohttp import web
from yarl import URL

from sentry_async import SentryClient, Timeouts
from sentry_async._transport import Secret

TOKEN = "sntryu_" + "ab" * 32


def test_default_base_url_and_api_root(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SENTRY_URL", raising=False)
    client = SentryClient(TOKEN)
    assert client.api_root == URL("https://sentry.io/api/0")
    assert client.url_for("/organizations/{org}/issues/", {"org": "acme"}) == URL(
        "https://sentry.io/api/0/organizations/acme/issues/"
    )


@pytest.mark.parametrize(
    ("base", "expected"),
    [
        ("https://de.sentry.io", "https://de.sentry.io/api/0/organizations/acme/"),
        ("https://sentry.example.com/", "https://sentry.example.com/api/0/organizations/acme/"),
        ("https://example.com/sentry", "https://example.com/sentry/api/0/organizations/acme/"),
        (
            "https://example.com/sentry/api/0/",
            "https://example.com/sentry/api/0/organizations/acme/",
        ),
        ("http://127.0.0.1:9000", "http://127.0.0.1:9000/api/0/organizations/acme/"),
        ("http://localhost:9000", "http://localhost:9000/api/0/organizations/acme/"),
    ],
)
def test_base_urls(base: str, expected: str) -> None:
    client = SentryClient(TOKEN, base_url=base)
    assert str(client.url_for("/organizations/{org}/", {"org": "acme"})) == expected


@pytest.mark.parametrize("prefix", ["/my%20sentry", "/sentr%C3%BD", "/a%2Fb"])
def test_an_encoded_path_prefix_stays_encoded(prefix: str) -> None:
    client = SentryClient(TOKEN, base_url=f"http://127.0.0.1:9{prefix}/")
    path = f"{prefix}/api/0/organizations/acme/"
    assert client.url_for("/organizations/{org}/", {"org": "acme"}).raw_path == path
    assert client.api_root.raw_path == f"{prefix}/api/0"
    # a region on the same loopback host, under the same prefix
    client.trust_region("acme", f"http://127.0.0.1:10{prefix}/")
    region_url = client.url_for("/organizations/{org}/", {"org": "acme"})
    assert (region_url.port, region_url.raw_path) == (10, path)


async def test_every_page_goes_under_an_encoded_path_prefix() -> None:
    """The first request and the Link cursor's next page, on the wire."""
    seen: list[str] = []

    async def answer(request: web.Request) -> web.Response:
        seen.append(request.raw_path)
        cursor = request.query.get("cursor")
        more = "true" if cursor is None else "false"
        link = f'<x>; rel="next"; results="{more}"; cursor="0:100:0"'
        return web.json_response([{"id": "2" if cursor else "1"}], headers={"Link": link})

    app = web.Application()
    app.router.add_route("GET", "/{tail:.*}", answer)
    async with local_app(app) as url, SentryClient(TOKEN, base_url=url + "/my%20sentry/") as sc:
        with anyio.fail_after(10):
            items = await sc.paginate("/organizations/{org}/projects/", path_params={"org": "a"}).collect()
    assert [item["id"] for item in items] == ["1", "2"]
    assert [raw.partition("?")[0] for raw in seen] == ["/my%20sentry/api/0/organizations/a/projects/"] * 2


def test_base_url_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SENTRY_URL", "https://us.sentry.io")
    assert SentryClient(TOKEN).base_url == URL("https://us.sentry.io/")


def test_plain_http_refused_for_remote_hosts() -> None:
    with pytest.raises(ValueError, match="unencrypted"):
        SentryClient(TOKEN, base_url="http://sentry.example.com")
    client = SentryClient(TOKEN, base_url="http://sentry.example.com", allow_insecure_http=True)
    assert client.base_url.scheme == "http"


@pytest.mark.parametrize(
    "base", ["ftp://sentry.io", "sentry.io", "", "https://user:pw@sentry.io", "https://"]
)
def test_bad_base_urls(base: str) -> None:
    with pytest.raises(ValueError, match="base_url"):
        SentryClient(TOKEN, base_url=base)


@pytest.mark.parametrize(
    "base",
    [
        "https://256.256.256.256",
        "https://1.2.3",
        "https://exa mple.com",
        "https://exa%20mple.com",
        "https://.com",
        "https://a..b.com",
        "https://" + "a" * 64 + ".com",
    ],
)
def test_a_host_that_cannot_be_one_is_refused_at_once(base: str) -> None:
    with pytest.raises(ValueError, match="base_url"):
        SentryClient(TOKEN, base_url=base)


@pytest.mark.parametrize(
    "base",
    [
        "https://bücher.example",
        "https://sentry.io.",
        "https://10.0.0.5:9000",
        "http://[::1]:9000",
        "https://sentry_web.internal",
    ],
)
def test_unusual_hosts_that_are_hosts_are_kept(base: str) -> None:
    SentryClient(TOKEN, base_url=base)


def test_path_params_are_quoted_and_required() -> None:
    client = SentryClient(TOKEN)
    url = client.url_for(
        "/organizations/{org}/issues/{issue_id}/tags/{key}/",
        {"org": "acme", "issue_id": 5, "key": "sentry:user"},
    )
    assert url.raw_path == "/api/0/organizations/acme/issues/5/tags/sentry%3Auser/"
    with pytest.raises(ValueError, match="org"):
        client.url_for("/organizations/{org}/")
    with pytest.raises(ValueError, match="org"):
        client.url_for("/organizations/{org}/", {"org": "../admin"})
    with pytest.raises(ValueError, match="start with"):
        client.url_for("organizations/")


def test_default_org_fills_placeholder() -> None:
    client = SentryClient(TOKEN, org="acme")
    assert (
        client.url_for("/organizations/{org}/releases/").path
        == "/api/0/organizations/acme/releases/"
    )


def test_region_routing() -> None:
    client = SentryClient(TOKEN)
    client.trust_region("acme", "https://de.sentry.io")
    assert client.url_for("/organizations/{org}/issues/", {"org": "acme"}).host == "de.sentry.io"
    assert client.url_for("/organizations/{org}/issues/", {"org": "other"}).host == "sentry.io"
    assert client.url_for("/organizations/").host == "sentry.io"


def test_url_for_answers_again_once_a_region_is_learnt() -> None:
    # Answers are cached per path and values; learning a region or changing the default
    # org must not leave a stale one behind. A renamed project changes no URL: a read
    # follows its 302 within the call (tests/test_fidelity_renames.py).
    client = SentryClient(TOKEN)
    path, values = "/projects/{org}/{project}/events/", {"org": "acme", "project": "web"}
    assert client.url_for(path, values) is client.url_for(path, values)
    assert client.url_for(path, values).host == "sentry.io"
    client.trust_region("acme", "https://de.sentry.io")
    assert client.url_for(path, values).host == "de.sentry.io"
    client.org = "other"
    assert client.url_for("/organizations/{org}/").path == "/api/0/organizations/other/"
    with pytest.raises(ValueError, match="slug"):
        client.url_for(path, {"org": "acme", "project": ["not", "a", "slug"]})  # type: ignore[dict-item]


def test_token_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SENTRY_AUTH_TOKEN", TOKEN)
    client = SentryClient()
    assert client._token is not None
    assert client._token.reveal() == TOKEN
    monkeypatch.delenv("SENTRY_AUTH_TOKEN")
    assert SentryClient()._token is None


def test_token_with_spaces_refused_without_echo() -> None:
    with pytest.raises(ValueError, match="spaces") as info:
        SentryClient("abc def")
    assert "abc" not in str(info.value)


async def test_token_never_in_repr_str_or_pickle(caplog: pytest.LogCaptureFixture) -> None:
    client = SentryClient(TOKEN)
    caplog.set_level(logging.DEBUG)
    for text in (
        repr(client),
        str(client),
        repr(client._token),
        str(client._token),
        repr(vars(client)),
        repr(client._get_transport().__dict__),
    ):
        assert TOKEN not in text
    with pytest.raises(TypeError):
        pickle.dumps(Secret(TOKEN))
    assert TOKEN not in caplog.text
    await client.close()


def test_timeouts() -> None:
    client = SentryClient(TOKEN, timeout=5)
    assert client.timeouts == Timeouts(connect=5.0, read=5.0, total=300.0)
    aio = Timeouts(connect=1, read=2, total=3).to_aiohttp()
    assert (aio.sock_connect, aio.sock_read, aio.total) == (1, 2, 3)
    only = Timeouts(connect=1, read=2, total=3, pool=4).to_aiohttp(connection_only=True)
    assert (only.connect, only.sock_connect, only.sock_read, only.total) == (4, 1, None, None)


async def test_closed_client_refuses_requests() -> None:
    client = SentryClient(TOKEN, base_url="http://127.0.0.1:9")
    async with client:
        pass
    assert client.closed
    with pytest.raises(Exception, match="closed"):
        await client.request("GET", "/organizations/")
