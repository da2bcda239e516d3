"""The rate-limit budget: how much of what Sentry announces the client actually uses.

A small server (its own process) limits one endpoint as Sentry's middleware does: a fixed
window of ``limit`` requests per ``window`` seconds aligned to the epoch, a concurrency cap,
20-40 ms of latency per request, the ``X-Sentry-Rate-Limit-*`` headers on every answer and
a 429 (no ``Retry-After``, as Sentry's API sends it) past the limit. For each setting,
``tasks`` coroutines share one ``SentryClient`` and call the endpoint in a loop for a few
seconds; the server counts, per window, the requests it served, the 429s it sent, and the
requests that arrived although the server had already announced ``Remaining: 0`` for that
window (a client that waits as told sends none). The same again with two processes
sharing one token, where a 429 is the only way each learns of the other.

Goals: served / announced >= 0.95 per window for one client (>= 0.85 for two processes
together), at most one 429 per four windows, no request before an announced wait.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import subprocess
import sys
import time
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from _server import goal, median, table, write_json

TOKEN = "bench-token"
SETTINGS = (
    # (limit per window, window seconds, concurrent limit, tasks)
    (40, 1.0, 25, 8),
    (40, 1.0, 25, 32),
    (30, 1.0, 15, 32),
)


# --- the server ---------------------------------------------------------------------------


def serve(port: int) -> None:
    from aiohttp import web

    state: dict[str, Any] = {"limit": 40, "window": 1.0, "concurrent": 25}
    served: dict[int, int] = defaultdict(int)
    refused: dict[int, int] = defaultdict(int)
    early: dict[int, int] = defaultdict(int)
    announced_zero: set[int] = set()
    in_flight = [0]

    def headers(index: int, count: int) -> dict[str, str]:
        limit, window = state["limit"], state["window"]
        return {
            "X-Sentry-Rate-Limit-Limit": str(limit),
            "X-Sentry-Rate-Limit-Remaining": str(max(0, limit - count)),
            "X-Sentry-Rate-Limit-Reset": str(int((index + 1) * window)),
            "X-Sentry-Rate-Limit-ConcurrentLimit": str(state["concurrent"]),
            "X-Sentry-Rate-Limit-ConcurrentRemaining": str(
                max(0, state["concurrent"] - in_flight[0])
            ),
        }

    async def org(request: web.Request) -> web.Response:
        index = int(time.time() / state["window"])
        if index in announced_zero:
            early[index] += 1
        count = served[index] + 1
        if count > state["limit"] or in_flight[0] >= state["concurrent"]:
            refused[index] += 1
            announced_zero.add(index)
            body = b'{"detail":"You are attempting to use this endpoint too frequently."}'
            return web.Response(
                status=429,
                body=body,
                headers=headers(index, state["limit"]),
                content_type="text/html",
            )
        served[index] = count
        if count >= state["limit"]:
            announced_zero.add(index)
        in_flight[0] += 1
        try:
            await asyncio.sleep(random.uniform(0.020, 0.040))
        finally:
            in_flight[0] -= 1
        return web.Response(
            body=b'{"id":"1","slug":"acme","name":"Acme"}',
            headers=headers(index, count),
            content_type="application/json",
        )

    async def configure(request: web.Request) -> web.Response:
        body = await request.json()
        state.update(body)
        for counter in (served, refused, early):
            counter.clear()
        announced_zero.clear()
        return web.json_response({})

    async def stats(request: web.Request) -> web.Response:
        keys = sorted(set(served) | set(refused))
        return web.json_response({str(k): [served[k], refused[k], early[k]] for k in keys})

    app = web.Application()
    app.router.add_get("/api/0/organizations/{org}/", org)
    app.router.add_post("/configure", configure)
    app.router.add_get("/stats", stats)

    async def main() -> None:
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", port)
        await site.start()
        bound = runner.addresses[0][1]
        print(f"READY http://127.0.0.1:{bound}", flush=True)
        await asyncio.sleep(3600)

    asyncio.run(main())


# --- the clients --------------------------------------------------------------------------


async def client_run(base_url: str, tasks: int, seconds: float) -> dict[str, int]:
    from sentry_async import RateLimited, SentryClient

    done = {"ok": 0, "gave_up": 0}
    deadline = time.monotonic() + seconds
    async with SentryClient(TOKEN, base_url=base_url, max_concurrency=64) as client:

        async def worker() -> None:
            while time.monotonic() < deadline:
                try:
                    await client.organizations.get("acme")
                    done["ok"] += 1
                except RateLimited:
                    done["gave_up"] += 1

        await asyncio.gather(*(worker() for _ in range(tasks)))
    return done


def client_process(base_url: str, tasks: int, seconds: float) -> subprocess.Popen[str]:
    here = os.path.dirname(os.path.abspath(__file__))
    code = (
        f"import asyncio, json, sys; sys.path.insert(0, {here!r}); import bench_ratelimit as b; "
        f"print(json.dumps(asyncio.run(b.client_run({base_url!r}, {tasks}, {seconds}))))"
    )
    return subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)


async def post(url: str, body: dict[str, Any]) -> Any:
    import aiohttp

    async with aiohttp.ClientSession() as session:
        if body:
            async with session.post(url, json=body) as response:
                return await response.json()
        async with session.get(url) as response:
            return await response.json()


def summarise(stats: dict[str, list[int]], limit: int) -> dict[str, float]:
    """Full windows only: the first and last are partial by construction."""
    windows = sorted(int(k) for k in stats)[1:-1]
    if not windows:
        return {"windows": 0}
    served = [stats[str(w)][0] for w in windows]
    refused = sum(stats[str(w)][1] for w in windows)
    early = sum(stats[str(w)][2] for w in windows)
    return {
        "windows": len(windows),
        "used": median(s / limit for s in served),
        "used_min": min(served) / limit,
        "refused_per_4_windows": 4 * refused / len(windows),
        "early": early,
    }


async def measure(base_url: str, seconds: float, rounds: int) -> list[dict[str, Any]]:
    results = []
    cases: list[tuple[int, float, int, int, int]] = [
        (limit, window, concurrent, tasks, 1) for limit, window, concurrent, tasks in SETTINGS
    ]
    cases.append((40, 1.0, 25, 16, 2))
    for limit, window, concurrent, tasks, processes in cases:
        runs = []
        for _ in range(rounds):
            await post(
                f"{base_url}/configure",
                {"limit": limit, "window": window, "concurrent": concurrent},
            )
            procs = [client_process(base_url, tasks, seconds) for _ in range(processes)]
            for proc in procs:
                await asyncio.to_thread(proc.wait, seconds + 60)
            stats = await post(f"{base_url}/stats", {})
            runs.append(summarise(stats, limit))
        good = [r for r in runs if r.get("windows")]
        results.append(
            {
                "limit": limit,
                "window": window,
                "concurrent": concurrent,
                "tasks": tasks,
                "processes": processes,
                "used": median(r["used"] for r in good),
                "used_spread": (max(r["used"] for r in good) - min(r["used"] for r in good))
                if good
                else float("nan"),
                "refused_per_4_windows": median(r["refused_per_4_windows"] for r in good),
                "early": sum(r["early"] for r in good),
                "windows": sum(r["windows"] for r in good),
            }
        )
    return results


def goals(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each setting's goals as figures, for ``run_all.py``'s summary."""
    out: list[dict[str, Any]] = []
    for r in results:
        setting = f"{r['limit']}/{r['window']:g}s, {r['processes']} x {r['tasks']} tasks"
        if r["processes"] == 1:
            out.append(goal(f"{setting}: used / announced budget", r["used"], 0.95))
            out.append(
                goal(f"{setting}: 429s per 4 windows", r["refused_per_4_windows"], 1, at_most=True)
                | {"unit": ""}
            )
            out.append(
                goal(f"{setting}: requests after Remaining: 0", r["early"], 0, at_most=True)
                | {"unit": ""}
            )
        else:
            out.append(goal(f"{setting}: used / announced budget together", r["used"], 0.85))
    return out


def render(results: list[dict[str, Any]]) -> str:
    rows = []
    goals = []
    for r in results:
        setting = (
            f"{r['limit']}/{r['window']:g}s, concurrent {r['concurrent']}, "
            f"{r['processes']} x {r['tasks']} tasks"
        )
        rows.append(
            [
                setting,
                r["windows"],
                r["used"],
                f"{r['used_spread'] * 100:.0f}%",
                r["refused_per_4_windows"],
                r["early"],
            ]
        )
        if r["processes"] == 1:
            ok = r["used"] >= 0.95 and r["refused_per_4_windows"] <= 1 and r["early"] == 0
            goal = (
                f"used {r['used']:.2f} of the announced budget (goal >= 0.95), "
                f"{r['refused_per_4_windows']:.2f} 429s per 4 windows (goal <= 1), "
                f"{r['early']} requests after Remaining: 0 (goal 0)"
            )
        else:
            ok = r["used"] >= 0.85
            goal = (
                f"used {r['used']:.2f} of the announced budget together (goal >= 0.85); "
                f"{r['refused_per_4_windows']:.2f} 429s per 4 windows"
            )
        goals.append(f"- {setting}: {goal}: {'met' if ok else '**missed**'}")
    return (
        table(
            "Rate-limit budget: served per window / announced limit (medians over full windows)",
            ["setting", "windows", "used", "spread", "429 per 4 windows", "early requests"],
            rows,
        )
        + "\n"
        + "\n".join(goals)
        + "\n"
    )


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--serve", type=int, metavar="PORT", help=argparse.SUPPRESS)
    parser.add_argument("--quick", action="store_true", help="CI-sized run")
    parser.add_argument("--json", metavar="PATH", help="write results as JSON here")
    parser.add_argument("--seconds", type=float, help="seconds per run (6; quick 4)")
    parser.add_argument("--rounds", type=int, help="runs per setting (3; quick 1)")
    args = parser.parse_args(argv)
    if args.serve is not None:
        serve(args.serve)
        return {}
    seconds = args.seconds or (4.0 if args.quick else 6.0)
    rounds = args.rounds or (1 if args.quick else 3)
    server = subprocess.Popen(
        [sys.executable, os.path.abspath(__file__), "--serve", "0"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stdout is not None
        line = server.stdout.readline().split()
        if not line or line[0] != "READY":
            raise RuntimeError("the rate-limit server did not start")
        started = time.perf_counter()
        results = asyncio.run(measure(line[1], seconds, rounds))
    finally:
        server.kill()
        server.wait(timeout=10)
    result = {"results": results, "goals": goals(results), "wall_s": time.perf_counter() - started}
    result["markdown"] = render(results)
    print(result["markdown"])
    write_json(args.json, result)
    return result


if __name__ == "__main__":
    main()
