"""Sentry's ``Link`` header and cursors, as pure functions.

Sentry writes ``<url>; rel="previous"; results="false"; cursor="0:0:1", <url>; rel="next";
results="true"; cursor="0:100:0"``. A cursor is opaque and may contain ``:`` (string
cursors) or, in principle, ``,`` and ``;``; the URL is percent-encoded. So the header is
tokenised as RFC 8288 says (angle-bracketed targets, quoted-string parameters) rather than
split on commas and semicolons, which is what breaks other clients (aiohttp's
``ClientResponse.links`` included: it splits parameters on ``;``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import msgspec
from yarl import URL

__all__ = [
    "Link",
    "LinkHeaderError",
    "PageLinks",
    "cursor_from_url",
    "page_links",
    "parse_link_header",
]

_TOKEN = r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+"
_SEPARATORS = re.compile(r"[ \t,]*")
_TARGET = re.compile(r"<([^>]*)>")
_PARAM = re.compile(rf'[ \t]*;[ \t]*({_TOKEN})[ \t]*(?:=[ \t]*(?:"((?:[^"\\]|\\.)*)"|({_TOKEN})))?')
_END = re.compile(r"[ \t]*(?:;[ \t]*)*(?:,|$)")
_ESCAPE = re.compile(r"\\(.)", re.DOTALL)
_SENTRY_LINKS = re.compile(
    r'<[^>]*>; rel="previous"; results="(true|false)"; cursor="([^"\\]*)", '
    r'<[^>]*>; rel="next"; results="(true|false)"; cursor="([^"\\]*)"'
)
"""Exactly what Sentry's ``Link`` header looks like; anything else takes the full parser."""


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
    response had no Link header at all (a single page).
    """

    next_cursor: str | None = None
    prev_cursor: str | None = None
    paginated: bool = False
    polling_cursor: str | None = None
    next_results: bool | None = None

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
    """Reduce a Link header to the cursors a paginator needs."""
    if value is None:
        return PageLinks()
    sentry = _SENTRY_LINKS.fullmatch(value)
    if sentry is not None:
        # Sentry's own layout (one regex instead of the tokenizer: this runs every page).
        # Same results as the loop below: the cursor counts only with results="true".
        prev_results, prev, next_results, nxt = sentry.groups()
        more = next_results == "true"
        return PageLinks(
            next_cursor=nxt if more and nxt else None,
            prev_cursor=prev if prev_results == "true" and prev else None,
            paginated=True,
            polling_cursor=nxt,
            next_results=more,
        )
    return _parsed_page_links(value)


def _parsed_page_links(value: str) -> PageLinks:
    """:func:`page_links` through the RFC 8288 tokenizer: any layout, any order."""
    if not value.strip():
        return PageLinks()
    next_cursor = prev_cursor = polling = None
    next_results: bool | None = None
    for link in parse_link_header(value):
        rels = (link.rel or "").lower().split()
        if "next" in rels:
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
        paginated=True,
        polling_cursor=polling,
        next_results=next_results,
    )
