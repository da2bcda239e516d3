"""What an export is: :class:`ExportSpec`, checked at creation, and its fingerprint."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Literal, TypeVar

import msgspec

from .._protocol.params import check_page_size, check_slug, hide_tokens, is_numeric_id, issue_id
from ..resources.discover import MAX_FIELDS
from ._errors import ExportRangeError
from ._formats import FORMATS, ExportFormat
from ._windows import format_utc, parse_duration, parse_utc

__all__ = [
    "DEFAULT_DISCOVER_FIELDS",
    "DEFAULT_PERIOD",
    "ExportKind",
    "ExportSpec",
    "adds_id",
    "is_aggregate",
]

T = TypeVar("T")

ExportKind = Literal["issues", "events", "discover"]
DEFAULT_DISCOVER_FIELDS = ("id", "timestamp", "title", "project", "event.type", "message")
"""Discover columns exported when none are given."""

_KINDS = frozenset({"issues", "events", "discover"})
_FUNCTION = re.compile(r"^\s*[A-Za-z_][A-Za-z0-9_]*\(.*\)\s*$", re.DOTALL)
DEFAULT_PERIOD = timedelta(days=30)
"""The range of an export given neither a start nor a period: the last 30 days."""


def is_aggregate(field: str) -> bool:
    """``count()``, ``p95(transaction.duration)``, ``equation|...``: a value over many rows."""
    return field.startswith("equation|") or _FUNCTION.match(field) is not None


def adds_id(spec: ExportSpec) -> bool:
    """Whether the exporter asks Discover for ``id`` beside the fields: rows of events (no
    aggregate) are paged by offset, so events arriving at the head push written rows onto
    the next page, and only their ids tell them apart. Sentry adds ``id`` (and
    ``project.name``) to such rows unasked (``resolve_select``'s ``auto_fields``): asking
    it changes no row. A row of totals is one per group, with no id to ask for."""
    return (
        spec.kind == "discover"
        and "id" not in spec.fields
        and not any(is_aggregate(field) for field in spec.fields)
    )


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
    ``format`` (Discover only): ``"jsonl"``, ``"csv"`` (a header, then one row per line)
    or ``"parquet"`` (one part per window, typed from Discover's ``meta``; needs pyarrow).
    ``csv_escape_formulas`` (CSV only) prefixes text cells that a spreadsheet would run as a
    formula (starting with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return) with ``'``.
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
    format: ExportFormat = "jsonl"
    csv_escape_formulas: bool = False

    def __post_init__(self) -> None:
        if self.kind not in _KINDS:
            raise ValueError(f"kind must be one of {sorted(_KINDS)} (got {self.kind!r})")
        if self.format not in FORMATS:
            raise ValueError(f"format must be one of {list(FORMATS)} (got {self.format!r})")
        if self.format != "jsonl" and self.kind != "discover":
            raise ValueError(f"format={self.format!r} is for kind='discover' (rows with columns)")
        if self.format == "parquet" and self.gzip:
            raise ValueError("gzip is for jsonl and csv; Parquet compresses its own columns")
        if self.csv_escape_formulas and self.format != "csv":
            raise ValueError("csv_escape_formulas is for format='csv'")
        _slug(self.org, "org")
        if self.projects is not None:
            object.__setattr__(self, "projects", _unique(self.projects, "project", numeric=True))
            if not self.projects:
                raise ValueError("projects must not be empty (use None for every project)")
        if self.issues is not None:
            if self.kind != "events":
                raise ValueError("issues= selects the events of issues: use it with kind='events'")
            ids = _unique(self.issues, "issue")
            if not ids or not all(is_numeric_id(issue) for issue in ids):
                shown = hide_tokens(repr(list(self.issues)))
                raise ValueError(f"issue ids are numeric (got {shown})")
            issues: dict[str, str] = {}
            for issue in ids:
                # As the client checks each id (0 is none), before anything is written. One
                # stream per issue: "05" is issue 5 to Sentry, and two streams of it wrote
                # its events twice. The first spelling is kept, "05" too: the fingerprint of
                # exports begun so stays.
                issues.setdefault(issue_id(issue), issue)
            if self.projects is not None:
                raise ValueError("give projects or issues, not both")
            object.__setattr__(self, "issues", tuple(issues.values()))
        if self.fields and self.kind != "discover":
            raise ValueError("fields are for kind='discover'")
        if self.kind == "discover" and not self.fields:
            object.__setattr__(self, "fields", DEFAULT_DISCOVER_FIELDS)
        object.__setattr__(self, "fields", tuple(self.fields))
        if not all(isinstance(name, str) and name.strip() == name != "" for name in self.fields):
            # Refused here, not by the first request: that comes after the checkpoint. A
            # blank-padded name would head a column no row is keyed by.
            raise ValueError(
                "fields must be non-empty names without surrounding blanks "
                + hide_tokens(f"(got {list(self.fields)!r})")
            )
        if len(self.fields) > MAX_FIELDS:
            # Refused by the client too, but only at the first query, inside the walk.
            raise ValueError(f"fields must hold 1 to {MAX_FIELDS} field expressions")
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
            raise ExportRangeError(
                "start",
                f"{format_utc(start)} is not before the end {format_utc(end)}: the range is empty",
            )
        window = self.window_size()
        if window is not None and window < timedelta(seconds=1):
            raise ValueError("window must be at least one second (or None)")
        check_page_size(self.page_size, "page_size")

    def _parse_strings(self) -> None:
        """``"14d"``, ``"2026-01-01"``, ``"none"``: what the command line takes, parsed."""
        for name, parse in (("start", parse_utc), ("end", parse_utc), ("period", parse_duration)):
            value = getattr(self, name)
            if isinstance(value, str):
                object.__setattr__(self, name, _parsed(parse, value, name))
        if isinstance(self.window, str):
            text = self.window.strip().lower()
            window = None if text == "none" else _parsed(parse_duration, self.window, "window")
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
        if self.format != "jsonl":
            # Left out for JSON Lines: exports begun before formats existed still resume.
            out["format"] = self.format
        if self.csv_escape_formulas:
            # Left out when off: exports begun before the option existed still resume.
            out["csv_escape_formulas"] = True
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



def _parsed(parse: Callable[[str], T], value: str, name: str) -> T:
    """``parse(value)``, whose error repeats the value, named and without a token in it."""
    try:
        return parse(value)
    except ValueError as exc:
        message = hide_tokens(f"{name}: {exc}")
    # Raised here, not in the handler: the error it replaces, chained, would show the value.
    raise ValueError(message)


def _slug(value: str | int, name: str) -> str:
    """:func:`check_slug`, whose error repeats the value, without a token in it."""
    try:
        return check_slug(value, name)
    except ValueError as exc:
        message = hide_tokens(str(exc))
    raise ValueError(message)


def _unique(values: Sequence[str | int], name: str, *, numeric: bool = False) -> tuple[str, ...]:
    """Each value once, without surrounding blanks; with ``numeric``, ids (ASCII digits) as
    Sentry reads them, integers: ``"05"`` is ``"5"`` (slugs are never all digits)."""
    if isinstance(values, (str, int)):
        values = [values]
    out: list[str] = []
    for value in values:
        text = _slug(value, name)
        if numeric and is_numeric_id(text):
            text = str(int(text))
        if text not in out:
            out.append(text)
    return tuple(out)
