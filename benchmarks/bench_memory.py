"""Memory while streaming: RSS must not grow with the number of items streamed.

Streams one project's events through ``client.events.for_project()`` and throws each item
away, reading this process's ``VmRSS`` and ``VmHWM`` (peak) from ``/proc/self/status``
every ``--every`` items. Two runs, in this order, in one fresh process:

* ``summaries``: 100,000 event summaries (100 per page, 1,000 requests), typed;
* ``full``: 100,000 full event payloads (``full=True``: Sentry sends 10 per page, so
  that is 10,000 requests; ``--full-events`` sets the count).

``growth`` is the RSS change per 10,000 items after the first checkpoint (a least-squares
slope over the checkpoints): a lazy paginator keeps it near zero whatever the count;
anything that accumulates items shows up as a steady positive slope.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import time
from collections.abc import Sequence
from typing import Any

from _server import (
    FakeServer,
    add_common_args,
    discover,
    publish,
    rss_kib,
    server_from_args,
    table,
)

from sentry_async import SentryClient

KIND = {"summaries": "event summaries", "full": "full events"}


async def pick_project(server: FakeServer, org: str, projects: list[str], need: int) -> str:
    """The project whose events endpoint has the most events (at least ``need`` if any)."""
    best, best_hits = projects[0], -1
    async with SentryClient(server.token, base_url=server.base_url) as client:
        for project in projects[:50]:
            paginator = client.events.for_project(org, project, page_size=1, limit=1)
            async for page in paginator.pages():
                hits = page.hits if page.hits is not None else -1
                if hits > best_hits:
                    best, best_hits = project, hits
                break
            if best_hits >= need:
                break
    return best


async def stream(
    server: FakeServer,
    org: str,
    project: str,
    *,
    full: bool,
    count: int,
    every: int,
    time_limit: float,
) -> dict[str, Any]:
    """Stream ``count`` items, discarding them; RSS checkpoints every ``every`` items."""
    gc.collect()
    start = rss_kib()
    checkpoints: list[dict[str, float]] = []
    seen = 0
    started = time.perf_counter()
    deadline = started + time_limit
    async with SentryClient(server.token, base_url=server.base_url) as client:
        paginator = client.events.for_project(org, project, full=full, limit=count)
        async for _event in paginator:
            seen += 1
            if seen % every == 0:
                rss = rss_kib()
                checkpoints.append(
                    {
                        "items": seen,
                        "rss_mib": rss["VmRSS"] / 1024,
                        "hwm_mib": rss["VmHWM"] / 1024,
                        "seconds": time.perf_counter() - started,
                    }
                )
                if time.perf_counter() > deadline:
                    break
        pages = paginator.pages_fetched
    elapsed = time.perf_counter() - started
    end = rss_kib()
    return {
        "kind": "full" if full else "summaries",
        "requested": count,
        "items": seen,
        "pages": pages,
        "seconds": elapsed,
        "items_per_s": seen / elapsed if elapsed else 0.0,
        "rss_start_mib": start["VmRSS"] / 1024,
        "rss_end_mib": end["VmRSS"] / 1024,
        "hwm_mib": end["VmHWM"] / 1024,
        "checkpoints": checkpoints,
        "growth_mib_per_10k": _slope(checkpoints) * 10_000,
        "stopped_by_time": seen < count and time.perf_counter() > deadline,
    }


def _slope(points: list[dict[str, float]]) -> float:
    """MiB per item over the checkpoints after the first (warm-up) one."""
    data = points[1:]
    if len(data) < 2:
        return float("nan")
    xs = [p["items"] for p in data]
    ys = [p["rss_mib"] for p in data]
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    den = sum((x - mx) ** 2 for x in xs)
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / den if den else 0.0


async def measure(
    server: FakeServer, *, summaries: int, full: int, checkpoints: int, time_limit: float
) -> dict[str, Any]:
    info = await discover(server)
    org = info["org"]
    project = await pick_project(server, org, info["projects"], summaries)
    runs = [
        await stream(
            server,
            org,
            project,
            full=False,
            count=summaries,
            every=max(1, summaries // checkpoints),
            time_limit=time_limit,
        ),
        await stream(
            server,
            org,
            project,
            full=True,
            count=full,
            every=max(1, full // checkpoints),
            time_limit=time_limit,
        ),
    ]
    return {"org": org, "project": project, "runs": runs}


def render(result: dict[str, Any]) -> str:
    text = ""
    for run in result["runs"]:
        every = run["checkpoints"][0]["items"] if run["checkpoints"] else 0
        rows = [[c["items"], c["rss_mib"], c["hwm_mib"], c["seconds"]] for c in run["checkpoints"]]
        text += table(
            f"Memory: {run['items']:,} {KIND[run['kind']]} streamed and discarded "
            f"({run['pages']:,} requests, {run['items_per_s']:,.0f} events/s)",
            ["items", "RSS MiB", "peak RSS MiB", "seconds"],
            rows,
        )
        text += (
            f"\nRSS before {run['rss_start_mib']:.1f} MiB, after {run['rss_end_mib']:.1f} MiB, "
            f"peak {run['hwm_mib']:.1f} MiB; growth after the first {every:,} items: "
            f"**{run['growth_mib_per_10k']:+.2f} MiB per 10,000 items**"
            + (" (stopped early by the time limit)" if run["stopped_by_time"] else "")
            + "\n\n"
        )
    return text


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    add_common_args(parser)
    parser.add_argument("--summaries", type=int, help="event summaries (100,000; quick 20,000)")
    parser.add_argument("--full-events", type=int, help="full events (100,000; quick 2,000)")
    parser.add_argument("--checkpoints", type=int, default=10, help="RSS readings per run")
    parser.add_argument("--time-limit", type=float, default=90.0, help="seconds per run")
    args = parser.parse_args(argv)
    summaries = args.summaries or (20_000 if args.quick else 100_000)
    full = args.full_events or (2_000 if args.quick else 100_000)
    started = time.perf_counter()
    with server_from_args(args) as server:
        result = asyncio.run(
            measure(
                server,
                summaries=summaries,
                full=full,
                checkpoints=args.checkpoints,
                time_limit=args.time_limit,
            )
        )
    return publish(result, started, render, args.json)


if __name__ == "__main__":
    main()
