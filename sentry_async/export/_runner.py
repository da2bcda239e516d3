"""The exporter: plan streams, walk them (side by side through a fan-out, or one at a time
in its own task), write pages, checkpoint, write the manifest.

How exactly-once works: every stream (one project, or one issue, in one pinned time window)
is walked page by page through ``.raw()``, so each item is written as the exact JSON bytes
Sentry sent. A page is appended to its data file whole (with gzip, as one gzip member).
Periodically, and at every stop, the data files are fsynced and *then* the checkpoint is
atomically replaced with each stream's next cursor and each file's byte length at that
moment; a checkpoint therefore never covers bytes that are not on disk. A stream's state
moves only by the :class:`~sentry_async.Position` its paginator's cursor walk reached after
each page written, and a resumed run cuts every data file back to the length in the
checkpoint (dropping pages written after it, e.g. before a ``kill -9``) and resumes each
unfinished stream's walk at its checkpointed position: the page right after the last one
kept.

De-duplication goes by each item's ``id`` (see :mod:`._dedupe`); items without a usable
one are written as sent, logged per page and counted as ``unidentified`` per stream, in
the checkpoint and in the manifest.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from collections import Counter
from collections.abc import AsyncGenerator, AsyncIterator, Collection
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any, Literal

import anyio
import anyio.to_thread
import msgspec

from .._protocol.cursors import DEFAULT_MAX_STALE_PAGES
from .._protocol.params import is_numeric_id, issue_id
from .._text import printable
from ..client import SentryClient
from ..errors import (
    APIError,
    DecodeError,
    Forbidden,
    NotFound,
    PaginationError,
    ProjectMoved,
    ServerError,
    Unauthorized,
)
from ..fanout import StreamDone, StreamItem, fan_out
from ..pagination import Page, Position
from ._checkpoint import (
    CHECKPOINT_NAME,
    Checkpoint,
    SkippedProject,
    StreamState,
    check_whole_pages,
    encode_checkpoint,
    save_checkpoint,
)
from ._datafiles import OpenFiles
from ._dedupe import (
    PageItems,
    dedupe_page,
    ids_written,
    log_dropped,
    log_overlap,
    row_key,
    rows_written,
)
from ._errors import CheckpointError, ExportDecodeError
from ._files import IdKey, now_iso, parse_stamp, remove_checkpoint, skip_keys
from ._formats import (
    check_arrow,
    drop_unfinished,
    split_parts,
)
from ._lock import DirLock
from ._manifest import Manifest, build_manifest, load_manifest, save_manifest
from ._plan import (
    EVERY_PROJECT,
    NAMES_TOKEN,
    Overlaps,
    event_group,
    event_project,
    names_token,
    pin_range,
    plan,
    request_slugs,
    server_identity,
    stream_pages,
)
from ._progress import Progress
from ._resume import cut_back, make_output_dir, open_existing, seal_at
from ._spec import ExportSpec, adds_id, is_aggregate
from ._splitting import (
    MIN_SPLIT_WINDOW,
    Expired,
    Split,
    apply_split,
    halves,
    outside_retention,
    unservable_window,
)
from ._writer import lstat_no_follow, remove_file

__all__ = ["Exporter"]

logger = logging.getLogger("sentry_async.export")

MAX_STALE_PAGES = DEFAULT_MAX_STALE_PAGES
"""Pages in a row that bring a stream nothing new after which it is stuck, as a walk's
``max_stale_pages``: a server may send fresh cursors over items already written, in
bodies that differ, which the walk itself cannot tell from new ones."""

MAX_EMPTY_CHECKS = 4
"""Times the empty windows of a run are checked against the projects list (and those read
where their project no longer is read again at its new slug) before the run stops: only a
project renamed again between every two checks needs more."""

ALONE_READ_AHEAD = 2
"""Pages a stream that runs alone reads ahead of the writer. With room for two, its next
request leaves before a page's body is decoded, so the server works on the next page while
this one is split into items and written; alone, a stream otherwise leaves the server idle
for that time. Streams running side by side already overlap each other's waits, and there
reading ahead measured slower (more CPU per item for nothing). Memory: two pages more."""


MAX_MOVED_BACK = 8
"""Times a stream starts its window over in one run because rows moved back under its
walk (see ``Exporter._follows``) before the run stops: each needs rows to leave the list
(an issue's deletion ending), which happens a few times an hour at most; a server whose
pages never line up is not walked for ever. A resume goes on."""


@dataclass(frozen=True, slots=True)
class _MovedBack:
    """Rows of ``state``'s list moved back under its walk: it starts its window over."""

    state: StreamState


@dataclass(frozen=True, slots=True)
class _Caught:
    """The walk of ``state`` waits for ``up``: set once the pages it handed over before are
    written, and the ids it wrote before this run read back (see ``Exporter._follows``)."""

    state: StreamState
    up: anyio.Event


@dataclass(frozen=True, slots=True)
class _Gone:
    """``state``'s project or issue is no longer there to export (deleted, or no longer
    accessible); for totals, one of the projects they count."""

    state: StreamState


@dataclass(frozen=True, slots=True)
class _Cut:
    """Where a data file is cut back to: its length, items and seal there (``FileState``'s
    ``offset``, ``items`` and ``tail_crc``), read before anything records the cut."""

    offset: int
    items: int
    seal: int


@dataclass(frozen=True, slots=True)
class _Absorbed:
    """The ids that issues merged into one issue of the export wrote (``sources``)."""

    sources: frozenset[str]
    ids: set[IdKey]


_Verdict = Literal["write", "again", "gone"]
"""What becomes of a page checked before it is written: written, asked again (at its
project's new slug), or not written (what it exports is gone)."""

_Item = (
    tuple[StreamState, Page[msgspec.Raw], Position, str | None]
    | Split
    | Expired
    | _Gone
    | _MovedBack
    | _Caught
)
"""A page of a stream with its walk's position after it (and, for a project's empty
window, the slug it was asked at: see ``StreamState.unconfirmed``), a window split in two,
one wholly before the organization's retention, a stream whose project or issue is gone,
one whose rows moved back under its walk, or a walk waiting for the writer."""


@dataclass(slots=True)
class _StreamIds:
    """What one active stream met in this run, for de-duplication and stale pages."""

    earlier: set[IdKey]
    """Ids it wrote before this run (read back from its file), until met in this run."""
    met: set[IdKey] = field(default_factory=set)
    """Ids it met in this run: a page of nothing else brings nothing new."""
    stale: int = 0
    """Pages in a row that brought nothing new."""


@dataclass
class _Run:
    """Mutable state of one run: open files and the dedupe sets of active streams."""

    files: OpenFiles
    open_streams: Counter[str] = field(default_factory=Counter)
    seen: dict[str, _StreamIds] = field(default_factory=dict)
    walking: dict[str, StreamState] = field(default_factory=dict)
    """Fan-out key -> the stream (or half of a split one) it is fetching now."""
    slugs: dict[str, str] | None = None
    last_commit: float = 0.0
    read_ahead: int = 0
    """Pages each stream fetches ahead of the writer (see :data:`ALONE_READ_AHEAD`)."""
    expired_until: datetime | None = None
    """The latest end of a window Sentry refused as wholly before the organization's
    retention: a window ending no later is refused too (the retention only moves on)."""
    gone: dict[str, str] = field(default_factory=dict)
    """Project (or issue) id -> why it can no longer be exported: its other streams end
    unasked, and totals leave it out."""
    merged: dict[str, str] = field(default_factory=dict)
    """Issue id -> the issue it was merged into while exported (one of ``gone``)."""
    absorbed: dict[str, _Absorbed] = field(default_factory=dict)
    """Issue id -> what the issues merged into it wrote (see ``Exporter._absorbed``)."""
    told_unplanned: bool = False
    """Whether totals asked for every project said they may count projects created since
    the plan (once a run)."""
    moved_back: Counter[str] = field(default_factory=Counter)
    """Stream key -> times its window started over in this run (see ``_MovedBack``)."""


class Exporter:
    """Exports ``spec`` into ``output`` through ``client``; :meth:`run` does the work.

    ``resume=True`` continues the export already in ``output`` (refusing if its spec
    differs), or starts one if the directory is empty; ``restart=True`` removes the
    export already there (a failed or stale one, whatever its spec) and starts anew.
    ``concurrency`` bounds the streams fetched at once (they all share the client's rate
    limiter). The checkpoint is written at most every ``commit_interval`` seconds while
    pages arrive, and at every stop. ``now`` pins "now" for ``period`` (tests);
    ``progress`` receives live counts; ``min_window`` is the smallest half a window the
    server cannot serve is split into. ``skip_ids`` are ids an earlier run already wrote
    (an incremental export's overlap): items with one of them are counted as duplicates.
    ``server`` names the server in the fingerprint instead of the client's base URL: a
    local server started on a new port for every run serves the same data all the same.

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
        skip_ids: Collection[str] = frozenset(),
        server: str | None = None,
    ) -> None:
        if resume and restart:
            raise ValueError("give resume or restart, not both")
        if min_window <= timedelta(0):
            raise ValueError("min_window must be positive")
        if isinstance(concurrency, bool) or concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        if commit_interval < 0:
            raise ValueError("commit_interval must not be negative")
        if spec.format == "parquet":
            check_arrow()
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
        self._planned = False
        """Whether this run planned the export (it found none to resume)."""
        self._range: tuple[datetime, datetime] | None = None
        # Discover rows carry an id only when asked for; without it none can be de-duplicated.
        self._identify = spec.kind != "discover" or "id" in spec.fields
        # Rows of events asked without it: the id is asked too (Sentry adds it to such rows
        # anyway), so that what a page repeats is dropped.
        self._adds_id = adds_id(spec)
        # Rows that cannot be skipped by id are cut off an appended file on a split.
        self._cuts_rows = not self._identify and spec.format != "parquet"
        self._aggregates = spec.kind == "discover" and any(is_aggregate(f) for f in spec.fields)
        # Lists paged by row offset whose rows are told apart by id, also those written
        # before a stop: each page is asked one row early (see Overlaps). Not the issues
        # list, whose cursors count from a sort value.
        self._overlap_rows = spec.kind != "issues" and self._identify and not self._aggregates
        self._server = server if server is not None else server_identity(client)
        self._run = _Run(
            OpenFiles(
                self.output,
                format=spec.format,
                compress=spec.gzip,
                escape_formulas=spec.csv_escape_formulas,
            )
        )
        self._skip = skip_keys(skip_ids)
        self._overlap = 0
        """Items of ``skip_ids`` met and skipped in this run: told once, at its end."""

    @property
    def checkpoint(self) -> Checkpoint | None:
        """The checkpoint as last committed or planned (``None`` before :meth:`run`)."""
        return self._checkpoint

    async def run(self) -> Manifest:
        """Export everything not yet exported; returns the manifest (also written to disk).

        When it ends the lock file is removed, and so is the checkpoint after a success
        (the manifest stays); a new export that fails before it wrote anything (an
        unknown organization or issue, a rejected token) leaves no file and no directory
        behind.
        """
        if self.restart or not (self.output / CHECKPOINT_NAME).exists():
            # A new export: a range it cannot export is refused before the directory exists.
            self._range = pin_range(self.spec, self._now, aggregates=self._aggregates)
        created = make_output_dir(self.output)
        lock = DirLock(self.output)
        with lock:
            try:
                return await self._run_locked()
            except (NotFound, Unauthorized, Forbidden, ValueError):
                # Refused as asked (an unknown issue, a bad argument), not stopped on the way
                # (a failing disk or server, which a resume gets past): with nothing written,
                # there is nothing to resume.
                if self._planned and self._checkpoint is not None and _untouched(self._checkpoint):
                    await anyio.to_thread.run_sync(_discard, self.output, self._checkpoint)
                    self._checkpoint = None
                raise
            finally:
                lock.remove()
                log_overlap(self._overlap)
                if created and self._checkpoint is None:
                    with contextlib.suppress(OSError):
                        self.output.rmdir()

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
            manifest = load_manifest(self.output) or self._manifest(checkpoint)
            self._begin_progress(checkpoint)
            self.progress.finish()
            return manifest
        await self._export(checkpoint)
        manifest = self._manifest(checkpoint)
        _warn_outside_retention(checkpoint)
        await anyio.to_thread.run_sync(save_manifest, self.output, manifest)
        checkpoint.complete = True
        self.progress.finish()
        return manifest

    # Preparing: a new checkpoint, or the old one checked and the files cut back.

    async def _prepare(self) -> Checkpoint | Manifest:
        found = await anyio.to_thread.run_sync(
            partial(
                open_existing,
                self.output,
                self.spec,
                self._server,
                resume=self.resume,
                restart=self.restart,
                aggregates=self._aggregates,
            )
        )
        if found is not None:
            return found
        start, end = self._range or pin_range(self.spec, self._now, aggregates=self._aggregates)
        checkpoint = await plan(
            self.client,
            spec=self.spec,
            start=start,
            end=end,
            server=self._server,
            aggregates=self._aggregates,
        )
        await anyio.to_thread.run_sync(save_checkpoint, self.output, encode_checkpoint(checkpoint))
        self._planned = True
        return checkpoint

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
        # Projects (issues) found gone in an earlier run: their streams left end unasked.
        if self.spec.issues is not None:
            planned = set(self.spec.issues)
        else:
            planned = {project.id for project in checkpoint.projects}
        run.gone = {p.id: p.error for p in checkpoint.skipped if p.id in planned and p.id}
        run.merged = {
            p.id: p.merged_into
            for p in checkpoint.skipped
            if p.id in planned and p.id and p.merged_into is not None
        }
        run.last_commit = time.monotonic()
        failed = True
        try:
            checks = 0
            while True:
                await self._walk_streams(checkpoint, pending)
                pending = await self._confirm_empty(checkpoint)
                checks += bool(pending)
                if pending and checks >= MAX_EMPTY_CHECKS:
                    raise PaginationError(
                        f"{', '.join(sorted({state.key for state in pending}))}: their project "
                        f"was renamed again each of the {MAX_EMPTY_CHECKS} times its empty "
                        "windows were checked; stopping (a resume reads them again)"
                    )
                # Bounded: an issue is merged away once, and its streams end then.
                pending += await self._walk_again(checkpoint)
                if not pending:
                    break
                self.progress.again(len(pending))
            failed = False
        finally:
            with anyio.CancelScope(shield=True):
                try:
                    await self._commit()
                finally:
                    # A file that fails to close after a failure must not hide it.
                    await run.files.close_all(failed=failed)

    async def _walk_streams(self, checkpoint: Checkpoint, pending: list[StreamState]) -> None:
        """Walk ``pending`` to their ends: one at a time, in lanes, or side by side."""
        if not pending:
            return
        run = self._run
        run.open_streams = Counter(state.file for state in pending)
        lanes: dict[str, list[StreamState]] | None = None
        if self._cuts_rows:
            # A stream begun before a stop goes first: its rows end its file.
            pending.sort(key=lambda state: not state.pages)
            lanes = {}
            for state in pending:
                lanes.setdefault(state.file, []).append(state)
        alone = min(self.concurrency, len(pending if lanes is None else lanes)) == 1
        run.read_ahead = ALONE_READ_AHEAD if alone else 0
        if alone:
            await self._one_at_a_time(checkpoint, pending)
        elif lanes is not None:
            await self._in_lanes(checkpoint, lanes)
        else:
            await self._side_by_side(checkpoint, pending)

    async def _confirm_empty(self, checkpoint: Checkpoint) -> list[StreamState]:
        """Check the windows of projects' events whose first page came back empty (see
        ``StreamState.unconfirmed``), all at once with one read of the projects list, made
        once every stream is done (not one a window): the windows to read again.

        A project still listed at the slug a window was asked at keeps the window empty
        (it answered then, or Sentry would have refused: no longer accessible since is no
        matter). One no longer listed is skipped as gone: its windows stay as they are. One
        listed under another slug was renamed, and its old slug may have been taken by a
        project that answered for it: those windows are read again at the new slug, which
        later reads use too.
        """
        flagged = [state for state in checkpoint.streams.values() if state.unconfirmed]
        if not flagged:
            return []
        org = self.spec.org
        listed = await self.client.load_project_ids(org)
        access = await self.client.project_access(org)
        unlisted = {state.target for state in flagged if state.target not in access}
        self._mark_lost(sorted(unlisted - self._run.gone.keys()), access)
        where = {project: slug for slug, project in listed.items()}
        again = []
        for state in flagged:
            # Not listed by slug (two share it): asked by id from now on.
            now = where.get(state.target, state.target)
            if (
                state.target not in self._run.gone
                and now != state.unconfirmed
                and not self._names_token(state, now)
            ):
                self._read_at(
                    state,
                    now,
                    f"its windows that came back empty at {state.unconfirmed!r}, where "
                    "another project may have answered, are read again at its new slug",
                )
                _read_again(state)
                again.append(state)
            state.unconfirmed = None
        self._record_gone()
        await self._commit()
        return again

    async def _one_at_a_time(self, checkpoint: Checkpoint, pending: list[StreamState]) -> None:
        """Streams that run one at a time, each walked in this task: no fan-out between
        the pages and the writer (its worker task and hand-over cost CPU every page, and a
        lone stream's export is bound by the client's CPU, its reads ahead keeping the
        server busy)."""
        # Closed on the way out, whatever ends the loop: the walk's read-ahead stops then.
        async with contextlib.aclosing(self._lane(checkpoint, pending)) as events:
            async for event in events:
                await self._handle(event)
                # Written: not kept while the next page is fetched and decoded.
                del event

    async def _side_by_side(self, checkpoint: Checkpoint, pending: list[StreamState]) -> None:
        merged = fan_out(
            ((state.key, self._factory(state)) for state in pending),
            concurrency=self.concurrency,
            buffer=self.concurrency,
            errors="raise",
        )
        try:
            async with merged:
                async for event in merged.events():
                    await self._handle(event)
                    del event
        except DecodeError as exc:
            key = next((k for k, error in merged.failures.items() if error is exc), "?")
            raise self._decode_error(key, checkpoint, exc) from exc

    async def _in_lanes(
        self, checkpoint: Checkpoint, lanes: dict[str, list[StreamState]]
    ) -> None:
        """Streams whose rows are cut off their file when their window is split (see
        :meth:`_apply_split`): files side by side, each file's streams one after another, so
        that the rows of the stream being walked are always the last ones in its file."""

        def lane(states: list[StreamState]) -> Any:
            return lambda: self._lane(checkpoint, states)

        merged = fan_out(
            ((name, lane(states)) for name, states in lanes.items()),
            concurrency=self.concurrency,
            buffer=self.concurrency,
            errors="raise",
        )
        async with merged:
            async for event in merged.events():
                if isinstance(event, StreamItem):
                    await self._handle(event.item)
                del event

    async def _lane(
        self, checkpoint: Checkpoint, states: list[StreamState]
    ) -> AsyncGenerator[StreamItem[str, _Item] | StreamDone[str], None]:
        """The events of ``states``, walked one after another: each stream's pages, then
        its end."""
        for state in states:
            items = 0
            try:
                async with contextlib.aclosing(self._pages(state)) as pages:
                    async for item in pages:
                        items += 1
                        yield StreamItem(state.key, item)
                        del item
            except DecodeError as exc:
                raise self._decode_error(state.key, checkpoint, exc) from exc
            yield StreamDone(state.key, items)

    async def _handle(self, event: StreamItem[str, _Item] | StreamDone[str]) -> None:
        """One event of the streams: a page to write, a window split, or a stream's end;
        then a checkpoint, if one is due."""
        if isinstance(event, StreamItem):
            if isinstance(event.item, Split):
                await self._apply_split(event.item)
            elif isinstance(event.item, Expired):
                await self._skip_expired(event.item.state, root=event.key)
            elif isinstance(event.item, _Gone):
                await self._skip_gone(event.item.state, root=event.key)
            elif isinstance(event.item, _MovedBack):
                await self._start_over_moved(event.item.state)
            elif isinstance(event.item, _Caught):
                # Read here, where the files are written: no page is stored meanwhile.
                await self._stream_ids(event.item.state)
                event.item.up.set()
            else:
                state, page, after, unconfirmed = event.item
                await self._write_page(state, page, after, root=event.key, unconfirmed=unconfirmed)
        else:
            assert self._checkpoint is not None
            await self._finish_stream(self._checkpoint.streams[event.key], event)
        if time.monotonic() - self._run.last_commit >= self.commit_interval:
            await self._commit()

    def _decode_error(
        self, key: str, checkpoint: Checkpoint, exc: DecodeError
    ) -> ExportDecodeError:
        state = self._run.walking.get(key) or checkpoint.streams.get(key)
        name = state.key if state else key
        cursor = state.cursor if state else None
        return ExportDecodeError(name, self._shown(cursor), exc.reason)

    def _shown(self, cursor: str | None) -> str | None:
        """A cursor as an error or a log line shows it, not as a resume sends it back (the
        checkpoint keeps it whole): a server may echo the token in one."""
        return None if cursor is None else self.client._redact(cursor)

    def _factory(self, state: StreamState) -> Any:
        def start() -> AsyncIterator[_Item]:
            return self._pages(state)

        return start

    async def _pages(self, state: StreamState) -> AsyncGenerator[_Item, None]:
        self.progress.stream_started()
        # Each generator below is closed by the one that walks it, not left to the event
        # loop's finalizer: a read-ahead must be over when an error reaches the caller.
        async with contextlib.aclosing(self._walk(state, state.key)) as walk:
            async for item in walk:
                yield item
                del item

    async def _walk(
        self,
        state: StreamState,
        root: str,
        at: Position | None = None,
        recent: frozenset[IdKey] = frozenset(),
    ) -> AsyncGenerator[_Item, None]:
        """The pages of ``state`` from ``at`` (else from its position); if the server
        cannot serve its window, of its halves; if totals counted a project now gone, of
        the totals again, from their first page, over the projects left; if rows moved
        back under the walk, of the window again from its first page. ``recent``: the ids
        of the page before ``at``, when this run read it."""
        self._run.walking[root] = state
        until = self._run.expired_until
        if until is not None and parse_stamp(state.window_end) <= until:
            yield Expired(state)
            return
        if self._gone_already(state):
            yield _Gone(state)
            return
        before = at if at is not None else state.position
        # A project's slug as this walk asks for it (another walk may learn a new one).
        asked = self._slugs().get(state.target, state.target)
        by_slug = self._by_slug and asked != state.target
        overlaps = Overlaps() if self._overlap_rows else None
        paginator = stream_pages(
            self.client, self.spec, state, self._slugs(), self._run.gone, at, overlaps
        )
        # Explicit either way: streams side by side read nothing ahead.
        paginator = paginator.read_ahead(self._run.read_ahead)
        failure: APIError | None = None
        verdict: _Verdict = "write"
        moved = False
        first = True
        async with contextlib.aclosing(paginator.pages()) as pages:
            while True:
                # Only the stream's own answers are its errors: a check's stand as they are.
                try:
                    page = await anext(pages)
                except StopAsyncIteration:
                    break
                except APIError as exc:
                    failure = exc
                    break
                # Read now: the fan-out may run this generator ahead of the writer.
                after = paginator.position
                if by_slug and first:
                    followed = self._followed(state, asked)
                    if followed is None:
                        verdict = "gone"
                        break
                    asked = followed
                first = False
                if self._to_check(state, page, after):
                    verdict = await self._check_page(state, page, before, asked)
                    if verdict != "write":
                        break
                if overlaps is not None:
                    head = overlaps.take(page.cursor)
                    if head is not None and not self._follows(state, head, recent):
                        # Is it a row the stream wrote? Known once what it handed over is.
                        caught = _Caught(state, anyio.Event())
                        yield caught
                        await caught.up.wait()
                        if not self._follows(state, head, recent, written=True):
                            moved = True
                            break
                    if page.items:
                        keys = self._keys(page.items)
                        recent = frozenset(key for key in keys if key is not None)
                # An empty window: whose it is is checked once every stream is done.
                empty = by_slug and after.done and page.cursor is None and not page.items
                yield state, page, after, asked if empty else None
                before = after
                # Not kept while the next page is fetched: it would decode into memory
                # this one has not given back.
                del page
        split = None
        if failure is not None:
            gone = await self._target_gone(state, failure)
            if not (
                gone or outside_retention(failure) or await self._events_expired(state, failure)
            ):
                parts = self._halves(state, failure)
                if parts is None:
                    raise failure
                split = Split(state, parts, str(failure))
        elif moved:
            yield _MovedBack(state)
            async with contextlib.aclosing(self._walk(state, root, Position(None))) as walk:
                async for item in walk:
                    yield item
                    del item
            return
        elif verdict == "write":
            return
        elif verdict == "again":
            async with contextlib.aclosing(self._walk(state, root, before, recent)) as walk:
                async for item in walk:
                    yield item
                    del item
            return
        else:
            gone = True
        if gone:
            yield _Gone(state)
            if self._aggregates and self._counted(state):
                async with contextlib.aclosing(self._walk(state, root, Position(None))) as walk:
                    async for item in walk:
                        yield item
                        del item
            return
        if split is None:
            yield Expired(state)
            return
        yield split
        for part in split.parts:
            async with contextlib.aclosing(self._walk(part, root)) as walk:
                async for item in walk:
                    yield item
                    del item

    @property
    def _by_project(self) -> bool:
        """Whether each stream is one project's (not an issue's, nor aggregates over many)."""
        return self.spec.issues is None and not self._aggregates

    @property
    def _by_slug(self) -> bool:
        """Whether each stream asks for a project's path by its slug (its events), where the
        other kinds name the project by id (``project=``)."""
        return self._by_project and self.spec.kind == "events"

    def _followed(self, state: StreamState, asked: str) -> str | None:
        """The slug the first page of a walk of ``state`` asked at ``asked`` was read at:
        ``asked``, or the new slug of a rename the client followed from it (Sentry's 302,
        sent for a renamed project's old slug while no project holds it). Later walks, and
        a resume, ask the new slug at once. ``None``: the new slug holds the token, and the
        project is gone (see :meth:`_names_token`)."""
        new = self.client.renamed_projects.get((self.spec.org, asked))
        if new is None:
            return asked
        if self._names_token(state, new):
            return None
        if self._slugs().get(state.target) == asked:
            self._read_at(state, new, None)
        return new

    def _names_token(self, state: StreamState, slug: str) -> bool:
        """Whether ``slug``, a new slug of the project of ``state`` (from a successful
        answer, which nothing blanks the token out of, or a rename the client followed),
        holds the token: the project is then gone from now on, as the plan skips a project
        so named (see :func:`~._plan.names_token`), and the slug is neither asked nor
        recorded in the checkpoint or the manifest."""
        if not names_token(self.client, slug):
            return False
        self._run.gone.setdefault(state.target, NAMES_TOKEN)
        return True

    def _read_at(self, state: StreamState, slug: str, why: str | None) -> None:
        """Read the project of ``state`` at ``slug`` from now on, and record it in the
        checkpoint (a resume reads it there too); ``why`` is logged, when given."""
        assert self._checkpoint is not None
        project = state.target
        slugs = self._slugs()
        if slugs.get(project) == slug:
            return
        slugs[project] = slug
        planned = next((p.slug for p in self._checkpoint.projects if p.id == project), None)
        if slug == planned:
            self._checkpoint.moved.pop(project, None)
        else:
            self._checkpoint.moved[project] = slug
        if why is not None:
            redact = self.client._redact
            logger.warning(
                "%s: project %r (id %s) is now %r; %s",
                state.key,
                redact(planned or project),
                project,
                redact(slug),
                redact(why),
            )

    def _counted(self, state: StreamState) -> list[str]:
        """The projects totals count now: their own (every project planned, for totals over
        every project), less those gone."""
        assert self._checkpoint is not None
        if state.target == EVERY_PROJECT:
            ids = [project.id for project in self._checkpoint.projects]
        else:
            ids = state.target.split(",")
        return [project for project in ids if project not in self._run.gone]

    def _gone_already(self, state: StreamState) -> bool:
        """Whether what ``state`` exports was found gone already: its project or issue, or
        every project of totals."""
        if self._aggregates:
            return not self._counted(state)
        return state.target in self._run.gone

    def _to_check(self, state: StreamState, page: Page[msgspec.Raw], after: Position) -> bool:
        """Whether a page is checked (see :meth:`_check_page`) before it is written: the
        last page of totals over every project, a page of a project's events that holds
        another project's, or none though the page before said more would come, and a page
        of an issue's events that holds another issue's."""
        if self._aggregates:
            return after.done and state.target == EVERY_PROJECT
        if self.spec.kind != "events":
            return False
        if self.spec.issues is not None:
            # An issue merged away answers with the issue it went into: see _merged.
            owner = event_group(page.items[0]) if page.items else None
            return owner is not None and owner != issue_id(state.target)
        if not page.items:
            return page.cursor is not None
        owner = event_project(page.items[0])
        return owner is not None and owner != state.target

    async def _check_page(
        self, state: StreamState, page: Page[msgspec.Raw], at: Position, asked: str
    ) -> _Verdict:
        """What to do with a page :meth:`_to_check` holds back, from the projects list read
        again (an error reading it stands: the page cannot be told right without it).

        Totals over every project: Sentry counts the projects there when each page is
        asked for, so one deleted meanwhile may be counted in some pages and not in
        others; the totals start over without it (``"gone"``), else the page is written.
        A project's events: Sentry frees a deleted project's slug, and a new project that
        takes it answers at its path (see :meth:`_whose`). An issue's events: Sentry
        answers an issue merged away with the issue it went into (see :meth:`_merged`).
        """
        if self._aggregates:
            if await self._lost(self._counted(state)):
                return "gone"
            await self._tell_unplanned()
            return "write"
        if self.spec.issues is not None:
            return await self._merged(state, page, at)
        return await self._whose(state, page, at, asked)

    async def _tell_unplanned(self) -> None:
        """Say (once a run) that totals asked for every project may count projects created
        since the plan, as the projects list read for their last page lists: the
        organization has more projects than their ids fit in a request line (see
        :func:`~._plan.every_project_target`), so they cannot be left out."""
        assert self._checkpoint is not None
        if self._run.told_unplanned:
            return
        checkpoint = self._checkpoint
        planned = {p.id for p in checkpoint.projects} | {p.id for p in checkpoint.skipped}
        access = await self.client.project_access(self.spec.org)
        new = [p for p, ok in access.items() if p not in planned and ok is not False]
        if not new:
            return
        self._run.told_unplanned = True
        listed = await self.client.project_id_map(self.spec.org)
        names = {project: slug for slug, project in listed.items()}
        logger.warning(
            "totals over every project may count %d project(s) created since the export was "
            "planned (%s): their ids would not fit in a request line beside the planned "
            "ones, so the totals ask for every project",
            len(new),
            self.client._redact(", ".join(repr(names.get(p, p)) for p in sorted(new))),
        )

    async def _merged(self, state: StreamState, page: Page[msgspec.Raw], at: Position) -> _Verdict:
        """The page at ``at`` of an issue's events holds another issue's. Sentry reads an
        issue id through ``get_group_with_redirect``: once a merge is done, the merged
        issue's id answers with the issue it went into (its details and events alike, all
        that issue's now). The issue's details, asked again, decide: another issue is the
        one it was merged into, a 404 one being merged or deleted, and either way the issue
        is gone (its streams end with what they wrote, the manifest says why); the issue
        itself stops the stream, as the answers contradict each other."""
        issue = state.target
        owner = event_group(page.items[0])
        try:
            found = await self.client.issues.get(self.spec.org, issue)
        except NotFound:
            why = "the issue is no longer there (deleted, or merged away, while exported)"
            self._run.gone[issue] = why
            return "gone"
        if found.id != issue_id(issue):
            self._note_merge(issue, found.id)
            return "gone"
        raise PaginationError(
            self.client._redact(
                f"{state.key}: the page at {self._shown(at.cursor)!r} holds events of issue "
                f"{owner}, not of issue {issue}, whose details still answer as itself; "
                "stopping"
            ),
            stream=state.key,
        )

    async def _whose(
        self, state: StreamState, page: Page[msgspec.Raw], at: Position, asked: str
    ) -> _Verdict:
        """The page at ``at`` of a project's events, asked for at ``asked``, holds another
        project's, or none: a project no longer listed is gone (deleted, its slug taken by
        a new project); one listed under a new slug (renamed, its old slug taken since) is
        read there from this page; one still listed at the slug asked for keeps an empty
        page (its events went), while another project's events there stop the stream, as
        the answers contradict each other."""
        project = state.target
        owner = event_project(page.items[0]) if page.items else None
        if await self._lost([project]):
            if owner is not None:
                why = f"{self._run.gone[project]}; its slug {asked!r} now names another project"
                self._run.gone[project] = self.client._redact(f"{why} (id {owner})")
            return "gone"
        listed = await self.client.project_id_map(self.spec.org)
        now = next((name for name, pid in listed.items() if pid == project), None)
        if now is not None and now != asked and asked != project:
            if self._names_token(state, now):
                return "gone"
            why = f"another project answers at {asked!r}: reading it at its new slug from there"
            self._read_at(state, now, why)
            return "again"
        if owner is None:
            return "write"
        # The owner and the slug come from successful answers: nothing blanked them out yet.
        raise PaginationError(
            self.client._redact(
                f"{state.key}: the page at {self._shown(at.cursor)!r} holds events of project "
                f"{owner}, not of project {asked!r} (id {project}), which the projects list "
                "still names so; stopping"
            ),
            stream=state.key,
        )

    async def _target_gone(self, state: StreamState, error: APIError) -> bool:
        """Whether a stream's 404 or 403 means what it exports can no longer be. Sentry
        answers a project pending deletion with a 404 on its paths and a 403 when its id
        is asked for, one the user lost access to with a 403, and an issue deleted (or
        being merged away) with a 404; a resume would meet them for ever. The projects
        list, read again, decides for projects (see :meth:`_lost`), the issue's details,
        asked again, for an issue. One still there leaves the error an error. A read's
        302 the client would not follow (the new slug holds the token, blanked out) is
        decided by the projects list alike."""
        if not isinstance(error, (NotFound, Forbidden, ProjectMoved)):
            return False
        if self.spec.issues is not None:
            return isinstance(error, NotFound) and await self._issue_gone(state.target, error)
        if self._aggregates:
            return bool(await self._lost(self._counted(state), error))
        return state.target in self._run.gone or bool(await self._lost([state.target], error))

    async def _lost(self, projects: list[str], error: APIError | None = None) -> list[str]:
        """Those of ``projects`` that can no longer be exported, each recorded with why.

        The projects list, read again, decides: a project no longer on it is gone, and
        so, in an export of every project, is one no longer accessible (a project named
        and not accessible is refused as asked), and one listed under a slug that holds
        the token, as the plan skips one so named. For a stream's ``error``, a list that
        cannot be read tells nothing and the stream's error stands; to check a page, the
        list's own error stands.
        """
        try:
            listed = await self.client.load_project_ids(self.spec.org)
            access = await self.client.project_access(self.spec.org)
        except APIError:
            if error is None:
                raise
            return []
        return self._mark_lost(projects, access, error, listed)

    def _mark_lost(
        self,
        projects: list[str],
        access: dict[str, bool | None],
        error: APIError | None = None,
        listed: dict[str, str] | None = None,
    ) -> list[str]:
        """:meth:`_lost` once the list is read (``access``: its ``id -> hasAccess``;
        ``listed``, when given: its ``slug -> id``)."""
        names = {project: slug for slug, project in (listed or {}).items()}
        lost = []
        for project in projects:
            if project not in access:
                why = "no longer in the organization's projects list (deleted while exported)"
            elif access[project] is False and self.spec.projects is None:
                why = "no longer accessible (the projects list now marks it hasAccess: false)"
            elif names_token(self.client, names.get(project, "")):
                why = NAMES_TOKEN
            else:
                continue
            shown = why if error is None else f"{why}: {error}"
            self._run.gone[project] = self.client._redact(shown)
            lost.append(project)
        return lost

    async def _issue_gone(self, issue: str, error: NotFound) -> bool:
        """Whether an issue's events answered 404 because the issue is gone: its details
        answer 404 too (Sentry answers so for an issue deleted, being deleted or being
        merged away), or with the issue it was merged into (the merge done since). Details
        that answer anything else leave the error an error."""
        if issue in self._run.gone:
            return True
        try:
            found = await self.client.issues.get(self.spec.org, issue)
        except NotFound:
            why = "the issue is no longer there (deleted, or merged away, while exported)"
            self._run.gone[issue] = self.client._redact(f"{why}: {error}")
            return True
        except (APIError, DecodeError):
            return False
        if found.id != issue_id(issue):
            self._note_merge(issue, found.id)
            return True
        return False

    async def _walk_again(self, checkpoint: Checkpoint) -> list[StreamState]:
        """The streams due to be walked again (see ``StreamState.walk_again``), each set back
        to its first page once its walk is over; the ids it wrote stay in its file, where
        it reads them back from, so that it writes only what it lacks."""
        again = []
        for state in checkpoint.streams.values():
            if not state.walk_again or not state.done:
                continue
            state.walk_again = False
            if state.target in self._run.gone or state.split or state.outside_retention:
                continue
            if state.dedupe_from is None:
                state.dedupe_from = state.first_offset or 0
            state.cursor = state.hits = state.ended = None
            state.done = False
            again.append(state)
        if again:
            await self._commit()
        return again

    def _note_merge(self, issue: str, into: str) -> None:
        """``issue`` was merged into issue ``into`` while exported: it is gone, and the
        manifest says into which issue (see ``SkippedProject.merged_into``). Exported too,
        that issue's streams are walked again once over (see :meth:`_walk_again`): those
        finished, or past the events moved into it, would never read them."""
        into = self.client._redact(into)
        self._run.merged[issue] = into
        why = (
            f"merged into issue {into} while exported (Sentry answers its id with that "
            "issue, whose events its own are now)"
        )
        final = self._merged_into(issue)
        exported = {issue_id(i) for i in self.spec.issues or ()}
        if final is not None and final in exported - set(map(issue_id, self._run.gone)):
            # See _absorbed.
            why += (
                f"; issue {final}'s streams, exported too, are walked again from their "
                "start and drop the events it wrote"
            )
            assert self._checkpoint is not None
            for state in self._checkpoint.streams.values():
                # One not begun yet reads every event it holds by then anyway.
                begun = state.done or state.pages or state.key in self._run.walking
                if issue_id(state.target) == final and begun:
                    state.walk_again = True
        self._run.gone[issue] = why

    async def _events_expired(self, state: StreamState, error: APIError) -> bool:
        """Whether an events window that failed with a 500 lies wholly before the
        organization's retention. Sentry's project and issue events endpoints leave that
        refusal uncaught, a 500 like any failure; its Discover endpoint applies the same
        rule to the same range and answers it with its own 400, so the window is asked
        there (one row), and only that answer counts: anything else, the 500 stands."""
        if self.spec.kind != "events" or not isinstance(error, ServerError) or error.status != 500:
            return False
        project: str | None = state.target
        try:
            if self.spec.issues is not None:
                issue = await self.client.issues.get(self.spec.org, state.target)
                project = issue.project.id if issue.project is not None else None
            if project is None:
                return False
            await self.client.discover.query(
                self.spec.org,
                fields=["id"],
                project=[project],
                start=parse_stamp(state.window_start),
                end=parse_stamp(state.window_end),
                page_size=1,
                no_pagination=True,
            ).collect()
        except APIError as answer:
            return outside_retention(answer)
        return False

    def _halves(self, state: StreamState, error: APIError) -> tuple[StreamState, ...] | None:
        # Issues are one stream over the range, and aggregates must not be cut into parts.
        if self.spec.kind == "issues" or self._aggregates or not unservable_window(error):
            return None
        return halves(state, self.min_window)

    async def _apply_split(self, split: Split) -> None:
        assert self._checkpoint is not None
        # The parent's first page records where it began once it is written.
        self.progress.wrote(await self._run.files.drain())
        cut = await self._rows_to_drop(split.parent) if self._cuts_rows else None
        # The split, the checkpoint that records it and the cut of the parent's rows are
        # one change: everything it needs is read above, and nothing awaits from here to
        # the shield of _cut. A stop there (a cancellation held back by a worker thread
        # raises at the next await) would leave the run's last commit to save the parent
        # split with its rows still covered, which its halves then write again.
        apply_split(self._checkpoint, split)
        if self.spec.format == "parquet":
            split_parts(self._checkpoint, split)
            await self._run.files.close(split.parent.file, sync=False)
            drop_unfinished(self.output / split.parent.file)
        elif cut is not None:
            # Its rows are cut off its file: without an id, its halves cannot skip them,
            # and write them again.
            split.parent.items = split.parent.duplicates = split.parent.unidentified = 0
            await self._cut(split.parent.file, cut)
        self._run.seen.pop(split.parent.key, None)
        logger.warning(
            "%s: the server cannot serve this window (%s); going on with %s",
            split.parent.key,
            printable(split.reason),
            " and ".join(part.key for part in split.parts),
        )
        self.progress.stream_split(len(split.parts))

    async def _skip_expired(self, state: StreamState, *, root: str) -> None:
        """A window Sentry refused as wholly before the organization's retention: its
        events are gone, so it is recorded done as an empty last page would be (asked
        again, on a resume too, it would be refused for ever)."""
        state.outside_retention = True
        end = parse_stamp(state.window_end)
        if self._run.expired_until is None or end > self._run.expired_until:
            self._run.expired_until = end
        logger.info(
            "%s: %s .. %s is wholly before the organization's retention; nothing to export",
            state.key,
            state.window_start,
            state.window_end,
        )
        await self._end_stream(state, root=root)

    async def _end_stream(self, state: StreamState, *, root: str) -> None:
        """Record ``state`` done, as an empty last page would."""
        empty: Page[msgspec.Raw] = Page(
            items=[], cursor=state.cursor, next_cursor=None, prev_cursor=None
        )
        await self._write_page(state, empty, Position(None, 0, True), root=root)

    async def _skip_gone(self, state: StreamState, *, root: str) -> None:
        """A stream whose project or issue can no longer be exported: it ends with what it
        wrote (recorded done, as an empty last page would be), and each project or issue
        found gone is listed under ``skipped`` with why, once; the others go on. Totals
        start over without the projects gone, which they list with the start over (see
        :meth:`_recount`)."""
        if self._aggregates:
            await self._recount(state, root=root)
        else:
            self._record_gone()
            await self._end_stream(state, root=root)

    def _record_gone(self) -> None:
        """List each project or issue found gone under ``skipped``, with why, once."""
        assert self._checkpoint is not None
        recorded = {skipped.id for skipped in self._checkpoint.skipped}
        slugs = {project.id: project.slug for project in self._checkpoint.projects}
        for target, why in self._run.gone.items():
            if target in recorded:
                continue
            slug = slugs.get(target)
            self._checkpoint.skipped.append(
                SkippedProject(
                    id=target, slug=slug, error=why, merged_into=self._run.merged.get(target)
                )
            )
            if self.spec.issues is not None:
                logger.warning(
                    "skipping issue %s from now on, %s; its streams end with what they "
                    "wrote, the other issues are exported",
                    target,
                    why,
                )
            else:
                logger.warning(
                    "skipping project %r (id %s) from now on, %s; %s",
                    slug,
                    target,
                    why,
                    "the totals start over without it"
                    if self._aggregates
                    else "its streams end with what they wrote, the other projects are exported",
                )

    async def _recount(self, state: StreamState, *, root: str) -> None:
        """Totals that may have counted a project now gone start over from their first
        page, over the projects left (with none left, they end empty): rows of a sum over
        other projects are no part of them, and rows without an id cannot be told from
        the new ones. What they wrote is dropped, the checkpoint covering none of it first.

        The projects gone are recorded under ``skipped`` with the start over, in one
        change: a resume that left them out of the totals' requests while going on from
        the old cursor would sum the pages over two sets of projects."""
        assert self._checkpoint is not None
        self.progress.wrote(await self._run.files.drain())
        path = self.output / state.file
        parquet = self.spec.format == "parquet"
        # Checkpoints of earlier versions did not record where a stream began: alone in
        # its file, totals begin it.
        start = state.first_offset or 0
        # Opened again, at its recorded length, by the next page.
        await self._run.files.close(state.file, sync=not parquet)
        cut = None
        if parquet:
            drop_unfinished(path)
        elif state.pages:
            items = self._checkpoint.files[state.file].items - state.items
            cut = await self._sealed_cut(state.file, start, items)
        # Nothing awaits from here to the shield of _cut: see _apply_split.
        self._record_gone()
        _start_over(state)
        self._run.seen.pop(state.key, None)
        await self._cut(state.file, cut)
        if not self._counted(state):
            await self._end_stream(state, root=root)

    async def _rows_to_drop(self, parent: StreamState) -> _Cut | None:
        """Where the rows a split window wrote begin in its file, sealed (``None``: it
        wrote none), checked to be the file's last ones before anything is recorded."""
        assert self._checkpoint is not None
        start = parent.first_offset
        if start is None or not parent.items:
            return None
        file_state = self._checkpoint.files[parent.file]
        # fsynced: the rows before the parent's stay, and a checkpoint now covers them.
        await self._run.files.close(parent.file)
        path = self.output / parent.file
        rows = await anyio.to_thread.run_sync(
            partial(
                rows_written,
                path,
                start,
                file_state.offset,
                compress=self.spec.gzip,
                csv_rows=self.spec.format == "csv",
            )
        )
        if rows != parent.items:
            # Only a run of an earlier version interleaves the streams of a file.
            raise CheckpointError(
                f"stream {parent.key}: the server cannot serve its window, and its rows "
                f"(without an id) are not the last ones in {path}, so they cannot be cut off "
                "for its halves to write them again; start the export over (--restart)"
            )
        return await self._sealed_cut(parent.file, start, file_state.items - parent.items)

    async def _sealed_cut(self, name: str, offset: int, items: int) -> _Cut:
        """The cut of file ``name`` back to ``offset`` and ``items``, with the seal a resume
        checks there, read now: recording it awaits nothing."""
        seal = await anyio.to_thread.run_sync(seal_at, self.output / name, offset, items)
        return _Cut(offset, items, seal)

    async def _cut(self, name: str, cut: _Cut | None) -> None:
        """Record ``cut`` in file ``name``'s state (the rows after it gone), commit, then cut
        the file back: the checkpoint stops covering the rows before they go. Shielded
        from a cancellation, and with nothing awaited before the shield: with what the
        caller changed since its last await, this is one change, which a stop leaves
        whole or not begun (a commit that fails leaves the checkpoint before it, and a
        cut that fails one that a resume cuts the file back to)."""
        assert self._checkpoint is not None
        if cut is not None:
            state = self._checkpoint.files[name]
            state.offset, state.items, state.tail_crc = cut.offset, cut.items, cut.seal
        with anyio.CancelScope(shield=True):
            await self._commit()
            if cut is not None:
                await anyio.to_thread.run_sync(cut_back, self.output / name, cut.offset)

    def _slugs(self) -> dict[str, str]:
        assert self._checkpoint is not None
        if self._run.slugs is None:
            self._run.slugs = request_slugs(self._checkpoint.projects, self._checkpoint.moved)
        return self._run.slugs

    async def _write_page(
        self,
        state: StreamState,
        page: Page[msgspec.Raw],
        after: Position,
        *,
        root: str,
        unconfirmed: str | None = None,
    ) -> None:
        if page.cursor != state.cursor:
            raise CheckpointError(
                f"stream {state.key}: got the page at {self._shown(page.cursor)!r} while "
                f"expecting {self._shown(state.cursor)!r}"
            )
        if after.skip:  # refused: the error names the position, its cursor blanked out
            shown = Position(self._shown(after.cursor), after.skip, after.done)
            check_whole_pages(state.key, shown)
        ids = await self._stream_ids(state)
        absorbed = await self._absorbed(state) if self._run.merged and page.items else None
        kept = dedupe_page(
            page.items,
            ids.met,
            identify=self._identify or self._adds_id,
            text_ids=self.spec.format == "csv",
            leading_ids=self.spec.format == "jsonl",
            skip=self._skip,
            earlier=ids.earlier,
            absorbed=absorbed or frozenset(),
        )
        ids.stale = ids.stale + 1 if kept.stale else 0
        self._overlap += kept.overlap
        log_dropped(state.key, self._shown(page.cursor), kept)
        assert self._checkpoint is not None
        file_state = self._checkpoint.files[state.file]
        # The page and the state that records it change together or not at all: with
        # nothing to wait for there is no await between the two, else a shield covers both.
        options: dict[str, Any] = {
            "fields": self.spec.fields,
            "meta": page.meta,
            "last": after.done,
        }
        files = self._run.files
        stored = files.store_now(state, file_state, kept.lines, **options)
        if stored is not None:
            written = stored
            _record(state, after, page, kept, unconfirmed)
        else:
            with anyio.CancelScope(shield=True):
                written = await files.store(state, file_state, kept.lines, **options)
                _record(state, after, page, kept, unconfirmed)
        if kept.lines and state.target in self._run.merged:
            # A page of an issue merged away, fetched before the merge: what the streams of
            # the issue it went into drop grows.
            self._forget_absorbed(state.target)
        self.progress.page(
            state.key, items=len(kept.lines), bytes_=written, hits=page.hits, dupes=kept.duplicates
        )
        if state.done and self.spec.format == "parquet":
            # The part is renamed into place: record it before anything else can stop us.
            self._run.files.forget(state.file)
            await self._commit()
        if state.done and state.key != root:
            # A half of a split window: its stream goes on with the next half.
            self._run.seen.pop(state.key, None)
            self.progress.part_done()
        if ids.stale >= MAX_STALE_PAGES and not state.done:
            # Written and recorded first: a resume goes on from the page after it.
            # Shown, not resumed from (the checkpoint keeps it): a cursor may echo the token.
            shown = Position(self._shown(after.cursor), after.skip, after.done)
            raise PaginationError(
                f"{state.key}: {ids.stale} pages in a row brought nothing new (empty, or "
                "only items this stream already wrote) while the server kept sending fresh "
                f"cursors; stopping (at {shown})",
                stream=state.key,
                position=shown,
            )

    async def _stream_ids(self, state: StreamState) -> _StreamIds:
        """What ``state`` met in this run, the ids it wrote before read back at the first
        need (its first page, or a check of the row before one)."""
        ids = self._run.seen.get(state.key)
        if ids is None:
            earlier = await self._seen_before(state)
            # Read by the walk and the writer alike: the first to finish reading keeps it.
            ids = self._run.seen.setdefault(state.key, _StreamIds(earlier))
        return ids

    def _keys(self, items: list[msgspec.Raw]) -> list[IdKey | None]:
        """The ids of a page's items, as :func:`dedupe_page` keeps them."""
        csv = self.spec.format == "csv"
        jsonl = self.spec.format == "jsonl"
        return [row_key(item, text_ids=csv, leading_ids=jsonl) for item in items]

    def _follows(
        self,
        state: StreamState,
        head: list[msgspec.Raw],
        recent: frozenset[IdKey],
        *,
        written: bool = False,
    ) -> bool:
        """Whether a page asked one row early (see :class:`~._plan.Overlaps`) begins where
        the walk stands: with a row this stream read already, one of the page before's
        (``recent``), or (``written``: once the writer caught up) one it wrote. Rows
        arriving push read rows onto the page (the walk drops them); rows leaving the list
        move unread rows back to its place, and a page beginning with one, or without the
        row (the list shorter than the walk's offset), means the walk went past rows it
        never read."""
        if not head:
            return False
        key = self._keys(head)[0]
        if key is None or key in recent:
            return True
        ids = self._run.seen.get(state.key)
        return written and ids is not None and (key in ids.met or key in ids.earlier)

    async def _start_over_moved(self, state: StreamState) -> None:
        """Rows moved back under the walk of ``state`` (see :meth:`_follows`): it starts its
        window over from the first page, and what it wrote is dropped again (the ids it met
        count as written before, so re-reading them is not a run of stale pages). A
        stream whose rows never line up stops the run (a resume goes on)."""
        run = self._run
        run.moved_back[state.key] += 1
        if run.moved_back[state.key] > MAX_MOVED_BACK:
            shown = Position(self._shown(state.cursor), 0, state.done)
            raise PaginationError(
                f"{state.key}: rows moved back under its walk {MAX_MOVED_BACK} times in this "
                f"run, each time read again from the window's start; stopping (at {shown})",
                stream=state.key,
                position=shown,
            )
        ids = await self._stream_ids(state)
        ids.earlier |= ids.met
        ids.met = set()
        ids.stale = 0
        logger.warning(
            "%s: rows left the list under its walk (events deleted: an issue's, once its "
            "deletion ended) and moved back past %r; reading the window again from its "
            "start, dropping what was written",
            state.key,
            self._shown(state.cursor),
        )
        state.cursor = None

    async def _absorbed(self, state: StreamState) -> set[IdKey] | None:
        """The ids that the issues merged into the issue of ``state`` while exported wrote
        (``None``: none was): Sentry's merge moves their events into this issue, whose
        streams would write them again. Read back from their files once, and again after
        they wrote more (pages they fetched before the merge), and again on a resume."""
        run = self._run
        into = issue_id(state.target)
        sources = frozenset(issue for issue in run.merged if self._merged_into(issue) == into)
        if not sources:
            return None
        known = run.absorbed.get(into)
        if known is None or known.sources != sources:
            ids: set[IdKey] = set()
            for issue in sorted(sources):
                ids |= await self._written_by(issue)
            known = run.absorbed[into] = _Absorbed(sources, ids)
        return known.ids

    def _forget_absorbed(self, issue: str) -> None:
        """``issue`` wrote more: what it wrote is read back again when next needed."""
        run = self._run
        run.absorbed = {into: ids for into, ids in run.absorbed.items() if issue not in ids.sources}

    async def _written_by(self, issue: str) -> set[IdKey]:
        """The ids in the file of issue ``issue``'s streams, as far as it is written."""
        assert self._checkpoint is not None
        streams = self._checkpoint.streams.values()
        name = next((state.file for state in streams if state.target == issue), None)
        if name is None:
            return set()
        await self._run.files.sync(name)
        end = self._checkpoint.files[name].offset
        if not end:
            return set()
        return await anyio.to_thread.run_sync(
            partial(ids_written, self.output / name, 0, end, compress=self.spec.gzip, columns=None)
        )

    def _merged_into(self, issue: str) -> str | None:
        """The issue that issue ``issue`` went into at last, through issues merged in turn
        (itself, if it was not merged), as Sentry numbers it; ``None`` if the server's
        answer did not name it (an id blanked out) or the merges go round."""
        into = {issue_id(source): target for source, target in self._run.merged.items()}
        current = issue_id(issue)
        for _ in range(len(into) + 1):
            target = into.get(current)
            if target is None:
                return current
            if not is_numeric_id(target):
                return None
            current = str(int(target))
        return None

    async def _seen_before(self, state: StreamState) -> set[IdKey]:
        """Ids a stream must not write again, read back from its file once, at its first
        page of the run: a half of a split window's parent's, and a resumed stream's own
        from before the stop, so that an item the server repeats across the checkpoint (a
        late event shifting the offsets) is dropped as it is in a run that never stopped."""
        assert self._checkpoint is not None
        since = state.dedupe_from
        if since is None and state.pages:
            # Checkpoints of earlier versions did not record where a stream began.
            since = state.first_offset if state.first_offset is not None else 0
        if since is None or not self._identify:
            return set()
        await self._run.files.sync(state.file)
        file_state = self._checkpoint.files[state.file]
        return await anyio.to_thread.run_sync(
            partial(
                ids_written,
                self.output / state.file,
                since,
                file_state.offset,
                compress=self.spec.gzip,
                columns=file_state.columns if self.spec.format == "csv" else None,
            )
        )

    async def _finish_stream(self, state: StreamState, event: StreamDone[str]) -> None:
        if not state.done:
            # Its walk stopped short of the end: finishing it here would lose the rest.
            raise CheckpointError(
                f"stream {state.key}: the walk ended at {state.position!r}, before its end"
            )
        self._run.seen.pop(state.key, None)
        self.progress.stream_done(counted=state.split)
        run = self._run
        run.open_streams[state.file] -= 1
        if run.open_streams[state.file] <= 0:
            await run.files.close(state.file)

    async def _commit(self) -> None:
        """fsync the data, then atomically replace the checkpoint; in that order."""
        checkpoint = self._checkpoint
        if checkpoint is None:
            return
        # Every page handed over is written and recorded before the state is encoded.
        self.progress.wrote(await self._run.files.drain())
        checkpoint.updated_at = now_iso()
        await self._run.files.commit(encode_checkpoint(checkpoint))
        self._run.last_commit = time.monotonic()

    def _manifest(self, checkpoint: Checkpoint) -> Manifest:
        renamed = {
            old: new
            for (org, old), new in self.client.renamed_projects.items()
            if org == self.spec.org
        }
        planned = {project.id: project.slug for project in checkpoint.projects}
        # Renames found by this run or an earlier one, the client having followed them or not.
        renamed.update({planned[p]: slug for p, slug in checkpoint.moved.items() if p in planned})
        # Not a slug that holds the token: its project was skipped (see _names_token).
        renamed = {old: new for old, new in renamed.items() if not names_token(self.client, new)}
        return build_manifest(self.spec.kind, self.spec.org, checkpoint, renamed)


def _warn_outside_retention(checkpoint: Checkpoint) -> None:
    """Say once which part of the range Sentry no longer holds and was skipped."""
    expired = [s for s in checkpoint.streams.values() if s.outside_retention]
    if not expired:
        return
    first = min((s.window_start for s in expired), key=parse_stamp)
    last = max((s.window_end for s in expired), key=parse_stamp)
    logger.warning(
        "%s .. %s is outside the organization's retention: Sentry keeps no events that old, "
        "so %d window(s) in it were skipped with nothing exported (a window reaching into "
        "the retention is exported from the retention's start on)",
        first,
        last,
        len(expired),
    )


def _untouched(checkpoint: Checkpoint) -> bool:
    """Whether no page of the export was written yet."""
    return not any(s.pages for s in checkpoint.streams.values()) and not any(
        f.offset for f in checkpoint.files.values()
    )


def _discard(output: Path, checkpoint: Checkpoint) -> None:
    """Remove an export that wrote nothing: its empty data files, then its checkpoint.
    Relative to the directory its lock pinned: one swapped for a link meanwhile has its
    files removed where they are, not those of the same names the link leads to."""
    for name in checkpoint.files:
        for doomed in (output / name, output / (name + ".tmp")):
            with contextlib.suppress(FileNotFoundError):
                if doomed.name.endswith(".tmp") or lstat_no_follow(doomed).st_size == 0:
                    remove_file(doomed)
    remove_checkpoint(output)


def _read_again(state: StreamState) -> None:
    """An empty window recorded done, as before its first page (it wrote nothing): where
    its items would begin, and the ids before them it must not write again (a half of a
    split window's), stay."""
    state.cursor = state.hits = state.first_offset = state.ended = None
    state.done = False
    state.pages = 0


def _start_over(state: StreamState) -> None:
    """``state`` as before its first page: nothing written, its walk at the start."""
    state.cursor = state.hits = state.first_offset = state.dedupe_from = None
    state.done = False
    state.items = state.pages = state.duplicates = state.unidentified = 0


def _record(
    state: StreamState,
    after: Position,
    page: Page[msgspec.Raw],
    kept: PageItems,
    unconfirmed: str | None,
) -> None:
    """A stored page, in its stream's state (with the store, never apart from it)."""
    state.advance(after)
    state.unconfirmed = unconfirmed
    state.pages += 1
    state.items += len(kept.lines)
    state.duplicates += kept.duplicates
    state.unidentified += kept.unidentified
    if state.hits is None and page.hits is not None:
        state.hits = page.hits
