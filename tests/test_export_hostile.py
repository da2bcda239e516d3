"""The exporter against hostile disks, hand-edited checkpoints, odd servers and signals."""

from __future__ import annotations

import io
import os
import shutil
import signal
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from datetime import timedelta
from functools import partial
from pathlib import Path
from typing import Any

import anyio
import msgspec
import pytest
from aiohttp import web

from sentry_async import RetryPolicy, SentryClient, ServerError
from sentry_async._text import printable
from sentry_async.cli import main
from sentry_async.export import (
    CHECKPOINT_NAME,
    MANIFEST_NAME,
    CheckpointError,
    ExportSpec,
    OutputUnusableError,
    ProjectRef,
    SpecMismatchError,
    export,
)
from sentry_async.export._files import project_stems as _project_stems
from sentry_async.testing import FakeSentry, Fault, SeedConfig
from sentry_async.testing.pytest_plugin import FIXED_NOW

ORG = "org-0"
DATA = SeedConfig(
    orgs=1, projects_per_org=3, issues_per_project=12, events_per_issue=(1, 4), days=20
)
END = FIXED_NOW - timedelta(hours=5)
START = END - timedelta(days=14)
FAST_RETRY = RetryPolicy(backoff_base=0.01, backoff_max=0.05)

Factory = Callable[..., Awaitable[FakeSentry]]


def _client(server: FakeSentry, **kwargs: Any) -> SentryClient:
    kwargs.setdefault("retry", FAST_RETRY)
    return SentryClient(server.token, base_url=server.url, **kwargs)


def _spec(**kwargs: Any) -> ExportSpec:
    kwargs.setdefault("start", START)
    kwargs.setdefault("end", END)
    kwargs.setdefault("window", None)
    kwargs.setdefault("page_size", 2)
    return ExportSpec(kind="events", org=ORG, **kwargs)


def _checkpoint(directory: Path) -> dict[str, Any]:
    return msgspec.json.decode((directory / CHECKPOINT_NAME).read_bytes())  # type: ignore[no-any-return]


def _ids(path: Path) -> list[str]:
    return [msgspec.json.decode(line)["id"] for line in path.read_bytes().splitlines()]


def _expected(server: FakeSentry, slug: str) -> list[str]:
    return server.data.event_ids(
        ORG, slug, start=START.timestamp(), end=END.timestamp(), include_transactions=False
    )


async def _interrupted(
    server: FakeSentry, out: Path, page_size: int = 2, *, gzip: bool = False
) -> None:
    """An unfinished export in ``out``: project-0-0 has some pages, the others nothing.

    ``page_size=100`` is what the command line asks for: one page per project.
    """
    after = 3 if page_size == 2 else 1
    suffix = ".jsonl.gz" if gzip else ".jsonl"
    # A 500 that persists: a single one is retried (Sentry's transient "Internal Error").
    fault = server.faults.add(Fault("status", status=500, path="/events/", after=after, times=None))
    async with _client(server) as client:
        with pytest.raises(ServerError):
            await export(client, _spec(page_size=page_size, gzip=gzip), out, concurrency=1)
    fault.times = fault.fired
    checkpoint = _checkpoint(out)
    assert checkpoint["files"]["project-0-0" + suffix]["offset"] > 0
    assert not (out / ("project-0-1" + suffix)).exists()


async def _cli(argv: Sequence[str]) -> tuple[int, str]:
    """``main(argv)`` in a worker thread; the exit code and stderr."""
    out, err = io.StringIO(), io.StringIO()
    with anyio.fail_after(30):
        code = await anyio.to_thread.run_sync(partial(main, list(argv), stdout=out, stderr=err))
    return code, err.getvalue()


def _cli_args(server: FakeSentry, out: Path, token_file: Path, *extra: str) -> list[str]:
    token_file.write_text(server.token)
    return ["export", "events", "--org", ORG, "--output", str(out), "--base-url", server.url,
            "--since", START.isoformat(), "--until", END.isoformat(), "--window", "none",
            "--token-file", str(token_file), "--quiet", *extra]  # fmt: skip


async def test_planted_links_are_refused_and_never_written_through(
    fake_sentry_factory: Factory, tmp_path: Path
) -> None:
    server = await fake_sentry_factory(scale=DATA)
    base = tmp_path / "base"
    await _interrupted(server, base)
    written = base / "project-0-0.jsonl"
    outside = tmp_path / "outside"
    outside.mkdir()

    def case(name: str) -> tuple[Path, Path]:
        out = tmp_path / name
        shutil.copytree(base, out)
        victim = outside / name
        # Longer than the committed length: a truncation through a link would show.
        victim.write_bytes(written.read_bytes() + b"precious\n")
        return out, victim

    async with _client(server) as client:
        cases: list[tuple[str, Path, Path]] = []
        out, victim = case("data-symlink")
        (out / written.name).unlink()
        (out / written.name).symlink_to(victim)
        cases.append(("symbolic link", out, victim))
        out, victim = case("new-file-symlink")
        (out / "project-0-1.jsonl").symlink_to(victim)
        cases.append(("symbolic link", out, victim))
        out, victim = case("hard-link")
        (out / written.name).unlink()
        os.link(victim, out / written.name)
        cases.append(("hard links", out, victim))
        out, victim = case("lock-symlink")
        (out / ".lock").unlink(missing_ok=True)
        (out / ".lock").symlink_to(victim)
        cases.append(("symbolic link", out, victim))
        out, victim = case("checkpoint-symlink")
        (out / CHECKPOINT_NAME).unlink()
        (out / CHECKPOINT_NAME).symlink_to(victim)
        cases.append(("symbolic link", out, victim))
        for what, out, victim in cases:
            before = victim.read_bytes()
            with anyio.fail_after(20), pytest.raises(OutputUnusableError, match=what):
                await export(client, _spec(), out, resume=True)
            assert victim.read_bytes() == before, out.name
            assert victim.stat().st_size == len(before)

        # A stale temporary checkpoint is removed, never written through.
        out, victim = case("tmp-symlink")
        before = victim.read_bytes()
        (out / (CHECKPOINT_NAME + ".tmp")).symlink_to(victim)
        with anyio.fail_after(20):
            manifest = await export(client, _spec(), out, resume=True)
        assert victim.read_bytes() == before
        assert not (out / (CHECKPOINT_NAME + ".tmp")).exists()
    assert manifest.items == sum(len(_expected(server, s)) for s in server.data.project_slugs(ORG))
    for slug in server.data.project_slugs(ORG):
        assert sorted(_ids(out / f"{slug}.jsonl")) == sorted(_expected(server, slug))


async def test_a_planted_link_exits_5_through_the_cli(
    fake_sentry_factory: Factory, tmp_path: Path
) -> None:
    server = await fake_sentry_factory(scale=DATA)
    out = tmp_path / "out"
    await _interrupted(server, out, page_size=100)
    victim = tmp_path / "victim"
    victim.write_bytes(b"precious\n")
    (out / "project-0-2.jsonl").symlink_to(victim)
    code, err = await _cli(_cli_args(server, out, tmp_path / "token", "--resume"))
    assert code == 5, err
    assert err.count("\n") == 1 and "symbolic link" in err and "Traceback" not in err
    assert victim.read_bytes() == b"precious\n"


def _edit(directory: Path, change: Callable[[dict[str, Any]], None]) -> None:
    checkpoint = _checkpoint(directory)
    change(checkpoint)
    (directory / CHECKPOINT_NAME).write_bytes(msgspec.json.encode(checkpoint))


def _rename_file(checkpoint: dict[str, Any], new: str) -> None:
    old = "project-0-1.jsonl"
    checkpoint["files"][new] = checkpoint["files"].pop(old)
    for stream in checkpoint["streams"].values():
        if stream["file"] == old:
            stream["file"] = new


def _first_stream(checkpoint: dict[str, Any]) -> dict[str, Any]:
    return next(iter(checkpoint["streams"].values()))  # type: ignore[no-any-return]


def _move_offset(checkpoint: dict[str, Any], by: int, name: str = "project-0-0.jsonl") -> None:
    checkpoint["files"][name]["offset"] += by


def _drop_stream(checkpoint: dict[str, Any], file: str) -> None:
    """The stream of ``file`` left out, as if deleted by hand."""
    key = next(k for k, s in checkpoint["streams"].items() if s["file"] == file)
    del checkpoint["streams"][key]


def _halve_first_stream(checkpoint: dict[str, Any], *, gap: bool) -> None:
    """The first stream's window cut short: a gap before the range's end, or, with a
    second stream over the whole range, an overlap."""
    stream = _first_stream(checkpoint)
    if gap:
        stream["window_end"] = "2026-05-25T00:00:00Z"
        return
    twin = dict(stream, key=stream["key"] + "-twin", window_start="2026-05-25T00:00:00Z")
    checkpoint["streams"][twin["key"]] = twin


EDITS: dict[str, Callable[[dict[str, Any]], None]] = {
    "parent": lambda c: _rename_file(c, "../escaped.jsonl"),
    "absolute": lambda c: _rename_file(c, "/tmp/sentry-async-escaped.jsonl"),
    "separator": lambda c: _rename_file(c, "sub/escaped.jsonl"),
    "reserved": lambda c: _rename_file(c, MANIFEST_NAME),
    "window": lambda c: _first_stream(c).update(window_start="not-a-date"),
    "offset": lambda c: c["files"]["project-0-0.jsonl"].update(offset=-1),
    "items": lambda c: _first_stream(c).update(items=-3),
    "stream-file": lambda c: _first_stream(c).update(file="elsewhere.jsonl"),
    "target": lambda c: _first_stream(c).update(target="../../999"),
    "project-file": lambda c: c["projects"][0].update(file="../escaped.jsonl"),
    "mid-line": lambda c: _move_offset(c, -10),
    "no-streams": lambda c: c.update(streams={}),
    "written-stream-dropped": lambda c: _drop_stream(c, "project-0-0.jsonl"),
    "unwritten-stream-dropped": lambda c: _drop_stream(c, "project-0-1.jsonl"),
    "window-gap": lambda c: _halve_first_stream(c, gap=True),
    "window-overlap": lambda c: _halve_first_stream(c, gap=False),
    "file-of-no-stream": lambda c: c["files"].update({"stray.jsonl": {"offset": 5, "items": 1}}),
}


async def test_checkpoint_values_are_checked(fake_sentry_factory: Factory, tmp_path: Path) -> None:
    server = await fake_sentry_factory(scale=DATA)
    base = tmp_path / "base"
    await _interrupted(server, base)
    server.reset_log()
    async with _client(server) as client:
        for name, change in EDITS.items():
            out = tmp_path / name
            shutil.copytree(base, out)
            _edit(out, change)
            listing = sorted(p.name for p in out.iterdir())
            with anyio.fail_after(20), pytest.raises(CheckpointError, match="not a valid"):
                await export(client, _spec(), out, resume=True)
            assert sorted(p.name for p in out.iterdir()) == listing, name
    assert not (tmp_path / "escaped.jsonl").exists()
    assert server.requests == []


async def test_bad_checkpoint_values_and_a_file_as_output_exit_5_with_one_line(
    fake_sentry_factory: Factory, tmp_path: Path
) -> None:
    server = await fake_sentry_factory(scale=DATA)
    base = tmp_path / "base"
    await _interrupted(server, base, page_size=100)
    for name in ("window", "offset", "parent", "mid-line", "no-streams"):
        out = tmp_path / name
        shutil.copytree(base, out)
        _edit(out, EDITS[name])
        code, err = await _cli(_cli_args(server, out, tmp_path / "token", "--resume"))
        assert code == 5, (name, err)
        assert err.count("\n") == 1 and "Traceback" not in err, err
        assert "not a valid checkpoint" in err
    a_file = tmp_path / "a-file"
    a_file.write_text("mine")
    code, err = await _cli(_cli_args(server, a_file, tmp_path / "token"))
    assert code == 5 and err.count("\n") == 1 and "not a directory" in err, err
    assert a_file.read_text() == "mine"


async def test_an_offset_inside_a_line_or_a_gzip_member_is_refused_before_any_cut(
    fake_sentry_factory: Factory, tmp_path: Path
) -> None:
    server = await fake_sentry_factory(scale=DATA)
    cases: list[tuple[str, bool, bool]] = [
        # (name, gzip, the file cut to the edited offset too)
        ("plain", False, False),
        ("plain-cut", False, True),
        ("gzip", True, False),
    ]
    async with _client(server) as client:
        for name, gzip, cut in cases:
            out = tmp_path / name
            await _interrupted(server, out, gzip=gzip)
            data = out / ("project-0-0.jsonl" + (".gz" if gzip else ""))
            committed = _checkpoint(out)["files"][data.name]["offset"]
            assert data.stat().st_size == committed
            # As a run killed before its next checkpoint leaves it: a page more on disk.
            with data.open("ab") as more:
                more.write(data.read_bytes()[: committed // 2])
            _edit(out, partial(_move_offset, by=-10, name=data.name))
            if cut:
                os.truncate(data, committed - 10)
            # A file checked before it, with bytes past its (empty) committed length.
            other = out / ("project-0-1.jsonl" + (".gz" if gzip else ""))
            other.write_bytes(data.read_bytes()[:committed])
            _edit(out, lambda c: c.update(files=dict(reversed(c["files"].items()))))
            before = {path: path.read_bytes() for path in (data, other)}
            with anyio.fail_after(20), pytest.raises(CheckpointError, match="inside a"):
                await export(client, _spec(gzip=gzip), out, resume=True)
            assert {path: path.read_bytes() for path in before} == before, name
            assert _checkpoint(out)["files"][data.name]["offset"] == committed - 10


async def test_resume_against_another_server_is_refused(
    fake_sentry_factory: Factory, tmp_path: Path
) -> None:
    first = await fake_sentry_factory(scale=DATA)
    other = await fake_sentry_factory(scale=DATA)
    assert first.url != other.url
    await _interrupted(first, tmp_path)
    before = (tmp_path / "project-0-0.jsonl").read_bytes()
    async with _client(other) as client:
        with pytest.raises(SpecMismatchError) as caught:
            await export(client, _spec(), tmp_path, resume=True)
    assert set(caught.value.differences) == {"server"}
    assert caught.value.differences["server"] == (first.url.rstrip("/"), other.url.rstrip("/"))
    assert (tmp_path / "project-0-0.jsonl").read_bytes() == before
    assert not any("/events/" in r.path for r in other.requests)
    async with _client(first) as client:
        manifest = await export(client, _spec(), tmp_path, resume=True)
    assert manifest.spec["server"] == first.url.rstrip("/")
    assert manifest.items == sum(len(_expected(first, s)) for s in first.data.project_slugs(ORG))


NAMES_DATA = SeedConfig(
    orgs=1, projects_per_org=6, issues_per_project=6, events_per_issue=(1, 3), days=20
)


async def test_every_project_gets_its_own_file_and_an_odd_slug_skips_only_itself(
    fake_sentry_factory: Factory, tmp_path: Path
) -> None:
    server = await fake_sentry_factory(scale=NAMES_DATA)
    projects = server.data.orgs[0].projects
    # Case only, the same slug twice, the same once sanitised, and a slug no path can hold.
    slugs = ["Web", "web", "a+b", "a_b", "web", "bad/slug"]
    for project, slug in zip(projects, slugs, strict=True):
        project.slug = slug
    odd = projects[5]
    out = tmp_path / "out"
    fault = server.faults.add(Fault("status", status=500, path="/events/", after=4, times=None))
    async with _client(server) as client:
        with pytest.raises(ServerError):
            await export(client, _spec(), out, concurrency=1)
        fault.times = fault.fired
        # A checkpoint of an earlier version has no file per project: its streams name them.
        _edit(out, lambda c: [p.pop("file") for p in c["projects"]])
        with anyio.fail_after(20):
            manifest = await export(client, _spec(), out, resume=True)
        fresh = await export(client, _spec(), tmp_path / "fresh")
    assert {p.file for p in fresh.projects} == {s.file for s in manifest.streams}
    assert manifest.runs == 2
    files = {s.target: s.file for s in manifest.streams}
    assert set(files) == {p.id for p in projects[:5]}, "every usable project is exported"
    assert len({name.casefold() for name in files.values()}) == 5, files
    for project in projects[:5]:
        name = files[project.id]
        assert "/" not in name
        expected = server.data.event_ids(
            ORG,
            project.id,
            start=START.timestamp(),
            end=END.timestamp(),
            include_transactions=False,
        )
        assert expected and sorted(_ids(out / name)) == sorted(expected), project.slug
    assert [(s.id, s.slug) for s in manifest.skipped] == [(odd.id, "bad/slug")]
    error = manifest.skipped[0].error
    assert "project" in error and "org" not in error, error
    on_disk = msgspec.json.decode((out / MANIFEST_NAME).read_bytes())
    assert on_disk["skipped"][0]["slug"] == "bad/slug"
    assert not any("bad" in r.path for r in server.requests)


@asynccontextmanager
async def _hostile_server(routes: dict[str, web.Response]) -> AsyncIterator[str]:
    """A small server on 127.0.0.1 answering each path (suffix match) with its response."""

    async def handle(request: web.Request) -> web.StreamResponse:
        for suffix, response in routes.items():
            if request.path.endswith(suffix):
                return web.Response(
                    status=response.status, body=response.body, content_type="application/json"
                )
        return web.json_response({"detail": "not here"}, status=404)

    app = web.Application()
    app.router.add_route("GET", "/{tail:.*}", handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


TERMINAL_TRICKS = "\x1b]0;owned\x07\x1b[2J\x1b[31mred\u202eesrever\x9b1m"


async def test_server_text_reaches_the_terminal_escaped(tmp_path: Path) -> None:
    token_file = tmp_path / "token"
    token_file.write_text("sntrys_terminal-test-token")
    argv = ["export", "events", "--org", ORG, "--period", "1d", "--token-file", str(token_file)]
    refused = {"/projects/": web.json_response({"detail": f"no {TERMINAL_TRICKS}"}, status=403)}
    async with _hostile_server(refused) as url:
        code, refusal = await _cli([*argv, "--base-url", url, "-o", str(tmp_path / "a")])
    assert code == 3, refusal
    assert "\\x1b]0;owned\\x07" in refusal and "\\u202e" in refusal and "\\x9b" in refusal
    projects = [{"id": "1", "slug": f"x{TERMINAL_TRICKS}"}, {"id": "2", "slug": "fine"}]
    odd = {
        "/organizations/org-0/projects/": web.json_response(projects),
        "/projects/org-0/fine/events/": web.json_response([]),
    }
    async with _hostile_server(odd) as url:
        code, err = await _cli([*argv, "--base-url", url, "-o", str(tmp_path / "b")])
    assert code == 0, err
    assert "skipping project" in err and "Traceback" not in err, err
    for output in (refusal, err):
        assert not any(ch in output for ch in "\x1b\x07\x9b\u202e"), output


async def test_sigterm_saves_the_checkpoint_and_a_resume_finishes(
    fake_sentry_factory: Factory, tmp_path: Path
) -> None:
    server = await fake_sentry_factory(scale=DATA)
    server.faults.add(Fault("slow", path="/events/", delay=0.1, times=None))
    out = tmp_path / "out"
    command = [sys.executable, "-m", "sentry_async",
               *_cli_args(server, out, tmp_path / "token", "--concurrency", "1", "--resume")]  # fmt: skip
    command[command.index("--window") + 1] = "7d"
    with anyio.fail_after(40):
        process = await anyio.open_process(command)
        try:
            # Two pages asked for: the first is written, well before the first periodic commit.
            for _ in range(1000):
                events = sum("/events/" in r.path for r in server.requests)
                if process.returncode is not None or events >= 2:
                    break
                await anyio.sleep(0.01)
            assert process.returncode is None, "the export ended before it was stopped"
            process.send_signal(signal.SIGTERM)
            code = await process.wait()
        finally:
            if process.returncode is None:
                process.kill()
                await process.wait()
        assert process.stderr is not None
        err = b"".join([chunk async for chunk in process.stderr]).decode()
        assert code == 143, err
        assert "terminated" in err and "--resume" in err and "Traceback" not in err
        checkpoint = _checkpoint(out)
        assert not checkpoint["complete"] and _committed_pages(out) > 0
        # Saved on the way out: the checkpoint covers every byte on disk.
        for name, state in checkpoint["files"].items():
            path = out / name
            assert (path.stat().st_size if path.exists() else 0) == state["offset"], name
        final = await anyio.run_process(command, check=False)
    assert final.returncode == 0, final.stderr.decode()
    manifest = msgspec.json.decode((out / MANIFEST_NAME).read_bytes())
    assert manifest["runs"] == 2
    for slug in server.data.project_slugs(ORG):
        ids = _ids(out / f"{slug}.jsonl")
        assert len(ids) == len(set(ids)) and sorted(ids) == sorted(_expected(server, slug))


def _committed_pages(directory: Path) -> int:
    try:
        checkpoint = _checkpoint(directory)
    except (FileNotFoundError, msgspec.DecodeError):
        return 0
    return sum(stream["pages"] for stream in checkpoint["streams"].values())


def test_file_stems_are_unique_ignoring_case_and_printable_escapes_controls() -> None:
    refs = [
        ProjectRef(id="1", slug="Web"),
        ProjectRef(id="2", slug="web"),
        ProjectRef(id="3", slug="web-2"),
        ProjectRef(id="4", slug="a+b"),
        ProjectRef(id="5", slug="a_b"),
        ProjectRef(id="6", slug="solo"),
        ProjectRef(id="7", slug="x" * 300),
    ]
    stems = _project_stems(refs)
    assert len({stem.casefold() for stem in stems.values()}) == len(refs)
    assert stems["6"] == "solo" and stems["3"] == "web-2"
    assert (stems["1"], stems["2"]) == ("Web-1", "web-2-2"), "web-2 is another's slug"
    assert (stems["4"], stems["5"]) == ("a_b-4", "a_b-5")
    assert len(stems["7"]) <= 120
    assert printable("plain text") == "plain text"
    assert printable("a\x1b[2Jb\u202ec\x9bd\te\u2028") == "a\\x1b[2Jb\\u202ec\\x9bd\\x09e\\u2028"
