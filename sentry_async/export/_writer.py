"""JSON Lines files that can be cut back to a known byte offset, plain or gzip.

Every page is appended as one write; with gzip each page is its own gzip member (a file of
concatenated members is a valid gzip file that ``gzip.open``/``zcat`` read as one stream), so
the offset after any page is a member boundary and truncating to it leaves a valid file.
Blocking calls (compression, ``write``, ``fsync``) are meant to run in a worker thread.

Every file operation here on a path under a pinned directory (see :func:`pin_directory`)
is made relative to that directory's descriptor, and every file opened must belong to the
user who runs the export (POSIX): an output directory others may write to is theirs to
swap or to plant files in, not to have the exporter write, cut back or read for them.
"""

from __future__ import annotations

import contextlib
import errno
import gzip
import os
import stat
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import BinaryIO

import msgspec

from ._errors import CheckpointError, OutputUnusableError

__all__ = [
    "TAIL_BYTES",
    "JsonlFile",
    "Line",
    "atomic_write",
    "check_pinned",
    "check_subdirectory",
    "fsync_dir",
    "jsonl_line",
    "list_names",
    "lstat_no_follow",
    "make_directory",
    "named",
    "open_no_follow",
    "pin_directory",
    "read_no_follow",
    "read_tail",
    "remove_file",
    "replace_file",
    "unpin_directory",
]

_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
_NONBLOCK = getattr(os, "O_NONBLOCK", 0)
"""Opening a FIFO waits for its other end, for ever and past any signal: with this flag
the open returns at once, so the check that the file is a regular one is reached."""
_DIRECTORY = getattr(os, "O_DIRECTORY", 0)
_LINK_ERRORS = frozenset({errno.ELOOP, errno.EMLINK})
"""What ``open`` with ``O_NOFOLLOW`` reports for a symlink (Linux: ELOOP, BSDs: EMLINK)."""
_AT = (
    bool(_DIRECTORY)
    and {os.open, os.stat, os.unlink, os.rename, os.mkdir} <= os.supports_dir_fd
    and os.listdir in os.supports_fd
)
"""Whether file operations can be made relative to a directory's descriptor (POSIX)."""

_PINNED: dict[Path, list[int]] = {}
"""Directories held open by path (see :func:`pin_directory`); a path's last pin is used."""

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

    ``open`` opens the file at ``offset`` (the length recorded in the checkpoint, to which
    a resume cut it back). ``tail`` is kept as the file's last bytes (see
    :data:`TAIL_BYTES`).
    """

    def __init__(self, path: Path, *, compress: bool) -> None:
        self.path = path
        self.compress = compress
        self.offset = 0
        self.tail = b""
        self._dirty = False
        self._handle: BinaryIO | None = None

    def open(self, offset: int) -> None:
        """Open the file at ``offset``; a file with nothing recorded yet is created
        exclusively.

        The file must hold exactly ``offset`` bytes: one that holds more was written by
        someone else (planted after the directory was checked, or appended to while it was
        closed), and is refused rather than adopted or cut back. An empty one is this
        export's, made by an earlier run or before it was closed to open another.
        """
        fd = None
        if offset == 0:
            with contextlib.suppress(FileExistsError):
                fd = open_no_follow(self.path, os.O_RDWR, create=True, exclusive=True)
        if fd is None:
            fd = open_no_follow(self.path, os.O_RDWR, create=False)
        # Opened without a context manager: the handle lives as long as the export.
        handle = os.fdopen(fd, "r+b")
        try:
            size = handle.seek(0, os.SEEK_END)
            if size < offset:
                raise CheckpointError(
                    f"{self.path} holds {size} bytes but the checkpoint recorded {offset}: "
                    "the data was changed or lost since; start a new export"
                )
            if size > offset:
                raise OutputUnusableError(
                    f"{self.path} holds {size} bytes, not the {offset} this export recorded: "
                    "another process wrote to it, and the exporter neither adopts nor cuts "
                    "back a file it did not write: remove it, or choose another directory"
                )
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


def pin_directory(directory: Path) -> int | None:
    """Open ``directory`` once: until :func:`unpin_directory`, every file operation of this
    module on a path under it is made relative to that descriptor.

    Anyone who may write to the directory that holds it can rename it and put a symlink
    in its place while an export runs; the export's files then stay in the directory it
    opened, and nothing elsewhere is written, cut back or removed. The directory itself
    is followed if its path names a link (the user's choice, checked by
    :func:`check_pinned` from then on); a directory under a pinned one (``run-<end>/``)
    is opened without following one. Returns the descriptor, ``None`` where the platform
    has no ``dir_fd`` calls.
    """
    if not _AT:
        return None
    with _located(directory) as (at, name):
        follow = 0 if at is None else _NOFOLLOW
        try:
            fd = os.open(name, os.O_RDONLY | _DIRECTORY | _CLOEXEC | follow, dir_fd=at)
        except FileNotFoundError:
            raise OutputUnusableError(
                f"{directory} was removed as the export began: run it again"
            ) from None
        except OSError as exc:
            raise _not_a_directory(exc, directory) from None
    _PINNED.setdefault(directory, []).append(fd)
    return fd


def unpin_directory(directory: Path, fd: int | None) -> None:
    """Close the descriptor :func:`pin_directory` returned; paths go by name again."""
    if fd is None:
        return
    pins = _PINNED.get(directory, [])
    if fd in pins:
        pins.remove(fd)
    if not pins:
        _PINNED.pop(directory, None)
    os.close(fd)


def check_pinned(directory: Path) -> None:
    """Refuse to go on once ``directory``'s path no longer names the directory pinned
    there: the export's files are where that directory went, not where its user looks."""
    pins = _PINNED.get(directory)
    if not pins:
        return
    held = os.fstat(pins[-1])
    try:
        with _located(directory) as (at, name):
            now: os.stat_result | None = os.stat(name, dir_fd=at)
    except OSError:
        now = None
    if now is None or (now.st_dev, now.st_ino) != (held.st_dev, held.st_ino):
        raise OutputUnusableError(
            f"{directory} was moved or replaced while the export ran: its path no longer "
            "names the directory the export writes to, whose files stay where it went; "
            "the export stops"
        )


@contextlib.contextmanager
def _located(path: Path) -> Iterator[tuple[int | None, str]]:
    """``path`` as a directory's descriptor and a name in it: under its nearest pinned
    ancestor, each directory between opened without following a link; ``(None, path)``
    when no ancestor is pinned."""
    for parent in path.parents if _PINNED else ():
        pins = _PINNED.get(parent)
        if not pins:
            continue
        at, reached, opened = pins[-1], parent, []
        try:
            for name in path.parts[len(parent.parts) : -1]:
                reached /= name
                try:
                    at = os.open(name, os.O_RDONLY | _DIRECTORY | _NOFOLLOW | _CLOEXEC, dir_fd=at)
                except OSError as exc:
                    raise _not_a_directory(exc, reached) from None
                opened.append(at)
            yield at, path.name
        finally:
            for fd in opened:
                os.close(fd)
        return
    yield None, os.fspath(path)


def _not_a_directory(exc: OSError, path: Path) -> Exception:
    """What opening the directory ``path`` failed with, as the export reports it."""
    if exc.errno in _LINK_ERRORS:
        return OutputUnusableError(
            f"{path} is a symbolic link, not a directory; the exporter does not follow links "
            "out of its directory: remove it"
        )
    if exc.errno == errno.ENOTDIR:
        return OutputUnusableError(f"{path} is not a directory: remove it")
    exc.filename = os.fspath(path)
    return exc


def _full_name(exc: OSError, path: Path, at: int | None) -> None:
    """Make an error of a call relative to a directory name the whole path."""
    if at is not None:
        exc.filename = os.fspath(path)


def fsync_dir(path: Path) -> None:
    """Make a rename or a new file in ``path`` durable (POSIX; a no-op where unsupported)."""
    pins = _PINNED.get(path)
    if pins:
        with contextlib.suppress(OSError):
            os.fsync(pins[-1])
        return
    try:
        with _located(path) as (at, name):
            follow = 0 if at is None else _NOFOLLOW
            flags = os.O_RDONLY | _DIRECTORY | _NONBLOCK | _CLOEXEC | follow
            fd = os.open(name, flags, dir_fd=at)
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
    A symlink, a non-regular file, (with ``single_link``) a file with more than one hard
    link or (POSIX) a file of another user raises :class:`OutputUnusableError`: writing
    through any of them would change a file outside the output directory, or one someone
    else controls, and opening a FIFO would wait for a writer for ever (it is opened
    without waiting, then refused). ``FileNotFoundError`` passes when not ``create``.
    """
    flags |= _NOFOLLOW | _CLOEXEC | _NONBLOCK
    with _located(path) as (at, name):
        try:
            fd = _open_or_create(name, flags, at, create=create, exclusive=exclusive)
        except OSError as exc:
            if exc.errno in _LINK_ERRORS or _mode_is(at, name, stat.S_ISLNK):
                raise OutputUnusableError(
                    f"{path} is a symbolic link; the exporter does not follow links out of "
                    "its directory: remove it"
                ) from None
            if not isinstance(exc, FileNotFoundError | FileExistsError) and _mode_is(
                at, name, lambda mode: not stat.S_ISREG(mode)
            ):
                # A directory (EISDIR), a socket or a FIFO without a reader (ENXIO).
                raise OutputUnusableError(f"{path} is not a regular file: remove it") from None
            _full_name(exc, path, at)
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
        _check_owner(path, info)
        if _NONBLOCK:
            os.set_blocking(fd, True)
    except BaseException:
        os.close(fd)
        raise
    return fd


def _check_owner(path: Path, info: os.stat_result) -> None:
    """Refuse a file of another user (POSIX): in a directory others may write to (a shared
    sticky one), they may plant any name the exporter uses, a checkpoint telling a resume
    to cut the user's files back, or a data file they read from and write to."""
    geteuid = getattr(os, "geteuid", None)
    if geteuid is not None and info.st_uid != geteuid():
        raise OutputUnusableError(
            f"{path} belongs to another user (uid {info.st_uid}); the exporter uses no file "
            "it did not make as this user: have it removed, or choose another directory"
        )


def _mode_is(at: int | None, name: str, test: Callable[[int], bool]) -> bool:
    """Whether something is at ``name`` whose mode passes ``test`` (a link is not followed)."""
    try:
        return test(os.stat(name, dir_fd=at, follow_symlinks=False).st_mode)
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


def _open_or_create(name: str, flags: int, at: int | None, *, create: bool, exclusive: bool) -> int:
    if not exclusive:
        try:
            return os.open(name, flags, dir_fd=at)
        except FileNotFoundError:
            if not create:
                raise
    return os.open(name, flags | os.O_CREAT | os.O_EXCL, 0o644, dir_fd=at)


def lstat_no_follow(path: Path) -> os.stat_result:
    """``lstat`` of ``path`` (under a pinned directory, relative to it)."""
    with _located(path) as (at, name):
        try:
            return os.stat(name, dir_fd=at, follow_symlinks=False)
        except OSError as exc:
            _full_name(exc, path, at)
            raise


def remove_file(path: Path) -> bool:
    """Remove ``path`` (a link itself, never what it points to); whether it was there."""
    with _located(path) as (at, name):
        try:
            os.unlink(name, dir_fd=at)
        except FileNotFoundError:
            return False
        except OSError as exc:
            _full_name(exc, path, at)
            raise
    return True


def replace_file(source: Path, target: Path) -> None:
    """Rename ``source`` to ``target``, replacing what is there (a link itself)."""
    with _located(source) as (at, name), _located(target) as (target_at, target_name):
        try:
            os.replace(name, target_name, src_dir_fd=at, dst_dir_fd=target_at)
        except OSError as exc:
            _full_name(exc, source, at)
            raise


def list_names(directory: Path) -> list[str]:
    """The names in ``directory`` (a pinned one read through its own descriptor)."""
    pins = _PINNED.get(directory)
    if pins:
        # A descriptor of its own: listing moves the position of the one it is opened from.
        fd = os.open(".", os.O_RDONLY | _DIRECTORY | _CLOEXEC, dir_fd=pins[-1])
    else:
        with _located(directory) as (at, name):
            if at is None:
                return os.listdir(directory)
            try:
                fd = os.open(name, os.O_RDONLY | _DIRECTORY | _NOFOLLOW | _CLOEXEC, dir_fd=at)
            except OSError as exc:
                raise _not_a_directory(exc, directory) from None
    try:
        return os.listdir(fd)
    finally:
        os.close(fd)


def check_subdirectory(directory: Path) -> Path:
    """``directory``, refused when its name holds anything but a directory: a symlink there
    would take an export, and a resume's cut-backs, to wherever it points. Absent is fine."""
    try:
        mode = lstat_no_follow(directory).st_mode
    except FileNotFoundError:
        return directory
    if stat.S_ISLNK(mode):
        raise OutputUnusableError(
            f"{directory} is a symbolic link, not a directory; the exporter does not follow "
            "links out of its directory: remove it"
        )
    if not stat.S_ISDIR(mode):
        raise OutputUnusableError(f"{directory} is not a directory: remove it")
    return directory


def make_directory(directory: Path) -> bool:
    """Create ``directory`` if needed (with its parents, where no pinned directory holds
    it); whether it was created. Under a pinned directory it is made relative to it, and
    anything but a directory already there is refused (see :func:`check_subdirectory`)."""
    with _located(directory) as (at, name):
        if at is None:
            created = not os.path.lexists(directory)
            directory.mkdir(parents=True, exist_ok=True)
            return created
        try:
            os.mkdir(name, dir_fd=at)
        except FileExistsError:
            check_subdirectory(directory)
            return False
        except OSError as exc:
            _full_name(exc, directory, at)
            raise
    return True


def atomic_write(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data`` so that a crash leaves either the old or the new file.

    A stale temporary file (or a link planted in its place) is removed, never written
    through, and the new one is created exclusively; the rename replaces a link at
    ``path`` itself, not its target.
    """
    tmp = path.with_name(path.name + ".tmp")
    remove_file(tmp)
    fd = open_no_follow(tmp, os.O_WRONLY, create=True, exclusive=True)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
    except OSError as exc:
        named(exc, tmp)
        raise
    replace_file(tmp, path)
    fsync_dir(path.parent)
