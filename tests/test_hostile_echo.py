"""A server that echoes the token back, in every encoding, never gets it shown.

The token must not reach an exception's message, ``detail``, ``data`` or ``body``, its
pickle, its traceback (with or without locals, through ``__cause__``/``__context__``), a
log line or the command line's output. Servers are the fake Sentry or small TCP servers
on 127.0.0.1 inside each test.
"""

from __future__ import annotations

import asyncio
import base64
import enum
import io
import logging
import pickle
import traceback
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any, Literal
from urllib.parse import quote

import anyio
import msgspec
import pytest
from _hooks_recorder import Recorder, memory_spans
from _local_server import local_app
from aiohttp import web

from sentry_async import (
    BadRequest,
    ConnectionFailed,
    DecodeError,
    OpenTelemetryHooks,
    PaginationError,
    RetryPolicy,
    SentryClient,
    SentryError,
    ServerError,
)
from sentry_async.cli import main
from sentry_async.testing import FakeSentry, Fault
from sentry_async.testing.pytest_plugin import FIXED_NOW

pytestmark = pytest.mark.anyio

TOKEN = "sntrys_eyJpYXQiOjE3MDA/c2VjcmV0+dG9rZW4=_Kx9/Qm2ZrT"
BARE = TOKEN[len("sntrys_") :]
FAST = RetryPolicy(attempts=2, backoff_base=0.01, backoff_max=0.02)


def _escaped(text: str, upper: bool = False) -> str:
    return "".join(f"\\u{ord(c):04X}" if upper else f"\\u{ord(c):04x}" for c in text)


def _mixed(text: str) -> str:
    """Every other character escaped, the rest raw: still the token to a JSON reader."""
    return "".join(f"\\u{ord(c):04x}" if i % 2 else c for i, c in enumerate(text))


def _forms(secret: str) -> dict[str, str]:
    """The secret as it may appear inside a JSON string a server sends."""
    percent = quote(secret, safe="")
    return {
        "raw": secret,
        "slash-escaped": secret.replace("/", "\\/"),
        "unicode-lower": _escaped(secret),
        "unicode-upper": _escaped(secret, upper=True),
        "unicode-mixed": _mixed(secret),
        "percent-upper": percent,
        "percent-lower": percent.lower(),
        "percent-every-char": "".join(f"%{ord(c):02x}" for c in secret),
        **_encoded(secret),
    }


def _encoded(secret: str) -> dict[str, str]:
    """The secret base64-encoded (alone, after ``Bearer``, at every offset of a longer text)
    or as HTML character references, as a server echoing a header or a page may send it."""
    forms: dict[str, str] = {}
    for alphabet, encode in (("b64", base64.b64encode), ("b64url", base64.urlsafe_b64encode)):
        for name, lead in (("alone", ""), ("bearer", "Bearer "), ("offset1", "x"), ("offset2", "xy")):
            encoded = encode((lead + secret).encode()).decode()
            forms[f"{alphabet}-{name}"] = encoded
            forms[f"{alphabet}-{name}-unpadded"] = encoded.rstrip("=")
    forms["html-decimal"] = "".join(f"&#{ord(c)};" for c in secret)
    forms["html-hex"] = "".join(f"&#x{ord(c):X};" for c in secret)
    forms["html-mixed"] = "".join(
        (c, f"&#{ord(c)};", f"&#x{ord(c):x};")[i % 3] for i, c in enumerate(secret)
    )
    return forms


FORMS = [(f"{which}-{name}", value) for which, secret in (("token", TOKEN), ("bare", BARE))
         for name, value in _forms(secret).items()]  # fmt: skip


def everything_shown(error: BaseException) -> str:
    """What a user, a logger or an error tracker could print from ``error``."""
    parts = [str(error), repr(error), "".join(traceback.format_exception(error))]
    parts.append(
        "".join(traceback.TracebackException.from_exception(error, capture_locals=True).format())
    )
    parts.append(repr(pickle.dumps(error)))
    seen: set[int] = set()
    pending: list[BaseException | None] = [error]
    while pending:
        current = pending.pop()
        if current is None or id(current) in seen or len(seen) > 20:
            continue
        seen.add(id(current))
        parts.extend(repr(value) for value in vars(current).values())
        for name in ("detail", "data", "body", "cause"):
            parts.append(str(getattr(current, name, "")))
        pending.extend([current.__cause__, current.__context__])
    return "\n".join(parts)


async def provoke(call: Callable[[], Awaitable[object]]) -> BaseException:
    """The error ``call`` raises, caught in a frame of its own: a traceback reaches up to
    the frame that caught it, and the test's frames hold the echoed forms as locals."""
    try:
        with anyio.fail_after(20):
            await call()
    except SentryError as error:
        return error
    raise AssertionError("no error raised")


def assert_hidden(text: str) -> None:
    for which, secret in (("token", TOKEN), ("bare", BARE)):
        for name, value in _forms(secret).items():
            assert value not in text, f"{which} {name} shown"
    assert "Bearer" not in text


@pytest.mark.parametrize(("form", "echoed"), FORMS, ids=[form for form, _ in FORMS])
async def test_an_echoed_token_is_blanked_out_in_every_form(
    fake_sentry_factory: Callable[..., object], form: str, echoed: str
) -> None:
    server: FakeSentry = await fake_sentry_factory(token=TOKEN)  # type: ignore[misc]
    org = server.data.org_slugs()[0]
    body = f'{{"detail": "bad token {echoed}", "echo": ["{echoed}"], "{echoed}": 1}}'
    server.faults.add(Fault("status", status=400, body=body.encode(), times=None))
    async with SentryClient(TOKEN, base_url=server.url, retry=FAST) as client:
        error = await provoke(lambda: client.organizations.get(org))
    assert isinstance(error, BadRequest)
    assert str(error.detail).startswith("bad token ") and "********" in str(error.detail)
    assert_hidden(everything_shown(error))


async def test_retry_warnings_are_redacted_too(
    fake_sentry_factory: Callable[..., object], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    server: FakeSentry = await fake_sentry_factory(token=TOKEN)  # type: ignore[misc]
    org = server.data.org_slugs()[0]
    for _, echoed in FORMS:
        body = f'{{"detail": "upstream said {echoed}"}}'
        server.faults.add(Fault("status", status=503, body=body.encode()))
    async with SentryClient(TOKEN, base_url=server.url, retry=RetryPolicy(
        attempts=len(FORMS), backoff_base=0.001, backoff_max=0.002
    )) as client:  # fmt: skip
        error = await provoke(lambda: client.organizations.get(org))
    assert isinstance(error, ServerError)
    retries = [r for r in caplog.records if "retrying" in r.getMessage()]
    assert len(retries) == len(FORMS) - 1
    assert_hidden(caplog.text + "".join(r.getMessage() for r in caplog.records))
    assert_hidden(everything_shown(error))


@asynccontextmanager
async def echoing_status_line(form: str) -> AsyncIterator[str]:
    """A TCP server on 127.0.0.1 answering with a malformed status line holding the token
    (in the given form)."""
    echoed = dict(FORMS)[form]

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
            writer.write(f"HTTP/1.1 abc {echoed}\r\n\r\n".encode())
            await writer.drain()
        except (OSError, asyncio.IncompleteReadError, asyncio.TimeoutError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(answer, "127.0.0.1", 0)
    try:
        yield f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
    finally:
        server.close()
        await server.wait_closed()


@pytest.mark.parametrize("form", ["token-raw", "token-percent-upper", "bare-raw"])
async def test_a_token_inside_a_malformed_status_line_is_blanked_out(
    form: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    async with (
        echoing_status_line(form) as url,
        SentryClient(TOKEN, base_url=url, retry=FAST) as client,
    ):
        error = await provoke(lambda: client.request("GET", "/organizations/"))
    assert isinstance(error, ConnectionFailed)
    assert "malformed response" in str(error)
    copy = pickle.loads(pickle.dumps(error))
    assert (type(copy), str(copy), copy.url, copy.cause) == (
        ConnectionFailed,
        str(error),
        error.url,
        error.cause,
    )
    # What the parser found wrong, never the bytes it quotes (see the split reads below);
    # aiohttp 3.14 puts "Bad status line: " before it.
    assert "Invalid status code" in str(error)
    assert error.cause is not None and "b'" not in error.cause and "b'" not in str(error)
    assert any("retrying" in r.getMessage() for r in caplog.records)
    assert_hidden(everything_shown(error))
    assert_hidden(caplog.text)


@pytest.fixture
def restore_logging() -> Iterator[None]:
    """The CLI configures the ``sentry_async`` logger for its process; undo that."""
    library_logger = logging.getLogger("sentry_async")
    saved = (library_logger.handlers[:], library_logger.level, library_logger.propagate)
    yield
    library_logger.handlers[:], library_logger.level, library_logger.propagate = saved


@pytest.mark.usefixtures("restore_logging")
async def test_the_cli_never_prints_an_echoed_token(
    fake_sentry_factory: Callable[..., object], tmp_path: Path
) -> None:
    server: FakeSentry = await fake_sentry_factory(token=TOKEN)  # type: ignore[misc]
    org = server.data.org_slugs()[0]
    project = server.data.project_slugs(org)[0]
    echoes = " ".join(value for _, value in FORMS)
    server.faults.add(
        Fault("status", status=503, path="/issues/$", body=f'{{"detail": "{echoes}"}}'.encode())
    )
    server.faults.add(
        Fault("status", status=400, path="/issues/$", body=f'{{"detail": "{echoes}"}}'.encode())
    )
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN)
    argv = [
        "export", "issues", "--org", org, "--project", project,
        "--since", (FIXED_NOW - timedelta(days=30)).isoformat(), "--until", FIXED_NOW.isoformat(),
        "--window", "none", "--base-url", server.url, "--token-file", str(token_file),
        "--output", str(tmp_path / "out"), "--verbose",
    ]  # fmt: skip
    out, err = io.StringIO(), io.StringIO()

    def run() -> int:
        return main(argv, stdout=out, stderr=err)

    with anyio.fail_after(30):
        code = await anyio.to_thread.run_sync(run)
    assert code == 1, err.getvalue()
    assert "retrying" in err.getvalue() and "********" in err.getvalue()
    assert_hidden(out.getvalue() + err.getvalue())


CURSOR_FORMS = ["token-raw", "bare-raw", "token-percent-upper", "token-b64-alone", "bare-b64url-offset1"]


def _sentry_link(host: str, path: str, cursor: str) -> str:
    """A ``Link`` in Sentry's layout whose both cursors are ``cursor``."""
    url = f"http://{host}{path}?&cursor={cursor}"
    return (
        f'<{url}>; rel="previous"; results="false"; cursor="{cursor}", '
        f'<{url}>; rel="next"; results="true"; cursor="{cursor}"'
    )


def _cursor_app(echoed: str, mode: str) -> web.Application:
    """Pages whose ``Link`` (Sentry's layout) carries the token as a cursor. ``repeat``
    sends that cursor back when it is requested, ``nolink`` answers it with no ``Link``,
    ``malformed`` sends a ``Link`` no reader can follow, holding the token."""

    async def page(request: web.Request) -> web.Response:
        items: list[dict[str, str]] = [{"id": "a" * 32, "title": "x"}]
        body = {"data": items, "meta": {"fields": {"title": "string"}}}
        answer: object = body if request.path.endswith("/events/") else items
        headers = {"Link": _sentry_link(request.host, request.path, echoed)}
        if mode == "malformed":
            headers = {"Link": f"<http://{request.host}/?cursor={echoed}; rel=next"}
        elif "cursor" in request.query and mode == "nolink":
            headers = {}
        return web.json_response(answer, headers=headers)

    app = web.Application()
    app.router.add_get("/{tail:.*}", page)
    return app


@pytest.mark.parametrize("mode", ["repeat", "nolink", "malformed"])
@pytest.mark.parametrize("form", CURSOR_FORMS)
async def test_a_cursor_holding_the_token_is_blanked_out_of_pagination_errors(
    caplog: pytest.LogCaptureFixture, form: str, mode: str
) -> None:
    caplog.set_level(logging.DEBUG)
    echoed = dict(FORMS)[form]
    async with (
        local_app(_cursor_app(echoed, mode)) as url,
        SentryClient(TOKEN, base_url=url, retry=FAST) as client,
    ):
        paginator = client.paginate("/organizations/", type=dict, prefetch=0)
        error = await provoke(lambda: paginator.collect())
    assert isinstance(error, PaginationError)
    assert error.__cause__ is None and error.__context__ is None
    assert error.position is not None
    # The walk's frames held the cursor as the server sent it: they keep none of their
    # locals once the error has left the walk (tests/test_secrets_locals.py).
    assert_hidden("\n".join([everything_shown(error), repr(error.position), caplog.text]))
    if mode != "malformed":
        assert "********" in str(error)
        assert paginator.position.cursor == echoed  # what a resume sends: kept


@pytest.mark.parametrize("mode", ["undecodable", "stale"])
@pytest.mark.parametrize("form", ["token-raw", "bare-raw", "token-b64-alone"])
async def test_an_export_blanks_a_cursor_holding_the_token(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, form: str, mode: str
) -> None:
    """An export stopped at a page whose cursor echoes the token (a page that does not
    decode, or stale pages over fresh cursors) names where it stopped without the token;
    its checkpoint keeps the cursor, which a resume sends back."""
    from sentry_async.export import ExportSpec, export

    caplog.set_level(logging.DEBUG)
    echoed = dict(FORMS)[form]
    served: list[None] = []

    async def page(request: web.Request) -> web.Response:
        if request.path.endswith("/projects/"):
            return web.json_response([{"id": "1", "slug": "web", "name": "web"}])
        body: object = {"data": [{"id": "a" * 32, "title": "x"}], "meta": {"fields": {}}}
        if "cursor" in request.query and mode == "undecodable":
            body = {"data": 5}
        served.append(None)
        # stale: a fresh cursor each time (the token and a count), over the same item.
        cursor = echoed if mode == "undecodable" else f"{echoed}{len(served)}"
        headers = {"Link": _sentry_link(request.host, request.path, cursor)}
        return web.json_response(body, headers=headers)

    app = web.Application()
    app.router.add_get("/{tail:.*}", page)
    spec = ExportSpec(
        kind="discover",
        org="acme",
        fields=("id", "title"),
        start=FIXED_NOW - timedelta(hours=1),
        end=FIXED_NOW,
    )
    async with (
        local_app(app) as url,
        SentryClient(TOKEN, base_url=url, retry=FAST) as client,
    ):
        with anyio.fail_after(60):
            error = await provoke(lambda: export(client, spec, tmp_path / "out"))
    shown = [str(error), repr(error), "".join(traceback.format_exception(error)), caplog.text]
    assert_hidden("\n".join(shown + [repr(value) for value in vars(error).values()]))
    assert "********" in str(error)


@pytest.mark.usefixtures("restore_logging")
@pytest.mark.parametrize("verbose", [False, True])
@pytest.mark.parametrize("form", ["token-raw", "bare-raw", "token-b64-alone"])
async def test_the_cli_blanks_a_cursor_holding_the_token(
    tmp_path: Path, form: str, verbose: bool
) -> None:
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN)
    out, err = io.StringIO(), io.StringIO()
    async with local_app(_cursor_app(dict(FORMS)[form], "repeat")) as url:
        argv = [
            "query", "discover", "--org", "acme", "--field", "title", "--period", "1h",
            "--format", "json", "--base-url", url, "--token-file", str(token_file),
            *(["--verbose"] if verbose else []),
        ]  # fmt: skip
        with anyio.fail_after(30):
            code = await anyio.to_thread.run_sync(lambda: main(argv, stdout=out, stderr=err))
    assert code != 0
    assert "sent back the cursor" in err.getvalue() and "********" in err.getvalue()
    if verbose:
        assert "Traceback" in err.getvalue()
    assert_hidden(out.getvalue() + err.getvalue())


@pytest.mark.parametrize("form", ["token-raw", "bare-raw", "token-unicode-mixed", "token-b64-alone"])
async def test_a_value_quoted_from_a_body_into_a_decode_error_is_blanked_out(
    caplog: pytest.LogCaptureFixture, form: str
) -> None:
    caplog.set_level(logging.DEBUG)
    echoed = dict(FORMS)[form]

    async def stats(request: web.Request) -> web.Response:
        body = f'{{"data": [["{echoed}", []]]}}'
        return web.Response(body=body.encode(), content_type="application/json")

    app = web.Application()
    app.router.add_get("/{tail:.*}", stats)
    async with (
        local_app(app) as url,
        SentryClient(TOKEN, base_url=url, retry=FAST) as client,
    ):
        error = await provoke(lambda: client.stats.events("acme", period="1h"))
    assert isinstance(error, DecodeError)
    assert "timestamp" in str(error) and "********" in str(error)
    assert_hidden(everything_shown(error) + caplog.text)


@pytest.mark.parametrize("form", ["token-raw", "bare-raw", "token-percent-upper"])
async def test_a_region_path_holding_the_token_is_blanked_out_of_hooks_and_spans(
    caplog: pytest.LogCaptureFixture, form: str
) -> None:
    """A server naming a region on its own origin whose path holds the token: the API root
    hook events and spans show is redacted as the log lines' URLs are."""
    caplog.set_level(logging.DEBUG)
    echoed = dict(FORMS)[form]

    async def answer(request: web.Request) -> web.Response:
        if request.path == "/api/0/users/me/regions/":
            region = f"http://{request.host}/{echoed}"
            return web.json_response({"regions": [{"name": "us", "url": region}]})
        return web.json_response([])

    app = web.Application()
    app.router.add_get("/{tail:.*}", answer)
    recorder = Recorder()
    exporter, provider = memory_spans()
    async with (
        local_app(app) as url,
        SentryClient(
            TOKEN, base_url=url, retry=FAST, hooks=[recorder, OpenTelemetryHooks(provider)]
        ) as client,
    ):
        with anyio.fail_after(20):
            assert await client.organizations.list().collect() == []
    servers = [event.server or "" for _, event in recorder.events]
    assert any("/********/api/0" in server for server in servers)
    spans = [repr(dict(span.attributes or {})) for span in exporter.get_finished_spans()]
    assert any("/********/api/0/organizations/" in text for text in spans)
    assert_hidden("\n".join([*servers, *map(repr, recorder.events), *spans, caplog.text]))


SPLIT_ANSWERS = {
    # What the server sends, in two writes; the client's parser quotes only what is in its
    # current read, so the token is cut in two.
    "header-value": (
        f"HTTP/1.1 200 OK\r\nX-Echo: {TOKEN[:20]}",
        f"{TOKEN[20:]}\rX\r\n\r\n",
        "Missing expected LF after header value",
    ),
    "header-name": (
        f"HTTP/1.1 200 OK\r\n{TOKEN[:20]}",
        f"{TOKEN[20:]}: x\r\n\r\n",
        "Invalid header token",
    ),
    "status-line": (
        f"HTTP/1.1 abc {TOKEN[:20]}",
        f"{TOKEN[20:]}\r\n\r\n",
        "Invalid status code",  # after "Bad status line: " from aiohttp 3.14
    ),
    "chunk-size": (
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n[]\r\n" + TOKEN[:20],
        f"{TOKEN[20:]}\r\n\r\n",
        "Invalid character in chunk size",
    ),
}


@asynccontextmanager
async def answering_in_two_reads(first: str, rest: str) -> AsyncIterator[str]:
    """A TCP server on 127.0.0.1 that sends ``first``, then ``rest`` a moment later."""

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
            writer.write(first.encode())
            await writer.drain()
            await asyncio.sleep(0.05)  # a read of its own (nothing is timed on it)
            writer.write(rest.encode())
            await writer.drain()
        except (OSError, asyncio.IncompleteReadError, asyncio.TimeoutError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(answer, "127.0.0.1", 0)
    try:
        yield f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
    finally:
        server.close()
        await server.wait_closed()


@pytest.mark.parametrize("case", list(SPLIT_ANSWERS))
async def test_a_token_split_across_two_reads_of_a_malformed_response_is_not_shown(
    case: str, caplog: pytest.LogCaptureFixture
) -> None:
    """No redactor recognises a piece of the token, and the last piece of an org token is
    its random secret: the error keeps the parser's description, never the bytes it
    quotes."""
    caplog.set_level(logging.DEBUG)
    first, rest, description = SPLIT_ANSWERS[case]
    async with (
        answering_in_two_reads(first, rest) as url,
        SentryClient(TOKEN, base_url=url, retry=FAST) as client,
    ):
        error = await provoke(lambda: client.request("GET", "/organizations/"))
    assert isinstance(error, ConnectionFailed)
    assert "malformed response: " in str(error) and f"{description} (GET " in str(error)
    assert error.cause is not None and description in error.cause
    shown = everything_shown(error) + caplog.text
    assert_hidden(shown)
    for piece in (TOKEN[:20], TOKEN[20:], TOKEN[-10:]):
        assert piece not in shown


class _Status(enum.Enum):
    ACTIVE = "active"


class _WithLiteral(msgspec.Struct):
    slug: str
    status: Literal["active", "disabled"]


class _WithEnum(msgspec.Struct):
    slug: str
    status: _Status


class _Active(msgspec.Struct, tag_field="status", tag="active"):
    slug: str


class _Disabled(msgspec.Struct, tag_field="status", tag="disabled"):
    slug: str


def _echoing_success(echoed: str) -> web.Application:
    """200s whose ``status`` is ``echoed``: one object, or a page of one for a list."""

    async def answer(request: web.Request) -> web.Response:
        if request.path == "/api/0/users/me/regions/":
            return web.json_response({"detail": "not here"}, status=404)
        item = f'{{"id": "1", "slug": "acme", "name": "acme", "status": "{echoed}"}}'
        body = f"[{item}]" if request.path.endswith("/organizations/") else item
        return web.Response(body=body.encode(), content_type="application/json")

    app = web.Application()
    app.router.add_get("/{tail:.*}", answer)
    return app


DECODED_AS: dict[str, Callable[[SentryClient], Awaitable[object]]] = {
    "request-literal": lambda c: c.request("GET", "/organizations/acme/", type=_WithLiteral),
    "request-enum": lambda c: c.request("GET", "/organizations/acme/", type=_WithEnum),
    "request-tag": lambda c: c.request("GET", "/organizations/acme/", type=_Active | _Disabled),
    "paginate": lambda c: c.paginate("/organizations/", type=_WithLiteral).collect(),
    "as_type": lambda c: c.paginate("/organizations/").as_type(_WithEnum).collect(),
    "organizations": lambda c: c.organizations.list().as_type(_WithLiteral).collect(),
}


@pytest.mark.parametrize("how", list(DECODED_AS))
@pytest.mark.parametrize("form", ["token-raw", "bare-raw", "token-unicode-mixed"])
async def test_a_value_a_success_body_echoes_is_blanked_out_of_a_decode_error(
    caplog: pytest.LogCaptureFixture, form: str, how: str
) -> None:
    """msgspec quotes an enum's, a literal's or a tag's value it could not read: the
    message blanks the token out, and msgspec's own error, which quotes it raw, is not
    chained to the one raised."""
    caplog.set_level(logging.DEBUG)
    async with (
        local_app(_echoing_success(dict(FORMS)[form])) as url,
        SentryClient(TOKEN, base_url=url, retry=FAST) as client,
    ):
        error: Any = await provoke(lambda: DECODED_AS[how](client))
    assert isinstance(error, DecodeError)
    assert "Invalid" in str(error) and "'********'" in str(error)
    assert error.__cause__ is None
    assert error.__context__ is None or error.__suppress_context__
    assert_hidden(everything_shown(error) + caplog.text)
    assert "Bearer" not in caplog.text
