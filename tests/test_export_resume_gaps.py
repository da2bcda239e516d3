"""Exports stopped between two changes that belong together, issues merged into another
exported issue, and slugs or ids that hold the auth token.

A window split (its rows without ids cut off its file) and totals started over without a
project deleted meanwhile are each one change of the checkpoint and the data file: a run
stopped anywhere in it (cancelled, or an ``OSError``) leaves the state before or the state
after on disk, and the resume writes every row once.

Sentry's merge (``handle_merge`` in src/sentry/issues/merge.py, then the ``merge_groups``
task) moves the merged issue's events into the issue it went into: an export of both
writes those events once.
"""

from __future__ import annotations

import asyncio
import logging
import pickle
from collections import Counter
from collections.abc import Callable
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
    delete_project,
    in_step,  # noqa: F401 (a fixture, named by usefixtures)
    issues_of_alpha,
    lines,
    skipped,
    totals,
)
from test_export_formats import NO_ID, _row_lines

from sentry_async import PaginationError, SentryClient, ServerError
from sentry_async.export import (
    CHECKPOINT_NAME,
    ExportSpec,
    UnknownProjectError,
    _datafiles,
    _runner,
    export,
)
from sentry_async.testing import FakeSentry, Fault, SeedConfig
from sentry_async.testing._mutations import _merge
from sentry_async.testing.pytest_plugin import FIXED_NOW

TOKEN = "sntryu_" + "0123456789abcdef" * 4
"""A user token: itself a valid slug, and one a user may paste where a slug goes."""

ORG_TOKEN = "sntrys_eyJpYXQiOjE3MDAwMDAwMDB9/Abcdefghijklmnopqrstuvwxyz0123456789ABCD"
"""An organization token, whose base64 may hold a ``/`` (no valid slug)."""


class _Stop:
    """A stop of the first run once armed, at the next call of a patched function: the
    run's scope cancelled from the thread that called it (``"cancel"``: a timeout, Ctrl-C),
    or an ``OSError`` raised there (``"error"``; ``"error-once"``: that call only)."""

    def __init__(self, how: str) -> None:
        self.how = how
        self.armed = False
        self.fired = False
        self.over = False
        """The first run is over: the resume runs undisturbed."""
        self.scope = anyio.CancelScope()
        self.loop = asyncio.get_running_loop()

    def arm(self) -> None:
        self.armed = not self.over

    def end(self) -> None:
        self.armed, self.over = False, True

    def wrap(
        self, function: Callable[..., Any], *, arms: bool = False, stops: bool = True
    ) -> Callable[..., Any]:
        """``function``, stopping the run when armed (``arms``: arming it first; with
        ``stops=False``, only that)."""

        def stopping(*args: Any, **kwargs: Any) -> Any:
            if arms:
                self.arm()
            if not stops or not self.armed or (self.fired and self.how != "error"):
                return function(*args, **kwargs)
            self.fired = True
            if self.how != "cancel":
                raise OSError(5, "Input/output error")
            result = function(*args, **kwargs)
            self.loop.call_soon_threadsafe(self.scope.cancel)
            return result

        return stopping


@pytest.fixture
def encoded(monkeypatch: pytest.MonkeyPatch) -> list[bytes]:
    """Every checkpoint the runs encode, as written."""
    saved: list[bytes] = []
    original = _runner.encode_checkpoint

    def encode(checkpoint: Any) -> bytes:
        data = original(checkpoint)
        saved.append(data)
        return data

    monkeypatch.setattr(_runner, "encode_checkpoint", encode)
    return saved


# -- 1. a window split, stopped between the split and the cut ---------------------------------

ORG = "org-0"
DATA = SeedConfig(
    orgs=1, projects_per_org=2, issues_per_project=10, events_per_issue=(1, 4), days=20
)
END = FIXED_NOW - timedelta(hours=5)
START = END - timedelta(days=12)


SPLIT_STOPS = [
    ("jsonl", "rows_written", "cancel"),
    ("csv", "rows_written", "cancel"),
    ("csv", "seal_at", "cancel"),
    ("jsonl", "seal_at", "error"),
    ("jsonl", "commit", "error-once"),
    ("csv", "cut_back", "error"),
]


@pytest.mark.parametrize(("format", "where", "how"), SPLIT_STOPS)
async def test_a_split_stopped_before_its_rows_are_cut_resumes_writing_them_once(
    fake_sentry_factory: Factory,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    format: str,
    where: str,
    how: str,
) -> None:
    """A window of rows without ids is split; the run stops while its rows are counted,
    sealed, committed or cut: the resume writes each row once, as a run without a stop."""
    server = await fake_sentry_factory(scale=DATA)
    spec = ExportSpec(
        kind="discover",
        org=ORG,
        start=START,
        end=END,
        fields=NO_ID,
        window=timedelta(days=3),
        page_size=2,
        format=format,  # type: ignore[arg-type]
    )
    clean = tmp_path / "clean"
    async with client_of(server) as client:
        await export(client, spec, clean, concurrency=1)
    org = server.data.org(ORG)
    assert org is not None
    second = (START + timedelta(days=3)).strftime("%Y-%m-%dT%H")
    server.faults.add(
        Fault(
            "status",
            status=400,
            body={"detail": "Query timeout. Please try with a smaller date range."},
            path="/events/",
            query=f"(?=.*project={org.projects[0].id}&)(?=.*start={second})(?=.*cursor=0:4:0)",
            times=None,
        )
    )
    stop = _Stop(how)
    # Armed once the split window's rows are counted: the split has begun.
    counted = stop.wrap(_runner.rows_written, arms=True, stops=where == "rows_written")
    monkeypatch.setattr(_runner, "rows_written", counted)
    if where == "commit":
        monkeypatch.setattr(_datafiles, "sync_then_save", stop.wrap(_datafiles.sync_then_save))
    elif where != "rows_written":
        monkeypatch.setattr(_runner, where, stop.wrap(getattr(_runner, where)))
    out = tmp_path / "out"
    with anyio.fail_after(30):
        async with client_of(server) as client:
            with stop.scope:
                try:
                    await export(client, spec, out, concurrency=1)
                except OSError:
                    assert how != "cancel"
            assert stop.fired
            assert stop.scope.cancelled_caught == (how == "cancel")
            stop.end()
            manifest = await export(client, spec, out, concurrency=1, resume=True)
    rows = _row_lines(out, format)
    assert rows == _row_lines(clean, format), "every row once, as without the stop"
    assert manifest.items == sum(rows.values()) == sum(f.items for f in manifest.files)
    [parent] = [s for s in manifest.streams if s.split]
    assert parent.items == 0


# -- 2. totals started over without a deleted project, stopped on the way ---------------------


@pytest.mark.parametrize(
    ("named", "where", "how"),
    [
        (True, "close", "cancel"),
        (False, "close", "cancel"),
        (True, "seal_at", "error"),
        (False, "commit", "error-once"),
    ],
)
async def test_totals_stopped_while_starting_over_without_a_deleted_project_sum_one_set(
    fake_sentry_factory: Factory,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    named: bool,
    where: str,
    how: str,
) -> None:
    """``gone`` is deleted after the totals' first page; the run stops while the totals
    start over without it. The resume's totals are those over the projects left, and the
    manifest lists ``gone`` as skipped."""
    server, ids = await acme(fake_sentry_factory)
    spec = totals(projects=("alpha", "gone", "zeta") if named else None, page_size=2)
    stop = _Stop(how)

    def change() -> None:
        delete_project(server, "gone")
        stop.arm()

    if where == "close":
        monkeypatch.setattr(_datafiles, "sync_and_close", stop.wrap(_datafiles.sync_and_close))
    elif where == "commit":
        monkeypatch.setattr(_datafiles, "sync_then_save", stop.wrap(_datafiles.sync_then_save))
    else:
        monkeypatch.setattr(_runner, where, stop.wrap(getattr(_runner, where)))
    out, fresh = tmp_path / "out", tmp_path / "fresh"
    with anyio.fail_after(30):
        async with client_of(server) as client:
            with stop.scope:
                try:
                    await export(
                        client,
                        spec,
                        out,
                        progress=Meddling("discover", change, after=1),
                        now=server.now,
                    )
                except OSError:
                    assert how != "cancel"
            assert stop.fired
            stop.end()
            manifest = await export(client, spec, out, resume=True, now=server.now)
            await export(client, replace(spec, projects=("alpha", "zeta")), fresh, now=server.now)
    got = sorted(map(str, lines(out / "aggregates.jsonl")))
    assert got == sorted(map(str, lines(fresh / "aggregates.jsonl")))
    assert not any("gone" in row for row in got)
    assert skipped(manifest) == [(ids["gone"], "gone")]
    assert manifest.items == len(got)


# -- 3. an issue merged into another issue the export writes too ------------------------------


def _merge_as_sentry(server: FakeSentry, child: str, parent: str) -> None:
    """``child`` merged into ``parent``, its events moved into ``parent`` as Sentry's merge
    task moves them (by the fake's merge, or here where it does not)."""
    data = server.data
    records = [data.issues_by_id[child], data.issues_by_id[parent]]
    _merge(data, records)
    moved, kept = records
    if moved.events:
        for event in moved.events:
            event.issue = kept
        kept.events = sorted([*kept.events, *moved.events], key=lambda e: (-e.timestamp, e.event_id))
        moved.events = []
        data.invalidate_issue(kept)
        data._event_cache.clear()
        data._summary_cache.clear()


@pytest.mark.parametrize("stopped", [False, True])
@pytest.mark.usefixtures("in_step")
async def test_an_issue_merged_into_another_exported_issue_has_its_events_written_once(
    fake_sentry_factory: Factory, tmp_path: Path, stopped: bool
) -> None:
    """``first`` is merged into ``last`` after its first page: ``last``'s events are then
    its own and ``first``'s, of which ``first``'s stream wrote two. ``last``'s streams skip
    those, in the same run and (``stopped``) in a resumed one."""
    server, (first, _, last) = await issues_of_alpha(fake_sentry_factory)
    events = {
        event.event_id for issue in (first, last) for event in server.data.issues_by_id[issue].events
    }
    spec = ExportSpec(kind="events", org="acme", issues=(first, last), period="3d", page_size=2)
    out = tmp_path / "out"
    progress = Meddling(
        "events", lambda: _merge_as_sentry(server, first, last), after=1, stream=f"issue-{first}@"
    )
    async with client_of(server) as client:
        with anyio.fail_after(30):
            if stopped:
                # Past the first page of ``last``'s events, which holds what ``first`` wrote.
                fault = server.faults.add(
                    Fault("status", path=f"/issues/{last}/events/", query="cursor=", times=None)
                )
                with pytest.raises(ServerError):
                    await export(client, spec, out, concurrency=1, progress=progress, now=server.now)
                fault.times = fault.fired
                saved = msgspec.json.decode((out / CHECKPOINT_NAME).read_bytes())
                assert saved["skipped"][0]["merged_into"] == last
            manifest = await export(
                client, spec, out, concurrency=1, progress=progress, now=server.now, resume=stopped
            )
    written = Counter(row["id"] for path in out.glob("*.jsonl") for row in lines(path))
    assert set(written) == events
    assert max(written.values()) == 1, "no event written twice"
    assert manifest.items == len(events) == 10
    assert len(lines(out / f"issue-{first}.jsonl")) == 2
    assert skipped(manifest) == [(first, None)]
    assert manifest.skipped[0].merged_into == last
    assert f"issue {last}'s streams" in manifest.skipped[0].error
    assert sum(s.duplicates for s in manifest.streams if s.target == last) == 2


# -- 4. slugs and ids that hold the token -------------------------------------------------------


def _daily(server: FakeSentry, slug: str, days: int = 3) -> None:
    """One event of project ``slug`` in each of the last ``days`` daily windows."""
    issue = server.builder.organization("acme").project(slug).add_issue("Daily", events=0)
    for day in range(days):
        issue.add_event(timestamp=server.now - timedelta(days=day, minutes=30))


@pytest.mark.parametrize("after", ["free", "taken-empty", "taken"])
@pytest.mark.usefixtures("in_step")
async def test_a_project_renamed_to_the_token_is_skipped_and_its_slug_written_nowhere(
    fake_sentry_factory: Factory,
    tmp_path: Path,
    encoded: list[bytes],
    caplog: pytest.LogCaptureFixture,
    after: str,
) -> None:
    """A server that lists a project under a slug holding the token (an echo): the
    project is skipped as the plan skips one so named, wherever the new slug is met (a
    302 the client followed, an empty window confirmed, a page of another project's events
    at the old slug), and neither the checkpoint nor the manifest holds it."""
    server, ids = await acme(fake_sentry_factory, token=TOKEN)
    _daily(server, "gone")

    def rename() -> None:
        server.data.rename_project("acme", "gone", TOKEN)
        if after != "free":
            project = server.builder.organization("acme").add_project("gone")
            if after == "taken":
                project.add_issue("Impostor", events=2)

    spec = ExportSpec(kind="events", org="acme", period="3d", page_size=2)
    out = tmp_path / "out"
    caplog.set_level(logging.INFO, logger="sentry_async")
    async with client_of(server) as client:
        with anyio.fail_after(30):
            manifest = await export(
                client,
                spec,
                out,
                concurrency=1,
                progress=Meddling("events", rename, after=1, stream="gone@"),
                now=server.now,
            )
    assert skipped(manifest) == [(ids["gone"], "gone")]
    assert manifest.skipped[0].error.startswith("project names the auth token")
    assert manifest.renamed == {}
    assert encoded and not any(TOKEN.encode() in data for data in encoded)
    assert TOKEN.encode() not in (out / "manifest.json").read_bytes()
    assert TOKEN not in caplog.text
    rows = lines(out / "gone.jsonl")
    assert {row["projectID"] for row in rows} == {ids["gone"]}


async def test_another_projects_events_naming_the_token_stop_the_export_without_it(
    fake_sentry_factory: Factory, tmp_path: Path
) -> None:
    """A page of project ``alpha``'s events that says it holds the events of a project
    whose id is the token (an echo), while the list still names ``alpha`` so."""
    server, _ = await acme(fake_sentry_factory, token=TOKEN)
    event = {"id": "a" * 32, "eventID": "a" * 32, "projectID": TOKEN, "groupID": "1"}
    server.faults.add(
        Fault("status", status=200, body=[event], path="/projects/acme/alpha/events/")
    )
    spec = ExportSpec(kind="events", org="acme", projects=("alpha",), period="3d")
    async with client_of(server) as client:
        with anyio.fail_after(30), pytest.raises(PaginationError) as caught:
            await export(client, spec, tmp_path / "out", now=server.now)
    assert "holds events of project ********" in str(caught.value)
    assert TOKEN not in repr(caught.value)
    assert TOKEN.encode() not in pickle.dumps(caught.value)


async def test_the_users_own_token_given_as_a_project_is_not_repeated(
    fake_sentry_factory: Factory, tmp_path: Path
) -> None:
    server, _ = await acme(fake_sentry_factory, token=TOKEN)
    spec = ExportSpec(kind="events", org="acme", projects=("alpha", TOKEN), period="3d")
    async with SentryClient(server.token, base_url=server.url) as client:
        with anyio.fail_after(30), pytest.raises(UnknownProjectError) as caught:
            await export(client, spec, tmp_path / "out", now=server.now)
    assert "unknown project(s) in organization 'acme': ********" in str(caught.value)
    assert TOKEN.encode() not in pickle.dumps(caught.value)


@pytest.mark.parametrize(
    ("options", "shown"),
    [
        ({"issues": (TOKEN,)}, "issue ids are numeric (got ['********'])"),
        ({"issues": ("12", ORG_TOKEN)}, "issue is not a valid slug or id: '********'"),
        ({"projects": (ORG_TOKEN,)}, "project is not a valid slug or id: '********'"),
        ({"org": ORG_TOKEN}, "org is not a valid slug or id: '********'"),
        ({"fields": (TOKEN + " ",)}, "(got ['******** '])"),
        ({"period": TOKEN}, "(got '********')"),
    ],
)
def test_a_spec_refused_does_not_repeat_a_token_given_in_it(
    options: dict[str, Any], shown: str
) -> None:
    """No client to know the token by: values shaped like one are blanked out, as the
    command line's argument errors blank them."""
    options = {"kind": "discover" if "fields" in options else "events", "org": "acme", **options}
    with pytest.raises(ValueError) as caught:
        ExportSpec(**options)
    message = str(caught.value)
    assert shown in message
    assert "sntry" not in message and "sntry" not in repr(caught.value)
    assert caught.value.__context__ is None and caught.value.__cause__ is None
