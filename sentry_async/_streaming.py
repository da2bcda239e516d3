"""Requests whose bodies are files, for the generated methods: chunked downloads, uploads.

Both go through the transport like every other request (limiter, hooks, token rules,
redirect checks, retries, error mapping); downloads through the same primitive as
:meth:`SentryClient.stream` and :meth:`SentryClient.download`, which never holds the whole
body, and uploads as a multipart form built afresh for each attempt.
"""

from __future__ import annotations

import asyncio
import os
import re
from collections.abc import AsyncGenerator, AsyncIterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import aiohttp

from ._exchange import Form
from ._protocol.hosts import endpoint_group
from ._protocol.params import Params
from ._transport import Response
from .pagination import _end

if TYPE_CHECKING:
    from .client import SentryClient

__all__ = ["FileInput", "download", "stream", "upload"]

FileInput = bytes | str | os.PathLike[str] | AsyncIterable[bytes]
"""File contents for an upload: the bytes, a path to read, or an async iterator of chunks."""

T = TypeVar("T")

_HEADER_CONTROLS = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
"""Characters a header may not hold (RFC 9110 5.5): a part's filename goes into one."""


async def stream(
    client: SentryClient,
    path: str,
    *,
    path_params: Mapping[str, str | int],
    params: Params | None = None,
    chunk_size: int = 65536,
) -> AsyncGenerator[bytes, None]:
    """The response body of a GET, ``chunk_size`` bytes at a time (the last may be shorter)."""
    if isinstance(chunk_size, bool) or not isinstance(chunk_size, int) or chunk_size < 1:
        raise ValueError(f"chunk_size must be a positive integer (got {chunk_size!r})")
    pump, chunks, abandoning = client._piped_download(path, path_params, params)
    # A plain task rather than a task group: this generator may be closed from another task
    # (the event loop finalises one left early), where a task group's scope cannot be left.
    task = asyncio.get_running_loop().create_task(pump())
    pending = bytearray()
    try:
        async for chunk in chunks:
            pending += chunk
            while len(pending) >= chunk_size:
                yield bytes(pending[:chunk_size])
                del pending[:chunk_size]
    except GeneratorExit:
        # Closed early (``break`` then ``aclose()``, or the loop finalising it): the request
        # is the library's to drop, as a paginator's; a cancellation stays one.
        abandoning.on = True
        raise
    finally:
        # Over before aclose() returns, as SentryClient.stream()'s block is: no download
        # left running, and its request ended in the hooks. Shielded: a close inside a
        # cancelled scope still waits for it.
        await _end(task)
        await chunks.aclose()
    if pending:
        yield bytes(pending)


async def download(
    client: SentryClient,
    path: str,
    *,
    path_params: Mapping[str, str | int],
    params: Params | None = None,
    to: str | os.PathLike[str],
) -> int:
    """Write a GET's body to ``to`` (through a temporary file beside it, renamed when
    complete)."""
    return await client.download(path, to, path_params=path_params, params=params)


def _named(value: Any) -> bool:
    """Whether a form field's value names something: given, and not blank."""
    return isinstance(value, str) and bool(value.strip())


def _part_filename(
    file: tuple[str, FileInput, str | None], named_by: tuple[str, Any] | None = None
) -> str:
    """The filename the file's part goes out with: ``filename=``, else a path's own name,
    else the field's name, which says nothing of the file.

    Raises ``ValueError`` for a filename a header cannot hold (a control character would
    fail the request as a connection error), and, when ``named_by`` is the form field that
    names the file in its stead, for a part the server would find no name for: that field
    not given, and the filename blank or the field's own name (bytes and async iterators
    have none of their own).
    """
    name, contents, filename = file
    given = "filename"
    if filename is None and isinstance(contents, (str, os.PathLike)):
        filename, given = Path(contents).name, name
    if filename is not None and _HEADER_CONTROLS.search(filename):
        raise ValueError(f"`{given}`: the file name {filename!r} holds a control character, "
                         "which a multipart header cannot carry")
    nameless = not _named(filename) or filename == name
    if nameless and named_by is not None and not _named(named_by[1]):
        raise ValueError(
            f"`{named_by[0]}` or `filename` must name the file: without them its part is "
            f"called {name!r} (bytes and async iterators have no name of their own), which "
            "the server refuses as no file name"
        )
    return filename or name


def _form(
    fields: Sequence[tuple[str, Any]],
    file: tuple[str, FileInput, str | None],
    named_by: tuple[str, Any] | None = None,
) -> tuple[Form, bool]:
    """A builder for the multipart body, and whether it can be built again for a retry."""
    name, contents, _ = file
    replayable = isinstance(contents, (bytes, str, os.PathLike))
    filename = _part_filename(file, named_by)

    def build() -> aiohttp.FormData:
        form = aiohttp.FormData()
        for key, value in fields:
            if value is None or value.__class__.__name__ == "UnsetType":
                continue
            values = value if isinstance(value, (list, tuple)) else [value]
            for item in values:
                form.add_field(key, str(item))
        if isinstance(contents, (str, os.PathLike)):
            payload: Any = aiohttp.get_payload(open(contents, "rb"))  # noqa: SIM115
        else:
            payload = contents
        form.add_field(name, payload, filename=filename,
                       content_type="application/octet-stream")
        return form

    return build, replayable


async def upload(
    client: SentryClient,
    path: str,
    *,
    path_params: Mapping[str, str | int],
    fields: Sequence[tuple[str, Any]],
    file: tuple[str, FileInput, str | None],
    named_by: tuple[str, Any] | None = None,
    type: type[T],
) -> T:
    """POST a multipart form with one file and decode the JSON answer into ``type``.

    Contents given as bytes or a path are sent again on a retried 429; an async iterator
    can be read once, so its upload is attempted once. ``named_by`` is the form field (its
    name and value) that names the file where the part's filename would not: contents
    without a name of their own need it or a filename.
    """
    build, replayable = _form(fields, file, named_by)

    def decode(response: Response) -> T:
        return client.decode(response, type)

    return await client._get_transport().send_decoded(
        "POST",
        client.url_for(path, path_params),
        group=endpoint_group("POST", path),
        body=build,
        idempotent=False,
        replayable=replayable,
        decode=decode,
    )
