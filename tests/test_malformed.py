"""Malformed and hostile responses: the client answers with a typed error naming the
endpoint, or a documented pass-through, never a stray exception and never lost data.

The fake server's faults cover most payloads (``status`` faults serve any body with any
content type); a tiny scripted aiohttp app on 127.0.0.1 serves what it cannot (custom Link
headers, oversized headers).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import anyio
import msgspec
import pytest
from aiohttp import web

from sentry_async import (
    APIError,
    BadRequest,
    ConnectionFailed,
    DecodeError,
    PaginationError,
    RateLimited,
    RetryPolicy,
    SentryClient,
    ServerError,
    TransportError,
)
from sentry_async.export import (
    CHECKPOINT_NAME,
    MANIFEST_NAME,
    ExportDecodeError,
    ExportSpec,
    Manifest,
    export,
)
from sentry_async.sansio import MAX_ERROR_BODY
from sentry_async.testing import FakeSentry, Fault
from sentry_async.testing._data import DEFAULT_PRIORITIES
from sentry_async.testing.pytest_plugin import FIXED_NOW

FAST = RetryPolicy(attempts=3, backoff_base=0.01, backoff_max=0.05)
TEN_MB = 10 * 1024 * 1024
DEPTH = 10_000


def _org(server: FakeSentry) -> str:
    return server.data.org_slugs()[0]


def _issue_bodies(server: FakeSentry, count: int) -> list[dict[str, Any]]:
    org = _org(server)
    ids = server.data.issue_ids(org)[:count]
    return [server.data.issue_body(server.data.issues_by_id[i]) for i in ids]


def _client(server: FakeSentry, **kwargs: Any) -> SentryClient:
    kwargs.setdefault("retry", FAST)
    return SentryClient(server.token, base_url=server.url, **kwargs)


def _serve(server: FakeSentry, body: bytes | Any, *, status: int = 200, **fault: Any) -> None:
    """Every issues-list request gets ``body`` with ``status``, whatever the retries."""
    fault.setdefault("path", r"/issues/$")
    fault.setdefault("times", None)
    server.faults.add(Fault("status", status=status, body=body, **fault))


async def _first_issue(server: FakeSentry, *, raw: bool = False) -> Any:
    async with _client(server) as client:
        with anyio.fail_after(20):
            if raw:
                return await client.issues.list(_org(server)).raw().collect()
            return await client.issues.list(_org(server)).collect()


# Decodable JSON of the wrong shape.


async def test_wrong_field_type_names_endpoint_model_and_field(fake_sentry: FakeSentry) -> None:
    good, bad = _issue_bodies(fake_sentry, 2)
    bad["title"] = {"not": "a string"}
    _serve(fake_sentry, [good, bad])
    with pytest.raises(DecodeError) as caught:
        await _first_issue(fake_sentry)
    error = caught.value
    assert "/issues/" in error.url and error.method == "GET"
    assert "Issue" in error.type_name
    assert "$[1].title" in str(error)
    assert len(fake_sentry.requests) == 1, "a body that parses but does not fit is final"


@pytest.mark.anyio
@pytest.mark.parametrize("body", [{"detail": "surprise"}, None, "just text", 42])
async def test_list_endpoint_answering_a_non_list_is_a_decode_error(
    fake_sentry: FakeSentry, body: Any
) -> None:
    _serve(fake_sentry, msgspec.json.encode(body))
    with pytest.raises(DecodeError, match="Expected `array`") as caught:
        await _first_issue(fake_sentry)
    assert "/issues/" in caught.value.url


async def test_raw_mode_passes_a_bad_item_through_and_keeps_the_rest(
    fake_sentry: FakeSentry,
) -> None:
    """Raw mode does not look inside items: a wrong-typed one arrives as its exact bytes."""
    first, last = _issue_bodies(fake_sentry, 2)
    items = [first, 12, "a string", None, {"id": []}, last]
    _serve(fake_sentry, items)
    raw = await _first_issue(fake_sentry, raw=True)
    assert [msgspec.json.decode(bytes(item)) for item in raw] == items


# Bodies that are not JSON, and content types that lie.


async def test_html_with_json_content_type_is_a_decode_error(fake_sentry: FakeSentry) -> None:
    fake_sentry.faults.add(Fault("invalid_json_content", path=r"/issues/$", times=None))
    with pytest.raises(DecodeError, match="malformed") as caught:
        await _first_issue(fake_sentry)
    assert "/issues/" in caught.value.url
    assert 1 <= len(fake_sentry.requests) <= FAST.attempts


async def test_json_served_as_text_html_is_decoded(fake_sentry: FakeSentry) -> None:
    """The body decides, not the content type: Sentry serves some JSON as text/html."""
    fake_sentry.faults.add(
        Fault("invalid_json_content", content_type="text/html", path=r"/issues/$", times=None)
    )
    issues = await _first_issue(fake_sentry)
    assert len(issues) == len(
        fake_sentry.data.issue_ids(
            _org(fake_sentry), status="unresolved", priority=DEFAULT_PRIORITIES
        )
    )
    assert fake_sentry.requests[0].status == 200


async def test_truncated_json_is_sent_again_then_a_decode_error(fake_sentry: FakeSentry) -> None:
    fake_sentry.faults.add(Fault("truncated_json", path=r"/issues/$", times=1))
    issues = await _first_issue(fake_sentry)
    assert len(issues) == len(
        fake_sentry.data.issue_ids(
            _org(fake_sentry), status="unresolved", priority=DEFAULT_PRIORITIES
        )
    )
    fake_sentry.faults.add(Fault("truncated_json", path=r"/issues/$", times=None))
    with pytest.raises(DecodeError) as caught:
        await _first_issue(fake_sentry)
    assert "/issues/" in caught.value.url


async def test_html_error_page_becomes_a_short_detail(fake_sentry: FakeSentry) -> None:
    page = b"<html><body>" + b"Bad Gateway " * 100_000 + b"</body></html>"
    _serve(fake_sentry, page, status=502, content_type="text/html")
    with pytest.raises(ServerError) as caught:
        await _first_issue(fake_sentry)
    error = caught.value
    assert error.status == 502 and error.data is None and error.body == page[:MAX_ERROR_BODY]
    assert isinstance(error.detail, str) and error.detail.startswith("<html><body>Bad Gateway")
    assert len(str(error)) < 2000 and f"{len(page):,} bytes, cut" in str(error)


# Size and depth.


async def test_ten_megabyte_string_field_decodes(fake_sentry: FakeSentry) -> None:
    (issue,) = _issue_bodies(fake_sentry, 1)
    issue["title"] = "x" * TEN_MB
    _serve(fake_sentry, [issue])
    with anyio.fail_after(30):
        (decoded,) = await _first_issue(fake_sentry)
    assert len(decoded.title) == TEN_MB


async def test_a_ten_megabyte_error_body_is_cut_not_decoded_and_named_in_the_message(
    fake_sentry: FakeSentry,
) -> None:
    _serve(fake_sentry, {"detail": "y" * TEN_MB}, status=400)
    with pytest.raises(BadRequest) as caught:
        await _first_issue(fake_sentry)
    error = caught.value
    assert error.data is None and len(error.body) == MAX_ERROR_BODY
    assert isinstance(error.detail, str) and error.detail.startswith('{"detail":"yyy')
    assert len(str(error)) < 2000 and "/issues/" in str(error)
    assert f"{TEN_MB + 13:,} bytes, cut to its first {MAX_ERROR_BODY:,}" in str(error)


async def test_deeply_nested_items_are_a_decode_error(fake_sentry: FakeSentry) -> None:
    _serve(fake_sentry, b"[" * DEPTH + b"]" * DEPTH)
    with pytest.raises(DecodeError) as caught:
        await _first_issue(fake_sentry)
    assert "/issues/" in caught.value.url


async def test_deeply_nested_error_body_still_gives_the_status(fake_sentry: FakeSentry) -> None:
    body = b'{"detail":' * DEPTH + b"1" + b"}" * DEPTH
    _serve(fake_sentry, body, status=500)
    with pytest.raises(ServerError) as caught:
        await _first_issue(fake_sentry)
    assert caught.value.status == 500 and caught.value.body == body


async def test_deeply_nested_raw_page_is_a_decode_error(fake_sentry: FakeSentry) -> None:
    _serve(fake_sentry, b"[" + b"[" * DEPTH + b"]" * DEPTH + b"]")
    with pytest.raises(DecodeError):
        await _first_issue(fake_sentry, raw=True)


# Invalid UTF-8.


async def test_invalid_utf8_in_an_error_body_is_replaced(fake_sentry: FakeSentry) -> None:
    _serve(fake_sentry, b'{"detail": "caf\xe9 \xff closed"}', status=400)
    with pytest.raises(BadRequest) as caught:
        await _first_issue(fake_sentry)
    assert caught.value.detail == "caf\ufffd \ufffd closed"


async def test_invalid_utf8_in_raw_mode_passes_through(fake_sentry: FakeSentry) -> None:
    """Raw mode hands over the bytes the server sent, invalid UTF-8 included."""
    item = b'{"id":"1","title":"caf\xe9"}'
    _serve(fake_sentry, b"[" + item + b"]")
    (raw,) = await _first_issue(fake_sentry, raw=True)
    assert bytes(raw) == item


async def test_invalid_utf8_in_a_typed_page_is_a_decode_error(fake_sentry: FakeSentry) -> None:
    (issue,) = _issue_bodies(fake_sentry, 1)
    body = msgspec.json.encode([issue]).replace(b'"title":"', b'"title":"\xff', 1)
    _serve(fake_sentry, body)
    with pytest.raises(DecodeError):
        await _first_issue(fake_sentry)


# Hostile headers.


async def test_absurd_retry_after_on_a_429_is_a_typed_error(fake_sentry: FakeSentry) -> None:
    """Thousands of digits in Retry-After once escaped as a bare ValueError."""
    fake_sentry.faults.add(
        Fault("rate_limit", path=r"/issues/$", retry_after="9" * 5000, reset_in=None, times=None)
    )
    with pytest.raises(RateLimited) as caught:
        await _first_issue(fake_sentry)
    assert caught.value.retry_after is None
    assert 1 <= len(fake_sentry.requests) <= FAST.attempts


class Scripted:
    """A tiny server on 127.0.0.1: ``respond(request)`` makes each answer; requests are kept."""

    def __init__(self, respond: Callable[[web.Request], web.StreamResponse]) -> None:
        self.respond = respond
        self.requests: list[web.Request] = []
        self.url = ""

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        self.requests.append(request)
        return self.respond(request)


@pytest.fixture
async def scripted() -> AsyncIterator[Callable[..., Any]]:
    """``await scripted(respond)`` starts a :class:`Scripted` server, closed at teardown."""
    runners: list[web.AppRunner] = []

    async def start(respond: Callable[[web.Request], web.StreamResponse]) -> Scripted:
        server = Scripted(respond)
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", server._handle)
        runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await runner.setup()
        runners.append(runner)
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = runner.addresses[0][1]
        server.url = f"http://127.0.0.1:{port}"
        return server

    yield start
    for runner in runners:
        await runner.cleanup()


def _page(items: list[Any], link: str | None, **headers: str) -> web.Response:
    if link is not None:
        headers["Link"] = link
    return web.Response(
        body=msgspec.json.encode(items), content_type="application/json", headers=headers
    )


async def _walk(server: Scripted, **kwargs: Any) -> list[Any]:
    async with SentryClient("t", base_url=server.url, retry=FAST) as client:
        with anyio.fail_after(20):
            return await client.paginate("/things/", **kwargs).collect()


async def test_malformed_link_header_is_a_pagination_error(scripted: Any) -> None:
    server = await scripted(lambda request: _page([1, 2], 'https://x/; rel="next"'))
    with pytest.raises(PaginationError, match=r"GET http://127\.0\.0\.1:\d+/api/0/things/"):
        await _walk(server)
    assert len(server.requests) == 1


async def test_hostile_cursor_cannot_inject_query_parameters(scripted: Any) -> None:
    """The cursor is opaque text sent back as one parameter, whatever it holds."""
    cursor = 'a&cursor=evil&per_page=1#frag %2F"q\\'
    quoted = cursor.replace("\\", "\\\\").replace('"', '\\"')

    def respond(request: web.Request) -> web.Response:
        if "cursor" not in request.query:
            return _page([1], f'<https://x/>; rel="next"; results="true"; cursor="{quoted}"')
        return _page([2], '<https://x/>; rel="next"; results="false"; cursor="z"')

    server = await scripted(respond)
    assert await _walk(server) == [1, 2]
    second = server.requests[1]
    assert second.query.getall("cursor") == [cursor]
    assert second.query.getall("per_page") == ["100"]


async def test_garbage_hits_and_rate_headers_are_ignored(scripted: Any) -> None:
    headers = {
        "X-Hits": "lots",
        "X-Max-Hits": "9" * 5000,
        "X-Sentry-Rate-Limit-Remaining": "-3",
        "X-Sentry-Rate-Limit-Reset": "nan",
        "X-Sentry-Rate-Limit-Limit": "1e999",
    }
    server = await scripted(lambda request: _page([1, 2, 3], None, **headers))
    async with SentryClient("t", base_url=server.url, retry=FAST) as client:
        with anyio.fail_after(20):
            pages = [page async for page in client.paginate("/things/").pages()]
    assert [page.items for page in pages] == [[1, 2, 3]]
    assert pages[0].hits is None and pages[0].max_hits is None
    assert pages[0].rate_limit is not None and pages[0].rate_limit.remaining is None


async def test_negative_hits_are_ignored_like_negative_rate_headers(scripted: Any) -> None:
    server = await scripted(
        lambda request: _page([1], None, **{"X-Hits": "-3", "X-Max-Hits": " -1 "})
    )
    async with SentryClient("t", base_url=server.url, retry=FAST) as client:
        with anyio.fail_after(20):
            pages = [page async for page in client.paginate("/things/").pages()]
    assert pages[0].hits is None and pages[0].max_hits is None


async def test_oversized_response_header_is_a_transport_error(scripted: Any) -> None:
    server = await scripted(lambda request: _page([1], "<" + "x" * 100_000 + ">"))
    with pytest.raises(TransportError) as caught:
        await _walk(server)
    assert isinstance(caught.value, ConnectionFailed)
    assert "/api/0/things/" in str(caught.value)


async def test_success_status_with_error_shape_is_a_decode_error(scripted: Any) -> None:
    server = await scripted(
        lambda request: web.json_response({"detail": "Internal Error"}, status=200)
    )
    with pytest.raises(DecodeError) as caught:
        await _walk(server, type=int)
    assert caught.value.type_name == "list[int]"
    assert not isinstance(caught.value, APIError)


# The exporter, in raw mode.


def _spec(server: FakeSentry) -> ExportSpec:
    org = _org(server)
    return ExportSpec(
        kind="issues",
        org=org,
        projects=(server.data.project_slugs(org)[0],),
        start=FIXED_NOW - timedelta(days=30),
        end=FIXED_NOW,
        window=None,
        page_size=10,
    )


def _lines(directory: Path) -> list[bytes]:
    (data_file,) = directory.glob("*.jsonl")
    return data_file.read_bytes().splitlines()


async def _export(server: FakeSentry, directory: Path, *, resume: bool = False) -> Any:
    async with _client(server) as client:
        with anyio.fail_after(30):
            return await export(client, _spec(server), directory, resume=resume)


async def test_export_writes_odd_items_exactly_as_sent(
    fake_sentry: FakeSentry, tmp_path: Path
) -> None:
    """Raw export does not judge items: non-objects and invalid UTF-8 are written verbatim."""
    items = [b'{"id":"1","title":"caf\xe9"}', b"12", b'"text"', b"null", b'{"id":"2"}']
    _serve(fake_sentry, b"[" + b", ".join(items) + b"]")
    manifest = await _export(fake_sentry, tmp_path)
    assert manifest.items == len(items)
    assert _lines(tmp_path) == items


async def test_undecodable_page_stops_export_at_the_last_good_page(
    fake_sentry: FakeSentry, tmp_path: Path
) -> None:
    """ExportDecodeError names the stream and cursor; a resume loses and repeats nothing."""
    reference = tmp_path / "reference"
    await _export(fake_sentry, reference)
    expected = _lines(reference)
    assert len(expected) > 20, "the stream must span several pages"

    broken = Fault("invalid_json_content", path=r"/issues/$", query="cursor=", after=1, times=None)
    fake_sentry.faults.add(broken)
    output = tmp_path / "output"
    with pytest.raises(ExportDecodeError) as caught:
        await _export(fake_sentry, output)
    error = caught.value
    assert error.cursor is not None and error.cursor in str(error)
    assert error.stream in str(error) and "malformed" in error.reason
    assert _lines(output) == expected[:20], "the two good pages are kept, nothing more"

    fake_sentry.faults.clear()
    manifest = await _export(fake_sentry, output, resume=True)
    assert _lines(output) == expected
    assert manifest.items == len(expected)


async def test_item_id_with_invalid_utf8_is_reported_not_a_crash(
    fake_sentry: FakeSentry, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Items without a usable id are written as sent, logged, and counted in the manifest."""
    items = [b'{"id":"1\xff"}', b'{"id":"2"}', b'"text"', b'{"id":true}', b'{"id":"3"}']
    _serve(fake_sentry, b"[" + b",".join(items) + b"]")
    with caplog.at_level(logging.WARNING, logger="sentry_async.export"):
        manifest = await _export(fake_sentry, tmp_path)
    assert _lines(tmp_path) == items, "every item kept, byte for byte"
    (stream,) = manifest.streams
    assert (manifest.unidentified, stream.unidentified, manifest.items) == (3, 3, 5)
    on_disk = msgspec.json.decode((tmp_path / MANIFEST_NAME).read_bytes(), type=Manifest)
    assert on_disk.unidentified == 3 and on_disk.streams[0].unidentified == 3
    (record,) = [r for r in caplog.records if "no usable id" in r.getMessage()]
    assert record.levelno == logging.WARNING
    assert stream.key in record.getMessage() and "the first page" in record.getMessage()
    assert "3 item(s)" in record.getMessage()


def _projects_or(page: Callable[[web.Request], web.Response]) -> Callable[..., web.Response]:
    """Answer the projects list with one project, and everything else with ``page``."""

    def respond(request: web.Request) -> web.Response:
        if request.path.endswith("/projects/"):
            return _page([{"id": "1", "slug": "p"}], None)
        return page(request)

    return respond


async def test_unidentified_count_survives_a_resume(scripted: Any, tmp_path: Path) -> None:
    """The count is checkpointed: a resumed run adds to it instead of starting from 0."""
    failing = [True]

    def issues(request: web.Request) -> web.Response:
        if "cursor" not in request.query:
            return _page(
                [{"id": "a"}, "odd", {"id": "b"}],
                '<https://x/>; rel="next"; results="true"; cursor="c1"',
            )
        if failing[0]:
            return web.json_response({"detail": "down"}, status=500)
        return _page([{"id": "c"}, None], '<https://x/>; rel="next"; results="false"; cursor="c2"')

    server = await scripted(_projects_or(issues))
    spec = ExportSpec(
        kind="issues",
        org="acme",
        start=FIXED_NOW - timedelta(days=1),
        end=FIXED_NOW,
        window=None,
    )
    async with SentryClient("t", base_url=server.url, retry=FAST) as client:
        with anyio.fail_after(30):
            with pytest.raises(ServerError):
                await export(client, spec, tmp_path)
            checkpoint = msgspec.json.decode((tmp_path / CHECKPOINT_NAME).read_bytes())
            assert checkpoint["streams"]["p"]["unidentified"] == 1
            failing[0] = False
            manifest = await export(client, spec, tmp_path, resume=True)
    assert manifest.runs == 2 and manifest.items == 5
    assert manifest.unidentified == 2 and manifest.streams[0].unidentified == 2
