"""Data shaped by the test: factory keywords and the builder, seen through the client."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import anyio
import pytest

from sentry_async.testing import FakeSentry, FakeSentryFactory, seed_config
from sentry_async.testing.pytest_plugin import FIXED_NOW


async def test_factory_keywords_shape_the_seeded_data(
    fake_sentry_factory: FakeSentryFactory,
) -> None:
    server = await fake_sentry_factory(orgs=1, projects=2, issues=3, events_per_issue=4)
    assert server.data.org_slugs() == ["org-0"]
    assert len(server.data.project_slugs("org-0")) == 2
    issues = server.data.issue_ids("org-0")
    assert len(issues) == 2 * 3
    assert {len(server.data.events_for_issue(i)) for i in issues} == {4}
    async with server.client() as sentry:
        with anyio.fail_after(10):
            listed = await sentry.issues.list("org-0", query="").collect()
    assert sorted(i.id for i in listed) == sorted(issues)


async def test_no_orgs_means_an_empty_server(fake_sentry_factory: FakeSentryFactory) -> None:
    server = await fake_sentry_factory(orgs=0)
    async with server.client() as sentry:
        with anyio.fail_after(10):
            assert await sentry.organizations.list().collect() == []


@pytest.mark.parametrize(
    ("keywords", "named"),
    [
        ({"projects": -1}, "projects"),
        ({"issues": 1.5}, "issues"),
        ({"events_per_issue": 0}, "events_per_issue"),
        ({"events_per_issue": (3, 2)}, "events_per_issue"),
        ({"days": 0}, "days"),
        ({"scale": "huge"}, "scale"),
    ],
)
def test_bad_factory_keywords_are_refused_by_name(keywords: dict, named: str) -> None:
    with pytest.raises(ValueError, match=named):
        seed_config(**keywords)


@pytest.mark.parametrize(
    ("keywords", "named"),
    [
        ({"rate_limits": "x"}, "rate_limits"),
        ({"link_host": 5}, "link_host"),
        ({"token": 5}, "token"),
        ({"token": ""}, "token"),
        ({"legacy_links": "yes"}, "legacy_links"),
        ({"regions": "us"}, "regions"),
        ({"regions": ("us", "us")}, "regions"),
        ({"events_per_issue": 2.5}, "events_per_issue"),
        ({"port": -5}, "port"),
        ({"port": 70_000}, "port"),
        ({"seed": "x"}, "seed"),
        ({"host": ""}, "host"),
    ],
)
def test_bad_server_keywords_are_a_value_error_naming_them(keywords: dict, named: str) -> None:
    factory = FakeSentryFactory()
    try:
        with pytest.raises(ValueError, match=named):
            factory.start(**keywords)
    finally:
        factory.close()
    assert factory.servers == []


async def test_built_issues_and_events_are_served_as_chosen(
    fake_sentry_factory: FakeSentryFactory,
) -> None:
    server = await fake_sentry_factory(orgs=0)
    acme = server.builder.add_organization("acme", name="Acme Inc.")
    backend = acme.add_project("backend", platform="python")
    crash = backend.add_issue(
        "MemoryError: out of memory",
        level="fatal",
        events=0,
        payload={"culprit": "worker.resize in run"},
    )
    when = FIXED_NOW - timedelta(hours=2)
    event_id = crash.add_event(
        timestamp=when,
        environment="staging",
        tags={"browser": "Firefox", "level": "fatal"},
        user={"id": "42", "email": "ada@example.com"},
        payload={"message": "resize failed", "contexts": {"app": {"type": "app"}}},
    )
    older = crash.add_event(timestamp=when - timedelta(days=1), user="7")
    backend.add_issue("KeyError: 'id'", level="warning", status="resolved", events=2)

    async with server.client() as sentry:
        with anyio.fail_after(10):
            assert [o.slug for o in await sentry.organizations.list().collect()] == ["acme"]
            issues = await sentry.issues.list("acme", query="", project=backend.id).collect()
            issue = await sentry.issues.get("acme", crash.id)
            event = await sentry.events.latest("acme", crash.id)
            summaries = await sentry.events.for_issue("acme", crash.id).collect()
            raw = await sentry.events.get_raw("acme", "backend", older)

    assert [(i.title, i.level, i.status) for i in issues] == [  # last seen first
        ("KeyError: 'id'", "warning", "resolved"),
        ("MemoryError: out of memory", "fatal", "unresolved"),
    ]
    assert issue.short_id == crash.short_id == "BACKEND-1"
    assert issue.culprit == "worker.resize in run"
    assert issue.count_int == 2 and issue.user_count == 2
    assert issue.last_seen == when and issue.first_seen == when - timedelta(days=1)
    assert event.event_id == event_id and event.message == "resize failed"
    assert event.date_created == when
    assert event.user is not None and event.user.email == "ada@example.com"
    assert {t.key: t.value for t in event.tags}.items() >= {
        "browser": "Firefox",
        "level": "fatal",
        "environment": "staging",
    }.items()
    assert [s.event_id for s in summaries] == [event_id, older] == crash.event_ids
    assert summaries[0].user is not None and summaries[0].user.id == "42"
    assert {t.key: t.value for t in summaries[0].tags}["browser"] == "Firefox"
    assert b'"id":"7"' in raw


async def test_built_events_are_small_and_default_to_just_before_now(
    fake_sentry: FakeSentry,
) -> None:
    project = fake_sentry.builder.organization("org-1").add_project("jobs")
    issue = project.add_issue("TimeoutError: job 7", events=3)
    stamps = [fake_sentry.data.events_by_id[e].timestamp for e in issue.event_ids]
    now = fake_sentry.now.timestamp()
    assert stamps == [now - 60, now - 120, now - 180]
    async with fake_sentry.client() as sentry:
        with anyio.fail_after(10):
            events = await sentry.events.for_project("org-1", "jobs", full=True).raw().collect()
    assert len(events) == 3 and all(len(bytes(e)) < 20_000 for e in events)


def test_builder_refuses_bad_input_by_name(fake_sentry: FakeSentry) -> None:
    builder = fake_sentry.builder
    with pytest.raises(ValueError, match="organization slug"):
        builder.add_organization("Acme Inc")
    with pytest.raises(ValueError, match="already exists"):
        builder.add_organization("org-0")
    with pytest.raises(KeyError, match="no organization 'nope'"):
        builder.organization("nope")
    project = builder.organization("org-0").add_project("mobile")
    with pytest.raises(ValueError, match="level must be one of"):
        project.add_issue("Boom", level="critical")
    with pytest.raises(ValueError, match="status must be one of"):
        project.add_issue("Boom", status="open")
    issue = project.add_issue("Boom", events=0)
    with pytest.raises(ValueError, match="timezone-aware"):
        issue.add_event(timestamp=datetime(2026, 1, 1))
    with pytest.raises(ValueError, match="event_id"):
        issue.add_event(event_id="not-hex")
    assert issue.add_event(timestamp=datetime(2026, 1, 1, tzinfo=timezone.utc))


async def test_built_issues_are_in_the_default_issue_list_unless_made_low(
    fake_sentry_factory: FakeSentryFactory,
) -> None:
    server = await fake_sentry_factory(orgs=0)
    project = server.builder.add_organization("acme").add_project("backend")
    shown = [project.add_issue(f"Error{n}: boom") for n in range(4)]
    low = project.add_issue("Warning: minor", priority="low")
    medium = project.add_issue("Error: medium", priority="medium")
    with pytest.raises(ValueError, match="priority must be one of"):
        project.add_issue("Boom", priority="urgent")
    async with server.client() as sentry:
        with anyio.fail_after(10):
            default = {i.id for i in await sentry.issues.list("acme").collect()}
            everything = await sentry.issues.list("acme", query="").collect()
    assert default == {i.id for i in shown} | {medium.id}
    assert {i.id: i.priority for i in everything}[low.id] == "low"


async def test_an_added_event_updates_its_neighbours_links(fake_sentry: FakeSentry) -> None:
    issue = fake_sentry.builder.organization("org-0").add_project("web").add_issue("E: x")
    (first,) = issue.event_ids
    async with fake_sentry.client() as sentry:
        with anyio.fail_after(10):
            before = await sentry.events.for_issue_event("org-0", issue.id, first)
            newer = issue.add_event(timestamp=fake_sentry.now - timedelta(seconds=1))
            after = await sentry.events.for_issue_event("org-0", issue.id, first)
            latest = await sentry.events.latest("org-0", issue.id)
    assert before.next_event_id is None
    assert after.next_event_id == newer == latest.event_id
    assert latest.previous_event_id == first


async def test_built_tags_and_users_are_served_by_every_endpoint(
    fake_sentry: FakeSentry,
) -> None:
    issue = fake_sentry.builder.organization("org-0").add_project("web").add_issue(
        "MemoryError: oom", events=0
    )
    issue.add_event(tags={"browser": "Firefox"}, user={"id": "42", "email": "ada@example.com"})
    async with fake_sentry.client() as sentry:
        with anyio.fail_after(10):
            tag = await sentry.issues.tag("org-0", issue.id, "browser")
            users = await sentry.issues.tag_values("org-0", issue.id, "user").collect()
            rows = await sentry.discover.query(
                "org-0", fields=["id", "user.email"], query=f"issue.id:{issue.id}"
            ).collect()
    assert [(v.value, v.count) for v in tag.top_values] == [("Firefox", 1)]
    assert [v.value for v in users] == ["id:42"]
    assert [row["user.email"] for row in rows] == ["ada@example.com"]


async def test_built_organizations_live_in_a_region_of_a_multi_region_server(
    fake_sentry_factory: FakeSentryFactory,
) -> None:
    server = await fake_sentry_factory(regions=("us", "de"))
    acme = server.builder.add_organization("acme")
    eu = server.builder.add_organization("eu-corp", region="de")
    for org in (acme, eu):
        org.add_project("backend").add_issue("KeyError: x")
    with pytest.raises(ValueError, match="region must be one of"):
        server.builder.add_organization("nowhere", region="jp")
    async with server.client() as sentry:
        with anyio.fail_after(15):
            slugs = {o.slug for o in await sentry.organizations.list().collect()}
            issues = [await sentry.issues.list(s, query="").collect() for s in ("acme", "eu-corp")]
    assert {"acme", "eu-corp"} <= slugs
    assert [len(found) for found in issues] == [1, 1]
    assert acme.record.region in ("us", "de") and eu.record.region == "de"
