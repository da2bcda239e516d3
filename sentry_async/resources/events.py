"""Raw events: an issue's events, a project's events, full payloads, event-id resolution."""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any, Literal, overload

import msgspec

from .._protocol.params import check_page_size
from ..models import Event, EventIdResolution, EventSummary
from ..pagination import Paginator
from ._base import IdOrSlug, Resource, listify, time_params

__all__ = ["FULL_PAGE_MAX", "EventsResource"]

FULL_PAGE_MAX = 10
"""Sentry clamps pages of full payloads to 10 events, whatever ``per_page`` says."""

_EVENT_ID = re.compile(r"^[0-9a-fA-F]{32}$|^[0-9a-fA-F]{8}-([0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}$")
_ISSUE_EVENT_ALIASES = frozenset({"latest", "oldest", "recommended"})


def _event_id(value: str) -> str:
    if not isinstance(value, str) or not _EVENT_ID.match(value.strip()):
        raise ValueError(f"event ids are 32 hex characters or a UUID (got {value!r})")
    return value.strip().replace("-", "").lower()


def _issue_id(value: IdOrSlug) -> str:
    text = str(value).strip()
    if isinstance(value, bool) or not text.isdigit():
        raise ValueError(f"issue ids are numeric (got {value!r})")
    return text


class EventsResource(Resource):
    """``client.events``."""

    __slots__ = ()

    @overload
    def for_issue(
        self,
        org: IdOrSlug,
        issue_id: IdOrSlug,
        *,
        full: Literal[False] = ...,
        raw: Literal[False] = ...,
        query: str | None = ...,
        environment: str | Sequence[str] | None = ...,
        period: str | timedelta | None = ...,
        start: datetime | None = ...,
        end: datetime | None = ...,
        page_size: int = ...,
        cursor: str | None = ...,
        skip: int = ...,
        limit: int | None = ...,
    ) -> Paginator[EventSummary]: ...

    @overload
    def for_issue(
        self,
        org: IdOrSlug,
        issue_id: IdOrSlug,
        *,
        full: Literal[True],
        raw: Literal[False] = ...,
        query: str | None = ...,
        environment: str | Sequence[str] | None = ...,
        period: str | timedelta | None = ...,
        start: datetime | None = ...,
        end: datetime | None = ...,
        page_size: int = ...,
        cursor: str | None = ...,
        skip: int = ...,
        limit: int | None = ...,
    ) -> Paginator[Event]: ...

    @overload
    def for_issue(
        self,
        org: IdOrSlug,
        issue_id: IdOrSlug,
        *,
        full: bool = ...,
        raw: Literal[True],
        query: str | None = ...,
        environment: str | Sequence[str] | None = ...,
        period: str | timedelta | None = ...,
        start: datetime | None = ...,
        end: datetime | None = ...,
        page_size: int = ...,
        cursor: str | None = ...,
        skip: int = ...,
        limit: int | None = ...,
    ) -> Paginator[msgspec.Raw]: ...

    def for_issue(
        self,
        org: IdOrSlug,
        issue_id: IdOrSlug,
        *,
        full: bool = False,
        raw: bool = False,
        query: str | None = None,
        environment: str | Sequence[str] | None = None,
        period: str | timedelta | None = None,
        start: datetime | None = None,
        end: datetime | None = None,
        page_size: int = 100,
        cursor: str | None = None,
        skip: int = 0,
        limit: int | None = None,
    ) -> Paginator[Any]:
        """An issue's events, newest first: summaries, or full payloads with ``full=True``
        (Sentry then sends at most 10 per page). ``raw=True`` yields each item's JSON bytes.

        Without a time range Sentry looks back 90 days.
        """
        return self._list(
            "/organizations/{org}/issues/{issue_id}/events/",
            {"org": self._org(org), "issue_id": _issue_id(issue_id)},
            full=full,
            raw=raw,
            params={
                "query": query,
                "environment": listify(environment, "environment"),
                **time_params(period, start, end),
            },
            page_size=page_size,
            cursor=cursor,
            skip=skip,
            limit=limit,
        )

    @overload
    def for_project(
        self,
        org: IdOrSlug,
        project: IdOrSlug,
        *,
        full: Literal[False] = ...,
        raw: Literal[False] = ...,
        query: str | None = ...,
        period: str | timedelta | None = ...,
        start: datetime | None = ...,
        end: datetime | None = ...,
        page_size: int = ...,
        cursor: str | None = ...,
        skip: int = ...,
        limit: int | None = ...,
    ) -> Paginator[EventSummary]: ...

    @overload
    def for_project(
        self,
        org: IdOrSlug,
        project: IdOrSlug,
        *,
        full: Literal[True],
        raw: Literal[False] = ...,
        query: str | None = ...,
        period: str | timedelta | None = ...,
        start: datetime | None = ...,
        end: datetime | None = ...,
        page_size: int = ...,
        cursor: str | None = ...,
        skip: int = ...,
        limit: int | None = ...,
    ) -> Paginator[Event]: ...

    @overload
    def for_project(
        self,
        org: IdOrSlug,
        project: IdOrSlug,
        *,
        full: bool = ...,
        raw: Literal[True],
        query: str | None = ...,
        period: str | timedelta | None = ...,
        start: datetime | None = ...,
        end: datetime | None = ...,
        page_size: int = ...,
        cursor: str | None = ...,
        skip: int = ...,
        limit: int | None = ...,
    ) -> Paginator[msgspec.Raw]: ...

    def for_project(
        self,
        org: IdOrSlug,
        project: IdOrSlug,
        *,
        full: bool = False,
        raw: bool = False,
        query: str | None = None,
        period: str | timedelta | None = None,
        start: datetime | None = None,
        end: datetime | None = None,
        page_size: int = 100,
        cursor: str | None = None,
        skip: int = 0,
        limit: int | None = None,
    ) -> Paginator[Any]:
        """A project's events, newest first; ``full``/``raw`` as in :meth:`for_issue`."""
        return self._list(
            "/projects/{org}/{project}/events/",
            {"org": self._org(org), "project": self._org(project)},
            full=full,
            raw=raw,
            params={"query": query, **time_params(period, start, end)},
            page_size=page_size,
            cursor=cursor,
            skip=skip,
            limit=limit,
        )

    def _list(
        self,
        path: str,
        path_params: dict[str, str],
        *,
        full: bool,
        raw: bool,
        params: dict[str, Any],
        page_size: int,
        cursor: str | None,
        skip: int,
        limit: int | None,
    ) -> Paginator[Any]:
        check_page_size(page_size)
        item_type: Any = msgspec.Raw if raw else (Event if full else EventSummary)
        return self._client.paginate(
            path,
            path_params=path_params,
            params={**params, "full": True if full else None},
            type=item_type,
            page_size=page_size,
            cursor=cursor,
            skip=skip,
            limit=limit,
        )

    async def get(self, org: IdOrSlug, project: IdOrSlug, event_id: str) -> Event:
        """One event's full payload."""
        return await self._client.request(
            "GET",
            "/projects/{org}/{project}/events/{event_id}/",
            path_params={
                "org": self._org(org),
                "project": self._org(project),
                "event_id": _event_id(event_id),
            },
            type=Event,
        )

    async def get_raw(self, org: IdOrSlug, project: IdOrSlug, event_id: str) -> bytes:
        """One event's full payload as the JSON bytes Sentry sent, for pass-through export."""
        response = await self._client.send(
            "GET",
            "/projects/{org}/{project}/events/{event_id}/",
            path_params={
                "org": self._org(org),
                "project": self._org(project),
                "event_id": _event_id(event_id),
            },
        )
        return response.body

    async def for_issue_event(
        self,
        org: IdOrSlug,
        issue_id: IdOrSlug,
        event_id: str = "latest",
        *,
        environment: str | Sequence[str] | None = None,
    ) -> Event:
        """One of an issue's events: an event id, or ``latest``, ``oldest``, ``recommended``."""
        key = event_id if event_id in _ISSUE_EVENT_ALIASES else _event_id(event_id)
        return await self._client.request(
            "GET",
            "/organizations/{org}/issues/{issue_id}/events/{event_id}/",
            path_params={"org": self._org(org), "issue_id": _issue_id(issue_id), "event_id": key},
            params={"environment": listify(environment, "environment")},
            type=Event,
        )

    async def latest(self, org: IdOrSlug, issue_id: IdOrSlug) -> Event:
        return await self.for_issue_event(org, issue_id, "latest")

    async def oldest(self, org: IdOrSlug, issue_id: IdOrSlug) -> Event:
        return await self.for_issue_event(org, issue_id, "oldest")

    async def recommended(self, org: IdOrSlug, issue_id: IdOrSlug) -> Event:
        return await self.for_issue_event(org, issue_id, "recommended")

    async def resolve(self, org: IdOrSlug, event_id: str) -> EventIdResolution:
        """Find the project and issue of an event id (transactions are not found)."""
        return await self._client.request(
            "GET",
            "/organizations/{org}/eventids/{event_id}/",
            path_params={"org": self._org(org), "event_id": _event_id(event_id)},
            type=EventIdResolution,
        )
