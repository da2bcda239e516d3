"""Window splitting: a window the server cannot serve goes on as its two halves.

Sentry answers a query too heavy for its window with a "Query timeout" 400 (still there
after the client's retries), and a cursor too deep into one window with "Pagination
offset too large". Either way the stream's window is halved, down to a minimum, and each
half becomes a stream of its own; the halves ask for the parent's items again, so those
the parent already wrote are skipped by id.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from .._protocol.errors import is_query_timeout
from ..errors import APIError, ErrorDetail
from ._checkpoint import Checkpoint, StreamState
from ._files import parse_stamp
from ._windows import Window, format_utc, halve

__all__ = [
    "MIN_SPLIT_WINDOW",
    "OUTSIDE_RETENTION",
    "Expired",
    "Split",
    "apply_split",
    "halves",
    "outside_retention",
    "unservable_window",
]

MIN_SPLIT_WINDOW = timedelta(minutes=1)
"""Windows the server cannot serve are halved down to this size, then the error stands."""

OUTSIDE_RETENTION = "Invalid date range. Please try a more recent date range."
"""Sentry's detail for a query whose range ends before the organization's retention
begins (``QueryOutsideRetentionError``). A range only partly before it is served from the
retention's start on, without a word."""


@dataclass(frozen=True, slots=True)
class Split:
    """The server cannot serve ``parent``'s window: ``parts`` (its halves) go on instead."""

    parent: StreamState
    parts: tuple[StreamState, ...]
    reason: str


@dataclass(frozen=True, slots=True)
class Expired:
    """The server refused ``state``'s window as wholly before the organization's retention."""

    state: StreamState


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


def outside_retention(error: BaseException) -> bool:
    """Whether Sentry refused a window because all of it lies before the organization's
    retention: the 400 with exactly that detail, no other. Its events are gone, so the
    window has nothing to export; asking again, or for its halves, never succeeds."""
    if not isinstance(error, APIError) or error.status != 400:
        return False
    detail = error.detail
    text = detail.message if isinstance(detail, ErrorDetail) else detail
    return text == OUTSIDE_RETENTION


def halves(state: StreamState, minimum: timedelta) -> tuple[StreamState, ...] | None:
    """The two streams that replace ``state``, or ``None`` if its window is the minimum."""
    window = Window(parse_stamp(state.window_start), parse_stamp(state.window_end))
    parts = halve(window, minimum)
    if parts is None:
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
        for half in parts
    )


def apply_split(checkpoint: Checkpoint, split: Split) -> None:
    """Record the halves in the checkpoint in place of their parent.

    Runs where pages are written, after every page of the parent: the halves ask for
    the parent's items again, so those already in the file (from ``first_offset`` on)
    are skipped, in this run and in a resumed one.
    """
    parent = split.parent
    since = parent.dedupe_from if parent.dedupe_from is not None else parent.first_offset
    if since is None and parent.items:
        # Written by an earlier version, which did not record where the parent began.
        since = 0
    for part in split.parts:
        part.dedupe_from = since
        checkpoint.streams[part.key] = part
    parent.split = True
    parent.done = True
