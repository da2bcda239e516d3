"""Renamed projects as Sentry resolves them: the live project first, the redirect after.

``ProjectEndpoint.convert_args`` looks the slug up among the organization's projects and
only then among its ``ProjectRedirect`` rows, so an old slug may name another project
(Sentry frees it at once) or the same one again (renamed back): every call asks the slug
it was given, and a rename a read followed lasts for that call (a walk's pages). It never
applies a write to a renamed project: the old slug answers ``ProjectMoved``, a 302 whose
``Location`` is the new path (``handle_exception_with_details``) and whose body is
``{"slug", "detail": {"extra": {"url", "slug"}}}``.
"""

from __future__ import annotations

import contextlib
import json
import logging
from pathlib import Path
from typing import Any

import anyio
import pytest
from _local_server import local_app
from aiohttp import web

from sentry_async import Forbidden, ProjectMoved, SentryClient
from sentry_async.testing import FakeSentry
from sentry_async.testing._records import ProjectRecord

ORG = "org-0"
PROJECT = "/projects/{org}/{project}/"


def _two(server: FakeSentry) -> tuple[ProjectRecord, ProjectRecord]:
    org = server.data.org(ORG)
    assert org is not None
    return org.projects[0], org.projects[1]


def _sent(server: FakeSentry) -> list[str]:
    return [f"{r.method} {r.path}" for r in server.requests]


async def _put(client: SentryClient, slug: str, **body: Any) -> Any:
    return await client.request("PUT", PROJECT, path_params={"org": ORG, "project": slug}, json=body)


# -- writes go to the slug given ------------------------------------------------------------


async def test_a_write_to_a_reused_slug_changes_the_project_that_holds_it_now(
    fake_sentry: FakeSentry, client: SentryClient
) -> None:
    a, b = _two(fake_sentry)
    old = a.slug
    fake_sentry.data.rename_project(ORG, old, "a-renamed")
    with anyio.fail_after(10):
        assert (await client.projects.get(ORG, old)).id == a.id  # follows the rename
        # Elsewhere, project B takes the freed slug (Sentry allows it at once).
        fake_sentry.data.rename_project(ORG, b.slug, old)
        changed = await _put(client, old, name="meant-for-b")
    assert changed["id"] == b.id
    assert (a.name, b.name) == ("Project 0.0", "meant-for-b")
    assert _sent(fake_sentry)[-1] == f"PUT /api/0/projects/{ORG}/{old}/"
    # The old slug answered as a project: the rename is forgotten, reads go there too.
    assert client.renamed_projects == {}
    with anyio.fail_after(10):
        assert (await client.projects.get(ORG, old)).id == b.id
    assert _sent(fake_sentry)[-1] == f"GET /api/0/projects/{ORG}/{old}/"


async def test_a_write_reaches_a_project_renamed_back(
    fake_sentry: FakeSentry, client: SentryClient
) -> None:
    a, _ = _two(fake_sentry)
    slug = a.slug
    fake_sentry.data.rename_project(ORG, slug, "tmp-name")
    with anyio.fail_after(10):
        await client.projects.get(ORG, slug)
        fake_sentry.data.rename_project(ORG, "tmp-name", slug)
        changed = await _put(client, slug, name="renamed back")
    assert changed["slug"] == slug and a.name == "renamed back"
    assert _sent(fake_sentry)[-1] == f"PUT /api/0/projects/{ORG}/{slug}/"
    assert client.renamed_projects == {}


async def test_a_read_of_a_project_renamed_back_forgets_the_rename(
    fake_sentry: FakeSentry, client: SentryClient
) -> None:
    a, _ = _two(fake_sentry)
    slug = a.slug
    fake_sentry.data.rename_project(ORG, slug, "tmp-name")
    with anyio.fail_after(10):
        await client.projects.get(ORG, slug)
        fake_sentry.data.rename_project(ORG, "tmp-name", slug)
        fake_sentry.requests.clear()
        assert (await client.projects.get(ORG, slug)).slug == slug
        assert (await client.projects.get(ORG, slug)).slug == slug
    assert client.renamed_projects == {}
    assert _sent(fake_sentry) == [f"GET /api/0/projects/{ORG}/{slug}/"] * 2


async def test_a_write_to_an_old_slug_raises_even_after_a_read_followed_it(
    fake_sentry: FakeSentry, client: SentryClient
) -> None:
    a, _ = _two(fake_sentry)
    old = a.slug
    fake_sentry.data.rename_project(ORG, old, "a-renamed")
    with anyio.fail_after(10):
        await client.projects.get(ORG, old)
        with pytest.raises(ProjectMoved) as caught:
            await _put(client, old, name="not applied")
    assert caught.value.new_slug == "a-renamed"
    assert a.name == "Project 0.0"
    assert _sent(fake_sentry)[-1] == f"PUT /api/0/projects/{ORG}/{old}/"
    # Still renamed, as the write's 302 says.
    assert client.renamed_projects == {(ORG, old): "a-renamed"}


async def test_a_slug_taken_over_after_a_rename_resolves_to_its_new_holder(
    fake_sentry: FakeSentry, client: SentryClient
) -> None:
    """``project=`` ids: the slug -> id cache is read again once a rename was seen."""
    a, b = _two(fake_sentry)
    old = a.slug
    with anyio.fail_after(10):
        assert await client.project_ids(ORG, old) == [a.id]
        fake_sentry.data.rename_project(ORG, old, "a-renamed")
        await client.projects.get(ORG, old)
        fake_sentry.data.rename_project(ORG, b.slug, old)
        assert await client.project_ids(ORG, old) == [b.id]
        assert await client.project_ids(ORG, "a-renamed") == [a.id]


# -- a rename learnt by a read lasts for that call ------------------------------------------


async def test_a_read_after_a_rename_asks_the_slug_given_first(
    fake_sentry: FakeSentry, client: SentryClient
) -> None:
    """Another project takes the freed slug: the next read is answered by it, so a read
    then a write of that slug see and change one project, not two."""
    a, b = _two(fake_sentry)
    old = a.slug
    fake_sentry.data.rename_project(ORG, old, "a-renamed")
    with anyio.fail_after(10):
        assert (await client.projects.get(ORG, old)).id == a.id
        assert client.renamed_projects == {(ORG, old): "a-renamed"}
        fake_sentry.data.rename_project(ORG, b.slug, old)
        fake_sentry.requests.clear()
        read = await client.projects.get(ORG, old)
        written = await _put(client, old, name="read then written")
    assert read.id == written["id"] == b.id
    assert (a.name, b.name) == ("Project 0.0", "read then written")
    assert _sent(fake_sentry) == [
        f"GET /api/0/projects/{ORG}/{old}/",
        f"PUT /api/0/projects/{ORG}/{old}/",
    ]
    assert client.renamed_projects == {}


async def test_each_read_asks_the_old_slug_and_the_rename_is_logged_once(
    fake_sentry: FakeSentry, client: SentryClient, caplog: pytest.LogCaptureFixture
) -> None:
    a, _ = _two(fake_sentry)
    old = a.slug
    fake_sentry.data.rename_project(ORG, old, "a-renamed")
    with anyio.fail_after(10), caplog.at_level(logging.WARNING, logger="sentry_async"):
        for _ in range(3):
            assert (await client.projects.get(ORG, old)).id == a.id
    assert _sent(fake_sentry) == [
        f"GET /api/0/projects/{ORG}/{old}/",
        f"GET /api/0/projects/{ORG}/a-renamed/",
    ] * 3
    warnings = [r.getMessage() for r in caplog.records if "renamed to a-renamed" in r.getMessage()]
    assert len(warnings) == 1 and "use the new slug" in warnings[0]
    assert client.renamed_projects == {(ORG, old): "a-renamed"}


@pytest.mark.parametrize("prefetch", [0, 2])
async def test_a_walk_follows_a_rename_once_and_the_next_walk_asks_again(
    fake_sentry: FakeSentry, client: SentryClient, prefetch: int
) -> None:
    """Every page of one walk rebuilds the old path: the walk keeps what its first page
    learnt (one 302, not one per page), and the next walk, of the same paginator too,
    asks the slug given first."""
    a, b = _two(fake_sentry)
    old = a.slug
    a_events = fake_sentry.data.event_ids(ORG, old, include_transactions=False)[:30]
    b_events = fake_sentry.data.event_ids(ORG, b.slug, include_transactions=False)[:30]
    assert len(a_events) == len(b_events) == 30 and a_events != b_events
    fake_sentry.data.rename_project(ORG, old, "a-renamed")
    events = client.events.for_project(ORG, old, page_size=10, limit=30).read_ahead(prefetch)
    with anyio.fail_after(10):
        assert [e.event_id for e in await events.collect()] == a_events
        first = [(r.path, r.status) for r in fake_sentry.requests]
        fake_sentry.data.rename_project(ORG, b.slug, old)
        fake_sentry.requests.clear()
        assert [e.event_id for e in await events.collect()] == b_events
        again = [(r.path, r.status) for r in fake_sentry.requests]
    moved = f"/api/0/projects/{ORG}/{old}/events/"
    renamed = f"/api/0/projects/{ORG}/a-renamed/events/"
    assert first == [(moved, 302)] + [(renamed, 200)] * 3
    assert again == [(moved, 200)] * 3
    assert client.renamed_projects == {}


async def test_a_walk_left_early_leaves_nothing_for_the_next_one(
    fake_sentry: FakeSentry, client: SentryClient
) -> None:
    """A walk stopped after its first page kept the renamed project for its next cursor;
    the next walk's cursors are the same strings, but it follows its own first answer."""
    a, b = _two(fake_sentry)
    old = a.slug
    b_events = fake_sentry.data.event_ids(ORG, b.slug, include_transactions=False)[:30]
    fake_sentry.data.rename_project(ORG, old, "a-renamed")
    events = client.events.for_project(ORG, old, page_size=10, limit=30).read_ahead(0)
    with anyio.fail_after(10):
        async with contextlib.aclosing(events.pages()) as pages:
            async for _ in pages:
                break
        fake_sentry.data.rename_project(ORG, b.slug, old)
        assert [e.event_id for e in await events.collect()] == b_events


async def test_a_walk_stays_on_the_project_it_followed(
    fake_sentry: FakeSentry, client: SentryClient
) -> None:
    """Another project taking the old slug mid-walk does not switch the walk to it."""
    a, b = _two(fake_sentry)
    old = a.slug
    a_events = fake_sentry.data.event_ids(ORG, old, include_transactions=False)[:30]
    fake_sentry.data.rename_project(ORG, old, "a-renamed")
    seen: list[str] = []
    events = client.events.for_project(ORG, old, page_size=10, limit=30).read_ahead(0)
    with anyio.fail_after(10):
        async for page in events.pages():
            seen.extend(e.event_id for e in page.items)
            if len(seen) == 10:
                fake_sentry.data.rename_project(ORG, b.slug, old)
    assert seen == a_events


async def test_a_download_asks_the_old_slug_each_time(tmp_path: Path) -> None:
    seen: list[str] = []
    projects = {"new": {"id": "42", "slug": "new", "name": "New"}}
    async with (
        local_app(_sentry_like(seen, projects)) as url,
        SentryClient("sntryu_" + "a" * 64, base_url=url) as client,
    ):
        with anyio.fail_after(10):
            for name in ("f", "g"):
                await client.projects.download_dsym("acme", "old", id=7, to=tmp_path / name)
    assert seen == [
        "GET /api/0/projects/acme/old/files/dsyms/?id=7",
        "GET /api/0/projects/acme/new/files/dsyms/?id=7",
    ] * 2


# -- Sentry's 302 carries a Location --------------------------------------------------------


def _sentry_like(seen: list[str], projects: dict[str, dict[str, str]]) -> web.Application:
    """Answers as ``ProjectEndpoint`` does: ``old`` was renamed ``new``."""
    renames = {"old": "new"}

    async def project(request: web.Request) -> web.Response:
        seen.append(f"{request.method} {request.path_qs}")
        org, slug = request.match_info["org"], request.match_info["project"]
        if slug in projects:
            if request.match_info["rest"] == "files/dsyms/":
                return web.Response(body=b"dsym " + request.query["id"].encode())
            if request.method == "PUT":
                projects[slug].update(await request.json())
            return web.json_response(projects[slug])
        if slug in renames:
            new = renames[slug]
            url = request.raw_path.replace(f"projects/{org}/{slug}/", f"projects/{org}/{new}/")
            body = {"slug": new, "detail": {"extra": {"url": url, "slug": new}}}
            return web.json_response(body, status=302, headers={"Location": url})
        return web.json_response({"detail": "The requested resource does not exist"}, status=404)

    app = web.Application()
    app.router.add_route("*", "/api/0/projects/{org}/{project}/{rest:.*}", project)
    return app


async def test_sentrys_moved_answer_with_a_location_is_a_rename(
    caplog: pytest.LogCaptureFixture,
) -> None:
    seen: list[str] = []
    projects = {"new": {"id": "42", "slug": "new", "name": "New"}}
    path_params = {"org": "acme", "project": "old"}
    async with (
        local_app(_sentry_like(seen, projects)) as url,
        SentryClient("sntryu_" + "a" * 64, base_url=url) as client,
    ):
        with anyio.fail_after(10), caplog.at_level(logging.WARNING, logger="sentry_async"):
            first = await client.request("GET", PROJECT, path_params=path_params)
            again = await client.request("GET", PROJECT, path_params=path_params)
            with pytest.raises(ProjectMoved) as caught:
                await client.request("PUT", PROJECT, path_params=path_params, json={"name": "x"})
        renamed = client.renamed_projects
    assert first["slug"] == again["slug"] == "new"
    assert renamed == {("acme", "old"): "new"}
    assert sum("renamed to new" in r.getMessage() for r in caplog.records) == 1
    assert (caught.value.status, caught.value.new_slug) == (302, "new")
    assert caught.value.new_url == "/api/0/projects/acme/new/"
    assert projects["new"]["name"] == "New"
    assert seen == [
        "GET /api/0/projects/acme/old/",
        "GET /api/0/projects/acme/new/",
        "GET /api/0/projects/acme/old/",
        "GET /api/0/projects/acme/new/",
        "PUT /api/0/projects/acme/old/",
    ]


async def test_a_download_follows_a_renamed_project(tmp_path: Path) -> None:
    seen: list[str] = []
    projects = {"new": {"id": "42", "slug": "new", "name": "New"}}
    async with (
        local_app(_sentry_like(seen, projects)) as url,
        SentryClient("sntryu_" + "a" * 64, base_url=url) as client,
    ):
        with anyio.fail_after(10):
            size = await client.projects.download_dsym("acme", "old", id=7, to=tmp_path / "f")
        renamed = client.renamed_projects
    assert (tmp_path / "f").read_bytes() == b"dsym 7" and size == 6
    assert renamed == {("acme", "old"): "new"}
    assert seen == [
        "GET /api/0/projects/acme/old/files/dsyms/?id=7",
        "GET /api/0/projects/acme/new/files/dsyms/?id=7",
    ]


async def test_a_moved_answer_to_another_host_is_not_followed_through_its_location() -> None:
    """The body's URL and the ``Location`` both point elsewhere: neither is followed."""
    seen: list[str] = []
    elsewhere = "https://evil.example/api/0/projects/acme/x/"

    async def moved(request: web.Request) -> web.Response:
        seen.append(f"{request.method} {request.path}")
        body = {"slug": "x", "detail": {"extra": {"url": elsewhere, "slug": "x"}}}
        return web.json_response(body, status=302, headers={"Location": elsewhere})

    app = web.Application()
    app.router.add_get("/api/0/projects/{org}/{project}/", moved)
    async with local_app(app) as url, SentryClient("sntryu_" + "a" * 64, base_url=url) as client:
        with anyio.fail_after(10), pytest.raises(ProjectMoved) as caught:
            await client.projects.get("acme", "old")
        assert client.renamed_projects == {}
    assert caught.value.new_url == elsewhere
    assert seen == ["GET /api/0/projects/acme/old/"]


async def test_the_moved_message_names_both_slugs_and_never_the_token() -> None:
    token = "sntryu_" + "b" * 64

    async def moved(request: web.Request) -> web.Response:
        # The second project's answer echoes the token as its new slug.
        slug = "new" if request.match_info["project"] == "old" else token
        url = f"/api/0/projects/acme/{slug}/"
        body = {"slug": slug, "detail": {"extra": {"url": url, "slug": slug}}}
        return web.json_response(body, status=302, headers={"Location": url})

    app = web.Application()
    app.router.add_put("/api/0/projects/{org}/{project}/", moved)
    async with local_app(app) as url, SentryClient(token, base_url=url) as client:
        caught = []
        for slug in ("old", "echo"):
            with anyio.fail_after(10), pytest.raises(ProjectMoved) as raised:
                await _put(client, slug, name="x")
            caught.append(raised.value)
    plain, echoed = caught
    assert str(plain) == (
        f"302 from PUT {url}/api/0/projects/{ORG}/old/: project 'old' was renamed to 'new'"
    )
    message = f"{echoed} {echoed!r}"
    assert "project 'echo' was renamed to '********'" in message
    assert token not in message and token[len("sntryu_") :] not in message


async def test_a_read_renamed_to_a_slug_holding_the_token_is_not_followed() -> None:
    """A 302 naming the token as the new slug is blanked out (``********``): followed, the
    read would ask a path that names no project and report a 404 rather than the move."""
    token = "sntryu_" + "c" * 64
    seen: list[str] = []

    async def moved(request: web.Request) -> web.Response:
        seen.append(request.path)
        url = f"/api/0/projects/acme/{token}/"
        body = {"slug": token, "detail": {"extra": {"url": url, "slug": token}}}
        return web.json_response(body, status=302, headers={"Location": url})

    app = web.Application()
    app.router.add_get("/api/0/projects/{org}/{project}/", moved)
    async with local_app(app) as url, SentryClient(token, base_url=url) as client:
        with anyio.fail_after(10), pytest.raises(ProjectMoved) as caught:
            await client.projects.get("acme", "old")
        assert client.renamed_projects == {}
    assert "renamed to '********'" in str(caught.value)
    assert seen == ["/api/0/projects/acme/old/"]


# -- the fake answers as Sentry does --------------------------------------------------------


@pytest.mark.parametrize("profile", ["current", "older"])
async def test_the_fake_answers_a_renamed_project_as_sentry_does(
    fake_sentry_factory: Any, profile: str
) -> None:
    server: FakeSentry = await fake_sentry_factory(profile=profile)
    a, _ = _two(server)
    old = a.slug
    server.data.rename_project(ORG, old, "a-renamed")
    new_url = f"/api/0/projects/{ORG}/a-renamed/events/?full=1&per_page=5"
    detail: dict[str, Any] = {"extra": {"url": new_url, "slug": "a-renamed"}}
    if profile == "older":
        detail = {"code": "resource-moved", "message": "Resource has been moved", **detail}
    async with SentryClient(server.token, base_url=server.url) as client:
        with anyio.fail_after(10):
            response = await client._get_transport().session.get(
                f"{server.url}/api/0/projects/{ORG}/{old}/events/?full=1&per_page=5",
                headers={"Authorization": f"Bearer {server.token}"},
                allow_redirects=False,
            )
            body = await response.read()
    assert response.status == 302
    assert response.headers["Location"] == new_url
    assert json.loads(body) == {"slug": "a-renamed", "detail": detail}


async def test_the_fake_hides_a_rename_from_a_user_without_access(
    fake_sentry: FakeSentry, client: SentryClient
) -> None:
    """``convert_args`` checks the object permissions of the project the redirect names
    before it reveals the rename (Sentry's ``test_non_org_rename_403``)."""
    a, _ = _two(fake_sentry)
    old = a.slug
    a.member = False
    a.org.open_membership = False
    fake_sentry.data.rename_project(ORG, old, "hidden")
    with anyio.fail_after(10), pytest.raises(Forbidden):
        await client.projects.get(ORG, old)
    assert [r.status for r in fake_sentry.requests] == [403]
    assert client.renamed_projects == {}
