"""Names and bytes of the data files: file names per project, ids in written pages, fsyncs."""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import io
import os
import re
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import IO, Any, Protocol, cast

import msgspec

from .._protocol.items import item_id, leading_id
from ._checkpoint import CHECKPOINT_NAME, ProjectRef, save_checkpoint
from ._windows import format_utc
from ._writer import check_pinned, fsync_dir, open_no_follow, remove_file

__all__ = [
    "SHORT_ID",
    "IdKey",
    "file_name",
    "id_key",
    "id_text",
    "ids_in_file",
    "item_id",
    "item_key",
    "now_iso",
    "parse_stamp",
    "project_stems",
    "read_segment",
    "remove_checkpoint",
    "safe_stem",
    "skip_keys",
    "sync_and_close",
    "sync_then_save",
    "text_key",
]


class _DataFile(Protocol):
    def sync(self) -> None: ...

    def close(self) -> None: ...


_UNSAFE_NAME = re.compile(r"[^A-Za-z0-9._-]")


IdKey = str | int | bytes
"""What de-duplication keeps of an id (see :func:`id_key`)."""

SHORT_ID = 32
"""Longest id kept as it is: Sentry's event ids are 32 hex digits, issue ids shorter."""

_DIGEST_TEXT = "#b2:"
"""How a digest is written as text (the incremental state): 36 characters, which no id
kept as it is can have, since an id that long is kept as a digest itself."""


def id_key(found: str | int) -> IdKey:
    """What de-duplication keeps of an id: a longer one than :data:`SHORT_ID`
    characters as 16 bytes of BLAKE2b, so that memory follows the number of items, not
    the length of ids a server chooses. Short ids are kept as they are (no hashing)."""
    if isinstance(found, str) and len(found) > SHORT_ID:
        data = found.encode("utf-8", "surrogatepass")
        return hashlib.blake2b(data, digest_size=16).digest()
    return found


def id_text(key: IdKey) -> str:
    """A key as text, as the incremental state keeps it; :func:`text_key` reads it back."""
    if isinstance(key, bytes):
        return _DIGEST_TEXT + key.hex()
    return str(key)


def text_key(text: str) -> IdKey:
    """The key of an id given as text: :func:`id_text`'s, or an id (a state file written
    before ids were kept as digests holds them whole)."""
    if len(text) == len(_DIGEST_TEXT) + 32 and text.startswith(_DIGEST_TEXT):
        with contextlib.suppress(ValueError):
            return bytes.fromhex(text[len(_DIGEST_TEXT) :])
    return id_key(text)


def skip_keys(texts: Iterable[str]) -> frozenset[IdKey]:
    """Ids an earlier run wrote, as text, as the keys :func:`dedupe_page` skips."""
    return frozenset(text_key(text) for text in texts)


_SHORT_LEADING_ID = leading_id(32)
""":func:`item_id`'s leading id, of one kept as it is: a match is its own key."""


def item_key(item: bytes | msgspec.Raw, *, leading: bool = True) -> IdKey | None:
    """:func:`id_key` of :func:`item_id`, with no check per item where the id is a short
    leading one (the common case, on the exporter's per-item path)."""
    if leading:
        found = _SHORT_LEADING_ID.match(item)
        if found is not None:
            return found.group(1).decode("ascii")
    found_id = item_id(item, leading=leading)
    return None if found_id is None else id_key(found_id)


def now_iso() -> str:
    return format_utc(datetime.now(timezone.utc).replace(microsecond=0))


def safe_stem(name: str) -> str:
    """``name`` with every character a file system might not take replaced by ``_``."""
    return _UNSAFE_NAME.sub("_", name)


def file_name(name: str, compress: bool, suffix: str = ".jsonl") -> str:
    return safe_stem(name) + suffix + (".gz" if compress else "")


_MAX_STEM = 120
"""Longest file name stem taken from a slug (file systems allow 255 bytes)."""
_MAX_ID = 32
"""Longest project id put in a file name as it is (Sentry's are at most 19 digits)."""


def _id_part(pid: str) -> str:
    """A project id as a file name takes it: sanitised, and one longer than
    :data:`_MAX_ID` (only a hostile server sends one) cut short and followed by a digest
    of the whole id, so that the name stays short enough and projects apart."""
    safe = _UNSAFE_NAME.sub("_", pid)
    if len(safe) <= _MAX_ID:
        return safe
    digest = hashlib.blake2b(pid.encode("utf-8", "surrogatepass"), digest_size=8).hexdigest()
    return f"{safe[: _MAX_ID - len(digest) - 1]}-{digest}"


def project_stems(projects: Sequence[ProjectRef]) -> dict[str, str]:
    """Project id -> a file name stem no other project shares, even ignoring case.

    The stem is the sanitised slug; projects whose stems collide (sanitising, case, or a
    shared slug) get ``-<id>`` appended (see :func:`_id_part`), and one still colliding a
    counter, so every project has its own file on any file system. A slug nobody shares
    keeps its name. Every stem is bounded, whatever the slugs and ids a server sends.
    """
    base = {p.id: _UNSAFE_NAME.sub("_", p.slug)[:_MAX_STEM] for p in projects}
    counts = Counter(stem.casefold() for stem in base.values())
    stems = {
        pid: stem if counts[stem.casefold()] == 1 else f"{stem}-{_id_part(pid)}"
        for pid, stem in base.items()
    }
    taken: set[str] = set()
    out: dict[str, str] = {}
    # Unsuffixed stems first: they are unique among themselves and keep their names.
    for project in sorted(projects, key=lambda p: (stems[p.id] != base[p.id], p.slug, p.id)):
        stem = candidate = stems[project.id]
        n = 1
        while candidate.casefold() in taken:
            n += 1
            candidate = f"{stem}-{n}"
        taken.add(candidate.casefold())
        out[project.id] = candidate
    return out


def parse_stamp(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


class _Segment(io.RawIOBase):
    """The bytes of an open file between two offsets, read as a stream of their own."""

    def __init__(self, fd: int, start: int, end: int) -> None:
        super().__init__()
        self._fd, self._at, self._end = fd, start, end

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        size = min(len(buffer), self._end - self._at)
        if size <= 0:
            return 0
        data = os.pread(self._fd, size, self._at)
        buffer[: len(data)] = data
        self._at += len(data)
        return len(data)


_READ_BUFFER = 1 << 20


@contextlib.contextmanager
def read_segment(path: Path, start: int, end: int, compress: bool) -> Iterator[IO[bytes]]:
    """The bytes written to ``path`` between two page boundaries (decompressed), as a
    stream: a stream's pages may be gigabytes, of which a reader keeps only the ids."""
    fd = open_no_follow(path, os.O_RDONLY, create=False, single_link=False)
    try:
        segment = io.BufferedReader(_Segment(fd, start, end), _READ_BUFFER)
        stream = gzip.GzipFile(fileobj=segment, mode="rb") if compress else segment
        yield cast(IO[bytes], stream)
    finally:
        os.close(fd)


def ids_in_file(path: Path, start: int, end: int, compress: bool) -> set[IdKey]:
    """The ids (as :func:`id_key`) of the items written to ``path`` between two page
    boundaries."""
    if end <= start:
        return set()
    ids: set[IdKey] = set()
    with read_segment(path, start, end, compress) as lines:
        for line in lines:
            key = item_key(line)
            if key is not None:
                ids.add(key)
    return ids


def remove_checkpoint(directory: Path) -> None:
    remove_file(directory / CHECKPOINT_NAME)
    fsync_dir(directory)


def sync_and_close(handle: _DataFile) -> None:
    """fsync, then close; closed even when the fsync fails, which is the error raised (no
    longer tracked, the file would otherwise stay open)."""
    try:
        handle.sync()
    except BaseException:
        with contextlib.suppress(Exception):
            handle.close()
        raise
    handle.close()


def sync_then_save(files: Sequence[_DataFile], directory: Path, data: bytes) -> None:
    """fsync the files, then save the checkpoint; refused once the directory's path no
    longer names the directory the export writes to (see :func:`check_pinned`)."""
    for handle in files:
        handle.sync()
    fsync_dir(directory)
    check_pinned(directory)
    save_checkpoint(directory, data)
