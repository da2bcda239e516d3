"""The checkpoint file: what is durably exported, per stream and per data file.

One JSON document (``checkpoint.json``) holds, for every stream, the position of its
cursor walk after the last page written (the cursor of the next page, or done), and for
every data file, its length once the pages before that cursor were written. It is
replaced atomically (temp file, fsync, rename, fsync of the directory) and only after
the data files were fsynced, so it never points past durable data.

A checkpoint edited, or copied next to other files, must not pass for one that describes
them: each data file's length comes with a checksum of its last bytes (see
:func:`file_seal`), and each stream done with where its walk ended.
"""

from __future__ import annotations

import os
import zlib
from datetime import datetime
from pathlib import Path
from typing import Annotated, Protocol, TypeVar

import msgspec

from .._protocol.cursors import Position
from .._protocol.params import check_slug
from ._errors import CheckpointError
from ._writer import atomic_write, read_no_follow

__all__ = [
    "CHECKPOINT_NAME",
    "FORMAT",
    "Checkpoint",
    "FileState",
    "ProjectRef",
    "SkippedProject",
    "StreamState",
    "check_file_name",
    "check_whole_pages",
    "file_seal",
    "load_checkpoint",
    "save_checkpoint",
]

CHECKPOINT_NAME = "checkpoint.json"
FORMAT = "sentry-async-export/1"
RESERVED_NAMES = frozenset(
    {CHECKPOINT_NAME, CHECKPOINT_NAME + ".tmp", "manifest.json", "manifest.json.tmp", ".lock"}
)
"""Names in the output directory that are never data files."""

Count = Annotated[int, msgspec.Meta(ge=0)]


class ProjectRef(msgspec.Struct, frozen=True):
    """A project as resolved once at the start: its id, its slug and its data file.

    ``file`` is ``None`` in checkpoints of earlier versions; their streams name the file.
    """

    id: str
    slug: str
    file: str | None = None


class SkippedProject(msgspec.Struct, frozen=True, omit_defaults=True):
    """A project (or, in an issue export, an issue: its id, no slug) that is not exported,
    and why: an unusable slug or row, no access to it (``hasAccess: false`` in a
    closed-membership org), or gone while it was exported. Shown with the token blanked
    out."""

    id: str | None
    slug: str | None
    error: str
    merged_into: str | None = None
    """An issue merged into another while exported: that issue's id (Sentry answers the
    merged issue's id with it, and its events are that issue's now). Left out when none."""


def check_whole_pages(stream: str, position: Position) -> None:
    """Refuse a position inside a page: the exporter writes pages whole, so it can only
    record (and resume from) a page boundary."""
    if position.skip:
        raise CheckpointError(
            f"stream {stream}: the walk stopped inside a page (at {position!r}); an export "
            "records whole pages only"
        )


class StreamState(msgspec.Struct, kw_only=True):
    """One stream (one target in one window): where it is and what it has written.

    Where it is is the :class:`Position` of its cursor walk, kept as ``cursor`` and
    ``done`` (always at a page boundary), so checkpoints of every version read alike.
    """

    key: str
    file: str
    target: str
    window_start: str
    window_end: str
    cursor: str | None = None
    done: bool = False
    items: Count = 0
    pages: Count = 0
    duplicates: Count = 0
    unidentified: Count = 0
    """Items written without a usable ``id``, hence not de-duplicated."""
    hits: Count | None = None
    first_offset: Count | None = None
    """The file's length before this stream's first page: where its items begin."""
    split: bool = False
    """The server could not serve this window: it went on as two halves (new streams)."""
    dedupe_from: Count | None = None
    """A half of a split window: ids already in the file from here on are not written again."""
    outside_retention: bool = False
    """Sentry refused the window as wholly before the organization's retention: it is done
    with nothing (more) exported."""
    ended: Count | None = None
    """Its file's length once its last page was written: set only when its walk reached
    its end, so a stream marked done by hand has none."""
    walk_again: bool = False
    """An issue merged into this stream's issue while exported: Sentry moved its events
    into this issue, anywhere in its list, so once its walk is over the stream is walked
    again from its first page, writing only what its file lacks."""
    unconfirmed: str | None = None
    """A project's events window whose first page came back empty when asked at this
    slug: an empty page does not say whose it is, and Sentry answers a slug with the
    project that holds it now. Checked against the projects list once the streams are done
    (read again if the project is elsewhere by then); ``None`` once checked, and for any
    other stream."""

    @property
    def position(self) -> Position:
        """Where the stream's walk resumes: the page after the last one written."""
        return Position(self.cursor, 0, self.done)

    def advance(self, position: Position) -> None:
        """Record the walk's position after a page written whole; a mid-page one is refused."""
        check_whole_pages(self.key, position)
        self.cursor, self.done = position.cursor, position.done


class FileState(msgspec.Struct, kw_only=True):
    """A data file's committed length in bytes and the number of lines in it."""

    offset: Count = 0
    items: Count = 0
    columns: list[str] | None = None
    """A CSV file's columns (its header), once its first page is written."""
    tail_crc: int | None = None
    """:func:`file_seal` of the file at ``offset``, recorded with every page appended;
    ``None`` before the first one, for a Parquet part (checked by its size) and in
    checkpoints of earlier versions."""


def file_seal(tail: bytes, offset: int, items: int) -> int:
    """The crc32 of a file's last bytes (``tail``, see :data:`~._writer.TAIL_BYTES`),
    seeded with its length and its count of items.

    A length moved to another line boundary (even between identical lines), a count
    changed, or another file in its place gives another value; checking it reads a few
    KiB, however long the file.
    """
    return zlib.crc32(tail, zlib.crc32(b"%d:%d:" % (offset, items)))


class Checkpoint(msgspec.Struct, kw_only=True):
    """Everything a resumed run needs; ``spec`` is the canonical form the fingerprint hashes."""

    format: str = FORMAT
    fingerprint: str
    spec: dict[str, object]
    start: str
    end: str
    projects: list[ProjectRef] = []
    skipped: list[SkippedProject] = []
    files: dict[str, FileState] = {}
    streams: dict[str, StreamState] = {}
    created_at: str
    updated_at: str
    runs: Count = 1
    complete: bool = False
    moved: dict[str, str] = {}
    """Project id -> the slug it was found renamed to while exported, where reads (a
    resume's too) go instead of its planned ``slug``, which still names its file. Sentry
    frees a renamed project's old slug for any project to take."""
    records_ends: bool = True
    """Whether every stream done records where its walk ended (``ended``): false for an
    export begun by an earlier version, whose streams done then are taken as they are."""


class _Stored(Checkpoint, kw_only=True):
    """A checkpoint as read from its file: one without ``records_ends`` was begun by an
    earlier version (a checkpoint planned now records them)."""

    records_ends: bool = False


_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder(_Stored)


def encode_checkpoint(checkpoint: Checkpoint) -> bytes:
    return _encoder.encode(checkpoint)


def check_file_name(name: str) -> str | None:
    """Why ``name`` cannot be a data file in the output directory, or ``None`` if it can."""
    if not name or name in (".", ".."):
        return "is empty or a directory name"
    if "/" in name or "\\" in name or "\0" in name or os.path.isabs(name):
        return "is a path, not a plain file name"
    if not name.isprintable():
        return "holds control characters"
    if name in RESERVED_NAMES:
        return "is the name of the exporter's own file"
    if len(name.encode("utf-8", "surrogatepass")) > 255:
        return "is too long"
    return None


def _parse_stamp(text: str) -> datetime | None:
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return value if value.tzinfo is not None else None


def _check_values(checkpoint: Checkpoint) -> str | None:
    """What is wrong with a decoded checkpoint's values, or ``None``.

    The file names are joined to the output directory and the times sent to the server,
    so a checkpoint edited by hand (or by someone else) must not point outside it.
    """
    for name in checkpoint.files:
        problem = check_file_name(name)
        if problem is not None:
            return f"the file name {name!r} {problem}"
    for project in checkpoint.projects:
        problem = None if project.file is None else check_file_name(project.file)
        if problem is not None:
            return f"the file name {project.file!r} {problem}"
    planned = {project.id for project in checkpoint.projects}
    for project_id, slug in checkpoint.moved.items():
        # Sent in the path of every read of the project.
        if project_id not in planned:
            return f"it moves the project {project_id!r}, which is not one of its projects"
        try:
            check_slug(slug, "project")
        except ValueError as exc:
            return f"project {project_id!r} moved to {slug!r}: {exc}"
    for label, text in (("start", checkpoint.start), ("end", checkpoint.end)):
        if _parse_stamp(text) is None:
            return f"{label} {text!r} is not an ISO UTC time"
    for key, stream in checkpoint.streams.items():
        if stream.key != key:
            return f"stream {key!r} is recorded under the key {stream.key!r}"
        if stream.file not in checkpoint.files:
            return f"stream {key!r} writes to {stream.file!r}, which is not among its files"
        start, end = _parse_stamp(stream.window_start), _parse_stamp(stream.window_end)
        if start is None or end is None:
            bad = stream.window_start if start is None else stream.window_end
            return f"stream {key!r} has the window bound {bad!r}, not an ISO UTC time"
        if start >= end:
            return f"stream {key!r} has an empty window"
        problem = _check_end(checkpoint, stream)
        if problem is not None:
            return problem
    return _check_coverage(checkpoint)


def _check_end(checkpoint: Checkpoint, stream: StreamState) -> str | None:
    """What contradicts a stream's being done or not, or ``None``.

    A stream marked done by hand would be skipped by a resume, its remaining items never
    fetched; one whose end lies past its file's length would lose its last lines to the
    cut back.
    """
    if stream.ended is None:
        if stream.done and not stream.split and checkpoint.records_ends:
            return (
                f"stream {stream.key!r} is recorded done, but its walk did not reach its end"
            )
        return None
    if not stream.done:
        return f"stream {stream.key!r} records where it ended, but is not done"
    offset = checkpoint.files[stream.file].offset
    if stream.ended > offset:
        return (
            f"stream {stream.key!r} ended at byte {stream.ended} of {stream.file!r}, "
            f"past its recorded length {offset}"
        )
    return None


def _check_coverage(checkpoint: Checkpoint) -> str | None:
    """What the streams leave out or count twice, or ``None`` (values already checked).

    An export is complete once its streams are done, so a stream left out, or a window
    cut short, would lose its items without a word, and a file with bytes no stream
    writes would be left out of the manifest. Each target's streams (a split window's
    halves in its place) must cover the range once, window after window.
    """
    written = {stream.file for stream in checkpoint.streams.values()}
    for name, state in checkpoint.files.items():
        if (state.offset or state.items) and name not in written:
            return f"the file {name!r} holds {state.offset} bytes, but no stream writes to it"
    spans: dict[str, list[tuple[datetime, datetime, StreamState]]] = {}
    for stream in checkpoint.streams.values():
        if not stream.split:
            start, end = _parse_stamp(stream.window_start), _parse_stamp(stream.window_end)
            assert start is not None and end is not None
            spans.setdefault(stream.target, []).append((start, end, stream))
    first, last = _parse_stamp(checkpoint.start), _parse_stamp(checkpoint.end)
    assert first is not None and last is not None
    for target, windows in spans.items():
        reached, at = first, checkpoint.start
        for start, end, stream in sorted(windows, key=lambda span: (span[0], span[1])):
            if start > reached:
                return f"the streams of {target!r} leave out {at} .. {stream.window_start}"
            if start < reached:
                return (
                    f"the streams of {target!r} cover {stream.window_start} .. {at} twice "
                    f"(stream {stream.key!r} among them)"
                )
            reached, at = end, stream.window_end
        if reached != last:
            return f"the streams of {target!r} end at {at}, not at the end {checkpoint.end}"
    return None


class _Versioned(Protocol):
    @property
    def format(self) -> str: ...


_V = TypeVar("_V", bound=_Versioned)


def read_versioned(
    path: Path, decoder: msgspec.json.Decoder[_V], expected: str, what: str
) -> _V | None:
    """A state file of the exporter's (checkpoint, incremental state): ``None`` when absent;
    read without following a link; refused when it does not decode or is of another
    format."""
    data = read_no_follow(path)
    if data is None:
        return None
    try:
        value = decoder.decode(data)
    except (msgspec.ValidationError, msgspec.DecodeError) as exc:
        raise CheckpointError(f"{path} is not a valid {what}: {exc}") from exc
    if value.format != expected:
        raise CheckpointError(
            f"{path} has format {value.format!r}; this version reads {expected!r}"
        )
    return value


def load_checkpoint(directory: Path) -> Checkpoint | None:
    """The checkpoint in ``directory``, ``None`` if there is none; corrupt ones are refused."""
    path = directory / CHECKPOINT_NAME
    checkpoint = read_versioned(path, _decoder, FORMAT, "checkpoint")
    if checkpoint is None:
        return None
    problem = _check_values(checkpoint)
    if problem is not None:
        raise CheckpointError(f"{path} is not a valid checkpoint: {problem}")
    return checkpoint


def save_checkpoint(directory: Path, data: bytes) -> None:
    """Atomically replace the checkpoint with ``data`` (already encoded)."""
    atomic_write(directory / CHECKPOINT_NAME, data)
