"""Scripted faults: what the fake server does wrong, to which requests, how often."""

from __future__ import annotations

import random
import re
import threading
from dataclasses import dataclass, field
from typing import Any

__all__ = ["FAULT_KINDS", "Fault", "FaultPlan"]

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
        self._path = re.compile(self.path) if self.path else None
        self._query = re.compile(self.query) if self.query else None

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
