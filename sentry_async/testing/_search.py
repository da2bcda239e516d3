"""The ``query=`` search the fake plays, after Sentry's grammar
(``src/sentry/api/event_search.py``).

``key:value`` is always a filter on that attribute or tag (``!`` negates it, a quoted value
may hold spaces, ``[a, b]`` is a list, ``*`` a wildcard, ``has:key`` a presence test); a run
of other words is one free-text phrase, matched against the message. What Sentry refuses is
its 400; what the fake does not evaluate (``OR``/``AND``, parentheses, comparisons on
numbers and dates, assignment and release searches) is a 400 naming the term, so a test
never passes on an empty answer the real server would not give.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace

from ._data import Dataset
from ._mutations import _SUBSTATUSES as SUBSTATUS_NAMES
from ._records import EventRecord, IssueRecord
from ._state import ApiError

FREE_TEXT_KEY = "message"

_FILTER = re.compile(
    r"""(?P<neg>!)?
    (?P<key>tags\[[a-zA-Z0-9_.:-]+\]|[a-zA-Z0-9_.-]+|"[a-zA-Z0-9_.:-]+")
    :(?P<op>>=|<=|!=|>|<|=)?
    (?P<value>"(?:\\"|[^"])*"|\[[^\]]*\](?=[\t\n )]|$)|[^()\t\n ]*)""",
    re.VERBOSE,
)
_AGGREGATE = re.compile(r"!?[a-zA-Z0-9_.-]+\([^)]*\):\S*")
_BOOLEAN = re.compile(r"(?i)(OR|AND)(?=[\t\n )]|$)")
_QUOTED = re.compile(r'"(?:\\"|[^"])*"')
_WORD = re.compile(r"[^()\n ]+")
_WILDCARD = re.compile(r"(?<!\\)(\\\\)*\*")

_STATUSES = {
    "resolved": "resolved",
    "unresolved": "unresolved",
    "ignored": "ignored",
    "archived": "ignored",
    "muted": "ignored",
    "reprocessing": "reprocessing",
}
_SUBSTATUSES = frozenset(SUBSTATUS_NAMES)
_SUBSTATUS_STATUS = {
    "archived_until_escalating": "ignored",
    "archived_until_condition_met": "ignored",
    "archived_forever": "ignored",
    "escalating": "unresolved",
    "ongoing": "unresolved",
    "regressed": "unresolved",
    "new": "unresolved",
}
"""``GROUP_SUBSTATUS_TO_STATUS_MAP``: the status each substatus belongs to."""
_IS_VALUES = sorted(
    {"assigned", "unassigned", "for_review", "linked", "unlinked", *_STATUSES, *_SUBSTATUSES}
)
_PRIORITIES = frozenset({"high", "medium", "low"})

UNEVALUATED_KEYS = frozenset(
    {
        # Issue search keys the fake keeps no data for (``issue_search_config``).
        "assigned",
        "assigned_to",
        "assigned_or_suggested",
        "bookmarks",
        "bookmarked_by",
        "subscribed",
        "subscribed_by",
        "first-release",
        "firstRelease",
        "first_release",
        "regressed_in_release",
        "release",
        "age",
        "firstSeen",
        "first_seen",
        "lastSeen",
        "last_seen",
        "timesSeen",
        "times_seen",
        "date",
        "event.timestamp",
        "team",
        "detector",
        "issue.category",
        "issue.type",
        "issue.seer_actionability",
        "issue.seer_last_run",
        "device.class",
        # ``default_config``'s numeric, date, duration and boolean keys.
        "stack.colno",
        "stack.lineno",
        "stack.stack_level",
        "stack.in_app",
        "transaction.duration",
        "start",
        "end",
        "time",
        "timestamp",
        "timestamp.to_hour",
        "timestamp.to_day",
        "error.received",
        "error.handled",
        "error.unhandled",
        "error.main_thread",
        "is_application",
    }
)
"""Keys Sentry gives a meaning the fake does not play: searching them is a 400."""


@dataclass(frozen=True)
class Term:
    """One filter: ``key`` (``message`` for free text) equal to one of ``values``, or to
    none of them when ``negated``; ``text`` is the term as written, for errors."""

    key: str
    values: tuple[str, ...]
    negated: bool = False
    text: str = ""


class InvalidSearchQuery(ApiError):
    """Sentry's ``InvalidSearchQuery``: a 400 with ``message``, which the issue search
    answers after ``Error parsing search query: `` (``parse_and_convert_issue_search_query``)."""

    def __init__(self, message: str) -> None:
        super().__init__(400, message)
        self.message = message


class SearchValidationError(ApiError):
    """``ValidationError`` of the issue search's parameters (``group_index``): "invalid
    limit", or "Error parsing search query: ..." for a query that does not parse
    (``parse_and_convert_issue_search_query``). The issue list answers ``message`` as a
    400; the bulk changes word it their own way."""

    def __init__(self, message: str) -> None:
        super().__init__(400, message)
        self.message = message


class UnevaluatedTerm(ApiError):
    """A term Sentry gives a meaning the fake does not play: a 400 even where Sentry drops a
    query it cannot parse, so a test never reads an answer the filter would have changed."""


def _unsupported(term: str) -> ApiError:
    return UnevaluatedTerm(400, f"The fake Sentry does not evaluate this search term: {term}")


def _quoted(text: str) -> str:
    return text[1:-1].replace('\\"', '"')


def _value(raw: str) -> str:
    """``visit_value``: a bare quote is an error unless escaped."""
    if re.search(r'(?<!\\)"', raw):
        raise InvalidSearchQuery(
            f"Invalid quote at '{raw}': quotes must enclose text or be escaped."
        )
    return raw.replace('\\"', '"')


def _list(raw: str) -> tuple[str, ...]:
    items = [item.strip() for item in raw[1:-1].split(",")]
    if any(not item for item in items[1:]) or not items[0]:
        raise InvalidSearchQuery("Lists should not have empty values")
    return tuple(_quoted(i) if i.startswith('"') and i.endswith('"') else i for i in items)


def _filter(match: re.Match[str], *, issues: bool) -> Term:
    text = match.group(0)
    negated = bool(match.group("neg"))
    key = match.group("key").strip('"')
    raw, operator = match.group("value"), match.group("op") or ""
    if key in ("is", "has") and raw.startswith("["):
        raise InvalidSearchQuery(f'"in" syntax invalid for "{key}" search')
    if raw.startswith("[") and not operator:
        return Term(key, _list(raw), negated, text)
    value = _quoted(raw) if raw.startswith('"') else _value(raw)
    if key == "has":
        if not re.fullmatch(r"tags\[[a-zA-Z0-9_.:-]+\]|[a-zA-Z0-9_.-]+", value) or operator:
            raise InvalidSearchQuery(
                'Invalid format for "has" search: was expecting a field or tag instead'
            )
        # ``visit_has_filter``: ``has:k`` is ``k != ""``, ``!has:k`` is ``k = ""``.
        return Term(value, ("",), not negated, text)
    if key == "is":
        if not issues:
            raise InvalidSearchQuery('"is:" queries are not supported in this search.')
        if value not in _IS_VALUES:
            raise InvalidSearchQuery(
                f'Invalid value for "is" search, valid values are {_IS_VALUES}'
            )
    elif not raw:
        raise InvalidSearchQuery(f"Empty string after '{key}:'")
    compared = operator in (">", "<", ">=", "<=") and key in ("issue.id", "project.id")
    if key in UNEVALUATED_KEYS or compared:
        raise _unsupported(text)
    if operator == "!=":
        negated = not negated
    elif operator not in ("", "="):
        # Operators on a text key are part of the value (``visit_text_filter``).
        value = operator + value
    return Term(key, (value,), negated, text)


def parse_query(query: str, *, issues: bool = False) -> list[Term]:
    """The filters of ``query``, ANDed; ``issues`` is the issue search's config (``is:``
    filters, no boolean operators)."""
    terms: list[Term] = []
    words: list[str] = []

    def phrase() -> None:
        if words:
            terms.append(Term(FREE_TEXT_KEY, (" ".join(words),), text=" ".join(words)))
            words.clear()

    pos = 0
    while pos < len(query):
        if query[pos] == " ":
            pos += 1
            continue
        if query[pos] in "()":
            raise _unsupported(query[pos:].split(" ", 1)[0])
        boolean = _BOOLEAN.match(query, pos)
        if boolean:
            if issues:
                raise InvalidSearchQuery(
                    'Boolean statements containing "OR" or "AND" are not supported in this '
                    "search",
                )
            raise _unsupported(boolean.group(0))
        aggregate = _AGGREGATE.match(query, pos)
        if aggregate:
            raise _unsupported(aggregate.group(0))
        found = _FILTER.match(query, pos)
        if found and (found.end() == len(query) or query[found.end()] in " \t\n)"):
            phrase()
            terms.append(_filter(found, issues=issues))
            pos = found.end()
            continue
        quoted = _QUOTED.match(query, pos)
        if quoted:
            phrase()
            text = _quoted(quoted.group(0)).strip()
            if text:
                terms.append(Term(FREE_TEXT_KEY, (text,), text=quoted.group(0)))
            pos = quoted.end()
            continue
        word = _WORD.match(query, pos)
        if word is None:  # a line break: outside the grammar
            raise InvalidSearchQuery(
                f"Parse error at '{query[max(0, pos - 5) : pos + 5]}' (column {pos:d}). "
                "This is commonly caused by unmatched parentheses. Enclose any text in double "
                "quotes.",
            )
        words.append(word.group(0))
        pos = word.end()
    phrase()
    return terms


def _wildcard(pattern: str) -> re.Pattern[str]:
    """``translate_wildcard``: ``*`` is any text, a backslash escapes the next character."""
    out, i = "", 0
    while i < len(pattern):
        char = pattern[i]
        if char == "\\" and i + 1 < len(pattern):
            out += re.escape(pattern[i + 1])
            i += 2
            continue
        out += ".*" if char == "*" else re.escape(char)
        i += 1
    return re.compile(out, re.IGNORECASE | re.DOTALL)


def _one(key: str, wanted: str, actual: str) -> bool:
    if _WILDCARD.search(wanted):
        return _wildcard(wanted).fullmatch(actual) is not None
    wanted = wanted.replace("\\*", "*")
    if key == FREE_TEXT_KEY and wanted:
        # ``positionCaseInsensitive``: the message contains the text.
        return wanted.lower() in actual.lower()
    return actual == wanted


def term_matches(term: Term, actual: str | None) -> bool:
    """Whether a row whose ``term.key`` reads ``actual`` passes; a missing tag reads ``""``."""
    hit = any(_one(term.key, wanted, actual or "") for wanted in term.values)
    return hit != term.negated


def event_value(data: Dataset, event: EventRecord, key: str) -> str | None:
    """What a search key reads on an event: its attributes, its user, else its tags."""
    issue = event.issue
    if key.startswith("tags[") and key.endswith("]"):
        return data.event_tags(event).get(key[5:-1])
    if key in (FREE_TEXT_KEY, "title"):
        return data._title(event)
    if key.startswith("user.") and key != "user.display":
        field = {"user.ip": "ip_address"}.get(key, key[5:])
        found = data.event_user(event).get(field)
        return None if found is None else str(found)
    attributes: dict[str, Callable[[], str | None]] = {
        "id": lambda: event.event_id,
        "event.id": lambda: event.event_id,
        "project": lambda: event.project.slug,
        "project.id": lambda: event.project.id,
        "issue": lambda: issue.short_id if issue else None,
        "issue.id": lambda: issue.id if issue else None,
        "event.type": lambda: "transaction"
        if event.kind == "transaction"
        else ("default" if event.kind == "default" else "error"),
        "platform": lambda: event.project.platform,
    }
    if key in attributes:
        return attributes[key]()
    return data.event_tags(event).get(key)


def events_matching(
    data: Dataset, events: Iterable[EventRecord], terms: Sequence[Term]
) -> list[EventRecord]:
    return [e for e in events if all(term_matches(t, event_value(data, e, t.key)) for t in terms)]


def _translated(term: Term) -> Term:
    """``is_filter_translation``: ``is:<status>`` is a ``status`` filter, ``is:<substatus>``
    a ``substatus`` one."""
    if term.key == "is" and term.values[0] in _STATUSES:
        return replace(term, key="status")
    if term.key == "is" and term.values[0] in _SUBSTATUSES:
        return replace(term, key="substatus")
    return term


def _converted(terms: list[Term]) -> list[Term]:
    """``convert_query_values``: the substatus values are read first, and a query with a
    substatus filter but no status filter gets the status of the first one's first value
    (of the first negated one, negated, when none is positive:
    ``expand_substatus_query_values``); then each filter's values in turn."""
    substatuses = [term for term in terms if term.key == "substatus"]
    for term in substatuses:
        bad = [value for value in term.values if value not in _SUBSTATUSES]
        if bad:
            raise InvalidSearchQuery(f"invalid substatus value of '{bad[0]}'")
    if substatuses and not any(term.key == "status" for term in terms):
        first = next((term for term in substatuses if not term.negated), substatuses[0])
        status = _SUBSTATUS_STATUS[first.values[0]]
        terms = [*terms, Term("status", (status,), first.negated, first.text)]
    for term in terms:
        if term.key == "is" and term.values[0] in ("assigned", "unassigned", "linked", "unlinked"):
            raise _unsupported(term.text)
        bad = [value for value in term.values if term.key == "status" and value not in _STATUSES]
        if bad:
            raise InvalidSearchQuery(f"invalid status value of '{bad[0]}'")
        bad = [p for p in term.values if term.key == "issue.priority" and p not in _PRIORITIES]
        if bad:
            raise InvalidSearchQuery(f"Invalid priority value of '{bad[0]}'")
    return terms


_SKIPPED_KEYS = frozenset({"is", "status", "substatus", "issue.priority"})
"""Issue search keys ``issue_search_query_to_conditions`` drops, being in
``GroupSerializerSnuba.skip_snuba_fields``: ``is:`` reads as ``status``, ``substatus``,
``for_review``, ``unassigned`` or ``linked`` (the last three kept as ``is`` here)."""


def event_detail_terms(query: str) -> list[Term]:
    """An issue event's ``query`` as ``issue_search_query_to_conditions`` reads it: parsed as
    the issue search parses it (``is:`` is valid; what does not parse, or names a status,
    substatus or priority that is none, is ``InvalidSearchQuery``), the filters that say
    nothing about an event then dropped."""
    terms = [_translated(term) for term in parse_query(query, issues=True)]
    kept = _converted([term for term in terms if term.key != "is"])
    return [term for term in kept if term.key not in _SKIPPED_KEYS]


def _issue_term(issue: IssueRecord, term: Term, now: float) -> bool | None:
    """An issue-level term's verdict at ``now``, or ``None`` for a term its events answer."""
    if term.key == "status":
        return (issue.status in {_STATUSES[value] for value in term.values}) != term.negated
    if term.key == "substatus":
        return (issue.substatus_at(now) in term.values) != term.negated
    if term.key == "is":
        # for_review: ``inbox_filter``, the issue has a ``GroupInbox`` row.
        return (issue.inbox_at(now) is not None) != term.negated
    if term.key == "issue.priority":
        return term_matches(term, issue.priority)
    if term.key == "issue.id":
        return term_matches(term, issue.id)
    if term.key in (FREE_TEXT_KEY, "title"):
        return term_matches(term, issue.title)
    if term.key == "level":
        return term_matches(term, issue.level)
    return None


def issue_filter(
    data: Dataset, query: str
) -> Callable[[IssueRecord, Callable[[EventRecord], bool]], bool]:
    """A test for issues: the issue-level terms on the issue, the others on one of its events
    (among those the ``in_scope`` test keeps), as the search backends ask Snuba for groups."""
    try:
        terms = _converted([_translated(term) for term in parse_query(query, issues=True)])
    except InvalidSearchQuery as exc:
        raise SearchValidationError(f"Error parsing search query: {exc.message}") from None

    def check(issue: IssueRecord, in_scope: Callable[[EventRecord], bool]) -> bool:
        rest = []
        for term in terms:
            verdict = _issue_term(issue, term, data.now_ts)
            if verdict is False:
                return False
            if verdict is None:
                rest.append(term)
        if not rest:
            return True
        return any(
            in_scope(e) and all(term_matches(t, event_value(data, e, t.key)) for t in rest)
            for e in issue.events
        )

    return check
