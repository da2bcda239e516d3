"""``sentry-async query discover|stats|usage``: a table on a terminal, CSV or JSON Lines in a pipe.

Analysts ask Sentry a question and want the answer as rows. Discover rows stream page by
page in CSV and JSON Lines (constant memory, ``--limit`` to stop early); a terminal table
needs every row for its column widths, so it shows at most ``--limit`` rows (100 by
default) and says on stderr when rows were left out. Server-controlled text shown on a
terminal has its control characters escaped, and columns are aligned by the display width
of their text (East Asian wide characters take two columns).

CSV and JSON Lines are written as UTF-8 whatever the locale: Windows gives a redirected
stdout its ANSI code page, which has no Cyrillic or CJK, and a title is anyone's text. A
table shows what the terminal's encoding cannot as ``\\u`` escapes, measured as shown.
"""

from __future__ import annotations

import argparse
import codecs
import contextlib
import dataclasses
import io
import logging
import unicodedata
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Iterable, Iterator, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, TextIO

import msgspec

from ._csv import cell, row_writer
from ._text import printable
from .errors import SentryError, UntrustedHost
from .tables import (
    _EVENTS_STATS_COLUMNS,
    _each_events_stats_row,
    _usage_column_names,
    usage_rows,
)

if TYPE_CHECKING:
    from .client import SentryClient

__all__ = [
    "ArgumentError",
    "UnusableAnswer",
    "add_query_parser",
    "check_arguments",
    "check_projects",
    "flag_error",
    "run_query",
]

FORMATS = ("auto", "table", "csv", "json")
TABLE_ROWS = 100
"""Rows a terminal table shows when ``--limit`` is not given."""

logger = logging.getLogger("sentry_async.cli")


def add_query_parser(
    commands: Any,
    add_connection_args: Callable[[argparse.ArgumentParser], None],
    add_verbosity_args: Callable[[argparse.ArgumentParser], None],
) -> None:
    """The ``query`` command and its three subcommands."""
    query = commands.add_parser(
        "query",
        help="ask Discover, events-stats or stats_v2 and print rows",
        description="Print the answer to one query: a table on a terminal, CSV otherwise "
        "(--format table, csv or json for JSON Lines).",
    )
    kinds = query.add_subparsers(dest="query_kind", metavar="KIND", required=True)

    def common(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--org", required=True, help="organization slug or id")
        parser.add_argument(
            "--project", action="append", metavar="ID", help="project (repeatable)"
        )
        parser.add_argument("--period", metavar="DURATION", help="the last DURATION (e.g. 24h)")
        parser.add_argument("--since", metavar="WHEN", help="start (naive values are UTC)")
        parser.add_argument("--until", metavar="WHEN", help="end (default: now)")
        parser.add_argument(
            "--format", choices=FORMATS, default="auto", help="auto: table on a terminal, else csv"
        )
        parser.add_argument(
            "--limit",
            type=int,
            metavar="N",
            help=f"stop after N rows (a terminal table: {TABLE_ROWS} unless given)",
        )
        parser.add_argument(
            "--csv-escape-formulas",
            action="store_true",
            help="CSV: prefix text cells that start with = + - @ tab or CR with ' so that "
            "spreadsheets show them as text instead of running them",
        )
        add_connection_args(parser)
        add_verbosity_args(parser)

    discover = kinds.add_parser("discover", help="Discover rows (/organizations/{org}/events/)")
    common(discover)
    discover.add_argument(
        "--field", action="append", required=True, metavar="FIELD", help="column (repeatable)"
    )
    discover.add_argument("--query", help="Sentry search query")
    discover.add_argument("--sort", action="append", metavar="FIELD", help="e.g. -count()")
    discover.add_argument("--dataset", help="errors, transactions, spans ...")
    discover.add_argument("--environment", action="append", metavar="ENV")

    stats = kinds.add_parser("stats", help="counts over time (events-stats)")
    common(stats)
    stats.add_argument("--y-axis", action="append", metavar="EXPR", help="default count()")
    stats.add_argument("--interval", metavar="DURATION", help="bucket size, e.g. 1h")
    stats.add_argument("--query", help="Sentry search query")
    stats.add_argument("--top-events", type=int, metavar="N", help="one series per top group")
    stats.add_argument("--field", action="append", metavar="FIELD", help="group columns")
    stats.add_argument("--order-by", metavar="EXPR", help="e.g. -count()")
    stats.add_argument("--dataset")

    usage = kinds.add_parser("usage", help="organization usage (stats_v2)")
    common(usage)
    usage.add_argument(
        "--group-by",
        action="append",
        metavar="KEY",
        help=(
            "outcome, category, reason or project (repeatable; default outcome, and category "
            "without --category: Sentry needs one or the other)"
        ),
    )
    usage.add_argument("--usage-field", default="sum(quantity)", help="default sum(quantity)")
    usage.add_argument("--interval", metavar="DURATION", help="bucket size, e.g. 1d")
    usage.add_argument("--category", action="append", metavar="CATEGORY")
    usage.add_argument("--outcome", action="append", metavar="OUTCOME")


class ArgumentError(ValueError):
    """An argument refused (by this command or by the client before its request): exit 2,
    the message naming the option."""


class UnusableAnswer(SentryError):
    """The server's answer decoded, but a value in it cannot be made a row (a time that is
    not one, or out of range): the server's problem, not the arguments' (exit 1)."""


_OPTIONS = {
    "fields": "--field",
    "sort": "--sort",
    "query": "--query",
    "dataset": "--dataset",
    "environment": "--environment",
    "limit": "--limit",
    "y_axis": "--y-axis",
    "interval": "--interval",
    "top_events": "--top-events",
    "order_by": "--order-by",
    "group_by": "--group-by",
    "field": "--usage-field",
    "category": "--category",
    "outcome": "--outcome",
    "project": "--project",
    "org": "--org",
}
"""The parameter a client's ValueError starts with -> the option it came from."""

_PHRASES = (
    (
        "usage needs category= (e.g. 'error') or 'category' in group_by",
        "usage needs --category (e.g. error) or --group-by category",
    ),
)
"""Parameters a client's ValueError names inside its message -> the same in flags."""


def flag_error(exc: ValueError) -> str:
    """A refused argument's message, naming the option it came from."""
    message = str(exc)
    for python, flags in _PHRASES:
        if message.startswith(python):
            return flags + message[len(python) :]
    option = _OPTIONS.get(message.split(" ", 1)[0])
    return message if option is None else f"{option}: {message}"


def _parsed(option: str, text: str, parse: Callable[[str], Any]) -> Any:
    try:
        return parse(text)
    except ValueError as exc:
        raise ArgumentError(f"{option} {text}: {exc}") from None


@contextlib.contextmanager
def _client_arguments() -> Iterator[None]:
    """Around a client call that checks its arguments before its request: the client's
    ``ValueError`` is such a refusal (a bad answer is a :class:`~.errors.SentryError`)."""
    try:
        yield
    except UntrustedHost:
        raise
    except ValueError as exc:
        raise ArgumentError(flag_error(exc)) from None


def _answer_rows(
    answer: str, make: Callable[[], Iterable[dict[str, Any]]]
) -> Iterator[dict[str, Any]]:
    """The rows ``make`` turns the server's answer into, one at a time; a value that cannot
    be converted (a time that is not one, or out of range) is :class:`UnusableAnswer`."""
    try:
        yield from make()
    except (ValueError, OverflowError, OSError) as exc:
        raise UnusableAnswer(f"the {answer} answer cannot be made into rows: {exc}") from None


def _range(args: argparse.Namespace) -> dict[str, Any]:
    from .export import format_utc, parse_duration, parse_utc

    if args.period and args.since:
        raise ArgumentError("give --since or --period, not both")
    out: dict[str, Any] = {}
    if args.since:
        start = out["start"] = _parsed("--since", args.since, parse_utc)
        end = out["end"] = (
            _parsed("--until", args.until, parse_utc) if args.until else datetime.now(start.tzinfo)
        )
        if start >= end:
            until = f"--until {args.until}" if args.until else f"now ({format_utc(end)})"
            raise ArgumentError(f"--since {args.since}: not before {until}: the range is empty")
    elif args.until:
        raise ArgumentError("--until needs --since")
    elif args.period:
        out["period"] = _parsed("--period", args.period, parse_duration)
    return out


def check_arguments(args: argparse.Namespace) -> None:
    """What can be refused before any request (exit 2, naming the option)."""
    fields = getattr(args, "field", None) or ()
    if any(not name.strip() for name in fields):
        raise ArgumentError("--field: a field name must not be empty")
    for name in fields:
        # Sentry keys rows by the field as sent: a padded one would head a column of its own.
        if name != name.strip():
            raise ArgumentError(
                f"--field {name!r}: a field name must not start or end with blanks"
            )
    if any(not expression.strip() for expression in getattr(args, "y_axis", None) or ()):
        raise ArgumentError("--y-axis: an expression must not be empty")
    if getattr(args, "limit", None) is not None and args.limit < 1:
        raise ArgumentError("--limit must be at least 1")
    _range(args)


async def check_projects(client: SentryClient, args: argparse.Namespace) -> None:
    """Every ``--project`` slug or id must be one of the organization's (exit 4 otherwise, as
    for an export): Sentry answers an id it does not have with a 403, which would read as a
    refused token."""
    from ._protocol.params import is_numeric_id
    from .export import UnknownProjectError

    refs = [p for p in args.project or () if p != "-1"]
    if not refs:
        return
    known = await client.load_project_ids(args.org)
    # Sentry reads ids as integers: "0101" is project 101.
    ids = {int(i) for i in known.values() if is_numeric_id(i)}
    missing = [ref for ref in refs if not (int(ref) in ids if is_numeric_id(ref) else ref in known)]
    if missing:
        raise UnknownProjectError(
            f"--project {', '.join(missing)}: no such project in organization {args.org!r}"
        )


@dataclasses.dataclass
class _Rest:
    """Whether the answer holds rows past those handed out, once the rows have run out."""

    more: bool = False


async def _discover_rows(
    client: SentryClient,
    args: argparse.Namespace,
    columns: list[str],
    limit: int | None = None,
    rest: _Rest | None = None,
) -> AsyncGenerator[dict[str, Any], None]:
    """The query's rows, at most ``limit``; ``columns`` is filled once the first page is in,
    even a page without rows, so that an empty answer still has its header. ``rest`` is
    told whether rows remain past the limit: the walk ends short of done where the last
    page held more than the limit took, or its ``Link`` says results="true" (Sentry's
    paginator asks for a row more than the page to know), so no page is fetched for it."""
    with _client_arguments():
        paginator = client.discover.query(
            args.org,
            fields=args.field,
            query=args.query,
            sort=args.sort,
            project=args.project,
            environment=args.environment,
            dataset=args.dataset,
            limit=limit,
            **_range(args),
        )
    async with contextlib.aclosing(paginator.pages()) as pages:
        async for page in pages:
            if not columns:
                meta = getattr(page.meta, "fields", None) or {}
                columns.extend(dict.fromkeys([*args.field, *meta]))
            for row in page.items:
                yield row
            # Written: not kept while the next page is fetched and decoded.
            del page
    if rest is not None:
        rest.more = not paginator.position.done


async def _rows(
    client: SentryClient,
    args: argparse.Namespace,
    columns: list[str],
    limit: int | None,
    rest: _Rest | None = None,
) -> AsyncGenerator[dict[str, Any], None]:
    """Every row of the answer (Discover: at most ``limit``, which the query stops at, and
    ``rest`` told whether more remain)."""
    if args.query_kind == "discover":
        discover_rows = _discover_rows(client, args, columns, limit, rest)
        async with contextlib.aclosing(discover_rows) as discover:
            async for row in discover:
                yield row
        return
    rows: Iterator[dict[str, Any]]
    header: list[str] = []
    if args.query_kind == "stats":
        with _client_arguments():
            stats = await client.stats.events(
                args.org,
                y_axis=args.y_axis or "count()",
                query=args.query,
                project=args.project,
                interval=args.interval,
                top_events=args.top_events,
                fields=args.field,
                order_by=args.order_by,
                dataset=args.dataset,
                **_range(args),
            )
        # Rows are made as they are written, and the decoded original is not kept beside
        # the series: a large answer is in memory once.
        series = dataclasses.replace(stats, raw=None)
        rows = _answer_rows("events-stats", lambda: _each_events_stats_row(series))
        del stats
        # An answer without series (top events matching nothing) is still a table.
        header = list(_EVENTS_STATS_COLUMNS)
    else:
        with _client_arguments():
            usage = await client.stats.usage(
                args.org,
                group_by=args.group_by
                or (["outcome"] if args.category else ["outcome", "category"]),
                field=args.usage_field,
                interval=args.interval,
                project=args.project,
                category=args.category,
                outcome=args.outcome,
                **_range(args),
            )
        rows = _answer_rows("stats_v2 (usage)", lambda: usage_rows(usage))
        # The query's columns, known without a row: an answer with no group is a header.
        header = _usage_column_names(usage)
    first = next(rows, None)
    if first is None:
        columns.extend(header)
        return
    columns.extend(first)
    yield first
    del first
    for row in rows:
        yield row


_ZWJ = "\u200d"
"""Zero-width joiner: what an emoji sequence (a family, a flag with a sign) is joined by."""


def _width(text: str) -> int:
    """Display columns of ``text`` on a terminal: East Asian wide and fullwidth characters
    take two, combining marks and joiners none, and so does what a joiner joins (an emoji
    sequence shows as one emoji)."""
    width = 0
    joined = False
    for char in text:
        if not joined and char != _ZWJ and unicodedata.category(char) not in ("Mn", "Me"):
            width += 2 if unicodedata.east_asian_width(char) in ("W", "F") else 1
        joined = char == _ZWJ
    return width


def _shown(text: str, encoding: str | None = None) -> str:
    """``text`` for the table: control and format characters escaped except the joiner of
    emoji sequences, which changes no layout; so is, as ``\\u041e``, what ``encoding`` (the
    terminal's) has no bytes for, before the columns are measured."""
    shown = _ZWJ.join(printable(part) for part in text.split(_ZWJ))
    if encoding is None:
        return shown
    return shown.encode(encoding, "backslashreplace").decode(encoding)


def _encoding(out: TextIO) -> str | None:
    """The encoding ``out`` writes in, if it has one Python knows (a ``StringIO`` has none:
    it takes any text)."""
    name = getattr(out, "encoding", None)
    if not isinstance(name, str):
        return None
    try:
        return codecs.lookup(name).name
    except LookupError:
        return None


def _unwritable(out: TextIO, exc: UnicodeEncodeError) -> OSError:
    """An output error (exit 5) naming what a stream could not encode: stdout is switched to
    UTF-8 (:func:`_utf_8`) or escaped for, so this is a stream a program gave ``main``."""
    char = exc.object[exc.start : exc.end][:1]
    encoding = _encoding(out) or exc.encoding
    return OSError(f"the output's encoding ({encoding}) cannot write {char!a}")


@contextlib.contextmanager
def _utf_8(out: TextIO) -> Iterator[None]:
    """``out`` writes UTF-8 for the time of the block, then its own encoding again (for a
    program around ``main``): CSV and JSON Lines are the same bytes in any locale."""
    if not isinstance(out, io.TextIOWrapper) or _encoding(out) == "utf-8":
        yield
        return
    encoding, errors = out.encoding, out.errors
    out.reconfigure(encoding="utf-8", errors=errors)
    try:
        yield
    finally:
        out.reconfigure(encoding=encoding, errors=errors)


def _pad(text: str, width: int) -> str:
    return text + " " * (width - _width(text))


def _table(columns: Sequence[str], rows: Iterable[dict[str, Any]], out: TextIO) -> None:
    encoding = _encoding(out)
    cells = [[_shown(cell(row.get(name)), encoding) for name in columns] for row in rows]
    header = [_shown(name, encoding) for name in columns]
    widths = [max([_width(h), *(_width(r[i]) for r in cells)]) for i, h in enumerate(header)]

    def line(texts: Sequence[str]) -> str:
        return "  ".join(_pad(t, w) for t, w in zip(texts, widths, strict=True)).rstrip()

    try:
        print(line(header), file=out)
        print("  ".join("-" * w for w in widths), file=out)
        for row in cells:
            print(line(row), file=out)
    except UnicodeEncodeError as exc:
        raise _unwritable(out, exc) from None


async def run_query(client: SentryClient, args: argparse.Namespace, out: TextIO) -> int:
    """Run the query and print it; returns the number of rows printed."""
    fmt = args.format
    if fmt == "auto":
        fmt = "table" if out.isatty() else "csv"
    check_arguments(args)
    await check_projects(client, args)
    columns: list[str] = []
    limit: int | None = getattr(args, "limit", None)
    if fmt == "table":
        limit = limit or TABLE_ROWS
    # Discover stops at the limit and tells whether rows remain (no page is fetched to
    # learn it); stats and usage answers are in memory, and the table reads one row past.
    rest = _Rest()
    # Closed here, whatever ends the loop (a full table, a failed write), not later by
    # the event loop.
    async with contextlib.aclosing(_rows(client, args, columns, limit, rest)) as rows:
        if fmt == "table":
            assert limit is not None
            kept: list[dict[str, Any]] = []
            more = False
            async for row in rows:
                if len(kept) >= limit:
                    more = True
                    break
                kept.append(row)
            more = more or rest.more
            _table(columns or sorted({k for row in kept for k in row}), kept, out)
            if more:
                await _tell_cut(rows, len(kept), args.query_kind != "discover")
            return len(kept)
        escape = bool(getattr(args, "csv_escape_formulas", False))
        with _utf_8(out):
            return await _write_rows(rows, columns, fmt, out, limit=limit, escape_formulas=escape)


async def _tell_cut(rest: AsyncIterator[dict[str, Any]], shown: int, counted: bool) -> None:
    """Say on stderr that the table stopped before the answer did. Stats and usage answers
    are in memory and counted; Discover's next pages are not fetched to count them."""
    hint = "use --limit N or --format csv for more"
    if counted:
        total = shown + 1
        async for _ in rest:
            total += 1
        logger.warning("showing %d of %d rows; %s", shown, total, hint)
    else:
        logger.warning("showing %d rows, more remain; %s", shown, hint)


async def _write_rows(
    rows: AsyncIterator[dict[str, Any]],
    columns: list[str],
    fmt: str,
    out: TextIO,
    *,
    limit: int | None = None,
    escape_formulas: bool = False,
) -> int:
    writer = row_writer(out) if fmt == "csv" else None

    def header() -> list[str]:
        # Columns beyond --field are named by the server (meta.fields, known once the first
        # page is in): escaped as values are.
        return [cell(name, escape_formulas=escape_formulas) for name in columns]

    encoder = msgspec.json.Encoder()
    count = 0
    async for row in rows:
        if limit is not None and count >= limit:
            break
        try:
            if writer is not None:
                if count == 0:
                    writer(header())
                writer([cell(row.get(n), escape_formulas=escape_formulas) for n in columns])
            else:
                out.write(encoder.encode({k: _json_value(v) for k, v in row.items()}).decode())
                out.write("\n")
        except UnicodeEncodeError as exc:
            raise _unwritable(out, exc) from None
        count += 1
    if writer is not None and count == 0 and columns:
        # An empty answer is still a table: its header tells what it would hold.
        try:
            writer(header())
        except UnicodeEncodeError as exc:
            raise _unwritable(out, exc) from None
    return count


def _json_value(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime) else value
