"""Projects: an organization's projects and one project's detail."""

from __future__ import annotations

from collections.abc import Sequence

from ..api.projects import ProjectsAPI
from ..models import Project
from ..pagination import Paginator
from ._base import IdOrSlug, listify

__all__ = ["ProjectsResource"]

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
        return self._client.paginate(
            "/organizations/{org}/projects/",
            path_params={"org": self._org(org)},
            params={
                "query": query,
                "collapse": listify(collapse, "collapse"),
                "all_projects": all_projects,
            },
            type=Project,
            page_size=page_size,
            cursor=cursor,
            skip=skip,
            limit=limit,
        )

    async def get(self, org: IdOrSlug, project: IdOrSlug) -> Project:
        """One project, by slug or id (``/projects/{org}/{project}/``); a renamed
        project's old slug is followed to the new one for this call, as every read is."""
        return await self._client.request(
            "GET",
            "/projects/{org}/{project}/",
            path_params={"org": self._org(org), "project": self._org(project)},
            type=Project,
        )
