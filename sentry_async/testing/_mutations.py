"""Issue updates as Sentry's ``update_groups`` makes them: the body validated as
``GroupValidator`` validates it, then each change applied as its ``handle_*`` applies it.

Shared by the bulk calls (organization and project) and the single issue update.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Any

import msgspec
from aiohttp import web

from ._data import Dataset, IssueRecord, OrgRecord, ProjectRecord
from ._records import NEW_FOR
from ._state import ApiError, _encode, _json

_STATUSES = ("resolved", "unresolved", "ignored", "resolvedInNextRelease", "muted")
"""``STATUS_UPDATE_CHOICES``."""
_SUBSTATUSES = (
    "archived_until_escalating",
    "archived_until_condition_met",
    "archived_forever",
    "escalating",
    "ongoing",
    "regressed",
    "new",
)
"""``SUBSTATUS_UPDATE_CHOICES``."""
_PRIORITIES = ("low", "medium", "high")
_BOOLEANS = ("inbox", "hasSeen", "isBookmarked", "isPublic", "isSubscribed", "merge", "discard")
_TRUE = frozenset({True, "1", "true", "True", "TRUE", "t", "T", "y", "Y", "yes", "Yes",
                   "YES", "on", "On", "ON"})
_FALSE = frozenset({False, "0", "false", "False", "FALSE", "f", "F", "n", "N", "no", "No",
                    "NO", "off", "Off", "OFF"})
_WEEK = 7 * 24 * 60
_IGNORE_FIELDS = {
    "ignoreDuration": None,
    "ignoreCount": None,
    "ignoreWindow": _WEEK,
    "ignoreUserCount": None,
    "ignoreUserWindow": _WEEK,
}
"""``IntegerField``s of ``StatusDetailsValidator`` (and of ``GroupValidator``), with their
``max_value``."""


def _boolean(value: Any) -> bool:
    """DRF's ``BooleanField.to_internal_value``."""
    if isinstance(value, (str, int, bool)) and value in _TRUE:
        return True
    if isinstance(value, (str, int, bool)) and value in _FALSE:
        return False
    raise ValueError("Must be a valid boolean.")


def _integer(value: Any, maximum: int | None) -> int:
    """DRF's ``IntegerField``: ints, integral floats and digit strings."""
    if isinstance(value, bool):
        raise ValueError("A valid integer is required.")
    try:
        number = int(value) if not isinstance(value, float) or value.is_integer() else None
    except (TypeError, ValueError):
        number = None
    if number is None:
        raise ValueError("A valid integer is required.")
    if maximum is not None and number > maximum:
        raise ValueError(f"Ensure this value is less than or equal to {maximum}.")
    return number


def _choice(value: Any, choices: tuple[str, ...]) -> str:
    if not isinstance(value, str) or value not in choices:
        raise ValueError(f'"{value}" is not a valid choice.')
    return value


def _actor(data: Dataset, org: OrgRecord, value: Any) -> dict[str, Any] | None:
    """``ActorField`` (``parse_and_validate_actor``) and ``ActorSerializer``'s answer;
    anything falsy but ``null`` unassigns."""
    if not value:
        return None
    text = str(value)
    kind, _, key = text.partition(":") if ":" in text else ("", "", text)
    if kind == "team":
        team = next((t for t in data.teams(org) if t["id"] == key), None)
        if team is None:
            if any(t["id"] == key for other in data.orgs for t in data.teams(other)):
                raise ValueError("Team is not a member of this organization")
            raise ValueError("Team does not exist")
        return {"type": "team", "id": team["id"], "name": team["slug"]}
    if kind not in ("", "user"):
        raise ValueError(_UNPARSED)
    if key.isdigit():
        user = next((u for u in data.USERS if u["id"] == key), None)
        if user is None:
            raise ValueError("User does not exist")
    elif kind:
        raise ValueError(_UNPARSED)
    else:
        user = next((u for u in data.USERS if key in (u["username"], u["email"])), None)
        if user is None:
            raise ValueError(_UNPARSED)
    return {"type": "user", "id": user["id"], "name": user["name"], "email": user["email"]}


_UNPARSED = "Could not parse actor. Format should be `type:id` where type is `team` or `user`."


def _check_access(
    data: Dataset, projects: list[ProjectRecord], actor: dict[str, Any] | None
) -> None:
    """``validate_assignedTo`` for each project: in an organization without open membership
    a team must be one of the project's (the fake's projects have one team each); the
    fake's users are on every team."""
    if actor is None or actor["type"] != "team":
        return
    for project in projects:
        if project.org.open_membership:
            continue
        own = next(t["id"] for t in data.teams(project.org) if t["slug"] == data.team_slug(project))
        if actor["id"] != own:
            raise ValueError("Cannot assign to a team without access to the project")


def _status_details(
    data: Dataset, project: ProjectRecord, value: Any
) -> tuple[dict[str, Any], dict[str, Any]]:
    """``StatusDetailsValidator``: (validated fields, errors); unknown keys are dropped."""
    if not isinstance(value, dict):
        kind = "list" if isinstance(value, list) else type(value).__name__
        return {}, {"non_field_errors": [f"Invalid data. Expected a dictionary, but got {kind}."]}
    out: dict[str, Any] = {}
    errors: dict[str, Any] = {}
    for key, raw in value.items():
        try:
            if key in _IGNORE_FIELDS:
                out[key] = _integer(raw, _IGNORE_FIELDS[key])
            elif key in ("inNextRelease", "inUpcomingRelease"):
                out[key] = _boolean(raw)
                if key == "inUpcomingRelease" and (
                    "resolve-in-upcoming-release" not in project.org.features
                ):
                    raise ValueError("Your organization does not have access to this feature.")
            elif key == "inRelease":
                versions = data.release_versions(project)
                if not isinstance(raw, str) or not raw:
                    raise ValueError("This field may not be blank.")
                if raw != "latest" and raw not in versions:
                    raise ValueError("Unable to find a release with the given version.")
                out[key] = versions[-1] if raw == "latest" else raw
            elif key == "inCommit":
                # The fake holds no repositories, so no commit can be found.
                raise ValueError("Unable to find the given repository.")
        except ValueError as exc:
            errors[key] = [str(exc)]
    return out, errors


def validate(
    data: Dataset,
    org: OrgRecord,
    projects: list[ProjectRecord],
    body: Any,
    scopes: frozenset[str],
) -> dict[str, Any]:
    """``GroupValidator(partial=True)`` for each of the request's ``projects``
    (``validate_request``, before they are narrowed to the issues' projects): the validated
    fields (unknown ones ignored), or a 400 with DRF's error body. ``scopes`` are the
    token's: ``validate_discard`` wants ``event:admin``."""
    if not isinstance(body, dict):
        kind = "list" if isinstance(body, list) else type(body).__name__
        raise ApiError(400, body=_encode(
            {"non_field_errors": [f"Invalid data. Expected a dictionary, but got {kind}."]}
        ))
    out: dict[str, Any] = {}
    errors: dict[str, Any] = {}
    for key, value in body.items():
        try:
            if key in _BOOLEANS:
                out[key] = _boolean(value)
                if key == "discard" and out[key] and "event:admin" not in scopes:
                    raise ValueError("You do not have permission to discard events")
            elif key == "status":
                out[key] = _choice(value, _STATUSES)
            elif key == "substatus":
                out[key] = None if value is None else _choice(value, _SUBSTATUSES)
            elif key == "priority":
                out[key] = _choice(value, _PRIORITIES)
            elif key in _IGNORE_FIELDS:
                out[key] = _integer(value, _IGNORE_FIELDS[key])
            elif key == "snoozeDuration":
                out[key] = None if value is None else _integer(value, None)
            elif key == "assignedTo":
                if value is None:
                    raise ValueError("This field may not be null.")
                out[key] = _actor(data, org, value)
                _check_access(data, projects, out[key])
            elif key == "statusDetails":
                for project in projects:
                    details, nested = _status_details(data, project, value)
                    if nested:
                        errors[key] = nested
                        break
                    out[key] = details
        except ValueError as exc:
            errors[key] = [str(exc)]
    if errors:
        raise ApiError(400, body=_encode(errors))
    if len(out) > 1 and "discard" in out:
        raise ApiError(400, body=_encode(
            {"non_field_errors": ["Other attributes cannot be updated when discarding"]}
        ))
    return out


async def read_body(request: web.Request) -> Any:
    """The JSON body as DRF's parser reads it (no body: an empty form, ``{}``)."""
    raw = await request.read() if request.can_read_body else b""
    if not raw.strip():
        return {}
    try:
        return msgspec.json.decode(raw)
    except msgspec.DecodeError as exc:
        raise ApiError(400, f"JSON parse error - {exc}") from None


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _release_resolution(
    data: Dataset, fields: Mapping[str, Any], details: Mapping[str, Any], projects: int
) -> dict[str, Any]:
    """``handle_resolve_in_release``: the ``statusDetails`` a resolution answers."""
    actor = data.ACTING_USER
    if fields["status"] == "resolvedInNextRelease" or details.get("inNextRelease"):
        kind, shown = "next release", {"inNextRelease": True, "actor": actor}
    elif details.get("inUpcomingRelease"):
        kind, shown = "upcoming release", {"inUpcomingRelease": True, "actor": actor}
    elif details.get("inRelease"):
        kind, shown = "release", {"inRelease": details["inRelease"], "actor": actor}
    else:
        return {}
    if projects > 1:
        raise ApiError(400, f"Cannot set resolved in {kind} for multiple projects.")
    return shown


_COUNTED = ("ignoreDuration", "ignoreCount", "ignoreUserCount")
"""The ``statusDetails`` that make ignoring conditional (a ``GroupSnooze``)."""
_FITTING = {
    "ignored": frozenset(
        {"archived_until_escalating", "archived_until_condition_met", "archived_forever"}
    ),
    "unresolved": frozenset({"ongoing", "escalating", "regressed", "new"}),
}
"""``IGNORED_SUBSTATUS_CHOICES`` and ``UNRESOLVED_SUBSTATUS_CHOICES``."""


def _infer_substatus(
    data: Dataset,
    status: str,
    substatus: str | None,
    details: Mapping[str, Any],
    targets: list[IssueRecord],
) -> str:
    """``infer_substatus``: a substatus sent that fits the status is kept; otherwise an
    ignored issue is ``archived_*`` by its conditions, and one issue unresolved is
    ``regressed`` after a resolution, ``new`` after being ignored within a week of its
    first event; anything else is ``ongoing``. ``targets`` are as they were before."""
    if substatus is not None and substatus in _FITTING[status]:
        return substatus
    if status == "ignored":
        if any(details.get(k) for k in _COUNTED):
            return "archived_until_condition_met"
        return "archived_forever"
    if len(targets) == 1:
        (issue,) = targets
        if issue.status == "ignored":
            return "new" if issue.first_seen > data.now_ts - NEW_FOR else "ongoing"
        if issue.status == "resolved":
            return "regressed"
    return "ongoing"


def _ignored(data: Dataset, details: Mapping[str, Any], substatus: str) -> dict[str, Any]:
    """``handle_ignored``: the ``statusDetails`` of an ignored issue."""
    if substatus == "archived_until_escalating" or not any(details.get(k) for k in _COUNTED):
        return {}
    duration = details.get("ignoreDuration")
    return {
        "ignoreCount": details.get("ignoreCount"),
        "ignoreUntil": _iso(data.now_ts + duration * 60) if duration else None,
        "ignoreUserCount": details.get("ignoreUserCount"),
        "ignoreUserWindow": details.get("ignoreUserWindow"),
        "ignoreWindow": details.get("ignoreWindow"),
        "actor": data.ACTING_USER,
    }


def update_groups(
    data: Dataset,
    org: OrgRecord,
    targets: list[IssueRecord],
    body: Any,
    scopes: frozenset[str],
    requested: list[ProjectRecord],
) -> web.Response:
    """``update_groups`` once the issues are found: 400, 204 (discard) or the changes. The
    body is validated against every ``requested`` project, the request's; the changes see
    only the issues' projects."""
    fields = validate(data, org, requested, body, scopes)
    projects = list({issue.project.id: issue.project for issue in targets}.values())
    if fields.get("discard"):
        _check_discard(projects, targets)
        for issue in targets:
            issue.deleted = True
            data.invalidate_issue(issue)
        return web.Response(status=204)
    result = dict(fields)
    details = result.pop("statusDetails", result)
    if "priority" in fields:
        for issue in targets:
            issue.extra["priority"] = fields["priority"]
            issue.extra["priorityLockedAt"] = _iso(data.now_ts)
    status = fields.get("status")
    if status in ("resolved", "resolvedInNextRelease"):
        shown = _release_resolution(data, fields, details, len(projects))
        for issue in targets:
            issue.status, issue.substatus = "resolved", None
            issue.extra["statusDetails"] = shown
            issue.extra["inbox"] = None
        result.update({"status": "resolved", "statusDetails": shown, "inbox": None})
        if shown and len(targets) == 1:
            # ``prepare_response``: a release resolution of one issue shows its activity.
            result["activity"] = [
                {
                    "id": "1",
                    "type": "set_resolved_in_release",
                    "data": {"version": shown.get("inRelease", "")},
                    "dateCreated": _iso(data.now_ts),
                    "user": data.ACTING_USER,
                }
            ]
    elif status is not None:
        new = "ignored" if status in ("ignored", "muted") else "unresolved"
        substatus = _infer_substatus(data, new, fields.get("substatus"), details, targets)
        if new == "ignored":
            shown = _ignored(data, details, substatus)
            result["inbox"] = None
        else:
            shown = {}
        for issue in targets:
            # ``queryset.exclude(status=new_status).update(...)``: the others stay as they are.
            if issue.status != new:
                issue.status, issue.substatus = new, substatus
            issue.extra["statusDetails"] = shown
            if new == "ignored":
                issue.extra["inbox"] = None
        result["statusDetails"] = shown
    if "assignedTo" in fields:
        for issue in targets:
            issue.extra["assignedTo"] = fields["assignedTo"]
    for key in ("hasSeen", "isBookmarked", "isSubscribed"):
        if key in fields:
            for issue in targets:
                issue.extra[key] = fields[key]
    if "isSubscribed" in fields:
        result["subscriptionDetails"] = {"reason": "unknown"}
    if "isPublic" in fields:
        share = uuid.uuid4().hex if fields["isPublic"] else None
        for issue in targets:
            issue.extra["isPublic"] = fields["isPublic"]
            issue.extra["shareId"] = share
        result["shareId"] = share
    for issue in targets:
        data.invalidate_issue(issue)
    if fields.get("merge") and len(targets) > 1:
        if len(projects) > 1:
            raise ApiError(400, "Merging across multiple projects is not supported")
        result["merge"] = _merge(data, targets)
    # ``update_inbox``, unless a resolution or ignoring already set ``inbox`` to None.
    inbox = result.get("inbox")
    if inbox is not None:
        for issue in targets:
            if inbox:
                # ``add_group_to_inbox`` is a ``get_or_create``: a row the issue has stays.
                issue.extra["inbox"] = issue.inbox_at(data.now_ts) or {
                    "reason": _MANUAL,
                    "reason_details": None,
                    "date_added": _iso(data.now_ts),
                }
            else:
                issue.extra["inbox"] = None
                if issue.status == "unresolved":
                    issue.substatus = "ongoing"
            data.invalidate_issue(issue)
    return _json(_encode(result))


_MANUAL = 3
"""``GroupInboxReason.MANUAL``: moved into the inbox by hand."""


def _is_error(issue: IssueRecord) -> bool:
    """Whether the issue is of ``GroupCategory.ERROR`` (the category its JSON shows)."""
    return bool(issue.extra.get("issueCategory", "error") == "error")


def _check_discard(projects: list[ProjectRecord], targets: list[IssueRecord]) -> None:
    """``handle_discard``'s refusals: a project without ``projects:discard-groups`` (the
    fake reads ``discard-groups`` among its organization's features), then any issue that
    is not an error (DRF renders that ``ValidationError`` as a bare list)."""
    if any("discard-groups" not in project.org.features for project in projects):
        raise ApiError(400, ["You do not have that feature enabled"])
    if not all(_is_error(issue) for issue in targets):
        raise ApiError(400, body=_encode(["Only error issues can be discarded."]))


def _merge(data: Dataset, targets: list[IssueRecord]) -> dict[str, Any]:
    """``handle_merge``: errors only; the issue with most events stays (the higher id on
    a tie), the others are gone, their ids lead to it and their events are its own
    (``merge_groups``, done at once here)."""
    if not all(_is_error(issue) for issue in targets):
        raise ApiError(400, body=_encode(["Only error issues can be merged."]))
    parent, *children = sorted(
        targets, key=lambda issue: (len(issue.events), int(issue.id)), reverse=True
    )
    for child in children:
        child.deleted = True
        data.merged[child.id] = parent.id
        data.move_events(child, parent)
    for old, new in list(data.merged.items()):
        if new in data.merged:
            data.merged[old] = data.merged[new]
    return {"parent": parent.id, "children": [child.id for child in children]}
