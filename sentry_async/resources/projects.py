"""Projects: an organization's projects and one project's detail."""

from __future__ import annotations

from typing import Literal, overload

import msgspec

from ..models import Project
from ..pagination import Paginator
from ._base import IdOrSlug, Resource

__all__ = ["ProjectsResource"]


class ProjectsResource(Resource):
    """``client.projects``."""

    __slots__ = ()

    @overload
    def list(
        self,
        org: IdOrSlug,
        *,
        query: str | None = ...,
        page_size: int = ...,
        cursor: str | None = ...,
        skip: int = ...,
        limit: int | None = ...,
        raw: Literal[False] = ...,
    ) -> Paginator[Project]: ...

    @overload
    def list(
        self,
        org: IdOrSlug,
        *,
        query: str | None = ...,
        page_size: int = ...,
        cursor: str | None = ...,
        skip: int = ...,
        limit: int | None = ...,
        raw: Literal[True],
    ) -> Paginator[msgspec.Raw]: ...

    def list(
        self,
        org: IdOrSlug,
        *,
        query: str | None = None,
        page_size: int = 100,
        cursor: str | None = None,
        skip: int = 0,
        limit: int | None = None,
        raw: bool = False,
    ) -> Paginator[Project] | Paginator[msgspec.Raw]:
        """The org's projects (bookmarked first, then by slug)."""
        return self._client.paginate(
            "/organizations/{org}/projects/",
            path_params={"org": self._org(org)},
            params={"query": query},
            type=msgspec.Raw if raw else Project,
            page_size=page_size,
            cursor=cursor,
            skip=skip,
            limit=limit,
        )

    async def get(self, org: IdOrSlug, project: IdOrSlug) -> Project:
        return await self._client.request(
            "GET",
            "/projects/{org}/{project}/",
            path_params={"org": self._org(org), "project": self._org(project)},
            type=Project,
        )
