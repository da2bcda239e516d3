"""Export: MB/s written by ``sentry_async.export`` (raw mode) vs the raw-bytes ceiling.

The time range is chosen so that one project holds about ``--events`` full events in it;
every variant walks ``/projects/{org}/{project}/events/?full=true`` over that range
(pages of 10, Sentry's cap for full payloads). Rounds are interleaved; medians shown.

* ``exporter, 1 stream``: ``export(client, ExportSpec(kind="events", window=None, ...),
  concurrency=1)``: the same cursor chain as the ceiling, written as JSON Lines, with
  checkpoints (fsync + atomic replace, at most once a second), duplicate detection and
  the manifest; alone, the stream reads two pages ahead of the writer, as the exporter
  does for any stream that runs alone.
* ``exporter, 1-day windows x4``: the exporter's defaults (one stream per day of the
  range, four at a time): what a user gets without tuning.
* ``ceiling: aiohttp -> file``: a bare aiohttp loop reading the same pages' bytes and
  appending each body to a file (one fsync at the end): the most any exporter can do
  against this server without concurrency. It splits nothing: its item count is the
  range's, counted once before the timed rounds.

MB/s is output bytes per second (the exporter's JSON Lines, the ceiling's page bodies:
within a few percent of each other for the same events).

A second table splits the CPU per item of the exporter's own pieces, timed on pages held
in memory (the same server's bodies): what the writing side costs next to the request
path the exporter shares with every other client call.

``--instructions`` (needs ``valgrind``) also counts the instructions per item of the
exporter (1 stream) and of the ceiling under callgrind, each in a process of its own over
about 300 and about 1,300 events: the difference over the items between them takes start-up
out. A busy machine moves CPU time by 10-50%; it barely moves these counts.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import tempfile
import time
from collections.abc import Sequence
from datetime import datetime, timedelta, timezone
from functools import partial
from pathlib import Path
from typing import Any

import aiohttp
import anyio
import msgspec
from _server import (
    FakeServer,
    Runner,
    add_common_args,
    callgrind,
    discover,
    goal,
    goals_markdown,
    interleaved,
    next_cursor,
    paired,
    server_from_args,
    summarise,
    table,
    write_json,
)

from sentry_async import SentryClient
from sentry_async.export import ExportSpec, _datafiles, export
from sentry_async.export._datafiles import OpenFiles
from sentry_async.export._dedupe import dedupe_page
from sentry_async.export._files import item_id
from sentry_async.export._writer import JsonlFile

_count = msgspec.json.Decoder(list[msgspec.Raw])
"""Counts a page's items without decoding them (a scan, negligible next to the I/O)."""


def _utc(dt: datetime) -> str:
    return dt.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")


async def choose_range(
    server: FakeServer, org: str, projects: list[str], events: int
) -> tuple[str, datetime, datetime, int]:
    """(project, start, end, count): a range holding about ``events`` of one project's events.

    Events endpoints send no ``X-Hits``, so the range comes from walking the newest
    ``events`` summaries (100 per page, cheap) and the count from walking the range again.
    """
    project = projects[0]
    async with SentryClient(server.token, base_url=server.base_url) as client:
        newest: datetime | None = None
        oldest: datetime | None = None
        async for event in client.events.for_project(org, project, limit=events):
            if event.date_created is None:
                continue
            newest = event.date_created if newest is None else max(newest, event.date_created)
            oldest = event.date_created if oldest is None else min(oldest, event.date_created)
        end = (newest or datetime.now(timezone.utc)).replace(microsecond=0) + timedelta(seconds=1)
        start = (oldest or end - timedelta(days=1)).replace(microsecond=0)
        count = 0
        async for _event in client.events.for_project(org, project, start=start, end=end):
            count += 1
    return project, start, end, count


class _Id(msgspec.Struct):
    id: str | int | None = None


_ids = msgspec.json.Decoder(list[_Id])


async def page_bodies(
    server: FakeServer, org: str, project: str, start: datetime, end: datetime, pages: int
) -> list[bytes]:
    """The first ``pages`` bodies of the walk every variant makes, held in memory."""
    url = f"{server.api}/projects/{org}/{project}/events/"
    base = {"full": "true", "start": _utc(start), "end": _utc(end)}
    bodies: list[bytes] = []
    cursor: str | None = None
    async with aiohttp.ClientSession(headers=server.headers()) as session:
        for _ in range(pages):
            params = dict(base) if cursor is None else {**base, "cursor": cursor}
            async with session.get(url, params=params) as resp:
                resp.raise_for_status()
                bodies.append(await resp.read())
                cursor = next_cursor(resp.headers.get("Link"))
            if cursor is None:
                break
    return bodies


def _cpu_per_item(work: Any, pages: list[Any], items: int, repeat: int = 5) -> float:
    """The least CPU over ``repeat`` passes of ``work`` over every page, per item, in µs."""
    best = float("inf")
    for _ in range(repeat):
        started = time.process_time()
        for page in pages:
            work(page)
        best = min(best, time.process_time() - started)
    return best / items * 1e6


async def pieces(bodies: list[bytes], scratch: Path) -> dict[str, float]:
    """CPU per item of each piece of the exporter's page path (no network, no server)."""
    decoded = [_count.decode(body) for body in bodies]
    items = sum(len(page) for page in decoded)
    out: dict[str, float] = {}
    out["page decode to raw items (client)"] = _cpu_per_item(
        _count.decode, bodies, items
    )
    out["ids: parse every item (msgspec)"] = _cpu_per_item(
        lambda page: [item_id(raw, leading=False) for raw in page], decoded, items
    )
    out["ids: parse every page once (list of id-only structs)"] = _cpu_per_item(
        _ids.decode, bodies, items
    )
    out["ids: leading id read from the first bytes (exporter)"] = _cpu_per_item(
        lambda page: [item_id(raw) for raw in page], decoded, items
    )
    out["de-duplication, ids included (exporter)"] = _cpu_per_item(
        lambda page: dedupe_page(page, set()), decoded, items
    )
    out["copy each item to bytes (earlier exporter)"] = _cpu_per_item(
        lambda page: [bytes(raw) for raw in page], decoded, items
    )
    handle = JsonlFile(scratch / "pieces.jsonl", compress=False)
    handle.open(0)
    out["join a page into one buffer, one line per item"] = _cpu_per_item(
        handle.encode_page, decoded, items
    )
    lines = [handle.encode_page(page) for page in decoded]
    out["write a page (one write call)"] = _cpu_per_item(handle.append, lines, items)
    handle.close()

    files = OpenFiles(scratch, format="jsonl", compress=False)
    hops = {
        "thread hop per page, anyio's workers (earlier exporter)": partial(
            anyio.to_thread.run_sync, int
        ),
        "thread hop per page, the files' own thread (earlier exporter)": partial(files._call, int),
    }
    for name, hop in hops.items():
        best = float("inf")
        for _ in range(5):
            started = time.process_time()
            for _ in bodies:
                await hop()
            best = min(best, time.process_time() - started)
        out[name] = best / items * 1e6
    best = float("inf")
    for _ in range(5):
        started = time.process_time()
        for _ in bodies:
            files._executor().submit(int)
        await files.drain()
        best = min(best, time.process_time() - started)
    out["page handed to the files' thread, not waited for (exporter)"] = best / items * 1e6
    await files.close_all()
    return out


def make_runners(
    server: FakeServer,
    org: str,
    project: str,
    start: datetime,
    end: datetime,
    scratch: Path,
    items: int,
) -> dict[str, Runner]:
    """``items``: the events in the range, counted beforehand, which the ceiling reports
    instead of splitting its pages (it only appends bodies)."""
    counter = iter(range(10**6))

    def fresh_dir() -> Path:
        path = scratch / f"run-{next(counter)}"
        if path.exists():
            shutil.rmtree(path)
        return path

    def exporter(window: timedelta | None, concurrency: int) -> Runner:
        async def run() -> tuple[int, int, int]:
            out = fresh_dir()
            spec = ExportSpec(
                kind="events",
                org=org,
                projects=(project,),
                start=start,
                end=end,
                window=window,
                full=True,
            )
            async with SentryClient(server.token, base_url=server.base_url) as client:
                manifest = await export(client, spec, out, concurrency=concurrency)
            shutil.rmtree(out, ignore_errors=True)
            return manifest.items, manifest.pages, manifest.bytes

        return run

    async def ceiling() -> tuple[int, int, int]:
        out = fresh_dir()
        out.mkdir(parents=True)
        url = f"{server.api}/projects/{org}/{project}/events/"
        base = {"full": "true", "per_page": "100", "start": _utc(start), "end": _utc(end)}
        pages = nbytes = 0
        connector = aiohttp.TCPConnector(limit=100)
        async with aiohttp.ClientSession(connector=connector, headers=server.headers()) as session:
            with open(out / "events.json", "wb") as handle:
                cursor: str | None = None
                for _ in range(100_000):
                    params = dict(base)
                    if cursor is not None:
                        params["cursor"] = cursor
                    async with session.get(url, params=params) as resp:
                        body = await resp.read()
                        resp.raise_for_status()
                        link = resp.headers.get("Link")
                    handle.write(body)
                    pages += 1
                    nbytes += len(body)
                    cursor = next_cursor(link)
                    if cursor is None:
                        break
                handle.flush()
                os.fsync(handle.fileno())
        shutil.rmtree(out, ignore_errors=True)
        return items, pages, nbytes

    return {
        "exporter, 1 stream": exporter(None, 1),
        "exporter, 1-day windows x4": exporter(timedelta(days=1), 4),
        "ceiling: aiohttp -> file": ceiling,
    }


async def measure(
    server: FakeServer, *, events: int, rounds: int, time_limit: float, scratch: Path
) -> dict[str, Any]:
    info = await discover(server)
    org = info["org"]
    project, start, end, in_range = await choose_range(server, org, info["projects"], events)
    runners = make_runners(server, org, project, start, end, scratch, in_range)
    runs = await interleaved(runners, rounds=rounds, warmup=1, time_limit=time_limit)
    summary = {name: summarise(r) for name, r in runs.items()}
    bodies = await page_bodies(server, org, project, start, end, pages=60)
    breakdown = await pieces(bodies, scratch)
    ceiling = summary["ceiling: aiohttp -> file"]
    ours = summary["exporter, 1 stream"]
    return {
        "org": org,
        "project": project,
        "start": start.isoformat(),
        "end": end.isoformat(),
        "events_in_range": in_range,
        "results": summary,
        "pieces_cpu_us_per_item": breakdown,
        "ratios": {
            "exporter_over_ceiling_mb": ours["mb_per_s"] / ceiling["mb_per_s"],
            "exporter_over_ceiling_items": ours["items_per_s"] / ceiling["items_per_s"],
            # Each round against the ceiling's run next to it: steadier on a shared machine.
            "exporter_over_ceiling_paired": paired(
                runs["exporter, 1 stream"], runs["ceiling: aiohttp -> file"]
            ),
            "exporter_over_ceiling_cpu_paired": paired(
                runs["exporter, 1 stream"], runs["ceiling: aiohttp -> file"], "cpu"
            ),
        },
    }


def render(result: dict[str, Any]) -> str:
    summary = result["results"]
    ceiling = summary["ceiling: aiohttp -> file"]
    rows = [
        [
            name,
            int(s["items"]),
            int(s["pages"]),
            s["mb"],
            s["mb_per_s"],
            s["items_per_s"],
            s["mb_per_s"] / ceiling["mb_per_s"] if ceiling["mb_per_s"] else float("nan"),
            s["cpu_us_per_item"],
            f"{s['spread'] * 100:.0f}%",
            int(s["rounds"]),
        ]
        for name, s in summary.items()
    ]
    r = result["ratios"]
    parts = table(
        "Exporter CPU per item, piece by piece (pages in memory; least of 5 passes)",
        ["piece", "CPU us/item"],
        [[name, cost] for name, cost in result["pieces_cpu_us_per_item"].items()],
    )
    return (
        table(
            f"Export: project {result['project']!r}, {result['events_in_range']:,} full events "
            f"({result['start'][:10]} .. {result['end'][:10]}), raw mode (medians)",
            [
                "variant",
                "items",
                "pages",
                "MB",
                "MB/s",
                "items/s",
                "vs ceiling",
                "client CPU us/item",
                "spread",
                "rounds",
            ],
            rows,
        )
        + f"\nexporter (1 stream) / ceiling = **{r['exporter_over_ceiling_mb']:.2f}x** in MB/s, "
        f"{r['exporter_over_ceiling_items']:.2f}x in items/s; paired by round "
        f"{r['exporter_over_ceiling_paired']:.2f}x in items/s, "
        f"{r['exporter_over_ceiling_cpu_paired']:.2f}x the CPU per item.\n\n" + parts
    )


_COUNTED = ("exporter, 1 stream", "ceiling: aiohttp -> file")


def _child(argv: Sequence[str]) -> None:
    """One pass of a variant over a pinned range (what runs under callgrind)."""
    name, url, token, org, project, start, end, items = argv
    # Under callgrind every write is tens of times slower than the 2 ms that sends pages
    # to the files' thread: keep the path a real run takes (plain pages written on the loop).
    _datafiles.QUICK_WRITE = 60.0
    server = FakeServer(url, token, None, [])
    with tempfile.TemporaryDirectory(prefix="sentry-async-export-bench-") as scratch:
        runners = make_runners(
            server,
            org,
            project,
            datetime.fromisoformat(start),
            datetime.fromisoformat(end),
            Path(scratch),
            int(items),
        )
        written, _pages, _bytes = asyncio.run(runners[name]())
    print(written)


def count_instructions(server: FakeServer, org: str, project: str) -> dict[str, float]:
    """Instructions per item of the exporter and the ceiling, from two callgrind runs each."""
    sizes = [asyncio.run(choose_range(server, org, [project], n)) for n in (300, 1_300)]
    out: dict[str, float] = {}
    for name in _COUNTED:
        counts: list[tuple[int, int]] = []
        for _project, start, end, n in sizes:
            argv = [__file__, "--callgrind-child", name, server.base_url, server.token, org]
            instructions, printed = callgrind(
                [*argv, project, start.isoformat(), end.isoformat(), str(n)]
            )
            counts.append((instructions, int(printed.split()[-1])))
        (low, low_items), (high, high_items) = counts
        out[name] = (high - low) / (high_items - low_items)
    return out


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    add_common_args(parser)
    parser.add_argument("--events", type=int, help="full events per run (5,000; quick 1,000)")
    parser.add_argument("--rounds", type=int, help="kept rounds (9; quick 2)")
    parser.add_argument(
        "--instructions", action="store_true", help="also count instructions (valgrind)"
    )
    parser.add_argument("--callgrind-child", nargs=8, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.callgrind_child:
        _child(args.callgrind_child)
        return {}
    events = args.events or (1_000 if args.quick else 5_000)
    rounds = args.rounds or (2 if args.quick else 9)
    started = time.perf_counter()
    with (
        server_from_args(args) as server,
        tempfile.TemporaryDirectory(prefix="sentry-async-export-bench-") as scratch,
    ):
        result = asyncio.run(
            measure(
                server,
                events=events,
                rounds=rounds,
                time_limit=20 if args.quick else 60,
                scratch=Path(scratch),
            )
        )
        if args.instructions and shutil.which("valgrind") is not None:
            counted = count_instructions(server, result["org"], result["project"])
            result["instructions_per_item"] = counted
    result["goals"] = [
        goal(
            "exporter (1 stream) items/s / ceiling, paired by round",
            result["ratios"]["exporter_over_ceiling_paired"],
            0.9,
        )
    ]
    result["wall_s"] = time.perf_counter() - started
    result["markdown"] = render(result) + "\nGoals:\n\n" + goals_markdown(result["goals"])
    counted = result.get("instructions_per_item")
    if counted:
        ours, ceiling = (counted[name] for name in _COUNTED)
        result["markdown"] += (
            f"\nInstructions per item (callgrind): exporter {ours:,.0f}, ceiling "
            f"{ceiling:,.0f}: **{ours / ceiling:.2f}x**.\n"
        )
    print(result["markdown"])
    write_json(args.json, result)
    return result


if __name__ == "__main__":
    main()
