"""The bulk detector and workflow toggles read every changed object, not the first page.

``OrganizationDetectorIndexEndpoint.put`` and ``OrganizationWorkflowIndexEndpoint.put``
change every object the filter matches, then answer with ``self.paginate(...,
OffsetPaginator, order_by=["id"])``: 100 objects and a ``Link`` to the rest. The app here
answers the PUT and the listing GET of the same path the way those endpoints do.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import anyio
import pytest
from _local_server import local_app
from aiohttp import web

from sentry_async import RetryPolicy, SentryClient


@dataclass
class Objects:
    """One kind of object (detectors or workflows) and the requests made for them."""

    noun: str
    items: dict[int, dict[str, Any]] = field(default_factory=dict)
    seen: list[tuple[str, list[tuple[str, str]]]] = field(default_factory=list)


def matching(objects: Objects, request: web.Request) -> list[dict[str, Any]]:
    ids = {int(i) for i in request.query.getall("id", [])}
    found = [o for i, o in sorted(objects.items.items()) if not ids or i in ids]
    query = (request.query.get("query") or "").strip()
    if query.startswith("name:"):
        found = [o for o in found if query[len("name:"):] in o["name"]]
    return found


def page(objects: Objects, request: web.Request, found: list[dict[str, Any]]) -> web.Response:
    """``self.paginate`` with an OffsetPaginator: ``per_page`` (100 by default) from the
    cursor's page, a Link as ``build_cursor_link`` writes it."""
    per_page = int(request.query.get("per_page", "100"))
    value, number, _ = (request.query.get("cursor") or f"{per_page}:0:0").split(":")
    size = int(value) or per_page
    start = int(number) * size
    rest = [(k, v) for k, v in request.query.items() if k != "cursor"]
    base = request.url.with_query(rest)
    sep = "&" if rest else "?"

    def link(rel: str, cursor: str, results: bool) -> str:
        return (f'<{base}{sep}cursor={cursor}>; rel="{rel}"; '
                f'results="{str(results).lower()}"; cursor="{cursor}"')

    more = start + size < len(found)
    header = ", ".join([
        link("previous", f"{size}:{int(number) - 1}:1", int(number) > 0),
        link("next", f"{size}:{int(number) + 1}:0", more),
    ])
    return web.json_response(found[start:start + size], headers={"Link": header})


def app_for(objects: Objects) -> web.Application:
    async def put(request: web.Request) -> web.Response:
        objects.seen.append(("PUT", list(request.query.items())))
        if not (request.query.getall("id", []) or request.query.get("query")
                or request.query.getall("project", [])):
            return web.json_response({"detail": "At least one of ..."}, status=400)
        enabled = (await request.json())["enabled"]
        found = matching(objects, request)
        if not found:
            return web.json_response({"detail": f"No {objects.noun} found."})
        for item in found:
            item["enabled"] = enabled
        return page(objects, request, found)

    async def get(request: web.Request) -> web.Response:
        objects.seen.append(("GET", list(request.query.items())))
        return page(objects, request, matching(objects, request))

    app = web.Application()
    path = f"/api/0/organizations/acme/{objects.noun}/"
    app.router.add_put(path, put)
    app.router.add_get(path, get)
    return app


@pytest.fixture(params=["detectors", "workflows"])
def objects(request: pytest.FixtureRequest) -> Objects:
    noun = request.param
    items = {i: {"id": str(i), "name": f"cpu-{i}", "enabled": True} for i in range(1, 251)}
    items[251] = {"id": "251", "name": "memory", "enabled": True}
    return Objects(noun, items)


@pytest.fixture
async def client(objects: Objects) -> AsyncIterator[SentryClient]:
    async with local_app(app_for(objects)) as url, SentryClient(
        "tok", base_url=url, retry=RetryPolicy(attempts=1)
    ) as c:
        yield c


def toggle(client: SentryClient, noun: str, **kwargs: Any) -> Any:
    method = {"detectors": client.monitors.update_detectors,
              "workflows": client.monitors.update_workflows}[noun]
    return method("acme", **kwargs)


async def test_every_changed_object_comes_back(objects: Objects, client: SentryClient) -> None:
    with anyio.fail_after(10):
        changed = await toggle(client, objects.noun, query="name:cpu", enabled=False)
    assert isinstance(changed, list)
    assert [item.id for item in changed] == [str(i) for i in range(1, 251)]
    assert all(item.enabled is False for item in changed)
    assert [o["enabled"] for o in objects.items.values()] == [False] * 250 + [True]


async def test_the_change_is_sent_once_and_the_rest_is_read(
    objects: Objects, client: SentryClient
) -> None:
    """A PUT per page would change every match again; the pages after the first are read
    from the listing with the same filters."""
    with anyio.fail_after(10):
        await toggle(client, objects.noun, query="name:cpu", enabled=False)
    methods = [method for method, _ in objects.seen]
    assert methods == ["PUT", "GET", "GET"]
    for _, query in objects.seen:
        assert ("query", "name:cpu") in query
    cursors = [dict(query).get("cursor") for _, query in objects.seen]
    assert cursors == [None, "100:1:0", "100:2:0"]


async def test_one_page_is_one_request(objects: Objects, client: SentryClient) -> None:
    with anyio.fail_after(10):
        changed = await toggle(client, objects.noun, id=[3, 251], enabled=False)
        nothing = await toggle(client, objects.noun, query="name:no-such", enabled=False)
    assert [item.id for item in changed] == ["3", "251"]
    assert nothing.detail == f"No {objects.noun} found."
    assert [method for method, _ in objects.seen] == ["PUT", "PUT"]
