"""An asyncio service's lookups: what is this issue, where did it last fail, whose event is this?

One ``SentryClient`` lives as long as the service and every request handler shares it, so
they share its connection pool and its rate limiter: a burst of lookups slows down
together instead of tripping Sentry's limits one by one. Here the "requests" are the
issue ids and event ids given on the command line (or the newest unresolved issues),
looked up concurrently.

    export SENTRY_AUTH_TOKEN=...   # or --token
    python examples/issue_lookup_service.py --org acme --issue 123456 \
        --event 9fac2ceed9344f2bbfdd1fdacb0ed9b1
    python examples/issue_lookup_service.py --base-url https://de.sentry.io --org acme --newest 5
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys

from sentry_async import NotFound, SentryClient, SentryError
from sentry_async.models import Event


def top_frame(event: Event) -> str:
    """``file:line`` of the innermost frame of the last exception, if Sentry has one."""
    exception = event.exception
    if exception is None or not exception.values:
        return "no exception"
    stacktrace = exception.values[-1].stacktrace
    if stacktrace is None or not stacktrace.frames:
        return "no stack trace"
    frame = stacktrace.frames[-1]
    return f"{frame.filename or frame.module or '?'}:{frame.lineno}"


async def describe_issue(sentry: SentryClient, org: str, issue_id: str) -> str:
    """One lookup, as a request handler would do it: the issue, then its latest event."""
    try:
        issue = await sentry.issues.get(org, issue_id)
        event = await sentry.events.latest(org, issue_id)
    except NotFound:
        return f"issue {issue_id}: not found"
    return (
        f"issue {issue.short_id} [{issue.status}] {issue.count_int} events, "
        f"latest {event.event_id} at {top_frame(event)}: {issue.title}"
    )


async def describe_event(sentry: SentryClient, org: str, event_id: str) -> str:
    """Where an event id from a log line lives: project and issue."""
    try:
        found = await sentry.events.resolve(org, event_id)
    except NotFound:
        return f"event {event_id}: not found"
    return f"event {event_id}: project {found.project_slug}, issue {found.group_id}"


async def serve(args: argparse.Namespace) -> int:
    async with SentryClient(args.token, base_url=args.base_url) as sentry:
        issue_ids = list(args.issue)
        if not issue_ids and not args.event:
            newest = sentry.issues.list(args.org, query="is:unresolved", limit=args.newest)
            issue_ids = [issue.id async for issue in newest]
        lookups = [describe_issue(sentry, args.org, issue_id) for issue_id in issue_ids]
        lookups += [describe_event(sentry, args.org, event_id) for event_id in args.event]
        for line in await asyncio.gather(*lookups):
            print(line)
    return 0


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base-url", default=os.environ.get("SENTRY_URL"))
    parser.add_argument("--org", default=os.environ.get("SENTRY_ORG"))
    parser.add_argument("--token", default=None, help="default: $SENTRY_AUTH_TOKEN")
    parser.add_argument("--issue", action="append", default=[], help="an issue id (repeat)")
    parser.add_argument("--event", action="append", default=[], help="an event id (repeat)")
    parser.add_argument("--newest", type=int, default=5, help="without --issue/--event")
    args = parser.parse_args(argv)
    if not args.org:
        parser.error("--org (or $SENTRY_ORG) is required")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        return asyncio.run(serve(args))
    except (SentryError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
