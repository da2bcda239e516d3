"""Organizations: the list a token can see, one org's detail, and its region."""

from __future__ import annotations

from ..api.organizations import OrganizationsAPI
from ..models import Organization
from ..pagination import Paginator
from ._base import IdOrSlug

__all__ = ["OrganizationsResource"]


class OrganizationsResource(OrganizationsAPI):
    """``client.organizations``."""

    __slots__ = ()

    def list(
        self,
        *,
        query: str | None = None,
        owner: bool | None = None,
        page_size: int = 100,
        cursor: str | None = None,
        skip: int = 0,
        limit: int | None = None,
    ) -> Paginator[Organization]:
        """The organizations the token can see (on sentry.io: in every region)."""
        return self._client.paginate(
            "/organizations/",
            params={"query": query, "owner": owner},
            type=Organization,
            page_size=page_size,
            unpaginated=bool(owner),  # owner=1 answers every org at once, without a Link
            cursor=cursor,
            skip=skip,
            limit=limit,
        )

    async def get(self, org: IdOrSlug) -> Organization:
        return await self._client.request(
            "GET", "/organizations/{org}/", path_params={"org": self._org(org)}, type=Organization
        )

    async def use_region(self, org: IdOrSlug) -> str:
        """Route ``org``'s requests to its region host, as Sentry recommends; returns it.

        Self-hosted and older servers have no region URL: the base URL stays in use.
        """
        detail = await self.get(org)
        region = detail.links.region_url if detail.links is not None else None
        if region:
            self._client.trust_region(self._org(org), region)
            return region
        return str(self._client.base_url)
