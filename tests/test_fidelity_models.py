"""Models for what ``expand=`` asks for, the detail endpoints' fields, and nullable fields.

Shapes from Sentry's OpenAPI spec (``listAnOrganization'sIssues``, ``retrieveAProject``,
``retrieveAnOrganization``, the tag detail) and its serializers.
"""

from __future__ import annotations

import anyio
import msgspec

from sentry_async import SentryClient
from sentry_async.models import (
    DebugMetaEntry,
    Event,
    EventSummary,
    Issue,
    IssueHashSummary,
    Organization,
    Project,
    TagDetail,
)
from sentry_async.testing import FakeSentry, Fault

ORG = "org-0"


def test_expanded_issue_fields_are_typed() -> None:
    body = {
        "id": "1",
        "inbox": {
            "reason": 0,
            "reason_details": None,
            "date_added": "2026-01-01T00:00:00Z",
        },
        "owners": [
            {"type": "ownershipRule", "owner": "team:7", "date_added": "2026-01-02T00:00:00Z"}
        ],
        "integrationIssues": [{"id": "9", "key": "JIRA-1", "url": "https://jira/1"}],
        "sentryAppIssues": [],
        "latestEventHasAttachments": True,
        "sessionCount": 1200,
        "forecast": {"data": [10, 12], "date_added": 1767225600.0},
        "priorityLockedAt": None,
    }
    issue = msgspec.json.decode(msgspec.json.encode(body), type=Issue)
    assert issue.inbox is not None and issue.inbox.reason == 0
    assert issue.owners is not None and issue.owners[0].owner == "team:7"
    assert issue.owners[0].date_added is not None
    assert issue.integration_issues == [{"id": "9", "key": "JIRA-1", "url": "https://jira/1"}]
    assert issue.sentry_app_issues == []
    assert issue.latest_event_has_attachments is True
    assert issue.session_count == 1200
    assert issue.forecast == {"data": [10, 12], "date_added": 1767225600.0}


def test_nullable_fields_decode() -> None:
    event = msgspec.json.decode(
        b'{"id": "a", "contexts": null, "formatted": {"format": "markdown", "content": "# E"}}',
        type=Event,
    )
    assert event.contexts is None and event.context_of("os") is None
    assert event.formatted is not None and event.formatted.content == "# E"
    assert event.formatted.format == "markdown"
    tag = msgspec.json.decode(b'{"key": "level", "topValues": null}', type=TagDetail)
    assert tag.top_values is None


def test_project_and_organization_detail_fields() -> None:
    project = msgspec.json.decode(
        msgspec.json.encode(
            {
                "id": "2",
                "slug": "web",
                "defaultEnvironment": None,
                "resolveAge": 720,
                "subjectPrefix": "[web] ",
                "scrubIPAddresses": True,
                "verifySSL": False,
                "sensitiveFields": ["card"],
                "options": {"sentry:token": "x"},
                "hasReplays": True,
                "platforms": ["javascript"],
            }
        ),
        type=Project,
    )
    assert project.resolve_age == 720 and project.subject_prefix == "[web] "
    assert project.scrub_ip_addresses is True and project.verify_ssl is False
    assert project.sensitive_fields == ["card"] and project.has_replays is True
    assert project.platforms == ["javascript"] and project.default_environment is None
    org = msgspec.json.decode(
        b'{"id": "1", "slug": "acme", "access": ["org:read"], "allowSuperuserAccess": false,'
        b' "allowMemberProjectCreation": true, "onboardingTasks": [{"task": "setup"}]}',
        type=Organization,
    )
    assert org.access == ["org:read"] and org.allow_member_project_creation is True
    assert org.onboarding_tasks == [{"task": "setup"}]


async def test_discover_over_no_projects_on_an_older_server(
    fake_sentry: FakeSentry, client: SentryClient
) -> None:
    """Older servers answered a query over no projects with a bare ``[]``."""
    fake_sentry.faults.add(Fault("status", status=200, body=[], path=r"/events/$"))
    with anyio.fail_after(10):
        pages = [p async for p in client.discover.query(ORG, fields=["id"]).pages()]
    assert [p.items for p in pages] == [[]] and pages[0].meta is None


async def test_hash_rows_without_full_hold_summaries(
    fake_sentry: FakeSentry, client: SentryClient
) -> None:
    issue_id = fake_sentry.data.issue_ids(ORG)[0]
    with anyio.fail_after(10):
        rows = await client.issues.hashes(ORG, issue_id, full=False).collect()
        full = await client.issues.hashes(ORG, issue_id).collect()
    assert rows and all(isinstance(r, IssueHashSummary) for r in rows)
    assert all(isinstance(r.latest_event, EventSummary) for r in rows)
    assert all(r.latest_event is not None and r.latest_event.event_type for r in rows)
    assert all(isinstance(r.latest_event, Event) for r in full)
    assert fake_sentry.requests[0].param("full") == "0"


def test_null_pairs_and_images_keep_their_entries() -> None:
    """Sentry passes a request's header and query pairs and debug images through as
    stored (``Http.get_api_context``, ``DebugMeta.to_json``), ``null`` items included: the
    entry stays typed, its other fields readable."""
    body = {
        "id": "9fac2ceed9344f2bbfdd1fdacb0ed9b1",
        "entries": [
            {
                "type": "request",
                "data": {
                    "method": "POST",
                    "url": "https://shop.example/checkout",
                    "query": [["page", "2"], None],
                    "headers": [["Content-Type", "application/json"], None],
                    "data": {"sku": 1},
                },
            },
            {
                "type": "debugmeta",
                "data": {"images": [{"type": "macho", "image_addr": "0x1000"}, None]},
            },
        ],
    }
    event = msgspec.json.decode(msgspec.json.encode(body), type=Event)
    request = event.request
    assert request is not None
    assert (request.method, request.url) == ("POST", "https://shop.example/checkout")
    assert request.query == [("page", "2"), None]
    assert request.headers == [("Content-Type", "application/json"), None]
    debug = event.entry(DebugMetaEntry)
    assert debug is not None
    assert debug.images == [{"type": "macho", "image_addr": "0x1000"}, None]
