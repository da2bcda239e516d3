"""``projects.update_symbol_source`` keeps the source's id.

The app below answers as Sentry's ProjectSymbolSourcesEndpoint
(src/sentry/api/endpoints/project_symbol_sources.py): PUT finds the source by ``?id=``,
gives the body a new ``uuid4`` when it has no ``id``, fills redacted secrets from the stored
source of the body's id (``backfill_source``), checks the ids (``validate_sources``) and
stores the body as it is. A body without ``id`` therefore renamed the source to a random id.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from _local_server import local_app
from aiohttp import web

from codegen import generate as gen
from sentry_async import NotFound, RetryPolicy, SentryClient
from sentry_async.api.projects import ProjectsAPI

ROOT = Path(__file__).resolve().parent.parent

HIDDEN = {"hidden-secret": True}
SOURCE: dict[str, Any] = {
    "id": "my-http-source", "type": "http", "name": "old", "url": "https://sym.example/",
    "layout": {"type": "native", "casing": "default"}, "username": "u", "password": "s3cret",
}


def redacted(source: dict[str, Any]) -> dict[str, Any]:
    """redact_source_secrets: an http source's password is never sent back."""
    return {**source, "password": HIDDEN} if "password" in source else source


class Sources:
    """One project's symbol sources, with the endpoint's GET, PUT and DELETE."""

    def __init__(self) -> None:
        self.stored: list[dict[str, Any]] = [dict(SOURCE)]
        self.bodies: list[dict[str, Any]] = []

    async def handle(self, request: web.Request) -> web.Response:
        sid = request.query.get("id")
        if request.method == "GET":
            return web.json_response([redacted(s) for s in self.stored])
        if request.method == "DELETE":
            kept = [s for s in self.stored if s["id"] != sid]
            if sid is None or len(kept) == len(self.stored):
                return web.json_response({"error": f"Unknown source id: {sid}"}, status=404)
            self.stored = kept
            return web.Response(status=204)
        source = await request.json()
        self.bodies.append(dict(source))
        if sid is None:
            return web.json_response({"error": "Missing source id"}, status=404)
        if "id" not in source:
            source["id"] = str(uuid.uuid4())
        by_id = {s["id"]: s for s in self.stored}
        if source.get("password") == HIDDEN:
            if "password" not in by_id.get(source["id"], {}):
                return web.Response(status=400)  # the secret is looked up by the body's id
            source["password"] = by_id[source["id"]]["password"]
        index = next((i for i, s in enumerate(self.stored) if s["id"] == sid), None)
        if index is None:
            return web.json_response({"error": f"Unknown source id: {sid}"}, status=404)
        updated = [*self.stored[:index], source, *self.stored[index + 1:]]
        ids = [s["id"] for s in updated]
        if not all(isinstance(i, str) and i for i in ids) or len(set(ids)) != len(ids):
            return web.json_response({"error": "Duplicate source id"}, status=400)
        self.stored = updated
        return web.json_response(redacted(source))


@pytest.fixture
async def sentry() -> AsyncIterator[tuple[Sources, SentryClient]]:
    sources = Sources()
    app = web.Application()
    app.router.add_route("*", "/api/0/projects/acme/web/symbol-sources/", sources.handle)
    async with local_app(app) as url, SentryClient(
        "tok", base_url=url, retry=RetryPolicy(attempts=1), timeout=10
    ) as client:
        yield sources, client


UPDATE: dict[str, Any] = {"type": "http", "name": "renamed", "url": "https://sym.example/",
                          "layout": {"type": "native", "casing": "default"}}


@pytest.mark.parametrize(("extra", "password"), [
    ({}, None),
    # The secret as a listing sends it: Sentry takes the stored one, found by the body's id.
    ({"username": "u", "password": HIDDEN}, "s3cret"),
])
async def test_an_update_keeps_the_source_s_id(
    sentry: tuple[Sources, SentryClient], extra: dict[str, Any], password: str | None
) -> None:
    sources, client = sentry
    out = await client.projects.update_symbol_source(
        "acme", "web", id="my-http-source", **UPDATE, **extra
    )
    assert sources.bodies[-1]["id"] == "my-http-source"
    assert out["id"] == "my-http-source" and out["name"] == "renamed"
    assert [s["id"] for s in await client.projects.list_symbol_sources("acme", "web")] == [
        "my-http-source"
    ]
    assert sources.stored[0].get("password") == password
    await client.projects.delete_symbol_source("acme", "web", id="my-http-source")
    assert sources.stored == []


async def test_id_underscore_renames_the_source(sentry: tuple[Sources, SentryClient]) -> None:
    """The body's ``id`` is the id Sentry stores the source under: ``id_`` renames it."""
    sources, client = sentry
    out = await client.projects.update_symbol_source(
        "acme", "web", id="my-http-source", id_="new-id", **UPDATE
    )
    assert sources.bodies[-1]["id"] == "new-id" and out["id"] == "new-id"
    with pytest.raises(NotFound):
        await client.projects.delete_symbol_source("acme", "web", id="my-http-source")
    assert [s["id"] for s in sources.stored] == ["new-id"]



def test_the_docstring_says_which_id_the_source_keeps() -> None:
    doc = " ".join((ProjectsAPI.update_symbol_source.__doc__ or "").split())
    assert "left out, the body repeats ``id``" in doc and "``id_`` renames the source" in doc


SPEC_PATH = "/api/0/projects/{organization_id_or_slug}/{project_id_or_slug}/symbol-sources/"


def spec(query_required: bool = True, body_required: tuple[str, ...] = ()) -> dict[str, Any]:
    """The PUT as the spec describes it: ``id`` in the query and in the body."""
    params = [{"in": "path", "name": name, "schema": {"type": "string"}, "required": True}
              for name in ("organization_id_or_slug", "project_id_or_slug")]
    params.append({"in": "query", "name": "id", "schema": {"type": "string"},
                   "required": query_required})
    body = {"type": "object", "required": ["name", *body_required],
            "properties": {"id": {"type": "string"}, "name": {"type": "string"}}}
    return {"paths": {SPEC_PATH: {"put": {
        "operationId": "updateProjectSymbolSource", "tags": ["Projects"], "parameters": params,
        "responses": {"200": {"content": {"application/json": {"schema": {}}}}},
        "requestBody": {"content": {"application/json": {"schema": body}}, "required": True},
    }}}}


def test_the_generator_repeats_only_a_required_query_in_an_optional_body_field() -> None:
    """The table entry is checked against the spec: a query parameter that may be left out
    has nothing to repeat, and a required body field is always the caller's."""
    files = gen.generate(spec(), ROOT / "no-such-dir", strict=False)
    module = files[Path("sentry_async/api/projects.py")]
    assert '"id": id if id_ is UNSET else id_' in module
    for broken in (spec(query_required=False), spec(body_required=("id",))):
        with pytest.raises(SystemExit, match="BODY_REPEATS_QUERY"):
            gen.generate(broken, ROOT / "no-such-dir", strict=False)
