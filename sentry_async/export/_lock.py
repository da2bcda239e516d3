"""The output directory's lock: one exporter per directory at a time."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from types import TracebackType

from ._errors import ExportLockedError
from ._writer import lstat_no_follow, open_no_follow, pin_directory, remove_file, unpin_directory

__all__ = ["LOCK_NAME", "DirLock"]

LOCK_NAME = ".lock"


class DirLock:
    """An exclusive ``flock`` on ``DIR/.lock``: two exporters must not share a directory.

    The kernel drops it when the process dies, so a killed run never blocks a resume.
    While it is held the directory is pinned (see :func:`~._writer.pin_directory`): the
    export's files are reached through the directory it opened, whatever its path names
    later. A ``.lock`` of another user is refused (:class:`OutputUnusableError`), as every
    file of another user in the directory is.
    """

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.path = directory / LOCK_NAME
        self._fd: int | None = None
        self._pin: int | None = None

    def __enter__(self) -> DirLock:
        self._pin = pin_directory(self.directory)
        try:
            return self._lock()
        except BaseException:
            unpin_directory(self.directory, self._pin)
            self._pin = None
            raise

    def _lock(self) -> DirLock:
        try:
            import fcntl
        except ImportError:  # pragma: no cover - not POSIX: no lock
            return self
        for _ in range(3):
            fd = open_no_follow(self.path, os.O_RDONLY, create=True)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                os.close(fd)
                raise ExportLockedError(
                    f"another export is running in {self.directory} (it holds {LOCK_NAME})"
                ) from None
            if self._is_current(fd):
                self._fd = fd
                return self
            # Its holder removed the file after we opened it: lock the new one instead.
            os.close(fd)
        raise ExportLockedError(f"the lock file {self.path} keeps being replaced")

    def _is_current(self, fd: int) -> bool:
        try:
            return lstat_no_follow(self.path).st_ino == os.fstat(fd).st_ino
        except FileNotFoundError:
            return False

    def remove(self) -> None:
        """Delete the lock file while still holding it: the export is over.

        Called once the run's result is known, which a failure here must not replace:
        the ``flock`` is what locks, and a ``.lock`` left behind blocks no later export.
        """
        with contextlib.suppress(OSError):
            if self._fd is not None and self._is_current(self._fd):
                remove_file(self.path)

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        unpin_directory(self.directory, self._pin)
        self._pin = None
