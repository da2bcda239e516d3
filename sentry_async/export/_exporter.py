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

from .._protocol.params import check_page_size, check_slug
from ..client import SentryClient
from ..errors import DecodeError
from ..fanout import StreamDone, StreamItem, fan_out
from ..pagination import Page, Paginator
from ._checkpoint import (
    CHECKPOINT_NAME,
    Checkpoint,
    FileState,
    ProjectRef,
    StreamState,
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
    SpecMismatchError,
    UnknownProjectError,
)
from ._progress import Progress
from ._windows import check_window_count, format_utc, resolve_range, split_windows
from ._writer import JsonlFile, atomic_write, fsync_dir

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


@dataclass(frozen=True, slots=True)
class ExportSpec:
    """What to export; everything in it (but nothing else) is part of the fingerprint.

    ``kind``: ``"issues"`` (one stream per project over the whole range), ``"events"``
    (full raw event payloads per project, or per issue with ``issues=``) or
    ``"discover"`` (rows of ``fields``, per project). ``projects=None`` means every project
    of the org, resolved once at the start. The range is ``start``/``end`` or ``period``
    (ending at ``end`` or now), pinned to absolute UTC at the start; ``window`` splits it
    (``None``: one window). ``gzip`` writes ``.jsonl.gz`` files.
    """

    kind: ExportKind
    org: str
    projects: tuple[str, ...] | None = None
    issues: tuple[str, ...] | None = None
    start: datetime | None = None
    end: datetime | None = None
    period: timedelta | None = None
    query: str | None = None
    fields: tuple[str, ...] = ()
    window: timedelta | None = timedelta(days=1)
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
        if self.period is not None and self.start is not None:
            raise ValueError("give either period or start, not both")
        if self.period is None and self.start is None:
            raise ValueError("an export needs a time range: start (and end) or period")
        if self.period is not None and self.period <= timedelta(0):
            raise ValueError("period must be positive")
        for name, value in (("start", self.start), ("end", self.end)):
            if value is not None and value.tzinfo is None:
                raise ValueError(f"{name} must be timezone-aware")
            if value is not None and _out_of_utc_range(value):
                raise ExportRangeError(name, "out of range once converted to UTC")
        if self.start is not None and self.end is not None and self.start >= self.end:
            raise ValueError("start must be before end")
        if self.window is not None and self.window < timedelta(seconds=1):
            raise ValueError("window must be at least one second (or None)")
        check_page_size(self.page_size, "page_size")

    def canonical(self) -> dict[str, object]:
        """The spec as plain JSON values, in a fixed form: what the fingerprint hashes."""
        return {
            "kind": self.kind,
            "org": self.org,
            "projects": sorted(self.projects) if self.projects is not None else None,
            "issues": sorted(self.issues, key=int) if self.issues is not None else None,
            "start": format_utc(self.start) if self.start is not None else None,
            "end": format_utc(self.end) if self.end is not None else None,
            "period_seconds": int(self.period.total_seconds()) if self.period else None,
            "query": self.query,
            "fields": list(self.fields),
            "window_seconds": int(self.window.total_seconds()) if self.window else None,
            "gzip": self.gzip,
            "full": self.full,
            "page_size": self.page_size,
        }

    def fingerprint(self) -> str:
        return hashlib.sha256(msgspec.json.encode(self.canonical(), order="sorted")).hexdigest()


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


class _Id(msgspec.Struct):
    id: str | int | None = None


class _ProjectRow(msgspec.Struct):
    id: str | int
    slug: str


_id_decoder = msgspec.json.Decoder(_Id)
_manifest_decoder = msgspec.json.Decoder(Manifest)
_project_decoder = msgspec.json.Decoder(_ProjectRow)


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
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            raise ExportLockedError(
                f"another export is running in {self.path.parent} (it holds {LOCK_NAME})"
            ) from None
        self._fd = fd
        return self

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
    differs), or starts one if the directory is empty. ``concurrency`` bounds the streams
    fetched at once (they all share the client's rate limiter). The checkpoint is written
    at most every ``commit_interval`` seconds while pages arrive, and at every stop.
    ``now`` pins "now" for ``period`` (tests); ``progress`` receives live counts.

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
        concurrency: int = 4,
        progress: Progress | None = None,
        commit_interval: float = 1.0,
        now: datetime | None = None,
    ) -> None:
        if isinstance(concurrency, bool) or concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        if commit_interval < 0:
            raise ValueError("commit_interval must not be negative")
        self.client = client
        self.spec = spec
        self.output = Path(output)
        self.resume = resume
        self.concurrency = concurrency
        self.progress = progress if progress is not None else Progress(spec.kind)
        self.commit_interval = commit_interval
        self._now = now
        self._checkpoint: Checkpoint | None = None
        self._range: tuple[datetime, datetime] | None = None
        # Discover rows carry an id only when asked for; without it none can be de-duplicated.
        self._identify = spec.kind != "discover" or "id" in spec.fields
        self._run = _Run()

    @property
    def checkpoint(self) -> Checkpoint | None:
        """The checkpoint as last committed or planned (``None`` before :meth:`run`)."""
        return self._checkpoint

    async def run(self) -> Manifest:
        """Export everything not yet exported; returns the manifest (also written to disk)."""
        if not (self.output / CHECKPOINT_NAME).exists():
            # A new export: a range it cannot export is refused before the directory exists.
            self._range = self._pin_range()
        self.output.mkdir(parents=True, exist_ok=True)
        with _DirLock(self.output):
            checkpoint = await self._prepare()
            self._checkpoint = checkpoint
            if checkpoint.complete:
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
            checkpoint.updated_at = _now_iso()
            await anyio.to_thread.run_sync(
                save_checkpoint, self.output, encode_checkpoint(checkpoint)
            )
            self.progress.finish()
            return manifest

    # Preparing: a new checkpoint, or the old one checked and the files cut back.

    async def _prepare(self) -> Checkpoint:
        existing = load_checkpoint(self.output)
        if existing is not None:
            if not self.resume:
                state = "a complete" if existing.complete else "an unfinished"
                raise OutputNotEmptyError(
                    f"{self.output} already holds {state} export; resume it (--resume) "
                    "or choose another output directory"
                )
            self._check_spec(existing)
            if not existing.complete:
                existing.runs += 1
                await anyio.to_thread.run_sync(self._truncate_files, existing)
            return existing
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

    def _check_spec(self, existing: Checkpoint) -> None:
        fingerprint = self.spec.fingerprint()
        if existing.fingerprint == fingerprint:
            return
        now = self.spec.canonical()
        keys = sorted(set(existing.spec) | set(now))
        differences = {
            key: (existing.spec.get(key), now.get(key))
            for key in keys
            if existing.spec.get(key) != now.get(key)
        }
        if not differences:
            differences = {"fingerprint": (existing.fingerprint, fingerprint)}
        raise SpecMismatchError(str(self.output), differences)

    def _truncate_files(self, checkpoint: Checkpoint) -> None:
        """Cut each data file back to its committed length (blocking; runs in a thread)."""
        for name, state in checkpoint.files.items():
            path = self.output / name
            try:
                size = path.stat().st_size
            except FileNotFoundError:
                size = 0
                if state.offset:
                    raise CheckpointError(
                        f"{path} is missing but the checkpoint records {state.offset} bytes"
                    ) from None
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
                with open(path, "r+b") as handle:
                    handle.truncate(state.offset)
                    handle.flush()
                    os.fsync(handle.fileno())

    def _pin_range(self) -> tuple[datetime, datetime]:
        """A new export's absolute range; :class:`ExportRangeError` if it cannot be exported."""
        spec = self.spec
        now = self._now or datetime.now(timezone.utc)
        start, end = resolve_range(start=spec.start, end=spec.end, period=spec.period, now=now)
        if spec.kind != "issues":
            check_window_count(start, end, spec.window)
        return start, end

    async def _plan(self) -> Checkpoint:
        spec = self.spec
        start, end = self._range or self._pin_range()
        projects: list[ProjectRef] = []
        if spec.issues is not None:
            targets = [_Target(f"issue-{issue}", issue) for issue in spec.issues]
        else:
            projects = await self._resolve_projects()
            targets = [_Target(project.slug, project.id) for project in projects]
        windows = split_windows(start, end, None if spec.kind == "issues" else spec.window)
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
            fingerprint=spec.fingerprint(),
            spec=spec.canonical(),
            start=format_utc(start),
            end=format_utc(end),
            projects=projects,
            streams=streams,
            files=files,
            created_at=stamp,
            updated_at=stamp,
        )

    async def _resolve_projects(self) -> list[ProjectRef]:
        rows: list[ProjectRef] = []
        paginator = self.client.projects.list(self.spec.org).raw()
        async for page in paginator.pages():
            for item in page.items:
                row = _project_decoder.decode(item)
                rows.append(ProjectRef(id=str(row.id), slug=row.slug))
        if self.spec.projects is None:
            if not rows:
                raise UnknownProjectError(f"organization {self.spec.org!r} has no projects")
            return sorted(rows, key=lambda project: project.slug)
        by_name = {row.slug: row for row in rows}
        by_name.update({row.id: row for row in rows})
        missing = [name for name in self.spec.projects if name not in by_name]
        if missing:
            raise UnknownProjectError(
                f"unknown project(s) in organization {self.spec.org!r}: {', '.join(missing)}"
            )
        chosen = {by_name[name].id: by_name[name] for name in self.spec.projects}
        return sorted(chosen.values(), key=lambda project: project.slug)

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
                        await self._write_page(checkpoint.streams[event.key], event.item)
                    else:
                        await self._finish_stream(checkpoint.streams[event.key], event)
                    if anyio.current_time() - run.last_commit >= self.commit_interval:
                        await self._commit()
        except DecodeError as exc:
            key = next((k for k, error in merged.failures.items() if error is exc), "?")
            state = checkpoint.streams.get(key)
            raise ExportDecodeError(key, state.cursor if state else None, exc.reason) from exc
        finally:
            with anyio.CancelScope(shield=True):
                await self._commit()
                await anyio.to_thread.run_sync(self._close_all)

    def _factory(self, state: StreamState) -> Any:
        def start() -> AsyncIterator[Page[msgspec.Raw]]:
            return self._pages(state)

        return start

    async def _pages(self, state: StreamState) -> AsyncIterator[Page[msgspec.Raw]]:
        self.progress.stream_started()
        self._run.seen.setdefault(state.key, set())
        async for page in self._paginator(state).pages():
            yield page

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
            project=[state.target],
            start=start,
            end=end,
            page_size=spec.page_size,
            cursor=state.cursor,
        ).raw()

    def _slugs(self) -> dict[str, str]:
        assert self._checkpoint is not None
        if self._run.slugs is None:
            self._run.slugs = {p.id: p.slug for p in self._checkpoint.projects}
        return self._run.slugs

    async def _write_page(self, state: StreamState, page: Page[msgspec.Raw]) -> None:
        if page.cursor != state.cursor:
            raise CheckpointError(
                f"stream {state.key}: got the page at {page.cursor!r} while expecting "
                f"{state.cursor!r}"
            )
        seen = self._run.seen.setdefault(state.key, set())
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
        self.progress.stream_done()
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
                )
                for s in streams
            ],
        )

    def _load_manifest(self) -> Manifest | None:
        try:
            return _manifest_decoder.decode((self.output / MANIFEST_NAME).read_bytes())
        except (FileNotFoundError, msgspec.ValidationError, msgspec.DecodeError):
            return None


def _parse_stamp(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


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
    concurrency: int = 4,
    progress: Progress | None = None,
    commit_interval: float = 1.0,
    now: datetime | None = None,
) -> Manifest:
    """Run one export to the end (see :class:`Exporter`); returns its manifest."""
    exporter = Exporter(
        client,
        spec,
        output,
        resume=resume,
        concurrency=concurrency,
        progress=progress,
        commit_interval=commit_interval,
        now=now,
    )
    return await exporter.run()
