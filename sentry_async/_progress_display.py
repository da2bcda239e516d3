"""Showing export progress: a live ``rich`` line on a terminal, else log lines.

``rich`` is imported only when a live display is asked for (or picked by ``auto``) and
installed; log lines go through ``logging``, never ``print``. The counters themselves are
:class:`sentry_async.export.Progress`; this module only reads them.
"""

from __future__ import annotations

import logging
import math
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Literal, TextIO

if TYPE_CHECKING:
    from .export._progress import Progress, ProgressSnapshot

__all__ = ["DisplayMode", "show_progress"]

logger = logging.getLogger("sentry_async.export")

DisplayMode = Literal["auto", "rich", "log", "none"]


@contextmanager
def show_progress(
    progress: Progress,
    *,
    mode: DisplayMode = "auto",
    stream: TextIO | None = None,
    log_interval: float = 5.0,
) -> Iterator[None]:
    """Show ``progress`` while the block runs.

    ``auto`` picks a live ``rich`` display when ``stream`` (stderr by default) is a terminal
    and ``rich`` is installed, else a log line every ``log_interval`` seconds, whether the
    export moved or not (a long Retry-After or a hung request still shows it is alive, in a
    CI log too), and one at the end; ``none`` shows nothing. The closing log line is left
    out when the block fails, and the rich display is cleared when the export never began:
    the error is then the whole story. It starts no task: rich refreshes from its own
    thread and log lines come from one too, which ends with the block, so the block's
    exceptions pass through untouched.
    """
    if not 0 < log_interval < math.inf:
        # Zero would log in a busy loop, infinity overflows the timer's wait.
        raise ValueError(
            f"log_interval must be a positive number of seconds (got {log_interval!r})"
        )
    out = stream if stream is not None else sys.stderr
    if mode == "auto":
        mode = "rich" if _isatty(out) and _has_rich() else "log"
    if mode == "none":
        yield
        return
    if mode == "rich":
        with _rich_display(progress, out):
            yield
        return
    with _logging_every(progress, log_interval):
        yield
    logger.info("%s", progress.snapshot().describe())


@contextmanager
def _logging_every(progress: Progress, interval: float) -> Iterator[None]:
    """A progress line every ``interval`` seconds while the block runs, from a thread of
    its own: a stalled export has no progress update to ride on, and a task would need
    an event loop and a scope around the block. The thread is stopped and joined when
    the block ends."""
    stop = threading.Event()

    def tick() -> None:
        while not stop.wait(interval):
            snapshot = progress.snapshot()
            if not snapshot.finished:
                logger.info("%s", snapshot.describe())

    ticker = threading.Thread(target=tick, name="sentry_async progress log", daemon=True)
    ticker.start()
    try:
        yield
    finally:
        stop.set()
        ticker.join()


def _isatty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def _has_rich() -> bool:
    try:
        import rich  # noqa: F401
    except ImportError:
        return False
    return True


@contextmanager
def _rich_display(progress: Progress, out: TextIO) -> Iterator[None]:
    from rich.console import Console
    from rich.live import Live

    console = Console(file=out)
    with (
        Live(
            console=console,
            get_renderable=lambda: _render(progress.snapshot()),
            refresh_per_second=8,
            transient=False,
        ) as live,
        _logs_through(console, out),
    ):
        try:
            yield
        finally:
            if progress.begun:
                live.refresh()
            else:
                live.transient = True


@contextmanager
def _logs_through(console: Any, out: TextIO) -> Iterator[None]:
    """Log handlers that write to ``out`` (the CLI's, an application's on stderr) print
    through the live display's console while it runs: each line goes above the progress
    line, which is drawn again below it, rather than glued onto it or leaving a stale one
    behind. Rich redirects ``sys.stderr`` itself, but a handler keeps the stream it was
    built with."""
    from rich.file_proxy import FileProxy

    proxy = FileProxy(console, out)
    library = [
        logger
        for name, logger in logging.root.manager.loggerDict.items()
        if isinstance(logger, logging.Logger)
        and (name == "sentry_async" or name.startswith("sentry_async."))
    ]
    swapped = [
        handler
        for logger in (logging.root, *library)
        for handler in logger.handlers
        if isinstance(handler, logging.StreamHandler) and handler.stream is out
    ]
    for handler in swapped:
        handler.setStream(proxy)
    try:
        yield
    finally:
        for handler in swapped:
            if handler.stream is proxy:
                handler.setStream(out)


def _render(snapshot: ProgressSnapshot) -> Any:
    from rich.progress_bar import ProgressBar
    from rich.table import Table

    # Imported here: sentry_async.export re-exports show_progress from this module.
    from .export._progress import format_bytes, format_duration

    table = Table.grid(padding=(0, 1))
    fraction = snapshot.fraction
    bar = ProgressBar(total=1.0, completed=fraction if fraction is not None else 0.0, width=24)
    eta = (
        "done"
        if snapshot.finished
        else (f"ETA {format_duration(snapshot.eta)}" if snapshot.eta is not None else "ETA ?")
    )
    table.add_row(
        f"[bold]{snapshot.label}[/bold]",
        bar,
        f"{snapshot.items:,} items",
        f"{snapshot.pages:,} pages",
        format_bytes(snapshot.bytes),
        f"{snapshot.rate:,.0f}/s",
        f"streams {snapshot.streams_done}/{snapshot.streams_total}",
        eta,
    )
    return table
