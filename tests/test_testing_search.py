"""The fake's search: ``key:value`` terms are filters on an attribute or a tag, as in
Sentry's grammar (``src/sentry/api/event_search.py``), free text is one phrase per run of
words, and what the fake cannot evaluate is a 400 naming the term."""

from __future__ import annotations

import json
from datetime import timedelta

import anyio
import pytest

from sentry_async import SentryClient
from sentry_async.errors import BadRequest
from sentry_async.testing import FakeSentry
from sentry_async.testing._search import Term, parse_query, term_matches
from sentry_async.testing._state import ApiError


def _build(server: FakeSentry) -> tuple[str, str, str]:
    backend = server.builder.organization("org-0").add_project("search")
    oom = backend.add_issue("MemoryError: out of memory", level="fatal", events=0)
    oom.add_event(
        timestamp=server.now - timedelta(hours=2),
        tags={"browser": "Firefox"},
        user={"id": "42", "email": "ada@example.com"},
    )
    key = backend.add_issue("KeyError: 'name'", level="error", events=0)
    key.add_event(timestamp=server.now - timedelta(hours=1), tags={"browser": "Chrome 120"})
    return backend.id, oom.id, key.id


async def _issues(sentry: SentryClient, project: str, query: str) -> list[str]:
    found = await sentry.issues.list("org-0", query=query, project=project).collect()
    return sorted(i.id for i in found)


async def test_issue_search_filters_on_attributes_and_built_tags(
    fake_sentry: FakeSentry, client: SentryClient
) -> None:
    project, oom, key = _build(fake_sentry)
    both = sorted([oom, key])
    cases = {
        "is:unresolved": both,
        "is:unresolved level:fatal": [oom],
        "!level:fatal": [key],
        "level:[fatal, error]": both,
        "browser:Firefox": [oom],
        "tags[browser]:Firefox": [oom],
        "!browser:Firefox": [key],
        'browser:"Chrome 120"': [key],
        "browser:Chr*": [key],
        "browser:[Firefox, Safari]": [oom],
        "has:browser": both,
        "!has:os": both,
        "os:linux": [],
        "user.email:ada@example.com": [oom],
        "MemoryError": [oom],
        "OUT of MEMORY": [oom],
        "MemoryError memory": [],
        '"out of memory"': [oom],
        "is:ignored": [],
        "is:new": both,
        "is:ongoing": [],
    }
    cases[f"issue.id:{oom}"] = [oom]
    with anyio.fail_after(20):
        found = {q: await _issues(client, project, q) for q in cases}
    assert found == cases


async def test_event_searches_filter_on_attributes_and_built_tags(
    fake_sentry: FakeSentry, client: SentryClient
) -> None:
    project, oom, _ = _build(fake_sentry)
    cases = {
        "": 1,
        "browser:Firefox": 1,
        "browser:Chrome": 0,
        "level:fatal": 1,
        "!level:fatal": 0,
        "user.email:ada@example.com": 1,
        "MemoryError memory": 0,
        "out of memory": 1,
        "event.type:error": 1,
    }
    with anyio.fail_after(20):
        for_issue = {
            q: len(await client.events.for_issue("org-0", oom, query=q).collect()) for q in cases
        }
        # A project's events read ``query`` as text the message contains, not as search.
        for_project = {
            q: len(await client.events.for_project("org-0", "search", query=q).collect())
            for q in ("browser:Firefox", "!has:browser", "OUT OF memory", "Error")
        }
        discover = {
            q: len(
                await client.discover.query(
                    "org-0", fields=["id", "title"], query=q, period="1d", project=project
                ).collect()
            )
            for q in ("browser:Firefox", "level:fatal", "!browser:Firefox", "user.id:42")
        }
    assert for_issue == cases
    assert for_project == {"browser:Firefox": 0, "!has:browser": 0, "OUT OF memory": 1, "Error": 2}
    assert discover == {"browser:Firefox": 1, "level:fatal": 1, "!browser:Firefox": 1, "user.id:42": 1}


@pytest.mark.parametrize(
    ("query", "detail"),
    [
        ("level:fatal OR level:error", 'Boolean statements containing "OR" or "AND" are not supported in this search'),
        ("is:nope", 'Invalid value for "is" search, valid values are'),
        ("browser:", "Empty string after 'browser:'"),
        ("issue.priority:urgent", "Invalid priority value of 'urgent'"),
        ("assigned:me", "assigned:me"),
        ("is:assigned", "is:assigned"),
        ("timesSeen:>10", "timesSeen:>10"),
    ],
)
async def test_issue_search_refuses_what_sentry_refuses_or_the_fake_cannot_evaluate(
    fake_sentry: FakeSentry, client: SentryClient, query: str, detail: str
) -> None:
    with anyio.fail_after(10), pytest.raises(BadRequest) as raised:
        await client.issues.list("org-0", query=query).collect()
    assert detail in str(raised.value.detail)


async def test_event_search_refuses_terms_the_fake_cannot_evaluate(
    fake_sentry: FakeSentry, client: SentryClient
) -> None:
    _, oom, _ = _build(fake_sentry)
    with anyio.fail_after(10):
        for query in ("level:fatal OR level:error", "timestamp:>2024-01-01", "(browser:Firefox)"):
            with pytest.raises(BadRequest) as raised:
                await client.events.for_issue("org-0", oom, query=query).collect()
            assert "fake" in str(raised.value.detail), query


@pytest.mark.parametrize(
    ("query", "terms"),
    [
        ("a b level:fatal c", [("message", ("a b",), False), ("level", ("fatal",), False), ("message", ("c",), False)]),
        ('"quoted words" browser:"Chrome 120"', [("message", ("quoted words",), False), ("browser", ("Chrome 120",), False)]),
        ('browser:[Firefox, "Chrome 120"]', [("browser", ("Firefox", "Chrome 120"), False)]),
        ("!browser:[a, b]", [("browser", ("a", "b"), True)]),
        ("browser:>5", [("browser", (">5",), False)]),
        ("browser:!=Firefox", [("browser", ("Firefox",), True)]),
        ("has:tags[browser] !has:os", [("tags[browser]", ("",), True), ("os", ("",), False)]),
        ("url:http://x/y", [("url", ("http://x/y",), False)]),
    ],
)
def test_the_query_parses_as_sentrys_grammar(query: str, terms: list) -> None:
    assert [(t.key, t.values, t.negated) for t in parse_query(query)] == terms


@pytest.mark.parametrize(
    ("query", "detail"),
    [
        ("browser:[a, ]", "Lists should not have empty values"),
        ('browser:a"b', "Invalid quote at 'a\"b'"),
        ("has:[a, b]", '"in" syntax invalid for "has" search'),
        ('has:"x y"', 'Invalid format for "has" search'),
        ("is:unresolved", '"is:" queries are not supported in this search.'),
        ("a\nb", "Parse error at"),
        ("count():>1", "count():>1"),
        ("issue.id:>5", "issue.id:>5"),
    ],
)
def test_the_query_refuses_what_sentry_refuses(query: str, detail: str) -> None:
    with pytest.raises(ApiError) as raised:
        parse_query(query)
    assert raised.value.status == 400 and detail in json.loads(raised.value.body)["detail"]


@pytest.mark.parametrize(
    ("wanted", "actual", "hit"),
    [
        ("Fire*", "Firefox", True),
        ("fire*", "Firefox", True),
        ("Fire\\*", "Fire*", True),
        ("Fire\\*", "Firefox", False),
        ("Fire\\*f*", "Fire*fox", True),
        ("Firefox", "firefox", False),
    ],
)
def test_tag_values_match_exactly_or_by_wildcard(wanted: str, actual: str, hit: bool) -> None:
    assert term_matches(Term("browser", (wanted,)), actual) is hit
