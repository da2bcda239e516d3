"""OpenTelemetry spans (the ``[otel]`` extra): one CLIENT span per attempt sent, under an
INTERNAL span for the logical request."""

from __future__ import annotations

import functools
import time
from typing import TYPE_CHECKING, Any

from yarl import URL

from ._version import __version__
from .hooks import ABANDONED, HookEvent, Hooks

if TYPE_CHECKING:
    from opentelemetry.trace import Span, TracerProvider

__all__ = ["OpenTelemetryHooks"]


class _Request:
    """One logical request's span, the attributes its attempts share, the attempt span in
    flight, and when the last of its attempts, retries or waits was recorded (``last``)."""

    __slots__ = ("attempt", "attributes", "last", "span", "start")

    def __init__(self, span: Span, start: int, attributes: dict[str, Any]) -> None:
        self.span = span
        self.start = start
        self.attributes = attributes
        self.attempt: Span | None = None
        self.last = start


class OpenTelemetryHooks(Hooks):
    """Spans after the HTTP client conventions, at the level of attempts: each attempt
    sent is a CLIENT span (``http.request.resend_count`` on a retry), child of an INTERNAL
    span that covers the logical request: its rate-limit waits, backoff sleeps and retries
    (and ending where the request's ``elapsed`` ends: a response that waits, undecoded, for
    a busy :func:`~sentry_async.fan_out` consumer does not stretch it, unless it is then
    retried: the span ends no sooner than its last attempt, retry or wait). All are named
    after the endpoint group (``GET /organizations/{org}/issues/``).

    The redirects an attempt follows, and its one immediate resend on a kept-alive
    connection that closed before any answer, are sent inside that attempt's span, not as
    spans of their own as the conventions have it: the attempt gets no span or
    ``resend_count`` per hop, its status is the last hop's, and ``server.address`` and
    ``url.full`` name the API root the request was sent to, not a redirect's target.

    Attributes: ``http.request.method``, ``server.address``, ``server.port``,
    ``url.template`` (the group's route), ``url.full`` (the API root and the route
    template: no slug, id or query value), ``sentry_async.endpoint_group``,
    ``http.response.status_code`` and, on failure, ``error.type``; the logical span also
    ``sentry_async.attempts``; retries and rate-limit waits are its events. A request the
    library sent on its own and dropped (a read-ahead left by ``break``, a fan_out's
    other streams when it ends early: ``reason="abandoned"``) ends both spans with
    ``sentry_async.abandoned=true`` and no error status; a caller's cancellation is an
    error. No header or
    token is ever recorded. Spans go to ``tracer_provider``, else the global one.
    """

    def __init__(self, tracer_provider: TracerProvider | None = None) -> None:
        try:
            from opentelemetry import trace
        except ImportError as exc:
            raise ImportError(
                "OpenTelemetryHooks needs opentelemetry-api: pip install 'sentry-async[otel]'"
            ) from exc
        self._trace = trace
        self._tracer = trace.get_tracer("sentry_async", __version__, tracer_provider)
        self._requests: dict[int, _Request] = {}

    def on_start(self, event: HookEvent) -> None:
        start = time.time_ns()
        attributes = _request_attributes(event)
        span = self._tracer.start_span(
            event.group,
            kind=self._trace.SpanKind.INTERNAL,
            attributes=attributes,
            start_time=start,
        )
        self._requests[event.id] = _Request(span, start, attributes)

    def on_request(self, event: HookEvent) -> None:
        request = self._requests.get(event.id)
        if request is None:
            return
        attributes = dict(request.attributes)
        if event.attempt > 1:
            attributes["http.request.resend_count"] = event.attempt - 1
        request.attempt = self._tracer.start_span(
            event.group,
            context=self._trace.set_span_in_context(request.span),
            kind=self._trace.SpanKind.CLIENT,
            attributes=attributes,
        )

    def on_response(self, event: HookEvent) -> None:
        request = self._requests.get(event.id)
        if request is None or request.attempt is None:
            return
        span, request.attempt = request.attempt, None
        if event.status is not None:
            span.set_attribute("http.response.status_code", event.status)
        error = event.reason or (
            str(event.status) if event.status is not None and event.status >= 400 else None
        )
        if error == ABANDONED:
            span.set_attribute("sentry_async.abandoned", True)
        elif error is not None:
            span.set_attribute("error.type", error)
            span.set_status(self._trace.StatusCode.ERROR)
        span.end()
        request.last = time.time_ns()

    def on_retry(self, event: HookEvent) -> None:
        request = self._requests.get(event.id)
        if request is not None:
            request.span.add_event("retry", _event_attributes(event))
            request.last = time.time_ns()

    def on_rate_limit_wait(self, event: HookEvent) -> None:
        request = self._requests.get(event.id)
        if request is not None:
            request.span.add_event("rate_limit_wait", _event_attributes(event))
            request.last = time.time_ns()

    def on_done(self, event: HookEvent) -> None:
        request = self._requests.pop(event.id, None)
        if request is None:
            return
        span = request.span
        span.set_attribute("sentry_async.attempts", event.attempt)
        if event.attempt > 1:
            span.set_attribute("http.request.resend_count", event.attempt - 1)
        if event.status is not None:
            span.set_attribute("http.response.status_code", event.status)
        # A renamed project's 302 that the client follows is a move, not a failure; a
        # request the library dropped itself (nobody waiting for it) is not one either.
        if event.reason == ABANDONED:
            span.set_attribute("sentry_async.abandoned", True)
        elif event.reason is not None and event.reason != "moved":
            span.set_attribute("error.type", event.reason)
            span.set_status(self._trace.StatusCode.ERROR)
        # ``elapsed`` leaves out the time a response was held for its consumer; a hold
        # followed by a retry is inside the request, though, which contains its attempts.
        span.end(end_time=max(request.start + int(event.elapsed * 1e9), request.last))


def _request_attributes(event: HookEvent) -> dict[str, Any]:
    """What every span of a request carries: where it went and its route, no value."""
    template = event.group.partition(" ")[2]
    attributes: dict[str, Any] = {
        "http.request.method": event.method,
        "sentry_async.endpoint_group": event.group,
        "url.template": template,
    }
    if event.server is not None:
        attributes["server.address"], attributes["server.port"] = _host_port(event.server)
        attributes["url.full"] = event.server + template
    return attributes


@functools.lru_cache(maxsize=64)
def _host_port(root: str) -> tuple[str | None, int | None]:
    """A client has one API root or a few (regions): each is parsed once."""
    url = URL(root)
    return url.host, url.port


def _event_attributes(event: HookEvent) -> dict[str, Any]:
    attributes: dict[str, Any] = {"sentry_async.attempt": event.attempt, "wait_s": event.wait}
    if event.status is not None:
        attributes["http.response.status_code"] = event.status
    if event.reason is not None:
        attributes["reason"] = event.reason
    return attributes
