"""Errors in Azure DevOps' shape (a VSS WrappedException), which its clients turn into
`AzureDevOpsServiceError(message)` (../shared/ado-samples/CLIENT.md, section 4). Only this surface
answers so; Slipway's own API answers RFC 7807 problems. A 401 too: Azure DevOps answers a refused token
with an UnauthorizedRequestException body (TF400813, as reported in microsoft/azure-devops-auth-samples#52),
which the official client raises as AzureDevOpsServiceError, like any other error."""

from __future__ import annotations

from typing import Any

TYPES = {400: "InvalidRequestException", 401: "UnauthorizedRequestException", 403: "AccessCheckException",
         404: "ReleaseManagementObjectNotFoundException", 405: "NotSupportedException",
         409: "InvalidRequestException", 412: "InvalidRequestException", 428: "InvalidRequestException",
         500: "SlipwayInternalException"}


def wrapped(status: int, message: str) -> dict[str, Any]:
    key = TYPES.get(status, "InvalidRequestException")
    return {"$id": "1", "innerException": None, "message": message,
            "typeName": f"Slipway.AzureDevOpsCompat.{key}, Slipway", "typeKey": key, "errorCode": 0,
            "eventId": 3000}
