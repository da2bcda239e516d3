"""The fake's issue paths as Sentry's URL patterns and ``GroupEndpoint`` read them, and
events added to a deleted issue.

Pinned against Sentry's server code:

- ``src/sentry/api/urls.py``: ``create_group_urls`` is included at
  ``organizations/<org>/(?:issues|groups)/`` and at ``(?:issues|groups)/``; its event
  details, like ``eventids/``, match ``(?:latest|oldest|recommended|\\d+|[A-Fa-f0-9-]{32,36})``
  only, a project's event ``(?:\\d+|[A-Fa-f0-9]{32})``. Any other path ends at
  ``CatchallEndpoint`` (``src/sentry/api/endpoints/catchall.py``), whose ``dispatch`` skips
  authentication and answers a bare ``HttpResponse(status=404)``, or, for a path without its
  trailing slash, the hint "Route not found, did you forget a trailing slash?".
- ``get_group_with_redirect`` (``src/sentry/models/group.py``): an id ``str.isdigit()`` is
  looked up as ``id=`` (Django's ``int()``: ``05`` and Arabic-Indic five find issue 5; a
  superscript two is a ``ValueError``, a 500).
- ``delete_group_list`` and ``GroupDeletionTask`` delete the issue's ``GroupHash`` rows: a
  later event of its fingerprint makes a new issue.
"""

from __future__ import annotations

from urllib.parse import quote

import aiohttp
import anyio
import msgspec
import pytest
from _fake_http import api_raw, api_send
from test_fake_gaps8 import _acme

from sentry_async.testing import FakeSentry, FakeSentryFactory, RateLimitPolicy

ORG = "acme"
NOT_FOUND = {"detail": "The requested resource does not exist"}
INTERNAL_ERROR = {"detail": "Internal Error", "errorId": "f" * 32}


def _dashed(event_id: str) -> str:
    """An event id as a UUID: 8-4-4-4-12."""
    return "-".join(event_id[a:b] for a, b in ((0, 8), (8, 12), (12, 16), (16, 20), (20, 32)))


# -- /organizations/{org}/groups/{id}/ ---------------------------------------------------------


async def test_the_organizations_groups_spelling_serves_every_issue_view(
    fake_sentry_factory: FakeSentryFactory,
) -> None:
    server, issues = _acme(fake_sentry_factory)
    issue = issues[0]
    tails = ["", "events/", "events/oldest/", "hashes/", "tags/level/", "tags/level/values/"]
    with anyio.fail_after(20):
        for tail in tails:
            issues_spelling = await api_send(
                server, "GET", f"organizations/{ORG}/issues/{issue.id}/{tail}"
            )
            groups_spelling = await api_send(
                server, "GET", f"organizations/{ORG}/groups/{issue.id}/{tail}"
            )
            assert issues_spelling[0] == 200, (tail, issues_spelling)
            assert groups_spelling == issues_spelling, tail
        # A short id needs the organization: this spelling takes one too.
        by_short_id = await api_send(server, "GET", f"organizations/{ORG}/groups/{issue.short_id}/")
        changed = await api_send(
            server, "PUT", f"organizations/{ORG}/groups/{issue.id}/", body={"status": "resolved"}
        )
        deleted = await api_send(server, "DELETE", f"organizations/{ORG}/groups/{issues[1].id}/")
        gone = await api_send(server, "GET", f"organizations/{ORG}/issues/{issues[1].id}/")
    assert by_short_id[0] == 200 and by_short_id[1]["id"] == issue.id
    assert (changed[0], changed[1]["status"]) == (200, "resolved")
    assert deleted[0] == 202
    assert gone == (404, NOT_FOUND)


async def test_the_organizations_groups_spelling_counts_in_the_views_window(
    fake_sentry_factory: FakeSentryFactory,
) -> None:
    """A ``per_group`` limit may name this spelling; it is the view's limit, whichever
    spelling a request takes."""
    policy = RateLimitPolicy(
        limit=50,
        window=3600.0,
        concurrent_limit=None,
        per_group={"GET /organizations/{org}/groups/{issue_id}/": (2, 3600.0, None)},
    )
    server, issues = _acme(fake_sentry_factory, rate_limits=policy)
    issue = issues[0].id
    with anyio.fail_after(10):
        first = await api_send(server, "GET", f"organizations/{ORG}/groups/{issue}/")
        second = await api_send(server, "GET", f"issues/{issue}/")
        third = await api_send(server, "GET", f"organizations/{ORG}/issues/{issue}/")
    assert (first[0], second[0], third[0]) == (200, 200, 429)


# -- URL patterns: the catch-all ----------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    [
        "organizations/acme/issues/{issue}/events/not-an-event/",
        "organizations/acme/groups/{issue}/events/{short}/",
        "issues/{issue}/events/{dashed}x/",
        "organizations/acme/issues/{issue}/events/{long}/",
        "organizations/acme/eventids/not-an-event/",
        "organizations/acme/eventids/{long}/",
        "projects/acme/backend/events/{dashed}/",
        "projects/acme/backend/events/latest/",
    ],
)
async def test_an_event_id_no_url_pattern_matches_is_the_catch_alls_bare_404(
    fake_sentry_factory: FakeSentryFactory, path: str
) -> None:
    """No authentication (none is sent), no body, Django's default type."""
    server, issues = _acme(fake_sentry_factory)
    event_id = issues[0].event_ids[0]
    filled = path.format(
        issue=issues[0].id, short="a" * 31, dashed=_dashed(event_id), long="a" * 37
    )
    with anyio.fail_after(10):
        status, raw, headers = await api_raw(server, "GET", filled, token=None)
    assert (status, raw, headers.get("Content-Type", "")) == (404, b"", "text/html; charset=utf-8")


async def test_event_ids_the_patterns_match_still_reach_their_views(
    fake_sentry_factory: FakeSentryFactory,
) -> None:
    server, issues = _acme(fake_sentry_factory)
    event_id = issues[0].event_ids[0]
    dashed = _dashed(event_id)
    base = f"organizations/{ORG}/issues/{issues[0].id}/events"
    with anyio.fail_after(10):
        found = await api_send(server, "GET", f"{base}/{dashed.upper()}/")
        numeric = await api_send(server, "GET", f"{base}/12345/")
        resolved = await api_send(server, "GET", f"organizations/{ORG}/eventids/{dashed}/")
        project_event = await api_send(server, "GET", f"projects/{ORG}/backend/events/{event_id}/")
        unauthenticated = await api_raw(server, "GET", f"{base}/latest/", token=None)
    assert found[0] == 200 and found[1]["eventID"] == event_id
    assert numeric[0] == 404 and numeric[1]["detail"].startswith("Event not found.")
    assert resolved[0] == 200 and resolved[1]["eventId"] == event_id
    assert project_event[0] == 200
    assert unauthenticated[0] == 401


@pytest.mark.parametrize("content_type", [None, "application/json"])
async def test_a_path_without_its_trailing_slash_is_the_catch_alls_hint(
    fake_sentry: FakeSentry, content_type: str | None
) -> None:
    path = "/api/0/organizations/org-0/issues"
    headers = {} if content_type is None else {"Content-Type": content_type}
    with anyio.fail_after(10):
        async with (
            aiohttp.ClientSession() as http,
            http.get(f"{fake_sentry.url}{path}", headers=headers) as reply,
        ):
            status, raw, kind = reply.status, await reply.read(), reply.headers["Content-Type"]
    hint = "Route not found, did you forget a trailing slash?"
    if content_type is None:
        arrow = " " * len(f"try: {path}") + "^"
        expected = f"{hint}\n\ntry: {path}/\n{arrow}\n".encode()
        assert (status, raw, kind) == (404, expected, "text/plain")
    else:
        assert (status, kind) == (404, "application/json")
        assert msgspec.json.decode(raw) == {"info": f"{hint} try: {path}/"}


# -- issue ids as int() reads them ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("spelling", "canonical"),
    [
        ("organizations/acme/issues/0{id}/", "organizations/acme/issues/{id}/"),
        ("organizations/acme/groups/00{id}/events/", "organizations/acme/issues/{id}/events/"),
        ("issues/0{id}/", "issues/{id}/"),
        ("groups/{arabic}/hashes/", "issues/{id}/hashes/"),
    ],
)
async def test_an_issue_id_with_leading_zeros_or_other_digits_finds_the_issue(
    fake_sentry_factory: FakeSentryFactory, spelling: str, canonical: str
) -> None:
    server, issues = _acme(fake_sentry_factory)
    issue = issues[0].id
    arabic = quote("".join(chr(0x0660 + int(digit)) for digit in issue))
    with anyio.fail_after(10):
        answer = await api_send(server, "GET", spelling.format(id=issue, arabic=arabic))
        expected = await api_send(server, "GET", canonical.format(id=issue))
    assert expected[0] == 200
    assert answer == expected


async def test_a_merged_issues_id_with_leading_zeros_reaches_the_issue_it_went_into(
    fake_sentry_factory: FakeSentryFactory,
) -> None:
    server, issues = _acme(fake_sentry_factory)
    with anyio.fail_after(10):
        merged = await api_send(
            server,
            "PUT",
            f"organizations/{ORG}/issues/",
            [("id", f"0{issues[0].id}"), ("id", f"00{issues[1].id}")],
            {"merge": True},
        )
        under_org = await api_send(server, "GET", f"organizations/{ORG}/issues/0{issues[1].id}/")
        top = await api_send(server, "GET", f"issues/0{issues[1].id}/")
    assert merged[0] == 200 and merged[1]["merge"]["parent"] == issues[0].id
    assert under_org[0] == top[0] == 200
    assert under_org[1]["id"] == top[1]["id"] == issues[0].id


async def test_a_digit_int_cannot_read_is_sentrys_500(
    fake_sentry_factory: FakeSentryFactory,
) -> None:
    """``"²".isdigit()`` is true, so Sentry looks it up as an id; Django's ``int()`` raises."""
    server, _ = _acme(fake_sentry_factory)
    with anyio.fail_after(10):
        under_org = await api_send(server, "GET", f"organizations/{ORG}/issues/{quote('²')}/")
        top = await api_send(server, "GET", f"issues/{quote('5²')}/events/")
    assert under_org == top == (500, INTERNAL_ERROR)


# -- an event added to a deleted issue ----------------------------------------------------------


async def test_an_event_added_to_a_deleted_issue_starts_a_new_issue(
    fake_sentry_factory: FakeSentryFactory,
) -> None:
    server, issues = _acme(fake_sentry_factory)
    deleted = issues[1]
    with anyio.fail_after(10):
        status, _ = await api_send(server, "DELETE", f"organizations/{ORG}/issues/{deleted.id}/")
        assert status == 202
        first = deleted.add_event()
        second = deleted.add_event()
        looked_up = await api_send(server, "GET", f"organizations/{ORG}/eventids/{first}/")
        new_id = looked_up[1]["groupId"]
        new = await api_send(server, "GET", f"organizations/{ORG}/issues/{new_id}/")
        events = await api_send(server, "GET", f"organizations/{ORG}/issues/{new_id}/events/")
        old = await api_send(server, "GET", f"organizations/{ORG}/issues/{deleted.id}/")
    assert new_id != deleted.id
    assert new[0] == 200
    assert (new[1]["title"], new[1]["level"], new[1]["status"]) == (
        deleted.title,
        "error",
        "unresolved",
    )
    assert new[1]["shortId"] == "BACKEND-4" and new[1]["count"] == "2"
    assert {row["eventID"] for row in events[1]} == {first, second}
    assert old == (404, NOT_FOUND)
    assert first not in deleted.event_ids and second not in deleted.event_ids
