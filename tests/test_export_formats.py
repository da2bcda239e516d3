"""Discover exports as CSV and Parquet: typed columns, headers, exactly-once resume."""

from __future__ import annotations

import csv
import io
import random
import sys
from collections import Counter
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import anyio
import msgspec
import pytest

from sentry_async import RetryPolicy, SentryClient, SentryError, ServerError
from sentry_async.cli import main
from sentry_async.export import CHECKPOINT_NAME, Exporter, ExportSpec, export
from sentry_async.testing import FakeSentry, Fault, SeedConfig
from sentry_async.testing.pytest_plugin import FIXED_NOW

pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")

ORG = "org-0"
DATA = SeedConfig(
    orgs=1, projects_per_org=2, issues_per_project=10, events_per_issue=(1, 4), days=20
)
END = FIXED_NOW - timedelta(hours=5)
START = END - timedelta(days=12)
FAST_RETRY = RetryPolicy(backoff_base=0.01, backoff_max=0.05)
PLAIN = ("title", "id", "timestamp", "project.id", "issue.id")
"""string, string, date, integer and an integer that is null for transactions."""
AGGREGATES = ("transaction", "count()", "p95(transaction.duration)", "last_seen()")
"""string, integer, duration (milliseconds) and date, over the whole range."""

Factory = Callable[..., Awaitable[FakeSentry]]


def _client(server: FakeSentry) -> SentryClient:
    return SentryClient(server.token, base_url=server.url, retry=FAST_RETRY)


def _spec(**kwargs: Any) -> ExportSpec:
    kwargs.setdefault("fields", PLAIN)
    kwargs.setdefault("window", timedelta(days=3))
    kwargs.setdefault("page_size", 2)
    return ExportSpec(kind="discover", org=ORG, start=START, end=END, **kwargs)


async def _served_rows(
    server: FakeSentry, fields: tuple[str, ...], out: Path
) -> list[dict[str, Any]]:
    """The rows as the fake serves them, through a plain JSON Lines export."""
    async with _client(server) as client:
        await export(client, _spec(fields=fields, window=None, page_size=100), out)
    files = sorted(out.glob("*.jsonl"))  # noqa: ASYNC240 - a test's own small files
    return [msgspec.json.decode(line) for path in files for line in path.read_bytes().splitlines()]


def _as_served(row: dict[str, Any]) -> dict[str, Any]:
    """A Parquet row with its timestamps written back the way the fake serves them."""
    return {
        key: value.strftime("%Y-%m-%dT%H:%M:%S+00:00") if isinstance(value, datetime) else value
        for key, value in row.items()
    }


def _parts(directory: Path) -> dict[str, tuple[int, bytes]]:
    """Finished parts: name -> (inode, bytes)."""
    return {
        path.name: (path.stat().st_ino, path.read_bytes()) for path in directory.glob("*.parquet")
    }


def _stop_inside_the_second_window(server: FakeSentry) -> None:
    """A 500 that persists on the second page of the second window's streams: an export
    walking one stream at a time stops there, after the first window's streams are done."""
    second = (START + timedelta(days=3)).strftime("%Y-%m-%dT%H")
    query = f"start={second}.*cursor=|cursor=.*start={second}"
    server.faults.add(Fault("status", status=500, path="/events/", query=query, times=None))


def _checkpoint(directory: Path) -> dict[str, Any]:
    return msgspec.json.decode((directory / CHECKPOINT_NAME).read_bytes())  # type: ignore[no-any-return]


async def test_parquet_parts_resume_exactly_once_and_are_never_rewritten(
    fake_sentry_factory: Factory, tmp_path: Path
) -> None:
    server = await fake_sentry_factory(scale=DATA)
    expected = await _served_rows(server, PLAIN, tmp_path / "jsonl")
    out = tmp_path / "parquet"
    spec = _spec(format="parquet")
    _stop_inside_the_second_window(server)
    with anyio.fail_after(30):
        async with _client(server) as client:
            with pytest.raises(ServerError):
                await export(client, spec, out, concurrency=1)
        server.faults.clear()
        checkpoint = _checkpoint(out)
        finished = {s["file"] for s in checkpoint["streams"].values() if s["done"]}
        unfinished = [s for s in checkpoint["streams"].values() if not s["done"] and s["pages"]]
        assert finished and unfinished, "stopped after a finished window, inside another"
        before = _parts(out)
        assert set(before) == finished, "only complete windows have a part"
        # Its first page is held for a row group of many pages, not in a finished part.
        assert not (out / unfinished[0]["file"]).exists()
        # Then cancellations at random moments and retried hiccups, until it is done. Each
        # page takes the server 20 ms, so that the first moments fall inside the export
        # however fast the machine (without it, a quiet machine finished in the first).
        server.faults.add(Fault("status", status=503, path="/events/", probability=0.1, times=None))
        server.faults.add(Fault("slow", delay=0.02, path="/events/", times=None))
        rng = random.Random(7)
        manifest = None
        async with _client(server) as client:
            for attempt in range(60):
                with anyio.move_on_after(rng.uniform(0.02, 0.08) * (1 + attempt / 4)):
                    try:
                        manifest = await export(
                            client, spec, out, resume=True, commit_interval=0.01
                        )
                    except SentryError:
                        continue
                if manifest is not None:
                    break
    assert manifest is not None and manifest.runs >= 3
    after = _parts(out)
    for name, (inode, data) in before.items():
        assert after[name] == (inode, data), f"{name} was rewritten"
    assert sorted(after) == sorted(f.path for f in manifest.files)
    assert len(after) == 2 * 4, "one part per project and window"
    assert list(out.glob("*.tmp")) == []
    # As the README reads them: the parts of a directory as one table.
    table = pq.ParquetDataset(sorted(str(path) for path in out.glob("*.parquet"))).read()
    assert table.column_names == list(PLAIN)
    assert table.schema.field("timestamp").type == pa.timestamp("us", tz="UTC")
    assert table.schema.field("project.id").type == pa.int64()
    assert table.schema.field("id").type == pa.string()
    rows = [_as_served(row) for row in table.to_pylist()]
    assert len({row["id"] for row in rows}) == len(rows) == manifest.items == len(expected)
    key = lambda row: row["id"]  # noqa: E731
    assert sorted(rows, key=key) == sorted(expected, key=key)
    assert any(row["issue.id"] is None for row in rows) and any(row["issue.id"] for row in rows)


async def test_parquet_aggregates_keep_durations_and_units(
    fake_sentry_factory: Factory, tmp_path: Path
) -> None:
    server = await fake_sentry_factory(scale=DATA)
    expected = await _served_rows(server, AGGREGATES, tmp_path / "jsonl")
    out = tmp_path / "parquet"
    with anyio.fail_after(20):
        async with _client(server) as client:
            manifest = await export(client, _spec(fields=AGGREGATES, format="parquet"), out)
    [part] = manifest.files
    table = pq.read_table(out / part.path)
    duration = table.schema.field("p95(transaction.duration)")
    assert duration.type == pa.float64()
    assert duration.metadata == {b"sentry.type": b"duration", b"sentry.unit": b"millisecond"}
    assert table.schema.field("count()").type == pa.int64()
    assert table.schema.field("last_seen()").type == pa.timestamp("us", tz="UTC")
    rows = [_as_served(row) for row in table.to_pylist()]
    assert len(rows) == len(expected) > 1
    key = lambda row: str(row["transaction"])  # noqa: E731
    assert sorted(rows, key=key) == sorted(expected, key=key)


async def test_csv_header_and_rows_resume_exactly_once(
    fake_sentry_factory: Factory, tmp_path: Path
) -> None:
    server = await fake_sentry_factory(scale=DATA)
    expected = await _served_rows(server, PLAIN, tmp_path / "jsonl")
    out = tmp_path / "csv"
    spec = _spec(format="csv")
    _stop_inside_the_second_window(server)
    with anyio.fail_after(30):
        async with _client(server) as client:
            with pytest.raises(ServerError):
                await export(client, spec, out, concurrency=1)
            server.faults.clear()
            # Bytes a dying run wrote after its last checkpoint are cut off on resume.
            torn = next(out.glob("*.csv"))
            with torn.open("ab") as handle:
                handle.write(b"torn,row,")
            manifest = await export(client, spec, out, resume=True)
    assert manifest.runs == 2
    rows: list[dict[str, Any]] = []
    for file in manifest.files:
        assert file.path.endswith(".csv")
        with (out / file.path).open(newline="") as handle:
            reader = csv.reader(handle)
            assert next(reader) == list(PLAIN), "the header: the fields in the order asked"
            rows += [dict(zip(PLAIN, row, strict=True)) for row in reader]
    served = [{k: "" if v is None else str(v) for k, v in row.items()} for row in expected]
    assert len({row["id"] for row in rows}) == len(rows) == manifest.items
    key = lambda row: row["id"]  # noqa: E731
    assert sorted(rows, key=key) == sorted(served, key=key)


async def test_csv_gzip_reads_back_as_one_file(
    fake_sentry_factory: Factory, tmp_path: Path
) -> None:
    import gzip

    server = await fake_sentry_factory(scale=DATA)
    with anyio.fail_after(20):
        async with _client(server) as client:
            manifest = await export(client, _spec(format="csv", gzip=True), tmp_path)
    total = 0
    for file in manifest.files:
        text = gzip.decompress((tmp_path / file.path).read_bytes()).decode()
        lines = list(csv.reader(io.StringIO(text)))
        assert lines[0] == list(PLAIN) and all(line != list(PLAIN) for line in lines[1:])
        total += len(lines) - 1
    assert total == manifest.items > 0


def test_a_parquet_part_widens_a_column_a_later_page_does_not_fit(tmp_path: Path) -> None:
    """A Parquet file has one schema: the rows written so far are rewritten under the wider
    one, never truncated (an integer column meeting 2.5 becomes float64, then text)."""
    from sentry_async.export._formats import ParquetPart
    from sentry_async.models import DiscoverMeta

    meta = DiscoverMeta(fields={"id": "string", "n": "integer"})
    part = ParquetPart(tmp_path / "part.parquet")
    part.open(0)
    part.write_page([b'{"id":"a","n":1}', b'{"id":"b","n":2}'], ["id", "n"], meta)
    part.write_page([b'{"id":"c","n":2.5}'], ["id", "n"], meta)
    part.write_page([b'{"id":"d","n":"n/a"}'], ["id", "n"], meta)
    part.finish(["id", "n"], meta)
    table = pq.read_table(part.path)
    assert table.column("id").to_pylist() == ["a", "b", "c", "d"]
    assert table.column("n").to_pylist() == ["1", "2", "2.5", "n/a"]
    assert table.schema.field("n").metadata == {b"sentry.type": b"integer"}
    assert part.items == 4
    assert sorted(path.name for path in tmp_path.iterdir()) == ["part.parquet"]


def test_formats_are_for_discover_and_parquet_has_no_gzip() -> None:
    with pytest.raises(ValueError, match="kind='discover'"):
        ExportSpec(kind="events", org=ORG, format="csv")
    with pytest.raises(ValueError, match="Parquet compresses"):
        ExportSpec(kind="discover", org=ORG, format="parquet", gzip=True)
    with pytest.raises(ValueError, match="format must be one of"):
        ExportSpec(kind="discover", org=ORG, format="xlsx")  # type: ignore[arg-type]
    # A JSON Lines spec hashes as before formats existed: its exports still resume.
    assert "format" not in ExportSpec(kind="discover", org=ORG).canonical()


def test_parquet_without_pyarrow_says_how_to_get_it(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setitem(sys.modules, "pyarrow.parquet", None)
    client = SentryClient("t0ken", base_url="http://127.0.0.1:9")
    with pytest.raises(ImportError, match=r"sentry-async\[arrow\]"):
        Exporter(client, _spec(format="parquet"), tmp_path / "out")
    assert not (tmp_path / "out").exists()
    token = tmp_path / "token"
    token.write_text("t0ken\n")
    err = io.StringIO()
    code = main(
        [
            "export",
            "discover",
            "--org",
            ORG,
            "--format",
            "parquet",
            "--output",
            str(tmp_path / "out"),
            "--token-file",
            str(token),
            "--base-url",
            "http://127.0.0.1:9",
        ],
        stdout=io.StringIO(),
        stderr=err,
    )
    assert code == 2
    assert "pip install 'sentry-async[arrow]'" in err.getvalue()
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("format", ["csv", "parquet"])
async def test_a_window_split_after_a_page_keeps_rows_once(
    fake_sentry_factory: Factory, tmp_path: Path, format: str
) -> None:
    server = await fake_sentry_factory(scale=DATA)
    expected = await _served_rows(server, PLAIN, tmp_path / "jsonl")
    org = server.data.org(ORG)
    assert org is not None
    pid = org.projects[0].id
    second = (START + timedelta(days=3)).strftime("%Y-%m-%dT%H")
    # "Pagination offset too large" on the second page of one project's second window
    # (0:2:0, asked one row early).
    server.faults.add(
        Fault(
            "status",
            status=400,
            body={"detail": "Pagination offset too large"},
            path="/events/",
            query=f"(?=.*project={pid}&)(?=.*start={second})(?=.*cursor=0:1:0)",
            times=None,
        )
    )
    out = tmp_path / format
    with anyio.fail_after(30):
        async with _client(server) as client:
            manifest = await export(client, _spec(format=format), out, concurrency=1)
    [parent] = [s for s in manifest.streams if s.split]
    assert parent.pages == 1
    if format == "csv":
        rows = []
        for file in manifest.files:
            with (out / file.path).open(newline="") as handle:
                rows += [dict(zip(PLAIN, row, strict=True)) for row in list(csv.reader(handle))[1:]]
        ids = [row["id"] for row in rows]
        assert manifest.duplicates == 2, "the parent's page, asked again by a half, is skipped"
    else:
        assert parent.file not in {f.path for f in manifest.files}, "an unfinished part is dropped"
        assert not (out / parent.file).exists() and list(out.glob("*.tmp")) == []
        ids = [
            str(i)
            for i in pq.ParquetDataset(sorted(map(str, out.glob("*.parquet"))))
            .read()
            .column("id")
            .to_pylist()
        ]
        assert manifest.duplicates == 0, "the halves start afresh"
    assert len(ids) == len(set(ids)) == manifest.items
    assert sorted(ids) == sorted(row["id"] for row in expected)


NO_ID = ("title", "timestamp", "project.id")
"""Rows without an ``id``: they cannot be told apart, so none can be de-duplicated."""


def _row_lines(directory: Path, format: str) -> Counter[bytes]:
    """Every data row of an export (a CSV file's header left out), as bytes."""
    rows: Counter[bytes] = Counter()
    for path in sorted(directory.glob(f"*.{format}")):
        lines = path.read_bytes().splitlines()
        rows.update(lines[1:] if format == "csv" else lines)
    return rows


@pytest.mark.parametrize("stopped", [False, True])
@pytest.mark.parametrize("concurrency", [1, 4])
@pytest.mark.parametrize("format", ["jsonl", "csv"])
async def test_a_window_split_without_ids_writes_its_rows_once(
    fake_sentry_factory: Factory, tmp_path: Path, format: str, concurrency: int, stopped: bool
) -> None:
    """The halves of a split window cannot skip its rows without ids: the rows the window
    wrote before the split are cut off its file, and the halves write them anew; also
    when the export stops after the split and is resumed."""
    server = await fake_sentry_factory(scale=DATA)
    spec = _spec(format=format, fields=NO_ID)
    clean = tmp_path / "clean"
    async with _client(server) as client:
        await export(client, spec, clean, concurrency=concurrency)
    org = server.data.org(ORG)
    assert org is not None
    pid = org.projects[0].id
    second = (START + timedelta(days=3)).strftime("%Y-%m-%dT%H")
    server.faults.add(
        Fault(
            "status",
            status=400,
            body={"detail": "Query timeout. Please try with a smaller date range."},
            path="/events/",
            query=f"(?=.*project={pid}&)(?=.*start={second})(?=.*cursor=0:4:0)",
            times=None,
        )
    )
    out = tmp_path / "split"
    third = (START + timedelta(days=6)).strftime("%Y-%m-%dT%H")
    if stopped:
        # A 500 that persists, on the same project's next window: after the split.
        failing = f"(?=.*project={pid}&)(?=.*start={third})(?=.*cursor=0:2:0)"
        server.faults.add(
            Fault("status", status=500, path="/events/", query=failing, times=None)
        )
    with anyio.fail_after(30):
        async with _client(server) as client:
            if stopped:
                with pytest.raises(ServerError):
                    await export(client, spec, out, concurrency=concurrency)
                assert any(s["split"] for s in _checkpoint(out)["streams"].values())
                server.faults.clear()
            manifest = await export(client, spec, out, concurrency=concurrency, resume=True)
    rows = _row_lines(out, format)
    assert rows == _row_lines(clean, format), "every row once, as without the split"
    [parent] = [s for s in manifest.streams if s.split]
    assert parent.pages == 2 and parent.items == 0, "its rows are the halves' now"
    assert manifest.items == sum(rows.values()) == sum(f.items for f in manifest.files)
    for file in manifest.files:
        assert (out / file.path).stat().st_size == file.bytes


async def test_csv_export_escapes_formulas_only_when_asked_and_a_resume_checks_it(
    fake_sentry_factory: Factory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Titles come from whoever triggered the error: as data they are written as sent; with
    --csv-escape-formulas a spreadsheet shows them as text instead of running them."""
    server = await fake_sentry_factory(orgs=0)
    project = server.builder.add_organization("acme").add_project("backend")
    titles = ['=HYPERLINK("http://x","y")', "+1", "-cmd", "@SUM(A1)", "\tx", "KeyError: a"]
    for title in titles:
        project.add_issue(title, events=1)
    monkeypatch.setenv("SENTRY_AUTH_TOKEN", server.token)
    argv = ["export", "discover", "--org", "acme", "--field", "title", "--field", "id",
            "--since", (FIXED_NOW - timedelta(days=14)).isoformat(), "--until",
            (FIXED_NOW + timedelta(hours=1)).isoformat(), "--window", "none",
            "--format", "csv", "--base-url", server.url, "--quiet"]  # fmt: skip

    def run(*more: str) -> tuple[int, str]:
        err = io.StringIO()
        code = main([*argv, *more], stdout=io.StringIO(), stderr=err)
        return code, err.getvalue()

    def titles_in(directory: Path) -> list[str]:
        with (directory / "backend.csv").open(newline="") as handle:
            return sorted(row["title"] for row in csv.DictReader(handle))

    with anyio.fail_after(30):
        code, err = await anyio.to_thread.run_sync(run, "-o", str(tmp_path / "plain"))
        assert code == 0, err
        code, err = await anyio.to_thread.run_sync(run, "-o", str(tmp_path / "safe"),
                                                   "--csv-escape-formulas")  # fmt: skip
        assert code == 0, err
        mixed = await anyio.to_thread.run_sync(run, "-o", str(tmp_path / "safe"), "--resume")
        wrong = await anyio.to_thread.run_sync(run, "-o", str(tmp_path / "j"), "--format",
                                               "jsonl", "--csv-escape-formulas")  # fmt: skip
    assert titles_in(tmp_path / "plain") == sorted(titles)
    escaped = ["'" + t if t[0] in "=+-@\t" else t for t in titles]
    assert titles_in(tmp_path / "safe") == sorted(escaped)
    assert mixed[0] != 0 and "csv_escape_formulas" in mixed[1], "a resume without it is refused"
    assert wrong[0] == 2 and "--csv-escape-formulas" in wrong[1]
    assert ExportSpec(kind="discover", org=ORG, format="csv").canonical() == ExportSpec(
        kind="discover", org=ORG, format="csv", csv_escape_formulas=False
    ).canonical(), "exports begun before the option still resume"
    with pytest.raises(ValueError, match="format='csv'"):
        ExportSpec(kind="discover", org=ORG, format="parquet", csv_escape_formulas=True)

