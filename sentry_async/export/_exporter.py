"""The exporter: plan streams, fan them out, write pages, checkpoint, write the manifest.

How exactly-once works: every stream (one project, or one issue, in one pinned time window)
is walked page by page through ``.raw()``, so each item is written as the exact JSON bytes
Sentry sent. A page is appended to its data file whole (with gzip, as one gzip member).
Periodically, and at every stop, the data files are fsynced and *then* the checkpoint is
atomically replaced with each stream's next cursor and each file's byte length at that
moment; a checkpoint therefore never covers bytes that are not on disk. A resumed run cuts
every data file back to the length in the checkpoint (dropping pages written after it,
e.g. before a ``kill -9``) and asks each unfinished stream for the page at its checkpointed
cursor, which is the page right after the last one kept.

De-duplication goes by each item's ``id``. An item without a usable one (not an object,
no string or integer ``id``, invalid UTF-8) is still written as sent, but it cannot be
de-duplicated, so it is logged per page and counted as ``unidentified`` per stream, in the
checkpoint and in the manifest.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import logging
import os
import re
from collections import Counter
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from types import TracebackType
from typing import Any, Literal

import anyio
import msgspec

from .._protocol.errors import is_query_timeout
from .._protocol.params import check_page_size, check_slug
from ..client import SentryClient
from ..errors import APIError, DecodeError, ErrorDetail
from ..fanout import StreamDone, StreamItem, fan_out
from ..pagination import Page, Paginator
from ._checkpoint import (
    CHECKPOINT_NAME,
    Checkpoint,
    FileState,
    ProjectRef,
    SkippedProject,
    StreamState,
    check_file_name,
    encode_checkpoint,
    load_checkpoint,
    save_checkpoint,
)
from ._errors import (
    CheckpointError,
    ExportDecodeError,
    ExportLockedError,
    ExportRangeError,
    OutputNotEmptyError,
    OutputUnusableError,
    SpecMismatchError,
    UnknownProjectError,
)
from ._progress import Progress
from ._text import printable
from ._windows import (
    Window,
    check_window_count,
    format_utc,
    halve,
    parse_duration,
    parse_utc,
    resolve_range,
    split_windows,
)
from ._writer import JsonlFile, atomic_write, fsync_dir, open_no_follow

__all__ = [
    "DEFAULT_DISCOVER_FIELDS",
    "MANIFEST_NAME",
    "ExportKind",
    "ExportSpec",
    "Exporter",
    "Manifest",
    "ManifestFile",
    "ManifestStream",
    "export",
]

logger = logging.getLogger("sentry_async.export")

ExportKind = Literal["issues", "events", "discover"]
MANIFEST_NAME = "manifest.json"
LOCK_NAME = ".lock"
DEFAULT_DISCOVER_FIELDS = ("id", "timestamp", "title", "project", "event.type", "message")
"""Discover columns exported when none are given."""

_KINDS = frozenset({"issues", "events", "discover"})
_UNSAFE_NAME = re.compile(r"[^A-Za-z0-9._-]")
_FUNCTION = re.compile(r"^\s*[A-Za-z_][A-Za-z0-9_]*\(.*\)\s*$", re.DOTALL)
DEFAULT_PERIOD = timedelta(days=30)
"""The range of an export given neither a start nor a period: the last 30 days."""
MIN_SPLIT_WINDOW = timedelta(minutes=1)
"""Windows the server cannot serve are halved down to this size, then the error stands."""
AGGREGATES_STEM = "aggregates"
"""The one stream (and file stem) of a Discover export with aggregate fields."""


def is_aggregate(field: str) -> bool:
    """``count()``, ``p95(transaction.duration)``, ``equation|...``: a value over many rows."""
    return field.startswith("equation|") or _FUNCTION.match(field) is not None


@dataclass(frozen=True, slots=True)
class ExportSpec:
    """What to export; everything in it (but nothing else) is part of the fingerprint.

    ``kind``: ``"issues"`` (one stream per project over the whole range), ``"events"``
    (full raw event payloads per project, or per issue with ``issues=``) or
    ``"discover"`` (rows of ``fields``, per project; with an aggregate such as
    ``count()`` among them, one query over the whole range and every chosen project,
    since sums of per-window or per-project parts would pass for totals they are not).
    ``projects=None`` means every project of the org, resolved once at the start. The
    range is ``start``/``end`` or ``period`` (ending at ``end`` or now; the last 30 days
    when neither ``start`` nor ``period`` is given), pinned to absolute UTC at the start;
    ``window`` splits it (``None`` or ``"none"``: one window). Times and durations may be
    given as the command line takes them: ``period="14d"``, ``window="12h"``,
    ``start="2026-01-01"`` (UTC when no offset). ``gzip`` writes ``.jsonl.gz`` files.
    """

    kind: ExportKind
    org: str
    projects: tuple[str, ...] | None = None
    issues: tuple[str, ...] | None = None
    start: datetime | str | None = None
    end: datetime | str | None = None
    period: timedelta | str | None = None
    query: str | None = None
    fields: tuple[str, ...] = ()
    window: timedelta | str | None = timedelta(days=1)
    gzip: bool = False
    full: bool = True
    page_size: int = 100

    def __post_init__(self) -> None:
        if self.kind not in _KINDS:
            raise ValueError(f"kind must be one of {sorted(_KINDS)} (got {self.kind!r})")
        check_slug(self.org, "org")
        if self.projects is not None:
            object.__setattr__(self, "projects", _unique(self.projects, "project"))
            if not self.projects:
                raise ValueError("projects must not be empty (use None for every project)")
        if self.issues is not None:
            if self.kind != "events":
                raise ValueError("issues= selects the events of issues: use it with kind='events'")
            ids = _unique(self.issues, "issue")
            if not ids or not all(issue.isdigit() for issue in ids):
                raise ValueError(f"issue ids are numeric (got {list(self.issues)!r})")
            if self.projects is not None:
                raise ValueError("give projects or issues, not both")
            object.__setattr__(self, "issues", ids)
        if self.fields and self.kind != "discover":
            raise ValueError("fields are for kind='discover'")
        if self.kind == "discover" and not self.fields:
            object.__setattr__(self, "fields", DEFAULT_DISCOVER_FIELDS)
        object.__setattr__(self, "fields", tuple(self.fields))
        self._parse_strings()
        start, end, period = self.range_args()
        if period is not None and start is not None:
            raise ValueError("give either period or start, not both")
        if period is None and start is None:
            period = DEFAULT_PERIOD
            object.__setattr__(self, "period", period)
        if period is not None and period <= timedelta(0):
            raise ValueError("period must be positive")
        for name, value in (("start", start), ("end", end)):
            if value is not None and value.tzinfo is None:
                raise ValueError(f"{name} must be timezone-aware")
            if value is not None and _out_of_utc_range(value):
                raise ExportRangeError(name, "out of range once converted to UTC")
        if start is not None and end is not None and start >= end:
            raise ValueError("start must be before end")
        window = self.window_size()
        if window is not None and window < timedelta(seconds=1):
            raise ValueError("window must be at least one second (or None)")
        check_page_size(self.page_size, "page_size")

    def _parse_strings(self) -> None:
        """``"14d"``, ``"2026-01-01"``, ``"none"``: what the command line takes, parsed."""
        for name, parse in (("start", parse_utc), ("end", parse_utc), ("period", parse_duration)):
            value = getattr(self, name)
            if isinstance(value, str):
                try:
                    object.__setattr__(self, name, parse(value))
                except ValueError as exc:
                    raise ValueError(f"{name}: {exc}") from None
        if isinstance(self.window, str):
            text = self.window.strip().lower()
            try:
                window = None if text == "none" else parse_duration(self.window)
            except ValueError as exc:
                raise ValueError(f"window: {exc}") from None
            object.__setattr__(self, "window", window)

    def range_args(self) -> tuple[datetime | None, datetime | None, timedelta | None]:
        """``start``, ``end`` and ``period`` as values (strings were parsed at creation)."""
        start, end, period = self.start, self.end, self.period
        assert not isinstance(start, str) and not isinstance(end, str)
        assert not isinstance(period, str)
        return start, end, period

    def window_size(self) -> timedelta | None:
        """``window`` as a value (a string was parsed at creation)."""
        assert not isinstance(self.window, str)
        return self.window

    def canonical(self, server: str | None = None) -> dict[str, object]:
        """The spec as plain JSON values, in a fixed form: what the fingerprint hashes.

        ``server`` (the base URL, without credentials) is included when given: a resume
        against another Sentry would mix two data sets in one directory.
        """
        start, end, period = self.range_args()
        window = self.window_size()
        out: dict[str, object] = {
            "kind": self.kind,
            "org": self.org,
            "projects": sorted(self.projects) if self.projects is not None else None,
            "issues": sorted(self.issues, key=int) if self.issues is not None else None,
            "start": format_utc(start) if start is not None else None,
            "end": format_utc(end) if end is not None else None,
            "period_seconds": int(period.total_seconds()) if period else None,
            "query": self.query,
            "fields": list(self.fields),
            "window_seconds": int(window.total_seconds()) if window else None,
            "gzip": self.gzip,
            "full": self.full,
            "page_size": self.page_size,
        }
        if server is not None:
            out["server"] = server
        return out

    def fingerprint(self, server: str | None = None) -> str:
        canonical = self.canonical(server)
        return hashlib.sha256(msgspec.json.encode(canonical, order="sorted")).hexdigest()


def _out_of_utc_range(value: datetime) -> bool:
    try:
        value.astimezone(timezone.utc)
    except OverflowError:
        return True
    return False


def _unique(values: Sequence[str | int], name: str) -> tuple[str, ...]:
    if isinstance(values, (str, int)):
        values = [values]
    out: list[str] = []
    for value in values:
        text = check_slug(value, name)
        if text not in out:
            out.append(text)
    return tuple(out)


class ManifestFile(msgspec.Struct, kw_only=True):
    path: str
    items: int
    bytes: int


class ManifestStream(msgspec.Struct, kw_only=True):
    key: str
    file: str
    target: str
    window_start: str
    window_end: str
    items: int
    pages: int
    duplicates: int
    hits: int | None
    unidentified: int = 0
    """Items written without a usable ``id``, hence not de-duplicated."""
    split: bool = False
    """The server could not serve this window; its two halves are streams of their own."""


class Manifest(msgspec.Struct, kw_only=True):
    """``manifest.json``: written once the last stream is complete."""

    format: str
    kind: str
    org: str
    fingerprint: str
    spec: dict[str, object]
    start: str
    end: str
    projects: list[ProjectRef]
    created_at: str
    finished_at: str
    runs: int
    items: int
    bytes: int
    pages: int
    duplicates: int
    files: list[ManifestFile]
    streams: list[ManifestStream]
    unidentified: int = 0
    """Items written without a usable ``id``, hence not de-duplicated (all streams)."""
    renamed: dict[str, str] = {}
    """Projects renamed on the server while exported: old slug -> new slug."""
    skipped: list[SkippedProject] = []
    """Projects left out, each with the reason (an unusable slug); the others are exported."""


class _Id(msgspec.Struct):
    id: str | int | None = None


class _ProjectRow(msgspec.Struct):
    id: str | int | None = None
    slug: Any = None


_id_decoder = msgspec.json.Decoder(_Id)
_manifest_decoder = msgspec.json.Decoder(Manifest)
_project_decoder = msgspec.json.Decoder(_ProjectRow)


def _project_ref(item: bytes) -> tuple[ProjectRef | None, SkippedProject | None]:
    """A row of the projects list as a reference, or why it cannot be used."""
    try:
        row = _project_decoder.decode(item)
    except (msgspec.ValidationError, msgspec.DecodeError, UnicodeDecodeError) as exc:
        return None, SkippedProject(id=None, slug=None, error=f"project row unusable: {exc}")
    pid = str(row.id) if row.id is not None and str(row.id).strip() else None
    slug = row.slug if isinstance(row.slug, str) else None
    if pid is None or slug is None:
        what = "an id" if pid is None else "a string slug"
        shown = slug if slug is not None else repr(row.slug)
        return None, SkippedProject(id=pid, slug=shown, error=f"project has no {what}")
    return ProjectRef(id=pid, slug=slug), None


def _item_id(item: bytes) -> str | int | None:
    """The item's ``id`` for de-duplication; ``None`` when it has no usable one.

    msgspec reports invalid UTF-8 inside a string as ``UnicodeDecodeError``, not as one of
    its own errors, so that is caught too: one odd item must not stop the export. The
    caller writes such an item as it is and reports it.
    """
    try:
        return _id_decoder.decode(item).id
    except (msgspec.ValidationError, msgspec.DecodeError, UnicodeDecodeError):
        return None


def _now_iso() -> str:
    return format_utc(datetime.now(timezone.utc).replace(microsecond=0))


def _file_name(name: str, compress: bool) -> str:
    return _UNSAFE_NAME.sub("_", name) + (".jsonl.gz" if compress else ".jsonl")


_MAX_STEM = 120
"""Longest file name stem taken from a slug (file systems allow 255 bytes)."""


def _project_stems(projects: Sequence[ProjectRef]) -> dict[str, str]:
    """Project id -> a file name stem no other project shares, even ignoring case.

    The stem is the sanitised slug; projects whose stems collide (sanitising, case, or a
    shared slug) get ``-<id>`` appended, and one still colliding a counter, so every
    project has its own file on any file system. A slug nobody shares keeps its name.
    """
    base = {p.id: _UNSAFE_NAME.sub("_", p.slug)[:_MAX_STEM] for p in projects}
    counts = Counter(stem.casefold() for stem in base.values())
    stems = {
        pid: stem if counts[stem.casefold()] == 1 else f"{stem}-{_UNSAFE_NAME.sub('_', pid)}"
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


@dataclass(frozen=True, slots=True)
class _Split:
    """The server cannot serve ``parent``'s window: ``parts`` (its halves) go on instead."""

    parent: StreamState
    parts: tuple[StreamState, ...]
    reason: str


_Item = tuple[StreamState, Page[msgspec.Raw]] | _Split


def unservable_window(error: BaseException) -> bool:
    """Whether Sentry refused a query for its size, so that a narrower window may pass.

    That is the "Query timeout" 400 still there after the client's retries, and
    "Pagination offset too large" for a cursor too deep into one window.
    """
    if not isinstance(error, APIError) or error.status != 400:
        return False
    detail = error.detail
    text = detail.message if isinstance(detail, ErrorDetail) else detail
    if is_query_timeout(error.status, detail):
        return True
    return text is not None and "offset too large" in text.lower()


@dataclass(slots=True)
class _Target:
    name: str
    ref: str


@dataclass
class _Run:
    """Mutable state of one run: open files and the dedupe sets of active streams."""

    files: dict[str, JsonlFile] = field(default_factory=dict)
    open_streams: Counter[str] = field(default_factory=Counter)
    seen: dict[str, set[str | int]] = field(default_factory=dict)
    walking: dict[str, StreamState] = field(default_factory=dict)
    """Fan-out key -> the stream (or half of a split one) it is fetching now."""
    slugs: dict[str, str] | None = None
    last_commit: float = 0.0


class _DirLock:
    """An exclusive ``flock`` on ``DIR/.lock``: two exporters must not share a directory.

    The kernel drops it when the process dies, so a killed run never blocks a resume.
    """

    def __init__(self, directory: Path) -> None:
        self.path = directory / LOCK_NAME
        self._fd: int | None = None

    def __enter__(self) -> _DirLock:
        try:
            import fcntl
        except ImportError:  # pragma: no cover - not POSIX: no lock
            return self
        for _ in range(3):
            fd = open_no_follow(self.path, os.O_RDONLY, create=True)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                os.close(fd)
                raise ExportLockedError(
                    f"another export is running in {self.path.parent} (it holds {LOCK_NAME})"
                ) from None
            if self._is_current(fd):
                self._fd = fd
                return self
            # Its holder removed the file after we opened it: lock the new one instead.
            os.close(fd)
        raise ExportLockedError(f"the lock file {self.path} keeps being replaced")

    def _is_current(self, fd: int) -> bool:
        try:
            return os.stat(self.path, follow_symlinks=False).st_ino == os.fstat(fd).st_ino
        except FileNotFoundError:
            return False

    def remove(self) -> None:
        """Delete the lock file while still holding it: the export is over."""
        if self._fd is not None and self._is_current(self._fd):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.path)

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


class Exporter:
    """Exports ``spec`` into ``output`` through ``client``; :meth:`run` does the work.

    ``resume=True`` continues the export already in ``output`` (refusing if its spec
    differs), or starts one if the directory is empty; ``restart=True`` removes the
    export already there (a failed or stale one, whatever its spec) and starts anew.
    ``concurrency`` bounds the streams fetched at once (they all share the client's rate
    limiter). The checkpoint is written at most every ``commit_interval`` seconds while
    pages arrive, and at every stop. ``now`` pins "now" for ``period`` (tests);
    ``progress`` receives live counts; ``min_window`` is the smallest half a window the
    server cannot serve is split into.

    A new export's range is checked before the directory is created: an empty range, one
    reaching past the calendar, or one needing more than ``MAX_WINDOWS`` windows raises
    :class:`ExportRangeError` and leaves nothing behind.
    """

    def __init__(
        self,
        client: SentryClient,
        spec: ExportSpec,
        output: str | os.PathLike[str],
        *,
        resume: bool = False,
        restart: bool = False,
        concurrency: int = 4,
        progress: Progress | None = None,
        commit_interval: float = 1.0,
        now: datetime | None = None,
        min_window: timedelta = MIN_SPLIT_WINDOW,
    ) -> None:
        if resume and restart:
            raise ValueError("give resume or restart, not both")
        if min_window <= timedelta(0):
            raise ValueError("min_window must be positive")
        if isinstance(concurrency, bool) or concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        if commit_interval < 0:
            raise ValueError("commit_interval must not be negative")
        self.client = client
        self.spec = spec
        self.output = Path(output)
        self.resume = resume
        self.restart = restart
        self.concurrency = concurrency
        self.progress = progress if progress is not None else Progress(spec.kind)
        self.commit_interval = commit_interval
        self.min_window = min_window
        self._now = now
        self._checkpoint: Checkpoint | None = None
        self._range: tuple[datetime, datetime] | None = None
        # Discover rows carry an id only when asked for; without it none can be de-duplicated.
        self._identify = spec.kind != "discover" or "id" in spec.fields
        self._aggregates = spec.kind == "discover" and any(is_aggregate(f) for f in spec.fields)
        self._server = _server_identity(client)
        self._run = _Run()

    @property
    def checkpoint(self) -> Checkpoint | None:
        """The checkpoint as last committed or planned (``None`` before :meth:`run`)."""
        return self._checkpoint

    async def run(self) -> Manifest:
        """Export everything not yet exported; returns the manifest (also written to disk).

        When it ends the lock file is removed, and so is the checkpoint after a success
        (the manifest stays); an export that fails before anything was planned (an
        unknown organization, a rejected token) leaves no file and no directory behind.
        """
        if self.restart or not (self.output / CHECKPOINT_NAME).exists():
            # A new export: a range it cannot export is refused before the directory exists.
            self._range = self._pin_range()
        created = self._make_dir()
        lock = _DirLock(self.output)
        with lock:
            try:
                return await self._run_locked()
            finally:
                lock.remove()
                if created and self._checkpoint is None:
                    with contextlib.suppress(OSError):
                        self.output.rmdir()

    def _make_dir(self) -> bool:
        """Create the output directory if needed; whether it was created."""
        created = not os.path.lexists(self.output)
        try:
            self.output.mkdir(parents=True, exist_ok=True)
        except (FileExistsError, NotADirectoryError):
            raise OutputUnusableError(
                f"{self.output} is not a directory: choose a new or empty directory"
            ) from None
        return created

    async def _run_locked(self) -> Manifest:
        prepared = await self._prepare()
        if isinstance(prepared, Manifest):
            self.progress.begin(
                streams_total=len(prepared.streams),
                streams_done=len(prepared.streams),
                items=prepared.items,
                pages=prepared.pages,
                bytes_=prepared.bytes,
            )
            self.progress.finish()
            return prepared
        checkpoint = self._checkpoint = prepared
        if checkpoint.complete:
            # Written by an earlier version, which kept the checkpoint of a finished export.
            manifest = self._load_manifest() or self._manifest(checkpoint)
            self._begin_progress(checkpoint)
            self.progress.finish()
            return manifest
        await self._export(checkpoint)
        manifest = self._manifest(checkpoint)
        await anyio.to_thread.run_sync(
            atomic_write,
            self.output / MANIFEST_NAME,
            msgspec.json.format(msgspec.json.encode(manifest), indent=2),
        )
        checkpoint.complete = True
        # The manifest is durable: the checkpoint has nothing left to tell.
        await anyio.to_thread.run_sync(_remove_checkpoint, self.output)
        self.progress.finish()
        return manifest

    # Preparing: a new checkpoint, or the old one checked and the files cut back.

    async def _prepare(self) -> Checkpoint | Manifest:
        existing = load_checkpoint(self.output)
        if self.restart:
            await anyio.to_thread.run_sync(self._clear, existing)
            existing = None
        if existing is not None:
            if not self.resume:
                state = "a complete" if existing.complete else "an unfinished"
                raise OutputNotEmptyError(
                    f"{self.output} already holds {state} export; resume it (--resume), "
                    "start it over (--restart) or choose another output directory"
                )
            self._check_spec(existing.spec, existing.fingerprint)
            self._check_targets(existing)
            if not existing.complete:
                existing.runs += 1
                await anyio.to_thread.run_sync(self._truncate_files, existing)
            return existing
        finished = None if self.restart else self._load_manifest()
        if finished is not None:
            if not self.resume:
                raise OutputNotEmptyError(
                    f"{self.output} already holds a complete export; rerun with --resume "
                    "to get its manifest, start over with --restart, or choose another "
                    "output directory"
                )
            self._check_spec(finished.spec, finished.fingerprint)
            return finished
        stray = sorted(
            entry.name
            for entry in self.output.iterdir()
            if entry.name not in (LOCK_NAME, CHECKPOINT_NAME + ".tmp")
        )
        if stray:
            raise OutputNotEmptyError(
                f"{self.output} is not empty ({', '.join(stray[:3])}"
                f"{', ...' if len(stray) > 3 else ''}) and holds no export checkpoint; "
                "choose an empty or new directory"
            )
        checkpoint = await self._plan()
        await anyio.to_thread.run_sync(save_checkpoint, self.output, encode_checkpoint(checkpoint))
        return checkpoint

    def _check_targets(self, checkpoint: Checkpoint) -> None:
        """Every stream's target must be one of the export's projects or issues."""
        if self.spec.issues is not None:
            known = set(self.spec.issues)
        else:
            known = {p.id for p in checkpoint.projects}
            if self._aggregates:
                # One stream for all projects (per project in checkpoints of old versions).
                known |= {",".join(p.id for p in checkpoint.projects), "-1"}
        for stream in checkpoint.streams.values():
            if stream.target not in known:
                raise CheckpointError(
                    f"{self.output / CHECKPOINT_NAME} is not a valid checkpoint: stream "
                    f"{stream.key!r} targets {stream.target!r}, not one of the export's "
                    "projects or issues"
                )

    def _clear(self, existing: Checkpoint | None) -> None:
        """Remove the export in the directory (``restart``): its data, manifest, checkpoint.

        Only files the checkpoint or the manifest name are removed, the checkpoint last, so
        a restart stopped half-way can be run again; anything else makes the directory
        "not empty", as for a new export.
        """
        names = set(existing.files) if existing is not None else set()
        manifest = self._load_manifest()
        if manifest is not None:
            names.update(f.path for f in manifest.files if check_file_name(f.path) is None)
        for name in sorted(names):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.output / name)
        for name in (MANIFEST_NAME, MANIFEST_NAME + ".tmp", CHECKPOINT_NAME + ".tmp"):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.output / name)
        _remove_checkpoint(self.output)

    def _check_spec(self, recorded: dict[str, object], recorded_fingerprint: str) -> None:
        # Checkpoints written before the server was part of the fingerprint lack it.
        server = self._server if "server" in recorded else None
        fingerprint = self.spec.fingerprint(server)
        if recorded_fingerprint == fingerprint:
            return
        now = self.spec.canonical(server)
        keys = sorted(set(recorded) | set(now))
        differences = {
            key: (recorded.get(key), now.get(key))
            for key in keys
            if recorded.get(key) != now.get(key)
        }
        if not differences:
            differences = {"fingerprint": (recorded_fingerprint, fingerprint)}
        raise SpecMismatchError(str(self.output), differences)

    def _truncate_files(self, checkpoint: Checkpoint) -> None:
        """Cut each data file back to its committed length (blocking; runs in a thread)."""
        for name, state in checkpoint.files.items():
            path = self.output / name
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
                if size > state.offset:
                    logger.info(
                        "%s: dropping %d bytes written after the last checkpoint",
                        name,
                        size - state.offset,
                    )
                    os.ftruncate(fd, state.offset)
                    os.fsync(fd)
            finally:
                os.close(fd)

    def _pin_range(self) -> tuple[datetime, datetime]:
        """A new export's absolute range; :class:`ExportRangeError` if it cannot be exported."""
        spec = self.spec
        now = self._now or datetime.now(timezone.utc)
        first, last, period = spec.range_args()
        start, end = resolve_range(start=first, end=last, period=period, now=now)
        if spec.kind != "issues" and not self._aggregates:
            check_window_count(start, end, spec.window_size())
        return start, end

    async def _plan(self) -> Checkpoint:
        spec = self.spec
        start, end = self._range or self._pin_range()
        projects: list[ProjectRef] = []
        skipped: list[SkippedProject] = []
        if spec.issues is not None:
            targets = [_Target(f"issue-{issue}", issue) for issue in spec.issues]
        else:
            projects, skipped = await self._resolve_projects()
            stems = _project_stems(projects)
            projects = [
                ProjectRef(id=p.id, slug=p.slug, file=_file_name(stems[p.id], spec.gzip))
                for p in projects
            ]
            targets = [_Target(stems[project.id], project.id) for project in projects]
        whole = spec.kind == "issues" or self._aggregates
        if self._aggregates:
            ids = "-1" if spec.projects is None else ",".join(p.id for p in projects)
            targets = [_Target(AGGREGATES_STEM, ids)]
        windows = split_windows(start, end, None if whole else spec.window_size())
        streams: dict[str, StreamState] = {}
        files: dict[str, FileState] = {}
        for window in windows:
            for target in targets:
                key = target.name if spec.kind == "issues" else f"{target.name}@{window.key}"
                file = _file_name(target.name, spec.gzip)
                files.setdefault(file, FileState())
                streams[key] = StreamState(
                    key=key,
                    file=file,
                    target=target.ref,
                    window_start=format_utc(window.start),
                    window_end=format_utc(window.end),
                )
        stamp = _now_iso()
        return Checkpoint(
            fingerprint=spec.fingerprint(self._server),
            spec=spec.canonical(self._server),
            start=format_utc(start),
            end=format_utc(end),
            projects=projects,
            skipped=skipped,
            streams=streams,
            files=files,
            created_at=stamp,
            updated_at=stamp,
        )

    async def _resolve_projects(self) -> tuple[list[ProjectRef], list[SkippedProject]]:
        """The projects to export, and those that cannot be (each skipped, not fatal)."""
        rows: list[ProjectRef] = []
        unusable: list[SkippedProject] = []
        paginator = self.client.projects.list(self.spec.org).raw()
        async for page in paginator.pages():
            for item in page.items:
                ref, problem = _project_ref(bytes(item))
                if ref is not None:
                    rows.append(ref)
                if problem is not None:
                    unusable.append(problem)
        if self.spec.projects is None:
            if not rows and not unusable:
                raise UnknownProjectError(f"organization {self.spec.org!r} has no projects")
            chosen_rows, skipped = rows, unusable
        else:
            by_name = {row.slug: row for row in rows}
            by_name.update({row.id: row for row in rows})
            bad = {p.slug: p for p in unusable if p.slug is not None}
            bad.update({p.id: p for p in unusable if p.id is not None})
            missing = [n for n in self.spec.projects if n not in by_name and n not in bad]
            if missing:
                raise UnknownProjectError(
                    f"unknown project(s) in organization {self.spec.org!r}: {', '.join(missing)}"
                )
            chosen = {by_name[n].id: by_name[n] for n in self.spec.projects if n in by_name}
            chosen_rows = list(chosen.values())
            skipped = list(dict.fromkeys(bad[n] for n in self.spec.projects if n in bad))
        usable: list[ProjectRef] = []
        for row in chosen_rows:
            try:
                check_slug(row.slug, "project")
            except ValueError as exc:
                skipped.append(SkippedProject(id=row.id, slug=row.slug, error=str(exc)))
                continue
            usable.append(row)
        for project in skipped:
            logger.warning(
                "skipping project %r (id %r): %s", project.slug, project.id, project.error
            )
        return sorted(usable, key=lambda project: (project.slug, project.id)), skipped

    # Exporting.

    def _begin_progress(self, checkpoint: Checkpoint) -> None:
        streams = checkpoint.streams.values()
        self.progress.begin(
            streams_total=len(checkpoint.streams),
            streams_done=sum(1 for s in streams if s.done),
            items=sum(s.items for s in streams),
            pages=sum(s.pages for s in streams),
            bytes_=sum(f.offset for f in checkpoint.files.values()),
            hits={s.key: s.hits for s in streams if s.hits is not None},
        )

    async def _export(self, checkpoint: Checkpoint) -> None:
        self._begin_progress(checkpoint)
        pending = [state for state in checkpoint.streams.values() if not state.done]
        run = self._run
        run.open_streams = Counter(state.file for state in pending)
        run.last_commit = anyio.current_time()
        merged = fan_out(
            ((state.key, self._factory(state)) for state in pending),
            concurrency=self.concurrency,
            buffer=self.concurrency,
            errors="raise",
        )
        try:
            async with merged:
                async for event in merged.events():
                    if isinstance(event, StreamItem):
                        if isinstance(event.item, _Split):
                            self._apply_split(event.item)
                        else:
                            state, page = event.item
                            await self._write_page(state, page, root=event.key)
                    else:
                        await self._finish_stream(checkpoint.streams[event.key], event)
                    if anyio.current_time() - run.last_commit >= self.commit_interval:
                        await self._commit()
        except DecodeError as exc:
            key = next((k for k, error in merged.failures.items() if error is exc), "?")
            state = run.walking.get(key) or checkpoint.streams.get(key)
            name = state.key if state else key
            raise ExportDecodeError(name, state.cursor if state else None, exc.reason) from exc
        finally:
            with anyio.CancelScope(shield=True):
                await self._commit()
                await anyio.to_thread.run_sync(self._close_all)

    def _factory(self, state: StreamState) -> Any:
        def start() -> AsyncIterator[_Item]:
            return self._pages(state)

        return start

    async def _pages(self, state: StreamState) -> AsyncIterator[_Item]:
        self.progress.stream_started()
        async for item in self._walk(state, state.key):
            yield item

    async def _walk(self, state: StreamState, root: str) -> AsyncIterator[_Item]:
        """The pages of ``state``; if the server cannot serve its window, of its halves."""
        self._run.walking[root] = state
        try:
            async for page in self._paginator(state).pages():
                yield state, page
            return
        except APIError as exc:
            parts = self._halves(state, exc)
            if parts is None:
                raise
            reason = str(exc)
        yield _Split(state, parts, reason)
        for part in parts:
            async for item in self._walk(part, root):
                yield item

    def _halves(self, state: StreamState, error: APIError) -> tuple[StreamState, ...] | None:
        # Issues are one stream over the range, and aggregates must not be cut into parts.
        if self.spec.kind == "issues" or self._aggregates or not unservable_window(error):
            return None
        window = Window(_parse_stamp(state.window_start), _parse_stamp(state.window_end))
        halves = halve(window, self.min_window)
        if halves is None:
            return None
        prefix = state.key.rpartition("@")[0] or state.key
        return tuple(
            StreamState(
                key=f"{prefix}@{format_utc(half.start)}..{format_utc(half.end)}",
                file=state.file,
                target=state.target,
                window_start=format_utc(half.start),
                window_end=format_utc(half.end),
            )
            for half in halves
        )

    def _apply_split(self, split: _Split) -> None:
        """Record the halves in the checkpoint in place of their parent.

        Runs where pages are written, after every page of the parent: the halves ask for
        the parent's items again, so those already in the file (from ``first_offset`` on)
        are skipped, in this run and in a resumed one.
        """
        assert self._checkpoint is not None
        parent = split.parent
        since = parent.dedupe_from if parent.dedupe_from is not None else parent.first_offset
        if since is None and parent.items:
            # Written by an earlier version, which did not record where the parent began.
            since = 0
        for part in split.parts:
            part.dedupe_from = since
            self._checkpoint.streams[part.key] = part
        parent.split = True
        parent.done = True
        self._run.seen.pop(parent.key, None)
        logger.warning(
            "%s: the server cannot serve this window (%s); going on with %s",
            parent.key,
            printable(split.reason),
            " and ".join(part.key for part in split.parts),
        )
        self.progress.stream_split(len(split.parts))

    def _paginator(self, state: StreamState) -> Paginator[msgspec.Raw]:
        spec = self.spec
        start = _parse_stamp(state.window_start)
        end = _parse_stamp(state.window_end)
        if spec.kind == "issues":
            return self.client.issues.list(
                spec.org,
                query=spec.query if spec.query is not None else "",
                project=[state.target],
                start=start,
                end=end,
                sort="new",
                page_size=spec.page_size,
                cursor=state.cursor,
            ).raw()
        if spec.kind == "events":
            if spec.issues is not None:
                return self.client.events.for_issue(
                    spec.org,
                    state.target,
                    full=spec.full,
                    query=spec.query,
                    start=start,
                    end=end,
                    page_size=spec.page_size,
                    cursor=state.cursor,
                ).raw()
            return self.client.events.for_project(
                spec.org,
                self._slugs()[state.target],
                full=spec.full,
                query=spec.query,
                start=start,
                end=end,
                page_size=spec.page_size,
                cursor=state.cursor,
            ).raw()
        sort = [key for key in ("-timestamp", "id") if key.lstrip("-") in spec.fields]
        return self.client.discover.query(
            spec.org,
            fields=list(spec.fields),
            query=spec.query,
            sort=sort or None,
            project=state.target.split(","),
            start=start,
            end=end,
            page_size=spec.page_size,
            cursor=state.cursor,
        ).raw()

    def _slugs(self) -> dict[str, str]:
        assert self._checkpoint is not None
        if self._run.slugs is None:
            # Two projects sharing a slug are told apart by id (Sentry takes either).
            shared = Counter(p.slug for p in self._checkpoint.projects)
            self._run.slugs = {
                p.id: p.slug if shared[p.slug] == 1 else p.id for p in self._checkpoint.projects
            }
        return self._run.slugs

    async def _write_page(self, state: StreamState, page: Page[msgspec.Raw], *, root: str) -> None:
        if page.cursor != state.cursor:
            raise CheckpointError(
                f"stream {state.key}: got the page at {page.cursor!r} while expecting "
                f"{state.cursor!r}"
            )
        seen = self._run.seen.get(state.key)
        if seen is None:
            seen = self._run.seen[state.key] = await self._seen_before(state)
        lines: list[bytes] = []
        dupes = unidentified = 0
        for raw in page.items:
            item = bytes(raw)
            if not self._identify:
                lines.append(item)
                continue
            item_id = _item_id(item)
            if item_id is None:
                unidentified += 1
            elif item_id in seen:
                dupes += 1
                continue
            else:
                seen.add(item_id)
            lines.append(item)
        if dupes:
            logger.warning("%s: dropped %d duplicate item(s) at %r", state.key, dupes, page.cursor)
        if unidentified:
            logger.warning(
                "%s: %d item(s) at %s have no usable id (written as sent, not de-duplicated)",
                state.key,
                unidentified,
                f"cursor {page.cursor!r}" if page.cursor is not None else "the first page",
            )
        assert self._checkpoint is not None
        file_state = self._checkpoint.files[state.file]
        # The page and the state that records it change together or not at all.
        with anyio.CancelScope(shield=True):
            handle = await self._open(state.file, file_state)
            if state.first_offset is None:
                state.first_offset = file_state.offset
            written = await anyio.to_thread.run_sync(_encode_and_append, handle, lines)
            file_state.offset = handle.offset
            file_state.items += len(lines)
            state.cursor = page.next_cursor
            state.done = page.next_cursor is None
            state.pages += 1
            state.items += len(lines)
            state.duplicates += dupes
            state.unidentified += unidentified
            if state.hits is None and page.hits is not None:
                state.hits = page.hits
        self.progress.page(state.key, items=len(lines), bytes_=written, hits=page.hits, dupes=dupes)
        if state.done and state.key != root:
            # A half of a split window: its stream goes on with the next half.
            self._run.seen.pop(state.key, None)
            self.progress.part_done()

    async def _seen_before(self, state: StreamState) -> set[str | int]:
        """Ids a half of a split window must not write again: those of its parent."""
        assert self._checkpoint is not None
        if state.dedupe_from is None or not self._identify:
            return set()
        handle = self._run.files.get(state.file)
        if handle is not None:
            await anyio.to_thread.run_sync(handle.sync)
        end = self._checkpoint.files[state.file].offset
        return await anyio.to_thread.run_sync(
            _ids_in_file, self.output / state.file, state.dedupe_from, end, self.spec.gzip
        )

    async def _open(self, name: str, file_state: FileState) -> JsonlFile:
        handle = self._run.files.get(name)
        if handle is None:
            handle = JsonlFile(self.output / name, compress=self.spec.gzip)
            await anyio.to_thread.run_sync(handle.open, file_state.offset)
            self._run.files[name] = handle
        return handle

    async def _finish_stream(self, state: StreamState, event: StreamDone[str]) -> None:
        # The stream's last page said "no next page", so state.done is already set.
        state.done = True
        self._run.seen.pop(state.key, None)
        self.progress.stream_done(counted=state.split)
        run = self._run
        run.open_streams[state.file] -= 1
        if run.open_streams[state.file] <= 0:
            handle = run.files.pop(state.file, None)
            if handle is not None:
                with anyio.CancelScope(shield=True):
                    await anyio.to_thread.run_sync(_sync_and_close, handle)

    async def _commit(self) -> None:
        """fsync the data, then atomically replace the checkpoint; in that order."""
        checkpoint = self._checkpoint
        if checkpoint is None:
            return
        checkpoint.updated_at = _now_iso()
        data = encode_checkpoint(checkpoint)
        files = list(self._run.files.values())
        await anyio.to_thread.run_sync(_sync_then_save, files, self.output, data)
        self._run.last_commit = anyio.current_time()

    def _close_all(self) -> None:
        for handle in self._run.files.values():
            handle.close()
        self._run.files.clear()

    # The manifest.

    def _manifest(self, checkpoint: Checkpoint) -> Manifest:
        streams = list(checkpoint.streams.values())
        return Manifest(
            format=checkpoint.format,
            kind=self.spec.kind,
            org=self.spec.org,
            fingerprint=checkpoint.fingerprint,
            spec=checkpoint.spec,
            start=checkpoint.start,
            end=checkpoint.end,
            projects=checkpoint.projects,
            created_at=checkpoint.created_at,
            finished_at=_now_iso(),
            runs=checkpoint.runs,
            items=sum(s.items for s in streams),
            bytes=sum(f.offset for f in checkpoint.files.values()),
            pages=sum(s.pages for s in streams),
            duplicates=sum(s.duplicates for s in streams),
            unidentified=sum(s.unidentified for s in streams),
            renamed={
                old: new
                for (org, old), new in self.client.renamed_projects.items()
                if org == self.spec.org
            },
            skipped=checkpoint.skipped,
            files=[
                ManifestFile(path=name, items=state.items, bytes=state.offset)
                for name, state in sorted(checkpoint.files.items())
            ],
            streams=[
                ManifestStream(
                    key=s.key,
                    file=s.file,
                    target=s.target,
                    window_start=s.window_start,
                    window_end=s.window_end,
                    items=s.items,
                    pages=s.pages,
                    duplicates=s.duplicates,
                    hits=s.hits,
                    unidentified=s.unidentified,
                    split=s.split,
                )
                for s in streams
            ],
        )

    def _load_manifest(self) -> Manifest | None:
        try:
            fd = open_no_follow(
                self.output / MANIFEST_NAME, os.O_RDONLY, create=False, single_link=False
            )
        except FileNotFoundError:
            return None
        with os.fdopen(fd, "rb") as handle:
            data = handle.read()
        try:
            return _manifest_decoder.decode(data)
        except (msgspec.ValidationError, msgspec.DecodeError):
            return None


def _server_identity(client: SentryClient) -> str:
    """The client's base URL as the fingerprint records it: no credentials, query or slash."""
    url = client.base_url.with_user(None).with_query(None).with_fragment(None)
    return str(url).rstrip("/")


def _parse_stamp(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _ids_in_file(path: Path, start: int, end: int, compress: bool) -> set[str | int]:
    """The ids of the items written to ``path`` between two page boundaries."""
    if end <= start:
        return set()
    fd = open_no_follow(path, os.O_RDONLY, create=False, single_link=False)
    with os.fdopen(fd, "rb") as handle:
        handle.seek(start)
        data = handle.read(end - start)
    if compress:
        data = gzip.decompress(data)
    ids: set[str | int] = set()
    for line in data.splitlines():
        item_id = _item_id(line)
        if item_id is not None:
            ids.add(item_id)
    return ids


def _remove_checkpoint(directory: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(directory / CHECKPOINT_NAME)
    fsync_dir(directory)


def _encode_and_append(handle: JsonlFile, lines: list[bytes]) -> int:
    return handle.append(handle.encode_page(lines))


def _sync_and_close(handle: JsonlFile) -> None:
    handle.sync()
    handle.close()


def _sync_then_save(files: list[JsonlFile], directory: Path, data: bytes) -> None:
    for handle in files:
        handle.sync()
    fsync_dir(directory)
    save_checkpoint(directory, data)


async def export(
    client: SentryClient,
    spec: ExportSpec,
    output: str | os.PathLike[str],
    *,
    resume: bool = False,
    restart: bool = False,
    concurrency: int = 4,
    progress: Progress | None = None,
    commit_interval: float = 1.0,
    now: datetime | None = None,
    min_window: timedelta = MIN_SPLIT_WINDOW,
) -> Manifest:
    """Run one export to the end (see :class:`Exporter`); returns its manifest."""
    exporter = Exporter(
        client,
        spec,
        output,
        resume=resume,
        restart=restart,
        concurrency=concurrency,
        progress=progress,
        commit_interval=commit_interval,
        now=now,
        min_window=min_window,
    )
    return await exporter.run()
