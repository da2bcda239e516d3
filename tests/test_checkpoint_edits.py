"""Checkpoints edited (or copied from another run) so that they still look consistent: a
length moved back to an earlier line boundary, a pending stream marked done, a length
moved to a newline inside a quoted CSV cell. Each is refused before anything is cut or
fetched; an unedited checkpoint, and one written before these checks, resume exactly."""

from __future__ import annotations

import csv
import gzip
import shutil
from collections import Counter
from collections.abc import Callable
from datetime import timedelta
from functools import partial
from pathlib import Path
from typing import Any

import anyio
import msgspec
import pytest
from test_export_hostile import (
    DATA,
    END,
    ORG,
    START,
    Factory,
    _checkpoint,
    _cli,
    _cli_args,
    _client,
    _edit,
    _expected,
    _interrupted,
    _spec,
)

from sentry_async import ServerError
from sentry_async.export import CheckpointError, ExportSpec, export
from sentry_async.testing import FakeSentry, Fault
from sentry_async.testing.pytest_plugin import FIXED_NOW

GZIP_MEMBER = b"\x1f\x8b\x08"


def _listing(directory: Path) -> dict[str, bytes]:
    return {path.name: path.read_bytes() for path in sorted(directory.iterdir())}


def _stream_of(checkpoint: dict[str, Any], file: str) -> dict[str, Any]:
    """The first stream (the only one: no windows) writing to ``file``."""
    return next(s for s in checkpoint["streams"].values() if s["file"] == file)


def _exact(server: FakeSentry, out: Path, *, compress: bool = False) -> None:
    """Every project's file holds its events in the range, each once."""
    for slug in server.data.project_slugs(ORG):
        path = out / f"{slug}.jsonl{'.gz' if compress else ''}"
        lines = gzip.decompress(path.read_bytes()) if compress else path.read_bytes()
        ids = [msgspec.json.decode(line)["id"] for line in lines.splitlines()]
        assert len(ids) == len(set(ids)), f"{slug}: duplicates"
        assert sorted(ids) == sorted(_expected(server, slug)), slug


def _earlier_boundary(data: bytes, committed: int, *, compress: bool) -> tuple[int, int]:
    """A page boundary before ``committed`` (not the file's start), and the lines before
    it: after the first line, or, with gzip, where the second member begins."""
    at = data.find(GZIP_MEMBER, 1) if compress else data.index(b"\n") + 1
    assert 0 < at < committed, "the committed pages hold more than one line (member)"
    before = gzip.decompress(data[:at]) if compress else data[:at]
    return at, before.count(b"\n")


def _move(checkpoint: dict[str, Any], name: str, offset: int, items: int | None) -> None:
    """``name``'s length moved to ``offset``, and its count of items to ``items`` if given
    (as one who knows what a checkpoint holds would edit it)."""
    checkpoint["files"][name]["offset"] = offset
    if items is not None:
        checkpoint["files"][name]["items"] = items


async def _refused(server: FakeSentry, out: Path, spec: ExportSpec, match: str) -> None:
    """A resume of ``out`` is refused with :class:`CheckpointError`, having changed no
    file and asked the server for nothing."""
    before = _listing(out)
    server.reset_log()
    async with _client(server) as client:
        with anyio.fail_after(20), pytest.raises(CheckpointError, match=match):
            await export(client, spec, out, resume=True)
    assert _listing(out) == before
    assert server.requests == []


@pytest.mark.parametrize("compress", [False, True])
async def test_a_length_moved_back_to_an_earlier_line_is_refused(
    fake_sentry_factory: Factory, tmp_path: Path, compress: bool
) -> None:
    """Cut back there, then fetched from the checkpoint's cursor, the lines between would
    be lost; the line (gzip member) check alone let it through."""
    server = await fake_sentry_factory(scale=DATA)
    base = tmp_path / "base"
    await _interrupted(server, base, gzip=compress)
    name = "project-0-0.jsonl" + (".gz" if compress else "")
    committed = _checkpoint(base)["files"][name]["offset"]
    earlier, lines = _earlier_boundary((base / name).read_bytes(), committed, compress=compress)
    for items in (None, lines):
        out = tmp_path / f"moved-{items}"
        shutil.copytree(base, out)
        _edit(out, partial(_move, name=name, offset=earlier, items=items))
        await _refused(server, out, _spec(gzip=compress), "not a valid checkpoint")
    # The unedited checkpoint resumes to every event once.
    async with _client(server) as client:
        with anyio.fail_after(30):
            manifest = await export(client, _spec(gzip=compress), base, resume=True)
    assert manifest.runs == 2
    _exact(server, base, compress=compress)


async def test_a_checkpoint_beside_other_files_is_refused(
    fake_sentry_factory: Factory, tmp_path: Path
) -> None:
    """A checkpoint copied next to a file that is not the one it was written for (here its
    own lines in another order): its length ends a line there all the same."""
    server = await fake_sentry_factory(scale=DATA)
    out = tmp_path / "out"
    await _interrupted(server, out)
    name = "project-0-0.jsonl"
    lines = (out / name).read_bytes().splitlines(keepends=True)
    other = b"".join([lines[-1], *lines[:-1]])
    assert other != (out / name).read_bytes()
    (out / name).write_bytes(other)
    await _refused(server, out, _spec(), "not a valid checkpoint")


def _mark_done(checkpoint: dict[str, Any], file: str) -> None:
    _stream_of(checkpoint, file).update(done=True, cursor=None)


async def test_a_pending_stream_marked_done_is_refused(
    fake_sentry_factory: Factory, tmp_path: Path
) -> None:
    """Skipped by a resume, its remaining items would never be fetched, in an export that
    says it is complete."""
    server = await fake_sentry_factory(scale=DATA)
    base = tmp_path / "base"
    await _interrupted(server, base)
    begun = _stream_of(_checkpoint(base), "project-0-0.jsonl")
    assert begun["pages"] and not begun["done"]
    for file in ("project-0-0.jsonl", "project-0-1.jsonl"):  # begun, and not begun
        out = tmp_path / file
        shutil.copytree(base, out)
        _edit(out, partial(_mark_done, file=file))
        await _refused(server, out, _spec(), "did not reach its end")
    async with _client(server) as client:
        with anyio.fail_after(30):
            await export(client, _spec(), base, resume=True)
    _exact(server, base)


async def test_edited_checkpoints_exit_5_with_one_line(
    fake_sentry_factory: Factory, tmp_path: Path
) -> None:
    server = await fake_sentry_factory(scale=DATA)
    base = tmp_path / "base"
    await _interrupted(server, base, page_size=100)
    name = "project-0-0.jsonl"
    committed = _checkpoint(base)["files"][name]["offset"]
    earlier, _ = _earlier_boundary((base / name).read_bytes(), committed, compress=False)
    edits: dict[str, Callable[[dict[str, Any]], None]] = {
        "moved": partial(_move, name=name, offset=earlier, items=None),
        "marked-done": partial(_mark_done, file="project-0-1.jsonl"),
    }
    for edit, change in edits.items():
        out = tmp_path / edit
        shutil.copytree(base, out)
        _edit(out, change)
        before = _listing(out)
        code, err = await _cli(_cli_args(server, out, tmp_path / "token", "--resume"))
        assert code == 5, (edit, err)
        assert err.count("\n") == 1 and "not a valid checkpoint" in err, err
        assert "Traceback" not in err and _listing(out) == before


async def test_a_done_stream_marked_pending_or_ending_past_its_file_is_refused(
    fake_sentry_factory: Factory, tmp_path: Path
) -> None:
    server = await fake_sentry_factory(scale=DATA)
    base = tmp_path / "base"
    # project-0-0 is exported whole, then project-0-1 fails.
    fault = server.faults.add(Fault("status", status=500, path="/project-0-1/events/", times=None))
    async with _client(server) as client:
        with anyio.fail_after(20), pytest.raises(ServerError):
            await export(client, _spec(), base, concurrency=1)
    fault.times = fault.fired
    checkpoint = _checkpoint(base)
    done = _stream_of(checkpoint, "project-0-0.jsonl")
    assert done["done"] and done["ended"] == checkpoint["files"]["project-0-0.jsonl"]["offset"]
    edits: dict[str, Callable[[dict[str, Any]], None]] = {
        "pending": lambda c: _stream_of(c, "project-0-0.jsonl").update(done=False),
        "past": lambda c: _stream_of(c, "project-0-0.jsonl").update(ended=done["ended"] + 1),
    }
    for name, change in edits.items():
        out = tmp_path / name
        shutil.copytree(base, out)
        _edit(out, change)
        await _refused(server, out, _spec(), "not a valid checkpoint")
    async with _client(server) as client:
        with anyio.fail_after(30):
            await export(client, _spec(), base, resume=True)
    _exact(server, base)


def _strip_new_fields(checkpoint: dict[str, Any]) -> None:
    """The checkpoint as a version without these checks wrote it."""
    checkpoint.pop("records_ends", None)
    for state in checkpoint["files"].values():
        state.pop("tail_crc", None)
    for stream in checkpoint["streams"].values():
        stream.pop("ended", None)


@pytest.mark.parametrize("page_size", [2, 100])
async def test_a_checkpoint_of_an_earlier_version_resumes_as_before(
    fake_sentry_factory: Factory, tmp_path: Path, page_size: int
) -> None:
    server = await fake_sentry_factory(scale=DATA)
    out = tmp_path / "out"
    await _interrupted(server, out, page_size=page_size)
    _edit(out, _strip_new_fields)
    async with _client(server) as client:
        with anyio.fail_after(30):
            manifest = await export(client, _spec(page_size=page_size), out, resume=True)
    assert manifest.runs == 2
    _exact(server, out)


NEWLINE_TITLES = [f"first line {n}\nsecond line {n}" for n in range(8)]


def _csv_spec(**kwargs: Any) -> ExportSpec:
    return ExportSpec(
        kind="discover",
        org=ORG,
        fields=("title", "id"),
        format="csv",
        start=FIXED_NOW - timedelta(days=14),
        end=FIXED_NOW + timedelta(hours=1),
        window=None,
        page_size=2,
        **kwargs,
    )


def _csv_rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


async def test_a_csv_length_moved_to_a_newline_inside_a_quoted_cell_is_refused(
    fake_sentry_factory: Factory, tmp_path: Path
) -> None:
    """The byte before it is a newline, as at a row's end: cut back there, the file would
    end inside a quoted cell, and the rows appended after it would be read as part of it."""
    server = await fake_sentry_factory(orgs=0)
    project = server.builder.add_organization(ORG).add_project("backend")
    for title in NEWLINE_TITLES:
        project.add_issue(title, events=1)
    base = tmp_path / "base"
    fault = server.faults.add(Fault("status", status=500, path="/events/", after=3, times=None))
    async with _client(server) as client:
        with anyio.fail_after(20), pytest.raises(ServerError):
            await export(client, _csv_spec(), base)
    fault.times = fault.fired
    name = "backend.csv"
    committed = _checkpoint(base)["files"][name]["offset"]
    data = (base / name).read_bytes()
    inside = data.rindex(b"first line", 0, committed)
    inside = data.index(b"\n", inside) + 1
    assert inside < committed and data[inside - 1 : inside] == b"\n"
    # Also with the row cut in two taken off the count, as if it were never written.
    for items in (None, _checkpoint(base)["files"][name]["items"] - 1):
        out = tmp_path / f"moved-{items}"
        shutil.copytree(base, out)
        _edit(out, partial(_move, name=name, offset=inside, items=items))
        await _refused(server, out, _csv_spec(), "not a valid checkpoint")
    async with _client(server) as client:
        with anyio.fail_after(30):
            manifest = await export(client, _csv_spec(), base, resume=True)
    written = _csv_rows(base / name)
    assert sorted(row["title"] for row in written) == sorted(NEWLINE_TITLES)
    assert len({row["id"] for row in written}) == len(written) == manifest.items


NO_ID = ("title", "timestamp", "project.id")


async def test_a_stop_right_after_rows_without_ids_were_cut_off_resumes(
    fake_sentry_factory: Factory, tmp_path: Path
) -> None:
    """A window split after it wrote rows without ids has them cut off its file, and the
    checkpoint then records the shorter file: a stop before its halves write anything
    resumes from there, every row once."""
    server = await fake_sentry_factory(scale=DATA)
    window = timedelta(days=3)
    spec = ExportSpec(
        kind="discover",
        org=ORG,
        fields=NO_ID,
        format="csv",
        start=START,
        end=END,
        window=window,
        page_size=2,
    )
    clean = tmp_path / "clean"
    async with _client(server) as client:
        with anyio.fail_after(30):
            await export(client, spec, clean, concurrency=1)
    org = server.data.org(ORG)
    assert org is not None
    pid = org.projects[0].id
    third = START + 2 * window  # project 101 has four pages there
    middle = third + window / 2
    timeout = {"detail": "Query timeout. Please try with a smaller date range."}
    split = f"(?=.*project={pid}&)(?=.*start={third:%Y-%m-%dT%H})(?=.*cursor=0:4:0)"
    server.faults.add(
        Fault("status", status=400, body=timeout, path="/events/", query=split, times=None)
    )
    # The first half's first page fails for good: the run stops right after the cut.
    first_half = f"(?=.*project={pid}&)(?=.*end={middle:%Y-%m-%dT%H})"
    halted = server.faults.add(
        Fault("status", status=500, path="/events/", query=first_half, times=None)
    )
    out = tmp_path / "out"
    async with _client(server) as client:
        with anyio.fail_after(30), pytest.raises(ServerError):
            await export(client, spec, out, concurrency=1)
        streams = _checkpoint(out)["streams"].values()
        [parent] = [s for s in streams if s["split"]]
        assert parent["items"] == 0 and halted.fired
        file = _checkpoint(out)["files"][parent["file"]]
        assert file["offset"] == parent["first_offset"] == (out / parent["file"]).stat().st_size
        server.faults.clear()
        with anyio.fail_after(30):
            manifest = await export(client, spec, out, concurrency=1, resume=True)
    assert manifest.runs == 2

    def rows(directory: Path) -> Counter[bytes]:
        found: Counter[bytes] = Counter()
        for path in sorted(directory.glob("*.csv")):
            found.update(path.read_bytes().splitlines()[1:])
        return found

    assert rows(out) == rows(clean)
