"""Exports that meet deletions while they run: a project of a Discover-totals export, an
issue of an ``--issue`` export, and a deleted project's slug taken by a new project.

Pinned against Sentry's server code: ``GroupEndpoint.convert_args``
(src/sentry/api/bases/group.py) answers 404 for an issue pending deletion, being deleted
or merged away (``EXCLUDED_STATUSES``), on its events and its details alike;
``OrganizationEndpoint._get_projects_by_id`` 403 for a requested project id that is no
longer active, and ``project=-1`` is every project the user can access when asked;
``ProjectDetailsEndpoint.delete`` (src/sentry/api/endpoints/project_details.py) renames a
project pending deletion (``rename_on_pending_deletion``), so a new project may take its
slug, and ``/projects/{org}/{slug}/events/`` then answers the new project's events, each
with its ``projectID``.
"""

from __future__ import annotations

import io
import logging
from dataclasses import replace
from datetime import timedelta
from functools import partial
from pathlib import Path

import anyio
import msgspec
import pytest
from _export_staging import (
    Factory,
    Meddling,
    acme,
    client_of,
    delete_issue,
    delete_project,
    in_step,  # noqa: F401 (a fixture, named by usefixtures)
    issues_of_alpha,
    lines,
    reuse_slug,
    skipped,
    totals,
)

from sentry_async import (
    Forbidden,
    NotFound,
    PaginationError,
    ServerError,
)
from sentry_async.cli import main
from sentry_async.export import MANIFEST_NAME, ExportSpec, export
from sentry_async.testing import Fault, SeedConfig

TOKEN = "sntrys_deletions-test-token-92eb5ffee6ae2fec3ad71c777531578f"


# -- 1. a project of a Discover-totals export deleted while it runs ---------------------------


@pytest.mark.parametrize("after", [0, 1])
@pytest.mark.parametrize("named", [True, False])
async def test_totals_go_on_over_the_projects_left_when_one_is_deleted(
    fake_sentry_factory: Factory, tmp_path: Path, named: bool, after: int
) -> None:
    server, ids = await acme(fake_sentry_factory)
    projects = ("alpha", "gone", "zeta") if named else None
    spec = totals(projects=projects, page_size=2)
    out = tmp_path / "out"
    progress = Meddling("discover", lambda: delete_project(server, "gone"), after=after)
    async with client_of(server) as client:
        with anyio.fail_after(30):
            manifest = await export(client, spec, out, progress=progress, now=server.now)
            await export(
                client, replace(spec, projects=("alpha", "zeta")), tmp_path / "ref", now=server.now
            )
    assert skipped(manifest) == [(ids["gone"], "gone")]
    assert "no longer" in manifest.skipped[0].error
    rows = lines(out / "aggregates.jsonl")
    # The totals over the projects left, each row once: none counted the deleted project.
    assert rows == lines(tmp_path / "ref" / "aggregates.jsonl")
    assert len(rows) == 6 and not any("gone" in row["title"] for row in rows)
    assert manifest.items == len(rows)


@pytest.mark.parametrize("named", [True, False])
@pytest.mark.parametrize("format", ["csv", "parquet"])
async def test_totals_as_a_table_start_over_without_the_rows_written(
    fake_sentry_factory: Factory, tmp_path: Path, format: str, named: bool
) -> None:
    if format == "parquet":
        pytest.importorskip("pyarrow.parquet")
    server, ids = await acme(fake_sentry_factory)
    projects = ("alpha", "gone", "zeta") if named else None
    spec = totals(projects=projects, page_size=2, format=format)
    out = tmp_path / "out"
    progress = Meddling("discover", lambda: delete_project(server, "gone"), after=1)
    async with client_of(server) as client:
        with anyio.fail_after(30):
            manifest = await export(client, spec, out, progress=progress, now=server.now)
            await export(
                client, replace(spec, projects=("alpha", "zeta")), tmp_path / "ref", now=server.now
            )
    assert skipped(manifest) == [(ids["gone"], "gone")]
    [written] = [file.path for file in manifest.files]
    if format == "csv":
        text = (out / written).read_text()
        assert text == (tmp_path / "ref" / written).read_text()
        assert text.count("\n") == 7 and "gone" not in text
    else:
        import pyarrow.parquet as pq

        table = pq.read_table(out / written)
        assert table.to_pylist() == pq.read_table(tmp_path / "ref" / written).to_pylist()
        assert table.num_rows == 6 and not list(out.glob("*.tmp"))
    assert manifest.items == 6


async def test_a_resumed_totals_export_gets_past_a_project_deleted_since(
    fake_sentry_factory: Factory, tmp_path: Path
) -> None:
    server, ids = await acme(fake_sentry_factory)
    spec = totals(projects=("alpha", "gone", "zeta"), page_size=2)
    out = tmp_path / "out"
    fault = server.faults.add(Fault("status", path="/events/", after=1, times=None))
    async with client_of(server) as client:
        with anyio.fail_after(30), pytest.raises(ServerError):
            await export(client, spec, out, now=server.now)
        fault.times = fault.fired
        delete_project(server, "gone")
        with anyio.fail_after(30):
            manifest = await export(client, spec, out, resume=True, now=server.now)
            again = await export(client, spec, out, resume=True, now=server.now)
    assert manifest.runs == 2 and again == manifest
    assert skipped(manifest) == [(ids["gone"], "gone")]
    rows = lines(out / "aggregates.jsonl")
    assert len(rows) == 6 and not any("gone" in row["title"] for row in rows)
    on_disk = msgspec.json.decode((out / MANIFEST_NAME).read_bytes())
    assert on_disk["skipped"][0]["slug"] == "gone"


async def test_totals_over_a_project_still_listed_that_answers_403_stay_an_error(
    fake_sentry_factory: Factory, tmp_path: Path
) -> None:
    server, _ = await acme(fake_sentry_factory)
    server.faults.add(Fault("status", path="/events/", status=403, times=None))
    spec = totals(projects=("alpha", "gone", "zeta"))
    async with client_of(server) as client:
        with anyio.fail_after(30), pytest.raises(Forbidden):
            await export(client, spec, tmp_path / "out", now=server.now)


# -- 2. an issue of an --issue export deleted while it runs ---------------------------------


@pytest.mark.parametrize("concurrency", [1, 4])
@pytest.mark.parametrize("after", [0, 1])
async def test_an_issue_deleted_during_the_export_is_recorded_and_the_rest_exported(
    fake_sentry_factory: Factory, tmp_path: Path, after: int, concurrency: int
) -> None:
    server, issues = await issues_of_alpha(fake_sentry_factory)
    doomed = issues[0] if after else issues[1]
    spec = ExportSpec(kind="events", org="acme", issues=tuple(issues), period="3d", page_size=2)
    out = tmp_path / "out"
    progress = Meddling("events", lambda: delete_issue(server, doomed), after=after)
    async with client_of(server) as client:
        with anyio.fail_after(30):
            manifest = await export(
                client, spec, out, concurrency=concurrency, progress=progress, now=server.now
            )
            again = await export(client, spec, out, resume=True, now=server.now)
    assert skipped(manifest) == [(doomed, None)]
    assert "issue" in manifest.skipped[0].error and "no longer" in manifest.skipped[0].error
    assert again.skipped == manifest.skipped
    for issue in issues:
        if issue != doomed:
            assert len(lines(out / f"issue-{issue}.jsonl")) == 5
    # What the deleted issue's stream wrote before stays, each event once.
    kept = [row["id"] for row in lines(out / f"issue-{doomed}.jsonl")] if after else []
    assert len(kept) == len(set(kept)) <= 5
    # Asked once (per stream under way): its other windows end without a request.
    asked = [r for r in server.requests if f"/issues/{doomed}/events/" in r.path]
    assert len(asked) <= after + concurrency


async def test_a_resumed_issue_export_gets_past_an_issue_deleted_since(
    fake_sentry_factory: Factory, tmp_path: Path
) -> None:
    server, issues = await issues_of_alpha(fake_sentry_factory)
    spec = ExportSpec(kind="events", org="acme", issues=tuple(issues), period="3d", page_size=2)
    out = tmp_path / "out"
    fault = server.faults.add(Fault("status", path="/events/", after=1, times=None))
    async with client_of(server) as client:
        with anyio.fail_after(30), pytest.raises(ServerError):
            await export(client, spec, out, concurrency=1, now=server.now)
        fault.times = fault.fired
        delete_issue(server, issues[0])
        with anyio.fail_after(30):
            manifest = await export(client, spec, out, resume=True, now=server.now)
    assert manifest.runs == 2
    assert skipped(manifest) == [(issues[0], None)]
    assert all(len(lines(out / f"issue-{issue}.jsonl")) == 5 for issue in issues[1:])


async def test_an_issue_still_there_whose_events_answer_404_stays_an_error(
    fake_sentry_factory: Factory, tmp_path: Path
) -> None:
    server, issues = await issues_of_alpha(fake_sentry_factory)
    server.faults.add(Fault("status", path=f"/issues/{issues[1]}/events/", status=404, times=None))
    spec = ExportSpec(kind="events", org="acme", issues=tuple(issues), period="3d")
    out = tmp_path / "out"
    async with client_of(server) as client:
        for resume in (False, True):
            with anyio.fail_after(30), pytest.raises(NotFound):
                await export(client, spec, out, resume=resume, concurrency=1, now=server.now)
    assert not (out / MANIFEST_NAME).exists()


@pytest.mark.usefixtures("quick_default_retries")
async def test_the_cli_exits_0_and_counts_the_issues_skipped(
    fake_sentry_factory: Factory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SENTRY_AUTH_TOKEN", raising=False)
    server, issues = await issues_of_alpha(fake_sentry_factory, token=TOKEN)
    token = tmp_path / "token"
    token.write_text(TOKEN)
    out = tmp_path / "o"
    argv = ["export", "events", "--org", "acme", "--period", "3d", "-o", str(out),
            "--base-url", server.url, "--token-file", str(token),
            *(arg for issue in issues for arg in ("--issue", issue))]  # fmt: skip
    fault = server.faults.add(Fault("status", path="/events/", after=1, times=None))
    stdout, stderr = io.StringIO(), io.StringIO()
    with anyio.fail_after(30):
        code = await anyio.to_thread.run_sync(partial(main, argv, stdout=stdout, stderr=stderr))
    assert code == 1, stderr.getvalue()
    fault.times = fault.fired
    delete_issue(server, issues[2])
    stdout, stderr = io.StringIO(), io.StringIO()
    with anyio.fail_after(30):
        code = await anyio.to_thread.run_sync(
            partial(main, [*argv, "--resume"], stdout=stdout, stderr=stderr)
        )
    assert code == 0, stderr.getvalue()
    assert "1 issue skipped" in stdout.getvalue() and MANIFEST_NAME in stdout.getvalue()
    assert issues[2] in stderr.getvalue() and TOKEN not in stderr.getvalue() + stdout.getvalue()


# -- 3. a deleted project's slug taken by a new project while the export runs ---------------


@pytest.mark.parametrize("after", [0, 1])
@pytest.mark.parametrize("kind", ["events", "issues", "discover"])
@pytest.mark.usefixtures("in_step")
async def test_a_slug_taken_by_a_new_project_does_not_export_the_new_project(
    fake_sentry_factory: Factory, tmp_path: Path, kind: str, after: int
) -> None:
    server, ids = await acme(fake_sentry_factory)
    spec = ExportSpec(kind=kind, org="acme", period="3d", page_size=2)  # type: ignore[arg-type]
    out = tmp_path / "out"
    new: list[str] = []
    progress = Meddling(kind, lambda: new.append(reuse_slug(server, "gone")), after=after)
    async with client_of(server) as client:
        with anyio.fail_after(30):
            manifest = await export(
                client, spec, out, concurrency=1, progress=progress, now=server.now
            )
    assert new and new[0] != ids["gone"]
    assert skipped(manifest) == [(ids["gone"], "gone")]
    rows = lines(out / "gone.jsonl") if (out / "gone.jsonl").exists() else []
    assert not any("Impostor" in str(row.get("title")) for row in rows), rows
    for slug in ("alpha", "zeta"):
        assert lines(out / f"{slug}.jsonl")


@pytest.mark.parametrize("events", [4, 2])
@pytest.mark.usefixtures("in_step")
async def test_a_slug_taken_while_its_project_is_exported_keeps_what_it_wrote(
    fake_sentry_factory: Factory, tmp_path: Path, caplog: pytest.LogCaptureFixture, events: int
) -> None:
    """The new project's events come on the next page (4), or none do though the page
    before said more would come (2: the new project has no third event)."""
    server, ids = await acme(fake_sentry_factory)
    spec = ExportSpec(kind="events", org="acme", period="3d", page_size=2)
    out = tmp_path / "out"
    original = server.data.event_ids("acme", "gone")
    progress = Meddling(
        "events", lambda: reuse_slug(server, "gone", events), after=1, stream="gone@"
    )
    caplog.set_level(logging.WARNING, "sentry_async.export")
    async with client_of(server) as client:
        with anyio.fail_after(30):
            manifest = await export(
                client, spec, out, concurrency=1, progress=progress, now=server.now
            )
    assert skipped(manifest) == [(ids["gone"], "gone")]
    assert "no longer in the organization's projects list" in manifest.skipped[0].error
    rows = lines(out / "gone.jsonl")
    # The page written before the slug was taken, and nothing of the new project.
    assert len(rows) == 2 and {row["id"] for row in rows} <= set(original)
    assert all(row["projectID"] == ids["gone"] for row in rows)
    assert any("skipping project 'gone'" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize("concurrency", [1, 4])
@pytest.mark.usefixtures("in_step")
async def test_a_project_renamed_while_its_old_slug_is_taken_is_read_at_its_new_slug(
    fake_sentry_factory: Factory, tmp_path: Path, concurrency: int
) -> None:
    server, ids = await acme(fake_sentry_factory)
    # Events in every window, so that several of its streams meet the new project.
    issue = server.builder.organization("acme").project("gone").add_issue("Daily", events=0)
    for day in range(3):
        for minute in range(3):
            issue.add_event(timestamp=server.now - timedelta(days=day, minutes=30 + minute))
    spec = ExportSpec(kind="events", org="acme", period="3d", page_size=2)
    out = tmp_path / "out"
    original = server.data.event_ids("acme", "gone")

    def rename_and_take() -> None:
        """The new project answers every window with events of its own: a window whose
        first page it answers with none is not told from a window without events."""
        server.data.rename_project("acme", "gone", "moved")
        impostor = server.builder.organization("acme").add_project("gone")
        taken = impostor.add_issue("Impostor", events=0)
        for day in range(3):
            taken.add_event(timestamp=server.now - timedelta(days=day, minutes=40))

    progress = Meddling("events", rename_and_take, after=1, stream="gone@")
    async with client_of(server) as client:
        with anyio.fail_after(30):
            manifest = await export(
                client, spec, out, concurrency=concurrency, progress=progress, now=server.now
            )
    assert manifest.skipped == []
    rows = lines(out / "gone.jsonl")
    assert sorted(row["id"] for row in rows) == sorted(original)
    assert all(row["projectID"] == ids["gone"] for row in rows)


async def test_events_of_another_project_at_a_slug_the_list_still_gives_stop_the_export(
    fake_sentry_factory: Factory, tmp_path: Path
) -> None:
    server = await fake_sentry_factory(scale=SeedConfig(orgs=0))
    project = server.builder.add_organization("acme").add_project("alpha")
    project.add_issue("Boom", events=2)
    # The newest event, first on the first page, says it is another project's.
    odd = project.add_issue("Odd", events=0)
    odd.add_event(timestamp=server.now - timedelta(seconds=10), payload={"projectID": "999999"})
    spec = ExportSpec(kind="events", org="acme", period="3d", window=None)
    out = tmp_path / "out"
    async with client_of(server) as client:
        with anyio.fail_after(30), pytest.raises(PaginationError, match="project 999999"):
            await export(client, spec, out, now=server.now)
    assert not (out / "alpha.jsonl").exists() or not (out / "alpha.jsonl").read_bytes()


class _Crash(Exception):
    """The process stopping right after totals started over (a power cut, say)."""


async def test_a_run_stopped_just_after_its_totals_started_over_resumes(
    fake_sentry_factory: Factory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The checkpoint committed as totals start over must pass its own checks on resume:
    the file's length moves back to where the totals began, and its seal with it."""
    from sentry_async.export import _runner

    server, _ = await acme(fake_sentry_factory)
    spec = totals(projects=("alpha", "gone", "zeta"), page_size=2)
    out = tmp_path / "out"
    progress = Meddling("discover", lambda: delete_project(server, "gone"), after=1)
    cut_back = _runner.cut_back

    def cut_then_crash(path: Path, offset: int) -> None:
        cut_back(path, offset)
        raise _Crash

    monkeypatch.setattr(_runner, "cut_back", cut_then_crash)
    async with client_of(server) as client:
        with anyio.fail_after(30), pytest.raises(_Crash):
            await export(client, spec, out, progress=progress, now=server.now)
        monkeypatch.setattr(_runner, "cut_back", cut_back)
        with anyio.fail_after(30):
            manifest = await export(client, spec, out, resume=True, now=server.now)
            await export(
                client, replace(spec, projects=("alpha", "zeta")), tmp_path / "ref", now=server.now
            )
    rows = lines(out / "aggregates.jsonl")
    assert rows == lines(tmp_path / "ref" / "aggregates.jsonl")
    assert len(rows) == 6 and manifest.items == 6
