"""The output directory as a place others may write to: a checkpoint, a data file or a lock
planted there, a directory swapped for a link while an export runs, names from a server."""

from __future__ import annotations

import errno
import os
from datetime import timedelta
from pathlib import Path
from typing import Any

import anyio
import msgspec
import pytest
from test_export_hostile import (
    DATA,
    END,
    START,
    Factory,
    _checkpoint,
    _cli,
    _client,
    _edit,
    _interrupted,
    _spec,
)

from sentry_async.export import (
    CHECKPOINT_NAME,
    MANIFEST_NAME,
    CheckpointError,
    ExportSpec,
    OutputUnusableError,
    ProjectRef,
    _manifest,
    _runner,
    export,
)
from sentry_async.export._checkpoint import check_file_name, save_checkpoint
from sentry_async.export._files import file_name, project_stems
from sentry_async.export._formats import part_name
from sentry_async.export._writer import JsonlFile
from sentry_async.testing.pytest_plugin import FIXED_NOW

OTHER_USER = 65534
"""``nobody``: the owner of what "another user" plants."""


def _give_away(path: Path) -> None:
    """Make ``path`` another user's (only root may)."""
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        pytest.skip("giving a file to another user takes root on POSIX")
    os.chown(path, OTHER_USER, OTHER_USER)


def _need_root() -> None:
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        pytest.skip("giving a file to another user takes root on POSIX")


def _listing(directory: Path) -> dict[str, bytes]:
    return {path.name: path.read_bytes() for path in sorted(directory.iterdir())}


def _planted(manifest: dict[str, Any]) -> dict[str, Any]:
    """A checkpoint built from a complete export's (world-readable) manifest alone: every
    stream done, every file at length 0, none of the fields a checkpoint of this version
    records, so it passes for one of an earlier version."""
    return {
        "format": manifest["format"],
        "fingerprint": manifest["fingerprint"],
        "spec": manifest["spec"],
        "start": manifest["start"],
        "end": manifest["end"],
        "projects": manifest["projects"],
        "files": {f["path"]: {"offset": 0, "items": 0} for f in manifest["files"]},
        "streams": {
            s["key"]: {
                "key": s["key"],
                "file": s["file"],
                "target": s["target"],
                "window_start": s["window_start"],
                "window_end": s["window_end"],
                "done": True,
            }
            for s in manifest["streams"]
        },
        "created_at": manifest["created_at"],
        "updated_at": manifest["created_at"],
    }


@pytest.mark.parametrize("beside", ["planted", "planted by another user", "left over"])
async def test_a_checkpoint_beside_a_complete_export_never_cuts_its_files_back(
    fake_sentry_factory: Factory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, beside: str
) -> None:
    """A resume of a complete export returns its manifest without a request when the
    checkpoint beside it is the one its last run left; any other is refused, no file
    changed."""
    if beside == "planted by another user":
        _need_root()
    server = await fake_sentry_factory(scale=DATA)
    out = tmp_path / "out"
    if beside == "left over":
        # Stopped between writing the manifest and removing the checkpoint.
        monkeypatch.setattr(_manifest, "remove_checkpoint", lambda directory: None)
    async with _client(server) as client:
        with anyio.fail_after(30):
            first = await export(client, _spec(), out)
    monkeypatch.undo()
    assert first.items > 0
    if beside != "left over":
        planted = _planted(msgspec.json.decode((out / MANIFEST_NAME).read_bytes()))
        (out / CHECKPOINT_NAME).write_bytes(msgspec.json.encode(planted))
    if beside == "planted by another user":
        _give_away(out / CHECKPOINT_NAME)
    before, asked = _listing(out), len(server.requests)
    async with _client(server) as client:
        with anyio.fail_after(30):
            if beside == "left over":
                again = await export(client, _spec(), out, resume=True)
                assert again == first
            else:
                error = CheckpointError if beside == "planted" else OutputUnusableError
                with pytest.raises(error):
                    await export(client, _spec(), out, resume=True)
    assert _listing(out) == before, "no file changed"
    assert len(server.requests) == asked, "nothing fetched"


async def test_a_checkpoint_of_another_user_is_refused(
    fake_sentry_factory: Factory, tmp_path: Path
) -> None:
    _need_root()
    server = await fake_sentry_factory(scale=DATA)
    out = tmp_path / "out"
    await _interrupted(server, out)
    _give_away(out / CHECKPOINT_NAME)
    before = _listing(out)
    async with _client(server) as client:
        with pytest.raises(OutputUnusableError, match=f"another user \\(uid {OTHER_USER}\\)"):
            await export(client, _spec(), out, resume=True)
    assert _listing(out) == before


async def test_a_checkpoint_of_this_version_without_its_seals_is_refused(
    fake_sentry_factory: Factory, tmp_path: Path
) -> None:
    """Only a checkpoint of an earlier version (no ``records_ends``) resumes unsealed."""
    server = await fake_sentry_factory(scale=DATA)
    out = tmp_path / "out"
    await _interrupted(server, out)

    def unseal(checkpoint: dict[str, Any]) -> None:
        for state in checkpoint["files"].values():
            state.pop("tail_crc", None)

    _edit(out, unseal)
    assert _checkpoint(out)["records_ends"] is True
    before = _listing(out)
    async with _client(server) as client:
        with pytest.raises(CheckpointError, match="without the seal"):
            await export(client, _spec(), out, resume=True)
    assert _listing(out) == before


def _swap_on_first_write(monkeypatch: pytest.MonkeyPatch, victim: Path) -> list[Path]:
    """Once the first page goes to a data file, its directory is renamed and a link to
    ``victim`` put in its place; returns where the directory went."""
    append = JsonlFile.append
    moved: list[Path] = []

    def swapping(self: JsonlFile, data: bytes) -> int:
        if not moved:
            directory = self.path.parent
            moved.append(directory.with_name(directory.name + ".moved"))
            os.rename(directory, moved[0])
            os.symlink(victim, directory)
        return append(self, data)

    monkeypatch.setattr(JsonlFile, "append", swapping)
    return moved


@pytest.mark.parametrize("swapped", ["output directory", "incremental run's directory"])
async def test_a_directory_swapped_for_a_link_mid_run_takes_nothing_outside(
    fake_sentry_factory: Factory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, swapped: str
) -> None:
    server = await fake_sentry_factory(scale=DATA)
    victim = tmp_path / "victim"
    victim.mkdir()
    for name in (MANIFEST_NAME, CHECKPOINT_NAME, "project-0-1.jsonl", "project-0-2.jsonl"):
        (victim / name).write_bytes(f"the victim's own {name}\n".encode())
    kept = _listing(victim)
    moved = _swap_on_first_write(monkeypatch, victim)
    out = tmp_path / "out"
    spec, extra = _spec(), dict[str, Any]()
    if swapped != "output directory":
        spec = ExportSpec(kind="events", org="org-0", period="2d", page_size=2)
        extra = {"incremental": tmp_path / "state.json", "now": FIXED_NOW - timedelta(hours=5)}
    async with _client(server) as client:
        with anyio.fail_after(30), pytest.raises(OutputUnusableError, match="moved or replaced"):
            await export(client, spec, out, concurrency=1, **extra)
    assert _listing(victim) == kept, "nothing outside the directory written, cut or removed"
    assert [path.name for path in moved[0].glob("*.jsonl")], "the data went where it went"


@pytest.mark.parametrize("kind", ["events", "issues"])
async def test_the_demo_refuses_a_link_in_place_of_its_subdirectory(
    tmp_path: Path, kind: str
) -> None:
    out, elsewhere = tmp_path / "out", tmp_path / "elsewhere"
    out.mkdir()
    elsewhere.mkdir()
    (out / kind).symlink_to(elsewhere)
    code, err = await _cli(["demo", "--output", str(out), "--scale", "small", "--quiet"])
    assert code == 5 and f"{out / kind} is a symbolic link" in err, err
    assert list(elsewhere.iterdir()) == []


@pytest.mark.parametrize(
    ("owner", "refusal"),
    [("another user", "belongs to another user"), ("this user", "holds 9 bytes, not the 0")],
)
async def test_a_data_file_made_by_someone_else_after_the_plan_is_refused(
    fake_sentry_factory: Factory,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    owner: str,
    refusal: str,
) -> None:
    """The file a project's first page creates appears before that page: it is neither
    adopted (written to, read by its owner) nor cut back."""
    if owner == "another user":
        _need_root()
    server = await fake_sentry_factory(scale=DATA)
    out = tmp_path / "out"
    planted = out / "project-0-2.jsonl"

    def plant_after_the_plan(directory: Path, data: bytes) -> None:
        save_checkpoint(directory, data)
        planted.write_bytes(b"ATTACKER\n")
        if owner == "another user":
            _give_away(planted)

    monkeypatch.setattr(_runner, "save_checkpoint", plant_after_the_plan)
    async with _client(server) as client:
        with anyio.fail_after(30), pytest.raises(OutputUnusableError, match=refusal):
            await export(client, _spec(), out, concurrency=1)
    assert planted.read_bytes() == b"ATTACKER\n"


def test_an_empty_data_file_of_this_export_opens_again(tmp_path: Path) -> None:
    """What a file closed to open another (or cut back to nothing) looks like."""
    path = tmp_path / "p.jsonl"
    first = JsonlFile(path, compress=False)
    first.open(0)
    first.close()
    again = JsonlFile(path, compress=False)
    again.open(0)
    again.append(b'{"id":"1"}\n')
    again.close()
    assert path.read_bytes() == b'{"id":"1"}\n'


async def test_a_lock_of_another_user_is_refused(
    fake_sentry_factory: Factory, tmp_path: Path
) -> None:
    _need_root()
    server = await fake_sentry_factory(scale=DATA)
    out = tmp_path / "out"
    out.mkdir()
    (out / ".lock").touch()
    _give_away(out / ".lock")
    async with _client(server) as client:
        with pytest.raises(OutputUnusableError, match="belongs to another user"):
            await export(client, _spec(), out)
    assert sorted(os.listdir(out)) == [".lock"]


async def test_a_lock_that_cannot_be_removed_does_not_replace_the_result(
    fake_sentry_factory: Factory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """As in a sticky directory where someone else's ``.lock`` was left."""
    server = await fake_sentry_factory(scale=DATA)
    out = tmp_path / "out"
    unlink = os.unlink

    def refuse_the_lock(path: Any, *args: Any, **kwargs: Any) -> None:
        if os.fspath(path).endswith(".lock"):
            raise PermissionError(errno.EPERM, os.strerror(errno.EPERM), os.fspath(path))
        unlink(path, *args, **kwargs)

    monkeypatch.setattr(os, "unlink", refuse_the_lock)
    async with _client(server) as client:
        with anyio.fail_after(30):
            manifest = await export(client, _spec(), out)
    assert manifest.items > 0 and (out / MANIFEST_NAME).exists() and (out / ".lock").exists()


def test_file_names_stay_bounded_and_apart_whatever_ids_a_server_sends() -> None:
    """Sentry's ids are at most 19 digits; a hostile server's may be anything."""
    long = "7" * 300
    refs = [
        ProjectRef(id="1", slug="dup"),
        ProjectRef(id=long, slug="dup"),
        ProjectRef(id=long[:-1] + "8", slug="dup"),
        ProjectRef(id="é/" * 150, slug="dup"),
        ProjectRef(id="x" * 300, slug="s" * 300),
        ProjectRef(id="y" * 300, slug="S" * 300),
    ]
    stems = project_stems(refs)
    assert len({stem.casefold() for stem in stems.values()}) == len(refs)
    assert stems["1"] == "dup-1", "a short id is kept as it is"
    for stem in stems.values():
        for name in (file_name(stem, True), part_name(stem, START, END) + ".tmp"):
            assert check_file_name(name) is None, name


async def test_an_export_refused_after_its_plan_removes_nothing_outside_a_swapped_directory(
    fake_sentry_factory: Factory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An export refused as asked once planned (a 404) removes the empty files it made; with
    its directory swapped for a link by then, it removes them where they are, not the
    link's target's files of the same names."""
    from sentry_async import NotFound
    from sentry_async.testing import Fault

    server = await fake_sentry_factory(scale=DATA)
    server.faults.add(Fault("status", status=404, path="/events/", times=None))
    out, moved, victim = tmp_path / "out", tmp_path / "moved", tmp_path / "victim"
    victim.mkdir()
    untouched = _runner._untouched
    planted: dict[str, bytes] = {}

    def swapped(checkpoint: Any) -> bool:
        for name in checkpoint.files:
            planted[name], planted[name + ".tmp"] = b"", b"the victim's own\n"
        for name, content in planted.items():
            (victim / name).write_bytes(content)
        out.rename(moved)
        out.symlink_to(victim)
        return bool(untouched(checkpoint))

    monkeypatch.setattr(_runner, "_untouched", swapped)
    async with _client(server) as client:
        with anyio.fail_after(30), pytest.raises(NotFound):
            await export(client, _spec(), out, concurrency=1)
    assert planted and _listing(victim) == planted, "nothing of the victim's removed"
    assert not [path for path in moved.iterdir() if path.name.endswith(".jsonl")]
