"""Project filters are ids on the wire; renamed projects answer a 302 naming the new slug.

Pinned against Sentry's server code: ``OrganizationEndpoint.get_projects`` does ``int()`` on
every ``project`` value (400 "Invalid project parameter. Values must be numbers."), and
``ProjectEndpoint.convert_args`` raises ``ProjectMoved`` for an old slug no project holds:
a 302 whose ``Location`` is the new path and whose body is ``{"slug", "detail": {"extra":
{"url", "slug"}}}`` (older servers add ``detail.code == "resource-moved"`` and a message).
The library reads it from the body, with or without a ``Location``
(tests/test_fidelity_renames.py).
"""

from __future__ import annotations

import json
import logging
from datetime import timedelta
from pathlib import Path
from typing import Any

import aiohttp
import anyio
import anyio.lowlevel
import pytest

from sentry_async import (
    BadRequest,
    Forbidden,
    ProjectMoved,
    RetryPolicy,
    SentryClient,
    ServerError,
)
from sentry_async.export import ExportSpec, export
from sentry_async.testing import FakeSentry, Fault, RecordedRequest

ORG = "org-0"
FAST = RetryPolicy(attempts=2, backoff_base=0.01, backoff_max=0.05)


def _projects(server: FakeSentry) -> list[tuple[str, str]]:
    org = server.data.org(ORG)
    assert org is not None
    return [(p.slug, p.id) for p in org.projects]


def _to(server: FakeSentry, suffix: str) -> list[RecordedRequest]:
    return [r for r in server.requests if r.path.endswith(suffix)]


# -- the fake holds the library to it -------------------------------------------------------


async def test_fake_refuses_a_slug_in_project(fake_sentry: FakeSentry) -> None:
    (slug, project_id), *_ = _projects(fake_sentry)
    headers = {"Authorization": f"Bearer {fake_sentry.token}"}
    async with aiohttp.ClientSession() as http:
        for path in (
            "issues/",
            "events/?field=id",
            "stats_v2/?groupBy=project&field=sum(quantity)&category=error&statsPeriod=14d",
        ):
            url = f"{fake_sentry.url}/api/0/organizations/{ORG}/{path}"
            url += ("&" if "?" in url else "?") + f"project={slug}"
            async with http.get(url, headers=headers) as reply:
                assert reply.status == 400, path
                assert await reply.json() == {
                    "detail": "Invalid project parameter. Values must be numbers."
                }
            async with http.get(url.replace(slug, project_id), headers=headers) as reply:
                assert reply.status == 200, path


# -- the library resolves slugs -------------------------------------------------------------


async def test_slugs_become_ids_on_every_org_endpoint(
    fake_sentry: FakeSentry, client: SentryClient
) -> None:
    (slug, project_id), (_, other_id), *_ = _projects(fake_sentry)
    with anyio.fail_after(15):
        issues = await client.issues.list(ORG, project=slug, query="", limit=5).collect()
        rows = await client.discover.query(ORG, fields=["id"], project=[slug], limit=5).collect()
        await client.stats.events(ORG, project=slug, period="1d")
        await client.stats.usage(
            ORG, group_by="outcome", category="error", project=[slug, int(other_id)]
        )
        await client.issues.bulk_update(ORG, [issues[0].id], project=slug, has_seen=True)
    assert issues and rows
    assert all(issue.project is not None and issue.project.slug == slug for issue in issues)
    for suffix in ("/issues/", "/events/", "/events-stats/"):
        sent = _to(fake_sentry, suffix)
        assert sent and all(r.params("project") == [project_id] for r in sent), suffix
    (usage,) = _to(fake_sentry, "/stats_v2/")
    assert usage.params("project") == [project_id, other_id]
    # One look-up of the organization's projects served every call.
    assert len(_to(fake_sentry, f"/organizations/{ORG}/projects/")) == 1


async def test_ids_go_out_as_they_are_without_a_lookup(
    fake_sentry: FakeSentry, client: SentryClient
) -> None:
    (_, first), (_, second), *_ = _projects(fake_sentry)
    with anyio.fail_after(10):
        await client.issues.list(ORG, project=[int(first), second], query="", limit=1).collect()
    assert not _to(fake_sentry, "/projects/")
    (request,) = _to(fake_sentry, "/issues/")
    assert request.params("project") == [first, second]


async def test_a_new_slug_refreshes_the_cache_once(
    fake_sentry: FakeSentry, client: SentryClient
) -> None:
    (slug, project_id), *_ = _projects(fake_sentry)
    with anyio.fail_after(10):
        await client.discover.query(ORG, fields=["id"], project=slug, limit=1).collect()
        fake_sentry.data.rename_project(ORG, slug, "renamed-app")
        await client.discover.query(ORG, fields=["id"], project="renamed-app", limit=1).collect()
        assert len(_to(fake_sentry, "/projects/")) == 2
        with pytest.raises(ValueError, match="no-such-app"):
            await client.discover.query(ORG, fields=["id"], project="no-such-app").collect()
    assert len(_to(fake_sentry, "/projects/")) == 3, "one refresh per miss, then an error"
    assert _to(fake_sentry, "/events/")[-1].params("project") == [project_id]


async def test_callers_at_the_same_time_share_one_look_up(
    fake_sentry: FakeSentry, client: SentryClient
) -> None:
    slugs = [slug for slug, _ in _projects(fake_sentry)]
    with anyio.fail_after(10):
        async with anyio.create_task_group() as group:
            for n in range(12):
                group.start_soon(client.project_ids, ORG, slugs[n % len(slugs)])
        shared = len(_to(fake_sentry, f"/organizations/{ORG}/projects/"))
        await client.load_project_ids(ORG)
    one_walk = len(_to(fake_sentry, f"/organizations/{ORG}/projects/")) - shared
    assert shared == one_walk, f"{shared} requests for the projects list, {one_walk} a walk"


async def test_a_shared_look_up_that_fails_is_each_callers_error_and_not_kept(
    fake_sentry: FakeSentry, client: SentryClient
) -> None:
    (slug, project_id), *_ = _projects(fake_sentry)
    fake_sentry.faults.add(Fault("status", path=f"/organizations/{ORG}/projects/", status=403))
    errors: list[BaseException] = []

    async def ask() -> None:
        try:
            await client.project_ids(ORG, slug)
        except Forbidden as exc:
            errors.append(exc)

    with anyio.fail_after(10):
        async with anyio.create_task_group() as group:
            for _ in range(5):
                group.start_soon(ask)
        assert len(errors) == 5, "every caller waiting for the walk gets its error"
        assert len(_to(fake_sentry, f"/organizations/{ORG}/projects/")) == 1
        assert await client.project_ids(ORG, slug) == [project_id], "the failure is not kept"


async def test_callers_waiting_for_a_cancelled_look_up_walk_again(
    fake_sentry: FakeSentry, client: SentryClient
) -> None:
    """The walk's caller was cancelled: no error for those who waited, one of them walks."""
    (slug, project_id), *_ = _projects(fake_sentry)
    slow = fake_sentry.faults.add(Fault("slow", path=f"/organizations/{ORG}/projects/", delay=30))
    leader = anyio.CancelScope()
    found: list[list[str] | None] = []

    async def lead() -> None:
        with leader:
            await client.project_ids(ORG, slug)

    async def wait() -> None:
        found.append(await client.project_ids(ORG, slug))

    with anyio.fail_after(10):
        async with anyio.create_task_group() as group:
            group.start_soon(lead)
            while not slow.fired:  # the server holds the first caller's walk
                await anyio.lowlevel.checkpoint()
            group.start_soon(wait)
            await anyio.wait_all_tasks_blocked()
            leader.cancel()
    assert found == [[project_id]]


async def _run(call: Any, client: SentryClient) -> None:
    result = call(client)
    if hasattr(result, "__await__"):
        await result


@pytest.mark.parametrize(
    "call",
    [
        lambda c: c.issues.list(ORG, project=[]),
        lambda c: c.issues.list(ORG, environment=[]),
        lambda c: c.discover.query(ORG, fields=["id"], project=[]),
        lambda c: c.stats.events(ORG, project=[]),
        lambda c: c.stats.usage(ORG, group_by="category", project=[]),
        lambda c: c.issues.bulk_update(ORG, [1], project=[], status="resolved"),
    ],
)
async def test_empty_project_or_environment_list_is_refused(
    fake_sentry: FakeSentry, client: SentryClient, call: Any
) -> None:
    """``[]`` would go out as no filter at all, which Sentry reads as every project."""
    with anyio.fail_after(5), pytest.raises(ValueError, match="empty list"):
        await _run(call, client)
    assert fake_sentry.requests == []


# -- renamed projects -----------------------------------------------------------------------


async def test_reads_of_a_renamed_project_follow_the_new_slug_once_a_call(
    fake_sentry: FakeSentry, client: SentryClient, caplog: pytest.LogCaptureFixture
) -> None:
    (old, _), *_ = _projects(fake_sentry)
    fake_sentry.data.rename_project(ORG, old, "backend-v2")
    expected = fake_sentry.data.event_ids(ORG, "backend-v2", include_transactions=False)[:30]
    with anyio.fail_after(10), caplog.at_level(logging.WARNING, logger="sentry_async"):
        project = await client.projects.get(ORG, old)
        events = await client.events.for_project(ORG, old, page_size=10, limit=30).collect()
    assert project.slug == "backend-v2"
    assert [e.event_id for e in events] == expected
    sent = [(r.path, r.status) for r in fake_sentry.requests]
    # Each call asks the old slug first (another project may hold it by now); a walk
    # keeps the new slug for its later pages: one 302, not one per page.
    assert sent == [
        (f"/api/0/projects/{ORG}/{old}/", 302),
        (f"/api/0/projects/{ORG}/backend-v2/", 200),
        (f"/api/0/projects/{ORG}/{old}/events/", 302),
    ] + [(f"/api/0/projects/{ORG}/backend-v2/events/", 200)] * 3
    assert sum("renamed to backend-v2" in r.getMessage() for r in caplog.records) == 1
    assert client.renamed_projects == {(ORG, old): "backend-v2"}


async def test_the_moved_answer_is_a_typed_error_not_a_decode_error(
    fake_sentry: FakeSentry, client: SentryClient
) -> None:
    """Where the library cannot follow (not a project path), the 302 is a ``ProjectMoved``
    carrying the status, the new slug and URL: on current and on older servers."""
    url = "/api/0/projects/org-0/web-v2/?a=1"
    current = {"slug": "web-v2", "detail": {"extra": {"url": url, "slug": "web-v2"}}}
    older = {
        "slug": "web-v2",
        "detail": {
            "code": "resource-moved",
            "message": "Resource has been moved",
            "extra": {"url": url, "slug": "web-v2"},
        },
    }
    for body, new_url in ((current, url), (older, url), ({"slug": "web-v3"}, None)):
        fake_sentry.faults.add(Fault("status", status=302, body=body, path=r"/organizations/"))
        with anyio.fail_after(10), pytest.raises(ProjectMoved) as caught:
            await client.organizations.get(ORG)
        assert caught.value.status == 302
        assert caught.value.new_slug == body["slug"]
        assert caught.value.new_url == new_url


async def test_a_write_to_a_renamed_project_is_not_resent(
    fake_sentry: FakeSentry, client: SentryClient
) -> None:
    (old, _), *_ = _projects(fake_sentry)
    fake_sentry.data.rename_project(ORG, old, "api-v2")
    with anyio.fail_after(10), pytest.raises(ProjectMoved) as caught:
        await client.send(
            "PUT",
            "/projects/{org}/{project}/",
            path_params={"org": ORG, "project": old},
            json={"name": "x"},
        )
    assert caught.value.new_slug == "api-v2"
    assert len(fake_sentry.requests) == 1


async def test_a_moved_answer_to_another_host_is_not_followed(
    fake_sentry: FakeSentry, client: SentryClient
) -> None:
    (old, _), *_ = _projects(fake_sentry)
    body = {
        "slug": "elsewhere",
        "detail": {
            "code": "resource-moved",
            "message": "Resource has been moved",
            "extra": {"url": "https://evil.example/api/0/projects/org-0/x/", "slug": "elsewhere"},
        },
    }
    fake_sentry.faults.add(Fault("status", status=302, body=body, path=r"/projects/"))
    with anyio.fail_after(10), pytest.raises(ProjectMoved):
        await client.projects.get(ORG, old)
    assert len(fake_sentry.requests) == 1


async def test_a_slug_in_project_is_a_bad_request_from_the_fake(fake_sentry: FakeSentry) -> None:
    """The raw entry point sends what it is given: the fake answers as Sentry does."""
    (slug, _), *_ = _projects(fake_sentry)
    async with SentryClient(fake_sentry.token, base_url=fake_sentry.url, retry=FAST) as sc:
        with anyio.fail_after(10), pytest.raises(BadRequest, match="Values must be numbers"):
            await sc.request(
                "GET",
                "/organizations/{org}/issues/",
                path_params={"org": ORG},
                params={"project": slug},
            )


async def test_an_export_resumed_after_a_rename_records_the_new_slug(
    fake_sentry: FakeSentry, tmp_path: Path
) -> None:
    (old, _), *_ = _projects(fake_sentry)
    end = fake_sentry.data.now - timedelta(hours=1)
    spec = ExportSpec(
        kind="events",
        org=ORG,
        projects=(old,),
        start=end - timedelta(days=6),
        end=end,
        window=timedelta(days=2),
    )
    expected = fake_sentry.data.event_ids(
        ORG,
        old,
        start=spec.start.timestamp(),
        end=end.timestamp(),  # type: ignore[union-attr]
    )
    # The first run stops part-way (the server fails past the retry budget)...
    fake_sentry.faults.add(Fault("status", status=503, path=r"/events/$", after=1, times=2))
    async with SentryClient(fake_sentry.token, base_url=fake_sentry.url, retry=FAST) as sc:
        with anyio.fail_after(20), pytest.raises(ServerError):
            await export(sc, spec, tmp_path, concurrency=1)
    # ...the project is renamed, and the resumed run follows it.
    fake_sentry.data.rename_project(ORG, old, "events-v2")
    async with SentryClient(fake_sentry.token, base_url=fake_sentry.url, retry=FAST) as sc:
        with anyio.fail_after(20):
            manifest = await export(sc, spec, tmp_path, resume=True)
    assert manifest.renamed == {old: "events-v2"}
    assert manifest.items == len(expected)
    written = json.loads((tmp_path / "manifest.json").read_text())
    assert written["renamed"] == {old: "events-v2"}
