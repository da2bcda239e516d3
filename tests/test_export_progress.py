"""Export progress against counts no Sentry sends: estimates stay numbers, exports go on."""

from __future__ import annotations

import io
import math
from functools import partial
from pathlib import Path

import anyio
import msgspec
import pytest
from _local_server import local_app
from aiohttp import web

from sentry_async.cli import main
from sentry_async.export import Progress, ProgressSnapshot

HUGE = "1" + "0" * 400
"""An ``X-Hits`` int() reads (under its digit limit) and no float can hold."""


def _links(url: str) -> str:
    return (
        f'<{url}&cursor=0:0:1>; rel="previous"; results="false"; cursor="0:0:1", '
        f'<{url}&cursor=0:100:0>; rel="next"; results="false"; cursor="0:100:0"'
    )


def _issues_app(hits: str) -> web.Application:
    """Org ``acme`` with projects ``web`` and ``api``: one issue each, ``X-Hits: hits``."""

    async def projects(request: web.Request) -> web.Response:
        body = [{"id": "1", "slug": "web", "name": "web"}, {"id": "2", "slug": "api", "name": "api"}]
        return web.json_response(body, headers={"Link": _links(f"{request.url}?x=1")})

    async def issues(request: web.Request) -> web.Response:
        slug = "web" if request.query.getall("project") == ["1"] else "api"
        issue = {"id": request.query["project"], "title": "t", "shortId": f"{slug}-1",
                 "firstSeen": "2026-01-01T00:00:00Z", "lastSeen": "2026-01-01T00:00:00Z",
                 "project": {"id": request.query["project"], "slug": slug}}  # fmt: skip
        headers = {"Link": _links(str(request.url)), "X-Hits": hits, "X-Max-Hits": hits}
        return web.json_response([issue], headers=headers)

    app = web.Application()
    app.router.add_get("/api/0/organizations/acme/projects/", projects)
    app.router.add_get("/api/0/organizations/acme/issues/", issues)
    return app


@pytest.mark.parametrize("projects", [["web"], ["web", "api"]])
async def test_an_x_hits_too_big_for_a_float_leaves_the_export_and_its_progress_whole(
    tmp_path: Path, projects: list[str]
) -> None:
    """Progress is shown (no ``--quiet``) and estimated on every page: one stream divides
    the items left by the rate, several extrapolate the counts to the streams not seen."""
    token = tmp_path / "token"
    token.write_text("sntrys_progress-test-token")
    out, err = io.StringIO(), io.StringIO()
    async with local_app(_issues_app(HUGE)) as url:
        argv = ["export", "issues", "--org", "acme", "--base-url", url, "--token-file",
                str(token), "-o", str(tmp_path / "out")]  # fmt: skip
        for slug in projects:
            argv += ["--project", slug]
        with anyio.fail_after(30):
            code = await anyio.to_thread.run_sync(partial(main, argv, stdout=out, stderr=err))
    assert code == 0, err.getvalue()
    assert "Traceback" not in err.getvalue() and "inf" not in err.getvalue(), err.getvalue()
    lines = [
        msgspec.json.decode(line)["id"]
        for path in (tmp_path / "out").glob("*.jsonl")
        for line in path.read_bytes().splitlines()
    ]
    assert sorted(lines) == sorted({"web": "1", "api": "2"}[slug] for slug in projects)


class _Clock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _finite(snapshot: ProgressSnapshot) -> None:
    for value in (snapshot.rate, snapshot.eta, snapshot.fraction):
        assert value is None or math.isfinite(value), snapshot
    assert "inf" not in snapshot.describe() and "nan" not in snapshot.describe()


@pytest.mark.parametrize("hits", [10**400, 10**308 * 2, 10**20], ids=["400 digits", "past float", "20 digits"])
def test_estimates_from_counts_beyond_a_float_stay_numbers(hits: int) -> None:
    """A library caller (or an old checkpoint) may hand over any int: the estimates are
    made in integers, and an ETA too long for a float is unknown, never an OverflowError."""
    clock = _Clock()
    for streams in (1, 3):
        progress = Progress("issues", clock=clock)
        seen: list[ProgressSnapshot] = []
        progress.subscribe(seen.append)
        progress.begin(streams_total=streams)
        clock.now += 1.0
        progress.page("a", items=10, bytes_=100, hits=hits, dupes=0)
        clock.now += 1.0
        progress.page("a", items=10, bytes_=100, hits=None, dupes=0)
        assert progress.expected_items() == streams * hits
        progress.begin(streams_total=streams, hits={"a": hits}, items=20)
        assert progress.expected_items() == streams * hits
        for snapshot in seen:
            _finite(snapshot)


def test_an_eta_beyond_a_float_is_unknown() -> None:
    """A crawl (one item in a long while) against a large count: the division gives inf,
    which no display should print."""
    clock = _Clock()
    progress = Progress("issues", clock=clock)
    progress.begin(streams_total=1)
    clock.now += 10.0**300
    progress.page("a", items=1, bytes_=1, hits=10**15 - 1, dupes=0)
    clock.now += 1.0
    snapshot = progress.snapshot()
    assert snapshot.eta is None
    _finite(snapshot)
