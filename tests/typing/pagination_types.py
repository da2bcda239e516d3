"""Checked by mypy in ``test_pagination_typing.py``: what ``paginate`` and the paginating
resources infer."""

from __future__ import annotations

from typing import Any

import msgspec
from typing_extensions import assert_type

from sentry_async import Paginator, Position, SentryClient
from sentry_async.models import IssueHash, IssueHashSummary


class Release(msgspec.Struct):
    version: str


def inferred(client: SentryClient, saved: Position) -> None:
    releases = client.paginate("/organizations/{org}/releases/", type=Release)
    assert_type(releases, Paginator[Release])
    assert_type(releases.resume(saved), Paginator[Release])
    assert_type(client.paginate("/x/", type=msgspec.Raw), Paginator[msgspec.Raw])
    assert_type(client.paginate("/x/"), Paginator[Any])
    assert_type(releases.raw(), Paginator[msgspec.Raw])


def hashes_by_flag(client: SentryClient, full: bool) -> None:
    """``full=`` a ``bool`` variable, as ``events.for_issue`` takes it: the union."""
    assert_type(client.issues.hashes("acme", "1"), Paginator[IssueHash])
    assert_type(client.issues.hashes("acme", "1", full=False), Paginator[IssueHashSummary])
    assert_type(
        client.issues.hashes("acme", "1", full=full),
        Paginator[IssueHash] | Paginator[IssueHashSummary],
    )
