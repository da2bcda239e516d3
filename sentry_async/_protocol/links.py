"""Sentry's ``Link`` header and cursors, as pure functions.

Sentry writes ``<url>; rel="previous"; results="false"; cursor="0:0:1", <url>; rel="next";
results="true"; cursor="0:100:0"``. A cursor is opaque and may contain ``:`` (string
cursors) or, in principle, ``,`` and ``;``; the URL is percent-encoded. So the header is
tokenised as RFC 8288 says (angle-bracketed targets, quoted-string parameters) rather than
split on commas and semicolons, which is what breaks other clients (aiohttp's
``ClientResponse.links`` included: it splits parameters on ``;``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from yarl import URL

__all__ = [
    "Link",
    "LinkHeaderError",
    "PageLinks",
    "cursor_from_url",
    "page_links",
    "parse_link_header",
]

_TOKEN_CHARS = frozenset(
    "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
)
_WS = " \t"


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


@dataclass(frozen=True, slots=True)
class PageLinks:
    """What a response says about its neighbours.

    ``next_cursor`` is set only when ``rel="next"`` has ``results="true"``: that, not the
    page's length, is the one signal that more data exists. ``paginated`` is false when the
    response had no Link header at all (a single page).
    """

    next_cursor: str | None = None
    prev_cursor: str | None = None
    paginated: bool = False
    polling_cursor: str | None = None

    @property
    def has_next(self) -> bool:
        return self.next_cursor is not None


def cursor_from_url(url: str) -> str | None:
    """The ``cursor`` query parameter of a Link target, if it parses as a URL."""
    try:
        parsed = URL(url)
    except (ValueError, TypeError):
        return None
    return parsed.query.get("cursor")


def parse_link_header(value: str) -> list[Link]:
    """Parse an RFC 8288 ``Link`` header value into its link-values, in order.

    Raises :class:`LinkHeaderError` naming the offending position on malformed input.
    """
    links: list[Link] = []
    pos, end = 0, len(value)
    while True:
        pos = _skip(value, pos, _WS + ",")
        if pos >= end:
            return links
        if value[pos] != "<":
            raise LinkHeaderError(f"expected '<' at position {pos} of Link header")
        close = value.find(">", pos + 1)
        if close < 0:
            raise LinkHeaderError(f"unterminated '<' at position {pos} of Link header")
        url = value[pos + 1 : close].strip()
        pos = close + 1
        params: dict[str, str] = {}
        while True:
            pos = _skip(value, pos, _WS)
            if pos >= end or value[pos] == ",":
                break
            if value[pos] != ";":
                raise LinkHeaderError(f"expected ';' or ',' at position {pos} of Link header")
            pos = _skip(value, pos + 1, _WS)
            name, pos = _read_token(value, pos)
            if not name:
                if pos >= end or value[pos] == ",":
                    break
                raise LinkHeaderError(f"expected a parameter name at position {pos} of Link header")
            pos = _skip(value, pos, _WS)
            param_value = ""
            if pos < end and value[pos] == "=":
                pos = _skip(value, pos + 1, _WS)
                if pos < end and value[pos] == '"':
                    param_value, pos = _read_quoted(value, pos)
                else:
                    param_value, pos = _read_token(value, pos)
            # RFC 8288 3.3: the first occurrence of a parameter wins.
            params.setdefault(name.lower(), param_value)
        links.append(Link(url=url, params=params))


def page_links(value: str | None) -> PageLinks:
    """Reduce a Link header to the cursors a paginator needs."""
    if value is None or not value.strip():
        return PageLinks()
    next_cursor = prev_cursor = polling = None
    for link in parse_link_header(value):
        rels = (link.rel or "").lower().split()
        if "next" in rels:
            cursor = link.cursor
            polling = cursor
            if link.results is not False and cursor:
                # results="true", or a server that omits results: trust the cursor.
                next_cursor = cursor
        elif "previous" in rels or "prev" in rels:
            cursor = link.cursor
            if link.results is not False and cursor:
                prev_cursor = cursor
    return PageLinks(
        next_cursor=next_cursor, prev_cursor=prev_cursor, paginated=True, polling_cursor=polling
    )


def _skip(value: str, pos: int, chars: str) -> int:
    end = len(value)
    while pos < end and value[pos] in chars:
        pos += 1
    return pos


def _read_token(value: str, pos: int) -> tuple[str, int]:
    start, end = pos, len(value)
    while pos < end and value[pos] in _TOKEN_CHARS:
        pos += 1
    return value[start:pos], pos


def _read_quoted(value: str, pos: int) -> tuple[str, int]:
    out: list[str] = []
    pos += 1
    end = len(value)
    while pos < end:
        char = value[pos]
        if char == "\\" and pos + 1 < end:
            out.append(value[pos + 1])
            pos += 2
            continue
        if char == '"':
            return "".join(out), pos + 1
        out.append(char)
        pos += 1
    raise LinkHeaderError("unterminated quoted string in Link header")
