"""Resumable, exactly-once bulk export of issues, raw events and Discover rows to JSON Lines.

``await export(client, ExportSpec(kind="events", org="acme", period=timedelta(days=30)),
"out/")`` writes one ``.jsonl`` (or ``.jsonl.gz``) file per project (per issue for an
issue's events), ``checkpoint.json`` while it runs and ``manifest.json`` at the end; rerun
with ``resume=True`` after any stop, including ``kill -9``, and every item ends up in the
output exactly once (see :mod:`sentry_async.export._runner` for how). Discover rows can be
written as CSV or Parquet parts (``ExportSpec(format=...)``), and ``export(...,
incremental=STATE_FILE)`` runs the next run of an export that takes what arrived since
the last one (see :mod:`sentry_async.export._incremental`).
"""

# Showing progress lives beside the command line; it is re-exported for library users.
from .._progress_display import show_progress
from ._checkpoint import (
    CHECKPOINT_NAME,
    Checkpoint,
    FileState,
    ProjectRef,
    SkippedProject,
    StreamState,
)
from ._errors import (
    CheckpointError,
    ExportDecodeError,
    ExportError,
    ExportLockedError,
    ExportRangeError,
    NothingToExportError,
    OutputNotEmptyError,
    OutputUnusableError,
    SpecMismatchError,
    UnknownProjectError,
)
from ._export import export
from ._manifest import MANIFEST_NAME, Manifest, ManifestFile, ManifestStream
from ._progress import Progress, ProgressSnapshot
from ._runner import Exporter
from ._spec import DEFAULT_DISCOVER_FIELDS, ExportKind, ExportSpec
from ._windows import MAX_WINDOWS, Window, format_utc, parse_duration, parse_utc, split_windows

__all__ = [
    "CHECKPOINT_NAME",
    "DEFAULT_DISCOVER_FIELDS",
    "MANIFEST_NAME",
    "MAX_WINDOWS",
    "Checkpoint",
    "CheckpointError",
    "ExportDecodeError",
    "ExportError",
    "ExportKind",
    "ExportLockedError",
    "ExportRangeError",
    "ExportSpec",
    "Exporter",
    "FileState",
    "Manifest",
    "ManifestFile",
    "ManifestStream",
    "NothingToExportError",
    "OutputNotEmptyError",
    "OutputUnusableError",
    "Progress",
    "ProgressSnapshot",
    "ProjectRef",
    "SkippedProject",
    "SpecMismatchError",
    "StreamState",
    "UnknownProjectError",
    "Window",
    "export",
    "format_utc",
    "parse_duration",
    "parse_utc",
    "show_progress",
    "split_windows",
]
