"""The work behind ``sentry-async``'s commands: clients, exports, queries and the demo.

Kept apart from :mod:`sentry_async.cli` so that ``--help`` and ``--version`` answer without
importing aiohttp, the exporter or the models: :func:`sentry_async.cli.main` imports this
module only once the arguments parsed.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AsyncExitStack, contextmanager
from datetime import datetime
from pathlib import Path
from types import FrameType
from typing import Any, TextIO, TypeVar

import anyio

from ._network import tls
from ._progress_display import DisplayMode, show_progress
from ._query_command import ArgumentError, run_query
from .cli import (
    _RANGE_OPTIONS,
    _SPEC_OPTIONS,
    _STOP_SIGNALS,
    DEFAULT_OVERLAP,
    DEFAULT_PERIOD,
    DEFAULT_WINDOW,
    DEMO_PERIOD,
    DEMO_SEED,
    EXIT_API,
    EXIT_AUTH,
    EXIT_NOT_FOUND,
    EXIT_OK,
    EXIT_OUTPUT,
    EXIT_USAGE,
    _Interrupted,
    _Outcome,
    _silence_stdout,
    _Terminated,
    _UsageError,
)
from .client import SentryClient
from .errors import APIError, Forbidden, NotFound, SentryError, TransportError, Unauthorized
from .export import (
    MANIFEST_NAME,
    CheckpointError,
    ExportDecodeError,
    Exporter,
    ExportLockedError,
    ExportRangeError,
    ExportSpec,
    Manifest,
    NothingToExportError,
    OutputNotEmptyError,
    OutputUnusableError,
    Progress,
    SpecMismatchError,
    UnknownProjectError,
    export,
    parse_duration,
    parse_utc,
)
from .export._checkpoint import load_checkpoint
from .export._formats import check_arrow
from .export._incremental import check_state_path
from .export._manifest import load_manifest
from .export._progress import format_bytes
from .export._spec import is_aggregate
from .export._writer import check_subdirectory
from .hooks import HookEvent, Hooks

__all__ = ["classify", "run_demo", "run_export", "run_query_command"]

_T = TypeVar("_T")


class _RequestsStarted(Hooks):
    """Whether the client has started a request. A ``ValueError`` the library raises before
    the first is its check of the arguments (nothing a server sent is in it yet): exit 2;
    one raised later may come from an answer, a bug to show with its traceback."""

    def __init__(self) -> None:
        self.any = False

    def on_start(self, event: HookEvent) -> None:
        self.any = True


def _client_from_args(
    args: argparse.Namespace, token: str, hooks: Hooks | None = None
) -> SentryClient:
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
            hooks=hooks,
            **tls_options,
        )
    except ValueError as exc:
        message = (
            str(exc)
            .replace("allow_insecure_http=True", "--allow-insecure-http")
            .replace("leave out base_url", "leave out --base-url")
        )
        if message.startswith(("$", "the organization token's")) or " through proxy " in message:
            raise _UsageError(message) from None  # from $SENTRY_URL, a *_PROXY or the token
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
    if name == "window" and value is None:
        value = DEFAULT_WINDOW
    option = f"--{name}" if value is None else f"--{name} {value}"
    return _UsageError(f"{option}: {exc.reason}")


def _spec_error(exc: ValueError, args: argparse.Namespace) -> _UsageError:
    """The spec's refusal, told in terms of the option it comes from."""
    if isinstance(exc, ExportRangeError):
        return _range_error(exc, args)
    message = str(exc)
    option = _SPEC_OPTIONS.get(message.split(" ", 1)[0])
    return _UsageError(message if option is None else f"{option}: {message}")


def _check_output(args: argparse.Namespace) -> None:
    """A blank ``--output`` (``-o "$OUT"`` with ``$OUT`` unset) is refused: as a path it is
    the current directory, which an export (or ``--restart``) would take over."""
    if args.output is not None and not args.output.strip():
        raise _UsageError("--output: give the output directory")


def _check_option_use(args: argparse.Namespace) -> None:
    """Options that would be ignored are refused: the user meant something by them."""
    if args.overlap is not None and args.incremental is None:
        raise _UsageError("--overlap is for --incremental exports")
    if args.window is not None and args.window.strip().lower() != "none":
        if args.kind == "issues":
            raise _UsageError(
                "--window is for events and discover: issues are one stream over the range"
            )
        if args.field and any(is_aggregate(name) for name in args.field):
            raise _UsageError(
                "--window: a Discover export with aggregate fields is one query over the "
                "whole range"
            )
    if any(not name.strip() for name in args.field or ()):
        raise _UsageError("--field: a field name must not be empty")
    if args.incremental is not None and not args.incremental.strip():
        raise _UsageError("--incremental: give the path of the state file")


def _spec_from_args(args: argparse.Namespace) -> ExportSpec:
    since = _parse_option("--since", args.since, parse_utc) if args.since else None
    until = _parse_option("--until", args.until, parse_utc) if args.until else None
    if args.period and args.since:
        raise _UsageError("give --since or --period, not both")
    period_text = args.period or (None if since else DEFAULT_PERIOD)
    period = _parse_option("--period", period_text, parse_duration) if period_text else None
    window_text = args.window if args.window is not None else DEFAULT_WINDOW
    window = (
        None
        if window_text.strip().lower() == "none"
        else _parse_option("--window", window_text, parse_duration)
    )
    if args.field and args.kind != "discover":
        raise _UsageError("--field is for 'export discover'")
    if args.format != "jsonl" and args.kind != "discover":
        raise _UsageError("--format csv/parquet is for 'export discover'")
    if args.csv_escape_formulas and args.format != "csv":
        raise _UsageError("--csv-escape-formulas is for --format csv")
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
            csv_escape_formulas=args.csv_escape_formulas,
        )
    except ValueError as exc:
        raise _spec_error(exc, args) from None


def _summary(manifest: Manifest, directory: Path, elapsed: float) -> str:
    unidentified = (
        f" ({manifest.unidentified:,} without a usable id, not de-duplicated)"
        if manifest.unidentified
        else ""
    )
    expired = (
        f" ({manifest.start} .. {manifest.outside_retention} outside the organization's "
        "retention: skipped)"
        if manifest.outside_retention
        else ""
    )
    count = len(manifest.skipped)
    # An export of issues lists the issues it skipped (gone while exported) there.
    what = "issue" if manifest.spec.get("issues") is not None else "project"
    skipped = (
        f", {count} {what}{'s' if count > 1 else ''} skipped (see {MANIFEST_NAME})"
        if count
        else ""
    )
    return (
        f"{manifest.kind}: {manifest.items:,} items{unidentified}, "
        f"{format_bytes(manifest.bytes)} in {len(manifest.files)} files, "
        f"{manifest.start} .. {manifest.end}{expired}{skipped}, {elapsed:.1f}s -> {directory}"
    )


def _tell(text: str, out: TextIO) -> None:
    """Print a line about work that is done (an export's summary, the demo's lines). Their
    output is their files: a stdout that refuses the line (full, read-only, its reader
    gone) takes nothing from the work and changes no exit code, as with a stdout closed
    from the start (``>&-``); the line is dropped. It is flushed at once, so that a refusal
    comes here and not at exit (Python's exit 120), and stdout then goes to the null
    device: what it still buffers would fail there again."""
    try:
        print(text, file=out, flush=True)
    except OSError:
        _silence_stdout(out)


def _display_mode(args: argparse.Namespace) -> DisplayMode:
    return "none" if args.quiet else "auto"


@contextmanager
def _stop_on_signals(scope: anyio.CancelScope, stopped: list[int]) -> Iterator[None]:
    """Cancel ``scope`` on Ctrl-C or SIGTERM, the first signal appended to ``stopped``.

    Later ones change nothing, and after the block both stay ignored until ``main`` puts
    the handlers back as it returns: asyncio's own Ctrl-C handler would raise a second one
    inside the clean-up that saves the checkpoint, turning its line into a traceback and
    its exit code into 1. Ignored after a command that ran to its end too: the handlers put
    back here let a signal while the client closed or the summary was printed end a
    complete export as interrupted ("run again with --resume"), or kill it (SIGTERM). Set
    with ``signal.signal``, not the loop's ``add_signal_handler``, whose removal puts
    Python's default handler back for a moment. Handlers can only be set from the main
    thread, so an embedded ``main`` leaves signals alone.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    loop = asyncio.get_running_loop()

    def stop(signum: int, frame: FrameType | None) -> None:
        if not stopped:
            stopped.append(signum)
            # Run by the interpreter between two bytecodes of the loop's thread: the scope
            # is cancelled by the loop, which this also wakes.
            loop.call_soon_threadsafe(scope.cancel)

    for signum in _STOP_SIGNALS:
        signal.signal(signum, stop)
    try:
        yield
    finally:
        for signum in _STOP_SIGNALS:
            signal.signal(signum, signal.SIG_IGN)


def _stopped_by(stopped: list[int]) -> Exception:
    """What ends a command a signal stopped: its line and exit code are ``main``'s."""
    return _Interrupted() if stopped and stopped[0] == signal.SIGINT else _Terminated()


async def run_export(args: argparse.Namespace, token: str, out: TextIO) -> int:
    _check_output(args)
    _check_option_use(args)
    spec = _spec_from_args(args)
    overlap = _parse_option("--overlap", args.overlap or DEFAULT_OVERLAP, parse_duration)
    if args.incremental is not None:
        # Checked before the output directory is created: a refusal leaves nothing behind.
        try:
            check_state_path(args.incremental)
        except OutputUnusableError as exc:
            raise OutputUnusableError(f"--incremental {args.incremental}: {exc}") from None
        except ValueError as exc:
            raise _UsageError(f"--incremental: {exc}") from None
    directory = Path(args.output)
    started = time.perf_counter()
    progress = Progress(spec.kind)
    stopped: list[int] = []
    manifest: Manifest | None = None
    started_requests = _RequestsStarted()
    async with _client_from_args(args, token, started_requests) as client:
        with (
            show_progress(progress, mode=_display_mode(args)),
            anyio.CancelScope() as scope,
            _stop_on_signals(scope, stopped),
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
            except NothingToExportError as exc:
                # A run right after the last (a scheduler retrying at once): nothing wrong.
                if not args.quiet:
                    _tell(f"{spec.kind}: {exc}", out)
                return EXIT_OK
            except ValueError as exc:
                if args.incremental is not None:
                    raise _UsageError(f"--incremental: {exc}") from None
                if started_requests.any or isinstance(exc, (SentryError, UnicodeError)):
                    raise
                raise _spec_error(exc, args) from None
    if stopped or manifest is None:
        raise _stopped_by(stopped)
    if not args.quiet:
        _tell(_summary(manifest, directory, time.perf_counter() - started), out)
    return EXIT_OK


async def run_query_command(args: argparse.Namespace, token: str, out: TextIO) -> int:
    stopped: list[int] = []
    async with _client_from_args(args, token) as client:
        with anyio.CancelScope() as scope, _stop_on_signals(scope, stopped):
            try:
                await run_query(client, args, out)
            except ArgumentError as exc:
                raise _UsageError(str(exc)) from None
    if stopped:
        raise _stopped_by(stopped)
    return EXIT_OK


def _demo_now(directory: Path) -> datetime | None:
    """The "now" an earlier run of the demo in ``directory`` pinned its range to, if any:
    its server is started at that moment again, so it serves the same data."""
    for kind in ("issues", "events"):
        # A link planted there would take the demo's files (and this read) elsewhere.
        target = check_subdirectory(directory / kind)
        if not target.is_dir():
            continue
        found = load_checkpoint(target) or load_manifest(target)
        if found is not None:
            return parse_utc(found.end)
    return None


async def run_demo(args: argparse.Namespace, out: TextIO) -> int:
    try:
        from .testing import FakeSentry
    except ImportError as exc:  # pragma: no cover - the package ships it
        raise SentryError(f"the bundled fake server is not available: {exc}") from exc
    _check_output(args)
    directory = Path(args.output) if args.output else Path(tempfile.mkdtemp(prefix="sentry-demo-"))
    args.output = str(directory)  # what a stopped demo's message tells to run again

    def say(text: str) -> None:
        if not args.quiet:
            _tell(text, out)

    started = time.perf_counter()
    pinned = _demo_now(directory)
    say(f"demo: starting a fake Sentry (scale {args.scale!r}); output in {directory}")
    manifests: list[tuple[Manifest, Path, bool]] = []
    # Named for what it serves, not by its port, which is new every run.
    server_name = f"sentry-async demo (seed {DEMO_SEED}, scale {args.scale})"
    stopped: list[int] = []
    # The server and the client close after the block, not cut short by a stop.
    async with AsyncExitStack() as stack:
        with anyio.CancelScope() as scope, _stop_on_signals(scope, stopped):
            server = await stack.enter_async_context(
                FakeSentry(seed=DEMO_SEED, scale=args.scale, now=pinned)
            )
            now: datetime = server.data.now
            # The demo's server is on this machine: a proxy in the environment has no part.
            client = await stack.enter_async_context(
                SentryClient(server.token, base_url=server.url, proxy=None)
            )
            org = server.data.orgs[0].slug
            for kind in ("issues", "events"):
                spec = ExportSpec(
                    kind=kind,
                    org=org,
                    period=DEMO_PERIOD,
                    end=now,
                    gzip=args.gzip,
                )
                target = check_subdirectory(directory / kind)
                progress = Progress(f"{org} {kind}")
                exporter = Exporter(
                    client,
                    spec,
                    target,
                    resume=True,
                    concurrency=args.concurrency,
                    progress=progress,
                    server=server_name,
                )
                with show_progress(progress, mode=_display_mode(args)):
                    manifest = await exporter.run()
                # No checkpoint: the manifest was there, the export complete already.
                manifests.append((manifest, target, exporter.checkpoint is None))
    if stopped or len(manifests) < 2:
        raise _stopped_by(stopped)
    elapsed = time.perf_counter() - started
    items = sum(m.items for m, _, _ in manifests)
    size = sum(m.bytes for m, _, _ in manifests)
    files = sum(len(m.files) for m, _, _ in manifests)
    for manifest, target, complete in manifests:
        note = "  (complete already)" if complete else ""
        say(
            f"  {manifest.kind:<7} {manifest.items:>8,} items  {format_bytes(manifest.bytes):>10}"
            f"  {len(manifest.files):>3} files  {target}{note}"
        )
    what = (
        "the demo export is complete already:"
        if all(complete for _, _, complete in manifests)
        else "exported"
    )
    say(
        f"demo: {what} {items:,} items ({format_bytes(size)}, {files} files) from "
        f"organization {manifests[0][0].org} in {elapsed:.1f}s; output in {directory}"
    )
    return EXIT_OK


def classify(exc: BaseException) -> _Outcome:
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
        # Network failures arrive as TransportError: an OSError here is the disk's.
        return _Outcome(EXIT_OUTPUT, _os_error(exc))
    if isinstance(exc, MemoryError):
        # What the server sent did not fit: an answer too large, like ResponseTooLarge.
        return _Outcome(
            EXIT_API, "out of memory: an answer of the server was too large to hold"
        )
    raise exc


def _os_error(exc: OSError) -> str:
    """``cannot write PATH: No space left on device``: the path, and what the system said."""
    reason = exc.strerror or str(exc)
    if exc.filename is None:
        return f"output error: {reason}"
    return f"cannot write {os.fsdecode(exc.filename)}: {reason}"
