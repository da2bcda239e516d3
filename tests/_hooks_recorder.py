"""Hooks that record every event, and an in-memory OpenTelemetry exporter: what the
tests of hooks and spans look at."""

from __future__ import annotations

from typing import Any

import pytest

from sentry_async import HookEvent, Hooks


class Recorder(Hooks):
    """Every event, as ``(callback, event)``."""

    def __init__(self) -> None:
        self.events: list[tuple[str, HookEvent]] = []

    def on_start(self, event: HookEvent) -> None:
        self.events.append(("start", event))

    def on_request(self, event: HookEvent) -> None:
        self.events.append(("request", event))

    def on_response(self, event: HookEvent) -> None:
        self.events.append(("response", event))

    def on_retry(self, event: HookEvent) -> None:
        self.events.append(("retry", event))

    def on_rate_limit_wait(self, event: HookEvent) -> None:
        self.events.append(("rate_limit_wait", event))

    def on_done(self, event: HookEvent) -> None:
        self.events.append(("done", event))

    def names(self) -> list[str]:
        return [name for name, _ in self.events]

    def of(self, name: str) -> list[HookEvent]:
        return [event for kind, event in self.events if kind == name]


def memory_spans() -> tuple[Any, Any]:
    """An in-memory span exporter and a tracer provider that feeds it (the ``otel`` and
    test extras); the test is skipped without them."""
    sdk_trace = pytest.importorskip("opentelemetry.sdk.trace")
    export = pytest.importorskip("opentelemetry.sdk.trace.export")
    memory = pytest.importorskip("opentelemetry.sdk.trace.export.in_memory_span_exporter")
    exporter = memory.InMemorySpanExporter()
    provider = sdk_trace.TracerProvider()
    provider.add_span_processor(export.SimpleSpanProcessor(exporter))
    return exporter, provider


def calls(exporter: Any) -> list[Any]:
    """The finished spans of logical requests (INTERNAL), leaving out their attempts'."""
    return [span for span in exporter.get_finished_spans() if span.kind.name == "INTERNAL"]


def attempts(exporter: Any) -> list[Any]:
    """The finished spans of attempts sent over the wire (CLIENT)."""
    return [span for span in exporter.get_finished_spans() if span.kind.name == "CLIENT"]
