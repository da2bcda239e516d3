"""Organizations: the list a token can see (in every region), one org's detail, its region."""

from __future__ import annotations

import builtins
import logging
from collections.abc import Hashable
from typing import TYPE_CHECKING, Any, cast

import msgspec
from yarl import URL

from ..api.organizations import OrganizationsAPI
from ..errors import DecodeError, Forbidden, NotFound
from ..models import Organization, OwnedOrganization
from ..pagination import PageFetcher, Paginator, RawPage
from ._base import IdOrSlug

if TYPE_CHECKING:
    from ..client import SentryClient

__all__ = ["OrganizationsResource"]

logger = logging.getLogger("sentry_async")

_SORT_BY = "members"
"""The one ``sortBy`` Sentry's organization list implements. It answers any other value
newest first without a word: ``events`` never sorted (the server failed on it, then dropped
it) and ``projects`` was dropped in 2026."""
_REGION_MARK = "@"
"""Cursors of the merged list are ``<region index>@<that region's cursor>``."""


class _Region(msgspec.Struct):
    name: str
    url: str


class _Regions(msgspec.Struct):
    regions: list[_Region] = []


class _Keys(msgspec.Struct):
    """What an organization is named by in a path: Sentry takes its id or its slug."""

    slug: str
    id: str | int | None = None


def _split(cursor: str | None) -> tuple[int, str | None]:
    if cursor is None:
        return 0, None
    head, mark, rest = cursor.partition(_REGION_MARK)
    if mark and head.isascii() and head.isdigit():
        return int(head), rest or None
    return 0, cursor


def _trust(client: SentryClient, region_url: str, *keys: str | int | None) -> None:
    """Route the organization's requests to its region, whether it is named by id or slug."""
    client._trust_orgs(
        region_url, dict.fromkeys(str(k) for k in keys if k is not None and k != "")
    )


def _next_link(cursor: str) -> str:
    return f'<?cursor={cursor}>; rel="next"; results="true"; cursor="{cursor}"'


_LAST_LINK = '<?>; rel="next"; results="false"'
"""The merged list's end, said as Sentry says it: a page with no ``Link`` after one that
promised more is no answer, not the end."""


class OrganizationsResource(OrganizationsAPI):
    """``client.organizations``."""

    __slots__ = ()

    def list(
        self,
        *,
        query: str | None = None,
        sort_by: str | None = None,
        page_size: int = 100,
        cursor: str | None = None,
        skip: int = 0,
        limit: int | None = None,
    ) -> Paginator[Organization]:
        """The organizations the token can see, in every region.

        On sentry.io an organization lives in one region (``us.sentry.io``,
        ``de.sentry.io``) and each region lists only its own: this asks
        ``/users/me/regions/`` first and walks each region's list in turn (lazily, one page
        at a time), and routes each organization's later calls to its region. On
        sentry.io, a region host the token must not go to is an
        :class:`~sentry_async.UntrustedHost` error; a self-hosted server's region URL (its
        ``system.url-prefix``) that the token must not go to is ignored. Servers without
        that endpoint (older self-hosted) are listed from the base URL.

        Region by region, each region's list in its own order: newest first, or most
        members first with ``sort_by="members"``. Each region pages its list separately, so
        the order holds within a region, not across regions.
        """
        if sort_by is not None and sort_by != _SORT_BY:
            raise ValueError(
                f"sort_by must be {_SORT_BY!r}, the only sort Sentry implements (got {sort_by!r});"
                " leave it out for the newest first"
            )
        client = self._client
        params: dict[str, Any] = {"query": query, "sortBy": sort_by}
        client.url_for("/organizations/")  # the same argument checks as a plain list

        def fetcher(item_type: Any) -> PageFetcher:
            decoder = msgspec.json.Decoder(cast(Hashable, item_type))
            keys_decoder = msgspec.json.Decoder(_Keys)

            async def fetch(page_cursor: str | None, size: int | None) -> RawPage:
                regions = await self.regions()
                index, inner = _split(page_cursor)
                if index >= len(regions):
                    raise ValueError(
                        client._redact(f"cursor {page_cursor!r} names no known region")
                    )
                _, base = regions[index]
                root = client.api_root_of(base)
                one_page: Paginator[msgspec.Raw] = client.paginate(
                    "/organizations/",
                    params=params,
                    type=msgspec.Raw,
                    root=root,
                    page_size=size or page_size,
                    cursor=inner,
                    max_pages=1,
                )
                fetched = [got async for got in one_page.pages()]
                page = fetched[0] if fetched else None
                raws: list[msgspec.Raw] = page.items if page is not None else []
                url = client._redact(str(root) + "/organizations/")
                items: list[Any] = []
                for raw in raws:
                    failed: DecodeError | None = None
                    try:
                        items.append(decoder.decode(raw))
                        keys = keys_decoder.decode(raw)
                    except (msgspec.ValidationError, msgspec.DecodeError) as exc:
                        failed = DecodeError(
                            client._redact(str(exc)),
                            method="GET",
                            url=url,
                            type_name="Organization",
                        )
                    if failed is not None:
                        # Outside the ``except``: msgspec's error, which may quote a value
                        # a server filled with the token, is not even its context.
                        raise failed
                    if base != client.base_url:
                        _trust(client, str(base), keys.slug, keys.id)
                link = _LAST_LINK
                if page is not None and page.next_cursor is not None:
                    link = _next_link(f"{index}{_REGION_MARK}{page.next_cursor}")
                elif index + 1 < len(regions):
                    link = _next_link(f"{index + 1}{_REGION_MARK}")
                return RawPage(
                    items=items,
                    link=link,
                    rate_limit=page.rate_limit if page is not None else None,
                )

            return fetch

        return Paginator(
            fetcher(Organization),
            retype=fetcher,
            page_size=page_size,
            cursor=cursor,
            skip=skip,
            limit=limit,
            description=f"GET {client.url_for('/organizations/')} (every region)",
            _redact=client._redact,
            _reads=client._read_aheads,
        )

    async def regions(self) -> builtins.list[tuple[str, URL]]:
        """``(name, base URL)`` of every region the user's organizations may live in.

        Asked once per client (``/users/me/regions/``); each URL must pass the token's host
        rule (on a self-hosted server, one that does not is the base URL instead). Servers
        that do not know the endpoint, and organization tokens, get the base URL alone.
        """
        client = self._client
        if client.regions is None:
            try:
                found = await client.request("GET", "/users/me/regions/", type=_Regions)
            except (NotFound, Forbidden, DecodeError) as exc:
                # Older servers, tokens without a user, an answer of another shape (a bad
                # token is a 401 here, and raised).
                logger.info("listing organizations from the base URL only: %s", exc)
                found = None
            regions: builtins.list[tuple[str, URL]] = []
            for region in found.regions if found is not None else []:
                base = client.region_base(region.url) or client.base_url
                if all(base != known for _, known in regions):
                    regions.append((region.name, base))
            client.regions = regions or [("", client.base_url)]
        return client.regions

    async def list_owned(self) -> builtins.list[OwnedOrganization]:
        """The organizations the user owns (``owner=1``, user tokens), each with whether
        the user is its only owner. Sentry answers these unpaginated, from one region."""
        return await self._client.request(
            "GET", "/organizations/", params={"owner": True}, type=builtins.list[OwnedOrganization]
        )

    async def get(self, org: IdOrSlug) -> Organization:
        """One organization, by slug or id (``/organizations/{org}/``): its details, with
        ``links.regionUrl``, the host :meth:`use_region` sends its requests to."""
        return await self._client.request(
            "GET", "/organizations/{org}/", path_params={"org": self._org(org)}, type=Organization
        )

    async def use_region(self, org: IdOrSlug) -> str:
        """Route ``org``'s requests to its region host, as Sentry recommends; returns it.

        Older servers have no region URL, and a self-hosted server's (its
        ``system.url-prefix``) is ignored unless the token may go there: the base URL stays
        in use. On sentry.io a region the token must not go to is an
        :class:`~sentry_async.UntrustedHost` error.
        """
        detail = await self._client.request(
            "GET", "/organizations/{org}/", path_params={"org": self._org(org)}, type=Organization
        )
        region = detail.links.region_url if detail.links is not None else None
        if region and self._client.region_base(region) is not None:
            _trust(self._client, region, self._org(org), detail.slug, detail.id)
            return region
        return str(self._client.base_url)
