"""Pre- and post-deployment approvals → `preApprovals` / `postApprovals`.

Azure DevOps semantics (prior-art.md §2.3; `ReleaseDefinitionApprovals` and `ApprovalOptions` in
MicrosoftDocs/vsts-rest-api-specs @ adb28786, release 7.1): automated steps mean no approval; approvers of
one rank approve in parallel, increasing ranks in sequence; `requiredApproverCount` 0 means all of them;
`timeoutInMinutes` 0 means the default of 30 days (at most 365); `executionOrder` places approvals before
or after the gates.
"""

from __future__ import annotations

from typing import Any

from shared.domain.ado_import.enums import APPROVAL_EXECUTION_ORDER
from shared.domain.ado_import.model import CHANGED, DROPPED, MAPPED
from shared.domain.ado_import.names import printable
from shared.domain.ado_import.reading import Path, flag, get, mapping, refuse, sequence, text, whole
from shared.domain.ado_import.report import Report

DEFAULT_TIMEOUT = 30 * 24 * 60
MAX_TIMEOUT = 365 * 24 * 60
MAX_APPROVERS = 50


def approvals(block: Any, path: Path, pre: bool, stage: str, became: str, report: Report) -> dict[str, Any] | None:
    """The Slipway approvals of one side of a stage, reported; None when Azure DevOps approves automatically."""
    data = mapping(block, path)
    side = "pre" if pre else "post"
    label = f"{side}-deployment approvals of {stage}"
    people: list[tuple[int, int, dict[str, Any]]] = []
    for k, item in enumerate(sequence(get(data, "approvals"), (*path, "approvals"))):
        step = mapping(item, (*path, "approvals", k), required=True)
        if flag(get(step, "isAutomated")):
            continue
        approver = mapping(get(step, "approver"), (*path, "approvals", k, "approver"))
        people.append((whole(get(step, "rank")) or 0, k, approver))
    if not people:
        report.add(path, "approval", label, MAPPED, became.rsplit(".", 1)[0],
                   "automatic in Azure DevOps: the stage deploys without this approval.")
        return None
    options = mapping(get(data, "approvalOptions"), (*path, "approvalOptions"))
    notes: list[str] = []
    changed = False
    approvers: list[str] = []
    for _, _, approver in sorted(people, key=lambda p: (p[0], p[1])):
        name, problem = identity(approver)
        if problem:
            notes.append(problem)
            changed = True
        if name and name.casefold() not in {a.casefold() for a in approvers}:
            approvers.append(name)
    if not approvers:
        report.add(path, "approval", label, DROPPED, "",
                   "its approvers have no names Slipway can use: " + "; ".join(notes) + ". Add `" +
                   became.rsplit(".", 1)[1] + "` with the approvers' sign-in names.")
        return None
    if len(approvers) > MAX_APPROVERS:
        refuse((*path, "approvals"), f"Slipway takes at most {MAX_APPROVERS} approvers")
    out: dict[str, Any] = {"approvers": approvers}
    ranks = {p[0] for p in people}
    required = whole(get(options, "requiredApproverCount")) or 0
    if len(ranks) > 1:
        out["policy"] = "allInSequence"
        if len(ranks) < len(people):
            notes.append("approvers of the same rank approved in parallel in Azure DevOps; Slipway asks them one "
                         "after the other")
            changed = True
        if 0 < required < len(approvers):
            notes.append(f"Azure DevOps needed {required} of them; in sequence Slipway needs all")
            changed = True
    elif len(approvers) > 1 and required == 1:
        out["policy"] = "anyOne"
    elif len(approvers) > 1 and 1 < required < len(approvers):
        out["policy"], out["required"] = "count", required
    creator_can = get(options, "releaseCreatorCanBeApprover")
    if creator_can is None:
        notes.append("the release's requester may not approve (Slipway's default)")
    else:
        out["requesterCannotApprove"] = not flag(creator_can)
    if flag(get(options, "autoTriggeredAndPreviousEnvironmentApprovedCanBeSkipped")):
        if pre:
            out["skipIfApprovedInPreviousStage"] = True
        else:
            notes.append("skipping an approval already given in the previous stage applies to pre-deployment "
                         "approvals only: it was dropped")
            changed = True
    timeout = whole(get(options, "timeoutInMinutes", "timeoutInMintues")) or 0
    if timeout > MAX_TIMEOUT:
        notes.append("its timeout is the longest Slipway takes, 365 days")
        changed = True
    if timeout > 0:
        out["timeoutMinutes"] = min(timeout, MAX_TIMEOUT)
    order = APPROVAL_EXECUTION_ORDER.parse(get(options, "executionOrder"))
    if order == "afterGatesAlways":
        notes.append("Azure DevOps asked for approval even when the gates failed; Slipway asks after they pass")
        changed = True
    wanted = {"beforeGates": "beforeGates", "afterSuccessfulGates": "afterGates", "afterGatesAlways": "afterGates"}
    if order is not None and wanted[order] != ("beforeGates" if pre else "afterGates"):
        out["order"] = wanted[order]
    if flag(get(options, "enforceIdentityRevalidation")):
        notes.append("Azure DevOps made approvers sign in again; Slipway takes their current sign-in (configure "
                     "sign-in frequency in Entra Conditional Access if it matters)")
        changed = True
    summary = f"{out.get('policy', 'allInAnyOrder')} of {', '.join(approvers)}"
    report.add(path, "approval", label, CHANGED if changed else MAPPED, became, "; ".join([summary, *notes]) + ".")
    return out


def identity(approver: dict[str, Any]) -> tuple[str | None, str | None]:
    """The approver as Slipway names approvers (a user's sign-in name, a group's name to map), and what
    the user must fix, if anything."""
    unique = printable(text(get(approver, "uniqueName")), 256)
    display = printable(text(get(approver, "displayName")), 256)
    group = flag(get(approver, "isContainer")) or unique.startswith(("[", "vstfs:")) or \
        ("@" not in unique and "\\" in display)
    if group:
        name = display or unique
        return (name or None), f"group {name or '(unnamed)'}: map this group to its Entra object id"
    if "@" in unique:
        return unique, None
    name = unique or display
    if not name:
        return None, "an approver without a name was left out"
    return name, f"{name} is not a sign-in name: replace it with the user's"
