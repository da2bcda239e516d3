"""The data files a run has open, by name, and the blocking calls on them.

Opening, writing, fsyncing and closing run in a worker thread, so the event loop keeps
fetching while the disk works: appending even a small page on the loop itself (no thread
hop) measured slower end to end, as the next request then waits for the write. The
files have a thread of their own, which costs about a fifth less CPU per call than
anyio's shared workers, and does one file operation at a time, in order. A checkpoint is saved
only after every open file is fsynced (see :func:`~._files.sync_then_save`), so it
never covers bytes not on disk.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

import anyio

from ._checkpoint import FileState
from ._files import sync_and_close, sync_then_save
from ._formats import DataFile, open_data_file, store_page
from ._writer import Line

__all__ = ["OpenFiles"]

T = TypeVar("T")


class OpenFiles:
    """The open data files of one run in ``output``, of one format."""

    def __init__(self, output: Path, *, format: str, compress: bool) -> None:
        self.output = output
        self.format = format
        self.compress = compress
        self._files: dict[str, DataFile] = {}
        self._thread: ThreadPoolExecutor | None = None

    async def _call(self, work: Callable[[], T]) -> T:
        """``work()`` in the files' thread, waited for to its end even when the run is
        cancelled meanwhile (as anyio's threads are): no file or file state changes
        behind the run's back."""
        if self._thread is None:
            self._thread = ThreadPoolExecutor(1, thread_name_prefix="sentry-async-export")
        done = asyncio.get_running_loop().run_in_executor(self._thread, work)
        with anyio.CancelScope(shield=True):
            await done
        return done.result()

    async def store(
        self,
        name: str,
        file_state: FileState,
        lines: Sequence[Line],
        *,
        fields: Sequence[str],
        meta: Any,
        last: bool,
    ) -> int:
        """Append a page to the file ``name`` (opened at its committed length if need be)
        and record it in ``file_state``; returns the bytes now on disk."""
        handle = self._files.get(name)
        if handle is None:
            handle = await self._call(
                partial(
                    open_data_file,
                    self.output / name,
                    file_state,
                    format=self.format,
                    compress=self.compress,
                )
            )
            self._files[name] = handle
        return await self._call(
            partial(store_page, handle, file_state, lines, fields=fields, meta=meta, last=last)
        )

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

    async def close_all(self) -> None:
        """Close every file (without an fsync) and end the files' thread."""
        files, self._files = list(self._files.values()), {}
        try:
            await self._call(partial(_close_each, files))
        finally:
            thread, self._thread = self._thread, None
            if thread is not None:
                thread.shutdown(wait=False)


def _close(handle: DataFile) -> None:
    handle.close()


def _close_each(files: list[DataFile]) -> None:
    for handle in files:
        handle.close()
