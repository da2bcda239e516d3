"""Callbacks on what the client's requests do: enough to feed metrics or traces.

A client built without hooks never creates any of these objects: the transport checks a
single ``None`` per step, so the hot path stays as it was.
"""

from __future__ import annotations

import itertools
import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass

__all__ = ["HookEvent", "Hooks"]

logger = logging.getLogger("sentry_async.hooks")


@dataclass(frozen=True, slots=True)
class HookEvent:
    """What happened to one logical request (a call, with all its retries).

    Never holds the URL, its query values or any header: ``group`` is the endpoint's
    template (``"GET /organizations/{org}/issues/"``), what Sentry rate-limits by.
    """

    id: int
    """The logical request; the same in all of its events."""
    method: str
    group: str
    attempt: int
    """1-based; in ``on_done``, the number of attempts made."""
    status: int | None = None
    """The HTTP status (``on_response``, ``on_retry``, ``on_done``); ``None`` without one."""
    wait: float = 0.0
    """Seconds: the pause before the next attempt (``on_retry``) or held back by a rate
    limit (``on_rate_limit_wait``)."""
    elapsed: float = 0.0
    """Seconds: the attempt (``on_response``) or the whole request (``on_done``)."""
    reason: str | None = None
    """Why: a failure kind (``timeout``, ``connection``, ``payload``) for ``on_response`` and
    ``on_retry``; ``server`` or ``limiter`` for ``on_rate_limit_wait``; the exception's
    class name for a failed ``on_done``."""


class Hooks:
    """Override what you need; every method here does nothing.

    Hooks run synchronously on the event loop, inside the request: count, observe, set an
    attribute, never block. An exception from a hook is logged on ``sentry_async.hooks``
    and never breaks the request.
    """

    def on_start(self, event: HookEvent) -> None:
        """A logical request begins (before any rate-limit wait); ``attempt`` is 0."""

    def on_request(self, event: HookEvent) -> None:
        """An attempt is about to be sent."""

    def on_response(self, event: HookEvent) -> None:
        """An attempt ended: with a ``status``, or with no response (``reason``)."""

    def on_retry(self, event: HookEvent) -> None:
        """The attempt failed and will be sent again after ``wait`` seconds."""

    def on_rate_limit_wait(self, event: HookEvent) -> None:
        """The request is held back ``wait`` seconds: by Sentry (``server``: a 429) or by
        the client's shared limiter (``limiter``: pacing, a window, a pause another task's
        429 started, the in-flight cap)."""

    def on_done(self, event: HookEvent) -> None:
        """The logical request ended: success, a final error (``reason``) or a cancel."""


_MIN_REPORTED_WAIT = 0.001
"""Limiter waits shorter than this are scheduling noise, not rate limiting."""


class HookSet:
    """The hooks of one client; hands out a :class:`Call` per logical request."""

    __slots__ = ("_hooks", "_ids")

    def __init__(self, hooks: Iterable[Hooks]) -> None:
        self._hooks = tuple(hooks)
        for hook in self._hooks:
            if not isinstance(hook, Hooks):
                raise TypeError(
                    f"hooks must be sentry_async.Hooks instances (got {type(hook).__name__})"
                )
        self._ids = itertools.count(1)

    @classmethod
    def of(cls, hooks: Hooks | Iterable[Hooks] | None) -> HookSet | None:
        """``None`` when there is nothing to call, so the transport skips every step."""
        if hooks is None:
            return None
        found = cls([hooks] if isinstance(hooks, Hooks) else hooks)
        return found if found._hooks else None

    def start(self, method: str, group: str) -> Call:
        call = Call(self._hooks, next(self._ids), method, group)
        call.emit("on_start", HookEvent(call.id, method, group, 0))
        return call


class Call:
    """One logical request's events, as the transport reports them."""

    __slots__ = ("_hooks", "_slot_from", "_started", "attempt", "group", "id", "method", "status")

    def __init__(self, hooks: tuple[Hooks, ...], id: int, method: str, group: str) -> None:
        self._hooks = hooks
        self.id = id
        self.method = method
        self.group = group
        self.attempt = 0
        self.status: int | None = None
        self._started = time.perf_counter()
        self._slot_from = self._started

    def emit(self, name: str, event: HookEvent) -> None:
        for hook in self._hooks:
            try:
                getattr(hook, name)(event)
            except Exception:
                logger.warning("hook %s.%s failed", type(hook).__name__, name, exc_info=True)

    def waiting(self) -> None:
        """The attempt starts waiting for the limiter."""
        self._slot_from = time.perf_counter()

    def sending(self, attempt: int) -> None:
        """The limiter let the attempt through: report the wait, then the attempt."""
        self.attempt = attempt
        wait = time.perf_counter() - self._slot_from
        if wait >= _MIN_REPORTED_WAIT:
            self.emit(
                "on_rate_limit_wait",
                HookEvent(self.id, self.method, self.group, attempt, wait=wait, reason="limiter"),
            )
        self.emit("on_request", HookEvent(self.id, self.method, self.group, attempt))

    def answered(self, status: int, elapsed: float) -> None:
        self.status = status
        self.emit(
            "on_response",
            HookEvent(self.id, self.method, self.group, self.attempt, status, elapsed=elapsed),
        )

    def failed(self, kind: str) -> None:
        self.status = None
        self.emit(
            "on_response", HookEvent(self.id, self.method, self.group, self.attempt, reason=kind)
        )

    def retrying(self, wait: float, reason: str | None = None) -> None:
        self.emit(
            "on_retry",
            HookEvent(
                self.id, self.method, self.group, self.attempt, self.status, wait, reason=reason
            ),
        )

    def server_wait(self, wait: float) -> None:
        self.emit(
            "on_rate_limit_wait",
            HookEvent(
                self.id, self.method, self.group, self.attempt, self.status, wait, reason="server"
            ),
        )

    def done(self, error: BaseException | None) -> None:
        self.emit(
            "on_done",
            HookEvent(
                self.id,
                self.method,
                self.group,
                self.attempt,
                self.status,
                elapsed=time.perf_counter() - self._started,
                reason=None if error is None else type(error).__name__,
            ),
        )
