"""JSON Lines files that can be cut back to a known byte offset, plain or gzip.

Every page is appended as one write; with gzip each page is its own gzip member (a file of
concatenated members is a valid gzip file that ``gzip.open``/``zcat`` read as one stream), so
the offset after any page is a member boundary and truncating to it leaves a valid file.
Blocking calls (compression, ``write``, ``fsync``) are meant to run in a worker thread.
"""

from __future__ import annotations

import contextlib
import errno
import gzip
import os
import stat
from collections.abc import Sequence
from pathlib import Path
from typing import BinaryIO

import msgspec

from ._errors import OutputUnusableError

__all__ = [
    "TAIL_BYTES",
    "JsonlFile",
    "Line",
    "atomic_write",
    "fsync_dir",
    "jsonl_line",
    "named",
    "open_no_follow",
    "read_no_follow",
    "read_tail",
]

_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
_NONBLOCK = getattr(os, "O_NONBLOCK", 0)
"""Opening a FIFO waits for its other end, for ever and past any signal: with this flag
the open returns at once, so the check that the file is a regular one is reached."""
_DIRECTORY = getattr(os, "O_DIRECTORY", 0)
_LINK_ERRORS = frozenset({errno.ELOOP, errno.EMLINK})
"""What ``open`` with ``O_NOFOLLOW`` reports for a symlink (Linux: ELOOP, BSDs: EMLINK)."""

_GZIP_LEVEL = 6

TAIL_BYTES = 4096
"""Bytes before a file's committed length whose checksum the checkpoint records: a resume
reads only those to tell the file is the one the checkpoint describes (a length moved to
another line, or another file in its place), never the gigabytes before them."""

Line = bytes | msgspec.Raw
"""One item's JSON as sent: ``msgspec.Raw`` items are written without a copy of their own."""


def named(exc: OSError, path: Path) -> None:
    """Make ``exc`` name ``path``: ``write`` and ``fsync`` report a full disk without the
    file's name, which the message ("cannot write PATH: ...") must give."""
    if exc.filename is None:
        exc.filename = os.fspath(path)


def jsonl_line(item: bytes) -> bytes:
    """One item's JSON on a single line.

    JSON strings cannot hold a raw CR or LF (they must be escaped), so any raw one is
    insignificant whitespace between tokens and can be dropped without changing the value.
    """
    if b"\n" in item or b"\r" in item:
        item = item.replace(b"\r", b"").replace(b"\n", b"")
    return item


def _one_line_each(data: bytes, items: Sequence[Line]) -> bool:
    """Whether ``items`` joined into ``data`` hold no LF of their own (``memchr`` per item:
    ``bytes.count`` is several times slower)."""
    start = 0
    for item in items:
        end = start + len(item)
        if data.find(b"\n", start, end) >= 0:
            return False
        start = end + 1
    return True


def read_tail(fd: int, offset: int) -> bytes:
    """The last :data:`TAIL_BYTES` (or fewer) bytes of an open file before ``offset``."""
    size = min(offset, TAIL_BYTES)
    return os.pread(fd, size, offset - size) if size else b""


class JsonlFile:
    """An append-only data file whose committed length is tracked by the caller.

    ``open`` truncates the file to ``offset`` (the length recorded in the checkpoint): any
    bytes beyond it were written after the last checkpoint, by a run that then died.
    ``tail`` is kept as the file's last bytes (see :data:`TAIL_BYTES`).
    """

    def __init__(self, path: Path, *, compress: bool) -> None:
        self.path = path
        self.compress = compress
        self.offset = 0
        self.tail = b""
        self._dirty = False
        self._handle: BinaryIO | None = None

    def open(self, offset: int) -> None:
        fd = open_no_follow(self.path, os.O_RDWR, create=True)
        # Opened without a context manager: the handle lives as long as the export.
        handle = os.fdopen(fd, "r+b")
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
            tail = read_tail(handle.fileno(), offset)
        except BaseException:
            handle.close()
            raise
        self._handle = handle
        self.offset = offset
        self.tail = tail

    def encode_page(self, items: Sequence[Line]) -> bytes:
        """A page's bytes as they go to disk: lines, gzip-compressed as one member if asked.

        The items are joined as they are, in one copy; only a page where that leaves a CR,
        or more line breaks than items, is joined again from items put on one line each.
        """
        if not items:
            return b""
        data = b"\n".join([*items, b""])
        if b"\r" in data or not _one_line_each(data, items):
            data = b"\n".join([*(jsonl_line(bytes(item)) for item in items), b""])
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
            kept = self.tail[len(data) - TAIL_BYTES :] if len(data) < TAIL_BYTES else b""
            self.tail = kept + data[-TAIL_BYTES:]
        return len(data)

    def sync(self) -> None:
        """Flush Python's buffer and the OS cache to the disk (no-op when nothing changed)."""
        if self._handle is not None and self._dirty:
            try:
                self._handle.flush()
                os.fsync(self._handle.fileno())
            except OSError as exc:
                named(exc, self.path)
                raise
            self._dirty = False

    def close(self) -> None:
        """Flush and close; an error names the file, and the file is closed all the same.

        A flush that failed (a full disk) leaves its bytes in the buffer, which closing
        flushes again: that second, unnamed, failure is not raised in place of the first.
        """
        handle, self._handle = self._handle, None
        if handle is None:
            return
        try:
            handle.flush()
            handle.close()
        except OSError as exc:
            named(exc, self.path)
            with contextlib.suppress(OSError):
                handle.close()
            raise


def fsync_dir(path: Path) -> None:
    """Make a rename or a new file in ``path`` durable (POSIX; a no-op where unsupported)."""
    try:
        fd = os.open(path, os.O_RDONLY | _DIRECTORY | _NONBLOCK | _CLOEXEC)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def open_no_follow(
    path: Path, flags: int, *, create: bool, exclusive: bool = False, single_link: bool = True
) -> int:
    """Open ``path`` without following a symlink; a new file is created exclusively.

    ``exclusive`` insists on a new file (``FileExistsError`` otherwise).
    A symlink, a non-regular file or (with ``single_link``) a file with more than one hard
    link raises :class:`OutputUnusableError`: writing through any of them would change a
    file outside the output directory, and opening a FIFO would wait for a writer for
    ever (it is opened without waiting, then refused). ``FileNotFoundError`` passes when
    not ``create``.
    """
    flags |= _NOFOLLOW | _CLOEXEC | _NONBLOCK
    try:
        fd = _open_or_create(path, flags, create=create, exclusive=exclusive)
    except OSError as exc:
        if exc.errno in _LINK_ERRORS or os.path.islink(path):
            raise OutputUnusableError(
                f"{path} is a symbolic link; the exporter does not follow links out of "
                "its directory: remove it"
            ) from None
        if not isinstance(exc, FileNotFoundError | FileExistsError) and _irregular(path):
            # A directory (EISDIR), a socket or a FIFO without a reader (ENXIO).
            raise OutputUnusableError(f"{path} is not a regular file: remove it") from None
        raise
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise OutputUnusableError(f"{path} is not a regular file: remove it")
        if single_link and info.st_nlink > 1:
            raise OutputUnusableError(
                f"{path} has {info.st_nlink} hard links; writing to it would change the "
                "other names too: remove it"
            )
        if _NONBLOCK:
            os.set_blocking(fd, True)
    except BaseException:
        os.close(fd)
        raise
    return fd


def _irregular(path: Path) -> bool:
    """Whether something other than a regular file is at ``path``."""
    try:
        return not stat.S_ISREG(os.lstat(path).st_mode)
    except OSError:
        return False


def read_no_follow(path: Path) -> bytes | None:
    """A state file's bytes, read without following a link; ``None`` when it is absent."""
    try:
        fd = open_no_follow(path, os.O_RDONLY, create=False, single_link=False)
    except FileNotFoundError:
        return None
    with os.fdopen(fd, "rb") as handle:
        return handle.read()


def _open_or_create(path: Path, flags: int, *, create: bool, exclusive: bool) -> int:
    if not exclusive:
        try:
            return os.open(path, flags)
        except FileNotFoundError:
            if not create:
                raise
    return os.open(path, flags | os.O_CREAT | os.O_EXCL, 0o644)


def atomic_write(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data`` so that a crash leaves either the old or the new file.

    A stale temporary file (or a link planted in its place) is removed, never written
    through, and the new one is created exclusively; the rename replaces a link at
    ``path`` itself, not its target.
    """
    tmp = path.with_name(path.name + ".tmp")
    with contextlib.suppress(FileNotFoundError):
        os.unlink(tmp)
    fd = open_no_follow(tmp, os.O_WRONLY, create=True, exclusive=True)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
    except OSError as exc:
        named(exc, tmp)
        raise
    os.replace(tmp, path)
    fsync_dir(path.parent)
