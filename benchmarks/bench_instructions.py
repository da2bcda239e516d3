"""Instructions per page: the client against the bare loop, counted rather than timed.

On a shared machine CPU time moves by 10-50% between rounds, which hides differences of
a few percent. ``valgrind --tool=callgrind`` counts the instructions a process executes:
for the same program and the same pages, the count is nearly the same whatever else the
machine is doing. Each variant of ``bench_pagination.py`` runs as its own process under
callgrind twice, once for a few pages and once for many; the difference, divided by the
pages between them, is the cost of one page with start-up and imports taken out.

The count includes everything the process does per page: the client's Python code, the
decoding, aiohttp, the event loop and the garbage collector. It is not time (a cache miss
costs more than an addition), so it complements the CPU ratios rather than replacing them.
Without valgrind on the PATH this benchmark reports nothing and says so.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from _server import (
    add_common_args,
    callgrind,
    discover,
    publish,
    server_from_args,
    table,
)

PAGE_SIZE = 100
VARIANTS = {
    "sentry_async": "ours",
    "sentry_async, one page at a time": "sequential",
    "sentry_async pages()": "pages",
    "sentry_async raw": "raw",
    "bare aiohttp + msgspec": "bare",
}
BARE = "bare aiohttp + msgspec"


async def _client(mode: str, pages: int, base_url: str, token: str, org: str) -> int:
    """One variant over ``pages`` pages; what runs under callgrind."""
    import aiohttp
    import msgspec

    from sentry_async import SentryClient
    from sentry_async._network import cleanup_closed
    from sentry_async.models import Issue

    count = 0
    if mode == "bare":
        from _server import next_cursor

        decoder = msgspec.json.Decoder(list[Issue])
        headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
        url = f"{base_url.rstrip('/')}/api/0/organizations/{org}/issues/"
        connector = aiohttp.TCPConnector(
            limit=100, ttl_dns_cache=300, enable_cleanup_closed=cleanup_closed()
        )
        async with aiohttp.ClientSession(connector=connector, headers=headers) as session:
            cursor: str | None = None
            for _ in range(pages):
                params = {"query": "", "limit": str(PAGE_SIZE)}
                if cursor is not None:
                    params["cursor"] = cursor
                async with session.get(url, params=params) as resp:
                    body = await resp.read()
                    resp.raise_for_status()
                    link = resp.headers.get("Link")
                for _issue in decoder.decode(body):
                    count += 1
                cursor = next_cursor(link)
                if cursor is None:
                    break
        return count
    async with SentryClient(token, base_url=base_url) as client:
        paginator = client.issues.list(org, query="", page_size=PAGE_SIZE, limit=pages * PAGE_SIZE)
        if mode == "sequential":
            paginator = paginator.read_ahead(0)
        if mode == "pages":
            async for page in paginator.pages():
                for _issue in page.items:
                    count += 1
        elif mode == "raw":
            async for _raw in paginator.raw():
                count += 1
        else:
            async for _issue in paginator:
                count += 1
    return count


def _count(mode: str, pages: int, base_url: str, token: str, org: str) -> int:
    """Instructions of one process running ``mode`` over ``pages`` pages."""
    argv = [str(Path(__file__).resolve()), "--client", mode, str(pages), base_url, token, org]
    return callgrind(argv)[0]


def measure(base_url: str, token: str, org: str, low: int, high: int) -> dict[str, Any]:
    jobs = [(name, mode, n) for name, mode in VARIANTS.items() for n in (low, high)]
    # Counts do not depend on what runs beside them: use every core.
    workers = max(1, min(len(jobs), os.cpu_count() or 1))
    with ThreadPoolExecutor(workers) as pool:
        counts = list(pool.map(lambda job: _count(job[1], job[2], base_url, token, org), jobs))
    per_page: dict[str, float] = {}
    for (name, _mode, n), instructions in zip(jobs, counts, strict=True):
        per_page[name] = per_page.get(name, 0.0) + (instructions if n == high else -instructions)
    return {name: value / (high - low) for name, value in per_page.items()}


def render(result: dict[str, Any]) -> str:
    if not result.get("per_page"):
        return f"### Instructions per page\n\nNot measured: {result.get('skipped')}.\n"
    bare = result["per_page"][BARE]
    rows = [
        [name, value / 1e6, value / PAGE_SIZE / 1e3, value / bare]
        for name, value in result["per_page"].items()
    ]
    text = table(
        f"Instructions per page (callgrind, pages {result['low']} to {result['high']} of "
        f"{PAGE_SIZE} issues)",
        ["variant", "million instructions/page", "thousand/item", "vs bare"],
        rows,
    )
    return text + (
        "\nCounted, not timed: the same on a quiet or a busy machine. `vs bare` above 1 is "
        "work the client does that the bare loop does not (limiter, retry loop, body cap, "
        "cursor walk, rate-limit and Link parsing, one async step per item).\n"
    )


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    add_common_args(parser)
    parser.add_argument("--client", nargs=5, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.client:
        mode, pages, base_url, token, org = args.client
        print(asyncio.run(_client(mode, int(pages), base_url, token, org)))
        return {}
    low, high = (3, 13) if args.quick else (5, 45)
    started = time.perf_counter()
    result: dict[str, Any] = {"low": low, "high": high, "goals": []}
    if shutil.which("valgrind") is None:
        result["skipped"] = "valgrind is not installed"
    else:
        with server_from_args(args) as server:
            org = asyncio.run(discover(server))["org"]
            result["per_page"] = measure(server.base_url, server.token, org, low, high)
    return publish(result, started, render, args.json)


if __name__ == "__main__":
    main()
