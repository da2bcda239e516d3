"""The exporter on hostile file systems: FIFOs, sockets and directories under the names of
its own files, and a disk that fills up while it writes."""

from __future__ import annotations

import errno
import io
import os
import re
import socket
import threading
from collections.abc import Awaitable, Callable
from functools import partial
from pathlib import Path
from typing import Any

import anyio
import msgspec
import pytest
from test_export_hostile import DATA, END, FAST_RETRY, ORG, START

from sentry_async import SentryClient
from sentry_async.cli import main
from sentry_async.export import (
    CHECKPOINT_NAME,
    MANIFEST_NAME,
    ExportSpec,
    OutputUnusableError,
    export,
)
from sentry_async.export._checkpoint import FileState, StreamState
from sentry_async.export._datafiles import OpenFiles
from sentry_async.export._files import ids_in_file
from sentry_async.export._formats import dataset_schema
from sentry_async.export._incremental import load_state
from sentry_async.export._lock import LOCK_NAME, DirLock
from sentry_async.export._resume import cut_back
from sentry_async.export._writer import JsonlFile, fsync_dir, open_no_follow, read_no_follow
from sentry_async.testing import FakeSentry

BOUND = 20.0
"""Seconds a call that must return at once gets before it counts as blocked for ever."""

Factory = Callable[..., Awaitable[FakeSentry]]


def _client(server: FakeSentry) -> SentryClient:
    return SentryClient(server.token, base_url=server.url, retry=FAST_RETRY)


def _spec(**kwargs: Any) -> ExportSpec:
    return ExportSpec(
        kind="events", org=ORG, start=START, end=END, window=None, page_size=2, **kwargs
    )


def _ids(path: Path) -> list[str]:
    return [msgspec.json.decode(line)["id"] for line in path.read_bytes().splitlines()]


def _cli_args(server: FakeSentry, out: Path, token_file: Path, *extra: str) -> list[str]:
    token_file.write_text(server.token)
    return ["export", "events", "--org", ORG, "--output", str(out), "--base-url", server.url,
            "--since", START.isoformat(), "--until", END.isoformat(), "--window", "none",
            "--token-file", str(token_file), "--quiet", *extra]  # fmt: skip


async def _unblocked(call: Callable[[], object], fifo: Path) -> BaseException | None:
    """``call()`` in a thread of its own; what it raised (``None``: it returned).

    Opening a FIFO waits for its other end, which no cancellation reaches. A call still
    running after :data:`BOUND` is let go (the test opens both ends of ``fifo`` itself,
    which never waits), so that no thread is left behind, and the test fails.
    """
    outcome: list[BaseException | None] = []

    def target() -> None:
        try:
            call()
        except BaseException as exc:
            outcome.append(exc)
        else:
            outcome.append(None)

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    await anyio.to_thread.run_sync(thread.join, BOUND)
    if thread.is_alive():
        os.close(os.open(fifo, os.O_RDWR | os.O_NONBLOCK))
        await anyio.to_thread.run_sync(thread.join, BOUND)
        pytest.fail(f"blocked opening the FIFO {fifo.name} (waiting for its other end)")
    return outcome[0]


@pytest.mark.parametrize("resume", [False, True], ids=["fresh", "resume"])
@pytest.mark.parametrize("name", [CHECKPOINT_NAME, LOCK_NAME, MANIFEST_NAME])
async def test_a_fifo_under_the_exporters_own_name_exits_5_at_once(
    fake_sentry_factory: Factory, tmp_path: Path, name: str, resume: bool
) -> None:
    server = await fake_sentry_factory(scale=DATA)
    out = tmp_path / "out"
    out.mkdir()
    os.mkfifo(out / name)
    argv = _cli_args(server, out, tmp_path / "token", *(["--resume"] if resume else []))
    stderr = io.StringIO()
    codes: list[int] = []
    error = await _unblocked(
        lambda: codes.append(main(argv, stdout=io.StringIO(), stderr=stderr)), out / name
    )
    err = stderr.getvalue()
    assert error is None and codes == [5], err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    assert f"{out / name} is not a regular file" in err, err
    assert sorted(p.name for p in out.iterdir()) == [name]
    assert not any("/events/" in r.path for r in server.requests)


def _socket_at(path: Path) -> socket.socket:
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(os.fspath(path))
    return listener


async def test_no_open_in_the_output_directory_waits_on_a_fifo_or_takes_an_odd_file(
    tmp_path: Path,
) -> None:
    fifo = tmp_path / "project-0-0.jsonl"
    os.mkfifo(fifo)
    calls: dict[str, Callable[[], object]] = {
        "read": partial(read_no_follow, fifo),
        "read only": partial(open_no_follow, fifo, os.O_RDONLY, create=False),
        "write only": partial(open_no_follow, fifo, os.O_WRONLY, create=False),
        "data file": partial(JsonlFile(fifo, compress=False).open, 0),
        "cut back": partial(cut_back, fifo, 0),
        "ids written": partial(ids_in_file, fifo, 0, 10, False),
        "incremental state": partial(load_state, fifo),
        "parquet part": partial(dataset_schema, tmp_path, [fifo.name]),
    }
    for what, call in calls.items():
        error = await _unblocked(call, fifo)
        assert isinstance(error, OutputUnusableError), (what, error)
        assert f"{fifo} is not a regular file" in str(error), what
    locked = tmp_path / "locked"
    locked.mkdir()
    os.mkfifo(locked / LOCK_NAME)
    error = await _unblocked(DirLock(locked).__enter__, locked / LOCK_NAME)
    assert isinstance(error, OutputUnusableError) and "not a regular file" in str(error)
    # Not a directory: nothing to make durable, and no wait either.
    assert await _unblocked(partial(fsync_dir, fifo), fifo) is None

    odd = {"directory": tmp_path / "a-directory.jsonl", "socket": tmp_path / "a-socket.jsonl"}
    odd["directory"].mkdir()
    with _socket_at(odd["socket"]):
        for what, path in odd.items():
            for flags in (os.O_RDONLY, os.O_RDWR, os.O_WRONLY):
                with pytest.raises(OutputUnusableError, match="not a regular file"):
                    open_no_follow(path, flags, create=True)
            with pytest.raises(OutputUnusableError, match="not a regular file"):
                JsonlFile(path, compress=False).open(0)
            assert path.exists(), what


class _Disk:
    """Room left on a disk the data files share: a write takes what fits, and once
    nothing does, fails with ``ENOSPC``, as a full disk's does."""

    def __init__(self, room: int) -> None:
        self.room = room
        self.raws: list[io.FileIO] = []


class _DiskFile(io.FileIO):
    disk: _Disk

    def write(self, data: Any) -> int:
        if self.disk.room <= 0:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        written = super().write(memoryview(data)[: self.disk.room])
        self.disk.room -= written
        return written


def _on_disk(monkeypatch: pytest.MonkeyPatch, disk: _Disk) -> None:
    """Every data file opened from now on writes to ``disk``, through a buffer that holds
    any page: what a short write leaves over stays in it, to be written again on close."""
    opened = JsonlFile.open

    def open_on_disk(self: JsonlFile, offset: int) -> None:
        opened(self, offset)
        handle = self._handle
        assert handle is not None
        raw = _DiskFile(os.dup(handle.fileno()), "r+")
        handle.close()
        raw.seek(offset)
        raw.disk = disk
        disk.raws.append(raw)
        self._handle = io.BufferedRandom(raw, buffer_size=1 << 20)

    monkeypatch.setattr(JsonlFile, "open", open_on_disk)


def test_a_close_that_fails_names_its_file_and_closes_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    disk = _Disk(room=0)
    _on_disk(monkeypatch, disk)
    path = tmp_path / "project-0-0.jsonl"
    data = JsonlFile(path, compress=False)
    data.open(0)
    data.append(b'{"id":"1"}\n')  # held in Python's buffer: the disk sees it on close
    with pytest.raises(OSError) as caught:
        data.close()
    assert caught.value.errno == errno.ENOSPC
    assert caught.value.filename == os.fspath(path)
    assert disk.raws[0].closed
    data.close()  # closed already: nothing more to do


async def test_closing_all_files_closes_every_one_when_one_fails(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    disk = _Disk(room=0)
    _on_disk(monkeypatch, disk)
    files = OpenFiles(tmp_path, format="jsonl", compress=False)
    names = ["a.jsonl", "b.jsonl", "c.jsonl"]
    for name in names:
        state = StreamState(
            key=name, file=name, target="1", window_start="2026-05-01T00:00:00Z",
            window_end="2026-05-02T00:00:00Z",
        )  # fmt: skip
        page = [f'{{"id":"{name}"}}'.encode()]
        await files.store(state, FileState(), page, fields=(), meta=None, last=False)
    assert len(disk.raws) == len(names)
    with pytest.raises(OSError) as caught:
        await files.close_all()
    assert caught.value.filename == os.fspath(tmp_path / names[0])
    assert [raw.closed for raw in disk.raws] == [True, True, True]


async def test_a_full_disk_is_reported_naming_the_file_and_a_resume_finishes(
    fake_sentry_factory: Factory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    server = await fake_sentry_factory(scale=DATA)
    slugs = server.data.project_slugs(ORG)
    out = tmp_path / "out"
    names = {os.fspath(out / f"{slug}.jsonl") for slug in slugs}
    disk = _Disk(room=3000)
    _on_disk(monkeypatch, disk)
    async with _client(server) as client:
        with anyio.fail_after(30), pytest.raises(OSError) as caught:
            await export(client, _spec(), out, commit_interval=0)
        assert caught.value.errno == errno.ENOSPC
        assert caught.value.filename in names, caught.value
        assert disk.raws and all(raw.closed for raw in disk.raws)

        # The same through the command line: one line naming the file, exit 5.
        disk.room = 3000
        cli_out = tmp_path / "cli"
        argv = _cli_args(server, cli_out, tmp_path / "token", "--concurrency", "1")
        stderr = io.StringIO()
        with anyio.fail_after(30):
            code = await anyio.to_thread.run_sync(
                partial(main, argv, stdout=io.StringIO(), stderr=stderr)
            )
        err = stderr.getvalue()
        assert code == 5, err
        assert err.count("\n") == 1 and "Traceback" not in err, err
        written = re.escape(os.fspath(cli_out))
        assert re.search(rf"cannot write {written}/[^ ]+\.jsonl: No space left on device", err), err

        # Room again: both resume to a complete export, each event once.
        disk.room = 1 << 40
        with anyio.fail_after(30):
            await export(client, _spec(), out, resume=True)
            code = await anyio.to_thread.run_sync(
                partial(main, [*argv, "--resume"], stdout=io.StringIO(), stderr=stderr)
            )
        assert code == 0, stderr.getvalue()
    for directory in (out, cli_out):
        for slug in slugs:
            expected = server.data.event_ids(
                ORG, slug, start=START.timestamp(), end=END.timestamp(), include_transactions=False
            )
            assert sorted(_ids(directory / f"{slug}.jsonl")) == sorted(expected), (directory, slug)
        assert not (directory / CHECKPOINT_NAME).exists()
