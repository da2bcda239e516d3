"""An issue's deletion ending while a project export runs must not lose other issues' events.

Pinned against Sentry's server code: a project's events (``project_events.py``) and
Discover (``organization_events.py``) page with ``GenericOffsetPaginator``, whose cursor
``0:<offset>:0`` is a row offset; Snuba drops a deleted issue's events from every query at
``end_delete_groups`` (``src/sentry/deletions/tasks/groups.py``), which the fake plays
with ``server.data.finish_deletions()``. The rows after them then move back, and a walk
going on at its next offset skips as many rows as the deleted issue had before it.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import anyio
import pytest
from _export_staging import (
    Factory,
    client_of,
    in_step,  # noqa: F401 (a fixture, named by usefixtures)
)

from sentry_async import ServerError
from sentry_async._protocol.cursors import row_before
from sentry_async.export import ExportSpec, Progress, export
from sentry_async.testing import FakeSentry, Fault, SeedConfig

EVENTS = 30
"""Events of each issue, interleaved: A's and B's alternate, newest first."""


async def _server(factory: Factory) -> tuple[FakeSentry, list[str], list[str]]:
    """``backend`` with issues A and B, :data:`EVENTS` each, interleaved two minutes apart;
    returns A's and B's event ids."""
    server = await factory(scale=SeedConfig(orgs=0))
    backend = server.builder.add_organization("acme").add_project("backend")
    a = backend.add_issue("A: kept", events=0)
    b = backend.add_issue("B: deleted", events=0)
    for n in range(EVENTS):
        a.add_event(timestamp=server.now - timedelta(minutes=2 * n + 1))
        b.add_event(timestamp=server.now - timedelta(minutes=2 * n + 2))
    return server, list(a.event_ids), list(b.event_ids)


def _written(path: Path, key: str) -> list[str]:
    return [json.loads(line)[key] for line in path.read_text().splitlines()]


SPECS: dict[str, dict[str, Any]] = {
    "events": {"kind": "events", "page_size": 10},
    "summaries": {"kind": "events", "full": False, "page_size": 7},
    "discover": {"kind": "discover", "fields": ("id", "title", "timestamp"), "page_size": 10},
}


@pytest.mark.parametrize("case", sorted(SPECS))
async def test_an_issue_deleted_during_the_export_loses_no_other_issues_event(
    fake_sentry_factory: Factory, tmp_path: Path, caplog: pytest.LogCaptureFixture, case: str
) -> None:
    server, kept, deleted = await _server(fake_sentry_factory)
    path = "/events/$" if case == "discover" else "/projects/acme/backend/events/$"
    # The second page waits in the server while issue B's deletion ends.
    server.faults.add(Fault("slow", path=path, query="cursor=", delay=0.3, times=1))
    spec = ExportSpec(org="acme", projects=("backend",), period="1d", window=None, **SPECS[case])
    out = tmp_path / "out"
    issue = server.data.issues_by_id
    b = next(record for record in issue.values() if record.title == "B: deleted")

    def asked_second_page() -> bool:
        return any(
            r.path.endswith(path[:-1]) and any(key == "cursor" for key, _ in r.query)
            for r in server.requests
        )

    async with client_of(server) as client, anyio.create_task_group() as tg:
        done = anyio.Event()

        async def run() -> None:
            await export(client, spec, out, now=server.now)
            done.set()

        tg.start_soon(run)
        with anyio.fail_after(20):
            for _ in range(4000):  # bounded: the export asks for its second page first
                if asked_second_page():
                    break
                await anyio.sleep(0.005)
            assert asked_second_page()
            b.deleted = True
            assert server.data.finish_deletions() == [b.id]
            await done.wait()
    got = _written(out / "backend.jsonl", "id")
    assert len(got) == len(set(got))
    assert set(kept) <= set(got), f"lost {len(set(kept) - set(got))} of A's events"
    assert set(got) <= set(kept) | set(deleted)
    # The page held while B's events left began with a row never read.
    assert "reading the window again from its start" in caplog.text


async def test_a_resume_after_an_issue_deleted_meanwhile_loses_no_other_issues_event(
    fake_sentry_factory: Factory, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Stopped after its first page, resumed once B's deletion ended: the row before the
    resumed page is none the stream wrote, and the window is read again from its start."""
    server, kept, deleted = await _server(fake_sentry_factory)
    path = "/projects/acme/backend/events/$"
    stop = server.faults.add(Fault("status", status=503, path=path, query="cursor=", times=None))
    spec = ExportSpec(
        kind="events", org="acme", projects=("backend",), period="1d", window=None, page_size=10
    )
    out = tmp_path / "out"
    b = next(r for r in server.data.issues_by_id.values() if r.title == "B: deleted")
    async with client_of(server) as client:
        with anyio.fail_after(20):
            with pytest.raises(ServerError):
                await export(client, spec, out, now=server.now)
            assert len(_written(out / "backend.jsonl", "id")) == 10
            stop.times = stop.fired
            b.deleted = True
            server.data.finish_deletions()
            manifest = await export(client, spec, out, now=server.now, resume=True)
    got = _written(out / "backend.jsonl", "id")
    assert len(got) == len(set(got)) == manifest.items
    assert set(kept) <= set(got) <= set(kept) | set(deleted)
    assert "reading the window again from its start" in caplog.text


class _Arrivals(Progress):
    """Two events arriving at the head of the list after each of the first pages written."""

    def __init__(self, add: Callable[[], None]) -> None:
        super().__init__("events")
        self._add = add
        self.pages = 0

    def page(self, stream: str, **counts: Any) -> None:
        super().page(stream, **counts)
        self.pages += 1
        if self.pages <= 4:
            self._add()
            self._add()


@pytest.mark.usefixtures("in_step")
async def test_rows_pushed_forward_by_arrivals_do_not_start_the_window_over(
    fake_sentry_factory: Factory, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Arrivals push written rows onto the next page: the row before it is one the stream
    wrote, the walk goes on (dropping the repeats), and nothing is read again."""
    server = await fake_sentry_factory(scale=SeedConfig(orgs=0))
    backend = server.builder.add_organization("acme").add_project("backend")
    old = backend.add_issue("Old", events=0)
    for n in range(EVENTS):
        old.add_event(timestamp=server.now - timedelta(minutes=n + 2))
    late = backend.add_issue("Late", events=0)
    arrived = iter(range(8))

    def add() -> None:
        late.add_event(timestamp=server.now - timedelta(seconds=60 - next(arrived)))

    spec = ExportSpec(
        kind="events", org="acme", projects=("backend",), period="1h", window=None, page_size=10
    )
    out = tmp_path / "out"
    async with client_of(server) as client:
        with anyio.fail_after(20):
            manifest = await export(client, spec, out, now=server.now, progress=_Arrivals(add))
    got = _written(out / "backend.jsonl", "id")
    assert len(got) == len(set(got)) == manifest.items
    assert set(old.event_ids) <= set(got)
    assert "reading the window again" not in caplog.text


@pytest.mark.parametrize(
    ("cursor", "before"),
    [
        ("0:10:0", "0:9:0"),
        ("0:1:0", "0:0:0"),
        ("3:250:0", "3:249:0"),
        (None, None),
        ("0:0:0", None),
        ("0:10:1", None),
        ("1700000000000:0:0", None),
        ("0:-1:0", None),
        ("0:1e3:0", None),
        ("0:" + "9" * 19 + ":0", None),
        ("abc", None),
    ],
)
def test_the_cursor_one_row_before_is_made_only_from_an_offset_cursor(
    cursor: str | None, before: str | None
) -> None:
    assert row_before(cursor) == before
