"""Token scopes as Sentry checks them: its permission classes' ``scope_map``s.

``ScopedPermission.has_permission`` (``api/permissions.py``) lets a token through when it
holds any one scope its endpoint's permission class lists for the request's method; a
method the map leaves out (``HEAD``) accepts none. It runs in DRF's ``initial()``, before
the endpoint looks anything up, so its 403 comes before any 404. Scopes are read as the
token holds them: none implies another (the maps list the higher scopes themselves).
"""

from __future__ import annotations

from collections.abc import Mapping

__all__ = [
    "DENIED",
    "GROUP",
    "ORGANIZATION",
    "ORGANIZATION_EVENT",
    "ORGANIZATION_RELEASE",
    "PROJECT",
    "PROJECT_EVENT",
    "RELAXED_PROJECT",
    "SCOPES",
    "USER_REGIONS",
    "ScopeMap",
    "challenge",
]

ScopeMap = Mapping[str, tuple[str, ...]]
"""HTTP method -> the scopes that let a token through (any one of them)."""

SCOPES = frozenset({
    "org:read", "org:write", "org:admin", "org:integrations", "org:ci",
    "member:invite", "member:read", "member:write", "member:admin",
    "team:read", "team:write", "team:admin",
    "project:read", "project:write", "project:admin", "project:releases",
    "project:distribution",
    "event:read", "event:write", "event:admin",
    "alerts:read", "alerts:write",
    "openid", "profile", "email",
})
"""``SENTRY_SCOPES`` (``conf/server.py``): every scope a token can hold."""

DENIED = "You do not have permission to perform this action."
"""DRF's ``PermissionDenied.default_detail``, the body of every scope refusal."""


def _levels(kind: str, *, write_reads: bool = False) -> ScopeMap:
    """The ``read``/``write``/``admin`` map most permission classes share."""
    read, write, admin = f"{kind}:read", f"{kind}:write", f"{kind}:admin"
    return {
        "GET": (read, write, admin),
        "POST": (write, admin),
        "PUT": (read, write, admin) if write_reads else (write, admin),
        "DELETE": (admin,),
    }


ORGANIZATION = _levels("org")
"""``OrganizationPermission`` (``api/bases/organization.py``)."""
ORGANIZATION_EVENT = _levels("event")
"""``OrganizationEventPermission`` (``api/bases/organization.py``)."""
GROUP = _levels("event")
"""``GroupPermission`` (``api/bases/group.py``)."""
PROJECT_EVENT = _levels("event")
"""``ProjectEventPermission`` (``api/bases/project.py``)."""
PROJECT = _levels("project")
"""``ProjectPermission`` (``api/bases/project.py``)."""
RELAXED_PROJECT = _levels("project", write_reads=True)
"""``RelaxedProjectPermission`` (``api/endpoints/project_details.py``): a ``PUT`` with
``project:read`` gets in, and ``put`` then refuses the settings it may not change."""
ORGANIZATION_RELEASE: ScopeMap = {
    "GET": ("project:read", "project:write", "project:admin", "project:releases", "org:ci"),
    "POST": ("project:write", "project:admin", "project:releases", "org:ci"),
    "PUT": ("project:write", "project:admin", "project:releases", "org:ci"),
    "DELETE": ("project:admin", "project:releases"),
}
"""``OrganizationReleasePermission`` (``api/bases/organization.py``)."""
USER_REGIONS: ScopeMap = {"GET": ("org:read",)}
"""``UserRegionEndpointPermissions`` (``users/api/endpoints/user_regions.py``)."""


def challenge(accepted: tuple[str, ...]) -> str:
    """``InsufficientScope.auth_header`` (``api/exceptions.py``): the RFC 6750 challenge
    naming the accepted scopes, sorted and space-delimited."""
    return f'Bearer error="insufficient_scope", scope="{" ".join(sorted(accepted))}"'
