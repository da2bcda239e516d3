"""Raw events: an issue's events, a project's events, full payloads, event-id resolution."""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal, TypedDict, overload

import msgspec

from .._protocol.params import check_page_size
from .._protocol.params import issue_id as _issue_id
from ..api.events import EventsAPI
from ..models import Event, EventIdResolution, EventSummary
from ..pagination import Paginator
from ._base import IdOrSlug, environments, time_params

if TYPE_CHECKING:
    from typing_extensions import Unpack

__all__ = ["FULL_PAGE_MAX", "EventListOptions", "EventSelection", "EventsResource"]

FULL_PAGE_MAX = 10
"""Sentry clamps pages of full payloads to 10 events, whatever ``per_page`` says."""

_EVENT_ID = re.compile(r"^[0-9a-fA-F]{32}$|^[0-9a-fA-F]{8}-([0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}$")
_ISSUE_EVENT_ALIASES = frozenset({"latest", "oldest", "recommended"})


def _event_id(value: str) -> str:
    if not isinstance(value, str) or not _EVENT_ID.match(value.strip()):
        raise ValueError(f"event ids are 32 hex characters or a UUID (got {value!r})")
    return value.strip().replace("-", "").lower()


class EventListOptions(TypedDict, total=False):
    """Filters and paging shared by the event lists; every key is optional.

    ``page_size`` defaults to 100 (Sentry sends at most 10 full payloads per page whatever
    it says); ``cursor``/``skip`` resume from a saved :class:`~sentry_async.Position`;
    ``limit`` caps the items handed out. ``sample=True`` asks Sentry for a random sample
    instead of the newest events; ``False`` sends nothing (the newest first).
    """

    query: str | None
    sample: bool | None
    period: str | timedelta | None
    start: datetime | None
    end: datetime | None
    page_size: int
    cursor: str | None
    skip: int
    limit: int | None


class EventSelection(TypedDict, total=False):
    """Which events ``latest``/``oldest``/``recommended`` choose among; every key optional."""

    environment: str | Sequence[str] | None
    query: str | None
    period: str | timedelta | None
    start: datetime | None
    end: datetime | None


class EventsResource(EventsAPI):
    """``client.events``."""

    __slots__ = ()

    @overload
    def for_issue(
        self,
        org: IdOrSlug,
        issue_id: IdOrSlug,
        *,
        full: Literal[False] = ...,
        environment: str | Sequence[str] | None = ...,
        **options: Unpack[EventListOptions],
    ) -> Paginator[EventSummary]: ...

    @overload
    def for_issue(
        self,
        org: IdOrSlug,
        issue_id: IdOrSlug,
        *,
        full: Literal[True],
        environment: str | Sequence[str] | None = ...,
        **options: Unpack[EventListOptions],
    ) -> Paginator[Event]: ...

    @overload
    def for_issue(
        self,
        org: IdOrSlug,
        issue_id: IdOrSlug,
        *,
        full: bool,
        environment: str | Sequence[str] | None = ...,
        **options: Unpack[EventListOptions],
    ) -> Paginator[EventSummary] | Paginator[Event]: ...

    def for_issue(
        self,
        org: IdOrSlug,
        issue_id: IdOrSlug,
        *,
        full: bool = False,
        environment: str | Sequence[str] | None = None,
        **options: Unpack[EventListOptions],
    ) -> Paginator[EventSummary] | Paginator[Event]:
        """An issue's events, newest first: summaries, or full payloads with ``full=True``
        (Sentry then sends at most 10 per page). ``.raw()`` on the result yields each
        item's JSON bytes. Filters and paging: :class:`EventListOptions`.

        Without a time range Sentry looks back 90 days. An event id as ``query`` is a
        direct hit: one page (``page.direct_hit``) holding that event's full payload even
        without ``full``; a summary takes its ``event_type`` from the payload's ``type``.
        """
        return self._list(
            "/organizations/{org}/issues/{issue_id}/events/",
            {"org": self._org(org), "issue_id": _issue_id(issue_id)},
            full=full,
            params={"environment": environments(environment)},
            options=options,
        )

    @overload
    def for_project(
        self,
        org: IdOrSlug,
        project: IdOrSlug,
        *,
        full: Literal[False] = ...,
        **options: Unpack[EventListOptions],
    ) -> Paginator[EventSummary]: ...

    @overload
    def for_project(
        self,
        org: IdOrSlug,
        project: IdOrSlug,
        *,
        full: Literal[True],
        **options: Unpack[EventListOptions],
    ) -> Paginator[Event]: ...

    @overload
    def for_project(
        self,
        org: IdOrSlug,
        project: IdOrSlug,
        *,
        full: bool,
        **options: Unpack[EventListOptions],
    ) -> Paginator[EventSummary] | Paginator[Event]: ...

    def for_project(
        self,
        org: IdOrSlug,
        project: IdOrSlug,
        *,
        full: bool = False,
        **options: Unpack[EventListOptions],
    ) -> Paginator[EventSummary] | Paginator[Event]:
        """A project's events, newest first; ``full`` and ``.raw()`` as in :meth:`for_issue`."""
        return self._list(
            "/projects/{org}/{project}/events/",
            {"org": self._org(org), "project": self._org(project)},
            full=full,
            params={},
            options=options,
        )

    def _list(
        self,
        path: str,
        path_params: dict[str, str],
        *,
        full: bool,
        params: dict[str, Any],
        options: EventListOptions,
    ) -> Paginator[Any]:
        unknown = options.keys() - EventListOptions.__annotations__.keys()
        if unknown:
            raise TypeError(f"unexpected keyword argument(s): {', '.join(sorted(unknown))}")
        page_size = options.get("page_size", 100)
        check_page_size(page_size, "page_size")
        time = time_params(options.get("period"), options.get("start"), options.get("end"))
        return self._client.paginate(
            path,
            path_params=path_params,
            params={
                **params,
                **time,
                "query": options.get("query"),
                "full": full or None,
                # Sent only when on: current Sentry reads ``1``/``true`` as on, older
                # servers any non-empty ``sample``, "0" included.
                "sample": True if options.get("sample") else None,
            },
            type=Event if full else EventSummary,
            page_size=page_size,
            cursor=options.get("cursor"),
            skip=options.get("skip", 0),
            limit=options.get("limit"),
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
        """One event's full payload as the JSON bytes Sentry sent, for pass-through export.

        One validating ``msgspec.Raw`` scan, as the lists' raw mode does: a success body
        that is not JSON (cut short, a proxy's page, empty) is resent as :meth:`get`
        resends it, then a :class:`~sentry_async.errors.DecodeError`, never handed out.
        """
        raw = await self._client.request(
            "GET",
            "/projects/{org}/{project}/events/{event_id}/",
            path_params={
                "org": self._org(org),
                "project": self._org(project),
                "event_id": _event_id(event_id),
            },
            type=msgspec.Raw,
        )
        return bytes(raw)

    async def for_issue_event(
        self,
        org: IdOrSlug,
        issue_id: IdOrSlug,
        event_id: str = "latest",
        *,
        environment: str | Sequence[str] | None = None,
        query: str | None = None,
        period: str | timedelta | None = None,
        start: datetime | None = None,
        end: datetime | None = None,
    ) -> Event:
        """One of an issue's events: an event id, or ``latest``, ``oldest``, ``recommended``,
        chosen among the events matching ``environment``, ``query`` and the time range."""
        key = event_id if event_id in _ISSUE_EVENT_ALIASES else _event_id(event_id)
        return await self._client.request(
            "GET",
            "/organizations/{org}/issues/{issue_id}/events/{event_id}/",
            path_params={"org": self._org(org), "issue_id": _issue_id(issue_id), "event_id": key},
            params={
                "environment": environments(environment),
                "query": query,
                **time_params(period, start, end),
            },
            type=Event,
        )

    async def latest(
        self, org: IdOrSlug, issue_id: IdOrSlug, **selection: Unpack[EventSelection]
    ) -> Event:
        return await self.for_issue_event(org, issue_id, "latest", **selection)

    async def oldest(
        self, org: IdOrSlug, issue_id: IdOrSlug, **selection: Unpack[EventSelection]
    ) -> Event:
        return await self.for_issue_event(org, issue_id, "oldest", **selection)

    async def recommended(
        self, org: IdOrSlug, issue_id: IdOrSlug, **selection: Unpack[EventSelection]
    ) -> Event:
        return await self.for_issue_event(org, issue_id, "recommended", **selection)

    async def resolve(self, org: IdOrSlug, event_id: str) -> EventIdResolution:
        """Find the project and issue of an event id (transactions are not found)."""
        return await self._client.request(
            "GET",
            "/organizations/{org}/eventids/{event_id}/",
            path_params={"org": self._org(org), "event_id": _event_id(event_id)},
            type=EventIdResolution,
        )
