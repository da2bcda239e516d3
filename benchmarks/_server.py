"""Shared by the benchmarks: the fake server in its own process, its throughput ceiling,
interleaved timing rounds, and markdown tables.

The benchmarks never run the server in the benchmark's process: it would compete for the
same event loop and GIL and make every client look slower (or faster) than it is. Instead
``python -m sentry_async.testing`` runs in a subprocess, prints ``READY <base_url> <token>``
and serves until it is stopped. On a machine with two or more cores the server is pinned
to the last core and the benchmark process to the others, so the two do not trade places
on one core between rounds.

Run standalone to print the server's ceiling: ``python benchmarks/_server.py``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Awaitable, Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

ROOT = Path(__file__).resolve().parent.parent
READY_TIMEOUT = 120.0
"""Seconds to wait for ``READY``: building the large data set takes a few seconds."""

_NEXT = re.compile(r'rel="next"; results="(true|false)"; cursor="([^"]*)"')


def next_cursor(link: str | None) -> str | None:
    """The baseline's Link parsing: one regex, as a hand-written loop would do it."""
    if not link:
        return None
    match = _NEXT.search(link)
    if match is None or match.group(1) != "true":
        return None
    return match.group(2)


def cpu_split() -> tuple[set[int] | None, set[int] | None]:
    """(server cpus, benchmark cpus), or (None, None) when pinning makes no sense."""
    if not hasattr(os, "sched_getaffinity") or os.environ.get("BENCH_NO_PIN"):
        return None, None
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) < 2:
        return None, None
    return {cpus[-1]}, set(cpus[:-1])


@dataclass
class FakeServer:
    """A running fake server: ``base_url`` (no ``/api/0``), ``token``, the process."""

    base_url: str
    token: str
    process: subprocess.Popen[str] | None
    argv: list[str]
    pinned: bool = False
    lines: list[str] = field(default_factory=list)

    @property
    def api(self) -> str:
        return self.base_url.rstrip("/") + "/api/0"

    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}", "Accept": "application/json"}

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)


UNBOUND_RATE_LIMIT = 1_000_000
"""Requests a second the benchmark servers announce for each endpoint: far beyond what one
core can serve, so the announcement never binds. With the fake's default (1,000 a second,
like a generous Sentry) a client that honours it, as ``sentry_async`` does, waits for the
next window once a fast run has used it up, while the hand-written loops ignore it; and
since every variant shares the server's window, how long it waits depended on what the
variant before it had sent in the same second. Using the announced budget is measured on
its own, by ``bench_ratelimit.py``."""


def _python_argv(scale: str, seed: int, extra: Sequence[str], code: str | None) -> list[str]:
    if code is not None:
        return [sys.executable, "-c", code, *extra]
    return [
        sys.executable,
        "-m",
        "sentry_async.testing",
        "--host",
        "127.0.0.1",
        "--port",
        "0",
        "--seed",
        str(seed),
        "--scale",
        scale,
        "--rate-limit",
        str(UNBOUND_RATE_LIMIT),
        *extra,
    ]


@contextlib.contextmanager
def fake_server(
    scale: str = "large",
    *,
    seed: int = 0,
    extra_args: Sequence[str] = (),
    code: str | None = None,
    pin: bool = True,
) -> Iterator[FakeServer]:
    """Start the fake server in a subprocess, yield it once ``READY``, stop it after.

    ``code`` replaces ``-m sentry_async.testing`` with ``-c code`` for configurations the
    command line does not offer; that code must print the same ``READY`` line.
    """
    argv = _python_argv(scale, seed, extra_args, code)
    server_cpus, bench_cpus = cpu_split() if pin else (None, None)
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    process = subprocess.Popen(
        argv,
        cwd=ROOT,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    server: FakeServer | None = None
    try:
        if server_cpus is not None and bench_cpus is not None:
            with contextlib.suppress(OSError):
                os.sched_setaffinity(process.pid, server_cpus)
                os.sched_setaffinity(0, bench_cpus)
        server = _wait_ready(process, argv)
        server.pinned = server_cpus is not None
        _drain(process)
        yield server
    finally:
        if server is not None:
            server.stop()
        elif process.poll() is None:
            process.kill()
            process.wait(timeout=10)
        if server_cpus is not None and hasattr(os, "sched_setaffinity"):
            with contextlib.suppress(OSError):
                os.sched_setaffinity(0, set(range(os.cpu_count() or 1)))


def _wait_ready(process: subprocess.Popen[str], argv: list[str]) -> FakeServer:
    """Read stdout until ``READY <url> <token>`` (on a thread, so the wait is bounded)."""
    result: dict[str, Any] = {}
    seen: list[str] = []

    def reader() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            seen.append(line.rstrip("\n"))
            parts = line.split()
            if len(parts) >= 3 and parts[0] == "READY":
                result["url"], result["token"] = parts[1], parts[2]
                return

    thread = threading.Thread(target=reader, daemon=True)
    thread.start()
    thread.join(READY_TIMEOUT)
    if "url" not in result:
        process.kill()
        _, err = process.communicate(timeout=10)
        raise RuntimeError(
            f"the fake server did not print READY within {READY_TIMEOUT:.0f}s "
            f"({' '.join(argv[1:4])}...)\nstdout: {seen[-5:]}\nstderr: {err[-2000:]}"
        )
    return FakeServer(result["url"], result["token"], process, argv, lines=seen)


def _drain(process: subprocess.Popen[str]) -> None:
    """Keep reading the server's pipes so a chatty server never blocks on a full pipe."""

    def pump(stream: Any) -> None:
        with contextlib.suppress(ValueError, OSError):
            for _ in stream:
                pass

    for stream in (process.stdout, process.stderr):
        if stream is not None:
            threading.Thread(target=pump, args=(stream,), daemon=True).start()


# --- discovery through the public API -------------------------------------------------


async def discover(server: FakeServer) -> dict[str, Any]:
    """Org and project slugs, through the same endpoints a real user would list."""
    async with aiohttp.ClientSession(headers=server.headers()) as session:
        async with session.get(f"{server.api}/organizations/") as resp:
            resp.raise_for_status()
            orgs = await resp.json()
        org = orgs[0]["slug"]
        projects: list[str] = []
        cursor: str | None = None
        for _ in range(100):
            params = {"per_page": "100"}
            if cursor:
                params["cursor"] = cursor
            async with session.get(
                f"{server.api}/organizations/{org}/projects/", params=params
            ) as resp:
                resp.raise_for_status()
                projects.extend(p["slug"] for p in await resp.json())
                cursor = next_cursor(resp.headers.get("Link"))
            if cursor is None:
                break
    return {"orgs": [o["slug"] for o in orgs], "org": org, "projects": projects}


# --- the server's ceiling -------------------------------------------------------------


@dataclass
class Ceiling:
    pages: int
    items_bytes: int
    seconds: float

    @property
    def pages_per_s(self) -> float:
        return self.pages / self.seconds if self.seconds else 0.0

    @property
    def mb_per_s(self) -> float:
        return self.items_bytes / self.seconds / 1e6 if self.seconds else 0.0


async def read_stream(
    session: aiohttp.ClientSession,
    url: str,
    params: dict[str, str],
    *,
    max_pages: int,
    deadline: float,
) -> tuple[int, int]:
    """Follow one cursor chain reading bytes only: (pages, bytes)."""
    pages = nbytes = 0
    cursor: str | None = None
    while pages < max_pages and time.perf_counter() < deadline:
        query = dict(params)
        if cursor is not None:
            query["cursor"] = cursor
        async with session.get(url, params=query) as resp:
            body = await resp.read()
            link = resp.headers.get("Link")
        if resp.status != 200:
            raise RuntimeError(f"GET {url} -> {resp.status}: {body[:200]!r}")
        pages += 1
        nbytes += len(body)
        cursor = next_cursor(link)
        if cursor is None:
            break
    return pages, nbytes


async def ceiling(
    server: FakeServer,
    urls: Sequence[str],
    params: dict[str, str],
    *,
    max_pages_per_stream: int,
    time_limit: float = 60.0,
) -> Ceiling:
    """Pages/s when the client only reads bytes: one stream (and connection) per URL."""
    connector = aiohttp.TCPConnector(limit=max(len(urls), 1))
    async with aiohttp.ClientSession(connector=connector, headers=server.headers()) as session:
        started = time.perf_counter()
        deadline = started + time_limit
        results = await asyncio.gather(
            *(
                read_stream(session, url, params, max_pages=max_pages_per_stream, deadline=deadline)
                for url in urls
            )
        )
        elapsed = time.perf_counter() - started
    return Ceiling(sum(r[0] for r in results), sum(r[1] for r in results), elapsed)


# --- measurement helpers --------------------------------------------------------------


@dataclass
class Run:
    """One timed run: what it moved, wall seconds and this process's CPU seconds."""

    items: int
    pages: int
    seconds: float
    cpu: float
    nbytes: int = 0
    extra: dict[str, Any] = field(default_factory=dict)


Runner = Callable[[], Awaitable[tuple[int, int, int]]]
"""An async callable returning ``(items, pages, bytes)``; sync runners go in a thread."""


class GCTimer:
    """Seconds spent in the garbage collector, and full (generation 2) collections.

    CPython's collector runs when allocations pile up, and a full collection walks every
    tracked object of the process: a run that happens to trigger one pays milliseconds
    that have nothing to do with its own code. Counting it shows how much of a CPU
    difference is the collector's.
    """

    def __init__(self) -> None:
        self.seconds = 0.0
        self.full = 0
        self._started = 0.0

    def __enter__(self) -> GCTimer:
        gc.callbacks.append(self._callback)
        return self

    def __exit__(self, *exc: object) -> None:
        gc.callbacks.remove(self._callback)

    def _callback(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
            return
        self.seconds += time.perf_counter() - self._started
        self.full += info["generation"] == 2


def cpu_of_run(run: Callable[[], Awaitable[object]], rounds: int = 7) -> float:
    """CPU seconds of one ``await run()`` on a fresh event loop: the least of ``rounds``
    (a busy machine only ever adds time, so the least is the work's own cost)."""
    samples = []
    for _ in range(rounds):
        gc.collect()
        start = time.process_time()
        asyncio.run(run())  # type: ignore[arg-type]
        samples.append(time.process_time() - start)
    return min(samples)


def gc_of_run(run: Callable[[], Awaitable[object]], rounds: int = 7) -> float:
    """Seconds the garbage collector took during one ``await run()``: the least of ``rounds``."""
    samples = []
    for _ in range(rounds):
        gc.collect()
        with GCTimer() as collector:
            asyncio.run(run())  # type: ignore[arg-type]
        samples.append(collector.seconds)
    return min(samples)


_COLLECTED = re.compile(r"Collected : (\d+)")


def callgrind(argv: Sequence[str], *, timeout: float = 900) -> tuple[int, str]:
    """Run ``python argv...`` under ``valgrind --tool=callgrind``: the instructions it
    executed and what it printed. Counts barely move with the machine's load."""
    with tempfile.TemporaryDirectory() as tmp:
        done = subprocess.run(
            [
                "valgrind",
                "--tool=callgrind",
                f"--callgrind-out-file={os.path.join(tmp, 'out')}",
                sys.executable,
                *argv,
            ],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    found = _COLLECTED.search(done.stderr)
    if done.returncode or found is None:
        raise RuntimeError(f"callgrind run of {' '.join(argv[:3])} failed: {done.stderr[-500:]}")
    return int(found.group(1)), done.stdout


def _minor_faults() -> int:
    try:
        import resource
    except ImportError:  # not on Windows
        return 0
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt


async def timed(runner: Runner) -> Run:
    """Run once, measuring wall time and the benchmark process's CPU time.

    The server is another process, so this process's CPU time is the client's own cost;
    ``extra["gc_s"]``/``extra["gc_full"]`` is the part of it the garbage collector took,
    ``extra["faults"]`` the minor page faults (memory the kernel had to map afresh: the
    allocator gave some back and took it again) the run made.
    """
    gc.collect()
    with GCTimer() as collector:
        faults0 = _minor_faults()
        cpu0, t0 = time.process_time(), time.perf_counter()
        items, pages, nbytes = await runner()
        t1, cpu1 = time.perf_counter(), time.process_time()
        faults = _minor_faults() - faults0
    extra = {"gc_s": collector.seconds, "gc_full": collector.full, "faults": faults}
    return Run(items, pages, t1 - t0, cpu1 - cpu0, nbytes, extra)


async def interleaved(
    runners: dict[str, Runner], *, rounds: int, warmup: int = 1, time_limit: float = 240.0
) -> dict[str, list[Run]]:
    """One run of every variant per round: ``warmup`` discarded rounds, then up to
    ``rounds`` kept ones.

    The order changes every round (A B C, C B A, B C A, A C B, ...: rotated every second
    round and reversed every other), so over rounds each variant takes every place and
    follows every other: a fixed order hands one variant whatever its place costs on a
    shared machine, in every round. Stops early (keeping at least one round) when
    ``time_limit`` seconds have passed.
    """
    results: dict[str, list[Run]] = {name: [] for name in runners}
    names = list(runners)
    started = time.perf_counter()
    for index in range(warmup + rounds):
        shift = (index // 2) % len(names) if names else 0
        order = names[shift:] + names[:shift]
        if index % 2:
            order.reverse()
        for name in order:
            run = await timed(runners[name])
            if index >= warmup:
                results[name].append(run)
        if index >= warmup and time.perf_counter() - started > time_limit:
            break
    return results


def median(values: Iterable[float]) -> float:
    data = list(values)
    return statistics.median(data) if data else float("nan")


def paired(runs: list[Run], base: list[Run], kind: str = "rate") -> float:
    """The median over rounds of ``runs`` against ``base`` from the same round.

    ``kind="rate"``: items/s over the base's items/s (higher is faster); ``"cpu"``: CPU
    per item over the base's (lower is cheaper); ``"cpu_without_gc"``: the same with the
    garbage collector's time taken off both. Pairing each round with its neighbour
    cancels the slow stretches of a shared machine that medians of each side keep.
    """
    ratios = []
    for run, ref in zip(runs, base, strict=False):
        if not (run.items and ref.items and run.seconds and ref.seconds):
            continue
        if kind == "cpu":
            if ref.cpu > 0:
                ratios.append((run.cpu / run.items) / (ref.cpu / ref.items))
        elif kind == "cpu_without_gc":
            own = run.cpu - run.extra.get("gc_s", 0.0)
            base_own = ref.cpu - ref.extra.get("gc_s", 0.0)
            if base_own > 0:
                ratios.append((own / run.items) / (base_own / ref.items))
        else:
            ratios.append((run.items / run.seconds) / (ref.items / ref.seconds))
    return median(ratios)


def goal(name: str, ratio: float, target: float, *, at_most: bool = False) -> dict[str, Any]:
    """One goal line: ``ratio`` against ``target`` (at least, or ``at_most``)."""
    met = ratio <= target if at_most else ratio >= target
    return {
        "goal": name,
        "ratio": ratio,
        "target": f"{'<=' if at_most else '>='} {target:g}",
        "met": bool(met) and ratio == ratio,
    }


def goals_markdown(goals: Sequence[dict[str, Any]]) -> str:
    """``- <goal>: <ratio>x (goal <target>): met|**missed**`` per goal."""
    return "".join(
        f"- {g['goal']}: {g['ratio']:.2f}x (goal {g['target']}): "
        f"{'met' if g['met'] else '**missed**'}\n"
        for g in goals
    )


def summarise(runs: list[Run]) -> dict[str, float]:
    """Medians of one variant's kept runs."""
    seconds = median(r.seconds for r in runs)
    items = runs[0].items if runs else 0
    return {
        "rounds": len(runs),
        "items": items,
        "pages": runs[0].pages if runs else 0,
        "seconds": seconds,
        "mb": runs[0].nbytes / 1e6 if runs else 0.0,
        "items_per_s": median(r.items / r.seconds for r in runs if r.seconds),
        "pages_per_s": median(r.pages / r.seconds for r in runs if r.seconds),
        "mb_per_s": median(r.nbytes / r.seconds / 1e6 for r in runs if r.seconds),
        "cpu_s": median(r.cpu for r in runs),
        "cpu_us_per_item": median(r.cpu / r.items * 1e6 for r in runs if r.items),
        "gc_us_per_item": median(r.extra.get("gc_s", 0.0) / r.items * 1e6 for r in runs if r.items),
        "gc_full": median(r.extra.get("gc_full", 0) for r in runs),
        "faults_per_page": median(r.extra.get("faults", 0) / r.pages for r in runs if r.pages),
        "spread": (max(r.seconds for r in runs) - min(r.seconds for r in runs)) / seconds
        if runs and seconds
        else 0.0,
    }


def table(title: str, headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A markdown table under a ``###`` heading; floats get thousands separators."""

    def cell(value: Any) -> str:
        if isinstance(value, float):
            if value != value:  # NaN
                return "-"
            if abs(value) >= 100:
                return f"{value:,.0f}"
            if abs(value) >= 10:
                return f"{value:.1f}"
            return f"{value:.2f}"
        if isinstance(value, int):
            return f"{value:,}"
        return str(value)

    cells = [[cell(v) for v in row] for row in rows]
    numeric = [
        all(isinstance(row[i], (int, float)) or row[i] in ("", "-") for row in rows)
        for i in range(len(headers))
    ]
    widths = [max(len(h), *(len(r[i]) for r in cells)) for i, h in enumerate(headers)]
    lines = [f"### {title}", ""]
    lines.append("| " + " | ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)) + " |")
    lines.append(
        "|"
        + "|".join(
            "-" * (w + 1) + ":" if num else "-" * (w + 2)
            for w, num in zip(widths, numeric, strict=True)
        )
        + "|"
    )
    for row in cells:
        padded = (
            v.rjust(w) if num else v.ljust(w)
            for v, w, num in zip(row, widths, numeric, strict=True)
        )
        lines.append("| " + " | ".join(padded) + " |")
    return "\n".join(lines) + "\n"


def rss_kib() -> dict[str, int]:
    """``VmRSS`` and ``VmHWM`` (peak) of this process in KiB, from /proc/self/status."""
    out: dict[str, int] = {}
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith(("VmRSS:", "VmHWM:")):
                    key, value = line.split(":", 1)
                    out[key] = int(value.split()[0])
    except OSError:
        import resource

        out["VmHWM"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        out["VmRSS"] = out["VmHWM"]
    return out


def write_json(path: str | os.PathLike[str] | None, data: Any) -> None:
    """Write a script's results where ``--json`` asked (run_all collects them)."""
    if path is None:
        return
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(data, indent=2, sort_keys=True, default=str) + "\n")


def publish(
    result: dict[str, Any],
    started: float,
    render: Callable[[dict[str, Any]], str],
    path: str | os.PathLike[str] | None,
) -> dict[str, Any]:
    """How every script ends: its wall time and tables put in ``result``, the tables printed,
    and the JSON written where ``--json`` asked."""
    result["wall_s"] = time.perf_counter() - started
    result["markdown"] = render(result)
    print(result["markdown"])
    write_json(path, result)
    return result


def add_common_args(parser: argparse.ArgumentParser) -> None:
    """``--quick``, ``--json`` and ``--server URL TOKEN`` (reuse a running fake server)."""
    parser.add_argument("--quick", action="store_true", help="CI-sized run")
    parser.add_argument("--json", metavar="PATH", help="write results as JSON here")
    parser.add_argument(
        "--server",
        nargs=2,
        metavar=("BASE_URL", "TOKEN"),
        help="use this running fake server instead of starting one",
    )


@contextlib.contextmanager
def server_from_args(
    args: argparse.Namespace, scale: str = "large", **kwargs: Any
) -> Iterator[FakeServer]:
    """The server named by ``--server``, or a fresh one for the duration of the block."""
    if args.server:
        base_url, token = args.server
        yield FakeServer(base_url, token, None, [])
        return
    with fake_server(scale, **kwargs) as server:
        yield server


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", default="large")
    parser.add_argument("--pages", type=int, default=250)
    args = parser.parse_args(argv)
    with fake_server(args.scale) as server:
        print(f"server: {server.base_url} (pinned: {server.pinned})")
        info = asyncio.run(discover(server))
        print(f"org {info['org']!r}, {len(info['projects'])} projects")
        url = f"{server.api}/organizations/{info['org']}/issues/"
        result = asyncio.run(
            ceiling(server, [url], {"query": "", "limit": "100"}, max_pages_per_stream=args.pages)
        )
        print(
            f"ceiling, issues, 1 connection: {result.pages} pages in {result.seconds:.2f}s = "
            f"{result.pages_per_s:,.0f} pages/s, {result.mb_per_s:.1f} MB/s"
        )


if __name__ == "__main__":
    main()
