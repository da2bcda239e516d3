"""Every operation in the spec, called through its method against one local server.

The operations, their parameters and a response instance built from each one's schema come
from the metadata the generator commits next to the generated code. Each test checks the
request (method, percent-encoded path, the spec's query and body names) and that the answer
decodes into the method's typed model with every field landing under its wire name. List
operations are walked across two pages linked the way Sentry links them.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from importlib import resources
from typing import Any
from urllib.parse import quote

import msgspec
import pytest
from aiohttp import web

import sentry_async.api
from sentry_async import RetryPolicy, SentryClient
from sentry_async._protocol.params import encode_params

OPERATIONS: list[dict[str, Any]] = json.loads(
    resources.files(sentry_async.api).joinpath("_operations.json").read_text("utf-8")
)
BY_ID = {op["operation_id"]: op for op in OPERATIONS}

# Path values that need percent-encoding, to see that they are encoded exactly once.
PATH_VALUES = {"version": "app@1.0+b", "key": "os:name"}
EVENT_ID = "a" * 32


@dataclass
class Seen:
    method: str
    raw_path: str
    query: list[tuple[str, str]]
    body: bytes
    content_type: str


@dataclass
class Server:
    url: str = ""
    seen: list[Seen] = field(default_factory=list)
    answers: list[tuple[int, dict[str, str], bytes]] = field(default_factory=list)

    def reset(self) -> None:
        self.seen.clear()
        self.answers.clear()

    def answer(self, status: int, body: Any = None, headers: dict[str, str] | None = None) -> None:
        payload = body if isinstance(body, bytes) else (
            b"" if body is None else msgspec.json.encode(body)
        )
        self.answers.append((status, headers or {}, payload))


@pytest.fixture(scope="module")
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="module")
async def server() -> AsyncIterator[Server]:
    state = Server()

    async def handle(request: web.Request) -> web.StreamResponse:
        state.seen.append(
            Seen(
                request.method,
                request.rel_url.raw_path,
                list(request.rel_url.query.items()),
                await request.read(),
                request.headers.get("Content-Type", ""),
            )
        )
        if not state.answers:
            return web.Response(status=599, text="no answer planned")
        status, headers, payload = state.answers.pop(0)
        json_body = payload and status != 204 and "Content-Type" not in headers
        content_type = "application/json" if json_body else None
        return web.Response(
            status=status, body=payload or None, headers=headers, content_type=content_type
        )

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    state.url = f"http://127.0.0.1:{port}"
    yield state
    await runner.cleanup()


@pytest.fixture
async def client(server: Server) -> AsyncIterator[SentryClient]:
    server.reset()
    async with SentryClient("tok", base_url=server.url, retry=RetryPolicy(attempts=1)) as c:
        yield c


def path_value(name: str, sample: str) -> str:
    if name in PATH_VALUES:
        return PATH_VALUES[name]
    if name == "event_id":
        return EVENT_ID
    if name == "issue_id":
        return "1234"
    return sample


def expected_path(op: dict[str, Any], values: dict[str, str]) -> str:
    path = "/api/0" + op["path"]
    for name, value in values.items():
        path = path.replace("{" + name + "}", quote(value, safe=""))
    return path


def link(server: Server, path: str, next_cursor: str, more: bool) -> dict[str, str]:
    base = f"{server.url}{path}"
    results = "true" if more else "false"
    return {
        "Link": f'<{base}?&cursor=0:0:1>; rel="previous"; results="false"; cursor="0:0:1", '
        f'<{base}?&cursor={next_cursor}>; rel="next"; results="{results}"; '
        f'cursor="{next_cursor}"'
    }


def page_body(op: dict[str, Any], item: Any) -> Any:
    """A page holding ``item``: a list, ``{"data": [...], "meta": ...}``, or the sample
    answer with its paged list (``envelope``) holding it."""
    if op["envelope"] == "data":
        return {"data": [item], "meta": {}}
    if op["envelope"]:
        return {**op["sample"], op["envelope"]: [item]}
    return [item]


def first_item(op: dict[str, Any]) -> Any:
    sample = op["sample"]
    if op["envelope"]:
        return sample[op["envelope"]][0]
    return sample[0]


def call_arguments(op: dict[str, Any]) -> tuple[list[str], dict[str, Any], list[tuple[str, str]]]:
    """Positional path values, keyword arguments, and the query pairs they must produce."""
    args = [path_value(name, sample) for name, sample in op["path_params"]]
    kwargs: dict[str, Any] = {}
    expected: list[tuple[str, str]] = []
    for py, wire, kind, sample in op["query"]:
        value: Any = ["42"] if kind == "project" else sample
        kwargs[py] = value
        expected += encode_params({wire: value})
    for py, _wire, _required, is_file, sample in op["body_fields"]:
        kwargs[py] = b"file contents" if is_file else sample
    if op["body"] == "any":
        kwargs["body"] = {"anything": 1}
    return args, kwargs, expected


def check_request(seen: Seen, op: dict[str, Any], path: str, expected: list[tuple[str, str]]):
    assert seen.method == op["http"]
    assert seen.raw_path == path
    for pair in expected:
        assert pair in seen.query, f"{pair} missing from {seen.query}"
    if op["body"] == "json":
        sent = json.loads(seen.body)
        for _py, wire, _required, _file, sample in op["body_fields"]:
            assert sent[wire] == sample
    elif op["body"] == "multipart":
        assert seen.content_type.startswith("multipart/form-data")
        assert b"file contents" in seen.body
        for _py, wire, _required, _is_file, _sample in op["body_fields"]:
            assert f'name="{wire}"'.encode() in seen.body
    elif op["body"] == "any":
        assert json.loads(seen.body) == {"anything": 1}


def as_wire(value: Any) -> Any:
    return msgspec.to_builtins(value)


GENERATED = [op for op in OPERATIONS if not op["handwritten"]]


def test_metadata_covers_the_whole_spec() -> None:
    assert len(OPERATIONS) == 223
    assert len({(op["http"], op["path"]) for op in OPERATIONS}) == 223
    assert len({(op["group"], op["method"]) for op in OPERATIONS}) == 223


@pytest.mark.parametrize("op", GENERATED, ids=[op["operation_id"] for op in GENERATED])
async def test_generated_operation(op: dict[str, Any], client: SentryClient, server: Server):
    group = getattr(client, op["group"])
    method = getattr(group, op["method"])
    args, kwargs, expected = call_arguments(op)
    values = {name: value for (name, _), value in zip(op["path_params"], args, strict=True)}
    path = expected_path(op, values)
    if op["paginated"]:
        item = first_item(op)
        server.answer(200, page_body(op, item), link(server, path, "0:1:0", True))
        server.answer(200, page_body(op, item), link(server, path, "0:2:0", False))
        items = await method(*args, **kwargs, page_size=1).collect()
        assert len(items) == 2
        assert [as_wire(i) for i in items] == [item, item]
        first, second = server.seen
        check_request(first, op, path, expected)
        assert (op["page_size_param"], "1") in first.query
        assert ("cursor", "0:1:0") in second.query
        assert ("cursor", "0:1:0") not in first.query
        return
    if op["sample"] is None:
        server.answer(204)
        assert await method(*args, **kwargs) is None
    else:
        server.answer(200, op["sample"])
        result = await method(*args, **kwargs)
        assert as_wire(result) == op["sample"]
    (seen,) = server.seen
    check_request(seen, op, path, expected)


PAGINATED = [op for op in GENERATED if op["paginated"]]


@pytest.mark.parametrize("op", PAGINATED, ids=[op["operation_id"] for op in PAGINATED])
async def test_paginated_operation_takes_the_position_it_is_given(
    op: dict[str, Any], client: SentryClient, server: Server
) -> None:
    """``cursor``, ``skip``, ``limit`` and ``page_size`` reach the paginator: the walk
    starts at the cursor with the page size, skips one item of the first page of two, and
    the limit stops it after one item of the second page."""
    group = getattr(client, op["group"])
    args, kwargs, _ = call_arguments(op)
    values = {name: value for (name, _), value in zip(op["path_params"], args, strict=True)}
    path = expected_path(op, values)
    item = first_item(op)
    body = page_body(op, item)
    (body[op["envelope"]] if op["envelope"] else body).append(item)
    server.answer(200, body, link(server, path, "0:9:0", True))
    server.answer(200, body, link(server, path, "0:11:0", False))
    method = getattr(group, op["method"])
    paginator = method(*args, **kwargs, page_size=2, cursor="0:5:0", skip=1, limit=2)
    assert [as_wire(i) for i in await paginator.collect()] == [item, item]
    first, second = server.seen
    assert ("cursor", "0:5:0") in first.query
    assert (op["page_size_param"], "2") in first.query
    assert ("cursor", "0:9:0") in second.query


def _one_region(client: SentryClient) -> SentryClient:
    """Regions already known (one, the base URL): the list then asks only the spec's path."""
    client.regions = [("", client.base_url)]
    return client


HANDWRITTEN: dict[str, Callable[[SentryClient], Any]] = {
    "listOrganizations": lambda c: _one_region(c).organizations.list().collect(),
    "getOrganization": lambda c: c.organizations.get("org-1"),
    "listOrganizationProjects": lambda c: c.projects.list("org-1").collect(),
    "getProject": lambda c: c.projects.get("org-1", "project-1"),
    "listOrganizationIssues": lambda c: c.issues.list("org-1").collect(),
    "updateOrganizationIssues": lambda c: c.issues.bulk_update("org-1", [1234], status="resolved"),
    "deleteOrganizationIssues": lambda c: c.issues.bulk_delete("org-1", [1234]),
    "getOrganizationIssue": lambda c: c.issues.get("org-1", 1234),
    "updateOrganizationIssue": lambda c: c.issues.update("org-1", 1234, status="resolved"),
    "deleteOrganizationIssue": lambda c: c.issues.delete("org-1", 1234),
    "listOrganizationIssueHashes": lambda c: c.issues.hashes("org-1", 1234).collect(),
    "getOrganizationIssueTag": lambda c: c.issues.tag("org-1", 1234, "os:name"),
    "listOrganizationIssueTagValues": lambda c: c.issues.tag_values("org-1", 1234, "os:name")
    .collect(),
    "listOrganizationIssueEvents": lambda c: c.events.for_issue("org-1", 1234).collect(),
    "listProjectEvents": lambda c: c.events.for_project("org-1", "project-1").collect(),
    "getProjectEvent": lambda c: c.events.get("org-1", "project-1", EVENT_ID),
    "getOrganizationIssueEvent": lambda c: c.events.for_issue_event("org-1", 1234, EVENT_ID),
    "resolveOrganizationEventId": lambda c: c.events.resolve("org-1", EVENT_ID),
    "listOrganizationEvents": lambda c: c.discover.query("org-1", fields=["title"]).collect(),
    "listOrganizationStatsV2": lambda c: c.stats.usage("org-1", group_by="category"),
}


REPEATS_DROPPED = frozenset({"listOrganizationIssueEvents", "listProjectEvents"})


def test_every_handwritten_operation_has_a_call() -> None:
    assert set(HANDWRITTEN) == {op["operation_id"] for op in OPERATIONS if op["handwritten"]}


@pytest.mark.parametrize("op_id", sorted(HANDWRITTEN))
async def test_handwritten_operation(op_id: str, client: SentryClient, server: Server) -> None:
    """The hand-written front door for a seed endpoint reaches the spec's path and decodes
    the spec-shaped answer into its own model."""
    op = BY_ID[op_id]
    values = {name: path_value(name, sample) for name, sample in op["path_params"]}
    values.setdefault("org", "org-1")
    for name in ("org", "project"):
        if name in values and not values[name].endswith("-1"):
            values[name] = f"{name}-1"
    path = expected_path(op, values)
    if op["paginated"]:
        item = first_item(op)
        server.answer(200, page_body(op, item), link(server, path, "0:1:0", True))
        server.answer(200, page_body(op, item), link(server, path, "0:2:0", False))
        items = await HANDWRITTEN[op_id](client)
        # The event lists drop an event that the page before handed out: both pages hold
        # the same one.
        assert len(items) == (1 if op_id in REPEATS_DROPPED else 2)
        assert [s.raw_path for s in server.seen] == [path, path]
        return
    if op_id == "updateOrganizationIssues":
        # A bulk update first looks its ids up (``?group=``): Sentry searches when none match.
        server.answer(200, [{"id": "1234", "status": "unresolved", "project": {"id": "1"}}])
    if op["sample"] is None:
        server.answer(204)
    else:
        server.answer(200, op["sample"])
    await HANDWRITTEN[op_id](client)
    assert server.seen[-1].method == op["http"]
    assert server.seen[-1].raw_path == path


BINARY = [op for op in OPERATIONS if op["binary"] is not None]


def test_binary_operations_are_the_reviewed_ones() -> None:
    assert {op["operation_id"] for op in BINARY} == {
        "getProjectEventAttachment",
        "getOrganizationReleaseFile",
        "getProjectReleaseFile",
        "getProjectReplayRecordingSegment",
        "getOrganizationStatsSummary",
        "listProjectDebugFiles",
    }


@pytest.mark.parametrize("op", BINARY, ids=[op["operation_id"] for op in BINARY])
async def test_binary_operation_streams_the_file(
    op: dict[str, Any], client: SentryClient, server: Server
) -> None:
    group = getattr(client, op["group"])
    stream_name, _ = op["binary_methods"]
    args = [path_value(name, sample) for name, sample in op["path_params"]]
    values = {name: value for (name, _), value in zip(op["path_params"], args, strict=True)}
    blob = bytes(range(256)) * 64
    server.answer(200, blob, {"Content-Type": "application/octet-stream"})
    kwargs: dict[str, Any] = {"id": "77"} if op["binary"].endswith("=") else {}
    expected: list[tuple[str, str]] = []
    if op["binary"] and not op["binary"].endswith("="):
        _, filters, expected = call_arguments(
            {**op, "query": [q for q in op["query"] if q[1] != op["binary"]], "body_fields": []}
        )
        kwargs.update(filters)
    chunks = [c async for c in getattr(group, stream_name)(*args, chunk_size=1000, **kwargs)]
    assert b"".join(chunks) == blob
    assert max(len(c) for c in chunks) <= 1000
    (seen,) = server.seen
    assert seen.raw_path == expected_path(op, values)
    if op["binary"].endswith("="):
        assert seen.query == [(op["binary"][:-1], "77")]
    elif op["binary"]:
        assert sorted(seen.query) == sorted([*expected, (op["binary"], "1")])
    else:
        assert seen.query == []
