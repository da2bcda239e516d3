"""sentry_async: an async-first client for Sentry's REST API.

Lazy pagination over Link cursors, one shared rate limiter that reads Sentry's headers,
msgspec models that decode large events fast, and a resumable bulk exporter.
"""

from ._protocol.links import Link, LinkHeaderError, PageLinks, page_links, parse_link_header
from ._protocol.ratelimit import RateLimitInfo, parse_rate_limit, parse_retry_after
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
from .fanout import FanOut, StreamDone, StreamItem, fan_out
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
    "Forbidden",
    "GroupState",
    "Link",
    "LinkHeaderError",
    "MultiProjectRefused",
    "NotFound",
    "Page",
    "PageLinks",
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
    "page_links",
    "parse_link_header",
    "parse_rate_limit",
    "parse_retry_after",
]
