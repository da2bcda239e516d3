"""The public surface, pinned: a name added or dropped is a decision, not an accident.

As httpx's ``test_exported_members.py``: every module's ``__all__`` is exactly the list
below, every listed name imports, and every public name a module defines is listed.
"""

from __future__ import annotations

import importlib
import types
import warnings

import pytest

PUBLIC = {
    "sentry_async": [
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
        "OversizedPage",
        "OpenTelemetryHooks",
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
    ],
    "sentry_async.sansio": [
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
    ],
    "sentry_async.tables": [
        "collect_table",
        "discover_batches",
        "discover_schema",
        "discover_table",
        "events_stats_rows",
        "events_stats_table",
        "page_table",
        "to_pandas",
        "to_polars",
        "usage_rows",
        "usage_table",
    ],
}


@pytest.mark.parametrize("module_name", sorted(PUBLIC))
def test_all_is_exactly_the_pinned_list(module_name: str) -> None:
    module = importlib.import_module(module_name)
    assert sorted(module.__all__) == sorted(PUBLIC[module_name])
    for name in module.__all__:
        assert getattr(module, name) is not None, name


@pytest.mark.parametrize("module_name", sorted(PUBLIC))
def test_every_public_name_a_module_defines_is_exported(module_name: str) -> None:
    module = importlib.import_module(module_name)
    defined = {
        name
        for name, value in vars(module).items()
        if not name.startswith("_")
        and not isinstance(value, types.ModuleType)
        and (getattr(value, "__module__", None) or "").startswith(module_name)
    }
    assert defined <= set(module.__all__), sorted(defined - set(module.__all__))


@pytest.mark.parametrize(
    "name",
    [
        "Link",
        "LinkHeaderError",
        "PageLinks",
        "page_links",
        "parse_link_header",
        "parse_rate_limit",
        "parse_retry_after",
    ],
)
def test_names_moved_to_sansio_still_import_with_a_warning(name: str) -> None:
    import sentry_async
    from sentry_async import sansio

    with pytest.warns(DeprecationWarning, match=f"sentry_async.sansio.{name}"):
        value = getattr(sentry_async, name)
    assert value is getattr(sansio, name)


def test_fanout_event_alias_warns() -> None:
    from sentry_async import fanout

    with pytest.warns(DeprecationWarning, match="FanOutEvent"):
        alias = fanout.Event
    assert alias is fanout.FanOutEvent


def test_unknown_names_still_raise_attribute_error() -> None:
    import sentry_async

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(AttributeError, match="no_such_name"):
            _ = sentry_async.no_such_name  # type: ignore[attr-defined]
