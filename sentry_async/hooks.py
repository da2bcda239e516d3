"""Callbacks on what the client's requests do: enough to feed metrics or traces.

A client built without hooks never creates any of these objects: the transport checks a
single ``None`` per step, so the hot path stays as it was.
"""

from __future__ import annotations

import contextvars
import inspect
import itertools
import logging
import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

import msgspec

from ._routing import API_PREFIX, FOLLOWING_MOVES
from .errors import ProjectMoved

if TYPE_CHECKING:
    from yarl import URL

__all__ = ["HookEvent", "Hooks"]

logger = logging.getLogger("sentry_async.hooks")


class HookEvent(msgspec.Struct, frozen=True):
    """What happened to one logical request (a call, with all its retries).

    Never holds the request's URL (``server`` is the API root above it), its query values
    or any header: ``group`` is the endpoint's
    template (``"GET /organizations/{org}/issues/"``), what Sentry rate-limits by. (A
    frozen msgspec struct: built several times per request, it must be cheap to make.)
    """

    id: int
    """The logical request, unique in the process; the same in all of its events."""
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
    """Seconds: the attempt (``on_response``, answered or not) or the whole request
    (``on_done``), not counting the time a response waited, undecoded, for a busy
    :func:`fan_out` consumer."""
    reason: str | None = None
    """Why. For ``on_response`` (an attempt without a usable answer, with its ``status``
    when the status line came) and ``on_retry``, the failure kind: retried are
    ``timeout``, ``connection``, ``payload`` (a body cut off, or one that arrived whole and
    does not decode: reported once, ``on_response`` with its status, then ``on_retry`` with
    ``payload``) and, in ``on_retry`` only, ``status`` (an answer whose status is retried:
    a 429, a 5xx); never retried are ``too_large`` (a body over ``max_body_size``), ``tls``
    (a handshake or certificate error), ``redirect`` (a redirect refused) and ``final``
    (the client closed under it, a body in an encoding it cannot read, a download cut off
    after part of its body reached the sink). ``on_response`` alone also has
    ``cancelled`` (cancelled in flight), ``sink`` (a download's sink raised), ``error``
    (an exception the client does not expect) and ``abandoned``. ``on_rate_limit_wait``:
    ``server`` or ``limiter``. ``on_done``: the exception's class name on failure, or
    ``moved`` for a renamed project's 302 that the client follows to the new path (not a
    failure). ``abandoned`` (:data:`ABANDONED`, in ``on_response`` and ``on_done``): a
    request the library sent on its own and then dropped, nobody waiting for it any more
    (a paginator's read-ahead left by ``break`` or ``aclose()``, or one no consumer waits
    on when its client closes; a :func:`fan_out`'s other streams when it ends early; a
    download stream left early); not a failure.
    A cancellation by the caller (a timeout, a cancel scope, ``task.cancel()``) stays
    ``cancelled`` / ``CancelledError``."""
    server: str | None = None
    """``on_start`` only: the API root the request goes to (``https://de.sentry.io/api/0``:
    scheme, host, a port other than the default, a self-hosted install's path prefix).
    What is under it stays out: no path, slug, id or query value."""


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
        """The request is held back ``wait`` seconds: by Sentry (``server``: a 429 that a
        retry waits out, never one that fails the call at once) or by
        the client's shared limiter (``limiter``: pacing, a window, a pause another task's
        429 started, the in-flight cap)."""

    def on_done(self, event: HookEvent) -> None:
        """The logical request ended: success, a final error (``reason``) or a cancel."""


ABANDONED = "abandoned"
"""The ``reason`` of a request the library itself cancelled, nobody waiting for it."""


class Abandoning:
    """Work the library started on its own (a read-ahead, a fan_out's workers), run in the
    context where this is :meth:`entered`: once :attr:`on`, a cancellation there is the
    library dropping what nobody waits for, and a request it cuts ends as ``abandoned``
    rather than ``cancelled``. Costs nothing per request: looked at only when one ends
    cancelled."""

    __slots__ = ("_outer", "on")

    def __init__(self, on: bool = False) -> None:
        self._outer = _ABANDONING.get()
        """The work this one runs for (a fan_out around a walk): dropping it drops this."""
        self.on = on

    def enter(self) -> None:
        """From now on, in the current context (a task's own), requests belong to this work."""
        _ABANDONING.set(self)


_ABANDONING: contextvars.ContextVar[Abandoning | None] = contextvars.ContextVar(
    "sentry_async_abandoning", default=None
)


def _abandoned() -> bool:
    """Whether the work the current request belongs to is being dropped by the library."""
    work = _ABANDONING.get()
    while work is not None:
        if work.on:
            return True
        work = work._outer
    return False


_IDS = itertools.count(1)
"""Request ids are unique in the process, so one hook object can serve several clients."""

_MIN_REPORTED_WAIT = 0.001
"""Limiter waits shorter than this are scheduling noise, not rate limiting."""


_CALLBACKS = ("on_start", "on_request", "on_response", "on_retry", "on_rate_limit_wait", "on_done")

_Handlers = dict[str, tuple[Callable[[HookEvent], None], ...]]


class HookSet:
    """The hooks of one client; hands out a :class:`Call` per logical request.

    Only callbacks a hook overrides are called, and an event nobody listens to is never
    built.
    """

    __slots__ = ("_handlers", "_redact")

    def __init__(
        self, hooks: Iterable[Hooks], *, redact: Callable[[str], str] | None = None
    ) -> None:
        self._redact = redact
        found = tuple(hooks)
        for hook in found:
            if not isinstance(hook, Hooks):
                raise TypeError(f"hooks must be sentry_async.Hooks instances ({_what(hook)})")
            for name in _CALLBACKS:
                if inspect.iscoroutinefunction(getattr(hook, name)):
                    # Called synchronously, it would only make a coroutine nobody awaits.
                    raise TypeError(
                        f"{type(hook).__name__}.{name} is an async def: hook callbacks are "
                        "called synchronously on the event loop and must be plain def"
                    )
        self._handlers: _Handlers = {
            name: tuple(
                getattr(hook, name)
                for hook in found
                if getattr(type(hook), name) is not getattr(Hooks, name)
            )
            for name in _CALLBACKS
        }

    @classmethod
    def of(
        cls, hooks: Hooks | Iterable[Hooks] | None, *, redact: Callable[[str], str] | None = None
    ) -> HookSet | None:
        """``None`` when there is nothing to call, so the transport skips every step.

        ``redact`` blanks the token out of the API root an event shows, as the log lines
        do: a region the server named may hold it in its path."""
        if hooks is None:
            return None
        if not isinstance(hooks, Hooks) and (
            isinstance(hooks, (type, str, bytes)) or not isinstance(hooks, Iterable)
        ):
            raise TypeError(
                f"hooks must be a sentry_async.Hooks instance or a list of them ({_what(hooks)})"
            )
        found = cls([hooks] if isinstance(hooks, Hooks) else hooks, redact=redact)
        return found if any(found._handlers.values()) else None

    def start(self, method: str, group: str, url: URL | None = None) -> Call:
        call = Call(self._handlers, next(_IDS), method, group)
        handlers = self._handlers["on_start"]
        if handlers:
            server = None if url is None else _api_root(url)
            if server is not None and self._redact is not None:
                server = self._redact(server)
            _emit(handlers, HookEvent(call.id, method, group, 0, server=server))
        return call


def _api_root(url: URL) -> str:
    """``url`` cut after its API prefix: where it goes, none of what it asks for."""
    path = url.raw_path
    cut = path.find(API_PREFIX + "/")
    return f"{url.scheme}://{url.raw_authority}{path[: cut + len(API_PREFIX)] if cut >= 0 else ''}"


def _what(value: object) -> str:
    """What was passed instead of a hook, and the likely fix for a class."""
    if isinstance(value, type):
        return f"got the class {value.__name__}: pass an instance, {value.__name__}()"
    return f"got {type(value).__name__}"


def _cancellation(error: BaseException | None) -> bool:
    """asyncio's or trio's cancellation: any other exception reaching a request is none."""
    return error is not None and not isinstance(error, (Exception, KeyboardInterrupt, SystemExit))


def _emit(handlers: tuple[Callable[[HookEvent], None], ...], event: HookEvent) -> None:
    for handler in handlers:
        try:
            handler(event)
        except Exception:
            logger.warning("hook %s failed", handler.__qualname__, exc_info=True)


class Call:
    """One logical request's events, as the transport reports them."""

    __slots__ = (
        "_handlers",
        "_sent",
        "_started",
        "attempt",
        "group",
        "id",
        "method",
        "status",
    )

    def __init__(self, handlers: _Handlers, id: int, method: str, group: str) -> None:
        self._handlers = handlers
        self.id = id
        self.method = method
        self.group = group
        self.attempt = 0
        self.status: int | None = None
        self._started = self._sent = time.perf_counter()

    def sending(self, attempt: int, waited: float) -> None:
        """The limiter let the attempt through after ``waited`` seconds of real waiting:
        report the wait, then the attempt."""
        self.attempt = attempt
        handlers = self._handlers["on_rate_limit_wait"]
        if handlers and waited >= _MIN_REPORTED_WAIT:
            _emit(
                handlers,
                HookEvent(self.id, self.method, self.group, attempt, wait=waited, reason="limiter"),
            )
        handlers = self._handlers["on_request"]
        if handlers:
            _emit(handlers, HookEvent(self.id, self.method, self.group, attempt))
        self._sent = time.perf_counter()

    def answered(self, status: int, elapsed: float) -> None:
        self.status = status
        handlers = self._handlers["on_response"]
        if handlers:
            _emit(
                handlers,
                HookEvent(self.id, self.method, self.group, self.attempt, status, elapsed=elapsed),
            )

    def failed(self, kind: str, status: int | None = None) -> None:
        """The attempt ended without a usable response; ``status`` when its status line
        had arrived (a body cut off or too large, a refused redirect, a sink that raised).
        Timed as an answered one is: a timeout is an attempt's slowest end, not 0 s."""
        self.status = status
        handlers = self._handlers["on_response"]
        if handlers:
            if kind == "cancelled" and _abandoned():
                kind = ABANDONED
            _emit(
                handlers,
                HookEvent(
                    self.id,
                    self.method,
                    self.group,
                    self.attempt,
                    status,
                    elapsed=time.perf_counter() - self._sent,
                    reason=kind,
                ),
            )

    def retrying(self, wait: float, reason: str | None = None) -> None:
        handlers = self._handlers["on_retry"]
        if handlers:
            _emit(
                handlers,
                HookEvent(
                    self.id, self.method, self.group, self.attempt, self.status, wait, reason=reason
                ),
            )

    def server_wait(self, wait: float) -> None:
        handlers = self._handlers["on_rate_limit_wait"]
        if handlers:
            _emit(
                handlers,
                HookEvent(
                    self.id,
                    self.method,
                    self.group,
                    self.attempt,
                    self.status,
                    wait,
                    reason="server",
                ),
            )

    def held(self, seconds: float) -> None:
        """The response waited, undecoded, for its consumer: not the request's time."""
        self._started += seconds

    def done(self, error: BaseException | None) -> None:
        handlers = self._handlers["on_done"]
        if handlers:
            reason = None if error is None else type(error).__name__
            if isinstance(error, ProjectMoved) and FOLLOWING_MOVES.get():
                reason = "moved"
            elif _cancellation(error) and _abandoned():
                reason = ABANDONED
            _emit(
                handlers,
                HookEvent(
                    self.id,
                    self.method,
                    self.group,
                    self.attempt,
                    self.status,
                    elapsed=time.perf_counter() - self._started,
                    reason=reason,
                ),
            )
