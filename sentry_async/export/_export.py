"""``export()``: one export, or the next run of an incremental one."""

from __future__ import annotations

import logging
import os
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import anyio
import anyio.to_thread

from ..client import SentryClient
from ._incremental import (
    DEFAULT_OVERLAP,
    base_directory,
    check_incremental,
    check_state,
    check_state_path,
    held_back,
    load_state,
    new_state,
    plan_run,
    record_run,
    run_directory,
    run_spec,
    save_state,
    stamped_items,
)
from ._manifest import Manifest
from ._plan import server_identity
from ._progress import Progress
from ._runner import Exporter
from ._spec import ExportSpec
from ._splitting import MIN_SPLIT_WINDOW

__all__ = ["export"]

logger = logging.getLogger("sentry_async.export")


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
    incremental: str | os.PathLike[str] | None = None,
    overlap: timedelta = DEFAULT_OVERLAP,
) -> Manifest:
    """Run one export to the end (see :class:`Exporter`); returns its manifest.

    With ``incremental=STATE_FILE`` it runs the next run of an incremental export instead
    (see :mod:`sentry_async.export._incremental`): what arrived since the previous run,
    looking ``overlap`` back for late events, into ``output/run-<end>/``. A run that
    stopped is resumed first, so ``resume`` and ``restart`` do not apply.
    """

    def exporter(spec: ExportSpec, output: Path, **extra: Any) -> Exporter:
        return Exporter(
            client,
            spec,
            output,
            concurrency=concurrency,
            progress=progress,
            commit_interval=commit_interval,
            min_window=min_window,
            **extra,
        )

    if incremental is None:
        return await exporter(spec, Path(output), resume=resume, restart=restart, now=now).run()
    if resume or restart:
        raise ValueError("an incremental export resumes a stopped run by itself: no resume/restart")
    check_incremental(spec, overlap)
    state_path = check_state_path(incremental)
    base = Path(output)
    lock = base_directory(base)
    with lock:
        try:
            state = load_state(state_path)
            fresh, fingerprint, canonical = new_state(spec, server_identity(client))
            if state is None:
                state = fresh
            check_state(state_path, state, fingerprint, canonical)
            run = state.pending
            if run is None:
                run = plan_run(spec, state, overlap, now or datetime.now(timezone.utc))
                asked = held_back(state, run, overlap)
                if asked is not None:
                    logger.warning(
                        "overlap %s: this run looks back only to %s, not to %s: the ids "
                        "earlier runs kept (with a narrower overlap) start there, and looking "
                        "further back would write their events again; late events timestamped "
                        "before it are missed, the full overlap applies once runs have kept "
                        "ids that far back",
                        overlap,
                        run.start,
                        asked,
                    )
                state.pending = run
                await anyio.to_thread.run_sync(save_state, state_path, state)
            directory = run_directory(base, run)
            manifest = await exporter(
                run_spec(spec, run), directory, resume=True, skip_ids=state.seen.keys()
            ).run()
            # In a thread, reading the files as it goes: only the ids within the overlap
            # are kept, never a list of the whole run.
            await anyio.to_thread.run_sync(
                record_run, state, run, manifest, stamped_items(directory, manifest), overlap
            )
            await anyio.to_thread.run_sync(save_state, state_path, state)
        finally:
            lock.remove()
    return manifest
