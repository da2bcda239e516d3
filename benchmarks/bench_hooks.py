"""What request hooks cost: ``client.issues.list()`` with and without hooks, side by side.

Every variant walks the same cursor chain of one organisation's issues on the fake server
(another process), in interleaved rounds; the table shows medians and each variant's
ratio to the client without hooks:

* ``no hooks``: ``SentryClient()`` as most programs build it; the transport checks one
  ``None`` per step and creates no event.
* ``counting hooks``: a :class:`sentry_async.Hooks` that counts requests, responses by
  status, retries and waits, as a Prometheus exporter would.
* ``OpenTelemetry spans``: :class:`sentry_async.OpenTelemetryHooks` with the SDK's
  tracer provider and a processor that drops spans (only if opentelemetry-sdk is installed).

The end-to-end rounds on a shared machine differ by more than hooks cost, so the script
also times, in-process and without I/O, the hook bookkeeping of one request (start, limiter
wait, attempt, response, done) against what the transport does without hooks (one
``None`` check per step), in microseconds per request.

Run: ``python benchmarks/bench_hooks.py [--quick]``.
"""

from __future__ import annotations

import argparse
import asyncio
import timeit
from collections import Counter
from collections.abc import Sequence
from typing import Any

from _server import (
    FakeServer,
    Runner,
    add_common_args,
    discover,
    interleaved,
    server_from_args,
    summarise,
    table,
    write_json,
)
from yarl import URL

from sentry_async import HookEvent, Hooks, OpenTelemetryHooks, SentryClient
from sentry_async.hooks import Call, HookSet

PAGE_SIZE = 100


class CountingHooks(Hooks):
    """What a metrics exporter does per event: bump a counter keyed by labels."""

    def __init__(self) -> None:
        self.counts: Counter[tuple[str, ...]] = Counter()
        self.waited = 0.0

    def on_request(self, event: HookEvent) -> None:
        self.counts["request", event.method, event.group] += 1

    def on_response(self, event: HookEvent) -> None:
        self.counts["response", event.group, str(event.status)] += 1

    def on_retry(self, event: HookEvent) -> None:
        self.counts["retry", event.group, str(event.status)] += 1

    def on_rate_limit_wait(self, event: HookEvent) -> None:
        self.waited += event.wait


def _otel_hooks() -> Hooks | None:
    try:
        from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
    except ImportError:
        return None
    provider = TracerProvider()
    provider.add_span_processor(SpanProcessor())  # the base class drops every span
    return OpenTelemetryHooks(provider)


def per_request_us(hooks: Hooks | None, number: int = 20_000) -> float:
    """Microseconds of hook bookkeeping for one request answered on the first attempt."""
    hook_set = HookSet.of(hooks)
    url = URL("https://sentry.io/api/0/x/")

    def one() -> None:
        call: Call | None = None if hook_set is None else hook_set.start("GET", "GET /x/", url)
        if call is not None:
            call.sending(1, 0.0)
        if call is not None:
            call.answered(200, 0.001)
        if call is not None:
            call.done(None)

    return min(timeit.repeat(one, number=number, repeat=5)) / number * 1e6


def make_runners(server: FakeServer, org: str, max_pages: int) -> dict[str, Runner]:
    limit = max_pages * PAGE_SIZE

    def runner(make_hooks: Any) -> Runner:
        async def run() -> tuple[int, int, int]:
            count = 0
            async with SentryClient(
                server.token, base_url=server.base_url, proxy=None, hooks=make_hooks()
            ) as client:
                paginator = client.issues.list(org, query="", page_size=PAGE_SIZE, limit=limit)
                async for _issue in paginator:
                    count += 1
                return count, paginator.pages_fetched, 0

        return run

    runners = {"no hooks": runner(lambda: None), "counting hooks": runner(CountingHooks)}
    if _otel_hooks() is not None:
        runners["OpenTelemetry spans"] = runner(_otel_hooks)
    return runners


async def measure(
    server: FakeServer, *, max_pages: int, rounds: int, time_limit: float
) -> dict[str, Any]:
    org = (await discover(server))["org"]
    runs = await interleaved(
        make_runners(server, org, max_pages), rounds=rounds, warmup=1, time_limit=time_limit
    )
    summary = {name: summarise(r) for name, r in runs.items()}
    base = summary["no hooks"]
    ratios = {
        name: {
            "items_per_s": s["items_per_s"] / base["items_per_s"],
            "cpu_us_per_item": s["cpu_us_per_item"] / base["cpu_us_per_item"],
        }
        for name, s in summary.items()
    }
    micro = {"no hooks": per_request_us(None), "counting hooks": per_request_us(CountingHooks())}
    otel = _otel_hooks()
    if otel is not None:
        micro["OpenTelemetry spans"] = per_request_us(otel, number=5_000)
    return {
        "org": org,
        "max_pages": max_pages,
        "results": summary,
        "ratios": ratios,
        "per_request_us": micro,
    }


def render(result: dict[str, Any]) -> str:
    rows = [
        [
            name,
            int(s["items"]),
            s["items_per_s"],
            result["ratios"][name]["items_per_s"],
            s["cpu_us_per_item"],
            result["ratios"][name]["cpu_us_per_item"],
            f"{s['spread'] * 100:.0f}%",
            int(s["rounds"]),
        ]
        for name, s in result["results"].items()
    ]
    text = table(
        f"Hooks: {result['max_pages']} pages x {PAGE_SIZE} issues (medians)",
        ["variant", "items", "items/s", "vs no hooks", "CPU us/item", "CPU vs no hooks",
         "spread", "rounds"],
        rows,
    )  # fmt: skip
    ratios = ", ".join(
        f"{name} / no hooks = **{r['items_per_s']:.2f}x**"
        for name, r in result["ratios"].items()
        if name != "no hooks"
    )
    micro = ", ".join(f"{name} {us:.2f}" for name, us in result["per_request_us"].items())
    return (
        text
        + f"\n{ratios} (items/s; rounds of one variant differ by the spread).\n"
        + f"\nHook bookkeeping per request, in-process, µs: {micro}.\n"
    )


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_common_args(parser)
    parser.add_argument("--pages", type=int, default=None, help="pages per run")
    parser.add_argument("--rounds", type=int, default=None)
    args = parser.parse_args(argv)
    pages = args.pages or (20 if args.quick else 150)
    rounds = args.rounds or (3 if args.quick else 9)
    with server_from_args(args) as server:
        result = asyncio.run(
            measure(server, max_pages=pages, rounds=rounds, time_limit=60 if args.quick else 240)
        )
    print(render(result))
    write_json(args.json, result)
    return result


if __name__ == "__main__":
    main()
