"""Discover queries: ``GET /organizations/{org}/events/``, rows shaped by the chosen fields."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from .._protocol.params import MAX_PAGE_SIZE, check_page_size, project_refs
from ..api.discover import DiscoverAPI
from ..models import DiscoverMeta, DiscoverResponse, discover_meta
from ..pagination import Paginator
from ._base import IdOrSlug, environments, listify, time_params
from .events import event_key

__all__ = ["MAX_FIELDS", "DiscoverResource", "check_sort", "function_alias"]

MAX_FIELDS = 20
"""Sentry refuses more than 20 fields per query."""

LARGE_PAGE_DATASETS = frozenset({"logs", "ourlogs", "tracemetrics"})
"""Datasets whose pages may hold up to 9999 rows (100 elsewhere); ``ourlogs`` is the older
name of ``logs``."""
MAX_LARGE_PAGE = 9999

Row = dict[str, Any]

_FUNCTION = re.compile(
    r"^(?P<function>[^\(]+)\((?P<columns>.*)\)( (as|AS) (?P<alias>(\w+)?(?!\d+)\w+))?$"
)
"""Sentry's ``FUNCTION_PATTERN``: ``name(arguments)``, optionally ``as alias``."""
_EQUATION_ALIAS = re.compile(r"^equation\[(\d+)\]$")


def _arguments(columns: str) -> list[str]:
    """``parse_arguments``: split on commas outside double quotes, stripped, empties dropped."""
    args: list[str] = []
    quoted = escaped = False
    start = 0
    for index, char in enumerate(columns):
        if escaped:
            escaped = False
        elif quoted and char == "\\":
            escaped = True
        elif char == '"':
            quoted = not quoted
        elif char == "," and not quoted:
            args.append(columns[start:index].strip())
            start = index + 1
    args.append(columns[start:].strip())
    return [arg for arg in args if arg]


def function_alias(field: str) -> str:
    """The name Sentry gives a function's column (``get_function_alias``): ``count()`` is
    ``count``, ``p95(transaction.duration)`` is ``p95_transaction_duration``; a field that
    is not a function is its own name. Sorts may name a function either way."""
    match = _FUNCTION.search(field)
    if match is None:
        return field
    if match.group("alias") is not None:
        return match.group("alias")
    columns = re.sub(r"[^\w]", "_", "_".join(_arguments(match.group("columns"))))
    return f"{match.group('function')}_{columns}".rstrip("_")


def check_sort(fields: Sequence[str], sorts: Sequence[str], *, auto_fields: bool) -> None:
    """Refuse, before sending, a sort Sentry's ``resolve_orderby`` answers with "Cannot sort by
    a field that is not selected.": each must name a selected column, a function by its
    alias, ``equation[N]`` for one of the equations, or (with ``auto_fields``, as Discover
    queries have) ``id`` when no aggregate is selected."""
    equations = [f for f in fields if f.startswith("equation|")]
    columns = [f for f in fields if not f.startswith("equation|")]
    aliases = {function_alias(f) for f in columns if _FUNCTION.search(f)}
    aggregated = bool(aliases) or any("(" in f for f in equations)
    for key in sorts:
        name = key.lstrip("-")
        numbered = _EQUATION_ALIAS.match(name)
        if (
            name in fields
            or function_alias(name) in aliases
            or (numbered is not None and int(numbered.group(1)) < len(equations))
            or (auto_fields and not aggregated and name == "id")
        ):
            continue
        raise ValueError(
            f"sort {key!r} must name a requested field, a function by its alias (count() as "
            "count) or equation[N] for one of the equations; Sentry refuses any other"
        )


def _field_names(fields: str | Sequence[str]) -> list[str]:
    """Discover's ``field`` values, checked: strings, none empty, and none starting or
    ending with a blank. Sentry keys each row by the field as sent, and a blank-padded
    field would be sent stripped (or, as it is, name no column): the rows would not be
    keyed by the field asked for."""
    names = [fields] if isinstance(fields, str) else list(fields)
    checked = listify(names, "fields") or []
    padded = [name for name in names if isinstance(name, str) and name.strip() != name]
    if padded:
        raise ValueError(
            f"fields must not start or end with blanks (got {padded!r}): rows are keyed "
            "by the field as it is sent"
        )
    return checked


def _page_type(item: Any) -> Any:
    # Older servers answer a query over no projects with a bare ``[]``.
    return DiscoverResponse[item] | list[item]


def _unwrap(body: DiscoverResponse[Any] | list[Any]) -> tuple[list[Any], DiscoverMeta | None]:
    if isinstance(body, list):
        return body, None
    return body.data, discover_meta(body.meta)


class DiscoverResource(DiscoverAPI):
    """``client.discover``."""

    __slots__ = ()

    def query(
        self,
        org: IdOrSlug,
        *,
        fields: Sequence[str],
        query: str | None = None,
        sort: str | Sequence[str] | None = None,
        project: IdOrSlug | Sequence[IdOrSlug] | None = None,
        environment: str | Sequence[str] | None = None,
        period: str | timedelta | None = None,
        start: datetime | None = None,
        end: datetime | None = None,
        dataset: str | None = None,
        allow_aggregate_conditions: bool | None = None,
        no_pagination: bool | None = None,
        page_size: int = 100,
        cursor: str | None = None,
        skip: int = 0,
        limit: int | None = None,
    ) -> Paginator[Row]:
        """Rows keyed by the requested field strings (``"count()"``, ``"title"``, ...); a
        field starting or ending with a blank is refused, since no row would be keyed by it.

        Each :class:`~sentry_async.Page` carries the response ``meta`` (field types and
        units). Sentry pages by offset: events arriving at the head during a walk push rows
        onto the next page; with ``id`` among the fields the rows a page repeats at its
        head are dropped, as the event lists drop them (see :class:`EventListOptions`);
        without it they come again. Pin ``start``/``end`` for exports.
        ``project`` takes ids or slugs (resolved to ids: Sentry takes ids only).
        ``page_size`` may go to 9999 for the ``logs`` and ``tracemetrics`` datasets.
        ``no_pagination=True`` asks for one response of at most ``page_size`` rows (100 at
        most, whatever the dataset) and follows no ``Link``: the rows past it are not
        fetched. ``False`` or ``None`` pages through every row.
        """
        field_list = _field_names(fields)
        if not field_list or len(field_list) > MAX_FIELDS:
            raise ValueError(f"fields must hold 1 to {MAX_FIELDS} field expressions")
        sorts = listify(sort, "sort")
        check_sort(field_list, sorts or [], auto_fields=True)
        # Sentry reads ``per_page`` with its default maximum (100) for one response.
        large = dataset in LARGE_PAGE_DATASETS and not no_pagination
        maximum = MAX_LARGE_PAGE if large else MAX_PAGE_SIZE
        check_page_size(page_size, "page_size", maximum=maximum)
        org_slug = self._org(org)
        project_refs(project)

        async def projects() -> dict[str, Any]:
            return {"project": await self._client.project_ids(org_slug, project)}

        paginator = self._client.paginate(
            "/organizations/{org}/events/",
            path_params={"org": org_slug},
            params={
                "field": field_list,
                "query": query,
                "sort": sorts,
                "environment": environments(environment),
                "dataset": dataset,
                "allowAggregateConditions": allow_aggregate_conditions,
                # Sentry reads any non-empty value as on, "0" included.
                "noPagination": True if no_pagination else None,
                **time_params(period, start, end),
            },
            lazy_params=projects,
            max_page_size=maximum,
            type=Row,
            page_type=_page_type,
            envelope=_unwrap,
            page_size=page_size,
            cursor=cursor,
            skip=skip,
            limit=limit,
        )
        if "id" not in field_list:
            return paginator
        # Rows of events: a row pushed onto the next page by events arriving at the head
        # is not handed out twice (the event lists' rule).
        return dataclasses.replace(paginator, repeat_id=event_key)
