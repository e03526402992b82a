"""The API document (OpenAPI 3.1), built from the request schemas so it cannot drift from them.

`ROUTES` lists every HTTP operation once; a test checks it against the functions the app
registers, and schemathesis checks the running API against it.
"""

from __future__ import annotations

from typing import Any

from shared.schemas.access_token import AccessTokenIn
from shared.schemas.actions import AbandonIn, DeployIn, IgnoreGateIn
from shared.schemas.approval import BatchIn, DecisionIn, DeferIn, InterventionIn, OverrideIn, ReassignIn
from shared.schemas.callback import CallbackIn
from shared.schemas.definition import DefinitionIn
from shared.schemas.release import ArtifactWebhookIn, ReleaseIn, RetainIn
from shared.schemas.variables import VariableGroupIn

JSON, PROBLEM, TEXT, HTML = "application/json", "application/problem+json", "text/plain", "text/html"
ZIP = "application/zip"
ID = {"type": "integer", "minimum": 1, "maximum": 2**31 - 1}


def _param(name: str, where: str, schema: dict[str, Any], required: bool = False) -> dict[str, Any]:
    return {"name": name, "in": where, "required": required or where == "path", "schema": schema}


PAGING = [_param("top", "query", {"type": "integer", "minimum": 1, "maximum": 200}),
          _param("continuationToken", "query", {"type": "string"})]
IF_MATCH = _param("If-Match", "header", {"type": "string"})

# (path, method, operation id, summary, request body schema name, success status, success type, parameters)
ROUTES: list[tuple[str, str, str, str, str | None, int, str | None, list[dict[str, Any]]]] = [
    ("/definitions", "get", "listDefinitions", "List definitions (`name`: the one of that name)", None, 200, JSON,
     [*PAGING, _param("name", "query", {"type": "string", "minLength": 1, "maxLength": 128})]),
    ("/definitions", "post", "createDefinition", "Create a definition (revision 1)", "Definition", 201, JSON,
     [_param("dryRun", "query", {"type": "boolean"})]),
    ("/schemas/definition.json", "get", "definitionSchema", "The definition as JSON Schema, for editors", None, 200,
     JSON, []),
    ("/definitions/import", "post", "importDefinition",
     "Import an Azure DevOps classic release definition: the definition and a migration report (admins)",
     "AdoDefinition", 201, JSON,
     [_param("dryRun", "query", {"type": "boolean"}), _param("strict", "query", {"type": "boolean"}),
      _param("name", "query", {"type": "string", "minLength": 1, "maxLength": 128}),
      _param("subscriptionId", "query", {"type": "string", "format": "uuid"}),
      _param("resourceGroup", "query", {"type": "string", "minLength": 1, "maxLength": 90}),
      _param("site", "query", {"type": "string", "minLength": 2, "maxLength": 60})]),
    ("/definitions/{definitionId}", "get", "getDefinition", "The current revision", None, 200, JSON, []),
    ("/definitions/{definitionId}", "put", "updateDefinition", "A new revision (none when nothing changes)",
     "Definition", 200, JSON, [IF_MATCH, _param("dryRun", "query", {"type": "boolean"})]),
    ("/definitions/{definitionId}", "delete", "deleteDefinition", "Delete (releases keep their snapshot)", None, 204,
     None, [IF_MATCH]),
    ("/definitions/{definitionId}/revisions", "get", "listRevisions", "Every revision", None, 200, JSON, []),
    ("/definitions/{definitionId}/revisions/{revision}", "get", "getRevision", "One revision", None, 200, JSON, []),
    ("/definitions/{definitionId}/stages/{stage}/clone", "post", "cloneStage",
     "Copy a stage (default name: Copy of <stage>)", "CloneStage", 201, JSON, [IF_MATCH]),
    ("/definitions/{definitionId}/environments", "get", "whatRunsWhere", "What runs where, and drift", None, 200,
     JSON, [_param("verify", "query", {"type": "boolean"})]),
    ("/definitions/{definitionId}/metrics", "get", "deliveryMetrics",
     "Delivery metrics: frequency, lead time, change failure rate, time to restore, waits", None, 200, JSON,
     [_param("days", "query", {"type": "integer", "minimum": 1, "maximum": 366}),
      _param("stage", "query", {"type": "string", "minLength": 1, "maxLength": 64})]),
    ("/releases", "get", "listReleases", "List releases, newest first", None, 200, JSON,
     [*PAGING, _param("definitionId", "query", ID), _param("status", "query", {"enum": ["active", "abandoned"]}),
      _param("createdSince", "query", {"type": "string", "format": "date-time"})]),
    ("/releases", "post", "createRelease", "Create a release", "Release", 201, JSON,
     [_param("Idempotency-Key", "header", {"type": "string", "minLength": 1, "maxLength": 200})]),
    ("/releases/{releaseId}", "get", "getRelease", "A release with its stages and why they wait", None, 200, JSON,
     []),
    ("/releases/{releaseId}/abandon", "post", "abandonRelease", "Abandon; running deployments are canceled",
     "Abandon", 200, JSON, []),
    ("/releases/{releaseId}/retain", "post", "retainRelease",
     "Keep a release forever, or let retention delete it (admins, release managers; audited)", "Retain", 200, JSON,
     []),
    ("/releases/{releaseId}/stages/{stage}/deploy", "post", "deployStage",
     "Deploy a stage now (409 naming the stages a manual stage requires that the release has not passed; an "
     "admin's override with a reason deploys anyway, audited)", "Deploy", 202, JSON, []),
    ("/releases/{releaseId}/stages/{stage}/gates/{kind}/ignore", "post", "ignoreGate",
     "An admin lets the deployment past a running gate (audited)", "IgnoreGate", 200, JSON, []),
    ("/releases/{releaseId}/stages/{stage}", "get", "previewStage",
     "When the stage deploys next and what it waits for", None, 200, JSON, []),
    ("/releases/{releaseId}/events", "get", "listEvents", "The release's history", None, 200, JSON, []),
    ("/releases/{releaseId}/stages/{stage}/deployments/{attempt}/steps/{step}/log", "get", "getStepLog",
     "One step's log", None, 200, TEXT, []),
    ("/releases/{releaseId}/stages/{stage}/approvals/{kind}", "post", "decideApproval",
     "Approve or reject as an approver (If-Match: the release's ETag)", "Decision", 200, JSON, [IF_MATCH]),
    ("/releases/{releaseId}/stages/{stage}/interventions/{step}", "post", "decideIntervention",
     "Resume or reject a manual intervention as its assignee (If-Match: the release's ETag)", "Intervention", 200,
     JSON, [IF_MATCH]),
    ("/releases/{releaseId}/stages/{stage}/approvals/{kind}/override", "post", "overrideApproval",
     "An admin decides regardless of the approvers", "Override", 200, JSON, [IF_MATCH]),
    ("/releases/{releaseId}/stages/{stage}/approvals/{kind}/reassign", "post", "reassignApproval",
     "Hand an approval to someone else", "Reassign", 200, JSON, [IF_MATCH]),
    ("/releases/{releaseId}/stages/{stage}/defer", "post", "deferDeployment",
     "Start the deployment no earlier than a time", "DeferUntil", 200, JSON, [IF_MATCH]),
    ("/approvals", "get", "listApprovals", "The approvals inbox", None, 200, JSON,
     [*PAGING, _param("mine", "query", {"type": "boolean"}), _param("definitionId", "query", ID),
      _param("status", "query", {"enum": ["pending", "approved", "rejected", "canceled", "skipped", "all"]})]),
    ("/approvals/batch", "post", "decideApprovals", "Approve or reject several at once", "Batch", 200, JSON, []),
    ("/releases/{releaseId}/logs", "get", "getReleaseLogs", "Every step log of the release, as a zip", None, 200,
     ZIP, []),
    ("/artifacts", "post", "buildCompleted", "The build webhook: register a version, release it", "Build", 201,
     JSON, []),
    ("/hooks/github", "post", "githubWebhook", "A GitHub webhook delivery (signed): a finished build becomes a "
     "release, or 202 with why not", None, 201, JSON,
     [_param("X-Hub-Signature-256", "header", {"type": "string"}, True),
      _param("X-GitHub-Delivery", "header", {"type": "string", "maxLength": 100}, True),
      _param("X-GitHub-Event", "header", {"type": "string", "maxLength": 50}, True)]),
    ("/hooks/acr", "post", "acrWebhook", "An Azure Container Registry push: the image's digest becomes a release, "
     "or 202 with why not", None, 201, JSON,
     [_param("X-Slipway-Webhook-Token", "header", {"type": "string"}, True)]),
    ("/hooks/azure-devops", "post", "azureDevOpsWebhook", "An Azure DevOps service hook (build.complete): 202 "
     "with what became of it", None, 202, JSON, []),
    ("/hooks/deliveries", "get", "listHookDeliveries", "The latest build webhook deliveries of a source", None, 200,
     JSON, [_param("source", "query", {"type": "string", "minLength": 1, "maxLength": 301}, True)]),
    ("/approve/{token}", "get", "approvalPage", "The page an approval mail links to (shows only)", None, 200,
     HTML, []),
    ("/approve/{token}", "post", "approvalPageDecide", "The signed-in approver decides, once", "ApprovalForm", 200,
     HTML, []),
    ("/intervene/{token}", "get", "interventionPage", "The page a manual intervention's mail links to (shows only)",
     None, 200, HTML, []),
    ("/intervene/{token}", "post", "interventionPageDecide", "The signed-in assignee resumes or rejects, once",
     "InterventionForm", 200, HTML, []),
    ("/callbacks/{token}", "post", "stepCallback",
     "A service called by an http-request step posts its result to the single-use URL it was given", "Callback",
     200, JSON, []),
    ("/variable-groups", "get", "listVariableGroups", "Variable groups shared by definitions", None, 200, JSON, []),
    ("/variable-groups", "post", "createVariableGroup", "Create a variable group (admins)", "VariableGroup", 201,
     JSON, []),
    ("/variable-groups/{name}", "get", "getVariableGroup", "One variable group, with its ETag", None, 200, JSON, []),
    ("/variable-groups/{name}", "put", "updateVariableGroup", "Replace a variable group (If-Match)",
     "VariableGroup", 200, JSON, [IF_MATCH]),
    ("/variable-groups/{name}", "delete", "deleteVariableGroup", "Delete a group no definition links (If-Match)",
     None, 204, JSON, [IF_MATCH]),
    ("/tokens", "get", "listTokens", "Personal access tokens for the Azure DevOps-compatible surface (admins)",
     None, 200, JSON, []),
    ("/tokens", "post", "issueToken", "Issue a personal access token: the answer shows it once (admins)",
     "AccessToken", 201, JSON, []),
    ("/tokens/{tokenId}", "delete", "revokeToken", "Revoke a personal access token (admins)", None, 204, None, []),
    ("/health", "get", "health", "Liveness", None, 200, JSON, []),
    ("/openapi.json", "get", "openapi", "This document", None, 200, JSON, []),
]

PATH_PARAMS: dict[str, dict[str, Any]] = {"token": {"type": "string", "minLength": 1, "maxLength": 200},
               "definitionId": ID, "releaseId": ID, "revision": ID, "attempt": ID,
               "step": {"type": "integer", "minimum": 0, "maximum": 2**31 - 1},
               "kind": {"enum": ["pre", "post"]},
               "stage": {"type": "string", "minLength": 1, "maxLength": 64},
               "name": {"type": "string", "minLength": 1, "maxLength": 64},
               "tokenId": {"type": "string", "pattern": "^[a-z2-7]{8}$"}}


def _bodies() -> dict[str, Any]:
    def schema(model: Any) -> dict[str, Any]:
        return model.model_json_schema(ref_template="#/components/schemas/{model}")  # type: ignore[no-any-return]

    return {
        "Definition": schema(DefinitionIn),
        "Release": schema(ReleaseIn),
        "Build": schema(ArtifactWebhookIn),
        "Decision": schema(DecisionIn),
        "Override": schema(OverrideIn),
        "Intervention": schema(InterventionIn),
        "Callback": schema(CallbackIn),
        "VariableGroup": schema(VariableGroupIn),
        "AccessToken": schema(AccessTokenIn),
        "Reassign": schema(ReassignIn),
        "DeferUntil": schema(DeferIn),
        "Batch": schema(BatchIn),
        "ApprovalForm": {"type": "object",
                         "properties": {"decision": {"enum": ["approve", "reject"]}, "comment": {"type": "string"},
                                        "etag": {"type": "string"}}},
        "InterventionForm": {"type": "object",
                             "properties": {"decision": {"enum": ["resume", "reject"]}, "comment": {"type": "string"},
                                            "etag": {"type": "string"}}},
        "AdoDefinition": {"type": "object", "description": "An Azure DevOps classic release definition, as "
                          "`GET _apis/release/definitions/{id}` returns it or the portal exports it"},
        "CloneStage": {"type": "object", "additionalProperties": False, "properties": {"name": {
            "type": "string", "minLength": 1, "maxLength": 64,
            "description": "default: \"Copy of <stage>\", then \"Copy of <stage> (2)\"... when taken"}}},
        "Abandon": schema(AbandonIn),
        "Retain": schema(RetainIn),
        "Deploy": schema(DeployIn),
        "IgnoreGate": schema(IgnoreGateIn),
        "Problem": {"type": "object", "required": ["title", "status"],
                    "properties": {"type": {"type": "string"}, "title": {"type": "string"},
                                   "status": {"type": "integer"}, "detail": {"type": "string"},
                                   "errors": {"type": "array", "items": {
                                       "type": "object", "required": ["field", "message"],
                                       "properties": {"field": {"type": "string"},
                                                      "message": {"type": "string"}}}}}},
    }


def document() -> dict[str, Any]:
    bodies = _bodies()
    components: dict[str, Any] = {}
    for name, schema in bodies.items():
        components.update(schema.pop("$defs", {}))
        components[name] = schema
    paths: dict[str, Any] = {}
    problem = {"content": {PROBLEM: {"schema": {"$ref": "#/components/schemas/Problem"}}}}
    for path, method, op_id, summary, body, status, kind, params in ROUTES:
        in_path = [_param(p, "path", PATH_PARAMS[p]) for p in PATH_PARAMS if "{" + p + "}" in path]
        success: dict[str, Any] = {"description": "done"}
        if kind == JSON:
            success["content"] = {JSON: {"schema": {"type": "object"}}}
        elif kind in (TEXT, HTML):
            success["content"] = {kind: {"schema": {"type": "string"}}}
        elif kind == ZIP:
            success["content"] = {kind: {"schema": {"type": "string", "contentMediaType": ZIP}}}
        responses: dict[str, Any] = {str(status): success}
        if status == 201 and op_id in ("createRelease", "buildCompleted"):
            responses["200"] = {"description": "already created (same key or build)",
                                "content": {JSON: {"schema": {"type": "object"}}}}
        if op_id in ("importDefinition", "createDefinition"):
            responses["200"] = {"description": "a dry run: what would be saved, nothing saved",
                                "content": {JSON: {"schema": {"type": "object"}}}}
        errors = (("400", "invalid input, each bad field named"), ("401", "no identity"),
                  ("403", "the caller lacks the role or is not an eligible approver"), ("404", "not found"),
                  ("409", "conflicts with the current state"), ("410", "the link was used or expired"),
                  ("412", "If-Match names another version"), ("422", "an Idempotency-Key reused with another body"),
                  ("428", "If-Match is required"), ("500", "unexpected error, logged"))
        for code, text in errors:
            page = {"content": {HTML: {"schema": {"type": "string"}}}}
            responses[code] = {"description": text, **(page if kind == HTML else problem)}
        operation: dict[str, Any] = {"operationId": op_id, "summary": summary, "parameters": in_path + params,
                                     "responses": responses}
        if body is not None:
            media = "application/x-www-form-urlencoded" if body in ("ApprovalForm", "InterventionForm") else JSON
            operation["requestBody"] = {"required": body not in ("Abandon", "Deploy", "CloneStage"),
                                        "content": {media: {"schema": {"$ref": f"#/components/schemas/{body}"}}}}
        paths.setdefault(path, {})[method] = operation
    return {"openapi": "3.1.0",
            "info": {"title": "Slipway", "version": "0.1.0",
                     "description": "Multi-stage releases to Azure App Service slots."},
            "servers": [{"url": "/api"}],
            "paths": paths,
            "components": {"schemas": components,
                           "securitySchemes": {
                               "entra": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT",
                                         "description": "A Microsoft Entra access token for Slipway's app "
                                                        "registration (validated by App Service authentication)"},
                               "functionKey": {"type": "apiKey", "in": "header", "name": "x-functions-key",
                                               "description": "One of the function app's host keys"}}},
            "security": [{"entra": []}, {"functionKey": []}, {}]}
