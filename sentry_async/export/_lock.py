"""The output directory's lock: one exporter per directory at a time."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from types import TracebackType

from ._errors import ExportLockedError
from ._writer import open_no_follow

__all__ = ["LOCK_NAME", "DirLock"]

LOCK_NAME = ".lock"


class DirLock:
    """An exclusive ``flock`` on ``DIR/.lock``: two exporters must not share a directory.

    The kernel drops it when the process dies, so a killed run never blocks a resume.
    """

    def __init__(self, directory: Path) -> None:
        self.path = directory / LOCK_NAME
        self._fd: int | None = None

    def __enter__(self) -> DirLock:
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
                    f"another export is running in {self.path.parent} (it holds {LOCK_NAME})"
                ) from None
            if self._is_current(fd):
                self._fd = fd
                return self
            # Its holder removed the file after we opened it: lock the new one instead.
            os.close(fd)
        raise ExportLockedError(f"the lock file {self.path} keeps being replaced")

    def _is_current(self, fd: int) -> bool:
        try:
            return os.stat(self.path, follow_symlinks=False).st_ino == os.fstat(fd).st_ino
        except FileNotFoundError:
            return False

    def remove(self) -> None:
        """Delete the lock file while still holding it: the export is over."""
        if self._fd is not None and self._is_current(self._fd):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.path)

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
