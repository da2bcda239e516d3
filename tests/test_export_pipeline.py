"""Pages written on the loop while writes are quick, handed to the files' thread without
waiting once one is slow: the walk goes on while the disk works, and a failed write still
stops everything after it."""

from __future__ import annotations

import asyncio
import errno
import os
import threading
import time
from collections.abc import Awaitable, Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import msgspec
import pytest

from sentry_async import SentryClient, _cli_run
from sentry_async.export import (
    CHECKPOINT_NAME,
    ExportSpec,
    Manifest,
    _datafiles,
    _runner,
    _writer,
    export,
)
from sentry_async.export._progress import Progress
from sentry_async.testing import FakeSentry, SeedConfig
from sentry_async.testing.pytest_plugin import FIXED_NOW

ORG = "org-0"
PROJECT = "project-0-0"
DATA = SeedConfig(
    orgs=1, projects_per_org=1, issues_per_project=12, events_per_issue=(2, 3), days=6
)
END = FIXED_NOW - timedelta(hours=1)
START = END - timedelta(days=5)

Factory = Callable[..., Awaitable[FakeSentry]]


def _spec(**kwargs: Any) -> ExportSpec:
    return ExportSpec(
        kind="events",
        org=ORG,
        projects=(PROJECT,),
        start=START,
        end=END,
        window=None,
        page_size=2,
        **kwargs,
    )


def _page_requests(server: FakeSentry) -> int:
    return len(server.requests.matching("GET", "/projects/{org}/{project}/events/"))


def _ids(path: Path) -> list[str]:
    return [msgspec.json.decode(line)["id"] for line in path.read_bytes().splitlines()]


@pytest.mark.parametrize("thread_starts_late", [0.0, 0.3])
async def test_once_a_write_was_slow_the_walk_goes_on_while_a_page_is_being_written(
    fake_sentry_factory: Factory,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    thread_starts_late: float,
) -> None:
    server = await fake_sentry_factory(scale=DATA)
    append = _writer.JsonlFile.append
    calls: list[bool] = []
    reached: list[int] = []
    slow = _datafiles.SLOW_WRITES
    # Waiting for each write, the walk could not pass the page being written and the
    # pages read ahead of it; going on, it fetches three more, which the thread's queue
    # has room for.
    blocked = slow + 1 + _runner.ALONE_READ_AHEAD
    going_on = blocked + 3
    assert going_on <= slow + 1 + _datafiles.MAX_QUEUED - 1 + _runner.ALONE_READ_AHEAD

    def slow_appends(self: _writer.JsonlFile, data: bytes) -> int:
        calls.append(threading.current_thread() is threading.main_thread())
        if len(calls) <= slow:
            time.sleep(_datafiles.QUICK_WRITE * 5)  # a disk that throttles its writers
        elif len(calls) == slow + 1:
            # Held (in the files' thread) until the walk has gone that far, or a while has
            # passed. Counted from the stream's start, not from when this thread got to
            # run: on a busy machine (here, a thread that starts late) the walk may
            # already be on its way.
            time.sleep(thread_starts_late)
            for _ in range(1000):
                if _page_requests(server) >= going_on:
                    break
                time.sleep(0.01)
            reached.append(_page_requests(server))
        return append(self, data)

    monkeypatch.setattr(_writer.JsonlFile, "append", slow_appends)
    out = tmp_path / "out"
    async with SentryClient(server.token, base_url=server.url) as client:
        manifest = await export(client, _spec(), out, concurrency=1)
    assert manifest.pages >= going_on, "the stream spans enough pages"
    assert all(calls[:slow]) and not any(calls[slow:]), "after slow writes, pages go to the thread"
    assert reached and reached[0] >= going_on, "pages kept coming while the thread's first was written"
    lines = (out / f"{PROJECT}.jsonl").read_bytes().splitlines()
    assert len(lines) == manifest.items == len(set(_ids(out / f"{PROJECT}.jsonl")))
    assert manifest.bytes == (out / f"{PROJECT}.jsonl").stat().st_size


async def test_one_slow_write_among_quick_ones_keeps_the_pages_on_the_loop(
    fake_sentry_factory: Factory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A write is sometimes slow for the machine's sake (the process descheduled, the page
    cache flushing): one such write, with quick ones after it, is not a disk that
    throttles its writers, and the pages after it are still written on the loop, where
    they cost less CPU than a hand-over to the files' thread each."""
    server = await fake_sentry_factory(scale=DATA)
    append = _writer.JsonlFile.append
    where: list[bool] = []

    def one_slow_append(self: _writer.JsonlFile, data: bytes) -> int:
        where.append(threading.current_thread() is threading.main_thread())
        if len(where) == 2:
            time.sleep(_datafiles.QUICK_WRITE * 1.5)
        return append(self, data)

    # Long enough that no other write takes it, however busy the machine.
    monkeypatch.setattr(_datafiles, "QUICK_WRITE", 0.2)
    monkeypatch.setattr(_writer.JsonlFile, "append", one_slow_append)
    out = tmp_path / "out"
    async with SentryClient(server.token, base_url=server.url) as client:
        manifest = await export(client, _spec(), out, concurrency=1)
    assert len(where) == manifest.pages > 4
    assert all(where), "every page written on the loop"
    ids = _ids(out / f"{PROJECT}.jsonl")
    assert len(ids) == len(set(ids)) == manifest.items


@pytest.mark.parametrize(("gzip", "on_the_loop"), [(False, True), (True, False)])
async def test_quick_plain_writes_stay_on_the_loop_and_compressed_ones_go_to_the_thread(
    fake_sentry_factory: Factory,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    gzip: bool,
    on_the_loop: bool,
) -> None:
    """A plain page is one ``write`` of joined bytes: handing it to the files' thread costs
    more than writing it. Compressing a page is real work, which stays off the loop."""
    server = await fake_sentry_factory(scale=DATA)
    monkeypatch.setattr(_datafiles, "QUICK_WRITE", 60.0)  # however busy the machine
    append = _writer.JsonlFile.append
    where: list[bool] = []

    def recording(self: _writer.JsonlFile, data: bytes) -> int:
        where.append(threading.current_thread() is threading.main_thread())
        return append(self, data)

    monkeypatch.setattr(_writer.JsonlFile, "append", recording)
    async with SentryClient(server.token, base_url=server.url) as client:
        manifest = await export(client, _spec(gzip=gzip), tmp_path / "out", concurrency=1)
    assert len(where) == manifest.pages > 2
    assert set(where) == {on_the_loop}


async def test_progress_counts_every_byte_once_the_writes_end(
    fake_sentry_factory: Factory, tmp_path: Path
) -> None:
    server = await fake_sentry_factory(scale=DATA)
    progress = Progress("events")
    async with SentryClient(server.token, base_url=server.url) as client:
        manifest = await export(client, _spec(), tmp_path / "out", progress=progress)
    assert manifest.pages > 2
    assert progress.bytes == manifest.bytes
    assert progress.items == manifest.items


def _disk_full_at_write(failing: int, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The data files' ``failing``-th write fails with a full disk; returns the sizes of the
    writes tried, that one included."""
    append = _writer.JsonlFile.append
    calls: list[int] = []
    lock = threading.Lock()

    def full_disk(self: _writer.JsonlFile, data: bytes) -> int:
        with lock:
            calls.append(len(data))
            if len(calls) == failing:
                raise OSError(errno.ENOSPC, "No space left on device")
        return append(self, data)

    monkeypatch.setattr(_writer.JsonlFile, "append", full_disk)
    return calls


@pytest.mark.parametrize("failing", [1, 3])
async def test_a_failed_write_stops_the_pages_after_it_and_a_resume_completes(
    fake_sentry_factory: Factory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, failing: int
) -> None:
    server = await fake_sentry_factory(scale=DATA)
    append = _writer.JsonlFile.append
    calls = _disk_full_at_write(failing, monkeypatch)
    out = tmp_path / "out"
    path = out / f"{PROJECT}.jsonl"
    async with SentryClient(server.token, base_url=server.url) as client:
        with pytest.raises(OSError) as caught:
            await export(client, _spec(), out, concurrency=1, commit_interval=0)
        assert caught.value.errno == errno.ENOSPC
        assert len(calls) == failing, "no page handed over after the failed one was written"
        assert path.stat().st_size == sum(calls[: failing - 1])
        checkpoint = msgspec.json.decode((out / CHECKPOINT_NAME).read_bytes())
        assert not checkpoint["complete"]
        assert checkpoint["files"][path.name]["offset"] <= path.stat().st_size
        monkeypatch.setattr(_writer.JsonlFile, "append", append)
        resumed = await export(client, _spec(), out, resume=True, concurrency=1)
    assert isinstance(resumed, Manifest)
    everything = tmp_path / "again"
    async with SentryClient(server.token, base_url=server.url) as client:
        fresh = await export(client, _spec(), everything, concurrency=1)
    assert path.read_bytes() == (everything / path.name).read_bytes()
    assert resumed.items == fresh.items


async def test_a_page_the_files_take_at_once_is_stored_without_an_await(
    fake_sentry_factory: Factory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Only the first page (which opens the file) waits, in a shield with its record; the
    others are stored and recorded with no await between the two, so no shield either."""
    server = await fake_sentry_factory(scale=DATA)
    monkeypatch.setattr(_datafiles, "QUICK_WRITE", 60.0)  # however busy the machine
    store = _datafiles.OpenFiles.store
    awaited: list[str] = []

    async def counting(self: _datafiles.OpenFiles, state: Any, *args: Any, **kwargs: Any) -> int:
        awaited.append(state.file)
        return await store(self, state, *args, **kwargs)

    monkeypatch.setattr(_datafiles.OpenFiles, "store", counting)
    out = tmp_path / "out"
    async with SentryClient(server.token, base_url=server.url) as client:
        manifest = await export(client, _spec(), out, concurrency=1)
    assert manifest.pages > 2
    assert awaited == [f"{PROJECT}.jsonl"]
    ids = _ids(out / f"{PROJECT}.jsonl")
    assert len(ids) == len(set(ids)) == manifest.items


async def test_a_lone_stream_is_written_from_its_own_walk_without_a_fan_out(
    fake_sentry_factory: Factory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Streams that run one at a time are walked in the exporter's task: a fan-out's worker
    and hand-over would only add CPU to every page of an export bound by the client's CPU."""
    server = await fake_sentry_factory(scale=DATA)

    def no_fan_out(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("a lone stream went through fan_out")

    monkeypatch.setattr(_runner, "fan_out", no_fan_out)
    async with SentryClient(server.token, base_url=server.url) as client:
        manifest = await export(client, _spec(), tmp_path / "out", concurrency=1)
        daily_spec = ExportSpec(
            kind="events", org=ORG, projects=(PROJECT,), start=START, end=END, page_size=2
        )
        daily = await export(client, daily_spec, tmp_path / "daily", concurrency=1)
    assert manifest.pages > 2
    assert len(daily.streams) > 1, "one stream a day, walked one after the other"
    assert daily.items == manifest.items
    ids = _ids(tmp_path / "out" / f"{PROJECT}.jsonl")
    assert len(ids) == len(set(ids)) == manifest.items


@pytest.mark.parametrize("concurrency", [1, 2])
async def test_a_failed_export_closes_every_generator_it_walked_before_it_returns(
    fake_sentry_factory: Factory,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    abandoned_generators: list[str],
    concurrency: int,
) -> None:
    """Nothing is left for the event loop to close later: a read-ahead still fetching
    after ``export`` has raised (seen as a race under load)."""
    server = await fake_sentry_factory(scale=DATA)
    _disk_full_at_write(2, monkeypatch)
    # One stream a day: walked one after the other, or merged by a fan-out.
    spec = ExportSpec(
        kind="events", org=ORG, projects=(PROJECT,), start=START, end=END, page_size=2
    )
    async with SentryClient(server.token, base_url=server.url) as client:
        with pytest.raises(OSError):
            await export(client, spec, tmp_path / "out", concurrency=concurrency)
    assert abandoned_generators == []


async def test_a_lone_stream_whose_write_fails_has_stopped_reading_ahead_when_the_error_arrives(
    fake_sentry_factory: Factory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    server = await fake_sentry_factory(scale=DATA)
    def reading_ahead() -> list[asyncio.Task[Any]]:
        return [
            task
            for task in asyncio.all_tasks()
            if not task.done()
            and "_read_ahead" in getattr(task.get_coro(), "__qualname__", "")
        ]

    _disk_full_at_write(2, monkeypatch)
    async with SentryClient(server.token, base_url=server.url) as client:
        with pytest.raises(OSError):
            await export(client, _spec(), tmp_path / "out", concurrency=1)
        assert reading_ahead() == []


async def test_a_failed_write_names_the_data_file(
    fake_sentry_factory: Factory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The system reports a full disk (or a file size limit) on ``write`` without a file
    name; the error names the file it was writing, as "cannot write PATH: ..." needs."""
    server = await fake_sentry_factory(scale=DATA)
    append = _writer.JsonlFile.append

    def too_large(self: _writer.JsonlFile, data: bytes) -> int:
        if self.offset:
            raise OSError(errno.EFBIG, "File too large")
        return append(self, data)

    monkeypatch.setattr(_writer.JsonlFile, "append", too_large)
    out = tmp_path / "out"
    async with SentryClient(server.token, base_url=server.url) as client:
        with pytest.raises(OSError) as caught:
            await export(client, _spec(), out, concurrency=1)
    assert caught.value.errno == errno.EFBIG
    assert caught.value.filename == str(out / f"{PROJECT}.jsonl")
    message = _cli_run.classify(caught.value).message
    assert message == f"cannot write {out / PROJECT}.jsonl: File too large"


async def test_a_failed_fsync_names_the_file(
    fake_sentry_factory: Factory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    server = await fake_sentry_factory(scale=DATA)

    def failing(fd: int) -> None:
        raise OSError(errno.EIO, "Input/output error")

    out = tmp_path / "out"
    async with SentryClient(server.token, base_url=server.url) as client:
        monkeypatch.setattr(os, "fsync", failing)
        with pytest.raises(OSError) as caught:
            await export(client, _spec(), out, concurrency=1)
        monkeypatch.undo()
    assert caught.value.errno == errno.EIO
    assert caught.value.filename is not None
    assert Path(caught.value.filename).parent == out
    assert _cli_run.classify(caught.value).message.startswith(f"cannot write {out}/")
