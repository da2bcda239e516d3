"""What ``sentry-async query`` prints for answers the bundled fake does not make: empty
results, long series, large numbers, wide characters and text that spreadsheets run."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from functools import partial
from pathlib import Path
from typing import Any

import anyio
import msgspec
import pytest
from _local_server import local_app
from aiohttp import web

from sentry_async.cli import main
from sentry_async.export._formats import CsvFile

TOKEN = "sntrys_query-output-token-0123456789abcdef0123456789abcdef"
HOUR = 3600
T0 = 1767225600
"""2026-01-01T00:00:00Z."""


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def _link(request: web.Request, index: int, count: int) -> str:
    more = "true" if index + 1 < count else "false"
    url = f"http://{request.host}{request.path}?cursor=0:{index + 1}:0"
    return f'<{url}>; rel="next"; results="{more}"; cursor="0:{index + 1}:0"'


@asynccontextmanager
async def _sentry(
    pages: Sequence[dict[str, Any]] = (),
    stats: dict[str, Any] | None = None,
    usage: dict[str, Any] | None = None,
) -> AsyncIterator[str]:
    """A Sentry answering Discover with ``pages`` (in turn, by cursor), events-stats with
    ``stats`` and stats_v2 with ``usage``; yields its base URL."""

    async def events(request: web.Request) -> web.Response:
        index = int(request.query.get("cursor", "0:0:0").split(":")[1])
        return web.json_response(pages[index], headers={"Link": _link(request, index, len(pages))})

    async def events_stats(request: web.Request) -> web.Response:
        return web.json_response(stats)

    async def stats_v2(request: web.Request) -> web.Response:
        return web.json_response(usage)

    app = web.Application()
    app.router.add_get("/api/0/organizations/{org}/events/", events)
    app.router.add_get("/api/0/organizations/{org}/events-stats/", events_stats)
    app.router.add_get("/api/0/organizations/{org}/stats_v2/", stats_v2)
    async with local_app(app) as url:
        yield url


async def _run(
    argv: Sequence[str], url: str, out: io.StringIO | None = None
) -> tuple[int, str, str]:
    out = out if out is not None else io.StringIO()
    err = io.StringIO()
    argv = [*argv, "--base-url", url, "--quiet"]
    with anyio.fail_after(30):
        code = await anyio.to_thread.run_sync(partial(main, argv, stdout=out, stderr=err))
    return code, out.getvalue(), err.getvalue()


@pytest.fixture(autouse=True)
def _token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SENTRY_AUTH_TOKEN", TOKEN)


DISCOVER = ["query", "discover", "--org", "acme", "--period", "1d"]


async def test_an_empty_discover_answer_in_csv_is_its_header() -> None:
    page = {"data": [], "meta": {"fields": {"title": "string", "count()": "integer"}}}
    async with _sentry([page]) as url:
        code, out, err = await _run([*DISCOVER, "--field", "title", "--field", "count()"], url)
    assert code == 0, err
    assert out == "title,count()\n"


def _hourly(buckets: int) -> dict[str, Any]:
    return {"data": [[T0 + n * HOUR, [{"count": n}]] for n in range(buckets)]}


async def test_a_stats_table_cut_short_says_so_and_takes_a_limit() -> None:
    argv = ["query", "stats", "--org", "acme", "--period", "7d", "--interval", "1h"]
    async with _sentry(stats=_hourly(168)) as url:
        code, out, err = await _run(argv, url, out=_Terminal())
        assert code == 0, err
        assert len(out.splitlines()) == 2 + 100
        assert "showing 100 of 168 rows" in err
        code, out, err = await _run([*argv, "--limit", "200"], url, out=_Terminal())
        assert code == 0, err
        assert len(out.splitlines()) == 2 + 168 and "showing" not in err
        code, out, err = await _run([*argv, "--limit", "5"], url)
    assert code == 0, err
    assert len(list(csv.reader(io.StringIO(out)))) == 1 + 5


async def test_a_usage_table_takes_a_limit_and_tells_when_cut() -> None:
    usage = {
        "intervals": [f"2026-01-{day:02d}T00:00:00Z" for day in range(1, 4)],
        "groups": [
            {"by": {"outcome": "accepted"}, "totals": {"sum(quantity)": 6},
             "series": {"sum(quantity)": [1, 2, 3]}},
        ],
    }  # fmt: skip
    argv = ["query", "usage", "--org", "acme", "--group-by", "outcome", "--category", "error"]
    async with _sentry(usage=usage) as url:
        code, out, err = await _run([*argv, "--limit", "2"], url, out=_Terminal())
    assert code == 0, err
    assert len(out.splitlines()) == 2 + 2
    assert "showing 2 of 3 rows" in err


async def test_a_discover_table_cut_short_says_so() -> None:
    rows = [{"id": f"e{n}"} for n in range(5)]
    pages = [{"data": rows[:3], "meta": {"fields": {"id": "string"}}},
             {"data": rows[3:], "meta": {"fields": {"id": "string"}}}]  # fmt: skip
    async with _sentry(pages) as url:
        code, out, err = await _run([*DISCOVER, "--field", "id", "--limit", "2"], url, _Terminal())
        assert code == 0, err
        assert [line.strip() for line in out.splitlines()[2:]] == ["e0", "e1"]
        assert "showing 2 rows" in err
        code, out, err = await _run([*DISCOVER, "--field", "id", "--limit", "5"], url, _Terminal())
    assert code == 0, err
    assert len(out.splitlines()) == 2 + 5 and "showing" not in err


FLOATS = {"d": 2.0, "tiny": 1e-07, "big": 1.2345678901234566e25, "exact": 9007199254740993,
          "half": 2.5, "whole": 1e15}  # fmt: skip


async def test_csv_numbers_are_written_without_invented_digits() -> None:
    page = {"data": [FLOATS], "meta": {"fields": dict.fromkeys(FLOATS, "number")}}
    fields = [arg for name in FLOATS for arg in ("--field", name)]
    async with _sentry([page]) as url:
        code, out, err = await _run([*DISCOVER, *fields], url)
    assert code == 0, err
    header, row = csv.reader(io.StringIO(out))
    assert dict(zip(header, row, strict=True)) == {
        "d": "2",
        "tiny": "1e-07",
        "big": "1.2345678901234566e+25",
        "exact": "9007199254740993",
        "half": "2.5",
        "whole": "1000000000000000",
    }
    assert all(float(row[i]) == float(FLOATS[name]) for i, name in enumerate(header))


async def test_query_and_export_csv_write_the_same_value_the_same_way(tmp_path: Path) -> None:
    row = {**FLOATS, "ok": True, "none": None, "tags": ["a", "b"], "cr": "a\rb", "nl": "c\nd"}
    page = {"data": [row], "meta": {"fields": {"ok": "boolean"}}}
    fields = [arg for name in row for arg in ("--field", name)]
    async with _sentry([page]) as url:
        code, out, err = await _run([*DISCOVER, *fields], url)
    assert code == 0, err
    exported = CsvFile(tmp_path / "rows.csv", compress=False, columns=list(row))
    assert exported.encode_page([msgspec.json.encode(row)]).decode() == out
    header, cells = csv.reader(io.StringIO(out, newline=""))
    assert header == list(row) and cells[-2:] == ["a\rb", "c\nd"], "a lone CR reads back"


FORMULAS = ["=HYPERLINK(\"http://x\",\"y\")", "+1", "-2+3", "@SUM(A1)", "\tx", "\rx", "plain"]


async def test_csv_keeps_formulas_as_sent_unless_asked_to_escape_them() -> None:
    page = {
        "data": [{"title": text, "count()": -3} for text in FORMULAS],
        "meta": {"fields": {"title": "string", "count()": "integer"}},
    }
    argv = [*DISCOVER, "--field", "title", "--field", "count()"]
    async with _sentry([page]) as url:
        code, plain, err = await _run(argv, url)
        assert code == 0, err
        code, escaped, err = await _run([*argv, "--csv-escape-formulas"], url)
    assert code == 0, err
    assert [row[0] for row in list(csv.reader(io.StringIO(plain)))[1:]] == FORMULAS
    rows = list(csv.reader(io.StringIO(escaped)))[1:]
    assert [row[0] for row in rows] == [*("'" + text for text in FORMULAS[:-1]), "plain"]
    assert {row[1] for row in rows} == {"-3"}, "numbers are numbers, not formulas"
    async with _sentry([page]) as url:
        argv = [*argv, "--csv-escape-formulas", "--format", "json"]
        code, out, err = await _run(argv, url)
    assert code == 0, err
    assert [json.loads(line)["title"] for line in out.splitlines()] == FORMULAS, "JSON is data"


def _display_width(text: str) -> int:
    import unicodedata

    return sum(2 if unicodedata.east_asian_width(char) in "WF" else 1 for char in text)


async def test_a_table_aligns_wide_characters_and_keeps_emoji_sequences() -> None:
    family = "\U0001f468\u200d\U0001f469\u200d\U0001f467"
    titles = ["日本語のエラー", f"family {family} crash", "ascii", "bidi \u202e evil"]
    page = {
        "data": [{"title": title, "count()": n} for n, title in enumerate(titles)],
        "meta": {"fields": {"title": "string", "count()": "integer"}},
    }
    async with _sentry([page]) as url:
        argv = [*DISCOVER, "--field", "title", "--field", "count()"]
        code, out, err = await _run(argv, url, _Terminal())
    assert code == 0, err
    _, rule, *body = out.splitlines()
    assert f"family {family} crash" in body[1], "the joiners stay: one emoji, not escapes"
    assert "\\u202e" in body[3] and "\u202e" not in out, "a bidi override is still escaped"
    # Where the count column starts, in display columns: the same on every line.
    count_at = len(rule.split("  ")[0]) + 2
    starts = [_display_width(body[0].rsplit("  ", 1)[0]) + 2]
    starts += [_display_width(line.rsplit("  ", 1)[0]) + 2 for line in (body[2], body[3])]
    assert starts == [count_at] * 3
    assert body[0].startswith("日本語のエラー" + " " * (count_at - 2 - 14))


def test_display_width_counts_wide_characters_twice_and_joined_emoji_once() -> None:
    from sentry_async._query_command import _width

    family = "\U0001f468\u200d\U0001f469\u200d\U0001f467"
    assert [_width(text) for text in ("日本語", family, "e\u0301", "abc", "\uff46\uff55\uff4c\uff4c")] == [
        6,
        2,
        1,
        3,
        8,
    ]


USAGE_GROUP = {
    "by": {"outcome": "accepted", "category": "error"},
    "totals": {"sum(quantity)": 1},
    "series": {"sum(quantity)": [1]},
}


@pytest.mark.parametrize(
    ("kind", "answer", "naming"),
    [
        ("usage", {"intervals": ["not a date"], "groups": [USAGE_GROUP]}, "'not a date'"),
        ("stats", {"data": [[10**300, [{"count": 1}]]]}, "out of range"),
        ("stats", {"data": [[T0 * 10**6, [{"count": 1}]]]}, "out of range"),
    ],
    ids=["usage-interval-not-a-date", "stats-time-overflow", "stats-year-out-of-range"],
)
@pytest.mark.parametrize("fmt", ["csv", "table"])
async def test_an_answer_that_cannot_be_made_rows_is_a_server_problem_not_bad_arguments(
    kind: str, answer: dict[str, Any], naming: str, fmt: str
) -> None:
    """The arguments were fine (exit 2 would send the user to change them): what the
    server sent is the problem, exit 1, with a line naming the answer and what was wrong."""
    server = {"usage": answer} if kind == "usage" else {"stats": answer}
    async with _sentry(**server) as url:
        code, out, err = await _run(
            ["query", kind, "--org", "acme", "--period", "1d", "--format", fmt], url
        )
    lines = err.splitlines()
    assert (code, out) == (1, ""), err
    assert len(lines) == 1 and lines[0].startswith("sentry-async: error: "), err
    assert naming in lines[0] and kind in lines[0], lines[0]


async def test_an_empty_y_axis_is_named_as_such() -> None:
    async with _sentry() as url:
        code, _, err = await _run(["query", "stats", "--org", "acme", "--y-axis", ""], url)
    assert code == 2
    assert err.splitlines() == ["sentry-async: error: --y-axis: an expression must not be empty"]
