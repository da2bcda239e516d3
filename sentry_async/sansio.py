"""Sentry's API protocol as pure functions and small classes: no I/O, no event loop.

Everything the client decides lives here, so another transport (a sync client, a test,
a different HTTP library) can reuse it: RFC 8288 ``Link`` parsing and Sentry's cursors
(``CursorWalk``: one stream's pages, positions, loops and stale pages),
the ``X-Sentry-Rate-Limit-*`` and ``Retry-After`` headers, error bodies, retry decisions,
endpoint groups and same-origin checks, query-parameter encoding, and which proxy a URL
goes through (``*_PROXY``/``NO_PROXY`` read as ``urllib`` reads them). This is the public
home of these names; the modules under ``sentry_async._protocol`` are private.
"""

from ._protocol.cursors import CursorWalk, Step, body_fingerprint
from ._protocol.errors import build_api_error, is_query_timeout, parse_error_body
from ._protocol.hosts import endpoint_group, is_loopback, origin, resolve_redirect
from ._protocol.links import (
    Link,
    LinkHeaderError,
    PageLinks,
    cursor_from_url,
    page_links,
    parse_link_header,
)
from ._protocol.params import (
    check_page_size,
    check_slug,
    encode_params,
    format_datetime,
    time_range,
    validate_period,
)
from ._protocol.proxies import ProxySettings, bypasses, proxies_from_env
from ._protocol.ratelimit import RateLimitInfo, parse_rate_limit, parse_retry_after
from ._protocol.retry import RetryDecision, RetryPolicy, backoff_delay, decide, rate_limit_delay

__all__ = [
    "CursorWalk",
    "Link",
    "LinkHeaderError",
    "PageLinks",
    "ProxySettings",
    "RateLimitInfo",
    "RetryDecision",
    "RetryPolicy",
    "Step",
    "backoff_delay",
    "body_fingerprint",
    "build_api_error",
    "bypasses",
    "check_page_size",
    "check_slug",
    "cursor_from_url",
    "decide",
    "encode_params",
    "endpoint_group",
    "format_datetime",
    "is_loopback",
    "is_query_timeout",
    "origin",
    "page_links",
    "parse_error_body",
    "parse_link_header",
    "parse_rate_limit",
    "parse_retry_after",
    "proxies_from_env",
    "rate_limit_delay",
    "resolve_redirect",
    "time_range",
    "validate_period",
]
