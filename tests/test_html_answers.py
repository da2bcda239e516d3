"""A base URL pasted from the browser reaches Sentry's web UI, which answers every page
path with HTML: the error says so, and what base_url should be."""

from __future__ import annotations

import anyio
import pytest
from _local_server import local_app
from aiohttp import web

from sentry_async import DecodeError, RetryPolicy, SentryClient

QUICK_RETRY = RetryPolicy(attempts=2, backoff_base=0.01, backoff_max=0.05)
PAGE = b"<!DOCTYPE html>\n<html><head><title>Sentry</title></head><body></body></html>"


def _web_ui() -> web.Application:
    async def page(request: web.Request) -> web.Response:
        return web.Response(body=PAGE, content_type="text/html")

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", page)
    return app


@pytest.mark.parametrize("labelled", [True, False], ids=["text/html", "unlabelled"])
async def test_an_html_page_where_json_was_due_says_what_base_url_should_be(
    labelled: bool,
) -> None:
    async def unlabelled(request: web.Request) -> web.Response:
        return web.Response(body=b"\n  " + PAGE, content_type="application/octet-stream")

    app = _web_ui()
    if not labelled:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", unlabelled)
    async with local_app(app) as url:
        base = f"{url}/organizations/acme/"
        async with SentryClient("sntryu_" + "a" * 64, base_url=base, retry=QUICK_RETRY) as c:
            with anyio.fail_after(10), pytest.raises(DecodeError) as caught:
                await c.organizations.get("acme")
    reason = caught.value.reason
    assert reason.startswith("the server answered 200 with an HTML page, not JSON: is base_url")
    assert "rather than the URL of a page?" in reason
    assert "JSON is malformed" in reason  # msgspec's own words kept at the end


async def test_a_body_that_is_merely_not_json_keeps_msgspecs_words() -> None:
    async def broken(request: web.Request) -> web.Response:
        return web.Response(body=b'{"slug": ', content_type="application/json")

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", broken)
    async with (
        local_app(app) as url,
        SentryClient("sntryu_" + "a" * 64, base_url=url, retry=QUICK_RETRY) as c,
    ):
        with anyio.fail_after(10), pytest.raises(DecodeError) as caught:
            await c.organizations.get("acme")
    assert "HTML" not in caught.value.reason
