"""Time series: event stats (``events-stats``) and organization usage (``stats_v2``)."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta, timezone
from typing import Any

import anyio
import msgspec

from .._protocol.params import format_datetime, period_seconds, project_refs
from .._transport import Response
from ..errors import DecodeError
from ..models import EventsStats, UsageGroup, UsageStats, parse_events_stats
from ._base import IdOrSlug, Resource, environments, listify, time_params
from .discover import check_sort

__all__ = ["StatsResource"]

MAX_TOP_EVENTS = 10
_INTERVAL = re.compile(r"^\d+[smhdw]?$")
_USAGE_GROUPS = frozenset({"outcome", "category", "reason", "project"})
_USAGE_FIELDS = frozenset({"sum(quantity)", "sum(times_seen)"})
USAGE_PROJECT_BATCH = 100
"""Projects per ``stats_v2`` request when grouping by project: larger sets can lose rows."""
USAGE_MAX_POINTS = 1000
"""Intervals one ``stats_v2`` query may span; Sentry answers 400 past it."""
USAGE_INTERVALS = ("1h", "2h", "4h", "6h", "12h", "1d")
"""The intervals ``usage()`` picks from when none is given (each divides a day)."""
_SERVER_RANGE = 90 * 86400
"""The range Sentry searches when none is given."""
EVENTS_MAX_POINTS = 10_000
"""``MAX_ROLLUP_POINTS``: buckets one ``events-stats`` series may have."""
RPC_DATASETS = frozenset(
    {"spans", "logs", "ourlogs", "tracemetrics", "uptime_results", "profile_functions"}
)
"""The datasets ``events-stats`` reads over RPC (Sentry's ``RPC_DATASETS``): an interval
longer than their range is replaced by the default interval too."""
_ROUNDED_OVER = 3600
"""A ``statsPeriod`` longer than this is rounded out (``quantize_date_params``)."""
_ROUNDED_COARSER_FROM = 30 * 86400
"""From this long on the rounding is to 15 minutes, below it to the minute."""


def _span(window: dict[str, str], start: datetime | None, end: datetime | None) -> int:
    """The seconds a query's range spans: ``start``/``end``, its period, or Sentry's default."""
    if start is not None and end is not None:
        return int((end - start).total_seconds())
    if "statsPeriod" in window:
        return period_seconds(window["statsPeriod"])
    return _SERVER_RANGE


def _duration(seconds: int) -> str:
    """``30d``, ``36h``, ``90m`` or ``45s``: a range as a caller would have written it."""
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def _events_range(window: dict[str, str], span: int) -> tuple[int, int]:
    """The shortest and the longest range Sentry may bucket an ``events-stats`` query of
    ``span`` seconds (:func:`_span`) over.

    ``quantize_date_params`` rounds a ``statsPeriod`` of more than an hour out to windows
    of a minute (of 15 minutes from 30 days up) on the server's clock, the start strictly
    earlier: a period of whole windows gains one window, any other one or two. ``start`` and
    ``end``, and Sentry's default range, are not rounded."""
    if "statsPeriod" not in window or span <= _ROUNDED_OVER:
        return span, span
    size = 900 if span >= _ROUNDED_COARSER_FROM else 60
    return span // size * size + size, -(-span // size) * size + size


def _events_interval(
    interval: str | timedelta | None,
    window: dict[str, str],
    start: datetime | None,
    end: datetime | None,
    top_events: int | None,
    dataset: str | None,
) -> str | None:
    """The interval to send, refused where Sentry's ``validate_interval`` would refuse it:
    more than ``EVENTS_MAX_POINTS`` points over the range as Sentry rounds it (divided among
    the top events), or, for the ``RPC_DATASETS``, longer than the range. Sentry does not
    answer either with an error but buckets at its default interval for the range, which
    would leave the caller with other buckets than asked for."""
    chosen = _interval(interval)
    if chosen is None:
        return None
    seconds = period_seconds(chosen)
    span = _span(window, start, end)
    shortest, longest = _events_range(window, span)
    if dataset in RPC_DATASETS and seconds > shortest:
        raise ValueError(
            f"interval {chosen!r} is longer than the range ({_duration(shortest)}), which "
            f"Sentry replaces for the {dataset} dataset with its default interval for the "
            "range: use a shorter interval or a longer range"
        )
    limit = EVENTS_MAX_POINTS / top_events if top_events else EVENTS_MAX_POINTS
    if longest / seconds > limit:
        shared = f" ({EVENTS_MAX_POINTS} among {top_events} top events)" if top_events else ""
        rounded = (
            f" ({_duration(longest)} once Sentry rounds the period out)"
            if longest != span
            else ""
        )
        raise ValueError(
            f"interval {chosen!r} over {_duration(span)}{rounded} makes more than {limit:g} "
            f"points{shared}, which Sentry replaces with its default interval for the range: "
            "use a larger interval or a shorter range"
        )
    return chosen


def _comparison_delta(
    delta: int | timedelta | None, axes: list[str], top_events: int | None
) -> int | None:
    """The ``comparisonDelta`` to send, in whole seconds. Sentry answers a value ``int()``
    cannot read with a 400, a comparison of several y-axes with another ("Only one column
    can be selected for comparison queries"), and leaves the comparison out of top-events
    series without a word: each is refused here, as is a delta of no time, which Sentry
    takes for no comparison."""
    if delta is None:
        return None
    if isinstance(delta, timedelta):
        seconds = delta.total_seconds()
        if seconds != int(seconds):
            raise ValueError(
                f"comparison_delta must be a whole number of seconds (got {delta!r})"
            )
        delta = int(seconds)
    elif isinstance(delta, bool) or not isinstance(delta, int):
        raise ValueError(
            "comparison_delta must be an integer number of seconds or a timedelta "
            f"(got {delta!r}): Sentry refuses any other"
        )
    if delta <= 0:
        raise ValueError("comparison_delta must be a positive number of seconds")
    if len(axes) > 1:
        raise ValueError(
            f"comparison_delta compares one y_axis (got {axes}): Sentry refuses a comparison "
            "of several"
        )
    if top_events is not None:
        raise ValueError(
            "comparison_delta does not apply to top_events: Sentry answers top-events series "
            "without comparisons"
        )
    return delta


def _usage_points(
    interval: int, window: dict[str, str], start: datetime | None, end: datetime | None
) -> int:
    """The intervals Sentry counts against ``USAGE_MAX_POINTS``: the range once
    ``to_intervals`` has aligned its start down and its end up to the interval. Given
    ``start`` and ``end`` that is exact; a period ends at the server's clock, unknown here,
    whose start may fall inside an interval: one more than the span holds."""
    if start is not None and end is not None:
        return math.ceil(end.timestamp() / interval) - math.floor(start.timestamp() / interval)
    return -(-_span(window, start, end) // interval) + 1


def _usage_interval(
    interval: str | timedelta | None,
    window: dict[str, str],
    start: datetime | None,
    end: datetime | None,
) -> str:
    """The interval to send: the given one if it fits in ``USAGE_MAX_POINTS`` intervals, else
    the smallest of ``USAGE_INTERVALS`` that does (Sentry's own default, 1h, does not fit its
    own default range of 90 days)."""
    if interval is not None:
        chosen = _interval(interval)
        assert chosen is not None
        points = _usage_points(period_seconds(chosen), window, start, end)
        if points > USAGE_MAX_POINTS:
            span = _duration(_span(window, start, end))
            raise ValueError(
                f"interval {chosen!r} over {span} can make {points} points once aligned to "
                f"the interval, more than the {USAGE_MAX_POINTS} Sentry accepts: use a larger "
                "interval or a shorter range"
            )
        return chosen
    for candidate in USAGE_INTERVALS:
        if _usage_points(period_seconds(candidate), window, start, end) <= USAGE_MAX_POINTS:
            return candidate
    raise ValueError(
        f"a range of {_span(window, start, end) // 86400} days does not fit in "
        f"{USAGE_MAX_POINTS} daily points"
    )


def _accessible_projects(access: Mapping[str, bool | None]) -> list[str]:
    """The ids a usage query grouped by project names for every project: each one the
    projects list does not mark ``hasAccess: false``, since Sentry refuses the whole query
    (403) when it names one the user cannot access."""
    return sorted(pid for pid, ok in access.items() if ok is not False)


def _outgrown(groups: Sequence[UsageGroup], batch: int) -> bool:
    """Whether a ``-1`` answer names more projects than ``batch``: the organization grew
    past one request since the projects list the ``-1`` was decided from, and a request
    over more can lose rows (Sentry cuts the answer at its row limit without a word)."""
    return len({g.by.get("project") for g in groups} - {None}) > batch


def _distinct_ids(ids: list[str]) -> list[str]:
    """``ids`` without repeats, in their order: Sentry reads ``project`` as a set of
    integers (``"05"`` is project 5), so batches must not name one project twice."""
    first: dict[int, str] = {}
    for pid in ids:
        first.setdefault(int(pid), pid)
    return list(first.values())


def _window_of(result: UsageStats | None) -> dict[str, str] | None:
    """``start`` and ``end`` asking for the window ``result`` was counted over: Sentry
    answers the range as ``to_intervals`` aligned it, which it keeps as it is when asked for
    it (an ``end`` on a boundary is not counted). ``None`` when the answer names none."""
    if result is None or result.start is None or result.end is None:
        return None
    window = {}
    for key, value in (("start", result.start), ("end", result.end)):
        try:
            moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
            if moment.tzinfo is None:
                moment = moment.replace(tzinfo=timezone.utc)
            window[key] = format_datetime(moment, key)
        except ValueError:
            return None
    return window


def _other_windows(results: Sequence[UsageStats | None]) -> list[int]:
    """The batches answered over another window than the first one."""
    first = results[0]
    if first is None:
        return []
    return [
        n
        for n, r in enumerate(results)
        if r is not None and (r.start, r.end) != (first.start, first.end)
    ]


def _without_window(params: dict[str, Any]) -> dict[str, Any]:
    """``params`` without its range: Sentry reads ``statsPeriod`` before ``start``/``end``."""
    return {k: v for k, v in params.items() if k not in ("statsPeriod", "start", "end")}


def _interval(value: str | timedelta | None) -> str | None:
    if value is None:
        return None
    if isinstance(value, timedelta):
        seconds = int(value.total_seconds())
        if seconds <= 0:
            raise ValueError(f"interval must be positive (got {value!r})")
        return f"{seconds}s"
    if not _INTERVAL.match(value) or int(value.rstrip("smhdw")) <= 0:
        raise ValueError(f"interval must look like '1h', '5m' or '1d' (got {value!r})")
    return value


def _check_top_events(fields: list[str], sort: str | None) -> None:
    """What Sentry refuses in a top-events query before it runs: ``timestamp`` among the
    group columns ("Cannot group by timestamp"), and a sort that names no selected field or
    function (its first query selects ``fields`` alone, with no ``id`` added)."""
    if "timestamp" in fields:
        raise ValueError("top_events cannot group by timestamp: leave it out of fields")
    if sort is not None:
        check_sort(fields, [sort], auto_fields=False)


class StatsResource(Resource):
    """``client.stats``."""

    __slots__ = ()

    async def events(
        self,
        org: IdOrSlug,
        *,
        y_axis: str | Sequence[str] = "count()",
        query: str | None = None,
        project: IdOrSlug | Sequence[IdOrSlug] | None = None,
        environment: str | Sequence[str] | None = None,
        period: str | timedelta | None = None,
        start: datetime | None = None,
        end: datetime | None = None,
        interval: str | timedelta | None = None,
        top_events: int | None = None,
        fields: Sequence[str] | None = None,
        sort: str | None = None,
        order_by: str | None = None,
        partial: bool | None = None,
        comparison_delta: int | timedelta | None = None,
        exclude_other: bool | None = None,
        dataset: str | None = None,
    ) -> EventsStats:
        """Counts over time, normalised to one list of series whatever shape Sentry answers in.

        ``top_events`` groups by ``fields`` (ordered by ``sort``, or the older ``order_by``
        name for the same thing; optional) and returns one series per group (plus ``Other``
        unless ``exclude_other``); ``raw`` keeps the response. When no group matches, Sentry
        answers a zero-filled placeholder series: that is no group, and ``series`` is empty.
        ``project`` takes ids or slugs. As Sentry requires, the sort must name one of
        ``fields`` (an aggregate too: order by ``-count()`` with ``count()`` among the
        fields), and ``timestamp`` is no group column.

        An ``interval`` making more than 10000 points (divided by ``top_events``) over the
        range as Sentry counts it (a ``period`` over an hour rounded out by a minute, by 15
        minutes from 30 days up), or longer than the range for the ``RPC_DATASETS``
        (``spans``, ``logs``, ...), is refused: Sentry would bucket at its own default
        instead. ``comparison_delta`` (whole seconds) compares one ``y_axis`` and no top
        events: Sentry refuses several and leaves top events without comparisons.
        """
        axes = listify(y_axis, "y_axis") or []
        if not axes:
            raise ValueError("y_axis needs at least one expression")
        if top_events is not None:
            if isinstance(top_events, bool) or not 1 <= top_events <= MAX_TOP_EVENTS:
                raise ValueError(f"top_events must be from 1 to {MAX_TOP_EVENTS}")
            if not fields:
                raise ValueError("top_events needs fields= (the columns to group by)")
        if sort is not None and order_by is not None:
            raise ValueError("give sort= or its older name order_by=, not both")
        field_list = listify(fields, "fields")
        if top_events is not None and field_list:
            _check_top_events(field_list, sort if sort is not None else order_by)
        delta = _comparison_delta(comparison_delta, axes, top_events)
        window = time_params(period, start, end)
        chosen = _events_interval(interval, window, start, end, top_events, dataset)
        params: dict[str, Any] = {
            "yAxis": axes,
            "query": query,
            "project": await self._client.project_ids(self._org(org), project),
            "environment": environments(environment),
            "interval": chosen,
            "topEvents": top_events,
            "field": field_list,
            "sort": sort,
            "orderby": order_by,
            "partial": partial,
            "comparisonDelta": delta,
            "excludeOther": exclude_other,
            "dataset": dataset,
            **window,
        }
        client = self._client

        def parse(response: Response) -> EventsStats:
            # A body that is not even JSON (cut short, empty, a proxy's page) is resent as
            # every read's is; only a well-formed body of another shape is a DecodeError.
            client._decode_or_resend(response, msgspec.Raw, None)
            try:
                return parse_events_stats(response.body, axes, top_events=top_events is not None)
            except (ValueError, TypeError) as exc:
                # It quotes the value it could not read, which a server may have filled
                # with the token: blanked out, and not chained (its message holds it raw).
                reason = client._redact(str(exc))
            raise DecodeError(
                reason, method="GET", url=response.shown_url, type_name="EventsStats"
            )

        return await client._request_parsed(
            "GET",
            "/organizations/{org}/events-stats/",
            parse,
            path_params={"org": self._org(org)},
            params=params,
        )

    async def usage(
        self,
        org: IdOrSlug,
        *,
        group_by: str | Sequence[str] | None = None,
        field: str | Sequence[str] = "sum(quantity)",
        period: str | timedelta | None = None,
        start: datetime | None = None,
        end: datetime | None = None,
        interval: str | timedelta | None = None,
        project: IdOrSlug | Sequence[IdOrSlug] | None = None,
        category: str | Sequence[str] | None = None,
        outcome: str | Sequence[str] | None = None,
        reason: str | Sequence[str] | None = None,
        project_batch: int = USAGE_PROJECT_BATCH,
    ) -> UsageStats:
        """Accepted, filtered and dropped event counts; ``group_by="project"`` has no series.

        Without ``group_by`` (``None`` or ``[]``) the answer is one group (``by == {}``): the
        ``category`` filter's totals and series. The answer keeps ``group_by`` and ``fields``
        as asked: an answer with no group still has its table's columns. Below an hour a
        ``reason`` may be ``None`` (Sentry reads the raw outcomes then).

        Not grouped by project, no ``project`` and ``-1`` are the whole organization's
        total: Sentry sets no project condition then, and projects the user cannot access
        count too. Grouped by project, both mean every project the user can access: ``-1``
        when one request holds them all (Sentry picks them as it runs the query), else their
        ids from the organization's projects list, read again for the call (a project
        deleted since would make Sentry refuse the whole query), asked in batches of
        ``project_batch``, run side by side on the client's limiter, and the groups merged:
        one request over many projects can lose rows. Whether one request holds them all is
        told from the projects list as last read: a ``-1`` answer that names more projects
        than ``project_batch`` shows the organization grown past it since, and the list is
        read again and the batches asked instead. A project named twice (by slug and by
        id) is asked once. The batches are counted over one window, the one the answer
        reports: a batch Sentry answers over another (its clock turned an interval while
        the batches of a ``period`` ran) is asked again with the first batch's ``start``
        and ``end``.

        Sentry refuses a query with neither a ``category`` filter nor ``"category"`` in
        ``group_by``, one spanning more than 1000 intervals once its start is aligned down
        and its end up to the interval (a ``period`` ends at the server's clock: counted as
        starting inside an interval), and reads one ``reason`` only: these are refused
        before sending. Without ``interval`` the smallest of ``USAGE_INTERVALS`` that keeps
        the range (90 days when none is given) within 1000 points is sent.
        """
        groups = listify(group_by, "group_by") or []
        unknown = set(groups) - _USAGE_GROUPS
        if unknown:
            raise ValueError(
                f"group_by must be among {sorted(_USAGE_GROUPS)} (got {sorted(unknown)})"
            )
        fields = listify(field, "field") or []
        if not fields or set(fields) - _USAGE_FIELDS:
            raise ValueError(f"field must be among {sorted(_USAGE_FIELDS)} (got {field!r})")
        if (
            isinstance(project_batch, bool)
            or not isinstance(project_batch, int)
            or project_batch < 1
        ):
            raise ValueError(f"project_batch must be a positive integer (got {project_batch!r})")
        categories = listify(category, "category")
        if not categories and "category" not in groups:
            raise ValueError(
                "usage needs category= (e.g. 'error') or 'category' in group_by: "
                "Sentry refuses a usage query with neither"
            )
        reasons = listify(reason, "reason")
        if reasons is not None and len(reasons) != 1:
            raise ValueError(
                f"Sentry reads one reason per usage query (got {reason!r}): "
                "ask once per reason, or group_by='reason'"
            )
        window = time_params(period, start, end)
        sent_groups = groups
        if "project" in groups:
            # Sentry reads the last groupBy alone to tell an organization total (no project
            # condition: projects the user cannot access too) from a query over projects.
            sent_groups = [*(g for g in groups if g != "project"), "project"]
        params: dict[str, Any] = {
            "groupBy": sent_groups,
            "field": fields,
            "interval": _usage_interval(interval, window, start, end),
            "category": categories,
            "outcome": listify(outcome, "outcome"),
            "reason": reasons,
            **window,
        }
        org_slug = self._org(org)
        project_refs(project)
        project_ids = await self._client.project_ids(org_slug, project)
        cached = False
        if "project" in groups and (project_ids is None or "-1" in project_ids):
            project_ids, cached = await self._every_project(org_slug, project_batch)
        elif project_ids is not None:
            project_ids = _distinct_ids(project_ids)

        async def one(ids: list[str] | None, query: dict[str, Any] = params) -> UsageStats:
            return await self._client.request(
                "GET",
                "/organizations/{org}/stats_v2/",
                path_params={"org": org_slug},
                params={**query, "project": ids},
                type=UsageStats,
            )

        if "project" not in groups or project_ids is None or len(project_ids) <= project_batch:
            result = await one(project_ids)
            grown = cached and _outgrown(result.groups, project_batch)
            fresh = await self._read_projects(org_slug) if grown else []
            if len(fresh) <= project_batch:
                result.group_by, result.fields = groups, fields
                return result
            project_ids = fresh
        batches = [
            project_ids[n : n + project_batch] for n in range(0, len(project_ids), project_batch)
        ]
        results: list[UsageStats | None] = [None] * len(batches)
        failed: list[Exception] = []

        async def run(index: int, query: dict[str, Any], scope: anyio.CancelScope) -> None:
            try:
                results[index] = await one(batches[index], query)
            except Exception as exc:
                # Raised below as it is, as one batch would raise it, not in the task
                # group's ExceptionGroup; the other batches are of no use without it.
                failed.append(exc)
                scope.cancel()

        async def ask(indexes: Sequence[int], query: dict[str, Any]) -> None:
            async with anyio.create_task_group() as tasks:
                for index in indexes:
                    tasks.start_soon(run, index, query, tasks.cancel_scope)
            if failed:
                raise failed[0]

        await ask(range(len(batches)), params)
        moved = _other_windows(results)
        pinned = _window_of(results[0])
        if moved and pinned is not None:
            # Sentry ends a period at its clock, read for each request: batches answered
            # after it turned an interval counted another window than the one reported.
            await ask(moved, {**_without_window(params), **pinned})
        done = [r for r in results if r is not None]
        merged: list[UsageGroup] = [group for result in done for group in result.groups]
        first = done[0]
        return UsageStats(
            start=first.start,
            end=first.end,
            intervals=first.intervals,
            groups=merged,
            group_by=groups,
            fields=fields,
        )

    async def _every_project(self, org: str, batch: int) -> tuple[list[str], bool]:
        """The projects of a usage query grouped by project over every project: ``-1`` when
        one request holds all the user can access, for Sentry to pick them as it runs the
        query; past ``batch`` their ids, for the batches, from the projects list read again
        for this call. A list kept from an earlier call would name a project deleted since,
        for which Sentry refuses the whole query (403), and leave out one created since.

        True with a ``-1`` decided from a list kept from an earlier call: the organization
        may have grown past ``batch`` since, which the answer shows (:func:`_outgrown`)."""
        client = self._client
        access = client.cached_project_access(org)
        if access is not None and len(_accessible_projects(access)) <= batch:
            return ["-1"], True
        ids = await self._read_projects(org)
        return (ids if len(ids) > batch else ["-1"]), False

    async def _read_projects(self, org: str) -> list[str]:
        """The ids the user can access, from the projects list read again now."""
        await self._client.load_project_ids(org)
        return _accessible_projects(await self._client.project_access(org))
