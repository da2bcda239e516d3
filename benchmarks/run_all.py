"""Run every benchmark, print every table, write ``results/latest.md`` and ``latest.json``.

``python benchmarks/run_all.py`` (what ``nox -s bench`` runs) takes a few minutes on a
2-core machine; ``--quick`` is CI-sized (under a minute). Each benchmark runs as its own
process (so peak-RSS figures are that benchmark's own) and writes JSON that is folded into
``latest.json``. The large fake server is started once here and shared by the benchmarks
that use it; the fan-out benchmark starts its own (it needs 128+ projects).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any

from _server import fake_server

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
RESULTS = HERE / "results"


@dataclass(frozen=True)
class Step:
    name: str
    script: str
    shared_server: bool
    args: tuple[str, ...] = ()
    quick_args: tuple[str, ...] = ("--quick",)
    full_args: tuple[str, ...] = ()
    timeout: float = 200.0


STEPS = (
    Step("pagination", "bench_pagination.py", shared_server=True),
    # 105 s on a 2-core Xeon, over 200 s on a 2-core EPYC of the same nominal size.
    Step("fanout", "bench_fanout.py", shared_server=False, timeout=480.0),
    Step("memory", "bench_memory.py", shared_server=True),
    Step("export", "bench_export.py", shared_server=True),
    # Decoding needs no server; quick-sized batches with more rounds keep the whole run
    # under five minutes on two cores with stable medians.
    Step("decode", "bench_decode.py", shared_server=False, full_args=("--quick", "--rounds", "9")),
    Step("ratelimit", "bench_ratelimit.py", shared_server=False),
    Step("allocator", "bench_allocator.py", shared_server=False),
)


def machine() -> dict[str, Any]:
    """CPU model, cores, memory, OS, Python and library versions."""
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        cpu = platform.processor() or "unknown"
    mem_kib = 0
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem_kib = int(line.split()[1])
    except OSError:
        pass
    versions: dict[str, str] = {}
    for dist in ("sentry-async", "aiohttp", "msgspec", "yarl", "anyio", "httpx", "requests"):
        try:
            versions[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            versions[dist] = "not installed"
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "usable_cores": usable,
        "memory_gib": round(mem_kib / 1024 / 1024, 1),
        "os": f"{platform.system()} {platform.release()}",
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "versions": versions,
        "commit": _git("rev-parse", "--short", "HEAD"),
        "dirty": bool(
            _git("status", "--porcelain", "--untracked-files=no", "--", ".", ":!benchmarks/results")
        ),
    }


def _git(*args: str) -> str:
    try:
        done = subprocess.run(
            ["git", *args], cwd=ROOT, capture_output=True, text=True, timeout=10, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return ""
    return done.stdout.strip()


def machine_markdown(info: dict[str, Any]) -> str:
    v = info["versions"]
    lines = [
        "## Machine",
        "",
        f"- CPU: {info['cpu']}, {info['cores']} cores ({info['usable_cores']} usable)",
        f"- Memory: {info['memory_gib']} GiB; OS: {info['os']}",
        f"- Python: {info['python']}",
        "- Libraries: " + ", ".join(f"{name} {version}" for name, version in v.items()),
        f"- Commit: {info['commit']}{' (with uncommitted changes)' if info['dirty'] else ''}",
        "- The fake server runs in its own process, pinned to the last core; the benchmark "
        "process gets the others (set BENCH_NO_PIN=1 to disable).",
        "",
    ]
    return "\n".join(lines)


def run_step(
    step: Step, *, quick: bool, server: tuple[str, str] | None, out_dir: Path
) -> dict[str, Any]:
    """Run one benchmark script in its own process; its stdout streams through."""
    script = HERE / step.script
    json_path = out_dir / f"{step.name}.json"
    argv = [sys.executable, str(script), *step.args, "--json", str(json_path)]
    argv += list(step.quick_args if quick else step.full_args)
    if server is not None and step.shared_server:
        argv += ["--server", *server]
    # The scratch directory's name means nothing outside this run: record it as $TMP.
    shown = [arg.replace(str(out_dir), "$TMP") for arg in argv[1:]]
    shown[0] = str(script.relative_to(ROOT))
    record: dict[str, Any] = {"name": step.name, "argv": shown}
    if not script.exists():
        record["error"] = f"{step.script} is missing"
        print(f"!! {step.name}: {record['error']}", flush=True)
        return record
    print(f"\n== {step.name}: {' '.join(argv[1:])}", flush=True)
    started = time.perf_counter()
    lines: list[str] = []
    with subprocess.Popen(
        argv, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    ) as process:
        assert process.stdout is not None
        timed_out = threading.Event()

        def kill() -> None:
            timed_out.set()
            process.kill()

        watchdog = threading.Timer(step.timeout, kill)
        watchdog.start()
        try:
            for line in process.stdout:
                print(line, end="", flush=True)
                lines.append(line)
            process.wait()
        finally:
            watchdog.cancel()
        if timed_out.is_set():
            record["error"] = f"timed out after {step.timeout:.0f}s"
    record["seconds"] = round(time.perf_counter() - started, 1)
    record["returncode"] = process.returncode
    record["stdout"] = "".join(lines)
    if process.returncode and "error" not in record:
        record["error"] = f"exit status {process.returncode}"
    if json_path.exists():
        try:
            record["result"] = json.loads(json_path.read_text())
        except ValueError as exc:
            record["error"] = f"unreadable JSON: {exc}"
    return record


def step_markdown(record: dict[str, Any]) -> str:
    result = record.get("result")
    parts = [f"## {record['name']} ({record.get('seconds', 0):.0f} s)", ""]
    if isinstance(result, dict) and isinstance(result.get("markdown"), str):
        parts.append(result["markdown"])
    elif record.get("stdout"):
        parts += ["```", record["stdout"].rstrip(), "```", ""]
    if "error" in record:
        parts.append(f"**Not completed:** {record['error']}\n")
    return "\n".join(parts)


def collect_goals(records: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every goal of every benchmark: from its JSON ``goals`` list, else from the goal lines
    it printed (``- <goal>: ... met`` / ``**missed**``)."""
    goals: list[dict[str, Any]] = []
    for record in records:
        result = record.get("result")
        listed = result.get("goals") if isinstance(result, dict) else None
        if isinstance(listed, list) and listed:
            for item in listed:
                goals.append({"benchmark": record["name"], **item})
            continue
        for line in record.get("stdout", "").splitlines():
            text = line.strip()
            if text.startswith("- ") and (text.endswith(": met") or "**missed**" in text):
                goals.append(
                    {"benchmark": record["name"], "goal": text[2:], "met": text.endswith("met")}
                )
        if "error" in record:
            failed = f"completed ({record['error']})"
            goals.append({"benchmark": record["name"], "goal": failed, "met": False})
    return goals


def goals_summary(goals: Sequence[dict[str, Any]]) -> str:
    """The closing summary: one line per goal, its figure and met/missed."""
    lines = ["## Goals", ""]
    for g in goals:
        figure = ""
        if isinstance(g.get("ratio"), (int, float)):
            unit = g.get("unit", "x")
            value = g["ratio"]
            figure = f": {value}" if isinstance(value, int) else f": {value:.2f}{unit}"
            if g.get("target"):
                figure += f" (goal {g['target']})"
        mark = "met" if g.get("met") else "**missed**"
        lines.append(f"- {g['benchmark']}: {g['goal']}{figure}: {mark}")
    met = sum(1 for g in goals if g.get("met"))
    lines += ["", f"{met} of {len(goals)} goals met.", ""]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="CI-sized run (under a minute)")
    parser.add_argument(
        "--only", nargs="+", choices=[s.name for s in STEPS], help="run only these benchmarks"
    )
    parser.add_argument(
        "--out", default=str(RESULTS), help="directory for latest.md and latest.json"
    )
    args = parser.parse_args(argv)
    steps = [s for s in STEPS if not args.only or s.name in args.only]
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    info = machine()
    started = time.perf_counter()
    records: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="sentry-async-bench-") as tmp:
        shared = [s for s in steps if s.shared_server]
        unshared = [s for s in steps if not s.shared_server]
        if shared:
            print("starting the large fake server ...", flush=True)
            t0 = time.perf_counter()
            with fake_server("large") as server:
                print(f"ready in {time.perf_counter() - t0:.1f}s at {server.base_url}", flush=True)
                for step in shared:
                    records.append(
                        run_step(
                            step,
                            quick=args.quick,
                            server=(server.base_url, server.token),
                            out_dir=Path(tmp),
                        )
                    )
        for step in unshared:
            records.append(run_step(step, quick=args.quick, server=None, out_dir=Path(tmp)))
    order = {s.name: i for i, s in enumerate(STEPS)}
    records.sort(key=lambda r: order[r["name"]])
    total = time.perf_counter() - started
    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    mode = "quick" if args.quick else "full"
    goals = collect_goals(records)
    markdown = "\n".join(
        [
            f"# sentry_async benchmarks ({mode} run, {stamp}, {total:.0f} s)",
            "",
            "How to read these tables: benchmarks/README.md. Medians of interleaved rounds.",
            "",
            machine_markdown(info),
            *(step_markdown(r) for r in records),
        ]
    )
    summary = goals_summary(goals)
    (out / "latest.md").write_text(markdown + "\n" + summary)
    payload = {
        "mode": mode,
        "date": stamp,
        "seconds": round(total, 1),
        "machine": info,
        "benchmarks": {r["name"]: {k: v for k, v in r.items() if k != "stdout"} for r in records},
        "goals": goals,
    }
    (out / "latest.json").write_text(json.dumps(payload, indent=2, default=str) + "\n")
    print("\n" + "=" * 72 + "\n")
    print(markdown)
    print(f"wrote {out / 'latest.md'} and {out / 'latest.json'} ({mode} run, {total:.0f} s)")
    print("\n" + summary)
    failed = [r["name"] for r in records if "error" in r]
    if failed:
        print(f"not completed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
