"""sentry_async: an async-first client for Sentry's REST API.

Lazy pagination over Link cursors, one shared rate limiter that reads Sentry's headers,
msgspec models that decode large events fast, and a resumable bulk exporter.
"""

from typing import Any

from ._protocol.ratelimit import RateLimitInfo
from ._protocol.retry import RetryPolicy
from ._transport import Response
from ._version import __version__
from .client import SentryClient, Timeouts
from .errors import (
    APIError,
    BadRequest,
    BulkPartialError,
    ConnectionFailed,
    DecodeError,
    ErrorDetail,
    Forbidden,
    MultiProjectRefused,
    NotFound,
    OversizedPage,
    PaginationError,
    ProjectMoved,
    RateLimited,
    RequestTimeout,
    SentryError,
    ServerError,
    TransportError,
    Unauthorized,
    UnsafeRedirect,
    UntrustedHost,
)
from .fanout import FanOut, FanOutEvent, StreamDone, StreamItem, fan_out
from .limiter import GroupState, RateLimiter
from .pagination import Page, Paginator, Position
from .resources.events import EventListOptions
from .resources.issues import BulkResult

__all__ = [
    "APIError",
    "BadRequest",
    "BulkPartialError",
    "BulkResult",
    "ConnectionFailed",
    "DecodeError",
    "ErrorDetail",
    "EventListOptions",
    "FanOut",
    "FanOutEvent",
    "Forbidden",
    "GroupState",
    "MultiProjectRefused",
    "NotFound",
    "OversizedPage",
    "Page",
    "PaginationError",
    "Paginator",
    "Position",
    "ProjectMoved",
    "RateLimitInfo",
    "RateLimited",
    "RateLimiter",
    "RequestTimeout",
    "Response",
    "RetryPolicy",
    "SentryClient",
    "SentryError",
    "ServerError",
    "StreamDone",
    "StreamItem",
    "Timeouts",
    "TransportError",
    "Unauthorized",
    "UnsafeRedirect",
    "UntrustedHost",
    "__version__",
    "fan_out",
]

_MOVED_TO_SANSIO = frozenset(
    {
        "Link",
        "LinkHeaderError",
        "PageLinks",
        "page_links",
        "parse_link_header",
        "parse_rate_limit",
        "parse_retry_after",
    }
)


def __getattr__(name: str) -> Any:
    """The protocol helpers moved to :mod:`sentry_async.sansio`; the old names still work
    for one release, with a ``DeprecationWarning``."""
    if name in _MOVED_TO_SANSIO:
        import warnings

        from . import sansio

        warnings.warn(
            f"sentry_async.{name} moved to sentry_async.sansio.{name}",
            DeprecationWarning,
            stacklevel=2,
        )
        return getattr(sansio, name)
    raise AttributeError(f"module 'sentry_async' has no attribute {name!r}")
