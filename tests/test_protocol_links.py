"""Link header and cursor parsing: pure, no network."""

from __future__ import annotations

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


_LINK_TEXT = st.text(alphabet=st.sampled_from(list(' ,;:="<>\\abc0-1')), max_size=12)


@given(
    prev_results=st.sampled_from(["true", "false", "True", "maybe"]),
    next_results=st.sampled_from(["true", "false", "FALSE", ""]),
    prev=_LINK_TEXT,
    nxt=_LINK_TEXT,
    url=_LINK_TEXT,
    gap=st.sampled_from([", ", ",", " , ", ",\t"]),
)
def test_the_sentry_layout_shortcut_agrees_with_the_tokenizer(
    prev_results: str, next_results: str, prev: str, nxt: str, url: str, gap: str
) -> None:
    """Sentry's own layout takes a one-regex path; whatever it matches, it must read as the
    RFC 8288 tokenizer does (and whatever it does not match falls through to it)."""
    from sentry_async._protocol.links import _SENTRY_LINKS, _parsed_page_links

    header = (
        f'<https://h/{url}>; rel="previous"; results="{prev_results}"; cursor="{prev}"{gap}'
        f'<https://h/{url}?cursor=u>; rel="next"; results="{next_results}"; cursor="{nxt}"'
    )
    try:
        expected = _parsed_page_links(header)
    except LinkHeaderError:
        assert _SENTRY_LINKS.fullmatch(header) is None
        with pytest.raises(LinkHeaderError):
            page_links(header)
        return
    assert page_links(header) == expected


def test_the_sentry_layout_takes_the_shortcut() -> None:
    from sentry_async._protocol.links import _SENTRY_LINKS

    assert _SENTRY_LINKS.fullmatch(FIRST) is not None
    assert _SENTRY_LINKS.fullmatch(LAST) is not None
