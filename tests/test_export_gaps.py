"""Exports that meet a project's slug taken, a project renamed, an issue merged or a project
created while they run: nothing of the planned project (or issue) lost without a word,
nothing of another one written as its own, totals over the planned projects only.

Pinned against Sentry's server code: ``ProjectEndpoint.convert_args``
(src/sentry/api/bases/project.py) answers a slug with the live project that holds it, and
only when none does with the renamed project's 302 (``ProjectRedirect``); an empty page of
``/projects/{org}/{slug}/events/`` says nothing of whose it is. ``GroupEndpoint
.convert_args`` (src/sentry/api/bases/group.py) reads an issue id through
``get_group_with_redirect`` and drops whether it was redirected: once a merge is done, the
merged-away id answers 200 with the issue it went into (``GroupRedirect``), its details and
its events alike, and each event names its ``groupID``.
``OrganizationEndpoint.get_projects`` reads ``project=-1`` as every project the user can
access when asked, and a list of ids as those projects only.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import anyio
import msgspec
import pytest
from _export_staging import (
    Factory,
    Meddling,
    acme,
    client_of,
    in_step,  # noqa: F401 (a fixture, named by usefixtures)
    issues_of_alpha,
    lines,
    reuse_slug,
    skipped,
    totals,
)

from sentry_async import PaginationError, ServerError
from sentry_async.export import (
    CHECKPOINT_NAME,
    CheckpointError,
    ExportSpec,
    Progress,
    UnknownProjectError,
    _plan,
    export,
)
from sentry_async.testing import FakeSentry, Fault
from sentry_async.testing._mutations import _merge


def _daily(server: FakeSentry, slug: str, days: int = 3) -> None:
    """One event of project ``slug`` in each of the last ``days`` daily windows, so that
    each of its windows but the last holds one event alone."""
    issue = server.builder.organization("acme").project(slug).add_issue("Daily", events=0)
    for day in range(days):
        issue.add_event(timestamp=server.now - timedelta(days=day, minutes=30))


def _lists(server: FakeSentry) -> int:
    """Reads of the projects list so far."""
    return sum(r.path == "/api/0/organizations/acme/projects/" for r in server.requests)


def _took(server: FakeSentry, slug: str, since: int = 0) -> list[str]:
    """Requests since the ``since``-th that asked for a path of project ``slug``."""
    return [r.path for r in server.requests[since:] if f"/projects/acme/{slug}/" in r.path]


# -- 1. a window's empty first page, read after the slug was taken --------------------------


# Once planned (0), or once the first window of ``gone`` is written (1, one at a time: side
# by side, the other windows may have been read before it is written).
STAGES = [(0, 1), (0, 4), (1, 1)]


@pytest.mark.parametrize(("after", "concurrency"), STAGES)
@pytest.mark.parametrize("change", ["renamed", "deleted"])
@pytest.mark.usefixtures("in_step")
async def test_an_empty_window_read_where_another_project_took_the_slug_is_not_trusted(
    fake_sentry_factory: Factory, tmp_path: Path, change: str, after: int, concurrency: int
) -> None:
    """``gone`` is renamed (or deleted) and a new project without events takes its slug:
    every later window of ``gone`` asked at its old slug comes back as an empty first page,
    which says nothing of whose it is."""
    server, ids = await acme(fake_sentry_factory)
    _daily(server, "gone")
    original = server.data.event_ids("acme", "gone")

    def take() -> None:
        if change == "renamed":
            server.data.rename_project("acme", "gone", "moved")
            server.builder.organization("acme").add_project("gone")
        else:
            reuse_slug(server, "gone", events=0)

    spec = ExportSpec(kind="events", org="acme", period="3d", page_size=2)
    out = tmp_path / "out"
    progress = Meddling("events", take, after=after, stream="gone@")
    async with client_of(server) as client:
        with anyio.fail_after(30):
            manifest = await export(
                client, spec, out, concurrency=concurrency, progress=progress, now=server.now
            )
            again = await export(client, spec, out, resume=True, now=server.now)
    rows = lines(out / "gone.jsonl") if (out / "gone.jsonl").exists() else []
    assert all(row["projectID"] == ids["gone"] for row in rows)
    assert len(rows) == len({row["id"] for row in rows}) == (after if change == "deleted" else 9)
    if change == "renamed":
        # Read again at its new slug: every event of it, each once.
        assert manifest.skipped == []
        assert sorted(row["id"] for row in rows) == sorted(original)
        assert manifest.renamed == {"gone": "moved"}
    else:
        # Deleted: listed under skipped, not passed off as a project without events.
        assert skipped(manifest) == [(ids["gone"], "gone")]
        assert "no longer in the organization's projects list" in manifest.skipped[0].error
    assert again == manifest
    assert not (out / CHECKPOINT_NAME).exists()
    for slug in ("alpha", "zeta"):
        assert len(lines(out / f"{slug}.jsonl")) == 6


async def test_empty_windows_cost_one_look_at_the_projects_list_not_one_each(
    fake_sentry_factory: Factory, tmp_path: Path
) -> None:
    """Twelve windows a project, all but one empty: their empty first pages are checked
    together, by one read of the projects list once the streams are done."""
    server, _ = await acme(fake_sentry_factory)
    spec = ExportSpec(kind="events", org="acme", period="1d", window="2h")
    async with client_of(server) as client:
        with anyio.fail_after(30):
            manifest = await export(client, spec, tmp_path / "out", now=server.now)
    assert len(manifest.streams) == 36 and manifest.items == 18
    assert sum(1 for s in manifest.streams if not s.items) == 33
    # The plan's read, and at most one for all the empty windows.
    assert _lists(server) <= 2


class _Renaming(Progress):
    """Progress that renames project ``gone`` (whatever it is called by then) after each
    page of its streams is written: its empty windows are never where they were read."""

    def __init__(self, server: FakeSentry) -> None:
        super().__init__("events")
        self._server = server
        self._names = 0

    def page(self, stream: str, **counts: Any) -> None:
        super().page(stream, **counts)
        if stream.startswith("gone@"):
            old = "gone" if not self._names else f"gone-{self._names}"
            self._names += 1
            self._server.data.rename_project("acme", old, f"gone-{self._names}")


@pytest.mark.usefixtures("in_step")
async def test_a_project_renamed_after_every_read_stops_the_export_resumable(
    fake_sentry_factory: Factory, tmp_path: Path
) -> None:
    server, ids = await acme(fake_sentry_factory)
    spec = ExportSpec(kind="events", org="acme", period="3d")
    out = tmp_path / "out"
    async with client_of(server) as client:
        with anyio.fail_after(30), pytest.raises(PaginationError, match="renamed again"):
            await export(
                client, spec, out, concurrency=1, progress=_Renaming(server), now=server.now
            )
        with anyio.fail_after(30):
            manifest = await export(client, spec, out, resume=True, now=server.now)
    assert manifest.skipped == [] and manifest.items == 18
    assert {row["projectID"] for row in lines(out / "gone.jsonl")} == {ids["gone"]}


# -- 2. a renamed project followed: the slug it is read at is saved --------------------------


@pytest.mark.parametrize("old_checkpoint", [False, True])
@pytest.mark.usefixtures("in_step")
async def test_a_resume_reads_a_renamed_project_at_the_slug_the_run_before_followed(
    fake_sentry_factory: Factory, tmp_path: Path, old_checkpoint: bool
) -> None:
    """``gone`` is renamed once the export is planned (its old slug answers 302, which the
    client follows); the export stops, a new project takes the old slug, and it resumes.
    A checkpoint without the slug (``old_checkpoint``, as earlier versions wrote it) asks
    the old slug, and is still not misled by the empty answers there."""
    server, ids = await acme(fake_sentry_factory)
    _daily(server, "gone")
    original = server.data.event_ids("acme", "gone")
    spec = ExportSpec(kind="events", org="acme", period="3d", page_size=2)
    out = tmp_path / "out"
    rename = Meddling("events", lambda: server.data.rename_project("acme", "gone", "moved"))
    fault = server.faults.add(
        Fault("status", path="/projects/acme/moved/events/", after=1, times=None)
    )
    async with client_of(server) as client:
        with anyio.fail_after(30), pytest.raises(ServerError):
            await export(client, spec, out, concurrency=1, progress=rename, now=server.now)
    saved = msgspec.json.decode((out / CHECKPOINT_NAME).read_bytes())
    moved = saved.pop("moved", None) if old_checkpoint else saved.get("moved")
    (out / CHECKPOINT_NAME).write_bytes(msgspec.json.encode(saved))
    fault.times = fault.fired
    server.builder.organization("acme").add_project("gone")  # no events of its own
    before = len(server.requests)
    async with client_of(server) as client:
        with anyio.fail_after(30):
            manifest = await export(client, spec, out, resume=True, now=server.now)
    assert manifest.runs == 2 and manifest.skipped == []
    rows = lines(out / "gone.jsonl")
    assert sorted(row["id"] for row in rows) == sorted(original)
    assert all(row["projectID"] == ids["gone"] for row in rows)
    assert manifest.renamed == {"gone": "moved"}
    # The checkpoint kept the slug the client followed: the resume asks it at once.
    assert moved == {ids["gone"]: "moved"}
    if not old_checkpoint:
        assert _took(server, "gone", before) == []


@pytest.mark.parametrize(
    ("moved", "problem"),
    [({"999": "moved"}, "which is not one of its projects"), ({"gone": "a/b"}, "valid slug")],
)
async def test_a_checkpoint_that_moves_a_project_where_it_cannot_be_read_is_refused(
    fake_sentry_factory: Factory, tmp_path: Path, moved: dict[str, str], problem: str
) -> None:
    server, ids = await acme(fake_sentry_factory)
    spec = ExportSpec(kind="events", org="acme", period="3d")
    out = tmp_path / "out"
    fault = server.faults.add(Fault("status", path="/events/", after=2, times=None))
    async with client_of(server) as client:
        with anyio.fail_after(30), pytest.raises(ServerError):
            await export(client, spec, out, concurrency=1, now=server.now)
        fault.times = fault.fired
        saved = msgspec.json.decode((out / CHECKPOINT_NAME).read_bytes())
        saved["moved"] = {ids.get(key, key): slug for key, slug in moved.items()}
        (out / CHECKPOINT_NAME).write_bytes(msgspec.json.encode(saved))
        with anyio.fail_after(30), pytest.raises(CheckpointError, match=problem):
            await export(client, spec, out, resume=True, now=server.now)


# -- 3. an issue merged into another while its events are exported --------------------------


@pytest.mark.parametrize(("after", "concurrency"), STAGES)
@pytest.mark.usefixtures("in_step")
async def test_an_issue_merged_away_is_recorded_as_merged_not_read_as_the_other_issue(
    fake_sentry_factory: Factory, tmp_path: Path, after: int, concurrency: int
) -> None:
    server, issues = await issues_of_alpha(fake_sentry_factory)
    first, other, last = issues
    # As many events each: the merge keeps the higher id, the last issue.
    records = [server.data.issues_by_id[issue] for issue in (first, last)]
    mine = {event.event_id for event in records[0].events}
    spec = ExportSpec(kind="events", org="acme", issues=tuple(issues), period="3d", page_size=2)
    out = tmp_path / "out"
    progress = Meddling(
        "events", lambda: _merge(server.data, records), after=after, stream=f"issue-{first}@"
    )
    async with client_of(server) as client:
        with anyio.fail_after(30):
            manifest = await export(
                client, spec, out, concurrency=concurrency, progress=progress, now=server.now
            )
    assert skipped(manifest) == [(first, None)]
    assert manifest.skipped[0].merged_into == last
    assert f"merged into issue {last}" in manifest.skipped[0].error
    written = out / f"issue-{first}.jsonl"
    kept = lines(written) if written.exists() else []
    # What it wrote before the merge stays (its first page); nothing of the issue it went into.
    assert len(kept) == 2 * after and {row["id"] for row in kept} <= mine
    assert all(row["groupID"] == first for row in kept)
    # Exported after the merge, the issue it went into holds its events too, as Sentry's
    # merge moves them (``merge_groups``): five of its own, five that were the first's, less
    # those the first's file holds already (each event written once).
    for issue, count in ((other, 5), (last, 10 - len(kept))):
        rows = lines(out / f"issue-{issue}.jsonl")
        assert len(rows) == count and all(row["groupID"] == issue for row in rows)
    into = {row["id"] for row in lines(out / f"issue-{last}.jsonl")}
    assert mine <= into | {row["id"] for row in kept} and not into & {row["id"] for row in kept}
    on_disk = msgspec.json.decode((out / "manifest.json").read_bytes())
    assert on_disk["skipped"][0]["merged_into"] == last


async def test_an_issue_merged_before_the_export_is_refused_naming_the_issue_it_went_into(
    fake_sentry_factory: Factory, tmp_path: Path
) -> None:
    server, issues = await issues_of_alpha(fake_sentry_factory)
    _merge(server.data, [server.data.issues_by_id[issue] for issue in issues[:2]])
    spec = ExportSpec(kind="events", org="acme", issues=(issues[0], issues[2]), period="3d")
    async with client_of(server) as client:
        with anyio.fail_after(30), pytest.raises(UnknownProjectError) as caught:
            await export(client, spec, tmp_path / "out", now=server.now)
    assert f"{issues[0]} (merged into {issues[1]})" in str(caught.value)
    assert not (tmp_path / "out").exists()


async def test_events_of_another_issue_whose_details_still_answer_as_asked_stop_the_export(
    fake_sentry_factory: Factory, tmp_path: Path
) -> None:
    server, issues = await issues_of_alpha(fake_sentry_factory)
    # The newest event, first on the first page, says it is another issue's.
    odd = server.data.issues_by_id[issues[0]]
    builder = server.builder.organization("acme").project("alpha")
    stray = builder.add_issue("Stray", events=0)
    stray.add_event(timestamp=server.now - timedelta(seconds=5))
    odd.events = [*stray.record.events, *odd.events]
    spec = ExportSpec(kind="events", org="acme", issues=(issues[0],), period="3d", window=None)
    out = tmp_path / "out"
    async with client_of(server) as client:
        with anyio.fail_after(30), pytest.raises(PaginationError, match=f"issue {stray.id}"):
            await export(client, spec, out, now=server.now)
    written = out / f"issue-{issues[0]}.jsonl"
    assert not written.exists() or not written.read_bytes()


# -- 4. totals over every project count the projects of the plan only ----------------------


async def test_totals_over_every_project_leave_out_a_project_created_after_the_plan(
    fake_sentry_factory: Factory, tmp_path: Path
) -> None:
    server, ids = await acme(fake_sentry_factory)

    def create() -> None:
        late = server.builder.organization("acme").add_project("late")
        late.add_issue("Boom late", events=2)

    spec = totals(page_size=2)
    out = tmp_path / "out"
    async with client_of(server) as client:
        with anyio.fail_after(30):
            manifest = await export(
                client, spec, out, progress=Meddling("discover", create), now=server.now
            )
            await export(
                client,
                replace(spec, projects=("alpha", "gone", "zeta")),
                tmp_path / "ref",
                now=server.now,
            )
    rows = lines(out / "aggregates.jsonl")
    assert rows == lines(tmp_path / "ref" / "aggregates.jsonl")
    assert len(rows) == 9 and not any("late" in row["title"] for row in rows)
    assert manifest.skipped == []
    asked = [r for r in server.requests if r.path == "/api/0/organizations/acme/events/"]
    assert asked and all(
        sorted(v for k, v in r.query if k == "project") == sorted(ids.values()) for r in asked
    )


def test_totals_over_more_projects_than_a_request_line_holds_ask_for_every_project() -> None:
    few = [str(4505000000000000 + n) for n in range(10)]
    many = [str(4505000000000000 + n) for n in range(400)]
    assert _plan.every_project_target(few, base_length=600) == ",".join(few)
    assert _plan.every_project_target(many, base_length=600) == _plan.EVERY_PROJECT
    assert _plan.every_project_target(few, base_length=7900) == _plan.EVERY_PROJECT
    assert _plan.every_project_target([], base_length=600) == _plan.EVERY_PROJECT


async def test_totals_asked_for_every_project_warn_of_projects_created_since_the_plan(
    fake_sentry_factory: Factory,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """An organization whose project ids do not fit in a request line: the totals ask for
    every project, and say they may count one created meanwhile."""
    monkeypatch.setattr(_plan, "every_project_target", lambda ids, base_length: "-1")
    server, _ = await acme(fake_sentry_factory)

    def create() -> None:
        server.builder.organization("acme").add_project("late").add_issue("Boom", events=1)

    caplog.set_level(logging.WARNING, "sentry_async.export")
    async with client_of(server) as client:
        with anyio.fail_after(30):
            await export(
                client,
                totals(),
                tmp_path / "out",
                progress=Meddling("discover", create),
                now=server.now,
            )
    [warning] = [r.getMessage() for r in caplog.records if "created since" in r.getMessage()]
    assert "'late'" in warning
