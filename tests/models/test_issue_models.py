"""Issues, tags, organizations and projects, in the shapes Sentry sent over the years."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import msgspec
import pytest
from model_helpers import UTC, body, decode

from sentry_async.models import Issue, IssueProject, Organization, Project, TagDetail

# --- issues ---------------------------------------------------------------------------------


def test_current_issue_list_shape() -> None:
    first, second = decode("issues-list.json", list[Issue])
    assert first.id == "7301122450" and first.short_id == "LEDGER-API-2F"
    assert first.count == "1204" and first.count_int == 1204 and first.user_count == 17
    assert first.first_seen == datetime(2025, 11, 2, 8, 14, 55, 118000, tzinfo=UTC)
    assert first.last_seen == datetime(2026, 1, 1, 23, 41, 7, tzinfo=UTC)
    assert first.project == IssueProject(
        id="4508812", name="ledger-api", slug="ledger-api", platform="python"
    )
    assert first.assigned_to is not None and first.assigned_to.type == "team"
    assert first.assigned_to.email is None
    assert first.metadata["severity"] == 0.42
    assert first.inbox is not None and first.inbox.reason == 2
    assert first.owners is not None and first.owners[0].owner == "team:311"
    assert first.lifetime is not None and first.lifetime["count"] == "1204"
    assert first.filtered is None
    assert first.annotations[0]["displayName"] == "LIN-88"
    assert first.substatus == "escalating" and first.priority == "high"
    assert first.matching_event_id == "c0ffee0000000000000000000000beef"
    stats = first.stats
    assert stats is not None and list(stats) == ["24h"]
    assert len(stats["24h"]) == 24
    assert stats["24h"][1] == (1767225600 + 3600, 3)
    assert second.issue_category == "performance"
    assert second.status_details == {"ignoreUntilEscalating": True}
    assert second.first_seen == datetime(2026, 1, 1, 19, 0, 2, 500000, tzinfo=UTC)
    assert second.filtered is not None and second.filtered["count"] == "1"


def test_minimal_issue_stubs_fill_every_other_field_with_defaults() -> None:
    issues = decode("issues-list-minimal.json", list[Issue])
    assert [i.short_id for i in issues] == ["KITE-Q", "KITE-P"]
    stub = issues[0]
    assert stub.level == "fatal" and stub.status == "unresolved"
    assert stub.last_seen == datetime(2024, 2, 11, 6, 30, 41, 904512, tzinfo=UTC)
    assert stub.project is None and stub.first_seen is None and stub.assigned_to is None
    assert stub.count is None and stub.count_int is None
    assert stub.stats is None and stub.stats_raw == msgspec.Raw(b"null")
    assert stub.metadata == {} and stub.tags == [] and stub.activity == []
    assert msgspec.json.decode(msgspec.json.encode(stub)) == body("issues-list-minimal.json")[0]


def test_self_hosted_2018_issue_list() -> None:
    (issue,) = decode("issues-list-selfhosted-2018.json", list[Issue])
    assert issue.permalink == "10.20.30.40/sentry/shopfront/issues/204/"
    assert issue.project is not None and issue.project.platform is None
    assert issue.priority is None and issue.substatus is None and issue.issue_type is None
    assert issue.platform is None and issue.is_unhandled is None
    assert issue.count_int == 77
    assert issue.stats == {"24h": [(1528106400.0, 2.0), (1528110000.0, 0.0)]}


def test_issue_detail_fields() -> None:
    issue = decode("issue-detail.json", Issue)
    assert issue.metadata["severity"] == 0 and isinstance(issue.metadata["severity"], int)
    assert issue.assigned_to is not None and issue.assigned_to.email == "marta@fernhill.example"
    assert [a["type"] for a in issue.activity] == ["set_escalating", "first_seen"]
    assert issue.seen_by[0]["emails"][0]["is_verified"] is True
    assert issue.first_release == {"version": "ledger-api@3.18.0"} and issue.last_release is None
    assert [(t.key, t.name, t.total_values) for t in issue.tags] == [
        ("environment", "Environment", 1204),
        ("release", "Release", 1190),
        ("server_name", "Server", 1204),
    ]
    assert issue.participants[0]["type"] == "user" and issue.user_report_count == 1
    stats = issue.stats
    assert stats is not None and sorted(stats) == ["24h", "30d"]
    assert len(stats["30d"]) == 30


def test_seer_era_issue_detail() -> None:
    issue = decode("issue-detail-seer.json", Issue)
    assert issue.status == "resolved" and issue.substatus is None
    assert issue.metadata["severity"] == 0.87
    assert issue.metadata["autofix"]["steps"][1]["changes"][0]["pull_request"]["pr_number"] == 412
    assert issue.status_details["inNextRelease"] is True
    assert issue.subscription_details == {"disabled": True}
    assert [a["type"] for a in issue.activity] == [
        "set_resolved_in_release",
        "set_regression",
        "first_seen",
    ]
    assert issue.activity[0]["user"]["options"]["timezone"] == "UTC"
    assert issue.logger == "celery" and issue.user_count == 0


def test_old_issue_detail_with_float_stats_buckets() -> None:
    issue = decode("issue-detail-float-stats.json", Issue)
    stats = issue.stats
    assert stats is not None
    assert stats["24h"][0] == (1552608000.0, 0.0) and stats["24h"][4] == (
        1552608000.0 + 4 * 3600,
        4,
    )
    assert len(stats["30d"]) == 30
    assert issue.first_release is not None and issue.first_release["newGroups"] == 3
    assert issue.project is not None and issue.project.platform is None
    assert issue.tags == [] and issue.metadata == {"type": "MemoryError", "value": ""}


def test_issue_stats_are_decoded_only_when_read() -> None:
    page = [
        {"id": "1", "stats": {"24h": [[10, "not a number"]]}},
        {"id": "2", "stats": {"24h": [[10.5, 3], [3610, 0]], "14d": []}},
        {"id": "3", "stats": None},
    ]
    bad, good, empty = msgspec.json.decode(msgspec.json.encode(page), type=list[Issue])
    assert good.stats == {"24h": [(10.5, 3.0), (3610.0, 0.0)], "14d": []}
    assert empty.stats is None
    assert bytes(bad.stats_raw) == b'{"24h":[[10,"not a number"]]}'
    with pytest.raises(
        msgspec.ValidationError, match=r"issue 1 `stats`: Expected `float`, got `str`"
    ):
        _ = bad.stats
    assert json.loads(msgspec.json.encode(good))["stats"] == page[1]["stats"]


@pytest.mark.parametrize(
    ("count", "expected"), [("25", 25), (25, 25), ("17283712", 17283712), ("lots", None)]
)
def test_issue_count_is_a_string_or_an_int(count: Any, expected: int | None) -> None:
    issue = msgspec.json.decode(msgspec.json.encode({"id": "9", "count": count}), type=Issue)
    assert issue.count == count and issue.count_int == expected


def test_tag_detail() -> None:
    tag = decode("issue-tag-detail.json", TagDetail)
    assert (tag.key, tag.name, tag.total_values, tag.unique_values) == (
        "browser",
        "Browser",
        311,
        3,
    )
    assert [v.count for v in tag.top_values] == [190, 101, 20]
    assert tag.top_values[1].query == 'browser:"Safari 18.2"'
    assert tag.top_values[1].last_seen == datetime(2026, 1, 1, 20, 2, 12, 1000, tzinfo=UTC)
    assert tag.top_values[2].value is None
    assert tag.top_values[2].first_seen == datetime(2025, 12, 19, 9, tzinfo=UTC)


# --- organizations and projects -------------------------------------------------------------


def test_organizations_list() -> None:
    fernhill, kestrel = decode("organizations-list.json", list[Organization])
    assert fernhill.slug == "fernhill" and fernhill.require_2fa is True
    assert fernhill.links is not None and fernhill.links.region_url == "https://de.sentry.io"
    assert fernhill.status is not None and fernhill.status.id == "active"
    assert fernhill.avatar is not None and fernhill.avatar.avatar_type == "upload"
    assert "global-views" in fernhill.features and fernhill.has_auth_provider is True
    assert kestrel.links is None and kestrel.avatar is not None
    assert kestrel.avatar.avatar_uuid is None and kestrel.features == []
    assert kestrel.status is not None and kestrel.status.name == "pending deletion"
    assert kestrel.date_created == datetime(2016, 9, 1, tzinfo=UTC)


def test_projects_list_and_project_detail() -> None:
    ledger, console = decode("projects-list.json", list[Project])
    assert ledger.latest_release == {"version": "ledger-api@3.18.2"}
    assert ledger.latest_deploys is None and ledger.environments == [
        "production",
        "staging",
        "canary",
    ]
    assert ledger.first_event == datetime(2024, 10, 3, 12, 31, 9, 117000, tzinfo=UTC)
    assert ledger.team is not None and ledger.team["slug"] == "payments"
    assert console.first_event is None and console.latest_release is None and console.team is None
    assert console.platform == "" and console.latest_deploys is not None
    detail = decode("project-detail.json", Project)
    assert detail.slug == "nimbus" and detail.organization is not None
    assert detail.organization["slug"] == "kestrel-labs"
    assert detail.latest_release is not None and detail.latest_release["id"] == 991204
    assert detail.status == "active" and detail.color == "#bf3f9a"
