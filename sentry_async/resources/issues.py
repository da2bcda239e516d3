"""Issues (Sentry's "groups"): list, get, update, delete, bulk changes, hashes, tag values."""

from __future__ import annotations

import builtins
import re
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal, cast, overload

import msgspec

from .._protocol.params import (
    check_page_size,
    id_chunks,
    id_param_cost,
    is_numeric_id,
    project_refs,
    quoted,
    same_short_id,
    scoped_id_chunks,
)
from .._protocol.params import issue_id as check_issue_id
from ..errors import (
    APIError,
    BulkPartialError,
    IssuesNotFound,
    NotFound,
    SentryError,
    TransportError,
    UntrustedHost,
    WrongEventLoop,
)
from ..models import (
    Issue,
    IssueHash,
    IssueHashSummary,
    IssueUpdateResult,
    TagDetail,
    TagValue,
)
from ..pagination import Paginator
from ._base import IdOrSlug, Resource, environments, listify, time_params

__all__ = ["ALL_UNRESOLVED", "BULK_LIMIT", "DEFAULT_QUERY", "BulkResult", "IssuesResource"]

BULK_LIMIT = 1000
"""Ids the client sends per bulk call. Sentry takes any number of ids; 1000
(``BULK_MUTATION_LIMIT``) is how many issues it changes when it searches instead, which a
bulk update does when none of its ids matches."""

_GONE = frozenset({"pending_deletion", "deletion_in_progress", "pending_merge"})
"""Statuses of issues being deleted or merged away: counted as missing (``update_groups``
would still change them; the issue a merge went into is the one to name)."""

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
_FOR_REVIEW = re.compile(r"(?<!\S)is:for_review(?!\S)")
"""The term the ``inbox`` sort requires; Sentry refuses the sort on any other search."""
_GROUP_STATS_PERIODS = frozenset({"", "24h", "14d", "auto"})
_TAG_VALUE_SORTS = frozenset({"date", "age", "count"})

DEFAULT_QUERY = "is:unresolved issue.priority:[high, medium]"
"""What Sentry searches when no ``query`` is sent: low-priority issues are left out."""

ALL_UNRESOLVED = "is:unresolved"
"""Every unresolved issue, whatever its priority: pass as ``query=``."""


class _ShortIdMatch(msgspec.Struct):
    groupId: str
    shortId: str


class _FoundProject(msgspec.Struct):
    id: str


class _Found(msgspec.Struct):
    id: str
    project: _FoundProject
    status: str | None = None


@dataclass(frozen=True, slots=True)
class BulkResult:
    """What a bulk call did: the ids sent, the calls made, and each call's answer.

    ``results`` holds one entry per call (at most 1000 ids, and a request line under
    8 KB): the attributes Sentry set, or ``None`` where it answered 204 (a delete, which
    Sentry always answers so, whether or not an id matched; an update whose ids all went
    away between the check and the call). Short ids are sent as the numeric ids they
    resolve to, numeric ids as Sentry reads them (``"05"`` as ``"5"``). ``missing``: ids of
    a bulk update that named no issue in scope, as given (numeric ones as Sentry reads
    them), left out of the calls: a short id too that matches nothing, or that leads to the
    issue it was merged into (a bulk delete checks nothing and leaves it empty).
    """

    ids: list[str]
    calls: int
    results: list[IssueUpdateResult | None]
    missing: list[str] = field(default_factory=list)


def _changes(changes: Mapping[str, Any]) -> dict[str, Any]:
    if not changes:
        raise ValueError("no changes given: pass e.g. status='resolved'")
    body: dict[str, Any] = {}
    for key, value in changes.items():
        wire = _UPDATE_FIELDS.get(key)
        if wire is None:
            known = ", ".join(sorted(_UPDATE_FIELDS))
            raise ValueError(f"unknown issue field {key!r}; known fields: {known}")
        if key == "assigned_to" and value is None:
            # ``assignedTo`` is an ActorField without ``allow_null``: null is a 400, and
            # the empty string is how Sentry unassigns.
            value = ""
        body[wire] = value
    return body


def _may_have_acted(error: SentryError) -> bool:
    """Whether a bulk call that failed with ``error`` may have changed issues.

    Only a request that provably never left, or one refused before Sentry's handler ran (a
    4xx other than 400: the rate limiter's 429, authentication, permissions, a proxy's size
    limit), certainly did nothing; so did a 400 of ``GroupValidator``, whose body maps
    fields to their errors (``validate_request`` runs before any change). An answer that
    broke off may follow the change; another 400 can come after part of it
    (``update_groups`` sets the priority before refusing a release resolution across
    projects); a 502 or 504 may be a proxy's, sent while Sentry carried on.
    """
    if isinstance(error, TransportError):
        return error.maybe_sent or error.status is not None
    if isinstance(error, APIError):
        if error.status == 400:
            return not _field_errors(error.data)
        return not 400 < error.status < 500
    return not isinstance(error, (UntrustedHost, WrongEventLoop))


def _field_errors(data: Any) -> bool:
    """Whether a 400's body is a serializer's field->errors map: Sentry's own refusals
    carry a ``detail`` (or are DRF's bare list of messages)."""
    return isinstance(data, Mapping) and bool(data) and "detail" not in data


def _view(view_id: str | int | None, query: str | None, sort: str | None) -> dict[str, str]:
    """``viewId`` as ``build_query_params_from_request`` reads it: with ``savedSearch=0``
    and no query only, the view's sort replacing any other, its id read with ``int()``."""
    if view_id is None:
        return {}
    if query is not None or sort is not None:
        raise ValueError(
            "view_id searches with the view's own query and sort: pass neither query nor "
            "sort with it (Sentry ignores the view when a query is given)"
        )
    text = view_id.strip() if isinstance(view_id, str) else view_id
    if isinstance(text, bool) or not is_numeric_id(str(text)) or not int(text):
        raise ValueError(f"view_id must be a view's numeric id (got {quoted(view_id)})")
    return {"savedSearch": "0", "viewId": str(int(text))}


def _ids(ids: Iterable[str | int]) -> list[str]:
    if isinstance(ids, (str, int)):
        raise ValueError("ids must be a list of issue ids, not a single id")
    return [check_issue_id(value) for value in ids]


_ISSUE_ID_QUERY = "&query=issue.id%3A%5B%5D"
"""The ``query=issue.id:[...]`` of a bulk update without its ids, counted fully
percent-encoded: the longest form a proxy on the way may see."""


def _updated_id_cost(item: str) -> int:
    """An id of a bulk update goes out twice: ``&id=<id>``, and ``<id>%2C`` in its query."""
    return id_param_cost(item) + len(item) + len("%2C")


def _group_cost(item: str) -> int:
    """An id looked up as ``&group=<id>``."""
    return len(item) + len("&group=")


def _one_call(calls: int) -> None:
    """A merge must fit in one call: ``handle_merge`` picks one parent per call."""
    if calls > 1:
        raise ValueError(
            f"merge=True takes the ids of one call only (at most {BULK_LIMIT} ids and a "
            "request line under 8 KB; these need several): Sentry merges each call under "
            "a parent of its own"
        )


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
        group_stats_period: str | None = None,
        short_id_lookup: bool | None = None,
        view_id: str | int | None = None,
        page_size: int = 100,
        cursor: str | None = None,
        skip: int = 0,
        limit: int | None = None,
    ) -> Paginator[Issue]:
        """The org's issues, lazily.

        ``query=None`` sends no query and gets Sentry's default, :data:`DEFAULT_QUERY`
        (``is:unresolved issue.priority:[high, medium]``): low-priority issues are left out.
        ``query=ALL_UNRESOLVED`` (``"is:unresolved"``) asks for every unresolved issue and
        ``query=""`` for every issue. ``project`` takes ids or slugs (slugs are resolved to
        ids first: Sentry takes ids only); ``None`` sends none, which Sentry reads as the
        user's member projects, and ``-1`` is every project the token can see. A query that
        is an event id, or a short id with ``short_id_lookup=True``, answers the matching
        issue as one page with ``page.direct_hit`` set. Page sizes go out as ``limit``, as
        Sentry expects.

        ``view_id`` searches with a saved issue view's query and sort, so it takes neither
        ``query`` nor ``sort`` (Sentry ignores the view when a query is given, and sorts by
        the view's). It goes out with ``savedSearch=0``, without which Sentry never reads it;
        a server without issue views (``organizations:issue-stream-custom-views``) applies
        the user's pinned search then, if any, and an unknown view id is its default search.
        """
        view = _view(view_id, query, sort)
        if sort is not None and sort not in _SORTS:
            raise ValueError(f"sort must be one of {', '.join(sorted(_SORTS))} (got {sort!r})")
        if sort == "inbox" and not _FOR_REVIEW.search(query or ""):
            raise ValueError(
                "sort='inbox' needs an inbox search: a query with is:for_review "
                "(e.g. 'is:unresolved is:for_review')"
            )
        if group_stats_period is not None and group_stats_period not in _GROUP_STATS_PERIODS:
            raise ValueError(
                "group_stats_period must be '', '24h', '14d' or 'auto' "
                f"(got {group_stats_period!r})"
            )
        org_slug = self._org(org)
        params: dict[str, Any] = {
            "query": query,
            "environment": environments(environment),
            "sort": sort,
            "expand": listify(expand, "expand"),
            "collapse": listify(collapse, "collapse"),
            "groupStatsPeriod": group_stats_period,
            "shortIdLookup": short_id_lookup,
            **view,
            **time_params(period, start, end),
        }
        return self._client.paginate(
            "/organizations/{org}/issues/",
            path_params={"org": org_slug},
            params=params,
            lazy_params=self._project_param(org_slug, project),
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
        """One issue, by numeric id or short id (``PROJ-1A``), with its detail-only fields."""
        return await self._client.request(
            "GET",
            "/organizations/{org}/issues/{issue_id}/",
            path_params={"org": self._org(org), "issue_id": check_issue_id(issue_id)},
            params={
                "environment": environments(environment),
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
            path_params={"org": self._org(org), "issue_id": check_issue_id(issue_id)},
            json=body,
            idempotent=not (_NOT_IDEMPOTENT & changes.keys()),
            type=cast("type[Issue | None]", Issue | None),  # an answer without a body is None
        )

    async def delete(self, org: IdOrSlug, issue_id: IdOrSlug) -> None:
        """Schedule one issue for deletion (Sentry answers 202 and deletes asynchronously).

        The id of an issue merged into another reaches that other issue, here as in
        :meth:`get` and :meth:`update` (Sentry's group redirect): deleting it deletes the
        issue it was merged into.
        """
        await self._client.send(
            "DELETE",
            "/organizations/{org}/issues/{issue_id}/",
            path_params={"org": self._org(org), "issue_id": check_issue_id(issue_id)},
        )

    async def bulk_update(
        self,
        org: IdOrSlug,
        ids: Iterable[IdOrSlug],
        *,
        project: IdOrSlug | Sequence[IdOrSlug] | None = None,
        **changes: Any,
    ) -> BulkResult:
        """Apply the same change to many issues (numeric or short ids), 1000 ids per call.

        The ids are looked up first (``GET ...?group=``): when none matches, Sentry would
        change up to 1000 issues of its default search instead, so
        :class:`~sentry_async.IssuesNotFound` is raised and nothing is sent. Ids that match
        nothing are left out and listed, as given, in the result's ``missing``; so is the
        short id of an issue merged into another (its lookup leads to that other issue,
        which its numeric id never reaches). Each call also sends ``query=issue.id:[...]``
        so that a search never reaches another issue.
        ``project=None`` looks the ids up in every project the token can see
        (``project=-1``), not only those of the user's teams; a server older than September
        2025 without the multi-project feature refuses that
        (:class:`~sentry_async.MultiProjectRefused`) when the organization has several
        projects: pass ``project=``. Each call then names the projects of its own issues
        only: Sentry checks the change against every project a call names (a release of
        ``status_details`` must be one of each, a team assigned in a closed organization
        must have access to each). ``assigned_to=None`` unassigns (sent as ``""``).

        ``merge=True`` must fit in one call (``handle_merge`` picks one parent per call)
        and every id must exist; otherwise ``ValueError`` / ``IssuesNotFound`` before any
        change.

        If a call fails, the first or only one too, :class:`~sentry_async.BulkPartialError`
        says which ids were already changed (``done``), which were certainly not
        (``not_done``), and which the failed call may have changed (``uncertain``: it may
        have reached Sentry). Any other error comes from the look-ups before the first
        call, or from a first call refused before Sentry acted (a 400 naming the fields it
        refused, ``GroupValidator``'s, included): nothing was changed.

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
        """Delete many issues, 1000 ids per call (partial failures as in :meth:`bulk_update`).

        ``project=None`` means every project the token can see (``project=-1``): a delete
        checks nothing per project. Sentry answers 204 whether or not an id matched, and
        never searches when ids are given. A short id that matches nothing, or that leads to
        the issue it was merged into (whose deletion its numeric id never reaches), raises
        :class:`~sentry_async.NotFound` before any call.
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

    def _project_param(
        self, org: str, project: IdOrSlug | Sequence[IdOrSlug] | None
    ) -> Callable[[], Awaitable[dict[str, Any]]]:
        project_refs(project)  # refuse bad values now, not at the first page

        async def resolve() -> dict[str, Any]:
            return {"project": await self._client.project_ids(org, project)}

        return resolve

    async def _numeric(
        self, org: str, id_list: builtins.list[str], *, keep_unknown: bool = False
    ) -> builtins.list[str]:
        """Bulk calls take numeric ``id=`` only: short ids are looked up first.

        A short id whose lookup answers another issue (``/shortids/`` follows a merge to
        the issue it went into, which a bulk call never reaches by the merged issue's
        numeric id) names no issue, as one that matches nothing (the lookup's 404). With
        ``keep_unknown`` such a short id stays as it is, for the caller to list as missing;
        otherwise it raises :class:`~sentry_async.NotFound`, as the lookup's 404 and any
        other failure of it are raised.
        """
        out: builtins.list[str] = []
        for value in id_list:
            if is_numeric_id(value):
                out.append(value)
                continue
            path_params = {"org": org, "short_id": value}
            try:
                match = await self._client.request(
                    "GET",
                    "/organizations/{org}/shortids/{short_id}/",
                    path_params=path_params,
                    type=_ShortIdMatch,
                )
            except NotFound:
                if not keep_unknown:
                    raise
                out.append(value)
                continue
            if same_short_id(value, match.shortId):
                out.append(match.groupId)
            elif keep_unknown:
                out.append(value)
            else:
                url = self._client.url_for("/organizations/{org}/shortids/{short_id}/", path_params)
                raise NotFound(
                    404,
                    method="GET",
                    url=str(url),
                    detail=f"{value} names no issue now: its lookup leads to the issue it "
                    f"went into, {match.shortId}",
                )
        return out

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
        projects = await self._client.project_ids(org_slug, project)
        # Without ``project`` Sentry acts on the user's member projects only.
        scope = [("project", p) for p in projects or ("-1",)]
        base = self._client.url_for("/organizations/{org}/issues/", {"org": org_slug})
        scoped_length = len(str(base.extend_query(scope))) + 1
        if method == "DELETE":
            # ``schedule_tasks_to_delete_groups`` never searches when ids are given, and
            # validates nothing per project: the request's scope is sent as it is.
            numeric = await self._numeric(org_slug, id_list)
            chunks = id_chunks(numeric, base_length=scoped_length, limit=BULK_LIMIT)
            calls = [(chunk, scope) for chunk in chunks]
            return await self._send(method, org_slug, numeric, calls, body, idempotent)
        # Each call names its issues' projects only: ``update_groups`` validates the change
        # against every project of the request (a release in each, an assignee's access).
        update_length = len(str(base)) + 1 + len(_ISSUE_ID_QUERY)
        merge = bool(body and body.get("merge"))
        if merge:
            _one_call(len(id_chunks(id_list, base_length=update_length, limit=BULK_LIMIT,
                                    cost_of=_updated_id_cost)))
        numeric = await self._numeric(org_slug, id_list, keep_unknown=True)
        # A short id still here names no issue: missing, and no ``group=`` (ints only).
        checked = [value for value in numeric if is_numeric_id(value)]
        found = await self._existing(org_slug, checked, scoped_length, scope)
        pairs = zip(id_list, numeric, strict=True)
        missing = [given for given, value in pairs if value not in found]
        sent = [value for value in numeric if value in found]
        if not sent or (merge and missing):
            raise IssuesNotFound(missing)
        split = scoped_id_chunks(sent, found, base_length=update_length, limit=BULK_LIMIT,
                                 cost_of=_updated_id_cost)
        if merge:
            # Short ids resolve to numeric ids of another length: checked again, unsent.
            _one_call(len(split))
        calls = [(chunk, [("project", p) for p in ids]) for chunk, ids in split]
        result = await self._send(method, org_slug, sent, calls, body, idempotent)
        return BulkResult(ids=result.ids, calls=result.calls, results=result.results,
                          missing=missing)

    async def _existing(
        self,
        org: str,
        numeric: builtins.list[str],
        base_length: int,
        scope: builtins.list[tuple[str, str]],
    ) -> dict[str, str]:
        """The ids that name an issue in scope, each with its project's id: ``group=``
        answers exactly those groups, unpaginated, without searching (issues being deleted
        count as gone)."""
        found: dict[str, str] = {}
        for chunk in id_chunks(numeric, base_length=base_length, limit=BULK_LIMIT,
                               cost_of=_group_cost):
            params: builtins.list[tuple[str, str]] = [("group", value) for value in chunk]
            params.extend(scope)
            rows = await self._client.request(
                "GET",
                "/organizations/{org}/issues/",
                path_params={"org": org},
                params=params,
                type=builtins.list[_Found],
            )
            found.update((row.id, row.project.id) for row in rows if row.status not in _GONE)
        return found

    async def _send(
        self,
        method: str,
        org: str,
        numeric: builtins.list[str],
        calls: builtins.list[tuple[builtins.list[str], builtins.list[tuple[str, str]]]],
        body: dict[str, Any] | None,
        idempotent: bool,
    ) -> BulkResult:
        """One request per call: its ids, and the projects it names."""
        results: builtins.list[IssueUpdateResult | None] = []
        done: builtins.list[str] = []
        for chunk, scope in calls:
            params: builtins.list[tuple[str, str]] = [("id", value) for value in chunk]
            if method == "PUT":
                # When no id matches, Sentry searches: this search finds only these ids.
                params.append(("query", f"issue.id:[{','.join(chunk)}]"))
            params.extend(scope)
            try:
                response = await self._client.send(
                    method,
                    "/organizations/{org}/issues/",
                    path_params={"org": org},
                    params=params,
                    json=body,
                    idempotent=idempotent,
                )
            except SentryError as exc:
                failed = chunk if _may_have_acted(exc) else []
                if not done and not failed:
                    # Nothing changed (a refusal before Sentry acted): the call's own error
                    # says so, and a caller's ``except Forbidden`` still holds.
                    raise
                raise BulkPartialError(
                    exc,
                    done=done,
                    uncertain=failed,
                    not_done=numeric[len(done) + len(failed) :],
                ) from exc
            # Sent and answered: Sentry has acted, whether or not the answer reads.
            done.extend(chunk)
            try:
                if response.status == 204 or not response.body.strip():
                    results.append(None)
                else:
                    results.append(self._client.decode(response, IssueUpdateResult))
            except SentryError as exc:
                raise BulkPartialError(exc, done=done, not_done=numeric[len(done) :]) from exc
        return BulkResult(ids=numeric, calls=len(results), results=results)

    @overload
    def hashes(
        self,
        org: IdOrSlug,
        issue_id: IdOrSlug,
        *,
        full: Literal[True] = ...,
        page_size: int = ...,
        cursor: str | None = ...,
        skip: int = ...,
        limit: int | None = ...,
    ) -> Paginator[IssueHash]: ...

    @overload
    def hashes(
        self,
        org: IdOrSlug,
        issue_id: IdOrSlug,
        *,
        full: Literal[False],
        page_size: int = ...,
        cursor: str | None = ...,
        skip: int = ...,
        limit: int | None = ...,
    ) -> Paginator[IssueHashSummary]: ...

    @overload
    def hashes(
        self,
        org: IdOrSlug,
        issue_id: IdOrSlug,
        *,
        full: bool,
        page_size: int = ...,
        cursor: str | None = ...,
        skip: int = ...,
        limit: int | None = ...,
    ) -> Paginator[IssueHash] | Paginator[IssueHashSummary]: ...

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
    ) -> Paginator[IssueHash] | Paginator[IssueHashSummary]:
        """The fingerprint hashes grouped into an issue, each with its latest event: a full
        event, or with ``full=False`` an event summary (:class:`IssueHashSummary`)."""
        return self._client.paginate(
            "/organizations/{org}/issues/{issue_id}/hashes/",
            path_params={"org": self._org(org), "issue_id": check_issue_id(issue_id)},
            params={"full": full},
            type=cast(Any, IssueHash if full else IssueHashSummary),
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
            path_params={"org": self._org(org), "issue_id": check_issue_id(issue_id), "key": key},
            params={"environment": environments(environment)},
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
        if sort is not None and sort not in _TAG_VALUE_SORTS:
            # Anything else (``-date``, ``id``) is silently read as "by id" on the server.
            raise ValueError(f"sort must be one of date, age, count (got {sort!r})")
        return self._client.paginate(
            "/organizations/{org}/issues/{issue_id}/tags/{key}/values/",
            path_params={"org": self._org(org), "issue_id": check_issue_id(issue_id), "key": key},
            params={"environment": environments(environment), "sort": sort},
            type=TagValue,
            page_size=page_size,
            cursor=cursor,
            skip=skip,
            limit=limit,
        )
