"""Discover queries: ``GET /organizations/{org}/events/``, rows shaped by the chosen fields."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from .._protocol.params import check_page_size
from ..api.discover import DiscoverAPI
from ..models import DiscoverMeta, DiscoverResponse, discover_meta
from ..pagination import Paginator
from ._base import IdOrSlug, listify, time_params

__all__ = ["MAX_FIELDS", "DiscoverResource"]

MAX_FIELDS = 20
"""Sentry refuses more than 20 fields per query."""

Row = dict[str, Any]


def _page_type(item: Any) -> Any:
    return DiscoverResponse[item]


def _unwrap(body: DiscoverResponse[Any]) -> tuple[list[Any], DiscoverMeta | None]:
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
        page_size: int = 100,
        cursor: str | None = None,
        skip: int = 0,
        limit: int | None = None,
    ) -> Paginator[Row]:
        """Rows keyed by the requested field strings (``"count()"``, ``"title"``, ...).

        Each :class:`~sentry_async.Page` carries the response ``meta`` (field types and
        units). Pin ``start``/``end`` for exports: offsets drift while new events arrive.
        """
        field_list = listify(fields if not isinstance(fields, str) else [fields], "fields")
        if not field_list or len(field_list) > MAX_FIELDS:
            raise ValueError(f"fields must hold 1 to {MAX_FIELDS} field expressions")
        sorts = listify(sort, "sort")
        if sorts:
            plain = set(field_list)
            for key in sorts:
                name = key[1:] if key.startswith("-") else key
                if name not in plain and not name.startswith("equation"):
                    raise ValueError(f"sort field {name!r} must be one of the requested fields")
        check_page_size(page_size, "page_size")
        return self._client.paginate(
            "/organizations/{org}/events/",
            path_params={"org": self._org(org)},
            params={
                "field": field_list,
                "query": query,
                "sort": sorts,
                "project": listify(project, "project"),
                "environment": listify(environment, "environment"),
                "dataset": dataset,
                **time_params(period, start, end),
            },
            type=Row,
            page_type=_page_type,
            envelope=_unwrap,
            page_size=page_size,
            cursor=cursor,
            skip=skip,
            limit=limit,
        )
