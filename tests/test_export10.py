"""Exactly once where the server's lists move under an export: full payloads of an issue
asked a few a page (a checkpoint saved at 100 a page resumes), Discover rows identified by
an ``id`` the exporter asks for itself, an issue merged into another exported issue, and
rows of a project's list moved back by an issue's deletion."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta
from pathlib import Path

import anyio
import msgspec
import pytest
from _export_staging import Factory, client_of, lines

from sentry_async import ServerError
from sentry_async.export import CHECKPOINT_NAME, ExportSpec, _plan, export
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
    assert {r.param("per_page") for r in asked} == {"10"}
    assert asked[0].param("cursor") == "0:100:0"
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
    assert [r.param("per_page") for r in asked] == ["10", "10"]
    assert manifest.items == 12
