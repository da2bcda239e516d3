"""Discover, events-stats and event lists as Sentry's server code reads their parameters.

Pinned against ``OrganizationEventsEndpoint.get`` (``noPagination`` read by truthiness,
``per_page`` still read), ``ProjectEventsEndpoint.get`` and ``GroupEventsEndpoint``
(``sample``), ``BaseQueryBuilder.resolve_orderby``/``resolve_select`` (which sorts resolve),
``OrganizationEventsStatsEndpoint.get`` and ``get_event_stats_data`` (top events, the
interval fallback), ``validate_interval`` in ``src/sentry/utils/dates.py``
(``MAX_ROLLUP_POINTS``) and ``zerofill``/``calculate_time_frame`` in
``src/sentry/api/serializers/snuba.py``.
"""

from __future__ import annotations

import anyio
from _fake_http import org_get
from _local_server import local_app
from aiohttp import web

from sentry_async import SentryClient
from sentry_async._protocol.params import unpaginated_switch
from sentry_async.testing import FakeSentry

ROWS = [{"id": f"{i:032x}", "title": f"t{i}"} for i in range(250)]


def _sentry_like_events(seen: list[dict[str, str]]) -> web.Application:
    """``/events/`` as Sentry answers it: any non-empty ``noPagination`` is one response of at
    most ``per_page`` rows without ``Link``; otherwise offset pages with cursors."""

    async def events(request: web.Request) -> web.Response:
        seen.append(dict(request.query))
        per_page = int(request.query.get("per_page", "100"))
        meta = {"fields": {"id": "string", "title": "string"}, "units": {}}
        if request.query.get("noPagination"):
            return web.json_response({"data": ROWS[:per_page], "meta": meta})
        offset = int(request.query.get("cursor", "0:0:0").split(":")[1])
        more = offset + per_page < len(ROWS)
        nxt = f"0:{offset + per_page}:0"
        link = (
            f'<{request.url}>; rel="previous"; results="false"; cursor="0:0:1", '
            f'<{request.url}>; rel="next"; results="{str(more).lower()}"; cursor="{nxt}"'
        )
        page = ROWS[offset : offset + per_page]
        return web.json_response({"data": page, "meta": meta}, headers={"Link": link})

    app = web.Application()
    app.router.add_get("/api/0/organizations/acme/events/", events)
    return app


# -- noPagination ---------------------------------------------------------------------------


async def test_no_pagination_false_pages_through_every_row() -> None:
    seen: list[dict[str, str]] = []
    async with local_app(_sentry_like_events(seen)) as url, SentryClient("t", base_url=url) as c:
        with anyio.fail_after(10):
            rows = await c.discover.query(
                "acme", fields=["id", "title"], project=1, no_pagination=False
            ).collect()
    assert len(rows) == len(ROWS)
    assert all("noPagination" not in query for query in seen)


def test_no_pagination_is_read_as_sentry_reads_it() -> None:
    # ``if request.GET.get("noPagination"):`` and ``request.GET.get("all_projects") == "1"``;
    # Django's ``get`` reads the last value of a repeated key.
    assert unpaginated_switch([("noPagination", "0")]) == "noPagination"
    assert unpaginated_switch([("noPagination", "false")]) == "noPagination"
    assert unpaginated_switch([("noPagination", "")]) is None
    assert unpaginated_switch([("noPagination", "1"), ("noPagination", "")]) is None
    assert unpaginated_switch([("all_projects", "1")]) == "all_projects"
    assert unpaginated_switch([("all_projects", "true")]) is None
    assert unpaginated_switch([("field", "id")]) is None


async def test_no_pagination_sends_the_page_size_and_follows_no_link() -> None:
    """Sentry answers ``noPagination`` with ``paginator.get_result(limit=per_page)``: one
    response, no ``Link``. A server that sends one anyway is not followed."""
    seen: list[dict[str, str]] = []

    async def events(request: web.Request) -> web.Response:
        seen.append(dict(request.query))
        size = int(request.query.get("per_page", "100"))
        link = f'<{request.url}>; rel="next"; results="true"; cursor="0:{size}:0"'
        return web.json_response({"data": ROWS[:size], "meta": {}}, headers={"Link": link})

    app = web.Application()
    app.router.add_get("/api/0/organizations/acme/events/", events)
    async with local_app(app) as url, SentryClient("t", base_url=url) as sentry:
        with anyio.fail_after(10):
            paginator = sentry.discover.query(
                "acme", fields=["id"], project=1, no_pagination=True, page_size=10
            )
            rows = await paginator.collect()
    assert len(rows) == 10 and paginator.position.done
    assert [(q.get("noPagination"), q.get("per_page"), q.get("cursor")) for q in seen] == [
        ("1", "10", None)
    ]


async def test_the_fake_answers_no_pagination_in_one_response(fake_sentry: FakeSentry) -> None:
    base = [("field", "id"), ("project", "-1"), ("statsPeriod", "90d")]
    with anyio.fail_after(10):
        paged = await org_get(fake_sentry, "events/", [*base, ("per_page", "5")])
        whole = [
            await org_get(fake_sentry, "events/", [*base, ("noPagination", flag), *size])
            for flag in ("1", "0")
            for size in ([], [("per_page", "5")])
        ]
    assert paged[0] == 200 and "Link" in paged[2] and len(paged[1]["data"]) == 5
    slugs = fake_sentry.data.project_slugs("org-0")
    start = fake_sentry.data.now_ts - 90 * 86400
    assert sum(len(fake_sentry.data.event_ids("org-0", p, start=start)) for p in slugs) > 100
    assert [(status, len(body["data"]), "Link" in headers) for status, body, headers in whole] == [
        (200, 100, False),
        (200, 5, False),
    ] * 2
