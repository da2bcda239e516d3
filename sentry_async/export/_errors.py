"""What can stop an export, each with enough context to act on."""

from __future__ import annotations

from ..errors import SentryError

__all__ = [
    "CheckpointError",
    "ExportDecodeError",
    "ExportError",
    "ExportLockedError",
    "ExportRangeError",
    "NothingToExportError",
    "OutputNotEmptyError",
    "OutputUnusableError",
    "SpecMismatchError",
    "UnknownProjectError",
]


class ExportError(SentryError):
    """Base class of the exporter's own errors."""


class SpecMismatchError(ExportError):
    """``resume`` was asked with arguments that differ from the checkpoint's.

    Continuing would mix two different exports in one directory; ``differences`` maps each
    differing setting to ``(in the checkpoint, requested now)``.
    """

    def __init__(self, directory: str, differences: dict[str, tuple[object, object]]) -> None:
        self.directory = directory
        self.differences = differences
        parts = "; ".join(
            f"{name}: checkpoint has {old!r}, now {new!r}"
            for name, (old, new) in differences.items()
        )
        super().__init__(
            f"cannot resume the export in {directory}: its arguments differ ({parts}); "
            "rerun with the original arguments or choose another output directory"
        )


class OutputNotEmptyError(ExportError):
    """The output directory already holds an export (or other files) and ``resume`` is off."""


class OutputUnusableError(ExportError):
    """The output path cannot hold an export: not a directory, or a planted link in it.

    A symlink or a file with several hard links where the exporter writes would send its
    bytes outside the directory, so the export stops instead of following it.
    """


class ExportLockedError(ExportError):
    """Another process is exporting into the same directory right now."""


class ExportRangeError(ExportError, ValueError):
    """The time range or its windows cannot be exported: empty, out of range, or too many.

    Raised before anything is created on disk. ``argument`` names the setting to change
    (``"start"``, ``"end"``, ``"period"`` or ``"window"``, as in :class:`ExportSpec`) so
    a front end can name its own option; ``reason`` says what is wrong without naming it.
    It is a ``ValueError`` too, since it is a bad argument.
    """

    def __init__(self, argument: str, reason: str) -> None:
        self.argument = argument
        self.reason = reason
        super().__init__(f"{argument}: {reason}")


class NothingToExportError(ExportError, ValueError):
    """An incremental run was asked for before a new second began after the last run's end
    (a scheduler retrying at once): there is nothing new to export yet, and nothing was
    done. Runs end at whole seconds, so the next one can start in the next second.

    ``high_water`` is the last run's end, ``now`` the time of this call (ISO UTC). A
    ``ValueError`` too, as it was before it had a type of its own.
    """

    def __init__(self, high_water: str, now: str) -> None:
        self.high_water = high_water
        self.now = now
        super().__init__(
            f"nothing to export yet: the last run ended at {high_water}, now is {now}; "
            "the next run takes what arrived since"
        )


class CheckpointError(ExportError):
    """The checkpoint is unreadable, or the data files are shorter than it records."""


class UnknownProjectError(ExportError):
    """A requested project is not in the organization (or the org has no projects)."""


class ExportDecodeError(ExportError):
    """A page of ``stream`` requested with ``cursor`` could not be decoded.

    Nothing of that page was written and the checkpoint still points at it, so a resumed
    run starts again from exactly that page.
    """

    def __init__(self, stream: str, cursor: str | None, reason: str) -> None:
        self.stream = stream
        self.cursor = cursor
        self.reason = reason
        where = f"cursor {cursor!r}" if cursor is not None else "the first page"
        super().__init__(
            f"stream {stream}: the page at {where} could not be decoded ({reason}); "
            "the checkpoint stays at the last good page, resume to retry"
        )
