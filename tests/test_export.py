"""The exporter against the fake server: exact contents, manifests, windows, exactly-once resume."""

from __future__ import annotations

import dataclasses
import gzip
import itertools
import random
import signal
import sys
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import anyio
import msgspec
import pytest
from _watched_pages import WatchedPages

from sentry_async import NotFound, RetryPolicy, SentryClient, SentryError, ServerError
from sentry_async.export import (
    CHECKPOINT_NAME,
    MANIFEST_NAME,
    MAX_WINDOWS,
    CheckpointError,
    ExportDecodeError,
    ExportLockedError,
    ExportRangeError,
    ExportSpec,
    Manifest,
    OutputNotEmptyError,
    SpecMismatchError,
    UnknownProjectError,
    export,
    parse_duration,
    parse_utc,
    split_windows,
)
from sentry_async.testing import FakeSentry, Fault, SeedConfig
from sentry_async.testing.pytest_plugin import FIXED_NOW

ORG = "org-0"
DATA = SeedConfig(
    orgs=2, projects_per_org=3, issues_per_project=12, events_per_issue=(1, 4), days=20
)
END = FIXED_NOW - timedelta(hours=5)
START = END - timedelta(days=14)
"""A range that leaves some of the 20 days of data out on both sides."""

FAST_RETRY = RetryPolicy(backoff_base=0.01, backoff_max=0.05)

Factory = Callable[..., Awaitable[FakeSentry]]


def _client(server: FakeSentry, **kwargs: Any) -> SentryClient:
    kwargs.setdefault("retry", FAST_RETRY)
    return SentryClient(server.token, base_url=server.url, **kwargs)


def _spec(kind: str = "events", **kwargs: Any) -> ExportSpec:
    kwargs.setdefault("start", START)
    kwargs.setdefault("end", END)
    kwargs.setdefault("window", timedelta(days=3))
    return ExportSpec(kind=kind, org=ORG, **kwargs)  # type: ignore[arg-type]


def _lines(path: Path) -> list[bytes]:
    data = path.read_bytes()
    if path.name.endswith(".gz"):
        data = gzip.decompress(data)
    assert not data or data.endswith(b"\n")
    return data.splitlines()


def _ids(lines: Iterable[bytes]) -> list[str]:
    return [str(msgspec.json.decode(line)["id"]) for line in lines]


def _listing(directory: Path, pattern: str = "*") -> list[str]:
    return sorted(path.name for path in directory.glob(pattern))


def _sizes(directory: Path) -> list[tuple[str, int]]:
    return sorted((path.name, path.stat().st_size) for path in directory.iterdir())


def _in_range(timestamp: float, start: datetime = START, end: datetime = END) -> bool:
    return start.timestamp() <= timestamp < end.timestamp()


def _expected_events(
    server: FakeSentry, slug: str, *, discover: bool = False
) -> dict[str, bytes]:
    """Event id -> the exact JSON bytes the server sends for it, for events in range
    (transactions in Discover only: a project's event list reads the errors dataset)."""
    data = server.data
    return {
        event_id: data.event_bytes(data.events_by_id[event_id])
        for event_id in data.event_ids(
            ORG, slug, start=START.timestamp(), end=END.timestamp(), include_transactions=discover
        )
    }


def _expected_issues(server: FakeSentry, slug: str) -> dict[str, bytes]:
    """Issues the range touches (seen within it), whatever their status."""
    org = server.data.org(ORG)
    assert org is not None
    project = server.data.project(org, slug)
    assert project is not None
    return {
        issue.id: server.data.issue_bytes(issue)
        for issue in project.issues
        if issue.last_seen >= START.timestamp() and issue.first_seen <= END.timestamp()
    }


def _assert_file_holds(path: Path, expected: dict[str, bytes]) -> None:
    """Every expected item exactly once, as the server's exact bytes, and nothing else."""
    lines = _lines(path)
    ids = _ids(lines)
    duplicates = [item for item, count in Counter(ids).items() if count > 1]
    assert duplicates == [], f"{path.name}: items written twice"
    assert set(ids) == set(expected), f"{path.name}: missing or extra items"
    assert sorted(lines) == sorted(expected.values()), f"{path.name}: bytes differ"


def _assert_manifest(directory: Path, manifest: Manifest, per_file: dict[str, int]) -> None:
    on_disk = msgspec.json.decode((directory / MANIFEST_NAME).read_bytes(), type=Manifest)
    assert on_disk.items == manifest.items == sum(per_file.values())
    assert {f.path: f.items for f in on_disk.files} == per_file
    for file in on_disk.files:
        assert file.bytes == (directory / file.path).stat().st_size
    assert on_disk.bytes == sum(f.bytes for f in on_disk.files)
    assert sum(s.items for s in on_disk.streams) == on_disk.items
    assert on_disk.duplicates == 0
    assert all(s.pages >= 1 for s in on_disk.streams), "every stream walked to its end"
    assert not (directory / CHECKPOINT_NAME).exists(), "removed once the export is complete"
    assert not (directory / ".lock").exists()


async def test_events_per_project_hold_exactly_the_servers_events(
    fake_sentry_factory: Factory, tmp_path: Path
) -> None:
    server = await fake_sentry_factory(scale=DATA)
    with anyio.fail_after(20):
        async with _client(server) as client:
            manifest = await export(client, _spec(), tmp_path)
    slugs = server.data.project_slugs(ORG)
    per_file = {}
    for slug in slugs:
        expected = _expected_events(server, slug)
        assert len(expected) > 10
        _assert_file_holds(tmp_path / f"{slug}.jsonl", expected)
        per_file[f"{slug}.jsonl"] = len(expected)
    _assert_manifest(tmp_path, manifest, per_file)
    assert manifest.kind == "events" and manifest.org == ORG
    assert sorted(p.slug for p in manifest.projects) == sorted(slugs)
    assert all(r.param("statsPeriod") is None for r in server.requests), "the range is pinned"


async def test_windows_split_the_range_and_each_stream_holds_its_window(
    fake_sentry_factory: Factory, tmp_path: Path
) -> None:
    server = await fake_sentry_factory(scale=DATA)
    with anyio.fail_after(20):
        async with _client(server) as client:
            manifest = await export(client, _spec(window=timedelta(days=4)), tmp_path)
    slugs = server.data.project_slugs(ORG)
    assert len(manifest.streams) == 4 * len(slugs), "14 days in windows of 4: 4 windows"
    windows = sorted({(s.window_start, s.window_end) for s in manifest.streams})
    assert windows[0][0] == manifest.start == "2026-05-18T07:00:00Z"
    assert windows[-1][1] == manifest.end == "2026-06-01T07:00:00Z"
    assert all(a[1] == b[0] for a, b in itertools.pairwise(windows)), "contiguous, no overlap"
    by_id = {p.id: p.slug for p in manifest.projects}
    for stream in manifest.streams:
        start = datetime.fromisoformat(stream.window_start.replace("Z", "+00:00"))
        end = datetime.fromisoformat(stream.window_end.replace("Z", "+00:00"))
        in_window = server.data.event_ids(
            ORG,
            by_id[stream.target],
            start=start.timestamp(),
            end=end.timestamp(),
            include_transactions=False,
        )
        assert stream.items == len(in_window), stream.key
    requested = {
        (r.param("start"), r.param("end")) for r in server.requests if "/events/" in r.path
    }
    assert len(requested) == 4


async def test_gzip_files_hold_the_same_items_as_plain_ones(
    fake_sentry_factory: Factory, tmp_path: Path
) -> None:
    server = await fake_sentry_factory(scale=DATA)
    with anyio.fail_after(20):
        async with _client(server) as client:
            manifest = await export(client, _spec(gzip=True, page_size=4), tmp_path)
    per_file = {}
    for slug in server.data.project_slugs(ORG):
        expected = _expected_events(server, slug)
        path = tmp_path / f"{slug}.jsonl.gz"
        with gzip.open(path) as handle:
            assert handle.read().count(b"\n") == len(expected), "one valid gzip stream"
        _assert_file_holds(path, expected)
        per_file[path.name] = len(expected)
    _assert_manifest(tmp_path, manifest, per_file)
    assert _listing(tmp_path, "*.jsonl") == []


async def test_events_of_chosen_issues(fake_sentry_factory: Factory, tmp_path: Path) -> None:
    server = await fake_sentry_factory(scale=DATA)
    data = server.data
    issues = data.issue_ids(ORG, project="project-0-1")[:3] + data.issue_ids(ORG)[:1]
    with anyio.fail_after(20):
        async with _client(server) as client:
            manifest = await export(client, _spec(issues=tuple(issues)), tmp_path)
    per_file = {}
    for issue in issues:
        expected = {
            event_id: data.event_bytes(data.events_by_id[event_id])
            for event_id in data.events_for_issue(issue)
            if _in_range(data.events_by_id[event_id].timestamp)
        }
        _assert_file_holds(tmp_path / f"issue-{issue}.jsonl", expected)
        per_file[f"issue-{issue}.jsonl"] = len(expected)
    assert sum(per_file.values()) > 0
    _assert_manifest(tmp_path, manifest, per_file)
    assert manifest.projects == []
    assert {s.target for s in manifest.streams} == set(issues)
    assert {r.path.split("/")[6] for r in server.requests} == set(issues), "no project listing"


async def test_a_summary_export_queried_by_event_id_holds_that_events_full_payload(
    fake_sentry_factory: Factory, tmp_path: Path
) -> None:
    """Sentry answers an issue's events filtered by an event id with that event in full (a
    direct hit), ``full`` or not: raw mode writes it as sent."""
    server = await fake_sentry_factory(scale=DATA)
    data = server.data
    issue = data.issue_ids(ORG)[0]
    event = next(e for e in data.issues_by_id[issue].events if _in_range(e.timestamp))
    with anyio.fail_after(20):
        async with _client(server) as client:
            spec = _spec(issues=(issue,), full=False, query=event.event_id)
            await export(client, spec, tmp_path)
    assert _lines(tmp_path / f"issue-{issue}.jsonl") == [data.event_bytes(event)]


async def test_issues_hold_exactly_the_servers_issues(
    fake_sentry_factory: Factory, tmp_path: Path
) -> None:
    server = await fake_sentry_factory(scale=DATA)
    with anyio.fail_after(20):
        async with _client(server) as client:
            manifest = await export(
                client,
                _spec("issues", projects=("project-0-0", "project-0-2"), page_size=5),
                tmp_path,
            )
    per_file = {}
    for slug in ("project-0-0", "project-0-2"):
        expected = _expected_issues(server, slug)
        statuses = {msgspec.json.decode(raw)["status"] for raw in expected.values()}
        assert len(expected) > 5 and statuses == {"resolved", "unresolved"}
        _assert_file_holds(tmp_path / f"{slug}.jsonl", expected)
        per_file[f"{slug}.jsonl"] = len(expected)
    _assert_manifest(tmp_path, manifest, per_file)
    assert len(manifest.streams) == 2, "issues are one stream per project, not per window"
    assert not (tmp_path / "project-0-1.jsonl").exists()


async def test_discover_rows_per_project(fake_sentry_factory: Factory, tmp_path: Path) -> None:
    server = await fake_sentry_factory(scale=DATA)
    with anyio.fail_after(20):
        async with _client(server) as client:
            manifest = await export(client, _spec("discover", gzip=True, page_size=7), tmp_path)
    per_file = {}
    for slug in server.data.project_slugs(ORG):
        lines = _lines(tmp_path / f"{slug}.jsonl.gz")
        rows = [msgspec.json.decode(line) for line in lines]
        ids = [row["id"] for row in rows]
        assert sorted(ids) == sorted(_expected_events(server, slug, discover=True)), slug
        assert all(row["project"] == slug for row in rows)
        assert all(
            set(row)
            == {"id", "timestamp", "title", "project", "event.type", "message", "project.name"}
            for row in rows
        )
        per_file[f"{slug}.jsonl.gz"] = len(ids)
    _assert_manifest(tmp_path, manifest, per_file)


def _add_faults(server: FakeSentry) -> list[Fault]:
    """Hiccups the client retries: each kind twice at fixed points, then more at random."""
    kinds: list[tuple[str, dict[str, Any]]] = [
        ("rate_limit", {"reset_in": None}),
        ("truncated_json", {}),
        ("drop_mid_body", {}),
        ("status", {"status": 502}),
        ("status", {"status": 503}),
    ]
    sure = [
        server.faults.add(Fault(kind, path="/events/", after=4 * n + 2, times=2, **options))
        for n, (kind, options) in enumerate(kinds)
    ]
    for kind, options in kinds:
        server.faults.add(Fault(kind, path="/events/", probability=0.04, times=None, **options))
    return sure


@pytest.mark.parametrize(("concurrency", "max_open"), [(4, None), (1, None), (4, 2)])
async def test_resume_after_faults_and_cancellations_writes_every_item_once(
    fake_sentry_factory: Factory,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    concurrency: int,
    max_open: int | None,
) -> None:
    """Streams side by side (a fan-out) and one at a time (walked by the exporter); and with
    fewer files open at once than the projects, closed and opened again as pages come."""
    if max_open is not None:
        monkeypatch.setattr("sentry_async.export._datafiles.MAX_OPEN", max_open)
    server = await fake_sentry_factory(scale=DATA)
    # One page fails for good (beyond the client's retries) until two runs died of it.
    blocker = server.faults.add(
        Fault(
            "status",
            status=503,
            path="project-0-1/events/",
            query="start=2026-05-21T07",
            times=None,
        )
    )
    faults = _add_faults(server)
    spec = _spec(page_size=2)
    rng = random.Random(20260601)
    stops: Counter[str] = Counter()
    manifest = None
    with anyio.fail_after(45):
        async with _client(server) as client:
            for attempt in range(80):
                with anyio.move_on_after(rng.uniform(0.01, 0.06) * (1 + attempt / 5)):
                    try:
                        manifest = await export(
                            client,
                            spec,
                            tmp_path,
                            resume=True,
                            commit_interval=0.02,
                            concurrency=concurrency,
                        )
                    except SentryError as exc:
                        stops[type(exc).__name__] += 1
                        if stops[type(exc).__name__] == 2:
                            blocker.times = blocker.fired
                        continue
                if manifest is not None:
                    break
                stops["cancelled"] += 1
    assert manifest is not None, f"not done after 80 runs: {stops}"
    assert stops["cancelled"] >= 3, stops
    assert stops["ServerError"] == 2, stops
    assert all(fault.fired == 2 for fault in faults), [(f.kind, f.fired) for f in faults]
    assert blocker.fired >= 10
    per_file = {}
    for slug in server.data.project_slugs(ORG):
        expected = _expected_events(server, slug)
        _assert_file_holds(tmp_path / f"{slug}.jsonl", expected)
        per_file[f"{slug}.jsonl"] = len(expected)
    _assert_manifest(tmp_path, manifest, per_file)
    assert manifest.runs > 3


KILL_DATA = SeedConfig(
    orgs=1, projects_per_org=3, issues_per_project=40, events_per_issue=(2, 6), days=20
)
SLOW_PAGE = 0.15
"""Each page of events takes this long, so an export of KILL_DATA lasts a few seconds."""


def _committed(directory: Path) -> dict[str, Any] | None:
    try:
        return msgspec.json.decode((directory / CHECKPOINT_NAME).read_bytes())  # type: ignore[no-any-return]
    except (FileNotFoundError, msgspec.DecodeError):
        return None


def _progress(checkpoint: dict[str, Any] | None) -> int:
    """Pages the checkpoint records as durably written."""
    return sum(s["pages"] for s in checkpoint["streams"].values()) if checkpoint else 0


def _torn(directory: Path) -> bool:
    """Whether some data file holds bytes beyond what the checkpoint records."""
    checkpoint = _committed(directory)
    if checkpoint is None:
        return False
    return any(
        (directory / name).exists() and (directory / name).stat().st_size > state["offset"]
        for name, state in checkpoint["files"].items()
    )


async def test_kill_9_at_random_moments_then_resume_writes_every_item_once(
    fake_sentry_factory: Factory, tmp_path: Path
) -> None:
    server = await fake_sentry_factory(scale=KILL_DATA)
    server.faults.add(Fault("slow", path="/events/", delay=SLOW_PAGE, times=None))
    token_file = tmp_path / "token"
    token_file.write_text(server.token + "\n")
    out = tmp_path / "out"
    command = [
        sys.executable, "-m", "sentry_async", "export", "events",
        "--org", ORG, "--since", START.isoformat(), "--until", END.isoformat(),
        "--window", "3d", "--concurrency", "2", "--output", str(out), "--resume",
        "--base-url", server.url, "--token-file", str(token_file), "--quiet",
    ]  # fmt: skip
    rng = random.Random(12)
    # Two kills early in a run (before its first commit), two after a commit, interleaved.
    moments = ["early", "early", "late", "late"]
    rng.shuffle(moments)
    kills = torn = 0
    progress = [0]
    with anyio.fail_after(40):
        for moment in moments:
            requests_before = len(server.requests)
            progress_before = _progress(_committed(out))
            process = await anyio.open_process(command, stdout=None, stderr=None)
            try:
                for _ in range(2000):
                    if process.returncode is not None:
                        break
                    if moment == "early" and len(server.requests) > requests_before:
                        await anyio.sleep(rng.uniform(0.2, 0.6))
                        break
                    if moment == "late" and _progress(_committed(out)) > progress_before:
                        await anyio.sleep(rng.uniform(0.05, 0.4))
                        break
                    await anyio.sleep(0.02)
                assert process.returncode is None, "the export ended before it was killed"
                process.send_signal(signal.SIGKILL)
                assert await process.wait() == -signal.SIGKILL
            finally:
                if process.returncode is None:
                    process.kill()
                    await process.wait()
            kills += 1
            torn += _torn(out)
            progress.append(_progress(_committed(out)))
        # The kills are over: the last run need not be slow.
        server.faults.clear()
        final = await anyio.run_process(command, check=False)
    assert final.returncode == 0, final.stderr.decode()
    assert kills == 4 and torn >= 1, "some kills left pages the checkpoint did not cover"
    assert progress[-1] > 0, "resumed runs kept what earlier ones committed"
    assert progress == sorted(progress), "a committed page is never lost"
    manifest = msgspec.json.decode((out / MANIFEST_NAME).read_bytes(), type=Manifest)
    assert max(s.pages for s in manifest.streams) >= 3, "streams span several pages"
    per_file = {}
    for slug in server.data.project_slugs(ORG):
        expected = _expected_events(server, slug)
        _assert_file_holds(out / f"{slug}.jsonl", expected)
        per_file[f"{slug}.jsonl"] = len(expected)
    _assert_manifest(out, manifest, per_file)
    assert manifest.runs >= 3
    assert _listing(out, "*.tmp") == []


async def _interrupted(server: FakeSentry, spec: ExportSpec, out: Path, **kwargs: Any) -> None:
    """Leave an unfinished export of ``spec`` in ``out``: a 500 that persists (a single one
    is retried) stops it after a few pages."""
    server.faults.add(Fault("status", status=500, path="/events/", after=3, times=None))
    async with _client(server) as client:
        with pytest.raises(ServerError):
            # One stream at a time: the pages before the failing one are surely written.
            await export(client, spec, out, concurrency=1, **kwargs)
    server.faults.clear()
    checkpoint = _committed(out)
    assert checkpoint is not None and not checkpoint["complete"]
    assert _progress(checkpoint) >= 1


async def test_resume_with_other_arguments_is_refused(
    fake_sentry_factory: Factory, tmp_path: Path
) -> None:
    server = await fake_sentry_factory(scale=DATA)
    await _interrupted(server, _spec(page_size=5), tmp_path)
    before = _sizes(tmp_path)
    async with _client(server) as client:
        with pytest.raises(SpecMismatchError) as caught:
            await export(
                client, _spec(page_size=5, window=timedelta(days=2)), tmp_path, resume=True
            )
        assert caught.value.differences == {"window_seconds": (3 * 86400, 2 * 86400)}
        with pytest.raises(SpecMismatchError, match="gzip"):
            await export(client, _spec(page_size=5, gzip=True), tmp_path, resume=True)
        assert _sizes(tmp_path) == before
        manifest = await export(client, _spec(page_size=5), tmp_path, resume=True)
    assert manifest.runs == 2
    for slug in server.data.project_slugs(ORG):
        _assert_file_holds(tmp_path / f"{slug}.jsonl", _expected_events(server, slug))


async def test_a_period_stays_pinned_across_resumes(
    fake_sentry_factory: Factory, tmp_path: Path
) -> None:
    server = await fake_sentry_factory(scale=DATA)
    spec = ExportSpec(kind="events", org=ORG, period=timedelta(days=14), page_size=5)
    await _interrupted(server, spec, tmp_path, now=END)
    async with _client(server) as client:
        manifest = await export(client, spec, tmp_path, resume=True, now=END + timedelta(days=2))
    assert (manifest.start, manifest.end) == ("2026-05-18T07:00:00Z", "2026-06-01T07:00:00Z")
    assert all(r.param("statsPeriod") is None for r in server.requests)
    for slug in server.data.project_slugs(ORG):
        _assert_file_holds(tmp_path / f"{slug}.jsonl", _expected_events(server, slug))


async def test_output_not_empty_without_resume(
    fake_sentry_factory: Factory, tmp_path: Path
) -> None:
    server = await fake_sentry_factory(scale=DATA)
    stray = tmp_path / "stray"
    stray.mkdir()
    (stray / "notes.txt").write_text("mine")
    finished = tmp_path / "finished"
    async with _client(server) as client:
        for resume in (False, True):
            with pytest.raises(OutputNotEmptyError, match=r"notes\.txt"):
                await export(client, _spec(), stray, resume=resume)
        assert _listing(stray) == ["notes.txt"], "nothing of the refused export is left"
        first = await export(client, _spec(), finished)
        with pytest.raises(OutputNotEmptyError, match="a complete export"):
            await export(client, _spec(), finished)
        server.reset_log()
        again = await export(client, _spec(), finished, resume=True)
    assert server.requests == [], "a complete export is not fetched again"
    assert again.items == first.items


async def test_restart_checks_everything_before_removing_anything(
    fake_sentry_factory: Factory, tmp_path: Path
) -> None:
    """A stray file stops a restart before the export is deleted; a damaged manifest or
    checkpoint is said to be damaged, and a restart starts such a directory over."""
    server = await fake_sentry_factory(scale=DATA)
    out = tmp_path / "out"
    async with _client(server) as client:
        first = await export(client, _spec(), out)
        (out / "notes.txt").write_text("mine")
        before = _sizes(out)
        with pytest.raises(OutputNotEmptyError, match=r"notes\.txt"):
            await export(client, _spec(), out, restart=True)
        assert _sizes(out) == before, "nothing removed"
        (out / "notes.txt").unlink()
        (out / MANIFEST_NAME).write_text('{"format": ')
        for resume in (False, True):
            with pytest.raises(CheckpointError, match="damaged") as caught:
                await export(client, _spec(), out, resume=resume)
            assert "restart" in str(caught.value)
        again = await export(client, _spec(), out, restart=True)
        assert again.items == first.items and again.runs == 1
        await _interrupted(server, _spec(), out, restart=True)
        (out / CHECKPOINT_NAME).write_text("{")
        with pytest.raises(CheckpointError):
            await export(client, _spec(), out, resume=True)
        third = await export(client, _spec(), out, restart=True)
    assert third.items == first.items and third.runs == 1
    for slug in server.data.project_slugs(ORG):
        _assert_file_holds(out / f"{slug}.jsonl", _expected_events(server, slug))


async def test_unfinished_output_without_resume_is_refused(
    fake_sentry_factory: Factory, tmp_path: Path
) -> None:
    server = await fake_sentry_factory(scale=DATA)
    await _interrupted(server, _spec(), tmp_path)
    async with _client(server) as client:
        with pytest.raises(OutputNotEmptyError, match="an unfinished export"):
            await export(client, _spec(), tmp_path)


async def test_a_second_exporter_on_the_same_directory_is_locked_out(
    fake_sentry_factory: Factory, tmp_path: Path
) -> None:
    server = await fake_sentry_factory(scale=DATA)
    server.faults.add(Fault("slow", path="/events/", delay=0.3, times=1))
    results: list[Manifest] = []
    with anyio.fail_after(20):
        async with _client(server) as client, anyio.create_task_group() as group:

            async def first() -> None:
                results.append(await export(client, _spec(), tmp_path))

            group.start_soon(first)
            for _ in range(500):
                if any("/events/" in r.path for r in server.requests):
                    break
                await anyio.sleep(0.01)
            with pytest.raises(ExportLockedError):
                await export(client, _spec(), tmp_path, resume=True)
        assert len(results) == 1
        async with _client(server) as client:
            assert (await export(client, _spec(), tmp_path, resume=True)).items == results[0].items


async def test_damaged_checkpoint_or_data_is_refused(
    fake_sentry_factory: Factory, tmp_path: Path
) -> None:
    server = await fake_sentry_factory(scale=DATA)
    await _interrupted(server, _spec(page_size=5), tmp_path)
    checkpoint = tmp_path / CHECKPOINT_NAME
    good = checkpoint.read_bytes()
    written = [
        tmp_path / name for name, size in _sizes(tmp_path) if name.endswith(".jsonl") and size
    ]
    assert written
    async with _client(server) as client:
        for damage in (good[: len(good) // 2], b"", b'{"format": "sentry-async-export/0"}'):
            checkpoint.write_bytes(damage)
            with pytest.raises(CheckpointError):
                await export(client, _spec(page_size=5), tmp_path, resume=True)
        checkpoint.write_bytes(good)
        data = written[0].read_bytes()
        written[0].write_bytes(data[:-1])
        with pytest.raises(CheckpointError, match="holds"):
            await export(client, _spec(page_size=5), tmp_path, resume=True)
        written[0].unlink()
        with pytest.raises(CheckpointError, match="missing"):
            await export(client, _spec(page_size=5), tmp_path, resume=True)
        written[0].write_bytes(data)
        manifest = await export(client, _spec(page_size=5), tmp_path, resume=True)
    assert manifest.items == sum(
        len(_expected_events(server, s)) for s in server.data.project_slugs(ORG)
    )


async def test_unknown_project_or_org(fake_sentry_factory: Factory, tmp_path: Path) -> None:
    server = await fake_sentry_factory(scale=DATA)
    async with _client(server) as client:
        with pytest.raises(UnknownProjectError, match="nope"):
            await export(client, _spec(projects=("project-0-0", "nope")), tmp_path / "a")
        with pytest.raises(UnknownProjectError, match="project-1-0"):
            await export(client, _spec(projects=("project-1-0",)), tmp_path / "b")
        with pytest.raises(NotFound):
            await export(
                client,
                ExportSpec(kind="issues", org="no-org", period=timedelta(days=1)),
                tmp_path / "c",
            )
        by_id = await export(
            client, _spec(projects=(server.data.orgs[0].projects[1].id,)), tmp_path / "d"
        )
    assert [p.slug for p in by_id.projects] == ["project-0-1"]
    assert not (tmp_path / "a").exists(), "nothing planned, nothing left behind"


def _tear(path: Path, tail: bytes) -> None:
    """What a crash in the middle of a write leaves: bytes after the committed length."""
    with path.open("ab") as handle:
        handle.write(tail)


async def test_torn_writes_after_the_checkpoint_are_cut_off_on_resume(
    fake_sentry_factory: Factory, tmp_path: Path
) -> None:
    server = await fake_sentry_factory(scale=DATA)
    spec = _spec(gzip=True, page_size=3)
    await _interrupted(server, spec, tmp_path)
    files = [name for name, size in _sizes(tmp_path) if name.endswith(".gz") and size]
    assert files
    half_member = gzip.compress(b'{"id":"torn"}\n' * 50)[:40]
    for name in files:
        _tear(tmp_path / name, half_member)
    async with _client(server) as client:
        manifest = await export(client, spec, tmp_path, resume=True)
    per_file = {}
    for slug in server.data.project_slugs(ORG):
        expected = _expected_events(server, slug)
        _assert_file_holds(tmp_path / f"{slug}.jsonl.gz", expected)
        per_file[f"{slug}.jsonl.gz"] = len(expected)
    _assert_manifest(tmp_path, manifest, per_file)


async def test_a_page_that_never_decodes_stops_the_export_at_that_page(
    fake_sentry_factory: Factory, tmp_path: Path
) -> None:
    server = await fake_sentry_factory(scale=DATA)
    broken = server.faults.add(
        # The page at 0:3:0, asked one row early.
        Fault("truncated_json", path="project-0-2/events/", query="cursor=0:2:0", times=None)
    )
    spec = _spec(page_size=3, window=None)
    async with _client(server) as client:
        with pytest.raises(ExportDecodeError) as caught:
            await export(client, spec, tmp_path, concurrency=1)
        assert caught.value.stream.startswith("project-0-2@")
        assert caught.value.cursor == "0:3:0"
        assert broken.fired == FAST_RETRY.attempts, "retried, then given up"
        checkpoint = _committed(tmp_path)
        assert checkpoint is not None
        assert checkpoint["streams"][caught.value.stream]["cursor"] == "0:3:0"
        broken.times = broken.fired
        manifest = await export(client, spec, tmp_path, resume=True)
    assert manifest.items == sum(
        len(_expected_events(server, s)) for s in server.data.project_slugs(ORG)
    )
    _assert_file_holds(tmp_path / "project-0-2.jsonl", _expected_events(server, "project-0-2"))


async def test_unusable_ranges_are_refused_before_anything_is_created(
    fake_sentry: FakeSentry, tmp_path: Path
) -> None:
    """Empty, out-of-calendar and too finely windowed ranges: a typed error, no request."""
    year_one = datetime(1, 1, 1, tzinfo=timezone.utc)
    too_many = timedelta(seconds=MAX_WINDOWS + 1)
    cases = {
        "start": ExportSpec(kind="events", org=ORG, start=FIXED_NOW + timedelta(days=1)),
        "end": ExportSpec(kind="events", org=ORG, end=year_one, period=timedelta(days=30)),
        "period": ExportSpec(kind="events", org=ORG, period=timedelta(days=999_999_999)),
        # With an issue there is no project to resolve: planning would start at once.
        "window": ExportSpec(
            kind="events",
            org=ORG,
            issues=("999999999",),
            start=FIXED_NOW - too_many,
            end=FIXED_NOW,
            window=timedelta(seconds=1),
        ),
    }
    async with _client(fake_sentry) as client:
        for argument, spec in cases.items():
            out = tmp_path / argument
            with anyio.fail_after(20), pytest.raises(ExportRangeError) as caught:
                await export(client, spec, out, now=FIXED_NOW)
            assert isinstance(caught.value, ValueError)
            assert caught.value.argument == argument
            assert str(caught.value).startswith(f"{argument}: ")
            assert not out.exists(), argument
    assert fake_sentry.requests == []
    assert "larger window" in str(caught.value) and f"{MAX_WINDOWS:,}" in str(caught.value)


async def test_a_range_ending_after_now_is_refused(
    fake_sentry: FakeSentry, tmp_path: Path
) -> None:
    """Windows after now would be recorded complete before their events exist: lost for good."""
    cases = {
        "start and end": ExportSpec(
            kind="events", org=ORG, start=FIXED_NOW - timedelta(days=1),
            end=FIXED_NOW + timedelta(days=1),
        ),
        "period and end": ExportSpec(
            kind="issues", org=ORG, period=timedelta(days=2), end=FIXED_NOW + timedelta(hours=1)
        ),
    }  # fmt: skip
    async with _client(fake_sentry) as client:
        for name, spec in cases.items():
            out = tmp_path / name.replace(" ", "-")
            with anyio.fail_after(20), pytest.raises(ExportRangeError) as caught:
                await export(client, spec, out, now=FIXED_NOW)
            assert caught.value.argument == "end", name
            assert "in the future" in caught.value.reason, name
            assert not out.exists(), name
        # Up to now exactly is a range that is over.
        spec = ExportSpec(kind="issues", org=ORG, period=timedelta(days=2), end=FIXED_NOW)
        manifest = await export(client, spec, tmp_path / "now", now=FIXED_NOW)
        assert manifest.end == "2026-06-01T12:00:00Z"


async def test_more_projects_than_the_open_file_limit_export_every_event_once(
    fake_sentry_factory: Factory, tmp_path: Path
) -> None:
    """Streams go window by window across the projects: were each project's file kept open
    until its last window, an organization with more projects than the process may open
    files would stop at "too many open files", on every resume too."""
    resource = pytest.importorskip("resource")
    data = SeedConfig(
        orgs=1, projects_per_org=70, issues_per_project=2, events_per_issue=(1, 2), days=4
    )
    server = await fake_sentry_factory(scale=data)
    (tmp_path / "token").write_text(server.token)
    out = tmp_path / "out"
    start, end = FIXED_NOW - timedelta(days=3), FIXED_NOW
    limited = (
        "import resource, runpy, sys; "
        f"resource.setrlimit(resource.RLIMIT_NOFILE, (48, {resource.getrlimit(resource.RLIMIT_NOFILE)[1]})); "
        "sys.argv[0] = 'sentry-async'; runpy.run_module('sentry_async', run_name='__main__')"
    )
    command = [sys.executable, "-c", limited, "export", "events", "--org", ORG,
               "--since", start.isoformat(), "--until", end.isoformat(), "-o", str(out),
               "--base-url", server.url, "--token-file", str(tmp_path / "token"), "-q"]  # fmt: skip
    with anyio.fail_after(120):
        result = await anyio.run_process(command, check=False)
    assert result.returncode == 0, result.stderr.decode()
    slugs = server.data.project_slugs(ORG)
    assert len(slugs) == 70 and len(_listing(out, "*.jsonl")) == 70
    for slug in slugs:
        expected = server.data.event_ids(
            ORG, slug, start=start.timestamp(), end=end.timestamp(), include_transactions=False
        )
        ids = _ids(_lines(out / f"{slug}.jsonl"))
        assert len(ids) == len(set(ids)) and set(ids) == set(expected), slug


def test_window_and_date_arithmetic_stays_in_the_calendar() -> None:
    """Overflow is a ValueError with a message, never an OverflowError."""
    with pytest.raises(ValueError, match="too long"):
        parse_duration("999999999999999d")
    with pytest.raises(ValueError, match="too long"):
        parse_duration("9" * 5000 + "s")
    with pytest.raises(ValueError, match="out of range"):
        parse_utc("0001-01-01T00:00:00+01:00")
    with pytest.raises(ExportRangeError, match="out of range"):
        ExportSpec(
            kind="events", org=ORG, start=datetime(1, 1, 1, tzinfo=timezone(timedelta(hours=1)))
        )
    late = datetime(9999, 12, 30, tzinfo=timezone.utc)
    windows = split_windows(late, late + timedelta(hours=36), timedelta(days=1))
    assert [w.end - w.start for w in windows] == [timedelta(days=1), timedelta(hours=12)]
    start = datetime(2026, 1, 1, tzinfo=timezone.utc)
    assert (
        len(split_windows(start, start + timedelta(seconds=MAX_WINDOWS), timedelta(seconds=1)))
        == MAX_WINDOWS
    )
    with pytest.raises(ExportRangeError, match="larger window"):
        split_windows(start, start + timedelta(seconds=MAX_WINDOWS + 1), timedelta(seconds=1))


async def test_a_written_page_is_let_go_before_the_next_is_fetched(
    fake_sentry_factory: Factory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One page at a time, every page already written is garbage when the next request
    goes: a page kept alive while the next one decodes makes it decode into cold memory."""
    from sentry_async.export import _runner

    server = await fake_sentry_factory(scale=DATA)
    slug = server.data.project_slugs(ORG)[0]
    fetchers: list[WatchedPages] = []
    real = _runner.stream_pages

    def watched(*args: Any) -> Any:
        paginator = real(*args)
        fetchers.append(WatchedPages(paginator._fetch))
        return dataclasses.replace(paginator, _fetch=fetchers[-1])

    monkeypatch.setattr(_runner, "stream_pages", watched)
    monkeypatch.setattr(_runner, "ALONE_READ_AHEAD", 0)
    with anyio.fail_after(20):
        async with _client(server) as client:
            await export(client, _spec(projects=(slug,), window=None, page_size=5), tmp_path)
    [fetch] = fetchers  # one stream
    assert len(fetch.alive_when_asked) >= 3, "the stream must span several pages"
    assert fetch.alive_when_asked == [0] * len(fetch.alive_when_asked)


@pytest.mark.parametrize("gzip_files", [False, True])
async def test_a_resumed_stream_drops_an_item_repeated_across_its_checkpoint(
    fake_sentry_factory: Factory, tmp_path: Path, gzip_files: bool
) -> None:
    """An event arriving mid-export, newer than every listed one, shifts the offsets by
    one: the page after the checkpoint repeats the last item written before it. A resumed
    stream drops it as the run that was not stopped does."""
    server = await fake_sentry_factory(scale=DATA)
    slug = "project-0-0"
    spec = _spec(projects=(slug,), window=None, page_size=2, gzip=gzip_files)
    out = tmp_path / "out"
    await _interrupted(server, spec, out)
    late = (
        server.builder.organization(ORG)
        .project(slug)
        .add_issue("LateError: arrived mid-export", events=0)
        .add_event(timestamp=END - timedelta(minutes=1))
    )
    async with _client(server) as client:
        manifest = await export(client, spec, out, resume=True, concurrency=1)
    ids = _ids(_lines(out / (slug + (".jsonl.gz" if gzip_files else ".jsonl"))))
    assert [i for i, count in Counter(ids).items() if count > 1] == []
    assert set(ids) | {late} == set(_expected_events(server, slug)), "and none missing"
    assert manifest.duplicates == 1 and manifest.items == len(ids)
