"""Exactly once where the server's lists move under an export: full payloads of an issue
asked a few a page (a checkpoint saved at 100 a page resumes), Discover rows identified by
an ``id`` the exporter asks for itself, an issue merged into another exported issue, and
rows of a project's list moved back by an issue's deletion."""

from __future__ import annotations

import csv
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
    client_of,
    in_step,  # noqa: F401 (a fixture, named by usefixtures)
    issues_of_alpha,
    lines,
)
from test_export_resume_gaps import _merge_as_sentry

from sentry_async import ServerError
from sentry_async.export import CHECKPOINT_NAME, ExportSpec, Progress, _plan, export
from sentry_async.testing import Fault, SeedConfig

# -- 3. full payloads of an issue, a few a page -------------------------------------------------


async def test_an_issue_export_asks_few_full_payloads_a_page_and_resumes_a_checkpoint_of_100(
    fake_sentry_factory: Factory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Sentry sends an issue as many full payloads as asked: 100 large ones pass the body
    limit on every run. A checkpoint saved at 100 a page (before the size changed, same
    fingerprint) resumes at 10 a page with nothing lost or written twice."""
    server = await fake_sentry_factory(scale=SeedConfig(orgs=0))
    project = server.builder.add_organization("acme").add_project("alpha")
    issue = project.add_issue("Big", events=0)
    for n in range(125):
        issue.add_event(timestamp=server.now - timedelta(minutes=n + 1))
    events = {event.event_id for event in server.data.issues_by_id[issue.id].events}
    spec = ExportSpec(kind="events", org="acme", issues=(issue.id,), period="1d")
    out = tmp_path / "out"
    path = f"/organizations/acme/issues/{issue.id}/events/"
    async with client_of(server) as client:
        with anyio.fail_after(30):
            # The release before asked the spec's 100 a page; it stops after one.
            monkeypatch.setattr(_plan, "FULL_PAGE_MAX", 100, raising=False)
            fault = server.faults.add(Fault("status", path=path, query="cursor=", times=None))
            with pytest.raises(ServerError):
                await export(client, spec, out, now=server.now)
            server.faults.clear()
            monkeypatch.undo()
            saved = msgspec.json.decode((out / CHECKPOINT_NAME).read_bytes())
            assert [s["cursor"] for s in saved["streams"].values()] == ["0:100:0"]
            assert fault.fired
            server.requests.clear()
            manifest = await export(client, spec, out, now=server.now, resume=True)
    asked = [r for r in server.requests if r.path.endswith(path)]
    # Each page asked one row early (its first row the last one written), one row longer.
    assert {r.param("per_page") for r in asked} == {"11"}
    assert asked[0].param("cursor") == "0:99:0"
    written = Counter(row["id"] for row in lines(out / f"issue-{issue.id}.jsonl"))
    assert set(written) == events and max(written.values()) == 1
    assert manifest.items == 125


async def test_a_new_issue_export_asks_full_payloads_ten_a_page(
    fake_sentry_factory: Factory, tmp_path: Path
) -> None:
    server = await fake_sentry_factory(scale=SeedConfig(orgs=0))
    project = server.builder.add_organization("acme").add_project("alpha")
    issue = project.add_issue("Boom", events=12).id
    spec = ExportSpec(kind="events", org="acme", issues=(issue,), period="1d")
    async with client_of(server) as client:
        with anyio.fail_after(30):
            manifest = await export(client, spec, tmp_path / "out", now=server.now)
    asked = [r for r in server.requests if r.path.endswith(f"/issues/{issue}/events/")]
    assert [r.param("per_page") for r in asked] == ["10", "11"]
    assert manifest.items == 12


# -- 4. Discover rows asked without id ----------------------------------------------------------


class _Arrivals(Progress):
    """Three events arriving at the head of the list after each page written: the last rows
    of the page before are pushed onto the next page's head."""

    def __init__(self, add: Callable[[], None]) -> None:
        super().__init__("discover")
        self._add = add
        self.pages = 0

    def page(self, stream: str, **counts: Any) -> None:
        super().page(stream, **counts)
        self.pages += 1
        if self.pages <= 5:
            for _ in range(3):
                self._add()


@pytest.mark.parametrize("format", ["jsonl", "csv", "parquet"])
@pytest.mark.usefixtures("in_step")
async def test_discover_rows_asked_without_id_are_written_once_as_events_arrive(
    fake_sentry_factory: Factory, tmp_path: Path, format: str
) -> None:
    """Offset pages: events arriving at the head push written rows onto the next page. The
    exporter asks the id too (Sentry sends it unasked anyway) and drops the rows a page
    repeats."""
    if format == "parquet":
        pytest.importorskip("pyarrow")
    server = await fake_sentry_factory(scale=SeedConfig(orgs=0))
    project = server.builder.add_organization("acme").add_project("alpha")
    old = project.add_issue("Original", events=0)
    for n in range(30):
        old.add_event(timestamp=server.now - timedelta(minutes=n + 2))
    late = project.add_issue("Late", events=0)
    arrived = iter(range(60))

    def add() -> None:
        late.add_event(timestamp=server.now - timedelta(seconds=60 - next(arrived)))

    fields = ("title", "timestamp")
    spec = ExportSpec(
        kind="discover",
        org="acme",
        projects=("alpha",),
        fields=fields,
        period="1h",
        window="none",
        page_size=10,
        format=format,  # type: ignore[arg-type]
    )
    fingerprint = spec.fingerprint()
    out = tmp_path / "out"
    async with client_of(server) as client:
        with anyio.fail_after(30):
            await export(client, spec, out, progress=_Arrivals(add), now=server.now)
    rows = _rows(out, format)
    # The columns Sentry sends unasked (auto_fields): the rows are those written before.
    assert {tuple(row) for row in rows} == {(*fields, "id", "project.name")}
    originals = Counter(row["timestamp"] for row in rows if row["title"] == "Original")
    assert len(originals) == 30
    assert max(originals.values()) == 1, "no row written twice"
    asked = [r for r in server.requests if r.path.endswith("/organizations/acme/events/")]
    assert all(r.params("field") == ["title", "timestamp", "id"] for r in asked)
    assert all(r.params("sort") == ["-timestamp"] for r in asked), "sorted as before"
    assert spec.fingerprint() == fingerprint == replace(spec).fingerprint()


def _rows(out: Path, format: str) -> list[dict[str, Any]]:
    if format == "jsonl":
        return [row for path in out.glob("*.jsonl") for row in lines(path)]
    if format == "csv":
        rows: list[dict[str, Any]] = []
        for path in out.glob("*.csv"):
            with path.open(newline="", encoding="utf-8") as handle:
                rows += list(csv.DictReader(handle))
        return rows
    import pyarrow.parquet as pq

    return [row for path in out.glob("*.parquet") for row in pq.read_table(path).to_pylist()]


# -- 1. an issue merged into another exported issue, whose walk is over ------------------------


@pytest.mark.parametrize("stopped", [False, True])
@pytest.mark.usefixtures("in_step")
async def test_an_issue_merged_into_an_exported_issue_already_walked_is_walked_again(
    fake_sentry_factory: Factory, tmp_path: Path, stopped: bool
) -> None:
    """``last`` is walked to its end first; ``first`` is merged into it after its first
    page. Its other events are ``last``'s now: ``last``'s stream is walked again from its
    start, and (``stopped``) a run stopped before that walk is over resumes it."""
    server, (first, _, last) = await issues_of_alpha(fake_sentry_factory)
    events = {
        event.event_id for issue in (first, last) for event in server.data.issues_by_id[issue].events
    }
    faults: list[Fault] = []

    def merge() -> None:
        _merge_as_sentry(server, first, last)
        if stopped:
            faults.append(
                server.faults.add(Fault("status", path=f"/issues/{last}/events/", times=None))
            )

    spec = ExportSpec(kind="events", org="acme", issues=(last, first), period="3d", page_size=2)
    out = tmp_path / "out"
    progress = Meddling("events", merge, after=1, stream=f"issue-{first}@")
    async with client_of(server) as client:
        with anyio.fail_after(30):
            if stopped:
                with pytest.raises(ServerError):
                    await export(client, spec, out, concurrency=1, progress=progress, now=server.now)
                saved = msgspec.json.decode((out / CHECKPOINT_NAME).read_bytes())
                assert saved["skipped"][0]["merged_into"] == last
                streams = [s for s in saved["streams"].values() if s["target"] == last]
                assert any(s["walk_again"] or not s["done"] for s in streams), "a walk is due"
                server.faults.clear()
            manifest = await export(
                client, spec, out, concurrency=1, progress=progress, now=server.now, resume=stopped
            )
    written = Counter(row["id"] for path in out.glob("*.jsonl") for row in lines(path))
    assert set(written) == events, f"{len(events - set(written))} events lost"
    assert max(written.values()) == 1, "no event written twice"
    assert manifest.items == len(events) == 10
    assert manifest.skipped[0].merged_into == last
