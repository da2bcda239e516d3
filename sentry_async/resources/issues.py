"""Issues (Sentry's "groups"): list, get, update, delete, bulk changes, hashes, tag values."""

from __future__ import annotations

import builtins
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from .._protocol.params import check_page_size, check_slug
from ..models import Issue, IssueHash, IssueUpdateResult, TagDetail, TagValue
from ..pagination import Paginator
from ._base import IdOrSlug, Resource, listify, time_params

__all__ = ["BULK_LIMIT", "BulkResult", "IssuesResource"]

BULK_LIMIT = 1000
"""Sentry mutates at most this many issues per bulk call."""

_UPDATE_FIELDS = {
    "status": "status",
    "status_details": "statusDetails",
    "substatus": "substatus",
    "assigned_to": "assignedTo",
    "has_seen": "hasSeen",
    "is_bookmarked": "isBookmarked",
    "is_public": "isPublic",
    "is_subscribed": "isSubscribed",
    "priority": "priority",
    "merge": "merge",
    "discard": "discard",
    "inbox": "inbox",
}
_NOT_IDEMPOTENT = frozenset({"merge", "discard"})
_SORTS = frozenset({"date", "freq", "inbox", "new", "recommended", "trends", "user"})


@dataclass(frozen=True, slots=True)
class BulkResult:
    """What a bulk call did: the ids sent, the calls made, and each call's answer.

    ``results`` holds one entry per call of at most 1000 ids: the changed attributes, or
    ``None`` where Sentry answered 204 (nothing matched, or deletion accepted).
    """

    ids: list[str]
    calls: int
    results: list[IssueUpdateResult | None]


def _changes(changes: Mapping[str, Any]) -> dict[str, Any]:
    if not changes:
        raise ValueError("no changes given: pass e.g. status='resolved'")
    body: dict[str, Any] = {}
    for key, value in changes.items():
        wire = _UPDATE_FIELDS.get(key)
        if wire is None:
            known = ", ".join(sorted(_UPDATE_FIELDS))
            raise ValueError(f"unknown issue field {key!r}; known fields: {known}")
        body[wire] = value
    return body


def _ids(ids: Iterable[str | int]) -> list[str]:
    out: list[str] = []
    for issue_id in ids:
        text = check_slug(issue_id, "issue id")
        if not text.isdigit():
            raise ValueError(f"issue ids are numeric (got {issue_id!r})")
        out.append(text)
    return out


class IssuesResource(Resource):
    """``client.issues``."""

    __slots__ = ()

    def list(
        self,
        org: IdOrSlug,
        *,
        query: str | None = None,
        project: IdOrSlug | Sequence[IdOrSlug] | None = None,
        environment: str | Sequence[str] | None = None,
        period: str | timedelta | None = None,
        start: datetime | None = None,
        end: datetime | None = None,
        sort: str | None = None,
        expand: str | Sequence[str] | None = None,
        collapse: str | Sequence[str] | None = None,
        page_size: int = 100,
        cursor: str | None = None,
        skip: int = 0,
        limit: int | None = None,
    ) -> Paginator[Issue]:
        """The org's issues, lazily. ``query=None`` is Sentry's default (``is:unresolved``);
        ``query=""`` lists every issue. Page sizes go out as ``limit``, as Sentry expects."""
        if sort is not None and sort not in _SORTS:
            raise ValueError(f"sort must be one of {', '.join(sorted(_SORTS))} (got {sort!r})")
        params: dict[str, Any] = {
            "query": query,
            "project": listify(project, "project"),
            "environment": listify(environment, "environment"),
            "sort": sort,
            "expand": listify(expand, "expand"),
            "collapse": listify(collapse, "collapse"),
            **time_params(period, start, end),
        }
        return self._client.paginate(
            "/organizations/{org}/issues/",
            path_params={"org": self._org(org)},
            params=params,
            type=Issue,
            page_size=page_size,
            page_size_param="limit",
            cursor=cursor,
            skip=skip,
            limit=limit,
        )

    async def get(
        self,
        org: IdOrSlug,
        issue_id: IdOrSlug,
        *,
        environment: str | Sequence[str] | None = None,
        expand: str | Sequence[str] | None = None,
        collapse: str | Sequence[str] | None = None,
    ) -> Issue:
        """One issue with its detail-only fields (activity, tags, first and last release)."""
        return await self._client.request(
            "GET",
            "/organizations/{org}/issues/{issue_id}/",
            path_params={"org": self._org(org), "issue_id": _ids([issue_id])[0]},
            params={
                "environment": listify(environment, "environment"),
                "expand": listify(expand, "expand"),
                "collapse": listify(collapse, "collapse"),
            },
            type=Issue,
        )

    async def update(self, org: IdOrSlug, issue_id: IdOrSlug, **changes: Any) -> Issue | None:
        """Change one issue (``status="resolved"``, ``assigned_to="user:1"``, ...)."""
        body = _changes(changes)
        return await self._client.request(
            "PUT",
            "/organizations/{org}/issues/{issue_id}/",
            path_params={"org": self._org(org), "issue_id": _ids([issue_id])[0]},
            json=body,
            idempotent=not (_NOT_IDEMPOTENT & changes.keys()),
            type=Issue,
        )

    async def delete(self, org: IdOrSlug, issue_id: IdOrSlug) -> None:
        """Schedule one issue for deletion (Sentry answers 202 and deletes asynchronously)."""
        await self._client.send(
            "DELETE",
            "/organizations/{org}/issues/{issue_id}/",
            path_params={"org": self._org(org), "issue_id": _ids([issue_id])[0]},
        )

    async def bulk_update(
        self,
        org: IdOrSlug,
        ids: Iterable[IdOrSlug],
        *,
        project: IdOrSlug | Sequence[IdOrSlug] | None = None,
        **changes: Any,
    ) -> BulkResult:
        """Apply the same change to many issues, 1000 ids per call.

        An empty id list is refused: without ids Sentry applies the change to every issue
        matching the (default) query.
        """
        id_list = _ids(ids)
        if not id_list:
            raise ValueError("bulk_update needs at least one issue id")
        body = _changes(changes)
        idempotent = not (_NOT_IDEMPOTENT & changes.keys())
        return await self._bulk("PUT", id_list, org, project, body, idempotent)

    async def bulk_delete(
        self,
        org: IdOrSlug,
        ids: Iterable[IdOrSlug],
        *,
        project: IdOrSlug | Sequence[IdOrSlug] | None = None,
    ) -> BulkResult:
        """Delete many issues, 1000 ids per call.

        An empty id list is refused: Sentry would delete the first 1000 issues matching
        the query instead.
        """
        id_list = _ids(ids)
        if not id_list:
            raise ValueError(
                "bulk_delete needs at least one issue id; without ids Sentry deletes the "
                "first 1000 matching issues"
            )
        return await self._bulk("DELETE", id_list, org, project, None, True)

    async def _bulk(
        self,
        method: str,
        id_list: builtins.list[str],
        org: IdOrSlug,
        project: IdOrSlug | Sequence[IdOrSlug] | None,
        body: dict[str, Any] | None,
        idempotent: bool,
    ) -> BulkResult:
        org_slug = self._org(org)
        projects = listify(project, "project")
        results: builtins.list[IssueUpdateResult | None] = []
        for offset in range(0, len(id_list), BULK_LIMIT):
            chunk = id_list[offset : offset + BULK_LIMIT]
            params: builtins.list[tuple[str, str]] = [("id", issue_id) for issue_id in chunk]
            params.extend(("project", p) for p in projects or ())
            response = await self._client.send(
                method,
                "/organizations/{org}/issues/",
                path_params={"org": org_slug},
                params=params,
                json=body,
                idempotent=idempotent,
            )
            if response.status == 204 or not response.body.strip():
                results.append(None)
            else:
                results.append(self._client.decode(response, IssueUpdateResult))
        return BulkResult(ids=id_list, calls=len(results), results=results)

    def hashes(
        self,
        org: IdOrSlug,
        issue_id: IdOrSlug,
        *,
        full: bool = True,
        page_size: int = 100,
        cursor: str | None = None,
        skip: int = 0,
        limit: int | None = None,
    ) -> Paginator[IssueHash]:
        """The fingerprint hashes grouped into an issue, each with its latest event."""
        return self._client.paginate(
            "/organizations/{org}/issues/{issue_id}/hashes/",
            path_params={"org": self._org(org), "issue_id": _ids([issue_id])[0]},
            params={"full": full},
            type=IssueHash,
            page_size=check_page_size(page_size, "page_size"),
            cursor=cursor,
            skip=skip,
            limit=limit,
        )

    async def tag(
        self,
        org: IdOrSlug,
        issue_id: IdOrSlug,
        key: str,
        *,
        environment: str | Sequence[str] | None = None,
    ) -> TagDetail:
        """One tag of an issue with its top values."""
        return await self._client.request(
            "GET",
            "/organizations/{org}/issues/{issue_id}/tags/{key}/",
            path_params={"org": self._org(org), "issue_id": _ids([issue_id])[0], "key": key},
            params={"environment": listify(environment, "environment")},
            type=TagDetail,
        )

    def tag_values(
        self,
        org: IdOrSlug,
        issue_id: IdOrSlug,
        key: str,
        *,
        environment: str | Sequence[str] | None = None,
        sort: str | None = None,
        page_size: int = 100,
        cursor: str | None = None,
        skip: int = 0,
        limit: int | None = None,
    ) -> Paginator[TagValue]:
        """Every value of one tag on an issue (Sentry stops at 1000 values)."""
        if sort is not None and sort.lstrip("-") not in {"age", "count", "date", "id"}:
            raise ValueError(f"sort must be one of age, count, date, id (got {sort!r})")
        return self._client.paginate(
            "/organizations/{org}/issues/{issue_id}/tags/{key}/values/",
            path_params={"org": self._org(org), "issue_id": _ids([issue_id])[0], "key": key},
            params={"environment": listify(environment, "environment"), "sort": sort},
            type=TagValue,
            page_size=page_size,
            cursor=cursor,
            skip=skip,
            limit=limit,
        )
