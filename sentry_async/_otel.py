"""OpenTelemetry spans, one per logical request (the ``[otel]`` extra)."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from ._version import __version__
from .hooks import HookEvent, Hooks

if TYPE_CHECKING:
    from opentelemetry.trace import Span, TracerProvider

__all__ = ["OpenTelemetryHooks"]


class OpenTelemetryHooks(Hooks):
    """One CLIENT span per logical request, named after its endpoint group and covering
    rate-limit waits and retries (and ending where the request's ``elapsed`` ends: a
    response that waits, undecoded, for a busy :func:`~sentry_async.fan_out` consumer
    does not stretch its span).

    Attributes: ``http.request.method``, ``sentry_async.endpoint_group``,
    ``http.response.status_code``, ``sentry_async.attempts`` and, on failure,
    ``error.type``; retries and rate-limit waits are span events. No URL, query value,
    header or token is ever recorded. Spans go to ``tracer_provider``, else the global one.
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
        self._spans: dict[int, tuple[Span, int]] = {}

    def on_start(self, event: HookEvent) -> None:
        start = time.time_ns()
        span = self._tracer.start_span(
            event.group,
            kind=self._trace.SpanKind.CLIENT,
            attributes={
                "http.request.method": event.method,
                "sentry_async.endpoint_group": event.group,
            },
            start_time=start,
        )
        self._spans[event.id] = span, start

    def on_retry(self, event: HookEvent) -> None:
        started = self._spans.get(event.id)
        if started is not None:
            started[0].add_event("retry", _event_attributes(event))

    def on_rate_limit_wait(self, event: HookEvent) -> None:
        started = self._spans.get(event.id)
        if started is not None:
            started[0].add_event("rate_limit_wait", _event_attributes(event))

    def on_done(self, event: HookEvent) -> None:
        started = self._spans.pop(event.id, None)
        if started is None:
            return
        span, start = started
        span.set_attribute("sentry_async.attempts", event.attempt)
        if event.status is not None:
            span.set_attribute("http.response.status_code", event.status)
        if event.reason is not None and event.reason != "moved":
            span.set_attribute("error.type", event.reason)
            span.set_status(self._trace.StatusCode.ERROR)
        span.end(end_time=start + int(event.elapsed * 1e9))


def _event_attributes(event: HookEvent) -> dict[str, Any]:
    attributes: dict[str, Any] = {"sentry_async.attempt": event.attempt, "wait_s": event.wait}
    if event.status is not None:
        attributes["http.response.status_code"] = event.status
    if event.reason is not None:
        attributes["reason"] = event.reason
    return attributes
