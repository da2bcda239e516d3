"""Resuming: an existing export checked against the spec, cleared, or cut back."""

from __future__ import annotations

import logging
import os
import re
import stat
from pathlib import Path

from ._checkpoint import (
    CHECKPOINT_NAME,
    Checkpoint,
    check_file_name,
    file_seal,
    load_checkpoint,
)
from ._errors import CheckpointError, OutputNotEmptyError, OutputUnusableError, SpecMismatchError
from ._files import remove_checkpoint
from ._lock import LOCK_NAME
from ._manifest import MANIFEST_NAME, Manifest, load_manifest
from ._spec import ExportSpec
from ._writer import (
    list_names,
    lstat_no_follow,
    make_directory,
    open_no_follow,
    read_tail,
    remove_file,
)

__all__ = [
    "check_spec",
    "check_targets",
    "clear_export",
    "cut_back",
    "make_output_dir",
    "open_existing",
    "reset_parts",
    "restart_names",
    "seal_at",
    "truncate_files",
]

logger = logging.getLogger("sentry_async.export")


def make_output_dir(output: Path) -> bool:
    """Create the output directory if needed; whether it was created."""
    try:
        return make_directory(output)
    except (FileExistsError, NotADirectoryError):
        raise OutputUnusableError(
            f"{output} is not a directory: choose a new or empty directory"
        ) from None


def open_existing(
    output: Path,
    spec: ExportSpec,
    server: str,
    *,
    resume: bool,
    restart: bool,
    aggregates: bool,
) -> Checkpoint | Manifest | None:
    """What the locked ``output`` holds for a run of ``spec`` (blocking).

    An unfinished export's checkpoint, checked and its files cut back to it (``resume``);
    a complete export's manifest (``resume``); ``None`` for an empty directory, or once
    ``restart`` removed the export there. Anything else is refused.

    A manifest is read first: a complete export's files are never cut back, whatever
    checkpoint lies beside it (see :func:`_check_leftover`).
    """
    if restart:
        clear_export(output, restart_names(output))
        return None
    finished = load_manifest(output)
    if finished is not None:
        if not resume:
            raise OutputNotEmptyError(
                f"{output} already holds a complete export; rerun with --resume "
                "to get its manifest, start over with --restart, or choose another "
                "output directory"
            )
        check_spec(output, spec, server, finished.spec, finished.fingerprint)
        _check_leftover(output, finished)
        return finished
    existing = load_checkpoint(output)
    if existing is not None:
        if not resume:
            state = "a complete" if existing.complete else "an unfinished"
            raise OutputNotEmptyError(
                f"{output} already holds {state} export; resume it (--resume), "
                "start it over (--restart) or choose another output directory"
            )
        check_spec(output, spec, server, existing.spec, existing.fingerprint)
        check_targets(output, spec, existing, aggregates=aggregates)
        if not existing.complete:
            existing.runs += 1
            if spec.format == "parquet":
                reset_parts(output, existing)
            else:
                truncate_files(output, existing, compress=spec.gzip)
        return existing
    stray = _stray(output, set())
    if stray:
        raise OutputNotEmptyError(
            f"{output} is not empty ({_some(stray)}) and holds no export checkpoint; "
            "choose an empty or new directory"
        )
    return None


def _check_leftover(output: Path, manifest: Manifest) -> None:
    """Refuse a checkpoint beside a complete export's manifest unless it is the one the
    export's last run left there (stopped between writing the manifest and removing it;
    earlier versions kept it): the same export, each file at the length and count of items
    the manifest records.

    Any other would describe files the export does not hold, such as one built from the
    manifest by someone who cannot change the files but may create a file beside them,
    every length 0, so that a resume would cut every file back to nothing.
    """
    leftover = load_checkpoint(output)
    if leftover is None:
        return
    recorded = {name: (state.offset, state.items) for name, state in leftover.files.items()}
    if leftover.fingerprint != manifest.fingerprint or any(
        recorded.get(file.path) != (file.bytes, file.items) for file in manifest.files
    ):
        raise CheckpointError(
            f"{output / CHECKPOINT_NAME} is not a valid checkpoint: it does not describe the "
            f"complete export that {MANIFEST_NAME} records there, and is not used; remove it "
            "to get the manifest, or start over with --restart"
        )


_OWN_NAMES = frozenset(
    {LOCK_NAME, CHECKPOINT_NAME, CHECKPOINT_NAME + ".tmp", MANIFEST_NAME, MANIFEST_NAME + ".tmp"}
)
_DATA_NAME = re.compile(r"^[A-Za-z0-9._-]+\.(?:(?:jsonl|csv)(?:\.gz)?|parquet(?:\.tmp)?)$")
"""A name the exporter gives its data files (sanitised stems, its suffixes)."""


def _some(names: list[str]) -> str:
    return ", ".join(names[:3]) + (", ..." if len(names) > 3 else "")


def _stray(output: Path, names: set[str]) -> list[str]:
    """What in ``output`` is neither the exporter's own file nor one of ``names``."""
    return sorted(
        name
        for name in list_names(output)
        if name not in _OWN_NAMES and name not in names and name.removesuffix(".tmp") not in names
    )


def restart_names(output: Path) -> set[str]:
    """The data files a restart removes: those the checkpoint or the manifest name, or,
    when one of them is damaged, every file named as the exporter names its data files.

    Everything is checked before anything is removed: a file that is none of these (the
    user's own) refuses the restart with :class:`OutputNotEmptyError`.
    """
    names: set[str] = set()
    damaged = False
    try:
        existing = load_checkpoint(output)
    except CheckpointError:
        existing, damaged = None, True
    try:
        manifest = load_manifest(output)
    except CheckpointError:
        manifest, damaged = None, True
    if existing is not None:
        names.update(existing.files)
    if manifest is not None:
        names.update(f.path for f in manifest.files if check_file_name(f.path) is None)
    if damaged:
        names.update(
            name
            for name in list_names(output)
            if _DATA_NAME.match(name) and stat.S_ISREG(lstat_no_follow(output / name).st_mode)
        )
    stray = _stray(output, names)
    if stray:
        raise OutputNotEmptyError(
            f"{output} holds files that are not part of its export ({_some(stray)}); "
            "--restart removes only the export's own files: move them away or choose "
            "another output directory"
        )
    return names


def check_targets(
    output: Path, spec: ExportSpec, checkpoint: Checkpoint, *, aggregates: bool
) -> None:
    """Every stream's target must be one of the export's projects or issues, and each of
    them must have streams (which cover the range: see the checkpoint's own checks)."""
    if spec.issues is not None:
        expected = list(spec.issues)
        known = set(expected)
    else:
        expected = [p.id for p in checkpoint.projects]
        known = set(expected)
        if aggregates:
            # One stream for all projects (per project in checkpoints of old versions).
            known |= {",".join(expected), "-1"}
    for stream in checkpoint.streams.values():
        if stream.target not in known:
            raise CheckpointError(
                f"{output / CHECKPOINT_NAME} is not a valid checkpoint: stream "
                f"{stream.key!r} targets {stream.target!r}, not one of the export's "
                "projects or issues"
            )
    targets = {stream.target for stream in checkpoint.streams.values()}
    if aggregates and targets & {",".join(expected), "-1"}:
        return
    missing = [target for target in expected if target not in targets]
    if missing:
        what = "issue" if spec.issues is not None else "project"
        raise CheckpointError(
            f"{output / CHECKPOINT_NAME} is not a valid checkpoint: no stream exports "
            f"the {what}(s) {_some(missing)}"
        )


def clear_export(output: Path, names: set[str]) -> None:
    """Remove the export in the directory (``restart``): its data files ``names`` (see
    :func:`restart_names`), manifest and checkpoint, the checkpoint last, so a restart
    stopped half-way can be run again."""
    for name in sorted(names):
        for doomed in (name, name + ".tmp"):
            remove_file(output / doomed)
    for name in (MANIFEST_NAME, MANIFEST_NAME + ".tmp", CHECKPOINT_NAME + ".tmp"):
        remove_file(output / name)
    remove_checkpoint(output)


def check_spec(
    output: Path,
    spec: ExportSpec,
    server: str,
    recorded: dict[str, object],
    recorded_fingerprint: str,
) -> None:
    """Refuse to resume an export made with another spec (or against another server)."""
    # Checkpoints written before the server was part of the fingerprint lack it.
    known = server if "server" in recorded else None
    fingerprint = spec.fingerprint(known)
    if recorded_fingerprint == fingerprint:
        return
    now = spec.canonical(known)
    keys = sorted(set(recorded) | set(now))
    differences = {
        key: (recorded.get(key), now.get(key)) for key in keys if recorded.get(key) != now.get(key)
    }
    if not differences:
        differences = {"fingerprint": (recorded_fingerprint, fingerprint)}
    raise SpecMismatchError(str(output), differences)


def cut_back(path: Path, length: int) -> None:
    """Cut one data file back to ``length``, durably (blocking)."""
    fd = open_no_follow(path, os.O_RDWR, create=False)
    try:
        os.ftruncate(fd, length)
        os.fsync(fd)
    finally:
        os.close(fd)


def seal_at(path: Path, offset: int, items: int) -> int:
    """:func:`~._checkpoint.file_seal` of a data file cut back to ``offset`` and ``items``
    (blocking): what the checkpoint records for it once the rows after are cut off."""
    fd = open_no_follow(path, os.O_RDONLY, create=False, single_link=False)
    try:
        return file_seal(read_tail(fd, offset), offset, items)
    finally:
        os.close(fd)


_GZIP_START = b"\x1f\x8b\x08"
"""How every gzip member the exporter writes begins (its magic, then deflate)."""


def _inside(fd: int, offset: int, size: int, *, compress: bool) -> str | None:
    """What a committed length that is no page boundary ends inside, or ``None``.

    A page ends with a line (JSON Lines, CSV), and with gzip is a member of its own, so
    a page written after it begins a member; either can be read at the boundary alone.
    Cutting a file anywhere else, then appending, would leave a broken line (or member)
    in an export that reports itself complete.
    """
    if offset == 0:
        return None
    if not compress:
        return None if os.pread(fd, 1, offset - 1) == b"\n" else "a line"
    if size > offset and not _GZIP_START.startswith(os.pread(fd, len(_GZIP_START), offset)):
        return "a gzip member"
    return None


def truncate_files(output: Path, checkpoint: Checkpoint, *, compress: bool) -> None:
    """Cut each data file back to its committed length (blocking; runs in a thread).

    Every file is checked first, its length, that the committed one ends a page (see
    :func:`_inside`) and that the bytes before it are those the checkpoint was written
    for (:func:`~._checkpoint.file_seal`, which also tells a line boundary from a newline
    inside a quoted CSV cell): a checkpoint refused leaves every file as it was. A
    checkpoint of this version seals every length it records; only those of earlier
    versions, which had no seals, resume without one.
    """
    cuts: list[tuple[str, int, int]] = []
    for name, state in checkpoint.files.items():
        path = output / name
        if state.offset and state.tail_crc is None and checkpoint.records_ends:
            raise CheckpointError(
                f"{output / CHECKPOINT_NAME} is not a valid checkpoint: it records "
                f"{state.offset} bytes for {name} without the seal of their last bytes "
                "that this version records with every length; it was changed since: "
                "start a new export"
            )
        try:
            fd = open_no_follow(path, os.O_RDWR, create=False)
        except FileNotFoundError:
            if state.offset:
                raise CheckpointError(
                    f"{path} is missing but the checkpoint records {state.offset} bytes"
                ) from None
            continue
        try:
            size = os.fstat(fd).st_size
            if size < state.offset:
                raise CheckpointError(
                    f"{path} holds {size} bytes but the checkpoint records {state.offset}: "
                    "the data was changed or lost since; start a new export"
                )
            inside = _inside(fd, state.offset, size, compress=compress)
            if inside is not None:
                raise CheckpointError(
                    f"{output / CHECKPOINT_NAME} is not a valid checkpoint: the "
                    f"{state.offset} bytes it records for {name} end inside {inside}; "
                    "it or the data was changed since: start a new export"
                )
            if state.tail_crc is not None and state.tail_crc != file_seal(
                read_tail(fd, state.offset), state.offset, state.items
            ):
                raise CheckpointError(
                    f"{output / CHECKPOINT_NAME} is not a valid checkpoint: the "
                    f"{state.offset} bytes and {state.items} items it records for {name} "
                    "are not those it wrote there (their last bytes differ); it or the "
                    "data was changed since: start a new export"
                )
        finally:
            os.close(fd)
        if size > state.offset:
            cuts.append((name, size, state.offset))
    for name, size, offset in cuts:
        logger.info("%s: dropping %d bytes written after the last checkpoint", name, size - offset)
        cut_back(output / name, offset)


def reset_parts(output: Path, checkpoint: Checkpoint) -> None:
    """Parquet: finished parts must be there as recorded; unfinished windows start over.

    A part renamed into place by a run that stopped before recording it is removed too:
    its window is fetched again, and the part written anew, from its first page.
    """
    finished = {s.file for s in checkpoint.streams.values() if s.done and not s.split}
    for name, state in checkpoint.files.items():
        path = output / name
        remove_file(output / (name + ".tmp"))
        if name in finished:
            try:
                size = lstat_no_follow(path).st_size
            except FileNotFoundError:
                size = -1
            if size != state.offset:
                raise CheckpointError(
                    f"{path} should be a finished part of {state.offset} bytes "
                    f"({'missing' if size < 0 else f'{size} bytes'}): the data was changed "
                    "or lost since; start a new export"
                )
            continue
        remove_file(path)
        state.offset = state.items = 0
    for stream in checkpoint.streams.values():
        if not stream.done:
            stream.cursor = stream.hits = stream.first_offset = None
            stream.items = stream.pages = stream.duplicates = stream.unidentified = 0
