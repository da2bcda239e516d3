"""The scripts in examples/ run as written against the fake server, as subprocesses.

Each gets the base URL, organization and token the way a user would pass them (arguments
or environment), and its output is checked against what the server holds.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from pathlib import Path

import anyio
import pytest

from sentry_async.testing import FakeSentry, SeedConfig

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
ORG = "org-0"
DATA = SeedConfig(orgs=1, projects_per_org=3, issues_per_project=12, events_per_issue=(1, 4))


async def run_example(
    name: str, *args: str, env: dict[str, str] | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess[bytes]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("SENTRY_")}
    environment.update(env or {})
    with anyio.fail_after(60):
        return await anyio.run_process(
            [sys.executable, str(EXAMPLES / name), *args],
            env=environment,
            cwd=cwd,
            check=False,
        )


def lines(result: subprocess.CompletedProcess[bytes]) -> list[str]:
    assert result.returncode == 0, result.stderr.decode()
    return result.stdout.decode().splitlines()


@pytest.fixture
async def server() -> AsyncIterator[FakeSentry]:
    async with FakeSentry(scale=DATA, token="sntrys_example-token") as fake:
        yield fake


async def test_issue_lookup_service_from_arguments(server: FakeSentry) -> None:
    org = server.data.org(ORG)
    assert org is not None
    issue = org.projects[1].issues[3]
    event_id = org.projects[2].events[0].event_id
    result = await run_example(
        "issue_lookup_service.py",
        *("--base-url", server.url, "--org", ORG, "--token", server.token),
        *("--issue", issue.id, "--issue", "999999999", "--event", event_id),
    )
    out = lines(result)
    assert len(out) == 3
    assert out[0].startswith(f"issue {issue.short_id} [{issue.status}] ")
    assert f"latest {issue.events[0].event_id} at " in out[0]
    assert out[1] == "issue 999999999: not found"
    assert out[2].startswith(f"event {event_id}: project {org.projects[2].slug}, issue ")
    assert server.token not in result.stdout.decode() + result.stderr.decode()


async def test_issue_lookup_service_from_the_environment(server: FakeSentry) -> None:
    env = {"SENTRY_URL": server.url, "SENTRY_ORG": ORG, "SENTRY_AUTH_TOKEN": server.token}
    out = lines(await run_example("issue_lookup_service.py", "--newest", "4", env=env))
    assert len(out) == 4
    assert all(line.startswith("issue ") and "latest " in line for line in out)


async def test_issue_lookup_service_without_a_token_fails_clearly(server: FakeSentry) -> None:
    result = await run_example(
        "issue_lookup_service.py", "--base-url", server.url, "--org", ORG, "--newest", "1"
    )
    assert result.returncode == 1
    assert result.stderr.decode().startswith("error: ")


async def test_bulk_export_writes_every_event_once_and_resumes(
    server: FakeSentry, tmp_path: Path
) -> None:
    env = {"SENTRY_URL": server.url, "SENTRY_ORG": ORG, "SENTRY_AUTH_TOKEN": server.token}
    project = server.data.project_slugs(ORG)[0]
    args = ("--project", project, "--period", "30d", "-o", "out")
    out = lines(await run_example("bulk_export.py", *args, env=env, cwd=tmp_path))
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_bytes())
    written = [
        json.loads(line)["id"]
        for line in (tmp_path / "out" / f"{project}.jsonl").read_text().splitlines()
    ]
    # The exporter pins the range to the clock when it starts: expect what the server holds
    # in the range the manifest says was exported, and check that range is the 30 days.
    start, end = (datetime.fromisoformat(manifest[k].replace("Z", "+00:00")) for k in ("start", "end"))
    assert end - start == timedelta(days=30)
    expected = server.data.event_ids(ORG, project, start=start.timestamp(), end=end.timestamp())
    assert expected, "the data should have events in the range"
    assert sorted(written) == sorted(expected)
    assert out[0].startswith(f"{len(expected)} events, ")
    assert manifest["items"] == len(expected)
    # A second run with --resume on a finished export is harmless and writes nothing new.
    again = await run_example("bulk_export.py", *args, "--resume", env=env, cwd=tmp_path)
    assert again.returncode == 0, again.stderr.decode()
    assert len((tmp_path / "out" / f"{project}.jsonl").read_text().splitlines()) == len(written)


async def test_multi_project_fetch_counts_every_project(server: FakeSentry) -> None:
    result = await run_example(
        "multi_project_fetch.py",
        *("--base-url", server.url, "--org", ORG, "--token", server.token),
        *("--period", "14d", "--concurrency", "2"),
    )
    now = server.data.now_ts
    expected = []
    for slug in server.data.project_slugs(ORG):
        ids = server.data.event_ids(
            ORG, slug, start=now - timedelta(days=14).total_seconds(), include_transactions=False
        )
        assert ids, "the data should have recent events in every project"
        expected.append(f"{slug}: {len(ids)} events in ")
    out = lines(result)
    assert len(out) == len(expected)
    for line, prefix in zip(out, expected, strict=True):
        assert line.startswith(prefix), (line, prefix)


async def test_multi_project_fetch_reports_a_failed_project(server: FakeSentry) -> None:
    env = {"SENTRY_URL": server.url, "SENTRY_ORG": ORG, "SENTRY_AUTH_TOKEN": server.token}
    slug = server.data.project_slugs(ORG)[0]
    result = await run_example(
        "multi_project_fetch.py", "--project", slug, "--project", "no-such-project", env=env
    )
    assert result.returncode == 1
    out = result.stdout.decode().splitlines()
    assert out[0].startswith(f"{slug}: ")
    assert out[1].startswith("no-such-project: failed: ")
