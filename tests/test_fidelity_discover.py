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

import io
from datetime import datetime, timedelta, timezone
from itertools import pairwise
from pathlib import Path
from typing import Any

import aiohttp
import anyio
import pytest
from _fake_http import org_get
from _local_server import local_app
from aiohttp import web

from sentry_async import DecodeError, SentryClient
from sentry_async._protocol.params import unpaginated_switch
from sentry_async.cli import main
from sentry_async.export import ExportSpec
from sentry_async.resources.discover import function_alias
from sentry_async.testing import FakeSentry

NOT_SELECTED = "Cannot sort by a field that is not selected."
ROWS = [{"id": f"{i:032x}", "title": f"t{i}"} for i in range(250)]
TOKEN = "sntrys_discover-test-token-0123456789abcdef0123456789"


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


# -- sample ---------------------------------------------------------------------------------


async def test_sample_false_keeps_the_newest_first_order(
    fake_sentry: FakeSentry, client: SentryClient
) -> None:
    # ProjectEventsEndpoint: ``sample`` in ("1", "true") orders by event id (servers before it
    # read any non-empty value, "0" included); sample=False sends nothing.
    slug = fake_sentry.data.project_slugs("org-0")[0]
    with anyio.fail_after(10):
        plain = await client.events.for_project("org-0", slug, limit=30).collect()
        unsampled = await client.events.for_project("org-0", slug, sample=False, limit=30).collect()
        sampled = await client.events.for_project("org-0", slug, sample=True, limit=30).collect()
    requests = [r for r in fake_sentry.requests if r.path.endswith(f"/{slug}/events/")]
    assert [r.param("sample") for r in requests] == [None, None, "1"]
    assert [e.id for e in unsampled] == [e.id for e in plain]
    assert len(sampled) == 30 and [e.id for e in sampled] == sorted(e.id for e in sampled)


async def test_the_fake_reads_sample_as_each_event_list_does(fake_sentry: FakeSentry) -> None:
    # Both lists: ``request.GET.get("sample") in ("1", "true")``.
    data = fake_sentry.data
    slug = data.project_slugs("org-0")[0]
    issue = next(i for i in data.issues_by_id.values() if len(i.events) > 3)

    async def ids(path: str, sample: str | None) -> list[str]:
        params = {"sample": sample} if sample is not None else {}
        async with aiohttp.ClientSession() as http, http.get(
            f"{fake_sentry.url}/api/0/{path}",
            params={**params, "statsPeriod": "90d"},
            headers={"Authorization": f"Bearer {fake_sentry.token}"},
        ) as reply:
            assert reply.status == 200
            return [row["eventID"] for row in await reply.json()]

    project = f"projects/org-0/{slug}/events/"
    issue_path = f"organizations/org-0/issues/{issue.id}/events/"
    with anyio.fail_after(10):
        newest = await ids(project, None)
        project_zero = await ids(project, "0")
        issue_newest = await ids(issue_path, None)
        issue_zero = await ids(issue_path, "0")
        issue_true = await ids(issue_path, "true")
    assert newest != sorted(newest) and project_zero == newest
    assert issue_newest != sorted(issue_newest)
    assert issue_zero == issue_newest and issue_true == sorted(issue_true) != issue_newest


# -- Discover sorts -------------------------------------------------------------------------


def test_function_aliases_follow_sentrys_rule() -> None:
    # fields.get_function_alias: the function, then its arguments with every non-word
    # character as "_", trailing "_" dropped; an explicit "as" alias wins.
    assert function_alias("count()") == "count"
    assert function_alias("p95(transaction.duration)") == "p95_transaction_duration"
    assert function_alias("percentile(transaction.duration, 0.95)") == (
        "percentile_transaction_duration_0_95"
    )
    assert function_alias("count_if(transaction.duration,greater,300)") == (
        "count_if_transaction_duration_greater_300"
    )
    assert function_alias("count() as total") == "total"
    assert function_alias("title") == "title"


async def test_discover_sorts_that_sentry_resolves(
    fake_sentry: FakeSentry, client: SentryClient
) -> None:
    cases = [
        (["title", "count()"], "-count"),
        (["transaction", "p95(transaction.duration)"], "-p95_transaction_duration"),
        (["title", "timestamp"], "-id"),
        (["title", "timestamp"], "id"),
    ]
    with anyio.fail_after(15):
        for fields, sort in cases:
            rows = await client.discover.query(
                "org-0", fields=fields, sort=sort, project=-1, period="14d"
            ).collect()
            assert rows, (fields, sort)
    counts = await client.discover.query(
        "org-0", fields=["title", "count()"], sort="-count", project=-1, period="14d"
    ).collect()
    assert [r["count()"] for r in counts] == sorted((r["count()"] for r in counts), reverse=True)
    by_id = [r["id"] for r in await client.discover.query(
        "org-0", fields=["id", "title"], sort="id", project=-1, period="14d"
    ).collect()]
    assert by_id == sorted(by_id)


async def test_discover_sorts_that_sentry_refuses(client: SentryClient) -> None:
    refused = [
        (["title", "count()"], "-id"),  # ``id`` is added only to queries without aggregates
        (["title", "count()"], "-count_unique_user"),
        (["title", "count()", "equation|count() * 2"], "-equation[1]"),
        (["title", "count()"], "-equation[0]"),
        (["title"], "-count()"),
    ]
    for fields, sort in refused:
        with pytest.raises(ValueError, match="sort"):
            client.discover.query("org-0", fields=fields, sort=sort)
    accepted = [
        (["title", "count()", "equation|count() * 2"], "-equation[0]"),
        (["title", "count()", "equation|count() * 2"], "equation|count() * 2"),
        (["title", "count()"], "-count()"),
    ]
    for fields, sort in accepted:
        client.discover.query("org-0", fields=fields, sort=sort)


# -- fields and meta ------------------------------------------------------------------------


async def test_a_blank_padded_field_is_refused_before_sending(
    fake_sentry: FakeSentry, client: SentryClient
) -> None:
    """Rows are keyed by the field as Sentry echoes it: a field sent stripped would not be
    the key asked for, and one sent as it is names no column."""
    for fields in ([" title"], ["title", "count() "], ["id", "\ttitle"]):
        with pytest.raises(ValueError, match=r"fields .*blank"):
            client.discover.query("org-0", fields=fields)
    assert fake_sentry.requests == []
    with anyio.fail_after(10):
        rows = await client.discover.query(
            "org-0", fields=["title", "count()"], project=-1, period="14d", limit=3
        ).collect()
    assert rows and all(set(row) == {"title", "count()"} for row in rows)


async def test_an_export_of_a_blank_padded_field_is_refused_before_it_starts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An export's fields head its CSV columns: refused with the spec, before any request
    or checkpoint, as the query would be."""
    with pytest.raises(ValueError, match="fields must be non-empty names without"):
        ExportSpec(kind="discover", org="acme", fields=(" title", "id"))
    monkeypatch.setenv("SENTRY_AUTH_TOKEN", TOKEN)
    out, err = io.StringIO(), io.StringIO()
    argv = ["export", "discover", "--org", "acme", "--field", "title ", "--period", "1d",
            "--base-url", "http://127.0.0.1:9", "--output", str(tmp_path / "run")]  # fmt: skip
    code = await anyio.to_thread.run_sync(lambda: main(argv, stdout=out, stderr=err))
    assert code == 2 and "--field" in err.getvalue() and "Traceback" not in err.getvalue()
    assert not (tmp_path / "run").exists()


ODD_META = {
    "units_not_text": {"fields": {"title": "string"}, "units": {"title": 5}},
    "fields_a_list": {"fields": ["title"]},
    "tips_text": {"fields": {"title": "string"}, "tips": "x"},
    "flag_not_bool": {"fields": {"title": "string"}, "isMetricsData": "yes"},
    "meta_a_list": ["title"],
}


async def test_a_page_whose_meta_does_not_fit_is_a_decode_error_naming_the_endpoint() -> None:
    """The meta is checked with the body: an odd one is the page's ``DecodeError`` (the
    URL shown, the token never), and the paginator stays where that page starts."""

    async def events(request: web.Request) -> web.Response:
        meta = {"fields": {"title": "string"}, "units": {"title": None}}
        if request.query.get("cursor") == "0:1:0":
            meta = ODD_META[request.query["query"]]
        link = (
            f'<{request.url}>; rel="previous"; results="false"; cursor="0:0:1", '
            f'<{request.url}>; rel="next"; results="true"; cursor="0:1:0"'
        )
        return web.json_response({"data": [{"title": "a"}], "meta": meta}, headers={"Link": link})

    app = web.Application()
    app.router.add_get("/api/0/organizations/acme/events/", events)
    async with local_app(app) as url, SentryClient(TOKEN, base_url=url) as sentry:
        for name in ODD_META:
            paginator = sentry.discover.query(
                "acme", fields=["title"], query=name, project=1, page_size=1
            )
            with anyio.fail_after(10), pytest.raises(DecodeError) as caught:
                await paginator.collect()
            error = caught.value
            assert "/organizations/acme/events/" in error.url and "meta" in str(error), name
            assert error.method == "GET" and TOKEN not in str(error)
            assert paginator.position.cursor == "0:1:0", name


# -- top events -----------------------------------------------------------------------------


async def test_top_events_sorts_and_groups_that_sentry_refuses(client: SentryClient) -> None:
    # top_events_timeseries runs query(selected_columns=fields, orderby=sort) first (no auto
    # ``id``), and OrganizationEventsStatsEndpoint refuses ``timestamp`` among the fields.
    refused = [
        (["release"], "-count()", "sort"),
        (["release"], "-p95(transaction.duration)", "sort"),
        (["release"], "-no_such_field", "sort"),
        (["release", "timestamp"], "-count()", "timestamp"),
        (["release", "count()"], "-id", "sort"),
    ]
    for fields, sort, message in refused:
        with pytest.raises(ValueError, match=message):
            await client.stats.events("org-0", top_events=5, fields=fields, sort=sort)
        with pytest.raises(ValueError, match=message):
            await client.stats.events("org-0", top_events=5, fields=fields, order_by=sort)


async def test_the_fake_refuses_top_events_as_sentry_does(fake_sentry: FakeSentry) -> None:
    base = [("topEvents", "5"), ("statsPeriod", "24h"), ("project", "-1")]
    cases = [
        ([("field", "release"), ("orderby", "-count()")], NOT_SELECTED),
        ([("field", "release"), ("sort", "-nothing")], NOT_SELECTED),
        ([("field", "timestamp"), ("sort", "-count()")], "Cannot group by timestamp"),
    ]
    with anyio.fail_after(10):
        for extra, detail in cases:
            status, body, _ = await org_get(fake_sentry, "events-stats/", [*base, *extra])
            assert (status, body) == (400, {"detail": detail}), extra
        status, body, _ = await org_get(
            fake_sentry,
            "events-stats/",
            [*base, ("field", "release"), ("field", "count()"), ("sort", "count")],
        )
    assert status == 200
    totals = {label: sum(p[1][0]["count"] for p in s["data"]) for label, s in body.items()}
    ranked = sorted((s["order"], label) for label, s in body.items() if label != "Other")
    counts = [totals[label] for _, label in ranked]
    assert counts == sorted(counts), "ascending count, as the sort asks"


# -- what the fake serves -------------------------------------------------------------------


async def test_the_fake_serves_what_sentry_resolves(
    fake_sentry: FakeSentry, client: SentryClient
) -> None:
    # DATASET_OPTIONS (src/sentry/snuba/utils.py), resolve_field (any name matching
    # VALID_FIELD_PATTERN is a tag) and get_equation_list / resolve_equation_list.
    def query(**options: Any) -> Any:
        return client.discover.query("org-0", project=-1, period="14d", **options)

    with anyio.fail_after(15):
        for dataset in ("spans", "metricsEnhanced", "ourlogs", "profile_functions"):
            await query(fields=["id", "title"], dataset=dataset).collect()
        tagged = query(fields=["title", "browser.name", "tags[customer]"])
        page = await anext(tagged.pages())
        equation = "equation|count() * 2 + 1"
        rows = await query(
            fields=["title", "count()", equation], sort="-equation[0]"
        ).collect()
        status, body, _ = await org_get(
            fake_sentry, "events/", [("field", "title"), ("field", "bad field!")]
        )
    assert page.items and all(
        row["browser.name"] is None and row["tags[customer]"] is None for row in page.items
    )
    assert page.meta is not None
    assert page.meta.fields["browser.name"] == page.meta.fields["tags[customer]"] == "string"
    assert rows and all(row[equation] == row["count()"] * 2 + 1 for row in rows)
    assert [row[equation] for row in rows] == sorted((row[equation] for row in rows), reverse=True)
    assert status == 400 and "bad field!" in body["detail"]


async def test_the_fake_adds_id_and_project_name_where_sentry_does(fake_sentry: FakeSentry) -> None:
    # resolve_select with auto_fields: without an aggregate (a function, or an equation
    # holding one) it adds ``id``; with ``id`` selected and ``project.id`` not, it adds
    # ``project.name`` (the project's slug). process_results types every returned column.
    base = [("project", "-1"), ("statsPeriod", "14d"), ("per_page", "3")]
    cases = [
        (["title"], ["title", "id", "project.name"]),
        (["title", "project.id"], ["title", "project.id", "id"]),
        (["title", "count()"], ["title", "count()"]),
        (["id", "count()"], ["id", "count()", "project.name"]),
        (["title", "equation|count() * 2"], ["title", "equation|count() * 2"]),
    ]
    answers = []
    with anyio.fail_after(10):
        for fields, _ in cases:
            answers.append(
                await org_get(fake_sentry, "events/", [*base, *(("field", f) for f in fields)])
            )
    slugs = set(fake_sentry.data.project_slugs("org-0"))
    for (fields, expected), (status, body, _) in zip(cases, answers, strict=True):
        assert status == 200 and body["data"], fields
        assert [list(row) for row in body["data"]] == [expected] * len(body["data"]), fields
        assert list(body["meta"]["fields"]) == expected, fields
        assert set(body["meta"]["units"]) == set(expected), fields
        for row in body["data"]:
            if "id" in expected and "count()" not in expected:
                assert isinstance(row["id"], str) and len(row["id"]) == 32
            if "project.name" in expected:
                assert row["project.name"] in slugs
    plain = answers[0][1]["meta"]["fields"]
    assert plain["id"] == plain["project.name"] == "string"


async def test_identical_discover_rows_still_differ_by_id(fake_sentry: FakeSentry) -> None:
    # One issue's events asked for their title only: every row has the same title, but
    # Sentry adds each event's id, so no two pages are the same and the walk reads them all.
    org = fake_sentry.builder.add_organization("acme")
    org.add_project("web").add_issue("ConnectionError: refused", events=60)
    async with fake_sentry.client() as sentry:
        with anyio.fail_after(30):
            rows = await sentry.discover.query(
                "acme", fields=["title"], project="web", period="14d", page_size=1
            ).collect()
    assert len(rows) == 60 and len({row["id"] for row in rows}) == 60
    assert {row["project.name"] for row in rows} == {"web"}


async def test_the_fake_equations_are_numbers_or_null(fake_sentry: FakeSentry) -> None:
    params = [("project", "-1"), ("statsPeriod", "14d"), ("field", "title"), ("field", "count()")]
    equations = ["equation|count() / (count() - count())", "equation|count_unique(user) - 1"]
    with anyio.fail_after(10):
        status, body, _ = await org_get(
            fake_sentry, "events/", [*params, *(("field", e) for e in equations)]
        )
    assert status == 200 and body["data"]
    assert all(row[equations[0]] is None for row in body["data"]), "division by zero is null"
    assert all(isinstance(row[equations[1]], int) for row in body["data"])
    assert body["meta"]["fields"][equations[0]] == "number"


# -- events-stats intervals -----------------------------------------------------------------


async def test_the_fake_falls_back_to_the_default_interval_when_too_fine(
    fake_sentry: FakeSentry,
) -> None:
    # get_event_stats_data catches validate_interval's InvalidSearchQuery and buckets at
    # get_interval_from_range(range): 4h for 30 days, 1h for 3 days.
    cases = [
        ([("statsPeriod", "30d"), ("interval", "1m")], 4 * 3600),
        ([("statsPeriod", "30d"), ("interval", "1h")], 3600),
        ([("statsPeriod", "3d"), ("interval", "0m")], 3600),
        # 10000 / 5 top events = 2000 points at most: 3 days at 2m is 2160.
        (
            [("statsPeriod", "3d"), ("interval", "2m"), ("topEvents", "5"), ("field", "release")],
            3600,
        ),
    ]
    with anyio.fail_after(15):
        for params, step in cases:
            status, body, _ = await org_get(fake_sentry, "events-stats/", params)
            assert status == 200, (params, body)
            series = next(iter(body.values())) if "topEvents" in dict(params) else body
            stamps = [point[0] for point in series["data"]]
            assert {b - a for a, b in pairwise(stamps)} == {step}, params


async def test_an_interval_making_too_many_points_is_refused_before_sending(
    fake_sentry: FakeSentry, client: SentryClient
) -> None:
    with pytest.raises(ValueError, match=r"interval '1m' over 30d .* 10000 points"):
        await client.stats.events("org-0", period="30d", interval="1m")
    with pytest.raises(ValueError, match=r"interval '2m' over 3d .* 2000 points"):
        await client.stats.events(
            "org-0", period="3d", interval="2m", top_events=5, fields=["release"]
        )
    with pytest.raises(ValueError, match=r"interval '60s' over 90d"):
        await client.stats.events("org-0", interval=timedelta(minutes=1))
    assert fake_sentry.requests == []
    with anyio.fail_after(10):
        await client.stats.events("org-0", period="6d", interval="1m")  # 8640 points
        await client.stats.events(
            "org-0",
            start=fake_sentry.data.now - timedelta(hours=2),
            end=fake_sentry.data.now,
            interval="1s",
        )  # 7200 points


# -- events-stats buckets -------------------------------------------------------------------


async def test_the_fake_fills_buckets_as_sentry_does(fake_sentry_factory: Any) -> None:
    """zerofill: keys ``range(rollup_start, rollup_end, rollup)`` with ``rollup_end`` the end
    rounded down; the bucket the end falls in only with ``partial=1``; ``end`` reported as
    ``rollup_end`` (calculate_time_frame)."""
    now = datetime(2026, 6, 1, 12, 25, 30, tzinfo=timezone.utc)
    server = await fake_sentry_factory(scale="small", now=now)
    ts = int(now.timestamp())
    start, rollup_end = (ts - 86400) // 3600 * 3600, ts // 3600 * 3600
    base = [("statsPeriod", "24h"), ("interval", "1h"), ("project", "-1")]
    with anyio.fail_after(10):
        whole = await org_get(server, "events-stats/", base)
        partial = await org_get(server, "events-stats/", [*base, ("partial", "1")])
        not_one = await org_get(server, "events-stats/", [*base, ("partial", "true")])
        aligned = await org_get(
            server, "events-stats/", [("statsPeriod", "2h"), ("interval", "1h")]
        )
        single = await org_get(
            server, "events-stats/", [("statsPeriod", "1h"), ("interval", "1h")]
        )
    assert [p[0] for p in whole[1]["data"]] == list(range(start, rollup_end, 3600))
    assert (whole[1]["start"], whole[1]["end"]) == (start, rollup_end)
    assert [p[0] for p in partial[1]["data"]] == list(range(start, rollup_end + 1, 3600))
    assert partial[1]["end"] == rollup_end
    assert not_one[1]["data"] == whole[1]["data"], "partial is read as == '1'"
    # Two hours back from 12:25:30: buckets 10:00 and 11:00 (12:00 is partial).
    assert [p[0] for p in aligned[1]["data"]] == [rollup_end - 7200, rollup_end - 3600]
    # One window only: Sentry keeps both buckets it straddles, and reports end + 1.
    assert [p[0] for p in single[1]["data"]] == [rollup_end - 3600, rollup_end]
    assert single[1]["end"] == rollup_end + 1
