"""Organizations and projects: what a multi-project fetcher looks up first."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import msgspec

from ._base import Model

__all__ = [
    "Avatar",
    "Organization",
    "OrganizationLinks",
    "OrganizationStatus",
    "OwnedOrganization",
    "Project",
]


class OrganizationStatus(Model):
    id: str | None = None
    name: str | None = None


class Avatar(Model):
    avatar_type: str | None = None
    avatar_uuid: str | None = None
    avatar_url: str | None = None


class OrganizationLinks(Model):
    """``region_url`` is where this org's API lives (``https://de.sentry.io``)."""

    organization_url: str | None = None
    region_url: str | None = None


class Organization(Model):
    id: str
    slug: str
    name: str | None = None
    date_created: datetime | None = None
    status: OrganizationStatus | None = None
    avatar: Avatar | None = None
    is_early_adopter: bool | None = None
    require_2fa: bool | None = msgspec.field(default=None, name="require2FA")
    has_auth_provider: bool | None = None
    allow_member_invite: bool | None = None
    features: list[str] = []
    links: OrganizationLinks | None = None
    access: list[str] = []
    allow_member_project_creation: bool | None = None
    allow_superuser_access: bool | None = None
    extra_options: dict[str, Any] | None = None
    onboarding_tasks: list[dict[str, Any]] = []


class OwnedOrganization(Model):
    """One row of ``GET /organizations/?owner=1``: the org, and whether you are its only owner."""

    organization: Organization
    single_owner: bool | None = None


class Project(Model):
    id: str
    slug: str
    name: str | None = None
    platform: str | None = None
    date_created: datetime | None = None
    is_bookmarked: bool | None = None
    is_member: bool | None = None
    has_access: bool | None = None
    is_public: bool | None = None
    features: list[str] = []
    first_event: datetime | None = None
    first_transaction_event: bool | None = None
    environments: list[str] = []
    latest_release: dict[str, Any] | None = None
    latest_deploys: dict[str, Any] | None = None
    status: str | None = None
    color: str | None = None
    team: dict[str, Any] | None = None
    teams: list[dict[str, Any]] = []
    organization: dict[str, Any] | None = None
    has_user_reports: bool | None = None
    # The detail endpoint's fields (``GET /projects/{org}/{project}/``).
    access: list[str] = []
    avatar: Avatar | None = None
    platforms: list[str] = []
    is_internal: bool | None = None
    default_environment: str | None = None
    resolve_age: int | None = None
    subject_prefix: str | None = None
    subject_template: str | None = None
    store_crash_reports: int | None = None
    data_scrubber: bool | None = None
    data_scrubber_defaults: bool | None = None
    scrub_ip_addresses: bool | None = msgspec.field(default=None, name="scrubIPAddresses")
    scrape_java_script: bool | None = msgspec.field(default=None, name="scrapeJavaScript")
    sensitive_fields: list[str] = []
    safe_fields: list[str] = []
    allowed_domains: list[str] = []
    verify_ssl: bool | None = msgspec.field(default=None, name="verifySSL")
    security_token: str | None = None
    security_token_header: str | None = None
    grouping_config: str | None = None
    secondary_grouping_config: str | None = None
    secondary_grouping_expiry: int | None = None
    fingerprinting_rules: str | None = None
    grouping_enhancements: str | None = None
    relay_pii_config: str | None = None
    debug_files_role: str | None = None
    dynamic_sampling_biases: list[dict[str, Any]] | None = None
    processing_issues: int | None = None
    options: dict[str, Any] = {}
    plugins: list[dict[str, Any]] = []
    has_sessions: bool | None = None
    has_replays: bool | None = None
    has_profiles: bool | None = None
    has_monitors: bool | None = None
    has_feedbacks: bool | None = None
    has_logs: bool | None = None
    has_minified_stack_trace: bool | None = None
