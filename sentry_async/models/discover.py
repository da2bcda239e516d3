"""Discover responses: rows keyed by the requested field expressions, plus their meta."""

from __future__ import annotations

from typing import Any, Generic, TypeVar

import msgspec

from ._base import Model

__all__ = ["DiscoverMeta", "DiscoverResponse", "discover_meta"]

T = TypeVar("T")


class DiscoverMeta(Model):
    """Field types (``integer``, ``date``, ``duration`` ...) and units of the row keys."""

    fields: dict[str, str] = {}
    units: dict[str, str | None] = {}
    is_metrics_data: bool | None = None
    is_metrics_extracted_data: bool | None = None
    tips: dict[str, Any] = {}
    dataset_reason: str | None = None
    dataset: str | None = None
    data_scanned: str | None = None
    accuracy: Any = None


class DiscoverResponse(msgspec.Struct, Generic[T], kw_only=True, gc=False):
    """The body of ``/organizations/{org}/events/``; ``T`` is a row dict or ``msgspec.Raw``."""

    data: list[T] = []
    meta: dict[str, Any] | None = None
    confidence: Any = None

    def __post_init__(self) -> None:
        # The meta is checked as the body is decoded: one of another shape is then the
        # page's DecodeError, naming the endpoint, not an error after the page was fetched.
        try:
            discover_meta(self.meta)
        except msgspec.ValidationError as exc:
            where = str(exc).replace("at `$", "at `$.meta", 1)
            raise ValueError(f"meta does not fit DiscoverMeta: {where}") from None


_KNOWN_META = frozenset(
    {
        "fields",
        "units",
        "isMetricsData",
        "isMetricsExtractedData",
        "tips",
        "datasetReason",
        "dataset",
        "dataScanned",
        "accuracy",
        "discoverSplitDecision",
        "bytesScanned",
        "routingHint",
    }
)


def discover_meta(meta: dict[str, Any] | None) -> DiscoverMeta | None:
    """Typed meta; legacy servers put ``{field: type}`` at the top level of ``meta``."""
    if meta is None:
        return None
    result = msgspec.convert(meta, DiscoverMeta, strict=False)
    if not result.fields:
        legacy = {k: v for k, v in meta.items() if k not in _KNOWN_META and isinstance(v, str)}
        if legacy:
            result = msgspec.structs.replace(result, fields=legacy)
    return result
