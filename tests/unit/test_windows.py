"""Deployment windows and freezes."""

from __future__ import annotations

from datetime import UTC, datetime

from shared.domain.windows import next_opening

WORKDAYS = {"days": ["Mon", "Tue", "Wed", "Thu"], "start": "09:00", "end": "16:00", "timeZone": "Europe/London"}
YEAR_END = {"from": "12-20", "to": "01-03", "reason": "year-end freeze", "timeZone": "Europe/London"}


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


def test_inside_a_window_is_now() -> None:
    now = at("2026-11-24T10:00:00+00:00")  # a Tuesday, 10:00 London
    assert next_opening(now, [WORKDAYS], []) == (now, "")


def test_friday_waits_for_monday_morning_london_time() -> None:
    opening, why = next_opening(at("2026-11-27T10:00:00+00:00"), [WORKDAYS], [])
    assert opening == at("2026-11-30T09:00:00+00:00") and why == "outside its deployment windows"


def test_summer_time_is_respected() -> None:
    opening, _ = next_opening(at("2026-07-03T12:00:00+00:00"), [WORKDAYS], [])  # a Friday in BST
    assert opening == at("2026-07-06T08:00:00+00:00")


def test_the_year_end_freeze_crosses_the_new_year() -> None:
    opening, why = next_opening(at("2026-12-28T10:00:00+00:00"), [WORKDAYS], [YEAR_END])
    assert opening == at("2027-01-04T09:00:00+00:00") and why == "outside its deployment windows"
    opening, why = next_opening(at("2026-12-21T10:00:00+00:00"), [], [YEAR_END])
    assert opening == at("2027-01-04T00:00:00+00:00") and why == "frozen: year-end freeze"


def test_a_one_off_freeze() -> None:
    freeze = {"start": "2026-11-24T00:00:00+00:00", "end": "2026-11-25T12:00:00+00:00", "reason": "audit"}
    assert next_opening(at("2026-11-24T10:00:00+00:00"), [], [freeze])[0] == at("2026-11-25T12:00:00+00:00")


def test_a_freeze_that_starts_while_a_deployment_waits_for_approval_holds_it_until_the_freeze_ends() -> None:
    from shared.domain.access import Principal
    from shared.domain.transitions import CastVote, DeployStage, Wake, decide
    from shared.domain.waiting import why
    from tests.unit.test_transitions import TARGET, release

    freeze = {"start": "2026-12-01T12:00:00+00:00", "end": "2026-12-03T00:00:00+00:00", "reason": "launch freeze"}
    stage = {"name": "Production", "target": TARGET, "trigger": {"type": "manual"},
             "steps": [{"type": "wait", "seconds": 0}], "windows": [WORKDAYS], "freezes": [freeze],
             "preApprovals": {"approvers": ["tim@contoso.com"]}}
    tim = Principal("tim@contoso.com", frozenset(), frozenset({"reader"}), "user")
    rel = decide(release(stage), DeployStage("Production", "amita"), at("2026-12-01T10:00:00+00:00")).release
    assert rel.stages["Production"].current.phase == "preApproval"  # type: ignore[union-attr]
    approved = decide(rel, CastVote("Production", 1, "pre", tim, "approve"), at("2026-12-01T13:00:00+00:00")).release
    dep = approved.stages["Production"].current
    assert dep is not None and dep.phase == "window" and dep.steps[0].status == "pending"
    assert dep.opens_at == "2026-12-03T09:00:00+00:00"  # the freeze ends at midnight, the window opens at nine
    assert "launch freeze" in str(why(approved, "Production")) or "window" in str(why(approved, "Production"))
    early = decide(approved, Wake("Production", 1), at("2026-12-02T12:00:00+00:00"))
    assert early.release.stages["Production"].current.steps[0].status == "pending"  # type: ignore[union-attr]
    opened = decide(approved, Wake("Production", 1), at("2026-12-03T09:00:00+00:00")).release
    assert opened.stages["Production"].current.steps[0].status == "inProgress"  # type: ignore[union-attr]


def test_break_glass_and_not_before_hold_for_the_deployment_they_were_given_to_only() -> None:
    """An admin breaks the glass for Dev (no steps, so it ends at once): QA, which Dev's success starts in
    the same decision, still waits for its own window, and carries neither the glass nor the notBefore."""
    from shared.domain.access import Principal
    from shared.domain.transitions import DeployStage, decide
    from tests.unit.test_transitions import release, stage

    ada = Principal("ada@contoso.com", frozenset(), frozenset({"admin"}), "user")
    dev = {**stage("Dev", {"type": "manual"}, steps=0), "windows": [WORKDAYS]}
    qa = {**stage("QA", {"type": "afterStages", "stages": ["Dev"]}, steps=1), "windows": [WORKDAYS]}
    friday = at("2026-11-27T10:00:00+00:00")  # outside the Monday-to-Thursday windows
    decision = decide(release(dev, qa), DeployStage("Dev", ada.name, break_glass="incident 42", admin=True,
                                                    not_before="2026-11-27T09:00:00+00:00"), friday)
    dev_run, qa_run = (decision.release.stages[n].current for n in ("Dev", "QA"))
    assert dev_run is not None and dev_run.status == "succeeded" and dev_run.break_glass == "incident 42"
    assert qa_run is not None and qa_run.break_glass is None and qa_run.not_before is None
    assert qa_run.phase == "window" and qa_run.steps[0].status == "pending"
    assert qa_run.opens_at == at("2026-11-30T09:00:00+00:00").isoformat()
