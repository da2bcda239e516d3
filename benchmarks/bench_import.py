"""``import sentry_async`` time: this tree against a baseline git ref, in fresh interpreters.

Each round starts one subprocess per tree, in alternating order (so drift in machine load
hits both alike), and times the import inside it. Prints the median and spread of each and
the ratio of medians (the goal for the generated API: at most 1.1x the baseline), then the
self time of the generated modules that ``import sentry_async`` loads, which stays
readable when a loaded machine makes the ratio noisy.

    python benchmarks/bench_import.py --ref main --rounds 40
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PROBE = (
    "import time; t = time.perf_counter(); import sentry_async; "
    "print(time.perf_counter() - t)"
)


def export(ref: str, into: Path) -> Path:
    """The package as committed at ``ref``, unpacked into ``into``."""
    archive = into / "tree.tar"
    with archive.open("wb") as out:
        subprocess.run(["git", "archive", ref, "sentry_async"], cwd=ROOT, stdout=out, check=True)
    with tarfile.open(archive) as tar:
        tar.extractall(into / "tree", filter="data")
    return into / "tree"


def once(tree: Path) -> float:
    result = subprocess.run(
        [sys.executable, "-c", PROBE],
        cwd=tree,
        env={"PYTHONPATH": str(tree), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        check=True,
    )
    return float(result.stdout.strip())


def generated_share(tree: Path) -> float:
    """Seconds ``import sentry_async`` spends in the generated API's own modules (their
    self time under ``-X importtime``): a figure machine load barely moves."""
    result = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", "import sentry_async"],
        cwd=tree,
        env={"PYTHONPATH": str(tree), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        check=True,
    )
    total = 0
    for line in result.stderr.splitlines():
        parts = line.split("|")
        if len(parts) == 3 and parts[2].strip().startswith(OURS):
            total += int(parts[0].split(":")[-1])
    return total / 1e6


OURS = ("sentry_async.api", "sentry_async._streaming")


def describe(name: str, times: list[float]) -> str:
    ms = sorted(t * 1000 for t in times)
    q1, _, q3 = statistics.quantiles(ms, n=4)
    return f"{name:<9} median {statistics.median(ms):7.1f} ms   IQR {q1:6.1f}-{q3:6.1f} ms"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ref", default="main", help="baseline git ref (default: main)")
    parser.add_argument("--rounds", type=int, default=30)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        baseline = export(args.ref, Path(scratch))
        trees = {"baseline": baseline, "current": ROOT}
        for tree in trees.values():  # write bytecode caches before timing
            once(tree)
        times: dict[str, list[float]] = {name: [] for name in trees}
        for round_ in range(args.rounds):
            order = list(trees) if round_ % 2 == 0 else list(reversed(trees))
            for name in order:
                times[name].append(once(trees[name]))
    for name, values in times.items():
        print(describe(name, values))
    ratio = statistics.median(times["current"]) / statistics.median(times["baseline"])
    print(f"ratio current / {args.ref}: {ratio:.3f}x (goal <= 1.10x)")
    share = statistics.median(generated_share(ROOT) for _ in range(9))
    whole = statistics.median(times["current"])
    print(
        f"generated API modules imported by it: {share * 1000:.1f} ms self time "
        f"({share / whole:.1%} of the current median)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
