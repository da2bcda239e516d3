"""Incremental exports: each run takes what arrived since the last one, exactly once.

A state file records the previous run's high-water mark (the end of its range) and the
ids it wrote with times inside the overlap before that mark. The next run's range starts
``overlap`` before the mark, so events that arrive late (timestamped inside the previous
range, but not yet there when it ran) are picked up, and the recorded ids keep the events
the previous run already wrote out of this one. Events timestamped more than ``overlap``
before the mark that arrive after it are missed: no run looks that far back again.

Each run writes an ordinary export into its own directory, ``run-<end>``, under the
output directory, so a run never rewrites an earlier one's files. A run is recorded in
the state file as pending before it starts; a run that stops (crash, ``kill -9``, an
error) is resumed by the next invocation, with the same range and the same ids to skip,
before any new run begins.
"""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import importlib
import io
import os
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path

import msgspec

from ._checkpoint import check_file_name, read_versioned
from ._errors import (
    CheckpointError,
    NothingToExportError,
    OutputUnusableError,
    SpecMismatchError,
)
from ._files import id_key, id_text, item_id, parse_stamp, read_segment
from ._lock import DirLock
from ._manifest import Manifest
from ._spec import ExportSpec, is_aggregate
from ._windows import format_utc, resolve_range
from ._writer import atomic_write, check_subdirectory, open_no_follow

__all__ = [
    "DEFAULT_OVERLAP",
    "IncrementalRun",
    "IncrementalState",
    "check_incremental",
    "check_state_path",
]

DEFAULT_OVERLAP = timedelta(hours=1)
"""How far before the previous run's end each run looks again, for events that arrive late."""
STATE_FORMAT = "sentry-async-incremental/1"
MAX_RUNS_KEPT = 100
"""Runs listed in the state file (the oldest are dropped; their directories stay)."""
_RANGE_KEYS = ("start", "end", "period_seconds")


class IncrementalRun(msgspec.Struct, kw_only=True):
    """One run: its directory under the output directory, its range, what it wrote."""

    directory: str
    start: str
    end: str
    items: int | None = None
    duplicates: int | None = None


class IncrementalState(msgspec.Struct, kw_only=True):
    """The state file. ``seen``: id -> time of every item written within the overlap (an
    id longer than Sentry's as the text of its digest, see :func:`~._files.id_text`)."""

    format: str = STATE_FORMAT
    fingerprint: str
    spec: dict[str, object]
    high_water: str | None = None
    seen_from: str | None = None
    """The earliest time ``seen`` covers: a run never looks back before it."""
    seen: dict[str, str] = {}
    pending: IncrementalRun | None = None
    runs: list[IncrementalRun] = []


_state_decoder = msgspec.json.Decoder(IncrementalState)


class _Stamped(msgspec.Struct):
    dateCreated: str | None = None
    timestamp: str | float | None = None


_stamped_decoder = msgspec.json.Decoder(_Stamped)


def check_incremental(spec: ExportSpec, overlap: timedelta) -> None:
    """What an incremental export needs: items that arrive once, with an id and a time."""
    if overlap < timedelta(0):
        raise ValueError("overlap must not be negative")
    if spec.kind == "issues":
        raise ValueError(
            "incremental exports are for events and Discover rows; issues change after "
            "they arrive, export them whole"
        )
    if spec.kind == "discover":
        if any(is_aggregate(field) for field in spec.fields):
            raise ValueError("incremental exports cannot hold aggregates (count(), p95(), ...)")
        missing = [name for name in ("id", "timestamp") if name not in spec.fields]
        if missing:
            raise ValueError(
                f"an incremental Discover export needs the fields id and timestamp "
                f"(missing: {', '.join(missing)})"
            )
    if spec.end is not None:
        raise ValueError("an incremental export's runs end when they start: give no end")


def check_state_path(given: str | os.PathLike[str]) -> Path:
    """The state file's path; refused when it could never be written, before anything is
    created: empty, a directory, or in a directory that does not exist."""
    if not os.fspath(given).strip():
        raise ValueError("the state file's path is empty")
    path = Path(given)
    if path.is_dir():
        raise OutputUnusableError(
            f"{path} is a directory: give the path of a file, e.g. {path / 'state.json'}"
        )
    parent = path.parent
    if not parent.is_dir():
        raise OutputUnusableError(
            f"the state file {path} cannot be created: {parent} is not a directory"
        )
    return path


def _fingerprint(spec: ExportSpec, server: str) -> tuple[str, dict[str, object]]:
    """The spec without its range: what must stay the same from one run to the next."""
    canonical = {k: v for k, v in spec.canonical(server).items() if k not in _RANGE_KEYS}
    digest = hashlib.sha256(msgspec.json.encode(canonical, order="sorted")).hexdigest()
    return digest, canonical


def load_state(path: Path) -> IncrementalState | None:
    state = read_versioned(path, _state_decoder, STATE_FORMAT, "incremental state file")
    if state is None:
        return None
    run = state.pending
    problem = None if run is None else check_file_name(run.directory)
    stamps = [state.high_water, state.seen_from, *(state.seen.values())]
    if run is not None:
        stamps += [run.start, run.end]
    if problem is None and not all(_valid_stamp(s) for s in stamps if s is not None):
        problem = "holds a time that is not an ISO UTC time"
    if problem is not None:
        raise CheckpointError(f"{path} is not a valid incremental state file: it {problem}")
    return state


def _valid_stamp(text: str) -> bool:
    try:
        return parse_stamp(text).tzinfo is not None
    except ValueError:
        return False


def save_state(path: Path, state: IncrementalState) -> None:
    atomic_write(path, msgspec.json.format(msgspec.json.encode(state), indent=1))


def plan_run(
    spec: ExportSpec, state: IncrementalState, overlap: timedelta, now: datetime
) -> IncrementalRun:
    """The next run's range: from ``overlap`` before the last run's end (the first run:
    the spec's start or period) to now."""
    end = now.astimezone(timezone.utc).replace(microsecond=0)
    if state.high_water is None:
        first, _, period = spec.range_args()
        start, end = resolve_range(start=first, end=end, period=period, now=end)
    else:
        if end <= parse_stamp(state.high_water):
            raise NothingToExportError(state.high_water, format_utc(end))
        start = parse_stamp(state.high_water) - overlap
        if state.seen_from is not None:
            # The ids kept cover no more than this: looking further back would write again.
            start = max(start, parse_stamp(state.seen_from))
    if start >= end:
        raise ValueError(
            f"the first run's range is empty ({format_utc(start)} .. {format_utc(end)})"
        )
    return IncrementalRun(
        directory=f"run-{end.strftime('%Y%m%dT%H%M%SZ')}",
        start=format_utc(start),
        end=format_utc(end),
    )


def held_back(state: IncrementalState, run: IncrementalRun, overlap: timedelta) -> str | None:
    """Where ``run`` would start with the full ``overlap``, when it starts later: the ids
    kept do not reach that far back (an earlier run had a narrower overlap), and looking
    further back would write again what earlier runs wrote."""
    if state.high_water is None:
        return None
    asked = parse_stamp(state.high_water) - overlap
    return None if parse_stamp(run.start) <= asked else format_utc(asked)


def run_spec(spec: ExportSpec, run: IncrementalRun) -> ExportSpec:
    return dataclasses.replace(
        spec, start=parse_stamp(run.start), end=parse_stamp(run.end), period=None
    )


def record_run(
    state: IncrementalState,
    run: IncrementalRun,
    manifest: Manifest,
    stamped: Iterator[tuple[str, datetime | None]],
    overlap: timedelta,
) -> None:
    """The run is complete: move the high-water mark and keep the ids within the overlap."""
    end = parse_stamp(run.end)
    # Whole seconds, as the next run's start is pinned: its range begins no earlier.
    keep_from = (end - overlap).replace(microsecond=0)
    seen = {key: when for key, when in state.seen.items() if parse_stamp(when) >= keep_from}
    for key, when in stamped:
        # An item without a readable time is kept as if written at the end of the range.
        moment = end if when is None else when
        if moment >= keep_from:
            seen[key] = format_utc(moment)
    state.seen = seen
    # The ids kept cover no further back than they did before this run: an overlap wider
    # than the last one's reaches back only once later runs have kept ids that far.
    covered = keep_from if state.seen_from is None else max(keep_from, parse_stamp(state.seen_from))
    state.seen_from = format_utc(covered)
    state.high_water = run.end
    run.items, run.duplicates = manifest.items, manifest.duplicates
    state.runs = [*state.runs, run][-MAX_RUNS_KEPT:]
    state.pending = None


def _time(value: str | float | None) -> datetime | None:
    if value is None:
        return None
    try:
        if isinstance(value, (int, float)):
            return datetime.fromtimestamp(value, timezone.utc)
        stamp = parse_stamp(value)
    except (ValueError, OverflowError, OSError):
        return None
    return stamp if stamp.tzinfo is not None else stamp.replace(tzinfo=timezone.utc)


def _state_id(found: str) -> str:
    """An id as the state keeps it: a long one as its digest, which is all a run compares."""
    return id_text(id_key(found))


_PARQUET_BATCH = 4096
"""Rows of a Parquet part read back at a time."""


def stamped_items(directory: Path, manifest: Manifest) -> Iterator[tuple[str, datetime | None]]:
    """``(id, time)`` of every item of a finished run, read back from its files (an id
    longer than Sentry's as the text of its digest). Files are streamed, a line or a
    Parquet batch at a time: a run's files may be gigabytes, of which only ids are kept."""
    for file in manifest.files:
        path = directory / file.path
        if file.path.endswith(".parquet"):
            yield from _parquet_stamps(path)
            continue
        with read_segment(path, 0, file.bytes, file.path.endswith(".gz")) as stream:
            if ".csv" in file.path:
                text = io.TextIOWrapper(stream, encoding="utf-8", newline="")
                for row in csv.DictReader(text):
                    if row.get("id"):
                        yield _state_id(row["id"]), _time(row.get("timestamp") or None)
                continue
            for line in stream:
                line = line.rstrip(b"\r\n")
                try:
                    item = _stamped_decoder.decode(line)
                except (msgspec.ValidationError, msgspec.DecodeError, UnicodeDecodeError):
                    continue
                found = item_id(line)  # as the run that wrote it read it
                if found is not None:
                    yield _state_id(str(found)), _time(item.dateCreated or item.timestamp)


def _parquet_stamps(path: Path) -> Iterator[tuple[str, datetime | None]]:
    """A Parquet part's ``(id, time)``, its two columns read a batch at a time."""
    pq = importlib.import_module("pyarrow.parquet")
    fd = open_no_follow(path, os.O_RDONLY, create=False, single_link=False)
    with os.fdopen(fd, "rb") as handle:
        part = pq.ParquetFile(handle)
        for batch in part.iter_batches(batch_size=_PARQUET_BATCH, columns=["id", "timestamp"]):
            ids, stamps = batch.column(0).to_pylist(), batch.column(1).to_pylist()
            for found, when in zip(ids, stamps, strict=True):
                stamp = when if isinstance(when, datetime) else _time(when)
                yield _state_id(str(found)), stamp


def base_directory(output: Path) -> DirLock:
    """The output directory, created if needed, locked for one incremental run at a time."""
    try:
        output.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        raise OutputUnusableError(f"{output} is not a directory") from None
    return DirLock(output)


def run_directory(output: Path, run: IncrementalRun) -> Path:
    """``run``'s directory under ``output``, refused when its name holds anything but a
    directory: a symlink there (its name is in the state file, so it can be planted for a
    pending run) would take the run, and a resume's cut-backs, to wherever it points.

    Checked under the locked ``output``, whose descriptor the run's directory is then
    opened from without following a link (see :func:`~._writer.pin_directory`): one
    swapped for a link later takes nothing anywhere either."""
    return check_subdirectory(output / run.directory)


def check_state(
    path: Path, state: IncrementalState, fingerprint: str, canonical: dict[str, object]
) -> None:
    if state.fingerprint == fingerprint:
        return
    keys = sorted(set(state.spec) | set(canonical))
    differences = {
        key: (state.spec.get(key), canonical.get(key))
        for key in keys
        if state.spec.get(key) != canonical.get(key)
    }
    raise SpecMismatchError(
        str(path), differences or {"fingerprint": (state.fingerprint, fingerprint)}
    )


def new_state(spec: ExportSpec, server: str) -> tuple[IncrementalState, str, dict[str, object]]:
    fingerprint, canonical = _fingerprint(spec, server)
    return IncrementalState(fingerprint=fingerprint, spec=canonical), fingerprint, canonical
