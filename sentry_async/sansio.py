"""Sentry's API protocol as pure functions and small classes: no I/O, no event loop.

Everything the client decides lives here, so another transport (a sync client, a test,
a different HTTP library) can reuse it: RFC 8288 ``Link`` parsing and Sentry's cursors
(``CursorWalk``: one stream's pages, positions, loops and stale pages),
the ``X-Sentry-Rate-Limit-*`` and ``Retry-After`` headers, error bodies, retry decisions
(and ``fail_fast``: whether a server-announced pause outlasts the policy), endpoint groups,
same-origin checks and redirect rules, query-parameter encoding, reading a body under a
size cap (``BodyReader``, inflating gzip/deflate), and which proxy a URL goes through
(``*_PROXY``/``NO_PROXY`` read as ``urllib`` reads them). This is the public home of these
names; the modules under ``sentry_async._protocol`` are private.
"""

from ._protocol.body import (
    ACCEPT_ENCODING,
    BodyReader,
    BodyTooLarge,
    CorruptBody,
    UnsupportedEncoding,
)
from ._protocol.cursors import (
    DEFAULT_MAX_STALE_PAGES,
    OVERSIZE_FACTOR,
    BodyFingerprints,
    CursorWalk,
    Position,
    Step,
    body_fingerprint,
)
from ._protocol.errors import (
    MAX_ERROR_BODY,
    build_api_error,
    is_query_timeout,
    parse_error_body,
)
from ._protocol.hosts import (
    REDIRECT_STATUSES,
    endpoint_group,
    is_loopback,
    origin,
    redirect_method,
    resolve_redirect,
)
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
from ._protocol.proxies import (
    ENVIRONMENT,
    FromEnvironment,
    ProxySettings,
    bypasses,
    proxies_from_env,
    proxy_settings,
    safe_proxy_url,
)
from ._protocol.ratelimit import (
    RateLimitInfo,
    header_int,
    parse_rate_limit,
    parse_retry_after,
    server_clock,
)
from ._protocol.retry import (
    FINAL_KINDS,
    FailureKind,
    RetryDecision,
    RetryPolicy,
    backoff_delay,
    decide,
    fail_fast,
    rate_limit_delay,
)

__all__ = [
    "ACCEPT_ENCODING",
    "DEFAULT_MAX_STALE_PAGES",
    "ENVIRONMENT",
    "FINAL_KINDS",
    "MAX_ERROR_BODY",
    "OVERSIZE_FACTOR",
    "REDIRECT_STATUSES",
    "BodyFingerprints",
    "BodyReader",
    "BodyTooLarge",
    "CorruptBody",
    "CursorWalk",
    "FailureKind",
    "FromEnvironment",
    "Link",
    "LinkHeaderError",
    "PageLinks",
    "Position",
    "ProxySettings",
    "RateLimitInfo",
    "RetryDecision",
    "RetryPolicy",
    "Step",
    "UnsupportedEncoding",
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
    "fail_fast",
    "format_datetime",
    "header_int",
    "is_loopback",
    "is_query_timeout",
    "origin",
    "page_links",
    "parse_error_body",
    "parse_link_header",
    "parse_rate_limit",
    "parse_retry_after",
    "proxies_from_env",
    "proxy_settings",
    "rate_limit_delay",
    "redirect_method",
    "resolve_redirect",
    "safe_proxy_url",
    "server_clock",
    "time_range",
    "validate_period",
]
