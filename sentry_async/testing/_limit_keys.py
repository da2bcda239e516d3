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

_ISSUE_PREFIXES = (
    "/organizations/{}/issues/",
    "/organizations/{}/groups/",
    "/issues/",
    "/groups/",
)
"""Where ``create_group_urls`` is included (``sentry/api/urls.py``): an issue's views are
served at the top level and under the organization, as ``issues`` or ``groups``."""

_VIEWS_WITH_LIMITS: dict[str, tuple[str, tuple[str, ...]]] = {
    # The view -> its RateLimitConfig's group, and every route (under /api/0) reaching it.
    "OrganizationEventsEndpoint": ("default", ("/organizations/{}/events/",)),
    "OrganizationStatsEndpointV2": ("default", ("/organizations/{}/stats_v2/",)),
    "EventIdLookupEndpoint": ("default", ("/organizations/{}/eventids/{}/",)),
    "GroupDetailsEndpoint": ("default", tuple(f"{p}{{}}/" for p in _ISSUE_PREFIXES)),
    "GroupAutofixEndpoint": ("default", tuple(f"{p}{{}}/autofix/" for p in _ISSUE_PREFIXES)),
    "GroupEventDetailsEndpoint": (
        "default",
        tuple(f"{p}{{}}/events/{{}}/" for p in _ISSUE_PREFIXES),
    ),
    "OrganizationDashboardGenerateEndpoint": (
        "default",
        ("/organizations/{}/dashboards/generate/",),
    ),
    "OrganizationReleasesEndpoint": ("default", ("/organizations/{}/releases/",)),
    "OrganizationReleaseFilesEndpoint": ("default", ("/organizations/{}/releases/{}/files/",)),
    "OrganizationReplayCountEndpoint": ("default", ("/organizations/{}/replay-count/",)),
    "OrganizationRepositoriesEndpoint": ("CLI", ("/organizations/{}/repos/",)),
    "ProjectEventsEndpoint": ("default", ("/projects/{}/{}/events/",)),
    "ProjectEventDetailsEndpoint": ("default", ("/projects/{}/{}/events/{}/",)),
    "ProjectGroupIndexEndpoint": (
        "default",
        ("/projects/{}/{}/issues/", "/projects/{}/{}/groups/"),
    ),
    "ProjectReleasesEndpoint": ("CLI", ("/projects/{}/{}/releases/",)),
    "ProjectReleaseFilesEndpoint": ("CLI", ("/projects/{}/{}/releases/{}/files/",)),
    "ProjectStatsEndpoint": ("default", ("/projects/{}/{}/stats/",)),
    "ProjectTagKeyValuesEndpoint": ("default", ("/projects/{}/{}/tags/{}/values/",)),
    "ProjectUsersEndpoint": ("default", ("/projects/{}/{}/users/",)),
    # sentry/core/endpoints/project_keys.py
    "ProjectKeysEndpoint": ("default", ("/projects/{}/{}/keys/",)),
    # sentry/api/endpoints/organization_project_keys.py
    "OrganizationProjectKeysEndpoint": ("default", ("/organizations/{}/project-keys/",)),
    # sentry/preprod/api/endpoints/public/organization_preprod_artifact_install_details.py
    "OrganizationPreprodArtifactPublicInstallDetailsEndpoint": (
        "default",
        ("/organizations/{}/preprodartifacts/{}/install-details/",),
    ),
    # sentry/preprod/api/endpoints/public/project_preprod_build_distribution_latest.py
    "ProjectPreprodBuildDistributionLatestEndpoint": (
        "default",
        ("/projects/{}/{}/preprodartifacts/build-distribution/latest/",),
    ),
    # sentry/preprod/api/endpoints/snapshots/preprod_artifact_snapshot.py
    "ProjectPreprodSnapshotEndpoint": ("default", ("/projects/{}/{}/preprodartifacts/snapshots/",)),
    # sentry/preprod/api/endpoints/public/project_preprod_size_analysis_status_check_rules.py
    "ProjectPreprodSizeAnalysisStatusCheckRulesEndpoint": (
        "default",
        ("/projects/{}/{}/preprod/size-analysis/status-check-rules/",),
    ),
    # sentry/preprod/api/endpoints/public/project_preprod_snapshot_status_check_rules.py
    "ProjectPreprodSnapshotStatusCheckRulesEndpoint": (
        "default",
        ("/projects/{}/{}/preprod/snapshots/status-check-rules/",),
    ),
    # sentry/preprod/api/endpoints/public/project_preprod_skip_status_check.py (two views)
    "ProjectPreprodSizeAnalysisSkipStatusCheckEndpoint": (
        "default",
        ("/projects/{}/{}/preprod/size-analysis/status-checks/skip/",),
    ),
    "ProjectPreprodSnapshotSkipStatusCheckEndpoint": (
        "default",
        ("/projects/{}/{}/preprod/snapshots/status-checks/skip/",),
    ),
    # sentry/seer/endpoints/seer_models.py
    "SeerModelsEndpoint": ("default", ("/seer/models/",)),
}
"""Views that declare ``rate_limits`` with limits of their own: a counter per method each,
keyed by the view whichever of its routes a request takes."""

_ROUTES_WITH_LIMITS = {
    route: (view, group)
    for view, (group, routes) in _VIEWS_WITH_LIMITS.items()
    for route in routes
}

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
    own = _ROUTES_WITH_LIMITS.get(shape)
    if own is not None:
        view, group = own
        return f"{group}:{view}:{method}"
    if shape in _CLI_VIEWS:
        return f"CLI:{method}"
    return f"default:{method}"
