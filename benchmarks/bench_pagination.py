"""Pagination throughput: ``client.issues.list()`` against hand-written loops.

Every variant walks the same cursor chain of one organisation's issues (``query=""``,
100 per page) on the fake server, which runs in another process. Rounds are interleaved
(each variant once per round, in an order that changes every round) and the table shows
medians:

* ``sentry_async``: ``async for issue in client.issues.list(org, query="")``, typed. By
  default a paginator walking alone reads two pages ahead from its second page on.
* ``sentry_async, one page at a time``: the same with ``read_ahead(0)``: the client's cost
  with nothing overlapped, the bare loop's way.
* ``sentry_async raw``: the same through ``.raw()`` (each item's JSON bytes, undecoded).
* ``sentry_async pages()``: ``paginator.pages()``, typed, one page object at a time.
* ``sentry_async pages(), page let go``: the same loop ending its body with ``del page``,
  as the bare loop lets go of its decoded list before the next request; not a goal, it
  tells the consumer's share of ``pages()``'s CPU from the client's.
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
import gc
import json
import time
from collections.abc import Callable, Sequence
from typing import Any

import aiohttp
import msgspec
from _server import (
    FakeServer,
    Runner,
    add_common_args,
    cpu_of_run,
    discover,
    fake_server,
    goal,
    goals_markdown,
    interleaved,
    median,
    next_cursor,
    paired,
    publish,
    server_from_args,
    summarise,
    table,
)
from yarl import URL

from sentry_async import SentryClient
from sentry_async._network import cleanup_closed
from sentry_async._transport import Transport
from sentry_async.models import Issue

PAGE_SIZE = 100
USER_AGENT = "sentry-async-bench"
OURS = "sentry_async"
SEQUENTIAL = "sentry_async, one page at a time"
PAGES = "sentry_async pages()"
PAGES_LET_GO = "sentry_async pages(), page let go"
BARE = "bare aiohttp + msgspec"
CEILING = "server ceiling (bytes only)"
TRANSPORT_TURNS = 300
"""Paired requests of each kind behind the transport rows."""


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

    def ours(prefetch: int | None) -> Runner:
        """``async for`` over the issues; ``prefetch=None`` is the paginator's default."""

        async def run() -> tuple[int, int, int]:
            count = 0
            async with SentryClient(server.token, base_url=server.base_url) as client:
                paginator = client.issues.list(
                    org, query="", page_size=PAGE_SIZE, limit=limit
                ).read_ahead(prefetch)
                async for _issue in paginator:
                    count += 1
                return count, paginator.pages_fetched, 0

        return run

    async def ours_raw() -> tuple[int, int, int]:
        count = nbytes = 0
        async with SentryClient(server.token, base_url=server.base_url) as client:
            paginator = client.issues.list(org, query="", page_size=PAGE_SIZE, limit=limit).raw()
            async for raw in paginator:
                count += 1
                nbytes += len(raw)
            return count, paginator.pages_fetched, nbytes

    def ours_pages(let_go: bool) -> Runner:
        """``pages()``; ``let_go``: the page is dropped before the next one is asked for."""

        async def run() -> tuple[int, int, int]:
            count = pages = 0
            async with SentryClient(server.token, base_url=server.base_url) as client:
                paginator = client.issues.list(org, query="", page_size=PAGE_SIZE, limit=limit)
                async for page in paginator.pages():
                    pages += 1
                    for _issue in page.items:
                        count += 1
                    if let_go:
                        del page
                return count, pages, 0

        return run

    decoder = msgspec.json.Decoder(list[Issue])

    async def bare() -> tuple[int, int, int]:
        count = pages = nbytes = 0
        # The client's own connector settings, so pooling is the same.
        connector = aiohttp.TCPConnector(
            limit=100, ttl_dns_cache=300, enable_cleanup_closed=cleanup_closed()
        )
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
        "sentry_async": ours(None),
        SEQUENTIAL: ours(0),
        "sentry_async raw": ours_raw,
        PAGES: ours_pages(False),
        PAGES_LET_GO: ours_pages(True),
        "bare aiohttp + msgspec": bare,
        "httpx + json": with_httpx,
        "requests + json": with_requests,
        "server ceiling (bytes only)": ceiling,
    }


# --- where the client's CPU goes, piece by piece (in-process, no network) ---------------

_SINGLE_ATTEMPT = next(
    (name for name in ("_exchange", "_send_once") if hasattr(Transport, name)), None
)
"""The transport's one-attempt network call (request and redirects), stubbed or timed below;
``None`` if the transport no longer has one (those rows are then left out)."""


def _cpu_per_call(fn: Callable[[], object], calls: int, rounds: int = 7) -> float:
    """CPU seconds per call of ``fn``: the least over ``rounds`` batches of ``calls`` calls
    (a busy machine only ever adds time, so the least is the piece's own cost)."""
    samples = []
    for _ in range(rounds):
        gc.collect()
        start = time.process_time()
        for _ in range(calls):
            fn()
        samples.append((time.process_time() - start) / calls)
    return min(samples)


def _links(pages: int) -> list[str]:
    base = "http://127.0.0.1:8000/api/0/organizations/org-0/issues/?query=&limit=100&cursor="
    return [
        f'<{base}1795770000000:{n * 100}:1>; rel="previous"; results="{str(n > 0).lower()}"; '
        f'cursor="1795770000000:{n * 100}:1", <{base}1795770000000:{(n + 1) * 100}:0>; '
        f'rel="next"; results="{str(n + 1 < pages).lower()}"; '
        f'cursor="1795770000000:{(n + 1) * 100}:0"'
        for n in range(pages)
    ]


def _bodies(body: bytes, pages: int) -> list[bytes]:
    """``pages`` distinct copies of one real page (the first issue's id differs)."""
    items = msgspec.json.decode(body)
    out = []
    for n in range(pages):
        items[0]["id"] = str(10**9 + n)
        out.append(msgspec.json.encode(items))
    return out


async def sample_page(server: FakeServer, org: str) -> tuple[bytes, dict[str, str]]:
    """One real page of issues and its headers, to feed the pieces."""
    async with aiohttp.ClientSession(headers=server.headers()) as session:
        url = issues_url(server, org)
        async with session.get(url, params={"query": "", "limit": str(PAGE_SIZE)}) as resp:
            return await resp.read(), dict(resp.headers)


def pieces(body: bytes, headers: dict[str, str], *, pages: int = 60) -> dict[str, Any]:
    """CPU per page of each piece of the client's per-page and per-item path.

    Pure pieces are called in a loop; the paginator and the whole client run over pages
    held in memory (the network stubbed out at the transport's single-attempt call), next
    to the bare loop's own work on the same bytes (decode + one regex), so the difference
    is what the client adds per page without any I/O noise.
    """
    from multidict import CIMultiDict, CIMultiDictProxy

    from sentry_async import _transport
    from sentry_async._protocol.cursors import CursorWalk, Position, Step, body_fingerprint
    from sentry_async._protocol.links import page_links
    from sentry_async._protocol.ratelimit import parse_rate_limit
    from sentry_async.limiter import RateLimiter
    from sentry_async.pagination import Paginator, RawPage

    links = _links(pages)
    bodies = _bodies(body, pages)
    link0 = links[1]
    proxy = CIMultiDictProxy(CIMultiDict(headers))
    limiter = RateLimiter()
    url = URL("http://127.0.0.1:8000/api/0/organizations/org-0/issues/")
    query = [("query", ""), ("limit", str(PAGE_SIZE)), ("cursor", "1795770000000:100:0")]
    decoder = msgspec.json.Decoder(list[Issue])
    decoded = [decoder.decode(b) for b in bodies]
    n = 2000
    out: dict[str, float] = {}

    def walk() -> None:
        w = CursorWalk(page_size=PAGE_SIZE)
        for i, link in enumerate(links):
            w.on_page(PAGE_SIZE, link, fingerprint=i)

    out["Link parsing (page_links)"] = _cpu_per_call(lambda: page_links(link0), n)
    out["bare loop's Link regex"] = _cpu_per_call(lambda: next_cursor(link0), n)
    out["cursor walk (on_page, Link included)"] = _cpu_per_call(walk, 20) / pages
    out["position tracking (Step + Position)"] = _cpu_per_call(
        lambda: (Step("c", 0, 100, "n", None, True, True), Position("n")), n
    )
    out["body fingerprint"] = _cpu_per_call(lambda: body_fingerprint(bodies[0]), n)
    out["rate-limit headers (parse + observe)"] = _cpu_per_call(
        lambda: limiter.observe("g", parse_rate_limit(proxy)), n
    )
    out["URL building (yarl extend_query)"] = _cpu_per_call(lambda: url.extend_query(query), n)

    fresh = RateLimiter()

    async def slots(count: int) -> None:
        for _ in range(count):
            async with fresh.slot("g"):
                pass

    out["limiter slot"] = (cpu_of_run(lambda: slots(n)) - cpu_of_run(lambda: slots(0))) / n

    # The paginator alone: pre-decoded pages behind a fetcher that does nothing, with
    # Sentry's own Link (a Link of another form takes the general parser, which costs more).
    async def fetch(cursor: str | None, size: int | None) -> RawPage:
        index = 0 if cursor is None else int(cursor.split(":")[1]) // PAGE_SIZE
        return RawPage(decoded[index], links[index], fingerprint=index)

    async def plain() -> None:
        for items in decoded:
            for _ in items:
                pass
            await asyncio.sleep(0)

    async def paginator_items() -> None:
        async for _ in Paginator[Issue](fetch, page_size=PAGE_SIZE):
            pass

    async def paginator_pages() -> None:
        async for page in Paginator[Issue](fetch, page_size=PAGE_SIZE).pages():
            for _ in page.items:
                pass

    floor = cpu_of_run(plain)
    out["paginator, per page (pages())"] = (cpu_of_run(paginator_pages) - floor) / pages
    out["paginator, per item (async for), x100"] = (
        cpu_of_run(paginator_items) - cpu_of_run(paginator_pages)
    ) / pages

    # The whole client with the network stubbed out, against the bare loop's own work.
    transport_stub = _SINGLE_ATTEMPT is not None
    if transport_stub:
        cursor_of = {"": 0, **{f"1795770000000:{i * 100}:0": i for i in range(pages)}}

        async def client_run(item_mode: bool | None) -> None:
            async with SentryClient("t", base_url="http://127.0.0.1:8000") as client:
                transport = client._get_transport()
                if item_mode is None:  # what opening and closing a client costs
                    return

                async def send_once(method: str, url: URL, body: bytes | None, *_: Any) -> Any:
                    index = cursor_of[url.query.get("cursor", "")]
                    page_headers = CIMultiDict(headers)
                    page_headers["Link"] = links[index]
                    page_proxy = CIMultiDictProxy(page_headers)
                    return _transport.Response(
                        method,
                        url,
                        200,
                        page_proxy,
                        bodies[index],
                        parse_rate_limit(page_proxy),
                        0.0,
                    )

                assert _SINGLE_ATTEMPT is not None
                setattr(transport, _SINGLE_ATTEMPT, send_once)
                paginator = client.issues.list("org-0", query="", page_size=PAGE_SIZE)
                if item_mode:
                    async for _ in paginator:
                        pass
                else:
                    async for page in paginator.pages():
                        for _ in page.items:
                            pass

        async def bare_run() -> None:
            for index in range(pages):
                page_headers = CIMultiDict(headers)
                page_headers["Link"] = links[index]
                for _ in decoder.decode(bodies[index]):
                    pass
                next_cursor(CIMultiDictProxy(page_headers).get("Link"))
                await asyncio.sleep(0)

        try:
            bare_page = cpu_of_run(bare_run) / pages
            opened = cpu_of_run(lambda: client_run(None))
            out["bare loop's own work (decode + regex)"] = bare_page
            out["client, no network, async for: extra"] = (
                cpu_of_run(lambda: client_run(True)) - opened
            ) / pages - bare_page
            out["client, no network, pages(): extra"] = (
                cpu_of_run(lambda: client_run(False)) - opened
            ) / pages - bare_page
        except Exception as exc:  # the transport's internals changed: say so, go on
            print(f"(the stubbed-network rows are skipped: {exc!r})")
    return {"us_per_page": {k: v * 1e6 for k, v in out.items()}, "pages": pages}


async def transport_pieces(server: FakeServer, org: str, requests: int) -> dict[str, Any]:
    """CPU per request of the transport against the bare loop's ``session.get``, same pages.

    One request's worth each, with the network: the bare loop's get + read; the client's
    single attempt (the transport's request-and-redirects call: headers, body cap, error
    mapping, ``Response``); and its whole ``send`` (limiter slot, retry loop, hooks).
    Paired, one request at a time: each turn sends one request of every variant, and each
    is timed with this thread's CPU clock, so a slow stretch of the machine falls on all
    of them; the rows are medians of ``requests`` turns, and the ``extra`` rows medians of
    each turn's difference to the bare request (a few microseconds of noise, where least-of
    batches moved by tens).
    """
    url = URL(issues_url(server, org)).with_query({"query": "", "limit": str(PAGE_SIZE)})
    connector = aiohttp.TCPConnector(
        limit=100, ttl_dns_cache=300, enable_cleanup_closed=cleanup_closed()
    )
    async with (
        aiohttp.ClientSession(connector=connector, headers=server.headers()) as session,
        SentryClient(server.token, base_url=server.base_url) as client,
    ):
        transport = client._get_transport()
        single = getattr(transport, _SINGLE_ATTEMPT or "", None)
        extra: tuple[None, ...] = (None,) if _SINGLE_ATTEMPT == "_exchange" else ()

        async def bare() -> None:
            async with session.get(url) as resp:
                await resp.read()
                resp.headers.get("Link")

        async def once() -> None:
            assert single is not None
            await single("GET", url, None, *extra)

        async def whole() -> None:
            await transport.send("GET", url, group="bench", idempotent=True)

        variants = {"bare session.get + read": bare}
        if single is not None:
            variants["transport, one attempt"] = once
        variants["transport.send (limiter + retry loop)"] = whole
        out: dict[str, list[int]] = {name: [] for name in variants}
        clock = time.thread_time_ns
        for turn in range(requests + 10):
            for name, run in variants.items():
                start = clock()
                await run()
                if turn >= 10:  # the first turns warm the pools and caches
                    out[name].append(clock() - start)
    base = out["bare session.get + read"]
    result = {name: median(v) / 1e3 for name, v in out.items()}
    for name, values in out.items():
        if values is not base:
            result[f"{name}: extra"] = (
                median(a - b for a, b in zip(values, base, strict=True)) / 1e3
            )
    return result


# --- read-ahead on a slow network -----------------------------------------------------

LATENCY = 0.1
"""Seconds the read-ahead server waits before answering each page."""
THINK = 0.05
"""Seconds the consumer spends on each page (an async sleep: writing it somewhere)."""

_SLOW_SERVER = """
import asyncio, sys
from dataclasses import replace
from sentry_async.testing import FakeSentry
from sentry_async.testing._data import SCALES
from sentry_async.testing._faults import Fault

async def main():
    scale = replace(SCALES["small"], orgs=1, projects_per_org=1, issues_per_project=4000,
                    events_per_issue=(1, 1))
    async with FakeSentry(scale=scale) as server:
        server.faults.add(Fault("slow", path="/issues/$", times=None, delay=float(sys.argv[1])))
        print("READY", server.url, server.token, flush=True)
        await asyncio.Event().wait()

asyncio.run(main())
"""


def read_ahead_runners(server: FakeServer, org: str, pages: int) -> dict[str, Runner]:
    """The bare loop and the client, both sequential, and the client reading ahead."""
    url = issues_url(server, org)
    decoder = msgspec.json.Decoder(list[Issue])

    async def bare() -> tuple[int, int, int]:
        count = done = 0
        async with aiohttp.ClientSession(headers=server.headers()) as session:
            cursor: str | None = None
            while done < pages:
                params = {"query": "", "limit": str(PAGE_SIZE)}
                if cursor is not None:
                    params["cursor"] = cursor
                async with session.get(url, params=params) as resp:
                    body = await resp.read()
                    resp.raise_for_status()
                    link = resp.headers.get("Link")
                done += 1
                for _issue in decoder.decode(body):
                    count += 1
                await asyncio.sleep(THINK)
                cursor = next_cursor(link)
                if cursor is None:
                    break
        return count, done, 0

    def ours(prefetch: int | None) -> Runner:
        async def run() -> tuple[int, int, int]:
            count = 0
            async with SentryClient(server.token, base_url=server.base_url) as client:
                paginator = client.issues.list(
                    org, query="", page_size=PAGE_SIZE, limit=pages * PAGE_SIZE
                ).read_ahead(prefetch)
                async for _issue in paginator:
                    count += 1
                    if count % PAGE_SIZE == 0:
                        await asyncio.sleep(THINK)
                return count, paginator.pages_fetched, 0

        return run

    return {
        "bare loop, sequential": bare,
        "sentry_async, default": ours(None),
        "sentry_async, prefetch=0": ours(0),
        "sentry_async, prefetch=1": ours(1),
        "sentry_async, prefetch=2": ours(2),
    }


async def measure_read_ahead(pages: int, rounds: int, time_limit: float) -> dict[str, Any]:
    with fake_server(code=_SLOW_SERVER, extra_args=(str(LATENCY),), pin=False) as server:
        info = await discover(server)
        runners = read_ahead_runners(server, info["org"], pages)
        runs = await interleaved(runners, rounds=rounds, warmup=1, time_limit=time_limit)
    summary = {name: summarise(r) for name, r in runs.items()}
    base = runs["bare loop, sequential"]
    return {
        "latency_s": LATENCY,
        "think_s": THINK,
        "pages": pages,
        "results": summary,
        "vs_sequential_bare": {name: paired(r, base, "rate") for name, r in runs.items()},
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
    bare = runs[BARE]
    ratios = {
        "ours_over_bare": paired(runs[OURS], bare),
        "pages_over_bare": paired(runs[PAGES], bare),
        "ours_over_requests": paired(runs[OURS], runs["requests + json"]),
        "ours_over_httpx": paired(runs[OURS], runs["httpx + json"]),
        "raw_over_bare": paired(runs["sentry_async raw"], bare),
        "bare_over_ceiling": paired(bare, runs[CEILING]),
        # The most any sequential client could reach against requests here: the bytes-only
        # reader decodes nothing, so a ratio above it is out of reach for a decoding one.
        "ceiling_over_requests": paired(runs[CEILING], runs["requests + json"]),
        "bare_over_requests": paired(bare, runs["requests + json"]),
        "cpu_ours_over_bare": paired(runs[OURS], bare, "cpu"),
        "sequential_over_bare": paired(runs[SEQUENTIAL], bare),
        "cpu_sequential_over_bare": paired(runs[SEQUENTIAL], bare, "cpu"),
        "cpu_pages_over_bare": paired(runs[PAGES], bare, "cpu"),
        "cpu_pages_let_go_over_bare": paired(runs[PAGES_LET_GO], bare, "cpu"),
        "cpu_pages_let_go_over_pages": paired(runs[PAGES_LET_GO], runs[PAGES], "cpu"),
        "cpu_ours_over_bare_without_gc": paired(runs[OURS], bare, "cpu_without_gc"),
        "cpu_pages_over_bare_without_gc": paired(runs[PAGES], bare, "cpu_without_gc"),
    }
    body, headers = await sample_page(server, org)
    transport = await transport_pieces(server, org, requests=TRANSPORT_TURNS)
    return {
        "transport_us_per_page": transport,
        "org": org,
        "max_pages": max_pages,
        "page_size": PAGE_SIZE,
        "items_seen": sorted(items),
        "results": summary,
        "ratios": ratios,
        "sample": (body, headers),
    }


def goals(result: dict[str, Any]) -> list[dict[str, Any]]:
    r = result["ratios"]
    out = [
        goal(
            "client CPU per item, async for issues.list() / bare loop",
            r["cpu_ours_over_bare"],
            1.05,
            at_most=True,
        ),
        goal(
            "client CPU per item, pages() / bare loop", r["cpu_pages_over_bare"], 1.05, at_most=True
        ),
        goal("items/s, async for issues.list() / bare loop", r["ours_over_bare"], 1.0),
        goal("items/s, pages() / bare loop", r["pages_over_bare"], 1.0),
        goal("items/s, async for issues.list() / requests + json", r["ours_over_requests"], 2.5),
    ]
    ahead = result.get("read_ahead")
    if ahead:
        out.append(
            goal(
                f"read-ahead (prefetch=1) items/s / sequential bare loop, "
                f"{ahead['latency_s'] * 1000:.0f} ms per page + {ahead['think_s'] * 1000:.0f} ms "
                "consumer",
                ahead["vs_sequential_bare"]["sentry_async, prefetch=1"],
                1.3,
            )
        )
    return out


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
                s.get("gc_us_per_item", 0.0),
                s.get("gc_full", 0.0),
                f"{s['spread'] * 100:.0f}%",
                int(s["rounds"]),
            ]
        )
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
            "of which GC us/item",
            "full GCs",
            "spread",
            "rounds",
        ],
        rows,
    )
    text += (
        "\n`vs bare` and `CPU vs bare` in the goals below are medians of per-round ratios "
        "(each run against the bare loop's run of the same round). `of which GC` is the "
        "time CPython's garbage collector ran during the run (`gc.callbacks`), `full GCs` "
        "the generation-2 collections per run (each walks every object of the process).\n"
    )
    ratios = result["ratios"]
    if "sequential_over_bare" in ratios:
        text += (
            "\nOne page at a time (`read_ahead(0)`), the client reaches "
            f"{ratios['sequential_over_bare']:.2f}x the bare loop's items/s for "
            f"{ratios['cpu_sequential_over_bare']:.2f}x its CPU per item "
            "(medians of per-round ratios).\n"
        )
    if "cpu_pages_let_go_over_bare" in ratios:
        text += (
            "\nA `pages()` loop that lets go of its page before asking for the next "
            "(`del page`, as the bare loop drops its decoded list) costs "
            f"{ratios['cpu_pages_let_go_over_bare']:.2f}x the bare loop's CPU per item, "
            f"{ratios['cpu_pages_let_go_over_pages']:.2f}x the plain `pages()` loop's: the "
            "rest is the consumer's page kept alive while the next one decodes (medians of "
            "per-round ratios).\n"
        )
    if "cpu_ours_over_bare_without_gc" in ratios:
        text += (
            "\nWithout the collector's time on either side, client CPU per item is "
            f"{ratios['cpu_ours_over_bare_without_gc']:.2f}x the bare loop's for `async for` "
            f"and {ratios['cpu_pages_over_bare_without_gc']:.2f}x for `pages()` "
            "(medians of per-round ratios).\n"
        )
    parts = result.get("pieces")
    if parts:
        bare_page = bare_cpu * result["page_size"]
        rows = [
            [name, us, us / result["page_size"], us / bare_page * 100]
            for name, us in parts["us_per_page"].items()
        ]
        text += "\n" + table(
            "Where the client's CPU goes: each piece in-process, no network (least of 7), "
            "then per request with the network (medians of paired requests)",
            ["piece", "CPU us/page", "CPU us/item", "% of bare loop's CPU per page"],
            rows,
        )
        text += (
            "\n`extra` rows: the whole client over pages held in memory (the network stubbed "
            "at the transport's single attempt) minus the bare loop's decode and regex on "
            "the same bytes. The last rows are per request, with the network: one request "
            "of each variant in turn, each timed by this thread's CPU clock, medians over "
            f"{TRANSPORT_TURNS} turns; their `extra` rows are the medians of each turn's "
            "difference to the "
            "bare request. The percentages are of the bare loop's CPU per page in the "
            "run above, network included.\n"
        )
    ahead = result.get("read_ahead")
    if ahead:
        rows = [
            [
                name,
                int(s["pages"]),
                s["pages_per_s"],
                ahead["vs_sequential_bare"][name],
                s["cpu_us_per_item"],
                f"{s['spread'] * 100:.0f}%",
                int(s["rounds"]),
            ]
            for name, s in ahead["results"].items()
        ]
        text += "\n" + table(
            f"Read-ahead: {ahead['latency_s'] * 1000:.0f} ms latency per page, consumer "
            f"{ahead['think_s'] * 1000:.0f} ms per page (async sleep)",
            [
                "variant",
                "pages",
                "pages/s",
                "vs sequential bare",
                "client CPU us/item",
                "spread",
                "rounds",
            ],
            rows,
        )
    if "ceiling_over_requests" in ratios:
        text += (
            "\nAgainst requests + json, the bytes-only reader (which decodes nothing) reaches "
            f"{ratios['ceiling_over_requests']:.2f}x and the bare loop "
            f"{ratios['bare_over_requests']:.2f}x (medians of per-round ratios): with the "
            "server's time in every page, no sequential client that decodes its items can "
            "pass the first, whatever its own cost.\n"
        )
    text += "\nGoals:\n\n" + goals_markdown(result["goals"])
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
    body, headers = result.pop("sample")
    result["pieces"] = pieces(body, headers, pages=20 if args.quick else 60)
    result["pieces"]["us_per_page"].update(result.pop("transport_us_per_page"))
    result["read_ahead"] = asyncio.run(
        measure_read_ahead(
            pages=8 if args.quick else 20,
            rounds=2 if args.quick else 5,
            time_limit=20 if args.quick else 60,
        )
    )
    result["goals"] = goals(result)
    return publish(result, started, render, args.json)


if __name__ == "__main__":
    main()
