"""Variables: definition scope, stage scope (wins), release-time values where allowed, predefined
names reserved; a Key Vault secret reaches the step that needs it and is masked in everything Slipway
writes (log, step message, events, API answer)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from functions import releases_api as rels
from shared.adapters.http_probe import HttpxProbe
from shared.config import GATES_QUEUE
from shared.domain.errors import Invalid
from shared.ports import TargetError
from shared.schemas.release import ReleaseIn
from shared.services import releases
from tests.integration.conftest import World, stage
from tests.integration.test_http_api import api, call  # noqa: F401  (fixture)
from tests.integration.test_http_request import Service

SECRET_REF = "@Microsoft.KeyVault(SecretUri=https://kv-tailspin.vault.azure.net/secrets/db-password)"
SECRET = "Sup3r-s3cret-Pa55"


class Secrets:
    """Key Vault as the step sees it: references → values; one reference that cannot be read."""

    def __init__(self) -> None:
        self.reads: list[str] = []

    def get(self, reference: str) -> str:
        self.reads.append(reference)
        if "unreachable" in reference:
            raise TargetError("kv-down: Key Vault unreachable (connection refused)", retryable=False)
        return SECRET


@pytest.fixture
def service(world: World) -> Iterator[Service]:
    world.deps.probe = HttpxProbe("127.0.0.1")
    world.deps.secrets = Secrets()
    running = Service()
    yield running
    running.server.shutdown()


def call_step(service: Service, body: dict[str, Any]) -> dict[str, Any]:
    return {"type": "http-request", "name": "report", "url": service.url + "/report", "body": body}


ADO_1142 = "MicrosoftDocs/azure-devops-docs#1142"
"""The maintainers' answer on precedence where names collide: "Release scoped variable group" < "Release scoped
process variable" < "Environment scoped variable group" < "Environment scoped process variable"."""
ADO_SETTABLE = "ADO-api ConfigurationVariableValue.allowOverride, ReleaseStartMetadata.variables (prior-art.md 2.10)"
"""A value given when the release is created replaces the variable's own, only where it allows it."""
ADO_READ_ONLY = "ADO-vars: default variables are read-only, set by the system (System.Debug excepted)"


class Refused(str):
    """The row's definition or release is refused, naming this field."""


def release_time(value: str) -> dict[str, Any]:
    return {"value": value, "allowOverride": True}


PRECEDENCE = [
    # (rule, definition variables, stage variables, groups the definition links, groups the stage links,
    #  release-time values, what the Dev stage's step sees for $(X) or the field refused)
    pytest.param(ADO_1142, {"X": "definition"}, {"X": "stage"}, {}, {}, {}, "stage",
                 id="stage variable over definition variable"),
    pytest.param(ADO_1142, {"X": "definition"}, {}, {}, {}, {}, "definition",
                 id="definition variable where the stage declares none"),
    pytest.param(ADO_SETTABLE, {"X": release_time("definition")}, {}, {}, {}, {"x": "given"}, "given",
                 id="release-time value over definition variable (names case-insensitive)"),
    pytest.param(ADO_SETTABLE, {"X": release_time("definition")}, {"X": release_time("stage")}, {}, {},
                 {"X": "given"}, "given", id="release-time value over a settable stage re-declaration"),
    pytest.param(ADO_1142 + "; " + ADO_SETTABLE, {"X": release_time("definition")}, {"X": "stage"}, {}, {},
                 {"X": "given"}, "stage", id="non-settable stage re-declaration over release-time value"),
    pytest.param(ADO_SETTABLE, {"X": "definition"}, {}, {}, {}, {"X": "given"}, Refused("variables.X"),
                 id="release-time value for a variable that does not allow it is refused"),
    pytest.param(ADO_1142, {"X": "definition"}, {}, {"X": "group"}, {}, {}, "definition",
                 id="definition variable over variable group"),
    pytest.param(ADO_1142, {}, {}, {"X": "group"}, {}, {}, "group", id="variable group where nothing else declares"),
    pytest.param(ADO_1142, {"X": "definition"}, {}, {}, {"X": "stage group"}, {}, "stage group",
                 id="stage-scoped group over definition variable"),
    pytest.param(ADO_1142, {}, {"X": "stage"}, {}, {"X": "stage group"}, {}, "stage",
                 id="stage variable over stage-scoped group"),
    pytest.param(ADO_READ_ONLY, {"Release.EnvironmentName": "mine"}, {}, {}, {}, {},
                 Refused("variables.Release.EnvironmentName"), id="predefined name declared by a definition"),
    pytest.param(ADO_READ_ONLY, {}, {"release.environmentname": "mine"}, {}, {}, {},
                 Refused("stages[0].variables.release.environmentname"), id="predefined name declared by a stage"),
    pytest.param(ADO_READ_ONLY, {}, {}, {}, {}, {"Release.EnvironmentName": "mine"},
                 Refused("variables.Release.EnvironmentName"), id="predefined name given at release time"),
]


@pytest.mark.parametrize("rule, definition, scoped, groups, stage_groups, given, sees", PRECEDENCE)
def test_precedence_follows_azure_devops(world: World, service: Service, rule: str, definition: dict[str, Any],
                                         scoped: dict[str, Any], groups: dict[str, str], stage_groups: dict[str, str],
                                         given: dict[str, str], sees: str) -> None:
    from shared.services import variable_groups

    assert rule  # every row names the Azure DevOps rule it checks
    for name, values in (("def-group", groups), ("stage-group", stage_groups)):
        variable_groups.put(world.deps, {"name": name, "variables": values}, by="ops")
    declared = {*definition, *scoped, *groups, *stage_groups}
    body = {"x": "$(X)"} if "X" in declared else {"x": "$(Release.EnvironmentName)"}
    dev = {**stage("Dev", steps=[call_step(service, body)]), "variables": scoped, "variableGroups": ["stage-group"]}
    try:
        did = int(world.define([dev], variables=definition, variableGroups=["def-group"])["id"])
        world.deps.packages.blobs.add("tailspin-web/1.0.0.zip", b"1.0.0")  # type: ignore[attr-defined]
        art: Any = {"alias": "web", "version": "1.0.0", "package": "tailspin-web/1.0.0.zip"}
        rel = releases.create(world.deps, ReleaseIn(definitionId=did, artifacts=[art], variables=given), by="amita")[0]
    except Invalid as refused:
        assert isinstance(sees, Refused), refused.errors
        assert [e.field.removesuffix(".[key]") for e in refused.errors] == [sees]
        return
    assert not isinstance(sees, Refused), "accepted what Azure DevOps refuses"
    world.pump()
    assert [json.loads(c["body"]) for c in service.calls] == [{"x": sees}]
    assert world.get(rel.id).stages["Dev"].current.status == "succeeded"


def test_a_release_may_set_only_what_allows_it_and_never_a_secret(world: World) -> None:
    did = int(world.define([stage("Dev", steps=[])], variables={"Fixed": "x", "Open": {"value": "",
                                                                                      "allowOverride": True}})["id"])
    for given, field in (({"Fixed": "y"}, "variables.Fixed"), ({"Open": SECRET_REF}, "variables.Open")):
        with pytest.raises(Invalid) as caught:
            releases.create(world.deps, ReleaseIn(definitionId=did, variables=given), by="amita")
        assert caught.value.errors[0].field == field


def test_a_secret_reaches_the_step_and_is_masked_in_everything_slipway_writes(api: World,  # noqa: F811
                                                                              service: Service,
                                                                              caplog: pytest.LogCaptureFixture) -> None:
    import logging

    from tests.integration.test_dashboard import text, visit

    caplog.set_level(logging.DEBUG)
    service.answers = [(200, {}, json.dumps({"echo": f"connected with {SECRET}!"}))]
    step = {"type": "http-request", "name": "migrate", "url": service.url + "/db",
            "body": {"password": "$(DbPassword)", "dsn": "sql://app:$(DbPassword)@db"},
            "criteria": [{"jsonPath": "$.echo", "value": "nope"}]}
    did = int(api.define([stage("Dev", steps=[step])], variables={"DbPassword": SECRET_REF})["id"])
    rel = api.release(did)
    api.pump()
    assert json.loads(service.calls[0]["body"]) == {"password": SECRET, "dsn": f"sql://app:{SECRET}@db"}
    dep = api.get(rel.id).stages["Dev"].current
    assert dep.status == "failed" and "***" in dep.failure and SECRET not in dep.failure
    surfaces = [json.dumps(call(rels.release_item, "GET", releaseId=rel.id)[1]),
                json.dumps(call(rels.release_events, "GET", releaseId=rel.id)[1]),
                call(rels.step_log, "GET", releaseId=rel.id, stage="Dev", attempt=1, step=0)[1],
                json.dumps(api.get(rel.id).to_dict()),
                text(visit(f"releases/{rel.id}")),
                text(visit(f"releases/{rel.id}/stages/Dev/deployments/1/steps/0/log")),
                caplog.text]
    for surface in surfaces:
        assert SECRET not in str(surface)
    assert "***" in str(surfaces[2]) and "***" in str(surfaces[5])
    view = call(rels.release_item, "GET", releaseId=rel.id)[1]
    assert view["stages"][0]["deployments"][0]["variables"] == {"DbPassword": "***"}  # what the attempt ran with


def test_a_vault_that_cannot_answer_fails_the_step_with_the_reason_never_an_empty_value(
        world: World, service: Service) -> None:
    step = {"type": "http-request", "url": service.url, "body": {"p": "$(Pw)"}}
    did = int(world.define([stage("Dev", steps=[step])],
                           variables={"Pw": "@Microsoft.KeyVault(SecretUri=https://unreachable.vault.azure.net/"
                                            "secrets/p)"})["id"])
    rel = world.release(did)
    world.pump()
    dep = world.get(rel.id).stages["Dev"].current
    assert dep.status == "failed" and "Key Vault unreachable" in dep.failure
    assert service.calls == []


@pytest.mark.parametrize("text, why", [("$(Release.Artifacts.api.BuildNumber)", "no artifact 'api'"),
                                       ("$(Release.Artifacts.web.Colour)", "an artifact's variables are"),
                                       ("$(Release.Nonsense)", "not a variable Slipway defines")])
def test_variables_that_can_be_known_wrong_are_refused_at_save_naming_the_field(world: World, text: str,
                                                                                 why: str) -> None:
    step = {"type": "http-request", "url": "https://api.example.com/x", "body": {"v": text}}
    with pytest.raises(Invalid) as caught:
        world.define([stage("Dev", steps=[step])])
    assert caught.value.errors[0].field == "stages[0].steps[0].body.v" and why in caught.value.errors[0].message


def test_the_new_release_form_offers_the_settable_variables_and_sends_them(api: World) -> None:  # noqa: F811
    from shared import bootstrap
    from shared.schemas.release import BuildIn
    from shared.services import artifacts
    from tests.integration.test_approvals_api import AMITA
    from tests.integration.test_dashboard import text, visit

    did = api.define([{**stage("Dev", {"type": "manual"}), "variables": {"Ring": {"value": "dev-ring",
                                                                                  "allowOverride": True}}}],
                     variables={"Fixed": "x", "Pw": {"value": SECRET_REF, "allowOverride": True}})["id"]
    api.deps.packages.blobs.add("tailspin-web/2.0.zip")  # type: ignore[attr-defined]
    artifacts.register(bootstrap.deps(), "tailspin-web", BuildIn(version="2.0", package="tailspin-web/2.0.zip"))
    page = text(visit(f"pipelines/{did}", headers=AMITA))
    assert 'name="var:Ring"' in page and 'placeholder="dev-ring"' in page and 'name="var:Fixed"' not in page
    assert "KeyVault" not in page  # a secret's reference is not shown as a default
    created = visit(f"pipelines/{did}/releases", "POST", {"version:web": "2.0", "var:Ring": "canary", "var:Pw": ""},
                    headers=AMITA)
    assert created.status_code == 303
    rid = int(created.headers["Location"].rsplit("/", 1)[1])
    assert releases.get(api.deps, rid).variables == {"Ring": "canary"}
    refused = visit(f"pipelines/{did}/releases", "POST", {"version:web": "2.0", "var:Fixed": "y"}, headers=AMITA)
    assert refused.status_code == 400 and "variables.Fixed" in text(refused)


def test_the_cli_sends_release_time_variables_the_api_accepts() -> None:
    from slipway_cli.main import build_parser, release_body

    args = build_parser().parse_args(["release", "create", "-d", "1", "--var", "Ring=canary", "--var", "Note=a=b"])
    assert ReleaseIn.model_validate(release_body(args)).variables == {"Ring": "canary", "Note": "a=b"}
    with pytest.raises(ValueError, match="--var takes NAME=VALUE"):
        release_body(build_parser().parse_args(["release", "create", "-d", "1", "--var", "Ring"]))


def test_variable_groups_are_linked_by_name_snapshotted_by_releases_and_kept_while_linked(
        api: World, service: Service) -> None:  # noqa: F811
    from functions import definitions_api as defs
    from functions import variable_groups_api as groups
    from tests.integration.test_approvals_api import AMITA

    admin = {"X-Slipway-Acting-As": "ops@contoso.com; roles=Slipway.Admin"}
    status, created = call(groups.variable_groups_collection, "POST",
                           {"name": "shared-sql", "variables": {"SqlServer": "sql-1", "SiteName": "from-group"}},
                           headers=admin)
    assert status == 201 and created["name"] == "shared-sql"
    assert call(groups.variable_groups_collection, "POST", {"name": "Shared-SQL"}, headers=admin)[0] == 409
    assert call(groups.variable_groups_collection, "POST", {"name": "x"}, headers=AMITA)[0] == 403
    assert call(groups.variable_groups_collection, "POST", {"name": "stage-ring", "variables": {"Ring": "g"}},
                headers=admin)[0] == 201
    body = {"site": "$(SiteName)", "sql": "$(SqlServer)", "ring": "$(Ring)"}
    dev = {**stage("Dev", steps=[call_step(service, body)]), "variableGroups": ["stage-ring"],
           "variables": {"Ring": "stage-own"}}
    prod = {**stage("Production", {"type": "afterStages", "stages": ["Dev"]}, steps=[call_step(service, body)]),
            "variableGroups": ["stage-ring"]}
    bad = {"name": "T", "artifacts": [{"alias": "web", "source": "tailspin-web"}], "stages": [dev, prod],
           "variableGroups": ["nope"]}
    status, problem = call(defs.definitions_collection, "POST", bad, headers=admin)
    assert status == 400 and problem["errors"][0]["field"] == "variableGroups[0]"
    did = int(api.define([dev, prod], variableGroups=["shared-sql"], variables={"SiteName": "own"})["id"])
    rel = api.release(did)
    assert call(groups.variable_group_item, "GET", name="shared-sql")[1]["variables"]["SqlServer"] == "sql-1"
    from shared.services import variable_groups
    _, etag = variable_groups.get(api.deps, "shared-sql")
    changed = {"name": "shared-sql", "variables": {"SqlServer": "sql-2"}}
    assert call(groups.variable_group_item, "PUT", changed, headers=admin, name="shared-sql")[0] == 428
    assert call(groups.variable_group_item, "PUT", changed, headers={**admin, "If-Match": etag},
                name="shared-sql")[0] == 200
    api.pump()
    # | variable  | group (definition) | definition | group (stage) | stage     | Dev sees  | Production sees |
    # | SiteName  | from-group         | own        | –             | –         | own       | own             |
    # | SqlServer | sql-1 (then sql-2) | –          | –             | –         | sql-1     | sql-1           |
    # | Ring      | –                  | –          | g             | Dev: own  | stage-own | g               |
    assert [json.loads(c["body"]) for c in service.calls] == [
        {"site": "own", "sql": "sql-1", "ring": "stage-own"}, {"site": "own", "sql": "sql-1", "ring": "g"}]
    assert api.get(rel.id).groups["shared-sql"]["SqlServer"] == "sql-1"  # the release keeps what it was created with
    _, etag = variable_groups.get(api.deps, "shared-sql")
    status, problem = call(groups.variable_group_item, "DELETE", headers={**admin, "If-Match": etag},
                           name="shared-sql")
    assert status == 409 and f"definition {did}" in problem["detail"]


def test_a_redeploy_keeps_the_groups_values_unless_asked_to_read_them_again(world: World, service: Service) -> None:
    from shared.schemas.actions import DeployIn
    from shared.services import variable_groups

    variable_groups.put(world.deps, {"name": "sql", "variables": {"SqlServer": "sql-1"}}, by="ops")
    did = int(world.define([stage("Dev", {"type": "manual"}, steps=[call_step(service, {"sql": "$(SqlServer)"})])],
                           variableGroups=["sql"])["id"])
    rel = world.release(did)
    _, etag = variable_groups.get(world.deps, "sql")
    variable_groups.put(world.deps, {"name": "sql", "variables": {"SqlServer": "sql-2"}}, by="ops", name="sql",
                        if_match=etag)
    for body in (DeployIn(), DeployIn(), DeployIn(refreshVariableGroups=True), DeployIn()):
        releases.deploy_stage(world.deps, rel.id, "Dev", body, by="amita")
        world.pump()
    assert [json.loads(c["body"])["sql"] for c in service.calls] == ["sql-1", "sql-1", "sql-2", "sql-2"]
    events = [e["type"] for e in releases.events(world.deps, rel.id)]
    assert events.count("variablesRefreshed") == 1


def test_gate_signals_take_variables_and_secrets_too(world: World, service: Service) -> None:
    from shared.adapters.monitor_signals import MonitorSignals
    from shared.config import Settings

    world.deps.signals = MonitorSignals(Settings())
    service.answers = [(200, {}, json.dumps({"state": f"fine for {SECRET}"}))] * 5
    gate = {"signals": [{"type": "rest", "name": "health", "url": service.url + "$(HealthPath)?key=$(ApiKey)",
                         "jsonPath": "$.state", "operator": "!=", "threshold": "down"}],
            "intervalMinutes": 1, "timeoutMinutes": 10}
    dev = {**stage("Dev", steps=[{"type": "wait", "seconds": 0}]), "postGates": gate,
           "variables": {"HealthPath": "/health/dev"}}
    did = int(world.define([dev], variables={"ApiKey": SECRET_REF})["id"])
    rel = world.release(did)
    world.pump()
    world.deliver(GATES_QUEUE)
    world.pump()
    assert service.calls[0]["path"] == f"/health/dev?key={SECRET}"
    dep = world.get(rel.id).stages["Dev"].current
    assert dep.status == "succeeded", dep.failure
    assert SECRET not in json.dumps(world.get(rel.id).to_dict())


def test_every_string_field_of_a_built_in_step_takes_variables(world: World, service: Service) -> None:
    world.deps.probe = HttpxProbe("127.0.0.1")
    check = {"type": "http-check", "url": service.url + "$(HealthPath)", "expectText": "$(Expected)",
             "timeoutSeconds": 0}
    service.answers = [(200, {}, "all good here")]
    did = int(world.define([{**stage("Dev", steps=[check]),
                             "variables": {"HealthPath": "/health/dev", "Expected": "good"}}])["id"])
    rel = world.release(did)
    world.pump()
    dep = world.get(rel.id).stages["Dev"].current
    assert dep.status == "succeeded", dep.failure
    assert service.calls[0]["path"] == "/health/dev"


def test_an_unknown_variable_fails_the_step_before_it_acts_never_written_as_text(world: World) -> None:
    from tests.integration.conftest import SUB

    settings = {"type": "set-app-settings", "name": "Connection", "settings": {"DB": "Server=$(SqlServre);Db=app"}}
    did = int(world.define([stage("Dev", steps=[settings])], variables={"SqlServer": "sql-1"})["id"])
    rel = world.release(did)
    world.pump()
    dep = world.get(rel.id).stages["Dev"].current
    assert dep.status == "failed" and dep.steps[0].message == "unknown variable $(SqlServre)"
    slot = f"/subscriptions/{SUB}/resourceGroups/rg-tailspin/providers/Microsoft.Web/sites/tailspin/slots/dev"
    assert "DB" not in world.app_service.settings.get(slot, {})


def test_a_name_the_step_defines_while_it_runs_is_not_unknown(world: World, service: Service) -> None:
    step = {**call_step(service, {"callback": "$(Slipway.CallbackUrl)", "site": "$(SiteName)"}),
            "completion": "callback"}
    did = int(world.define([stage("Dev", steps=[step])], variables={"SiteName": "tailspin"})["id"])
    world.release(did)
    world.pump()
    sent = json.loads(service.calls[0]["body"])
    assert sent["site"] == "tailspin" and "/api/callbacks/" in sent["callback"]


def test_predefined_release_and_artifact_variables_reach_the_step(world: World, service: Service) -> None:
    from shared.schemas.actions import DeployIn

    names = ["Release.Artifacts.web.BuildNumber", "Release.Artifacts.web.BuildId", "Release.Artifacts.web.SourceBranch",
             "Release.Artifacts.web.SourceVersion", "Release.Deployment.RequestedFor", "Release.AttemptNumber",
             "Release.RequestedFor", "Release.EnvironmentName", "Release.ReleaseName", "Release.DefinitionName",
             "Build.BuildNumber"]
    step = call_step(service, {name: f"$({name})" for name in names})
    did = int(world.define([stage("Dev", {"type": "manual"}, steps=[step])])["id"])
    world.deps.packages.blobs.add("tailspin-web/20240611.3.zip", b"build")  # type: ignore[attr-defined]
    art: Any = {"alias": "web", "version": "20240611.3", "buildId": "4711", "branch": "refs/heads/main",
           "commit": "38629c964d21fe405ef830b7d0220966b82c9e11", "package": "tailspin-web/20240611.3.zip"}
    rel = releases.create(world.deps, ReleaseIn(definitionId=did, artifacts=[art]), by="amita")[0]
    releases.deploy_stage(world.deps, rel.id, "Dev", DeployIn(), by="amita")
    world.pump()
    releases.deploy_stage(world.deps, rel.id, "Dev", DeployIn(), by="bruno")
    world.pump()
    first, second = (json.loads(c["body"]) for c in service.calls)
    assert first == {"Release.Artifacts.web.BuildNumber": "20240611.3", "Release.Artifacts.web.BuildId": "4711",
                     "Release.Artifacts.web.SourceBranch": "refs/heads/main",
                     "Release.Artifacts.web.SourceVersion": "38629c964d21fe405ef830b7d0220966b82c9e11",
                     "Release.Deployment.RequestedFor": "amita", "Release.AttemptNumber": "1",
                     "Release.RequestedFor": "amita", "Release.EnvironmentName": "Dev",
                     "Release.ReleaseName": rel.name, "Release.DefinitionName": "Tailspin",
                     "Build.BuildNumber": "20240611.3"}
    assert (second["Release.Deployment.RequestedFor"], second["Release.AttemptNumber"]) == ("bruno", "2")
    assert second["Release.RequestedFor"] == "amita"  # the release's creator, whoever redeploys
