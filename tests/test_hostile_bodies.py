"""Bodies that trickle, never end, or inflate: every attempt has a deadline and a size cap.

Each test runs a small aiohttp server on 127.0.0.1 whose answers the test scripts; every
server loop is bounded in count and every test in time.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import json
import struct
import tracemalloc
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import anyio
import pytest
from aiohttp import web

from sentry_async import (
    NotFound,
    RequestTimeout,
    ResponseTooLarge,
    RetryPolicy,
    SentryClient,
    Timeouts,
    fan_out,
)
from sentry_async._protocol.body import BodyReader, BodyTooLarge, CorruptBody

pytestmark = pytest.mark.anyio

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@asynccontextmanager
async def hostile(handle: Handler) -> AsyncIterator[tuple[str, list[str]]]:
    """Serve ``handle`` on 127.0.0.1; yields the base URL and the paths requested."""
    paths: list[str] = []

    async def record(request: web.Request) -> web.StreamResponse:
        paths.append(request.path)
        return await handle(request)

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", record)
    runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=0.1)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield f"http://127.0.0.1:{port}", paths
    finally:
        await runner.cleanup()


async def trickle(request: web.Request) -> web.StreamResponse:
    """A JSON list that arrives one byte every 0.05 s (for at most 10 s)."""
    response = web.StreamResponse(headers={"Content-Type": "application/json"})
    response.content_length = 1000
    await response.prepare(request)
    with contextlib.suppress(ConnectionError):
        await response.write(b"[")
        for _ in range(200):
            await anyio.sleep(0.05)
            await response.write(b" ")
    return response


ONE_TRY = RetryPolicy(attempts=2, backoff_base=0.01, backoff_max=0.02)


# 3. Every attempt has a deadline.


def test_every_attempt_has_a_deadline_by_default() -> None:
    timeouts = SentryClient("t", base_url="http://127.0.0.1:9").timeouts
    assert timeouts.total is not None and timeouts.pool is not None
    aio = timeouts.to_aiohttp()
    assert aio.total == timeouts.total
    assert aio.connect == timeouts.pool
    assert SentryClient("t", base_url="http://127.0.0.1:9", timeout=30).timeouts.total == 300
    unbounded = Timeouts(total=None, pool=None).to_aiohttp()
    assert unbounded.total is None and unbounded.connect is None
    with pytest.raises(ValueError, match="total"):
        Timeouts(total=0)


@pytest.mark.parametrize("how", ["request", "paginate", "fan_out"])
async def test_a_trickling_body_cannot_hold_a_call(how: str) -> None:
    """Bytes keep coming (so the read timeout never fires); the attempt's deadline does."""
    timeouts = Timeouts(read=5.0, total=0.4)
    async with (
        hostile(trickle) as (url, paths),
        SentryClient("t", base_url=url, timeout=timeouts, retry=ONE_TRY) as client,
    ):

        async def call() -> None:
            if how == "request":
                await client.request("GET", "/things/")
            elif how == "paginate":
                await client.paginate("/things/").collect()
            else:
                streams = {"a": lambda: client.paginate("/things/")}
                async with fan_out(streams) as merged:
                    async for _ in merged:
                        pass

        with anyio.fail_after(10), pytest.raises(RequestTimeout) as caught:
            await call()
    assert "/api/0/things/" in caught.value.url
    assert len(paths) == ONE_TRY.attempts


async def test_a_download_outlasts_total_while_its_consumer_is_slow() -> None:
    """``total`` does not end a download: a healthy server sending to a slow sink is no
    trickle, and ``read`` still ends one whose server falls silent."""
    blob = bytes(range(256)) * 16_000

    async def handle(request: web.Request) -> web.StreamResponse:
        return web.Response(body=blob, content_type="application/octet-stream")

    received = bytearray()

    async def slow_sink(chunk: bytes) -> None:
        if not received:
            await anyio.sleep(1.0)  # well past ``total``
        received.extend(chunk)

    timeouts = Timeouts(read=10.0, total=0.2)
    async with (
        hostile(handle) as (url, paths),
        SentryClient("t", base_url=url, timeout=timeouts, retry=ONE_TRY) as client,
    ):
        with anyio.fail_after(20):
            assert await client.download("/files/blob/", slow_sink) == len(blob)
    assert received == blob
    assert len(paths) == 1


async def test_the_wait_for_a_pooled_connection_is_bounded() -> None:
    """One connection, held by a trickling body: the next call gives up after ``pool``."""

    holding = anyio.Event()

    async def handle(request: web.Request) -> web.StreamResponse:
        if request.path.endswith("/slow/"):
            holding.set()
            return await trickle(request)
        return web.json_response([])

    timeouts = Timeouts(read=5.0, total=None, pool=0.3)
    async with (
        hostile(handle) as (url, paths),
        SentryClient(
            "t", base_url=url, timeout=timeouts, retry=RetryPolicy(attempts=1), max_connections=1
        ) as client,
    ):
        with anyio.fail_after(8):
            async with anyio.create_task_group() as tg:
                tg.start_soon(client.request, "GET", "/slow/")
                await holding.wait()
                with pytest.raises(RequestTimeout):
                    await client.request("GET", "/fast/")
                tg.cancel_scope.cancel()
    assert paths == ["/api/0/slow/"]


# 5. Size caps.

MiB = 1024 * 1024


def _compress(data: bytes, wbits: int) -> bytes:
    """``zlib.compress(data, wbits=wbits)``, which Python 3.10 does not take."""
    packer = zlib.compressobj(wbits=wbits)
    return packer.compress(data) + packer.flush()


@functools.cache
def bomb(encoding: str) -> bytes:
    """About 0.5 MB that inflates to 512 MiB of zeros: a valid gzip or zlib stream, made of
    one compressed MiB repeated (a full flush makes each repeat byte-identical)."""
    gzip = encoding == "gzip"
    packer = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS if gzip else zlib.MAX_WBITS)
    zeros = bytes(MiB)
    head = packer.compress(zeros) + packer.flush(zlib.Z_FULL_FLUSH)
    block = packer.compress(zeros) + packer.flush(zlib.Z_FULL_FLUSH)
    end = packer.flush()
    check = 0 if gzip else 1
    for _ in range(512):
        check = (zlib.crc32 if gzip else zlib.adler32)(zeros, check)
    trailer = (
        struct.pack("<II", check, 512 * MiB & 0xFFFFFFFF) if gzip else struct.pack(">I", check)
    )
    return head + block * 511 + end[: -len(trailer)] + trailer


def bomb_server(encoding: str, status: int) -> Handler:
    async def handle(request: web.Request) -> web.StreamResponse:
        body = bomb(encoding)
        return web.Response(
            body=body,
            status=status,
            headers={"Content-Type": "application/json", "Content-Encoding": encoding},
        )

    return handle


async def endless(request: web.Request) -> web.StreamResponse:
    """A chunked body that does not end (until 256 MiB or the client leaves)."""
    response = web.StreamResponse(status=int(request.query.get("status", "200")))
    response.enable_chunked_encoding()
    await response.prepare(request)
    chunk = b"[" + b" " * (MiB - 1)
    with contextlib.suppress(ConnectionError):
        for _ in range(256):
            await response.write(chunk)
    return response


async def huge_length(request: web.Request) -> web.StreamResponse:
    """Announces 2 GB, sends a few bytes, then waits (at most 10 s)."""
    response = web.StreamResponse(status=int(request.query.get("status", "200")))
    response.content_length = 2_000_000_000
    await response.prepare(request)
    with contextlib.suppress(ConnectionError):
        await response.write(b"[1, 2, 3")
        await anyio.sleep(10)
    return response


@pytest.mark.parametrize(("encoding", "status"), [("gzip", 200), ("deflate", 500)])
async def test_a_compression_bomb_is_refused_in_bounded_memory(encoding: str, status: int) -> None:
    """0.5 MB on the wire, 512 MiB inflated: refused at the default 64 MiB, not retried."""
    async with (
        hostile(bomb_server(encoding, status)) as (url, paths),
        SentryClient("t", base_url=url, retry=ONE_TRY) as client,
    ):
        with anyio.fail_after(20), pytest.raises(ResponseTooLarge) as caught:
            await client.request("GET", "/things/")
    assert caught.value.limit == 64 * MiB
    assert "too large" in str(caught.value) and "/api/0/things/" in str(caught.value)
    assert len(paths) == 1, "a body over the cap is not retried"


@pytest.mark.parametrize("status", [200, 500])
@pytest.mark.parametrize("server", [endless, huge_length], ids=["endless", "2GB-length"])
async def test_an_oversized_body_is_a_typed_error(server: Handler, status: int) -> None:
    async with (
        hostile(server) as (url, paths),
        SentryClient("t", base_url=url, retry=ONE_TRY, max_body_size=4 * MiB) as client,
    ):
        with anyio.fail_after(10), pytest.raises(ResponseTooLarge) as caught:
            await client.paginate("/things/", params={"status": str(status)}).collect()
    assert caught.value.limit == 4 * MiB
    assert len(paths) == 1


async def test_bodies_under_the_cap_inflate_as_before() -> None:
    items = list(range(10_000))
    raw = ("[" + ",".join(map(str, items)) + "]").encode()

    async def handle(request: web.Request) -> web.StreamResponse:
        encoding = request.query["encoding"]
        packed = {
            "gzip": lambda: _compress(raw, 16 + zlib.MAX_WBITS),
            "deflate": lambda: zlib.compress(raw),
            "raw-deflate": lambda: _compress(raw, -zlib.MAX_WBITS),
            "identity": lambda: raw,
        }[encoding]()
        name = "deflate" if encoding == "raw-deflate" else encoding
        return web.Response(body=packed, headers={"Content-Encoding": name})

    async with (
        hostile(handle) as (url, _),
        SentryClient("t", base_url=url, max_body_size=len(raw)) as client,
    ):
        with anyio.fail_after(10):
            for encoding in ("gzip", "deflate", "raw-deflate", "identity"):
                got = await client.request("GET", "/things/", params={"encoding": encoding})
                assert got == items, encoding


def test_a_body_read_whole_is_handed_on_as_read_or_inflated_under_the_cap() -> None:
    plain = b'{"id": "1"}' * 100
    assert BodyReader(limit=len(plain), content_length=None, encoding="").whole(plain) is plain
    with pytest.raises(BodyTooLarge) as caught:
        BodyReader(limit=len(plain) - 1, content_length=None, encoding="").whole(plain)
    assert not caught.value.announced
    packed = _compress(plain, 16 + zlib.MAX_WBITS)
    assert BodyReader(limit=len(plain), content_length=None, encoding="gzip").whole(packed) == plain
    with pytest.raises(BodyTooLarge):
        BodyReader(limit=len(plain) - 1, content_length=None, encoding="gzip").whole(packed)


@pytest.mark.parametrize("encoding", ["gzip", "deflate"])
def test_the_body_reader_counts_inflated_bytes_in_bounded_memory(encoding: str) -> None:
    packed = bomb(encoding)
    reader = BodyReader(limit=10 * MiB, content_length=len(packed), encoding=encoding)

    def feed_all() -> None:
        for start in range(0, len(packed), 65536):
            reader.feed(packed[start : start + 65536])

    tracemalloc.start()
    try:
        with pytest.raises(BodyTooLarge) as caught:
            feed_all()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert caught.value.size <= 10 * MiB + 1 and not caught.value.announced
    assert peak < 3 * 10 * MiB, "inflating stops at the cap"
    with pytest.raises(BodyTooLarge, match="announced 2,000,000,000"):
        BodyReader(limit=10 * MiB, content_length=2_000_000_000, encoding="")


@pytest.mark.parametrize("encoding", ["gzip", "deflate"])
@pytest.mark.parametrize("cut", [1, 2, 10])
def test_a_compressed_body_cut_before_its_first_byte_is_corrupt(encoding: str, cut: int) -> None:
    """Only the start of the stream arrived (a gzip header, say): not an empty body."""
    wbits = 16 + zlib.MAX_WBITS if encoding == "gzip" else zlib.MAX_WBITS
    packed = _compress(b'[{"id": "1"}, {"id": "2"}]', wbits)
    reader = BodyReader(limit=MiB, content_length=None, encoding=encoding)
    reader.feed(packed[:cut])
    with pytest.raises(CorruptBody, match="ends early"):
        reader.finish()


@pytest.mark.parametrize("encoding", ["gzip", "deflate", ""])
def test_an_empty_body_stays_empty_whatever_its_encoding(encoding: str) -> None:
    """A 204, or a 200 with ``Content-Length: 0``, sends no bytes at all: nothing to inflate."""
    assert BodyReader(limit=MiB, content_length=0, encoding=encoding).whole(b"") == b""
    assert BodyReader(limit=None, content_length=None, encoding=encoding).finish() == b""


async def test_a_page_cut_before_its_first_inflated_byte_is_fetched_again() -> None:
    """The first answer for page 2 holds only the gzip header: its items are not lost."""
    sent: list[str] = []

    async def handle(request: web.Request) -> web.StreamResponse:
        page = int(request.query.get("cursor") or "1")
        sent.append(str(page))
        more = "true" if page < 3 else "false"
        link = (
            f'<{request.url}>; rel="previous"; results="false"; cursor="", '
            f'<{request.url}>; rel="next"; results="{more}"; cursor="{page + 1}"'
        )
        items = [{"id": f"{page}-{i}"} for i in range(3)]
        packed = _compress(json.dumps(items).encode(), 16 + zlib.MAX_WBITS)
        if page == 2 and sent.count("2") == 1:
            packed = packed[:10]
        return web.Response(
            body=packed,
            headers={"Link": link, "Content-Encoding": "gzip", "Content-Type": "application/json"},
        )

    async with hostile(handle) as (url, _), SentryClient("t", base_url=url, retry=ONE_TRY) as c:
        with anyio.fail_after(10):
            items = await c.paginate("/things/").collect()
    assert [item["id"] for item in items] == [f"{p}-{i}" for p in (1, 2, 3) for i in range(3)]
    assert sorted(sent) == ["1", "2", "2", "3"], "page 2 was asked for again, once"


def test_a_streamed_body_inflates_a_bounded_slice_at_a_time() -> None:
    """With no cap, one chunk of a bomb still comes out in pieces, not 256 MiB at once."""
    packed = bomb("gzip")
    reader = BodyReader(limit=None, content_length=None, encoding="gzip")
    sizes = [len(piece) for piece in reader.pieces(packed[: len(packed) // 2])]
    assert len(sizes) > 1 and max(sizes) <= MiB
    sizes += [len(piece) for piece in reader.pieces(packed[len(packed) // 2 :])]
    assert reader.finish() == b""
    assert sum(sizes) == 512 * MiB and max(sizes) <= MiB


async def test_a_download_hands_a_bomb_to_its_sink_in_bounded_pieces() -> None:
    async with (
        hostile(bomb_server("gzip", 200)) as (url, _),
        SentryClient("t", base_url=url) as client,
    ):
        sizes: list[int] = []

        async def sink(chunk: bytes) -> None:
            sizes.append(len(chunk))

        with anyio.fail_after(60):
            assert await client.download("/files/bomb/", sink) == 512 * MiB
    assert max(sizes) <= MiB


async def test_download_streams_a_body_over_the_cap(tmp_path: Path) -> None:
    """Large binary bodies go to a file or a callable chunk by chunk, inflated, uncapped."""
    blob = bytes(range(256)) * 40_000  # about 10 MB

    async def handle(request: web.Request) -> web.StreamResponse:
        if request.query.get("gzip"):
            packed = _compress(blob, 16 + zlib.MAX_WBITS)
            return web.Response(body=packed, headers={"Content-Encoding": "gzip"})
        return web.Response(body=blob)

    async with (
        hostile(handle) as (url, _),
        SentryClient("t", base_url=url, max_body_size=MiB) as client,
    ):
        with anyio.fail_after(20):
            target = tmp_path / "blob.bin"
            assert await client.download("/files/blob/", target) == len(blob)
            assert target.read_bytes() == blob
            chunks: list[bytes] = []

            async def collect(chunk: bytes) -> None:
                chunks.append(chunk)

            size = await client.download("/files/blob/", collect, params={"gzip": "1"})
            assert size == len(blob) and b"".join(chunks) == blob
            with pytest.raises(ResponseTooLarge):
                await client.request("GET", "/files/blob/")
            async with client.stream("/files/blob/", params={"gzip": "1"}) as stream:
                streamed = [chunk async for chunk in stream]
            assert b"".join(streamed) == blob
            async with client.stream("/files/blob/") as stream:
                async for _ in stream:
                    break  # leaving early stops the download


@pytest.mark.parametrize(
    "error",
    [
        OSError(errno.ENOSPC, "No space left on device"),
        ValueError("bad chunk"),
        UnicodeDecodeError("utf-8", b"\xff", 0, 1, "invalid start byte"),
        RuntimeError("sink closed"),
    ],
    ids=["ENOSPC", "ValueError", "UnicodeDecodeError", "RuntimeError"],
)
async def test_a_sinks_own_error_reaches_the_caller_as_itself(error: Exception) -> None:
    """What the caller's sink raises is not a connection failure, and is not retried."""

    async def handle(request: web.Request) -> web.StreamResponse:
        return web.Response(body=b"x" * 100_000, content_type="application/octet-stream")

    async def sink(chunk: bytes) -> None:
        raise error

    async with (
        hostile(handle) as (url, paths),
        SentryClient("t", base_url=url, retry=ONE_TRY) as client,
    ):
        with anyio.fail_after(10), pytest.raises(type(error)) as caught:
            await client.download("/files/blob/", sink)
    assert caught.value is error
    assert len(paths) == 1, "not retried"


async def test_stream_raises_the_error_from_the_iteration() -> None:
    async def handle(request: web.Request) -> web.StreamResponse:
        return web.json_response({"detail": "gone"}, status=404)

    async with (
        hostile(handle) as (url, _),
        SentryClient("t", base_url=url) as client,
    ):
        with anyio.fail_after(10):
            async with client.stream("/files/missing/") as stream:
                with pytest.raises(NotFound):
                    await anext(aiter(stream))


async def test_stream_error_leaves_the_block_as_itself_not_in_a_group() -> None:
    async def handle(request: web.Request) -> web.StreamResponse:
        return web.json_response({"detail": "gone"}, status=404)

    async def drain(client: SentryClient) -> None:
        async with client.stream("/files/missing/") as stream:
            async for _ in stream:
                pass

    async with (
        hostile(handle) as (url, _),
        SentryClient("t", base_url=url) as client,
    ):
        with anyio.fail_after(10), pytest.raises(NotFound):
            await drain(client)
