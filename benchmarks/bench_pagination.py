"""Pagination throughput: ``client.issues.list()`` against hand-written loops.

Every variant walks the same cursor chain of one organisation's issues (``query=""``,
100 per page) on the fake server, which runs in another process. Rounds are interleaved
(A, B, C, A, B, C ...) and the table shows medians:

* ``sentry_async``: ``async for issue in client.issues.list(org, query="")``, typed.
* ``sentry_async raw``: the same through ``.raw()`` (each item's JSON bytes, undecoded).
* ``sentry_async pages()``: ``paginator.pages()``, typed, one page object at a time.
* ``bare aiohttp + msgspec``: the floor for this stack. One ``aiohttp.ClientSession``
  with the same connector settings, headers and page size; it fetches a page, reads the
  next cursor from ``Link`` with one regex and decodes into the same
  ``list[sentry_async.models.Issue]`` with a cached ``msgspec.json.Decoder``.
* ``httpx + json``: ``httpx.AsyncClient`` and ``json.loads`` into dicts.
* ``requests + json``: ``requests.Session`` and ``json.loads``, synchronous, on a worker
  thread (the server is another process, so nothing blocks it).
* ``server ceiling``: aiohttp reading bytes only, no decoding: the most any client can get.

``client CPU`` is this process's CPU time (the server's is not in it): the client's own
cost per item, which stays meaningful when the server is the bottleneck.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from collections.abc import Sequence
from typing import Any

import aiohttp
import msgspec
from _server import (
    FakeServer,
    Runner,
    add_common_args,
    discover,
    interleaved,
    next_cursor,
    server_from_args,
    summarise,
    table,
    write_json,
)

from sentry_async import SentryClient
from sentry_async.models import Issue

PAGE_SIZE = 100
USER_AGENT = "sentry-async-bench"


def issues_url(server: FakeServer, org: str) -> str:
    return f"{server.api}/organizations/{org}/issues/"


def make_runners(server: FakeServer, org: str, max_pages: int) -> dict[str, Runner]:
    """One async runner per variant, each returning ``(items, pages, bytes)``."""
    url = issues_url(server, org)
    limit = max_pages * PAGE_SIZE
    headers = {
        "Authorization": f"Bearer {server.token}",
        "Accept": "application/json",
        "User-Agent": USER_AGENT,
    }

    async def ours() -> tuple[int, int, int]:
        count = 0
        async with SentryClient(server.token, base_url=server.base_url) as client:
            paginator = client.issues.list(org, query="", page_size=PAGE_SIZE, limit=limit)
            async for _issue in paginator:
                count += 1
            return count, paginator.pages_fetched, 0

    async def ours_raw() -> tuple[int, int, int]:
        count = nbytes = 0
        async with SentryClient(server.token, base_url=server.base_url) as client:
            paginator = client.issues.list(
                org, query="", page_size=PAGE_SIZE, limit=limit
            ).raw()
            async for raw in paginator:
                count += 1
                nbytes += len(raw)
            return count, paginator.pages_fetched, nbytes

    async def ours_pages() -> tuple[int, int, int]:
        count = pages = 0
        async with SentryClient(server.token, base_url=server.base_url) as client:
            paginator = client.issues.list(org, query="", page_size=PAGE_SIZE, limit=limit)
            async for page in paginator.pages():
                pages += 1
                for _issue in page.items:
                    count += 1
            return count, pages, 0

    decoder = msgspec.json.Decoder(list[Issue])

    async def bare() -> tuple[int, int, int]:
        count = pages = nbytes = 0
        # The client's own connector settings, so pooling is the same.
        connector = aiohttp.TCPConnector(limit=100, ttl_dns_cache=300, enable_cleanup_closed=True)
        async with aiohttp.ClientSession(connector=connector, headers=headers) as session:
            cursor: str | None = None
            while pages < max_pages:
                params = {"query": "", "limit": str(PAGE_SIZE)}
                if cursor is not None:
                    params["cursor"] = cursor
                async with session.get(url, params=params) as resp:
                    body = await resp.read()
                    resp.raise_for_status()
                    link = resp.headers.get("Link")
                pages += 1
                nbytes += len(body)
                for _issue in decoder.decode(body):
                    count += 1
                cursor = next_cursor(link)
                if cursor is None:
                    break
        return count, pages, nbytes

    async def with_httpx() -> tuple[int, int, int]:
        import httpx

        count = pages = nbytes = 0
        limits = httpx.Limits(max_connections=100, max_keepalive_connections=100)
        async with httpx.AsyncClient(headers=headers, limits=limits, trust_env=False) as client:
            cursor: str | None = None
            while pages < max_pages:
                params = {"query": "", "limit": str(PAGE_SIZE)}
                if cursor is not None:
                    params["cursor"] = cursor
                resp = await client.get(url, params=params)
                resp.raise_for_status()
                pages += 1
                nbytes += len(resp.content)
                for _issue in json.loads(resp.content):
                    count += 1
                cursor = next_cursor(resp.headers.get("Link"))
                if cursor is None:
                    break
        return count, pages, nbytes

    def requests_loop() -> tuple[int, int, int]:
        import requests

        count = pages = nbytes = 0
        with requests.Session() as session:
            session.trust_env = False
            session.headers.update(headers)
            cursor: str | None = None
            while pages < max_pages:
                params = {"query": "", "limit": str(PAGE_SIZE)}
                if cursor is not None:
                    params["cursor"] = cursor
                resp = session.get(url, params=params, timeout=60)
                resp.raise_for_status()
                pages += 1
                nbytes += len(resp.content)
                for _issue in json.loads(resp.content):
                    count += 1
                cursor = next_cursor(resp.headers.get("Link"))
                if cursor is None:
                    break
        return count, pages, nbytes

    async def with_requests() -> tuple[int, int, int]:
        return await asyncio.to_thread(requests_loop)

    async def ceiling() -> tuple[int, int, int]:
        connector = aiohttp.TCPConnector(limit=100)
        async with aiohttp.ClientSession(connector=connector, headers=headers) as session:
            pages = nbytes = 0
            cursor: str | None = None
            while pages < max_pages:
                params = {"query": "", "limit": str(PAGE_SIZE)}
                if cursor is not None:
                    params["cursor"] = cursor
                async with session.get(url, params=params) as resp:
                    body = await resp.read()
                    link = resp.headers.get("Link")
                pages += 1
                nbytes += len(body)
                cursor = next_cursor(link)
                if cursor is None:
                    break
        return pages * PAGE_SIZE, pages, nbytes

    return {
        "sentry_async": ours,
        "sentry_async raw": ours_raw,
        "sentry_async pages()": ours_pages,
        "bare aiohttp + msgspec": bare,
        "httpx + json": with_httpx,
        "requests + json": with_requests,
        "server ceiling (bytes only)": ceiling,
    }


async def measure(
    server: FakeServer, *, max_pages: int, rounds: int, time_limit: float
) -> dict[str, Any]:
    info = await discover(server)
    org = info["org"]
    runners = make_runners(server, org, max_pages)
    runs = await interleaved(runners, rounds=rounds, warmup=1, time_limit=time_limit)
    summary = {name: summarise(r) for name, r in runs.items()}
    items = {s["items"] for s in summary.values()}
    ours = summary["sentry_async"]["items_per_s"]
    ratios = {
        "ours_over_bare": ours / summary["bare aiohttp + msgspec"]["items_per_s"],
        "ours_over_requests": ours / summary["requests + json"]["items_per_s"],
        "ours_over_httpx": ours / summary["httpx + json"]["items_per_s"],
        "raw_over_bare": summary["sentry_async raw"]["items_per_s"]
        / summary["bare aiohttp + msgspec"]["items_per_s"],
        "bare_over_ceiling": summary["bare aiohttp + msgspec"]["items_per_s"]
        / summary["server ceiling (bytes only)"]["items_per_s"],
        "cpu_ours_over_bare": summary["sentry_async"]["cpu_us_per_item"]
        / summary["bare aiohttp + msgspec"]["cpu_us_per_item"],
    }
    return {
        "org": org,
        "max_pages": max_pages,
        "page_size": PAGE_SIZE,
        "items_seen": sorted(items),
        "results": summary,
        "ratios": ratios,
    }


def render(result: dict[str, Any]) -> str:
    summary = result["results"]
    bare = summary["bare aiohttp + msgspec"]["items_per_s"]
    bare_cpu = summary["bare aiohttp + msgspec"]["cpu_us_per_item"]
    rows = []
    for name, s in summary.items():
        rows.append(
            [
                name,
                int(s["items"]),
                int(s["pages"]),
                s["items_per_s"],
                s["pages_per_s"],
                s["items_per_s"] / bare,
                s["cpu_us_per_item"],
                s["cpu_us_per_item"] / bare_cpu,
                f"{s['spread'] * 100:.0f}%",
                int(s["rounds"]),
            ]
        )
    r = result["ratios"]
    pages = result["max_pages"]
    text = table(
        f"Pagination: {pages} pages x {result['page_size']} issues (medians)",
        [
            "variant",
            "items",
            "pages",
            "items/s",
            "pages/s",
            "vs bare",
            "client CPU us/item",
            "CPU vs bare",
            "spread",
            "rounds",
        ],
        rows,
    )
    text += (
        f"\nours / bare aiohttp+msgspec = **{r['ours_over_bare']:.2f}x** (goal >= 0.90); "
        f"ours / requests+json = **{r['ours_over_requests']:.2f}x** (goal >= 2.5); "
        f"ours / httpx+json = {r['ours_over_httpx']:.2f}x; "
        f"raw / bare = {r['raw_over_bare']:.2f}x; "
        f"bare / server ceiling = {r['bare_over_ceiling']:.2f}x; "
        f"client CPU per item, ours / bare = {r['cpu_ours_over_bare']:.2f}x.\n"
    )
    return text


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    add_common_args(parser)
    parser.add_argument("--pages", type=int, help="pages per run (default 250; quick 40)")
    parser.add_argument("--rounds", type=int, help="kept rounds (default 9; quick 3)")
    args = parser.parse_args(argv)
    pages = args.pages or (40 if args.quick else 250)
    rounds = args.rounds or (3 if args.quick else 9)
    started = time.perf_counter()
    with server_from_args(args) as server:
        result = asyncio.run(
            measure(server, max_pages=pages, rounds=rounds, time_limit=25 if args.quick else 100)
        )
    result["wall_s"] = time.perf_counter() - started
    result["markdown"] = render(result)
    print(result["markdown"])
    write_json(args.json, result)
    return result


if __name__ == "__main__":
    main()
