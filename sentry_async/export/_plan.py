"""Planning: a new export's range pinned, projects resolved, streams laid out; and each
stream's requests."""

from __future__ import annotations

import dataclasses
import logging
from collections import Counter
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

import msgspec

from .._protocol.cursors import row_before
from .._protocol.errors import REDACTED
from .._protocol.params import MAX_PAGE_SIZE, URL_BUDGET, check_slug, issue_id, time_range
from ..client import SentryClient
from ..errors import NotFound
from ..pagination import _LINK_WATCH, PageFetcher, Paginator, Position, RawPage
from ..resources.events import FULL_PAGE_MAX
from ._checkpoint import Checkpoint, FileState, ProjectRef, SkippedProject, StreamState
from ._errors import UnknownProjectError
from ._files import file_name, now_iso, parse_stamp, project_stems, safe_stem
from ._formats import SUFFIXES, part_name
from ._spec import ExportSpec, adds_id
from ._windows import check_window_count, format_utc, resolve_range, split_windows

__all__ = [
    "AGGREGATES_STEM",
    "EVERY_PROJECT",
    "NAMES_TOKEN",
    "NO_ACCESS",
    "Overlaps",
    "event_group",
    "event_project",
    "every_project_target",
    "names_token",
    "pin_range",
    "plan",
    "project_ref",
    "resolve_projects",
    "server_identity",
]

logger = logging.getLogger("sentry_async.export")

AGGREGATES_STEM = "aggregates"
"""The one stream (and file stem) of a Discover export with aggregate fields."""

EVERY_PROJECT = "-1"
"""The target of totals over every project whose ids do not fit in a request line (the
8 KB nginx takes in front of Sentry): Discover's ``project=-1``, every project the user
can access when each page is asked for, those created since the plan included."""

_TOTALS_ROOM = 200
"""Bytes of a totals request line kept for what the plan does not know: the cursor, and
the client's own parameters."""


class _ProjectRow(msgspec.Struct):
    id: str | int | None = None
    slug: Any = None
    has_access: Any = msgspec.field(default=None, name="hasAccess")


_project_decoder = msgspec.json.Decoder(_ProjectRow)


class _EventRow(msgspec.Struct):
    project_id: Any = msgspec.field(default=None, name="projectID")
    group_id: Any = msgspec.field(default=None, name="groupID")


_event_decoder = msgspec.json.Decoder(_EventRow)


def _event_owner(item: msgspec.Raw | bytes, project: bool) -> str | None:
    """The project (``projectID``) or issue (``groupID``) an event names, as text."""
    try:
        row = _event_decoder.decode(item)
    except (msgspec.ValidationError, msgspec.DecodeError, UnicodeDecodeError):
        return None
    value = row.project_id if project else row.group_id
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        return None
    return str(value)


def event_project(item: msgspec.Raw | bytes) -> str | None:
    """The ``projectID`` of an event as the events lists send it, ``None`` if it has none
    (or is no object): whose events a page holds, every item of it being one project's."""
    return _event_owner(item, project=True)


def event_group(item: msgspec.Raw | bytes) -> str | None:
    """The ``groupID`` (issue id) of an event as an issue's events list sends it, ``None``
    if it has none: whose events the page holds, every item of it being one issue's."""
    return _event_owner(item, project=False)


NO_ACCESS = (
    "no access: the projects list marks it hasAccess: false (the organization's membership "
    "is closed and the project is on none of the user's teams), and Sentry refuses every "
    "request naming it"
)

NAMES_TOKEN = "project names the auth token"
"""Why a project is skipped whose slug holds the token (see :func:`names_token`)."""


def names_token(client: SentryClient, value: str) -> bool:
    """Whether ``value``, a project's slug or id from an answer of the server, holds the
    client's token, or the mark its redactor leaves where it blanked the token out (no
    slug of Sentry's holds a ``*``): a server echoing it back. No project of Sentry's is
    named after the token; such a slug would name a file, a stream, every line about them,
    and the checkpoint and the manifest, which are never blanked out."""
    return client._redact(value) != value or REDACTED in value
"""Why a project of an export of every project is left out when the user cannot access it."""


def project_ref(item: bytes) -> tuple[ProjectRef | None, SkippedProject | None, bool]:
    """A row of the projects list as a reference, or why it cannot be used; and whether
    the user can access it (a row that does not say counts as accessible)."""
    try:
        row = _project_decoder.decode(item)
    except (msgspec.ValidationError, msgspec.DecodeError, UnicodeDecodeError) as exc:
        return None, SkippedProject(id=None, slug=None, error=f"project row unusable: {exc}"), True
    pid = str(row.id) if row.id is not None and str(row.id).strip() else None
    slug = row.slug if isinstance(row.slug, str) else None
    if pid is None or slug is None:
        what = "an id" if pid is None else "a string slug"
        shown = slug if slug is not None else repr(row.slug)
        return None, SkippedProject(id=pid, slug=shown, error=f"project has no {what}"), True
    return ProjectRef(id=pid, slug=slug), None, row.has_access is not False


@dataclass(slots=True)
class _Target:
    name: str
    ref: str


def server_identity(client: SentryClient) -> str:
    """The client's base URL as the fingerprint records it: no credentials, query or slash."""
    url = client.base_url.with_user(None).with_query(None).with_fragment(None)
    return str(url).rstrip("/")


def pin_range(
    spec: ExportSpec, now: datetime | None, *, aggregates: bool
) -> tuple[datetime, datetime]:
    """A new export's absolute range; :class:`ExportRangeError` if it cannot be exported."""
    now = now or datetime.now(timezone.utc)
    first, last, period = spec.range_args()
    start, end = resolve_range(start=first, end=last, period=period, now=now)
    if spec.kind != "issues" and not aggregates:
        check_window_count(start, end, spec.window_size())
    return start, end


async def plan(
    client: SentryClient,
    spec: ExportSpec,
    start: datetime,
    end: datetime,
    *,
    server: str,
    aggregates: bool,
) -> Checkpoint:
    """A new export's checkpoint: its projects resolved, one stream per target and window."""
    parquet = spec.format == "parquet"
    suffix = SUFFIXES[spec.format]
    projects: list[ProjectRef] = []
    skipped: list[SkippedProject] = []
    if spec.issues is not None:
        await check_issues(client, spec.org, spec.issues)
        targets = [_Target(f"issue-{issue}", issue) for issue in spec.issues]
    else:
        projects, skipped = await resolve_projects(client, spec)
        stems = project_stems(projects)
        projects = [
            ProjectRef(
                id=p.id,
                slug=p.slug,
                # Parquet: one part per window, named in the streams.
                file=None if parquet else file_name(stems[p.id], spec.gzip, suffix),
            )
            for p in projects
        ]
        targets = [_Target(stems[project.id], project.id) for project in projects]
    whole = spec.kind == "issues" or aggregates
    if aggregates:
        ids = ",".join(p.id for p in projects)
        if spec.projects is None:
            # The projects planned, not those there when each page is asked for.
            base = _totals_line(client, spec, start, end)
            ids = every_project_target([p.id for p in projects], base_length=base)
        targets = [_Target(AGGREGATES_STEM, ids)]
    windows = split_windows(start, end, None if whole else spec.window_size())
    streams: dict[str, StreamState] = {}
    files: dict[str, FileState] = {}
    for window in windows:
        for target in targets:
            key = target.name if spec.kind == "issues" else f"{target.name}@{window.key}"
            if parquet:
                file = part_name(safe_stem(target.name), window.start, window.end)
            else:
                file = file_name(target.name, spec.gzip, suffix)
            files.setdefault(file, FileState())
            streams[key] = StreamState(
                key=key,
                file=file,
                target=target.ref,
                window_start=format_utc(window.start),
                window_end=format_utc(window.end),
            )
    stamp = now_iso()
    return Checkpoint(
        fingerprint=spec.fingerprint(server),
        spec=spec.canonical(server),
        start=format_utc(start),
        end=format_utc(end),
        projects=projects,
        skipped=skipped,
        streams=streams,
        files=files,
        created_at=stamp,
        updated_at=stamp,
    )


def every_project_target(ids: Sequence[str], *, base_length: int) -> str:
    """The ``project=`` of totals over every project planned: their ids, when they fit in
    a request line whose other parts take ``base_length`` bytes; else :data:`EVERY_PROJECT`
    (which counts the projects there when each page is asked for)."""
    length = base_length + sum(len("&project=") + len(project) for project in ids)
    return ",".join(ids) if ids and length <= URL_BUDGET else EVERY_PROJECT


def _totals_line(client: SentryClient, spec: ExportSpec, start: datetime, end: datetime) -> int:
    """The bytes of a totals request line (path and query) without its project ids."""
    url = client.url_for("/organizations/{org}/events/", {"org": spec.org})
    sort = [key for key in ("-timestamp", "id") if key.lstrip("-") in spec.fields]
    query = [("field", field) for field in spec.fields] + [("sort", key) for key in sort]
    if spec.query is not None:
        query.append(("query", spec.query))
    query += [*time_range(start=start, end=end).items(), ("per_page", str(spec.page_size))]
    return len(url.with_query(query).raw_path_qs) + _TOTALS_ROOM


async def check_issues(client: SentryClient, org: str, issues: Sequence[str]) -> None:
    """Refuse issues the organization does not have before anything is written: found
    later, a stream's 404 would name a request's URL, not the issue asked for. An issue
    merged into another is refused too: Sentry answers its id with the issue it went into
    (``GroupRedirect``), whose events are not the ones asked for."""
    missing = []
    merged = []
    for issue in issues:
        try:
            found = await client.issues.get(org, issue)
        except NotFound:
            missing.append(issue)
            continue
        if found.id != issue_id(issue):
            merged.append(f"{issue} (merged into {found.id})")
    problems = []
    if missing:
        problems.append(f"unknown issue(s) in organization {org!r}: {', '.join(missing)}")
    if merged:
        problems.append(
            f"issue(s) of organization {org!r} merged into another, whose events theirs "
            f"are now: {', '.join(merged)}; export that issue instead"
        )
    if problems:
        raise UnknownProjectError(client._redact("; ".join(problems)))


async def resolve_projects(
    client: SentryClient, spec: ExportSpec
) -> tuple[list[ProjectRef], list[SkippedProject]]:
    """The projects to export, and those that cannot be (each skipped, not fatal).

    The list is read in one answer (``all_projects``): pages would shift past a project
    created or deleted between them, repeating one and missing another. A server that
    pages it anyway is walked whole, and a project it lists twice is kept once. An export
    of every project leaves out those the user cannot access (``hasAccess: false``, which
    a user token lists in an organization with closed membership): Sentry refuses every
    request naming one, so it is skipped rather than stopping the export at it.
    """
    found: dict[str, ProjectRef] = {}
    denied: set[str] = set()
    unusable: list[SkippedProject] = []
    paginator = client.projects.list(spec.org, all_projects=True).raw()
    async for page in paginator.pages():
        for item in page.items:
            ref, problem, access = project_ref(bytes(item))
            if ref is not None and ref.id not in found:
                found[ref.id] = ref
                if not access:
                    denied.add(ref.id)
            if problem is not None and problem not in unusable:
                unusable.append(problem)
    rows = list(found.values())
    if spec.projects is None:
        if not rows and not unusable:
            raise UnknownProjectError(f"organization {spec.org!r} has no projects")
        chosen_rows = [row for row in rows if row.id not in denied]
        skipped = unusable + [
            SkippedProject(id=row.id, slug=row.slug, error=NO_ACCESS)
            for row in rows
            if row.id in denied
        ]
    else:
        by_name = {row.slug: row for row in rows}
        by_name.update({row.id: row for row in rows})
        bad = {p.slug: p for p in unusable if p.slug is not None}
        bad.update({p.id: p for p in unusable if p.id is not None})
        missing = [n for n in spec.projects if n not in by_name and n not in bad]
        if missing:
            # A user's own token, given where a project goes, is not repeated.
            raise UnknownProjectError(
                client._redact(
                    f"unknown project(s) in organization {spec.org!r}: {', '.join(missing)}"
                )
            )
        chosen = {by_name[n].id: by_name[n] for n in spec.projects if n in by_name}
        chosen_rows = list(chosen.values())
        skipped = list(dict.fromkeys(bad[n] for n in spec.projects if n in bad))
    usable: list[ProjectRef] = []
    for row in chosen_rows:
        try:
            check_slug(row.slug, "project")
        except ValueError as exc:
            skipped.append(SkippedProject(id=row.id, slug=row.slug, error=str(exc)))
            continue
        if names_token(client, row.slug) or names_token(client, row.id):
            skipped.append(SkippedProject(id=row.id, slug=row.slug, error=NAMES_TOKEN))
            continue
        usable.append(row)
    # Shown in a log line and written to the manifest: values of a successful answer,
    # which nothing blanked the token out of yet.
    skipped = [_redacted(client, project) for project in skipped]
    for project in skipped:
        logger.warning("skipping project %r (id %r): %s", project.slug, project.id, project.error)
    return sorted(usable, key=lambda project: (project.slug, project.id)), skipped


def _redacted(client: SentryClient, project: SkippedProject) -> SkippedProject:
    """``project`` with the token blanked out of its id, slug and reason."""
    redact = client._redact
    return SkippedProject(
        id=None if project.id is None else redact(project.id),
        slug=None if project.slug is None else redact(project.slug),
        error=redact(project.error),
    )


def request_slugs(projects: list[ProjectRef], moved: Mapping[str, str]) -> dict[str, str]:
    """Project id -> what to send for it: its slug (the one it was found ``moved`` to, if
    any), or its id when two share the slug."""
    slugs = {p.id: moved.get(p.id, p.slug) for p in projects}
    shared = Counter(slugs.values())
    return {project: slug if shared[slug] == 1 else project for project, slug in slugs.items()}


class Overlaps:
    """The rows before the pages of an offset-paged stream (its events, rows of Discover).

    Sentry pages these lists by row offset (``GenericOffsetPaginator``): rows leaving the
    list (an issue's events, once its deletion ends) move the rows after them back, and a
    walk going on at the next offset skips as many. So each page after the first is asked
    from one row earlier, one row longer (the page size allowing), and that first row, the
    one the page before ended with, is taken off the page and kept here for the walk to
    check: when another row stands there, rows moved back. Keeps the rows of the pages
    fetched and not yet checked (a read-ahead's)."""

    __slots__ = ("_rows",)

    def __init__(self) -> None:
        self._rows: dict[str, list[msgspec.Raw]] = {}

    def take(self, cursor: str | None) -> list[msgspec.Raw] | None:
        """The row before the page asked at ``cursor`` (none: the answer was empty), or
        ``None`` when that page was asked as it is (the first, or a cursor of another
        form)."""
        return None if cursor is None else self._rows.pop(cursor, None)

    def wrap(self, fetch: PageFetcher) -> PageFetcher:
        """``fetch``, each page of an offset cursor past the first row asked one row early."""
        rows = self._rows

        async def early(cursor: str | None, size: int | None) -> RawPage:
            before = row_before(cursor)
            if before is None or cursor is None or size is None:
                return await _relayed(early, fetch, cursor, cursor, size)
            raw = await _relayed(early, fetch, cursor, before, min(size + 1, MAX_PAGE_SIZE))
            rows[cursor] = raw.items[:1]
            # Sentry's next cursor counts from the offset asked: the walk's positions stay
            # those of the rows it reads.
            return msgspec.structs.replace(raw, items=raw.items[1:])

        return early


async def _relayed(
    outer: PageFetcher, fetch: PageFetcher, cursor: str | None, asked: str | None, size: int | None
) -> RawPage:
    """``fetch(asked, size)`` for the page the walk asked ``outer`` for at ``cursor``: a
    read-ahead watching ``outer`` hears the ``Link`` that ``fetch`` announces as soon as the
    headers arrive (see :func:`~sentry_async.pagination.link_watch`), as the page at
    ``cursor``'s, and sends its next request before this page is decoded."""
    watch = _LINK_WATCH.get()
    if watch is None or watch[0] is not outer:
        return await fetch(asked, size)
    seen = watch[1]

    def heard(sent: str | None, link: str | None) -> bool:
        return seen(cursor if sent == asked else sent, link)

    token = _LINK_WATCH.set((fetch, heard))
    try:
        return await fetch(asked, size)
    finally:
        _LINK_WATCH.reset(token)


def stream_pages(
    client: SentryClient,
    spec: ExportSpec,
    state: StreamState,
    slugs: dict[str, str],
    gone: Collection[str] = (),
    at: Position | None = None,
    overlaps: Overlaps | None = None,
) -> Paginator[msgspec.Raw]:
    """The raw pages of one stream, its walk resumed at ``at`` or else the stream's position
    (read ahead only where the stream runs alone: see the runner's ``ALONE_READ_AHEAD``).
    Totals over named projects leave out those ``gone``. With ``overlaps``, each page after
    the first is asked one row early (see :class:`Overlaps`)."""
    position = at if at is not None else state.position
    paginator = _request(client, spec, state, slugs, gone).raw()
    if overlaps is not None:
        paginator = dataclasses.replace(paginator, _fetch=overlaps.wrap(paginator._fetch))
    return paginator.resume(position)


def _request(
    client: SentryClient,
    spec: ExportSpec,
    state: StreamState,
    slugs: dict[str, str],
    gone: Collection[str],
) -> Paginator[Any]:
    start = parse_stamp(state.window_start)
    end = parse_stamp(state.window_end)
    if spec.kind == "issues":
        return client.issues.list(
            spec.org,
            query=spec.query if spec.query is not None else "",
            project=[state.target],
            start=start,
            end=end,
            sort="new",
            page_size=spec.page_size,
        )
    if spec.kind == "events":
        if spec.issues is not None:
            # Sentry serves an issue as many full payloads as asked: 100 large ones pass
            # the body limit, on every run. The issue lists page by offset (``0:N:0``,
            # whatever the size), so a checkpoint saved at another size resumes here.
            size = min(spec.page_size, FULL_PAGE_MAX) if spec.full else spec.page_size
            return client.events.for_issue(
                spec.org,
                state.target,
                full=spec.full,
                query=spec.query,
                start=start,
                end=end,
                page_size=size,
            )
        return client.events.for_project(
            spec.org,
            slugs[state.target],
            full=spec.full,
            query=spec.query,
            start=start,
            end=end,
            page_size=spec.page_size,
        )
    # Sorted by the fields asked, not the id added: a checkpoint's offsets keep their rows.
    sort = [key for key in ("-timestamp", "id") if key.lstrip("-") in spec.fields]
    return client.discover.query(
        spec.org,
        fields=[*spec.fields, "id"] if adds_id(spec) else list(spec.fields),
        query=spec.query,
        sort=sort or None,
        project=[project for project in state.target.split(",") if project not in gone],
        start=start,
        end=end,
        page_size=spec.page_size,
    )
