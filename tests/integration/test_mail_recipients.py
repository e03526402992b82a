"""Who gets mail, through HTTP: the new approver of a reassigned entry, the members of a group, each once
per message however often it is delivered, with subjects that name pipeline, release and stage."""

from __future__ import annotations

import json
import logging
import re
from dataclasses import replace
from typing import Any

import pytest

from functions import approvals_api as appr
from shared import bootstrap
from shared.config import MAIL_QUEUE
from shared.domain.keys import key_hash
from tests.integration.conftest import World
from tests.integration.test_approvals_api import TIM, etag, link_page, release_in_production
from tests.integration.test_http_api import api, as_, call  # noqa: F401  (fixture)

GROUPS = {"management": ["maria@contoso.com", "raj@contoso.com"]}


def sent(world: World) -> list[dict[str, Any]]:
    return world.deps.mailer.sent  # type: ignore[attr-defined,no-any-return]


def with_groups(world: World, groups: dict[str, list[str]] | str) -> None:
    value = groups if isinstance(groups, str) else json.dumps(groups)
    world.deps.settings = replace(world.deps.settings, mail_groups=value)


def token_in(mail: dict[str, Any]) -> str:
    return re.search(r"/api/approve/([A-Za-z0-9_-]+)", str(mail["text"]))[1]  # type: ignore[index]


def test_reassigning_mails_the_new_approver_a_link_of_their_own(api: World) -> None:  # noqa: F811
    rid, tag = release_in_production(api, {"approvers": ["tim@contoso.com"]})
    api.deliver(MAIL_QUEUE)
    assert [m["to"] for m in sent(api)] == [["tim@contoso.com"]]
    status, _ = call(appr.reassign_approval, "POST", {"to": "maria@contoso.com", "comment": "holiday"},
                     headers={**TIM, "If-Match": tag}, releaseId=rid, stage="Production", kind="pre")
    assert status == 200
    api.deliver(MAIL_QUEUE)
    to_maria = [m for m in sent(api) if m["to"] == ["maria@contoso.com"]]
    assert len(to_maria) == 1 and len(sent(api)) == 2  # Tim is not mailed again
    name = api.get(rid).name
    assert to_maria[0]["subject"] == f"Approval needed: Tailspin / {name} \u2192 Production"
    link = api.deps.store.link(key_hash(token_in(to_maria[0])))
    assert link is not None and link[0]["approver"] == "maria@contoso.com" and link[0]["kind"] == "pre"
    status, page = link_page(token_in(to_maria[0]), "POST", f"decision=approve&etag={etag(rid)}",
                             headers=as_("maria@contoso.com"))
    assert status == 200 and "Approved" in page
    assert api.get(rid).stages["Production"].current.approvals["pre"].status == "approved"


@pytest.mark.parametrize("store", ["memory", pytest.param("table", marks=pytest.mark.azurite)])
def test_a_redelivered_approval_message_mails_once(api: World, store: str) -> None:  # noqa: F811
    release_in_production(api, {"approvers": ["tim@contoso.com"]})
    [msg] = api.receive(MAIL_QUEUE)
    for _ in range(3):  # the host crashed before deleting it: the queue delivers the same message again
        bootstrap.react(api.deps, MAIL_QUEUE, msg.content, msg.id)
    assert [m["to"] for m in sent(api)] == [["tim@contoso.com"]]


def test_every_member_of_a_group_is_mailed_a_link_bound_to_them(api: World) -> None:  # noqa: F811
    with_groups(api, GROUPS)
    rid, tag = release_in_production(api, {"approvers": ["Management"], "policy": "anyOne"})
    api.deliver(MAIL_QUEUE)
    assert sorted(m["to"][0] for m in sent(api)) == ["maria@contoso.com", "raj@contoso.com"]
    raj = next(m for m in sent(api) if m["to"] == ["raj@contoso.com"])
    assert "member of Management" in str(raj["text"]) and "sign-in name is their mail address" in str(raj["html"])
    link = api.deps.store.link(key_hash(token_in(raj)))
    assert link is not None and link[0]["approver"] == "raj@contoso.com" and link[0]["group"] == "Management"
    status, page = link_page(token_in(raj), "POST", f"decision=approve&etag={tag}",
                             headers=as_("raj@contoso.com", groups=["Management"]))
    assert status == 200 and "Approved" in page


def test_a_bad_member_address_fails_alone_and_the_others_are_not_mailed_again(api: World) -> None:  # noqa: F811
    with_groups(api, {"management": ["maria@contoso.com", "bob@nowhere.invalid", "raj@contoso.com"]})
    api.deps.mailer.refused.add("bob@nowhere.invalid")  # type: ignore[attr-defined]
    release_in_production(api, {"approvers": ["management"]})
    [msg] = api.receive(MAIL_QUEUE)
    for _ in range(4):  # every delivery until the poison queue
        with pytest.raises(RuntimeError, match="bob@nowhere.invalid"):
            bootstrap.react(api.deps, MAIL_QUEUE, msg.content, msg.id)
    assert [m["to"] for m in sent(api)] == [["maria@contoso.com"]]  # mailed before bob, once
    api.deps.mailer.refused.clear()  # type: ignore[attr-defined]
    bootstrap.react(api.deps, MAIL_QUEUE, msg.content, msg.id)  # the address works again: only who is left
    assert [m["to"] for m in sent(api)] == [["maria@contoso.com"], ["bob@nowhere.invalid"], ["raj@contoso.com"]]


def test_a_group_without_an_entry_is_logged_and_skipped(api: World, caplog: pytest.LogCaptureFixture) -> None:  # noqa: F811
    with_groups(api, GROUPS)
    caplog.set_level(logging.WARNING)
    release_in_production(api, {"approvers": ["release-board", "tim@contoso.com"]})
    api.deliver(MAIL_QUEUE)
    assert [m["to"] for m in sent(api)] == [["tim@contoso.com"]]
    assert "'release-board' is neither a mail address nor a group in SLIPWAY_MAIL_GROUPS" in caplog.text
    assert not api.failures


@pytest.mark.parametrize("value", ["not json", '["a@x"]', '{"management": "maria@contoso.com"}',
                                   '{"management": [1]}', '{"management": ["no-at-sign"]}'])
def test_a_malformed_group_map_mails_no_group_and_fails_nothing(api: World, value: str,  # noqa: F811
                                                                 caplog: pytest.LogCaptureFixture) -> None:
    with_groups(api, value)
    release_in_production(api, {"approvers": ["management", "tim@contoso.com"]})
    api.deliver(MAIL_QUEUE)
    assert [m["to"] for m in sent(api)] == [["tim@contoso.com"]] and not api.failures
    assert "SLIPWAY_MAIL_GROUPS is not a JSON object" in caplog.text


def test_a_reassignment_to_a_group_mails_its_members(api: World) -> None:  # noqa: F811
    with_groups(api, GROUPS)
    rid, tag = release_in_production(api, {"approvers": ["tim@contoso.com"]})
    status, _ = call(appr.reassign_approval, "POST", {"to": "management"},
                     headers={**TIM, "If-Match": tag}, releaseId=rid, stage="Production", kind="pre")
    assert status == 200
    api.deliver(MAIL_QUEUE)  # Tim's mail had not gone out yet: he is no longer an approver, so it does not
    assert sorted(m["to"][0] for m in sent(api)) == ["maria@contoso.com", "raj@contoso.com"]


def test_the_rejection_mail_names_pipeline_release_and_stage(api: World) -> None:  # noqa: F811
    rid, tag = release_in_production(api, {"approvers": ["tim@contoso.com"]})
    status, _ = call(appr.decide_approval, "POST", {"decision": "reject"}, headers={**TIM, "If-Match": tag},
                     releaseId=rid, stage="Production", kind="pre")
    assert status == 200
    api.pump()
    [told] = [m for m in sent(api) if m["to"] == ["amita@contoso.com"]]
    assert told["subject"] == f"Deployment rejected: Tailspin / {api.get(rid).name} \u2192 Production"
