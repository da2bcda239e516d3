"""Generated methods against answers shaped like the real server's, not only the spec's.

Where Sentry's code and its OpenAPI description disagree, ``codegen/overrides.py`` follows
the code; each test here serves a payload the server really sends (or checks a request it
really reads) from a small app on 127.0.0.1.
"""

from __future__ import annotations

import inspect
import json
import typing
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

import pytest
from _local_server import local_app
from aiohttp import web

import sentry_async.api
from sentry_async import NotFound, RetryPolicy, SentryClient


@dataclass
class Recorder:
    """The requests seen, and the answers to give in order (the last one repeats)."""

    seen: list[web.Request] = field(default_factory=list)
    answers: list[tuple[int, Any, str]] = field(default_factory=list)

    def answer(self, body: Any, status: int = 200, content_type: str = "application/json") -> None:
        self.answers.append((status, body, content_type))


@pytest.fixture
async def server() -> AsyncIterator[tuple[Recorder, str]]:
    recorder = Recorder()

    async def handle(request: web.Request) -> web.Response:
        await request.read()  # kept by the request: a test reads it after the answer
        recorder.seen.append(request)
        status, body, content_type = (
            recorder.answers.pop(0) if len(recorder.answers) > 1 else recorder.answers[0]
        )
        if status == 204:
            return web.Response(status=204)
        payload = body if isinstance(body, bytes) else json.dumps(body).encode()
        return web.Response(status=status, body=payload, content_type=content_type)

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handle)
    async with local_app(app) as url:
        yield recorder, url


@pytest.fixture
async def client(server: tuple[Recorder, str]) -> AsyncIterator[SentryClient]:
    async with SentryClient("tok", base_url=server[1], retry=RetryPolicy(attempts=1)) as c:
        yield c


# MonitorSerializer: ``environments`` is always a list (empty without environments).
ENVIRONMENT = {
    "name": "production",
    "status": "ok",
    "isMuted": False,
    "dateCreated": "2024-01-01T00:00:00Z",
    "lastCheckIn": "2024-01-02T00:00:00Z",
    "nextCheckIn": "2024-01-03T00:00:00Z",
    "nextCheckInLatest": "2024-01-03T00:01:00Z",
    "activeIncident": None,
}


def monitor(environments: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "id": "b1a3f0e2-5b0c-4e3c-9c55-3f0f1f6f5a10",
        "status": "active",
        "isMuted": False,
        "name": "nightly",
        "slug": "nightly",
        "config": {"schedule_type": "crontab", "schedule": "0 0 * * *", "timezone": "UTC"},
        "dateCreated": "2024-01-01T00:00:00Z",
        "project": {"id": "1", "slug": "web", "name": "web"},
        "owner": None,
        "environments": environments,
    }


@pytest.mark.parametrize("environments", [[], [ENVIRONMENT]])
async def test_monitor_environments_decode_as_a_list(
    environments: list[dict[str, Any]], server: tuple[Recorder, str], client: SentryClient
) -> None:
    recorder, _ = server
    recorder.answer(monitor(environments))
    got = await client.crons.get("org", "nightly")
    assert got.environments is not None
    assert [env.name for env in got.environments] == [e["name"] for e in environments]


async def test_monitor_list_decodes_environments(
    server: tuple[Recorder, str], client: SentryClient
) -> None:
    recorder, _ = server
    recorder.answer([monitor([ENVIRONMENT, {**ENVIRONMENT, "name": "staging"}])])
    (got,) = await client.crons.list("org").collect()
    assert got.environments is not None
    assert [env.name for env in got.environments] == ["production", "staging"]


# Project issue bulk calls: without ``id`` Sentry acts on up to 1000 issues matching the
# default query, and ``status`` in the query filters while ``status`` in the body changes.
@pytest.mark.parametrize("ids", [None, []])
async def test_project_bulk_delete_refuses_no_ids(
    ids: list[int] | None, server: tuple[Recorder, str], client: SentryClient
) -> None:
    recorder, _ = server
    recorder.answer(None, status=204)
    with pytest.raises(ValueError, match="`id`"):
        await client.events.bulk_delete_issues("org", "web", id=ids)
    assert recorder.seen == []


async def test_project_bulk_delete_repeats_id(
    server: tuple[Recorder, str], client: SentryClient
) -> None:
    recorder, _ = server
    recorder.answer(None, status=204)
    await client.events.bulk_delete_issues("org", "web", id=[5, 6])
    (seen,) = recorder.seen
    assert seen.method == "DELETE"
    assert seen.query.getall("id") == ["5", "6"]


async def test_project_bulk_update_sends_the_new_status_in_the_body(
    server: tuple[Recorder, str], client: SentryClient
) -> None:
    recorder, _ = server
    recorder.answer({"status": "resolved", "statusDetails": {}})
    await client.events.bulk_update_issues("org", "web", id=[5], status="resolved")
    (seen,) = recorder.seen
    assert seen.query.getall("id") == ["5"]
    assert "status" not in seen.query
    assert json.loads(await seen.read()) == {"status": "resolved"}


# update_groups_with_search_fn: ``Response({"detail": "No groups found"}, status=204)`` when
# no id matches and the search finds nothing; ProjectGroupIndexEndpoint.put passes it on.
async def test_project_bulk_update_that_changes_nothing_is_none(
    server: tuple[Recorder, str], client: SentryClient
) -> None:
    recorder, _ = server
    recorder.answer(None, status=204)
    from sentry_async.api import events

    assert await client.events.bulk_update_issues("org", "web", id=[999], status="resolved") is None
    hints = typing.get_type_hints(events.EventsAPI.bulk_update_issues)
    assert type(None) in typing.get_args(hints["return"])


async def test_project_bulk_update_needs_ids(
    server: tuple[Recorder, str], client: SentryClient
) -> None:
    """``ProjectGroupIndexEndpoint.put`` never reads a ``status`` query parameter: without
    ids it changes up to 1000 issues of the default search, whatever status was asked."""
    recorder, _ = server
    with pytest.raises(ValueError, match="`id`"):
        await client.events.bulk_update_issues("org", "web", status="resolved")
    with pytest.raises(TypeError, match="status_filter"):
        await client.events.bulk_update_issues(  # type: ignore[call-arg]
            "org", "web", status_filter="unresolved", status="resolved"
        )
    assert recorder.seen == []


# ProjectReplayRecordingSegmentDetailsEndpoint.get sends the recording only for ?download;
# without it the answer is the segment's metadata.
async def test_replay_segment_download_asks_for_the_recording(
    server: tuple[Recorder, str], client: SentryClient, tmp_path: Any
) -> None:
    recorder, _ = server
    recorder.answer(b"\x1f\x8b recording", content_type="application/octet-stream")
    replay = "7e07485f6c25420c87f5a0ec3a8db3a3"
    chunks = [c async for c in client.replays.stream_recording_segment("org", "web", replay, 0)]
    assert b"".join(chunks) == b"\x1f\x8b recording"
    written = await client.replays.download_recording_segment(
        "org", "web", replay, 0, to=tmp_path / "segment"
    )
    assert written == len(b"\x1f\x8b recording")
    assert [("download" in seen.query) for seen in recorder.seen] == [True, True]


# OrganizationStatsSummaryEndpoint answers CSV for any non-empty ``download`` ("0" too).
CSV = b"project_id,project_slug,accepted_errors\n1,web,5\n"
SUMMARY = {"start": "2024-01-01T00:00:00Z", "end": "2024-01-02T00:00:00Z", "projects": []}


async def test_stats_summary_download_false_is_left_out(
    server: tuple[Recorder, str], client: SentryClient
) -> None:
    recorder, _ = server
    recorder.answer(SUMMARY)
    summary = await client.organizations.get_stats_summary(
        "org", field="sum(quantity)", project=[1], download=False
    )
    assert summary.projects == []
    (seen,) = recorder.seen
    assert "download" not in seen.query


async def test_stats_summary_csv_is_streamed(
    server: tuple[Recorder, str], client: SentryClient
) -> None:
    recorder, _ = server
    recorder.answer(CSV, content_type="text/csv")
    chunks = [c async for c in client.organizations.stream_stats_summary(
        "org", field="sum(quantity)", project=[1]
    )]
    assert b"".join(chunks) == CSV
    (seen,) = recorder.seen
    assert seen.query.getall("download") == ["1"]
    assert seen.query.getall("project") == ["1"]


# CommitFileChangeEndpoint: an OffsetPaginator over CommitFileChangeSerializer objects.
def commit_file(n: int) -> dict[str, Any]:
    return {
        "id": str(n),
        "orgId": 1,
        "author": "Jane",
        "commitMessage": "fix",
        "filename": f"src/file{n}.py",
        "type": "M",
        "repoName": "acme/web",
    }


async def test_commit_files_are_a_paginated_list() -> None:
    path = "/api/0/organizations/org/releases/1.0/commitfiles/"
    pages = {None: (commit_file(1), "0:1:0", "true"), "0:1:0": (commit_file(2), "0:2:0", "false")}
    seen: list[str | None] = []

    async def answer(request: web.Request) -> web.Response:
        cursor = request.query.get("cursor")
        seen.append(cursor)
        item, following, more = pages[cursor]
        link = (f'<http://{request.host}{path}?cursor={following}>; rel="next"; '
                f'results="{more}"; cursor="{following}"')
        return web.json_response([item], headers={"Link": link})

    app = web.Application()
    app.router.add_get(path, answer)
    async with local_app(app) as base, SentryClient(
        "tok", base_url=base, retry=RetryPolicy(attempts=1)
    ) as c:
        files = await c.releases.list_commit_files("org", "1.0", page_size=1).collect()
    assert seen == [None, "0:1:0"]
    assert [(f.filename, f.type, f.repo_name) for f in files] == [
        ("src/file1.py", "M", "acme/web"),
        ("src/file2.py", "M", "acme/web"),
    ]


# replay_counts.py: counts per issue, or with ``returnIds`` the replay ids per issue.
@pytest.mark.parametrize(
    ("return_ids", "body"),
    [(False, {"1234": 3}), (True, {"1234": ["7e07485f6c25420c87f5a0ec3a8db3a3"]})],
)
async def test_replay_count_decodes_counts_and_ids(
    return_ids: bool, body: dict[str, Any], server: tuple[Recorder, str], client: SentryClient
) -> None:
    recorder, _ = server
    recorder.answer(body)
    got = await client.replays.count("org", data_source="events", return_ids=return_ids)
    assert got == body


# Release versions and environment names are names, not slugs: Sentry forbids only line
# breaks, tabs and slashes in them (``Release.is_valid_version``'s BAD_RELEASE_CHARS,
# ``ENVIRONMENT_NAME_PATTERN``), so a space travels percent-encoded in the path.
@pytest.mark.parametrize(
    ("call", "path"),
    [
        (
            lambda c: c.releases.get("org", "My App 1.0"),
            "/api/0/organizations/org/releases/My%20App%201.0/",
        ),
        (
            lambda c: c.environments.get("org", "web", "Production EU"),
            "/api/0/projects/org/web/environments/Production%20EU/",
        ),
    ],
)
async def test_names_with_spaces_go_out_percent_encoded(
    call: Any, path: str, server: tuple[Recorder, str], client: SentryClient
) -> None:
    recorder, _ = server
    recorder.answer({}, status=404)
    with pytest.raises(NotFound):
        await call(client)
    (seen,) = recorder.seen
    assert seen.raw_path == path


@pytest.mark.parametrize("bad", ["1.0\n", "a/b", "a\\b", "tab\there", "", ".", ".."])
async def test_a_release_version_sentry_refuses_is_refused_before_sending(
    bad: str, server: tuple[Recorder, str], client: SentryClient
) -> None:
    recorder, _ = server
    recorder.answer({}, status=404)
    with pytest.raises(ValueError, match="version"):
        await client.releases.get("org", bad)
    assert recorder.seen == []


async def test_a_project_slug_with_a_space_is_still_refused(
    server: tuple[Recorder, str], client: SentryClient
) -> None:
    recorder, _ = server
    with pytest.raises(ValueError, match="project"):
        await client.environments.get("org", "my project", "production")
    assert recorder.seen == []


# Some operations answer without a body besides their documented model: adding a member
# to a team answers 202 (an access request was made: not added yet) or 204 (already on the
# team); creating a release that exists answers 208. Such a method says ``| None``.
def test_a_method_whose_answer_may_have_no_body_says_none() -> None:
    from sentry_async.api import releases, teams

    for method in (teams.TeamsAPI.add_member_to_team, releases.ReleasesAPI.create):
        hints = typing.get_type_hints(method)
        assert type(None) in typing.get_args(hints["return"]), method.__qualname__
        assert "``None``" in (inspect.getdoc(method) or ""), method.__qualname__


async def test_a_member_added_by_request_only_comes_back_as_none(
    server: tuple[Recorder, str], client: SentryClient
) -> None:
    recorder, _ = server
    recorder.answer(None, status=204)
    assert await client.teams.add_member_to_team("org", 7, "backend") is None


# Query names the spec takes from apidocs' parameter objects, which the endpoints never
# read: OrganizationEndpoint.get_projects reads slugs from ``projectSlug`` (the spec's
# ``project_id_or_slug`` says so in its own description), and
# OrganizationReleaseDetailsEndpoint.get reads ``project``, never ``project_id``.
async def test_release_project_id_goes_out_as_project(
    server: tuple[Recorder, str], client: SentryClient
) -> None:
    recorder, _ = server
    recorder.answer({"version": "v1"})
    await client.releases.get("org", "v1", project_id="11", health=True)
    (seen,) = recorder.seen
    assert seen.query.getall("project") == ["11"]
    assert "project_id" not in seen.query


async def test_replay_count_project_slugs_go_out_as_project_slug(
    server: tuple[Recorder, str], client: SentryClient
) -> None:
    recorder, _ = server
    recorder.answer({})
    await client.replays.count(
        "org", data_source="events", project_slug=["web", "api"], query="issue.id:[1]"
    )
    (seen,) = recorder.seen
    assert seen.query.getall("projectSlug") == ["web", "api"]
    assert "project_id_or_slug" not in seen.query


def test_no_operation_sends_a_query_name_the_server_never_reads() -> None:
    from codegen import overrides

    rows = json.loads(
        resources.files(sentry_async.api).joinpath("_operations.json").read_text("utf-8")
    )
    assert set(overrides.QUERY_WIRE_NAMES) <= {row["operation_id"] for row in rows}
    for row in rows:
        wires = {wire for _py, wire, _kind, _sample in row["query"]}
        renamed = overrides.QUERY_WIRE_NAMES.get(row["operation_id"], {})
        assert not wires & set(renamed), row["operation_id"]
        assert set(renamed.values()) <= wires, row["operation_id"]
        assert "project_id_or_slug" not in wires, row["operation_id"]


async def walk_linked_pages(
    path: str, pages: list[Any], call: Any
) -> tuple[list[Any], list[web.Request]]:
    """``call(client)``'s items, served as ``pages`` (one body each) linked by cursors the
    way ``self.paginate`` links them, and the requests that fetched them."""
    seen: list[web.Request] = []

    async def answer(request: web.Request) -> web.Response:
        seen.append(request)
        n = int(request.query.get("cursor", "0:0:0").split(":")[1])
        more = "true" if n + 1 < len(pages) else "false"
        following = f"0:{n + 1}:0"
        link = (f'<http://{request.host}{path}?cursor={following}>; rel="next"; '
                f'results="{more}"; cursor="{following}"')
        return web.json_response(pages[n], headers={"Link": link})

    app = web.Application()
    app.router.add_get(path, answer)
    async with local_app(app) as base, SentryClient(
        "tok", base_url=base, retry=RetryPolicy(attempts=1)
    ) as c:
        items = await call(c).collect()
    return items, seen


# NotificationActionsIndexEndpoint.get: ``self.paginate(..., OffsetPaginator)``, an array
# (the spec documents one object, under 201).
def notification_action(n: int) -> dict[str, Any]:
    return {"id": n, "organizationId": 1, "triggerType": "spike-protection",
            "serviceType": "email", "targetType": "user", "projects": [11]}


async def test_spike_protection_notifications_are_a_paginated_list() -> None:
    pages = [[notification_action(1)], [notification_action(2)]]
    actions, seen = await walk_linked_pages(
        "/api/0/organizations/org/notifications/actions/",
        pages,
        lambda c: c.spike_protection.list("org", project_slug=["web"], page_size=1),
    )
    assert [a.id for a in actions] == [1, 2]
    assert [r.query.get("cursor") for r in seen] == [None, "0:1:0"]
    assert [r.query.getall("projectSlug") for r in seen] == [["web"], ["web"]]


# ProjectReplayDeletionJobsIndexEndpoint.get (``{"data": [...]}`` per page) and
# DataForwardingIndexEndpoint.get: ``self.paginate(..., OffsetPaginator)``, though the spec
# declares no cursor; a single call read only the first page.
async def test_replay_deletion_jobs_are_a_paginated_list() -> None:
    pages = [{"data": [{"id": 1, "status": "pending"}]}, {"data": [{"id": 2, "status": "done"}]}]
    jobs, seen = await walk_linked_pages(
        "/api/0/projects/org/web/replays/jobs/delete/",
        pages,
        lambda c: c.replays.list_deletion_jobs("org", "web", page_size=1),
    )
    assert [(job.id, job.status) for job in jobs] == [(1, "pending"), (2, "done")]
    assert [r.query.get("cursor") for r in seen] == [None, "0:1:0"]


async def test_data_forwarders_are_a_paginated_list() -> None:
    pages = [[{"id": "1", "provider": "segment"}], [{"id": "2", "provider": "sqs"}]]
    forwarders, seen = await walk_linked_pages(
        "/api/0/organizations/org/forwarding/",
        pages,
        lambda c: c.integrations.list_forwarding("org", page_size=1),
    )
    assert [(f.id, f.provider) for f in forwarders] == [("1", "segment"), ("2", "sqs")]
    assert [r.query.get("per_page") for r in seen] == ["1", "1"]


# Update endpoints that validate with ``partial=True`` (MonitorValidator, TeamDetails,
# the detector validator, ExternalTeam/ExternalUserSerializer, SentryAppParser,
# ServiceHookValidator, EnvironmentSerializer): a field left out stays as it is, so a
# one-field change is a one-key body.
@pytest.mark.parametrize(
    ("call", "body"),
    [
        (lambda c: c.crons.update("org", "nightly", is_muted=True), {"is_muted": True}),
        (lambda c: c.crons.update_for_project("org", "web", "nightly", status="disabled"),
         {"status": "disabled"}),
        (lambda c: c.teams.update("org", "backend", name="Backend"), {"name": "Backend"}),
        (lambda c: c.monitors.update_detector("org", 5, enabled=False), {"enabled": False}),
        (lambda c: c.integrations.update_external_team("org", "backend", 3, external_name="@x"),
         {"external_name": "@x"}),
        (lambda c: c.integrations.update_external_user("org", 3, external_name="@ana"),
         {"external_name": "@ana"}),
        (lambda c: c.integration_platform.update("my-app", webhook_url="https://h"),
         {"webhookUrl": "https://h"}),
        (lambda c: c.projects.update_hook("org", "web", "abc", url="https://new"),
         {"url": "https://new"}),
        (lambda c: c.environments.update("org", "web", "prod"), {}),
    ],
)
async def test_a_partial_update_sends_only_the_fields_given(
    call: Any, body: dict[str, Any], server: tuple[Recorder, str], client: SentryClient
) -> None:
    recorder, _ = server
    recorder.answer({"id": "1"})
    await call(client)
    (seen,) = recorder.seen
    assert seen.method == "PUT"
    assert json.loads(await seen.read()) == body


def test_a_partial_update_says_what_a_field_left_out_means() -> None:
    from sentry_async.api import crons

    assert "left out" in (inspect.getdoc(crons.CronsAPI.update) or "")


# Values the server never reads or fills itself: ExternalUserSerializer.Meta.fields has no
# ``id``; ReplayCountQueryParamsValidator defaults ``data_source``; the data forwarding
# endpoints set ``organization_id`` from the path.
async def test_fields_the_server_fills_need_not_be_given(
    server: tuple[Recorder, str], client: SentryClient
) -> None:
    recorder, _ = server
    recorder.answer({"id": "1"})
    await client.integrations.create_external_user(
        "org", user_id=5, external_name="@ana", provider="github", integration_id=1
    )
    await client.replays.count("org", query="issue.id:[1]")
    await client.integrations.create_forwarding("org", provider="segment")
    user, count, forwarder = recorder.seen
    assert json.loads(await user.read()) == {
        "user_id": 5, "external_name": "@ana", "provider": "github", "integration_id": 1
    }
    assert "data_source" not in count.query
    assert json.loads(await forwarder.read()) == {"provider": "segment"}


# OrganizationDetectorIndexEndpoint.put / OrganizationWorkflowIndexEndpoint.put answer
# 200 {"detail": "No detectors found."} when the filter matches nothing, else the list.
@pytest.mark.parametrize(
    ("call", "what"),
    [
        (lambda c: c.monitors.update_detectors("org", query="type:cron", enabled=False),
         "detectors"),
        (lambda c: c.monitors.update_workflows("org", query="nightly", enabled=False),
         "workflows"),
    ],
)
async def test_a_bulk_toggle_that_matches_nothing_decodes(
    call: Any, what: str, server: tuple[Recorder, str], client: SentryClient
) -> None:
    recorder, _ = server
    recorder.answer({"detail": f"No {what} found."})
    recorder.answer([{"id": "5", "name": "n", "enabled": False}])
    nothing = await call(client)
    assert not isinstance(nothing, list)
    assert nothing.detail == f"No {what} found."
    changed = await call(client)
    assert isinstance(changed, list)
    assert [item.id for item in changed] == ["5"]


def test_a_bulk_toggle_says_what_its_detail_answer_means() -> None:
    from sentry_async.api import monitors

    for method in (monitors.MonitorsAPI.update_detectors, monitors.MonitorsAPI.update_workflows):
        assert "matched nothing" in (inspect.getdoc(method) or ""), method.__qualname__


# OrganizationDetectorIndexEndpoint.delete / OrganizationWorkflowIndexEndpoint.delete
# answer 200 {"detail": "No detectors found."} when the filter matches nothing, and 204
# once every match is scheduled for deletion: the two must not look alike.
@pytest.mark.parametrize(
    ("call", "what"),
    [
        (lambda c: c.monitors.delete_detectors("org", query="name:no-such"), "detectors"),
        (lambda c: c.monitors.delete_workflows("org", query="no-such"), "workflows"),
    ],
)
async def test_a_bulk_delete_that_matches_nothing_says_so(
    call: Any, what: str, server: tuple[Recorder, str], client: SentryClient
) -> None:
    recorder, _ = server
    recorder.answer({"detail": f"No {what} found."})
    recorder.answer(None, status=204)
    nothing = await call(client)
    assert nothing is not None
    assert nothing.detail == f"No {what} found."
    assert await call(client) is None


def test_a_bulk_delete_says_what_its_answers_mean() -> None:
    from sentry_async.api import monitors

    for method in (monitors.MonitorsAPI.delete_detectors, monitors.MonitorsAPI.delete_workflows):
        hints = typing.get_type_hints(method)
        assert set(typing.get_args(hints["return"])) == {monitors.NothingMatched, type(None)}
        doc = inspect.getdoc(method) or ""
        assert "matched nothing" in doc and "``None``" in doc, method.__qualname__


# OrganizationReleaseDetailsEndpoint.put applies ``status`` (archive or restore), which the
# spec hides (``extend_schema_serializer(exclude_fields=["headCommits", "status"])``).
@pytest.mark.parametrize("status", ["archived", "open"])
async def test_a_release_can_be_archived_and_restored(
    status: Any, server: tuple[Recorder, str], client: SentryClient
) -> None:
    recorder, _ = server
    recorder.answer({"version": "v1", "status": status})
    await client.releases.update("org", "v1", status=status)
    (seen,) = recorder.seen
    assert json.loads(await seen.read()) == {"status": status}


# MonitorDetailsMixin.delete_monitor deletes only the named monitor environments, but the
# whole monitor (and its alert rule) when none is named; the bulk detector and workflow
# calls act on everything the other filters match. An empty list is left out of the query,
# so "these zero" must be refused rather than sent as "all".
@pytest.mark.parametrize(
    "call",
    [
        lambda c: c.crons.delete("org", "nightly", environment=[]),
        lambda c: c.crons.delete("org", "nightly", environment=""),
        lambda c: c.crons.delete("org", "nightly", environment=["", "  "]),
        lambda c: c.crons.delete_for_project("org", "web", "nightly", environment=[]),
        lambda c: c.monitors.delete_detectors("org", id=[], project=[1]),
        lambda c: c.monitors.delete_detectors("org", id=[5], project=[]),
        lambda c: c.monitors.delete_workflows("org", id=[], query="nightly"),
        lambda c: c.monitors.update_detectors("org", id=[], project=[1], enabled=False),
        lambda c: c.monitors.update_workflows("org", id=[], project=[1], enabled=False),
        # ``request.GET.get("query")`` is true for a blank query, which then parses into
        # no filter at all: every detector (or workflow) of the user's projects.
        lambda c: c.monitors.delete_detectors("org", query=" "),
        lambda c: c.monitors.delete_detectors("org", query="", project=[1]),
        lambda c: c.monitors.delete_workflows("org", query="\t"),
        lambda c: c.monitors.update_detectors("org", query=" ", enabled=False),
        lambda c: c.monitors.update_workflows("org", query="  ", id=[5], enabled=False),
    ],
)
async def test_an_empty_filter_never_widens_a_delete(
    call: Any, server: tuple[Recorder, str], client: SentryClient
) -> None:
    recorder, _ = server
    recorder.answer(None, status=204)
    with pytest.raises(ValueError, match="names nothing"):
        await call(client)
    assert recorder.seen == []


async def test_named_environments_or_none_still_go_out(
    server: tuple[Recorder, str], client: SentryClient
) -> None:
    recorder, _ = server
    recorder.answer(None, status=202)
    await client.crons.delete("org", "nightly", environment=["production", ""])
    await client.crons.delete("org", "nightly")
    named, whole = recorder.seen
    assert named.query.getall("environment") == ["production", ""]
    assert "environment" not in whole.query


# OrganizationSessionsEndpoint pages the groups of one object (SessionsDataSeriesPaginator:
# per_page groups from the cursor's offset, a Link to the rest). In each group's series,
# sessions_v2 sends a rate or a duration as ``None`` for an interval without data (the
# spec says so too: series items are nullable numbers).
def sessions(groups: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "start": "2025-06-01T00:00:00Z",
        "end": "2025-06-01T03:00:00Z",
        "intervals": ["2025-06-01T00:00:00Z", "2025-06-01T01:00:00Z", "2025-06-01T02:00:00Z"],
        "groups": groups,
        "query": "",
    }


async def test_session_series_keep_empty_intervals_as_none(
    server: tuple[Recorder, str], client: SentryClient
) -> None:
    recorder, _ = server
    rate = "crash_free_rate(session)"
    series = {rate: [None, 0.97, 0.99]}
    recorder.answer(sessions([{"by": {}, "totals": {rate: 0.98}, "series": series}]))
    (group,) = await client.releases.get_sessions("org", field=rate, interval="1h").collect()
    assert group.series == {rate: [None, 0.97, 0.99]}


# OrganizationDashboardsEndpoint.get: the prebuilt "General" dashboard (get_prebuilt_dashboards)
# goes out as defined, ``"createdBy": ""``; DashboardListSerializer copies each widget's saved
# layout (LayoutField: integers) into ``widgetPreview``.
PREBUILT_DASHBOARD = {
    "id": "default-overview",
    "title": "General",
    "dateCreated": "",
    "createdBy": "",
    "widgetDisplay": ["big_number", "line"],
    "widgetPreview": [{"displayType": "big_number", "layout": None}],
}
USER_DASHBOARD = {
    "id": "12",
    "title": "Backend health",
    "dateCreated": "2025-06-01T10:00:00Z",
    "createdBy": {"id": "1", "name": "Ana", "email": "ana@example.com"},
    "widgetDisplay": ["line"],
    "widgetPreview": [{"displayType": "line", "layout": {"x": 0, "y": 0, "w": 2, "h": 2, "minH": 2}}],
}


async def test_dashboards_list_decodes_the_prebuilt_and_saved_layouts(
    server: tuple[Recorder, str], client: SentryClient
) -> None:
    recorder, _ = server
    recorder.answer([PREBUILT_DASHBOARD, USER_DASHBOARD])
    prebuilt, mine = await client.dashboards.list("org").collect()
    assert prebuilt.created_by == ""
    assert not isinstance(mine.created_by, str) and mine.created_by is not None
    assert mine.created_by.email == "ana@example.com"
    assert prebuilt.widget_preview is not None and mine.widget_preview is not None
    assert prebuilt.widget_preview[0].layout is None
    layout = mine.widget_preview[0].layout
    assert layout is not None and (layout.w, layout.min_h) == (2, 2)
    assert mine.widget_preview[0].display_type == "line"


# SentryAppSerializer.serialize: ``schema`` and ``metadata`` are the app's JSON objects
# ({} by default) and ``featureData`` its serialized IntegrationFeatures (objects).
SENTRY_APP = {
    "slug": "acme-app",
    "name": "ACME",
    "status": "unpublished",
    "schema": {"elements": [{"type": "issue-link"}]},
    "metadata": {},
    "featureData": [
        {"featureId": 0, "featureGate": "integrations-api", "description": "Uses the API"}
    ],
}


async def test_sentry_apps_decode_their_schema_metadata_and_features(
    server: tuple[Recorder, str], client: SentryClient
) -> None:
    recorder, _ = server
    recorder.answer([SENTRY_APP])
    recorder.answer({**SENTRY_APP, "status": "internal", "featureData": [], "schema": {}})
    (listed,) = await client.integration_platform.list("org").collect()
    internal = await client.integration_platform.get("acme-app")
    assert listed.schema == {"elements": [{"type": "issue-link"}]}
    assert listed.metadata == {} and internal.metadata == {} and internal.schema == {}
    assert listed.feature_data is not None
    (feature,) = listed.feature_data
    assert (feature.feature_id, feature.feature_gate) == (0, "integrations-api")
    assert internal.feature_data == []


# ProjectTagKeyValuesEndpoint pages TagValueSerializer objects: the value and its counts,
# not only the display label ``name`` (two user values may share one label).
TAG_VALUES = [
    {"key": "user", "name": "ana@example.com", "value": "email:ana@example.com", "count": 412,
     "lastSeen": "2025-06-01T10:00:00Z", "firstSeen": "2025-05-01T09:00:00Z",
     "query": "user.email:ana@example.com"},
    {"key": "user", "name": "ana@example.com", "value": "id:77", "count": 3,
     "lastSeen": "2025-06-01T09:00:00Z", "firstSeen": "2025-05-20T09:00:00Z"},
]


async def test_project_tag_values_keep_value_count_and_dates(
    server: tuple[Recorder, str], client: SentryClient
) -> None:
    recorder, _ = server
    recorder.answer(TAG_VALUES)
    first, second = await client.projects.list_values("org", "web", "user").collect()
    assert [(v.value, v.count) for v in (first, second)] == [("email:ana@example.com", 412), ("id:77", 3)]
    assert (first.key, first.first_seen, first.last_seen) == (
        "user", "2025-05-01T09:00:00Z", "2025-06-01T10:00:00Z"
    )
    assert first.query == "user.email:ana@example.com" and second.query is None


async def test_session_groups_are_paged_as_the_server_pages_them() -> None:
    releases = ["web@1", "web@2", "web@3"]
    seen: list[dict[str, str]] = []

    async def handle(request: web.Request) -> web.Response:
        seen.append(dict(request.query))
        offset = int(request.query.get("cursor", "0:0:0").split(":")[1])
        size = int(request.query["per_page"])
        more = "true" if offset + size < len(releases) else "false"
        after = f"0:{offset + size}:0"
        link = (f'<{request.url.with_query(None)}?cursor={after}>; rel="next"; '
                f'results="{more}"; cursor="{after}"')
        groups = [{"by": {"release": r}, "totals": {"sum(session)": 1}, "series": {}}
                  for r in releases[offset:offset + size]]
        return web.json_response(sessions(groups), headers={"Link": link})

    app = web.Application()
    app.router.add_get("/api/0/organizations/org/sessions/", handle)
    async with local_app(app) as url, SentryClient(
        "tok", base_url=url, retry=RetryPolicy(attempts=1)
    ) as client:
        sessions_of = client.releases.get_sessions(
            "org", field="sum(session)", group_by="release", page_size=2
        )
        pages = [page async for page in sessions_of.pages()]
    assert [[g.by.release for g in page.items if g.by] for page in pages] == [
        ["web@1", "web@2"], ["web@3"]
    ]
    # Each page's meta is the whole answer: the intervals the series are aligned to.
    assert isinstance(pages[0].meta, sentry_async.api.releases.Session)
    assert pages[0].meta.intervals == sessions([])["intervals"]
    assert [(q.get("cursor"), q["per_page"], q["groupBy"]) for q in seen] == [
        (None, "2", "release"), ("0:2:0", "2", "release")
    ]


# replays/query.py selects ``isArchived`` as ``ifNull(max(is_archived), 0)``, a ClickHouse
# UInt8, and post_process copies it as it is: 0 for every live replay. An archived replay
# is post_process's own row, with ``True``.
async def test_replays_decode_is_archived_as_clickhouse_sends_it(
    server: tuple[Recorder, str], client: SentryClient
) -> None:
    recorder, _ = server
    live = {"id": "a" * 32, "project_id": "1", "is_archived": 0, "has_viewed": False}
    archived = {"id": "b" * 32, "project_id": "1", "is_archived": True}
    recorder.answer({"data": [live, archived], "meta": {}})
    recorder.answer({"data": live})
    first, second = await client.replays.list("org").collect()
    one = await client.replays.get("org", "a" * 32)
    assert (first.is_archived, second.is_archived) == (0, True)
    assert not first.is_archived and second.is_archived
    assert one.data is not None and one.data.is_archived == 0
