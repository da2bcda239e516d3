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
    ConnectionFailed,
    DecodeError,
    ErrorDetail,
    Forbidden,
    NotFound,
    PaginationError,
    RateLimited,
    RequestTimeout,
    ResponseTooLarge,
    SentryError,
    ServerError,
    TransportError,
    Unauthorized,
    UnsafeRedirect,
)
from .fanout import FanOut, StreamDone, StreamItem, fan_out
from .limiter import GroupState, RateLimiter
from .pagination import Page, Paginator, Position
from .resources.issues import BulkResult

__all__ = [
    "APIError",
    "BadRequest",
    "BulkResult",
    "ConnectionFailed",
    "DecodeError",
    "ErrorDetail",
    "FanOut",
    "Forbidden",
    "GroupState",
    "Link",
    "LinkHeaderError",
    "NotFound",
    "Page",
    "PageLinks",
    "PaginationError",
    "Paginator",
    "Position",
    "RateLimitInfo",
    "RateLimited",
    "RateLimiter",
    "RequestTimeout",
    "Response",
    "ResponseTooLarge",
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
    "__version__",
    "fan_out",
    "page_links",
    "parse_link_header",
    "parse_rate_limit",
    "parse_retry_after",
]
