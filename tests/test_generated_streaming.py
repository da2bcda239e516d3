"""Generated methods with file bodies, and ``project=`` slugs on org endpoints.

Downloads arrive as chunks (or go to a file) instead of one body; uploads accept bytes,
paths and async iterators; project slugs are turned into the ids Sentry's ``project=``
takes, through one lookup shared by every generated method.
"""

from __future__ import annotations

import asyncio
import gc
import gzip
import hashlib
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from sentry_async import HookEvent, Hooks, NotFound, RateLimited, RetryPolicy, SentryClient

BLOB = bytes(range(256)) * 4096  # 1 MiB
ATTACHMENT = "/api/0/projects/acme/web/events/" + "a" * 32 + "/attachments/9/"
FILES = "/api/0/organizations/acme/releases/1.0/files/"


class Recorder:
    def __init__(self) -> None:
        self.requests: list[web.Request] = []
        self.bodies: list[bytes] = []
        self.fail_first: int | None = None


async def start(app: web.Application) -> tuple[web.AppRunner, str]:
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    return runner, f"http://127.0.0.1:{port}"


@pytest.fixture
async def server() -> AsyncIterator[tuple[Recorder, str]]:
    seen = Recorder()

    async def attachment(request: web.Request) -> web.StreamResponse:
        seen.requests.append(request)
        if seen.fail_first is not None:
            status, seen.fail_first = seen.fail_first, None
            return web.json_response(
                {"detail": "try later"}, status=status, headers={"Retry-After": "0"}
            )
        if request.query.get("download") != "1":
            return web.json_response({"id": "9", "name": "dump.bin"})
        response = web.StreamResponse(headers={"Content-Type": "application/octet-stream"})
        await response.prepare(request)
        for offset in range(0, len(BLOB), 100_000):
            await response.write(BLOB[offset : offset + 100_000])
        await response.write_eof()
        return response

    async def missing(request: web.Request) -> web.Response:
        return web.json_response({"detail": "The requested resource does not exist"}, status=404)

    async def upload(request: web.Request) -> web.Response:
        seen.requests.append(request)
        seen.bodies.append(await request.read())
        return web.json_response({"id": "1", "name": "app.js", "size": 3}, status=201)

    async def projects(request: web.Request) -> web.Response:
        seen.requests.append(request)
        return web.json_response(
            [{"id": "11", "slug": "web"}, {"id": "12", "slug": "api"}, {"id": "13", "slug": "ios"}]
        )

    async def monitors(request: web.Request) -> web.Response:
        seen.requests.append(request)
        return web.json_response([{"id": "m1", "slug": "nightly"}])

    async def replay_count(request: web.Request) -> web.Response:
        seen.requests.append(request)
        return web.json_response({"a": 1})

    app = web.Application()
    app.router.add_get(ATTACHMENT, attachment)
    app.router.add_get("/api/0/projects/acme/web/events/{e}/attachments/404/", missing)
    app.router.add_post(FILES, upload)
    app.router.add_get("/api/0/organizations/acme/projects/", projects)
    app.router.add_get("/api/0/organizations/acme/monitors/", monitors)
    app.router.add_get("/api/0/organizations/acme/replay-count/", replay_count)
    runner, url = await start(app)
    yield seen, url
    await runner.cleanup()


def client_for(url: str, **kwargs: Any) -> SentryClient:
    kwargs.setdefault("retry", RetryPolicy(attempts=2, backoff_base=0, jitter=0))
    return SentryClient("tok", base_url=url, **kwargs)


async def test_stream_hands_over_chunks_not_the_whole_body(server: tuple[Recorder, str]) -> None:
    seen, url = server
    async with client_for(url) as client:
        chunks = [
            chunk
            async for chunk in client.events.stream_attachment(
                "acme", "web", "a" * 32, 9, chunk_size=32_768
            )
        ]
    assert b"".join(chunks) == BLOB
    assert len(chunks) > 1
    assert max(len(chunk) for chunk in chunks) <= 32_768
    assert seen.requests[0].query["download"] == "1"
    assert seen.requests[0].headers["Authorization"] == "Bearer tok"


async def test_metadata_call_does_not_ask_for_the_contents(server: tuple[Recorder, str]) -> None:
    seen, url = server
    async with client_for(url) as client:
        meta = await client.events.get_attachment("acme", "web", "a" * 32, 9)
    assert meta.name == "dump.bin"
    assert "download" not in seen.requests[0].query


async def test_download_writes_the_file_and_leaves_no_partial(
    server: tuple[Recorder, str], tmp_path: Path
) -> None:
    _, url = server
    target = tmp_path / "dump.bin"
    async with client_for(url) as client:
        written = await client.events.download_attachment("acme", "web", "a" * 32, 9, to=target)
    assert written == len(BLOB)
    assert hashlib.sha256(target.read_bytes()).digest() == hashlib.sha256(BLOB).digest()
    assert os.listdir(tmp_path) == ["dump.bin"]


async def test_download_error_is_typed_and_leaves_nothing(
    server: tuple[Recorder, str], tmp_path: Path
) -> None:
    _, url = server
    async with client_for(url) as client:
        with pytest.raises(NotFound, match="does not exist"):
            await client.events.download_attachment(
                "acme", "web", "a" * 32, 404, to=tmp_path / "x"
            )
    assert os.listdir(tmp_path) == []


async def test_stream_retries_a_rate_limit_before_the_body(server: tuple[Recorder, str]) -> None:
    seen, url = server
    seen.fail_first = 429
    async with client_for(url) as client:
        total = 0
        async for chunk in client.events.stream_attachment("acme", "web", "a" * 32, 9):
            total += len(chunk)
    assert total == len(BLOB)
    assert len(seen.requests) == 2


async def test_stream_gives_up_when_retries_run_out(server: tuple[Recorder, str]) -> None:
    seen, url = server
    seen.fail_first = 429
    async with client_for(url, retry=RetryPolicy(attempts=1)) as client:
        with pytest.raises(RateLimited):
            async for _ in client.events.stream_attachment("acme", "web", "a" * 32, 9):
                pass


async def test_stream_refuses_a_bad_chunk_size(server: tuple[Recorder, str]) -> None:
    _, url = server
    async with client_for(url) as client:
        with pytest.raises(ValueError, match="chunk_size"):
            async for _ in client.events.stream_attachment(
                "acme", "web", "a" * 32, 9, chunk_size=0
            ):
                pass


async def chunks() -> AsyncIterator[bytes]:
    for part in (b"con", b"sole.", b"log(1)"):
        yield part


@pytest.mark.parametrize("kind", ["bytes", "path", "iterator"])
async def test_upload_takes_bytes_paths_and_iterators(
    kind: str, server: tuple[Recorder, str], tmp_path: Path
) -> None:
    seen, url = server
    source = tmp_path / "app.min.js"
    source.write_bytes(b"console.log(1)")
    contents: Any = {"bytes": b"console.log(1)", "path": source, "iterator": chunks()}[kind]
    async with client_for(url) as client:
        created = await client.releases.upload_file(
            "acme", "1.0", file=contents, name="~/app.min.js", header=["a:b", "c:d"]
        )
    assert created.name == "app.js"
    body = seen.bodies[0]
    assert seen.requests[0].headers["Content-Type"].startswith("multipart/form-data")
    assert b"console.log(1)" in body
    assert b'name="name"' in body and b"~/app.min.js" in body
    assert body.count(b'name="header"') == 2
    assert b'name="dist"' not in body
    if kind == "path":
        assert b'filename="app.min.js"' in body


# ReleaseFilesMixin.post_releasefile: ``full_name = request.data.get("name", fileobj.name)``,
# then 400 "File name must be specified" when it is empty or "file". Bytes and iterators
# have no name of their own: the part would be called after its field, "file".
@pytest.mark.parametrize("kind", ["bytes", "iterator"])
async def test_upload_of_contents_without_a_name_is_refused_before_sending(
    kind: str, server: tuple[Recorder, str]
) -> None:
    seen, url = server
    contents: Any = {"bytes": b"console.log(1)", "iterator": chunks()}[kind]
    async with client_for(url) as client:
        with pytest.raises(ValueError, match=r"`name`.*`filename`"):
            await client.releases.upload_file("acme", "1.0", file=contents)
        with pytest.raises(ValueError, match=r"`name`.*`filename`"):
            await client.releases.upload_file("acme", "1.0", file=b"x", name="  ")
        with pytest.raises(ValueError, match=r"`name`.*`filename`"):
            await client.releases.upload_file("acme", "1.0", file=b"x", filename=" ")
        with pytest.raises(ValueError, match=r"`name`.*`filename`"):
            await client.releases.upload_file("acme", "1.0", file=b"x", filename="file")
        with pytest.raises(ValueError, match=r"`name`.*`filename`"):
            await client.releases.upload_file_for_project("acme", "web", "1.0", file=b"x")
    assert seen.requests == []
    if kind == "iterator":
        await contents.aclose()


async def test_upload_named_by_filename_or_path_goes_out(
    server: tuple[Recorder, str], tmp_path: Path
) -> None:
    seen, url = server
    source = tmp_path / "app.min.js"
    source.write_bytes(b"console.log(1)")
    async with client_for(url) as client:
        await client.releases.upload_file("acme", "1.0", file=b"x", filename="app.js")
        await client.releases.upload_file("acme", "1.0", file=source)
    assert b'filename="app.js"' in seen.bodies[0]
    assert b'filename="app.min.js"' in seen.bodies[1]


@pytest.mark.parametrize("bad", ["app\r\n.js", "a\nb.js", "nul\x00.js"])
async def test_a_filename_with_a_control_character_is_refused_by_name(
    bad: str, server: tuple[Recorder, str], tmp_path: Path
) -> None:
    seen, url = server
    async with client_for(url) as client:
        with pytest.raises(ValueError, match="`filename`"):
            await client.releases.upload_file("acme", "1.0", file=b"x", name="a.js", filename=bad)
        if "\x00" not in bad:
            source = tmp_path / bad
            source.write_bytes(b"x")
            with pytest.raises(ValueError, match="`file`"):
                await client.releases.upload_file("acme", "1.0", file=source)
    assert seen.requests == []


async def test_project_slugs_become_ids_once_per_client(server: tuple[Recorder, str]) -> None:
    seen, url = server
    async with client_for(url) as client:
        listed = await client.crons.list("acme", project=["api", "web", 99]).collect()
        counted = await client.replays.count("acme", data_source="events", project="ios")
        await client.crons.list("acme", project="web").collect()
    assert listed[0].slug == "nightly"
    assert counted == {"a": 1}
    paths = [r.path for r in seen.requests]
    assert paths.count("/api/0/organizations/acme/projects/") == 1
    monitor_calls = [r for r in seen.requests if r.path.endswith("/monitors/")]
    assert monitor_calls[0].query.getall("project") == ["12", "11", "99"]
    assert monitor_calls[1].query.getall("project") == ["11"]
    count_call = next(r for r in seen.requests if r.path.endswith("/replay-count/"))
    assert count_call.query.getall("project") == ["13"]


async def test_numeric_projects_need_no_lookup(server: tuple[Recorder, str]) -> None:
    seen, url = server
    async with client_for(url) as client:
        await client.crons.list("acme", project=[5, "-1"]).collect()
    assert [r.path for r in seen.requests] == ["/api/0/organizations/acme/monitors/"]
    assert seen.requests[0].query.getall("project") == ["5", "-1"]


async def test_unknown_project_slug_is_named(server: tuple[Recorder, str]) -> None:
    _, url = server
    async with client_for(url) as client:
        with pytest.raises(ValueError, match="'nope'"):
            await client.replays.count("acme", data_source="events", project="nope")
        paginator = client.crons.list("acme", project="nope")
        with pytest.raises(ValueError, match="'nope'"):
            await paginator.collect()


class Seen(Hooks):
    def __init__(self) -> None:
        self.done: list[HookEvent] = []

    def on_done(self, event: HookEvent) -> None:
        self.done.append(event)


@pytest.fixture
async def gzip_server() -> AsyncIterator[tuple[Recorder, str]]:
    """The attachment compressed on the wire, and uploads answered 429 once each."""
    seen = Recorder()

    async def attachment(request: web.Request) -> web.Response:
        seen.requests.append(request)
        return web.Response(
            body=gzip.compress(BLOB),
            headers={"Content-Encoding": "gzip", "Content-Type": "application/octet-stream"},
        )

    async def upload(request: web.Request) -> web.Response:
        seen.requests.append(request)
        seen.bodies.append(await request.read())
        if len(seen.requests) % 2:
            return web.json_response({"detail": "slow down"}, status=429, headers={"Retry-After": "0"})
        return web.json_response({"id": "1", "name": "app.js", "size": 3}, status=201)

    app = web.Application()
    app.router.add_get(ATTACHMENT, attachment)
    app.router.add_post(FILES, upload)
    runner, url = await start(app)
    yield seen, url
    await runner.cleanup()


async def test_generated_stream_is_inflated_and_seen_by_hooks(
    gzip_server: tuple[Recorder, str], tmp_path: Path
) -> None:
    """Generated downloads go through the client's own download path: hooks, inflation."""
    _, url = gzip_server
    hooks = Seen()
    async with client_for(url, hooks=hooks) as client:
        chunks = [c async for c in client.events.stream_attachment("acme", "web", "a" * 32, 9)]
        await client.events.download_attachment("acme", "web", "a" * 32, 9, to=tmp_path / "d")
    assert b"".join(chunks) == BLOB
    assert all(len(chunk) == 65536 for chunk in chunks[:-1])
    assert (tmp_path / "d").read_bytes() == BLOB
    assert [(e.method, e.group, e.status) for e in hooks.done] == [
        ("GET", "GET /projects/{org}/{project}/events/{event_id}/attachments/{attachment_id}/", 200)
    ] * 2


async def test_upload_is_resent_after_a_429_only_when_it_can_be_read_again(
    gzip_server: tuple[Recorder, str],
) -> None:
    seen, url = gzip_server
    hooks = Seen()
    async with client_for(url, hooks=hooks) as client:
        created = await client.releases.upload_file("acme", "1.0", file=b"x", name="a.js")
        assert created.name == "app.js"
        assert len(seen.requests) == 2
        with pytest.raises(RateLimited):
            await client.releases.upload_file("acme", "1.0", file=chunks(), name="a.js")
    assert len(seen.requests) == 3
    assert [e.attempt for e in hooks.done] == [2, 1]


async def test_a_stream_left_early_without_closing_it_harms_nothing(
    server: tuple[Recorder, str],
) -> None:
    """The event loop closes an abandoned generator from a task of its own: the download
    under it must stop there without touching the task that iterated."""
    _, url = server
    async with client_for(url) as client:
        for _ in range(2):
            async for _chunk in client.events.stream_attachment("acme", "web", "a" * 32, 9):
                break
            gc.collect()
            for _ in range(5):
                await asyncio.sleep(0)
        total = 0
        async for chunk in client.events.stream_attachment("acme", "web", "a" * 32, 9):
            total += len(chunk)
    assert total == len(BLOB)
