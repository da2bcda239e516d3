"""Fan-out: many project streams at once through one shared client.

For N = 1, 8, 32 and 128 concurrent streams (one project each), every stream walks its
project's event summaries (100 per page) for up to ``P`` pages, where ``N * P`` is about
the same total for every N. The benchmark starts its own fake server with 128 projects of
about 64 pages each, so the one-stream level walks one whole project (fewer pages than the
others; compare rates, not totals). Variants, interleaved by round:

* ``sentry_async, N tasks``: one ``SentryClient`` (one session, one limiter) and N
  ``asyncio.gather``-ed tasks, each ``async for`` over
  ``client.events.for_project(org, project)``. The client's default
  ``max_concurrency=25`` per endpoint group applies: past 25 streams, tasks queue for a
  slot instead of opening more connections (that is the point of the shared limiter).
* ``..., max_concurrency=N`` (N > 25 only): the same with the cap lifted to N.
* ``fan_out(concurrency=N), items``: ``sentry_async.fanout.fan_out`` merging the N
  paginators into one iterator (bounded buffer, backpressure), one item at a time.
* ``fan_out(concurrency=N), pages()``: the same merging ``paginator.pages()``.
* ``sentry_async, N tasks, raw() items`` and ``fan_out(concurrency=N), raw() items``: the
  same two ways over ``paginator.raw()`` (items stay undecoded JSON bytes), to tell the
  client's share of raw mode's distance to the ceiling from the merge's.
* ``hand-written merge: N tasks -> asyncio.Queue``: what one writes without ``fan_out``: the
  N tasks put each page's items on a queue of one slot, and an async generator hands them
  out, ``(key, item)`` by ``(key, item)``; the floor of a merge into one consumer, against
  which the goal's distance to N tasks can be read.
* ``server ceiling``: N aiohttp readers over N connections that only read bytes (no
  decoding, no limiter): the most the server process can deliver at that concurrency.

Peak memory is measured in a separate, untimed pass per N with ``tracemalloc`` (Python
allocations, peak minus the level before the pass), because tracing slows allocation.
On a 2-core machine the server process has one of the cores: scaling is bounded by
the server, so read ``vs ceiling`` rather than absolute pages/s.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import time
import tracemalloc
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable, Sequence
from typing import Any

import aiohttp
import anyio
import msgspec
from _server import (
    FakeServer,
    Run,
    Runner,
    add_common_args,
    cpu_of_run,
    discover,
    gc_of_run,
    goal,
    goals_markdown,
    interleaved,
    paired,
    publish,
    read_stream,
    server_from_args,
    summarise,
    table,
)

from sentry_async import SentryClient

PAGE_SIZE = 100
OURS = "sentry_async, N tasks"
OURS_RAW = "sentry_async, N tasks, raw() items"
HAND = "hand-written merge: N tasks -> asyncio.Queue"
ITEMS = "fan_out(concurrency=N), items"
RAW = "fan_out(concurrency=N), raw() items"
CEILING = "server ceiling"
GOAL_LEVELS = (8, 32, 128)
"""Where fan_out's items must keep up with N plain tasks."""
RAW_GOAL_LEVEL = 8
"""Where fan_out in raw mode must keep up with the server's ceiling."""


def streams_runners(
    server: FakeServer, org: str, projects: list[str], pages_per_stream: int
) -> dict[str, Runner]:
    """The three variants for one concurrency level (``len(projects)`` streams)."""
    n = len(projects)
    limit = pages_per_stream * PAGE_SIZE

    def ours_with(max_concurrency: int | None, raw: bool = False) -> Runner:
        async def run() -> tuple[int, int, int]:
            kwargs: dict[str, Any] = {}
            if max_concurrency is not None:
                kwargs["max_concurrency"] = max_concurrency
                kwargs["max_connections"] = max(100, max_concurrency)
            async with SentryClient(server.token, base_url=server.base_url, **kwargs) as client:

                async def one(project: str) -> tuple[int, int]:
                    paginator = client.events.for_project(
                        org, project, page_size=PAGE_SIZE, limit=limit
                    )
                    if raw:
                        paginator = paginator.raw()
                    count = 0
                    async for _event in paginator:
                        count += 1
                    return count, paginator.pages_fetched

                done = await asyncio.gather(*(one(p) for p in projects))
            return sum(d[0] for d in done), sum(d[1] for d in done), 0

        return run

    async def ceiling() -> tuple[int, int, int]:
        connector = aiohttp.TCPConnector(limit=max(n, 1))
        async with aiohttp.ClientSession(connector=connector, headers=server.headers()) as session:
            deadline = time.perf_counter() + 120
            done = await asyncio.gather(
                *(
                    read_stream(
                        session,
                        f"{server.api}/projects/{org}/{project}/events/",
                        {"per_page": str(PAGE_SIZE)},
                        max_pages=pages_per_stream,
                        deadline=deadline,
                    )
                    for project in projects
                )
            )
        pages = sum(d[0] for d in done)
        return pages * PAGE_SIZE, pages, sum(d[1] for d in done)

    async def hand_merged() -> tuple[int, int, int]:
        count = pages = 0
        async with SentryClient(server.token, base_url=server.base_url) as client:
            queue: asyncio.Queue[tuple[str, list[Any]] | None] = asyncio.Queue(maxsize=1)

            async def one(project: str) -> None:
                nonlocal pages
                paginator = client.events.for_project(
                    org, project, page_size=PAGE_SIZE, limit=limit
                )
                async for page in paginator.pages():
                    await queue.put((project, page.items))
                await queue.put(None)
                pages += paginator.pages_fetched

            async def merged_items() -> AsyncIterator[tuple[str, Any]]:
                running = len(projects)
                while running:
                    got = await queue.get()
                    if got is None:
                        running -= 1
                        continue
                    key, items = got
                    for item in items:
                        yield key, item

            async with anyio.create_task_group() as group:
                for project in projects:
                    group.start_soon(one, project)
                async for _key, _item in merged_items():
                    count += 1
        return count, pages, 0

    def merged(pages: bool, raw: bool = False) -> Runner:
        async def run() -> tuple[int, int, int]:
            from sentry_async.fanout import fan_out

            count = npages = 0
            async with SentryClient(server.token, base_url=server.base_url) as client:

                def factory(project: str) -> Callable[[], AsyncIterable[Any]]:
                    def make() -> AsyncIterable[Any]:
                        paginator = client.events.for_project(
                            org, project, page_size=PAGE_SIZE, limit=limit
                        )
                        if raw:
                            return paginator.raw()
                        return paginator.pages() if pages else paginator

                    return make

                streams = {project: factory(project) for project in projects}
                async with fan_out(streams, concurrency=n) as stream:
                    async for _key, value in stream:
                        if pages:
                            npages += 1
                            count += len(value.items)
                        else:
                            count += 1
            if not pages:
                npages = -(-count // PAGE_SIZE)
            return count, npages, 0

        return run

    runners = {"sentry_async, N tasks": ours_with(None)}
    if n > 25:
        runners[f"sentry_async, N tasks, max_concurrency={n}"] = ours_with(n)
    if _has_fanout():
        runners["fan_out(concurrency=N), items"] = merged(pages=False)
        runners["fan_out(concurrency=N), pages()"] = merged(pages=True)
        runners[HAND] = hand_merged
        runners[OURS_RAW] = ours_with(None, raw=True)
        runners[RAW] = merged(pages=False, raw=True)
    runners[CEILING] = ceiling
    return runners


def _has_fanout() -> bool:
    try:
        import sentry_async.fanout  # noqa: F401
    except ImportError:
        return False
    return True


async def peak_memory(runner: Runner) -> float:
    """Peak traced Python memory (MiB) above the level before the run."""
    gc.collect()
    tracemalloc.start()
    try:
        base, _ = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        await runner()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return (peak - base) / 2**20


async def loop_passes(runner: Runner) -> float:
    """Passes of the event loop per page in one untimed run: how many times it polled
    its selector. N tasks share a pass among every response that arrived; a merge into one
    consumer takes a pass for the consumer and one for the fetcher it wakes."""
    selector = asyncio.get_running_loop()._selector  # type: ignore[attr-defined]
    select = selector.select
    polls = 0

    def counted(timeout: float | None = None) -> Any:
        nonlocal polls
        polls += 1
        return select(timeout)

    selector.select = counted
    try:
        _, pages, _ = await runner()
    finally:
        del selector.select  # the instance attribute: the class's method again
    return polls / pages if pages else float("nan")


async def measure(
    server: FakeServer,
    *,
    levels: Sequence[int],
    total_pages: int,
    rounds: int,
    time_limit: float,
) -> dict[str, Any]:
    info = await discover(server)
    org, projects = info["org"], info["projects"]
    results: dict[str, Any] = {}
    per_level_limit = time_limit / max(len(levels), 1)
    for n in levels:
        if n > len(projects):
            results[str(n)] = {"skipped": f"the server has only {len(projects)} projects"}
            continue
        pages_per_stream = max(2, -(-total_pages // n))
        runners = streams_runners(server, org, projects[:n], pages_per_stream)
        runs = await interleaved(runners, rounds=rounds, warmup=1, time_limit=per_level_limit)
        summary = {name: summarise(r) for name, r in runs.items()}
        memory = {name: await peak_memory(runners[name]) for name in runners}
        passes = {name: await loop_passes(runners[name]) for name in runners}
        ratios: dict[str, float] = {}
        ratio_spreads: dict[str, list[float]] = {}
        if ITEMS in runs:
            for name, (run, base) in {
                "items_over_tasks": (ITEMS, OURS),
                "hand_merge_over_tasks": (HAND, OURS),
                "items_over_hand_merge": (ITEMS, HAND),
                "raw_over_ceiling": (RAW, CEILING),
                "raw_tasks_over_ceiling": (OURS_RAW, CEILING),
                "raw_over_raw_tasks": (RAW, OURS_RAW),
            }.items():
                ratios[name] = paired(runs[run], runs[base])
                ratio_spreads[name] = per_round(runs[run], runs[base])
        results[str(n)] = {
            "streams": n,
            "pages_per_stream": pages_per_stream,
            "variants": summary,
            "peak_mib": memory,
            "loop_passes_per_page": passes,
            "ratios": ratios,
            "ratio_rounds": ratio_spreads,
        }
    out = {"org": org, "projects": len(projects), "levels": list(levels), "results": results}
    out["sample"] = await sample_page(server, org, projects[0])
    out["goals"] = goals(results)
    return out


def per_round(runs: list[Run], base: list[Run]) -> list[float]:
    """Each round's ratio of items/s, in round order: the spread behind :func:`paired`."""
    return [
        (run.items / run.seconds) / (ref.items / ref.seconds)
        for run, ref in zip(runs, base, strict=False)
        if run.items and ref.items and run.seconds and ref.seconds
    ]


# --- where fan_out's CPU goes, piece by piece (in-process, no network) -----------------

PIECE_LEVELS = (8, 128)


def _in_memory(n: int, pages: int, items: list[Any]) -> Callable[[], Any]:
    """A factory of paginators over ``pages`` pages held in memory (one suspension per
    page, as a request would have), so only the paginator and the merge cost CPU."""
    from sentry_async.pagination import Paginator, RawPage

    links = [
        f'<u>; rel="next"; results="{str(i + 1 < pages).lower()}"; cursor="{i + 1}"'
        for i in range(pages)
    ]

    async def fetch(cursor: str | None, size: int | None) -> RawPage:
        index = 0 if cursor is None else int(cursor)
        await asyncio.sleep(0)
        return RawPage(items, links[index], fingerprint=index)

    return lambda: Paginator(fetch, page_size=PAGE_SIZE)


def _stubbed_client(body: bytes, headers: dict[str, str], pages: int) -> Callable[[], Any]:
    """A client whose transport answers from memory: real decoding, no network."""
    from multidict import CIMultiDict, CIMultiDictProxy
    from yarl import URL

    from sentry_async import _transport
    from sentry_async._protocol.ratelimit import parse_rate_limit

    decoded = msgspec.json.decode(body)
    bodies = []
    for i in range(pages):
        decoded[0]["id"] = f"{i:032x}"  # pages differ, as a stream's pages do
        bodies.append(msgspec.json.encode(decoded))
    cursors = {"": 0, **{f"0:{i * PAGE_SIZE}:0": i for i in range(pages)}}

    def client() -> SentryClient:
        sentry = SentryClient("t", base_url="http://127.0.0.1:8000")
        transport = sentry._get_transport()

        async def exchange(method: str, url: URL, *_: Any) -> Any:
            await asyncio.sleep(0)
            index = cursors[url.query.get("cursor", "")]
            more = str(index + 1 < pages).lower()
            page_headers = CIMultiDict(headers)
            page_headers["Link"] = (
                f'<u>; rel="next"; results="{more}"; cursor="0:{(index + 1) * PAGE_SIZE}:0"'
            )
            proxy = CIMultiDictProxy(page_headers)
            return _transport.Response(
                method, url, 200, proxy, bodies[index], parse_rate_limit(proxy), 0.0
            )

        transport._exchange = exchange  # type: ignore[method-assign]
        return sentry

    return client


def pieces(body: bytes, headers: dict[str, str], *, total: int, rounds: int) -> dict[str, Any]:
    """CPU per page of fan_out's own work, against N plain tasks over the same paginators.

    Streams are paginators over pages held in memory (one suspension per page), so the
    differences are the merge's own: the per-page hand-over and room waits, the per-item
    step of each way of iterating, and the per-stream start and end. The last rows run the
    whole client with its transport answering from memory, to show the garbage collector's
    share: a decoded page that waits between its fetcher and the consumer is a page of
    objects the collector walks.
    """
    items = [object() for _ in range(PAGE_SIZE)]
    out = {}
    for n in PIECE_LEVELS:
        row = _level_pieces(n, max(1, total // n), items, body, headers, rounds)
        out[str(n)] = {name: seconds * 1e6 for name, seconds in row.items()}
    return {"us_per_page": out, "total_pages": total, "rounds": rounds}


def _level_pieces(
    n: int, pages: int, items: list[Any], body: bytes, headers: dict[str, str], rounds: int
) -> dict[str, float]:
    """:func:`pieces` for ``n`` streams of ``pages`` pages each: CPU seconds per page."""
    from sentry_async.fanout import fan_out

    npages = pages * n
    paginator = _in_memory(n, pages, items)
    one_page = _in_memory(n, 1, items)

    def tasks(make: Callable[[], Any] = paginator) -> Callable[[], Awaitable[None]]:
        async def run() -> None:
            async def one() -> None:
                async for _ in make():
                    pass

            await asyncio.gather(*(one() for _ in range(n)))

        return run

    def merged(
        how: str, make: Callable[[], Any] = paginator, buffer: int = 64
    ) -> Callable[[], Awaitable[None]]:
        async def run() -> None:
            streams = dict.fromkeys(range(n), make)
            async with fan_out(streams, concurrency=n, buffer=buffer) as stream:
                if how == "items":
                    async for _ in stream:
                        pass
                elif how == "anext":
                    while True:
                        try:
                            await anext(stream)
                        except StopAsyncIteration:
                            break
                else:
                    async for _ in stream.events():
                        pass

        return run

    floor = cpu_of_run(tasks(), rounds)
    row = {"N tasks, async for (the floor)": floor / npages}
    for label, how in (("async for", "items"), ("anext()", "anext"), ("events()", "events")):
        row[f"fan_out {label}: extra"] = (cpu_of_run(merged(how), rounds) - floor) / npages
    unbounded = (cpu_of_run(merged("items", buffer=10**9), rounds) - floor) / npages
    row["fan_out async for, buffer never full: extra"] = unbounded
    row["of which room waits and wake-ups"] = row["fan_out async for: extra"] - unbounded
    start_end = cpu_of_run(merged("items", one_page), rounds)
    start_end -= cpu_of_run(tasks(one_page), rounds)
    row["one stream's start and end (StreamDone...): extra, per stream"] = start_end / n

    client = _stubbed_client(body, headers, pages)

    async def client_tasks() -> None:
        async with client() as sentry:

            async def one(project: int) -> None:
                async for _ in sentry.events.for_project("org", f"p{project}"):
                    pass

            await asyncio.gather(*(one(p) for p in range(n)))

    async def client_merged() -> None:
        async with client() as sentry:
            streams = {p: (lambda p=p: sentry.events.for_project("org", f"p{p}")) for p in range(n)}
            async with fan_out(streams, concurrency=n) as stream:
                async for _ in stream:
                    pass

    row["client, no network, N tasks: CPU"] = cpu_of_run(client_tasks, rounds) / npages
    row["client, no network, fan_out: CPU"] = cpu_of_run(client_merged, rounds) / npages
    row["client, no network, N tasks: garbage collector"] = gc_of_run(client_tasks, rounds) / npages
    row["client, no network, fan_out: garbage collector"] = (
        gc_of_run(client_merged, rounds) / npages
    )
    return row


async def sample_page(server: FakeServer, org: str, project: str) -> tuple[bytes, dict[str, str]]:
    """One real page of event summaries and its headers, to feed the pieces."""
    async with aiohttp.ClientSession(headers=server.headers()) as session:
        url = f"{server.api}/projects/{org}/{project}/events/"
        async with session.get(url, params={"per_page": str(PAGE_SIZE)}) as resp:
            return await resp.read(), dict(resp.headers)


def goals(results: dict[str, Any]) -> list[dict[str, Any]]:
    """fan_out's items against N plain tasks, and its raw mode against the server."""
    out = []
    for n in GOAL_LEVELS:
        ratios = results.get(str(n), {}).get("ratios", {})
        if "items_over_tasks" in ratios:
            out.append(
                goal(f"fan_out items / N plain tasks, {n} streams", ratios["items_over_tasks"], 0.9)
            )
    ratios = results.get(str(RAW_GOAL_LEVEL), {}).get("ratios", {})
    if "raw_over_ceiling" in ratios:
        out.append(
            goal(
                f"fan_out raw() items / server ceiling, {RAW_GOAL_LEVEL} streams",
                ratios["raw_over_ceiling"],
                0.9,
            )
        )
    return out


def render(result: dict[str, Any]) -> str:
    if not result["results"]:
        return render_pieces(result.get("pieces"))
    rows = []
    base_ours: float | None = None
    for key, level in result["results"].items():
        if "skipped" in level:
            rows.append([key, level["skipped"], *["-"] * 10])
            continue
        ceiling = level["variants"][CEILING]["pages_per_s"]
        for name, s in level["variants"].items():
            if name == OURS and base_ours is None:
                base_ours = s["pages_per_s"]
            scaling = s["pages_per_s"] / base_ours if name == OURS and base_ours else None
            rows.append(
                [
                    key,
                    name,
                    int(s["pages"]),
                    s["pages_per_s"],
                    s["pages_per_s"] / ceiling if ceiling else float("nan"),
                    scaling if scaling is not None else "",
                    s["cpu_us_per_item"] * PAGE_SIZE / 1000,
                    s.get("faults_per_page", float("nan")),
                    level["peak_mib"][name],
                    level.get("loop_passes_per_page", {}).get(name, float("nan")),
                    f"{s['spread'] * 100:.0f}%",
                    int(s["rounds"]),
                ]
            )
    return (
        table(
            f"Fan-out: concurrent project streams, event summaries x {PAGE_SIZE} (medians)",
            [
                "streams",
                "variant",
                "pages",
                "pages/s",
                "vs ceiling",
                "vs 1 stream",
                "client CPU ms/page",
                "page faults/page",
                "peak MiB (tracemalloc)",
                "loop passes/page",
                "spread",
                "rounds",
            ],
            rows,
        )
        + "\n`vs ceiling`: pages/s over the bytes-only reader's at the same N. `vs 1 stream`: "
        "sentry_async's pages/s over its own with one stream. The server process has one of "
        "the two cores, so the ceiling is flat beyond a few streams. `page faults/page`: "
        "minor page faults of the process per page (memory the allocator gave back to the "
        "kernel and took again). `loop passes/page`: how often the event loop polled its "
        "selector per page, in an untimed run of its own: N tasks share a pass among every "
        "response that arrived, a merge takes one for its consumer and one for the fetcher "
        "it wakes. The goals are medians of per-round ratios (each run "
        "against the same round's N tasks or ceiling); the hand-written merge shows what "
        "merging into one consumer costs by itself.\n"
        "\nGoals:\n\n"
        + goals_markdown(result["goals"])
        + render_ratios(result["results"])
        + render_pieces(result.get("pieces"))
    )


def render_ratios(results: dict[str, Any]) -> str:
    """Every paired ratio per level: its median and the least and most of its rounds."""
    rows = []
    for key, level in results.items():
        for name, values in level.get("ratio_rounds", {}).items():
            if values:
                rows.append([key, name, level["ratios"][name], min(values), max(values)])
    if not rows:
        return ""
    return "\n" + table(
        "Paired ratios (items/s against the same round's base)",
        ["streams", "ratio", "median", "least", "most"],
        rows,
    )


def render_pieces(pieces: dict[str, Any] | None) -> str:
    if not pieces:
        return ""
    levels = list(pieces["us_per_page"])
    names = list(pieces["us_per_page"][levels[0]])
    rows = [[name, *(pieces["us_per_page"][n][name] for n in levels)] for name in names]
    return "\n" + table(
        f"Where fan_out's CPU goes: us per page of {PAGE_SIZE} items, in-process, no network "
        f"(least of {pieces['rounds']}, {pieces['total_pages']} pages per run)",
        ["piece", *(f"{n} streams" for n in levels)],
        rows,
    )


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    add_common_args(parser)
    parser.add_argument("--levels", type=int, nargs="+", default=[1, 8, 32, 128])
    parser.add_argument("--total-pages", type=int, help="pages per run (256; quick 128)")
    parser.add_argument("--rounds", type=int, help="kept rounds (7; quick 2)")
    parser.add_argument("--projects", type=int, default=128, help="projects on the fake server")
    parser.add_argument("--issues", type=int, default=800, help="issues per project")
    parser.add_argument(
        "--no-pieces", action="store_true", help="skip the in-process breakdown of fan_out's CPU"
    )
    parser.add_argument(
        "--pieces-only", action="store_true", help="only the in-process breakdown of fan_out's CPU"
    )
    parser.add_argument("--piece-rounds", type=int, help="runs per piece, the least kept (7)")
    args = parser.parse_args(argv)
    total = args.total_pages or (128 if args.quick else 256)
    rounds = args.rounds or (2 if args.quick else 7)
    started = time.perf_counter()
    extra = ("--projects", str(max(args.projects, *args.levels)), "--issues", str(args.issues))
    with server_from_args(args, scale="large", extra_args=extra) as server:
        result = asyncio.run(
            measure(
                server,
                levels=[] if args.pieces_only else args.levels,
                total_pages=total,
                rounds=rounds,
                time_limit=20 if args.quick else 240,
            )
        )
    body, headers = result.pop("sample")
    if not args.no_pieces:
        piece_rounds = args.piece_rounds or (3 if args.quick else 7)
        result["pieces"] = pieces(
            body, headers, total=512 if args.quick else 2048, rounds=piece_rounds
        )
    return publish(result, started, render, args.json)


if __name__ == "__main__":
    main()
