"""The limiter's window mirror against odd but possible answers: a ``Reset`` further off
than the real window (a confused server, or another view's counter answering in the
group) must not pin the group once later requests say the window turned over; and the
other spellings of an issue's path, counted by Sentry with the view's own counter."""

from __future__ import annotations

import time

import anyio
import pytest
from _local_server import local_app
from aiohttp import web
from test_limiter_gaps import ONE_TRY, PROJECTS, TEAMS, _headers

from sentry_async import RateLimited, RateLimiter, RateLimitInfo, RetryPolicy, SentryClient
from sentry_async._protocol.hosts import endpoint_group, rate_limit_group

# -- a Reset further off than the window -----------------------------------------------------


async def _sent_and_answered(limiter: RateLimiter, group: str) -> int:
    """One request of ``group`` through its slot: its send number, for ``observe``."""
    async with limiter.slot(group) as slot:
        pass
    return slot.sent


async def test_an_answer_sent_after_a_far_reset_was_recorded_is_the_current_window() -> None:
    """One answer carries a ``Reset`` a minute off (its Remaining 38); the next request,
    sent once that answer was in, is answered ``Reset`` in 1 s with 39 left. It cannot have
    been counted in an earlier window than the one recorded: it is the current window, and
    the group paces by it (40 a second), not by the odd answer's 40 a minute."""
    mono, wall = [1000.0], [1_800_000_000.0]
    limiter = RateLimiter(clock=lambda: mono[0], wall_clock=lambda: wall[0])
    with anyio.fail_after(5):
        odd = await _sent_and_answered(limiter, TEAMS)
        limiter.observe(TEAMS, RateLimitInfo(limit=40, remaining=38, reset=wall[0] + 60), sent=odd)
        assert limiter.state(TEAMS).rate == pytest.approx(40 / 60)
        mono[0] += 0.1
        wall[0] += 0.1
        after = await _sent_and_answered(limiter, TEAMS)
        limiter.observe(TEAMS, RateLimitInfo(limit=40, remaining=39, reset=wall[0] + 0.9), sent=after)
    state = limiter.state(TEAMS)
    assert state.reset_in == pytest.approx(0.9), "the odd Reset kept the group"
    assert state.remaining == 39
    assert state.rate == 40.0
    assert limiter.pause_for(TEAMS) == 0.0


async def test_a_late_answer_sent_before_the_window_was_recorded_is_still_ignored() -> None:
    """The slow request went out before the answer that recorded the spent window came in:
    its older ``Reset`` is an earlier window's and leaves the spent one closed; a request
    sent after that answer, with the same older ``Reset``, is taken."""
    mono, wall = [1000.0], [1_800_000_000.0]
    limiter = RateLimiter(clock=lambda: mono[0], wall_clock=lambda: wall[0])
    current = wall[0] + 2
    with anyio.fail_after(5):
        slow = await limiter.slot(TEAMS).__aenter__()
        fast = await _sent_and_answered(limiter, TEAMS)
        limiter.observe(TEAMS, RateLimitInfo(limit=5, remaining=0, reset=current), sent=fast)
        mono[0] += 0.25
        wall[0] += 0.25
        await slow.__aexit__(None, None, None)
        limiter.observe(TEAMS, RateLimitInfo(limit=5, remaining=3, reset=current - 2), sent=slow.sent)
        assert limiter.state(TEAMS).remaining == 0, "the late answer reopened the spent window"
        assert limiter.pause_for(TEAMS) == pytest.approx(1.75)
    # No request can leave now (the window is spent): one the caller tells ``observe`` was
    # sent later (its number above the group's at the recording) is the current window.
    limiter.observe(TEAMS, RateLimitInfo(limit=5, remaining=3, reset=current - 1), sent=fast + 1)
    assert limiter.state(TEAMS).remaining == 3
    assert limiter.state(TEAMS).reset_in == pytest.approx(0.75)


async def test_one_far_reset_over_http_does_not_hold_the_group() -> None:
    """Over HTTP: the server's window is 30 s with 10 requests; only the answer to the
    second request says ``Reset`` in 200 s. The requests after it are answered with the
    real window, which the client follows: no call waits, and the pace is 10 per 30 s."""
    base = time.time()
    counted: list[int] = []

    async def projects(request: web.Request) -> web.Response:
        counted.append(1)
        n = len(counted)
        reset = base + (200 if n == 2 else 30)
        return web.json_response([], headers=_headers(10, 10 - n, reset))

    app = web.Application()
    app.router.add_get("/api/0/organizations/acme/projects/", projects)
    async with local_app(app) as url, SentryClient("t0ken", base_url=url, retry=ONE_TRY) as client:
        with anyio.fail_after(10):
            for _ in range(3):
                await client.request("GET", "/organizations/acme/projects/")
        state = client.limiter.state(PROJECTS)
        assert state.reset_in is not None and state.reset_in < 31, state
        assert state.remaining == 7, state
        assert state.rate is not None and state.rate > 10 / 32, state
        assert client.limiter.pause_for(PROJECTS) == 0.0


# -- the other spellings of an issue's path ---------------------------------------------------

ISSUE = "/organizations/{org}/issues/{issue_id}/"
ISSUE_EVENT = "/organizations/{org}/issues/{issue_id}/events/{event_id}/"
AUTOFIX = "/organizations/{org}/issues/{issue_id}/autofix/"


@pytest.mark.parametrize(
    ("method", "path", "group"),
    [
        # Sentry serves an issue under ``(?:issues|groups)/``, at the top level and under
        # the organization (``create_group_urls``): one view, so one counter, whatever the
        # spelling.
        ("GET", "/issues/123/", f"GET {ISSUE}"),
        ("PUT", "/groups/123/", f"PUT {ISSUE}"),
        ("DELETE", "/organizations/acme/groups/123/", f"DELETE {ISSUE}"),
        ("GET", "/issues/123/events/latest/", f"GET {ISSUE_EVENT}"),
        ("GET", "/groups/123/events/recommended/", f"GET {ISSUE_EVENT}"),
        ("GET", "/organizations/acme/groups/123/events/abc/", f"GET {ISSUE_EVENT}"),
        ("POST", "/issues/123/autofix/", f"POST {AUTOFIX}"),
        ("GET", "/organizations/acme/groups/123/autofix/", f"GET {AUTOFIX}"),
        ("GET", "/projects/acme/web/groups/", "GET /projects/{org}/{project}/issues/"),
        # OrganizationDashboardGenerateEndpoint declares its own limits (10 a minute).
        (
            "POST",
            "/organizations/acme/dashboards/generate/",
            "POST /organizations/{org}/dashboards/generate/",
        ),
        # Views without limits of their own stay in the default counter.
        ("GET", "/issues/123/hashes/", "GET default"),
        ("GET", "/groups/123/events/", "GET default"),
        ("PUT", "/organizations/acme/dashboards/7/", "PUT default"),
    ],
)
def test_every_spelling_of_a_view_with_limits_shares_its_counter(
    method: str, path: str, group: str
) -> None:
    assert rate_limit_group(endpoint_group(method, path)) == group


@pytest.mark.parametrize(
    ("method", "path", "counter"),
    [
        ("GET", "/issues/{}/", "default:GroupDetailsEndpoint:GET"),
        ("PUT", "/groups/{}/", "default:GroupDetailsEndpoint:PUT"),
        ("GET", "/organizations/{}/groups/{}/", "default:GroupDetailsEndpoint:GET"),
        ("GET", "/groups/{}/events/{}/", "default:GroupEventDetailsEndpoint:GET"),
        ("POST", "/issues/{}/autofix/", "default:GroupAutofixEndpoint:POST"),
        ("GET", "/projects/{}/{}/groups/", "default:ProjectGroupIndexEndpoint:GET"),
        (
            "POST",
            "/organizations/{}/dashboards/generate/",
            "default:OrganizationDashboardGenerateEndpoint:POST",
        ),
        ("GET", "/issues/{}/hashes/", "default:GET"),
    ],
)
def test_the_fake_keys_every_spelling_by_its_view(method: str, path: str, counter: str) -> None:
    from sentry_async.testing._limit_keys import sentry_counter

    assert sentry_counter(method, path) == counter
    assert sentry_counter(method, f"/api/0{path}") == counter


async def test_an_issue_spent_through_one_spelling_holds_the_others() -> None:
    """Keyed as Sentry keys it: the issue's counter (5 a window) is spent through
    ``/organizations/acme/issues/N/``; ``GET /issues/7/`` counts in the same one, so the
    client must not send it into the spent window (here it fails at once, the window
    being longer than max_wait), and its answers must not re-shape ``GET default``."""
    reset = time.time() + 30
    counts = {"issue": 0, "default": 0}
    seen: list[tuple[str, int]] = []

    def answer(counter: str, limit: int, path: str) -> web.Response:
        counts[counter] += 1
        status = 429 if counts[counter] > limit else 200
        seen.append((path, status))
        body = {"id": "1"} if status == 200 else {"detail": "too many"}
        headers = _headers(limit, limit - counts[counter], reset)
        return web.json_response(body, status=status, headers=headers)

    async def issue(request: web.Request) -> web.Response:
        return answer("issue", 5, request.path)

    async def projects(request: web.Request) -> web.Response:
        return answer("default", 40, request.path)

    app = web.Application()
    app.router.add_get("/api/0/organizations/acme/issues/{id}/", issue)
    app.router.add_get("/api/0/issues/{id}/", issue)
    app.router.add_get("/api/0/organizations/acme/projects/", projects)
    short = RetryPolicy(attempts=1, max_wait=5)
    async with local_app(app) as url, SentryClient("t0ken", base_url=url, retry=short) as client:
        with anyio.fail_after(10):
            await client.request("GET", "/organizations/acme/projects/")
            default_rate = client.limiter.state(PROJECTS).rate
            for n in range(5):
                await client.request("GET", f"/organizations/acme/issues/{n}/")
            with pytest.raises(RateLimited):
                await client.request("GET", "/issues/7/")
        assert client.limiter.state(PROJECTS).rate == default_rate
    assert [status for _, status in seen].count(429) == 0, seen
    assert "/api/0/issues/7/" not in [path for path, _ in seen]
