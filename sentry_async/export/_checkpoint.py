"""The checkpoint file: what is durably exported, per stream and per data file.

One JSON document (``checkpoint.json``) holds, for every stream, the cursor of the next
page to request, and for every data file, its length once the pages before that cursor
were written. It is replaced atomically (temp file, fsync, rename, fsync of the directory)
and only after the data files were fsynced, so it never points past durable data.
"""

from __future__ import annotations

from pathlib import Path

import msgspec

from ._errors import CheckpointError
from ._writer import atomic_write

__all__ = [
    "CHECKPOINT_NAME",
    "FORMAT",
    "Checkpoint",
    "FileState",
    "ProjectRef",
    "StreamState",
    "load_checkpoint",
    "save_checkpoint",
]

CHECKPOINT_NAME = "checkpoint.json"
FORMAT = "sentry-async-export/1"


class ProjectRef(msgspec.Struct, frozen=True):
    """A project as resolved once at the start: its numeric id and its slug."""

    id: str
    slug: str


class StreamState(msgspec.Struct, kw_only=True):
    """One stream (one target in one window): where it is and what it has written."""

    key: str
    file: str
    target: str
    window_start: str
    window_end: str
    cursor: str | None = None
    done: bool = False
    items: int = 0
    pages: int = 0
    duplicates: int = 0
    unidentified: int = 0
    """Items written without a usable ``id``, hence not de-duplicated."""
    hits: int | None = None


class FileState(msgspec.Struct, kw_only=True):
    """A data file's committed length in bytes and the number of lines in it."""

    offset: int = 0
    items: int = 0


class Checkpoint(msgspec.Struct, kw_only=True):
    """Everything a resumed run needs; ``spec`` is the canonical form the fingerprint hashes."""

    format: str = FORMAT
    fingerprint: str
    spec: dict[str, object]
    start: str
    end: str
    projects: list[ProjectRef] = []
    files: dict[str, FileState] = {}
    streams: dict[str, StreamState] = {}
    created_at: str
    updated_at: str
    runs: int = 1
    complete: bool = False


_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder(Checkpoint)


def encode_checkpoint(checkpoint: Checkpoint) -> bytes:
    return _encoder.encode(checkpoint)


def load_checkpoint(directory: Path) -> Checkpoint | None:
    """The checkpoint in ``directory``, ``None`` if there is none; corrupt ones are refused."""
    path = directory / CHECKPOINT_NAME
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None
    try:
        checkpoint = _decoder.decode(data)
    except (msgspec.ValidationError, msgspec.DecodeError) as exc:
        raise CheckpointError(f"{path} is not a valid checkpoint: {exc}") from exc
    if checkpoint.format != FORMAT:
        raise CheckpointError(
            f"{path} has format {checkpoint.format!r}; this version reads {FORMAT!r}"
        )
    return checkpoint


def save_checkpoint(directory: Path, data: bytes) -> None:
    """Atomically replace the checkpoint with ``data`` (already encoded)."""
    atomic_write(directory / CHECKPOINT_NAME, data)
