"""The body reader's gzip members and what follows a compressed stream: pure, no network."""

from __future__ import annotations

import gzip
import zlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sentry_async._protocol.body import MAX_GZIP_MEMBERS, BodyReader, BodyTooLarge, CorruptBody

MiB = 1024 * 1024
A = b"A" * 1000 + b"\n"
B = b"B" * 1000 + b"\n"
TWO = gzip.compress(A) + gzip.compress(B)


def _compress(data: bytes, wbits: int) -> bytes:
    packer = zlib.compressobj(wbits=wbits)
    return packer.compress(data) + packer.flush()


def _fed(packed: bytes, encoding: str, step: int, *, limit: int | None = MiB) -> bytes:
    """``packed`` fed ``step`` bytes at a time, then finished."""
    reader = BodyReader(limit=limit, content_length=None, encoding=encoding)
    for start in range(0, len(packed), step):
        reader.feed(packed[start : start + step])
    return reader.finish()


@pytest.mark.parametrize("step", [1, 7, 19, 2048, 1 << 20], ids=lambda n: f"{n}B")
def test_every_gzip_member_is_read(step: int) -> None:
    """RFC 1952 makes a gzip body a series of members: ``gzip -d`` and aiohttp read them
    all, where the reader stopped after the first (a download kept half its bytes)."""
    assert _fed(TWO, "gzip", step) == A + B == gzip.decompress(TWO)
    json_body = gzip.compress(b'[{"id":"1"},') + gzip.compress(b'{"id":"2"}]')
    assert _fed(json_body, "x-gzip", step) == b'[{"id":"1"},{"id":"2"}]'


def test_gzip_members_are_read_whole_and_streamed_on() -> None:
    reader = BodyReader(limit=MiB, content_length=len(TWO), encoding="gzip")
    assert reader.whole(TWO) == A + B
    streamed = BodyReader(limit=None, content_length=None, encoding="gzip")
    pieces = [piece for start in range(0, len(TWO), 50) for piece in streamed.pieces(TWO[start : start + 50])]
    assert b"".join(pieces) + streamed.finish() == A + B


def test_zero_padding_between_and_after_gzip_members_is_skipped() -> None:
    """As Python's gzip module reads it: zeros between members and at the end are padding."""
    padded = gzip.compress(A) + bytes(5) + gzip.compress(B) + bytes(3)
    assert gzip.decompress(padded) == A + B
    for step in (1, 3, len(padded)):
        assert _fed(padded, "gzip", step) == A + B


@pytest.mark.parametrize(
    "tail", [b"x", b"garbage after the end", bytes(3) + b"\x1f"], ids=["byte", "text", "half-header"]
)
def test_garbage_after_a_gzip_member_is_corrupt(tail: bytes) -> None:
    """Bytes after a member that do not start another one were dropped without a word."""
    packed = gzip.compress(A) + tail
    for step in (1, len(packed)):
        with pytest.raises(CorruptBody):
            _fed(packed, "gzip", step)


def test_a_second_gzip_member_cut_short_is_corrupt() -> None:
    packed = gzip.compress(A) + gzip.compress(B)[:-6]
    with pytest.raises(CorruptBody, match="ends early"):
        _fed(packed, "gzip", 64)


@pytest.mark.parametrize("wbits", [zlib.MAX_WBITS, -zlib.MAX_WBITS], ids=["zlib", "raw"])
@pytest.mark.parametrize(
    "tail",
    [b"\n", b"\x00", b"trailing", zlib.compress(B)],
    ids=["newline", "zero", "text", "second-stream"],
)
def test_bytes_after_the_end_of_a_deflate_stream_are_corrupt(wbits: int, tail: bytes) -> None:
    """``deflate`` is one stream: whatever follows its end, in the same chunk or a later
    one, is a mangled body rather than something to drop in silence."""
    packed = _compress(A, wbits)
    assert _fed(packed, "deflate", 5) == A
    with pytest.raises(CorruptBody, match="after the end"):
        _fed(packed + tail, "deflate", len(packed) + len(tail))
    reader = BodyReader(limit=MiB, content_length=None, encoding="deflate")
    reader.feed(packed)
    with pytest.raises(CorruptBody, match="after the end"):
        reader.feed(tail)


def test_many_members_stay_under_the_cap_and_in_bounded_slices() -> None:
    """Members do not reset the count: the cap holds across them, and a download's pieces
    stay at most a slice each however far the members inflate."""
    member = gzip.compress(bytes(3 * MiB))
    packed = member * 4
    with pytest.raises(BodyTooLarge):
        _fed(packed, "gzip", 65536, limit=10 * MiB)
    streamed = BodyReader(limit=None, content_length=None, encoding="gzip")
    sizes = [len(piece) for piece in streamed.pieces(packed)]
    assert sum(sizes) == 12 * MiB and max(sizes) <= MiB
    assert streamed.finish() == b""


def test_the_most_tiny_members_allowed_are_read_in_a_loop() -> None:
    """One member after another must not nest calls: as many members as Python's default
    recursion limit are read (past :data:`MAX_GZIP_MEMBERS` the body is corrupt)."""
    packed = gzip.compress(b"") * (MAX_GZIP_MEMBERS - 1) + gzip.compress(b"[]")
    assert _fed(packed, "gzip", len(packed)) == b"[]"


@settings(max_examples=100, deadline=None)
@given(
    parts=st.lists(st.binary(max_size=300), min_size=1, max_size=5),
    step=st.integers(min_value=1, max_value=400),
)
def test_any_members_in_any_chunks_read_as_gzip_reads_them(parts: list[bytes], step: int) -> None:
    packed = b"".join(gzip.compress(part) for part in parts)
    assert _fed(packed, "gzip", step) == gzip.decompress(packed) == b"".join(parts)
