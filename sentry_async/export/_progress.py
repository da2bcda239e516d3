"""Export progress: a small object to read or subscribe to.

:class:`Progress` is what the exporter updates (items, pages, bytes, streams) and what a
library user reads (:meth:`Progress.snapshot`) or subscribes to; showing it (a live
``rich`` line or log lines) is :func:`sentry_async.export.show_progress`'s job.
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass

__all__ = ["Progress", "ProgressSnapshot", "format_bytes", "format_duration"]

_RATE_WINDOW = 10.0
"""Seconds of history the item rate is computed over: recent speed, not the run's average."""


@dataclass(frozen=True, slots=True)
class ProgressSnapshot:
    """Progress at one moment. ``items``/``pages``/``bytes`` include earlier runs' work.

    ``expected_items`` comes from ``X-Hits`` where Sentry sends it (extrapolated over
    streams not started yet); ``eta`` uses it, or else the share of finished streams.
    """

    label: str
    items: int
    pages: int
    bytes: int
    duplicates: int
    streams_total: int
    streams_done: int
    streams_active: int
    expected_items: int | None
    elapsed: float
    rate: float
    eta: float | None
    finished: bool

    @property
    def fraction(self) -> float | None:
        """Done share from 0 to 1, when it can be told."""
        if self.finished:
            return 1.0
        if self.expected_items:
            return min(1.0, self.items / self.expected_items)
        if self.streams_total:
            return self.streams_done / self.streams_total
        return None

    def describe(self) -> str:
        """One line for logs and plain terminals."""
        parts = [
            f"{self.label}: {self.items:,} items",
            f"{self.pages:,} pages",
            format_bytes(self.bytes),
            f"{self.rate:,.0f} items/s",
            f"streams {self.streams_done}/{self.streams_total}",
        ]
        if self.expected_items is not None and not self.finished:
            parts.append(f"~{self.expected_items:,} expected")
        if self.eta is not None and not self.finished:
            parts.append(f"ETA {format_duration(self.eta)}")
        if self.duplicates:
            parts.append(f"{self.duplicates} duplicates dropped")
        parts.append(f"elapsed {format_duration(self.elapsed)}")
        return ", ".join(parts)


class Progress:
    """Live counters of one export; cheap to update, safe to read at any time.

    Subscribers are called synchronously (in the exporter's task) after every page and
    stream change with a fresh :class:`ProgressSnapshot`; keep them quick.
    """

    def __init__(self, label: str = "export", *, clock: Callable[[], float] = time.monotonic):
        self.label = label
        self._clock = clock
        self._started = clock()
        self._begun = False
        self._finished_at: float | None = None
        self.items = 0
        self.pages = 0
        self.bytes = 0
        self.duplicates = 0
        self.streams_total = 0
        self.streams_done = 0
        self.streams_active = 0
        self._run_items = 0
        self._hits: dict[str, int] = {}
        self._samples: deque[tuple[float, int]] = deque()
        self._subscribers: list[Callable[[ProgressSnapshot], None]] = []

    def subscribe(self, callback: Callable[[ProgressSnapshot], None]) -> Callable[[], None]:
        """Call ``callback`` on every change; returns a function that unsubscribes."""
        self._subscribers.append(callback)

        def unsubscribe() -> None:
            with suppress(ValueError):
                self._subscribers.remove(callback)

        return unsubscribe

    # The exporter's side.

    def begin(
        self,
        *,
        streams_total: int,
        streams_done: int = 0,
        items: int = 0,
        pages: int = 0,
        bytes_: int = 0,
        hits: dict[str, int] | None = None,
    ) -> None:
        """Start (or resume) counting; earlier runs' totals are carried in, not timed."""
        self._begun = True
        self._started = self._clock()
        self._finished_at = None
        self.streams_total = streams_total
        self.streams_done = streams_done
        self.items, self.pages, self.bytes = items, pages, bytes_
        self._hits = dict(hits or {})
        self._run_items = 0
        self._samples.clear()
        self._samples.append((self._started, 0))
        self._notify()

    def stream_started(self) -> None:
        self.streams_active += 1
        self._notify()

    def page(self, stream: str, *, items: int, bytes_: int, hits: int | None, dupes: int) -> None:
        self.items += items
        self.pages += 1
        self.bytes += bytes_
        self.duplicates += dupes
        self._run_items += items
        if hits is not None:
            self._hits.setdefault(stream, hits)
        now = self._clock()
        self._samples.append((now, self._run_items))
        while len(self._samples) > 2 and now - self._samples[0][0] > _RATE_WINDOW:
            self._samples.popleft()
        self._notify()

    def wrote(self, bytes_: int) -> None:
        """Bytes written by pages counted earlier (whose writes had not ended then)."""
        if bytes_:
            self.bytes += bytes_
            self._notify()

    def stream_done(self, *, counted: bool = False) -> None:
        """A stream ended; ``counted`` when it was already counted done (a split one)."""
        if not counted:
            self.streams_done += 1
        self.streams_active = max(0, self.streams_active - 1)
        self._notify()

    def stream_split(self, parts: int) -> None:
        """A stream was replaced by ``parts`` narrower ones: it is done, they are to do."""
        self.streams_total += parts
        self.streams_done += 1
        self._notify()

    def again(self, streams: int) -> None:
        """``streams`` counted done are walked again (their windows read where their project
        is now): more to do."""
        self.streams_total += streams
        self._notify()

    def part_done(self) -> None:
        """A part of a split stream finished; the stream goes on with its next part."""
        self.streams_done += 1
        self._notify()

    def finish(self) -> None:
        self._finished_at = self._clock()
        self.streams_active = 0
        self._notify()

    # The reader's side.

    @property
    def begun(self) -> bool:
        """Whether the export got as far as counting: its streams are planned."""
        return self._begun

    @property
    def finished(self) -> bool:
        return self._finished_at is not None

    def rate(self) -> float:
        """Items per second over the last few seconds of this run."""
        now = self._finished_at if self._finished_at is not None else self._clock()
        if len(self._samples) >= 2:
            (t0, n0), (t1, n1) = self._samples[0], self._samples[-1]
            span = max(now, t1) - t0
            if span > 0:
                return (n1 - n0) / span
        return 0.0

    def expected_items(self) -> int | None:
        """Items the export will hold, from ``X-Hits`` (extrapolated to unseen streams)."""
        if not self._hits or not self.streams_total:
            return None
        known = sum(self._hits.values())
        seen = len(self._hits)
        unseen = max(0, self.streams_total - seen)
        # In integers, rounded to the nearest: a count too big for a float stays a number.
        estimate = known + (2 * unseen * known + seen) // (2 * seen)
        return max(estimate, self.items)

    def eta(self) -> float | None:
        if self.finished:
            return 0.0
        elapsed = self._clock() - self._started
        expected = self.expected_items()
        rate = self.rate()
        if expected is not None and rate > 0:
            return _seconds(expected - self.items, rate)
        if self.streams_done and self.streams_total and elapsed > 0:
            left = self.streams_total - self.streams_done
            return elapsed * left / self.streams_done
        return None

    def snapshot(self) -> ProgressSnapshot:
        end = self._finished_at if self._finished_at is not None else self._clock()
        return ProgressSnapshot(
            label=self.label,
            items=self.items,
            pages=self.pages,
            bytes=self.bytes,
            duplicates=self.duplicates,
            streams_total=self.streams_total,
            streams_done=self.streams_done,
            streams_active=self.streams_active,
            expected_items=self.expected_items(),
            elapsed=end - self._started,
            rate=self.rate(),
            eta=self.eta(),
            finished=self.finished,
        )

    def _notify(self) -> None:
        if not self._subscribers:
            return
        snapshot = self.snapshot()
        for callback in list(self._subscribers):
            callback(snapshot)


def _seconds(left: int, rate: float) -> float | None:
    """Time ``left`` items take at ``rate``; ``None`` (unknown) when no float can hold it."""
    try:
        seconds = left / rate
    except OverflowError:
        return None
    return max(0.0, seconds) if math.isfinite(seconds) else None


def format_bytes(count: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(count) < 1024 or unit == "GiB":
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1024
    return f"{count:.1f} GiB"


def format_duration(seconds: float) -> str:
    if not math.isfinite(seconds):
        return "?"
    seconds = max(0, round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"
