"""The fake's short ids are Sentry's: the project slug, a dash, a per-project counter in base 32.

Pinned against Sentry's server code: ``Group.qualified_short_id`` (src/sentry/models/group.py)
is ``f"{project.slug.upper()}-{base32_encode(short_id)}"``, the counter starting at 1 in each
project, with ``BASE32_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"``
(src/sentry/utils/numbers.py). ``parse_short_id`` splits at the last ``[\\s_-]`` before an
alphanumeric tail, lower-cases the slug and ``base32_decode``s the tail, which upper-cases
it and reads ``O`` as 0, ``I`` and ``L`` as 1 (``U`` is no digit). A short id reaches the
issue of that project with that counter: ``shortids/``, an issue path
(``get_group_with_redirect``) and ``shortIdLookup=1`` alike.
"""

from __future__ import annotations

import anyio
import pytest
from _fake_http import org_get

from sentry_async import NotFound
from sentry_async.testing import FakeSentry, FakeSentryFactory
from sentry_async.testing._builder import IssueBuilder

ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def base32(number: int) -> str:
    """Sentry's ``base32_encode``, written out again so the test does not trust the fake's."""
    out = ""
    while number:
        number, digit = divmod(number, 32)
        out = ALPHABET[digit] + out
    return out or "0"


async def _backend(factory: FakeSentryFactory, count: int) -> tuple[FakeSentry, list[IssueBuilder]]:
    """The small seeded data plus organization ``acme`` with ``count`` issues in ``backend``."""
    server = await factory()
    backend = server.builder.add_organization("acme").add_project("backend")
    return server, [backend.add_issue(f"E{n}: boom", events=1) for n in range(1, count + 1)]


async def test_built_issues_count_in_base_32(fake_sentry_factory: FakeSentryFactory) -> None:
    _, issues = await _backend(fake_sentry_factory, 33)
    assert [issues[n - 1].short_id for n in (1, 10, 16, 31, 32, 33)] == [
        "BACKEND-1",
        "BACKEND-A",
        "BACKEND-G",
        "BACKEND-Z",
        "BACKEND-10",
        "BACKEND-11",
    ]
    assert [i.short_id for i in issues] == [f"BACKEND-{base32(n)}" for n in range(1, 34)]


async def test_seeded_short_ids_carry_the_project_slug(fake_sentry: FakeSentry) -> None:
    data = fake_sentry.data
    for org in data.orgs:
        for project in org.projects:
            assert [i.short_id for i in project.issues] == [
                f"{project.slug.upper()}-{base32(n)}" for n in range(1, len(project.issues) + 1)
            ]
    project = data.orgs[0].projects[0]
    assert project.issues[0].short_id == "PROJECT-0-0-1"
    assert len(project.issues) > 16 and project.issues[16].short_id == "PROJECT-0-0-H"


async def test_a_seeded_short_id_is_found(fake_sentry: FakeSentry) -> None:
    project = fake_sentry.data.orgs[0].projects[1]
    for issue in (project.issues[0], project.issues[16]):
        with anyio.fail_after(10):
            status, body, _ = await org_get(fake_sentry, f"shortids/{issue.short_id}/", [])
        assert status == 200
        assert (body["groupId"], body["shortId"]) == (issue.id, issue.short_id)
        assert (body["projectSlug"], body["organizationSlug"]) == (project.slug, "org-0")
        assert body["shortId"].startswith(f"{project.slug.upper()}-")


@pytest.mark.parametrize(
    ("given", "number"),
    [
        ("BACKEND-G", 16),
        ("BACKEND-10", 32),
        ("BACKEND-11", 33),
        ("backend-g", 16),  # the slug is lower-cased, the number upper-cased
        ("Backend-1o", 32),  # O reads as 0
        ("BACKEND-I", 1),  # I and L read as 1
        ("BACKEND-l", 1),
        ("BACKEND_G", 16),  # any of [\s_-] separates
        ("BACKEND G", 16),
        (" BACKEND-G ", 16),  # stripped
    ],
)
async def test_a_short_id_decodes_as_sentry_does(
    fake_sentry_factory: FakeSentryFactory, given: str, number: int
) -> None:
    server, issues = await _backend(fake_sentry_factory, 33)
    with anyio.fail_after(10):
        status, body, _ = await org_get(server, f"shortids/{given}/", [], org="acme")
    assert status == 200, body
    assert body["groupId"] == issues[number - 1].id
    assert body["shortId"] == f"BACKEND-{base32(number)}"


@pytest.mark.parametrize(
    "given",
    [
        "BACKEND-U",  # not a base-32 digit
        "BACKEND-12",  # issue 34: none
        "BACKEND-0",
        "BACKEND",  # no separator before an alphanumeric tail
        "BACKEND-G-",
        "PROJECT-0-0-1",  # another organization's project
        "OTHER-1",
    ],
)
async def test_a_short_id_that_names_no_issue_is_a_404(
    fake_sentry_factory: FakeSentryFactory, given: str
) -> None:
    server, _ = await _backend(fake_sentry_factory, 33)
    with anyio.fail_after(10):
        status, _, _ = await org_get(server, f"shortids/{given}/", [], org="acme")
    assert status == 404


async def test_short_ids_reach_the_issue_through_the_client(
    fake_sentry_factory: FakeSentryFactory,
) -> None:
    server, issues = await _backend(fake_sentry_factory, 32)
    async with server.client() as sentry:
        with anyio.fail_after(10):
            got = await sentry.issues.get("acme", "backend-g")
            hits = await sentry.issues.list(
                "acme", query="BACKEND-10", short_id_lookup=True
            ).collect()
            resolved = await sentry.organizations.resolve_short_id("acme", "BACKEND-G")
    assert (got.id, got.short_id) == (issues[15].id, "BACKEND-G")
    assert [i.id for i in hits] == [issues[31].id]
    assert resolved.group is not None and resolved.group.id == issues[15].id


async def test_a_renamed_project_renames_its_short_ids(
    fake_sentry_factory: FakeSentryFactory,
) -> None:
    """The short id is made from the project's slug when asked, as ``qualified_short_id``
    is: a rename changes it, and the old one names nothing (no ``GroupRedirect`` is kept for a
    rename). A slug may start with ``_`` (``MIXED_SLUG_PATTERN``), and the client takes it."""
    server, issues = await _backend(fake_sentry_factory, 16)
    server.data.rename_project("acme", "backend", "_web-2")
    assert issues[15].short_id == "_WEB-2-G"
    async with server.client() as sentry:
        with anyio.fail_after(10):
            got = await sentry.issues.get("acme", "_WEB-2-G")
            with pytest.raises(NotFound):
                await sentry.issues.get("acme", "BACKEND-G")
    assert (got.id, got.short_id) == (issues[15].id, "_WEB-2-G")
