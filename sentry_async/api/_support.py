"""What the generated groups share: the model base, request bodies, project ids, streams.

Hand-written; the generated modules import from here so that a change of policy (how
``project=`` values are resolved, how uploads are sent) is one edit, not 200.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import aclosing
from typing import TYPE_CHECKING, Any, Generic, TypeVar, cast

import msgspec
from msgspec import UNSET, UnsetType

from .._protocol.links import link_header
from .._protocol.params import Params, check_slug, is_numeric_id
from .._streaming import FileInput, upload
from .._streaming import download as _download
from .._streaming import stream as _stream
from ..pagination import PageFetcher, Paginator, RawPage

if TYPE_CHECKING:
    from ..client import SentryClient

__all__ = [
    "UNSET",
    "APIModel",
    "DataPage",
    "FileInput",
    "UnsetType",
    "body",
    "data_envelope",
    "data_page",
    "download",
    "field_envelope",
    "field_page",
    "given",
    "names_nothing",
    "paged_write",
    "paginate",
    "paginate_projects",
    "project_ids",
    "stream",
    "union",
    "upload",
]

T = TypeVar("T")
U = TypeVar("U")

Page = tuple[int, "str | None", int, "int | None"]
"""A list method's ``(page_size, cursor, skip, limit)`` arguments, handed on as they are."""


class APIModel(
    msgspec.Struct, kw_only=True, omit_defaults=True, forbid_unknown_fields=False, gc=False
):
    """Generated models: every field optional unless the override table says the server
    always sends it, unknown keys ignored, wire names kept through ``name=``."""


class DataPage(msgspec.Struct, Generic[T], forbid_unknown_fields=False, gc=False):
    """A list wrapped as ``{"data": [...], "meta": ...}`` (replays, Explore)."""

    data: list[T] = msgspec.field(default_factory=list)
    meta: Any = None


def data_page(item_type: Any) -> Any:
    return DataPage[item_type]


def data_envelope(page: DataPage[Any]) -> tuple[list[Any], Any]:
    return page.data, page.meta


def body(fields: Mapping[str, Any]) -> dict[str, Any]:
    """A JSON body from keyword arguments: ``UNSET`` ones are left out, ``None`` is null."""
    return {key: value for key, value in fields.items() if value is not UNSET}


def union(first: type[T], second: type[U]) -> type[T | U]:
    """``first | second`` as one decode target, for an answer that is one or the other
    (msgspec tells a list from an object by the JSON type)."""
    return cast("type[T | U]", first | second)


async def paged_write(
    client: SentryClient,
    method: str,
    path: str,
    *,
    path_params: Mapping[str, str | int],
    params: Params | None = None,
    json: Any = None,
    type: type[T],
    other: type[U],
) -> list[T] | U:
    """A write whose server changes every match at once and pages its answer (a list of
    ``type``, or ``other``): the write is sent once, its answer is the walk's first page,
    and the pages its ``Link`` points to are read with the GET of the same path and
    filters, so the list holds every object.

    Sending the write again for each page would change every match again.
    """
    response = await client.send(method, path, path_params=path_params, params=params,
                                 json=json)
    listed: Any = list
    answer: list[T] | U = client.decode(response, union(listed[type], other))
    if not isinstance(answer, list):
        return answer
    first = RawPage(items=answer, link=link_header(response.headers),
                    rate_limit=response.rate_limit)
    listing = client.paginate(path, path_params=path_params, params=params, type=type)
    later = listing._fetch

    async def fetch(cursor: str | None, size: int | None) -> RawPage:
        return first if cursor is None else await later(cursor, size)

    return await dataclasses.replace(listing, _fetch=fetch).collect()


def given(*values: Any) -> bool:
    """Whether any of a call's query values will be sent: not ``None``, not empty."""
    for value in values:
        if isinstance(value, (str, list, tuple, set, frozenset)):
            if value:
                return True
        elif value is not None:
            return True
    return False


def names_nothing(value: Any) -> bool:
    """Whether a list filter was given but names nothing: an empty list, or only blank
    names. Such a filter is left out of the query, which widens a call to everything."""
    if value is None:
        return False
    items = [value] if isinstance(value, (str, int)) else list(value)
    return not any(not isinstance(item, str) or item.strip() for item in items)


def _values(project: str | int | Sequence[str | int] | None) -> list[str] | None:
    if project is None:
        return None
    values = [project] if isinstance(project, (str, int)) else list(project)
    return [check_slug(value, "project") for value in values]


def _is_id(value: str) -> bool:
    return is_numeric_id(value) or value == "-1"


async def project_ids(
    client: SentryClient, org: str | int, project: str | int | Sequence[str | int] | None
) -> list[str] | None:
    """``project=`` takes numeric ids; slugs are resolved by :meth:`SentryClient.project_ids`
    (one cache per client and org, shared with the hand-written resources).

    ``-1`` (every project the token can see) passes through.
    """
    return await client.project_ids(check_slug(org, "org"), project)


ProjectFilter = tuple[str, "str | int", "str | int | Sequence[str | int] | None"]
"""A file method's ``project=`` filter: its query name, the org, and the caller's value."""


def stream(
    client: SentryClient,
    path: str,
    *,
    path_params: Mapping[str, str | int],
    params: Mapping[str, Any],
    chunk_size: int = 65536,
    project: ProjectFilter | None = None,
) -> AsyncIterator[bytes]:
    """A GET's body in chunks; ``project=`` slugs are resolved to ids when it starts."""
    if project is None:
        return _stream(client, path, path_params=path_params, params=params,
                       chunk_size=chunk_size)
    return _stream_projects(client, path, path_params, params, chunk_size, project)


async def _stream_projects(
    client: SentryClient,
    path: str,
    path_params: Mapping[str, str | int],
    params: Mapping[str, Any],
    chunk_size: int,
    project: ProjectFilter,
) -> AsyncIterator[bytes]:
    name, org, value = project
    resolved = {**params, name: await project_ids(client, org, value)}
    async with aclosing(_stream(client, path, path_params=path_params, params=resolved,
                                chunk_size=chunk_size)) as chunks:
        async for chunk in chunks:
            yield chunk


async def download(
    client: SentryClient,
    path: str,
    *,
    path_params: Mapping[str, str | int],
    params: Mapping[str, Any],
    to: str | os.PathLike[str],
    project: ProjectFilter | None = None,
) -> int:
    """A GET's body written to ``to``; ``project=`` slugs are resolved to ids first."""
    if project is not None:
        name, org, value = project
        params = {**params, name: await project_ids(client, org, value)}
    return await _download(client, path, path_params=path_params, params=params, to=to)


def field_page(body: type[msgspec.Struct], wire: str) -> Any:
    """Item type -> ``body``'s model with its ``wire`` list holding items of that type: the
    page type of an answer whose server pages one of its lists."""
    name = next(f.name for f in msgspec.structs.fields(body) if f.encode_name == wire)

    def page_type(item_type: Any) -> Any:
        field: Any = msgspec.field(default_factory=list, name=None if name == wire else wire)
        return msgspec.defstruct(body.__name__, [(name, list[item_type], field)], bases=(body,))

    return page_type


def field_envelope(body: type[msgspec.Struct], wire: str) -> Any:
    """Page -> its paged list's items, with the whole page as their ``meta``."""
    name = next(f.name for f in msgspec.structs.fields(body) if f.encode_name == wire)

    def unwrap(page: Any) -> tuple[list[Any], Any]:
        return getattr(page, name), page

    return unwrap


def _paging(
    page: Page, page_size_param: str, envelope: str | None, body: type[msgspec.Struct] | None
) -> dict[str, Any]:
    page_size, cursor, skip, limit = page
    options: dict[str, Any] = {
        "page_size": page_size,
        "page_size_param": page_size_param,
        "cursor": cursor,
        "skip": skip,
        "limit": limit,
    }
    if envelope == "data" and body is None:
        options.update(envelope=data_envelope, page_type=data_page)
    elif envelope is not None:
        if body is None:
            raise TypeError(f"envelope={envelope!r} needs the answer's model as body=")
        options.update(
            envelope=field_envelope(body, envelope), page_type=field_page(body, envelope)
        )
    return options


def paginate(
    client: SentryClient,
    path: str,
    *,
    path_params: Mapping[str, str],
    params: Mapping[str, Any],
    type: type[T],
    page: Page,
    page_size_param: str = "per_page",
    envelope: str | None = None,
    body: type[msgspec.Struct] | None = None,
) -> Paginator[T]:
    """:meth:`SentryClient.paginate` for a generated list method: its paging arguments in
    one tuple, the page size sent as ``per_page`` unless the endpoint reads another name,
    ``envelope="data"`` for lists wrapped as ``{"data": [...]}``, and ``envelope=`` a
    field with ``body=`` the answer's model where the server pages one list of an object
    (each page's ``meta`` is then the whole object)."""
    options = _paging(page, page_size_param, envelope, body)
    return client.paginate(path, path_params=path_params, params=params, type=type, **options)


def paginate_projects(
    client: SentryClient,
    path: str,
    *,
    org: str | int,
    project: tuple[str, str | int | Sequence[str | int] | None],
    path_params: Mapping[str, str],
    params: Mapping[str, Any],
    type: Any,
    page: Page,
    page_size_param: str = "per_page",
    envelope: str | None = None,
    body: type[msgspec.Struct] | None = None,
) -> Paginator[Any]:
    """:func:`paginate` whose ``project=`` slugs are resolved on the first fetch.

    List methods return their paginator without awaiting anything; a slug lookup, when one
    is needed, happens when iteration starts.
    """
    options: dict[str, Any] = {"path_params": path_params, "type": type}
    options.update(_paging(page, page_size_param, envelope, body))
    name, value = project
    values = _values(value)
    if values is None or all(_is_id(v) for v in values):
        return client.paginate(path, params={**params, name: values}, **options)
    fetchers: dict[Any, PageFetcher] = {}

    def retype(item_type: Any) -> PageFetcher:
        async def fetch(cursor: str | None, size: int | None) -> Any:
            inner = fetchers.get(item_type)
            if inner is None:
                ids = await project_ids(client, org, values)
                paginator = client.paginate(
                    path, params={**params, name: ids}, **{**options, "type": item_type}
                )
                inner = fetchers[item_type] = paginator._fetch
            return await inner(cursor, size)

        return fetch

    template = client.paginate(path, params=params, **options)
    return dataclasses.replace(template, _fetch=retype(type), retype=retype)
