"""The counters Sentry's rate limiter keeps, for the fake's windows.

Written from Sentry's server code, apart from the client's own grouping
(``sentry_async._protocol.hosts``), so that a route the client puts in the wrong group draws
the answers it would on Sentry: ``get_rate_limit_key`` (``sentry/ratelimits/utils.py``) keys
a request ``<category>:<group>:<view>:<METHOD>:<id>`` when the view's ``rate_limits`` has
limits of its own (``RateLimitConfig.has_custom_limit()``: any ``limit_overrides``, for any
method) and ``<category>:<group>:<METHOD>:<id>`` otherwise; ``<group>`` is the config's
``group``, ``"default"`` unless the view names another.
"""

from __future__ import annotations

import functools
import re

__all__ = ["sentry_counter"]

_VIEWS_WITH_LIMITS = {
    # Route (under /api/0) -> (the view, its RateLimitConfig's group).
    "/organizations/{}/events/": ("OrganizationEventsEndpoint", "default"),
    "/organizations/{}/stats_v2/": ("OrganizationStatsEndpointV2", "default"),
    "/organizations/{}/eventids/{}/": ("EventIdLookupEndpoint", "default"),
    "/organizations/{}/issues/{}/": ("GroupDetailsEndpoint", "default"),
    "/organizations/{}/issues/{}/autofix/": ("GroupAutofixEndpoint", "default"),
    "/organizations/{}/issues/{}/events/{}/": ("GroupEventDetailsEndpoint", "default"),
    "/organizations/{}/releases/": ("OrganizationReleasesEndpoint", "default"),
    "/organizations/{}/releases/{}/files/": ("OrganizationReleaseFilesEndpoint", "default"),
    "/organizations/{}/replay-count/": ("OrganizationReplayCountEndpoint", "default"),
    "/organizations/{}/repos/": ("OrganizationRepositoriesEndpoint", "CLI"),
    "/projects/{}/{}/events/": ("ProjectEventsEndpoint", "default"),
    "/projects/{}/{}/events/{}/": ("ProjectEventDetailsEndpoint", "default"),
    "/projects/{}/{}/issues/": ("ProjectGroupIndexEndpoint", "default"),
    "/projects/{}/{}/releases/": ("ProjectReleasesEndpoint", "CLI"),
    "/projects/{}/{}/releases/{}/files/": ("ProjectReleaseFilesEndpoint", "CLI"),
    "/projects/{}/{}/stats/": ("ProjectStatsEndpoint", "default"),
    "/projects/{}/{}/tags/{}/values/": ("ProjectTagKeyValuesEndpoint", "default"),
    "/projects/{}/{}/users/": ("ProjectUsersEndpoint", "default"),
}
"""Views that declare ``rate_limits`` with limits of their own: a counter per method each."""

_CLI_VIEWS = {
    "/organizations/{}/chunk-upload/": "ChunkUploadEndpoint",
    "/organizations/{}/releases/{}/previous-with-commits/": (
        "OrganizationReleasePreviousCommitsEndpoint"
    ),
}
"""Views that declare ``RateLimitConfig(group="CLI")`` and no limits: they share the CLI
group's counter per method."""

_PLACEHOLDER = re.compile(r"\{[^}/]*\}")


@functools.lru_cache(maxsize=512)
def sentry_counter(method: str, path: str) -> str:
    """The key Sentry counts a request of ``method`` to the route ``path`` under (a template
    under ``/api/0``, whatever its placeholders are called), less its category and id:
    ``"default:GET"``, ``"CLI:POST"``, ``"default:OrganizationReleasesEndpoint:GET"``."""
    shape = _PLACEHOLDER.sub("{}", path.removeprefix("/api/0"))
    method = method.upper()
    own = _VIEWS_WITH_LIMITS.get(shape)
    if own is not None:
        view, group = own
        return f"{group}:{view}:{method}"
    if shape in _CLI_VIEWS:
        return f"CLI:{method}"
    return f"default:{method}"
