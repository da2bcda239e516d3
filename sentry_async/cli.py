"""The ``sentry-async`` command: resumable exports, and a demo against a bundled fake Sentry.

Only argument parsing, token loading, error-to-exit-code mapping and summaries live here;
the work is :mod:`sentry_async.export`'s. Output that answers the command (the summary)
goes to stdout; progress, logs and errors go to stderr. The token is never printed: not
in errors, logs, progress, or ``--help``.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import logging
import os
import signal
import sys
import threading
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, NoReturn, TextIO, TypeVar

try:
    import anyio

    from ._protocol.hosts import DEFAULT_BASE_URL
    from ._query_command import add_query_parser
    from ._text import printable
    from ._version import __version__
except KeyboardInterrupt:
    # Ctrl-C while the command starts (these take the time): its line and exit code. With
    # stderr closed, print(file=None) would write to stdout: nothing is said then.
    if sys.stderr is not None:
        print("sentry-async: interrupted", file=sys.stderr)
    raise SystemExit(130) from None

__all__ = [
    "EXIT_API",
    "EXIT_AUTH",
    "EXIT_INTERRUPTED",
    "EXIT_NOT_FOUND",
    "EXIT_OK",
    "EXIT_OUTPUT",
    "EXIT_STDOUT_CLOSED",
    "EXIT_TERMINATED",
    "EXIT_USAGE",
    "main",
    "run",
]

EXIT_OK = 0
EXIT_API = 1
EXIT_USAGE = 2
EXIT_AUTH = 3
EXIT_NOT_FOUND = 4
EXIT_OUTPUT = 5
EXIT_INTERRUPTED = 130
EXIT_TERMINATED = 143
EXIT_STDOUT_CLOSED = 141
"""128 + SIGPIPE: what a shell reports for a program whose reader went away (``| head``)."""

DEFAULT_PERIOD = "30d"
DEMO_SEED = 0
DEMO_PERIOD = timedelta(days=30)

logger = logging.getLogger("sentry_async.cli")

_T = TypeVar("_T")

_RANGE_OPTIONS = {"start": "since", "end": "until", "period": "period", "window": "window"}
"""ExportRangeError.argument -> the option (attribute of the parsed arguments) it comes from."""

_SPEC_OPTIONS = {
    "org": "--org",
    "project": "--project",
    "projects": "--project",
    "issue": "--issue",
    "issues": "--issue",
    "fields": "--field",
    "query": "--query",
}
"""The first word of an ExportSpec's ValueError -> the option it comes from."""

DEFAULT_WINDOW = "1d"
DEFAULT_OVERLAP = "1h"

_EPILOG = f"""\
times:
  --since/--until take a date (2026-01-01) or an ISO datetime (2026-01-01T12:00:00+02:00);
  a value without an offset is taken as UTC. Without --since or --period the range is the
  last {DEFAULT_PERIOD}. The range is pinned to absolute times when the export starts and kept on
  --resume, so a resumed "--period 14d" export covers the same 14 days.

output (DIR):
  <target>.jsonl[.gz]   one file per project (issue-<id> for --issue), one item per line,
                        the exact JSON Sentry sent; gzip files hold one gzip member per page
  <target>.csv[.gz]     discover --format csv: a header (the --field columns), one row per line
  <target>.<from>-<to>.parquet
                        discover --format parquet: one part per window, written when the
                        window is complete and never rewritten (needs the arrow extra)
  checkpoint.json       progress per stream while the export runs; lets --resume continue
                        after any stop; removed once the export is complete
  manifest.json         written at the end: counts per file and stream, range, arguments
  run-<end>/            --incremental: each run's own export (the files above) in DIR

exit codes:
  0  done (an export's summary that stdout refuses is left out: its output is its files)
  1  API or network error (5xx, timeouts, undecodable page), after retries
  2  bad arguments (including an empty or unusable time range), or no token
  3  authentication failed (401) or permission denied (403)
  4  organization, project or issue not found (404)
  5  output directory refused: not empty, other arguments or another server on --resume,
     locked, damaged, not a directory, or holding a planted link
  130 interrupted (Ctrl-C): the checkpoint is saved, run again with --resume
  141 a query's stdout closed early (piped into head): the output stops quietly; one
      started with stdout closed (>&-) says so on stderr
  143 terminated (SIGTERM): as on Ctrl-C

network:
  proxies come from $HTTPS_PROXY/$HTTP_PROXY/$NO_PROXY, read as urllib reads them (no
  .netrc); --ca-bundle PATH (default $SSL_CERT_FILE) trusts a private CA instead of the
  system's.

the token comes from --token-file (at most 4 KiB read) or $SENTRY_AUTH_TOKEN and is never
printed.
"""


class _UsageError(Exception):
    """A problem with the arguments found after parsing (exit 2)."""


class _Parser(argparse.ArgumentParser):
    """Options only as spelled out, never by a prefix (with prefixes, ``--token SECRET`` was
    ``--token-file SECRET``, and its error printed the token); errors without a value shaped
    like a token. Subparsers are made of this class too (``add_subparsers``' default)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs["allow_abbrev"] = False
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> NoReturn:
        from ._protocol.params import hide_tokens

        super().error(hide_tokens(message))


class _RefuseToken(argparse.Action):
    """``--token``/``--auth-token``, as the examples and sentry-cli take one: refused without
    repeating the value. On the command line a token is seen by every user of the machine
    (``ps``) and kept in the shell's history."""

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: Any,
        option_string: str | None = None,
    ) -> None:
        parser.error(
            f"{option_string}: a token is not taken on the command line (other users see it, "
            "the shell's history keeps it): set SENTRY_AUTH_TOKEN or pass --token-file PATH"
        )


class _Discard(io.StringIO):
    """Where the command's errors and logs go when it was started with stderr closed
    (``2>&-``): nowhere. Python has no ``sys.stderr`` then, and ``print(file=None)`` would
    write them to stdout, among the data."""

    def write(self, text: str) -> int:
        return len(text)


@dataclass
class _Outcome:
    code: int
    message: str


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (public for docs and tests)."""
    parser = _Parser(
        prog="sentry-async",
        description="Export Sentry issues, raw events and Discover rows to JSON Lines, "
        "resumably and exactly once.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    exporter = commands.add_parser(
        "export",
        help="export issues, events or Discover rows to a directory",
        description="Export to DIR: one JSON Lines file per project, a checkpoint while "
        "running, a manifest at the end.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    exporter.add_argument(
        "kind",
        choices=("issues", "events", "discover"),
        help="issues; events (full raw payloads); discover (rows of --field)",
    )
    exporter.add_argument("--org", required=True, help="organization slug or id")
    exporter.add_argument(
        "--project",
        action="append",
        metavar="SLUG",
        help="a project slug or id (repeatable; default: every project of the org)",
    )
    exporter.add_argument(
        "--issue",
        action="append",
        metavar="ID",
        help="events: export these issues' events instead of projects' (repeatable)",
    )
    when = exporter.add_argument_group("time range (naive values are UTC)")
    when.add_argument("--since", metavar="WHEN", help="start: 2026-01-01 or ISO datetime")
    when.add_argument("--until", metavar="WHEN", help="end (default: now)")
    when.add_argument(
        "--period",
        metavar="DURATION",
        help=f"the last DURATION, e.g. 14d, 12h, 2w (default {DEFAULT_PERIOD})",
    )
    exporter.add_argument("--query", help="Sentry search query (issues: default all issues)")
    exporter.add_argument(
        "--field",
        action="append",
        metavar="FIELD",
        help="discover: a column to export (repeatable; default id, timestamp, title, ...)",
    )
    exporter.add_argument("--output", "-o", required=True, metavar="DIR", help="output directory")
    again = exporter.add_mutually_exclusive_group()
    again.add_argument("--resume", action="store_true", help="continue the export already in DIR")
    again.add_argument(
        "--restart",
        action="store_true",
        help="remove the export already in DIR (failed, stale or with other arguments) and "
        "start over",
    )
    exporter.add_argument("--gzip", action="store_true", help="write .jsonl.gz (.csv.gz) files")
    exporter.add_argument(
        "--format",
        choices=("jsonl", "csv", "parquet"),
        default="jsonl",
        help="discover: JSON Lines (default), CSV, or Parquet parts typed from Discover's meta",
    )
    exporter.add_argument(
        "--csv-escape-formulas",
        action="store_true",
        help="with --format csv: prefix text cells that start with = + - @ tab or CR with ' "
        "so that spreadsheets show them as text instead of running them",
    )
    exporter.add_argument(
        "--window",
        metavar="DURATION",
        help="events, discover: split the range into windows of DURATION, each with its own "
        "cursor (default 1d; 'none' for one window); a duration is refused for issues and "
        "Discover aggregates, which are one query over the whole range",
    )
    exporter.add_argument(
        "--concurrency",
        type=_positive_int,
        default=4,
        metavar="N",
        help="streams fetched at once (default 4)",
    )
    exporter.add_argument(
        "--incremental",
        metavar="STATE_FILE",
        help="events, discover: export what arrived since the last run recorded in STATE_FILE "
        "(the first run: --since/--period) into DIR/run-<end>/; a stopped run is resumed first",
    )
    exporter.add_argument(
        "--overlap",
        metavar="DURATION",
        help="with --incremental only: look this far back before the last run's end for late "
        "events (default 1h; older late events are missed)",
    )
    _add_connection_args(exporter)
    _add_verbosity_args(exporter)

    demo = commands.add_parser(
        "demo",
        help="export from a bundled fake Sentry: no token, no network",
        description="Start the bundled fake Sentry on 127.0.0.1, export one organization's "
        "issues and full raw events of the last 30 days from it, and print a summary.",
    )
    demo.add_argument(
        "--output",
        "-o",
        metavar="DIR",
        help="output directory (default: a new temp dir); run again with the same DIR to "
        "finish a stopped demo",
    )
    demo.add_argument(
        "--scale",
        choices=("small", "default", "large"),
        default="default",
        help="size of the fake data set (default: default)",
    )
    demo.add_argument("--gzip", action="store_true", help="write .jsonl.gz files")
    demo.add_argument(
        "--concurrency", type=_positive_int, default=4, metavar="N", help="streams at once"
    )
    _add_verbosity_args(demo)
    add_query_parser(commands, _add_connection_args, _add_verbosity_args)
    return parser


def _add_connection_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--base-url",
        metavar="URL",
        help=f"Sentry's URL (default: $SENTRY_URL, else {DEFAULT_BASE_URL})",
    )
    parser.add_argument(
        "--token-file",
        metavar="PATH",
        help="read the auth token from PATH (default: $SENTRY_AUTH_TOKEN)",
    )
    parser.add_argument(
        "--token",
        "--auth-token",
        action=_RefuseToken,
        default=argparse.SUPPRESS,
        help=argparse.SUPPRESS,
    )
    parser.add_argument(
        "--allow-insecure-http",
        action="store_true",
        help="allow a plain http:// URL for a host other than localhost; the token would "
        "travel unencrypted",
    )
    parser.add_argument(
        "--ca-bundle",
        metavar="PATH",
        help="trust the CA certificates in PATH (PEM) instead of the system's, for an install "
        "behind a private CA (default: $SSL_CERT_FILE if set)",
    )


def _add_verbosity_args(parser: argparse.ArgumentParser) -> None:
    group = parser.add_mutually_exclusive_group()
    group.add_argument(
        "--quiet",
        "-q",
        action="store_true",
        help="warnings and errors only: no progress, no summary",
    )
    group.add_argument("--verbose", "-v", action="store_true", help="debug logging")


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


class _SafeFormatter(logging.Formatter):
    """Log lines with control characters escaped, and the token blanked out once it is
    known (:func:`_blank_out_in_logs`): they may quote the server, and a value of a
    successful answer (a slug, a cursor) is never redacted on its way in."""

    redact: Callable[[str], str] | None = None

    def formatMessage(self, record: logging.LogRecord) -> str:
        return printable(self._redacted(super().formatMessage(record)))

    def formatException(self, ei: Any) -> str:
        text = self._redacted(super().formatException(ei))
        return "\n".join(printable(line) for line in text.splitlines())

    def _redacted(self, text: str) -> str:
        return text if self.redact is None else self.redact(text)


def _blank_out_in_logs(token: str) -> None:
    """From now on, the command's log lines show ``token`` in no form a server may echo it."""
    from ._protocol.errors import Redactor

    redact = Redactor(token).text
    for handler in logging.getLogger("sentry_async").handlers:
        if isinstance(handler.formatter, _SafeFormatter):
            handler.formatter.redact = redact


def _setup_logging(quiet: bool, verbose: bool, stream: TextIO) -> Callable[[], None]:
    """Send the library's logs to ``stream``; returns a function that undoes it.

    ``main`` may run inside a host program (or a test) that configured logging itself, so
    the library logger is put back as it was when the command ends.
    """
    level = logging.WARNING if quiet else logging.DEBUG if verbose else logging.INFO
    handler = logging.StreamHandler(stream)
    handler.setFormatter(_SafeFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger("sentry_async")
    handlers, old_level, propagate = list(root.handlers), root.level, root.propagate
    root.handlers[:] = [handler]
    root.setLevel(level)
    root.propagate = False

    def restore() -> None:
        root.handlers[:] = handlers
        root.setLevel(old_level)
        root.propagate = propagate

    return restore


_TOKEN_FILE_BYTES = 4096
"""What is read of ``--token-file``: a longer file (a key given by mistake, ``/dev/zero``)
is refused unread rather than held, sent and echoed in part by a server."""
_TOKEN_CHARACTERS = 1024
"""The longest token taken; Sentry's are under 300 characters."""


def _read_token(token_file: str | None) -> str:
    """The token, from ``token_file`` or the environment. An error never names the file: its
    path may be the token itself, given where the path was meant; nor shows any of what
    was read."""
    if token_file is not None:
        source = "--token-file"
        try:
            with open(token_file, "rb") as file:
                data = file.read(_TOKEN_FILE_BYTES + 1)
        except OSError as exc:
            reason = exc.strerror or type(exc).__name__
            raise _UsageError(f"cannot read the file given to --token-file: {reason}") from None
        if len(data) > _TOKEN_FILE_BYTES:
            raise _UsageError(
                f"{source} holds more than {_TOKEN_FILE_BYTES} bytes: too long for a token"
            )
        try:
            # utf-8-sig: Windows Notepad starts a UTF-8 file with a byte order mark.
            token = data.decode("utf-8-sig").strip()
        except UnicodeDecodeError:
            raise _UsageError(f"{source} is not UTF-8 text") from None
        if not token:
            raise _UsageError(f"{source} is empty")
    else:
        source = "$SENTRY_AUTH_TOKEN"
        token = os.environ.get("SENTRY_AUTH_TOKEN", "").strip()
        if not token:
            raise _UsageError("no auth token: pass --token-file PATH or set SENTRY_AUTH_TOKEN")
    if len(token) > _TOKEN_CHARACTERS:
        raise _UsageError(
            f"the token in {source} is {len(token)} characters long: too long for a token "
            f"(at most {_TOKEN_CHARACTERS})"
        )
    # The client refuses these too, but with a ValueError that would read as a URL problem.
    if any(ch.isspace() for ch in token) or not token.isprintable():
        raise _UsageError(f"the token in {source} contains spaces or control characters")
    return token


def _how_to_go_on(args: argparse.Namespace) -> str:
    """What a stopped command leaves behind and how to finish it (a query leaves nothing)."""
    if args.command == "export":
        if args.incremental is not None:
            return "; the checkpoint is saved, run the same command again to finish the run"
        return "; the checkpoint is saved, run again with --resume"
    if args.command == "demo" and args.output:
        return f"; run 'sentry-async demo -o {args.output}' again to finish it"
    return ""


def _stdout_closed(out: TextIO) -> int:
    """Whoever read stdout went away (``| head -1``): stop quietly, as programs killed by
    SIGPIPE do."""
    _silence_stdout(out)
    return EXIT_STDOUT_CLOSED


def _silence_stdout(out: TextIO) -> None:
    """``out``, when it is the process's stdout, is pointed at the null device: Python would
    otherwise report the failed flush of what is still buffered at exit (and exit 120)."""
    if out is sys.stdout:
        with contextlib.suppress(OSError, ValueError):
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, out.fileno())
            os.close(devnull)


class _Terminated(Exception):
    """SIGTERM arrived; the export stopped as on Ctrl-C, checkpoint saved."""


class _Interrupted(Exception):
    """Ctrl-C stopped the command's run, which handles it (asyncio's handler does not); the
    export stopped, checkpoint saved."""


_STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)
"""What stops the command: Ctrl-C, and SIGTERM (how cron, systemd and Kubernetes stop a job)."""


class _Interrupts:
    """Ctrl-C or SIGTERM once stops the command; from then on both are ignored (on the main
    thread, where handlers can be set), so that another during the clean-up cannot turn its
    line into a traceback or its exit code into another. The command's run ignores them as
    soon as the first arrives, and once it ends (``_cli_run._stop_on_signals``);
    :meth:`restore` puts back the handlers ``main`` found, for a program around it, as the
    last thing ``main`` does.

    ``process``: the command is the process (:func:`run`), with no program around it to
    hand the signals back to. Both then stay ignored until it exits: Python's own handlers,
    put back, let a signal arriving before the process is gone kill it (SIGTERM) or end it
    with a traceback (Ctrl-C), its last line printed, instead of its exit code."""

    def __init__(self, *, process: bool = False) -> None:
        self._process = process
        self._previous: dict[int, Any] = (
            {signum: signal.getsignal(signum) for signum in _STOP_SIGNALS}
            if threading.current_thread() is threading.main_thread()
            else {}
        )

    def ignore(self) -> None:
        for signum in self._previous:
            signal.signal(signum, signal.SIG_IGN)

    def restore(self) -> None:
        for signum, previous in self._previous.items():
            if self._process:
                signal.signal(signum, signal.SIG_IGN)
            elif signal.getsignal(signum) is not previous:
                # None: the handler was not set from Python; the system's default then.
                signal.signal(signum, previous if previous is not None else signal.SIG_DFL)


def main(
    argv: Sequence[str] | None = None, *, stdout: TextIO | None = None, stderr: TextIO | None = None
) -> int:
    """Run the command line; returns the exit code (see ``--help``). The handlers of Ctrl-C
    and SIGTERM are as ``main`` found them when it returns; a signal while it runs is the
    command's."""
    return _command(argv, stdout, stderr, _Interrupts())


def run() -> NoReturn:
    """The ``sentry-async`` program (its console script, ``python -m sentry_async``): the
    command, then the process's exit with its code, which no signal replaces any more."""
    raise SystemExit(_command(None, None, None, _Interrupts(process=True)))


def _command(
    argv: Sequence[str] | None,
    stdout: TextIO | None,
    stderr: TextIO | None,
    interrupts: _Interrupts,
) -> int:
    err = stderr if stderr is not None else sys.stderr
    if err is None:  # started with stderr closed (``2>&-``)
        err = _Discard()
    # None when the command was started with stdout closed (``>&-``).
    out: TextIO | None = stdout if stdout is not None else sys.stdout
    try:
        return _main(argv, out, err, interrupts)
    except KeyboardInterrupt:
        # Before the command began (parsing its arguments), or past its own handling.
        interrupts.ignore()
        print("sentry-async: interrupted", file=err)
        return EXIT_INTERRUPTED
    finally:
        interrupts.restore()


def _main(
    argv: Sequence[str] | None, out: TextIO | None, err: TextIO, interrupts: _Interrupts
) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if out is None:
        if args.command == "query":
            # The answer is the command's output: with nowhere to print it, nothing is asked.
            print("sentry-async: error: stdout is closed: nowhere to print the answer", file=err)
            return EXIT_STDOUT_CLOSED
        # An export's or the demo's output is its files; only the summary is dropped.
        out = io.StringIO()
    restore_logging = _setup_logging(args.quiet, args.verbose, err)
    token: str | None = None
    try:
        from . import _cli_run

        if args.command == "demo":
            return anyio.run(_cli_run.run_demo, args, out, backend="asyncio")
        token = _read_token(args.token_file)
        _blank_out_in_logs(token)
        run = _cli_run.run_query_command if args.command == "query" else _cli_run.run_export
        return anyio.run(run, args, token, out, backend="asyncio")
    except (KeyboardInterrupt, _Interrupted):
        interrupts.ignore()
        print(f"sentry-async: interrupted{_how_to_go_on(args)}", file=err)
        return EXIT_INTERRUPTED
    except _Terminated:
        print(f"sentry-async: terminated (SIGTERM){_how_to_go_on(args)}", file=err)
        return EXIT_TERMINATED
    except BrokenPipeError as exc:
        if exc.filename is not None:  # a file's, not stdout's
            raise
        return _stdout_closed(out)
    except Exception as exc:
        from ._cli_run import classify
        from ._protocol.errors import Redactor
        from ._protocol.params import hide_tokens

        outcome = classify(exc)
        # Every form the library blanks the token in: a server may echo it in a cursor or
        # a body the error quotes, without its prefix or encoded.
        blank = Redactor(token).text

        def redact(text: str) -> str:
            # An argument error quotes the arguments: a token pasted as another's value.
            return hide_tokens(blank(text)) if outcome.code == EXIT_USAGE else blank(text)

        print(f"sentry-async: error: {printable(redact(outcome.message))}", file=err)
        if args.verbose:
            details = "".join(traceback.format_exception(exc))
            logger.debug("details\n%s", redact(details).rstrip("\n"))
        return outcome.code
    finally:
        restore_logging()
