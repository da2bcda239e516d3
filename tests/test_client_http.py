"""The client over real HTTP: headers, base URLs, error mapping, retry rules, timeouts."""

from __future__ import annotations

import gzip
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
import anyio
import msgspec
import pytest
from _local_server import local_app
from aiohttp import web

from sentry_async import (
    APIError,
    BadRequest,
    ConnectionFailed,
    DecodeError,
    Forbidden,
    NotFound,
    RateLimited,
    RequestTimeout,
    RetryPolicy,
    SentryClient,
    ServerError,
    Timeouts,
    Unauthorized,
    __version__,
)
from sentry_async.models import Organization
from sentry_async.testing import FakeSentry, Fault

# Marked here, not only by conftest: a mark added after collection makes anyio rebuild the
# test items and drop their parametrization.
pytestmark = pytest.mark.anyio

FAST = RetryPolicy(attempts=3, backoff_base=0.01, backoff_max=0.05)
ORG_PATH = "/organizations/{org}/"


def client_for(server: FakeSentry, **kwargs: Any) -> SentryClient:
    kwargs.setdefault("retry", FAST)
    return SentryClient(server.token, base_url=server.url, **kwargs)


@asynccontextmanager
async def bounded_client(
    server: FakeSentry, *, deadline: float = 10.0, **kwargs: Any
) -> AsyncIterator[SentryClient]:
    """A client on ``server`` whose whole use must finish within ``deadline`` seconds."""
    with anyio.fail_after(deadline):
        async with client_for(server, **kwargs) as client:
            yield client


def api_requests(server: FakeSentry, pattern: str = r"^/api/0/") -> list[Any]:
    return [r for r in server.requests if re.search(pattern, r.path)]


# -- what every request carries -------------------------------------------------------------


async def test_requests_carry_token_user_agent_and_accept_gzip(fake_sentry: FakeSentry) -> None:
    org = fake_sentry.data.org_slugs()[0]
    async with bounded_client(fake_sentry) as client:
        await client.request("GET", ORG_PATH, path_params={"org": org})
        await client.issues.list(org, page_size=10, limit=15).collect()
    sent = api_requests(fake_sentry)
    assert len(sent) == 3
    for request in sent:
        assert request.authenticated and request.headers["authorization"] == "Bearer [Filtered]"
        assert re.search(
            rf"sentry[-_]async/{re.escape(__version__)}\b", request.headers["user-agent"]
        )
        encodings = [e.strip() for e in request.headers["accept-encoding"].split(",")]
        assert "gzip" in encodings
        assert request.headers["accept"] == "application/json"


async def test_custom_user_agent_replaces_the_default(fake_sentry: FakeSentry) -> None:
    org = fake_sentry.data.org_slugs()[0]
    async with bounded_client(fake_sentry, user_agent="my-tool/2.0") as client:
        await client.request("GET", ORG_PATH, path_params={"org": org})
    assert api_requests(fake_sentry)[0].headers["user-agent"] == "my-tool/2.0"


async def test_gzip_encoded_responses_are_decoded() -> None:
    payload = [{"id": str(n), "slug": f"org-{n}", "name": f"Org {n}"} for n in range(50)]
    seen_encodings: list[str] = []

    async def orgs(request: web.Request) -> web.Response:
        seen_encodings.append(request.headers.get("Accept-Encoding", ""))
        return web.Response(
            body=gzip.compress(msgspec.json.encode(payload)),
            headers={"Content-Type": "application/json", "Content-Encoding": "gzip"},
        )

    app = web.Application()
    app.router.add_get("/api/0/organizations/", orgs)
    async with local_app(app) as url, SentryClient("t", base_url=url) as client:
        with anyio.fail_after(10):
            response = await client.send("GET", "/organizations/")
            decoded = await client.request("GET", "/organizations/", type=list[Organization])
    assert response.headers["Content-Encoding"] == "gzip"
    assert msgspec.json.decode(response.body) == payload
    assert [org.slug for org in decoded] == [row["slug"] for row in payload]
    assert all("gzip" in value for value in seen_encodings)


# -- self-hosted under a path prefix --------------------------------------------------------


async def test_base_url_with_a_path_prefix(
    fake_sentry_factory: Callable[..., Awaitable[FakeSentry]],
) -> None:
    """A self-hosted install behind a reverse proxy at ``/sentry`` gets every path prefixed."""
    upstream: list[str] = []
    proxied: list[str] = []

    async def proxy(request: web.Request) -> web.StreamResponse:
        proxied.append(request.path)
        tail = request.match_info["tail"]
        headers = {k: v for k, v in request.headers.items() if k.lower() not in ("host",)}
        async with (
            aiohttp.ClientSession() as session,
            session.request(
                request.method,
                f"{upstream[0]}/{tail}",
                params=request.query,
                headers=headers,
                data=await request.read(),
                allow_redirects=False,
            ) as answer,
        ):
            body = await answer.read()
            keep = {
                k: v
                for k, v in answer.headers.items()
                if k.lower() not in ("content-length", "content-encoding", "transfer-encoding")
            }
            return web.Response(status=answer.status, body=body, headers=keep)

    app = web.Application()
    app.router.add_route("*", "/sentry/{tail:.*}", proxy)
    with anyio.fail_after(15):
        async with local_app(app) as proxy_url:
            server = await fake_sentry_factory(link_host=f"{proxy_url}/sentry")
            upstream.append(server.url)
            org = server.data.org_slugs()[0]
            async with SentryClient(
                server.token, base_url=f"{proxy_url}/sentry/", retry=FAST
            ) as client:
                assert str(client.api_root) == f"{proxy_url}/sentry/api/0"
                detail = await client.organizations.get(org)
                issues = await client.issues.list(org, query="", page_size=50).collect()
                with pytest.raises(NotFound):
                    await client.request("GET", ORG_PATH, path_params={"org": "no-such-org"})
    assert detail.slug == org
    assert sorted(i.id for i in issues) == sorted(server.data.issue_ids(org))
    assert all(path.startswith("/sentry/api/0/") for path in proxied)
    assert len(proxied) == len(api_requests(server)) == 1 + 3 + 1
    assert all(r.authenticated for r in server.requests)


async def test_base_url_given_with_the_api_prefix_is_not_doubled(fake_sentry: FakeSentry) -> None:
    org = fake_sentry.data.org_slugs()[0]
    with anyio.fail_after(10):
        async with SentryClient(
            fake_sentry.token, base_url=f"{fake_sentry.url}/api/0/", retry=FAST
        ) as client:
            await client.organizations.get(org)
    assert [r.path for r in api_requests(fake_sentry)] == [f"/api/0/organizations/{org}/"]


# -- error mapping --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "content_type", "detail", "data"),
    [
        pytest.param(
            {"detail": "Invalid query"},
            None,
            "Invalid query",
            {"detail": "Invalid query"},
            id="detail",
        ),
        pytest.param(
            {"query": ["Invalid search", "Too long"]},
            None,
            None,
            {"query": ["Invalid search", "Too long"]},
            id="field-map",
        ),
        pytest.param(
            '"Project not in org"',
            None,
            "Project not in org",
            "Project not in org",
            id="bare-string",
        ),
        pytest.param(
            {"detail": "Bad cursor"},
            "text/html",
            "Bad cursor",
            {"detail": "Bad cursor"},
            id="json-as-html",
        ),
        pytest.param(b"", None, None, None, id="empty"),
    ],
)
async def test_400_bodies_map_to_bad_request(
    fake_sentry: FakeSentry, body: Any, content_type: str | None, detail: Any, data: Any
) -> None:
    org = fake_sentry.data.org_slugs()[0]
    fake_sentry.faults.add(
        Fault(
            "status",
            path=r"/organizations/[^/]+/$",
            status=400,
            body=body,
            content_type=content_type,
        )
    )
    async with bounded_client(fake_sentry) as client:
        with pytest.raises(BadRequest) as caught:
            await client.request("GET", ORG_PATH, path_params={"org": org})
    error = caught.value
    assert error.status == 400
    assert error.detail == detail
    assert error.data == data
    assert error.method == "GET"
    assert error.url.endswith(f"/api/0/organizations/{org}/")
    if detail is not None:
        assert detail in str(error)
    if isinstance(data, dict) and "query" in data:
        assert "query: Invalid search, Too long" in str(error)
    assert len(api_requests(fake_sentry)) == 1, "a 400 is final"


@pytest.mark.parametrize(
    ("status", "error_type"),
    [(400, BadRequest), (401, Unauthorized), (403, Forbidden), (404, NotFound)],
)
async def test_client_errors_are_typed_and_never_retried(
    fake_sentry: FakeSentry, status: int, error_type: type[APIError]
) -> None:
    org = fake_sentry.data.org_slugs()[0]
    fake_sentry.faults.add(
        Fault("status", path=r"/organizations/[^/]+/$", status=status, times=None)
    )
    policy = RetryPolicy(attempts=5, backoff_base=0.01, backoff_max=0.02)
    async with bounded_client(fake_sentry, retry=policy) as client:
        with pytest.raises(error_type) as caught:
            await client.request("GET", ORG_PATH, path_params={"org": org})
    assert type(caught.value) is error_type
    assert caught.value.status == status
    assert caught.value.detail == f"Fault {status}"
    assert len(api_requests(fake_sentry)) == 1


async def test_wrong_token_is_unauthorized(fake_sentry: FakeSentry) -> None:
    async with SentryClient("not-the-token", base_url=fake_sentry.url, retry=FAST) as client:
        with anyio.fail_after(10), pytest.raises(Unauthorized) as caught:
            await client.organizations.list().collect()
    assert caught.value.detail == "Invalid token"
    assert "not-the-token" not in str(caught.value)
    assert len(api_requests(fake_sentry)) == 1


async def test_unknown_org_is_not_found(fake_sentry: FakeSentry) -> None:
    async with bounded_client(fake_sentry) as client:
        with pytest.raises(NotFound) as caught:
            await client.organizations.get("no-such-org")
    assert caught.value.detail == "The requested resource does not exist"
    assert len(api_requests(fake_sentry)) == 1


async def test_429_beyond_the_budget_is_rate_limited_with_retry_after(
    fake_sentry: FakeSentry,
) -> None:
    org = fake_sentry.data.org_slugs()[0]
    fake_sentry.faults.add(
        Fault(
            "rate_limit",
            path=r"/organizations/[^/]+/$",
            retry_after=0.05,
            reset_in=None,
            times=None,
        )
    )
    async with bounded_client(fake_sentry) as client:
        with pytest.raises(RateLimited) as caught:
            await client.request("GET", ORG_PATH, path_params={"org": org})
    error = caught.value
    assert error.status == 429
    assert error.retry_after == pytest.approx(0.05)
    assert error.rate_limit is not None and error.rate_limit.remaining == 0
    assert "too frequently" in str(error.detail)
    assert len(api_requests(fake_sentry)) == FAST.attempts


async def test_a_429_on_the_last_attempt_pauses_the_endpoint(fake_sentry: FakeSentry) -> None:
    """With no retry left the call fails, and the next one waits out the server's pause."""
    org = fake_sentry.data.org_slugs()[0]
    fake_sentry.faults.add(
        Fault("rate_limit", path=r"/organizations/[^/]+/$", retry_after=60, reset_in=None)
    )
    async with bounded_client(fake_sentry, retry=RetryPolicy(attempts=1)) as client:
        with pytest.raises(RateLimited):
            await client.request("GET", ORG_PATH, path_params={"org": org})
        assert client.limiter.blocked_for(f"GET {ORG_PATH}") > 30
        with anyio.move_on_after(0.2):
            await client.request("GET", ORG_PATH, path_params={"org": org})
    assert len(api_requests(fake_sentry)) == 1, "nothing is sent into the pause"


async def test_429_asking_for_more_than_max_wait_fails_at_once(fake_sentry: FakeSentry) -> None:
    """Every task fails fast while the pause lasts, and none sends into it."""
    org = fake_sentry.data.org_slugs()[0]
    fake_sentry.faults.add(
        Fault("rate_limit", path=r"/organizations/[^/]+/$", retry_after=120, reset_in=None)
    )
    policy = RetryPolicy(attempts=5, backoff_base=0.01, max_wait=5.0)
    async with bounded_client(fake_sentry, retry=policy) as client:
        with pytest.raises(RateLimited) as caught:
            await client.request("GET", ORG_PATH, path_params={"org": org})
        assert caught.value.retry_after == 120
        with pytest.raises(RateLimited) as again:
            await client.request("GET", ORG_PATH, path_params={"org": org})
        assert again.value.retry_after is not None and 100 < again.value.retry_after <= 120
        assert org in again.value.url
        # Other endpoints without limits of their own share Sentry's window, and are held.
        with pytest.raises(RateLimited):
            await client.issues.list(org, limit=2).collect()
        # An endpoint with limits (a window) of its own is not.
        project = fake_sentry.data.project_slugs(org)[0]
        assert len(await client.events.for_project(org, project, limit=2).collect()) == 2
    assert len(api_requests(fake_sentry, "/organizations/[^/]+/$")) == 1
    assert not api_requests(fake_sentry, "/issues/$"), "nothing sent into the pause"


async def test_500_is_a_server_error_with_context(fake_sentry: FakeSentry) -> None:
    org = fake_sentry.data.org_slugs()[0]
    fake_sentry.faults.add(Fault("status", path=r"/organizations/[^/]+/$", status=500, times=None))
    async with bounded_client(fake_sentry) as client:
        with pytest.raises(ServerError) as caught:
            await client.request("GET", ORG_PATH, path_params={"org": org}, params={"a": "b"})
    error = caught.value
    assert (error.status, error.method, error.detail) == (500, "GET", "Internal Error")
    assert error.url == f"{fake_sentry.url}/api/0/organizations/{org}/?a=b"
    assert error.data["errorId"] == error.error_id == "f" * 32
    assert f"500 from GET {error.url}: Internal Error (error id {'f' * 32})" == str(error)
    assert len(api_requests(fake_sentry)) == FAST.attempts, "a 500 that persists"


@pytest.mark.parametrize("status", [502, 503, 504])
async def test_gateway_errors_are_retried_up_to_the_attempt_limit(
    fake_sentry: FakeSentry, status: int
) -> None:
    org = fake_sentry.data.org_slugs()[0]
    fake_sentry.faults.add(
        Fault(
            "status",
            path=r"/organizations/[^/]+/$",
            status=status,
            body="<html>Bad Gateway</html>",
            times=None,
        )
    )
    async with bounded_client(fake_sentry) as client:
        with pytest.raises(ServerError) as caught:
            await client.request("GET", ORG_PATH, path_params={"org": org})
    assert caught.value.status == status
    assert caught.value.detail == "<html>Bad Gateway</html>"
    assert caught.value.data is None
    assert len(api_requests(fake_sentry)) == FAST.attempts


@pytest.mark.parametrize("attempts", [1, 2, 4])
async def test_attempt_limit_is_respected(fake_sentry: FakeSentry, attempts: int) -> None:
    org = fake_sentry.data.org_slugs()[0]
    fake_sentry.faults.add(Fault("drop", path=r"/organizations/[^/]+/$", times=None))
    policy = RetryPolicy(attempts=attempts, backoff_base=0.01, backoff_max=0.02)
    async with bounded_client(fake_sentry, retry=policy) as client:
        with pytest.raises(ConnectionFailed):
            await client.request("GET", ORG_PATH, path_params={"org": org})
    assert len(api_requests(fake_sentry)) == attempts


async def test_transient_503_then_success(fake_sentry: FakeSentry) -> None:
    org = fake_sentry.data.org_slugs()[0]
    fake_sentry.faults.add(Fault("status", path=r"/organizations/[^/]+/$", status=503, times=2))
    async with bounded_client(fake_sentry) as client:
        detail = await client.organizations.get(org)
    assert detail.slug == org
    assert [r.status for r in api_requests(fake_sentry)] == [503, 503, 200]


async def test_query_timeout_400_is_retried(fake_sentry: FakeSentry) -> None:
    org = fake_sentry.data.org_slugs()[0]
    fake_sentry.faults.add(
        Fault(
            "status",
            path=r"/organizations/[^/]+/issues/$",
            status=400,
            body={
                "detail": "Query timeout. Please try with a smaller date range or fewer conditions."
            },
            times=2,
        )
    )
    async with bounded_client(fake_sentry) as client:
        issues = await client.issues.list(org, query="", page_size=100, limit=5).collect()
    assert len(issues) == 5
    assert [r.status for r in api_requests(fake_sentry)] == [400, 400, 200]


async def test_query_timeout_beyond_the_budget_is_bad_request(fake_sentry: FakeSentry) -> None:
    org = fake_sentry.data.org_slugs()[0]
    fake_sentry.faults.add(
        Fault("status", path=r"/issues/$", status=400, body={"detail": "Query timeout"}, times=None)
    )
    async with bounded_client(fake_sentry) as client:
        with pytest.raises(BadRequest, match="Query timeout"):
            await client.issues.list(org).first()
    assert len(api_requests(fake_sentry)) == FAST.attempts


# -- non-idempotent requests ----------------------------------------------------------------


def _write_call(
    client: SentryClient, method: str, org: str, issue_id: str
) -> Callable[[], Awaitable[Any]]:
    if method == "POST":
        return lambda: client.request(
            "POST", "/organizations/{org}/issues/", path_params={"org": org}, json={"x": 1}
        )
    return lambda: client.request(
        method,
        "/organizations/{org}/issues/{issue_id}/",
        path_params={"org": org, "issue_id": issue_id},
        json={"status": "resolved"} if method == "PUT" else None,
    )


@pytest.mark.parametrize(
    ("method", "kind", "error_type"),
    [
        *[(m, "status", ServerError) for m in ("POST", "PUT", "DELETE")],
        *[(m, "drop", ConnectionFailed) for m in ("POST", "PUT", "DELETE")],
        # A 202 to DELETE has no body to break off in the middle of.
        *[(m, "drop_mid_body", ConnectionFailed) for m in ("POST", "PUT")],
        *[(m, "slow", RequestTimeout) for m in ("POST", "PUT")],
    ],
)
async def test_non_idempotent_requests_are_not_retried_on_failure(
    fake_sentry: FakeSentry, method: str, kind: str, error_type: type[Exception]
) -> None:
    org = fake_sentry.data.org_slugs()[0]
    issue_id = fake_sentry.data.issue_ids(org)[0]
    fake_sentry.faults.add(Fault(kind, status=503, delay=0.5, times=None, method=method))
    async with bounded_client(fake_sentry, timeout=Timeouts(read=0.1)) as client:
        with pytest.raises(error_type):
            await _write_call(client, method, org, issue_id)()
    assert [r.method for r in api_requests(fake_sentry)] == [method]


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE"])
async def test_non_idempotent_requests_are_retried_after_429(
    fake_sentry: FakeSentry, method: str
) -> None:
    org = fake_sentry.data.org_slugs()[0]
    issue_id = fake_sentry.data.issue_ids(org)[0]
    fake_sentry.faults.add(
        Fault("rate_limit", method=method, retry_after=0.05, reset_in=None, times=1)
    )
    async with bounded_client(fake_sentry) as client:
        call_ = _write_call(client, method, org, issue_id)
        if method == "POST":
            # The route takes no POST: the 405 (not a 429) proves the resend.
            with pytest.raises(APIError) as caught:
                await call_()
            assert caught.value.status == 405
        else:
            await call_()
    statuses = [r.status for r in api_requests(fake_sentry)]
    assert statuses[0] == 429 and len(statuses) == 2 and statuses[1] != 429


async def test_put_declared_idempotent_is_retried(fake_sentry: FakeSentry) -> None:
    org = fake_sentry.data.org_slugs()[0]
    issue_id = fake_sentry.data.issue_ids(org)[0]
    fake_sentry.faults.add(Fault("status", method="PUT", status=503, times=1))
    async with bounded_client(fake_sentry) as client:
        await client.request(
            "PUT",
            "/organizations/{org}/issues/{issue_id}/",
            path_params={"org": org, "issue_id": issue_id},
            json={"status": "resolved"},
            idempotent=True,
        )
        assert (await client.issues.get(org, issue_id)).status == "resolved"
    assert [r.status for r in api_requests(fake_sentry) if r.method == "PUT"] == [503, 200]


# -- timeouts -------------------------------------------------------------------------------


async def test_slow_response_beyond_read_timeout_is_request_timeout(
    fake_sentry: FakeSentry,
) -> None:
    org = fake_sentry.data.org_slugs()[0]
    fake_sentry.faults.add(Fault("slow", path=r"/organizations/[^/]+/$", delay=0.6, times=None))
    async with client_for(fake_sentry, timeout=Timeouts(connect=1.0, read=0.15)) as client:
        with anyio.fail_after(10), pytest.raises(RequestTimeout) as caught:
            await client.request("GET", ORG_PATH, path_params={"org": org})
    assert caught.value.method == "GET"
    assert caught.value.url.endswith(f"/organizations/{org}/")
    assert len(api_requests(fake_sentry)) == FAST.attempts


async def test_total_timeout_bounds_an_attempt(fake_sentry: FakeSentry) -> None:
    org = fake_sentry.data.org_slugs()[0]
    fake_sentry.faults.add(Fault("slow", path=r"/organizations/[^/]+/$", delay=0.6, times=None))
    policy = RetryPolicy(attempts=1)
    async with client_for(
        fake_sentry, timeout=Timeouts(read=30.0, total=0.15), retry=policy
    ) as client:
        with anyio.fail_after(10), pytest.raises(RequestTimeout):
            await client.request("GET", ORG_PATH, path_params={"org": org})
    assert len(api_requests(fake_sentry)) == 1


async def test_a_session_passed_in_keeps_its_own_timeouts() -> None:
    """Its ``ClientTimeout`` bounds the client's requests, unless ``timeout=`` is given too."""
    release = anyio.Event()

    async def slow(request: web.Request) -> web.Response:
        with anyio.move_on_after(10):
            await release.wait()
        return web.json_response([1])

    app = web.Application()
    app.router.add_get("/api/0/slow/", slow)
    bounds = aiohttp.ClientTimeout(total=0.3, sock_read=0.3, sock_connect=2.0)
    async with local_app(app) as url, aiohttp.ClientSession(timeout=bounds) as session:
        own = SentryClient("t", base_url=url, session=session, retry=RetryPolicy(attempts=1))
        assert own.timeouts == Timeouts(connect=2.0, read=0.3, total=0.3, pool=None)
        try:
            async with own:
                with anyio.fail_after(10), pytest.raises(RequestTimeout):
                    await own.request("GET", "/slow/")
        finally:
            release.set()
        chosen = Timeouts(read=5.0)
        assert SentryClient("t", base_url=url, session=session, timeout=chosen).timeouts == chosen
        assert SentryClient("t", base_url=url, timeout=Timeouts()).timeouts == Timeouts()


async def test_a_number_as_timeout_is_the_read_timeout(fake_sentry: FakeSentry) -> None:
    org = fake_sentry.data.org_slugs()[0]
    # The bound well over an ordinary answer of the in-process fake on a busy machine.
    fake_sentry.faults.add(Fault("slow", path=r"/organizations/[^/]+/$", delay=2.0, times=1))
    async with bounded_client(fake_sentry, timeout=0.8) as client:
        assert client.timeouts == Timeouts(connect=0.8, read=0.8, total=300.0)
        detail = await client.organizations.get(org)
    assert detail.slug == org
    assert len(api_requests(fake_sentry)) == 2, "the slow attempt timed out, the second answered"


async def test_slow_response_within_the_timeout_is_not_an_error(fake_sentry: FakeSentry) -> None:
    org = fake_sentry.data.org_slugs()[0]
    fake_sentry.faults.add(Fault("slow", path=r"/organizations/[^/]+/$", delay=0.2, times=1))
    async with bounded_client(fake_sentry, timeout=Timeouts(read=5.0)) as client:
        assert (await client.organizations.get(org)).slug == org
    assert len(api_requests(fake_sentry)) == 1


# -- decoding -------------------------------------------------------------------------------


async def test_decode_error_names_endpoint_and_type(fake_sentry: FakeSentry) -> None:
    org = fake_sentry.data.org_slugs()[0]
    async with bounded_client(fake_sentry) as client:
        with pytest.raises(DecodeError) as caught:
            await client.request("GET", ORG_PATH, path_params={"org": org}, type=list[int])
    error = caught.value
    assert error.method == "GET"
    assert error.url.endswith(f"/api/0/organizations/{org}/")
    assert error.type_name == "list[int]"
    assert f"cannot decode list[int] from GET {error.url}" in str(error)
    assert len(api_requests(fake_sentry)) == 1, "a body that does not fit the type is final"


async def test_decode_error_in_pagination_names_the_item_type(fake_sentry: FakeSentry) -> None:
    class NotAnIssue(msgspec.Struct):
        nonexistent_field: int

    org = fake_sentry.data.org_slugs()[0]
    async with bounded_client(fake_sentry) as client:
        with pytest.raises(DecodeError) as caught:
            await client.paginate(
                "/organizations/{org}/issues/",
                path_params={"org": org},
                type=NotAnIssue,
                page_size_param="limit",
            ).first()
    assert "NotAnIssue" in caught.value.type_name
    assert "/organizations/" in caught.value.url and "nonexistent_field" in caught.value.reason


async def test_empty_success_body_is_none(fake_sentry: FakeSentry) -> None:
    org = fake_sentry.data.org_slugs()[0]
    issue_id = fake_sentry.data.issue_ids(org)[0]
    async with bounded_client(fake_sentry) as client:
        result = await client.request(
            "DELETE",
            "/organizations/{org}/issues/{issue_id}/",
            path_params={"org": org, "issue_id": issue_id},
        )
    assert result is None
    assert [r.status for r in api_requests(fake_sentry)] == [202]
