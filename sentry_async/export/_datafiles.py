"""The data files a run has open, by name, and the blocking calls on them.

Opening, fsyncing and closing run in a worker thread, so the event loop keeps fetching
while the disk works. The files have a thread of their own, which does one file operation
at a time, in order. A page is handed to it without waiting for the write (up to
``MAX_QUEUED`` pages ahead): waking the loop when each write ends cost more CPU than the
write. Whatever waits for the thread (a sync, a close, a checkpoint) therefore comes after
every page handed over before it. Once a file operation fails, nothing handed over after
it runs but closing, and the failure is raised at the next call. A checkpoint is saved
only after every open file is fsynced (see :func:`~._files.sync_then_save`), so it never
covers bytes not on disk.

A plain JSON Lines page, whose writing is one ``write`` of bytes already joined, is written
on the loop itself while such writes stay quick and nothing is queued for the thread:
handing it over cost more CPU than the write (waking the thread, passing the GIL back and
forth), and a stream that reads ahead has its next request out while the page is written,
so the loop has nothing better to do. ``SLOW_WRITES`` writes in a row slower than
``QUICK_WRITE`` (a disk that throttles its writers) send every later page to the thread,
where a slow disk does not hold up the loop.

Streams run window by window across the targets, so a run touches every project's file
again and again. At most ``max_open`` data files stay open (see :func:`open_file_budget`):
opening one more first fsyncs and closes the one written to longest ago, which is opened
again at its recorded length when its next page comes. A Parquet part cannot be reopened,
so it is never closed this way (a part is open only while its one stream runs).
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

import anyio

from ._checkpoint import FileState, StreamState
from ._files import sync_and_close, sync_then_save
from ._formats import DataFile, open_data_file, store_page
from ._writer import JsonlFile, Line, named

__all__ = ["MAX_OPEN", "MAX_QUEUED", "QUICK_WRITE", "SLOW_WRITES", "OpenFiles", "open_file_budget"]

T = TypeVar("T")

MAX_QUEUED = 4
"""Pages handed to the files' thread and not yet written, at most: memory stays bounded
when the disk is slower than the network."""

QUICK_WRITE = 0.002
"""Seconds a page's write on the loop may take before pages go to the files' thread: a
page of full events is a few hundred KB, which the page cache takes in well under this."""

SLOW_WRITES = 2
"""Writes slower than ``QUICK_WRITE`` in a row before pages go to the files' thread. One
alone is as often the machine's (the process descheduled, the page cache flushing) as
the disk's, and the pages after it would each pay the hand-over for nothing; a disk that
throttles its writers is slow every time."""


MAX_OPEN = 64
"""Data files a run keeps open at most, where the process may open enough files."""


def open_file_budget() -> int:
    """How many data files a run keeps open: :data:`MAX_OPEN`, or a quarter of the
    process's limit on open files when that is lower (connections, the lock, the
    checkpoint and the interpreter's own files need the rest)."""
    try:
        import resource

        soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    except (ImportError, OSError, ValueError):  # pragma: no cover - not POSIX
        return MAX_OPEN
    if soft == resource.RLIM_INFINITY or soft <= 0:
        return MAX_OPEN
    return max(2, min(MAX_OPEN, soft // 4))


class OpenFiles:
    """The open data files of one run in ``output``, of one format (at most ``max_open``
    at once; by default :func:`open_file_budget`)."""

    def __init__(
        self,
        output: Path,
        *,
        format: str,
        compress: bool,
        max_open: int | None = None,
        escape_formulas: bool = False,
    ) -> None:
        self.output = output
        self.max_open = max_open if max_open is not None else open_file_budget()
        self.format = format
        self.compress = compress
        self.escape_formulas = escape_formulas
        self._files: dict[str, DataFile] = {}
        self._thread: ThreadPoolExecutor | None = None
        self._queued: deque[Future[None]] = deque()
        self._failure: BaseException | None = None
        """The first file operation that failed: nothing handed over after it runs."""
        self._written = 0
        """Bytes the stored pages added to the files (counted where they are written)."""
        self._reported = 0
        self.write_here = format == "jsonl" and not compress
        """Whether a page may be written on the loop (see the module's docstring)."""
        self._slow_writes = 0
        """Writes on the loop slower than ``QUICK_WRITE``, in a row so far."""

    def _executor(self) -> ThreadPoolExecutor:
        if self._thread is None:
            self._thread = ThreadPoolExecutor(1, thread_name_prefix="sentry-async-export")
        return self._thread

    def _in_turn(self, work: Callable[[], T]) -> T:
        """Runs in the files' thread: ``work()``, unless an earlier operation failed."""
        if self._failure is not None:
            raise self._failure
        try:
            return work()
        except BaseException as exc:
            self._failure = exc
            raise

    async def _run(self, work: Callable[[], T]) -> T:
        """``work()`` in the files' thread, after everything handed over before it, waited
        for to its end even when the run is cancelled meanwhile (as anyio's threads are):
        no file or file state changes behind the run's back."""
        done = asyncio.get_running_loop().run_in_executor(self._executor(), work)
        with anyio.CancelScope(shield=True):
            await done
        return done.result()

    async def _call(self, work: Callable[[], T]) -> T:
        """:meth:`_run`, unless an earlier file operation failed."""
        try:
            return await self._run(partial(self._in_turn, work))
        finally:
            self._queued.clear()  # all of them ran before ``work``

    def _store_now(
        self,
        state: StreamState,
        handle: DataFile,
        file_state: FileState,
        lines: Sequence[Line],
        fields: Sequence[str],
        meta: Any,
        last: bool,
    ) -> None:
        """Runs in the files' thread: one page appended and recorded (with where the
        stream ended, when it is its last)."""
        if state.first_offset is None:
            state.first_offset = file_state.offset
        try:
            self._written += store_page(
                handle, file_state, lines, fields=fields, meta=meta, last=last
            )
        except OSError as exc:
            named(exc, self.output / state.file)
            raise
        if last:
            state.ended = file_state.offset

    def store_now(
        self,
        state: StreamState,
        file_state: FileState,
        lines: Sequence[Line],
        *,
        fields: Sequence[str],
        meta: Any,
        last: bool,
    ) -> int | None:
        """:meth:`store` when it needs no wait (the file is open and the thread has room):
        the bytes written since the last call, or ``None``, having done nothing, when the
        caller must await :meth:`store` instead. Never suspends, so a caller that records
        the page right after needs no shield around the pair."""
        if self._failure is not None:
            raise self._failure
        handle = self._files.get(state.file)
        if handle is None:
            return None
        if next(reversed(self._files)) != state.file:
            # The most recently written file goes last: the first one is closed first.
            self._files[state.file] = self._files.pop(state.file)
        queued = self._queued
        while queued and queued[0].done():
            queued.popleft()
        if len(queued) >= MAX_QUEUED:
            return None
        work = partial(self._store_now, state, handle, file_state, lines, fields, meta, last)
        if self.write_here and not queued:
            started = time.perf_counter()
            self._in_turn(work)
            if time.perf_counter() - started <= QUICK_WRITE:
                self._slow_writes = 0
            else:
                self._slow_writes += 1
                self.write_here = self._slow_writes < SLOW_WRITES
            return self._take_written()
        queued.append(self._executor().submit(self._in_turn, work))
        return self._take_written()

    async def store(
        self,
        state: StreamState,
        file_state: FileState,
        lines: Sequence[Line],
        *,
        fields: Sequence[str],
        meta: Any,
        last: bool,
    ) -> int:
        """Hand a page of ``state`` over to be appended to its file (opened at its
        committed length if need be) and recorded in ``file_state`` and in the stream's
        ``first_offset``; returns the bytes the pages handed over (this one included, when
        written here) have added since the last call (see :meth:`drain`). Raises the
        failure of an earlier page's write, or of this one's when written here.

        The page's items must stay unchanged until it is written.
        """
        while True:
            written = self.store_now(state, file_state, lines, fields=fields, meta=meta, last=last)
            if written is not None:
                return written
            name = state.file
            if name not in self._files:
                await self._make_room()
                self._files[name] = await self._call(
                    partial(
                        open_data_file,
                        self.output / name,
                        file_state,
                        format=self.format,
                        compress=self.compress,
                        escape_formulas=self.escape_formulas,
                    )
                )
            else:
                with anyio.CancelScope(shield=True):
                    await asyncio.wrap_future(self._queued.popleft())

    async def _make_room(self) -> None:
        """Close files written to longest ago until one more may be opened (fsynced
        first: the next checkpoint covers their bytes without them being open)."""
        while len(self._files) >= self.max_open:
            name = next((n for n, h in self._files.items() if isinstance(h, JsonlFile)), None)
            if name is None:
                return
            await self.close(name)

    def _take_written(self) -> int:
        written = self._written - self._reported
        self._reported += written
        return written

    async def drain(self) -> int:
        """Wait until every page handed over is written and recorded (raising the first
        failure); returns the bytes they added since :meth:`store` last said."""
        await self._call(_nothing)
        return self._take_written()

    def forget(self, name: str) -> DataFile | None:
        """Stop tracking ``name`` (a finished Parquet part, already closed): its handle."""
        return self._files.pop(name, None)

    async def sync(self, name: str) -> None:
        """Make what was written to ``name`` durable, e.g. before reading it back."""
        handle = self._files.get(name)
        if handle is not None:
            await self._call(handle.sync)

    async def close(self, name: str, *, sync: bool = True) -> None:
        """Close ``name`` (fsynced first unless ``sync=False``: its rows are thrown away)."""
        handle = self._files.pop(name, None)
        if handle is not None:
            await self._call(partial(sync_and_close if sync else _close, handle))

    async def commit(self, checkpoint: bytes) -> None:
        """fsync every open file, then atomically replace the checkpoint; in that order."""
        files = list(self._files.values())
        await self._call(partial(sync_then_save, files, self.output, checkpoint))

    async def close_all(self, *, failed: bool = False) -> None:
        """Close every file (without an fsync) and end the files' thread; after every
        page handed over, even when one of them failed.

        A file that fails to close is closed all the same, as is every other one; the
        first such error is raised, unless the run already failed (``failed``, or a file
        operation here did): closing after a full disk fails again, and must not take the
        place of the error that stopped the run.
        """
        files, self._files = list(self._files.values()), {}
        try:
            if files or self._thread is not None:
                try:
                    await self._run(partial(_close_each, files))
                except Exception:
                    if not failed and self._failure is None:
                        raise
        finally:
            thread, self._thread = self._thread, None
            if thread is not None:
                thread.shutdown(wait=False)


def _nothing() -> None:
    pass


def _close(handle: DataFile) -> None:
    handle.close()


def _close_each(files: list[DataFile]) -> None:
    """Close every file, even after one failed to; then raise the first failure."""
    failure: Exception | None = None
    for handle in files:
        try:
            handle.close()
        except Exception as exc:
            if failure is None:
                failure = exc
    if failure is not None:
        raise failure
