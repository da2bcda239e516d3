"""A hostile HTTP proxy on 127.0.0.1, shared by the suites that send through one."""

from __future__ import annotations

import asyncio
from typing import TypeVar

_P = TypeVar("_P", bound="LoopbackProxy")


class LoopbackProxy:
    """A proxy server on 127.0.0.1 for ``async with``: ``url`` once entered; each
    connection goes to :meth:`_handle`, which keeps its writer in ``_writers`` while it
    runs, so that leaving closes the connections still open."""

    def __init__(self) -> None:
        self.url = ""
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    async def __aenter__(self: _P) -> _P:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.url = f"http://127.0.0.1:{self._server.sockets[0].getsockname()[1]}"
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        for writer in list(self._writers):
            writer.close()
        await self._server.wait_closed()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        raise NotImplementedError


class TunnelProxy(LoopbackProxy):
    """A proxy on 127.0.0.1 that answers ``CONNECT`` badly, as ``mode`` says: ``close``
    drops the connection, ``garble`` answers with a header no parser accepts, ``hang``
    never answers (nor does it answer a plain http request it is given to forward).
    ``connects`` counts the ``CONNECT`` requests it got, ``heads`` the request lines of
    every request, and ``reached`` is set once the first request's head is in."""

    def __init__(self, mode: str) -> None:
        super().__init__()
        self.mode = mode
        self.connects = 0
        self.heads: list[str] = []
        self.reached = asyncio.Event()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            self.heads.append(head.split(b"\r\n", 1)[0].decode("latin-1"))
            self.reached.set()
            if head.startswith(b"CONNECT "):
                self.connects += 1
            if self.mode == "garble":
                writer.write(b"HTTP/1.1 200 OK\r\nX-Big: " + b"a" * 100_000 + b"\r\n\r\n")
                await writer.drain()
            elif self.mode == "hang":
                await reader.read()  # until the client gives up and closes
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError):
            pass
        finally:
            writer.close()
            self._writers.discard(writer)
