"""The page fetcher behind :meth:`SentryClient.paginate`: one request per page, decoded as
the paginator's item type, with the page's Link, hits and rate-limit facts."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any

import msgspec
from yarl import URL

from ._decoding import MAX_BOUNDED_ITEMS, data_within, decode_body, decode_items, no_body
from ._protocol.cursors import OVERSIZE_FACTOR, BodyFingerprints
from ._protocol.hosts import endpoint_group
from ._protocol.links import link_header
from ._protocol.params import Params, encode_params
from ._protocol.ratelimit import header_int
from ._transport import Response
from .pagination import PageFetcher, RawPage, before_decoding, link_watch, walk_memory

if TYPE_CHECKING:
    from .client import SentryClient

__all__ = ["SMALL_PAGE", "page_fetchers"]

SMALL_PAGE = 1 << 20
"""Bytes up to which a page wrapped in an object (``{"data": [...]}``) is decoded without
counting its items first: its items take at most some 36 times that, and a page of 100
rows is far smaller. A larger page with more separators than items allowed is counted
first (one more scan, for a rare page)."""


def page_fetchers(
    client: SentryClient,
    path: str,
    path_params: Mapping[str, str | int] | None,
    *,
    root: URL | None,
    base: list[tuple[str, str]],
    lazy_params: Callable[[], Awaitable[Params]] | None,
    page_size_param: str | None,
    page_type: Callable[[Any], Any] | None,
    envelope: Callable[[Any], tuple[list[Any], Any]] | None,
) -> Callable[[Any], PageFetcher]:
    """Item type -> a fetcher of pages of that type (what ``Paginator.as_type`` swaps)."""
    group = endpoint_group("GET", path)
    resolved: list[list[tuple[str, str]]] = []
    # Each page rebuilds the path as given: a walk that followed a renamed project keeps
    # it in its own memory for its next pages (one 302 a walk, not one a page).
    follows = "{project}" in path

    def fetcher(item_type: Any) -> PageFetcher:
        decode_type = list[item_type] if page_type is None else page_type(item_type)
        # Raw items are views of the body, nothing for the collector to walk: waiting to
        # decode them would only add a scheduler pass.
        gated = item_type is not msgspec.Raw
        plain_list = page_type is None and envelope is None
        fingerprint = BodyFingerprints()

        async def fetch(page_cursor: str | None, size: int | None) -> RawPage:
            moves = walk_memory() if follows else None
            query = list(base)
            if lazy_params is not None:
                if not resolved:
                    resolved.append(encode_params(await lazy_params()))
                query.extend(resolved[0])
            if size is not None and page_size_param is not None:
                query.append((page_size_param, str(size)))
            if page_cursor is not None:
                query.append(("cursor", page_cursor))

            def announce(response: Response) -> Awaitable[None] | None:
                return before_decoding(fetch, page_cursor, link_header(response.headers), gated)

            limit = None if size is None else size * OVERSIZE_FACTOR
            if limit is not None and limit > MAX_BOUNDED_ITEMS:
                limit = None

            def parse(response: Response) -> tuple[Response, Any]:
                body = response.body
                if not body or body.isspace():
                    # Sentry renders an empty page as ``[]`` (or its envelope), never as
                    # nothing: no body is a page cut short (a connection closed after the
                    # headers), resent as one. Whatever the page type allows, its decoding
                    # below refuses a blank body the same way.
                    no_body(response, decode_type)
                if limit is None or not plain_list:
                    if (
                        limit is not None
                        and len(body) > SMALL_PAGE
                        and body.count(b",") >= limit
                        and not data_within(response, limit)
                    ):
                        return response, None
                    return response, decode_body(response, decode_type, resend=True)
                # More items than the walk allows (OversizedPage) are refused unbuilt.
                return response, decode_items(response, item_type, limit)

            on_headers = link_watch(fetch, page_cursor)

            async def once(page_url: URL) -> tuple[Response, Any]:
                return await client._get_transport().send_decoded(
                    "GET",
                    page_url,
                    group=group,
                    params=query,
                    idempotent=True,
                    decode=parse,
                    before_decode=announce,
                    on_headers=on_headers,
                )

            response, body = await client._send_following(
                "GET", path, path_params, once, root, moves
            )
            if body is None and limit is not None:
                # Refused undecoded: more items than the walk allows.
                return RawPage(items=[], link=link_header(response.headers), more_than=limit)
            if envelope is not None:
                items, meta = envelope(body)
            else:
                items, meta = body, None
            headers = response.headers
            return RawPage(
                items=items,
                link=link_header(headers),
                hits=header_int(headers.get("X-Hits")),
                max_hits=header_int(headers.get("X-Max-Hits")),
                rate_limit=response.rate_limit,
                meta=meta,
                fingerprint=fingerprint(response.body),
                direct_hit=headers.get("X-Sentry-Direct-Hit") == "1",
                body=response.body,
            )

        return fetch

    return fetcher

