"""Every region: organizations listed from each region, calls routed to the org's region,
and the token sent only to hosts the rule allows.

On sentry.io an organization lives in one region and each region lists only its own:
``GET /api/0/users/me/regions/`` names them (``{"regions": [{"name", "url"}]}``).
"""

from __future__ import annotations

import logging
from datetime import timedelta

import anyio
import msgspec
import pytest
from yarl import URL

from sentry_async import NotFound, RetryPolicy, SentryClient, UntrustedHost
from sentry_async._protocol.hosts import token_host_refusal
from sentry_async.models import Organization, OwnedOrganization
from sentry_async.testing import FakeSentry, Fault

FAST = RetryPolicy(attempts=2, backoff_base=0.01, backoff_max=0.05)


async def test_organizations_are_listed_from_every_region(fake_sentry_factory: object) -> None:
    server: FakeSentry = await fake_sentry_factory(regions=("us", "de"))  # type: ignore[operator]
    us, de = server.data.region_urls["us"], server.data.region_urls["de"]
    assert us == server.url != de
    homes = {o.slug: o.region for o in server.data.orgs}
    assert set(homes.values()) == {"us", "de"}
    eu_org = next(slug for slug, region in homes.items() if region == "de")
    async with SentryClient(server.token, base_url=server.url, retry=FAST) as client:
        with anyio.fail_after(15):
            orgs = await client.organizations.list(page_size=1).collect()
            raw = await client.organizations.list().raw().collect()
            # Its calls now go to its region, with the token, without use_region().
            issues = await client.issues.list(eu_org, query="", limit=5).collect()
    assert sorted(o.slug for o in orgs) == sorted(homes)
    assert sorted(msgspec.json.decode(r)["slug"] for r in raw) == sorted(homes)
    assert len(issues) == 5
    port = URL(de).port
    issue_requests = [r for r in server.requests if r.path.endswith("/issues/")]
    assert [r.headers.get("host") for r in issue_requests] == [f"127.0.0.1:{port}"]
    assert all(r.sent_token(server.token) for r in issue_requests)


async def test_an_org_outside_its_region_is_not_found(fake_sentry_factory: object) -> None:
    """What makes the routing matter: the US host does not serve an EU organization."""
    server: FakeSentry = await fake_sentry_factory(regions=("us", "de"))  # type: ignore[operator]
    eu_org = next(o.slug for o in server.data.orgs if o.region == "de")
    async with SentryClient(server.token, base_url=server.url, retry=FAST) as client:
        with anyio.fail_after(10):
            listed = await client.request("GET", "/organizations/", type=list[dict[str, object]])
            with pytest.raises(NotFound):
                await client.organizations.get(eu_org)
    assert eu_org not in {o["slug"] for o in listed}


async def test_an_org_given_by_id_goes_to_its_region(fake_sentry_factory: object) -> None:
    """Sentry takes an organization's id where it takes its slug: the region learnt from
    the list, or from ``use_region``, applies to both."""
    server: FakeSentry = await fake_sentry_factory(regions=("us", "de"))  # type: ignore[operator]
    eu = next(o for o in server.data.orgs if o.region == "de")
    port = URL(server.data.region_urls["de"]).port
    async with SentryClient(server.token, base_url=server.url, retry=FAST) as client:
        with anyio.fail_after(15):
            await client.organizations.list().collect()
            assert (await client.organizations.get(eu.id)).slug == eu.slug
            assert len(await client.projects.list(int(eu.id)).collect()) == len(eu.projects)
    # The base URL plays sentry.io for use_region: it answers the detail, links and all.
    body = server.data.org_body(eu)
    server.faults.add(Fault("status", status=200, body=body, path=rf"/organizations/{eu.slug}/$"))
    async with SentryClient(server.token, base_url=server.url, retry=FAST) as client:
        with anyio.fail_after(15):
            assert await client.organizations.use_region(eu.slug) == server.data.region_urls["de"]
            server.requests.clear()
            assert (await client.organizations.get(eu.id)).slug == eu.slug
            assert (await client.organizations.get(eu.slug)).slug == eu.slug
    assert [r.headers.get("host") for r in server.requests] == [f"127.0.0.1:{port}"] * 2


async def test_a_self_hosted_server_keeps_its_base_url_for_a_region_it_may_not_reach(
    fake_sentry: FakeSentry, caplog: pytest.LogCaptureFixture
) -> None:
    """A self-hosted Sentry names its ``system.url-prefix`` as its only region, often an
    internal name or a plain-http address: the token does not go there, and the base URL
    stays in use, as for a server with no region at all."""
    regions = {"regions": [{"name": "us", "url": fake_sentry.url}]}
    for hostile in (
        "https://sentry.io.evil.com",
        "http://sentry.internal:9000",
        "http://127.0.0.2:9",
        "http://127.0.0.1@127.0.0.2/",
        "http://de.localhost:9",
    ):
        fake_sentry.faults.add(
            Fault(
                "status",
                status=200,
                path=r"/users/me/regions/$",
                body={"regions": [*regions["regions"], {"name": "de", "url": hostile}]},
            )
        )
        caplog.clear()
        async with SentryClient(fake_sentry.token, base_url=fake_sentry.url) as client:
            with anyio.fail_after(10), caplog.at_level(logging.DEBUG, logger="sentry_async"):
                orgs = await client.organizations.list().collect()
            assert client.regions == [("us", client.base_url)]
        assert [o.slug for o in orgs] == fake_sentry.data.org_slugs()
        (line,) = [r.getMessage() for r in caplog.records if "ignoring region" in r.getMessage()]
        assert repr(hostile) in line and f"base URL {client.base_url}" in line
        assert fake_sentry.token not in caplog.text
    assert all(r.headers.get("host") == URL(fake_sentry.url).authority for r in fake_sentry.requests)


async def test_a_monolith_naming_its_url_prefix_is_listed_and_routed_by_base_url(
    fake_sentry: FakeSentry,
) -> None:
    """A monolith answers its url-prefix both in ``/users/me/regions/`` and in each
    organization's ``links.regionUrl``."""
    prefix = "http://sentry.internal:9000"
    org = fake_sentry.data.org_slugs()[0]
    record = fake_sentry.data.org(org)
    assert record is not None
    body = fake_sentry.data.org_body(record)
    body["links"] = {"organizationUrl": prefix, "regionUrl": prefix}
    fake_sentry.faults.add(Fault("status", status=200, body=body, path=rf"/organizations/{org}/$"))
    fake_sentry.faults.add(
        Fault(
            "status",
            status=200,
            path=r"/users/me/regions/$",
            body={"regions": [{"name": "--monolith--", "url": prefix}]},
        )
    )
    async with SentryClient(fake_sentry.token, base_url=fake_sentry.url) as client:
        with anyio.fail_after(10):
            orgs = await client.organizations.list().collect()
            assert await client.organizations.use_region(org) == str(client.base_url)
            await client.organizations.get(org)
        assert client.url_for("/organizations/{org}/", {"org": org}) == client.url_for(
            "/organizations/{org}/", {"org": org}, root=client.api_root
        )
    assert [o.slug for o in orgs] == fake_sentry.data.org_slugs()
    assert all(r.sent_token(fake_sentry.token) for r in fake_sentry.requests)


def test_on_sentry_io_a_region_the_token_must_not_reach_is_refused() -> None:
    client = SentryClient("t", base_url="https://sentry.io")
    for hostile in ("https://sentry.io.evil.com", "http://de.sentry.io", "https://evil.com"):
        with pytest.raises(UntrustedHost, match="refusing"):
            client.region_base(hostile)
    assert client.region_base("https://de.sentry.io") == URL("https://de.sentry.io/")


def test_a_refused_plain_http_region_says_how_to_allow_it() -> None:
    """The advice works: ``allow_insecure_http`` alone never makes a region trusted."""
    region = "http://sentry.internal:9000"
    for insecure in (False, True):
        client = SentryClient(
            "t", base_url="https://sentry.example.com", allow_insecure_http=insecure
        )
        with pytest.raises(UntrustedHost) as refused:
            client.check_region(region)
        assert "trusted_hosts" in str(refused.value)
        assert "pass allow_insecure_http=True to override" not in str(refused.value)
    listed = SentryClient(
        "t", base_url="https://sentry.example.com", allow_insecure_http=True, trusted_hosts=[region]
    )
    assert listed.check_region(region) == URL(region + "/")


async def test_a_server_without_regions_lists_from_the_base_url(fake_sentry: FakeSentry) -> None:
    fake_sentry.faults.add(Fault("status", status=404, path=r"/users/me/regions/$", body=b""))
    async with SentryClient(fake_sentry.token, base_url=fake_sentry.url) as client:
        with anyio.fail_after(10):
            orgs = await client.organizations.list().collect()
    assert [o.slug for o in orgs] == fake_sentry.data.org_slugs()


async def test_owned_organizations_have_their_own_shape(fake_sentry: FakeSentry) -> None:
    """``owner=1`` answers ``[{"organization": {...}, "singleOwner": bool}]``, unpaginated."""
    async with SentryClient(fake_sentry.token, base_url=fake_sentry.url) as client:
        with anyio.fail_after(10):
            owned = await client.organizations.list_owned()
    assert all(isinstance(o, OwnedOrganization) for o in owned)
    assert [o.organization.slug for o in owned] == fake_sentry.data.org_slugs()
    assert [o.single_owner for o in owned] == [True, False]
    (request,) = fake_sentry.requests
    assert request.param("owner") == "1"


@pytest.mark.parametrize("sort_by", ["projects", "events", "name", "size"])
def test_organizations_list_refuses_a_sort_sentry_ignores(sort_by: str) -> None:
    """``OrganizationIndexEndpoint.get`` sorts by ``members`` only: any other ``sortBy``
    (``projects`` and ``events`` too, both dropped from Sentry) is answered newest first."""
    client = SentryClient("t", base_url="https://sentry.io")
    with pytest.raises(ValueError, match=rf"sort_by must be 'members'.*\(got '{sort_by}'\)"):
        client.organizations.list(sort_by=sort_by)


async def test_organizations_sorted_by_members_come_most_members_first(
    fake_sentry: FakeSentry,
) -> None:
    crowded = fake_sentry.builder.add_organization("crowded").record
    crowded.members = 9
    crowded.created = fake_sentry.data.now - timedelta(days=1000)
    newest_first = ["org-0", "org-1", "crowded"]
    async with SentryClient(fake_sentry.token, base_url=fake_sentry.url) as client:
        with anyio.fail_after(10):
            by_members = await client.organizations.list(sort_by="members", page_size=1).collect()
            plain = await client.organizations.list().collect()
            ignored = await client.request(
                "GET", "/organizations/", params={"sortBy": "projects"}, type=list[Organization]
            )
    assert [o.slug for o in by_members] == ["crowded", "org-0", "org-1"]
    assert [o.slug for o in plain] == newest_first
    assert [o.slug for o in ignored] == newest_first
    sent = [r for r in fake_sentry.requests if r.path == "/api/0/organizations/"]
    assert [r.param("sortBy") for r in sent[:3]] == ["members"] * 3


# -- the host rule, as a pure function ------------------------------------------------------


@pytest.mark.parametrize(
    ("base", "target", "allowed"),
    [
        ("https://sentry.io", "https://sentry.io", True),
        ("https://sentry.io", "https://de.sentry.io", True),
        ("https://sentry.io", "https://us.sentry.io/", True),
        ("https://us.sentry.io", "https://de.sentry.io", True),
        ("https://sentry.io", "https://sentry.io.evil.com", False),
        ("https://sentry.io", "https://evilsentry.io", False),
        ("https://sentry.io", "http://de.sentry.io", False),
        ("https://sentry.io", "https://de.sentry.io:8443", False),
        ("https://sentry.io", "https://user@de.sentry.io", False),
        ("https://sentry.io", "https://DE.SENTRY.IO.", True),
        ("https://sentry.example.co.uk", "https://other.example.co.uk", False),
        ("https://sentry.example.co.uk", "https://evil.co.uk", False),
        # Outside sentry.io, no guess at where a site ends: shared hosting puts strangers
        # under one domain (herokuapp.com, github.io, me.uk are public suffixes).
        ("https://sentry-acme.herokuapp.com", "https://attacker.herokuapp.com", False),
        ("https://acme.github.io/sentry", "https://attacker.github.io", False),
        ("https://sentry.john.me.uk", "https://attacker.me.uk", False),
        ("https://sentry.corp.example.com", "https://other.example.com", False),
        ("https://sentry.corp.example.com", "https://de.sentry.corp.example.com", False),
        ("https://sentry.example.com", "https://sentry.example.com:443/other", True),
        ("https://sentry.example.com", "https://de.sentry.io", False),
        ("http://127.0.0.1:8000", "http://127.0.0.1:9000", True),
        ("http://127.0.0.1:8000", "http://127.0.0.2:8000", False),
        ("http://127.0.0.1:8000", "http://127.0.0.1@127.0.0.2/", False),
        ("http://localhost:8000", "http://de.localhost:8000", False),
        ("http://localhost:8000", "http://localhost:8001", True),
        ("https://10.0.0.5", "https://10.0.0.6", False),
    ],
)
def test_token_host_rule(base: str, target: str, allowed: bool) -> None:
    assert (token_host_refusal(URL(base), URL(target)) is None) is allowed


def test_listed_hosts_are_trusted() -> None:
    base, other = URL("https://sentry.io"), URL("https://sentry.internal.example")
    assert token_host_refusal(base, other) is not None
    assert token_host_refusal(base, other, [other]) is None


def test_a_self_hosted_base_trusts_a_listed_region() -> None:
    base, region = URL("https://sentry.corp.example.com"), URL("https://eu.corp.example.com")
    assert token_host_refusal(base, region) is not None
    assert token_host_refusal(base, region, [region]) is None


def test_use_region_refuses_a_look_alike() -> None:
    client = SentryClient("t", base_url="https://sentry.io")
    with pytest.raises(UntrustedHost, match=r"not within sentry\.io"):
        client.trust_region("acme", "https://sentry.io.evil.com")
    client.trust_region("acme", "https://de.sentry.io")
    assert client.url_for("/organizations/{org}/", {"org": "acme"}).host == "de.sentry.io"


def test_a_region_url_echoing_the_token_is_never_shown(caplog: pytest.LogCaptureFixture) -> None:
    token = "sntryu_" + "ef" * 32
    echoed = f"https://evil.example/{token}/"
    self_hosted = SentryClient(token, base_url="https://sentry.example.com")
    with caplog.at_level(logging.DEBUG, logger="sentry_async"):
        assert self_hosted.region_base(echoed) is None
    assert "ignoring region" in caplog.text and token not in caplog.text
    with pytest.raises(UntrustedHost) as refused:
        SentryClient(token, base_url="https://sentry.io").region_base(echoed)
    assert token not in str(refused.value)
