"""Large binary bodies: streamed to a file, a callable or an async iterator, with no cap.

A mixin of :class:`~sentry_async.SentryClient`, over the transport's one download path
(hooks, the limiter, redirects and retries before the first byte, as every request).
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
import stat
from collections.abc import (
    AsyncGenerator,
    AsyncIterator,
    Awaitable,
    Callable,
    Coroutine,
    Iterable,
    Mapping,
)
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import anyio
from yarl import URL

from ._protocol.hosts import endpoint_group
from ._protocol.params import Params, encode_params
from .hooks import Abandoning

if TYPE_CHECKING:
    from ._transport import Transport

__all__ = ["Downloads"]

T = TypeVar("T")


class Downloads:
    """:meth:`stream` and :meth:`download` for :class:`~sentry_async.SentryClient`."""

    if TYPE_CHECKING:

        def url_for(
            self,
            path: str,
            path_params: Mapping[str, str | int] | None = None,
            *,
            root: URL | None = None,
        ) -> URL: ...

        def _get_transport(self) -> Transport: ...

        async def _send_following(
            self,
            method: str,
            path: str,
            path_params: Mapping[str, str | int] | None,
            send: Callable[[URL], Awaitable[T]],
            root: URL | None = None,
        ) -> T: ...

    @asynccontextmanager
    async def stream(
        self,
        path: str,
        *,
        path_params: Mapping[str, str | int] | None = None,
        params: Params | Iterable[tuple[str, str]] | None = None,
    ) -> AsyncIterator[AsyncIterator[bytes]]:
        """``async with sentry.stream(path) as chunks: async for chunk in chunks: ...``: a
        GET's body as it arrives, inflated, with no size cap (see :meth:`download`). An error
        is raised from the iteration; leaving the block early stops the download (its request
        ends ``abandoned``, as a paginator left early does; a cancellation of the block stays
        one)."""
        pump, chunks, abandoning = self._piped_download(path, path_params, params)
        raised: Exception | None = None
        async with anyio.create_task_group() as tg:
            tg.start_soon(pump)
            try:
                yield chunks
                abandoning.on = True  # the block is over: nobody reads the rest
            except Exception as exc:
                abandoning.on = True  # the consumer left
                raised = exc  # raised below as it is, not wrapped in the group's ExceptionGroup
            finally:
                tg.cancel_scope.cancel()  # nothing outlives the block
                await chunks.aclose()
        if raised is not None:
            raise raised

    def _piped_download(
        self,
        path: str,
        path_params: Mapping[str, str | int] | None,
        params: Params | Iterable[tuple[str, str]] | None,
    ) -> tuple[Callable[[], Coroutine[Any, Any, None]], AsyncGenerator[bytes, None], Abandoning]:
        """A download to run (in a task of the caller's choosing), the chunks it hands over
        one at a time (they end with the download's error, if it failed), and the work it
        runs as: turned :attr:`~Abandoning.on` when the consumer leaves, so that the
        request its cancel cuts is abandoned, not failed."""
        send, receive = anyio.create_memory_object_stream[bytes](0)
        failed: list[Exception] = []
        abandoning = Abandoning()

        async def pump() -> None:
            abandoning.enter()
            try:
                async with send:
                    await self.download(path, send.send, path_params=path_params, params=params)
            except anyio.BrokenResourceError:
                pass  # the consumer left
            except Exception as exc:  # handed to the consumer, whose iteration raises it
                failed.append(exc)

        async def chunks() -> AsyncGenerator[bytes, None]:
            async with receive:
                async for chunk in receive:
                    yield chunk
            if failed:
                raise failed[0]

        return pump, chunks(), abandoning

    async def download(
        self,
        path: str,
        destination: str | os.PathLike[str] | Callable[[bytes], Awaitable[None]],
        *,
        path_params: Mapping[str, str | int] | None = None,
        params: Params | Iterable[tuple[str, str]] | None = None,
    ) -> int:
        """Stream a GET's body to a file (a path) or to an async callable, chunk by chunk,
        with no size cap; returns the number of bytes. A file is written to a new file of
        its own beside it (``<path>.<random>.part``) and renamed over it when complete, so
        that a download cut off mid-body leaves no truncated file under the final name (and
        no part), and two downloads to one path each write their own. Failures before the
        first byte are retried as usual, none after; what the callable raises is raised as
        it is, not retried, and a file that cannot be written (a full disk, a directory in
        its place, checked before anything is sent) raises an ``OSError`` naming ``path``."""
        if callable(destination):
            return await self._download_to(path, destination, path_params, params)
        target = Path(destination)
        try:
            partial, file = _open_partial(target)
        except OSError as exc:
            raise _naming(exc, target) from exc
        try:
            async with file:
                written = await self._download_to(path, file.write, path_params, params)
            os.replace(partial, target)
        except BaseException as exc:
            with contextlib.suppress(OSError):
                os.unlink(partial)
            if isinstance(exc, OSError):
                raise _naming(exc, target) from exc
            raise
        return written

    async def _download_to(
        self,
        path: str,
        write: Callable[[bytes], Awaitable[object]],
        path_params: Mapping[str, str | int] | None,
        params: Params | Iterable[tuple[str, str]] | None,
    ) -> int:
        """The body handed to ``write`` chunk by chunk; returns the number of bytes. A
        renamed project's file is read from its new slug, as any read is."""
        total = 0

        async def count(chunk: bytes) -> None:
            nonlocal total
            total += len(chunk)
            await write(chunk)

        group = endpoint_group("GET", path)
        encoded = encode_params(params)

        async def send(url: URL) -> None:
            await self._get_transport().download(
                "GET", url, group=group, params=encoded, sink=count
            )

        await self._send_following("GET", path, path_params, send)
        return total


_NAMES_TRIED = 100
"""New names tried for a download's temporary file before giving up (each is random)."""

_CREATE = (
    os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_BINARY", 0)
)
"""A file that did not exist: ``O_EXCL`` opens nothing already there, a link included."""


def _open_partial(target: Path) -> tuple[Path, anyio.AsyncFile[bytes]]:
    """A new file of a random name beside ``target``, to write its download to.

    Made anew, never an existing file opened, so that another download's file or a link
    planted at a name it could predict is neither written through nor later removed. It
    has the mode of the file it will replace (a private file stays private), else the
    one the umask gives a new file. A directory at ``target`` is refused now, not by the
    rename once the whole body has come."""
    try:
        found: os.stat_result | None = target.stat()
    except FileNotFoundError:
        found = None
    if found is not None and stat.S_ISDIR(found.st_mode):
        raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR))
    kept = None if found is None else found.st_mode & 0o777
    for _ in range(_NAMES_TRIED):
        partial = target.with_name(f"{target.name}.{secrets.token_hex(4)}.part")
        try:
            fd = os.open(partial, _CREATE, 0o666 if kept is None else kept)
        except FileExistsError:
            continue
        try:
            if kept is not None and os.chmod in os.supports_fd:
                os.chmod(fd, kept)  # exactly the old mode, whatever the umask takes off
            handle = os.fdopen(fd, "wb")
        except BaseException:
            os.close(fd)
            with contextlib.suppress(OSError):
                os.unlink(partial)
            raise
        return partial, anyio.wrap_file(handle)
    raise FileExistsError(errno.EEXIST, "no free name for the download's temporary file")


def _naming(error: OSError, target: Path) -> OSError:
    """``error`` of the download's file restated to name ``target``, not the temporary
    file the caller never named; of its errno's class (``PermissionError``, ...)."""
    if error.errno is None:
        return OSError(f"cannot write the download to {target}: {error}")
    return OSError(error.errno, f"cannot write the download: {error.strerror}", str(target))
