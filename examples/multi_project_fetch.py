"""A fetcher across many projects: every project's recent events at once, with ``fan_out``.

``fan_out`` runs a bounded number of project streams concurrently over one client (one
rate limiter for all of them) and merges their items as they arrive; when this loop is
slow, fetchers wait instead of piling pages up in memory. A project that fails is
reported and the others carry on (``errors="collect"``).

    export SENTRY_AUTH_TOKEN=...   # or --token
    python examples/multi_project_fetch.py --org acme --period 24h --concurrency 16
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections import Counter

from sentry_async import SentryClient, SentryError, fan_out
from sentry_async.models import EventSummary
from sentry_async.pagination import Paginator


async def run(args: argparse.Namespace) -> int:
    async with SentryClient(args.token, base_url=args.base_url) as sentry:
        projects = args.project or [p.slug async for p in sentry.projects.list(args.org)]

        def events_of(slug: str) -> Paginator[EventSummary]:
            return sentry.events.for_project(args.org, slug, period=args.period)

        counts: Counter[str] = Counter()
        issues: dict[str, set[str]] = {slug: set() for slug in projects}
        streams = {slug: (lambda slug=slug: events_of(slug)) for slug in projects}
        async with fan_out(streams, concurrency=args.concurrency, errors="collect") as merged:
            async for project, event in merged:
                counts[project] += 1
                if event.group_id is not None:
                    issues[project].add(event.group_id)
        for slug in projects:
            if slug in merged.failures:
                print(f"{slug}: failed: {merged.failures[slug]}")
            else:
                print(f"{slug}: {counts[slug]} events in {len(issues[slug])} issues")
    return 1 if merged.failures else 0


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base-url", default=os.environ.get("SENTRY_URL"))
    parser.add_argument("--org", default=os.environ.get("SENTRY_ORG"))
    parser.add_argument("--token", default=None, help="default: $SENTRY_AUTH_TOKEN")
    parser.add_argument("--project", action="append", default=[], help="default: all (repeat)")
    parser.add_argument("--period", default="24h", help="how far back: 12h, 7d, 90d")
    parser.add_argument("--concurrency", type=int, default=8, help="projects fetched at once")
    args = parser.parse_args(argv)
    if not args.org:
        parser.error("--org (or $SENTRY_ORG) is required")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        return asyncio.run(run(args))
    except (SentryError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
