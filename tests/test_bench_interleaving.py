"""The benchmarks' interleaving gives no variant a fixed place in the round.

A variant that always runs first, or always right after the same neighbour, carries
whatever that place costs on a shared machine (a collector's leftovers, a warm or cold
cache, the server's state) into every ratio against it: two A/Bs of the same change run
A-then-B every round disagreed in sign, and the same change measured with the order
alternating came out the same way in 50 of 52 rounds.
"""

from __future__ import annotations

import asyncio
import mmap
import sys
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from _benchmarks import import_benchmark


def _bench_server() -> Any:
    """The benchmarks' shared module (``benchmarks/_server.py``)."""
    return import_benchmark("_server")


def _interleaved() -> Any:
    return _bench_server().interleaved


def test_every_variant_takes_every_place_and_follows_every_other() -> None:
    interleaved = _interleaved()
    order: list[str] = []

    def runner(name: str) -> Callable[[], Awaitable[tuple[int, int, int]]]:
        async def run() -> tuple[int, int, int]:
            order.append(name)
            return len(order), 1, 0

        return run

    names = ["a", "b", "c"]
    runs = asyncio.run(
        interleaved({n: runner(n) for n in names}, rounds=6, warmup=0, time_limit=60)
    )
    rounds = [order[i : i + 3] for i in range(0, len(order), 3)]
    assert len(rounds) == 6 and all(sorted(r) == names for r in rounds)
    places = {n: Counter(r.index(n) for r in rounds) for n in names}
    assert all(places[n] == {0: 2, 1: 2, 2: 2} for n in names), places
    followed = Counter((r[i], r[i + 1]) for r in rounds for i in range(2))
    assert set(followed) == {(x, y) for x in names for y in names if x != y}, followed
    # Each variant's runs stay in round order, so a ratio pairs runs of the same round.
    for n in names:
        assert [run.items for run in runs[n]] == [
            3 * k + r.index(n) + 1 for k, r in enumerate(rounds)
        ]


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="counts Linux's page faults")
def test_a_run_counts_the_page_faults_it_made() -> None:
    """Memory the allocator gives back and takes again costs a fault per page touched:
    the fan-out table shows it per variant, so the count must be the run's own."""
    server = _bench_server()
    size = 4 << 20

    def touching(pages: int) -> Callable[[], Awaitable[tuple[int, int, int]]]:
        async def run() -> tuple[int, int, int]:
            with mmap.mmap(-1, size) as fresh:
                for offset in range(0, pages * mmap.PAGESIZE, mmap.PAGESIZE):
                    fresh[offset] = 1
            return 1, 1, 0

        return run

    quiet = asyncio.run(server.timed(touching(0))).extra["faults"]
    busy = asyncio.run(server.timed(touching(size // mmap.PAGESIZE))).extra["faults"]
    assert busy - quiet >= size // mmap.PAGESIZE // 2, (quiet, busy)
    summary = server.summarise([server.Run(1, 4, 1.0, 0.1, 0, {"faults": 20})])
    assert summary["faults_per_page"] == 5
