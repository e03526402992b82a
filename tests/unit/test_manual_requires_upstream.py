"""A manual stage that names `stages` takes only a release that succeeded in them, unless an admin overrides."""

from __future__ import annotations

from typing import Any

import pytest

from shared.domain.access import Forbidden
from shared.domain.errors import Conflict, Invalid
from shared.domain.release import Release
from shared.domain.transitions import DeployStage, StartRelease, decide
from shared.domain.vocabulary import EventType
from shared.schemas.actions import DeployIn
from shared.schemas.definition import parse_definition as validate
from tests.unit.test_transitions import NOW, finish_stage, release, stage


def pipeline(manual: dict[str, Any]) -> Release:
    rel = release(stage("Dev", {"type": "afterRelease"}), stage("QA", {"type": "afterStages", "stages": ["Dev"]}),
                  stage("Preprod", manual))
    return decide(rel, StartRelease(), NOW).release


def test_a_release_that_failed_upstream_is_refused_naming_the_stages_it_has_not_passed() -> None:
    rel = finish_stage(pipeline({"type": "manual", "stages": ["Dev", "QA"]}), "Dev", succeeded=False)
    with pytest.raises(Conflict) as refused:
        decide(rel, DeployStage("Preprod", "amita"), NOW)
    assert "Dev (failed)" in str(refused.value) and "QA (notStarted)" in str(refused.value)
    assert "Preprod" in str(refused.value)
    assert rel.stages["Preprod"].deployments == []


def test_a_release_that_passed_every_named_stage_deploys_without_an_override() -> None:
    rel = finish_stage(finish_stage(pipeline({"type": "manual", "stages": ["Dev", "QA"]}), "Dev"), "QA")
    d = decide(rel, DeployStage("Preprod", "amita"), NOW)
    assert d.release.stages["Preprod"].status == "inProgress"
    assert not [e for e in d.events if e.type == EventType.UPSTREAM_OVERRIDDEN]


def test_partial_success_counts_only_when_the_trigger_allows_it() -> None:
    def partial(allow: bool) -> Release:
        rel = release(stage("Dev", {"type": "afterRelease"}, continueOnError=True),
                      stage("Preprod", {"type": "manual", "stages": ["Dev"], "allowPartialSuccess": allow}))
        rel = finish_stage(decide(rel, StartRelease(), NOW).release, "Dev", succeeded=False)
        assert rel.stages["Dev"].status == "partiallySucceeded"
        return rel

    with pytest.raises(Conflict):
        decide(partial(False), DeployStage("Preprod", "amita"), NOW)
    assert decide(partial(True), DeployStage("Preprod", "amita"), NOW).release.stages["Preprod"].status == "inProgress"


def test_a_manual_stage_without_stages_takes_any_release_as_before() -> None:
    rel = finish_stage(pipeline({"type": "manual"}), "Dev", succeeded=False)
    assert decide(rel, DeployStage("Preprod", "amita"), NOW).release.stages["Preprod"].status == "inProgress"


def test_an_admin_overrides_with_a_reason_recorded_as_an_event_with_who_and_why() -> None:
    rel = finish_stage(pipeline({"type": "manual", "stages": ["Dev"]}), "Dev", succeeded=False)
    d = decide(rel, DeployStage("Preprod", "root@contoso.com", admin=True, override="hotfix for incident 9"), NOW)
    assert d.release.stages["Preprod"].status == "inProgress"
    [event] = [e for e in d.events if e.type == EventType.UPSTREAM_OVERRIDDEN]
    assert event.by == "root@contoso.com" and event.stage == "Preprod" and event.attempt == 1
    assert "hotfix for incident 9" in event.message and "Dev (failed)" in event.message


def test_an_override_by_someone_not_an_admin_is_forbidden_even_when_nothing_is_missing() -> None:
    failed = finish_stage(pipeline({"type": "manual", "stages": ["Dev"]}), "Dev", succeeded=False)
    passed = finish_stage(pipeline({"type": "manual", "stages": ["Dev"]}), "Dev")
    for rel in (failed, passed):
        with pytest.raises(Forbidden):
            decide(rel, DeployStage("Preprod", "amita", override="because"), NOW)


@pytest.mark.parametrize("reason", ["", "   ", "x" * 501])
def test_an_override_needs_a_reason_of_1_to_500_characters(reason: str) -> None:
    with pytest.raises(ValueError, match="reason"):
        DeployIn.model_validate({"override": {"reason": reason}})
    assert DeployIn.model_validate({"override": {"reason": " x " * 1}}).override.reason == "x"  # type: ignore[union-attr]


def definition(preprod_trigger: dict[str, Any]) -> dict[str, Any]:
    target = {"subscriptionId": "00000000-0000-0000-0000-000000000001", "resourceGroup": "rg", "site": "tailspin"}
    return {"name": "Tailspin", "artifacts": [{"alias": "web", "source": "tailspin-web"}], "stages": [
        {"name": "Dev", "target": {**target, "slot": "dev"}, "trigger": {"type": "afterRelease"}},
        {"name": "Preprod", "target": {**target, "slot": "preprod"}, "trigger": preprod_trigger}]}


def test_the_definition_accepts_stages_on_a_manual_trigger_and_checks_they_exist() -> None:
    validate(definition({"type": "manual", "stages": ["Dev"]}))
    for trigger, field in (({"type": "manual", "stages": ["Nope"]}, "stages[1].trigger.stages[0]"),
                           ({"type": "manual", "stages": ["Preprod"]}, "stages[1].trigger.stages[0]")):
        with pytest.raises(Invalid) as bad:
            validate(definition(trigger))
        assert field in [e.field for e in bad.value.errors]


def test_stages_on_an_after_release_trigger_are_still_refused_with_the_types_that_allow_them() -> None:
    with pytest.raises(Invalid) as bad:
        validate(definition({"type": "afterRelease", "stages": ["Dev"]}))
    assert any("manual" in e.message for e in bad.value.errors)


def test_the_cli_sends_the_override_reason_as_the_api_reads_it() -> None:
    from slipway_cli.main import build_parser, deploy_body

    parser = build_parser()
    args = parser.parse_args(["stage", "deploy", "1", "Preprod", "--override-reason", "hotfix for incident 9"])
    assert DeployIn.model_validate(deploy_body(args)).override.reason == "hotfix for incident 9"  # type: ignore[union-attr]
    assert "override" not in deploy_body(parser.parse_args(["stage", "deploy", "1", "Preprod"]))
