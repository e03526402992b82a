"""What `OPTIONS {organization}/_apis` answers: the Release resource locations with Microsoft's ids and
route templates, which the official client has hard-coded (azure-devops 7.1, `release_client.py`) and
looks up before every call. Ids, areas and templates as ../shared/ado-samples/release-locations.json
records them (from a real `OPTIONS https://vsrm.dev.azure.com/<org>/_apis`); versions as
../shared/ado-samples/CLIENT.md says the client negotiates: maxVersion at least the client's 7.1 and a
low minVersion. Templates never change: clients cache them on disk for 12 hours.
"""

from __future__ import annotations

from typing import Any

RELEASE_AREA = "efc2f575-36ef-48e9-b672-0c6fb4a48ac5"
RESOURCE_AREAS = "e81700f7-3be2-46de-8624-2eb35882fcaa"
PROJECT = "{project}/_apis/{area}"

# (id, resourceName, routeTemplate, resourceVersion)
RELEASE: list[tuple[str, str, str, int]] = [
    ("d8f96f24-8ea7-4cb6-baab-2df8fc515665", "definitions", f"{PROJECT}/{{resource}}/{{definitionId}}", 4),
    ("a166fde7-27ad-408e-ba75-703c2cc9d500", "releases", f"{PROJECT}/{{resource}}/{{releaseId}}", 8),
    ("a7e426b1-03dc-48af-9dfe-c98bac612dcb", "environments",
     "{project}/_apis/Release/releases/{releaseId}/{resource}/{environmentId}", 7),
    ("b47c6458-e73b-47cb-a770-4df1e8813a91", "approvals", f"{PROJECT}/{{resource}}", 3),
    ("9328e074-59fb-465a-89d9-b09c82ee5109", "approvals", f"{PROJECT}/{{resource}}/{{approvalId}}", 3),
    ("b005ef73-cddc-448e-9ba2-5193bf36b19f", "deployments", f"{PROJECT}/{{resource}}", 2),
    ("2666a539-2001-4f80-bcc7-0379956749d4", "gates", f"{PROJECT}/{{resource}}/{{gateStepId}}", 1),
    ("616c46e4-f370-4456-adaa-fbaf79c7b79e", "manualInterventions",
     "{project}/_apis/Release/releases/{releaseId}/{resource}/{manualInterventionId}", 1),
    ("c37fbab5-214b-48e4-a55b-cb6b4f6e4038", "logs", f"{PROJECT}/releases/{{releaseId}}/{{resource}}", 2),
    ("17c91af7-09fd-4256-bff1-c24ee4f73bc0", "logs",
     f"{PROJECT}/releases/{{releaseId}}/environments/{{environmentId}}/deployPhases/{{releaseDeployPhaseId}}"
     "/tasks/{taskId}/{resource}", 2),
    ("f7ddf76d-ce0c-4d68-94ff-becaec5d9dea", "folders", f"{PROJECT}/{{resource}}/{{*path}}", 2),
    ("258b82e0-9d41-43f3-86d6-fef14ddd44bc", "revisions",
     "{project}/_apis/Release/definitions/{definitionId}/{resource}/{revision}", 1),
    ("a4d06688-0dfa-4895-82a5-f43ec9452306", "attachments",
     f"{PROJECT}/releases/{{releaseId}}/environments/{{environmentId}}/attempts/{{attemptId}}/plan/{{planId}}"
     "/{resource}/{type}", 1),
    ("60b86efb-7b8c-4853-8f9f-aa142b77b479", "attachments",
     f"{PROJECT}/releases/{{releaseId}}/environments/{{environmentId}}/attempts/{{attemptId}}/plan/{{planId}}"
     "/timelines/{timelineId}/records/{recordId}/{resource}/{type}/{name}", 1),
]
"""Every location ReleaseClient 7.1 uses: the ones Slipway does not serve are listed too, so that their
calls reach Slipway and are answered with an error that says so (rather than the client looking for
them on Microsoft's servers)."""


def locations() -> list[dict[str, Any]]:
    found = [{"id": ident, "area": "Release", "resourceName": resource, "routeTemplate": template,
              "resourceVersion": version, "minVersion": "1.0", "maxVersion": "7.1", "releasedVersion": "7.0"}
             for ident, resource, template, version in RELEASE]
    found.append({"id": RESOURCE_AREAS, "area": "Location", "resourceName": "ResourceAreas",
                  "routeTemplate": "_apis/{resource}/{areaId}", "resourceVersion": 1, "minVersion": "3.2",
                  "maxVersion": "7.1", "releasedVersion": "0.0"})
    return found


def release_area(location_url: str) -> dict[str, Any]:
    """The Release area, answered where Slipway's surface is (Azure DevOps answers vsrm.dev.azure.com)."""
    return {"id": RELEASE_AREA, "name": "Release", "locationUrl": location_url}
