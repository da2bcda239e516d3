"""``download()`` and ``stream()``: what a download leaves behind, on disk and in the pool.

A download's connection is not handed to a later request with aiohttp's read timer still
running on it; a file is written through a temporary file of its own, created beside the
target and never through what is already there, and renamed or removed by the download
that made it; an existing target keeps its mode, and a directory is refused before
anything is sent; until a download's response begins, and while its error body is read,
``total`` bounds it on Python 3.10 too.

Every server is on 127.0.0.1 and every loop is bounded; nothing is timed but for one wait
past a read bound that must have run out, and an outer limit that only a hang reaches.
"""

from __future__ import annotations

import asyncio
import os
import stat
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import aiohttp
import anyio
import pytest
from _local_server import local_app
from aiohttp import web

from sentry_async import (
    ConnectionFailed,
    NotFound,
    RequestTimeout,
    RetryPolicy,
    SentryClient,
    Timeouts,
    _transport,
)
from sentry_async._deadlines import SHARED_DEADLINES

pytestmark = pytest.mark.anyio

ONCE = RetryPolicy(attempts=1)
HANG = 10
"""An outer bound only a hang reaches."""

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def simulate(shared: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    """``shared=False``: the transport as on Python 3.10, without the shared deadlines."""
    if shared and not SHARED_DEADLINES:
        pytest.skip("Python 3.10 has no shared deadlines")
    monkeypatch.setattr(_transport, "SHARED_DEADLINES", shared)


@asynccontextmanager
async def serving(
    routes: dict[str, Handler],
    seen: list[str] | None = None,
    timeouts: Timeouts | None = None,
    session: aiohttp.ClientSession | None = None,
) -> AsyncIterator[SentryClient]:
    """A client (one attempt a call, through ``session`` if given) of an app answering
    ``routes`` (paths under ``/api/0``); ``seen`` gets each request's method and path."""

    @web.middleware
    async def record(
        request: web.Request,
        handler: Handler,
    ) -> web.StreamResponse:
        if seen is not None:
            seen.append(f"{request.method} {request.path}")
        return await handler(request)

    app = web.Application(middlewares=[record])
    for path, handle in routes.items():
        app.router.add_route("*", f"/api/0{path}", handle)
    async with (
        local_app(app) as url,
        SentryClient(
            "t", base_url=url, timeout=timeouts or Timeouts(), retry=ONCE, session=session
        ) as client,
    ):
        yield client


# Bug: aiohttp re-armed its read timer on a download's connection after handing it back to
# the pool, when a consumer slower than ``read`` let it read on: the timer then broke the
# idle connection, and the next request on it (a write) failed at once with a timeout.

READ = 0.05
BIG = os.urandom(500_000)


@pytest.mark.parametrize("shared", [True, False])
async def test_a_download_slower_than_read_leaves_no_timer_to_the_next_request(
    shared: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    simulate(shared, monkeypatch)
    notes: list[object] = []

    async def file(request: web.Request) -> web.StreamResponse:
        return web.Response(body=BIG)

    async def note(request: web.Request) -> web.StreamResponse:
        notes.append(await request.json())
        return web.json_response({"id": str(len(notes))}, status=201)

    got = bytearray()
    last_in, release = anyio.Event(), anyio.Event()

    async def slow(chunk: bytes) -> None:
        got.extend(chunk)
        if len(got) == len(BIG):
            last_in.set()
            with anyio.fail_after(HANG):
                await release.wait()

    timeouts = Timeouts(connect=5, read=READ, total=30, pool=5)
    # A small buffer: every read of the socket fills it past its mark, so the body's end is
    # parsed only once the consumer drains it, after which aiohttp re-armed its read timer.
    async with (
        aiohttp.ClientSession(read_bufsize=2**10) as session,
        serving({"/file/": file, "/notes/": note}, timeouts=timeouts, session=session) as client,
    ):
        with anyio.fail_after(HANG):
            async with anyio.create_task_group() as tg:
                tg.start_soon(client.download, "/file/", slow)
                await last_in.wait()
                await anyio.sleep(6 * READ)  # past any read timer armed by the last read
                release.set()
            assert await client.request("POST", "/notes/", json={"n": 1}) == {"id": "1"}
    assert bytes(got) == BIG
    assert notes == [{"n": 1}]


# Bug: every download to a path wrote through the one ``<path>.part``, opened with "wb":
# two downloads to one path truncated and renamed each other's file, a failed one deleted
# the other's, a link planted at that name was written through, and a failed download
# deleted a ``.part`` it never made.


@asynccontextmanager
async def two_bodies(
    first: bytes, second: bytes, second_breaks: bool
) -> AsyncIterator[tuple[SentryClient, anyio.Event, anyio.Event]]:
    """``/one/`` sends half of ``first``, waits for the yielded release, sends the rest;
    ``/two/`` sends ``second`` whole, or half of it and then breaks off. The first event is
    set once ``/one/`` has sent its half."""
    half_sent, release = anyio.Event(), anyio.Event()

    async def one(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Length": str(len(first))})
        await response.prepare(request)
        await response.write(first[: len(first) // 2])
        half_sent.set()
        with anyio.fail_after(HANG):
            await release.wait()
        await response.write(first[len(first) // 2 :])
        return response

    async def two(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Length": str(len(second))})
        await response.prepare(request)
        if not second_breaks:
            await response.write(second)
            return response
        await response.write(second[: len(second) // 2])
        assert request.transport is not None
        request.transport.close()
        return response

    try:
        async with serving({"/one/": one, "/two/": two}) as client:
            yield client, half_sent, release
    finally:
        release.set()


@pytest.mark.parametrize("second_breaks", [False, True], ids=["other-completes", "other-fails"])
async def test_two_downloads_to_one_path_each_write_a_file_of_their_own(
    tmp_path: Path, second_breaks: bool
) -> None:
    first, second = b"1" * 300_000, b"2" * 200_000
    target = tmp_path / "dsym.bin"
    async with two_bodies(first, second, second_breaks) as (client, half_sent, release):
        with anyio.fail_after(HANG):
            async with anyio.create_task_group() as tg:
                results: dict[str, object] = {}

                async def run(name: str, path: str) -> None:
                    try:
                        results[name] = await client.download(path, target)
                    except Exception as exc:
                        results[name] = exc

                tg.start_soon(run, "one", "/one/")
                await half_sent.wait()
                await run("two", "/two/")  # the other download, start to end, meanwhile
                release.set()
    assert results["one"] == len(first)
    if second_breaks:
        assert isinstance(results["two"], ConnectionFailed)
    else:
        assert results["two"] == len(second)
    assert target.read_bytes() == first  # the last to finish wins, whole
    assert os.listdir(tmp_path) == ["dsym.bin"]


def answering(body: bytes, status: int = 200) -> Handler:
    async def handle(request: web.Request) -> web.StreamResponse:
        return web.Response(body=body, status=status)

    return handle


async def test_a_link_planted_at_the_part_name_is_neither_followed_nor_removed(
    tmp_path: Path,
) -> None:
    victim = tmp_path / "victim.conf"
    victim.write_bytes(b"private settings\n")
    planted = tmp_path / "out.bin.part"
    planted.symlink_to(victim)
    kept = tmp_path / "report.pdf.part"
    kept.write_bytes(b"someone else's")
    routes = {"/file/": answering(b"ATTACHMENT"), "/gone/": answering(b"{}", 404)}
    async with serving(routes) as client:
        with anyio.fail_after(HANG):
            assert await client.download("/file/", tmp_path / "out.bin") == len(b"ATTACHMENT")
            with pytest.raises(NotFound):
                await client.download("/gone/", tmp_path / "report.pdf")
    assert victim.read_bytes() == b"private settings\n"
    assert not (tmp_path / "out.bin").is_symlink()
    assert (tmp_path / "out.bin").read_bytes() == b"ATTACHMENT"
    assert planted.is_symlink() and os.readlink(planted) == str(victim)
    assert kept.read_bytes() == b"someone else's"
    assert sorted(os.listdir(tmp_path)) == [
        "out.bin",
        "out.bin.part",
        "report.pdf.part",
        "victim.conf",
    ]


async def test_a_file_that_cannot_be_written_is_named_by_the_error(tmp_path: Path) -> None:
    seen: list[str] = []
    target = tmp_path / "missing" / "out.bin"
    async with serving({"/file/": answering(b"x")}, seen) as client:
        with anyio.fail_after(HANG), pytest.raises(FileNotFoundError) as caught:
            await client.download("/file/", target)
    assert caught.value.filename == str(target)
    assert str(target) in str(caught.value)
    assert seen == []  # refused before anything was sent


# Bug: a download replaced a private file with one of the umask's default mode (0600 became
# 0644); and a download to a directory transferred the whole body before failing.


@pytest.mark.parametrize("mode", [0o600, 0o640, 0o666, None], ids=["600", "640", "666", "new"])
async def test_a_download_keeps_the_mode_of_the_file_it_replaces(
    tmp_path: Path, mode: int | None
) -> None:
    target = tmp_path / "minidump.dmp"
    if mode is not None:
        target.write_bytes(b"old")
        target.chmod(mode)
    umask = os.umask(0o022)
    try:
        async with serving({"/file/": answering(b"new")}) as client:
            with anyio.fail_after(HANG):
                await client.download("/file/", target)
    finally:
        os.umask(umask)
    assert target.read_bytes() == b"new"
    assert stat.S_IMODE(target.stat().st_mode) == (0o644 if mode is None else mode)


async def test_a_download_to_a_directory_is_refused_before_it_is_sent(tmp_path: Path) -> None:
    seen: list[str] = []
    (tmp_path / "symbols").mkdir()
    async with serving({"/file/": answering(b"x" * 100_000)}, seen) as client:
        with anyio.fail_after(HANG), pytest.raises(IsADirectoryError) as caught:
            await client.download("/file/", tmp_path / "symbols")
    assert seen == []
    assert caught.value.filename == str(tmp_path / "symbols")
    assert os.listdir(tmp_path) == ["symbols"]
    assert os.listdir(tmp_path / "symbols") == []


# Bug: on Python 3.10 (no shared deadlines) a download had no ``total`` until its response
# began nor while its error body was read, so a server trickling either held it for ever.


@asynccontextmanager
async def raw_server(first: bytes, then: bytes) -> AsyncIterator[str]:
    """Answers every request with ``first``, then ``then`` a piece every 50 ms (at most 200
    pieces) until the client leaves or the server stops; yields the base URL."""
    stop = asyncio.Event()
    handlers: list[asyncio.Future[object]] = []

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await reader.readuntil(b"\r\n\r\n")
            writer.write(first)
            for _ in range(200):
                writer.write(then)
                await writer.drain()
                with anyio.move_on_after(0.05):
                    await stop.wait()
                if stop.is_set() or reader.at_eof():
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    def start(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        handlers.append(asyncio.ensure_future(serve(reader, writer)))

    server = await asyncio.start_server(start, "127.0.0.1", 0)
    try:
        yield f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
    finally:
        stop.set()
        server.close()
        await asyncio.gather(*handlers)
        await server.wait_closed()


TRICKLES = {
    "headers": (b"HTTP/1.1 200 OK\r\nX-Slow: ", b"a"),
    "error-body": (b"HTTP/1.1 500 Boom\r\nTransfer-Encoding: chunked\r\n\r\n", b"1\r\nx\r\n"),
}


@pytest.mark.parametrize("trickled", sorted(TRICKLES))
@pytest.mark.parametrize("shared", [True, False])
@pytest.mark.parametrize("how", ["download", "stream"])
async def test_total_bounds_a_download_until_its_body_begins(
    trickled: str, shared: bool, how: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    simulate(shared, monkeypatch)
    timeouts = Timeouts(connect=2, read=2, total=0.3, pool=2)
    async with (
        raw_server(*TRICKLES[trickled]) as url,
        SentryClient("t", base_url=url, timeout=timeouts, retry=ONCE) as client,
    ):
        with anyio.fail_after(HANG), pytest.raises(RequestTimeout) as caught:
            await fetch(client, how)
    assert "Timeouts.total" in str(caught.value)


async def fetch(client: SentryClient, how: str) -> None:
    """A GET's body through ``download()`` or ``stream()``, thrown away."""
    if how == "download":

        async def drop(chunk: bytes) -> None:
            pass

        await client.download("/x/", drop)
        return
    async with client.stream("/x/") as chunks:
        async for _ in chunks:
            pass
