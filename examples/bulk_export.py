"""A bulk export job: every raw event of some projects over a period, into JSON Lines files.

Run it again with ``--resume`` after any stop (Ctrl-C, a crash, ``kill -9``): it picks up
from its checkpoint and every event ends up in the output exactly once. This is what
``sentry-async export events`` does, as a script you can extend.

    export SENTRY_AUTH_TOKEN=...   # or --token
    python examples/bulk_export.py --org acme --project backend --period 7d -o out/
    python examples/bulk_export.py --org acme --project backend --period 7d -o out/ --resume
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys

from sentry_async import SentryClient, SentryError
from sentry_async.export import ExportError, ExportSpec, export, parse_duration


async def run(args: argparse.Namespace) -> int:
    spec = ExportSpec(
        kind="events",
        org=args.org,
        projects=tuple(args.project) or None,  # None: every project of the organization
        period=parse_duration(args.period),
        gzip=args.gzip,
    )
    async with SentryClient(args.token, base_url=args.base_url) as sentry:
        manifest = await export(sentry, spec, args.output, resume=args.resume)
    print(f"{manifest.items} events, {manifest.bytes} bytes, {manifest.pages} pages")
    for file in manifest.files:
        print(f"  {file.path}: {file.items} events")
    return 0


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base-url", default=os.environ.get("SENTRY_URL"))
    parser.add_argument("--org", default=os.environ.get("SENTRY_ORG"))
    parser.add_argument("--token", default=None, help="default: $SENTRY_AUTH_TOKEN")
    parser.add_argument("--project", action="append", default=[], help="a project slug (repeat)")
    parser.add_argument("--period", default="7d", help="how far back: 12h, 7d, 90d")
    parser.add_argument("-o", "--output", default="sentry-export")
    parser.add_argument("--resume", action="store_true", help="continue an interrupted export")
    parser.add_argument("--gzip", action="store_true", help="write .jsonl.gz files")
    args = parser.parse_args(argv)
    if not args.org:
        parser.error("--org (or $SENTRY_ORG) is required")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        return asyncio.run(run(args))
    except (SentryError, ExportError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
