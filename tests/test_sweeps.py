"""Sweeps over an organization's projects: which projects an export of every project
takes, projects deleted while it runs, one consistent projects list, and the fake's
projects list and project paths as Sentry answers them.

Pinned against Sentry's server code: ``OrganizationProjectsEndpoint.get``
(src/sentry/core/endpoints/organization_projects.py) lists every project of the
organization to a user token, each with ``hasAccess``; with ``all_projects=1`` it answers
them all at once, ordered by slug, with no ``Link`` (otherwise an ``OffsetPaginator`` over
``-is_bookmarked, slug``, whose pages shift when a project is created or deleted
mid-walk); ``query`` is read with ``tokenize_query``. ``ProjectPermission
.has_object_permission`` answers 403 on ``/projects/{org}/{project}/...`` for a project the
user cannot access, ``ProjectEndpoint.convert_args`` 404 for one no longer active (pending
deletion), and ``OrganizationEndpoint._get_projects_by_id`` 403 for a requested id that is
either.
"""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Callable
from dataclasses import replace
from datetime import timedelta
from functools import partial
from pathlib import Path
from typing import Any

import aiohttp
import anyio
import msgspec
import pytest
from _export_staging import Factory, Meddling, acme, delete_project
from _local_server import local_app
from aiohttp import web

from sentry_async import BadRequest, Forbidden, NotFound, RetryPolicy, SentryClient, ServerError
from sentry_async.cli import main
from sentry_async.export import MANIFEST_NAME, ExportSpec, export
from sentry_async.export._plan import resolve_projects
from sentry_async.testing import FakeSentry, Fault, SeedConfig

FAST = RetryPolicy(attempts=2, backoff_base=0.01, backoff_max=0.05)
TOKEN = "sntrys_sweeps-test-token-0cc175b9c0f1b6a831c399e269772661"
NO_ACCESS = {"detail": "You do not have permission to perform this action."}


def _client(server: FakeSentry) -> SentryClient:
    return server.client(retry=FAST)


def _ids(path: Path) -> list[str]:
    return [json.loads(line)["id"] for line in path.read_bytes().splitlines()]


def _touching(server: FakeSentry, project_id: str, slug: str) -> list[str]:
    """Requests that named the project, by slug in the path or by id in ``project=``."""
    return [
        f"{r.path} {r.query}"
        for r in server.requests
        if f"/{slug}/" in r.path or ("project", project_id) in r.query
    ]


async def _closed_org(factory: Factory, **options: Any) -> tuple[FakeSentry, str]:
    """A closed-membership org: ``alpha`` and ``beta`` on the user's teams, ``gamma``
    listed (``hasAccess: false``) but on none of them; returns gamma's id."""
    server = await factory(scale=SeedConfig(orgs=0), **options)
    org = server.builder.add_organization("closed")
    org.record.open_membership = False
    for slug in ("alpha", "beta"):
        org.add_project(slug).add_issue(f"Boom in {slug}", events=2)
    gamma = org.add_project("gamma", member=False)
    gamma.add_issue("Hidden", events=2)
    return server, gamma.id


# -- 1. an export of every project takes the projects the user can access -------------------


@pytest.mark.parametrize("kind", ["issues", "events", "discover"])
async def test_an_export_of_every_project_leaves_out_those_the_user_cannot_access(
    fake_sentry_factory: Factory, tmp_path: Path, kind: str
) -> None:
    server, gamma = await _closed_org(fake_sentry_factory)
    spec = ExportSpec(kind=kind, org="closed", period="5d")  # type: ignore[arg-type]
    async with _client(server) as client:
        with anyio.fail_after(30):
            manifest = await export(client, spec, tmp_path / "out", now=server.now)
            again = await export(client, spec, tmp_path / "out", resume=True, now=server.now)
    assert [p.slug for p in manifest.projects] == ["alpha", "beta"]
    assert [(s.id, s.slug) for s in manifest.skipped] == [(gamma, "gamma")]
    assert "access" in manifest.skipped[0].error
    assert manifest.items >= 2 * (1 if kind == "issues" else 2)
    assert again.skipped == manifest.skipped
    assert not _touching(server, gamma, "gamma")
    on_disk = msgspec.json.decode((tmp_path / "out" / MANIFEST_NAME).read_bytes())
    error = manifest.skipped[0].error
    assert on_disk["skipped"] == [{"id": gamma, "slug": "gamma", "error": error}]


async def test_a_project_named_without_access_is_refused_as_sentry_refuses_it(
    fake_sentry_factory: Factory, tmp_path: Path
) -> None:
    server, _ = await _closed_org(fake_sentry_factory)
    spec = ExportSpec(kind="events", org="closed", projects=("gamma",), period="2d")
    async with _client(server) as client:
        with anyio.fail_after(30), pytest.raises(Forbidden):
            await export(client, spec, tmp_path / "out", now=server.now)
    assert not (tmp_path / "out").exists()


async def test_the_cli_summary_says_projects_were_skipped(
    fake_sentry_factory: Factory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SENTRY_AUTH_TOKEN", raising=False)
    server, _ = await _closed_org(fake_sentry_factory, token=TOKEN)
    token = tmp_path / "token"
    token.write_text(TOKEN)
    out, err = io.StringIO(), io.StringIO()
    argv = ["export", "issues", "--org", "closed", "--period", "5d", "-o", str(tmp_path / "o"),
            "--base-url", server.url, "--token-file", str(token)]  # fmt: skip
    with anyio.fail_after(30):
        code = await anyio.to_thread.run_sync(partial(main, argv, stdout=out, stderr=err))
    assert code == 0, err.getvalue()
    assert "1 project skipped" in out.getvalue() and MANIFEST_NAME in out.getvalue()
    assert "gamma" in err.getvalue()


# -- 2. a project deleted (or no longer accessible) while the export runs -------------------


@pytest.mark.parametrize("concurrency", [1, 4])
@pytest.mark.parametrize("kind", ["issues", "events"])
async def test_a_project_deleted_during_the_export_is_recorded_and_the_rest_exported(
    fake_sentry_factory: Factory,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    kind: str,
    concurrency: int,
) -> None:
    server, ids = await acme(fake_sentry_factory)
    spec = ExportSpec(kind=kind, org="acme", period="10d")  # type: ignore[arg-type]
    progress = Meddling(kind, lambda: delete_project(server, "gone"))
    caplog.set_level(logging.WARNING, "sentry_async.export")
    out = tmp_path / "out"
    async with _client(server) as client:
        with anyio.fail_after(30):
            reference = await export(
                client, replace(spec, projects=("alpha", "zeta")), tmp_path / "ref", now=server.now
            )
            manifest = await export(
                client, spec, out, concurrency=concurrency, progress=progress, now=server.now
            )
    assert [(s.id, s.slug) for s in manifest.skipped] == [(ids["gone"], "gone")]
    assert "no longer" in manifest.skipped[0].error
    assert reference.items > 0 and manifest.items == reference.items
    for name in ("alpha.jsonl", "zeta.jsonl"):
        assert sorted(_ids(out / name)) == sorted(_ids(tmp_path / "ref" / name))
    # Asked once (per stream under way), then its other windows are done without a request.
    assert len(_touching(server, ids["gone"], "gone")) <= concurrency
    assert any("gone" in r.getMessage() and "no longer" in r.getMessage() for r in caplog.records)


async def test_a_resumed_export_gets_past_a_project_deleted_since(
    fake_sentry_factory: Factory, tmp_path: Path
) -> None:
    server, ids = await acme(fake_sentry_factory)
    spec = ExportSpec(kind="events", org="acme", period="10d")
    out = tmp_path / "out"
    fault = server.faults.add(Fault("status", path="/projects/acme/gone/", times=None))
    async with _client(server) as client:
        with anyio.fail_after(30), pytest.raises(ServerError):
            await export(client, spec, out, concurrency=1, now=server.now)
        fault.times = fault.fired
        delete_project(server, "gone")
        with anyio.fail_after(30):
            manifest = await export(client, spec, out, resume=True, concurrency=1, now=server.now)
    assert manifest.runs == 2
    assert [(s.id, s.slug) for s in manifest.skipped] == [(ids["gone"], "gone")]
    assert _ids(out / "zeta.jsonl")
    assert json.loads((out / MANIFEST_NAME).read_text())["skipped"][0]["slug"] == "gone"


async def test_a_named_project_deleted_during_the_export_is_recorded_too(
    fake_sentry_factory: Factory, tmp_path: Path
) -> None:
    server, ids = await acme(fake_sentry_factory)
    spec = ExportSpec(kind="discover", org="acme", projects=("gone", "zeta"), period="3d")
    async with _client(server) as client:
        with anyio.fail_after(30):
            manifest = await export(
                client,
                spec,
                tmp_path / "out",
                progress=Meddling("discover", lambda: delete_project(server, "gone")),
                now=server.now,
            )
    assert [(s.id, s.slug) for s in manifest.skipped] == [(ids["gone"], "gone")]
    assert [p.slug for p in manifest.projects] == ["gone", "zeta"]
    assert _ids(tmp_path / "out" / "zeta.jsonl")


async def test_a_project_that_lost_access_during_the_export_is_recorded(
    fake_sentry_factory: Factory, tmp_path: Path
) -> None:
    server, ids = await acme(fake_sentry_factory)
    org = server.data.org("acme")
    assert org is not None

    def close() -> None:
        assert org is not None
        org.open_membership = False
        next(p for p in org.projects if p.slug == "gone").member = False

    spec = ExportSpec(kind="events", org="acme", period="3d")
    async with _client(server) as client:
        with anyio.fail_after(30):
            manifest = await export(
                client, spec, tmp_path / "out", progress=Meddling("events", close), now=server.now
            )
    assert [(s.id, s.slug) for s in manifest.skipped] == [(ids["gone"], "gone")]
    assert "access" in manifest.skipped[0].error


@pytest.mark.parametrize("status", [404, 403])
async def test_a_project_still_listed_that_answers_an_error_stays_an_error(
    fake_sentry_factory: Factory, tmp_path: Path, status: int
) -> None:
    server, _ = await acme(fake_sentry_factory)
    server.faults.add(
        Fault("status", path="/projects/acme/gone/", status=status, body=NO_ACCESS, times=None)
    )
    spec = ExportSpec(kind="events", org="acme", period="3d")
    out = tmp_path / "out"
    async with _client(server) as client:
        for resume in (False, True):
            with anyio.fail_after(30), pytest.raises(NotFound if status == 404 else Forbidden):
                await export(client, spec, out, resume=resume, concurrency=1, now=server.now)
    assert not (out / MANIFEST_NAME).exists()


# -- 3. one consistent projects list --------------------------------------------------------


def _project_lists(server: FakeSentry, org: str) -> list[list[tuple[str, str]]]:
    return [r.query for r in server.requests if r.path == f"/api/0/organizations/{org}/projects/"]


async def test_the_plan_and_the_id_map_read_the_projects_list_in_one_answer(
    fake_sentry_factory: Factory,
) -> None:
    server = await fake_sentry_factory(scale=SeedConfig(orgs=0))
    org = server.builder.add_organization("big")
    for n in range(150):
        org.add_project(f"p{n:03d}")
    async with _client(server) as client:
        with anyio.fail_after(30):
            projects, skipped = await resolve_projects(client, ExportSpec(kind="issues", org="big"))
            assert await client.project_ids("big", ["p149"]) == [projects[-1].id]
    assert [p.slug for p in projects] == [f"p{n:03d}" for n in range(150)] and not skipped
    asked = _project_lists(server, "big")
    assert len(asked) == 2, asked
    assert all(("all_projects", "1") in query for query in asked), asked
    assert not any(key == "cursor" for query in asked for key, _ in query), asked


def _paging_server(
    rows: list[dict[str, Any]], change: Callable[[], None]
) -> tuple[web.Application, list[str]]:
    """A server without ``all_projects``: it pages the list by offset whatever is asked,
    and ``change`` runs once, after the first page (a project created or deleted)."""
    asked: list[str] = []
    changes = [change]

    async def projects(request: web.Request) -> web.Response:
        page = int(request.query.get("cursor", "100:0:0").split(":")[1])
        asked.append(request.query_string)
        body = rows[page * 100 : page * 100 + 100]
        more = "true" if len(rows) > page * 100 + 100 else "false"
        cursor = f"100:{page + 1}:0"
        target = request.url.with_query(cursor=cursor)
        link = f'<{target}>; rel="next"; results="{more}"; cursor="{cursor}"'
        if changes:
            changes.pop()()
        return web.json_response(body, headers={"Link": link})

    app = web.Application()
    app.router.add_get("/api/0/organizations/acme/projects/", projects)
    return app, asked


@pytest.mark.parametrize("change", ["created", "deleted"])
async def test_a_projects_list_paged_anyway_is_walked_whole_each_project_kept_once(
    change: str,
) -> None:
    rows = [{"id": str(1000 + n), "slug": f"p{n:03d}", "hasAccess": True} for n in range(250)]

    def mutate() -> None:
        if change == "created":
            rows.insert(0, {"id": "999", "slug": "a-new", "hasAccess": True})
        else:
            del rows[10]

    app, asked = _paging_server(rows, mutate)
    async with (
        local_app(app) as url,
        SentryClient(TOKEN, base_url=url, retry=FAST, proxy=None) as client,
    ):
        with anyio.fail_after(30):
            projects, _ = await resolve_projects(client, ExportSpec(kind="issues", org="acme"))
            assert await client.project_ids("acme", ["p249"]) == ["1249"]
    # Kept once each, though the second page repeats one (created); a project deleted
    # between pages still shifts one past the walk, which only the one answer prevents.
    slugs = [p.slug for p in projects]
    assert len(slugs) == len(set(slugs)) == len({p.id for p in projects})
    assert "p099" in slugs and "p249" in slugs
    # Each walk followed the Link to the end rather than keeping the first answer.
    assert len(asked) == 6 and all("all_projects=1" in query for query in asked), asked


async def test_all_projects_on_a_server_that_pages_it_lists_every_project() -> None:
    rows = [{"id": str(1000 + n), "slug": f"p{n:03d}", "hasAccess": True} for n in range(250)]
    app, asked = _paging_server(rows, lambda: None)
    async with (
        local_app(app) as url,
        SentryClient(TOKEN, base_url=url, retry=FAST, proxy=None) as client,
    ):
        with anyio.fail_after(30):
            listed = [p.slug async for p in client.projects.list("acme", all_projects=True)]
    assert listed == [row["slug"] for row in rows]
    assert len(asked) == 3


async def test_paginate_with_all_projects_on_a_server_that_pages_it_keeps_every_row() -> None:
    """``all_projects=1`` asks for every row: a server that pages the answer anyway is walked
    to its end through ``client.paginate`` too, not cut at its first page."""
    rows = [{"id": str(1000 + n), "slug": f"p{n:03d}", "hasAccess": True} for n in range(250)]
    app, asked = _paging_server(rows, lambda: None)
    async with (
        local_app(app) as url,
        SentryClient(TOKEN, base_url=url, retry=FAST, proxy=None) as client,
    ):
        with anyio.fail_after(30):
            listed = await client.paginate(
                "/organizations/{org}/projects/",
                path_params={"org": "acme"},
                params={"all_projects": 1},
            ).collect()
    assert [row["slug"] for row in listed] == [row["slug"] for row in rows]
    assert len(asked) == 3 and all("all_projects=1" in query for query in asked)


# -- 4. all_projects on the fake ------------------------------------------------------------


async def test_the_fake_answers_all_projects_at_once_by_slug(
    fake_sentry_factory: Factory,
) -> None:
    server = await fake_sentry_factory(scale=SeedConfig(orgs=0))
    org = server.builder.add_organization("big")
    for n in reversed(range(150)):
        org.add_project(f"p{n:03d}")  # p149, the first added, is the bookmarked one
    headers = {"Authorization": f"Bearer {server.token}"}
    base = f"{server.url}/api/0/organizations/big/projects/"
    async with aiohttp.ClientSession() as http:
        async with http.get(base, params={"all_projects": "1"}, headers=headers) as reply:
            assert reply.status == 200 and "Link" not in reply.headers
            slugs = [row["slug"] for row in await reply.json()]
        async with http.get(base, params={"all_projects": "0"}, headers=headers) as reply:
            assert reply.status == 200 and 'results="true"' in reply.headers["Link"]
            paged = [row["slug"] for row in await reply.json()]
    assert slugs == [f"p{n:03d}" for n in range(150)]
    assert paged[0] == "p149" and len(paged) == 100
    async with _client(server) as client:
        with anyio.fail_after(30):
            whole = [p.slug async for p in client.projects.list("big", all_projects=True)]
    assert whole == slugs


# -- 5. the fake refuses project paths the user cannot access -------------------------------


async def test_the_fake_refuses_the_project_paths_of_a_project_the_user_cannot_access(
    fake_sentry_factory: Factory,
) -> None:
    server, gamma = await _closed_org(fake_sentry_factory)
    headers = {"Authorization": f"Bearer {server.token}"}
    async with aiohttp.ClientSession() as http:
        for key in ("gamma", gamma):
            for path in ("", "events/", "events/0123456789abcdef0123456789abcdef/"):
                url = f"{server.url}/api/0/projects/closed/{key}/{path}"
                async with http.get(url, headers=headers) as reply:
                    assert reply.status == 403, url
                    assert await reply.json() == NO_ACCESS
            url = f"{server.url}/api/0/projects/closed/{key}/"
            async with http.put(url, json={"name": "Mine"}, headers=headers) as reply:
                assert reply.status == 403
            async with http.put(f"{url}issues/?id=1", json={}, headers=headers) as reply:
                assert reply.status == 403
        async with http.get(f"{server.url}/api/0/projects/closed/alpha/", headers=headers) as r:
            assert r.status == 200
    org = server.data.org("closed")
    assert org is not None
    org.open_membership = True  # global access: every project, member or not
    async with _client(server) as client:
        with anyio.fail_after(10):
            assert (await client.projects.get("closed", "gamma")).slug == "gamma"


# -- 6. the fake's projects-list query is Sentry's grammar ----------------------------------


async def test_the_fake_reads_the_projects_query_as_sentry_does(
    fake_sentry_factory: Factory,
) -> None:
    server = await fake_sentry_factory(scale=SeedConfig(orgs=0))
    org = server.builder.add_organization("acme")
    org.record.open_membership = False
    web_id = org.add_project("web", name="Storefront").id
    org.add_project("web-admin", name="Back Office")
    org.add_project("other", name="Other Things", member=False)

    async def slugs(query: str) -> list[str]:
        return sorted([p.slug async for p in client.projects.list("acme", query=query)])

    async with _client(server) as client:
        with anyio.fail_after(20):
            assert await slugs("slug:web") == ["web"]
            assert await slugs("slug:web slug:other") == ["other", "web"]
            assert await slugs(f"id:{web_id}") == ["web"]
            assert await slugs("is_member:1") == ["web", "web-admin"]
            assert await slugs("storefront") == ["web"]
            assert await slugs("WEB") == ["web", "web-admin"]
            assert await slugs("back office") == ["web-admin"]
            assert await slugs('"Back Office"') == ["web-admin"]
            assert await slugs("team:web-team") == ["web"]
            assert await slugs("!team:web-team") == ["other", "web-admin"]
            assert await slugs("web is_member:yes") == ["web", "web-admin"]
            assert await slugs("platform:python") == []
            with pytest.raises(BadRequest, match=r"All 'id' values must be integers\."):
                await slugs("id:web")


# -- 7. organizations in several regions ----------------------------------------------------


async def test_organizations_in_several_regions_are_listed_region_by_region(
    fake_sentry_factory: Factory,
) -> None:
    server = await fake_sentry_factory(scale=SeedConfig(orgs=0), regions=("us", "de"))
    for n, region in enumerate(("us", "de", "us", "de")):
        org = server.builder.add_organization(f"org-{n}", region=region)
        org.record.created = server.now - timedelta(days=n + 1)
    async with _client(server) as client:
        with anyio.fail_after(20):
            listed = [o.slug async for o in client.organizations.list()]
    assert listed == ["org-0", "org-2", "org-1", "org-3"]
    readme = (Path(__file__).parent.parent / "README.md").read_text()
    row = next(line for line in readme.splitlines() if "sentry.organizations.list(" in line)
    assert "newest first within each region" in row and "region by region" in row
