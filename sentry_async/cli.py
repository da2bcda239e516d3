"""The ``sentry-async`` command: resumable exports, and a demo against a bundled fake Sentry.

Only argument parsing, token loading, error-to-exit-code mapping and summaries live here;
the work is :mod:`sentry_async.export`'s. Output that answers the command (the summary)
goes to stdout; progress, logs and errors go to stderr. The token is never printed: not
in errors, logs, progress, or ``--help``.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, TextIO, TypeVar

import anyio

from ._network import tls
from ._progress_display import DisplayMode, show_progress
from ._query_command import add_query_parser, run_query
from ._version import __version__
from .client import DEFAULT_BASE_URL, SentryClient
from .errors import APIError, Forbidden, NotFound, SentryError, TransportError, Unauthorized
from .export import (
    CheckpointError,
    ExportDecodeError,
    ExportLockedError,
    ExportRangeError,
    ExportSpec,
    Manifest,
    OutputNotEmptyError,
    OutputUnusableError,
    Progress,
    SpecMismatchError,
    UnknownProjectError,
    export,
    parse_duration,
    parse_utc,
)
from .export._formats import check_arrow
from .export._progress import format_bytes
from .export._text import printable

__all__ = [
    "EXIT_API",
    "EXIT_AUTH",
    "EXIT_INTERRUPTED",
    "EXIT_NOT_FOUND",
    "EXIT_OK",
    "EXIT_OUTPUT",
    "EXIT_TERMINATED",
    "EXIT_USAGE",
    "main",
]

EXIT_OK = 0
EXIT_API = 1
EXIT_USAGE = 2
EXIT_AUTH = 3
EXIT_NOT_FOUND = 4
EXIT_OUTPUT = 5
EXIT_INTERRUPTED = 130
EXIT_TERMINATED = 143

DEFAULT_PERIOD = "30d"
DEMO_SEED = 0
DEMO_PERIOD = timedelta(days=30)

logger = logging.getLogger("sentry_async.cli")

_T = TypeVar("_T")

_RANGE_OPTIONS = {"start": "since", "end": "until", "period": "period", "window": "window"}
"""ExportRangeError.argument -> the option (attribute of the parsed arguments) it comes from."""

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
  0  done
  1  API or network error (5xx, timeouts, undecodable page), after retries
  2  bad arguments (including an empty or unusable time range), or no token
  3  authentication failed (401) or permission denied (403)
  4  organization, project or issue not found (404)
  5  output directory refused: not empty, other arguments or another server on --resume,
     locked, damaged, not a directory, or holding a planted link
  130 interrupted (Ctrl-C): the checkpoint is saved, run again with --resume
  143 terminated (SIGTERM): as on Ctrl-C

network:
  proxies come from $HTTPS_PROXY/$HTTP_PROXY/$NO_PROXY, read as urllib reads them (no
  .netrc); --ca-bundle PATH (default $SSL_CERT_FILE) trusts a private CA instead of the
  system's.

the token comes from --token-file or $SENTRY_AUTH_TOKEN and is never printed.
"""


class _UsageError(Exception):
    """A problem with the arguments found after parsing (exit 2)."""


@dataclass
class _Outcome:
    code: int
    message: str


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (public for docs and tests)."""
    parser = argparse.ArgumentParser(
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
        "--window",
        default="1d",
        metavar="DURATION",
        help="split the range into windows of DURATION, each with its own cursor "
        "(default 1d; 'none' for one window)",
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
        default="1h",
        metavar="DURATION",
        help="--incremental: look this far back before the last run's end for late events "
        "(default 1h; older late events are missed)",
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
        "--output", "-o", metavar="DIR", help="output directory (default: a new temp dir)"
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
    group.add_argument("--quiet", "-q", action="store_true", help="errors only, no progress")
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
    """Log lines with control characters escaped: they may quote the server."""

    def formatMessage(self, record: logging.LogRecord) -> str:
        return printable(super().formatMessage(record))

    def formatException(self, ei: Any) -> str:
        return "\n".join(printable(line) for line in super().formatException(ei).splitlines())


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


def _read_token(token_file: str | None) -> str:
    if token_file is not None:
        source = f"--token-file {token_file}"
        try:
            token = Path(token_file).read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise _UsageError(f"cannot read --token-file {token_file}: {exc.strerror}") from None
        except UnicodeDecodeError:
            raise _UsageError(f"{source} is not UTF-8 text") from None
        if not token:
            raise _UsageError(f"{source} is empty")
    else:
        source = "$SENTRY_AUTH_TOKEN"
        token = os.environ.get("SENTRY_AUTH_TOKEN", "").strip()
        if not token:
            raise _UsageError("no auth token: pass --token-file PATH or set SENTRY_AUTH_TOKEN")
    # The client refuses these too, but with a ValueError that would read as a URL problem.
    if any(ch.isspace() for ch in token) or not token.isprintable():
        raise _UsageError(f"the token in {source} contains spaces or control characters")
    return token


def _client_from_args(args: argparse.Namespace, token: str) -> SentryClient:
    """The client, or a usage error naming where a bad URL, proxy or CA bundle came from (the
    token is checked). Proxies come from $HTTPS_PROXY/$HTTP_PROXY/$NO_PROXY."""
    ca_bundle, ca_source = args.ca_bundle, "--ca-bundle"
    if ca_bundle is None:
        ca_bundle, ca_source = os.environ.get("SSL_CERT_FILE") or None, "$SSL_CERT_FILE"
    tls_options: dict[str, Any] = {}
    if ca_bundle is not None:
        try:
            tls_options["ssl"] = tls(ca_bundle)
        except ValueError as exc:
            raise _UsageError(f"{ca_source}: {str(exc).removeprefix('ssl: ')}") from None
    try:
        return SentryClient(
            token,
            base_url=args.base_url,
            allow_insecure_http=args.allow_insecure_http,
            **tls_options,
        )
    except ValueError as exc:
        message = str(exc).replace("allow_insecure_http=True", "--allow-insecure-http")
        if message.startswith("$") or " through proxy " in message:  # from a *_PROXY variable
            raise _UsageError(message) from None
        source = "--base-url" if args.base_url is not None else "$SENTRY_URL"
        raise _UsageError(f"{source}: {message}") from None


def _parse_option(option: str, text: str, parse: Callable[[str], _T]) -> _T:
    try:
        return parse(text)
    except ValueError as exc:
        raise _UsageError(f"{option}: {exc}") from None


def _range_error(exc: ExportRangeError, args: argparse.Namespace) -> _UsageError:
    """The library's range error, told in terms of the option (and value) to change."""
    name = _RANGE_OPTIONS.get(exc.argument)
    if name is None:
        return _UsageError(str(exc))
    value = getattr(args, name, None)
    option = f"--{name}" if value is None else f"--{name} {value}"
    return _UsageError(f"{option}: {exc.reason}")


def _spec_from_args(args: argparse.Namespace) -> ExportSpec:
    since = _parse_option("--since", args.since, parse_utc) if args.since else None
    until = _parse_option("--until", args.until, parse_utc) if args.until else None
    if args.period and args.since:
        raise _UsageError("give --since or --period, not both")
    period_text = args.period or (None if since else DEFAULT_PERIOD)
    period = _parse_option("--period", period_text, parse_duration) if period_text else None
    window = (
        None
        if args.window.strip().lower() == "none"
        else _parse_option("--window", args.window, parse_duration)
    )
    if args.field and args.kind != "discover":
        raise _UsageError("--field is for 'export discover'")
    if args.format != "jsonl" and args.kind != "discover":
        raise _UsageError("--format csv/parquet is for 'export discover'")
    if args.format == "parquet":
        try:
            check_arrow()
        except ImportError as exc:
            raise _UsageError(str(exc)) from None
    if args.issue and args.kind != "events":
        raise _UsageError("--issue is for 'export events'")
    if args.issue and args.project:
        raise _UsageError("give --project or --issue, not both")
    if args.incremental is not None:
        if args.resume or args.restart:
            raise _UsageError(
                "--incremental resumes a stopped run by itself: no --resume/--restart"
            )
        if args.until:
            raise _UsageError("--incremental runs end when they start: no --until")
    try:
        return ExportSpec(
            kind=args.kind,
            org=args.org,
            projects=tuple(args.project) if args.project else None,
            issues=tuple(args.issue) if args.issue else None,
            start=since,
            end=until,
            period=period,
            query=args.query,
            fields=tuple(args.field or ()),
            window=window,
            gzip=args.gzip,
            format=args.format,
        )
    except ValueError as exc:
        raise _UsageError(str(exc)) from None


def _summary(manifest: Manifest, directory: Path, elapsed: float) -> str:
    unidentified = (
        f" ({manifest.unidentified:,} without a usable id, not de-duplicated)"
        if manifest.unidentified
        else ""
    )
    return (
        f"{manifest.kind}: {manifest.items:,} items{unidentified}, "
        f"{format_bytes(manifest.bytes)} in {len(manifest.files)} files, "
        f"{manifest.start} .. {manifest.end}, {elapsed:.1f}s -> {directory}"
    )


def _display_mode(args: argparse.Namespace) -> DisplayMode:
    return "none" if args.quiet else "auto"


class _Terminated(Exception):
    """SIGTERM arrived; the export stopped as on Ctrl-C, checkpoint saved."""


@contextmanager
def _stop_on_sigterm(scope: anyio.CancelScope, stopped: list[bool]) -> Iterator[None]:
    """Cancel ``scope`` on SIGTERM (how cron, systemd and Kubernetes stop a job).

    Handlers can only be set from the main thread, so an embedded ``main`` leaves
    SIGTERM alone.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def stop() -> None:
        stopped.append(True)
        scope.cancel()

    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop)
    try:
        yield
    finally:
        loop.remove_signal_handler(signal.SIGTERM)


async def _run_export(args: argparse.Namespace, token: str, out: TextIO) -> int:
    spec = _spec_from_args(args)
    overlap = _parse_option("--overlap", args.overlap, parse_duration)
    directory = Path(args.output)
    started = time.perf_counter()
    progress = Progress(spec.kind)
    stopped: list[bool] = []
    manifest: Manifest | None = None
    async with _client_from_args(args, token) as client:
        with (
            show_progress(progress, mode=_display_mode(args)),
            anyio.CancelScope() as scope,
            _stop_on_sigterm(scope, stopped),
        ):
            try:
                manifest = await export(
                    client,
                    spec,
                    directory,
                    resume=args.resume,
                    restart=args.restart,
                    concurrency=args.concurrency,
                    progress=progress,
                    incremental=args.incremental,
                    overlap=overlap,
                )
            except ExportRangeError as exc:
                raise _range_error(exc, args) from None
            except ValueError as exc:
                if args.incremental is None:
                    raise
                raise _UsageError(f"--incremental: {exc}") from None
    if stopped or manifest is None:
        raise _Terminated
    if not args.quiet:
        print(_summary(manifest, directory, time.perf_counter() - started), file=out)
    return EXIT_OK


async def _run_query(args: argparse.Namespace, token: str, out: TextIO) -> int:
    async with _client_from_args(args, token) as client:
        try:
            await run_query(client, args, out)
        except ValueError as exc:
            raise _UsageError(str(exc)) from None
    return EXIT_OK


async def _run_demo(args: argparse.Namespace, out: TextIO) -> int:
    try:
        from .testing import FakeSentry
    except ImportError as exc:  # pragma: no cover - the package ships it
        raise SentryError(f"the bundled fake server is not available: {exc}") from exc
    directory = Path(args.output) if args.output else Path(tempfile.mkdtemp(prefix="sentry-demo-"))
    started = time.perf_counter()
    print(f"demo: starting a fake Sentry (scale {args.scale!r}); output in {directory}", file=out)
    manifests: list[tuple[Manifest, Path]] = []
    async with FakeSentry(seed=DEMO_SEED, scale=args.scale) as server:
        now: datetime = server.data.now
        # The demo's server is on this machine: a proxy in the environment has no part in it.
        async with SentryClient(server.token, base_url=server.url, proxy=None) as client:
            org = server.data.orgs[0].slug
            for kind in ("issues", "events"):
                spec = ExportSpec(
                    kind=kind,
                    org=org,
                    period=DEMO_PERIOD,
                    end=now,
                    gzip=args.gzip,
                )
                target = directory / kind
                progress = Progress(f"{org} {kind}")
                with show_progress(progress, mode=_display_mode(args)):
                    manifest = await export(
                        client,
                        spec,
                        target,
                        resume=True,
                        concurrency=args.concurrency,
                        progress=progress,
                    )
                manifests.append((manifest, target))
    elapsed = time.perf_counter() - started
    items = sum(m.items for m, _ in manifests)
    size = sum(m.bytes for m, _ in manifests)
    files = sum(len(m.files) for m, _ in manifests)
    for manifest, target in manifests:
        print(
            f"  {manifest.kind:<7} {manifest.items:>8,} items  {format_bytes(manifest.bytes):>10}"
            f"  {len(manifest.files):>3} files  {target}",
            file=out,
        )
    print(
        f"demo: exported {items:,} items ({format_bytes(size)}, {files} files) from "
        f"organization {manifests[0][0].org} in {elapsed:.1f}s; output in {directory}",
        file=out,
    )
    return EXIT_OK


def _classify(exc: BaseException) -> _Outcome:
    """An exit code and a one-line message for an error that ends the command."""
    if isinstance(exc, _UsageError):
        return _Outcome(EXIT_USAGE, str(exc))
    if isinstance(exc, Unauthorized):
        return _Outcome(EXIT_AUTH, f"authentication failed: {exc}")
    if isinstance(exc, Forbidden):
        return _Outcome(EXIT_AUTH, f"permission denied: {exc}")
    if isinstance(exc, NotFound):
        return _Outcome(EXIT_NOT_FOUND, f"not found (check --org, --project, --issue): {exc}")
    if isinstance(exc, UnknownProjectError):
        return _Outcome(EXIT_NOT_FOUND, str(exc))
    if isinstance(
        exc,
        (
            SpecMismatchError,
            OutputNotEmptyError,
            OutputUnusableError,
            ExportLockedError,
            CheckpointError,
        ),
    ):
        return _Outcome(EXIT_OUTPUT, str(exc))
    if isinstance(exc, ExportDecodeError):
        return _Outcome(EXIT_API, str(exc))
    if isinstance(exc, APIError):
        return _Outcome(EXIT_API, f"API error: {exc}")
    if isinstance(exc, TransportError):
        return _Outcome(EXIT_API, f"network error: {exc}")
    if isinstance(exc, SentryError):
        return _Outcome(EXIT_API, str(exc))
    if isinstance(exc, OSError):
        return _Outcome(EXIT_API, f"I/O error: {exc}")
    raise exc


def main(
    argv: Sequence[str] | None = None, *, stdout: TextIO | None = None, stderr: TextIO | None = None
) -> int:
    """Run the command line; returns the exit code (see ``--help``)."""
    out = stdout if stdout is not None else sys.stdout
    err = stderr if stderr is not None else sys.stderr
    parser = build_parser()
    args = parser.parse_args(argv)
    restore_logging = _setup_logging(args.quiet, args.verbose, err)
    token: str | None = None
    try:
        if args.command == "demo":
            return anyio.run(_run_demo, args, out, backend="asyncio")
        token = _read_token(args.token_file)
        run = _run_query if args.command == "query" else _run_export
        return anyio.run(run, args, token, out, backend="asyncio")
    except KeyboardInterrupt:
        print(
            "sentry-async: interrupted; the checkpoint is saved, run again with --resume",
            file=err,
        )
        return EXIT_INTERRUPTED
    except _Terminated:
        print(
            "sentry-async: terminated (SIGTERM); the checkpoint is saved, run again with --resume",
            file=err,
        )
        return EXIT_TERMINATED
    except Exception as exc:
        outcome = _classify(exc)
        message = outcome.message
        if token:
            message = message.replace(token, "********")
        print(f"sentry-async: error: {printable(message)}", file=err)
        if args.verbose:
            logger.debug("details", exc_info=exc)
        return outcome.code
    finally:
        restore_logging()
