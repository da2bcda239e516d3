"""JSON Lines files that can be cut back to a known byte offset, plain or gzip.

Every page is appended as one write; with gzip each page is its own gzip member (a file of
concatenated members is a valid gzip file that ``gzip.open``/``zcat`` read as one stream), so
the offset after any page is a member boundary and truncating to it leaves a valid file.
Blocking calls (compression, ``write``, ``fsync``) are meant to run in a worker thread.
"""

from __future__ import annotations

import gzip
import os
from pathlib import Path
from typing import BinaryIO

__all__ = ["JsonlFile", "atomic_write", "fsync_dir", "jsonl_line"]

_GZIP_LEVEL = 6


def jsonl_line(item: bytes) -> bytes:
    """One item's JSON on a single line.

    JSON strings cannot hold a raw CR or LF (they must be escaped), so any raw one is
    insignificant whitespace between tokens and can be dropped without changing the value.
    """
    if b"\n" in item or b"\r" in item:
        item = item.replace(b"\r", b"").replace(b"\n", b"")
    return item


class JsonlFile:
    """An append-only data file whose committed length is tracked by the caller.

    ``open`` truncates the file to ``offset`` (the length recorded in the checkpoint): any
    bytes beyond it were written after the last checkpoint, by a run that then died.
    """

    def __init__(self, path: Path, *, compress: bool) -> None:
        self.path = path
        self.compress = compress
        self.offset = 0
        self._dirty = False
        self._handle: BinaryIO | None = None

    def open(self, offset: int) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # Opened without a context manager: the handle lives as long as the export.
        handle = open(self.path, "r+b") if self.path.exists() else open(self.path, "w+b")  # noqa: SIM115
        try:
            size = handle.seek(0, os.SEEK_END)
            if size < offset:
                raise ValueError(
                    f"{self.path} holds {size} bytes but the checkpoint recorded {offset}"
                )
            if size > offset:
                handle.truncate(offset)
                handle.flush()
                os.fsync(handle.fileno())
            handle.seek(offset)
        except BaseException:
            handle.close()
            raise
        self._handle = handle
        self.offset = offset

    def encode_page(self, items: list[bytes]) -> bytes:
        """A page's bytes as they go to disk: lines, gzip-compressed as one member if asked."""
        if not items:
            return b""
        data = b"\n".join(jsonl_line(item) for item in items) + b"\n"
        if self.compress:
            data = gzip.compress(data, compresslevel=_GZIP_LEVEL, mtime=0)
        return data

    def append(self, data: bytes) -> int:
        """Write ``data`` whole; returns its length. Durable only after :meth:`sync`."""
        if self._handle is None:
            raise ValueError(f"{self.path} is not open")
        if data:
            self._handle.write(data)
            self.offset += len(data)
            self._dirty = True
        return len(data)

    def sync(self) -> None:
        """Flush Python's buffer and the OS cache to the disk (no-op when nothing changed)."""
        if self._handle is not None and self._dirty:
            self._handle.flush()
            os.fsync(self._handle.fileno())
            self._dirty = False

    def close(self) -> None:
        if self._handle is not None:
            try:
                self._handle.flush()
            finally:
                self._handle.close()
                self._handle = None


def fsync_dir(path: Path) -> None:
    """Make a rename or a new file in ``path`` durable (POSIX; a no-op where unsupported)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_write(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data`` so that a crash leaves either the old or the new file."""
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)
    fsync_dir(path.parent)
