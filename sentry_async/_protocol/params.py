"""Query parameters: validated before anything is sent, encoded the way Sentry parses them.

Sentry's ``start``/``end`` parser drops a ``+HH:MM`` suffix without applying it and fails
on ``-HH:MM``, so datetimes always go out converted to UTC with no offset. Repeated
parameters (``project``, ``field``, ``id`` ...) are repeated keys, never CSV.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime, timedelta, timezone

__all__ = [
    "MAX_PAGE_SIZE",
    "ParamValue",
    "Params",
    "check_page_size",
    "check_path_value",
    "check_slug",
    "encode_params",
    "format_datetime",
    "id_chunks",
    "is_numeric_id",
    "issue_id",
    "period_seconds",
    "project_refs",
    "quoted",
    "same_short_id",
    "scoped_id_chunks",
    "time_range",
    "unpaginated_switch",
    "validate_period",
]

Scalar = str | int | float | bool | datetime
ParamValue = Scalar | Sequence[Scalar] | None
Params = Mapping[str, ParamValue]

_PERIOD = re.compile(r"[0-9]+[smhdw]?")

_TOKEN_SHAPED = re.compile(r"sntry[su]_[^\s'\"]*|(?<![0-9A-Fa-f])[0-9A-Fa-f]{64}(?![0-9A-Fa-f])")
"""A Sentry token as it may be pasted: ``sntrys_``/``sntryu_`` and what follows, or a user
token of 64 hex digits from before the prefix (what the command line blanks in its own
argument errors)."""


def hide_tokens(text: str) -> str:
    """``text`` with every value shaped like a Sentry token blanked out, where no redactor
    knows the client's token (argument checks, a spec, the command line's own errors): a
    refused value is repeated in its error, and a token pasted in the wrong place too."""
    return _TOKEN_SHAPED.sub("********", text)


def quoted(value: object) -> str:
    """``repr(value)`` for a message refusing it, with :func:`hide_tokens`."""
    return hide_tokens(repr(value))


def validate_period(value: str, name: str = "period") -> str:
    """A stats period such as ``24h``, ``14d``, ``90d``, ``1w`` (a bare number is seconds)."""
    if (
        not isinstance(value, str)
        or not _PERIOD.fullmatch(value)
        or not value.rstrip("smhdw").lstrip("0")
    ):
        raise ValueError(f"{name} must look like '24h', '14d' or '30m' (got {quoted(value)})")
    return value


PERIOD_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
"""Seconds per unit of a period or interval (``14d``, ``1h``); a bare number is seconds."""


def period_seconds(value: str) -> int:
    """The seconds a period that :func:`validate_period` accepts spans."""
    unit = value.lstrip("0123456789")
    return int(value[: len(value) - len(unit)]) * PERIOD_UNITS.get(unit, 1)


def format_datetime(value: datetime, name: str = "datetime") -> str:
    """UTC ``YYYY-MM-DDTHH:MM:SS[.ffffff]``; naive datetimes are refused, not guessed."""
    if not isinstance(value, datetime):
        raise ValueError(f"{name} must be a datetime (got {type(value).__name__})")
    if value.tzinfo is None or value.tzinfo.utcoffset(value) is None:
        raise ValueError(
            f"{name} must be timezone-aware; naive datetimes are ambiguous ({value!r})"
        )
    try:
        utc = value.astimezone(timezone.utc).replace(tzinfo=None)
    except OverflowError:
        raise ValueError(f"{name} is out of range once converted to UTC ({value!r})") from None
    return utc.isoformat(timespec="microseconds" if utc.microsecond else "seconds")


def time_range(
    *,
    period: str | timedelta | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
) -> dict[str, str]:
    """``statsPeriod`` or an absolute ``start``/``end`` pair, checked for consistency."""
    if period is not None and (start is not None or end is not None):
        raise ValueError("give either period or start/end, not both")
    if period is not None:
        if isinstance(period, timedelta):
            seconds = int(period.total_seconds())
            if seconds <= 0 or seconds != period.total_seconds():
                raise ValueError(f"period must be a positive whole number of seconds ({period!r})")
            return {"statsPeriod": f"{seconds}s"}
        return {"statsPeriod": validate_period(period, "period")}
    if start is None and end is None:
        return {}
    if start is None or end is None:
        raise ValueError("start and end must be given together")
    start_s = format_datetime(start, "start")
    end_s = format_datetime(end, "end")
    if start >= end:
        raise ValueError(f"start ({start_s}) must be before end ({end_s})")
    return {"start": start_s, "end": end_s}


def check_slug(value: str | int, name: str) -> str:
    """Org and project slugs (or numeric ids) go into the path: refuse empty or odd ones."""
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise ValueError(f"{name} must be a slug or an id (got {type(value).__name__})")
    text = str(value).strip()
    if not text:
        raise ValueError(f"{name} must not be empty")
    odd = "/" in text or not text.isprintable() or any(ch.isspace() for ch in text)
    if odd or text in {".", ".."}:
        raise ValueError(f"{name} is not a valid slug or id: {quoted(value)}")
    return text


_NAMES_FORBID = {"version": "/\\", "environment": "/"}
"""Path parameters that hold a name someone chose rather than a slug, and what Sentry
refuses in each besides control characters (``BAD_RELEASE_CHARS`` for a release version,
``ENVIRONMENT_NAME_PATTERN`` for an environment): a space is fine, percent-encoded."""


def check_path_value(value: str | int, name: str) -> str:
    """A path parameter's text: a release version or an environment name as it is (refused
    if Sentry would refuse it), any other as :func:`check_slug` allows."""
    forbidden = _NAMES_FORBID.get(name)
    if forbidden is None:
        return check_slug(value, name)
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise ValueError(f"{name} must be a string (got {type(value).__name__})")
    text = str(value)
    if not text.strip():
        raise ValueError(f"{name} must not be empty")
    if text in {".", ".."} or not text.isprintable() or any(ch in forbidden for ch in text):
        raise ValueError(f"{name} is not a name Sentry accepts: {quoted(value)}")
    return text


MAX_PAGE_SIZE = 100
"""The most rows Sentry serves a page (``Endpoint.get_per_page``'s default maximum)."""


def check_page_size(value: int, name: str = "per_page", maximum: int = MAX_PAGE_SIZE) -> int:
    """Sentry answers 400 for page sizes outside 1..100; fail before sending instead."""
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= maximum:
        raise ValueError(f"{name} must be an integer from 1 to {maximum} (got {quoted(value)})")
    return value


_SHORT_ID = re.compile(r"[A-Za-z0-9_-]+-[A-Za-z0-9]+", re.ASCII)
"""``PROJ-1A``: an upper-cased project slug, a dash, a base-32 counter (Sentry's short id).
A project slug may start with ``_`` or ``-`` (``MIXED_SLUG_PATTERN``), so ``_WEB-1`` is one."""

URL_BUDGET = 8000
"""Bytes of path and query a request line may carry: nginx's default buffer is 8 KB."""


def is_numeric_id(text: str) -> bool:
    """ASCII digits only: ``str.isdigit`` also accepts ``"١٢٣"``, which Sentry does not."""
    return bool(text) and text.isascii() and text.isdigit()


def issue_id(value: str | int, name: str = "issue id") -> str:
    """An issue reference for a path: a numeric id (ASCII digits) or a short id (``PROJ-1A``).

    Numeric ids come back as Sentry reads them, as integers (``int(id)``, Django's
    ``id__in``): ``"05"`` is issue 5, and is sent and compared as ``"5"``. Anything else is
    refused before sending.
    """
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise ValueError(f"{name} must be a numeric id or a short id (got {quoted(value)})")
    text = value.strip() if isinstance(value, str) else str(value)
    if isinstance(value, int) or is_numeric_id(text):
        if int(text) <= 0:
            raise ValueError(f"{name} must be a positive number (got {value!r})")
        return str(int(text))
    if _SHORT_ID.fullmatch(text):
        return text
    raise ValueError(
        f"{name} must be a numeric id such as 4567 or a short id such as PROJ-1A "
        f"(got {quoted(value)})"
    )


_COUNTER_DIGITS = str.maketrans("OIL", "011")
"""``base32_decode`` reads ``O`` as 0, ``I`` and ``L`` as 1."""


def _short_id_key(text: str) -> tuple[str, str]:
    """A short id as ``parse_short_id`` reads it: the slug in lower case and the base-32
    counter (what follows the last ``-``) without its leading zeros."""
    slug, _, counter = text.strip().rpartition("-")
    digits = counter.upper().translate(_COUNTER_DIGITS).lstrip("0") or "0"
    return slug.lower(), digits


def same_short_id(asked: str, answered: str) -> bool:
    """Whether ``/shortids/`` answered the issue asked for, however ``asked`` was spelled.

    That lookup follows a merge: a merged-away issue's short id answers the issue it went
    into, under that issue's own ``shortId``.
    """
    return "-" in answered and _short_id_key(asked) == _short_id_key(answered)


def project_refs(value: str | int | Sequence[str | int] | None) -> list[str] | None:
    """Project filters as given: ids (ints, ASCII-digit strings, ``-1`` for every project the
    token can see) and slugs (anything else). Sentry slugs are never all digits.

    ``[]`` is refused: sent as nothing, it would mean Sentry's default, the user's member
    projects, not every project (``-1``). ``None`` is that default, on purpose.
    """
    if value is None:
        return None
    values = [value] if isinstance(value, (str, int)) else list(value)
    if not values:
        raise ValueError(
            "project must not be an empty list (pass -1 for every project the token can see,"
            " None for your member projects)"
        )
    out: list[str] = []
    for item in values:
        if isinstance(item, int) and not isinstance(item, bool):
            if item <= 0 and item != -1:
                raise ValueError(f"project ids are positive numbers (got {item!r})")
            out.append(str(item))
            continue
        if isinstance(item, str) and item.strip() == "-1":
            out.append("-1")
            continue
        out.append(check_slug(item, "project"))
    if "-1" in out and any(ref != "-1" for ref in out):
        # Beside other ids Sentry looks -1 up as an id, finds nothing, and refuses the
        # whole call (403): ``-1`` means every project only when it stands alone.
        raise ValueError(
            "project -1 (every project the token can see) must stand alone "
            f"(got {quoted(values)})"
        )
    return out


def id_param_cost(item: str) -> int:
    """What one id adds to a URL as ``&id=<id>``."""
    return len(item) + 4


def id_chunks(
    ids: Sequence[str],
    *,
    base_length: int,
    limit: int = 1000,
    budget: int = URL_BUDGET,
    cost_of: Callable[[str], int] = id_param_cost,
) -> list[list[str]]:
    """Split ``ids`` into calls of at most ``limit`` ids whose URL stays within ``budget``.

    ``base_length`` is the URL without the ids; ``cost_of`` what each id adds to it
    (``&id=<id>`` unless the id also goes elsewhere in the URL, or under another name).
    """
    split = scoped_id_chunks(
        ids, None, base_length=base_length, limit=limit, budget=budget, cost_of=cost_of
    )
    return [chunk for chunk, _ in split]


def scoped_id_chunks(
    ids: Sequence[str],
    scope_of: Mapping[str, str] | None,
    *,
    base_length: int,
    limit: int = 1000,
    budget: int = URL_BUDGET,
    cost_of: Callable[[str], int] = id_param_cost,
) -> list[tuple[list[str], list[str]]]:
    """:func:`id_chunks` for calls that also name, once each, the project of every id they
    carry (``&project=<id>``, ``scope_of[id]``; ``None``: no project named): each call's
    ids and its projects, in order."""
    chunks: list[tuple[list[str], list[str]]] = []
    current: list[str] = []
    scope: list[str] = []
    length = base_length
    for item in ids:
        project = None if scope_of is None else scope_of[item]
        named = 0 if project is None else len(project) + len("&project=")
        cost = cost_of(item) + (0 if project is None or project in scope else named)
        if current and (len(current) >= limit or length + cost > budget):
            chunks.append((current, scope))
            current, scope, length = [], [], base_length
            cost = cost_of(item) + named
        if base_length + cost > budget:
            shown = hide_tokens(item)  # blanked whole, then cut
            raise ValueError(f"issue id {shown[:40]!r} alone does not fit in a request line")
        current.append(item)
        if project is not None and project not in scope:
            scope.append(project)
        length += cost
    if current:
        chunks.append((current, scope))
    return chunks


UNPAGINATED_SWITCHES: Mapping[str, Callable[[str], bool]] = {
    # OrganizationEventsEndpoint: ``if request.GET.get("noPagination"):``, so "0" counts.
    "noPagination": bool,
    # OrganizationProjectsEndpoint: ``request.GET.get("all_projects") == "1"``.
    "all_projects": "1".__eq__,
}
"""Query parameters with which Sentry answers a list in one response, and how it reads each."""

SIZED_SWITCHES = frozenset({"noPagination"})
"""Switches whose one response still holds at most ``per_page`` items (Sentry reads it):
that response is the whole stream, a ``Link`` sent with it is not followed. The others ask
for every row: a server that pages the answer anyway (one without the switch; Sentry marks
``all_projects`` for removal) is walked to its end, never cut at its first page."""


def unpaginated_switch(pairs: Iterable[tuple[str, str]]) -> str | None:
    """The parameter among ``pairs`` with which Sentry answers in one response, if any.

    Each is read as Sentry reads it, from its last value (Django's ``QueryDict.get``): any
    non-empty ``noPagination`` is on, ``all_projects`` only as ``1``.
    """
    last = {key: value for key, value in pairs if key in UNPAGINATED_SWITCHES}
    for key, value in last.items():
        if UNPAGINATED_SWITCHES[key](value):
            return key
    return None


def _scalar(value: Scalar, name: str) -> str:
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, datetime):
        return format_datetime(value, name)
    if isinstance(value, (int, float, str)):
        return str(value)
    raise ValueError(f"parameter {name!r} has an unsupported type {type(value).__name__}")


def encode_params(params: Params | Iterable[tuple[str, str]] | None) -> list[tuple[str, str]]:
    """Flatten to ordered pairs: ``None`` drops a key, sequences repeat it."""
    if params is None:
        return []
    if not isinstance(params, Mapping):
        return [(str(k), str(v)) for k, v in params]
    pairs: list[tuple[str, str]] = []
    for key, value in params.items():
        if value is None:
            continue
        if isinstance(value, (list, tuple, set, frozenset)):
            pairs.extend((key, _scalar(item, key)) for item in value)
        else:
            pairs.append((key, _scalar(value, key)))  # type: ignore[arg-type]
    return pairs
