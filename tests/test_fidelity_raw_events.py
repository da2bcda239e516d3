"""Single events as raw bytes, and the fake's project events as Sentry serves them.

Pinned against Sentry's server code: ``ProjectEventsEndpoint.get``
(``src/sentry/issues/endpoints/project_events.py``: a ``query`` is a case-insensitive
substring of the event's ``message``, ``positionCaseInsensitive``, no search grammar and no
``environment``; ``full`` and ``sample`` are on for ``1`` or ``true``), ``GroupEventsEndpoint``
(``group_events.py``: ``full`` on for ``1`` or ``true``) and ``wrap_event_response``
(``project_event_details.py``, called by it and by ``group_event_details.py``: the
neighbours are picked among the events of the requested environments).
"""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import aiohttp
import anyio
import msgspec
import pytest

from sentry_async import DecodeError, NotFound, SentryClient
from sentry_async.testing import FakeSentry, Fault

ORG = "acme"
PROJECT = "backend"
EVENT_DETAILS = "/projects/{org}/{project}/events/{event_id}/"
PROJECT_EVENTS = "/projects/{org}/{project}/events/"


def _project(server: FakeSentry) -> Any:
    return server.builder.add_organization(ORG).add_project(PROJECT)


async def _get(server: FakeSentry, path: str, params: list[tuple[str, str]]) -> tuple[int, Any]:
    async with (
        aiohttp.ClientSession() as http,
        http.get(
            f"{server.url}/api/0/{path}",
            params=params,
            headers={"Authorization": f"Bearer {server.token}"},
        ) as reply,
    ):
        raw = await reply.read()
        return reply.status, msgspec.json.decode(raw) if raw else None


# -- events.get_raw ---------------------------------------------------------------------------

MALFORMED = {
    "truncated": {"kind": "truncated_json"},
    "html": {"kind": "status", "status": 200, "body": "<html>maintenance</html>",
             "content_type": "application/json"},
    "empty": {"kind": "status", "status": 200, "body": b"", "content_type": "application/json"},
}


@pytest.mark.parametrize("fault", MALFORMED.values(), ids=MALFORMED.keys())
async def test_get_raw_resends_a_success_body_that_is_not_json(
    fake_sentry: FakeSentry, client: SentryClient, fault: dict[str, Any]
) -> None:
    """As ``get()`` and the list's raw mode do: the GET is safe to repeat, and what is
    handed out is the JSON Sentry sent, byte for byte."""
    event_id = _project(fake_sentry).add_issue("KeyError: 'x'").event_ids[0]
    with anyio.fail_after(20):
        clean = await client.events.get_raw(ORG, PROJECT, event_id)
        fake_sentry.faults.add(Fault(path="/events/", times=1, **fault))
        raw = await client.events.get_raw(ORG, PROJECT, event_id)
    assert raw == clean and json.loads(raw)["id"] == event_id
    assert isinstance(raw, bytes)
    assert len(fake_sentry.requests.matching("GET", EVENT_DETAILS)) == 3


async def test_get_raw_is_a_decode_error_when_every_answer_is_malformed(
    fake_sentry: FakeSentry, client: SentryClient
) -> None:
    event_id = _project(fake_sentry).add_issue("KeyError: 'x'").event_ids[0]
    fake_sentry.faults.add(Fault("truncated_json", path="/events/", times=None))
    with anyio.fail_after(20), pytest.raises(DecodeError):
        await client.events.get_raw(ORG, PROJECT, event_id)
    assert len(fake_sentry.requests.matching("GET", EVENT_DETAILS)) == 2  # QUICK_RETRY


# -- project events: query and environment ----------------------------------------------------


def _two_messages(server: FakeSentry) -> tuple[str, str]:
    project = _project(server)
    first = project.add_issue("KeyError: 'user_id'", level="error", events=0).add_event(
        environment="production", payload={"message": "KeyError: 'user_id' (failed)"}
    )
    second = project.add_issue("Warning thing", level="warning", events=0).add_event(
        environment="staging",
        payload={"message": "level:error appears literally in this message"},
    )
    return first, second


@pytest.mark.parametrize(
    ("query", "found"),
    [
        ("level:error", ["second"]),
        ("LEVEL:ERROR", ["second"]),
        ("(failed)", ["first"]),
        ("KeyError: 'user_id'", ["first"]),
        ("user_id", ["first"]),
        ("appears literally", ["second"]),
        ("browser:Firefox", []),
        ("!has:browser", []),
        ("", ["first", "second"]),
    ],
)
async def test_a_project_events_query_is_text_the_message_contains(
    fake_sentry: FakeSentry, client: SentryClient, query: str, found: list[str]
) -> None:
    first, second = _two_messages(fake_sentry)
    names = {first: "first", second: "second"}
    with anyio.fail_after(10):
        rows = await client.events.for_project(ORG, PROJECT, query=query).collect()
    assert sorted(names[r.event_id] for r in rows) == found


async def test_the_project_events_list_does_not_read_environment(
    fake_sentry: FakeSentry,
) -> None:
    first, second = _two_messages(fake_sentry)
    path = f"projects/{ORG}/{PROJECT}/events/"
    with anyio.fail_after(10):
        status, body = await _get(fake_sentry, path, [("environment", "staging")])
        unknown, _ = await _get(fake_sentry, path, [("environment", "nowhere")])
    assert status == unknown == 200
    assert sorted(e["id"] for e in body) == sorted([first, second])


async def test_an_issues_events_keep_the_search_grammar(
    fake_sentry: FakeSentry, client: SentryClient
) -> None:
    first, _ = _two_messages(fake_sentry)
    issue_id = fake_sentry.data.events_by_id[first].issue.id  # type: ignore[union-attr]
    with anyio.fail_after(10):
        hit = await client.events.for_issue(ORG, issue_id, query="level:error").collect()
        miss = await client.events.for_issue(ORG, issue_id, query="level:warning").collect()
    assert [e.event_id for e in hit] == [first] and miss == []


# -- neighbours -------------------------------------------------------------------------------


def _three_events(server: FakeSentry) -> tuple[str, dict[str, str]]:
    issue = _project(server).add_issue("KeyError: 'x'", events=0)
    events = {
        "prod_new": issue.add_event(
            timestamp=server.now - timedelta(hours=1), environment="production"
        ),
        "staging": issue.add_event(
            timestamp=server.now - timedelta(hours=2), environment="staging"
        ),
        "prod_old": issue.add_event(
            timestamp=server.now - timedelta(hours=3), environment="production"
        ),
    }
    return issue.id, events


async def test_an_issue_events_neighbours_are_in_the_requested_environments(
    fake_sentry: FakeSentry, client: SentryClient
) -> None:
    issue_id, events = _three_events(fake_sentry)
    names = {v: k for k, v in events.items()}
    with anyio.fail_after(10):
        staging = await client.events.latest(ORG, issue_id, environment="staging")
        prod = await client.events.for_issue_event(
            ORG, issue_id, events["prod_old"], environment="production"
        )
        both = await client.events.for_issue_event(
            ORG, issue_id, events["staging"], environment=["production", "staging"]
        )
        anywhere = await client.events.for_issue_event(ORG, issue_id, events["staging"])
        # The event itself need not be in them: its neighbours are.
        across = await client.events.for_issue_event(
            ORG, issue_id, events["staging"], environment="production"
        )

    def pair(event: Any) -> tuple[str | None, str | None]:
        return names.get(event.next_event_id), names.get(event.previous_event_id)

    assert names[staging.event_id] == "staging" and pair(staging) == (None, None)
    assert pair(prod) == ("prod_new", None)
    assert pair(both) == pair(anywhere) == pair(across) == ("prod_new", "prod_old")


async def test_project_event_details_send_the_neighbours(fake_sentry: FakeSentry) -> None:
    _, events = _three_events(fake_sentry)
    names = {v: k for k, v in events.items()}
    path = f"projects/{ORG}/{PROJECT}/events/{events['staging']}/"
    with anyio.fail_after(10):
        _, anywhere = await _get(fake_sentry, path, [])
        _, staging = await _get(fake_sentry, path, [("environment", "staging")])
        _, prod_new = await _get(
            fake_sentry, f"projects/{ORG}/{PROJECT}/events/{events['prod_new']}/",
            [("environment", "production")],
        )
        missing, _ = await _get(fake_sentry, path, [("environment", "nowhere")])

    def pair(body: Any) -> tuple[str | None, str | None]:
        return names.get(body["nextEventID"]), names.get(body["previousEventID"])

    assert pair(anywhere) == ("prod_new", "prod_old")
    assert pair(staging) == (None, None)
    assert pair(prod_new) == (None, "prod_old")
    assert missing == 404  # get_environments: a name the organization never saw


async def test_an_added_event_moves_the_project_event_details_neighbours(
    fake_sentry: FakeSentry, client: SentryClient
) -> None:
    issue = _project(fake_sentry).add_issue("KeyError: 'x'", events=0)
    first = issue.add_event(timestamp=fake_sentry.now - timedelta(hours=2))
    with anyio.fail_after(10):
        before = json.loads(await client.events.get_raw(ORG, PROJECT, first))
        newer = issue.add_event(timestamp=fake_sentry.now - timedelta(hours=1))
        after = json.loads(await client.events.get_raw(ORG, PROJECT, first))
    assert before["nextEventID"] is None and after["nextEventID"] == newer


# -- full -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "full"),
    [("1", True), ("true", True), ("TRUE", False), ("True", False), ("0", False),
     ("false", False), ("yes", False), ("", False)],
)
@pytest.mark.parametrize("listing", ["project", "issue"])
async def test_full_is_on_for_1_or_true_as_both_event_lists_read_it(
    fake_sentry: FakeSentry, value: str, full: bool, listing: str
) -> None:
    issue = _project(fake_sentry).add_issue("KeyError: 'x'", events=12)
    path = (
        f"projects/{ORG}/{PROJECT}/events/"
        if listing == "project"
        else f"organizations/{ORG}/issues/{issue.id}/events/"
    )
    with anyio.fail_after(10):
        status, body = await _get(fake_sentry, path, [("full", value)])
    assert status == 200
    assert all(("entries" in e) is full for e in body)
    # A project's pages of full payloads hold at most 10 events (an issue's as many as
    # asked); the same reading decides it.
    assert len(body) == (10 if full and listing == "project" else 12)


async def test_the_event_lists_never_send_full_0(
    fake_sentry: FakeSentry, client: SentryClient
) -> None:
    """Older servers read any non-empty ``full`` on a project's events, ``0`` included, as
    on: ``full=False`` sends nothing."""
    issue = _project(fake_sentry).add_issue("KeyError: 'x'", events=2)
    with anyio.fail_after(10):
        await client.events.for_project(ORG, PROJECT, full=False).collect()
        await client.events.for_issue(ORG, issue.id, full=False).collect()
        await client.events.for_project(ORG, PROJECT, full=True).collect()
    sent = [r.params("full") for r in fake_sentry.requests]
    assert sent == [[], [], ["1"]]


async def test_get_raw_of_an_unknown_event_is_not_found(
    fake_sentry: FakeSentry, client: SentryClient
) -> None:
    _project(fake_sentry)
    with anyio.fail_after(10), pytest.raises(NotFound):
        await client.events.get_raw(ORG, PROJECT, "ab" * 16)
