"""``sentry-async query discover|stats|usage`` against the fake server."""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import sys
from collections.abc import Awaitable, Callable, Sequence
from functools import partial
from pathlib import Path
from typing import Any

import anyio
import pytest
from _watched_pages import WatchedPages, memory_pages

from sentry_async import SentryClient, _cli_run
from sentry_async._query_command import run_query
from sentry_async._text import printable
from sentry_async.cli import build_parser, main
from sentry_async.testing import FakeSentry

ORG = "org-0"
TOKEN = "sntrys_query-test-token-0123456789abcdef0123456789abcdef"
Factory = Callable[..., Awaitable[FakeSentry]]


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


async def _run(argv: Sequence[str], out: io.StringIO | None = None) -> tuple[int, str, str]:
    out = out if out is not None else io.StringIO()
    err = io.StringIO()
    with anyio.fail_after(30):
        code = await anyio.to_thread.run_sync(partial(main, list(argv), stdout=out, stderr=err))
    return code, out.getvalue(), err.getvalue()


@pytest.fixture
async def server(fake_sentry_factory: Factory, monkeypatch: pytest.MonkeyPatch) -> FakeSentry:
    monkeypatch.setenv("SENTRY_AUTH_TOKEN", TOKEN)
    return await fake_sentry_factory(scale="small", token=TOKEN)


def _project_id(server: FakeSentry) -> str:
    org = server.data.org(ORG)
    assert org is not None
    return str(org.projects[0].id)


async def test_discover_as_csv_streams_every_page_with_a_header(server: FakeSentry) -> None:
    project = server.data.project_slugs(ORG)[0]
    code, out, err = await _run(
        [
            "query",
            "discover",
            "--org",
            ORG,
            "--field",
            "id",
            "--field",
            "title",
            "--project",
            project,
            "--period",
            "14d",
            "--base-url",
            server.url,
        ]
    )
    assert code == 0, err
    rows = list(csv.reader(io.StringIO(out)))
    expected = server.data.event_ids(ORG, project, start=server.data.now_ts - 14 * 86400)
    assert rows[0] == ["id", "title", "project.name"], "Sentry adds project.name beside id"
    assert sorted(r[0] for r in rows[1:]) == sorted(expected) and len(expected) > 0
    assert TOKEN not in out + err


async def test_discover_as_json_lines_with_limit(server: FakeSentry) -> None:
    code, out, err = await _run(
        [
            "query",
            "discover",
            "--org",
            ORG,
            "--field",
            "id",
            "--field",
            "count()",
            "--field",
            "timestamp",
            "--period",
            "14d",
            "--format",
            "json",
            "--limit",
            "3",
            "--base-url",
            server.url,
        ]
    )
    assert code == 0, err
    lines = [json.loads(line) for line in out.splitlines()]
    assert len(lines) <= 3 and all(set(line) >= {"id", "count()"} for line in lines)


async def test_a_table_cut_at_its_limit_closes_the_query_it_read(
    server: FakeSentry, abandoned_generators: list[str]
) -> None:
    args = build_parser().parse_args(
        ["query", "discover", "--org", ORG, "--field", "id", "--period", "14d", "--limit", "2"]
    )
    out = _Terminal()
    async with SentryClient(TOKEN, base_url=server.url) as client:
        with anyio.fail_after(30):
            assert await run_query(client, args, out) == 2
    assert len(out.getvalue().splitlines()) == 4, "a header, its rule and two rows"
    assert abandoned_generators == []


async def test_stats_on_a_terminal_is_an_aligned_table(server: FakeSentry) -> None:
    code, out, err = await _run(
        [
            "query",
            "stats",
            "--org",
            ORG,
            "--period",
            "1d",
            "--interval",
            "1h",
            "--base-url",
            server.url,
        ],
        out=_Terminal(),
    )
    assert code == 0, err
    header, rule, *body = out.splitlines()
    assert header.split() == [
        "series",
        "y_axis",
        "group",
        "order",
        "timestamp",
        "value",
        "comparison_value",
    ]
    assert set(rule) == {"-", " "} and 20 <= len(body) <= 25


async def test_usage_as_csv_per_interval(server: FakeSentry) -> None:
    code, out, err = await _run(
        [
            "query",
            "usage",
            "--org",
            ORG,
            "--group-by",
            "outcome",
            "--category",
            "error",
            "--period",
            "2d",
            "--interval",
            "1d",
            "--base-url",
            server.url,
        ]
    )
    assert code == 0, err
    rows = list(csv.DictReader(io.StringIO(out)))
    assert rows and set(rows[0]) == {"outcome", "interval", "sum(quantity)"}
    assert all(row["sum(quantity)"].isdigit() for row in rows)


async def test_usage_defaults_to_a_query_sentry_accepts(server: FakeSentry) -> None:
    """Sentry wants a category filter or group, and at most 1000 intervals (90 days by
    default): with neither flag the command groups by category too and picks the interval."""
    code, out, err = await _run(["query", "usage", "--org", ORG, "--base-url", server.url])
    assert code == 0, err
    rows = list(csv.DictReader(io.StringIO(out)))
    assert rows and set(rows[0]) == {"category", "outcome", "interval", "sum(quantity)"}
    (sent,) = [r for r in server.requests if r.path.endswith("/stats_v2/")]
    assert sent.params("groupBy") == ["outcome", "category"]
    assert sent.param("interval") == "4h" and sent.param("statsPeriod") is None


async def test_bad_arguments_are_one_line_exit_2(server: FakeSentry) -> None:
    code, _, err = await _run(
        [
            "query",
            "discover",
            "--org",
            ORG,
            "--field",
            "id",
            "--period",
            "14d",
            "--since",
            "2026-01-01",
            "--base-url",
            server.url,
        ]
    )
    assert code == 2
    assert err.strip().splitlines()[-1] == (
        "sentry-async: error: give --since or --period, not both"
    )


async def test_usage_without_a_category_names_the_flags(server: FakeSentry) -> None:
    argv = ["query", "usage", "--org", ORG, "--base-url", server.url, "--group-by", "outcome",
            "--period", "7d"]  # fmt: skip
    code, out, err = await _run(argv)
    assert (code, out) == (2, "")
    (line,) = err.splitlines()
    assert "--category" in line and "--group-by category" in line, line
    assert "category=" not in line and "group_by" not in line, line


async def test_argument_errors_name_their_flag(server: FakeSentry) -> None:
    base = ["--org", ORG, "--base-url", server.url]
    discover = ["query", "discover", *base, "--field", "id"]
    cases = {
        "--until 2026-13-01": (2, [*discover, "--since", "2026-05-01", "--until", "2026-13-01"]),
        "--since 2026-13-01": (2, [*discover, "--since", "2026-13-01"]),
        "--period 0d": (2, [*discover, "--period", "0d"]),
        "--since 2026-05-20": (2, [*discover, "--since", "2026-05-20", "--until", "2026-05-10"]),
        "--top-events": (2, ["query", "stats", *base, "--top-events", "0", "--field", "release",
                             "--period", "1d"]),
        "--group-by": (2, ["query", "usage", *base, "--group-by", "bogus", "--period", "1d"]),
        "--field": (2, ["query", "discover", *base, "--field", "", "--period", "1d"]),
        "--project nope": (4, [*discover, "--project", "nope", "--period", "1d"]),
    }  # fmt: skip
    for naming, (expected, argv) in cases.items():
        code, out, err = await _run(argv)
        assert code == expected, (naming, err)
        lines = err.splitlines()
        assert len(lines) == 1 and lines[0].startswith("sentry-async: error: "), (naming, err)
        assert naming in lines[0], (naming, err)
        assert out == ""


async def test_a_blank_padded_field_is_refused_not_shown_as_an_empty_column(
    server: FakeSentry,
) -> None:
    """Rows are keyed by the field as sent: ``" title"`` would head an empty column of its
    own beside Sentry's ``title``."""
    base = ["--org", ORG, "--base-url", server.url, "--period", "1d", "--format", "csv"]
    for kind in ("discover", "stats"):
        argv = ["query", kind, *base, "--field", " title", "--field", "count()"]
        if kind == "stats":
            argv += ["--top-events", "2"]
        code, out, err = await _run(argv)
        assert (code, out) == (2, ""), err
        (line,) = err.splitlines()
        assert line.startswith("sentry-async: error: --field ' title': "), line
        assert "blank" in line, line
    assert server.requests == []
    code, out, err = await _run(["query", "discover", *base, "--field", "title"])
    assert code == 0, err
    assert out.splitlines()[0] == "title,id,project.name"


async def test_a_closed_stdout_ends_quietly(server: FakeSentry) -> None:
    """``query ... | head -1``: the reader went away; no error, no traceback at exit."""
    command = [sys.executable, "-m", "sentry_async", "query", "discover", "--org", ORG,
               "--field", "id", "--field", "title", "--period", "14d", "--base-url", server.url]  # fmt: skip
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        with anyio.fail_after(60):
            result = await anyio.run_process(command, stdout=write_end, check=False)
    finally:
        os.close(write_end)
    assert result.stderr == b""
    assert result.returncode == 141


@pytest.mark.parametrize("command", ["query", "export", "demo"])
async def test_a_stdout_closed_from_the_start_is_one_line_not_a_traceback(
    server: FakeSentry, tmp_path: Path, command: str
) -> None:
    """Started with stdout closed (``>&-``), Python has no ``sys.stdout``: a query, whose
    answer is its output, stops at once with one line and 141; an export and the demo
    write their files, and only the summary has nowhere to go."""
    out = tmp_path / "out"
    argv = {
        "query": ["query", "discover", "--org", ORG, "--field", "id", "--period", "14d",
                  "--base-url", server.url],
        "export": ["export", "events", "--org", ORG, "--period", "1d", "-o", str(out), "-q",
                   "--base-url", server.url],
        "demo": ["demo", "--scale", "small", "-o", str(out), "-q"],
    }[command]  # fmt: skip
    closed = ["sh", "-c", 'exec "$0" "$@" >&-', sys.executable, "-m", "sentry_async", *argv]
    with anyio.fail_after(120):
        result = await anyio.run_process(closed, check=False)
    lines = result.stderr.decode().splitlines()
    if command == "query":
        assert result.returncode == 141, lines
        assert len(lines) == 1 and lines[0].startswith("sentry-async: error: stdout"), lines
    else:
        assert (result.returncode, lines) == (0, [])
        assert list(out.rglob("manifest.json")), "the export was written"


async def test_ctrl_c_during_a_query_mentions_no_checkpoint(
    server: FakeSentry, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def interrupted(*args: Any) -> int:
        raise KeyboardInterrupt

    monkeypatch.setattr(_cli_run, "run_query_command", interrupted)
    code, out, err = await _run(["query", "discover", "--org", ORG, "--field", "id",
                                 "--base-url", server.url])  # fmt: skip
    assert code == 130 and out == ""
    assert err.splitlines() == ["sentry-async: interrupted"]


def test_terminal_text_has_control_characters_escaped() -> None:
    assert printable("a\x1b[31mred\x07\nb") == "a\\x1b[31mred\\x07\\x0ab"


async def test_discover_rows_let_go_of_a_page_before_the_next_is_fetched(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Rows already handed to the writer leave their page behind: a page kept alive while
    the next one decodes makes it decode into cold memory."""
    from sentry_async._query_command import _discover_rows
    from sentry_async.pagination import Paginator

    fetch = WatchedPages(
        memory_pages([[{"id": f"{page}-{n}"} for n in range(2)] for page in range(3)])
    )

    def query(*args: Any, **kwargs: Any) -> Paginator[Any]:
        return Paginator(fetch, page_size=2).read_ahead(0)

    async with SentryClient("t", base_url="http://127.0.0.1:9") as client:
        monkeypatch.setattr(type(client.discover), "query", query)
        args = argparse.Namespace(
            org=ORG, field=["id"], query=None, sort=None, project=None, environment=None,
            dataset=None, limit=None, since=None, until=None, period=None,
        )
        ids = []
        with anyio.fail_after(5):
            async for row in _discover_rows(client, args, []):
                ids.append(row["id"])
                del row
    assert ids == ["0-0", "0-1", "1-0", "1-1", "2-0", "2-1"]
    assert fetch.alive_when_asked == [0, 0, 0]
