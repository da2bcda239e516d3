"""Scripted faults: what the fake server does wrong, to which requests, how often."""

from __future__ import annotations

import math
import random
import re
import threading
from dataclasses import dataclass, field
from typing import Any

import msgspec

__all__ = ["FAULT_KINDS", "Fault", "FaultPlan"]

_METHOD = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
"""An HTTP method: one ``token`` (RFC 9110), the only spelling a request line carries."""

FAULT_KINDS = frozenset(
    {
        "status",
        "rate_limit",
        "drop",
        "drop_mid_body",
        "truncated_json",
        "slow",
        "close_keepalive",
        "short_pages",
        "redirect",
        "invalid_json_content",
    }
)


@dataclass
class Fault:
    """One misbehaviour.

    It applies to requests whose method matches ``method`` (any when ``None``), whose path
    (``/api/0/...``) matches the regex ``path`` (``re.search``) and whose query string
    matches the regex ``query`` in one of three spellings: as sent, decoded (``key=value``
    joined by ``&``, escapes and ``+`` decoded), or as the request log shows it
    (``RecordedRequest.describe``). The first ``after`` matching requests pass untouched;
    then the fault fires ``times`` times (``None``: forever), each time with
    ``probability`` (seeded). A ``short_pages`` fault fires only on a list page that takes
    its limit (not on the page-numbered lists, whose cursors cannot resume inside a page).

    Kind-specific options: ``status``/``body``/``content_type`` (``status``; ``body`` may be
    bytes, str, or any JSON value), ``retry_after`` and ``reset_in`` (``rate_limit``:
    seconds, or an HTTP-date string for ``retry_after``; ``reset_in=None`` omits the reset
    header), ``delay`` (``slow``), ``serve`` (``short_pages``: rows per page, 0 for empty
    pages), ``location`` (``redirect``), ``fraction`` (``drop_mid_body``/``truncated_json``:
    how much of the body is sent).

    Each option is checked here, a ``ValueError`` naming it: a value out of its range
    would otherwise make a fault that never fires, changes nothing, or breaks every
    request, and the test meant to see a failure would pass without one.
    """

    kind: str
    path: str | None = None
    method: str | None = None
    query: str | None = None
    times: int | None = 1
    after: int = 0
    probability: float | None = None
    status: int = 500
    body: Any = None
    content_type: str | None = None
    retry_after: int | float | str | None = None
    reset_in: float | None = 1.0
    delay: float = 0.0
    serve: int = 3
    location: str | None = None
    fraction: float = 0.5
    seen: int = field(default=0, init=False)
    fired: int = field(default=0, init=False)

    def __post_init__(self) -> None:
        if self.kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {self.kind!r}; known: {sorted(FAULT_KINDS)}")
        self._path = _regex("path", self.path)
        self._query = _regex("query", self.query)
        if self.method is not None and (
            not isinstance(self.method, str) or not _METHOD.fullmatch(self.method)
        ):
            raise ValueError(
                f"method must be an HTTP method such as 'GET' or None, got {self.method!r}"
            )
        if self.times is not None and (not _is_int(self.times) or self.times < 1):
            raise ValueError(f"times must be an integer of at least 1 or None, got {self.times!r}")
        if not _is_int(self.after) or self.after < 0:
            raise ValueError(f"after must be an integer of at least 0, got {self.after!r}")
        if self.probability is not None and not _in_range(self.probability, 0, 1):
            raise ValueError(
                f"probability must be a number from 0 to 1 or None, got {self.probability!r}"
            )
        if not _is_int(self.status) or not 200 <= self.status <= 599:
            raise ValueError(f"status must be an integer from 200 to 599, got {self.status!r}")
        _check_body(self.body)
        _check_header("content_type", self.content_type)
        if isinstance(self.retry_after, str):
            _check_header("retry_after", self.retry_after)
        elif self.retry_after is not None and not _in_range(self.retry_after, 0, math.inf):
            raise ValueError(
                "retry_after must be a number of seconds of at least 0, an HTTP-date string "
                f"or None, got {self.retry_after!r}"
            )
        if self.reset_in is not None and not _in_range(self.reset_in, -math.inf, math.inf):
            raise ValueError(f"reset_in must be a number of seconds or None, got {self.reset_in!r}")
        if not _in_range(self.delay, 0, math.inf):
            raise ValueError(f"delay must be a number of seconds of at least 0, got {self.delay!r}")
        if not _is_int(self.serve) or self.serve < 0:
            raise ValueError(f"serve must be an integer of at least 0, got {self.serve!r}")
        _check_header("location", self.location)
        if not _in_range(self.fraction, 0, 1) or self.fraction == 1:
            raise ValueError(
                f"fraction must be a number from 0 up to (not including) 1, got {self.fraction!r}"
            )

    def matches(self, method: str, path: str, *queries: str) -> bool:
        """Whether a request applies; ``queries`` are its query string's spellings, any of
        which may match ``query``."""
        if self.method is not None and self.method.upper() != method:
            return False
        if self._path is not None and not self._path.search(path):
            return False
        query = self._query
        return query is None or any(query.search(text) for text in queries)

    @property
    def spent(self) -> bool:
        return self.times is not None and self.fired >= self.times


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _in_range(value: object, low: float, high: float) -> bool:
    """Whether ``value`` is a real number (not a bool, not NaN; finite unless a bound is
    infinite) from ``low`` to ``high``."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    return math.isfinite(value) and low <= value <= high


def _regex(name: str, pattern: object) -> re.Pattern[str] | None:
    """``pattern`` compiled (``None`` or empty: matches everything); a bad one is a
    ``ValueError`` naming the option, as every other option's."""
    if pattern is None or pattern == "":
        return None
    if not isinstance(pattern, str):
        raise ValueError(f"{name} must be a regular expression string or None, got {pattern!r}")
    try:
        return re.compile(pattern)
    except re.error as exc:
        raise ValueError(f"{name} is not a valid regular expression ({exc}): {pattern!r}") from None


def _check_header(name: str, value: object) -> None:
    """A value sent as a header: a string of printable characters, or ``None``."""
    if value is None:
        return
    if not isinstance(value, str) or not value or not value.isprintable():
        raise ValueError(
            f"{name} must be a non-empty string of printable characters or None, got {value!r}"
        )


def _check_body(body: object) -> None:
    """``status``' body: bytes, str, or a value JSON can encode (else the fault would fail
    each request it fires on with aiohttp's own plain-text 500)."""
    if body is None or isinstance(body, (bytes, str)):
        return
    try:
        msgspec.json.encode(body)
    except (TypeError, ValueError, OverflowError) as exc:
        raise ValueError(
            f"body must be bytes, a string or a JSON value, got {type(body).__name__} ({exc})"
        ) from None


class FaultPlan:
    """The faults of one server; the first live matching fault wins."""

    def __init__(self, seed: int = 0) -> None:
        self._faults: list[Fault] = []
        self._rng = random.Random(seed)
        self._lock = threading.Lock()

    def add(self, fault: Fault) -> Fault:
        with self._lock:
            self._faults.append(fault)
        return fault

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()

    @property
    def faults(self) -> list[Fault]:
        return list(self._faults)

    def pick(self, method: str, path: str, *queries: str) -> Fault | None:
        """The fault this request gets, counted as fired (``queries`` as in ``matches``)."""
        with self._lock:
            for fault in self._faults:
                if fault.spent or not fault.matches(method, path, *queries):
                    continue
                fault.seen += 1
                if fault.seen <= fault.after:
                    continue
                if fault.probability is not None and self._rng.random() >= fault.probability:
                    continue
                fault.fired += 1
                return fault
        return None

    def unfire(self, fault: Fault) -> None:
        """Takes back one firing of ``fault``, which met a request it could not change."""
        with self._lock:
            fault.fired -= 1
