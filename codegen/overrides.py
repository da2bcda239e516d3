"""The reviewed corrections the spec needs; everything else is derived from it.

Keys are operationIds as the spec spells them (some are English sentences). Each entry
says why it exists; a new spec version that drops an operation makes the generator fail
loudly on the stale key instead of silently ignoring it.
"""

from __future__ import annotations

from typing import Any

GROUP_NAMES: dict[str, str] = {
    # Two tags differ by one letter; Sentry's docs call this one the Integration Platform.
    "Integration": "integration_platform",
}
"""Spec tag -> attribute on the client (default: the tag in snake_case)."""

GROUP_NOUNS: dict[str, tuple[str, ...]] = {
    # A path word naming the group's own resource is dropped from method names:
    # ``client.releases.list`` rather than ``client.releases.list_releases``.
    "crons": ("monitors",),
    "integration_platform": ("sentry-apps", "sentry-app-installations"),
    "scim": (),
    "spike_protection": ("actions",),
    "mobile_builds": (),
    "seer": (),
    "explore": (),
    "profiling": (),
    "monitors": (),
}
"""Group -> path words that name its main resource (default: the group name itself)."""

HANDWRITTEN: dict[str, str] = {
    # Operations the hand-written resources already serve; they stay the front door.
    "listOrganizations": "organizations.list",
    "getOrganization": "organizations.get",
    "listOrganizationProjects": "projects.list",
    "getProject": "projects.get",
    "listOrganizationIssues": "issues.list",
    "updateOrganizationIssues": "issues.bulk_update",
    "deleteOrganizationIssues": "issues.bulk_delete",
    "getOrganizationIssue": "issues.get",
    "updateOrganizationIssue": "issues.update",
    "deleteOrganizationIssue": "issues.delete",
    "listOrganizationIssueHashes": "issues.hashes",
    "getOrganizationIssueTag": "issues.tag",
    "listOrganizationIssueTagValues": "issues.tag_values",
    "listOrganizationIssueEvents": "events.for_issue",
    "listProjectEvents": "events.for_project",
    "getProjectEvent": "events.get",
    "getOrganizationIssueEvent": "events.for_issue_event",
    "resolveOrganizationEventId": "events.resolve",
    "listOrganizationEvents": "discover.query",
    "listOrganizationStatsV2": "stats.usage",
}
"""operationId -> ``group.method`` of the hand-written method that wraps it."""

HANDWRITTEN_METHODS: dict[str, tuple[str, ...]] = {
    # Groups whose hand-written resource class extends the generated one (so both sets of
    # methods live on one client attribute), with the names generated methods must not take.
    "organizations": ("list", "get", "use_region"),
    "projects": ("list", "get"),
    "events": (
        "for_issue",
        "for_project",
        "get",
        "get_raw",
        "for_issue_event",
        "latest",
        "oldest",
        "recommended",
        "resolve",
    ),
    "discover": ("query",),
}

RENAMES: dict[str, str] = {
    # Where the derived name reads badly or two operations would derive the same one.
    "startOrganizationIssueAutofix": "start_autofix",
    "getOrganizationIssueAutofixState": "get_autofix",
    "resolveOrganizationShortId": "resolve_short_id",
    "addOrganizationMember": "add_member",
    "addOrganizationMemberTeam": "add_member_to_team",
    "updateOrganizationMemberTeam": "update_member_team_role",
    "deleteOrganizationMemberTeam": "remove_member_from_team",
    "addProjectTeam": "add_team",
    "deleteProjectTeam": "remove_team",
    "linkProjectRepository": "link_repository",
    "addProjectSymbolSource": "create_symbol_source",
    "updateProjectSymbolSource": "update_symbol_source",
    "deleteProjectSymbolSource": "delete_symbol_source",
    "createTeamProject": "create_for_team",
    "provisionOrganizationScimV2Group": "provision_group",
    "provisionOrganizationScimV2User": "provision_user",
    "Enable Spike Protection": "enable_spike_protection",
    "Disable Spike Protection": "disable_spike_protection",
    "Submit User Feedback": "submit_user_feedback",
    "Register a New Service Hook": "create_hook",
    "Bulk Mutate a List of Issues": "bulk_update_issues",
    "Bulk Remove a List of Issues": "bulk_delete_issues",
    "Bulk Update Project Environments": "bulk_update",
    "Retrieve Files Changed in a Release's Commits": "list_commit_files",
    "Create or update an External Issue": "create_or_update_external_issue",
    "Create an External Issue and Link It to an Issue": "create_issue_link",
    "Link an Existing External Issue to an Issue": "link_issue",
    "Unlink an External Issue from an Issue": "unlink_issue",
    "Retrieve an Integration's Issue Config for an Issue": "get_issue_config",
    "Retrieve Trace Item Statistics": "get_trace_item_stats",
    "getOrganizationReplayCount": "count",
    "listOrganizationReplaySelectors": "list_selectors",
    "List an Organization's Integration Platform Installations": "list_installations",
    "getOrganizationConfigIntegrations": "get_config",
    "uploadOrganizationReleaseFile": "upload_file",
    "uploadProjectReleaseFile": "upload_file_for_project",
    "listOrganizationReleaseThresholdStatuses": "list_threshold_statuses",
    "listProjectReplayDeletionJobs": "list_deletion_jobs",
    "createProjectReplayDeletionJob": "create_deletion_job",
    "getProjectReplayDeletionJob": "get_deletion_job",
    "getOrganizationSessions": "get_sessions",
    "getOrganizationStatsSummary": "get_stats_summary",
    "getOrganizationProfilingFlamegraph": "get_flamegraph",
    "listOrganizationProfilingChunks": "get_chunks",
    "getOrganizationTraceMeta": "get_trace_meta",
    "getOrganizationTrace": "get_trace",
    "listOrganizationEventsTimeseries": "timeseries",
    "uploadProjectPreprodArtifactSnapshot": "upload_snapshot",
    "createProjectPreprodSizeAnalysisSkippedStatusCheck": "skip_size_analysis_status_check",
    "createProjectPreprodSnapshotSkippedStatusCheck": "skip_snapshot_status_check",
    "getProjectInstallableBuildLatest": "get_latest_installable_build",
    "getOrganizationPreprodArtifactSnapshotLatestBase": "get_latest_base_snapshot",
}
"""operationId -> method name."""

PAGINATED: dict[str, str] = {
    # Array-returning GETs that declare no ``cursor`` but are built on the server's
    # ``self.paginate`` (checked in Sentry's endpoint code), with why.
    "listOrganizationDetectors": "OrganizationDetectorIndexEndpoint: OffsetPaginator",
    "listOrganizationWorkflows": "OrganizationWorkflowIndexEndpoint: OffsetPaginator",
    "listProjectMonitorCheckins": "MonitorCheckInMixin: OffsetPaginator",
    "listOrganizationSentryApps": "OrganizationSentryAppsEndpoint: OffsetPaginator",
    "listOrganizationNotificationsActions": "NotificationActionsIndexEndpoint: OffsetPaginator",
    "listProjectReplayDeletionJobs": "ProjectReplayDeletionJobsIndexEndpoint: OffsetPaginator",
    "listOrganizationForwarding": "DataForwardingIndexEndpoint: OffsetPaginator",
    "Retrieve Files Changed in a Release's Commits": "CommitFileChangeEndpoint: OffsetPaginator",
}
"""operationId -> the server code that paginates it."""

PAGED_WRITES: dict[str, str] = {
    # Writes whose server changes every object the filter matches at once, then answers
    # with ``self.paginate``: the first page of the changed objects and a ``Link`` to the
    # rest. The method returns them all: the write is sent once and the later pages are
    # read with the GET of the same path and filters (the same query, in the same order);
    # a write per page would change every match again.
    "updateOrganizationDetectors": (
        "OrganizationDetectorIndexEndpoint.put: OffsetPaginator, order_by id, as the GET's "
        "default sortBy"
    ),
    "updateOrganizationWorkflows": (
        "OrganizationWorkflowIndexEndpoint.put: OffsetPaginator, order_by id, as the GET's "
        "default sortBy"
    ),
}
"""operationId -> the server code that pages its answer."""

PAGED_FIELDS: dict[str, tuple[str, str]] = {
    # Object-returning GETs whose server pages one array inside the object (``per_page``,
    # ``cursor``, a ``Link`` to the rest) -> (that field, the server code that pages it).
    # The method is a paginator over the field's items; each page's ``meta`` is the whole
    # object as that page sent it.
    "getOrganizationSessions": (
        "groups", "OrganizationSessionsEndpoint: SessionsDataSeriesPaginator (offset cursor)"
    ),
}
"""operationId -> (the paged array field, the server code that pages it)."""

NOT_PAGINATED: dict[str, str] = {
    # Declares ``cursor`` but answers with one object: the cursor is a filter, not a page.
    "getOrganizationReplay": "one replay; the list parameters are copied from the index",
}

PAGE_SIZE_PARAM: dict[str, str] = {
    # Issue listings read the page size from ``limit`` (as the hand-written issues.list).
    "List a Project's Issues": "limit",
}

BINARY: dict[str, str] = {
    # Responses that are file contents, streamed instead of decoded. Value: the query
    # parameter that asks for the contents ("" when the endpoint always sends them; a
    # trailing "=" when it takes the file's id).
    "listProjectDebugFiles": "id=",  # DebugFilesEndpoint.get sends the file for ?id=<id>
    "getProjectEventAttachment": "download",
    "getOrganizationReleaseFile": "download",
    "getProjectReleaseFile": "download",
    # ProjectReplayRecordingSegmentDetailsEndpoint.get: metadata unless ?download is present
    "getProjectReplayRecordingSegment": "download",
    # OrganizationStatsSummaryEndpoint.get answers CSV for any non-empty ?download
    "getOrganizationStatsSummary": "download",
}

ALWAYS_SENT: dict[str, tuple[str, ...]] = {
    # ``group.Model`` -> fields the server's serializer fills on every object, so they are
    # typed as required. Only fields written unconditionally by the serializer belong here:
    # one that a real payload lacks fails the whole decode.
    "teams.Team": ("id", "slug"),  # TeamSerializer.serialize
    "releases.Release": ("version",),  # ReleaseSerializer.serialize
    "crons.Monitor": ("id",),  # MonitorSerializer.serialize (older servers send no slug)
}

GROUP_ANNOTATIONS: dict[str, Any] = {"type": "array", "items": {"anyOf": [
    {
        "type": "object",
        "properties": {"displayName": {"type": "string"}, "url": {"type": "string"}},
        "required": ["displayName", "url"],
    },
    {"type": "string"},
]}}
"""An issue's ``annotations``, its links to external issues. GroupSerializerBase.get_attrs
(src/sentry/api/serializers/models/group.py) fills them from the integrations'
``get_annotations_for_group_list``, PlatformExternalIssue's and the plugins'
``get_annotations``: GroupAnnotation objects ``{displayName, url}`` now, an HTML link
string each on older servers."""

FIELD_SCHEMAS: dict[str, Any] = {
    # ``group.Model.field`` -> the schema the server's serializer really follows, where the
    # spec describes another; ``"$spec"`` inside it stands for the spec's own schema of the
    # field, ``"$items:<operationId>"`` for the items of that operation's list answer (the
    # field then takes its model). Checked in Sentry's serializer code, with why.
    # The spec's ``annotations`` are strings for the project issue list and objects for the
    # short id's issue; both endpoints serialize with GroupSerializerBase subclasses.
    "events.EventIssue.annotations": GROUP_ANNOTATIONS,
    "organizations.ShortIdGroup.annotations": GROUP_ANNOTATIONS,
    # StreamGroupSerializer.serialize: ``result["stats"] = {self.stats_period: stats}``, keyed
    # by the period asked (ProjectGroupIndexEndpoint accepts ``24h`` and ``14d``), not only
    # the spec's ``24h``; each bucket is ``[timestamp, count]``.
    "events.EventIssue.stats": {"type": "object", "additionalProperties": {
        "type": "array", "items": {"type": "array", "items": {"type": "number"}},
    }},
    # GroupSerializerBase._get_status: ``statusDetails["inCommit"]`` is the commit that
    # resolved the issue as CommitSerializer writes it (_resolve_resolutions serializes the
    # linked Commit), the repository commit list's model, not a string.
    "organizations.ShortIdGroupStatusDetails.inCommit": "$items:listOrganizationRepoCommits",
    # MonitorSerializer.get_attrs: defaultdict(list), ``.get(item.id, [])``: always a list.
    "crons.Monitor.environments": {"type": "array", "items": "$spec"},
    # replays/query.py selects ``isArchived`` as ``ifNull(max(is_archived), 0)`` (a UInt8)
    # and post_process.generate_normalized_output copies it unconverted: 0 for a live
    # replay; _archived_row sends True.
    "replays.Replay.is_archived": {"anyOf": [{"type": "boolean"}, {"type": "integer"}]},
    # SentryAppSerializer.serialize: ``schema`` and ``metadata`` are the app's JSON objects
    # ({} by default), ``featureData`` its IntegrationFeatures through
    # IntegrationFeatureSerializer (its TypedDict says str and list[str]).
    "integration_platform.SentryApp.schema": {"type": "object"},
    "integration_platform.SentryApp.metadata": {"type": "object"},
    "integration_platform.SentryApp.featureData": {"type": "array", "items": {
        "type": "object",
        "properties": {
            "featureId": {"type": "integer"},
            "featureGate": {"type": "string"},
            "description": {"type": "string", "nullable": True},
        },
    }},
    # OrganizationDashboardsEndpoint.get sends the prebuilt dashboards of
    # get_prebuilt_dashboards as defined there, with ``"createdBy": ""``.
    "dashboards.Dashboard.createdBy": {"anyOf": ["$spec", {"type": "string"}]},
    # DashboardListSerializer.get_attrs: ``layout`` is the widget's saved layout (LayoutField
    # stores integers x, y, w, h, minH) or None, not a string.
    "dashboards.Dashboard.widgetPreview": {"type": "array", "items": {
        "type": "object",
        "properties": {
            "displayType": {"type": "string"},
            "layout": {"type": "object", "nullable": True, "properties": {
                key: {"type": "integer"} for key in ("x", "y", "w", "h", "minH")
            }},
        },
    }},
}

PARAM_SCHEMAS: dict[str, dict[str, dict[str, Any]]] = {
    # operationId -> {query parameter: its schema}, where the spec's is not what the server
    # reads. The project bulk issue calls read ``id`` with ``getlist`` (the spec's prose
    # says to repeat it; its schema says one integer).
    "Bulk Mutate a List of Issues": {"id": {"type": "array", "items": {"type": "integer"}}},
    "Bulk Remove a List of Issues": {"id": {"type": "array", "items": {"type": "integer"}}},
}

PARAM_NAMES: dict[str, dict[str, str]] = {
    # operationId -> {query parameter: Python name}, where the derived name would be
    # mistaken for a body field's.
}

UNREAD_PARAMS: dict[str, dict[str, str]] = {
    # operationId -> {query parameter the spec documents: why the server never reads it}.
    # Left out of the method: a filter the server ignores would only look like a guard.
    "Bulk Mutate a List of Issues": {
        "status": "ProjectGroupIndexEndpoint.put searches with build_query_params_from_request, "
        "which reads sort, limit, cursor, query and saved searches, never status",
    },
}

PARTIAL_BODIES: dict[str, str] = {
    # operationId -> the server code that validates its body with ``partial=True``: every
    # body field may be left out, and one left out stays as it is, whatever the spec
    # calls required.
    "updateOrganizationMonitor": "MonitorDetailsMixin.update_monitor: MonitorValidator",
    "updateProjectMonitor": "MonitorDetailsMixin.update_monitor: MonitorValidator",
    "updateTeam": "TeamDetailsEndpoint.put: TeamDetailsSerializer",
    # ``type`` defaults to the detector's own group type.
    "updateOrganizationDetector": "OrganizationDetectorDetailsEndpoint.put",
    "updateTeamExternalTeam": "ExternalTeamDetailsEndpoint.put: ExternalTeamSerializer",
    "updateOrganizationExternalUser": "ExternalUserDetailsEndpoint.put: ExternalUserSerializer",
    "updateSentryApp": "SentryAppDetailsEndpoint.put: SentryAppParser",
    "Update a Service Hook": "ProjectServiceHookDetailsEndpoint.put: ServiceHookValidator",
    "updateProjectEnvironment": "ProjectEnvironmentDetailsEndpoint.put: EnvironmentSerializer",
}

EXTRA_BODY_FIELDS: dict[str, dict[str, dict[str, Any]]] = {
    # operationId -> {wire name: schema} of optional JSON body fields the server reads but
    # the spec leaves out.
    # OrganizationReleaseDetailsEndpoint.put applies ``status`` (ReleaseSerializer's
    # validate_status: ReleaseStatus.from_string); the spec hides it through
    # ``extend_schema_serializer(exclude_fields=["headCommits", "status"])``.
    "updateOrganizationRelease": {"status": {"type": "string", "enum": ["open", "archived"]}},
}

NOT_REQUIRED: dict[str, dict[str, str]] = {
    # operationId -> {body field or query parameter the spec calls required: why the
    # server does without it}. The method takes it as optional.
    "createOrganizationExternalUser": {
        "id": "ExternalUserSerializer.Meta.fields has no id: the server never reads it",
    },
    "getOrganizationReplayCount": {
        "data_source": "ReplayCountQueryParamsValidator defaults it to discover",
    },
    "createOrganizationForwarding": {
        "organization_id": "DataForwardingIndexEndpoint.post sets it from the path",
    },
    "updateOrganizationForwarding": {
        "organization_id": "DataForwardingDetailsEndpoint.put sets it from the path",
        "provider": "a project override (project_id, overrides, is_enabled) names none",
    },
}

BODY_REPEATS_QUERY: dict[str, dict[str, str]] = {
    # operationId -> {query parameter: what the server does with a JSON body that lacks the
    # field of the same name}. The server finds the object by the query but keeps what the
    # body says, so the body field (optional, under its own Python name) repeats the query's
    # value unless the call gives it; given, it is the new value.
    # ProjectSymbolSourcesEndpoint.put: ``if "id" not in source: source["id"] =
    # str(uuid4())``, then the body replaces the source ``?id=`` found (backfill_source
    # looks its redacted secrets up by the body's id); validate_sources refuses an id
    # another source has. Renaming a source has no other call.
    "updateProjectSymbolSource": {
        "id": "Sentry replaces the source ``id`` names with the body, which gets a new random "
        "id when it has none; a different ``id_`` renames the source (no other call can)",
    },
}

QUERY_WIRE_NAMES: dict[str, dict[str, str]] = {
    # operationId -> {the spec's query name: the name the endpoint reads}. Some spec names
    # come from apidocs' parameter objects, not from the endpoint: the spec fails generation
    # when a parameter's description shows it sent under another name (``?projectSlug=``)
    # until it is listed here. The Python name follows the wire name, unless another
    # parameter already sends that name; then it stays, an older name of that parameter.
    # OrganizationParams.PROJECT_ID_OR_SLUG: OrganizationEndpoint.get_projects reads the
    # slugs from ``request.GET.getlist("projectSlug")``, as its description says.
    "listOrganizationNotificationsActions": {"project_id_or_slug": "projectSlug"},
    "getOrganizationReplayCount": {"project_id_or_slug": "projectSlug"},
    # OrganizationReleaseDetailsEndpoint.get: ``request.GET.get("project")``, no project_id.
    "getOrganizationRelease": {"project_id": "project"},
}

NEEDS_ONE_OF: dict[str, tuple[tuple[str, ...], str]] = {
    # operationId -> (query parameters of which a call must give at least one, non-empty;
    # what the server does otherwise), refused before sending. The hand-written
    # issues.bulk_* refuse an empty id list for the same reason.
    "Bulk Remove a List of Issues": (
        ("id",), "without ids Sentry deletes up to 1000 issues matching the default query"
    ),
    "Bulk Mutate a List of Issues": (
        ("id",),
        "without ids Sentry changes up to 1000 issues matching the default query (it never "
        "reads a status filter), as it does when no id matches: issues.bulk_update(org, ids, "
        "project=...) checks the ids first",
    ),
}

NONEMPTY_FILTERS: dict[str, tuple[tuple[str, ...], str]] = {
    # operationId -> (filters that, when given, must name something; what the server does
    # otherwise), refused before sending: an empty list (or only blank names) is left out
    # of the query, and an empty or blank search query filters nothing, which turns "these
    # zero" into "all of them".
    # MonitorDetailsMixin.delete_monitor: without matching environment names it deletes
    # the monitor itself.
    "deleteOrganizationMonitor": (
        ("environment",),
        "Sentry deletes the whole monitor and its alert rule when no name matches",
    ),
    "deleteProjectMonitor": (
        ("environment",),
        "Sentry deletes the whole monitor and its alert rule when no name matches",
    ),
    # OrganizationDetectorIndexEndpoint / OrganizationWorkflowIndexEndpoint put and delete
    # act on everything the remaining filters match. Their guard reads
    # ``request.GET.get("query")``, true for a blank query, which then parses into no
    # filter: every object of the user's projects.
    "deleteOrganizationDetectors": (
        ("id", "project", "query"), "Sentry would delete every detector the other filters match"
    ),
    "deleteOrganizationWorkflows": (
        ("id", "project", "query"), "Sentry would delete every workflow the other filters match"
    ),
    "updateOrganizationDetectors": (
        ("id", "project", "query"), "Sentry would change every detector the other filters match"
    ),
    "updateOrganizationWorkflows": (
        ("id", "project", "query"), "Sentry would change every workflow the other filters match"
    ),
}

PRESENCE_FLAGS: dict[str, tuple[str, ...]] = {
    # operationId -> boolean query parameters the server tests for presence or a non-empty
    # value, so ``False`` is left out of the query instead of sent as "0" (which reads as
    # true there).
    "getOrganizationStatsSummary": ("download",),  # ``if request.GET.get("download"):``
}

NOTHING_MATCHED: dict[str, Any] = {
    "type": "object", "title": "NothingMatched", "properties": {"detail": {"type": "string"}},
}
"""``{"detail": "No detectors found."}``: a bulk call's filter matched nothing. A ``title``
names the model of an object schema."""

RESPONSE_SCHEMAS: dict[str, dict[str, Any]] = {
    # operationId -> the success body's schema, where the spec gives none or another one.
    # ``"$spec"`` inside it stands for the spec's own schema of the success body.
    # NotificationActionsIndexEndpoint.get: ``self.paginate`` over the actions, an array
    # (the spec documents the POST's one object, under 201).
    "listOrganizationNotificationsActions": {"type": "array", "items": "$spec"},
    # OrganizationDetectorIndexEndpoint.put / OrganizationWorkflowIndexEndpoint.put:
    # ``{"detail": "No detectors found."}`` (200) when the filter matches nothing, else the
    # changed objects.
    "updateOrganizationDetectors": {"anyOf": ["$spec", NOTHING_MATCHED]},
    "updateOrganizationWorkflows": {"anyOf": ["$spec", NOTHING_MATCHED]},
    # Their delete: the same 200 answer when the filter matches nothing, else 204 once
    # every match is scheduled for deletion (the spec documents both without a body; the
    # schema here is the 200's).
    "deleteOrganizationDetectors": NOTHING_MATCHED,
    "deleteOrganizationWorkflows": NOTHING_MATCHED,
    # replays/usecases/replay_counts.py: counts per issue, or with returnIds the replay ids.
    "getOrganizationReplayCount": {
        "type": "object",
        "additionalProperties": {
            "anyOf": [{"type": "integer"}, {"type": "array", "items": {"type": "string"}}]
        },
    },
    # ProjectTagKeyValuesEndpoint.get pages TagValueSerializer objects (tagstore/types.py),
    # the shape the issue tag values are documented with; the spec keeps only ``name``.
    "List a Tag's Values": {
        "type": "array",
        "items": {
            "type": "object",
            "properties": {
                "key": {"type": "string"},
                "name": {"type": "string"},
                "value": {"type": "string", "nullable": True},
                "count": {"type": "integer", "nullable": True},
                "lastSeen": {"type": "string", "nullable": True},
                "firstSeen": {"type": "string", "nullable": True},
                # Only for user tags (convert_user_tag_to_query).
                "query": {"type": "string", "nullable": True},
            },
        },
    },
    # CommitFileChangeEndpoint: a list of CommitFileChangeSerializer objects.
    "Retrieve Files Changed in a Release's Commits": {
        "type": "array",
        "items": {
            "type": "object",
            "properties": {
                "id": {"type": "string"},
                "orgId": {"type": "integer"},
                "author": {"type": "string", "nullable": True},
                "commitMessage": {"type": "string", "nullable": True},
                "filename": {"type": "string"},
                "type": {"type": "string"},
                "repoName": {"type": "string", "nullable": True},
            },
        },
    },
}

RESPONSE_NOTES: dict[str, str] = {
    # operationId -> what an answer its type allows means, where the spec does not say.
    "updateOrganizationDetectors": (
        "The changed detectors, or ``NothingMatched`` (``detail``: \"No detectors found.\") "
        "when the filter matched nothing: nothing changed"
    ),
    "updateOrganizationWorkflows": (
        "The changed workflows, or ``NothingMatched`` (``detail``: \"No workflows found.\") "
        "when the filter matched nothing: nothing changed"
    ),
    "deleteOrganizationDetectors": (
        "``NothingMatched`` (``detail``: \"No detectors found.\") when the filter matched "
        "nothing: nothing was deleted"
    ),
    "deleteOrganizationWorkflows": (
        "``NothingMatched`` (``detail``: \"No workflows found.\") when the filter matched "
        "nothing: nothing was deleted"
    ),
}

BODILESS_NOTES: dict[str, str] = {
    # operationId -> what its answers without a body mean, where the spec's descriptions
    # ("Accepted", "No Content") do not say: the method returns ``None`` for them.
    "addOrganizationMemberTeam": (
        "202: an access request was made, the member is not on the team until it is "
        "approved; 204: the member is on the team already"
    ),
    "deleteOrganizationDetectors": "204: every matching detector is scheduled for deletion",
    "deleteOrganizationWorkflows": "204: every matching workflow is scheduled for deletion",
    "Bulk Mutate a List of Issues": (
        "204: no id matched and the search that follows matched nothing either: nothing "
        "changed"
    ),
}

BODILESS_ANSWERS: dict[str, dict[str, str]] = {
    # operationId -> {status: description} of success answers without a body that the
    # server sends but the spec leaves out; the method returns ``None`` for them.
    # update_groups_with_search_fn: ``Response({"detail": "No groups found"}, status=204)``,
    # which ProjectGroupIndexEndpoint.put passes on (a 204 carries no body).
    "Bulk Mutate a List of Issues": {"204": "No groups found"},
}

UPLOAD_NAMES: dict[str, tuple[str, str]] = {
    # operationId -> (the body field that names the uploaded file instead of the part's
    # filename, what the server does without either). Bytes and async iterators have no
    # name of their own: a call with neither that field nor ``filename=`` is refused before
    # sending. ReleaseFilesMixin.post_releasefile: ``request.data.get("name",
    # fileobj.name)``, 400 when that is empty or "file", the part's name without one.
    "uploadOrganizationReleaseFile": (
        "name", "Sentry answers 400 \"File name must be specified\" to a part called \"file\""
    ),
    "uploadProjectReleaseFile": (
        "name", "Sentry answers 400 \"File name must be specified\" to a part called \"file\""
    ),
}
