"""Sentry's ``Link`` header and cursors, as pure functions.

Sentry writes ``<url&cursor=C>; rel="previous"; results="false"; cursor="C", <url&cursor=D>;
rel="next"; results="true"; cursor="D"`` and escapes neither cursor: a string cursor (a
rule's name) may hold ``\\``, ``>``, ``"``, ``,`` or ``;`` as they are. So that layout is
read by its fixed text first, each cursor being what stands both after ``&cursor=`` in its
URL and in its ``cursor`` parameter. Any other header is tokenised as RFC 8288 says
(angle-bracketed targets, quoted-string parameters) rather than split on commas and
semicolons, which is what breaks other clients (aiohttp's ``ClientResponse.links``
included: it splits parameters on ``;``).

A cursor is any text (a rule's name), and Django writes a header that fits latin-1 as
latin-1 bytes and any other as RFC 2047 encoded-words, never as raw UTF-8, while aiohttp
reads header bytes as UTF-8 with their invalid bytes surrogate-escaped. So a value is first
read back as the text the server meant (:func:`link_header` for aiohttp's headers,
:func:`_field_text` for a value of unknown reading): a cursor that lost or changed a letter
would repeat or skip rows."""

from __future__ import annotations

import base64
import binascii
import codecs
import re
from dataclasses import dataclass, field

import msgspec
from multidict import MultiMapping
from yarl import URL

__all__ = [
    "Link",
    "LinkHeaderError",
    "PageLinks",
    "cursor_from_url",
    "link_header",
    "page_links",
    "parse_link_header",
]

_TOKEN = r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+"
_SEPARATORS = re.compile(r"[ \t,]*")
_TARGET = re.compile(r"<([^>]*)>")
_PARAM = re.compile(rf'[ \t]*;[ \t]*({_TOKEN})[ \t]*(?:=[ \t]*(?:"((?:[^"\\]|\\.)*)"|({_TOKEN})))?')
_END = re.compile(r"[ \t]*(?:;[ \t]*)*(?:,|$)")
_ESCAPE = re.compile(r"\\(.)", re.DOTALL)
_URL_CURSOR = "&cursor="
_PREVIOUS = '>; rel="previous"; results="'
_NEXT = '>; rel="next"; results="'
_CURSOR = '"; cursor="'
_BETWEEN = '", <'
_RESULTS = ("true", "false")
"""``results`` values, by the parity of their length."""
_MAX_LINK = 64 * 1024
"""The longest ``Link`` read for cursors. Sentry's is two URLs of one request (whose line
nginx refuses past 8 KB in front of Sentry) with their cursors, one field of a few KB;
eight fields of aiohttp's longest is room for a proxy's own too. More is no Sentry's."""
_SENTRY_LINKS = re.compile(
    r'<([^<>"&\s]*(?:&(?!cursor=)[^<>"&\s]*)*)&cursor=([^"\\>]*)>; rel="previous"; '
    r'results="(true|false)"; cursor="\2", '
    r'<\1&cursor=([^"\\>]*)>; rel="next"; results="(true|false)"; cursor="\4"'
)
"""Sentry's layout where no cursor holds a quote, backslash or ``>`` (every page, nearly):
one regex, and one reading, since each cursor ends at the first ``>``."""
_ENCODED_WORD = re.compile(r"[ \t]*=\?([^?\s*]+)(?:\*[^?\s]*)?\?([bBqQ])\?([^?\s]*)\?=[ \t]*")
"""One RFC 2047 encoded-word (``=?charset?b|q?text?=``, an RFC 2231 language ignored), with
the white space around it, which is no part of the text between two words."""
_ENCODED_START = re.compile(r"[ \t]*=\?")
_QUOTED_TEXT = re.compile(r"(?:[^=]|=[0-9A-Fa-f]{2})*")
_CHARSETS = frozenset({"utf-8", "iso8859-1", "ascii"})
"""Charsets an encoded-word may name: Django's ``utf-8``, and the two it contains."""
_QUOTED = 40
"""The longest charset name an error quotes."""


class LinkHeaderError(ValueError):
    """The Link header is not well-formed RFC 8288."""


@dataclass(frozen=True, slots=True)
class Link:
    """One link-value: its target and parameters (names lower-cased, values unquoted)."""

    url: str
    params: dict[str, str] = field(default_factory=dict)

    @property
    def rel(self) -> str | None:
        return self.params.get("rel")

    @property
    def results(self) -> bool | None:
        """``results="true"|"false"``; ``None`` when absent or not a boolean."""
        value = self.params.get("results", "").lower()
        if value == "true":
            return True
        if value == "false":
            return False
        return None

    @property
    def cursor(self) -> str | None:
        """The ``cursor`` parameter, else the URL's ``cursor`` query parameter (old servers)."""
        cursor = self.params.get("cursor")
        if cursor is not None:
            return cursor
        return cursor_from_url(self.url)


class PageLinks(msgspec.Struct, frozen=True, gc=False):
    """What a response says about its neighbours.

    ``next_cursor`` is set only when ``rel="next"`` has ``results="true"``: that, not the
    page's length, is the one signal that more data exists. ``paginated`` is false when the
    response had no ``rel="next"`` link (a single page): Sentry always sends one on a
    paginated answer, and a ``Link`` of some other kind (a proxy's ``rel=preload``) says
    nothing about pages.
    """

    next_cursor: str | None = None
    prev_cursor: str | None = None
    paginated: bool = False
    polling_cursor: str | None = None
    next_results: bool | None = None

    @property
    def has_next(self) -> bool:
        return self.next_cursor is not None


def link_header(headers: MultiMapping[str]) -> str | None:
    """All of a response's ``Link`` fields as one value (``None``: none at all).

    RFC 9110 5.3: several fields are one list joined by ``", "``. A ``Link`` may come split,
    or after a proxy's own (``rel=preload`` for Early Hints); reading the first field only
    would miss Sentry's ``rel="next"`` and end the stream as if it were complete.
    Each field is read back as the text the server meant (:func:`_wire_text`) before the
    fields are joined: RFC 2047 encodes one field, not the list.
    """
    fields = headers.getall("Link", ())
    if len(fields) == 1:
        return _wire_text(fields[0])
    return ", ".join(_wire_text(text) for text in fields) if fields else None


def _wire_text(value: str) -> str:
    """A field value as the server wrote it, from aiohttp's text of its bytes.

    Django writes a header value as latin-1 when it fits, else as RFC 2047 encoded-words
    (``ResponseHeaders._convert_to_charset(value, "latin-1", mime_encode=True)``): its
    bytes are never raw UTF-8. aiohttp read them as UTF-8, surrogate-escaping the bytes that
    are not; so they are read again as latin-1 always, even when they also made UTF-8
    (``É®`` is C9 AE, which UTF-8 reads as ``ɮ``). The result is text as the server meant
    it, which :func:`_field_text` leaves as it is.
    """
    if value.isascii():
        return _field_text(value)
    try:
        wire = value.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        return value  # surrogates no bytes give: a caller's own; _sendable refuses them
    return wire.decode("latin-1")


def _field_text(value: str) -> str:
    """A field value as the server wrote it, from text of unknown reading (a caller's).

    Text that holds surrogate escapes is aiohttp's reading of bytes that are not UTF-8:
    they are read again as latin-1 (Django's header charset; RFC 9110 5.5's obs-text), the
    whole value at once, as the server wrote it in one charset. Other text is taken as
    read already (a latin-1 reading, as ``http.client`` makes, or :func:`link_header`'s),
    so that reading a value twice changes nothing. A value that is all RFC 2047
    encoded-words (Django's for text outside latin-1) is decoded. Plain ASCII, the usual
    case, is returned as it is, unscanned beyond ``isascii``.
    """
    if value.isascii():
        return _encoded_words(value) if _ENCODED_START.match(value) else value
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        try:
            wire = value.encode("utf-8", "surrogateescape")
        except UnicodeEncodeError:
            return value  # surrogates no bytes give: a caller's own; _sendable refuses them
        try:
            return wire.decode("utf-8")
        except UnicodeDecodeError:
            return wire.decode("latin-1")
    return value


def _encoded_words(value: str) -> str:
    """A value made of RFC 2047 encoded-words, decoded; any other value as it is.

    Adjacent words of one charset are joined as bytes before decoding (an encoder may split
    a character between them). Raises :class:`LinkHeaderError` when a word does not decode.
    """
    pieces: list[tuple[str, bytes]] = []
    pos, end = 0, len(value)
    while pos < end:
        word = _ENCODED_WORD.match(value, pos)
        if word is None:
            return value
        charset, encoding, text = word.groups()
        pieces.append((_charset(charset), _word_bytes(encoding, text)))
        pos = word.end()
    out: list[str] = []
    start = 0
    for at in range(1, len(pieces) + 1):
        if at == len(pieces) or pieces[at][0] != pieces[start][0]:
            joined = b"".join(data for _, data in pieces[start:at])
            try:
                out.append(joined.decode(pieces[start][0]))
            except UnicodeDecodeError as exc:
                raise LinkHeaderError(f"RFC 2047 Link header is not {exc.encoding}") from None
            start = at
    return "".join(out)


def _charset(name: str) -> str:
    """An encoded-word's charset by its codec name; :class:`LinkHeaderError` for any other
    than :data:`_CHARSETS` (a codec such as ``unicode_escape`` could make any text)."""
    try:
        codec = codecs.lookup(name).name
    except LookupError:
        codec = ""
    if codec not in _CHARSETS:
        # Quoted whole or not at all: a server echoing the token there must not have a
        # piece of it shown, which no redactor recognises. A charset's name is short.
        shown = repr(name) if len(name) <= _QUOTED else f"of {len(name)} characters"
        raise LinkHeaderError(f"RFC 2047 Link header in charset {shown}")
    return codec


def _word_bytes(encoding: str, text: str) -> bytes:
    """The bytes an encoded-word's text stands for (``B``: base64, ``Q``: RFC 2047 4.2)."""
    try:
        if encoding in "bB":
            return base64.b64decode(text, validate=True)
        if _QUOTED_TEXT.fullmatch(text) is None:
            raise ValueError("'=' not followed by two hex digits")
        return binascii.a2b_qp(text.encode("ascii"), header=True)
    except (ValueError, binascii.Error) as exc:
        raise LinkHeaderError(f"RFC 2047 Link header does not decode: {exc}") from None


def cursor_from_url(url: str) -> str | None:
    """The ``cursor`` query parameter of a Link target, if it parses as a URL."""
    try:
        parsed = URL(url)
    except (ValueError, TypeError):
        return None
    return parsed.query.get("cursor")


def parse_link_header(value: str) -> list[Link]:
    """Parse an RFC 8288 ``Link`` header value into its link-values, in order.

    The value is first read back as the server wrote it (:func:`link_header` does that
    per field). Raises :class:`LinkHeaderError` naming the offending position on malformed
    input.
    """
    return _parse_links(_field_text(value))


def _parse_links(value: str) -> list[Link]:
    """:func:`parse_link_header` of a value already read back as the server wrote it."""
    links: list[Link] = []
    pos, end = 0, len(value)
    while True:
        pos = _SEPARATORS.match(value, pos).end()  # type: ignore[union-attr]
        if pos >= end:
            return links
        target = _TARGET.match(value, pos)
        if target is None:
            raise LinkHeaderError(f"expected '<url>' at position {pos} of Link header")
        pos = target.end()
        params: dict[str, str] = {}
        while True:
            param = _PARAM.match(value, pos)
            if param is None:
                break
            name, quoted, token = param.groups()
            if quoted is None:
                text = token or ""
            else:
                text = _ESCAPE.sub(r"\1", quoted) if "\\" in quoted else quoted
            # RFC 8288 3.3: the first occurrence of a parameter wins.
            params.setdefault(name.lower(), text)
            pos = param.end()
        tail = _END.match(value, pos)
        if tail is None:
            raise LinkHeaderError(f"unexpected text at position {pos} of Link header")
        pos = tail.end()
        links.append(Link(url=target.group(1).strip(), params=params))


def page_links(value: str | None) -> PageLinks:
    """Reduce a Link header to the cursors a paginator needs.

    Raises :class:`LinkHeaderError` when the header cannot be read, is longer than any
    Sentry sends (:data:`_MAX_LINK`: its reading would cost every page more the longer it
    is), or can be read as Sentry's layout in more than one way: a cursor guessed wrong
    skips or repeats rows. The value is read back as the server wrote it first, and a
    cursor that still holds a lone surrogate (text no bytes give) is refused: a query
    drops it, and the cursor sent would be another.
    """
    if value is None:
        return PageLinks()
    if len(value) > _MAX_LINK:
        raise LinkHeaderError(
            f"Link header of {len(value):,} characters; Sentry's is two URLs and their "
            f"cursors, so one longer than {_MAX_LINK:,} is not read"
        )
    value = _field_text(value)
    plain = _SENTRY_LINKS.fullmatch(value)
    if plain is not None:
        _, prev, prev_results, nxt, results = plain.groups()
        return _sendable(_sentry_links(prev, prev_results, nxt, results))
    sentry = _sentry_page_links(value)
    if sentry is not None:
        return _sendable(sentry)
    return _sendable(_parsed_page_links(value))


def _sendable(links: PageLinks) -> PageLinks:
    """``links``, unless a cursor holds a lone surrogate: :class:`LinkHeaderError`."""
    for cursor in (links.next_cursor, links.prev_cursor, links.polling_cursor):
        if cursor is None or cursor.isascii():
            continue
        try:
            cursor.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise LinkHeaderError(
                f"Link header cursor holds a lone surrogate at position {exc.start}, "
                "which no query can carry"
            ) from None
    return links


def _sentry_page_links(value: str) -> PageLinks | None:
    """Sentry's own layout, or ``None`` for any other header.

    Both links share one URL (``build_cursor_link`` of one request), which holds no
    ``&cursor=`` of its own (the request's cursor is dropped from it). Each cursor is written
    twice, raw, so it is the text that stands both after its URL's ``&cursor=`` and in its
    ``cursor`` parameter: every place the previous link may end is tried (a cursor may hold
    the very text that ends it), and the next link's cursor then follows from the length
    that is left. Plain string comparisons: no regex can backtrack on a hostile header.
    """
    if value[:1] != "<" or value[-1:] != '"':
        return None
    at = value.find(_URL_CURSOR, 1)
    if at < 0:
        return None
    start = at + len(_URL_CURSOR)
    url = value[1:at]
    found: PageLinks | None = None
    end = value.find(_PREVIOUS, start)
    while end >= 0:
        links = _sentry_reading(value, url, start, end)
        if links is not None:
            if found is not None and links != found:
                raise LinkHeaderError(
                    "Link header in Sentry's layout reads two ways: cursors "
                    f"{found.prev_cursor!r}/{found.polling_cursor!r} or "
                    f"{links.prev_cursor!r}/{links.polling_cursor!r}"
                )
            found = links
        end = value.find(_PREVIOUS, end + 1)
    return found


def _sentry_reading(value: str, url: str, start: int, end: int) -> PageLinks | None:
    """Sentry's layout read with the previous cursor ending at ``end``, else ``None``.

    ``D>; rel="next"; results="R"; cursor="D"`` at the end: its length tells ``D`` (``true``
    and ``false`` differ by one character, and ``D`` stands twice). Every fixed text is
    checked at its place first, at a cost that does not grow with the header; the URL and
    the cursors, whose copy and comparison do, only where all of it stands. A cursor
    holding the layout's own text a thousand times is then one scan, not a copy of the
    header per occurrence; only a header built to put every fixed text in place at many
    endings costs more, within the length :func:`page_links` reads.
    """
    here = end + len(_PREVIOUS)
    prev_results = _results_at(value, here)
    if prev_results is None:
        return None
    size = end - start
    twin = here + len(prev_results) + len(_CURSOR)
    between = twin + size
    nxt = between + len(_BETWEEN) + len(url) + len(_URL_CURSOR)
    left = len(value) - nxt - len(_NEXT) - len(_CURSOR) - 1
    results = _RESULTS[left % 2]
    next_size = (left - len(results)) // 2
    after = nxt + next_size + len(_NEXT) + len(results)
    if (
        next_size < 0
        or not value.startswith(_CURSOR, twin - len(_CURSOR))
        or not value.startswith(_BETWEEN, between)
        or not value.startswith(_URL_CURSOR, nxt - len(_URL_CURSOR))
        or not value.startswith(_NEXT, nxt + next_size)
        or not value.startswith(results, after - len(results))
        or not value.startswith(_CURSOR, after)
        or not value.startswith(url, between + len(_BETWEEN))
    ):
        return None
    prev = value[start:end]
    cursor = value[nxt : nxt + next_size]
    if not value.startswith(prev, twin) or not value.startswith(cursor, after + len(_CURSOR)):
        return None
    return _sentry_links(prev, prev_results, cursor, results)


def _results_at(value: str, at: int) -> str | None:
    """``true`` or ``false`` at ``at`` in ``value``, else ``None``."""
    for results in _RESULTS:
        if value.startswith(results, at):
            return results
    return None


def _sentry_links(prev: str, prev_results: str, nxt: str, results: str) -> PageLinks:
    """What Sentry's layout says, read as the tokenizer reads any other: a cursor counts
    only with ``results="true"``."""
    more = results == "true"
    return PageLinks(
        next_cursor=nxt if more and nxt else None,
        prev_cursor=prev if prev_results == "true" and prev else None,
        paginated=True,
        polling_cursor=nxt,
        next_results=more,
    )


def _parsed_page_links(value: str) -> PageLinks:
    """:func:`page_links` through the RFC 8288 tokenizer: any layout, any order."""
    if not value.strip():
        return PageLinks()
    next_cursor = prev_cursor = polling = None
    next_results: bool | None = None
    paginated = False
    for link in _parse_links(value):
        rels = (link.rel or "").lower().split()
        if "next" in rels:
            paginated = True
            cursor = link.cursor
            polling = cursor
            next_results = link.results
            if link.results is not False and cursor:
                # results="true", or a server that omits results: trust the cursor.
                next_cursor = cursor
        elif "previous" in rels or "prev" in rels:
            cursor = link.cursor
            if link.results is not False and cursor:
                prev_cursor = cursor
    return PageLinks(
        next_cursor=next_cursor,
        prev_cursor=prev_cursor,
        paginated=paginated,
        polling_cursor=polling,
        next_results=next_results,
    )
