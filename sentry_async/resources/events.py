"""Raw events: an issue's events, a project's events, full payloads, event-id resolution."""

from __future__ import annotations

import dataclasses
import functools
import re
from collections.abc import Hashable, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal, TypedDict, overload

import msgspec

from .._protocol.items import item_id
from .._protocol.params import check_page_size, hide_tokens, quoted
from .._protocol.params import issue_id as _issue_id
from ..api.events import EventsAPI
from ..models import Event, EventIdResolution, EventSummary
from ..pagination import Paginator
from ._base import IdOrSlug, environments, time_params

if TYPE_CHECKING:
    from typing_extensions import Unpack

__all__ = ["FULL_PAGE_MAX", "EventListOptions", "EventSelection", "EventsResource"]

FULL_PAGE_MAX = 10
"""The page size full payloads are asked in by default: a project's list sends at most 10
whatever ``per_page`` says (``FULL_PAYLOAD_MAX_PER_PAGE``), and an issue's sends as many as
asked, which at 100 events of up to a megabyte each can pass ``max_body_size``."""

_EVENT_ID = re.compile(r"^[0-9a-fA-F]{32}$|^[0-9a-fA-F]{8}-([0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}$")
_ISSUE_EVENT_ALIASES = frozenset({"latest", "oldest", "recommended"})


def _event_id(value: str) -> str:
    if not isinstance(value, str) or not _EVENT_ID.match(value.strip()):
        raise ValueError(f"event ids are 32 hex characters or a UUID (got {quoted(value)})")
    return value.strip().replace("-", "").lower()


def event_key(item: Any) -> Hashable | None:
    """An event's ``id`` in whatever a list hands out (``None``: none readable): a model,
    an ``as_type`` object or dict with one, or the JSON bytes of ``.raw()``, read from
    the first bytes when the id leads them (parsing a full payload costs its kilobytes).

    Read for every item of every page: the lists' own models come first, by their exact
    type, whose ``id`` msgspec has checked is a string."""
    if type(item) is EventSummary or type(item) is Event:
        return item.id
    if isinstance(item, msgspec.Raw):
        return item_id(item)
    if isinstance(item, dict):
        value = item.get("id")
    elif isinstance(item, msgspec.Struct):
        # An as_type model may keep the wire's "id" under a name of its own.
        attribute = _id_attribute(type(item))
        value = None if attribute is None else getattr(item, attribute, None)
    else:
        value = getattr(item, "id", None)
    if type(value) is str:
        return value
    return value if isinstance(value, int) and not isinstance(value, bool) else None


@functools.lru_cache(maxsize=64)
def _id_attribute(model: type[msgspec.Struct]) -> str | None:
    """The attribute of ``model`` that decodes the wire's ``id``; ``None``: it has none
    (its items' repeats cannot be told, and are handed out)."""
    for field in msgspec.structs.fields(model):
        if field.encode_name == "id":
            return field.name
    return None


class EventListOptions(TypedDict, total=False):
    """Filters and paging shared by the event lists; every key is optional.

    ``page_size`` defaults to 100, or :data:`FULL_PAGE_MAX` (10) for full payloads: a
    project's list sends at most 10 of those whatever it says, an issue's as many as asked
    (100 large events can pass ``max_body_size``); ``cursor``/``skip`` resume from a saved
    :class:`~sentry_async.Position`; ``limit`` caps the items handed out. ``sample=True``
    asks Sentry for a random sample instead of the newest events; ``False`` sends nothing
    (the newest first).

    Sentry pages these lists by offset and works a range without ``end`` out again from
    its clock on every page, so the events arriving during a walk push rows already handed
    out down onto the next page. The rows at the head of a page that the page before
    handed out, up to the first it did not, are dropped, and a position counts them as the
    server's rows they are: up to a page of arrivals between two requests brings neither a
    repeat nor a loss. More than a page's worth between two requests, or a repeat that is
    not at the head of its page (an event stored late among rows already handed out, or
    same-second events Sentry returns in another order), is handed out again: a
    duplicate, never a loss. An event deleted during the walk moves the rows the other
    way, and one event is skipped for each. ``start``/``end`` keep events newer than
    ``end`` out of the walk (and give a walk resumed in another process the same range).
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
        (10 per page unless ``page_size`` says otherwise: Sentry sends as many as asked).
        ``.raw()`` on the result yields each item's JSON bytes. Filters, paging and the
        repeats a walk drops while events arrive: :class:`EventListOptions`.

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
        """A project's events, newest first; ``full`` and ``.raw()`` as in :meth:`for_issue`
        (Sentry sends at most 10 full payloads per page, whatever ``page_size`` says).
        Without a time range, every event the organization's retention keeps."""
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
            names = hide_tokens(", ".join(sorted(map(str, unknown))))
            raise TypeError(f"unexpected keyword argument(s): {names}")
        page_size = options.get("page_size", FULL_PAGE_MAX if full else 100)
        check_page_size(page_size, "page_size")
        time = time_params(options.get("period"), options.get("start"), options.get("end"))
        paginator = self._client.paginate(
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
        return dataclasses.replace(paginator, repeat_id=event_key)

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
        """The issue's newest event, full payload
        (``/organizations/{org}/issues/{issue_id}/events/latest/``), among the events
        matching ``environment``, ``query`` and ``period``/``start``/``end``."""
        return await self.for_issue_event(org, issue_id, "latest", **selection)

    async def oldest(
        self, org: IdOrSlug, issue_id: IdOrSlug, **selection: Unpack[EventSelection]
    ) -> Event:
        """The issue's oldest event, full payload
        (``/organizations/{org}/issues/{issue_id}/events/oldest/``), among the events
        matching ``environment``, ``query`` and ``period``/``start``/``end``."""
        return await self.for_issue_event(org, issue_id, "oldest", **selection)

    async def recommended(
        self, org: IdOrSlug, issue_id: IdOrSlug, **selection: Unpack[EventSelection]
    ) -> Event:
        """The event Sentry recommends for the issue (its pick of the most helpful one),
        full payload
        (``/organizations/{org}/issues/{issue_id}/events/recommended/``), among the events
        matching ``environment``, ``query`` and ``period``/``start``/``end``."""
        return await self.for_issue_event(org, issue_id, "recommended", **selection)

    async def resolve(self, org: IdOrSlug, event_id: str) -> EventIdResolution:
        """Find the project and issue of an event id (transactions are not found)."""
        return await self._client.request(
            "GET",
            "/organizations/{org}/eventids/{event_id}/",
            path_params={"org": self._org(org), "event_id": _event_id(event_id)},
            type=EventIdResolution,
        )
