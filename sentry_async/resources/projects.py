"""Projects: an organization's projects and one project's detail."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .._paging import page_fetchers
from .._protocol.params import check_page_size, encode_params
from ..api.projects import ProjectsAPI
from ..models import Project
from ..pagination import Paginator
from ._base import IdOrSlug, listify

__all__ = ["ProjectsResource"]

_LIST = "/organizations/{org}/projects/"


class ProjectsResource(ProjectsAPI):
    """``client.projects``."""

    __slots__ = ()

    def list(
        self,
        org: IdOrSlug,
        *,
        query: str | None = None,
        collapse: str | Sequence[str] | None = None,
        all_projects: bool | None = None,
        page_size: int = 100,
        cursor: str | None = None,
        skip: int = 0,
        limit: int | None = None,
    ) -> Paginator[Project]:
        """The org's projects (bookmarked first, then by slug).

        ``collapse="latestDeploys"`` (or ``"unusedFeatures"``) leaves those fields out;
        ``all_projects=True`` asks for every project in one answer, ordered by slug: one
        consistent list, where pages shift when a project is created or deleted between
        them. A server that pages it anyway (Sentry marks the switch for removal) is walked
        page by page, its ``Link`` followed: never only its first page.
        """
        path_params = {"org": self._org(org)}
        params: dict[str, Any] = {"query": query, "collapse": listify(collapse, "collapse")}
        client = self._client
        if not all_projects:
            return client.paginate(
                _LIST,
                path_params=path_params,
                params={**params, "all_projects": all_projects},
                type=Project,
                page_size=page_size,
                cursor=cursor,
                skip=skip,
                limit=limit,
            )
        # Not client.paginate: its one-response mode would drop a Link saying more exist.
        check_page_size(page_size, "page_size", 100)
        fetcher = page_fetchers(
            client,
            _LIST,
            path_params,
            root=None,
            base=encode_params({**params, "all_projects": True}),
            lazy_params=None,
            page_size_param=None,
            page_type=None,
            envelope=None,
        )
        return Paginator(
            fetcher(Project),
            retype=fetcher,
            cursor=cursor,
            skip=skip,
            limit=limit,
            description=f"GET {client.url_for(_LIST, path_params)}",
            _redact=client._redact,
        )

    async def get(self, org: IdOrSlug, project: IdOrSlug) -> Project:
        return await self._client.request(
            "GET",
            "/projects/{org}/{project}/",
            path_params={"org": self._org(org), "project": self._org(project)},
            type=Project,
        )
