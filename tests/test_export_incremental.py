"""Incremental exports: runs that each take what arrived since the last, exactly once."""

from __future__ import annotations

import csv
import gzip
import io
import logging
import tracemalloc
from collections import Counter
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta, timezone
from itertools import pairwise
from pathlib import Path
from typing import Any

import anyio
import msgspec
import pytest

from sentry_async import RetryPolicy, SentryClient, ServerError, _cli_run
from sentry_async.cli import main
from sentry_async.export import (
    ExportSpec,
    Manifest,
    ManifestFile,
    NothingToExportError,
    OutputUnusableError,
    SpecMismatchError,
    export,
    format_utc,
    parse_duration,
)
from sentry_async.export import _export as export_module
from sentry_async.export._incremental import (
    IncrementalRun,
    IncrementalState,
    record_run,
    stamped_items,
)
from sentry_async.testing import FakeSentry, Fault, SeedConfig
from sentry_async.testing.pytest_plugin import FIXED_NOW

ORG = "org-0"
DATA = SeedConfig(orgs=1, projects_per_org=2, issues_per_project=8, events_per_issue=(1, 3), days=4)
FAST_RETRY = RetryPolicy(backoff_base=0.01, backoff_max=0.05)
T1 = FIXED_NOW - timedelta(hours=6)
T2 = T1 + timedelta(hours=2)
T3 = T2 + timedelta(hours=1)

Factory = Callable[..., Awaitable[FakeSentry]]

try:
    import pyarrow.parquet as pq
except ImportError:  # pragma: no cover - the Parquet case is skipped
    pq = None


def _client(server: FakeSentry) -> SentryClient:
    return SentryClient(server.token, base_url=server.url, retry=FAST_RETRY)


def _ids(directory: Path) -> list[str]:
    return [
        msgspec.json.decode(line)["id"]
        for path in sorted(directory.glob("*.jsonl"))
        for line in path.read_bytes().splitlines()
    ]


def _on_server(server: FakeSentry, start: datetime, end: datetime) -> set[str]:
    return {
        event_id
        for slug in server.data.project_slugs(ORG)
        for event_id in server.data.event_ids(
            ORG, slug, start=start.timestamp(), end=end.timestamp(), include_transactions=False
        )
    }


async def test_three_runs_with_late_events_hold_every_event_once(
    fake_sentry_factory: Factory, tmp_path: Path
) -> None:
    server = await fake_sentry_factory(scale=DATA)
    issue = (
        server.builder.organization(ORG)
        .project("project-0-0")
        .add_issue("LateError: arrived late", events=0)
    )

    def arrive(*moments: datetime) -> list[str]:
        return [issue.add_event(timestamp=moment) for moment in moments]

    spec = ExportSpec(kind="events", org=ORG, period="2d", window="12h", page_size=2)
    state, out = tmp_path / "state.json", tmp_path / "out"
    runs: dict[str, dict[str, bytes]] = {}

    async def run(now: datetime, **kwargs: Any) -> None:
        async with _client(server) as client:
            await export(client, spec, out, incremental=state, now=now, concurrency=1, **kwargs)

    def snapshot() -> dict[str, dict[str, bytes]]:
        return {
            run.name: {path.name: path.read_bytes() for path in sorted(run.iterdir())}
            for run in sorted(out.glob("run-*"))
        }

    with anyio.fail_after(40):
        await run(T1)
        runs = snapshot()
        # Late: timestamped inside the first run's range, within the hour it looks back.
        late = arrive(T1 - timedelta(minutes=30), T1 - timedelta(minutes=59))
        missed = arrive(T1 - timedelta(hours=3))  # older than the overlap: documented as missed
        arrive(T1 + timedelta(minutes=10), T2 - timedelta(minutes=1))
        # The second run dies half-way; the next invocation resumes it, then the third runs.
        server.faults.add(Fault("status", status=500, path="/events/", query="cursor=", times=None))
        with pytest.raises(ServerError):
            await run(T2)
        server.faults.clear()
        await run(T2)
        late += arrive(T2 - timedelta(minutes=15))
        arrive(T2 + timedelta(minutes=5))
        await run(T3)
    directories = sorted(out.glob("run-*"))
    assert [d.name for d in directories] == [
        f"run-{moment.strftime('%Y%m%dT%H%M%SZ')}" for moment in (T1, T2, T3)
    ]
    after = snapshot()
    assert {name: after[name] for name in runs} == runs, "a run never rewrites an earlier one"
    written = Counter(event_id for directory in directories for event_id in _ids(directory))
    assert [event_id for event_id, count in written.items() if count > 1] == []
    expected = _on_server(server, T1 - timedelta(days=2), T3) - set(missed)
    assert set(written) == expected
    assert set(late) <= set(written) and missed[0] not in written
    saved = msgspec.json.decode(state.read_bytes())
    assert saved["pending"] is None and saved["high_water"].startswith(T3.strftime("%Y-%m-%dT%H"))
    assert saved["seen"], "the ids within the overlap are kept for the next run"
    assert all(
        datetime.fromisoformat(when.replace("Z", "+00:00")) >= T3 - timedelta(hours=1)
        for when in saved["seen"].values()
    ), "and only those: the state stays bounded"
    assert sum(run["duplicates"] for run in saved["runs"]) >= 1, "the overlap was read again"


async def test_a_changed_spec_or_an_unsuitable_one_is_refused(
    fake_sentry_factory: Factory, tmp_path: Path
) -> None:
    server = await fake_sentry_factory(scale=DATA)
    state, out = tmp_path / "state.json", tmp_path / "out"
    async with _client(server) as client:
        await export(
            client, ExportSpec(kind="events", org=ORG, period="1d"), out, incremental=state, now=T1
        )
        with pytest.raises(SpecMismatchError, match="query"):
            await export(
                client,
                ExportSpec(kind="events", org=ORG, period="1d", query="is:unresolved"),
                out,
                incremental=state,
                now=T2,
            )
        with pytest.raises(ValueError, match="issues change"):
            await export(client, ExportSpec(kind="issues", org=ORG), out, incremental=state)
        with pytest.raises(ValueError, match="id and timestamp"):
            await export(
                client,
                ExportSpec(kind="discover", org=ORG, fields=("title",)),
                out,
                incremental=state,
            )
        with pytest.raises(ValueError, match="give no end"):
            await export(client, ExportSpec(kind="events", org=ORG, end=T1), out, incremental=state)


async def test_cli_incremental_runs_into_their_own_directories(
    fake_sentry_factory: Factory, tmp_path: Path
) -> None:
    server = await fake_sentry_factory(scale=DATA)
    token = tmp_path / "token"
    token.write_text(server.token + "\n")
    out = tmp_path / "out"
    argv = [
        "export", "discover", "--org", ORG, "--field", "id", "--field", "timestamp",
        "--period", "1d", "--incremental", str(tmp_path / "state.json"), "--overlap", "2h",
        "-o", str(out), "--base-url", server.url, "--token-file", str(token), "--quiet",
    ]  # fmt: skip
    codes = []
    for _ in range(2):
        err = io.StringIO()
        codes.append(
            await anyio.to_thread.run_sync(
                lambda: main(argv, stdout=io.StringIO(), stderr=err)  # noqa: B023
            )
        )
        assert codes[-1] == 0, err.getvalue()
        await anyio.sleep(1.1)  # each run ends at its own second
    runs = sorted(out.glob("run-*"))
    assert len(runs) == 2
    assert _ids(runs[1]) == [], "nothing arrived between the runs"
    err = io.StringIO()
    code = await anyio.to_thread.run_sync(
        lambda: main([*argv, "--resume"], stdout=io.StringIO(), stderr=err)
    )
    assert code == 2 and "--incremental" in err.getvalue()


def _table_ids(directory: Path) -> list[str]:
    """Ids in a run's CSV files or Parquet parts."""
    ids: list[str] = []
    for path in sorted(directory.iterdir()):
        if path.suffix == ".csv":
            ids += [row["id"] for row in csv.DictReader(io.StringIO(path.read_text()))]
        elif path.suffix == ".parquet":
            ids += pq.read_table(path).column("id").to_pylist()
    return ids


async def test_the_overlap_read_again_is_one_info_line_per_run_not_a_warning_per_page(
    fake_sentry_factory: Factory, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    server = await fake_sentry_factory(scale=DATA)
    issue = server.builder.organization(ORG).project("project-0-0").add_issue("Late", events=0)
    for minutes in (5, 10, 15, 20, 25):  # within the hour the next run looks back
        issue.add_event(timestamp=T1 - timedelta(minutes=minutes))
    spec = ExportSpec(kind="events", org=ORG, period="1d", page_size=2)
    state, out = tmp_path / "state.json", tmp_path / "out"
    with anyio.fail_after(30):
        async with _client(server) as client:
            await export(client, spec, out, incremental=state, now=T1, concurrency=1)
            caplog.clear()
            with caplog.at_level(logging.INFO, logger="sentry_async.export"):
                await export(client, spec, out, incremental=state, now=T2, concurrency=1)
    skipped = msgspec.json.decode(state.read_bytes())["runs"][1]["duplicates"]
    assert skipped >= 5, "the overlap's items, over several pages, were read again"
    export_records = [r for r in caplog.records if r.name == "sentry_async.export"]
    assert [r.getMessage() for r in export_records if r.levelno >= logging.WARNING] == []
    told = [r for r in export_records if "previous run" in r.getMessage()]
    assert [(r.levelname, f" {skipped} " in r.getMessage()) for r in told] == [("INFO", True)]


@pytest.mark.parametrize("format", ["csv", "parquet"])
async def test_incremental_discover_tables_hold_each_row_once(
    fake_sentry_factory: Factory, tmp_path: Path, format: str
) -> None:
    if format == "parquet":
        pytest.importorskip("pyarrow")
    server = await fake_sentry_factory(scale=DATA)
    issue = server.builder.organization(ORG).project("project-0-1").add_issue("Late", events=0)
    spec = ExportSpec(
        kind="discover",
        org=ORG,
        fields=("id", "timestamp", "title"),
        period="1d",
        page_size=3,
        format=format,  # type: ignore[arg-type]
    )
    state, out = tmp_path / "state.json", tmp_path / "out"
    with anyio.fail_after(30):
        async with _client(server) as client:
            early = issue.add_event(timestamp=T1 - timedelta(minutes=10))  # read twice
            await export(client, spec, out, incremental=state, now=T1)
            late = issue.add_event(timestamp=T1 - timedelta(minutes=20))
            await export(client, spec, out, incremental=state, now=T2)
    written = Counter(i for run in sorted(out.glob("run-*")) for i in _table_ids(run))
    assert [i for i, count in written.items() if count > 1] == []
    assert set(written) == _on_server(server, T1 - timedelta(days=1), T2)
    assert late in written and early in written
    saved = msgspec.json.decode(state.read_bytes())
    assert saved["runs"][1]["duplicates"] >= 1, "the overlap was read again, and skipped"


@pytest.mark.parametrize("planted", ["symlink", "file"])
async def test_a_pending_runs_directory_that_is_not_a_real_one_is_refused(
    fake_sentry_factory: Factory, tmp_path: Path, planted: str
) -> None:
    """The pending run's directory is named in the state file: a link planted there would
    take the whole run (and a checkpoint's cut-backs) outside the output directory."""
    server = await fake_sentry_factory(scale=DATA)
    spec = ExportSpec(kind="events", org=ORG, period="1d", page_size=2)
    state, out, elsewhere = tmp_path / "state.json", tmp_path / "out", tmp_path / "elsewhere"
    server.faults.add(Fault("status", status=500, path="/events/", query="cursor=", times=None))
    with anyio.fail_after(30):
        async with _client(server) as client:
            with pytest.raises(ServerError):
                await export(client, spec, out, incremental=state, now=T1, concurrency=1)
    server.faults.clear()
    [pending] = list(out.glob("run-*"))
    elsewhere.mkdir()
    pending.rename(elsewhere / pending.name)
    if planted == "symlink":
        pending.symlink_to(elsewhere / pending.name, target_is_directory=True)
    else:
        pending.write_bytes(b"")
    before = sorted((p.name, p.read_bytes()) for p in (elsewhere / pending.name).iterdir())
    with anyio.fail_after(30):
        async with _client(server) as client:
            with pytest.raises(OutputUnusableError, match="not a directory") as refused:
                await export(client, spec, out, incremental=state, now=T1, concurrency=1)
    assert str(pending) in str(refused.value)
    assert _cli_run.classify(refused.value).code == 5
    after = sorted((p.name, p.read_bytes()) for p in (elsewhere / pending.name).iterdir())
    assert after == before, "nothing is written through the link"
    assert pending.is_symlink() == (planted == "symlink")


async def _overlap_runs(
    server: FakeSentry,
    tmp_path: Path,
    steps: list[tuple[datetime, str]],
    before_run: Callable[[int], object] = lambda n: None,
) -> tuple[Counter[str], list[dict[str, Any]]]:
    """Incremental runs at each ``(now, overlap)``, ``before_run(n)`` ahead of run ``n``: how
    often each id was written, and the state after each run."""
    spec = ExportSpec(kind="events", org=ORG, period="1d", page_size=5)
    state, out = tmp_path / "state.json", tmp_path / "out"
    saved: list[dict[str, Any]] = []
    with anyio.fail_after(40):
        async with _client(server) as client:
            for n, (now, overlap) in enumerate(steps):
                before_run(n)
                await export(
                    client, spec, out, incremental=state, now=now, overlap=parse_duration(overlap)
                )
                saved.append(msgspec.json.decode(state.read_bytes()))
    written = Counter(i for run in sorted(out.glob("run-*")) for i in _ids(run))
    return written, saved


def _stamp(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


async def test_widening_the_overlap_never_writes_an_event_twice(
    fake_sentry_factory: Factory, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The ids kept cover the old, narrower overlap only: a run that looked back further
    would write again what an earlier run wrote. The widened look-back is held to what the
    ids cover, and the run says so."""
    server = await fake_sentry_factory(scale=DATA)
    issue = server.builder.organization(ORG).project("project-0-0").add_issue("Old", events=0)
    for minutes in (100, 130, 150):  # 1-3 h before the first run: written by it
        issue.add_event(timestamp=T1 - timedelta(minutes=minutes))
    steps = [(T1 + timedelta(minutes=10 * n), overlap) for n, overlap in enumerate(
        ["1h", "1h", "3h", "3h"]
    )]  # fmt: skip
    with caplog.at_level(logging.WARNING, logger="sentry_async.export"):
        written, saved = await _overlap_runs(server, tmp_path, steps)
    assert [i for i, count in written.items() if count > 1] == []
    assert set(written) == _on_server(server, T1 - timedelta(days=1), steps[-1][0])
    for before, after in pairwise(saved):
        # A run never starts before what the ids kept cover.
        assert _stamp(after["runs"][-1]["start"]) >= _stamp(before["seen_from"])
    starts = [state["runs"][-1]["start"] for state in saved]
    told = [r.getMessage() for r in caplog.records if "overlap" in r.getMessage()]
    assert len(told) == 2, "each run held short says so"
    assert all(start in message for start, message in zip(starts[2:], told, strict=True))


async def test_narrowing_the_overlap_keeps_the_late_events_it_covers(
    fake_sentry_factory: Factory, tmp_path: Path
) -> None:
    server = await fake_sentry_factory(scale=DATA)
    issue = server.builder.organization(ORG).project("project-0-0").add_issue("Late", events=0)
    steps = [(T1 + timedelta(hours=n), overlap) for n, overlap in enumerate(
        ["3h", "3h", "1h", "1h", "3h"]
    )]  # fmt: skip
    late: list[str] = []

    def arrive(n: int) -> None:
        if n:  # late: timestamped before the previous run's end, within the narrow overlap
            late.append(issue.add_event(timestamp=steps[n - 1][0] - timedelta(minutes=40)))

    written, saved = await _overlap_runs(server, tmp_path, steps, arrive)
    assert [i for i, count in written.items() if count > 1] == []
    assert set(late) <= set(written)
    assert set(written) == _on_server(server, T1 - timedelta(days=1), steps[-1][0])
    # A narrower overlap is honoured at once; the last run's wider one only as far back
    # as the ids the 1 h runs kept.
    assert [state["runs"][-1]["start"] for state in saved[1:]] == [
        format_utc(T1 + timedelta(hours=hours)) for hours in (-3, 0, 1, 2)
    ]


def _run_files(directory: Path, rows: int, pad: str, parquet: bool) -> Manifest:
    """A run's files holding ``rows`` items each: JSON Lines, gzip and CSV gzip, or a
    Parquet part."""
    when = [format_utc(T1 - timedelta(seconds=n)) for n in range(rows)]
    ids = [f"{n:032x}" for n in range(rows)]
    if parquet:
        import pyarrow as pa

        stamps = pa.array([_stamp(w) for w in when], type=pa.timestamp("ms", tz="UTC"))
        pq.write_table(
            pa.table({"id": ids, "timestamp": stamps, "pad": [pad] * rows}),
            directory / "d.parquet",
            row_group_size=rows // 2,
        )
        names = ["d.parquet"]
    else:
        lines = b"".join(
            msgspec.json.encode({"id": i, "dateCreated": w, "pad": pad}) + b"\n"
            for i, w in zip(ids, when, strict=True)
        )
        table = "id,timestamp,pad\n" + "".join(
            f"{i},{w},{pad}\n" for i, w in zip(ids, when, strict=True)
        )
        (directory / "a.jsonl").write_bytes(lines)
        (directory / "b.jsonl.gz").write_bytes(gzip.compress(lines))
        (directory / "c.csv.gz").write_bytes(gzip.compress(table.encode()))
        names = ["a.jsonl", "b.jsonl.gz", "c.csv.gz"]
    files = [
        ManifestFile(path=name, items=rows, bytes=(directory / name).stat().st_size)
        for name in names
    ]
    return Manifest(
        format="sentry-async-export/1", projects=[], kind="events", org="o", spec={},
        fingerprint="f", start=format_utc(T1 - timedelta(days=1)), end=format_utc(T1),
        created_at=format_utc(T1), finished_at=format_utc(T1), runs=1, items=rows * len(names),
        pages=1, bytes=sum(f.bytes for f in files), duplicates=0, files=files, streams=[],
    )  # fmt: skip


def _peak(read: Callable[[], object]) -> int:
    tracemalloc.start()
    try:
        read()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize("parquet", [False, True], ids=["text", "parquet"])
def test_recording_a_run_reads_its_files_in_bounded_memory(tmp_path: Path, parquet: bool) -> None:
    """The ids a run wrote are read back file by file, line by line (a Parquet part batch
    by batch, its id and time columns only), and only those within the overlap are kept:
    memory does not follow the run's size, which may be many gigabytes."""
    if parquet and pq is None:
        pytest.skip("needs pyarrow")
    # Text: 20 MB a file, of which a quarter must never be held. Parquet: rows that as
    # Python objects all at once would take ten times the bound.
    rows, pad = (40_000, "") if parquet else (10_000, "x" * 2000)
    manifest = _run_files(tmp_path, rows, pad, parquet)
    bound = rows * 64 if parquet else rows * 2000 // 4
    # Once untraced first: what the readers import on first use is not what they hold.
    assert sum(1 for _ in stamped_items(tmp_path, manifest)) == rows * len(manifest.files)
    for file in manifest.files:
        one = msgspec.structs.replace(manifest, files=[file])
        found: list[int] = []
        peak = _peak(lambda: found.append(sum(1 for _ in stamped_items(tmp_path, one))))  # noqa: B023
        assert found == [rows], file.path
        assert peak < bound, f"{file.path}: {peak:,} bytes at the peak"
    state = IncrementalState(fingerprint="f", spec={})
    run = IncrementalRun(directory=".", start=manifest.start, end=manifest.end)
    overlap = timedelta(minutes=1)
    peak = _peak(lambda: record_run(state, run, manifest, stamped_items(tmp_path, manifest), overlap))
    assert peak < bound, f"recording the run: {peak:,} bytes at the peak"
    newest = {f"{n:032x}": format_utc(T1 - timedelta(seconds=n)) for n in range(61)}
    assert state.seen == newest, "the ids within the overlap, from every file"


async def test_a_run_in_the_second_the_last_one_ended_has_nothing_to_do(
    fake_sentry_factory: Factory, tmp_path: Path
) -> None:
    server = await fake_sentry_factory(scale=DATA)
    spec = ExportSpec(kind="events", org=ORG, period="1d")
    state, out = tmp_path / "state.json", tmp_path / "out"
    async with _client(server) as client:
        await export(client, spec, out, incremental=state, now=T1)
        before = state.read_bytes()
        with pytest.raises(NothingToExportError) as nothing:
            await export(client, spec, out, incremental=state, now=T1 + timedelta(microseconds=5))
    assert isinstance(nothing.value, ValueError), "what it was before: callers catch that"
    assert nothing.value.high_water == format_utc(T1)
    assert state.read_bytes() == before and len(list(out.glob("run-*"))) == 1


@pytest.mark.parametrize("quiet", [False, True])
async def test_cli_a_run_in_the_same_second_as_the_last_is_fine(
    fake_sentry_factory: Factory,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    quiet: bool,
) -> None:
    """A scheduler retrying at once: nothing is wrong, there is just nothing new yet."""
    server = await fake_sentry_factory(scale=DATA)
    token = tmp_path / "token"
    token.write_text(server.token)
    now = datetime.now(timezone.utc).replace(microsecond=0)

    class _Clock(datetime):
        @classmethod
        def now(cls, tz: Any = None) -> _Clock:
            return cls.fromtimestamp(now.timestamp(), tz)

    monkeypatch.setattr(export_module, "datetime", _Clock)
    argv = [
        "export", "events", "--org", ORG, "--period", "1d", "--incremental",
        str(tmp_path / "state.json"), "-o", str(tmp_path / "out"), "--base-url", server.url,
        "--token-file", str(token), *(["--quiet"] if quiet else []),
    ]  # fmt: skip
    results = []
    for _ in range(2):
        stdout, stderr = io.StringIO(), io.StringIO()
        code = await anyio.to_thread.run_sync(
            lambda: main(argv, stdout=stdout, stderr=stderr)  # noqa: B023
        )
        results.append((code, stdout.getvalue(), stderr.getvalue()))
    assert [code for code, _, _ in results] == [0, 0], results
    code, printed, logged = results[1]
    if quiet:
        assert (printed, logged) == ("", "")
    else:
        assert printed.splitlines() == [
            f"events: nothing to export yet: the last run ended at {format_utc(now)}, now is "
            f"{format_utc(now)}; the next run takes what arrived since"
        ]
        assert "error" not in logged
