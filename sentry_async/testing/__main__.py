"""``python -m sentry_async.testing``: serve the fake API until interrupted.

Prints one line, ``READY <base_url> <token>``, once listening, so a benchmark or another
process can start it and read where it is. It keeps no request log: nothing outside the
process could read one, and a long load run would grow it with every request.
"""

from __future__ import annotations

import argparse
import gc
import signal
import sys

try:
    import asyncio

    from ._data import SCALES
    from ._factory import seed_config
    from ._recorder import DiscardedLog
    from ._server import FakeSentry
    from ._state import ANNOUNCED, RateLimitPolicy
except KeyboardInterrupt:
    # Ctrl-C while these load (asyncio and aiohttp take the time): as quiet as after
    # READY, with 130.
    raise SystemExit(130) from None


def build(args: argparse.Namespace) -> FakeSentry:
    """The server the command line describes (not yet started); ``ValueError`` names a bad
    count."""
    scale = seed_config(args.scale, projects=args.projects, issues=args.issues)
    policy = None
    if args.rate_limit is not None or args.enforce_rate_limit:
        policy = RateLimitPolicy(
            limit=args.rate_limit or ANNOUNCED.limit,
            window=ANNOUNCED.window,
            concurrent_limit=None,
            enforce=args.enforce_rate_limit,
        )
    server = FakeSentry(
        seed=args.seed,
        scale=scale,
        host=args.host,
        port=args.port,
        token=args.token,
        rate_limits=policy,
    )
    server._state.requests = DiscardedLog()
    return server


async def _serve(server: FakeSentry) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await server.start()
    except OSError as exc:
        # One line, not a traceback: a busy --port is the caller's to fix.
        sys.stderr.write(f"python -m sentry_async.testing: cannot listen: {exc}\n")
        raise SystemExit(1) from None
    async with server:
        # The seeded data set lives as long as the process (millions of objects at the
        # large scale): move it out of the collector's reach, or every full collection
        # rescans it and stalls responses for tens of milliseconds.
        gc.collect()
        gc.freeze()
        sys.stdout.write(f"READY {server.url} {server.token}\n")
        sys.stdout.flush()
        await stop.wait()


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive number of requests (got {text})")
    return value


def parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m sentry_async.testing", description="Serve the fake Sentry API."
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--scale", choices=sorted(SCALES), default="default")
    parser.add_argument("--projects", type=int, default=None, help="projects per organization")
    parser.add_argument("--issues", type=int, default=None, help="issues per project")
    parser.add_argument("--token", default="fake-token")
    parser.add_argument(
        "--rate-limit",
        type=_positive,
        default=None,
        metavar="N",
        help="requests per second announced for each window in X-Sentry-Rate-Limit-* "
        f"(default {ANNOUNCED.limit})",
    )
    parser.add_argument(
        "--enforce-rate-limit",
        action="store_true",
        help="answer 429 beyond the announced limit, as Sentry does (default: announce only)",
    )
    return parser


def main(argv: list[str] | None = None) -> None:
    """Serve until SIGINT or SIGTERM. A SIGINT before READY (a large data set takes seconds
    to build, before the handlers are installed) exits quietly too, with 130."""
    try:
        cli = parser()
        try:
            server = build(cli.parse_args(argv))
        except ValueError as exc:
            cli.error(str(exc))
        asyncio.run(_serve(server))
    except KeyboardInterrupt:
        raise SystemExit(130) from None


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        # Ctrl-C as main() begins, before its own try: the same quiet 130.
        raise SystemExit(130) from None
