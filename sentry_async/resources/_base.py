"""What every resource shares: the client handle and argument normalisation."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from .._protocol.params import check_slug, time_range

if TYPE_CHECKING:
    from ..client import SentryClient

__all__ = ["IdOrSlug", "Resource", "environments", "listify", "time_params"]

IdOrSlug = str | int


class Resource:
    __slots__ = ("_client",)

    def __init__(self, client: SentryClient) -> None:
        self._client = client

    @staticmethod
    def _org(org: IdOrSlug) -> str:
        return check_slug(org, "org")


def listify(value: str | int | Sequence[str | int] | None, name: str) -> list[str] | None:
    """A repeated query parameter from one value or many; empty strings are refused."""
    if value is None:
        return None
    values = [value] if isinstance(value, (str, int)) else list(value)
    out: list[str] = []
    for item in values:
        if isinstance(item, bool) or not isinstance(item, (str, int)):
            raise ValueError(f"{name} values must be strings or ints (got {item!r})")
        text = str(item).strip()
        if not text:
            raise ValueError(f"{name} must not contain empty values")
        out.append(text)
    return out


def environments(value: str | Sequence[str] | None) -> list[str] | None:
    """``environment=``; ``[]`` is refused: sent as nothing it would mean every environment."""
    if value is not None and not isinstance(value, str) and len(value) == 0:
        raise ValueError("environment must not be an empty list (pass None for every environment)")
    return listify(value, "environment")


def time_params(
    period: str | timedelta | None, start: datetime | None, end: datetime | None
) -> dict[str, str]:
    return time_range(period=period, start=start, end=end)
