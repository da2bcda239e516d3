"""Issue ids, bulk calls, the default query, direct hits and the issue stream's cursors.

Pinned against Sentry's server code: issue paths take numeric or short ids
(``get_group_with_redirect``); bulk calls take numeric ``id=`` only; the default query is
``DEFAULT_QUERY = "is:unresolved issue.priority:[high, medium]"``; the ``inbox`` sort
takes an unresolved ``is:for_review`` search only (``inbox_search``); an event-id query (or a
short id with ``shortIdLookup=1``) answers a direct hit with ``X-Sentry-Direct-Hit: 1`` and no
``Link``; the stream is cut by ``SequencePaginator`` (whole seconds x 1000, so ties are
frequent) with cursors ``value:offset:is_prev``.
"""

from __future__ import annotations

from urllib.parse import urlencode

import aiohttp
import anyio
import msgspec
import pytest
from _fake_http import org_get

from sentry_async import BulkPartialError, RetryPolicy, SentryClient, ServerError
from sentry_async.resources.issues import ALL_UNRESOLVED
from sentry_async.testing import FakeSentry, FakeSentryFactory, Fault, RecordedRequest
from sentry_async.testing._data import DEFAULT_PRIORITIES, EventRecord, IssueRecord

ORG = "org-0"


def _to(server: FakeSentry, suffix: str) -> list[RecordedRequest]:
    return [r for r in server.requests if r.path.endswith(suffix)]


# -- issue ids ------------------------------------------------------------------------------


async def test_short_ids_work_wherever_an_issue_id_goes(
    fake_sentry: FakeSentry, client: SentryClient
) -> None:
    issue_id = fake_sentry.data.issue_ids(ORG)[0]
    record = fake_sentry.data.issues_by_id[issue_id]
    short = record.short_id
    with anyio.fail_after(10):
        issue = await client.issues.get(ORG, short)
        events = await client.events.for_issue(ORG, short, limit=3).collect()
        latest = await client.events.latest(ORG, short.lower())
        tag = await client.issues.tag(ORG, short, "environment")
    assert issue.id == issue_id
    assert [e.event_id for e in events] == [e.event_id for e in record.events[:3]]
    assert latest.event_id == record.events[0].event_id
    assert tag.key == "environment"
    assert fake_sentry.requests[0].path == f"/api/0/organizations/{ORG}/issues/{short}/"


@pytest.mark.parametrize(
    "bad",
    [
        "\u0661\u0662\u0663",
        "\uff11\uff12",
        "PROJ 1A",
        "-1A",
        "PROJ-",
        "../1",
        "1/2",
        "",
        True,
        0,
        1.5,
    ],
)
async def test_anything_else_is_refused_before_sending(
    fake_sentry: FakeSentry, client: SentryClient, bad: object
) -> None:
    """Only ASCII digits are numeric ids: Arabic-Indic or full-width digits pass
    ``str.isdigit()`` but are not ids to Sentry."""
    for call in (
        lambda: client.issues.get(ORG, bad),  # type: ignore[arg-type]
        lambda: client.events.latest(ORG, bad),  # type: ignore[arg-type]
        lambda: client.issues.bulk_update(ORG, [bad], status="resolved"),  # type: ignore[list-item]
    ):
        with pytest.raises(ValueError, match="issue id"):
            await call()
    with pytest.raises(ValueError, match="issue id"):
        client.events.for_issue(ORG, bad)  # type: ignore[arg-type]
    assert fake_sentry.requests == []


async def test_bulk_calls_send_short_ids_as_numeric_ids(
    fake_sentry: FakeSentry, client: SentryClient
) -> None:
    ids = fake_sentry.data.issue_ids(ORG)[:3]
    shorts = [fake_sentry.data.issues_by_id[i].short_id for i in ids]
    with anyio.fail_after(10):
        result = await client.issues.bulk_update(
            ORG, [shorts[0], int(ids[1]), shorts[2]], is_bookmarked=True
        )
    (bulk,) = [r for r in fake_sentry.requests if r.method == "PUT"]
    assert bulk.params("id") == ids
    assert result.ids == ids
    assert all(fake_sentry.data.issues_by_id[i].extra["isBookmarked"] is True for i in ids)


async def test_fake_refuses_request_lines_over_8_kb(
    fake_sentry: FakeSentry, client: SentryClient
) -> None:
    """nginx in front of Sentry: 1000 seven-digit ids (11 KB) never reach the server."""
    query = urlencode([("id", str(5_000_000 + n)) for n in range(1000)])
    async with (
        aiohttp.ClientSession() as http,
        http.put(
            f"{fake_sentry.url}/api/0/organizations/{ORG}/issues/?{query}",
            json={"status": "resolved"},
            headers={"Authorization": f"Bearer {fake_sentry.token}"},
        ) as reply,
    ):
        assert reply.status == 414
    ids = [str(5_000_000 + n) for n in range(1000)]
    with anyio.fail_after(10):
        result = await client.issues.bulk_delete(ORG, ids)
    assert result.calls == 2
    assert [i for r in _to(fake_sentry, "/issues/")[1:] for i in r.params("id")] == ids


QUICK_BACKOFF = RetryPolicy(backoff_base=0.01, backoff_max=0.05)
"""The default attempts, milliseconds apart."""


async def test_a_failed_later_chunk_says_which_ids_changed(
    fake_sentry_factory: FakeSentryFactory,
) -> None:
    server = fake_sentry_factory.start(scale="default")
    ids = server.data.issue_ids(ORG)
    before = {i: server.data.issues_by_id[i].status for i in ids}
    server.faults.add(
        Fault("status", status=503, method="PUT", path=r"/issues/$", after=1, times=None)
    )
    async with SentryClient(server.token, base_url=server.url, retry=QUICK_BACKOFF) as client:
        with anyio.fail_after(10), pytest.raises(BulkPartialError) as caught:
            await client.issues.bulk_update(ORG, ids, status="resolved")
    error = caught.value
    first, second = [r.params("id") for r in server.requests if r.method == "PUT"][:2]
    # A 5xx may come from a proxy while Sentry carries on: the failed call is uncertain.
    assert error.done == first and error.uncertain == second
    assert error.not_done == ids[len(first) + len(second) :]
    assert isinstance(error.error, ServerError) and error.__cause__ is error.error
    assert all(server.data.issues_by_id[i].status == "resolved" for i in first)
    unchanged = error.uncertain + error.not_done
    assert all(server.data.issues_by_id[i].status == before[i] for i in unchanged)
    assert "not changed" in str(error)


# -- the default query ----------------------------------------------------------------------


async def test_no_query_leaves_out_low_priority_issues(
    fake_sentry: FakeSentry, client: SentryClient
) -> None:
    """Sentry's default is ``is:unresolved issue.priority:[high, medium]``."""
    data = fake_sentry.data
    default = set(data.issue_ids(ORG, status="unresolved", priority=DEFAULT_PRIORITIES))
    unresolved = set(data.issue_ids(ORG, status="unresolved"))
    assert default < unresolved
    with anyio.fail_after(10):
        listed = {i.id for i in await client.issues.list(ORG).collect()}
        every = {i.id for i in await client.issues.list(ORG, query=ALL_UNRESOLVED).collect()}
    assert listed == default
    assert every == unresolved
    assert [r.param("query") for r in fake_sentry.requests][:1] == [None]


# -- direct hits ----------------------------------------------------------------------------


async def test_an_event_id_query_is_a_direct_hit(
    fake_sentry: FakeSentry, client: SentryClient
) -> None:
    """Pins current servers; a short id is a direct hit only with ``shortIdLookup=1``."""
    issue_id = fake_sentry.data.issue_ids(ORG)[5]
    record = fake_sentry.data.issues_by_id[issue_id]
    event_id = record.events[0].event_id
    with anyio.fail_after(10):
        pages = [p async for p in client.issues.list(ORG, query=event_id).pages()]
        by_short = [
            p
            async for p in client.issues.list(
                ORG, query=record.short_id, short_id_lookup=True
            ).pages()
        ]
        plain = [p async for p in client.issues.list(ORG, query="", limit=1).pages()]
    for found in (pages, by_short):
        (page,) = found
        assert page.direct_hit and not page.paginated
        assert [i.id for i in page.items] == [issue_id]
    assert pages[0].items[0].matching_event_id == event_id
    assert not plain[0].direct_hit
    assert _to(fake_sentry, "/issues/")[1].param("shortIdLookup") == "1"


async def test_an_event_id_in_several_issues_answers_them_without_the_header(
    fake_sentry: FakeSentry, client: SentryClient
) -> None:
    """Event ids are unique per project: the same id in two projects is two groups."""
    first, second = (fake_sentry.data.issues_by_id[i] for i in fake_sentry.data.issue_ids(ORG)[:2])
    original = first.events[0]
    twin = EventRecord(
        original.index,
        original.event_id,
        second,
        second.project,
        original.timestamp,
        original.kind,
        original.user,
        original.environment,
    )
    second.project.events.append(twin)
    with anyio.fail_after(10):
        pages = [p async for p in client.issues.list(ORG, query=original.event_id).pages()]
    (page,) = pages
    assert not page.direct_hit
    assert sorted(i.id for i in page.items) == sorted({first.id, second.id})


# -- the inbox sort -------------------------------------------------------------------------


async def test_the_inbox_sort_needs_an_inbox_search(
    fake_sentry: FakeSentry, client: SentryClient
) -> None:
    # src/sentry/issues/endpoints/organization_group_index.py inbox_search: only status,
    # for_review, date and assigned_or_suggested terms; is:for_review required; unresolved
    # status only.
    cases = {
        "is:unresolved": "Sort key 'inbox' only supported for inbox search",
        "is:for_review is:resolved": "Inbox search only works for 'unresolved' status",
        "is:for_review": "Inbox search only works for 'unresolved' status",
        "is:unresolved is:for_review failure": (
            "Invalid search terms for 'inbox' search: ['message=failure']"
        ),
    }
    with anyio.fail_after(10):
        for query, detail in cases.items():
            status, body, _ = await org_get(
                fake_sentry, "issues/", [("sort", "inbox"), ("query", query)]
            )
            assert (status, body) == (400, {"detail": detail}), query
        status, body, _ = await org_get(fake_sentry, "issues/", [("sort", "inbox")])
        assert status == 400 and body["detail"].startswith("Invalid search terms for 'inbox'")
        # The seeded issues left the inbox a week after their first event: three put back.
        marked = fake_sentry.data.issue_ids(ORG, status="unresolved")[:3]
        await client.issues.bulk_update(ORG, marked, inbox=True)
        inbox = await client.issues.list(
            ORG, sort="inbox", query="is:unresolved is:for_review", limit=3
        ).collect()
    assert sorted(issue.id for issue in inbox) == sorted(marked)
    with pytest.raises(ValueError, match="is:for_review"):
        client.issues.list(ORG, sort="inbox")
    with pytest.raises(ValueError, match="is:for_review"):
        client.issues.list(ORG, sort="inbox", query="is:unresolved")


# -- an issue's events: event-id queries ----------------------------------------------------


async def test_an_event_id_query_on_an_issues_events_is_a_direct_hit(
    fake_sentry: FakeSentry,
) -> None:
    # src/sentry/issues/endpoints/group_events.py _get_events_snuba ->
    # src/sentry/api/helpers/events.py get_direct_hit_response: the one matching event, in
    # full, with X-Sentry-Direct-Hit and no pagination.
    issue_id = fake_sentry.data.issue_ids(ORG)[3]
    event = fake_sentry.data.issues_by_id[issue_id].events[-1]
    dashed = f"{event.event_id[:8]}-{event.event_id[8:12]}-{event.event_id[12:16]}-" + (
        f"{event.event_id[16:20]}-{event.event_id[20:]}"
    )
    with anyio.fail_after(10):
        status, body, headers = await org_get(
            fake_sentry, f"issues/{issue_id}/events/", [("query", dashed.upper())]
        )
        other = fake_sentry.data.issues_by_id[fake_sentry.data.issue_ids(ORG)[4]].events[0]
        miss = await org_get(fake_sentry, f"issues/{issue_id}/events/", [("query", other.event_id)])
    assert status == 200 and headers.get("X-Sentry-Direct-Hit") == "1"
    assert "Link" not in headers
    assert [e["eventID"] for e in body] == [event.event_id]
    assert "entries" in body[0], "a direct hit answers the full event"
    assert miss[0] == 200 and miss[1] == [] and "X-Sentry-Direct-Hit" not in miss[2]


async def test_a_direct_hit_among_an_issues_event_summaries_keeps_its_type(
    fake_sentry: FakeSentry, client: SentryClient
) -> None:
    """The direct hit is the full payload (``type``, not ``event.type``) even without
    ``full``: the summary takes its type from it, and ``.raw()`` hands the payload out."""
    issue_id = fake_sentry.data.issue_ids(ORG)[3]
    event = fake_sentry.data.issues_by_id[issue_id].events[-1]
    listing = client.events.for_issue(ORG, issue_id, query=event.event_id)
    with anyio.fail_after(10):
        pages = [page async for page in listing.pages()]
        full = await client.events.for_issue(ORG, issue_id, full=True, query=event.event_id).collect()
        raw = await listing.raw().collect()
    assert [len(page) for page in pages] == [1] and pages[0].direct_hit
    (summary,) = pages[0].items
    assert (summary.event_id, summary.event_type) == (event.event_id, event.kind)
    assert [(e.event_id, e.type, bool(e.entries)) for e in full] == [
        (event.event_id, event.kind, True)
    ]
    (payload,) = [msgspec.json.decode(r) for r in raw]
    assert payload["type"] == event.kind and "event.type" not in payload and payload["entries"]


# -- the stream's cursors -------------------------------------------------------------------


def _tie(server: FakeSentry, count: int) -> tuple[list[str], int]:
    """Give ``count`` unresolved issues the same last-seen second; returns them and it."""
    data = server.data
    ids = data.issue_ids(ORG, status="unresolved")[:count]
    moment = data.now_ts - 60.25
    for issue_id in ids:
        data.issues_by_id[issue_id].last_seen = moment
        data.invalidate_issue(data.issues_by_id[issue_id])
    return ids, int(moment) * 1000


async def test_issue_cursors_are_sequence_cursors_through_ties(
    fake_sentry: FakeSentry, client: SentryClient
) -> None:
    """Pins the current default search path (``SequencePaginator``); the Postgres path's
    ``DateTimePaginator`` cursors have the same form, and the client only passes them back."""
    tied, score = _tie(fake_sentry, 70)
    with anyio.fail_after(10):
        pages = [
            p async for p in client.issues.list(ORG, query=ALL_UNRESOLVED, page_size=25).pages()
        ]
    ids = [i.id for p in pages for i in p.items]
    assert len(ids) == len(set(ids)) == len(fake_sentry.data.issue_ids(ORG, status="unresolved"))
    # The tie sorts first (its second is the newest): offsets count rows served in it.
    assert ids[:70] == sorted(tied, key=lambda i: -int(i))
    assert [p.next_cursor for p in pages[:2]] == [f"{score}:25:0", f"{score}:50:0"]
    third = pages[2].next_cursor
    assert third is not None and not third.startswith(f"{score}:"), "past the tie"


async def test_rows_inserted_at_the_head_cause_no_repeats_and_no_gaps(
    fake_sentry: FakeSentry, client: SentryClient
) -> None:
    """What an offset-treating client gets wrong: the value cursor holds its place."""
    _tie(fake_sentry, 60)
    data = fake_sentry.data
    expected = data.issue_ids(ORG, status="unresolved")
    project = data.org(ORG).projects[0]  # type: ignore[union-attr]
    seen: list[str] = []
    naive: list[str] = []
    made = 0

    def insert_at_head() -> None:
        """A new issue, seen now: it sorts above every cursor already handed out."""
        nonlocal made
        made += 1
        issue = IssueRecord(
            index=3 * made,
            id=str(8_000_000 + made),
            number=len(project.issues) + 1,
            project=project,
            title="NewError: just now",
            exc_type="NewError",
            level="error",
            first_seen=data.now_ts + made,
            last_seen=data.now_ts + made,
        )
        project.issues.append(issue)
        data.issues_by_id[issue.id] = issue
        data.invalidate_issue(issue)

    with anyio.fail_after(15):
        async for page in client.issues.list(ORG, query=ALL_UNRESOLVED, page_size=20).pages():
            seen.extend(i.id for i in page.items)
            insert_at_head()
        # A client that keeps the first cursor's value and counts rows as a plain offset.
        async with aiohttp.ClientSession() as http:
            value: str | None = None
            for _ in range(len(expected) // 20 + 2):
                params = {"query": ALL_UNRESOLVED, "limit": "20"}
                if value is not None:
                    params["cursor"] = f"{value}:{len(naive)}:0"
                async with http.get(
                    f"{fake_sentry.url}/api/0/organizations/{ORG}/issues/",
                    params=params,
                    headers={"Authorization": f"Bearer {fake_sentry.token}"},
                ) as reply:
                    body = msgspec.json.decode(await reply.read())
                    link = reply.headers["Link"]
                if value is None:
                    value = link.rsplit('cursor="', 1)[1].split(":")[0]
                naive.extend(i["id"] for i in body)
                insert_at_head()
    assert sorted(seen) == sorted(expected), "every issue once, none of those made later"
    assert len(naive) != len(set(naive)) or set(naive) != set(expected), (
        "a client reading these cursors as plain offsets must repeat or miss rows"
    )


async def test_hits_are_an_estimate_after_the_first_page(
    fake_sentry: FakeSentry, client: SentryClient
) -> None:
    total = len(fake_sentry.data.issue_ids(ORG))
    with anyio.fail_after(10):
        pages = [p async for p in client.issues.list(ORG, query="", page_size=40).pages()]
    assert pages[0].hits == total
    assert all(p.hits is not None and p.hits != total for p in pages[1:])


# -- the serializer's shape -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("params", "stats", "lifetime", "base"),
    [
        ([], ["24h"], True, True),
        ([("groupStatsPeriod", "14d")], ["14d"], True, True),
        ([("groupStatsPeriod", "")], None, True, True),
        ([("groupStatsPeriod", "auto"), ("statsPeriod", "7d")], ["auto"], True, True),
        ([("collapse", "stats")], None, False, True),
        ([("collapse", "lifetime")], ["24h"], False, True),
        ([("collapse", "base"), ("collapse", "stats")], None, False, False),
    ],
)
async def test_the_list_is_shaped_by_stats_period_and_collapse(
    fake_sentry: FakeSentry,
    params: list[tuple[str, str]],
    stats: list[str] | None,
    lifetime: bool,
    base: bool,
) -> None:
    """``StreamGroupSerializerSnuba.serialize``: ``stats`` keyed by the period (none for an
    empty one, ``calculate_stats_period``); ``lifetime`` only while ``stats`` is not
    collapsed; ``collapse=base`` keeps the id, the seen stats and ``isUnhandled``."""
    status, body, _ = await org_get(fake_sentry, "issues/", [("query", ""), *params])
    assert status == 200
    for issue in body:
        assert (sorted(issue["stats"]) if "stats" in issue else None) == stats
        assert ("lifetime" in issue) is lifetime
        assert ("status" in issue) is base
        assert "inbox" not in issue and "owners" not in issue
    if not base:
        assert set(body[0]) == {"id", "count", "userCount", "firstSeen", "lastSeen", "isUnhandled"}
    if stats == ["auto"]:
        # A week at the 6-hour rollup Sentry picks for 7 days.
        (series,) = body[0]["stats"].values()
        assert series[1][0] - series[0][0] == 6 * 3600


async def test_the_list_sends_expands_only_when_asked(fake_sentry: FakeSentry) -> None:
    expand = ["inbox", "owners", "sessions", "integrationIssues", "latestEventHasAttachments"]
    _, plain, _ = await org_get(fake_sentry, "issues/", [("query", "")])
    _, expanded, _ = await org_get(
        fake_sentry, "issues/", [("query", ""), *(("expand", e) for e in expand)]
    )
    names = {"inbox", "owners", "sessionCount", "integrationIssues", "latestEventHasAttachments"}
    assert not names & set(plain[0])
    assert names <= set(expanded[0])


async def test_the_detail_has_30_days_and_honours_collapse(
    fake_sentry: FakeSentry, client: SentryClient
) -> None:
    """``GroupDetailsEndpoint.get``: ``stats`` is ``{"24h", "30d"}`` unless collapsed;
    ``tags`` and the releases go with ``collapse=tags``/``release``."""
    issue_id = fake_sentry.data.issue_ids(ORG)[0]
    with anyio.fail_after(10):
        full = await client.issues.get(ORG, issue_id)
        bare = await client.issues.get(ORG, issue_id, collapse=["stats", "tags", "release"])
    assert full.stats is not None and sorted(full.stats) == ["24h", "30d"]
    assert len(full.stats["30d"]) == 30 and full.tags and full.first_release is not None
    assert not bare.stats and not bare.tags and bare.first_release is None



# -- direct hits' scope ---------------------------------------------------------------------


async def test_an_event_id_outside_the_member_projects_is_no_direct_hit(
    fake_sentry: FakeSentry, client: SentryClient
) -> None:
    """The event is looked up in the requested projects plus the member projects only."""
    org = fake_sentry.builder.organization(ORG)
    hidden = org.add_project("not-mine", member=False)
    event_id = hidden.add_issue("Hidden boom", priority="high").add_event()
    with anyio.fail_after(10):
        page = await client.issues.list(ORG, query=event_id).pages().__anext__()
        asked = await client.issues.list(ORG, query=event_id, project=-1).pages().__anext__()
    assert not page.direct_hit and page.items == []
    assert asked.direct_hit and len(asked.items) == 1


async def test_a_direct_hit_needs_access_to_the_project(
    fake_sentry: FakeSentry, client: SentryClient
) -> None:
    """Closed membership: a short id or event id of a project the user cannot access is
    not answered (``has_project_access``), even with ``project=-1``."""
    org = fake_sentry.builder.organization(ORG)
    org.record.open_membership = False
    hidden = org.add_project("not-mine", member=False)
    issue = hidden.add_issue("Hidden boom", priority="high")
    event_id = issue.add_event()
    with anyio.fail_after(10):
        by_short = await client.issues.list(
            ORG, query=issue.record.short_id, short_id_lookup=True
        ).pages().__anext__()
        by_event = await client.issues.list(ORG, query=event_id, project=-1).pages().__anext__()
    assert not by_short.direct_hit and not by_event.direct_hit
    assert issue.record.id not in {i.id for i in [*by_short.items, *by_event.items]}



async def test_a_skip_of_more_than_a_page_skips_that_many_items(client: SentryClient) -> None:
    with anyio.fail_after(20):
        every = [i.id for i in await client.issues.list(ORG, query="", page_size=7).collect()]
        for skip in (3, 7, 10, 23):
            got = await client.issues.list(ORG, query="", page_size=7, skip=skip).collect()
            assert [i.id for i in got] == every[skip:]
