"""glibc's malloc under asyncio's socket reads: what a mapping per response costs a fan-out.

asyncio reads a socket into a fresh 256 KiB buffer (``recv(262144)``) and shrinks it to
what arrived. glibc serves an allocation that size from its heap when the heap has room,
and from a new ``mmap`` when it has not; a 60 KB page then costs an ``mmap``, a
``mremap`` (the shrink) and a ``munmap``, and about 15 minor page faults as the kernel maps
the pages ``recv`` writes. glibc raises its mapping threshold by itself when a large
mapping is freed, but this buffer is shrunk before it is freed and never moves it: whether
a process pays this on every response depends on its heap's history (the same level of
``bench_fanout.py`` shows 15 faults a page in one run and none in the next).

This runs the 8-stream level of ``bench_fanout.py`` (N tasks, ``fan_out`` items and raw,
the server's ceiling), after its 1-stream level as there, in child processes, alternately
with glibc's defaults and with :data:`TUNED` in their environment, and prints each
variant's CPU per page, pages/s and page faults per page in both, each process's own
figures, and the fan-out goals' ratios in both. Nothing here is a goal: the goals are
measured with glibc's defaults, by ``bench_fanout.py``. Under another C library the two
variables mean nothing, and the two modes are the same.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from _server import (
    Run,
    add_common_args,
    discover,
    interleaved,
    paired,
    publish,
    server_from_args,
    summarise,
    table,
)
from bench_fanout import CEILING, ITEMS, OURS, PAGE_SIZE, RAW, streams_runners

TUNED = {
    "MALLOC_MMAP_THRESHOLD_": str(4 * 1024 * 1024),
    "MALLOC_TRIM_THRESHOLD_": str(8 * 1024 * 1024),
}
"""What the README suggests: allocations under 4 MiB (asyncio's read buffer, a page's body)
come from the heap, and the heap keeps up to 8 MiB it no longer uses instead of giving it
back after every response."""
MODES = ("glibc defaults", "thresholds raised")
STREAMS = 8
VARIANTS = (OURS, ITEMS, RAW, CEILING)
RATIOS = {"fan_out items / N tasks": (ITEMS, OURS), "fan_out raw / ceiling": (RAW, CEILING)}


def _runs(data: list[dict[str, Any]]) -> list[Run]:
    return [Run(**run) for run in data]


async def child(server_args: argparse.Namespace, rounds: int, total_pages: int) -> dict[str, Any]:
    """One process's interleaved rounds of the four variants at :data:`STREAMS` streams,
    after one untimed run of each variant at one stream: the history the process of
    ``bench_fanout.py`` has when it gets to eight (without it, a fresh process rarely
    maps its reads; with it, most processes do)."""
    with server_from_args(server_args) as server:
        info = await discover(server)
        alone = streams_runners(server, info["org"], info["projects"][:1], total_pages // 4)
        for name in VARIANTS:
            await alone[name]()
        runners = streams_runners(
            server, info["org"], info["projects"][:STREAMS], max(2, total_pages // STREAMS)
        )
        runs = await interleaved(
            {name: runners[name] for name in VARIANTS}, rounds=rounds, warmup=1
        )
    return {name: [vars(run) for run in kept] for name, kept in runs.items()}


def child_env(mode: str, environ: Mapping[str, str]) -> dict[str, str]:
    """``environ`` without any malloc setting of its own (``MALLOC_*_``, or glibc's
    tunables), so that "glibc defaults" are glibc's; plus :data:`TUNED` for the other mode."""
    env = {
        k: v for k, v in environ.items() if not k.startswith("MALLOC_") and k != "GLIBC_TUNABLES"
    }
    if mode == MODES[1]:
        env.update(TUNED)
    return env


def spawn(
    mode: str, server: tuple[str, str], rounds: int, total_pages: int, out: Path
) -> dict[str, list[Run]]:
    """Run :func:`child` in a fresh interpreter; ``mode`` picks its environment."""
    env = child_env(mode, os.environ)
    argv = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--child",
        str(out),
        "--server",
        *server,
        "--rounds",
        str(rounds),
        "--total-pages",
        str(total_pages),
    ]
    subprocess.run(argv, env=env, check=True, timeout=600)
    return {name: _runs(data) for name, data in json.loads(out.read_text()).items()}


def measure(
    server: tuple[str, str], *, children: int, rounds: int, total_pages: int
) -> dict[str, Any]:
    """``children`` processes of each mode, alternating; every kept round pooled per mode."""
    pooled: dict[str, dict[str, list[Run]]] = {m: {v: [] for v in VARIANTS} for m in MODES}
    per_child: dict[str, list[dict[str, dict[str, float]]]] = {m: [] for m in MODES}
    with tempfile.TemporaryDirectory(prefix="bench-allocator-") as tmp:
        for index in range(children):
            for mode in MODES if index % 2 == 0 else reversed(MODES):
                runs = spawn(mode, server, rounds, total_pages, Path(tmp) / "child.json")
                for name, kept in runs.items():
                    pooled[mode][name].extend(kept)
                per_child[mode].append({name: summarise(kept) for name, kept in runs.items()})
    variants = {m: {v: summarise(pooled[m][v]) for v in VARIANTS} for m in MODES}
    ratios = {
        m: {label: paired(pooled[m][a], pooled[m][b]) for label, (a, b) in RATIOS.items()}
        for m in MODES
    }
    cpu_change = {
        v: variants[MODES[1]][v]["cpu_us_per_item"] / variants[MODES[0]][v]["cpu_us_per_item"]
        for v in VARIANTS
    }
    return {
        "streams": STREAMS,
        "children": children,
        "rounds_per_child": rounds,
        "tuned_env": TUNED,
        "libc": " ".join(platform.libc_ver()).strip() or "unknown",
        "variants": variants,
        "ratios": ratios,
        "cpu_tuned_over_default": cpu_change,
        "by_process": per_child,
    }


def render(result: dict[str, Any]) -> str:
    variants = result["variants"]
    rows = []
    for name in VARIANTS:
        for mode in MODES:
            s = variants[mode][name]
            rows.append(
                [
                    name,
                    mode,
                    s["pages_per_s"],
                    s["cpu_us_per_item"] * PAGE_SIZE / 1000,
                    s["faults_per_page"],
                    f"{s['spread']:.0%}",
                    int(s["rounds"]),
                ]
            )
    env = " ".join(f"{k}={v}" for k, v in result["tuned_env"].items())
    out = table(
        f"glibc malloc thresholds, {result['streams']} streams "
        f"({result['children']} process{'es' if result['children'] != 1 else ''} of each, "
        "alternating; medians of every round)",
        ["variant", "allocator", "pages/s", "client CPU ms/page", "page faults/page", "spread",
         "rounds"],
        rows,
    )
    lines = [
        out,
        f"`thresholds raised`: `{env}` in the process's environment (C library: "
        f"{result['libc']}).",
        "",
    ]
    for name in VARIANTS:
        lines.append(
            f"- {name}: CPU per page with thresholds raised / glibc defaults: "
            f"{result['cpu_tuned_over_default'][name]:.2f}x"
        )
    for label in RATIOS:
        both = ", ".join(f"{result['ratios'][m][label]:.2f}x ({m})" for m in MODES)
        lines.append(f"- {label} (medians of per-round ratios): {both}")
    process_rows = [
        [
            mode,
            number,
            *(process[v]["faults_per_page"] for v in VARIANTS),
            *(process[v]["cpu_us_per_item"] * PAGE_SIZE / 1000 for v in VARIANTS),
        ]
        for mode in MODES
        for number, process in enumerate(result["by_process"][mode], 1)
    ]
    short = ("N tasks", "fan_out items", "fan_out raw", "ceiling")
    lines += [
        "",
        table(
            "Each process: page faults a page, then client CPU ms a page (medians of its rounds)",
            ["allocator", "process", *(f"faults, {s}" for s in short),
             *(f"CPU, {s}" for s in short)],
            process_rows,
        ),
    ]
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> dict[str, Any] | None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    add_common_args(parser)
    parser.add_argument("--children", type=int, help="processes of each mode (4; quick 1)")
    parser.add_argument("--rounds", type=int, help="kept rounds per process (7; quick 2)")
    parser.add_argument("--total-pages", type=int, help="pages per run (256; quick 128)")
    parser.add_argument("--child", metavar="PATH", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    rounds = args.rounds or (2 if args.quick else 7)
    total = args.total_pages or (128 if args.quick else 256)
    if args.child:
        runs = asyncio.run(child(args, rounds, total))
        Path(args.child).write_text(json.dumps(runs))
        return None
    started = time.perf_counter()
    extra = ("--projects", str(STREAMS), "--issues", "800")
    with server_from_args(args, scale="large", extra_args=extra) as server:
        result = measure(
            (server.base_url, server.token),
            children=args.children or (1 if args.quick else 4),
            rounds=rounds,
            total_pages=total,
        )
    return publish(result, started, render, args.json)


if __name__ == "__main__":
    main()
