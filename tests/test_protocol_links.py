"""Link header and cursor parsing: pure, no network."""

from __future__ import annotations

from contextlib import suppress
from typing import SupportsIndex

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sentry_async._protocol.links import cursor_from_url
from sentry_async.sansio import LinkHeaderError, page_links, parse_link_header

FIRST = (
    "<https://sentry.io/api/0/organizations/acme/issues/123456/events/?&cursor=0:0:1>; "
    'rel="previous"; results="false"; cursor="0:0:1", '
    "<https://sentry.io/api/0/organizations/acme/issues/123456/events/?&cursor=0:100:0>; "
    'rel="next"; results="true"; cursor="0:100:0"'
)
LAST = (
    '<https://x/api/0/organizations/o/members/?&cursor=100:-1:1>; rel="previous"; '
    'results="false"; cursor="100:-1:1", <https://x/api/0/organizations/o/members/?&cursor=100:1:0>;'
    ' rel="next"; results="false"; cursor="100:1:0"'
)


def test_first_page_follows_next_only() -> None:
    links = page_links(FIRST)
    assert links.next_cursor == "0:100:0"
    assert links.prev_cursor is None
    assert links.paginated
    assert links.has_next


def test_results_false_ends_even_though_cursor_present() -> None:
    links = page_links(LAST)
    assert links.next_cursor is None
    assert links.polling_cursor == "100:1:0"
    assert not links.has_next


def test_no_header_is_a_single_page() -> None:
    assert page_links(None) == page_links("") == page_links("   ")
    assert not page_links(None).paginated
    assert page_links(None).next_cursor is None


def test_legacy_header_without_cursor_param_falls_back_to_url() -> None:
    header = (
        "<https://sentry.io/api/0/organizations/acme/projects/1/groups/?&cursor=1420837590:0:1>; "
        'rel="previous"; results="false", '
        "<https://sentry.io/api/0/organizations/acme/projects/1/groups/?&cursor=1420837533:0:0>; "
        'rel="next"; results="true"'
    )
    assert page_links(header).next_cursor == "1420837533:0:0"


def test_commas_and_semicolons_inside_url_and_cursor() -> None:
    header = (
        '<https://h/api/0/x/?query=a,b;c&field=count()&cursor=s:a,b;c:0:0>; rel="previous"; '
        'results="false"; cursor="s:a,b;c:0:1", '
        '<https://h/api/0/x/?query=a,b;c&cursor=s:a,b;c:0:0>; rel="next"; results="true"; '
        'cursor="s:a,b;c:100:0"'
    )
    links = parse_link_header(header)
    assert [link.rel for link in links] == ["previous", "next"]
    assert links[0].url.startswith("https://h/api/0/x/?query=a,b;c")
    assert page_links(header).next_cursor == "s:a,b;c:100:0"


def test_quoted_string_escapes_and_case_insensitive_names() -> None:
    header = '<https://h/x>; REL="next"; Results="TRUE"; cursor="a\\"b"'
    (link,) = parse_link_header(header)
    assert link.rel == "next"
    assert link.results is True
    assert link.cursor == 'a"b'


def test_first_parameter_occurrence_wins() -> None:
    (link,) = parse_link_header('<https://h/x>; rel="next"; rel="previous"; cursor="1"')
    assert link.rel == "next"


def test_missing_results_trusts_cursor() -> None:
    header = '<https://sentry.io/api/0/o/dash/?cursor=dashboard-cursor>; rel="next"; cursor="c2"'
    assert page_links(header).next_cursor == "c2"


def test_cursor_with_plus_is_kept_verbatim() -> None:
    header = '<https://h/x?&cursor=a+b>; rel="next"; results="true"; cursor="a+b/c="'
    assert page_links(header).next_cursor == "a+b/c="


@pytest.mark.parametrize(
    "header",
    [
        "https://no-brackets; rel=next",
        "<https://unterminated",
        '<https://h/x>; rel="unterminated',
        "<https://h/x> garbage",
        "<https://h/x>; =value",
    ],
)
def test_malformed_headers_raise_typed_error(header: str) -> None:
    with pytest.raises(LinkHeaderError):
        parse_link_header(header)


def test_cursor_from_url() -> None:
    assert cursor_from_url("https://h/x/?&cursor=0:100:0") == "0:100:0"
    assert cursor_from_url("https://h/x/") is None
    assert cursor_from_url("http://[broken") is None


@given(st.text())
def test_any_string_parses_or_raises_typed_error(header: str) -> None:
    try:
        links = page_links(header)
    except LinkHeaderError:
        return
    assert links.next_cursor is None or isinstance(links.next_cursor, str)


_cursor = st.text(
    alphabet=st.characters(blacklist_characters='"\\', blacklist_categories=("Cs",)), min_size=1
)


@given(_cursor, _cursor, st.booleans())
def test_roundtrip_of_generated_headers(prev: str, nxt: str, more: bool) -> None:
    results = "true" if more else "false"
    header = (
        f'<https://h/x/?&cursor=p>; rel="previous"; results="false"; cursor="{prev}", '
        f'<https://h/x/?&cursor=n>; rel="next"; results="{results}"; cursor="{nxt}"'
    )
    links = page_links(header)
    assert links.next_cursor == (nxt if more else None)
    assert links.polling_cursor == nxt


_LINK_TEXT = st.text(alphabet=st.sampled_from(list(" ,;:=<&abc0-1")), max_size=12)
"""Text the tokenizer reads as it stands: no quote, backslash or ``>``."""


@given(
    prev_results=st.sampled_from(["true", "false", "True", "maybe"]),
    next_results=st.sampled_from(["true", "false", "FALSE", ""]),
    prev=_LINK_TEXT,
    nxt=_LINK_TEXT,
    url=_LINK_TEXT,
    gap=st.sampled_from([", ", ",", " , ", ",\t"]),
)
def test_sentrys_layout_reads_as_the_tokenizer_wherever_both_can(
    prev_results: str, next_results: str, prev: str, nxt: str, url: str, gap: str
) -> None:
    """Sentry's own layout is read by its fixed text; wherever the tokenizer can read the
    same header, both must agree (and whatever is not that layout falls through to it)."""
    from sentry_async._protocol.links import (
        _SENTRY_LINKS,
        _parsed_page_links,
        _sentry_page_links,
    )

    header = (
        f'<https://h/{url}?&cursor={prev}>; rel="previous"; results="{prev_results}"; '
        f'cursor="{prev}"{gap}'
        f'<https://h/{url}?&cursor={nxt}>; rel="next"; results="{next_results}"; cursor="{nxt}"'
    )
    assert page_links(header) == _parsed_page_links(header)
    standard = {prev_results, next_results} <= {"true", "false"} and gap == ", "
    assert (_sentry_page_links(header) is not None) == standard
    assert _SENTRY_LINKS.fullmatch(header) is None or _sentry_page_links(header) == page_links(header)


def test_the_sentry_layout_takes_the_shortcut() -> None:
    from sentry_async._protocol.links import _SENTRY_LINKS, _sentry_page_links

    assert _SENTRY_LINKS.fullmatch(FIRST) is not None and _SENTRY_LINKS.fullmatch(LAST) is not None
    assert _sentry_page_links(FIRST) == page_links(FIRST)
    assert _sentry_page_links(LAST) == page_links(LAST)
    assert _sentry_page_links(FIRST) is not None and _sentry_page_links(LAST) is not None


def sentry_link(prev: str, nxt: str, *, prev_results: str = "true", more: str = "true") -> str:
    """A Link as Sentry's ``build_cursor_link`` writes it: each cursor raw, unescaped, both in
    the URL and in the quoted ``cursor`` parameter (string cursors carry a rule's name)."""
    url = "https://sentry.io/api/0/organizations/acme/combined-rules/?sort=name&per_page=2"
    return (
        f'<{url}&cursor={prev}>; rel="previous"; results="{prev_results}"; cursor="{prev}", '
        f'<{url}&cursor={nxt}>; rel="next"; results="{more}"; cursor="{nxt}"'
    )


@pytest.mark.parametrize(
    "cursor",
    [
        "disk c:\\ full:0:0",
        "latency > 500ms:0:0",
        'checkout "v2" errors:0:1',
        'a, b; "c" > d:3:0',
        'a\\"b\\:0:0',
        '>; rel="next"; results="false"; cursor="x:0:0',
        '", <https://x/?&cursor=y:0:0',
    ],
)
def test_raw_string_cursors_in_sentrys_layout_are_read_exactly(cursor: str) -> None:
    """Sentry escapes nothing: a backslash must not be taken for an escape (the client would
    send a different cursor and skip or repeat rows), a ``>`` or ``"`` must not end the
    target or the quoted string."""
    links = page_links(sentry_link("zulu:0:1", cursor))
    assert (links.next_cursor, links.prev_cursor) == (cursor, "zulu:0:1")
    links = page_links(sentry_link(cursor, "alpha:0:0"))
    assert (links.next_cursor, links.prev_cursor) == ("alpha:0:0", cursor)
    links = page_links(sentry_link(cursor, cursor, prev_results="false", more="false"))
    assert (links.next_cursor, links.polling_cursor, links.next_results) == (None, cursor, False)


_RAW_CURSOR = st.lists(
    st.sampled_from(
        [
            *("a", ":0:0", "\\", '"', ">", "<", ",", ";", " ", "&cursor=", '"; cursor="', ", <"),
            *('>; rel="previous"; results="true', '>; rel="next"; results="false', "é"),
        ]
    ),
    max_size=8,
).map("".join)


@given(_RAW_CURSOR, _RAW_CURSOR, st.booleans(), st.booleans())
def test_any_cursor_sentry_writes_is_read_back_exactly(
    prev: str, nxt: str, has_prev: bool, more: bool
) -> None:
    header = sentry_link(
        prev, nxt, prev_results="true" if has_prev else "false", more="true" if more else "false"
    )
    links = page_links(header)
    assert links.next_cursor == (nxt if more and nxt else None)
    assert links.prev_cursor == (prev if has_prev and prev else None)
    assert (links.polling_cursor, links.next_results, links.paginated) == (nxt, more, True)


def test_a_raw_quote_that_cannot_be_tied_to_the_url_is_a_typed_error() -> None:
    """Sentry's layout whose URL cursor differs from its ``cursor`` parameter, with a raw
    quote in it, has no one reading: a clear error, never a guessed cursor."""
    url = "https://h/x/?"
    header = (
        f'<{url}&cursor=a:0:1>; rel="previous"; results="false"; cursor="a:0:1", '
        f'<{url}&cursor=b%22c:0:0>; rel="next"; results="true"; cursor="b"c:0:0"'
    )
    with pytest.raises(LinkHeaderError):
        page_links(header)


def test_several_link_fields_are_read_as_one_list() -> None:
    """RFC 9110 5.3: several ``Link`` fields are one list, joined by ``", "`` (a split
    ``Link``, or a proxy's own ``Link`` put before Sentry's)."""
    from multidict import CIMultiDict, CIMultiDictProxy

    from sentry_async._protocol.links import link_header

    prev, nxt = FIRST.split(", <")
    nxt = "<" + nxt
    split = CIMultiDictProxy(CIMultiDict([("Link", prev), ("Content-Type", "x"), ("link", nxt)]))
    assert link_header(split) == FIRST
    assert page_links(link_header(split)).next_cursor == "0:100:0"
    preload = "</static/app.css>; rel=preload; as=style"
    fields = CIMultiDictProxy(CIMultiDict([("Link", preload), ("Link", FIRST)]))
    assert page_links(link_header(fields)).next_cursor == "0:100:0"
    assert link_header(CIMultiDictProxy(CIMultiDict([("Link", FIRST)]))) == FIRST
    assert link_header(CIMultiDictProxy(CIMultiDict())) is None


def test_a_link_without_next_or_previous_is_no_pagination() -> None:
    """A proxy's preload ``Link``, or a previous link alone, says nothing about a next page
    (Sentry always sends ``rel="next"``): read as no ``Link`` at all."""
    links = page_links("</static/app.css>; rel=preload; as=style")
    assert not links.paginated and links.next_cursor is None
    assert not page_links('<https://h/x/?&cursor=0:0:1>; rel="previous"; results="true"').paginated
    assert page_links('<https://h/x/?&cursor=0:9:0>; rel="next"; results="false"').paginated


class _CountingStr(str):
    """A header that counts the characters its slices copy: the work a reading does
    beyond its scans, which must stay linear in the header's length."""

    copied = 0

    def __getitem__(self, key: SupportsIndex | slice) -> str:
        part = super().__getitem__(key)
        _CountingStr.copied += len(part)
        return part


_RUN = '>; rel="previous"; results="true'
"""The text that ends the previous link, which a raw cursor may hold any number of times."""


@pytest.mark.parametrize(
    "header",
    [
        '<https://h/x/?a=1&cursor=' + _RUN * 1900 + '"',
        sentry_link((_RUN + ", ") * 900, "0:100:0", prev_results="false"),
        sentry_link("0:0:1", (_RUN + '"; cursor="') * 700),
    ],
    ids=["runs", "runs in the previous cursor", "runs in the next cursor"],
)
def test_reading_sentrys_layout_copies_text_in_proportion_to_the_header(header: str) -> None:
    """Each place the previous link may end is tried by its fixed text first; a cursor is
    copied only where the whole layout stands around it. Copying it at every ending
    tried made a 1 MB header take seconds (quadratic), blocking the event loop."""
    assert 60_000 < len(header) <= 64 * 1024
    _CountingStr.copied = 0
    with suppress(LinkHeaderError):
        page_links(_CountingStr(header))
    assert _CountingStr.copied <= 3 * len(header), (_CountingStr.copied, len(header))


def test_a_link_longer_than_sentry_sends_is_refused_unread() -> None:
    """Sentry's ``Link`` is two URLs (a request line: at most 8 KB in front of Sentry) and
    their cursors; 1 MB of ``Link`` fields is not Sentry's, and is refused by its length."""
    limit = 64 * 1024
    with pytest.raises(LinkHeaderError, match=r"Link header of [\d,]+ characters.* 65,536"):
        page_links(sentry_link("x" * (limit // 2), "0:100:0"))
    with pytest.raises(LinkHeaderError, match="Link header of 1,048,"):
        page_links(sentry_link("0:0:1", "y" * 2**19))
    room = (limit - len(sentry_link("0:0:1", ""))) // 2
    assert page_links(sentry_link("0:0:1", "z" * room)).next_cursor == "z" * room
