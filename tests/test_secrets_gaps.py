"""The token never shows where a message repeats a value the library did not choose.

An ``item_id``'s error over an item that holds a token a server echoed, a base URL (or a
trusted host, or ``$SENTRY_URL``) carrying the token in its user information, the
client's own token passed where a slug or an issue id goes, and a header value quoted cut
short, where no redactor could recognise the piece left. Each is checked in the message,
the repr, the pickle, the ``__cause__``/``__context__`` chain and a traceback printed with
its frames' locals (but for a value the caller passed as an argument, which the caller's
frames hold as locals too). Servers are small aiohttp apps on 127.0.0.1 or the fake Sentry.
"""

from __future__ import annotations

import pickle
import traceback
from collections.abc import Callable
from typing import Any

import pytest
from _local_server import local_app
from aiohttp import web
from test_hostile_echo import BARE, FAST, TOKEN, assert_hidden, everything_shown, provoke

from sentry_async import ConnectionFailed, PaginationError, SentryClient
from sentry_async._protocol.body import BodyReader, UnsupportedEncoding
from sentry_async._protocol.links import LinkHeaderError, page_links
from sentry_async._protocol.params import check_slug, issue_id
from sentry_async.testing import FakeSentryFactory

pytestmark = pytest.mark.anyio

URL_TOKEN = "sntrys_eyJpYXQiOjE3MDAwMDAwMDB9_Abcdefghijklmnopqrstuvwxyz0123456789ABCD"
"""An organization token that fits in a URL's user information (no ``/`` in it)."""
USER_TOKEN = "sntryu_" + "0123456789abcdef" * 4
"""A user token: a valid slug as it stands."""


def assert_no_piece(text: str, secret: str, size: int = 12) -> None:
    """No ``size`` characters of ``secret`` in a row: a piece cut from it shows as much of
    it as no redactor recognises."""
    for at in range(len(secret) - size + 1):
        assert secret[at : at + size] not in text, f"{secret[at : at + size]!r} shown"


def messages(error: BaseException) -> str:
    """What :func:`everything_shown` shows but frames' locals: a value passed as an argument
    is a local of the caller's frames (and of the checks it passed through) as it is."""
    parts = [str(error), repr(error), "".join(traceback.format_exception(error))]
    parts.append(repr(pickle.dumps(error)))
    for link in (error.__cause__, error.__context__):
        assert link is None
    parts.extend(repr(value) for value in vars(error).values())
    return "\n".join(parts)


def _refusal(make: Callable[[], object]) -> BaseException:
    """What ``make`` raises, caught in a frame of its own that holds no secret."""
    with pytest.raises((TypeError, ValueError)) as refused:
        make()
    return refused.value


# An item_id that raises over an item holding the token a server echoed.


def _reraised(item: dict[str, str]) -> int:
    try:
        return int(item["id"])
    except ValueError:
        raise LookupError("no numeric id") from None  # the ValueError stays its context


ITEM_IDS: dict[str, tuple[dict[str, str], Callable[[dict[str, str]], Any], str, bool]] = {
    "its message quotes the token": (
        {"id": TOKEN}, lambda item: int(item["id"]), "ValueError(", False
    ),
    "its frame holds the item": ({"id": TOKEN}, lambda item: item["uid"], "KeyError('uid')", False),
    "its context quotes the token": ({"id": TOKEN}, _reraised, "LookupError('no numeric id')", False),
    "nothing of it holds the token": ({"id": "2"}, lambda item: item["uid"], "KeyError('uid')", True),
}  # fmt: skip
"""Each case by name: the item on the page, the ``item_id``, how the error describes its
error, and whether that error is chained (only when nothing of it shows the token)."""
QUOTING = "its message quotes the token"


def _one_page(item: dict[str, str]) -> web.Application:
    async def page(request: web.Request) -> web.Response:
        return web.json_response([{"id": "1", "uid": "1"}, item])

    app = web.Application()
    app.router.add_get("/{tail:.*}", page)
    return app


@pytest.mark.parametrize("prefetch", [0, 2])
@pytest.mark.parametrize("case", list(ITEM_IDS))
async def test_an_item_id_error_holding_an_echoed_token_is_described_not_chained(
    case: str, prefetch: int
) -> None:
    async with (
        local_app(_one_page(ITEM_IDS[case][0])) as url,
        SentryClient(TOKEN, base_url=url, retry=FAST) as client,
    ):
        paginator = client.paginate(
            "/organizations/", type=dict, prefetch=prefetch, item_id=ITEM_IDS[case][1]
        )
        error = await provoke(paginator.collect)
    assert isinstance(error, PaginationError)
    assert f"item_id raised {ITEM_IDS[case][2]}" in str(error)
    assert "on the item at index 1 of the first page" in str(error)
    if ITEM_IDS[case][3]:
        assert isinstance(error.__cause__, KeyError), "the caller's own error, to debug"
    else:
        assert error.__cause__ is None and error.__context__ is None
    assert_hidden(everything_shown(error))


async def test_an_item_id_error_quoting_an_echoed_token_is_described_with_it_blanked() -> None:
    async with (
        local_app(_one_page({"id": TOKEN})) as url,
        SentryClient(TOKEN, base_url=url, retry=FAST) as client,
    ):
        paginator = client.paginate(
            "/organizations/", type=dict, prefetch=0, item_id=ITEM_IDS[QUOTING][1]
        )
        error = await provoke(paginator.collect)
    assert isinstance(error, PaginationError) and error.__cause__ is None
    said = "ValueError(\"invalid literal for int() with base 10: '********'\")"
    assert f"item_id raised {said} on the item at index 1" in str(error)


# A base URL carrying the token in its user information, refused for whatever reason.


BAD_URLS: dict[str, tuple[str, str]] = {
    "a typo in the scheme": (
        f"htps://{URL_TOKEN}@sentry.example.com",
        "absolute http(s) URL (got 'htps://********@sentry.example.com')",
    ),
    "no scheme": (
        f"{URL_TOKEN}@sentry.example.com",
        "absolute http(s) URL (got '********@sentry.example.com')",
    ),
    "a port out of range": (
        f"https://{URL_TOKEN}@sentry.example.com:99999",
        "is not a URL: 'https://********@sentry.example.com:99999'",
    ),
    "credentials": (f"https://{URL_TOKEN}@sentry.example.com", "must not carry credentials"),
    "a password": (f"https://user:{URL_TOKEN}@sentry.example.com", "must not carry credentials"),
    "a key and an unusable host": (f"https://{URL_TOKEN}:@sentry_example..com", "unusable host"),
    "a token with a slash": (f"https://{TOKEN}@sentry.example.com", "must not carry credentials"),
    "a token with a slash, a typo in the scheme": (
        f"htps://{TOKEN}@sentry.example.com",
        "absolute http(s) URL (got 'htps://********@sentry.example.com')",
    ),
}
"""Each case by name: the test's frames, in the traceback too, hold only the name."""


def _client(where: str, case: str) -> SentryClient:
    if where == "base_url":
        return SentryClient(URL_TOKEN, base_url=BAD_URLS[case][0], proxy=None)
    if where == "trusted_hosts":
        return SentryClient(URL_TOKEN, trusted_hosts=[BAD_URLS[case][0]], proxy=None)
    return SentryClient(URL_TOKEN, proxy=None)


@pytest.mark.parametrize("where", ["base_url", "trusted_hosts", "SENTRY_URL"])
@pytest.mark.parametrize("case", list(BAD_URLS))
def test_a_refused_base_url_never_shows_its_user_information(
    where: str, case: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    if where == "SENTRY_URL":
        monkeypatch.setenv("SENTRY_URL", BAD_URLS[case][0])
    error = _refusal(lambda: _client(where, case))
    assert BAD_URLS[case][1] in str(error)
    assert str(error).startswith("trusted_hosts" if where == "trusted_hosts" else "base_url")
    assert error.__cause__ is None and error.__context__ is None
    shown = everything_shown(error)
    assert_no_piece(shown, URL_TOKEN)
    assert_no_piece(shown, TOKEN)


ONE_STRING = {"a URL": f"https://{URL_TOKEN}@eu.example.com", "no scheme": f"{URL_TOKEN}@eu"}


@pytest.mark.parametrize("case", list(ONE_STRING))
def test_trusted_hosts_as_one_string_is_refused_without_its_user_information(case: str) -> None:
    error = _refusal(lambda: SentryClient(URL_TOKEN, trusted_hosts=ONE_STRING[case], proxy=None))
    assert isinstance(error, TypeError) and "not one string" in str(error)
    assert "********@eu" in str(error)
    assert_no_piece(everything_shown(error), URL_TOKEN)


def test_a_base_url_refused_after_it_was_read_is_not_a_local_of_the_client() -> None:
    """A base URL or a trusted host refused for its user information, and a list of trusted
    hosts one of which is refused: no traceback shows it in ``SentryClient()``'s locals."""
    for make in (
        lambda: SentryClient(URL_TOKEN, base_url=BAD_URLS["credentials"][0], proxy=None),
        lambda: SentryClient(URL_TOKEN, trusted_hosts=[BAD_URLS["credentials"][0]], proxy=None),
        lambda: SentryClient(
            URL_TOKEN,
            trusted_hosts=["https://eu.example.com", BAD_URLS["a typo in the scheme"][0]],
            proxy=None,
        ),
    ):
        assert_no_piece(everything_shown(_refusal(make)), URL_TOKEN)


# The client's own token where a slug or an issue id goes.


async def test_the_clients_token_as_a_project_slug_is_blanked_out(
    fake_sentry_factory: FakeSentryFactory,
) -> None:
    server = await fake_sentry_factory(token=USER_TOKEN)
    org = server.data.org_slugs()[0]
    async with SentryClient(USER_TOKEN, base_url=server.url, retry=FAST) as client:
        with pytest.raises(ValueError) as refused:
            await client.issues.list(org, project=USER_TOKEN).collect()
    assert str(refused.value) == f"no project with slug '********' in organization {org!r}"
    assert_no_piece(messages(refused.value), USER_TOKEN[7:])


@pytest.mark.parametrize("value", [USER_TOKEN, URL_TOKEN, USER_TOKEN[7:], TOKEN])
def test_a_token_given_as_an_issue_id_is_not_repeated(value: str) -> None:
    with pytest.raises(ValueError, match="short id such as PROJ-1A") as refused:
        issue_id(value)
    assert str(refused.value).endswith("(got '********')")
    assert_no_piece(messages(refused.value), value[7:])


async def test_the_clients_token_as_an_issue_id_is_not_repeated() -> None:
    async with SentryClient(USER_TOKEN, base_url="http://127.0.0.1:9", retry=FAST) as client:
        with pytest.raises(ValueError) as refused:
            await client.issues.get("acme", USER_TOKEN)
    assert "(got '********')" in str(refused.value)
    assert_no_piece(messages(refused.value), USER_TOKEN[7:])


def test_a_token_refused_as_a_slug_is_not_repeated() -> None:
    """A token with a ``/`` (base64 has them) is no slug."""
    with pytest.raises(ValueError, match="not a valid slug") as refused:
        check_slug(TOKEN, "project")
    assert str(refused.value) == "project is not a valid slug or id: '********'"
    assert_hidden(messages(refused.value))


def test_a_value_that_is_no_token_is_still_quoted() -> None:
    with pytest.raises(ValueError, match=r"\(got 'not an id'\)"):
        issue_id("not an id")
    with pytest.raises(ValueError, match="valid slug or id: 'a/b'"):
        check_slug("a/b", "project")


# A header value quoted only whole, never cut to a piece no redactor recognises.


@pytest.mark.parametrize("secret", [TOKEN, BARE, USER_TOKEN, USER_TOKEN[7:]])
def test_an_unsupported_content_encoding_is_never_quoted_in_part(secret: str) -> None:
    with pytest.raises(UnsupportedEncoding) as refused:
        BodyReader(limit=None, content_length=None, encoding=secret)
    assert str(refused.value).startswith("unsupported Content-Encoding")
    assert_no_piece(str(refused.value), secret)


@pytest.mark.parametrize("secret", [TOKEN, BARE, USER_TOKEN, USER_TOKEN[7:]])
def test_an_unknown_link_charset_is_never_quoted_in_part(secret: str) -> None:
    with pytest.raises(LinkHeaderError) as refused:
        page_links(f"=?{secret}?B?YWJj?=")
    assert str(refused.value).startswith("RFC 2047 Link header in charset")
    assert_no_piece(str(refused.value), secret)


def test_a_short_unknown_value_is_still_quoted_whole() -> None:
    with pytest.raises(UnsupportedEncoding, match="unsupported Content-Encoding 'br'"):
        BodyReader(limit=None, content_length=None, encoding="br")
    with pytest.raises(LinkHeaderError, match="in charset 'koi8-r'"):
        page_links("=?koi8-r?B?YWJj?=")


async def test_a_content_encoding_echoing_the_token_shows_none_of_it() -> None:
    async def echo(request: web.Request) -> web.Response:
        token = request.headers["Authorization"].removeprefix("Bearer ")
        return web.Response(body=b"{}", headers={"Content-Encoding": token})

    app = web.Application()
    app.router.add_get("/{tail:.*}", echo)
    async with local_app(app) as url, SentryClient(TOKEN, base_url=url, retry=FAST) as client:
        error = await provoke(lambda: client.request("GET", "/organizations/acme/"))
    assert isinstance(error, ConnectionFailed)
    assert "unsupported Content-Encoding" in str(error)
    shown = everything_shown(error)
    assert_hidden(shown)
    assert_no_piece(shown, TOKEN)
