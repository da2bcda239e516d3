"""sentry_async: an async-first client for Sentry's REST API.

Lazy pagination over Link cursors, one shared rate limiter that reads Sentry's headers,
msgspec models that decode large events fast, and a resumable bulk exporter.
"""

import importlib
import logging
from typing import TYPE_CHECKING, Any

from ._version import __version__
from .errors import (
    APIError,
    BadRequest,
    BulkPartialError,
    ClientClosed,
    ConnectionFailed,
    DecodeError,
    ErrorDetail,
    Forbidden,
    IssuesNotFound,
    MultiProjectRefused,
    NotFound,
    OversizedPage,
    PaginationError,
    ProjectMoved,
    RateLimited,
    RequestTimeout,
    ResponseTooLarge,
    SentryError,
    ServerError,
    TransportError,
    Unauthorized,
    UnsafeRedirect,
    UntrustedHost,
    WrongEventLoop,
)

if TYPE_CHECKING:
    from ._network import InsecureTLSWarning
    from ._otel import OpenTelemetryHooks
    from ._protocol.ratelimit import RateLimitInfo
    from ._protocol.retry import RetryPolicy
    from ._transport import Response
    from .client import SentryClient, Timeouts
    from .fanout import FanOut, FanOutEvent, StreamDone, StreamItem, fan_out
    from .hooks import HookEvent, Hooks
    from .limiter import GroupState, RateLimiter
    from .pagination import Page, Paginator, Position
    from .resources.events import EventListOptions
    from .resources.issues import BulkResult

_LAZY = {
    "InsecureTLSWarning": "._network",
    "OpenTelemetryHooks": "._otel",
    "RateLimitInfo": "._protocol.ratelimit",
    "RetryPolicy": "._protocol.retry",
    "Response": "._transport",
    "SentryClient": ".client",
    "Timeouts": ".client",
    "FanOut": ".fanout",
    "FanOutEvent": ".fanout",
    "StreamDone": ".fanout",
    "StreamItem": ".fanout",
    "fan_out": ".fanout",
    "HookEvent": ".hooks",
    "Hooks": ".hooks",
    "GroupState": ".limiter",
    "RateLimiter": ".limiter",
    "Page": ".pagination",
    "Paginator": ".pagination",
    "Position": ".pagination",
    "EventListOptions": ".resources.events",
    "BulkResult": ".resources.issues",
}
"""Names imported on first use: ``import sentry_async`` (and so ``sentry-async --help``)
does not pay for aiohttp until a client is made."""

__all__ = [
    "APIError",
    "BadRequest",
    "BulkPartialError",
    "BulkResult",
    "ClientClosed",
    "ConnectionFailed",
    "DecodeError",
    "ErrorDetail",
    "EventListOptions",
    "FanOut",
    "FanOutEvent",
    "Forbidden",
    "GroupState",
    "HookEvent",
    "Hooks",
    "InsecureTLSWarning",
    "IssuesNotFound",
    "MultiProjectRefused",
    "NotFound",
    "OpenTelemetryHooks",
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
    "UntrustedHost",
    "WrongEventLoop",
    "__version__",
    "fan_out",
]

# A library's convention: silent unless the application configures logging (then its
# handlers get every record). Without this, Python's last-resort handler would print the
# retry warnings of a program that configured nothing on its stderr.
logging.getLogger(__name__).addHandler(logging.NullHandler())

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
    """The lazily imported names, and the protocol helpers that moved to
    :mod:`sentry_async.sansio` (the old names still work for one release, with a
    ``DeprecationWarning``)."""
    module = _LAZY.get(name)
    if module is not None:
        value = getattr(importlib.import_module(module, __name__), name)
        globals()[name] = value
        return value
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


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
