"""Generated models against issue payloads shaped after Sentry's group serializers.

The spec describes some issue fields in a shape the server does not send: annotations as
strings (current servers send objects), ``statusDetails.inCommit`` as a string (a serialized
commit), ``stats`` keyed by ``24h`` only (keyed by the period asked). Each payload here is
what ``GroupSerializerBase`` / ``StreamGroupSerializer`` (src/sentry/api/serializers/models/
group.py) write, served from a small app on 127.0.0.1.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import msgspec
import pytest
from _local_server import local_app
from aiohttp import web

from sentry_async import RetryPolicy, SentryClient

# CommitSerializer (src/sentry/api/serializers/models/commit.py): what _resolve_resolutions
# puts in ``inCommit`` for an issue a commit resolved ("Fixes WEB-1").
COMMIT: dict[str, Any] = {
    "id": "4f0e8b1c2d3a4e5f60718293a4b5c6d7e8f90a1b",
    "message": "Guard the empty cart\n\nFixes WEB-1",
    "dateCreated": "2025-03-02T10:00:00Z",
    "pullRequest": None,
    "suspectCommitType": "",
    "repository": {
        "id": "3",
        "name": "acme/web",
        "url": "https://github.com/acme/web",
        "provider": {"id": "integrations:github", "name": "GitHub"},
        "status": "active",
        "dateCreated": "2024-01-01T00:00:00Z",
        "integrationId": "7",
        "externalSlug": "acme/web",
        "externalId": "123456",
    },
    "author": {"name": "Dana", "email": "dana@acme.example"},
}

# GroupAnnotation {displayName, url}: an integration's linked issue (Jira), and a Sentry
# app's (PlatformExternalIssue).
ANNOTATIONS = [
    {"displayName": "JIRA-123", "url": "https://acme.atlassian.net/browse/JIRA-123"},
    {"displayName": "Linear: ENG-9", "url": "https://linear.app/acme/issue/ENG-9"},
]

# Older servers wrote each annotation as an HTML link (PlatformExternalIssue and the
# integrations' get_annotations_for_group_list).
OLD_ANNOTATIONS = ['<a href="https://acme.atlassian.net/browse/JIRA-123">JIRA-123</a>']


def issue(**changes: Any) -> dict[str, Any]:
    """One issue as StreamGroupSerializer writes it for the project issue list."""
    body: dict[str, Any] = {
        "id": "4711",
        "shareId": None,
        "shortId": "WEB-1",
        "title": "TypeError: Cannot read properties of undefined (reading 'total')",
        "culprit": "app/cart.js in computeTotal",
        "permalink": "https://acme.sentry.io/issues/4711/",
        "logger": None,
        "level": "error",
        "status": "unresolved",
        "statusDetails": {},
        "substatus": "ongoing",
        "isPublic": False,
        "platform": "javascript",
        "project": {"id": "2", "name": "web", "slug": "web", "platform": "javascript"},
        "type": "error",
        "metadata": {"type": "TypeError", "value": "Cannot read properties of undefined"},
        "numComments": 0,
        "assignedTo": None,
        "isBookmarked": False,
        "isSubscribed": False,
        "subscriptionDetails": None,
        "hasSeen": False,
        "annotations": [],
        "issueType": "error",
        "issueCategory": "error",
        "priority": "high",
        "priorityLockedAt": None,
        "isUnhandled": True,
        "count": "12",
        "userCount": 3,
        "firstSeen": "2025-03-01T08:00:00Z",
        "lastSeen": "2025-03-02T09:00:00Z",
        "stats": {"24h": [[1740902400, 0], [1740906000, 4]]},
        "lifetime": None,
        "filtered": None,
    }
    body.update(changes)
    return body


@pytest.fixture
async def answer() -> AsyncIterator[tuple[list[Any], list[web.Request], str]]:
    """The body to answer with (the first item of the list), the requests seen, the URL."""
    bodies: list[Any] = []
    seen: list[web.Request] = []

    async def handle(request: web.Request) -> web.Response:
        seen.append(request)
        return web.Response(body=json.dumps(bodies[0]).encode(), content_type="application/json")

    app = web.Application()
    app.router.add_route("GET", "/{tail:.*}", handle)
    async with local_app(app) as url:
        yield bodies, seen, url


async def list_issues(
    answer: tuple[list[Any], list[web.Request], str], body: Any, **params: Any
) -> list[Any]:
    bodies, _, url = answer
    bodies.append(body)
    async with SentryClient("tok", base_url=url, retry=RetryPolicy(attempts=1)) as client:
        return await client.events.list_issues("acme", "web", **params).collect()


async def resolve_short_id(
    answer: tuple[list[Any], list[web.Request], str], group: dict[str, Any]
) -> Any:
    bodies, _, url = answer
    bodies.append({"organizationSlug": "acme", "projectSlug": "web", "groupId": group["id"],
                   "shortId": group["shortId"], "group": group})
    async with SentryClient("tok", base_url=url, retry=RetryPolicy(attempts=1)) as client:
        return await client.organizations.resolve_short_id("acme", "WEB-1")


async def test_project_issue_annotations_are_the_linked_issues(
    answer: tuple[list[Any], list[web.Request], str],
) -> None:
    """GroupSerializerBase.get_attrs fills ``annotations`` with GroupAnnotation objects: one
    linked Jira issue made the whole page undecodable."""
    (got,) = await list_issues(answer, [issue(annotations=ANNOTATIONS)])
    assert got.annotations is not None
    assert [(a.display_name, a.url) for a in got.annotations] == [
        (a["displayName"], a["url"]) for a in ANNOTATIONS
    ]
    assert json.loads(msgspec.json.encode(got))["annotations"] == ANNOTATIONS


@pytest.mark.parametrize("method", ["list_issues", "resolve_short_id"])
async def test_an_older_server_s_annotations_stay_strings(
    method: str, answer: tuple[list[Any], list[web.Request], str]
) -> None:
    if method == "list_issues":
        (got,) = await list_issues(answer, [issue(annotations=OLD_ANNOTATIONS)])
    else:
        got = (await resolve_short_id(answer, issue(annotations=OLD_ANNOTATIONS))).group
    assert got.annotations == OLD_ANNOTATIONS


async def test_short_id_of_an_issue_resolved_in_a_commit_keeps_the_commit(
    answer: tuple[list[Any], list[web.Request], str],
) -> None:
    """GroupSerializerBase._get_status: ``statusDetails["inCommit"]`` is the serialized
    commit that resolved the issue."""
    resolved = issue(status="resolved", substatus=None, statusDetails={"inCommit": COMMIT},
                     annotations=ANNOTATIONS)
    got = await resolve_short_id(answer, resolved)
    assert got.group is not None and got.group.status_details is not None
    commit = got.group.status_details.in_commit
    assert commit is not None
    assert commit.id == COMMIT["id"] and commit.message == COMMIT["message"]
    assert commit.repository is not None and commit.repository.name == "acme/web"
    assert got.group.annotations is not None
    assert got.group.annotations[0].display_name == "JIRA-123"


@pytest.mark.parametrize("period", ["24h", "14d"])
async def test_project_issue_stats_are_keyed_by_the_period_asked(
    period: str, answer: tuple[list[Any], list[web.Request], str]
) -> None:
    """StreamGroupSerializer.serialize: ``result["stats"] = {self.stats_period: stats}``; the
    project issue list accepts ``24h`` and ``14d``."""
    buckets = [[1739577600, 3], [1739664000, 5.0]]
    (got,) = await list_issues(answer, [issue(stats={period: buckets})], stats_period=period)
    (seen,) = answer[1]
    assert seen.query["statsPeriod"] == period
    assert got.stats == {period: [[1739577600.0, 3.0], [1739664000.0, 5.0]]}
    assert json.loads(msgspec.json.encode(got))["stats"] == {period: buckets}
