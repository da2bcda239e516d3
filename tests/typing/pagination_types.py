"""Checked by mypy in ``test_pagination_typing.py``: what ``paginate`` infers."""

from __future__ import annotations

from typing import Any

import msgspec
from typing_extensions import assert_type

from sentry_async import Paginator, Position, SentryClient


class Release(msgspec.Struct):
    version: str


def inferred(client: SentryClient, saved: Position) -> None:
    releases = client.paginate("/organizations/{org}/releases/", type=Release)
    assert_type(releases, Paginator[Release])
    assert_type(releases.resume(saved), Paginator[Release])
    assert_type(client.paginate("/x/", type=msgspec.Raw), Paginator[msgspec.Raw])
    assert_type(client.paginate("/x/"), Paginator[Any])
    assert_type(releases.raw(), Paginator[msgspec.Raw])
