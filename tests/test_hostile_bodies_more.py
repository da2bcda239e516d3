"""More hostile bodies: a list page answered with no body at all, a gzip body of many tiny
members, and a huge error body echoing the token.

Each server is a small aiohttp app on 127.0.0.1 (or the bundled fake with a fault) whose
answers the test scripts; every loop is bounded and every test bounded in time.
"""

from __future__ import annotations

import base64
import gzip
import io
import json
import zlib
from collections.abc import Awaitable, Callable, Sequence
from datetime import timedelta
from functools import partial
from pathlib import Path
from typing import Any
from urllib.parse import quote

import anyio
import msgspec
import pytest
from aiohttp import web
from test_hostile_protocol import FAST, Handler, MiB, hostile

from sentry_async import (
    APIError,
    ConnectionFailed,
    DecodeError,
    Position,
    SentryClient,
    SentryError,
    ServerError,
)
from sentry_async._protocol import body as body_module
from sentry_async._protocol.body import (
    INPUT_SLICE,
    MAX_GZIP_MEMBERS,
    BodyReader,
    CorruptBody,
)
from sentry_async._protocol.errors import Redactor
from sentry_async.api._support import data_envelope, data_page
from sentry_async.cli import main
from sentry_async.export import (
    CHECKPOINT_NAME,
    MANIFEST_NAME,
    ExportDecodeError,
    ExportSpec,
    export,
)
from sentry_async.sansio import MAX_ERROR_BODY, build_api_error
from sentry_async.testing import FakeSentry, Fault, SeedConfig
from sentry_async.testing.pytest_plugin import FIXED_NOW

pytestmark = pytest.mark.anyio



# Bug: an empty 200 body on a list page was an empty page: the list, or one page of it,
# was lost without an error, and an export said it was complete.


def _empty(body: bytes) -> Handler:
    async def handle(request: web.Request) -> web.StreamResponse:
        return web.Response(body=body, content_type="application/json")

    return handle


LISTS: dict[str, Callable[[SentryClient], Any]] = {
    "plain": lambda c: c.paginate("/things/"),
    "bounded": lambda c: c.paginate("/things/", page_size=2),
    "raw": lambda c: c.paginate("/things/", page_size=2).raw(),
    "unpaginated": lambda c: c.paginate("/things/", unpaginated=True),
    "data-envelope": lambda c: c.paginate(
        "/things/", envelope=data_envelope, page_type=data_page
    ),
    "data-envelope-bounded": lambda c: c.paginate(
        "/things/", page_size=2, envelope=data_envelope, page_type=data_page
    ),
    "discover": lambda c: c.discover.query("acme", fields=["title"]),
    "projects.list": lambda c: c.projects.list("acme"),
    "issues.list": lambda c: c.issues.list("acme"),
}


@pytest.mark.parametrize("body", [b"", b" \r\n\t "], ids=["empty", "blank"])
@pytest.mark.parametrize("shape", list(LISTS))
async def test_a_list_page_with_no_body_is_resent_then_a_decode_error(
    shape: str, body: bytes
) -> None:
    """Sentry renders an empty page as ``[]`` (or its envelope), never as nothing: no body
    is a body cut short, resent, then a :class:`DecodeError` rather than an empty list."""
    async with (
        hostile(_empty(body)) as (url, seen),
        SentryClient("t", base_url=url, retry=FAST) as client,
    ):
        with anyio.fail_after(20), pytest.raises(DecodeError, match="no body"):
            await LISTS[shape](client).collect()
    assert len(seen) == FAST.attempts, "resent as a body cut short"


def _pages(empty_answers: int | None) -> Handler:
    """Three pages of three items; page 1's first ``empty_answers`` answers (``None``:
    every one) carry its ``Link`` but no body, as a connection closed after the headers."""
    answered = [0]

    async def handle(request: web.Request) -> web.StreamResponse:
        page = int(request.query.get("cursor") or "0")
        more = "true" if page < 2 else "false"
        link = (
            f'<{request.url}>; rel="previous"; results="false"; cursor="", '
            f'<{request.url}>; rel="next"; results="{more}"; cursor="{page + 1}"'
        )
        headers = {"Link": link}
        if page == 1:
            answered[0] += 1
            if empty_answers is None or answered[0] <= empty_answers:
                return web.Response(body=b"", headers=headers, content_type="application/json")
        items = [{"id": f"{page}-{i}"} for i in range(3)]
        return web.json_response(items, headers=headers)

    return handle


ALL = [f"{page}-{i}" for page in range(3) for i in range(3)]


async def test_a_page_with_no_body_mid_stream_is_fetched_again_not_skipped() -> None:
    async with (
        hostile(_pages(1)) as (url, seen),
        SentryClient("t", base_url=url, retry=FAST) as client,
    ):
        paginator = client.paginate("/things/", page_size=3, prefetch=0)
        with anyio.fail_after(20):
            items = await paginator.collect()
    assert [item["id"] for item in items] == ALL
    assert paginator.position.done
    assert sum("cursor=1" in path for path in seen) == 2


async def test_a_page_never_answered_with_a_body_stops_the_walk_where_it_was() -> None:
    async with (
        hostile(_pages(None)) as (url, _),
        SentryClient("t", base_url=url, retry=FAST) as client,
    ):
        paginator = client.paginate("/things/", page_size=3, prefetch=0)
        items: list[Any] = []

        async def walk() -> None:
            async for item in paginator:
                items.append(item)

        with anyio.fail_after(20), pytest.raises(DecodeError, match="no body"):
            await walk()
    assert [item["id"] for item in items] == ALL[:3]
    assert paginator.position == Position("1"), "resumable at the page that had no body"


DATA = SeedConfig(
    orgs=1, projects_per_org=2, issues_per_project=6, events_per_issue=(1, 3), days=20
)
ORG = "org-0"
END = FIXED_NOW - timedelta(hours=5)
START = END - timedelta(days=14)
Factory = Callable[..., Awaitable[FakeSentry]]


def _checkpoint(directory: Path) -> dict[str, Any]:
    return msgspec.json.decode((directory / CHECKPOINT_NAME).read_bytes())  # type: ignore[no-any-return]


async def test_an_export_meeting_a_list_with_no_body_stops_unfinished_and_resumes(
    fake_sentry_factory: Factory, tmp_path: Path
) -> None:
    server = await fake_sentry_factory(scale=DATA)
    out = tmp_path / "out"
    spec = ExportSpec(kind="issues", org=ORG, query="", start=START, end=END, page_size=2)
    async with SentryClient(server.token, base_url=server.url, retry=FAST) as client:
        with anyio.fail_after(30):
            clean = await export(client, spec, tmp_path / "clean")
        # A proxy answers every list page with a 200 and no body.
        fault = server.faults.add(
            Fault("status", status=200, body=b"", path="/issues/$", times=None)
        )
        with anyio.fail_after(30), pytest.raises(ExportDecodeError, match="no body"):
            await export(client, spec, out, concurrency=1)
        assert not (out / MANIFEST_NAME).exists()
        assert not any(s["done"] for s in _checkpoint(out)["streams"].values())
        fault.times = fault.fired
        with anyio.fail_after(30):
            manifest = await export(client, spec, out, resume=True)
    assert manifest.items == clean.items > 2
    for name in ("project-0-0.jsonl", "project-0-1.jsonl"):
        assert (out / name).read_bytes() == (tmp_path / "clean" / name).read_bytes()


async def _cli(argv: Sequence[str]) -> tuple[int, str]:
    """``main(argv)`` in a worker thread; the exit code and stderr."""
    out, err = io.StringIO(), io.StringIO()
    with anyio.fail_after(30):
        code = await anyio.to_thread.run_sync(partial(main, list(argv), stdout=out, stderr=err))
    return code, err.getvalue()


@pytest.mark.usefixtures("quick_default_retries")
async def test_the_cli_export_of_a_list_with_no_body_fails_and_says_how_to_resume(
    fake_sentry_factory: Factory, tmp_path: Path
) -> None:
    server = await fake_sentry_factory(scale=DATA)
    out = tmp_path / "out"
    token = tmp_path / "token"
    token.write_text(server.token)
    server.faults.add(Fault("status", status=200, body=b"", path="/events/$", times=None))
    argv = ["export", "events", "--org", ORG, "--project", "project-0-0", "--output", str(out),
            "--base-url", server.url, "--since", START.isoformat(), "--until", END.isoformat(),
            "--token-file", str(token), "--quiet"]  # fmt: skip
    code, err = await _cli(argv)
    assert code == 1, err
    assert "no body" in err and "resume" in err and "Traceback" not in err
    assert not (out / MANIFEST_NAME).exists()


# Bug: a gzip body of many tiny members inflated in quadratic time, the loop blocked: after
# each member's end zlib copied all the rest of the body, handed to it whole, as unused.

EMPTY_MEMBER = gzip.compress(b"")


class _CountingInflater:
    """A ``zlib`` decompressor that records how many compressed bytes each call is given."""

    def __init__(self, inner: Any, calls: list[int]) -> None:
        self._inner = inner
        self._calls = calls

    def decompress(self, data: bytes, max_length: int = 0) -> bytes:
        self._calls.append(len(data))
        return self._inner.decompress(data, max_length)  # type: ignore[no-any-return]

    def flush(self) -> bytes:
        return self._inner.flush()  # type: ignore[no-any-return]

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


def _counting_zlib(monkeypatch: pytest.MonkeyPatch) -> tuple[list[int], list[int]]:
    """Inflaters that count their input: each call's input size, and one entry per member."""
    calls: list[int] = []
    members: list[int] = []

    class Zlib:
        error = zlib.error
        MAX_WBITS = zlib.MAX_WBITS

        @staticmethod
        def decompressobj(wbits: int = zlib.MAX_WBITS) -> _CountingInflater:
            members.append(wbits)
            return _CountingInflater(zlib.decompressobj(wbits=wbits), calls)

    monkeypatch.setattr(body_module, "zlib", Zlib)
    return calls, members


@pytest.mark.parametrize("fed", ["whole", "chunks"])
def test_gzip_members_are_inflated_in_work_linear_in_the_body(
    monkeypatch: pytest.MonkeyPatch, fed: str
) -> None:
    """Each call hands the inflater at most a bounded slice, so what a member's end leaves
    over (and zlib copies) is bounded too: the work is the body plus a slice per member."""
    calls, members = _counting_zlib(monkeypatch)
    count = MAX_GZIP_MEMBERS - 1
    packed = EMPTY_MEMBER * count + gzip.compress(b'[{"id": "1"}]')
    reader = BodyReader(limit=MiB, content_length=len(packed), encoding="gzip")
    if fed == "whole":
        decoded = reader.whole(packed)
    else:
        for start in range(0, len(packed), 65536):
            reader.feed(packed[start : start + 65536])
        decoded = reader.finish()
    assert json.loads(decoded) == [{"id": "1"}]
    assert len(members) == count + 1
    assert max(calls) <= INPUT_SLICE < len(packed)
    assert sum(calls) <= len(packed) + len(members) * INPUT_SLICE


def test_a_gzip_body_of_more_members_than_any_server_sends_is_corrupt(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _, members = _counting_zlib(monkeypatch)
    allowed = EMPTY_MEMBER * (MAX_GZIP_MEMBERS - 1) + gzip.compress(b"[]")
    assert BodyReader(limit=MiB, content_length=None, encoding="gzip").whole(allowed) == b"[]"
    members.clear()
    packed = EMPTY_MEMBER * (4 * MAX_GZIP_MEMBERS) + gzip.compress(b"[]")
    with pytest.raises(CorruptBody, match=f"more than {MAX_GZIP_MEMBERS:,} gzip members"):
        BodyReader(limit=MiB, content_length=len(packed), encoding="gzip").whole(packed)
    assert len(members) == MAX_GZIP_MEMBERS, "refused at the first member past the cap"
    streamed = BodyReader(limit=None, content_length=None, encoding="gzip")

    def stream() -> None:
        for start in range(0, len(packed), 4096):
            list(streamed.pieces(packed[start : start + 4096]))

    with pytest.raises(CorruptBody, match="gzip members"):
        stream()


async def test_a_response_of_a_million_bytes_of_gzip_members_fails_fast() -> None:
    """1 MiB of empty members with a ``Content-Length`` (inflated in one call): a
    :class:`ConnectionFailed` after its attempts, not seconds of a frozen loop each."""
    packed = EMPTY_MEMBER * (MiB // len(EMPTY_MEMBER)) + gzip.compress(b"[]")

    async def handle(request: web.Request) -> web.StreamResponse:
        return web.Response(
            body=packed, headers={"Content-Encoding": "gzip", "Content-Type": "application/json"}
        )

    async with (
        hostile(handle) as (url, seen),
        SentryClient("t", base_url=url, retry=FAST) as client,
    ):
        with anyio.fail_after(30), pytest.raises(ConnectionFailed, match="gzip members"):
            await client.request("GET", "/things/")
    assert len(seen) == FAST.attempts


# Bug: a huge error body was redacted whole, then cut to MAX_ERROR_BODY: 134-201 ms of
# work with the event loop blocked per MiB it held, on every attempt.

TOKEN = "sntrys_eyJpYXQiOjE3MDA/c2VjcmV0+dG9rZW4=_Kx9/Qm2ZrT"
PROXY_PASSWORD = "pr0xy/s3cret"


def _token_forms(secret: str) -> list[str]:
    """Forms a server echoing a request sends the secret in, the longest per character
    among them (``\\uXXXX``, ``&#x..;``)."""
    return [
        secret,
        secret.replace("/", "\\/"),
        "".join(f"\\u{ord(c):04x}" for c in secret),
        quote(secret, safe=""),
        "".join(f"&#x{ord(c):x};" for c in secret),
        base64.b64encode(f"Bearer {secret}".encode()).decode(),
    ]


FORMS = _token_forms(TOKEN)


def _pieces(text: str) -> set[bytes]:
    """Every run of eight characters of ``text``: none may be shown."""
    return {text[start : start + 8].encode() for start in range(len(text) - 7)}


def _assert_hidden(shown: bytes, secrets: Sequence[str]) -> None:
    for secret in secrets:
        for form in _token_forms(secret):
            for piece in _pieces(form):
                assert piece not in shown, f"{piece!r} of {form[:12]!r}... shown"


def _huge_page(size: int, secrets: Sequence[str]) -> bytes:
    """An error page of ``size`` bytes echoing every secret many times: 200 times at the
    start (blanked out, which shortens what comes after), then in every form, back to
    back, from 4 KiB before the cut to 200 KiB past it, so that some form straddles the
    cut and some the end of whatever start of the body is redacted."""
    start = b"<html><body><pre>" + "".join(f"{s} " for s in secrets).encode() * 200
    forms = "".join(f" {form}" for s in secrets for form in _token_forms(s)).encode()
    zone = forms * (204 * 1024 // len(forms) + 1)
    filler = b"." * (MAX_ERROR_BODY - 4096 - len(start))
    page = start + filler + zone
    return page + b"." * (size - len(page))


def _recording_redaction(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The size of every text a :class:`Redactor` is handed."""
    handed: list[int] = []
    redact = Redactor.body

    def body(self: Redactor, value: bytes) -> bytes:
        handed.append(len(value))
        return redact(self, value)

    monkeypatch.setattr(Redactor, "body", body)
    return handed


async def test_only_the_kept_start_of_a_huge_error_body_is_redacted(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A 502 of 8 MiB: what is redacted is its first ``MAX_ERROR_BODY`` bytes and a margin,
    whatever its size; the token is blanked out wherever it is, across the cut too."""
    page = _huge_page(8 * MiB, [TOKEN])
    handed = _recording_redaction(monkeypatch)

    async def handle(request: web.Request) -> web.StreamResponse:
        return web.Response(body=page, status=502, content_type="text/html")

    async with (
        hostile(handle) as (url, seen),
        SentryClient(TOKEN, base_url=url, retry=FAST) as client,
    ):
        with anyio.fail_after(30), pytest.raises(ServerError) as caught:
            await client.request("GET", "/things/")
    assert len(seen) == FAST.attempts
    assert handed and max(handed) <= MAX_ERROR_BODY + 64 * 1024 < len(page)
    error = caught.value
    assert error.data is None
    assert MAX_ERROR_BODY - 64 * 1024 < len(error.body) <= MAX_ERROR_BODY
    assert f"(error body of {len(page):,} bytes, cut to its first {MAX_ERROR_BODY:,}" in str(error)
    assert str(error.detail).startswith("<html><body><pre>********")
    _assert_hidden(error.body + str(error).encode() + repr(error).encode(), [TOKEN])


async def test_a_proxy_password_straddling_the_cut_is_blanked_out_too(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The proxy's error page echoes its password and the token: the proxy's redaction
    (which may lengthen a short password) and the token's both see a margin past the cut."""
    page = _huge_page(3 * MiB, [PROXY_PASSWORD, TOKEN])
    handed = _recording_redaction(monkeypatch)
    authorized: list[str] = []

    async def handle(request: web.Request) -> web.StreamResponse:
        authorized.append(request.headers.get("Proxy-Authorization", ""))
        return web.Response(body=page, status=502, content_type="text/html")

    async with hostile(handle) as (proxy, _):
        proxy_url = proxy.replace("http://", f"http://alice:{quote(PROXY_PASSWORD, safe='')}@")
        async with SentryClient(
            TOKEN, base_url="http://127.0.0.1:9/", proxy=proxy_url, retry=FAST
        ) as client:
            with anyio.fail_after(30), pytest.raises(ServerError) as caught:
                await client.request("GET", "/things/")
    assert authorized[0].startswith("Basic ")
    assert max(handed) <= MAX_ERROR_BODY + 64 * 1024
    _assert_hidden(caught.value.body + str(caught.value).encode(), [PROXY_PASSWORD, TOKEN])


@pytest.mark.parametrize("size", [0, 200, MAX_ERROR_BODY - 1, MAX_ERROR_BODY])
async def test_an_error_body_within_the_cap_is_kept_and_told_as_before(size: int) -> None:
    """Redacted whole as before: the same body, detail, data and message."""
    echoed = ", ".join(f'"{form}"' for form in FORMS)  # each form as a server wrote it
    small = f'{{"detail": "bad token {TOKEN}", "echo": [{echoed}]}}'.encode()
    page = small + b" " * (size - len(small)) if size >= len(small) else b""

    async def handle(request: web.Request) -> web.StreamResponse:
        return web.Response(body=page, status=400, content_type="application/json")

    async with (
        hostile(handle) as (url, _),
        SentryClient(TOKEN, base_url=url, retry=FAST) as client,
    ):
        with anyio.fail_after(30), pytest.raises(SentryError) as caught:
            await client.request("GET", "/things/")
    redacted = Redactor(TOKEN).body(page)
    expected = build_api_error(400, redacted, method="GET", url=f"{url}/api/0/things/")
    error = caught.value
    assert isinstance(error, APIError)
    assert (str(error), error.body, error.detail, error.data) == (
        str(expected),
        expected.body,
        expected.detail,
        expected.data,
    )
    _assert_hidden(error.body, [TOKEN])
