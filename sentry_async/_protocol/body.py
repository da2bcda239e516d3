"""A response body, collected chunk by chunk under a size cap, with no I/O.

The cap holds after decompression: gzip and deflate are inflated here, a bounded slice at
a time, rather than by aiohttp (whose inflation of one network chunk is not bounded in
every version the dependency allows), so a small compressed body cannot expand into
gigabytes in memory before anyone counts it. A gzip body is read to its last member, as
``gzip -d`` and aiohttp read it (RFC 1952 2.2), up to :data:`MAX_GZIP_MEMBERS` members
when it is read whole (a streamed file may hold any number); ``deflate`` is a single
stream, and anything after its end means the body was mangled on the way. The inflater is
handed a bounded slice of input at a time too, so that the work stays linear in the
body's size.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator

__all__ = [
    "ACCEPT_ENCODING",
    "INPUT_SLICE",
    "MAX_GZIP_MEMBERS",
    "BodyReader",
    "BodyTooLarge",
    "CorruptBody",
    "UnsupportedEncoding",
]

_SLICE = 1024 * 1024
"""The most one step of inflating yields when no cap bounds the body (a download)."""

INPUT_SLICE = 4096
"""The most compressed bytes one step of inflating is handed. Once a gzip member ends, zlib
copies all the input left over into ``unused_data``: a body of many tiny members handed
whole cost work quadratic in its size (4 MiB of empty members: 43 s with the event loop
blocked); a slice at a time, it costs the body plus at most a slice per member."""

MAX_GZIP_MEMBERS = 1000
"""The most gzip members a body read whole may hold (:class:`CorruptBody` past it). A
server or proxy that compresses an API response writes one member; thousands are a body
built to cost work, not one that carries more: each empty member is 20 bytes of nothing,
which no size cap counts, and a body with a ``Content-Length`` is inflated in one call
that the event loop waits for. A body streamed on (a download) is inflated as each network
chunk arrives, the work linear in the chunk whatever its members: a file of thousands of
members (concatenated logs, BGZF blocks) is no attack there, and has no cap."""

_GZIP = 16 + zlib.MAX_WBITS

ACCEPT_ENCODING = "gzip, deflate"
"""What the transport asks for: exactly the encodings :class:`BodyReader` can inflate."""


class BodyTooLarge(Exception):
    """More than ``limit`` bytes: ``size`` is what was announced or read so far."""

    def __init__(self, size: int, limit: int, *, announced: bool) -> None:
        self.size = size
        self.limit = limit
        self.announced = announced
        how = "announced" if announced else "received at least"
        super().__init__(f"response body too large: {how} {size:,} bytes, limit {limit:,}")


class UnsupportedEncoding(Exception):
    """A ``Content-Encoding`` that was not asked for."""


class CorruptBody(Exception):
    """A compressed body that does not inflate (cut short or mangled on the way)."""


class BodyReader:
    """Collects a body; ``feed`` raw chunks as they arrive, then ``finish``.

    ``limit`` (``None``: no cap) bounds the decoded size; ``content_length`` is refused
    at once when it already exceeds the cap. ``encoding`` is the ``Content-Encoding``, or
    ``""`` when the body is to be kept as sent. ``max_members`` bounds a gzip body's
    members (``None``: no bound, for a body streamed on chunk by chunk).
    """

    __slots__ = (
        "_count",
        "_fed",
        "_inflater",
        "_limit",
        "_max_members",
        "_members",
        "_parts",
        "_size",
        "_undecided",
    )

    def __init__(
        self,
        *,
        limit: int | None,
        content_length: int | None,
        encoding: str,
        max_members: int | None = MAX_GZIP_MEMBERS,
    ) -> None:
        if limit is not None and content_length is not None and content_length > limit:
            raise BodyTooLarge(content_length, limit, announced=True)
        self._limit = limit
        self._max_members = max_members
        self._parts: list[bytes] = []
        self._size = 0
        self._fed = False
        """Whether compressed bytes arrived: a stream cut before its first inflated byte
        has none out, yet is no more complete than one cut later."""
        self._inflater: zlib._Decompress | None = None
        self._undecided: bytearray | None = None
        self._members = False
        """Whether another gzip member may follow the end of one (gzip, not deflate)."""
        self._count = 1
        """The gzip members begun so far."""
        name = encoding.strip().lower()
        if name in ("gzip", "x-gzip"):
            self._inflater = zlib.decompressobj(wbits=_GZIP)
            self._members = True
        elif name == "deflate":
            self._undecided = bytearray()  # zlib-wrapped or raw: told by the first two bytes
        elif name not in ("", "identity"):
            raise UnsupportedEncoding(f"unsupported Content-Encoding {_shown(encoding)}")

    def feed(self, chunk: bytes) -> None:
        for data in self._decoded(chunk):
            self._keep(data)

    def pieces(self, chunk: bytes) -> Iterator[bytes]:
        """The bytes ``chunk`` decodes to, for a body streamed on: inflated a bounded slice
        at a time as the pieces are taken, so that however far it inflates (size still
        counts) no more than a slice is held at once."""
        for data in self._decoded(chunk):
            self._keep(data)
            yield self.take()

    def _decoded(self, chunk: bytes) -> Iterator[bytes]:
        if self._undecided is not None:
            self._undecided += chunk
            if len(self._undecided) < 2:
                return
            chunk = bytes(self._undecided)
            self._undecided = None
            self._inflater = zlib.decompressobj(wbits=_deflate_wbits(chunk))
        if self._inflater is None:
            if chunk:
                yield chunk
            return
        self._fed = self._fed or bool(chunk)
        for start in range(0, len(chunk), INPUT_SLICE):
            # The inflater of the member the slice starts in (the last slice may end one).
            yield from self._inflated(self._inflater, chunk[start : start + INPUT_SLICE])

    def _inflated(self, inflater: zlib._Decompress, data: bytes) -> Iterator[bytes]:
        """What a slice of at most :data:`INPUT_SLICE` compressed bytes inflates to."""
        if inflater.eof:
            # The stream ended before this slice: what follows is another member, or wrong.
            next_member = self._after_end(data)
            if next_member is None:
                return
            inflater, data = next_member
        full = False
        while True:
            while (data or full) and not inflater.eof:
                # Read after each piece is taken: the size it reached bounds the next slice.
                room = _SLICE if self._limit is None else self._limit - self._size + 1
                try:
                    out = inflater.decompress(data, room)
                except zlib.error as exc:
                    raise CorruptBody(f"response body does not inflate: {exc}") from None
                if out:
                    yield out
                data = inflater.unconsumed_tail
                full = len(out) == room  # zlib may hold more output though no input is left
            if not inflater.eof or not inflater.unused_data:
                return
            # The stream ended inside this slice: its bytes past the end are all in
            # ``unused_data`` (``unconsumed_tail`` may repeat some of them).
            next_member = self._after_end(inflater.unused_data)
            if next_member is None:
                return
            inflater, data = next_member
            full = False

    def _after_end(self, rest: bytes) -> tuple[zlib._Decompress, bytes] | None:
        """The bytes after a stream's end: the next gzip member and its bytes, ``None`` for
        none (zero padding between and after members is skipped, as Python's gzip module
        does); for ``deflate`` any byte at all is a :class:`CorruptBody`."""
        if not self._members:
            if rest:
                raise CorruptBody("response body goes on after the end of its deflate stream")
            return None
        rest = rest.lstrip(b"\0")
        if not rest:
            return None
        if self._count == self._max_members:
            raise CorruptBody(f"response body has more than {self._count:,} gzip members")
        self._count += 1
        inflater = self._inflater = zlib.decompressobj(wbits=_GZIP)
        return inflater, rest

    def whole(self, body: bytes) -> bytes:
        """A body that arrived in one read: as it is when it needs no inflating (still
        counted against the cap), else inflated under the cap as :meth:`feed` does."""
        if self._inflater is None and self._undecided is None and not self._parts:
            if self._limit is not None and len(body) > self._limit:
                raise BodyTooLarge(len(body), self._limit, announced=False)
            self._size = len(body)
            return body
        self.feed(body)
        return self.finish()

    def take(self) -> bytes:
        """The bytes decoded since the last call, for a body streamed on (size still counts)."""
        data = b"".join(self._parts)
        self._parts.clear()
        return data

    def finish(self) -> bytes:
        """The rest of the decoded body (all of it, unless :meth:`take` was called)."""
        if self._undecided:
            chunk = bytes(self._undecided)
            self._undecided = None
            self._inflater = zlib.decompressobj(wbits=_deflate_wbits(chunk))
            self.feed(chunk)
        if self._inflater is not None:
            if not self._inflater.eof and self._fed:
                raise CorruptBody("compressed response body ends early")
            try:
                self._keep(self._inflater.flush())
            except zlib.error as exc:
                raise CorruptBody(f"response body does not inflate: {exc}") from None
        body = b"".join(self._parts)
        self._parts.clear()
        return body

    def _keep(self, data: bytes) -> None:
        if not data:
            return
        self._size += len(data)
        if self._limit is not None and self._size > self._limit:
            self._parts.clear()
            raise BodyTooLarge(self._size, self._limit, announced=False)
        self._parts.append(data)


_QUOTED = 40
"""The longest header value an error quotes: an encoding's name is short, a token is not."""


def _shown(value: str) -> str:
    """A header value the server sent, quoted whole or not at all: a server that echoes
    the token there must not have a piece of it shown, which no redactor recognises."""
    return repr(value) if len(value) <= _QUOTED else f"of {len(value)} characters"


def _deflate_wbits(start: bytes) -> int:
    """HTTP's ``deflate`` is meant to be zlib-wrapped, but servers also send raw deflate."""
    if len(start) >= 2 and start[0] & 0x0F == 8 and (start[0] << 8 | start[1]) % 31 == 0:
        return zlib.MAX_WBITS
    return -zlib.MAX_WBITS
