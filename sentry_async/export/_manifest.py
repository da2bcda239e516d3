"""``manifest.json``: what a finished export holds, written once its last stream is done."""

from __future__ import annotations

import base64
from pathlib import Path

import msgspec

from ._checkpoint import Checkpoint, ProjectRef, SkippedProject
from ._errors import CheckpointError
from ._files import now_iso, parse_stamp, remove_checkpoint
from ._formats import dataset_schema
from ._writer import atomic_write, check_pinned, read_no_follow

__all__ = [
    "MANIFEST_NAME",
    "Manifest",
    "ManifestFile",
    "ManifestStream",
    "build_manifest",
    "load_manifest",
    "save_manifest",
]

MANIFEST_NAME = "manifest.json"


class ManifestFile(msgspec.Struct, kw_only=True):
    path: str
    items: int
    bytes: int


class ManifestStream(msgspec.Struct, kw_only=True):
    key: str
    file: str
    target: str
    window_start: str
    window_end: str
    items: int
    pages: int
    duplicates: int
    hits: int | None
    unidentified: int = 0
    """Items written without a usable ``id``, hence not de-duplicated."""
    split: bool = False
    """The server could not serve this window; its two halves are streams of their own."""
    outside_retention: bool = False
    """The window lay wholly before the organization's retention: nothing of it exported."""


class Manifest(msgspec.Struct, kw_only=True):
    """``manifest.json``: written once the last stream is complete."""

    format: str
    kind: str
    org: str
    fingerprint: str
    spec: dict[str, object]
    start: str
    end: str
    projects: list[ProjectRef]
    created_at: str
    finished_at: str
    runs: int
    items: int
    bytes: int
    pages: int
    duplicates: int
    files: list[ManifestFile]
    streams: list[ManifestStream]
    unidentified: int = 0
    """Items written without a usable ``id``, hence not de-duplicated (all streams)."""
    renamed: dict[str, str] = {}
    """Projects renamed on the server while exported: old slug -> new slug."""
    skipped: list[SkippedProject] = []
    """Projects left out, each with the reason (an unusable slug, no access; or deleted, or
    no longer accessible, while exported: what their streams wrote until then stays, but
    totals are counted again without them); the others are exported. In an export of
    issues, the issues deleted, or merged into another (``merged_into``), while exported
    (by id, without a slug)."""
    outside_retention: str | None = None
    """The end of the windows that lay wholly before the organization's retention when
    asked for (nothing of them exported), or ``None``. Sentry serves a window reaching into
    the retention from the retention's start on, so events before that are not there either."""
    arrow_schema: str | None = None
    """Parquet: the Arrow schema every part reads under (base64 of its IPC serialization);
    a part written before a later window widened a column holds it narrower."""


_manifest_decoder = msgspec.json.Decoder(Manifest)


def build_manifest(
    kind: str, org: str, checkpoint: Checkpoint, renamed: dict[str, str] | None = None
) -> Manifest:
    streams = list(checkpoint.streams.values())
    # A Parquet window split in two left no part of its own: its halves wrote theirs.
    used = {s.file for s in streams if not s.split}
    return Manifest(
        format=checkpoint.format,
        kind=kind,
        org=org,
        fingerprint=checkpoint.fingerprint,
        spec=checkpoint.spec,
        start=checkpoint.start,
        end=checkpoint.end,
        projects=checkpoint.projects,
        created_at=checkpoint.created_at,
        finished_at=now_iso(),
        runs=checkpoint.runs,
        items=sum(s.items for s in streams),
        bytes=sum(f.offset for name, f in checkpoint.files.items() if name in used),
        pages=sum(s.pages for s in streams),
        duplicates=sum(s.duplicates for s in streams),
        unidentified=sum(s.unidentified for s in streams),
        renamed=dict(renamed or {}),
        outside_retention=max(
            (s.window_end for s in streams if s.outside_retention), default=None, key=parse_stamp
        ),
        skipped=checkpoint.skipped,
        files=[
            ManifestFile(path=name, items=state.items, bytes=state.offset)
            for name, state in sorted(checkpoint.files.items())
            if name in used
        ],
        streams=[
            ManifestStream(
                key=s.key,
                file=s.file,
                target=s.target,
                window_start=s.window_start,
                window_end=s.window_end,
                items=s.items,
                pages=s.pages,
                duplicates=s.duplicates,
                hits=s.hits,
                unidentified=s.unidentified,
                split=s.split,
                outside_retention=s.outside_retention,
            )
            for s in streams
        ],
    )


def load_manifest(directory: Path) -> Manifest | None:
    """The manifest in ``directory``, ``None`` if there is none; a damaged one is a
    :class:`CheckpointError` (taken for absent, its export would pass for stray files)."""
    path = directory / MANIFEST_NAME
    data = read_no_follow(path)
    if data is None:
        return None
    try:
        return _manifest_decoder.decode(data)
    except (msgspec.ValidationError, msgspec.DecodeError) as exc:
        raise CheckpointError(
            f"{path} is damaged ({exc}): start the export over with --restart, or choose "
            "another output directory"
        ) from None


def save_manifest(directory: Path, manifest: Manifest) -> None:
    """Write the manifest durably (with a Parquet export's dataset schema), then remove the
    checkpoint, which has nothing left to tell (blocking). Refused once the directory's
    path no longer names the directory the export wrote to (see :func:`check_pinned`)."""
    check_pinned(directory)
    if manifest.spec.get("format") == "parquet" and manifest.arrow_schema is None:
        schema = dataset_schema(directory, [file.path for file in manifest.files])
        if schema is not None:
            manifest.arrow_schema = base64.b64encode(schema.serialize().to_pybytes()).decode()
    atomic_write(
        directory / MANIFEST_NAME, msgspec.json.format(msgspec.json.encode(manifest), indent=2)
    )
    remove_checkpoint(directory)
